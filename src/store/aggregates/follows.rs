//! Follow episodes: one row of `follows` per `subscribe`, with the user's first unfollow
//! after it and before their next follow. An event can change the episodes of its own
//! user only, and a user's follows and unfollows are few, so the users an event touches
//! have all their episodes worked out again from their raw events, whatever order those
//! arrived in. That is the same computation as [`super::rebuild`]'s, one user at a time.

use std::collections::{BTreeSet, HashMap};

use super::DayCounts;
use super::tables::{AggregateTables, FollowRow};
use crate::domain::{AccountEvent, EventKind};

/// A follow as worked out from the user's raw events.
struct Follow {
    event_id: i64,
    followed_at: i64,
    scene: Option<String>,
    unfollowed_at: Option<i64>,
    /// Its first unfollow as `follows` holds it, if it holds the follow yet.
    stored: Option<Option<i64>>,
}

/// Works out again the follows of every user with a follow or unfollow among `stored`,
/// writes those that changed, and moves in `days` the losses of each follow whose first
/// unfollow changed (on its scene's row for the day it followed).
pub(super) async fn refresh(
    tables: &mut impl AggregateTables,
    stored: &[(i64, &AccountEvent)],
    offset_seconds: i64,
    days: &mut DayCounts,
) -> Result<(), sqlx::Error> {
    let users: BTreeSet<&str> = stored
        .iter()
        .filter(|(_, e)| e.kind != EventKind::Scan)
        .map(|(_, e)| e.openid.as_str())
        .collect();
    if users.is_empty() {
        return Ok(());
    }
    let users: Vec<&str> = users.into_iter().collect();

    // Each user's follows and unfollows, and what `follows` held for each follow before
    // these events.
    let events = tables.follow_events(&users).await?;
    let mut by_user: HashMap<&str, (Vec<Follow>, Vec<i64>)> = HashMap::new();
    for event in events.iter() {
        let (follows, unfollows) = by_user.entry(event.openid.as_str()).or_default();
        if event.is_follow {
            follows.push(Follow {
                event_id: event.event_id,
                followed_at: event.at,
                scene: event.scene.clone(),
                unfollowed_at: None,
                stored: event.stored,
            });
        } else {
            unfollows.push(event.at);
        }
    }

    let mut worked_out = Vec::with_capacity(by_user.len());
    for (openid, (mut follows, mut unfollows)) in by_user {
        work_out(&mut follows, &mut unfollows);
        worked_out.push((openid, follows));
    }
    // The rows to write: those whose first unfollow changed, or new.
    let mut changed = Vec::new();
    for (openid, follows) in &worked_out {
        for follow in follows {
            if follow.stored == Some(follow.unfollowed_at) {
                continue;
            }
            if let Some(scene) = &follow.scene {
                days.unfollow_moved(
                    scene,
                    follow.followed_at,
                    offset_seconds,
                    (follow.stored.flatten(), follow.unfollowed_at),
                );
            }
            changed.push(FollowRow {
                event_id: follow.event_id,
                openid,
                followed_at: follow.followed_at,
                scene: follow.scene.as_deref(),
                unfollowed_at: follow.unfollowed_at,
            });
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    tables.put_follows(&changed).await
}

/// Sets each of one user's follows' first unfollow: the earliest unfollow at or after
/// the follow and before the user's next follow (by time, then by the order they were
/// stored), as `rebuild` does with a window over all users.
fn work_out(follows: &mut [Follow], unfollows: &mut [i64]) {
    follows.sort_by_key(|f| (f.followed_at, f.event_id));
    unfollows.sort_unstable();
    let next_follows: Vec<Option<i64>> = (0..follows.len())
        .map(|i| follows.get(i + 1).map(|f| f.followed_at))
        .collect();
    for (follow, next) in follows.iter_mut().zip(next_follows) {
        let first = unfollows.partition_point(|&u| u < follow.followed_at);
        follow.unfollowed_at = unfollows
            .get(first)
            .copied()
            .filter(|&u| next.is_none_or(|next| u < next));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follows(times: &[(i64, i64)]) -> Vec<Follow> {
        times
            .iter()
            .map(|&(event_id, followed_at)| Follow {
                event_id,
                followed_at,
                scene: None,
                unfollowed_at: None,
                stored: None,
            })
            .collect()
    }

    fn unfollowed(follows: &[Follow]) -> Vec<(i64, Option<i64>)> {
        follows
            .iter()
            .map(|f| (f.event_id, f.unfollowed_at))
            .collect()
    }

    #[test]
    fn an_unfollow_belongs_to_the_latest_follow_at_or_before_it() {
        let mut user = follows(&[(3, 300), (1, 100)]);
        work_out(&mut user, &mut [350, 150, 200]);
        assert_eq!(unfollowed(&user), [(1, Some(150)), (3, Some(350))]);
    }

    #[test]
    fn a_follow_with_no_unfollow_before_the_next_one_is_kept() {
        let mut user = follows(&[(1, 100), (2, 200)]);
        work_out(&mut user, &mut [200, 50]);
        // The unfollow at 200 comes with the second follow, and belongs to it.
        assert_eq!(unfollowed(&user), [(1, None), (2, Some(200))]);
    }

    #[test]
    fn follows_of_the_same_second_are_ordered_as_they_were_stored() {
        let mut user = follows(&[(9, 100), (4, 100)]);
        work_out(&mut user, &mut [100]);
        assert_eq!(unfollowed(&user), [(4, None), (9, Some(100))]);
    }
}
