//! Storing scan events with group commit.
//!
//! Each push waits for its own row to be committed before the callback answers `success`;
//! pushes that arrive while a commit is under way are written together in the next
//! transaction. One flush to disk then covers many pushes, which is what lets a durable
//! callback keep up with a burst of scans.

use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError, unix_now};
use crate::wechat::push::FollowEvent;

/// Most events written in one transaction: bounds the wait of the last one in a batch.
const MAX_BATCH: usize = 512;
/// Pushes waiting for the writer before new ones wait for room.
const QUEUE: usize = 8_192;

/// Whether a push added a row or repeated one already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New,
    Duplicate,
}

struct Job {
    event: FollowEvent,
    received_at: i64,
    done: oneshot::Sender<Result<Stored, String>>,
}

/// The sending side, cloned into every worker.
#[derive(Clone)]
pub struct EventWriter {
    jobs: mpsc::Sender<Job>,
}

impl EventWriter {
    /// Starts the writer task on the current actix/tokio runtime.
    pub fn start(store: &Store) -> Self {
        let (jobs, receiver) = mpsc::channel(QUEUE);
        actix_web::rt::spawn(run(store.clone(), receiver));
        Self { jobs }
    }

    /// Stores `event`; returns once it is durably committed.
    pub async fn store(&self, event: FollowEvent) -> Result<Stored, StoreError> {
        let (done, outcome) = oneshot::channel();
        let job = Job {
            event,
            received_at: unix_now(),
            done,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        match outcome.await {
            Ok(Ok(stored)) => Ok(stored),
            Ok(Err(message)) => Err(StoreError::Write(message)),
            Err(_) => Err(StoreError::WriterStopped),
        }
    }
}

/// Runs until every sender is gone and the queue is drained, so no accepted push is dropped
/// on shutdown.
async fn run(store: Store, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match write_batch(&store, &batch).await {
            Ok(outcomes) => {
                for (job, stored) in batch.drain(..).zip(outcomes) {
                    let _ = job.done.send(Ok(stored));
                }
            }
            Err(e) => {
                log::error!("storing {} scan events failed: {e}", batch.len());
                let message = e.to_string();
                for job in batch.drain(..) {
                    let _ = job.done.send(Err(message.clone()));
                }
            }
        }
    }
}

async fn write_batch(store: &Store, batch: &[Job]) -> Result<Vec<Stored>, sqlx::Error> {
    let mut tx = store.writer.begin().await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        let e = &job.event;
        let result = sqlx::query(
            "INSERT INTO scan_events
                 (scene, event, event_key, openid, ticket, new_follower, created_at, received_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (openid, created_at, event, event_key) DO NOTHING",
        )
        .bind(&e.scene)
        .bind(e.kind.as_str())
        .bind(&e.event_key)
        .bind(&e.openid)
        .bind(&e.ticket)
        .bind(e.is_new_follower())
        .bind(e.created_at)
        .bind(job.received_at)
        .execute(&mut *tx)
        .await?;
        outcomes.push(if result.rows_affected() == 1 {
            Stored::New
        } else {
            Stored::Duplicate
        });
    }
    tx.commit().await?;
    Ok(outcomes)
}
