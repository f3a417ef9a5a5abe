//! Scene settings (label and group) on PostgreSQL: the statements of `store::labels`, each
//! save in a transaction of its own.

use super::PgStore;
use crate::domain::{SceneKey, SettingsChange};
use crate::store::StoreError;
use crate::store::labels::{GROUP_OF_SCENE, LABEL_OF_SCENE, SceneSettings, write_settings};

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

    /// The label and group of `scene`, as stored now (by whichever replica saved them).
    pub(crate) async fn scene_settings(&self, scene: &str) -> Result<SceneSettings, StoreError> {
        let label = sqlx::query_scalar(LABEL_OF_SCENE)
            .bind(scene)
            .fetch_optional(&self.pool)
            .await?;
        let group = sqlx::query_scalar(GROUP_OF_SCENE)
            .bind(scene)
            .fetch_optional(&self.pool)
            .await?;
        Ok(SceneSettings { label, group })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Change, GroupName, SceneLabel};
    use crate::store::test_postgres::fresh_database;

    fn change(label: Change<SceneLabel>, group: Change<GroupName>) -> SettingsChange {
        SettingsChange { label, group }
    }

    #[actix_web::test]
    async fn settings_saved_by_one_replica_are_read_by_another() {
        let Some(url) = fresh_database("postgres settings").await else {
            return;
        };
        let (one, other) = (
            PgStore::open(&url, time::UtcOffset::UTC).await.unwrap(),
            PgStore::open(&url, time::UtcOffset::UTC).await.unwrap(),
        );
        let scene = SceneKey::parse("shop-12").unwrap();
        let label = || Change::to(SceneLabel::parse("上海店 海报").unwrap());
        let east = || Change::to(GroupName::parse("East").unwrap());

        one.save_scene_settings(&scene, change(label(), east()))
            .await
            .unwrap();
        let read = other.scene_settings("shop-12").await.unwrap();
        assert_eq!(read.label.as_deref(), Some("上海店 海报"));
        assert_eq!(read.group.as_deref(), Some("East"));

        // Keep the label, remove the group.
        other
            .save_scene_settings(&scene, change(Change::Keep, Change::Remove))
            .await
            .unwrap();
        let read = one.scene_settings("shop-12").await.unwrap();
        assert_eq!(read.label.as_deref(), Some("上海店 海报"));
        assert_eq!(read.group, None);

        one.save_scene_settings(&scene, change(Change::Remove, east()))
            .await
            .unwrap();
        let read = other.scene_settings("shop-12").await.unwrap();
        assert_eq!((read.label, read.group.as_deref()), (None, Some("East")));
        assert_eq!(
            other.scene_settings("never-saved").await.unwrap(),
            SceneSettings::default()
        );
    }
}
