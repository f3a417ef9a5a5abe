//! The statistics aggregates (`migrations/sqlite/0003_statistics_aggregates.sql`), kept in the
//! same transaction as the events they count, so that a committed event is always counted
//! and pages never recount the raw events.
//!
//! Events may arrive in any order (a retried push, an import of last year's history after
//! today's pushes): each write changes only the rows its events touch, and the follows of
//! the users it touches are worked out again from those users' own raw events, which are
//! few. A write is counted in a handful of set-based statements whatever its number of
//! events (each statement is a trip to the thread sqlx runs SQLite on, and a statement per
//! event kept an import of history to a few thousand events a second). [`rebuild`]
//! computes the same from all raw events at once.
//!
//! The rules, for one user's events ordered by time (ties between follows of the same
//! second by the order they were stored):
//! - each `subscribe` starts a follow; it is *lost* when an `unsubscribe` comes at or after
//!   it and before the user's next follow, at any time up to now; that first unfollow's
//!   time is kept;
//! - an `unsubscribe` belongs to the user's latest follow at or before it.

mod follows;
pub(crate) mod tables;
mod users;

use std::collections::HashMap;

use serde::Serialize;
use sqlx::SqliteConnection;

use tables::{AccountDayDelta, AggregateTables, SceneDayDelta};

use crate::domain::{AccountEvent, EventKind};

pub const SECONDS_PER_DAY: i64 = 86_400;

/// The windows of cohort retention, in days: D1, D7 and D30 count the new followers not
/// lost within that many days of following (`scene_days.lost_in_1d`, `_7d`, `_30d`).
pub const RETENTION_DAYS: [i64; 3] = [1, 7, 30];

/// Whether a follow at `followed_at` unfollowed at `unfollowed_at` was lost within `days`
/// days of following.
fn lost_within(days: i64, followed_at: i64, unfollowed_at: Option<i64>) -> bool {
    unfollowed_at.is_some_and(|at| at - followed_at < days * SECONDS_PER_DAY)
}

/// The day number of Unix time `at` in an offset of `offset_seconds`: day `n` starts at
/// `n * 86400 - offset_seconds`. Integer division as SQLite does it, so that the writer
/// and [`rebuild`] agree.
pub fn day_of(at: i64, offset_seconds: i64) -> i64 {
    (at + offset_seconds) / SECONDS_PER_DAY
}

/// Counts `stored`, events just stored as the given rows of `scan_events`, in the caller's
/// transaction.
pub(crate) async fn count_events(
    connection: &mut impl AggregateTables,
    stored: &[(i64, &AccountEvent)],
    offset_seconds: i64,
) -> Result<(), sqlx::Error> {
    if stored.is_empty() {
        return Ok(());
    }
    let mut days = DayCounts::default();
    for (_, event) in stored {
        days.count(event, offset_seconds);
    }
    follows::refresh(connection, stored, offset_seconds, &mut days).await?;
    days.write(connection).await?;
    users::count(connection, stored, offset_seconds).await
}

/// What a write adds to `scene_days` and `account_days`.
#[derive(Default)]
struct DayCounts {
    scenes: HashMap<(String, i64), SceneDay>,
    account: HashMap<i64, AccountDay>,
}

#[derive(Default)]
struct SceneDay {
    scans: i64,
    new_followers: i64,
    lost: i64,
    /// Lost within each of [`RETENTION_DAYS`] of following.
    lost_in: [i64; 3],
    last_scan: Option<i64>,
}

#[derive(Default)]
struct AccountDay {
    other_follows: i64,
    unfollows: i64,
}

impl DayCounts {
    fn count(&mut self, event: &AccountEvent, offset_seconds: i64) {
        let day = day_of(event.created_at, offset_seconds);
        match (event.kind, &event.scene) {
            (EventKind::Scan | EventKind::Subscribe, Some(scene)) => {
                let counts = self.scenes.entry((scene.to_string(), day)).or_default();
                counts.scans += 1;
                counts.new_followers += i64::from(event.kind == EventKind::Subscribe);
                counts.last_scan = counts.last_scan.max(Some(event.created_at));
            }
            (EventKind::Subscribe, None) => {
                self.account.entry(day).or_default().other_follows += 1;
            }
            (EventKind::Unsubscribe, _) => self.account.entry(day).or_default().unfollows += 1,
            // A scan whose key names no scene: stored, and counted nowhere.
            (EventKind::Scan, None) => {}
        }
    }

    /// A follow of `scene` at `followed_at` was first unfollowed at `was` and is now at
    /// `now` (`None`: still following): its day's losses move with it.
    fn unfollow_moved(
        &mut self,
        scene: &str,
        followed_at: i64,
        offset_seconds: i64,
        (was, now): (Option<i64>, Option<i64>),
    ) {
        let counts = self
            .scenes
            .entry((scene.to_string(), day_of(followed_at, offset_seconds)))
            .or_default();
        counts.lost += i64::from(now.is_some()) - i64::from(was.is_some());
        for (lost_in, days) in counts.lost_in.iter_mut().zip(RETENTION_DAYS) {
            *lost_in += i64::from(lost_within(days, followed_at, now))
                - i64::from(lost_within(days, followed_at, was));
        }
    }

    async fn write(&self, tables: &mut impl AggregateTables) -> Result<(), sqlx::Error> {
        if !self.scenes.is_empty() {
            // In the order of the key, as every writer takes the rows' locks.
            let mut rows: Vec<SceneDayDelta> = self
                .scenes
                .iter()
                .map(|((scene, day), c)| SceneDayDelta {
                    scene,
                    day: *day,
                    scans: c.scans,
                    new_followers: c.new_followers,
                    lost: c.lost,
                    lost_in: c.lost_in,
                    last_scan: c.last_scan,
                })
                .collect();
            rows.sort_by(|a, b| (a.scene, a.day).cmp(&(b.scene, b.day)));
            tables.add_scene_days(&rows).await?;
        }
        if !self.account.is_empty() {
            let mut rows: Vec<AccountDayDelta> = self
                .account
                .iter()
                .map(|(day, c)| AccountDayDelta {
                    day: *day,
                    other_follows: c.other_follows,
                    unfollows: c.unfollows,
                })
                .collect();
            rows.sort_by_key(|d| d.day);
            tables.add_account_days(&rows).await?;
        }
        Ok(())
    }
}

/// `value` as one JSON parameter: a whole write's rows go to SQLite in one statement and
/// are read back there with `json_each`.
fn json(value: &impl Serialize) -> Result<String, sqlx::Error> {
    serde_json::to_string(value).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// The offset the aggregates were computed under, if they were.
pub(crate) const COUNTED_OFFSET: &str = "SELECT utc_offset_seconds FROM stats_meta WHERE id = 1";

/// The offset the aggregates were computed under, if they were.
pub(super) async fn counted_offset(
    connection: &mut SqliteConnection,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(COUNTED_OFFSET)
        .fetch_optional(&mut *connection)
        .await
}

/// Recomputes every aggregate from the raw events, in days of `offset_seconds`. Runs
/// inside the caller's transaction. The statements are the same on both backends
/// (`COUNT(*) FILTER` rather than SQLite's sums of comparisons, which PostgreSQL refuses).
pub(crate) async fn rebuild(
    tables: &mut impl AggregateTables,
    offset_seconds: i64,
) -> Result<(), sqlx::Error> {
    let statements = [
        "DELETE FROM follows",
        "DELETE FROM scene_days",
        "DELETE FROM counted_scenes",
        "DELETE FROM account_days",
        "DELETE FROM scene_day_users",
        "DELETE FROM day_users",
        "INSERT INTO scene_days (scene, day, scans, new_followers, lost, last_scan)
         SELECT scene, (created_at + $1) / 86400, COUNT(*), COUNT(*) FILTER (WHERE new_follower = 1),
                0, MAX(created_at)
         FROM scan_events WHERE scene IS NOT NULL
         GROUP BY 1, 2",
        // Days with scans have their row already, from `scene_days`' trigger.
        "INSERT INTO account_days (day, other_follows, unfollows)
         SELECT (created_at + $1) / 86400,
                COUNT(*) FILTER (WHERE event = 'subscribe' AND scene IS NULL),
                COUNT(*) FILTER (WHERE event = 'unsubscribe')
         FROM scan_events WHERE event IN ('subscribe', 'unsubscribe')
         GROUP BY 1
         ON CONFLICT (day) DO UPDATE SET
             other_follows = excluded.other_follows, unfollows = excluded.unfollows",
        // Each follow's first unfollow before the user's next follow (the window gives the
        // next follow's time, in the order the writer uses: time, then storage order).
        "INSERT INTO follows (event_id, openid, followed_at, scene, unfollowed_at)
         SELECT f.id, f.openid, f.created_at, f.scene,
                (SELECT MIN(u.created_at) FROM scan_events u
                 WHERE u.openid = f.openid AND u.event = 'unsubscribe'
                   AND u.created_at >= f.created_at
                   AND (f.next_at IS NULL OR u.created_at < f.next_at))
         FROM (SELECT id, openid, created_at, scene,
                      LEAD(created_at) OVER (PARTITION BY openid ORDER BY created_at, id)
                          AS next_at
               FROM scan_events WHERE event = 'subscribe') f",
        "INSERT INTO scene_days (scene, day, lost, lost_in_1d, lost_in_7d, lost_in_30d)
         SELECT scene, (followed_at + $1) / 86400, COUNT(*),
                COUNT(*) FILTER (WHERE unfollowed_at - followed_at < 86400),
                COUNT(*) FILTER (WHERE unfollowed_at - followed_at < 7 * 86400),
                COUNT(*) FILTER (WHERE unfollowed_at - followed_at < 30 * 86400)
         FROM follows WHERE scene IS NOT NULL AND unfollowed_at IS NOT NULL
         GROUP BY 1, 2
         ON CONFLICT (scene, day) DO UPDATE SET
             lost = excluded.lost, lost_in_1d = excluded.lost_in_1d,
             lost_in_7d = excluded.lost_in_7d, lost_in_30d = excluded.lost_in_30d",
        "INSERT INTO stats_meta (id, utc_offset_seconds) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE SET utc_offset_seconds = excluded.utc_offset_seconds",
    ];
    for statement in statements {
        tables
            .execute_with_offset(statement, offset_seconds)
            .await?;
    }
    users::rebuild(tables, offset_seconds).await
}
