//! What the statistics pages show, gathered for one query from the store's counts.

use time::{Date, UtcOffset};

use super::order::sort;
use crate::domain::{SceneKey, StatsQuery};
use crate::store::codes::CodeRow;
use crate::store::labels::SceneSettings;
use crate::store::stats::{CohortRetention, SceneStats, Totals};
use crate::store::{Store, StoreError};

/// Everything the page, the JSON and the CSV of `/stats` show.
#[derive(Debug, Clone)]
pub struct Report {
    /// The query this answers.
    pub query: StatsQuery,
    /// Every scene with a code, a label or a scan in the range, in the query's order.
    pub scenes: Vec<SceneStats>,
    /// Over the range: for the query's scene, or for all scenes.
    pub totals: Totals,
    /// The D1/D7/D30 retention of the query's scene's new followers of the range; only
    /// when the query names a scene.
    pub cohorts: Option<CohortRetention>,
    /// Every day of the range with its scans (of the query's scene, or of all scenes),
    /// days without any included.
    pub daily: Vec<(Date, i64)>,
}

impl Report {
    /// Days start at midnight in the offset the store counts in.
    pub async fn gather(store: &Store, query: StatsQuery) -> Result<Self, StoreError> {
        let offset = store.utc_offset();
        let range = query.time_range(offset);
        let mut scenes = store.scene_stats(range).await?;
        sort(&mut scenes, query.sort, query.descending);
        let totals = store.totals(range, query.scene.as_deref()).await?;
        let cohorts = match query.scene.as_deref() {
            Some(scene) => Some(store.cohort_retention(range, Some(scene), now()).await?),
            None => None,
        };
        let daily = daily(store, &query, offset).await?;
        Ok(Self {
            query,
            scenes,
            totals,
            cohorts,
            daily,
        })
    }
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
    /// Every day of the range with the scene's scans, days without any included.
    pub daily: Vec<(Date, i64)>,
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
        let totals = store.totals(range, Some(&scene)).await?;
        let cohorts = store.cohort_retention(range, Some(&scene), now()).await?;
        let daily = daily(store, &query, offset).await?;
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

/// Every day of the query's range with its scans (of the query's scene, or of all).
async fn daily(
    store: &Store,
    query: &StatsQuery,
    offset: UtcOffset,
) -> Result<Vec<(Date, i64)>, StoreError> {
    let counts = store
        .daily_scans(query.time_range(offset), query.scene.as_deref())
        .await?;
    Ok(every_day(query, &counts))
}

/// Every day of the query's range with its count in `counts`, which has only the days
/// with scans, by [`epoch_day`] (as `Store::daily_scans` numbers them); zero for the rest,
/// so a chart shows quiet days as days.
fn every_day(query: &StatsQuery, counts: &[(i64, i64)]) -> Vec<(Date, i64)> {
    query
        .days()
        .map(|date| {
            let scans = counts
                .iter()
                .find(|(day, _)| *day == epoch_day(date))
                .map_or(0, |(_, n)| *n);
            (date, scans)
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
        AccountEvent, Change, CodeRequest, EventKind, Lifetime, SceneLabel, SettingsChange, Ticket,
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

    fn days(daily: &[(Date, i64)]) -> Vec<i64> {
        daily.iter().map(|(_, scans)| *scans).collect()
    }

    #[test]
    fn every_day_of_the_range_is_there_with_zero_for_days_without_scans() {
        let range = query("from=2000-01-01&to=2000-01-04");
        let counts = [(10_957, 2), (10_959, 5)];

        let daily = every_day(&range, &counts);

        assert_eq!(
            daily,
            [
                (date!(2000 - 01 - 01), 2),
                (date!(2000 - 01 - 02), 0),
                (date!(2000 - 01 - 03), 5),
                (date!(2000 - 01 - 04), 0),
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

        let report = Report::gather(&store, asked.clone()).await.unwrap();

        let scenes: Vec<_> = report.scenes.iter().map(|s| s.scene.as_str()).collect();
        assert_eq!(scenes, ["2", "10", "poster", "idle"]);
        let two = &report.scenes[0];
        assert_eq!((two.scans, two.unique_users, two.new_followers), (3, 2, 0));
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

        let report = Report::gather(&store, query("from=2000-01-01&to=2000-01-04&scene=2"))
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

        let in_beijing = Report::gather(&store, poster.clone()).await.unwrap();
        let in_utc = Report::gather(&utc_store, poster).await.unwrap();

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
}
