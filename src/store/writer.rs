//! The single writer: scan events and new codes, written with group commit.
//!
//! Each push waits for its own row to be committed before the callback answers `success`;
//! writes that arrive while a commit is under way go together into the next transaction.
//! One flush to disk then covers many writes, which is what lets a durable callback keep
//! up with a burst of scans, and a cold start create thousands of codes without queuing
//! behind one fsync each.

use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError, unix_now};
use crate::domain::CodeRequest;
use crate::wechat::Ticket;
use crate::wechat::push::FollowEvent;

/// Most writes in one transaction: bounds the wait of the last one in a batch.
const MAX_BATCH: usize = 512;
/// Writes waiting for the writer before new ones wait for room.
const QUEUE: usize = 8_192;

/// Whether a push added a row or repeated one already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    New,
    Duplicate,
}

enum Job {
    Event {
        event: FollowEvent,
        received_at: i64,
        done: oneshot::Sender<Result<Stored, String>>,
    },
    /// A code for the inventory. Nobody waits: the page already has its ticket.
    Code { code: CodeRequest, ticket: Ticket },
}

/// The sending side, cloned into every worker.
#[derive(Clone)]
pub struct StoreWriter {
    jobs: mpsc::Sender<Job>,
}

/// The running writer; it finishes once every [`StoreWriter`] is dropped and the queue is
/// written.
pub struct WriterTask(actix_web::rt::task::JoinHandle<()>);

impl WriterTask {
    /// Waits (at most `limit`) for the last writes to be committed.
    pub async fn finish(self, limit: std::time::Duration) {
        if actix_web::rt::time::timeout(limit, self.0).await.is_err() {
            log::error!("the database writer did not finish within {limit:?}");
        }
    }
}

impl StoreWriter {
    /// Starts the writer task on the current actix/tokio runtime.
    pub fn start(store: &Store) -> (Self, WriterTask) {
        let (jobs, receiver) = mpsc::channel(QUEUE);
        let task = actix_web::rt::spawn(run(store.clone(), receiver));
        (Self { jobs }, WriterTask(task))
    }

    /// Stores `event`; returns once it is durably committed.
    pub async fn store(&self, event: FollowEvent) -> Result<Stored, StoreError> {
        let (done, outcome) = oneshot::channel();
        let job = Job::Event {
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

    /// Adds a new code to the inventory, in the next commit.
    pub async fn record_code(&self, code: &CodeRequest, ticket: Ticket) -> Result<(), StoreError> {
        let job = Job::Code {
            code: code.clone(),
            ticket,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::WriterStopped)
    }
}

/// Runs until every sender is gone and the queue is drained, so no accepted write is
/// dropped on shutdown.
async fn run(store: Store, mut jobs: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match write_batch(&store, &batch).await {
            Ok(outcomes) => {
                for (job, stored) in batch.drain(..).zip(outcomes) {
                    if let (Job::Event { done, .. }, Some(stored)) = (job, stored) {
                        let _ = done.send(Ok(stored));
                    }
                }
            }
            Err(e) => {
                log::error!("writing {} rows failed: {e}", batch.len());
                let message = e.to_string();
                for job in batch.drain(..) {
                    if let Job::Event { done, .. } = job {
                        let _ = done.send(Err(message.clone()));
                    }
                }
            }
        }
    }
}

/// Writes the batch in one transaction; for each job, what became of its event.
async fn write_batch(store: &Store, batch: &[Job]) -> Result<Vec<Option<Stored>>, sqlx::Error> {
    let mut tx = store.writer.begin().await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        match job {
            Job::Event {
                event: e,
                received_at,
                ..
            } => {
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
                .bind(received_at)
                .execute(&mut *tx)
                .await?;
                outcomes.push(Some(if result.rows_affected() == 1 {
                    Stored::New
                } else {
                    Stored::Duplicate
                }));
            }
            Job::Code { code, ticket } => {
                super::codes::insert_code(&mut tx, code, ticket).await?;
                outcomes.push(None);
            }
        }
    }
    tx.commit().await?;
    Ok(outcomes)
}
