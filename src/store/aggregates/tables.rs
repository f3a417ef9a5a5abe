//! The rows the aggregates read and write, and SQLite's statements for them. The
//! computation (`follows`, `users`, `DayCounts`) is the same on every backend; each
//! backend implements [`AggregateTables`] with its own SQL (PostgreSQL's is in
//! `store::postgres::aggregate_tables`).

use serde::Serialize;
use sqlx::SqliteConnection;

use super::json;

/// A follow or unfollow event of a user whose follows are worked out again, with what
/// `follows` held for it (follows only) before this write.
pub(crate) struct FollowEvent {
    pub openid: String,
    pub event_id: i64,
    pub at: i64,
    pub is_follow: bool,
    pub scene: Option<String>,
    /// `Some(unfollowed_at)` when `follows` has the follow's row already.
    pub stored: Option<Option<i64>>,
}

/// A [`FollowEvent`] as both backends' queries return it: user, event id, time, whether a
/// follow, scene, whether `follows` has it, and its first unfollow there.
pub(crate) type FollowEventRow = (String, i64, i64, bool, Option<String>, bool, Option<i64>);

impl From<FollowEventRow> for FollowEvent {
    fn from(row: FollowEventRow) -> Self {
        let (openid, event_id, at, is_follow, scene, stored, unfollowed_at) = row;
        FollowEvent {
            openid,
            event_id,
            at,
            is_follow,
            scene,
            stored: stored.then_some(unfollowed_at),
        }
    }
}

/// The follows and unfollows of the users `users_condition` selects (a condition on
/// `e.openid`, written for its backend), with what `follows` holds for each follow.
pub(crate) fn follow_events_query(users_condition: &str) -> String {
    format!(
        "SELECT e.openid, e.id, e.created_at, e.event = 'subscribe', e.scene,
                f.event_id IS NOT NULL, f.unfollowed_at
         FROM scan_events AS e LEFT JOIN follows AS f ON f.event_id = e.id
         WHERE {users_condition} AND e.event IN ('subscribe', 'unsubscribe')"
    )
}

/// A row of `follows`, new or with a new first unfollow.
pub(crate) struct FollowRow<'a> {
    pub event_id: i64,
    pub openid: &'a str,
    pub followed_at: i64,
    pub scene: Option<&'a str>,
    pub unfollowed_at: Option<i64>,
}

/// What a write adds to a scene's day in `scene_days`.
pub(crate) struct SceneDayDelta<'a> {
    pub scene: &'a str,
    pub day: i64,
    pub scans: i64,
    pub new_followers: i64,
    pub lost: i64,
    /// Lost within 1, 7 and 30 days of following.
    pub lost_in: [i64; 3],
    pub last_scan: Option<i64>,
}

/// What a write adds to a day of `account_days`.
pub(crate) struct AccountDayDelta {
    pub day: i64,
    pub other_follows: i64,
    pub unfollows: i64,
}

/// The statements the aggregates need, run inside the caller's transaction.
pub(crate) trait AggregateTables {
    /// Every follow and unfollow of `users`, with what `follows` holds for each follow.
    async fn follow_events(&mut self, users: &[&str]) -> Result<Vec<FollowEvent>, sqlx::Error>;

    /// Inserts the follows of `rows`, or sets their first unfollow.
    async fn put_follows(&mut self, rows: &[FollowRow<'_>]) -> Result<(), sqlx::Error>;

    /// Adds `rows` to `scene_days` (the triggers keep the sums per day).
    async fn add_scene_days(&mut self, rows: &[SceneDayDelta<'_>]) -> Result<(), sqlx::Error>;

    /// Adds `rows` to `account_days`.
    async fn add_account_days(&mut self, rows: &[AccountDayDelta]) -> Result<(), sqlx::Error>;

    /// The stored sets of users of `keys` (day, scene) that have one.
    async fn scene_day_sets(
        &mut self,
        keys: &[(i64, &str)],
    ) -> Result<Vec<(i64, String, Vec<u8>)>, sqlx::Error>;

    /// Stores the sets of `rows` (day, scene, set), replacing those stored.
    async fn put_scene_day_sets(
        &mut self,
        rows: &[(i64, &str, Vec<u8>)],
    ) -> Result<(), sqlx::Error>;

    /// The stored sketch parts of `days`: (day, part, registers).
    async fn sketch_parts(&mut self, days: &[i64])
    -> Result<Vec<(i64, i64, Vec<u8>)>, sqlx::Error>;

    /// Stores the sketch parts of `rows` (day, part, registers), replacing those stored.
    async fn put_sketch_parts(&mut self, rows: &[(i64, i64, Vec<u8>)]) -> Result<(), sqlx::Error>;

    /// Runs `statement`, written the same for every backend, with the UTC offset as `$1`
    /// where it uses one.
    async fn execute_with_offset(
        &mut self,
        statement: &str,
        offset_seconds: i64,
    ) -> Result<(), sqlx::Error>;

    /// Calls `each` with the scene, day (in `offset_seconds`) and user of every stored scan
    /// and follow from a code, read as a stream.
    async fn for_each_scan(
        &mut self,
        offset_seconds: i64,
        each: impl FnMut(String, i64, &str) + Send,
    ) -> Result<(), sqlx::Error>;
}

/// Every stored scan and follow from a code: scene, day in offset `$1`, user.
pub(crate) const SCANS_BY_DAY: &str =
    "SELECT scene, (created_at + $1) / 86400 AS day, openid FROM scan_events
     WHERE scene IS NOT NULL AND event != 'unsubscribe'";

/// SQLite: a write's rows go as one JSON parameter read with `json_each` (and bytes as
/// one blob sliced with `substr`, see [`write_blobs`]), a statement per kind of row
/// whatever the number of events: each statement is a trip to the thread sqlx runs SQLite
/// on.
impl AggregateTables for SqliteConnection {
    async fn follow_events(&mut self, users: &[&str]) -> Result<Vec<FollowEvent>, sqlx::Error> {
        let sql = follow_events_query("e.openid IN (SELECT value FROM json_each($1))");
        let rows: Vec<FollowEventRow> = sqlx::query_as(&sql)
            .bind(json(&users)?)
            .fetch_all(&mut *self)
            .await?;
        Ok(rows.into_iter().map(FollowEvent::from).collect())
    }

    async fn put_follows(&mut self, rows: &[FollowRow<'_>]) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO follows (event_id, openid, followed_at, scene, unfollowed_at)
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4
             FROM json_each($1) WHERE true
             ON CONFLICT (event_id) DO UPDATE SET unfollowed_at = excluded.unfollowed_at",
        )
        .bind(json(
            &rows
                .iter()
                .map(|f| {
                    (
                        f.event_id,
                        f.openid,
                        f.followed_at,
                        f.scene,
                        f.unfollowed_at,
                    )
                })
                .collect::<Vec<_>>(),
        )?)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn add_scene_days(&mut self, rows: &[SceneDayDelta<'_>]) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO scene_days (scene, day, scans, new_followers, lost, lost_in_1d,
                                     lost_in_7d, lost_in_30d, last_scan)
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3,
                    value -> 4 ->> 0, value -> 4 ->> 1, value -> 4 ->> 2, value -> 4 ->> 3,
                    value ->> 5
             FROM json_each($1) WHERE true
             ON CONFLICT (scene, day) DO UPDATE SET
                 scans = scans + excluded.scans,
                 new_followers = new_followers + excluded.new_followers,
                 lost = lost + excluded.lost,
                 lost_in_1d = lost_in_1d + excluded.lost_in_1d,
                 lost_in_7d = lost_in_7d + excluded.lost_in_7d,
                 lost_in_30d = lost_in_30d + excluded.lost_in_30d,
                 last_scan = MAX(COALESCE(last_scan, excluded.last_scan),
                                 COALESCE(excluded.last_scan, last_scan))",
        )
        .bind(json(
            &rows
                .iter()
                .map(|d| {
                    let [in_1d, in_7d, in_30d] = d.lost_in;
                    let lost = (d.lost, in_1d, in_7d, in_30d);
                    (d.scene, d.day, d.scans, d.new_followers, lost, d.last_scan)
                })
                .collect::<Vec<_>>(),
        )?)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn add_account_days(&mut self, rows: &[AccountDayDelta]) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO account_days (day, other_follows, unfollows)
             SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each($1) WHERE true
             ON CONFLICT (day) DO UPDATE SET
                 other_follows = other_follows + excluded.other_follows,
                 unfollows = unfollows + excluded.unfollows",
        )
        .bind(json(
            &rows
                .iter()
                .map(|d| (d.day, d.other_follows, d.unfollows))
                .collect::<Vec<_>>(),
        )?)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn scene_day_sets(
        &mut self,
        keys: &[(i64, &str)],
    ) -> Result<Vec<(i64, String, Vec<u8>)>, sqlx::Error> {
        sqlx::query_as(
            "SELECT s.day, s.scene, s.users FROM json_each($1) AS k
             JOIN scene_day_users AS s ON s.day = k.value ->> 0 AND s.scene = k.value ->> 1",
        )
        .bind(json(&keys)?)
        .fetch_all(&mut *self)
        .await
    }

    async fn put_scene_day_sets(
        &mut self,
        rows: &[(i64, &str, Vec<u8>)],
    ) -> Result<(), sqlx::Error> {
        write_blobs(
            self,
            "INSERT INTO scene_day_users (day, scene, users)
             SELECT value ->> 0, value ->> 1, substr($2, value ->> 2, value ->> 3)
             FROM json_each($1) WHERE true
             ON CONFLICT (day, scene) DO UPDATE SET users = excluded.users",
            rows,
        )
        .await
    }

    async fn sketch_parts(
        &mut self,
        days: &[i64],
    ) -> Result<Vec<(i64, i64, Vec<u8>)>, sqlx::Error> {
        sqlx::query_as(
            "SELECT day, part, registers FROM day_users
             WHERE day IN (SELECT value FROM json_each($1))",
        )
        .bind(json(&days)?)
        .fetch_all(&mut *self)
        .await
    }

    async fn execute_with_offset(
        &mut self,
        statement: &str,
        offset_seconds: i64,
    ) -> Result<(), sqlx::Error> {
        execute_with_offset::<sqlx::Sqlite>(self, statement, offset_seconds).await
    }

    async fn for_each_scan(
        &mut self,
        offset_seconds: i64,
        each: impl FnMut(String, i64, &str) + Send,
    ) -> Result<(), sqlx::Error> {
        for_each_scan::<sqlx::Sqlite>(self, offset_seconds, each).await
    }

    async fn put_sketch_parts(&mut self, rows: &[(i64, i64, Vec<u8>)]) -> Result<(), sqlx::Error> {
        write_blobs(
            self,
            "INSERT INTO day_users (day, part, registers)
             SELECT value ->> 0, value ->> 1, substr($2, value ->> 2, value ->> 3)
             FROM json_each($1) WHERE true
             ON CONFLICT (day, part) DO UPDATE SET registers = excluded.registers",
            rows,
        )
        .await
    }
}

/// [`AggregateTables::execute_with_offset`] on any backend's connection.
pub(crate) async fn execute_with_offset<DB>(
    connection: &mut DB::Connection,
    statement: &str,
    offset_seconds: i64,
) -> Result<(), sqlx::Error>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
{
    let query = sqlx::query(statement);
    // Statements that use no offset take no parameter.
    let query = if statement.contains("$1") {
        query.bind(offset_seconds)
    } else {
        query
    };
    query.execute(&mut *connection).await?;
    Ok(())
}

/// [`AggregateTables::for_each_scan`] on any backend's connection.
pub(crate) async fn for_each_scan<DB>(
    connection: &mut DB::Connection,
    offset_seconds: i64,
    mut each: impl FnMut(String, i64, &str) + Send,
) -> Result<(), sqlx::Error>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'r> (String, i64, String): sqlx::FromRow<'r, DB::Row>,
{
    use futures_util::TryStreamExt;

    let mut scans = sqlx::query_as::<DB, (String, i64, String)>(SCANS_BY_DAY)
        .bind(offset_seconds)
        .fetch(&mut *connection);
    while let Some((scene, day, openid)) = scans.try_next().await? {
        each(scene, day, &openid);
    }
    Ok(())
}

/// Runs `upsert` on `rows` (two keys and the bytes to store each), all in one statement:
/// the keys go as JSON (`$1`, read with `json_each`: `[key, key, start, length]` a row), and
/// every row's bytes one after the other as one blob (`$2`), of which each row takes its
/// slice with `substr` (1-based, in bytes for a blob). JSON carries no bytes: sent as hex,
/// encoding and decoding them took a tenth of the callback's CPU time. Nothing to write, no
/// statement.
pub(super) async fn write_blobs<K: Serialize, L: Serialize>(
    connection: &mut SqliteConnection,
    upsert: &str,
    rows: &[(K, L, Vec<u8>)],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut bytes = Vec::with_capacity(rows.iter().map(|(_, _, b)| b.len()).sum());
    let mut keys = Vec::with_capacity(rows.len());
    for (first, second, row_bytes) in rows {
        keys.push((first, second, bytes.len() + 1, row_bytes.len()));
        bytes.extend_from_slice(row_bytes);
    }
    sqlx::query(upsert)
        .bind(json(&keys)?)
        .bind(bytes)
        .execute(&mut *connection)
        .await?;
    Ok(())
}
