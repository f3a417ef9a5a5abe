//! Pushes arriving together written together: on PostgreSQL each write of events is a
//! transaction that holds the event writers' lock, so a thousand pushes a second written
//! one by one would queue for connections and the lock; collected into one transaction
//! they cost one round of statements, as SQLite's writer commits concurrent writes
//! together. Each push is answered once its batch is committed.

use tokio::sync::{mpsc, oneshot};

use super::PgStore;
use crate::domain::AccountEvent;
use crate::store::{StoreError, Stored, WriteFailure};

/// Most pushes in one transaction: bounds the wait of the last one in a batch.
const MAX_BATCH: usize = 512;
/// Pushes waiting for a batch before new ones wait for room.
const QUEUE: usize = 8_192;

type Answer = oneshot::Sender<Result<Stored, WriteFailure>>;

/// The sending side, inside `Store`.
#[derive(Clone)]
pub(crate) struct Pushes(mpsc::Sender<(AccountEvent, Answer)>);

impl Pushes {
    /// Starts the batching task on the current runtime; it ends after `stop`, once the
    /// pushes already queued are written (or refused).
    pub(crate) fn start(
        database: PgStore,
        stop: oneshot::Receiver<()>,
    ) -> (Self, impl Future<Output = ()>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        (Self(sender), run(database, receiver, stop))
    }

    /// Whether the batching has stopped taking pushes.
    pub(crate) fn closed(&self) -> bool {
        self.0.is_closed()
    }

    /// Stores `event` with the pushes that arrive with it; returns once committed.
    pub(crate) async fn store(&self, event: AccountEvent) -> Result<Stored, StoreError> {
        let (answer, outcome) = oneshot::channel();
        self.0
            .send((event, answer))
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        match outcome.await {
            Ok(Ok(stored)) => Ok(stored),
            Ok(Err(failure)) => Err(StoreError::Write(failure)),
            Err(_) => Err(StoreError::WriterStopped),
        }
    }
}

async fn run(
    database: PgStore,
    mut pushes: mpsc::Receiver<(AccountEvent, Answer)>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut stopping = false;
    loop {
        tokio::select! {
            received = pushes.recv_many(&mut batch, MAX_BATCH) => {
                if received == 0 {
                    break;
                }
                let (events, answers): (Vec<AccountEvent>, Vec<Answer>) = batch.drain(..).unzip();
                match database.store_events(&events).await {
                    Ok(outcomes) => {
                        for (answer, stored) in answers.into_iter().zip(outcomes) {
                            let _ = answer.send(Ok(stored));
                        }
                    }
                    Err(e) => {
                        let failure = match e {
                            StoreError::Database(e) => WriteFailure::Database(e.into()),
                            StoreError::Write(failure) => failure,
                            other => WriteFailure::Database(
                                sqlx::Error::Protocol(other.to_string()).into(),
                            ),
                        };
                        for answer in answers {
                            let _ = answer.send(Err(failure.clone()));
                        }
                    }
                }
            }
            asked = &mut stop, if !stopping => {
                if asked.is_ok() {
                    // Senders now fail at once; what is queued is still received.
                    pushes.close();
                }
                stopping = true;
            }
        }
    }
}
