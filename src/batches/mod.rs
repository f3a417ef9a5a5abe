//! Batches of codes: a checked [`BatchRequest`] is stored as a job ([`Batches::submit`])
//! and answered at once; a [`Runner`] in each process makes its rows one at a time, at
//! WeChat's pace rather than within any client's allowance, and records each row's
//! outcome as soon as its code is recorded. So a batch survives a restart (the next start
//! goes on from the first row without an outcome), and replicas sharing a database work
//! on a batch one at a time (a lease on the batch's row).
//!
//! WeChat's answers decide what happens next: `-1` (busy) and `45011` (too often) are
//! tried again after a back-off, a bounded number of times; `45009` (the day's quota)
//! and `45029` (the account's 100,000 permanent codes) stop the batch with a message
//! saying so, as does any other refusal, since every later row would meet it too. A
//! database that cannot record a code pauses the batch until the next look.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::Either;
use tokio::sync::Notify;

use crate::codes::{CodeError, CodeService};
use crate::domain::{
    BatchPreview, BatchRequest, Change, GroupName, Kind, SceneKey, SceneLabel, SettingsChange,
};
use crate::store::batches::{BatchItem, BatchState, BatchSummary, RowOutcome};
use crate::store::{Store, StoreError};
use crate::wechat::{UpstreamError, WechatClient, errcode};

/// The time between two new codes of a batch: 20 a second, well under what WeChat
/// answers `45011` to, and 200 codes in 10 s.
pub const CREATE_INTERVAL: Duration = Duration::from_millis(50);

/// Back-offs before trying a row again after `-1`, `45011`, a timeout or no answer: the
/// row is tried at most this many times more, then the batch stops.
const BACK_OFFS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// How often a runner looks for unfinished batches when not woken: a batch another
/// replica left (it died), or one paused by a database failure.
const LOOK_EVERY: Duration = Duration::from_secs(5);

/// How often the lease on a batch is renewed while rows are made (well within
/// [`crate::store::batches::BATCH_LEASE_MS`]).
const RENEW_EVERY: Duration = Duration::from_secs(5);

/// Stores, previews and reports batches; shared by every worker.
#[derive(Clone)]
pub struct Batches {
    store: Store,
    codes: Arc<CodeService>,
    /// Wakes this process's runner when a batch is submitted.
    wake: Arc<Notify>,
}

impl Batches {
    pub fn new(store: Store, codes: Arc<CodeService>) -> Self {
        Self {
            store,
            codes,
            wake: Arc::new(Notify::new()),
        }
    }

    /// The runner making this process's batches, with its own WeChat client.
    pub fn runner(&self, wechat: WechatClient) -> Runner {
        Runner {
            store: self.store.clone(),
            codes: self.codes.clone(),
            wechat,
            wake: self.wake.clone(),
        }
    }

    /// Stores `request` as a new batch and returns its id once it is committed.
    pub async fn submit(&self, request: &BatchRequest) -> Result<String, StoreError> {
        let id = new_batch_id();
        self.store.create_batch(&id, request.rows()).await?;
        self.wake.notify_one();
        Ok(id)
    }

    pub async fn summary(&self, id: &str) -> Result<Option<BatchSummary>, StoreError> {
        self.store.batch_summary(id).await
    }

    pub async fn items(&self, id: &str) -> Result<Vec<BatchItem>, StoreError> {
        self.store.batch_items(id).await
    }

    /// What `request` would do: how many codes exist and will be reused, how many
    /// permanent slots it will use.
    pub async fn preview(&self, request: &BatchRequest) -> Result<BatchPreview, StoreError> {
        let mut reused = 0;
        let mut new_permanent = 0;
        for row in request.rows() {
            if self.codes.has_live_code(&row.code).await? {
                reused += 1;
            } else if row.code.kind == Kind::Permanent {
                new_permanent += 1;
            }
        }
        let permanent = request.permanent_rows();
        Ok(BatchPreview {
            rows: request.rows().len(),
            permanent,
            temporary: request.rows().len() - permanent,
            reused,
            new_permanent,
            permanent_used: self.store.permanent_codes_used().await?,
        })
    }
}

/// 16 random bytes as hex: ids are shown in addresses and cannot be guessed.
fn new_batch_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// Whether `id` could be a batch's id, so that any other text never reaches the database.
pub fn is_batch_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Makes the rows of unfinished batches, one batch at a time.
pub struct Runner {
    store: Store,
    codes: Arc<CodeService>,
    wechat: WechatClient,
    wake: Arc<Notify>,
}

/// Work on a batch ended before its last row: it was stopped for good (with its reason
/// recorded), or paused (the database failed, or another process holds the batch) until
/// the next look. Logged where it happened.
struct Halted;

impl Runner {
    /// Works on batches until the process ends.
    pub async fn run(self) {
        loop {
            match self.store.unfinished_batches().await {
                Ok(ids) => {
                    for id in ids {
                        self.work_on(&id).await;
                    }
                }
                Err(e) => log::warn!("unfinished batches could not be read: {e}"),
            }
            let _ = actix_web::rt::time::timeout(LOOK_EVERY, self.wake.notified()).await;
        }
    }

    /// Makes what is left of batch `id`, if no other process is working on it.
    async fn work_on(&self, id: &str) {
        match self.store.lease_batch(id).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                log::warn!("batch {id} could not be taken: {e}");
                return;
            }
        }
        // The lease is renewed beside the rows, not between them: one row may wait longer
        // than the lease (back-offs, another replica's claim of its code). A lease lost
        // stops the rows at once, so two replicas never work on one batch.
        let rows = std::pin::pin!(self.make_rows(id));
        let lease = std::pin::pin!(self.keep_lease(id));
        match futures_util::future::select(rows, lease).await {
            Either::Left((Ok(()), _)) => {
                if let Err(e) = self.store.set_batch_state(id, BatchState::Done, None).await {
                    log::warn!("batch {id} is done but could not be marked so: {e}");
                }
            }
            Either::Left((Err(Halted), _)) | Either::Right(((), _)) => {}
        }
    }

    /// Renews the lease on batch `id` every [`RENEW_EVERY`]; returns once it is lost (to
    /// another replica after a stall, or the batch finished elsewhere) or cannot be renewed.
    async fn keep_lease(&self, id: &str) {
        loop {
            actix_web::rt::time::sleep(RENEW_EVERY).await;
            match self.store.lease_batch(id).await {
                Ok(true) => {}
                Ok(false) => {
                    log::warn!("batch {id} is now worked on elsewhere; left to it");
                    return;
                }
                Err(e) => {
                    log::warn!("batch {id} paused: its lease could not be renewed: {e}");
                    return;
                }
            }
        }
    }

    async fn make_rows(&self, id: &str) -> Result<(), Halted> {
        let paused = |e: StoreError| {
            log::warn!("batch {id} paused: {e}");
            Halted
        };
        self.store
            .set_batch_state(id, BatchState::Running, None)
            .await
            .map_err(paused)?;
        let items = self.store.batch_items(id).await.map_err(paused)?;
        for item in items.iter().filter(|item| item.outcome.is_none()) {
            self.save_names(item).await.map_err(paused)?;
            let started = Instant::now();
            let outcome = match self.make_code(item).await {
                Ok(outcome) => outcome,
                // (`make_code` has used up a retry's back-offs before it returns.)
                Err(Failure::Paused(e) | Failure::Retry(e)) => {
                    log::warn!("batch {id} paused: {e}");
                    return Err(Halted);
                }
                Err(Failure::Stop { errcode, message }) => {
                    let failed = RowOutcome::Failed {
                        errcode,
                        message: message.clone(),
                    };
                    self.store
                        .record_batch_row(id, item.position, failed)
                        .await
                        .map_err(paused)?;
                    self.store
                        .set_batch_state(id, BatchState::Stopped, Some(message))
                        .await
                        .map_err(paused)?;
                    log::warn!(
                        "batch {id} stopped at row {} (scene {}): errcode {errcode:?}",
                        item.position,
                        item.code.scene
                    );
                    return Err(Halted);
                }
            };
            let reused = matches!(outcome, RowOutcome::Made { reused: true, .. });
            self.store
                .record_batch_row(id, item.position, outcome)
                .await
                .map_err(paused)?;
            if !reused {
                actix_web::rt::time::sleep(CREATE_INTERVAL.saturating_sub(started.elapsed())).await;
            }
        }
        Ok(())
    }

    /// Saves the row's label and group, if it gives them (a row without leaves the
    /// scene's as they are).
    async fn save_names(&self, item: &BatchItem) -> Result<(), StoreError> {
        let label = item
            .label
            .as_deref()
            .and_then(|l| SceneLabel::parse(l).ok().flatten());
        let group = item
            .group
            .as_deref()
            .and_then(|g| GroupName::parse(g).ok().flatten());
        if label.is_none() && group.is_none() {
            return Ok(());
        }
        let Ok(scene) = SceneKey::parse(&item.code.scene.to_string()) else {
            return Ok(());
        };
        let change = SettingsChange {
            label: label.map_or(Change::Keep, Change::Set),
            group: group.map_or(Change::Keep, Change::Set),
        };
        self.store.save_scene_settings(&scene, change).await
    }

    /// The row's code, reused or created, tried again after a back-off while WeChat is
    /// busy.
    async fn make_code(&self, item: &BatchItem) -> Result<RowOutcome, Failure> {
        let mut back_offs = BACK_OFFS.iter();
        loop {
            match self.codes.batch_code(&self.wechat, &item.code).await {
                Ok((ticket, reused)) => {
                    return Ok(RowOutcome::Made {
                        reused,
                        url: ticket.url,
                        expires_at: ticket.expires_at.map(|t| t.unix_timestamp()),
                    });
                }
                Err(e) => match Failure::of(e) {
                    Failure::Retry(e) => match back_offs.next() {
                        Some(wait) => actix_web::rt::time::sleep(*wait).await,
                        None => return Err(Failure::stop(&e)),
                    },
                    other => return Err(other),
                },
            }
        }
    }
}

/// What a failed row means for its batch.
enum Failure {
    /// WeChat is busy or slow: try the row again after a back-off.
    Retry(CodeError),
    /// The database failed: leave the row to the next look.
    Paused(CodeError),
    /// Every later row would fail too.
    Stop {
        errcode: Option<i64>,
        message: String,
    },
}

impl Failure {
    fn of(e: CodeError) -> Self {
        match &e {
            CodeError::Upstream(upstream) => match upstream {
                UpstreamError::Rejected {
                    errcode: -1 | 45011,
                    ..
                }
                | UpstreamError::Timeout { .. }
                | UpstreamError::Unreachable { .. }
                | UpstreamError::BadStatus { .. } => Failure::Retry(e),
                _ => Failure::stop(&e),
            },
            CodeError::NotRecorded(_) | CodeError::Unknown(_) | CodeError::TokenUnshared(_) => {
                Failure::Paused(e)
            }
            CodeError::RateLimited { .. }
            | CodeError::ServerBusy { .. }
            | CodeError::Unrendered(_) => Failure::stop(&e),
        }
    }

    /// The batch stops at `e`: a message staff can act on, with WeChat's errcode.
    fn stop(e: &CodeError) -> Self {
        let errcode = match e {
            CodeError::Upstream(UpstreamError::Rejected { errcode, .. }) => Some(*errcode),
            _ => None,
        };
        let what = match errcode {
            Some(45009) => "WeChat's daily quota of new codes is used up".to_string(),
            Some(45029) => "The account holds the most permanent codes WeChat allows".to_string(),
            _ => e.to_string(),
        };
        let hint = errcode.and_then(errcode::hint).unwrap_or(
            "Codes made so far are kept; a new batch with the same rows reuses them and \
             makes the rest.",
        );
        Failure::Stop {
            errcode,
            message: format!("{what}. {hint}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_ids_are_32_lowercase_hex_digits() {
        let id = new_batch_id();

        assert!(is_batch_id(&id), "{id}");
        assert_ne!(id, new_batch_id());
        for bad in [
            "",
            "../etc",
            &id.to_uppercase(),
            &id[..31],
            &format!("{id}0"),
        ] {
            assert!(!is_batch_id(bad), "{bad}");
        }
    }
}
