//! Names staff give to scenes: a label each, and a group that several scenes share.

use std::future::ready;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use moka::ops::compute::Op;
use sqlx::{Database, Encode, Executor, IntoArguments, Type};

use super::writer::Job;
use super::{Store, StoreError, Writes, unix_now};
use crate::domain::{Change, SceneKey, SettingsChange};

/// A scene's settings as stored: none for a scene never configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SceneSettings {
    pub label: Option<String>,
    pub group: Option<String>,
}

/// Writes a change to a scene's settings, inside the caller's transaction (the SQLite
/// writer's, or one of its own on PostgreSQL): the same statements on either backend.
pub(super) async fn write_settings<DB>(
    connection: &mut DB::Connection,
    scene: &str,
    change: &SettingsChange,
) -> Result<(), sqlx::Error>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
{
    let label = match &change.label {
        Change::Keep => None,
        Change::Remove => Some(sqlx::query("DELETE FROM labels WHERE scene = $1").bind(scene)),
        Change::Set(label) => Some(
            sqlx::query(
                "INSERT INTO labels (scene, label, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (scene) DO UPDATE SET
                     label = excluded.label, updated_at = excluded.updated_at",
            )
            .bind(scene)
            .bind(label.as_str())
            .bind(unix_now()),
        ),
    };
    let group = match &change.group {
        Change::Keep => None,
        Change::Remove => {
            Some(sqlx::query("DELETE FROM scene_groups WHERE scene = $1").bind(scene))
        }
        Change::Set(group) => Some(
            sqlx::query(
                "INSERT INTO scene_groups (scene, group_name, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (scene) DO UPDATE SET
                     group_name = excluded.group_name, updated_at = excluded.updated_at",
            )
            .bind(scene)
            .bind(group.as_str())
            .bind(unix_now()),
        ),
    };
    for statement in [label, group].into_iter().flatten() {
        statement.execute(&mut *connection).await?;
    }
    sqlx::query(BUMP_SETTINGS_VERSION)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Tells other replicas that settings changed (see `migrations/*/0008_settings_version.sql`).
const BUMP_SETTINGS_VERSION: &str =
    "UPDATE settings_version SET version = version + 1 WHERE id = 1";

/// The current settings version.
pub(super) const SETTINGS_VERSION: &str = "SELECT version FROM settings_version WHERE id = 1";

/// The group of scene `$1`.
pub(super) const GROUP_OF_SCENE: &str = "SELECT group_name FROM scene_groups WHERE scene = $1";

/// The label of scene `$1`.
pub(super) const LABEL_OF_SCENE: &str = "SELECT label FROM labels WHERE scene = $1";

/// The label a change leaves, if it changes the label: what the label cache records.
pub(super) fn changed_label(change: &SettingsChange) -> Option<Option<String>> {
    match &change.label {
        Change::Keep => None,
        Change::Remove => Some(None),
        Change::Set(label) => Some(Some(label.as_str().to_string())),
    }
}

/// Labels as last read or written: every code page shows its scene's label, and this keeps
/// that off the database. On SQLite only this process writes labels, so it stays exact; on
/// PostgreSQL, saves by other replicas empty it within a second (`settings_version`). Cheap to
/// clone; the writer holds one to record saves in commit order.
#[derive(Clone)]
pub(super) struct LabelCache {
    labels: moka::future::Cache<String, Option<String>>,
    /// Bumped by every label change, so that pages rendered with an old label are redone.
    generation: Arc<AtomicU64>,
}

impl Default for LabelCache {
    fn default() -> Self {
        Self {
            labels: moka::future::Cache::new(100_000),
            generation: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl LabelCache {
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Records a committed save: under the key's lock, as a read filling the cache (see
    /// `keep_read`), then a new generation.
    pub(super) async fn saved(&self, scene: &str, label: Option<String>) {
        self.labels
            .entry_by_ref(scene)
            .and_compute_with(|_| ready(Op::Put(label)))
            .await;
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Forgets every label: another replica saved settings. A new generation, so that
    /// pages rendered with an old label are redone, and reads begun before are not kept.
    pub(super) async fn changed_elsewhere(&self) {
        self.labels.invalidate_all();
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Caches `label`, read from the database under generation `read_under`, unless a
    /// label was saved since: a read that began before a save may have found the old
    /// label, and must not put it back over the saved one (pages would show it until the
    /// next change). Saves bump the generation after caching under the same key lock, so
    /// either this runs first and the save overwrites it, or it finds the saved label.
    async fn keep_read(&self, scene: &str, label: &Option<String>, read_under: u64) {
        self.labels
            .entry_by_ref(scene)
            .and_compute_with(|cached| {
                let unchanged = cached.is_none() && self.generation() == read_under;
                ready(if unchanged {
                    Op::Put(label.clone())
                } else {
                    Op::Nop
                })
            })
            .await;
    }
}

impl Store {
    /// Changes the label and the group of `scene`. Returns once it is committed (and a new
    /// label in the cache: the writer records it there before answering). Only a valid key
    /// is written; reads take any text, and one that is no key finds no settings.
    pub async fn save_scene_settings(
        &self,
        scene: &SceneKey,
        change: SettingsChange,
    ) -> Result<(), StoreError> {
        match &self.writes {
            Writes::Sqlite(jobs) => {
                jobs.write(|done| Job::SceneSettings {
                    scene: scene.clone(),
                    change,
                    done,
                })
                .await?;
            }
            Writes::Postgres(database, _) => {
                let label = changed_label(&change);
                self.postgres_write(database.save_scene_settings(scene, change))
                    .await?;
                if let Some(label) = label {
                    self.labels.saved(scene, label).await;
                }
            }
        }
        Ok(())
    }

    /// The label and group of `scene`.
    pub async fn scene_settings(&self, scene: &str) -> Result<SceneSettings, StoreError> {
        let label = self.label(scene).await?;
        let group = on_reader!(&self.reader, |pool| {
            sqlx::query_scalar(GROUP_OF_SCENE)
                .bind(scene)
                .fetch_optional(pool)
                .await?
        });
        Ok(SceneSettings { label, group })
    }

    /// The label of `scene`, from memory after the first look-up.
    pub async fn label(&self, scene: &str) -> Result<Option<String>, StoreError> {
        if let Some(label) = self.labels.labels.get(scene).await {
            return Ok(label);
        }
        let read_under = self.label_generation();
        let label: Option<String> = on_reader!(&self.reader, |pool| {
            sqlx::query_scalar(LABEL_OF_SCENE)
                .bind(scene)
                .fetch_optional(pool)
                .await?
        });
        self.labels.keep_read(scene, &label, read_under).await;
        Ok(label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seven() -> SceneKey {
        SceneKey::parse("7").unwrap()
    }

    /// A change of the label alone.
    fn label(text: &str) -> SettingsChange {
        SettingsChange {
            label: Change::to(crate::domain::SceneLabel::parse(text).unwrap()),
            group: Change::Keep,
        }
    }

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("labels.db").display());
        let (store, _writer) = Store::open(&url, time::UtcOffset::UTC).await.unwrap();
        (dir, store)
    }

    #[actix_web::test]
    async fn a_label_read_before_a_save_does_not_replace_the_saved_one() {
        let (_dir, store) = store().await;
        store
            .save_scene_settings(&seven(), label("old"))
            .await
            .unwrap();
        store.labels.labels.invalidate("7").await;
        // A page's read: from the database, before the save below commits.
        let read_under = store.label_generation();
        let read = Some("old".to_string());

        store
            .save_scene_settings(&seven(), label("new"))
            .await
            .unwrap();
        store.labels.keep_read("7", &read, read_under).await;

        assert_eq!(store.label("7").await.unwrap().as_deref(), Some("new"));
    }

    #[actix_web::test]
    async fn nor_when_it_finishes_between_the_save_s_caching_and_its_new_generation() {
        let (_dir, store) = store().await;
        let read_under = store.label_generation();
        // The save's first step, under the key's lock; its generation is not bumped yet.
        store
            .labels
            .labels
            .insert("7".into(), Some("new".into()))
            .await;

        store
            .labels
            .keep_read("7", &Some("old".into()), read_under)
            .await;

        assert_eq!(
            store.labels.labels.get("7").await,
            Some(Some("new".to_string()))
        );
    }

    #[actix_web::test]
    async fn nor_when_the_saved_one_has_left_the_cache_meanwhile() {
        let (_dir, store) = store().await;
        store
            .save_scene_settings(&seven(), label("old"))
            .await
            .unwrap();
        let read_under = store.label_generation();
        let read = Some("old".to_string());

        store
            .save_scene_settings(&seven(), label("new"))
            .await
            .unwrap();
        store.labels.labels.invalidate("7").await;
        store.labels.keep_read("7", &read, read_under).await;

        assert_eq!(store.label("7").await.unwrap().as_deref(), Some("new"));
    }

    #[actix_web::test]
    async fn a_label_read_with_no_save_since_is_kept() {
        let (_dir, store) = store().await;
        store
            .save_scene_settings(&seven(), label("kept"))
            .await
            .unwrap();
        store.labels.labels.invalidate("7").await;

        assert_eq!(store.label("7").await.unwrap().as_deref(), Some("kept"));
        assert_eq!(
            store.labels.labels.get("7").await,
            Some(Some("kept".to_string()))
        );
    }
}
