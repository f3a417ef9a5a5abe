//! The order of the statistics table: by any column, either way, for scenes and for groups.

use std::cmp::Ordering;

use super::report::GroupStats;
use crate::domain::SortKey;
use crate::store::stats::SceneStats;

/// Sorts `scenes` by the column `key`. Scenes that tie on it stay in natural scene order,
/// whichever way the column goes: the store returns scenes in no particular order, and a
/// table that reshuffled its ties on every load would read as if its numbers changed.
pub(super) fn sort(scenes: &mut [SceneStats], key: SortKey, descending: bool) {
    scenes.sort_by(|a, b| {
        let order = match key {
            SortKey::Scene => natural(&a.scene, &b.scene),
            SortKey::Label => a.label.cmp(&b.label),
            SortKey::Group => a.group.cmp(&b.group),
            SortKey::Kind => a.kinds.cmp(&b.kinds),
            SortKey::Scans => a.scans.cmp(&b.scans),
            SortKey::Followers => a.new_followers.cmp(&b.new_followers),
            SortKey::Users => a.unique_users.cmp(&b.unique_users),
            SortKey::Lost => a.lost.cmp(&b.lost),
            SortKey::Retention => retention(a.new_followers, a.lost, b.new_followers, b.lost),
            SortKey::Last => a.last_scan.cmp(&b.last_scan),
        };
        let order = if descending { order.reverse() } else { order };
        order.then_with(|| natural(&a.scene, &b.scene))
    });
}

/// Sorts `groups` by the column `key`; the columns a group has not (scene, label, kind)
/// sort by its name. The scenes in no group stay last, whichever way: they are what the
/// groups leave, not a group to rank. Ties stay in the order of the names.
pub(super) fn sort_groups(groups: &mut [GroupStats], key: SortKey, descending: bool) {
    groups.sort_by(|a, b| {
        let (Some(a_name), Some(b_name)) = (&a.group, &b.group) else {
            return a.group.is_none().cmp(&b.group.is_none());
        };
        let order = match key {
            SortKey::Scene | SortKey::Label | SortKey::Group | SortKey::Kind => a_name.cmp(b_name),
            SortKey::Scans => a.scans.cmp(&b.scans),
            SortKey::Followers => a.new_followers.cmp(&b.new_followers),
            SortKey::Users => a.unique_users.cmp(&b.unique_users),
            SortKey::Lost => a.lost.cmp(&b.lost),
            SortKey::Retention => retention(a.new_followers, a.lost, b.new_followers, b.lost),
            SortKey::Last => a.last_scan.cmp(&b.last_scan),
        };
        let order = if descending { order.reverse() } else { order };
        order.then_with(|| a_name.cmp(b_name))
    });
}

/// Retention (retained / new followers) of one row against another's, compared exactly as
/// fractions; a row without new followers has none, and comes first ascending.
fn retention(a_followers: i64, a_lost: i64, b_followers: i64, b_lost: i64) -> Ordering {
    match (a_followers > 0, b_followers > 0) {
        (false, false) => Ordering::Equal,
        (false, true) => Ordering::Less,
        (true, false) => Ordering::Greater,
        (true, true) => {
            let a = i128::from(a_followers - a_lost) * i128::from(b_followers);
            let b = i128::from(b_followers - b_lost) * i128::from(a_followers);
            a.cmp(&b)
        }
    }
}

/// Numeric scenes in numeric order (2 before 10), then text scenes.
fn natural(a: &str, b: &str) -> Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => Ordering::Less,
        (Err(_), Ok(_)) => Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scene with nothing counted yet.
    fn line(scene: &str) -> SceneStats {
        SceneStats {
            scene: scene.to_string(),
            label: None,
            group: None,
            kinds: Vec::new(),
            scans: 0,
            new_followers: 0,
            unique_users: None,
            lost: 0,
            last_scan: None,
        }
    }

    fn sorted(mut scenes: Vec<SceneStats>, key: SortKey, descending: bool) -> Vec<String> {
        sort(&mut scenes, key, descending);
        scenes.into_iter().map(|s| s.scene).collect()
    }

    #[test]
    fn numbers_compare_as_numbers_and_come_before_text() {
        assert_eq!(natural("2", "10"), Ordering::Less);
        assert_eq!(natural("10", "9"), Ordering::Greater);
        assert_eq!(natural("100000", "poster"), Ordering::Less);
        assert_eq!(natural("poster", "1"), Ordering::Greater);
        assert_eq!(natural("poster", "shop-12"), Ordering::Less);
        assert_eq!(natural("7", "7"), Ordering::Equal);
    }

    #[test]
    fn text_that_only_starts_with_digits_is_text() {
        assert_eq!(natural("10a", "9"), Ordering::Greater);
        assert_eq!(natural("10a", "9a"), Ordering::Less);
    }

    #[test]
    fn by_scene_ascending_is_natural_order_and_descending_its_reverse() {
        let scenes = || vec![line("poster"), line("10"), line("b"), line("2")];

        assert_eq!(
            sorted(scenes(), SortKey::Scene, false),
            ["2", "10", "b", "poster"]
        );
        assert_eq!(
            sorted(scenes(), SortKey::Scene, true),
            ["poster", "b", "10", "2"]
        );
    }

    #[test]
    fn by_scans_descending_the_most_scanned_scene_comes_first() {
        let scenes = vec![
            SceneStats {
                scans: 1,
                ..line("a")
            },
            SceneStats {
                scans: 5,
                ..line("b")
            },
            SceneStats {
                scans: 3,
                ..line("c")
            },
        ];

        assert_eq!(sorted(scenes, SortKey::Scans, true), ["b", "c", "a"]);
    }

    #[test]
    fn ties_stay_in_natural_scene_order_whichever_way_the_column_goes() {
        let scenes = || {
            vec![
                SceneStats {
                    scans: 4,
                    ..line("poster")
                },
                SceneStats {
                    scans: 4,
                    ..line("10")
                },
                SceneStats {
                    scans: 9,
                    ..line("x")
                },
                SceneStats {
                    scans: 4,
                    ..line("2")
                },
            ]
        };

        assert_eq!(
            sorted(scenes(), SortKey::Scans, true),
            ["x", "2", "10", "poster"]
        );
        assert_eq!(
            sorted(scenes(), SortKey::Scans, false),
            ["2", "10", "poster", "x"]
        );
    }

    #[test]
    fn each_column_sorts_by_its_own_value() {
        let low = SceneStats {
            label: Some("A".into()),
            group: Some("East".into()),
            kinds: vec!["permanent".into()],
            scans: 1,
            new_followers: 4,
            unique_users: Some(1),
            lost: 3,
            last_scan: Some(100),
            ..line("low")
        };
        // Every column of `high` is larger, and its scene sorts first: only the column
        // can put it second.
        let high = SceneStats {
            label: Some("B".into()),
            group: Some("West".into()),
            kinds: vec!["temporary".into()],
            scans: 2,
            new_followers: 5,
            unique_users: Some(2),
            lost: 4,
            last_scan: Some(200),
            ..line("high")
        };
        // More followers and more lost leave `high` the lower retention (1/5 against 1/4):
        // on that column it keeps all of 3 instead.
        let high_retention = SceneStats {
            new_followers: 3,
            lost: 0,
            ..high.clone()
        };

        for key in SortKey::ALL.into_iter().filter(|k| *k != SortKey::Scene) {
            let high = if key == SortKey::Retention {
                &high_retention
            } else {
                &high
            };
            let scenes = || vec![high.clone(), low.clone()];
            assert_eq!(sorted(scenes(), key, false), ["low", "high"], "{key:?}");
            assert_eq!(sorted(scenes(), key, true), ["high", "low"], "{key:?}");
        }
    }

    #[test]
    fn a_scene_without_a_label_or_a_scan_comes_first_ascending() {
        let named = SceneStats {
            label: Some("Door".into()),
            last_scan: Some(1),
            ..line("1")
        };
        let bare = line("2");

        let by_label = sorted(vec![named.clone(), bare.clone()], SortKey::Label, false);
        let by_last = sorted(vec![named, bare], SortKey::Last, false);

        assert_eq!(by_label, ["2", "1"]);
        assert_eq!(by_last, ["2", "1"]);
    }

    #[test]
    fn retention_compares_exactly_and_a_scene_without_followers_has_the_least() {
        let none = line("none");
        let third = SceneStats {
            new_followers: 3,
            lost: 2,
            ..line("third")
        };
        let two_sixths = SceneStats {
            new_followers: 6,
            lost: 4,
            ..line("sixths")
        };
        let all = SceneStats {
            new_followers: 1,
            ..line("all")
        };

        let ascending = sorted(
            vec![all, two_sixths, none, third],
            SortKey::Retention,
            false,
        );

        // 2/6 and 1/3 tie, and stay in scene order.
        assert_eq!(ascending, ["none", "sixths", "third", "all"]);
    }

    fn group(name: Option<&str>, scans: i64) -> GroupStats {
        GroupStats {
            group: name.map(str::to_string),
            scenes: Vec::new(),
            scans,
            new_followers: 0,
            unique_users: 0,
            lost: 0,
            last_scan: None,
        }
    }

    #[test]
    fn groups_sort_by_their_column_and_the_scenes_in_no_group_stay_last() {
        let groups = || {
            vec![
                group(None, 100),
                group(Some("West"), 1),
                group(Some("East"), 5),
                group(Some("North"), 5),
            ]
        };
        let names = |mut groups: Vec<GroupStats>, key, descending| {
            sort_groups(&mut groups, key, descending);
            groups
                .into_iter()
                .map(|g| g.group.unwrap_or_else(|| "-".into()))
                .collect::<Vec<_>>()
        };

        assert_eq!(
            names(groups(), SortKey::Scans, true),
            ["East", "North", "West", "-"]
        );
        assert_eq!(
            names(groups(), SortKey::Scans, false),
            ["West", "East", "North", "-"]
        );
        assert_eq!(
            names(groups(), SortKey::Scene, true),
            ["West", "North", "East", "-"]
        );
    }
}
