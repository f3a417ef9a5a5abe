//! The inventory of created codes, and reuse of live ones after a restart.

use sqlx::Row;
use time::OffsetDateTime;

use super::{Store, StoreError};
use crate::domain::{CodeRequest, Kind, Scene};
use crate::wechat::Ticket;

/// A code as listed on a scene's statistics page.
#[derive(Debug, Clone)]
pub struct CodeRow {
    /// `id` or `str`.
    pub scene_type: String,
    pub kind: String,
    pub action_name: String,
    pub expire_seconds: Option<i64>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

fn scene_type(code: &CodeRequest) -> &'static str {
    match code.scene {
        Scene::Id(_) => "id",
        Scene::Str(_) => "str",
    }
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
        .bind(scene_type(code))
        .bind(code.kind.name())
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

impl Store {
    /// A code created earlier that can still be shown: any permanent code of the scene, or
    /// a temporary one of the same lifetime with enough life left. Saves quota after a
    /// restart and never spends a second permanent code on one scene.
    pub async fn reusable_code(&self, code: &CodeRequest) -> Result<Option<Ticket>, StoreError> {
        let scene = code.scene.to_string();
        let row = match code.kind {
            Kind::Permanent => {
                sqlx::query(
                    "SELECT ticket, url, expire_seconds, created_at, expires_at FROM codes
                     WHERE scene = ? AND scene_type = ? AND kind = 'permanent'
                     ORDER BY id LIMIT 1",
                )
                .bind(&scene)
                .bind(scene_type(code))
                .fetch_optional(&self.reader)
                .await?
            }
            Kind::Temporary(lifetime) => {
                let now = OffsetDateTime::now_utc().unix_timestamp();
                let must_outlive = now + Ticket::min_remaining(lifetime.seconds()).as_secs() as i64;
                sqlx::query(
                    "SELECT ticket, url, expire_seconds, created_at, expires_at FROM codes
                     WHERE scene = ? AND scene_type = ? AND kind = 'temporary'
                       AND expire_seconds = ? AND expires_at > ?
                     ORDER BY expires_at DESC LIMIT 1",
                )
                .bind(&scene)
                .bind(scene_type(code))
                .bind(lifetime.seconds())
                .bind(must_outlive)
                .fetch_optional(&self.reader)
                .await?
            }
        };
        let Some(row) = row else { return Ok(None) };
        let timestamp = |value: i64| {
            OffsetDateTime::from_unix_timestamp(value)
                .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))
        };
        let expires_at: Option<i64> = row.try_get("expires_at")?;
        Ok(Some(Ticket {
            ticket: row.try_get("ticket")?,
            url: row.try_get("url")?,
            expire_seconds: row.try_get("expire_seconds")?,
            created_at: timestamp(row.try_get("created_at")?)?,
            expires_at: expires_at.map(timestamp).transpose()?,
        }))
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
                    scene_type: row.try_get("scene_type")?,
                    kind: row.try_get("kind")?,
                    action_name: row.try_get("action_name")?,
                    expire_seconds: row.try_get("expire_seconds")?,
                    created_at: row.try_get("created_at")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .collect()
    }

    /// How many permanent codes the inventory holds (an account may hold 100,000).
    pub async fn permanent_code_count(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM codes WHERE kind = 'permanent'")
                .fetch_one(&self.reader)
                .await?,
        )
    }
}
