//! The statistics aggregates (`migrations/0003_statistics_aggregates.sql`), kept in the
//! same transaction as each stored event, so that a committed event is always counted and
//! pages never recount the raw events.
//!
//! Events may arrive in any order (a retried push, an import of last year's history after
//! today's pushes): each new event changes only the rows it touches, and a user's follows
//! are put right from that user's own raw events, which are few. [`rebuild`] computes the
//! same from all raw events at once.
//!
//! The rules, for one user's events ordered by time (ties between follows of the same
//! second by the order they were stored):
//! - each `subscribe` starts a follow; it is *lost* when an `unsubscribe` comes at or after
//!   it and before the user's next follow, at any time up to now; that first unfollow's
//!   time is kept;
//! - an `unsubscribe` belongs to the user's latest follow at or before it.

use sqlx::{Row, SqliteConnection};

use super::user_sets::{PART_REGISTERS, Sketch, UserSet, user_hash};
use crate::domain::{AccountEvent, EventKind};

pub const SECONDS_PER_DAY: i64 = 86_400;

/// The day number of Unix time `at` in an offset of `offset_seconds`: day `n` starts at
/// `n * 86400 - offset_seconds`. Integer division as SQLite does it, so that the writer
/// and [`rebuild`] agree.
pub fn day_of(at: i64, offset_seconds: i64) -> i64 {
    (at + offset_seconds) / SECONDS_PER_DAY
}

/// A follow, as the aggregates know it.
struct Follow {
    event_id: i64,
    followed_at: i64,
    scene: Option<String>,
    unfollowed_at: Option<i64>,
}

/// Counts `event`, just stored as row `event_id` of `scan_events`.
pub(super) async fn count_event(
    connection: &mut SqliteConnection,
    event_id: i64,
    event: &AccountEvent,
    offset_seconds: i64,
) -> Result<(), sqlx::Error> {
    let day = day_of(event.created_at, offset_seconds);
    if event.kind != EventKind::Unsubscribe
        && let Some(scene) = &event.scene
    {
        count_user(connection, scene, day, &event.openid).await?;
    }
    match event.kind {
        EventKind::Scan => {
            if let Some(scene) = &event.scene {
                count_scan(connection, scene, day, event.created_at, 0).await?;
            }
        }
        EventKind::Subscribe => {
            match &event.scene {
                Some(scene) => count_scan(connection, scene, day, event.created_at, 1).await?,
                None => count_account_day(connection, day, 1, 0).await?,
            }
            follow_added(connection, event_id, event, offset_seconds).await?;
        }
        EventKind::Unsubscribe => {
            count_account_day(connection, day, 0, 1).await?;
            unfollow_added(connection, &event.openid, event.created_at, offset_seconds).await?;
        }
    }
    Ok(())
}

async fn count_scan(
    connection: &mut SqliteConnection,
    scene: &str,
    day: i64,
    at: i64,
    new_followers: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO scene_days (scene, day, scans, new_followers, last_scan)
         VALUES (?1, ?2, 1, ?3, ?4)
         ON CONFLICT (scene, day) DO UPDATE SET
             scans = scans + 1,
             new_followers = new_followers + excluded.new_followers,
             last_scan = MAX(COALESCE(last_scan, 0), excluded.last_scan)",
    )
    .bind(scene)
    .bind(day)
    .bind(new_followers)
    .bind(at)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Adds the user who scanned to the scene's set of the day and to the day's sketch, each
/// written back only when it changed (a user already in the scene's set is already in the
/// sketch).
async fn count_user(
    connection: &mut SqliteConnection,
    scene: &str,
    day: i64,
    openid: &str,
) -> Result<(), sqlx::Error> {
    let hash = user_hash(openid);
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT users FROM scene_day_users WHERE day = ?1 AND scene = ?2")
            .bind(day)
            .bind(scene)
            .fetch_optional(&mut *connection)
            .await?;
    let mut users = stored.map_or_else(UserSet::default, |b| UserSet::from_bytes(&b));
    if !users.insert(hash) {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO scene_day_users (day, scene, users) VALUES (?1, ?2, ?3)
         ON CONFLICT (day, scene) DO UPDATE SET users = excluded.users",
    )
    .bind(day)
    .bind(scene)
    .bind(users.to_bytes())
    .execute(&mut *connection)
    .await?;

    let (register, rank) = Sketch::register_of(hash);
    let part = (register / PART_REGISTERS) as i64;
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT registers FROM day_users WHERE day = ?1 AND part = ?2")
            .bind(day)
            .bind(part)
            .fetch_optional(&mut *connection)
            .await?;
    let mut registers = stored.unwrap_or_else(|| vec![0; PART_REGISTERS]);
    match registers.get_mut(register % PART_REGISTERS) {
        Some(kept) if *kept < rank => *kept = rank,
        _ => return Ok(()),
    }
    sqlx::query(
        "INSERT INTO day_users (day, part, registers) VALUES (?1, ?2, ?3)
         ON CONFLICT (day, part) DO UPDATE SET registers = excluded.registers",
    )
    .bind(day)
    .bind(part)
    .bind(registers)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

async fn count_account_day(
    connection: &mut SqliteConnection,
    day: i64,
    other_follows: i64,
    unfollows: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO account_days (day, other_follows, unfollows) VALUES (?1, ?2, ?3)
         ON CONFLICT (day) DO UPDATE SET
             other_follows = other_follows + excluded.other_follows,
             unfollows = unfollows + excluded.unfollows",
    )
    .bind(day)
    .bind(other_follows)
    .bind(unfollows)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// A new follow: it takes the unfollow the user's previous follow had, if that unfollow
/// came after it, and is lost if an unfollow comes before the user's next follow.
async fn follow_added(
    connection: &mut SqliteConnection,
    event_id: i64,
    event: &AccountEvent,
    offset_seconds: i64,
) -> Result<(), sqlx::Error> {
    let (openid, at) = (event.openid.as_str(), event.created_at);
    sqlx::query(
        "INSERT INTO follows (event_id, openid, followed_at, scene, unfollowed_at)
         VALUES (?1, ?2, ?3, ?4, NULL)",
    )
    .bind(event_id)
    .bind(openid)
    .bind(at)
    .bind(event.scene.as_deref())
    .execute(&mut *connection)
    .await?;

    let previous = sqlx::query(
        "SELECT event_id, followed_at, scene, unfollowed_at FROM follows
         WHERE openid = ?1 AND (followed_at < ?2 OR (followed_at = ?2 AND event_id < ?3))
         ORDER BY followed_at DESC, event_id DESC LIMIT 1",
    )
    .bind(openid)
    .bind(at)
    .bind(event_id)
    .fetch_optional(&mut *connection)
    .await?
    .map(|row| follow_from(&row))
    .transpose()?;
    // The previous follow's first unfollow, if it is not before this follow, now belongs
    // to this one: the previous follow has no unfollow before its next follow.
    if let Some(previous) = previous
        && previous.unfollowed_at.is_some_and(|u| u >= at)
    {
        set_unfollowed(connection, &previous, None, offset_seconds).await?;
    }

    let next_follow: Option<i64> = sqlx::query_scalar(
        "SELECT followed_at FROM follows
         WHERE openid = ?1 AND (followed_at > ?2 OR (followed_at = ?2 AND event_id > ?3))
         ORDER BY followed_at, event_id LIMIT 1",
    )
    .bind(openid)
    .bind(at)
    .bind(event_id)
    .fetch_optional(&mut *connection)
    .await?;
    let first_unfollow: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(created_at) FROM scan_events
         WHERE openid = ?1 AND event = 'unsubscribe' AND created_at >= ?2
           AND (?3 IS NULL OR created_at < ?3)",
    )
    .bind(openid)
    .bind(at)
    .bind(next_follow)
    .fetch_one(&mut *connection)
    .await?;
    if first_unfollow.is_some() {
        let follow = Follow {
            event_id,
            followed_at: at,
            scene: event.scene.as_deref().map(str::to_string),
            unfollowed_at: None,
        };
        set_unfollowed(connection, &follow, first_unfollow, offset_seconds).await?;
    }
    Ok(())
}

/// A new unfollow: the user's latest follow at or before it is lost, from then if it was
/// not already lost earlier.
async fn unfollow_added(
    connection: &mut SqliteConnection,
    openid: &str,
    at: i64,
    offset_seconds: i64,
) -> Result<(), sqlx::Error> {
    let follow = sqlx::query(
        "SELECT event_id, followed_at, scene, unfollowed_at FROM follows
         WHERE openid = ?1 AND followed_at <= ?2
         ORDER BY followed_at DESC, event_id DESC LIMIT 1",
    )
    .bind(openid)
    .bind(at)
    .fetch_optional(&mut *connection)
    .await?
    .map(|row| follow_from(&row))
    .transpose()?;
    match follow {
        Some(follow) if follow.unfollowed_at.is_none_or(|u| u > at) => {
            set_unfollowed(connection, &follow, Some(at), offset_seconds).await
        }
        // An unfollow of a follow never seen, or a second one: nothing more is lost.
        _ => Ok(()),
    }
}

/// Sets a follow's first unfollow, and its scene's count of lost follows on the follow's
/// day when it changes between lost and kept.
async fn set_unfollowed(
    connection: &mut SqliteConnection,
    follow: &Follow,
    unfollowed_at: Option<i64>,
    offset_seconds: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE follows SET unfollowed_at = ?2 WHERE event_id = ?1")
        .bind(follow.event_id)
        .bind(unfollowed_at)
        .execute(&mut *connection)
        .await?;
    let change = match (follow.unfollowed_at.is_some(), unfollowed_at.is_some()) {
        (false, true) => 1,
        (true, false) => -1,
        _ => return Ok(()),
    };
    if let Some(scene) = &follow.scene {
        sqlx::query("UPDATE scene_days SET lost = lost + ?3 WHERE scene = ?1 AND day = ?2")
            .bind(scene)
            .bind(day_of(follow.followed_at, offset_seconds))
            .bind(change)
            .execute(&mut *connection)
            .await?;
    }
    Ok(())
}

fn follow_from(row: &sqlx::sqlite::SqliteRow) -> Result<Follow, sqlx::Error> {
    Ok(Follow {
        event_id: row.try_get("event_id")?,
        followed_at: row.try_get("followed_at")?,
        scene: row.try_get("scene")?,
        unfollowed_at: row.try_get("unfollowed_at")?,
    })
}

/// The offset the aggregates were computed under, if they were.
pub(super) async fn counted_offset(
    connection: &mut SqliteConnection,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT utc_offset_seconds FROM stats_meta WHERE id = 1")
        .fetch_optional(&mut *connection)
        .await
}

/// Recomputes every aggregate from the raw events, in days of `offset_seconds`. Runs
/// inside the caller's transaction.
pub(super) async fn rebuild(
    connection: &mut SqliteConnection,
    offset_seconds: i64,
) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(
        "DELETE FROM follows; DELETE FROM scene_days; DELETE FROM account_days;
         DELETE FROM scene_day_users; DELETE FROM day_users;",
    )
    .execute(&mut *connection)
    .await?;
    let statements = [
        "INSERT INTO scene_days (scene, day, scans, new_followers, lost, last_scan)
         SELECT scene, (created_at + ?1) / 86400, COUNT(*), SUM(new_follower), 0, MAX(created_at)
         FROM scan_events WHERE scene IS NOT NULL
         GROUP BY 1, 2",
        "INSERT INTO account_days (day, other_follows, unfollows)
         SELECT (created_at + ?1) / 86400,
                SUM(event = 'subscribe' AND scene IS NULL), SUM(event = 'unsubscribe')
         FROM scan_events WHERE event IN ('subscribe', 'unsubscribe')
         GROUP BY 1",
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
        "INSERT INTO scene_days (scene, day, lost)
         SELECT scene, (followed_at + ?1) / 86400, COUNT(*)
         FROM follows WHERE scene IS NOT NULL AND unfollowed_at IS NOT NULL
         GROUP BY 1, 2
         ON CONFLICT (scene, day) DO UPDATE SET lost = excluded.lost",
        "INSERT INTO stats_meta (id, utc_offset_seconds) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET utc_offset_seconds = excluded.utc_offset_seconds",
    ];
    for statement in statements {
        sqlx::query(statement)
            .bind(offset_seconds)
            .execute(&mut *connection)
            .await?;
    }
    rebuild_user_sets(connection, offset_seconds).await
}

/// The users' sets and sketches from the raw scans. Holds 8 bytes per scan in memory while
/// it reads them (80 MB for ten million).
async fn rebuild_user_sets(
    connection: &mut SqliteConnection,
    offset_seconds: i64,
) -> Result<(), sqlx::Error> {
    use futures_util::TryStreamExt;
    use std::collections::HashMap;

    let mut by_scene_day: HashMap<(i64, String), Vec<u64>> = HashMap::new();
    let mut by_day: HashMap<i64, Sketch> = HashMap::new();
    {
        let mut scans = sqlx::query(
            "SELECT scene, (created_at + ?1) / 86400 AS day, openid FROM scan_events
             WHERE scene IS NOT NULL AND event != 'unsubscribe'",
        )
        .bind(offset_seconds)
        .fetch(&mut *connection);
        while let Some(row) = scans.try_next().await? {
            let (scene, day, openid): (String, i64, String) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            let hash = user_hash(&openid);
            by_scene_day.entry((day, scene)).or_default().push(hash);
            by_day.entry(day).or_default().insert(hash);
        }
    }
    for ((day, scene), hashes) in by_scene_day {
        sqlx::query("INSERT INTO scene_day_users (day, scene, users) VALUES (?1, ?2, ?3)")
            .bind(day)
            .bind(scene)
            .bind(UserSet::from_hashes(hashes).to_bytes())
            .execute(&mut *connection)
            .await?;
    }
    for (day, sketch) in by_day {
        for part in 0..Sketch::parts() {
            sqlx::query("INSERT INTO day_users (day, part, registers) VALUES (?1, ?2, ?3)")
                .bind(day)
                .bind(part as i64)
                .bind(sketch.part(part))
                .execute(&mut *connection)
                .await?;
        }
    }
    Ok(())
}
