//! Saving scene settings (label and group) on PostgreSQL: the statements of
//! `store::labels`, each save in a transaction of its own.

use super::PgStore;
use crate::domain::{SceneKey, SettingsChange};
use crate::store::StoreError;
use crate::store::labels::write_settings;

impl PgStore {
    /// Changes the label and the group of `scene`; returns once it is committed.
    pub(crate) async fn save_scene_settings(
        &self,
        scene: &SceneKey,
        change: SettingsChange,
    ) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin().await?;
        write_settings::<sqlx::Postgres>(&mut transaction, scene, &change).await?;
        transaction.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::{Change, GroupName, SceneKey, SceneLabel, SettingsChange};
    use crate::store::Store;
    use crate::store::labels::SceneSettings;
    use crate::store::test_postgres::fresh_database;

    fn change(label: Change<SceneLabel>, group: Change<GroupName>) -> SettingsChange {
        SettingsChange { label, group }
    }

    /// `store`'s settings of `scene` once they are `expected`, or the last read after the
    /// 2 seconds within which every replica must show a save.
    async fn settings_within_2s(
        store: &Store,
        scene: &str,
        expected: &SceneSettings,
    ) -> SceneSettings {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            let read = store.scene_settings(scene).await.unwrap();
            if read == *expected || std::time::Instant::now() > deadline {
                return read;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    #[actix_web::test]
    async fn settings_saved_by_one_replica_show_on_another_within_2_seconds() {
        let Some(url) = fresh_database("postgres settings").await else {
            return;
        };
        let (one, _one_watch) = Store::open(&url, time::UtcOffset::UTC).await.unwrap();
        let (other, _other_watch) = Store::open(&url, time::UtcOffset::UTC).await.unwrap();
        let scene = SceneKey::parse("shop-12").unwrap();
        let label = || Change::to(SceneLabel::parse("上海店 海报").unwrap());
        let east = || Change::to(GroupName::parse("East").unwrap());
        let settings = |label: Option<&str>, group: Option<&str>| SceneSettings {
            label: label.map(str::to_string),
            group: group.map(str::to_string),
        };
        // Each replica has read (and keeps) the scene's label before any save.
        assert_eq!(
            one.scene_settings("shop-12").await.unwrap(),
            SceneSettings::default()
        );
        assert_eq!(
            other.scene_settings("shop-12").await.unwrap(),
            SceneSettings::default()
        );
        let generation = other.label_generation();

        one.save_scene_settings(&scene, change(label(), east()))
            .await
            .unwrap();
        let expected = settings(Some("上海店 海报"), Some("East"));
        assert_eq!(
            settings_within_2s(&other, "shop-12", &expected).await,
            expected
        );
        // Pages rendered with the old label are redone.
        assert_ne!(other.label_generation(), generation);

        // Keep the label, remove the group.
        other
            .save_scene_settings(&scene, change(Change::Keep, Change::Remove))
            .await
            .unwrap();
        let expected = settings(Some("上海店 海报"), None);
        assert_eq!(
            settings_within_2s(&one, "shop-12", &expected).await,
            expected
        );

        one.save_scene_settings(&scene, change(Change::Remove, east()))
            .await
            .unwrap();
        let expected = settings(None, Some("East"));
        assert_eq!(
            settings_within_2s(&other, "shop-12", &expected).await,
            expected
        );
        assert_eq!(
            other.scene_settings("never-saved").await.unwrap(),
            SceneSettings::default()
        );
    }
}
