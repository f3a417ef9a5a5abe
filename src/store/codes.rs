//! The inventory of created codes, and reuse of live ones after a restart.

use sqlx::query::Query;
use sqlx::{Database, Encode, Type};
use time::OffsetDateTime;

use super::writer::Job;
use super::{Store, StoreError, Writes};
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
fn undecodable(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
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
/// [`PERMANENT_CODE`] finds it); permanent codes, which have no expiry, come first.
pub(super) const LIVE_CODES: &str =
    "SELECT scene, scene_type, kind, expire_seconds, ticket, url, created_at, expires_at
     FROM codes WHERE kind = 'permanent' OR expires_at > $1
     ORDER BY expires_at ASC NULLS FIRST, id DESC";

/// The permanent code of scene `$1` of type `$2`, if any.
pub(super) const PERMANENT_CODE: &str =
    "SELECT ticket, url, expire_seconds, created_at, expires_at FROM codes
     WHERE scene = $1 AND scene_type = $2 AND kind = 'permanent'
     ORDER BY id LIMIT 1";

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

/// Adds code `code` with `ticket` to the inventory: `$1` to `$9`.
pub(super) const INSERT_CODE: &str = "INSERT INTO codes (scene, scene_type, kind, action_name, \
    expire_seconds, ticket, url, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

impl Store {
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
                self.postgres_write(database.record_code(code, ticket))
                    .await?;
            }
        }
        Ok(())
    }

    /// The permanent code created earlier for this scene, if any: one scene never spends a
    /// second of the account's 100,000 permanent codes.
    pub async fn permanent_code(&self, code: &CodeRequest) -> Result<Option<Ticket>, StoreError> {
        let record: Option<TicketRecord> = on_reader!(&self.reader, |pool| {
            sqlx::query_as(PERMANENT_CODE)
                .bind(code.scene.to_string())
                .bind(SceneType::of(&code.scene).as_str())
                .fetch_optional(pool)
                .await?
        });
        record.map(TicketRecord::ticket).transpose()
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
