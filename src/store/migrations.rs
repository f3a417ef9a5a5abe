//! The schema of each backend: `migrations/sqlite/` and `migrations/postgres/`, compiled in
//! and applied at start-up. Every change is a migration of the same version in both folders,
//! so that a database of either kind at version N holds the same tables.

use sqlx::migrate::Migrator;

/// SQLite's migrations, applied by the writer's connection at start-up.
pub static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");

/// PostgreSQL's. sqlx's Postgres migrator holds an advisory lock while it runs, so replicas
/// starting together on one database migrate it once, one after the other.
pub static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(migrator: &Migrator) -> Vec<(i64, String)> {
        migrator
            .iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect()
    }

    #[test]
    fn both_backends_have_the_same_migration_versions() {
        let sqlite = versions(&SQLITE);
        assert!(sqlite.len() >= 7, "SQLite's migrations: {sqlite:?}");
        assert_eq!(sqlite, versions(&POSTGRES));
    }

    /// Three replicas starting together on one new database: each runs the migrations, and
    /// the schema is there once; the triggers of 0007 keep the sums over all scenes.
    #[actix_web::test]
    async fn replicas_starting_together_migrate_postgres_once() {
        let Some(url) = crate::store::test_postgres::fresh_database("migrations").await else {
            return;
        };
        let pools: Vec<sqlx::PgPool> = futures_util::future::try_join_all((0..3).map(|_| {
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect(&url)
        }))
        .await
        .unwrap();
        futures_util::future::try_join_all(pools.iter().map(|pool| POSTGRES.run(pool)))
            .await
            .unwrap();
        let pool = &pools[0];
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(pool)
                .await
                .unwrap();
        let expected: Vec<i64> = POSTGRES.iter().map(|m| m.version).collect();
        assert_eq!(applied, expected);

        for (scene, day, scans) in [("a", 10, 3), ("b", 10, 4), ("a", 11, 5)] {
            sqlx::query(
                "INSERT INTO scene_days (scene, day, scans, new_followers) VALUES ($1, $2, $3, 1)
                 ON CONFLICT (scene, day) DO UPDATE SET scans = scene_days.scans + excluded.scans",
            )
            .bind(scene)
            .bind(day as i64)
            .bind(scans as i64)
            .execute(pool)
            .await
            .unwrap();
        }
        sqlx::query("UPDATE scene_days SET scans = scans + 10, lost = 1 WHERE scene = 'b'")
            .execute(pool)
            .await
            .unwrap();
        let days: Vec<(i64, i64, i64, i64)> =
            sqlx::query_as("SELECT day, scans, new_followers, lost FROM account_days ORDER BY day")
                .fetch_all(pool)
                .await
                .unwrap();
        assert_eq!(days, vec![(10, 17, 2, 1), (11, 5, 1, 0)]);
        let scenes: Vec<String> =
            sqlx::query_scalar("SELECT scene FROM counted_scenes ORDER BY scene")
                .fetch_all(pool)
                .await
                .unwrap();
        assert_eq!(scenes, ["a", "b"]);
    }
}
