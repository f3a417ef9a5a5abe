//! The inventory of created codes, and reuse of live ones after a restart.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::query::Query;
use sqlx::{Database, Encode, Type};
use time::OffsetDateTime;

use super::writer::Job;
use super::{Store, StoreError, Writes, unix_now_ms};
use crate::domain::{CodeRequest, Kind, SceneType, StoredCode, StoredKind, Ticket};

/// A code as listed on a scene's statistics page.
#[derive(Debug, Clone)]
pub struct CodeRow {
    pub scene_type: SceneType,
    pub kind: StoredKind,
    pub action_name: String,
    pub expire_seconds: Option<i64>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// Adds a newly created code to the inventory (inside the writer's transaction).
pub(super) async fn insert_code(
    tx: &mut sqlx::SqliteConnection,
    code: &CodeRequest,
    ticket: &Ticket,
) -> Result<(), sqlx::Error> {
    bind_code(sqlx::query(INSERT_CODE), code, ticket)
        .execute(tx)
        .await?;
    Ok(())
}

/// [`INSERT_CODE`] with its values bound, for either backend.
pub(super) fn bind_code<'q, DB>(
    insert: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    code: &CodeRequest,
    ticket: &'q Ticket,
) -> Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    String: Encode<'q, DB> + Type<DB>,
    &'q str: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
{
    insert
        .bind(code.scene.to_string())
        .bind(SceneType::of(&code.scene).as_str())
        .bind(StoredKind::from(code.kind).as_str())
        .bind(code.action_name())
        .bind(ticket.expire_seconds.map(i64::from))
        .bind(ticket.ticket.as_str())
        .bind(ticket.url.as_str())
        .bind(ticket.created_at.unix_timestamp())
        .bind(ticket.expires_at.map(OffsetDateTime::unix_timestamp))
}

/// A column whose value makes no sense to this version: a read error, like any other
/// value that does not decode.
pub(super) fn undecodable(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(Box::new(error)))
}

/// The columns of a code's ticket, as either backend returns them.
#[derive(sqlx::FromRow)]
pub(super) struct TicketRecord {
    ticket: String,
    url: String,
    expire_seconds: Option<i64>,
    created_at: i64,
    expires_at: Option<i64>,
}

impl TicketRecord {
    pub(super) fn ticket(self) -> Result<Ticket, StoreError> {
        let timestamp =
            |value: i64| OffsetDateTime::from_unix_timestamp(value).map_err(undecodable);
        Ok(Ticket {
            ticket: self.ticket,
            url: self.url,
            expire_seconds: self
                .expire_seconds
                .map(u32::try_from)
                .transpose()
                .map_err(undecodable)?,
            created_at: timestamp(self.created_at)?,
            expires_at: self.expires_at.map(timestamp).transpose()?,
        })
    }
}

/// A stored code with its ticket, as either backend returns it.
#[derive(sqlx::FromRow)]
pub(super) struct CodeRecord {
    scene: String,
    scene_type: String,
    kind: String,
    #[sqlx(flatten)]
    ticket: TicketRecord,
}

/// The codes of `records` that can still be shown, for the cache at start-up. Records are
/// in the order of [`LIVE_CODES`]: a later one replaces an earlier one of the same code.
pub(super) fn live_codes(
    records: Vec<CodeRecord>,
) -> Result<Vec<(CodeRequest, Ticket)>, StoreError> {
    let mut live = Vec::with_capacity(records.len());
    for record in records {
        let (scene, scene_type, kind) = (&record.scene, &record.scene_type, &record.kind);
        let lifetime = record.ticket.expire_seconds;
        let code = match (
            SceneType::try_from(scene_type.as_str()),
            StoredKind::try_from(kind.as_str()),
        ) {
            (Ok(scene_type), Ok(kind)) => CodeRequest::try_from(StoredCode {
                scene_type,
                scene,
                kind,
                expire_seconds: lifetime,
            })
            .ok(),
            _ => None,
        };
        let Some(code) = code else {
            log::warn!(
                "skipped a stored code that is no longer valid: scene {scene:?}, \
                 scene_type {scene_type:?}, kind {kind:?}, expire_seconds {lifetime:?}"
            );
            continue;
        };
        let ticket = record.ticket.ticket()?;
        let keep = match code.kind {
            Kind::Permanent => true,
            Kind::Temporary(_) => ticket
                .servable_for(OffsetDateTime::now_utc())
                .is_some_and(|left| !left.is_zero()),
        };
        if keep {
            live.push((code, ticket));
        }
    }
    Ok(live)
}

/// The codes that may still be live, with `$1` now. Later rows win when a code was created
/// more than once: the temporary one that lives longest, and the first permanent one (as
/// [`RECORDED_CODE`] finds it); permanent codes, which have no expiry, come first.
pub(super) const LIVE_CODES: &str =
    "SELECT scene, scene_type, kind, expire_seconds, ticket, url, created_at, expires_at
     FROM codes WHERE kind = 'permanent' OR expires_at > $1
     ORDER BY expires_at ASC NULLS FIRST, id DESC";

/// Every code of scene `$1`, newest first.
pub(super) const SCENE_CODES: &str =
    "SELECT scene_type, kind, action_name, expire_seconds, created_at, expires_at FROM codes
     WHERE scene = $1 ORDER BY created_at DESC, id DESC LIMIT 200";

/// A code of a scene's list, as either backend returns it.
#[derive(sqlx::FromRow)]
pub(super) struct SceneCodeRecord {
    scene_type: String,
    kind: String,
    action_name: String,
    expire_seconds: Option<i64>,
    created_at: i64,
    expires_at: Option<i64>,
}

impl TryFrom<SceneCodeRecord> for CodeRow {
    type Error = StoreError;

    fn try_from(record: SceneCodeRecord) -> Result<Self, StoreError> {
        Ok(CodeRow {
            scene_type: SceneType::try_from(record.scene_type.as_str()).map_err(undecodable)?,
            kind: StoredKind::try_from(record.kind.as_str()).map_err(undecodable)?,
            action_name: record.action_name,
            expire_seconds: record.expire_seconds,
            created_at: record.created_at,
            expires_at: record.expires_at,
        })
    }
}

/// The scenes with a permanent code. Bounded by WeChat's cap of 100,000 permanent codes.
const PERMANENT_CODES_USED: &str = "SELECT COUNT(*) FROM (SELECT DISTINCT scene_type, scene \
    FROM codes WHERE kind = 'permanent') AS permanent";

/// Temporary codes expiring after `$1` and by `$2` (Unix seconds), through `codes_by_expiry`.
const TEMPORARY_CODES_EXPIRING: &str = "SELECT COUNT(*) FROM codes \
    WHERE kind = 'temporary' AND expires_at > $1 AND expires_at <= $2";

/// Adds code `code` with `ticket` to the inventory: `$1` to `$9`.
pub(super) const INSERT_CODE: &str = "INSERT INTO codes (scene, scene_type, kind, action_name, \
    expire_seconds, ticket, url, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// The recorded code that a request for `$1` (scene), `$2` (scene type), `$3` (kind) and
/// `$4` (lifetime, temporary codes) may be answered with: the first permanent one, or the
/// temporary one of that lifetime that lives longest.
const RECORDED_CODE: &str = "SELECT ticket, url, expire_seconds, created_at, expires_at FROM codes
     WHERE scene = $1 AND scene_type = $2 AND kind = $3
       AND (kind = 'permanent' OR expire_seconds = $4)
     ORDER BY expires_at DESC NULLS FIRST, id LIMIT 1";

/// Takes code `$1`'s claim for holder `$2` until `$3` (Unix ms), unless another holder's
/// lease runs past `$4` (now): a row comes back when the claim is `$2`'s.
const CLAIM_CODE: &str = "INSERT INTO code_claims (code, holder, lease_until) VALUES ($1, $2, $3)
     ON CONFLICT (code) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until
     WHERE code_claims.holder = excluded.holder OR code_claims.lease_until < $4
     RETURNING holder";

/// Ends holder `$2`'s claim of code `$1`.
pub(super) const RELEASE_CLAIM: &str = "DELETE FROM code_claims WHERE code = $1 AND holder = $2";

/// How long a claim holds off other processes: longer than a `qrcode/create` may take
/// (the upstream timeout, 60 s at most, and one retry), short enough that a process that
/// died mid-create delays the code by no more.
pub const CLAIM_LEASE: std::time::Duration = std::time::Duration::from_secs(130);

/// How long a count of the permanent codes is shown before it is read again. Other
/// replicas' new codes show within this; this process's at once.
const PERMANENT_USED_FRESH_FOR: Duration = Duration::from_secs(5);

/// The count of permanent codes as last read, and when.
#[derive(Clone, Default)]
pub(super) struct PermanentUsed(Arc<Mutex<Option<(Instant, u64)>>>);

impl PermanentUsed {
    fn fresh(&self) -> Option<u64> {
        let kept = *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        kept.filter(|(read, _)| read.elapsed() < PERMANENT_USED_FRESH_FOR)
            .map(|(_, used)| used)
    }

    fn keep(&self, used: u64) {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((Instant::now(), used));
    }

    /// A permanent code was recorded: the next read counts again.
    fn forget(&self) {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }
}

/// What a process that needs a code not in its cache should do.
#[derive(Debug)]
pub enum Claim {
    /// Serve this code, recorded already (by this process earlier, or by another).
    Recorded(Ticket),
    /// Create it: the claim is this process's until it records the code or releases it.
    Ours,
    /// Another process is creating it: look again shortly.
    HeldElsewhere,
}

impl Store {
    /// What to do about `code`, missing from this process's cache. On SQLite, the only
    /// process: a permanent code recorded earlier, or create it (a temporary one missing
    /// from the cache is new, since live codes are loaded at start-up). On PostgreSQL,
    /// shared: a servable code any replica recorded, else the claim, checked again after
    /// it was taken (a replica may have recorded the code just before).
    pub async fn claim_code(&self, code: &CodeRequest) -> Result<Claim, StoreError> {
        let Writes::Postgres(database, _) = &self.writes else {
            if code.kind == Kind::Permanent
                && let Some(ticket) = self.recorded_code(code).await?
            {
                return Ok(Claim::Recorded(ticket));
            }
            return Ok(Claim::Ours);
        };
        if let Some(ticket) = self.recorded_code(code).await? {
            return Ok(Claim::Recorded(ticket));
        }
        let now = unix_now_ms();
        let lease_until = now + i64::try_from(CLAIM_LEASE.as_millis()).unwrap_or(i64::MAX);
        let claimed: Option<String> = sqlx::query_scalar(CLAIM_CODE)
            .bind(code.query_string())
            .bind(&self.instance)
            .bind(lease_until)
            .bind(now)
            .fetch_optional(database.pool())
            .await?;
        if claimed.is_none() {
            return Ok(Claim::HeldElsewhere);
        }
        if let Some(ticket) = self.recorded_code(code).await? {
            self.release_claim(code).await?;
            return Ok(Claim::Recorded(ticket));
        }
        Ok(Claim::Ours)
    }

    /// Ends this process's claim of `code` without recording it (its creation failed),
    /// so that another process may try at once rather than after the lease.
    pub async fn release_claim(&self, code: &CodeRequest) -> Result<(), StoreError> {
        if let Writes::Postgres(database, _) = &self.writes {
            sqlx::query(RELEASE_CLAIM)
                .bind(code.query_string())
                .bind(&self.instance)
                .execute(database.pool())
                .await?;
        }
        Ok(())
    }

    /// The recorded code `code` may be answered with, if it is still servable.
    pub async fn recorded_code(&self, code: &CodeRequest) -> Result<Option<Ticket>, StoreError> {
        let lifetime = match code.kind {
            Kind::Temporary(lifetime) => Some(i64::from(lifetime.seconds())),
            Kind::Permanent => None,
        };
        let record: Option<TicketRecord> = on_reader!(&self.reader, |pool| {
            sqlx::query_as(RECORDED_CODE)
                .bind(code.scene.to_string())
                .bind(SceneType::of(&code.scene).as_str())
                .bind(StoredKind::from(code.kind).as_str())
                .bind(lifetime)
                .fetch_optional(pool)
                .await?
        });
        let Some(ticket) = record.map(TicketRecord::ticket).transpose()? else {
            return Ok(None);
        };
        let servable = match code.kind {
            Kind::Permanent => true,
            Kind::Temporary(_) => ticket
                .servable_for(OffsetDateTime::now_utc())
                .is_some_and(|left| !left.is_zero()),
        };
        Ok(servable.then_some(ticket))
    }

    /// Adds a newly created code to the inventory; returns once it is committed.
    pub async fn record_code(&self, code: &CodeRequest, ticket: &Ticket) -> Result<(), StoreError> {
        match &self.writes {
            Writes::Sqlite(jobs) => {
                jobs.write(|done| Job::Code {
                    code: code.clone(),
                    ticket: ticket.clone(),
                    done,
                })
                .await?;
            }
            Writes::Postgres(database, _) => {
                self.postgres_write(database.record_code(code, ticket, &self.instance))
                    .await?;
            }
        }
        // After the commit: a count read meanwhile would keep the old number.
        if code.kind == Kind::Permanent {
            self.permanent_used.forget();
        }
        Ok(())
    }

    /// Every code that can still be shown (temporary ones with enough life left), to fill
    /// the cache at start-up: after that, a code missing from the cache is new, and the
    /// database need not be asked on every miss.
    pub async fn live_codes(&self) -> Result<Vec<(CodeRequest, Ticket)>, StoreError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let records: Vec<CodeRecord> = on_reader!(&self.reader, |pool| {
            sqlx::query_as(LIVE_CODES).bind(now).fetch_all(pool).await?
        });
        live_codes(records)
    }

    /// How many scenes have a permanent code in the inventory: what this service has used
    /// of the account's 100,000.
    /// Read at most once a [`PERMANENT_USED_FRESH_FOR`], and again after this process
    /// records a permanent code: the home page shows it, and counting up to 100,000 index
    /// entries on every view would cost more as codes are made.
    pub async fn permanent_codes_used(&self) -> Result<u64, StoreError> {
        if let Some(used) = self.permanent_used.fresh() {
            return Ok(used);
        }
        let used: i64 = on_reader!(&self.reader, |pool| {
            sqlx::query_scalar(PERMANENT_CODES_USED)
                .fetch_one(pool)
                .await?
        });
        let used = u64::try_from(used).unwrap_or(0);
        self.permanent_used.keep(used);
        Ok(used)
    }

    /// How many temporary codes expire between now and `within` from now: codes printed or
    /// shared that will soon stop scanning.
    pub async fn temporary_codes_expiring(&self, within: Duration) -> Result<u64, StoreError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let until = now.saturating_add(i64::try_from(within.as_secs()).unwrap_or(i64::MAX));
        let expiring: i64 = on_reader!(&self.reader, |pool| {
            sqlx::query_scalar(TEMPORARY_CODES_EXPIRING)
                .bind(now)
                .bind(until)
                .fetch_one(pool)
                .await?
        });
        Ok(u64::try_from(expiring).unwrap_or(0))
    }

    /// Every code created for `scene`, newest first.
    pub async fn codes_for_scene(&self, scene: &str) -> Result<Vec<CodeRow>, StoreError> {
        let records: Vec<SceneCodeRecord> = on_reader!(&self.reader, |pool| {
            sqlx::query_as(SCENE_CODES)
                .bind(scene)
                .fetch_all(pool)
                .await?
        });
        records.into_iter().map(CodeRow::try_from).collect()
    }
}
