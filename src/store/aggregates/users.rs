//! Who scanned: each scene's exact set of users per day, and each day's sketch of every
//! user who scanned (see `store::user_sets`). Stored events add their users to both, read
//! and written back once per write, whatever the number of events.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use sqlx::{Row, SqliteConnection};

use super::{day_of, json};
use crate::domain::{AccountEvent, EventKind};
use crate::store::user_sets::{PART_REGISTERS, Sketch, UserSet, user_hash};

/// Adds the users of the scans and follows from codes among `stored` to their scenes'
/// sets of the day, and those new to a scene's set to the day's sketch (a user already
/// in a set is already in the sketch). Rows are written back only when they changed.
pub(super) async fn count(
    connection: &mut SqliteConnection,
    stored: &[(i64, &AccountEvent)],
    offset_seconds: i64,
) -> Result<(), sqlx::Error> {
    let mut scanned: HashMap<(i64, &str), Vec<u64>> = HashMap::new();
    for (_, event) in stored {
        if event.kind != EventKind::Unsubscribe
            && let Some(scene) = &event.scene
        {
            scanned
                .entry((day_of(event.created_at, offset_seconds), scene))
                .or_default()
                .push(user_hash(&event.openid));
        }
    }
    if scanned.is_empty() {
        return Ok(());
    }
    let keys: Vec<(i64, &str)> = scanned.keys().copied().collect();
    let rows = sqlx::query(
        "SELECT s.day, s.scene, s.users FROM json_each(?1) AS k
         JOIN scene_day_users AS s ON s.day = k.value ->> 0 AND s.scene = k.value ->> 1",
    )
    .bind(json(&keys)?)
    .fetch_all(&mut *connection)
    .await?;
    let mut sets: HashMap<(i64, &str), UserSet> = HashMap::with_capacity(rows.len());
    for row in &rows {
        sets.insert(
            (row.try_get(0)?, row.try_get(1)?),
            UserSet::from_bytes(row.try_get(2)?),
        );
    }

    // (day, scene, users) of each set that grew, and the users new to a set by day.
    let mut grown = Vec::new();
    let mut new_by_day: HashMap<i64, Vec<u64>> = HashMap::new();
    for (key, hashes) in scanned {
        let set = sets.entry(key).or_default();
        let added = set.extend(hashes);
        if added.is_empty() {
            continue;
        }
        grown.push((key.0, key.1, set.to_bytes()));
        new_by_day.entry(key.0).or_default().extend(added);
    }
    if grown.is_empty() {
        return Ok(());
    }
    write_blobs(
        connection,
        "INSERT INTO scene_day_users (day, scene, users)
         SELECT value ->> 0, value ->> 1, substr(?2, value ->> 2, value ->> 3)
         FROM json_each(?1) WHERE true
         ON CONFLICT (day, scene) DO UPDATE SET users = excluded.users",
        &grown,
    )
    .await?;
    count_in_sketches(connection, new_by_day).await
}

/// Adds users to their days' sketches, writing back the parts that changed.
async fn count_in_sketches(
    connection: &mut SqliteConnection,
    new_by_day: HashMap<i64, Vec<u64>>,
) -> Result<(), sqlx::Error> {
    let days: Vec<i64> = new_by_day.keys().copied().collect();
    let rows = sqlx::query(
        "SELECT day, part, registers FROM day_users
         WHERE day IN (SELECT value FROM json_each(?1))",
    )
    .bind(json(&days)?)
    .fetch_all(&mut *connection)
    .await?;
    let mut sketches: HashMap<i64, Sketch> = HashMap::with_capacity(days.len());
    for row in &rows {
        let part: i64 = row.try_get(1)?;
        sketches
            .entry(row.try_get(0)?)
            .or_default()
            .merge_part(part as usize, row.try_get(2)?);
    }
    // (day, part, registers) of each part that changed.
    let mut changed = Vec::new();
    for (day, hashes) in new_by_day {
        let sketch = sketches.entry(day).or_default();
        let parts: BTreeSet<usize> = hashes
            .into_iter()
            .filter(|&hash| sketch.insert(hash))
            .map(|hash| Sketch::register_of(hash).0 / PART_REGISTERS)
            .collect();
        for part in parts {
            changed.push((day, part, sketch.part(part).to_vec()));
        }
    }
    write_blobs(
        connection,
        "INSERT INTO day_users (day, part, registers)
         SELECT value ->> 0, value ->> 1, substr(?2, value ->> 2, value ->> 3)
         FROM json_each(?1) WHERE true
         ON CONFLICT (day, part) DO UPDATE SET registers = excluded.registers",
        &changed,
    )
    .await
}

/// Runs `upsert` on `rows` (two keys and the bytes to store each), all in one statement:
/// the keys go as JSON (`?1`, read with `json_each`: `[key, key, start, length]` a row), and
/// every row's bytes one after the other as one blob (`?2`), of which each row takes its
/// slice with `substr` (1-based, in bytes for a blob). JSON carries no bytes: sent as hex,
/// encoding and decoding them took a tenth of the callback's CPU time. Nothing to write, no
/// statement.
async fn write_blobs<K: Serialize, L: Serialize>(
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

/// Rows of sets or sketches written by one statement of [`rebuild`].
const REBUILT_PER_STATEMENT: usize = 2_000;

/// The users' sets and sketches from the raw scans. Holds 8 bytes per scan in memory while
/// it reads them (80 MB for ten million).
pub(super) async fn rebuild(
    connection: &mut SqliteConnection,
    offset_seconds: i64,
) -> Result<(), sqlx::Error> {
    use futures_util::TryStreamExt;

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
    // A few thousand rows a statement: a statement per row (a trip to SQLite's thread
    // each) was a tenth of a rebuild's time at a million events. Each group's bytes are
    // copied just before they are written, so that they are never held twice at once.
    let mut sets = by_scene_day.into_iter().peekable();
    while sets.peek().is_some() {
        let rows: Vec<_> = sets
            .by_ref()
            .take(REBUILT_PER_STATEMENT)
            .map(|((day, scene), hashes)| (day, scene, UserSet::from_hashes(hashes).to_bytes()))
            .collect();
        write_blobs(
            connection,
            "INSERT INTO scene_day_users (day, scene, users)
             SELECT value ->> 0, value ->> 1, substr(?2, value ->> 2, value ->> 3)
             FROM json_each(?1)",
            &rows,
        )
        .await?;
    }
    let parts: Vec<_> = by_day
        .iter()
        .flat_map(|(day, sketch)| {
            (0..Sketch::parts()).map(move |part| (*day, part, sketch.part(part).to_vec()))
        })
        .collect();
    for rows in parts.chunks(REBUILT_PER_STATEMENT) {
        write_blobs(
            connection,
            "INSERT INTO day_users (day, part, registers)
             SELECT value ->> 0, value ->> 1, substr(?2, value ->> 2, value ->> 3)
             FROM json_each(?1)",
            rows,
        )
        .await?;
    }
    Ok(())
}
