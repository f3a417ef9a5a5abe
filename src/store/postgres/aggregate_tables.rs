//! PostgreSQL's statements for the aggregates (`store::aggregates::tables`): a write's rows
//! go as one array per column, read with `unnest`, one statement per kind of row.

use sqlx::PgConnection;

use crate::store::aggregates::tables::{
    AccountDayDelta, AggregateTables, FollowEvent, FollowEventRow, FollowRow, SceneDayDelta,
    execute_with_offset, follow_events_query, for_each_scan,
};

impl AggregateTables for PgConnection {
    async fn follow_events(&mut self, users: &[&str]) -> Result<Vec<FollowEvent>, sqlx::Error> {
        let sql = follow_events_query("e.openid = ANY($1::text[])");
        let rows: Vec<FollowEventRow> = sqlx::query_as(&sql)
            .bind(users)
            .fetch_all(&mut *self)
            .await?;
        Ok(rows.into_iter().map(FollowEvent::from).collect())
    }

    async fn put_follows(&mut self, rows: &[FollowRow<'_>]) -> Result<(), sqlx::Error> {
        let column = |f: fn(&FollowRow<'_>) -> Option<i64>| rows.iter().map(f).collect::<Vec<_>>();
        let event_ids: Vec<i64> = rows.iter().map(|f| f.event_id).collect();
        let openids: Vec<&str> = rows.iter().map(|f| f.openid).collect();
        let followed_at: Vec<i64> = rows.iter().map(|f| f.followed_at).collect();
        let scenes: Vec<Option<&str>> = rows.iter().map(|f| f.scene).collect();
        sqlx::query(
            "INSERT INTO follows (event_id, openid, followed_at, scene, unfollowed_at)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[],
                                  $5::bigint[])
             ON CONFLICT (event_id) DO UPDATE SET unfollowed_at = excluded.unfollowed_at",
        )
        .bind(event_ids)
        .bind(openids)
        .bind(followed_at)
        .bind(scenes)
        .bind(column(|f| f.unfollowed_at))
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn add_scene_days(&mut self, rows: &[SceneDayDelta<'_>]) -> Result<(), sqlx::Error> {
        let column = |f: fn(&SceneDayDelta<'_>) -> i64| rows.iter().map(f).collect::<Vec<_>>();
        let scenes: Vec<&str> = rows.iter().map(|d| d.scene).collect();
        let last_scans: Vec<Option<i64>> = rows.iter().map(|d| d.last_scan).collect();
        sqlx::query(
            "INSERT INTO scene_days (scene, day, scans, new_followers, lost, lost_in_1d,
                                     lost_in_7d, lost_in_30d, last_scan)
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[],
                                  $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[],
                                  $9::bigint[])
             ON CONFLICT (scene, day) DO UPDATE SET
                 scans = scene_days.scans + excluded.scans,
                 new_followers = scene_days.new_followers + excluded.new_followers,
                 lost = scene_days.lost + excluded.lost,
                 lost_in_1d = scene_days.lost_in_1d + excluded.lost_in_1d,
                 lost_in_7d = scene_days.lost_in_7d + excluded.lost_in_7d,
                 lost_in_30d = scene_days.lost_in_30d + excluded.lost_in_30d,
                 last_scan = GREATEST(scene_days.last_scan, excluded.last_scan)",
        )
        .bind(scenes)
        .bind(column(|d| d.day))
        .bind(column(|d| d.scans))
        .bind(column(|d| d.new_followers))
        .bind(column(|d| d.lost))
        .bind(column(|d| d.lost_in[0]))
        .bind(column(|d| d.lost_in[1]))
        .bind(column(|d| d.lost_in[2]))
        .bind(last_scans)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn add_account_days(&mut self, rows: &[AccountDayDelta]) -> Result<(), sqlx::Error> {
        let column = |f: fn(&AccountDayDelta) -> i64| rows.iter().map(f).collect::<Vec<_>>();
        sqlx::query(
            "INSERT INTO account_days (day, other_follows, unfollows)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])
             ON CONFLICT (day) DO UPDATE SET
                 other_follows = account_days.other_follows + excluded.other_follows,
                 unfollows = account_days.unfollows + excluded.unfollows",
        )
        .bind(column(|d| d.day))
        .bind(column(|d| d.other_follows))
        .bind(column(|d| d.unfollows))
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn scene_day_sets(
        &mut self,
        keys: &[(i64, &str)],
    ) -> Result<Vec<(i64, String, Vec<u8>)>, sqlx::Error> {
        let days: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let scenes: Vec<&str> = keys.iter().map(|k| k.1).collect();
        sqlx::query_as(
            "SELECT s.day, s.scene, s.users
             FROM unnest($1::bigint[], $2::text[]) AS k(day, scene)
             JOIN scene_day_users AS s ON s.day = k.day AND s.scene = k.scene",
        )
        .bind(days)
        .bind(scenes)
        .fetch_all(&mut *self)
        .await
    }

    async fn put_scene_day_sets(
        &mut self,
        rows: &[(i64, &str, Vec<u8>)],
    ) -> Result<(), sqlx::Error> {
        let days: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let scenes: Vec<&str> = rows.iter().map(|r| r.1).collect();
        let users: Vec<&[u8]> = rows.iter().map(|r| r.2.as_slice()).collect();
        sqlx::query(
            "INSERT INTO scene_day_users (day, scene, users)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[])
             ON CONFLICT (day, scene) DO UPDATE SET users = excluded.users",
        )
        .bind(days)
        .bind(scenes)
        .bind(users)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn sketch_parts(
        &mut self,
        days: &[i64],
    ) -> Result<Vec<(i64, i64, Vec<u8>)>, sqlx::Error> {
        sqlx::query_as("SELECT day, part, registers FROM day_users WHERE day = ANY($1::bigint[])")
            .bind(days)
            .fetch_all(&mut *self)
            .await
    }

    async fn put_sketch_parts(&mut self, rows: &[(i64, i64, Vec<u8>)]) -> Result<(), sqlx::Error> {
        let days: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let parts: Vec<i64> = rows.iter().map(|r| r.1).collect();
        let registers: Vec<&[u8]> = rows.iter().map(|r| r.2.as_slice()).collect();
        sqlx::query(
            "INSERT INTO day_users (day, part, registers)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[])
             ON CONFLICT (day, part) DO UPDATE SET registers = excluded.registers",
        )
        .bind(days)
        .bind(parts)
        .bind(registers)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn execute_with_offset(
        &mut self,
        statement: &str,
        offset_seconds: i64,
    ) -> Result<(), sqlx::Error> {
        execute_with_offset::<sqlx::Postgres>(self, statement, offset_seconds).await
    }

    async fn for_each_scan(
        &mut self,
        offset_seconds: i64,
        each: impl FnMut(String, i64, &str) + Send,
    ) -> Result<(), sqlx::Error> {
        for_each_scan::<sqlx::Postgres>(self, offset_seconds, each).await
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    use crate::domain::{AccountEvent, EventKind, SceneKey};
    use crate::store::Store;
    use crate::store::postgres::PgStore;
    use crate::store::test_postgres::fresh_database;

    /// A month of 60 users' follows, re-follows, unfollows and scans of 5 scenes, each
    /// push delivered once or twice (a retry), shuffled.
    fn history() -> Vec<AccountEvent> {
        let mut rng = StdRng::seed_from_u64(14);
        let start = 1_700_000_000;
        let mut events = Vec::new();
        for user in 0..60 {
            let openid = format!("o-user-{user}");
            let mut at = start + rng.random_range(0..86_400 * 3);
            for _ in 0..rng.random_range(1..8) {
                at += rng.random_range(1..86_400 * 4);
                let scene = rng.random_range(0..6);
                let (kind, event_key) = match rng.random_range(0..10) {
                    0..=3 => (EventKind::Scan, scene.to_string()),
                    4..=6 if scene < 5 => (EventKind::Subscribe, format!("qrscene_{scene}")),
                    4..=6 => (EventKind::Subscribe, String::new()),
                    _ => (EventKind::Unsubscribe, String::new()),
                };
                let scene = match kind {
                    EventKind::Unsubscribe => None,
                    _ => SceneKey::parse(&scene.to_string())
                        .ok()
                        .filter(|_| scene < 5),
                };
                let event = AccountEvent {
                    kind,
                    openid: openid.clone(),
                    created_at: at,
                    event_key,
                    scene,
                    ticket: None,
                };
                if rng.random_range(0..5) == 0 {
                    events.push(event.clone());
                }
                events.push(event);
            }
        }
        events.shuffle(&mut rng);
        events
    }

    /// Every aggregate, as rows of text that do not depend on the order rows were stored
    /// in (follows by user and time, not by event id).
    async fn aggregates<'e, E>(executor: E) -> Vec<String>
    where
        E: sqlx::Executor<'e> + Copy,
        for<'r> (String,): sqlx::FromRow<'r, <E::Database as sqlx::Database>::Row>,
        for<'q> <E::Database as sqlx::Database>::Arguments<'q>:
            sqlx::IntoArguments<'q, E::Database>,
    {
        let queries = [
            "SELECT 'scene_days ' || scene || ' ' || day || ' ' || scans || ' ' || new_followers
                    || ' ' || lost || ' ' || lost_in_1d || ' ' || lost_in_7d || ' '
                    || lost_in_30d || ' ' || COALESCE(last_scan, -1) FROM scene_days",
            "SELECT 'account_days ' || day || ' ' || other_follows || ' ' || unfollows || ' '
                    || scans || ' ' || new_followers || ' ' || lost FROM account_days",
            "SELECT 'follows ' || openid || ' ' || followed_at || ' ' || COALESCE(scene, '-')
                    || ' ' || COALESCE(unfollowed_at, -1) FROM follows",
            "SELECT 'counted ' || scene FROM counted_scenes",
            "SELECT 'users ' || day || ' ' || scene || ' ' || length(users) FROM scene_day_users",
            "SELECT 'stats_meta ' || utc_offset_seconds FROM stats_meta",
        ];
        let mut rows = Vec::new();
        for query in queries {
            let found: Vec<(String,)> = sqlx::query_as(query).fetch_all(executor).await.unwrap();
            rows.extend(found.into_iter().map(|(row,)| row));
        }
        rows.sort();
        rows
    }

    /// The sets and sketches themselves, byte for byte; sketch parts of zeros (which a
    /// rebuild writes and counting leaves out) are as good as none.
    async fn blobs<'e, E>(executor: E) -> Vec<(String, Vec<u8>)>
    where
        E: sqlx::Executor<'e> + Copy,
        for<'r> (String, Vec<u8>): sqlx::FromRow<'r, <E::Database as sqlx::Database>::Row>,
        for<'q> <E::Database as sqlx::Database>::Arguments<'q>:
            sqlx::IntoArguments<'q, E::Database>,
    {
        let mut rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT 'users ' || day || ' ' || scene, users FROM scene_day_users
             UNION ALL SELECT 'sketch ' || day || ' ' || part, registers FROM day_users",
        )
        .fetch_all(executor)
        .await
        .unwrap();
        rows.retain(|(_, bytes)| bytes.iter().any(|&b| b != 0));
        rows.sort();
        rows
    }

    /// Asserts that two backends hold the same sets and sketches, naming those that differ
    /// (the bytes of a sketch are too many to print).
    fn same_blobs(postgres: Vec<(String, Vec<u8>)>, sqlite: Vec<(String, Vec<u8>)>) {
        let names =
            |rows: &[(String, Vec<u8>)]| rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&postgres), names(&sqlite));
        let differing: Vec<&String> = postgres
            .iter()
            .zip(&sqlite)
            .filter(|(p, s)| p.1 != s.1)
            .map(|(p, _)| &p.0)
            .collect();
        assert!(differing.is_empty(), "different bytes: {differing:?}");
    }

    #[actix_web::test]
    async fn three_replicas_on_postgres_count_the_same_aggregates_as_sqlite() {
        let Some(url) = fresh_database("postgres aggregates").await else {
            return;
        };
        let events = history();
        let dir = tempfile::tempdir().unwrap();
        let sqlite_url = format!("sqlite://{}", dir.path().join("same.db").display());
        let (sqlite, _writer) = Store::open(&sqlite_url, time::UtcOffset::UTC)
            .await
            .unwrap();
        for batch in events.chunks(37) {
            sqlite.store_events(batch.to_vec()).await.unwrap();
        }
        let replicas = futures_util::future::try_join_all(
            (0..3).map(|_| PgStore::open(&url, time::UtcOffset::UTC)),
        )
        .await
        .unwrap();
        // The batches spread over the replicas, all at once.
        futures_util::future::try_join_all(
            events
                .chunks(11)
                .zip(replicas.iter().cycle())
                .map(|(batch, replica)| replica.store_events(batch)),
        )
        .await
        .unwrap();

        let crate::store::Reader::Sqlite(sqlite_pool) = &sqlite.reader else {
            panic!("a SQLite store reads from SQLite");
        };
        let expected = aggregates(sqlite_pool).await;
        assert!(expected.len() > 100, "{expected:?}");
        let pool = &replicas[0].pool;
        assert_eq!(aggregates(pool).await, expected);
        same_blobs(blobs(pool).await, blobs(sqlite_pool).await);

        // And the same again from the raw events alone.
        replicas[1].rebuild_statistics().await.unwrap();
        assert_eq!(aggregates(pool).await, expected);
        same_blobs(blobs(pool).await, blobs(sqlite_pool).await);
    }
}
