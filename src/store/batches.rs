//! Batches of codes in the database (`migrations/*/0012_batches.sql`): the job as staff
//! gave it, each row's outcome as soon as its code is recorded, and the lease of the
//! process working on it. Writes go through the SQLite writer, or a transaction of their
//! own on PostgreSQL, with the same statements.

use sqlx::{Database, Encode, Executor, IntoArguments, Type};

use super::codes::undecodable;
use super::writer::Job;
use super::{Store, StoreError, Writes, unix_now_ms};
use crate::domain::{BatchRow, CodeRequest, SceneType, StoredCode, StoredKind, UnknownStoredValue};

/// Where a batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchState {
    /// Stored, no row made yet.
    Queued,
    Running,
    /// Every row has an outcome.
    Done,
    /// Ended before every row was made: WeChat's daily quota or permanent-code cap, or an
    /// error no retry mends ([`BatchSummary::stop_reason`] says which).
    Stopped,
}

impl BatchState {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchState::Queued => "queued",
            BatchState::Running => "running",
            BatchState::Done => "done",
            BatchState::Stopped => "stopped",
        }
    }

    /// Whether rows may still be made.
    pub fn is_unfinished(self) -> bool {
        matches!(self, BatchState::Queued | BatchState::Running)
    }
}

impl TryFrom<&str> for BatchState {
    type Error = UnknownStoredValue;

    fn try_from(stored: &str) -> Result<Self, UnknownStoredValue> {
        [
            BatchState::Queued,
            BatchState::Running,
            BatchState::Done,
            BatchState::Stopped,
        ]
        .into_iter()
        .find(|state| state.as_str() == stored)
        .ok_or_else(|| UnknownStoredValue {
            column: "state",
            value: stored.chars().take(40).collect(),
        })
    }
}

/// What became of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowOutcome {
    /// Its code exists: made now, or `reused` (a live code for the scene and kind was
    /// recorded already).
    Made {
        reused: bool,
        /// The text the code encodes.
        url: String,
        /// Unix seconds, temporary codes only.
        expires_at: Option<i64>,
    },
    /// WeChat refused it.
    Failed {
        errcode: Option<i64>,
        message: String,
    },
}

/// A batch's progress, as its page and `GET /api/batches/{id}` show it.
#[derive(Debug, Clone)]
pub struct BatchSummary {
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    pub state: BatchState,
    pub total: u64,
    /// Rows whose code exists (made or reused).
    pub done: u64,
    pub reused: u64,
    pub stop_reason: Option<String>,
    /// The failed rows, at most [`SHOWN_FAILURES`].
    pub failures: Vec<FailedRow>,
}

/// Failed rows a summary lists at most: a batch stops at the first error no retry mends,
/// so more are rare.
pub const SHOWN_FAILURES: i64 = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRow {
    pub scene: String,
    pub errcode: Option<i64>,
    pub message: String,
}

/// One row of a stored batch.
#[derive(Debug, Clone)]
pub struct BatchItem {
    pub position: i64,
    pub code: CodeRequest,
    pub label: Option<String>,
    pub group: Option<String>,
    pub outcome: Option<RowOutcome>,
}

/// A write to the batch tables, in the writer's queue on SQLite.
#[derive(Debug)]
pub(super) enum BatchWrite {
    Create {
        id: String,
        created_at: i64,
        rows: Vec<BatchRow>,
    },
    Row {
        id: String,
        position: i64,
        outcome: RowOutcome,
    },
    State {
        id: String,
        state: BatchState,
        reason: Option<String>,
    },
}

/// Writes `write` inside the caller's transaction.
pub(super) async fn write_batch<DB>(
    connection: &mut DB::Connection,
    write: &BatchWrite,
) -> Result<(), sqlx::Error>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    match write {
        BatchWrite::Create {
            id,
            created_at,
            rows,
        } => {
            sqlx::query(
                "INSERT INTO batches (id, created_at, state, total) VALUES ($1, $2, 'queued', $3)",
            )
            .bind(id.as_str())
            .bind(*created_at)
            .bind(rows.len() as i64)
            .execute(&mut *connection)
            .await?;
            for (position, row) in rows.iter().enumerate() {
                let scene = row.code.scene.to_string();
                let lifetime = match row.code.kind {
                    crate::domain::Kind::Temporary(lifetime) => Some(i64::from(lifetime.seconds())),
                    crate::domain::Kind::Permanent => None,
                };
                sqlx::query(
                    "INSERT INTO batch_rows (batch_id, position, scene, scene_type, kind, \
                     expire_seconds, label, group_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(id.as_str())
                .bind(position as i64)
                .bind(scene.as_str())
                .bind(SceneType::of(&row.code.scene).as_str())
                .bind(StoredKind::from(row.code.kind).as_str())
                .bind(lifetime)
                .bind(row.label.as_ref().map(|l| l.as_str()))
                .bind(row.group.as_ref().map(|g| g.as_str()))
                .execute(&mut *connection)
                .await?;
            }
        }
        BatchWrite::Row {
            id,
            position,
            outcome,
        } => {
            let (name, url, expires_at, errcode, message) = match outcome {
                RowOutcome::Made {
                    reused,
                    url,
                    expires_at,
                } => (
                    if *reused { "reused" } else { "created" },
                    Some(url.as_str()),
                    *expires_at,
                    None,
                    None,
                ),
                RowOutcome::Failed { errcode, message } => {
                    ("failed", None, None, *errcode, Some(message.as_str()))
                }
            };
            sqlx::query(
                "UPDATE batch_rows SET outcome = $3, url = $4, expires_at = $5, errcode = $6, \
                 message = $7 WHERE batch_id = $1 AND position = $2",
            )
            .bind(id.as_str())
            .bind(*position)
            .bind(name)
            .bind(url)
            .bind(expires_at)
            .bind(errcode)
            .bind(message)
            .execute(&mut *connection)
            .await?;
        }
        BatchWrite::State { id, state, reason } => {
            // A finished batch stays as it finished: a replica working from an old list of
            // unfinished batches cannot set a stopped one running again.
            sqlx::query(
                "UPDATE batches SET state = $2, stop_reason = $3 \
                 WHERE id = $1 AND state IN ('queued', 'running')",
            )
            .bind(id.as_str())
            .bind(state.as_str())
            .bind(reason.as_deref())
            .execute(&mut *connection)
            .await?;
        }
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct BatchRecord {
    id: String,
    created_at: i64,
    state: String,
    total: i64,
    stop_reason: Option<String>,
}

#[derive(sqlx::FromRow)]
struct RowCounts {
    done: i64,
    reused: i64,
}

#[derive(sqlx::FromRow)]
struct FailedRecord {
    scene: String,
    errcode: Option<i64>,
    message: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ItemRecord {
    position: i64,
    scene: String,
    scene_type: String,
    kind: String,
    expire_seconds: Option<i64>,
    label: Option<String>,
    group_name: Option<String>,
    outcome: Option<String>,
    url: Option<String>,
    expires_at: Option<i64>,
    errcode: Option<i64>,
    message: Option<String>,
}

impl ItemRecord {
    fn item(self) -> Result<BatchItem, StoreError> {
        let code = CodeRequest::try_from(StoredCode {
            scene_type: SceneType::try_from(self.scene_type.as_str()).map_err(undecodable)?,
            scene: &self.scene,
            kind: StoredKind::try_from(self.kind.as_str()).map_err(undecodable)?,
            expire_seconds: self.expire_seconds,
        })
        .map_err(undecodable)?;
        let outcome = match self.outcome.as_deref() {
            None => None,
            Some("failed") => Some(RowOutcome::Failed {
                errcode: self.errcode,
                message: self.message.unwrap_or_default(),
            }),
            Some(made @ ("created" | "reused")) => Some(RowOutcome::Made {
                reused: made == "reused",
                url: self.url.unwrap_or_default(),
                expires_at: self.expires_at,
            }),
            Some(other) => {
                return Err(undecodable(UnknownStoredValue {
                    column: "outcome",
                    value: other.chars().take(40).collect(),
                }));
            }
        };
        Ok(BatchItem {
            position: self.position,
            code,
            label: self.label,
            group: self.group_name,
            outcome,
        })
    }
}

/// How long a process's lease on a batch lasts without being renewed: a replica that died
/// mid-batch leaves it to another within this.
pub const BATCH_LEASE_MS: i64 = 20_000;

impl Store {
    /// Stores a new batch of `rows` as `id`, queued; returns once it is committed.
    pub async fn create_batch(&self, id: &str, rows: &[BatchRow]) -> Result<(), StoreError> {
        self.write_batch(BatchWrite::Create {
            id: id.to_string(),
            created_at: super::unix_now(),
            rows: rows.to_vec(),
        })
        .await
    }

    /// Records what became of row `position` of batch `id`.
    pub async fn record_batch_row(
        &self,
        id: &str,
        position: i64,
        outcome: RowOutcome,
    ) -> Result<(), StoreError> {
        self.write_batch(BatchWrite::Row {
            id: id.to_string(),
            position,
            outcome,
        })
        .await
    }

    /// Moves batch `id` to `state`, with why it stopped.
    pub async fn set_batch_state(
        &self,
        id: &str,
        state: BatchState,
        reason: Option<String>,
    ) -> Result<(), StoreError> {
        self.write_batch(BatchWrite::State {
            id: id.to_string(),
            state,
            reason,
        })
        .await
    }

    async fn write_batch(&self, write: BatchWrite) -> Result<(), StoreError> {
        match &self.writes {
            Writes::Sqlite(jobs) => {
                jobs.write(|done| Job::Batch { write, done }).await?;
            }
            Writes::Postgres(database, _) => {
                self.postgres_write(async {
                    let mut transaction = database.pool().begin().await?;
                    write_batch::<sqlx::Postgres>(&mut transaction, &write).await?;
                    transaction.commit().await?;
                    Ok(())
                })
                .await?;
            }
        }
        Ok(())
    }

    /// Takes (or renews) this process's lease on batch `id`, unless another process holds
    /// a lease that has not run out or the batch is finished: one process works on a batch
    /// at a time. On SQLite, the only process, always taken.
    pub async fn lease_batch(&self, id: &str) -> Result<bool, StoreError> {
        let Writes::Postgres(database, _) = &self.writes else {
            return Ok(true);
        };
        let now = unix_now_ms();
        let taken = sqlx::query(
            "UPDATE batches SET runner = $2, runner_until = $3 WHERE id = $1 \
             AND state IN ('queued', 'running') \
             AND (runner IS NULL OR runner = $2 OR runner_until < $4)",
        )
        .bind(id)
        .bind(&self.instance)
        .bind(now + BATCH_LEASE_MS)
        .bind(now)
        .execute(database.pool())
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Gives up this process's leases on batches and its claims of codes (it is stopping,
    /// and a batch's row may have been cut short mid-create), so that another replica, or
    /// this one restarted, goes on at once rather than after the leases.
    pub async fn release_held_work(&self) -> Result<(), StoreError> {
        if let Writes::Postgres(database, _) = &self.writes {
            let mut transaction = database.pool().begin().await?;
            sqlx::query("UPDATE batches SET runner = NULL, runner_until = NULL WHERE runner = $1")
                .bind(&self.instance)
                .execute(&mut *transaction)
                .await?;
            sqlx::query("DELETE FROM code_claims WHERE holder = $1")
                .bind(&self.instance)
                .execute(&mut *transaction)
                .await?;
            transaction.commit().await?;
        }
        Ok(())
    }

    /// The batches with rows left to make, oldest first.
    pub async fn unfinished_batches(&self) -> Result<Vec<String>, StoreError> {
        Ok(on_reader!(&self.reader, |pool| {
            sqlx::query_scalar(
                "SELECT id FROM batches WHERE state IN ('queued', 'running') ORDER BY created_at, id",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// Batch `id`'s progress, if there is such a batch.
    pub async fn batch_summary(&self, id: &str) -> Result<Option<BatchSummary>, StoreError> {
        let record: Option<BatchRecord> = on_reader!(&self.reader, |pool| {
            sqlx::query_as(
                "SELECT id, created_at, state, total, stop_reason FROM batches WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        });
        let Some(record) = record else {
            return Ok(None);
        };
        let (counts, failed): (RowCounts, Vec<FailedRecord>) = on_reader!(&self.reader, |pool| {
            let counts = sqlx::query_as(
                "SELECT \
                   COUNT(CASE WHEN outcome IN ('created', 'reused') THEN 1 END) AS done, \
                   COUNT(CASE WHEN outcome = 'reused' THEN 1 END) AS reused \
                 FROM batch_rows WHERE batch_id = $1",
            )
            .bind(id)
            .fetch_one(pool)
            .await?;
            let failed = sqlx::query_as(
                "SELECT scene, errcode, message FROM batch_rows \
                 WHERE batch_id = $1 AND outcome = 'failed' ORDER BY position LIMIT $2",
            )
            .bind(id)
            .bind(SHOWN_FAILURES)
            .fetch_all(pool)
            .await?;
            (counts, failed)
        });
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(Some(BatchSummary {
            state: BatchState::try_from(record.state.as_str()).map_err(undecodable)?,
            id: record.id,
            created_at: record.created_at,
            total: count(record.total),
            done: count(counts.done),
            reused: count(counts.reused),
            stop_reason: record.stop_reason,
            failures: failed
                .into_iter()
                .map(|f| FailedRow {
                    scene: f.scene,
                    errcode: f.errcode,
                    message: f.message.unwrap_or_default(),
                })
                .collect(),
        }))
    }

    /// Every row of batch `id`, in order (at most [`crate::domain::MAX_BATCH_ROWS`]).
    pub async fn batch_items(&self, id: &str) -> Result<Vec<BatchItem>, StoreError> {
        let records: Vec<ItemRecord> = on_reader!(&self.reader, |pool| {
            sqlx::query_as(
                "SELECT position, scene, scene_type, kind, expire_seconds, label, group_name, \
                 outcome, url, expires_at, errcode, message \
                 FROM batch_rows WHERE batch_id = $1 ORDER BY position",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
        });
        records.into_iter().map(ItemRecord::item).collect()
    }
}
