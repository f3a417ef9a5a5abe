//! The inventory of created codes, and reuse of live ones after a restart.

use sqlx::Row;
use time::OffsetDateTime;

use super::writer::Job;
use super::{Store, StoreError};
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
    const INSERT: &str = "INSERT INTO codes (scene, scene_type, kind, action_name, \
        expire_seconds, ticket, url, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
    sqlx::query(INSERT)
        .bind(code.scene.to_string())
        .bind(SceneType::of(&code.scene).as_str())
        .bind(StoredKind::from(code.kind).as_str())
        .bind(code.action_name())
        .bind(ticket.expire_seconds)
        .bind(&ticket.ticket)
        .bind(&ticket.url)
        .bind(ticket.created_at.unix_timestamp())
        .bind(ticket.expires_at.map(OffsetDateTime::unix_timestamp))
        .execute(tx)
        .await?;
    Ok(())
}

/// A column whose value makes no sense to this version: a read error, like any other
/// value that does not decode.
fn undecodable(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(Box::new(error)))
}

fn ticket_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Ticket, StoreError> {
    let timestamp = |value: i64| OffsetDateTime::from_unix_timestamp(value).map_err(undecodable);
    let expires_at: Option<i64> = row.try_get("expires_at")?;
    Ok(Ticket {
        ticket: row.try_get("ticket")?,
        url: row.try_get("url")?,
        expire_seconds: row.try_get("expire_seconds")?,
        created_at: timestamp(row.try_get("created_at")?)?,
        expires_at: expires_at.map(timestamp).transpose()?,
    })
}

impl Store {
    /// Adds a newly created code to the inventory; returns once it is committed.
    pub async fn record_code(&self, code: &CodeRequest, ticket: &Ticket) -> Result<(), StoreError> {
        self.jobs
            .write(|done| Job::Code {
                code: code.clone(),
                ticket: ticket.clone(),
                done,
            })
            .await?;
        Ok(())
    }

    /// The permanent code created earlier for this scene, if any: one scene never spends a
    /// second of the account's 100,000 permanent codes.
    pub async fn permanent_code(&self, code: &CodeRequest) -> Result<Option<Ticket>, StoreError> {
        let row = sqlx::query(
            "SELECT ticket, url, expire_seconds, created_at, expires_at FROM codes
             WHERE scene = ? AND scene_type = ? AND kind = 'permanent'
             ORDER BY id LIMIT 1",
        )
        .bind(code.scene.to_string())
        .bind(SceneType::of(&code.scene).as_str())
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(ticket_from_row).transpose()
    }

    /// Every code that can still be shown (temporary ones with enough life left), to fill
    /// the cache at start-up: after that, a code missing from the cache is new, and the
    /// database need not be asked on every miss.
    pub async fn live_codes(&self) -> Result<Vec<(CodeRequest, Ticket)>, StoreError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let rows = sqlx::query(
            // Later rows win when a code was created more than once: the temporary one that
            // lives longest, and the first permanent one (as `permanent_code` finds it).
            "SELECT scene, scene_type, kind, expire_seconds, ticket, url, created_at, expires_at
             FROM codes WHERE kind = 'permanent' OR expires_at > ?
             ORDER BY expires_at ASC, id DESC",
        )
        .bind(now)
        .fetch_all(&self.reader)
        .await?;
        let mut live = Vec::with_capacity(rows.len());
        for row in &rows {
            let scene: &str = row.try_get("scene")?;
            let scene_type: &str = row.try_get("scene_type")?;
            let kind: &str = row.try_get("kind")?;
            let lifetime: Option<i64> = row.try_get("expire_seconds")?;
            let code = match (SceneType::try_from(scene_type), StoredKind::try_from(kind)) {
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
            let ticket = ticket_from_row(row)?;
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

    /// Every code created for `scene`, newest first.
    pub async fn codes_for_scene(&self, scene: &str) -> Result<Vec<CodeRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT scene_type, kind, action_name, expire_seconds, created_at, expires_at FROM codes
             WHERE scene = ? ORDER BY created_at DESC, id DESC LIMIT 200",
        )
        .bind(scene)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(CodeRow {
                    scene_type: SceneType::try_from(row.try_get::<&str, _>("scene_type")?)
                        .map_err(undecodable)?,
                    kind: StoredKind::try_from(row.try_get::<&str, _>("kind")?)
                        .map_err(undecodable)?,
                    action_name: row.try_get("action_name")?,
                    expire_seconds: row.try_get("expire_seconds")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .collect()
    }
}
