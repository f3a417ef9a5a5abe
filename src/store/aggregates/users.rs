//! Who scanned: each scene's exact set of users per day, and each day's sketch of every
//! user who scanned (see `store::user_sets`). Stored events add their users to both, read
//! and written back once per write, whatever the number of events.

use std::collections::{BTreeSet, HashMap};

use super::day_of;
use super::tables::AggregateTables;
use crate::domain::{AccountEvent, EventKind};
use crate::store::user_sets::{PART_REGISTERS, Sketch, UserSet, user_hash};

/// Adds the users of the scans and follows from codes among `stored` to their scenes'
/// sets of the day, and those new to a scene's set to the day's sketch (a user already
/// in a set is already in the sketch). Rows are written back only when they changed.
pub(super) async fn count(
    tables: &mut impl AggregateTables,
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
    // In the order of the key, as every writer takes the rows' locks.
    let mut keys: Vec<(i64, &str)> = scanned.keys().copied().collect();
    keys.sort_unstable();
    let stored_sets = tables.scene_day_sets(&keys).await?;
    let mut sets: HashMap<(i64, &str), UserSet> = HashMap::with_capacity(stored_sets.len());
    for (day, scene, users) in &stored_sets {
        sets.insert((*day, scene.as_str()), UserSet::from_bytes(users));
    }

    // (day, scene, users) of each set that grew, and the users new to a set by day.
    let mut grown = Vec::new();
    let mut new_by_day: HashMap<i64, Vec<u64>> = HashMap::new();
    for key in keys {
        let hashes = scanned.remove(&key).unwrap_or_default();
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
    tables.put_scene_day_sets(&grown).await?;
    count_in_sketches(tables, new_by_day).await
}

/// Adds users to their days' sketches, writing back the parts that changed.
async fn count_in_sketches(
    tables: &mut impl AggregateTables,
    new_by_day: HashMap<i64, Vec<u64>>,
) -> Result<(), sqlx::Error> {
    let mut days: Vec<i64> = new_by_day.keys().copied().collect();
    days.sort_unstable();
    let mut sketches: HashMap<i64, Sketch> = HashMap::with_capacity(days.len());
    for (day, part, registers) in tables.sketch_parts(&days).await? {
        sketches
            .entry(day)
            .or_default()
            .merge_part(usize::try_from(part).unwrap_or(usize::MAX), &registers);
    }
    // (day, part, registers) of each part that changed, in the order of the key.
    let mut changed = Vec::new();
    let mut new_by_day: Vec<(i64, Vec<u64>)> = new_by_day.into_iter().collect();
    new_by_day.sort_unstable_by_key(|(day, _)| *day);
    for (day, hashes) in new_by_day {
        let sketch = sketches.entry(day).or_default();
        let parts: BTreeSet<usize> = hashes
            .into_iter()
            .filter(|&hash| sketch.insert(hash))
            .map(|hash| Sketch::register_of(hash).0 / PART_REGISTERS)
            .collect();
        for part in parts {
            let stored_part = i64::try_from(part).unwrap_or(i64::MAX);
            changed.push((day, stored_part, sketch.part(part).to_vec()));
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    tables.put_sketch_parts(&changed).await
}

/// Rows of sets or sketches written by one statement of [`rebuild`].
const REBUILT_PER_STATEMENT: usize = 2_000;

/// The users' sets and sketches from the raw scans. Holds 8 bytes per scan in memory while
/// it reads them (80 MB for ten million).
pub(super) async fn rebuild(
    tables: &mut impl AggregateTables,
    offset_seconds: i64,
) -> Result<(), sqlx::Error> {
    let mut by_scene_day: HashMap<(i64, String), Vec<u64>> = HashMap::new();
    let mut by_day: HashMap<i64, Sketch> = HashMap::new();
    tables
        .for_each_scan(offset_seconds, |scene, day, openid| {
            let hash = user_hash(openid);
            by_scene_day.entry((day, scene)).or_default().push(hash);
            by_day.entry(day).or_default().insert(hash);
        })
        .await?;
    // A few thousand rows a statement: a statement per row (a trip to SQLite's thread
    // each) was a tenth of a rebuild's time at a million events. Each group's bytes are
    // copied just before they are written, so that they are never held twice at once.
    let mut sets = by_scene_day.into_iter().peekable();
    while sets.peek().is_some() {
        let (keys, hashes): (Vec<(i64, String)>, Vec<Vec<u64>>) =
            sets.by_ref().take(REBUILT_PER_STATEMENT).unzip();
        let rows: Vec<(i64, &str, Vec<u8>)> = keys
            .iter()
            .zip(hashes)
            .map(|((day, scene), hashes)| {
                (
                    *day,
                    scene.as_str(),
                    UserSet::from_hashes(hashes).to_bytes(),
                )
            })
            .collect();
        tables.put_scene_day_sets(&rows).await?;
    }
    let parts: Vec<_> = by_day
        .iter()
        .flat_map(|(day, sketch)| {
            (0..Sketch::parts()).map(move |part| {
                let stored_part = i64::try_from(part).unwrap_or(i64::MAX);
                (*day, stored_part, sketch.part(part).to_vec())
            })
        })
        .collect();
    for rows in parts.chunks(REBUILT_PER_STATEMENT) {
        tables.put_sketch_parts(rows).await?;
    }
    Ok(())
}
