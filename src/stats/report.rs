//! What the statistics pages show, gathered for one query from the store's counts.

use std::collections::BTreeMap;

use futures_util::{Stream, stream};
use time::{Date, UtcOffset};

use super::order::{sort, sort_groups};
use super::paging::Page;
use crate::domain::{SceneKey, SortKey, StatsQuery, View};
use crate::store::codes::CodeRow;
use crate::store::labels::SceneSettings;
use crate::store::stats::{CohortRetention, DayCounts, FEW_SCENES, SceneStats, Scope, Totals};
use crate::store::{Store, StoreError};

/// Everything the page, the JSON and the CSV of `/stats` show.
#[derive(Debug, Clone)]
pub struct Report {
    /// The query this answers.
    pub query: StatsQuery,
    /// Every scene with a code, a label, a group or a scan in the range that the query's
    /// group and search keep, in the query's order; unique users counted as [`Counted`]
    /// asked.
    pub scenes: Vec<SceneStats>,
    /// For the groups view: every group the query's group and search keep (the scenes in
    /// no group last), in the query's order.
    pub groups: Option<Vec<GroupStats>>,
    /// Every group's name, in order, for the group filter.
    pub group_names: Vec<String>,
    /// Over the range: of the query's scene, else of its group, else of all scenes.
    pub totals: Totals,
    /// The D1/D7/D30 retention of the new followers of the range of the query's scene or
    /// group; only when the query names one.
    pub cohorts: Option<CohortRetention>,
    /// Every day of the range with its counts (of the same scenes as the totals), days
    /// without any included.
    pub daily: Vec<(Date, DayCounts)>,
}

/// A group's line in the groups view: the sum of its scenes' lines, but for unique users,
/// who count once however many of the group's scenes they scanned.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupStats {
    /// `None`: the scenes in no group.
    pub group: Option<String>,
    /// Its scenes, in the query's order.
    pub scenes: Vec<String>,
    pub scans: i64,
    pub new_followers: i64,
    pub unique_users: i64,
    pub lost: i64,
    pub last_scan: Option<i64>,
}

/// Which lines of the table a report counts the unique users of: the costly column (the
/// union of a scene's day sets, which grow with its scans), where every other column is read
/// for all lines from the per-day counts. Whatever is asked, a table sorted by unique users
/// has every line counted, since its order needs them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// The lines of the query's page (none in the groups view, which lists no scene's).
    Page,
    /// Every line.
    Every,
    /// None: the caller counts them a chunk at a time, with [`Report::counted_chunks`].
    Later,
}

impl Report {
    /// Days start at midnight in the offset the store counts in. The table is filtered and
    /// sorted here, from the one query for every scene's line: a few thousand scenes at most.
    pub async fn gather(
        store: &Store,
        query: StatsQuery,
        counted: Counted,
    ) -> Result<Self, StoreError> {
        let offset = store.utc_offset();
        let range = query.time_range(offset);
        let mut scenes = store.scene_stats(range).await?;
        let mut group_names: Vec<String> = scenes.iter().filter_map(|s| s.group.clone()).collect();
        group_names.sort();
        group_names.dedup();
        let scope = totals_scope(&query);
        // The lines of every scene hold the counts of every scene (a scene left out had
        // none), so the totals are their sum rather than another pass over the range.
        let mut counts = matches!(scope, Scope::All).then(|| sum(&scenes));
        if let Some(group) = &query.group {
            scenes.retain(|s| s.group.as_deref() == Some(group.as_str()));
            if matches!(scope, Scope::Group(_)) {
                counts = Some(sum(&scenes));
            }
        }
        let every_line = counted == Counted::Every || query.sort == SortKey::Users;
        if every_line {
            store.count_unique_users(range, &mut scenes).await?;
        }
        sort(&mut scenes, query.sort, query.descending);
        let search = query.search.as_deref().map(Search::new);
        let groups = match query.view {
            View::Scenes => None,
            View::Groups => {
                let users = store.group_unique_users(range).await?;
                let mut groups = group_lines(&scenes, &users);
                if let Some(search) = &search {
                    groups.retain(|g| g.group.as_deref().is_some_and(|name| search.finds(name)));
                }
                sort_groups(&mut groups, query.sort, query.descending);
                Some(groups)
            }
        };
        if let Some(search) = &search {
            scenes.retain(|s| {
                search.finds(&s.scene) || s.label.as_deref().is_some_and(|l| search.finds(l))
            });
        }
        if counted == Counted::Page && query.view == View::Scenes && !every_line {
            // A page past the end shows no line; the route answers it.
            if let Ok(page) = Page::of(scenes.len(), query.page) {
                store
                    .count_unique_users(range, &mut scenes[page.rows])
                    .await?;
            }
        }
        let totals = match counts {
            Some(counts) => store.totals_of(range, scope, counts).await?,
            None => store.totals(range, scope).await?,
        };
        let cohorts = match scope {
            Scope::All => None,
            scope => Some(store.cohort_retention(range, scope, now()).await?),
        };
        let daily = daily(store, &query, scope, offset).await?;
        Ok(Self {
            query,
            scenes,
            groups,
            group_names,
            totals,
            cohorts,
            daily,
        })
    }

    /// The report's lines in order, taken out of it, in chunks of at most [`FEW_SCENES`]
    /// with their unique users counted as each chunk is reached: a CSV of every scene starts
    /// at once and never holds more than a chunk's sets, however busy the scenes are.
    pub fn counted_chunks(
        &mut self,
        store: &Store,
    ) -> impl Stream<Item = Result<Vec<SceneStats>, StoreError>> + 'static {
        let range = self.query.time_range(store.utc_offset());
        let lines = std::mem::take(&mut self.scenes).into_iter();
        stream::try_unfold(
            (store.clone(), lines),
            move |(store, mut lines)| async move {
                let mut chunk: Vec<SceneStats> = lines.by_ref().take(FEW_SCENES).collect();
                if chunk.is_empty() {
                    return Ok(None);
                }
                if chunk.iter().any(|line| line.unique_users.is_none()) {
                    store.count_unique_users(range, &mut chunk).await?;
                }
                Ok(Some((chunk, (store, lines))))
            },
        )
    }
}

/// The scans, new followers and lost followers of `lines` together.
fn sum(lines: &[SceneStats]) -> DayCounts {
    lines
        .iter()
        .fold(DayCounts::default(), |sum, line| DayCounts {
            scans: sum.scans + line.scans,
            new_followers: sum.new_followers + line.new_followers,
            lost: sum.lost + line.lost,
        })
}

/// The scenes the totals and the chart count: the query's scene, else its group's.
fn totals_scope(query: &StatsQuery) -> Scope<'_> {
    match (&query.scene, &query.group) {
        (Some(scene), _) => Scope::Scene(scene),
        (None, Some(group)) => Scope::Group(group),
        (None, None) => Scope::All,
    }
}

/// A search of the table: text found in a name, ignoring case.
struct Search(String);

impl Search {
    fn new(text: &str) -> Self {
        Self(text.to_lowercase())
    }

    fn finds(&self, name: &str) -> bool {
        name.to_lowercase().contains(&self.0)
    }
}

/// One line per group of `scenes` (in their order), with its unique users from `users`.
fn group_lines(scenes: &[SceneStats], users: &[(Option<String>, i64)]) -> Vec<GroupStats> {
    let mut groups: BTreeMap<Option<&str>, GroupStats> = BTreeMap::new();
    for scene in scenes {
        let group = scene.group.as_deref();
        let line = groups.entry(group).or_insert_with(|| GroupStats {
            group: group.map(str::to_string),
            scenes: Vec::new(),
            scans: 0,
            new_followers: 0,
            unique_users: users
                .iter()
                .find(|(name, _)| name.as_deref() == group)
                .map_or(0, |(_, n)| *n),
            lost: 0,
            last_scan: None,
        });
        line.scenes.push(scene.scene.clone());
        line.scans += scene.scans;
        line.new_followers += scene.new_followers;
        line.lost += scene.lost;
        line.last_scan = line.last_scan.max(scene.last_scan);
    }
    groups.into_values().collect()
}

/// Everything one scene's page shows.
#[derive(Debug, Clone)]
pub struct SceneReport {
    pub scene: SceneKey,
    pub label: Option<String>,
    pub group: Option<String>,
    /// The range asked for; its scene is `scene`.
    pub query: StatsQuery,
    /// The scene's, over the range.
    pub totals: Totals,
    /// The D1/D7/D30 retention of the scene's new followers of the range.
    pub cohorts: CohortRetention,
    /// Every day of the range with the scene's counts, days without any included.
    pub daily: Vec<(Date, DayCounts)>,
    /// The codes created for the scene, newest first.
    pub codes: Vec<CodeRow>,
}

impl SceneReport {
    /// The numbers of `scene` over the range of `query` (whatever scene `query` names);
    /// days start at midnight in the offset the store counts in.
    pub async fn gather(
        store: &Store,
        scene: SceneKey,
        query: StatsQuery,
    ) -> Result<Self, StoreError> {
        let offset = store.utc_offset();
        let query = StatsQuery {
            scene: Some(scene.clone()),
            ..query
        };
        let range = query.time_range(offset);
        let totals = store.totals(range, Scope::Scene(&scene)).await?;
        let cohorts = store
            .cohort_retention(range, Scope::Scene(&scene), now())
            .await?;
        let daily = daily(store, &query, Scope::Scene(&scene), offset).await?;
        let SceneSettings { label, group } = store.scene_settings(&scene).await?;
        let codes = store.codes_for_scene(&scene).await?;
        Ok(Self {
            scene,
            label,
            group,
            query,
            totals,
            cohorts,
            daily,
            codes,
        })
    }
}

/// Unix seconds now: cohort retentions count only followers old enough.
fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Every day of the query's range with its counts, of the scope's scenes.
async fn daily(
    store: &Store,
    query: &StatsQuery,
    scope: Scope<'_>,
    offset: UtcOffset,
) -> Result<Vec<(Date, DayCounts)>, StoreError> {
    let counts = store.daily_counts(query.time_range(offset), scope).await?;
    Ok(every_day(query, &counts))
}

/// Every day of the query's range with its counts in `counts`, which has only the days
/// with any, by [`epoch_day`] (as `Store::daily_counts` numbers them); zeros for the rest,
/// so a chart shows quiet days as days.
fn every_day(query: &StatsQuery, counts: &[(i64, DayCounts)]) -> Vec<(Date, DayCounts)> {
    query
        .days()
        .map(|date| {
            let day = counts
                .iter()
                .find(|(day, _)| *day == epoch_day(date))
                .map_or_else(DayCounts::default, |(_, counts)| *counts);
            (date, day)
        })
        .collect()
}

/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// The number of the day `date`, counted from 1970-01-01 (day 0).
fn epoch_day(date: Date) -> i64 {
    i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY
}

#[cfg(test)]
mod tests {
    use time::macros::{date, offset};

    use super::*;
    use crate::domain::{
        AccountEvent, Change, CodeRequest, EventKind, GroupName, Lifetime, SceneLabel,
        SettingsChange, Ticket,
    };

    /// Beijing time, the default offset of the statistics.
    const BEIJING: UtcOffset = offset!(+8);
    /// 2000-01-01T00:00:00+08:00 and the days after it.
    const DAY0: i64 = 946_656_000;
    const DAY: i64 = 86_400;

    fn key(scene: &str) -> SceneKey {
        SceneKey::parse(scene).unwrap()
    }

    fn query(query: &str) -> StatsQuery {
        StatsQuery::from_query(query, date!(2000 - 01 - 31)).unwrap()
    }

    async fn store(offset: UtcOffset) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("stats.db").display());
        let (store, _writer) = Store::open(&url, offset).await.unwrap();
        (dir, store)
    }

    async fn push(store: &Store, openid: &str, at: i64, kind: EventKind, scene: Option<&str>) {
        let event_key = match (kind, scene) {
            (EventKind::Subscribe, Some(scene)) => format!("qrscene_{scene}"),
            (_, scene) => scene.unwrap_or_default().to_string(),
        };
        let event = AccountEvent {
            kind,
            openid: openid.to_string(),
            created_at: at,
            event_key,
            scene: scene.map(key),
            ticket: None,
        };
        store.store_event(event).await.unwrap();
    }

    async fn name(store: &Store, scene: &str, label: &str) {
        let change = SettingsChange {
            label: Change::to(SceneLabel::parse(label).unwrap()),
            group: Change::Keep,
        };
        store
            .save_scene_settings(&key(scene), change)
            .await
            .unwrap();
    }

    /// Scene "10": three users on 1 January. Scene "2": one user twice on the 2nd and
    /// another on the 3rd. Scene "poster": a new follower half an hour into the 2nd in
    /// Beijing (still the 1st in UTC), and a label. Scene "idle": a label only. Besides: a
    /// follow that came from no code, and an unfollow.
    async fn sample(offset: UtcOffset) -> (tempfile::TempDir, Store) {
        let (dir, store) = store(offset).await;
        for (openid, at) in [("a", 100), ("b", 200), ("c", 300)] {
            push(&store, openid, DAY0 + at, EventKind::Scan, Some("10")).await;
        }
        for (openid, at) in [("a", DAY + 100), ("a", DAY + 200), ("d", 2 * DAY + 100)] {
            push(&store, openid, DAY0 + at, EventKind::Scan, Some("2")).await;
        }
        let half_past_midnight = DAY0 + DAY + 1_800;
        push(
            &store,
            "e",
            half_past_midnight,
            EventKind::Subscribe,
            Some("poster"),
        )
        .await;
        push(&store, "f", DAY0 + 400, EventKind::Subscribe, None).await;
        push(&store, "a", DAY0 + 2 * DAY, EventKind::Unsubscribe, None).await;
        name(&store, "poster", "Poster").await;
        name(&store, "idle", "Not yet printed").await;
        (dir, store)
    }

    /// Puts `scenes` in `group`.
    async fn group(store: &Store, group: &str, scenes: &[&str]) {
        for scene in scenes {
            let change = SettingsChange {
                label: Change::Keep,
                group: Change::to(GroupName::parse(group).unwrap()),
            };
            store
                .save_scene_settings(&key(scene), change)
                .await
                .unwrap();
        }
    }

    fn days(daily: &[(Date, DayCounts)]) -> Vec<i64> {
        daily.iter().map(|(_, day)| day.scans).collect()
    }

    fn scans(scans: i64) -> DayCounts {
        DayCounts {
            scans,
            ..DayCounts::default()
        }
    }

    #[test]
    fn every_day_of_the_range_is_there_with_zero_for_days_without_scans() {
        let range = query("from=2000-01-01&to=2000-01-04");
        let lost = DayCounts {
            lost: 1,
            ..DayCounts::default()
        };
        let counts = [(10_957, scans(2)), (10_959, lost)];

        let daily = every_day(&range, &counts);

        assert_eq!(
            daily,
            [
                (date!(2000 - 01 - 01), scans(2)),
                (date!(2000 - 01 - 02), scans(0)),
                (date!(2000 - 01 - 03), lost),
                (date!(2000 - 01 - 04), scans(0)),
            ]
        );
    }

    #[test]
    fn days_are_numbered_from_1970_01_01() {
        assert_eq!(epoch_day(date!(1970 - 01 - 01)), 0);
        assert_eq!(epoch_day(date!(1970 - 01 - 02)), 1);
        assert_eq!(epoch_day(date!(2000 - 01 - 01)), 10_957);
    }

    #[actix_web::test]
    async fn the_report_lists_every_scene_in_the_query_s_order_with_totals_and_days() {
        let (_dir, store) = sample(BEIJING).await;
        let asked = query("from=2000-01-01&to=2000-01-04&sort=scans&order=desc");

        let report = Report::gather(&store, asked.clone(), Counted::Every)
            .await
            .unwrap();

        let scenes: Vec<_> = report.scenes.iter().map(|s| s.scene.as_str()).collect();
        assert_eq!(scenes, ["2", "10", "poster", "idle"]);
        let two = &report.scenes[0];
        assert_eq!(
            (two.scans, two.unique_users, two.new_followers),
            (3, Some(2), 0)
        );
        assert_eq!(report.scenes[2].label.as_deref(), Some("Poster"));
        assert_eq!(report.scenes[3].scans, 0);
        let totals = report.totals;
        assert_eq!(
            (totals.scans, totals.new_followers, totals.unique_users),
            (7, 1, 5)
        );
        assert_eq!((totals.other_follows, totals.unfollows), (1, 1));
        assert_eq!(days(&report.daily), [3, 3, 1, 0]);
        assert_eq!(report.query, asked);
    }

    #[actix_web::test]
    async fn a_query_naming_a_scene_narrows_the_totals_and_days_but_not_the_table() {
        let (_dir, store) = sample(BEIJING).await;

        let report = Report::gather(
            &store,
            query("from=2000-01-01&to=2000-01-04&scene=2"),
            Counted::Every,
        )
        .await
        .unwrap();

        assert_eq!(report.scenes.len(), 4);
        assert_eq!((report.totals.scans, report.totals.unique_users), (3, 2));
        assert_eq!(report.totals.other_follows, 0);
        assert_eq!(days(&report.daily), [0, 2, 1, 0]);
    }

    #[actix_web::test]
    async fn days_start_at_midnight_in_the_offset() {
        let (_dir, store) = sample(BEIJING).await;
        let poster = query("from=2000-01-01&to=2000-01-04&scene=poster");

        let (_utc_dir, utc_store) = sample(UtcOffset::UTC).await;

        let in_beijing = Report::gather(&store, poster.clone(), Counted::Every)
            .await
            .unwrap();
        let in_utc = Report::gather(&utc_store, poster, Counted::Every)
            .await
            .unwrap();

        assert_eq!(days(&in_beijing.daily), [0, 1, 0, 0]);
        assert_eq!(days(&in_utc.daily), [1, 0, 0, 0]);
    }

    #[actix_web::test]
    async fn a_scene_s_report_has_its_numbers_label_and_codes_whatever_scene_the_query_names() {
        let (_dir, store) = sample(BEIJING).await;
        let week = Lifetime::new(604_800).unwrap();
        let code = CodeRequest::from_query("scene_str=poster", week).unwrap();
        store
            .record_code(&code, &Ticket::created_now(604_800))
            .await
            .unwrap();

        let report = SceneReport::gather(
            &store,
            key("poster"),
            query("from=2000-01-01&to=2000-01-04&scene=2"),
        )
        .await
        .unwrap();

        assert_eq!(report.query.scene, Some(key("poster")));
        assert_eq!(report.label.as_deref(), Some("Poster"));
        let totals = report.totals;
        assert_eq!(
            (totals.scans, totals.new_followers, totals.unique_users),
            (1, 1, 1)
        );
        assert_eq!(days(&report.daily), [0, 1, 0, 0]);
        assert_eq!(report.codes.len(), 1);
        assert_eq!(report.codes[0].action_name, "QR_STR_SCENE");
    }

    #[actix_web::test]
    async fn a_query_naming_a_group_keeps_its_scenes_and_counts_them_alone() {
        let (_dir, store) = sample(BEIJING).await;
        group(&store, "East", &["10", "2"]).await;
        group(&store, "West", &["poster"]).await;

        let report = Report::gather(
            &store,
            query("from=2000-01-01&to=2000-01-04&group=East"),
            Counted::Every,
        )
        .await
        .unwrap();

        let scenes: Vec<_> = report.scenes.iter().map(|s| s.scene.as_str()).collect();
        assert_eq!(scenes, ["2", "10"]);
        assert_eq!(report.group_names, ["East", "West"]);
        // User "a" scanned both scenes: one unique user of the group.
        let totals = report.totals;
        assert_eq!((totals.scans, totals.unique_users), (6, 4));
        assert_eq!((totals.other_follows, totals.unfollows), (0, 0));
        assert_eq!(days(&report.daily), [3, 2, 1, 0]);
        assert!(report.cohorts.is_some());
    }

    #[actix_web::test]
    async fn the_groups_view_has_a_line_per_group_and_one_for_the_scenes_in_none() {
        let (_dir, store) = sample(BEIJING).await;
        group(&store, "East", &["10", "2"]).await;
        group(&store, "West", &["poster"]).await;

        let report = Report::gather(
            &store,
            query("from=2000-01-01&to=2000-01-04&view=groups&sort=scans"),
            Counted::Every,
        )
        .await
        .unwrap();

        let groups = report.groups.unwrap();
        let names: Vec<_> = groups.iter().map(|g| g.group.as_deref()).collect();
        assert_eq!(names, [Some("East"), Some("West"), None]);
        let east = &groups[0];
        assert_eq!(east.scenes, ["2", "10"]);
        assert_eq!(
            (east.scans, east.new_followers, east.unique_users, east.lost),
            (6, 0, 4, 0)
        );
        assert_eq!((groups[1].scans, groups[1].new_followers), (1, 1));
        assert_eq!(groups[2].scenes, ["idle"]);
    }

    #[actix_web::test]
    async fn a_page_counts_the_unique_users_of_its_lines_only_unless_sorted_by_them() {
        let (_dir, store) = store(BEIJING).await;
        for n in 1..=60 {
            let scene = n.to_string();
            push(
                &store,
                &format!("u{n}"),
                DAY0 + n,
                EventKind::Scan,
                Some(&scene),
            )
            .await;
        }
        let range = "from=2000-01-01&to=2000-01-04";

        let second = Report::gather(
            &store,
            query(&format!("{range}&sort=scene&order=asc&page=2")),
            Counted::Page,
        )
        .await
        .unwrap();
        let by_users = Report::gather(
            &store,
            query(&format!("{range}&sort=users&page=2")),
            Counted::Page,
        )
        .await
        .unwrap();

        let counted: Vec<_> = second
            .scenes
            .iter()
            .filter(|s| s.unique_users.is_some())
            .map(|s| s.scene.clone())
            .collect();
        let page_two: Vec<_> = (51..=60).map(|n| n.to_string()).collect();
        assert_eq!(counted, page_two);
        assert!(
            second.scenes[50..]
                .iter()
                .all(|s| s.unique_users == Some(1))
        );
        assert!(by_users.scenes.iter().all(|s| s.unique_users == Some(1)));
    }

    #[actix_web::test]
    async fn a_search_finds_scenes_by_key_or_label_ignoring_case() {
        let (_dir, store) = sample(BEIJING).await;

        let by_label = Report::gather(&store, query("q=NOT%20YET"), Counted::Every)
            .await
            .unwrap();
        let by_key = Report::gather(&store, query("q=Post"), Counted::Every)
            .await
            .unwrap();

        assert_eq!(by_label.scenes.len(), 1);
        assert_eq!(by_label.scenes[0].scene, "idle");
        assert_eq!(by_key.scenes.len(), 1);
        assert_eq!(by_key.scenes[0].scene, "poster");
    }
}
