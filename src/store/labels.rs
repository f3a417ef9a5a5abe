//! Names staff give to scenes.

use super::{Store, StoreError, unix_now};

/// Longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 100;

impl Store {
    /// Names `scene`; an empty label removes the name.
    pub async fn set_label(&self, scene: &str, label: &str) -> Result<(), StoreError> {
        if label.is_empty() {
            sqlx::query("DELETE FROM labels WHERE scene = ?")
                .bind(scene)
                .execute(&self.writer)
                .await?;
        } else {
            sqlx::query(
                "INSERT INTO labels (scene, label, updated_at) VALUES (?, ?, ?)
                 ON CONFLICT (scene) DO UPDATE SET label = excluded.label, updated_at = excluded.updated_at",
            )
            .bind(scene)
            .bind(label)
            .bind(unix_now())
            .execute(&self.writer)
            .await?;
        }
        let label = (!label.is_empty()).then(|| label.to_string());
        self.labels.insert(scene.to_string(), label).await;
        self.label_generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(())
    }

    /// The label of `scene`, from memory after the first look-up.
    pub async fn label(&self, scene: &str) -> Result<Option<String>, StoreError> {
        self.labels
            .try_get_with_by_ref(scene, async {
                sqlx::query_scalar("SELECT label FROM labels WHERE scene = ?")
                    .bind(scene)
                    .fetch_optional(&self.reader)
                    .await
            })
            .await
            .map_err(|e| StoreError::Shared(e.to_string()))
    }
}
