//! What each channel brings, checked against a straightforward count: a generated history
//! of follows, scans, unfollows and re-follows, pushed shuffled and partly twice, must give
//! on `/api/stats` exactly what counting the same events by hand gives.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::future::join_all;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::helpers::{TestApp, event_xml, spawn_app, spawn_app_with};

/// 2000-01-01T00:00:00Z.
const DAY0: i64 = 946_684_800;
const DAY: i64 = 86_400;
const SCENES: [&str; 4] = ["poster", "shop-2", "17", "door"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Subscribe,
    Scan,
    Unsubscribe,
}

#[derive(Debug, Clone)]
struct Event {
    user: String,
    at: i64,
    kind: Kind,
    /// The scene of a scan or of a follow from a code.
    scene: Option<&'static str>,
}

impl Event {
    fn xml(&self) -> String {
        let (event, key) = match (self.kind, self.scene) {
            (Kind::Subscribe, Some(scene)) => ("subscribe", format!("qrscene_{scene}")),
            (Kind::Subscribe, None) => ("subscribe", String::new()),
            (Kind::Scan, scene) => ("SCAN", scene.unwrap_or_default().to_string()),
            (Kind::Unsubscribe, _) => ("unsubscribe", String::new()),
        };
        event_xml(&self.user, self.at, event, &key)
    }

    fn is_scan_of(&self, scene: &str) -> bool {
        self.kind != Kind::Unsubscribe && self.scene == Some(scene)
    }
}

/// Each user follows, scans, unfollows and follows again (through any scene, or none) at
/// increasing times over 40 days; a tenth of the users unfollow before ever following
/// (an account's older followers), and a fifth of the unfollows never arrive (pushes
/// WeChat gave up on), so some follows come after follows with no unfollow between.
fn history(seed: u64) -> Vec<Event> {
    history_from(seed, DAY0)
}

/// [`history`] starting at `start`.
fn history_from(seed: u64, start: i64) -> Vec<Event> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut events = Vec::new();
    for n in 0..40 {
        let user = format!("user-{n}");
        let mut at = start + rng.random_range(0..10 * DAY);
        let mut following = n % 10 == 0;
        for _ in 0..rng.random_range(1..9) {
            let scene = (rng.random_range(0..10) < 8).then(|| SCENES[rng.random_range(0..4)]);
            let kind = if !following {
                following = true;
                Kind::Subscribe
            } else if rng.random_range(0..10) < 6 {
                Kind::Scan
            } else {
                following = false;
                Kind::Unsubscribe
            };
            let scene = match kind {
                Kind::Scan => Some(scene.unwrap_or(SCENES[0])),
                Kind::Subscribe => scene,
                Kind::Unsubscribe => None,
            };
            events.push(Event {
                user: user.clone(),
                at,
                kind,
                scene,
            });
            // Sometimes within the same day, sometimes weeks later.
            at += rng.random_range(60..(12 * DAY));
        }
    }
    events.retain(|e| e.kind != Kind::Unsubscribe || rng.random_range(0..5) > 0);
    events
}

/// The numbers of one scene (or of all) over `[from, to)`, counted by hand.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    scans: i64,
    new_followers: i64,
    unique_users: i64,
    lost: i64,
}

/// The user's first unfollow at or after `follow` and before their next follow.
fn first_unfollow(events: &[Event], follow: &Event) -> Option<i64> {
    let mine = events.iter().filter(|e| e.user == follow.user);
    let next_follow = mine
        .clone()
        .filter(|e| e.kind == Kind::Subscribe && e.at > follow.at)
        .map(|e| e.at)
        .min()
        .unwrap_or(i64::MAX);
    mine.filter(|e| e.kind == Kind::Unsubscribe && e.at >= follow.at && e.at < next_follow)
        .map(|e| e.at)
        .min()
}

fn follows_in<'a>(
    events: &'a [Event],
    scene: Option<&'a str>,
    (from, to): (i64, i64),
) -> impl Iterator<Item = &'a Event> + 'a {
    events.iter().filter(move |e| {
        e.kind == Kind::Subscribe
            && e.scene.is_some()
            && scene.is_none_or(|s| e.scene == Some(s))
            && (from..to).contains(&e.at)
    })
}

fn expected(events: &[Event], scene: Option<&str>, (from, to): (i64, i64)) -> Expected {
    let scans: Vec<&Event> = events
        .iter()
        .filter(|e| match scene {
            Some(scene) => e.is_scan_of(scene),
            None => e.kind != Kind::Unsubscribe && e.scene.is_some(),
        })
        .filter(|e| (from..to).contains(&e.at))
        .collect();
    let users: BTreeSet<&str> = scans.iter().map(|e| e.user.as_str()).collect();
    let follows: Vec<&Event> = follows_in(events, scene, (from, to)).collect();
    Expected {
        scans: scans.len() as i64,
        new_followers: follows.len() as i64,
        unique_users: users.len() as i64,
        lost: follows
            .iter()
            .filter(|f| first_unfollow(events, f).is_some())
            .count() as i64,
    }
}

/// D`days` retention by hand: of the follows in the range at least `days` days before
/// `now`, the share not unfollowed within `days` days.
fn expected_cohort(
    events: &[Event],
    scene: &str,
    range: (i64, i64),
    days: i64,
    now: i64,
) -> Option<f64> {
    let follows: Vec<&Event> = follows_in(events, Some(scene), range)
        .filter(|f| f.at <= now - days * DAY)
        .collect();
    let kept = follows
        .iter()
        .filter(|f| first_unfollow(events, f).is_none_or(|u| u - f.at >= days * DAY))
        .count();
    (!follows.is_empty()).then(|| kept as f64 / follows.len() as f64)
}

fn numbers(row: &Value) -> Expected {
    let field = |name: &str| {
        row[name]
            .as_i64()
            .unwrap_or_else(|| panic!("{name} missing in {row}"))
    };
    Expected {
        scans: field("scans"),
        new_followers: field("new_followers"),
        unique_users: field("unique_users"),
        lost: field("lost"),
    }
}

/// Pushes every event (a fifth of them twice, as WeChat's retries) in `order`.
async fn push_all(app: &TestApp, events: &[Event], seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut pushes: Vec<String> = events.iter().map(Event::xml).collect();
    let retries: Vec<String> = pushes.iter().step_by(5).cloned().collect();
    pushes.extend(retries);
    pushes.shuffle(&mut rng);
    for chunk in pushes.chunks(16) {
        let answers = join_all(chunk.iter().map(|xml| app.push(xml))).await;
        for answer in answers {
            assert_eq!(answer.text(), "success");
        }
    }
}

/// The range the checks use: days 5 to 24, so that follows, scans and unfollows fall
/// before, inside and after it.
const FROM: &str = "2000-01-06";
const TO: &str = "2000-01-25";
const RANGE: (i64, i64) = (DAY0 + 5 * DAY, DAY0 + 25 * DAY);

async fn check_against_hand_count(app: &TestApp, events: &[Event]) {
    check_range_against_hand_count(app, events, (FROM, TO), RANGE).await;
}

/// Checks every number over the days `from` to `to` (both included), which are the Unix
/// times `range`.
async fn check_range_against_hand_count(
    app: &TestApp,
    events: &[Event],
    (from, to): (&str, &str),
    range: (i64, i64),
) {
    let now = unix_now();
    let stats = app
        .get_owned(format!("/api/stats?from={from}&to={to}"))
        .await
        .json();
    let rows: BTreeMap<&str, &Value> = stats["scenes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["scene"].as_str().unwrap(), row))
        .collect();
    for scene in SCENES {
        let want = expected(events, Some(scene), range);
        match rows.get(scene) {
            Some(row) => {
                assert_eq!(numbers(row), want, "scene {scene}");
                let retained = want.new_followers - want.lost;
                assert_eq!(row["retained"], retained, "scene {scene}");
            }
            None => assert_eq!(want, Expected::default(), "scene {scene} missing"),
        }
    }
    let totals = &stats["totals"];
    assert_eq!(numbers(totals), expected(events, None, range), "totals");
    // Few enough users for the union of the scenes' sets: exact.
    assert_eq!(stats["unique_users_estimated"], false);
    let other_follows = events
        .iter()
        .filter(|e| {
            e.kind == Kind::Subscribe && e.scene.is_none() && (range.0..range.1).contains(&e.at)
        })
        .count();
    let unfollows = events
        .iter()
        .filter(|e| e.kind == Kind::Unsubscribe && (range.0..range.1).contains(&e.at))
        .count();
    assert_eq!(totals["other_follows"], other_follows as i64);
    assert_eq!(totals["unfollows"], unfollows as i64);
    // The chart: each day's scans and new followers, and how many of them were lost since.
    let days = stats["daily"].as_array().unwrap();
    assert_eq!(days.len() as i64, (range.1 - range.0) / DAY);
    for (n, day) in (0..).zip(days) {
        let start = range.0 + n * DAY;
        let want = expected(events, None, (start, start + DAY));
        let row = (&day["scans"], &day["new_followers"], &day["lost"]);
        assert_eq!(
            row,
            (
                &want.scans.into(),
                &want.new_followers.into(),
                &want.lost.into()
            )
        );
    }

    for scene in SCENES {
        let one = app
            .get_owned(format!("/api/stats?from={from}&to={to}&scene={scene}"))
            .await
            .json();
        let totals = &one["totals"];
        let want = expected(events, Some(scene), range);
        assert_eq!(numbers(totals), want, "scene {scene} alone");
        let share = (want.new_followers > 0)
            .then(|| (want.new_followers - want.lost) as f64 / want.new_followers as f64);
        assert_close(&totals["retention"], share, &format!("{scene} retention"));
        for days in [1, 7, 30] {
            assert_close(
                &totals[format!("retention_d{days}")],
                expected_cohort(events, scene, range, days, now),
                &format!("{scene} D{days}"),
            );
        }
    }
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn assert_close(actual: &Value, expected: Option<f64>, what: &str) {
    match expected {
        None => assert!(actual.is_null(), "{what}: {actual} where none was expected"),
        Some(expected) => {
            let actual = actual
                .as_f64()
                .unwrap_or_else(|| panic!("{what}: {actual}"));
            assert!(
                (actual - expected).abs() < 1e-9,
                "{what}: {actual} != {expected}"
            );
        }
    }
}

#[actix_web::test]
async fn every_outcome_matches_a_count_by_hand_whatever_order_the_events_came_in() {
    let events = history(7);
    assert!(
        events
            .iter()
            .any(|e| e.kind == Kind::Unsubscribe && e.at >= RANGE.1)
    );
    assert!(
        events
            .iter()
            .any(|e| e.kind == Kind::Subscribe && e.at < RANGE.0)
    );

    for order in [1, 2] {
        let app = spawn_app_with(|s| s.utc_offset = time::UtcOffset::UTC).await;
        push_all(&app, &events, order).await;
        check_against_hand_count(&app, &events).await;
    }
}

/// D1, D7 and D30 count the new followers who followed at least 1, 7 or 30 days before
/// now, to the second, and the days before that from the counts kept per day: a history
/// of the last 45 days, with follows an hour either side of each such moment, on a day
/// that is partly old enough.
#[actix_web::test]
async fn cohort_retention_counts_the_followers_old_enough_to_the_second() {
    let now = unix_now();
    // An offset that puts now, and so each moment N days before it, at about noon: the
    // follows an hour either side of that moment fall on its day.
    let offset =
        time::UtcOffset::from_whole_seconds((DAY / 2 - now.rem_euclid(DAY)) as i32).unwrap();
    let cutoffs = [1, 7, 30].map(|days| now - days * DAY);
    let mut events = history_from(17, now - 45 * DAY);
    // Nothing in the future, nor so close to a cutoff that the seconds between this count
    // and the server's could move it across.
    events.retain(|e| e.at < now - 600 && cutoffs.iter().all(|c| (e.at - c).abs() > 600));
    for (days, cutoff) in [1, 7, 30].into_iter().zip(cutoffs) {
        let follow = |user: String, at: i64| Event {
            user,
            at,
            kind: Kind::Subscribe,
            scene: Some("poster"),
        };
        events.push(follow(format!("kept-{days}"), cutoff - 2 * 3600));
        events.push(follow(format!("lost-{days}"), cutoff - 3600));
        // Lost just within the window: D`days` counts it as lost.
        events.push(Event {
            user: format!("lost-{days}"),
            at: cutoff - 3600 + days * DAY - 1800,
            kind: Kind::Unsubscribe,
            scene: None,
        });
        // Too recent for D`days`, old enough for the shorter windows.
        events.push(follow(format!("recent-{days}"), cutoff + 3600));
    }
    let date = |at: i64| {
        time::OffsetDateTime::from_unix_timestamp(at)
            .unwrap()
            .to_offset(offset)
            .date()
    };
    let (first, last) = (date(now - 44 * DAY), date(now));
    let start = |day: time::Date| day.midnight().assume_offset(offset).unix_timestamp();
    let range = (start(first), start(last.next_day().unwrap()));

    let app = spawn_app_with(|s| s.utc_offset = offset).await;
    push_all(&app, &events, 4).await;

    check_range_against_hand_count(
        &app,
        &events,
        (&first.to_string(), &last.to_string()),
        range,
    )
    .await;
}

#[actix_web::test]
async fn a_rebuild_from_the_raw_events_gives_the_same_numbers() {
    let events = history(11);
    let app = spawn_app_with(|s| s.utc_offset = time::UtcOffset::UTC).await;
    push_all(&app, &events, 3).await;
    let before = app
        .get_owned(format!("/api/stats?from={FROM}&to={TO}"))
        .await
        .json();

    scene_qr::commands::rebuild_statistics(&app.settings.database_url, time::UtcOffset::UTC)
        .await
        .unwrap();

    let after = app
        .get_owned(format!("/api/stats?from={FROM}&to={TO}"))
        .await
        .json();
    assert_eq!(before, after);
    check_against_hand_count(&app, &events).await;
}

#[actix_web::test]
async fn a_retention_is_null_without_new_followers() {
    let app = spawn_app().await;
    assert_eq!(
        app.push(&event_xml("ann", DAY0 + 100, "SCAN", "door"))
            .await
            .text(),
        "success"
    );

    let stats = app
        .get("/api/stats?from=2000-01-01&to=2000-01-31&scene=door")
        .await
        .json();

    let totals = &stats["totals"];
    assert_eq!(totals["scans"], 1);
    assert_eq!(totals["lost"], 0);
    assert!(totals["retention"].is_null());
    assert!(totals["retention_d1"].is_null());
    assert_eq!(stats["unique_users_estimated"], false);
}

/// A database as the release before the statistics aggregates made it: their migration
/// must bring it forward, and the first start must count its events.
#[actix_web::test]
async fn a_database_from_before_the_aggregates_is_brought_forward() {
    use std::str::FromStr;

    use sqlx::ConnectOptions;
    use sqlx::sqlite::SqliteConnectOptions;

    let events = history(5);
    let old = tempfile::tempdir().unwrap();
    let migrations = old.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    for name in ["0001_initial.sql", "0002_write_probe.sql"] {
        let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations/sqlite")
            .join(name);
        std::fs::copy(from, migrations.join(name)).unwrap();
    }
    let url = format!("sqlite://{}", old.path().join("old.db").display());
    let mut connection = SqliteConnectOptions::from_str(&url)
        .unwrap()
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(migrations.as_path())
        .await
        .unwrap()
        .run(&mut connection)
        .await
        .unwrap();
    for e in &events {
        let (event, key) = match (e.kind, e.scene) {
            (Kind::Subscribe, Some(scene)) => ("subscribe", format!("qrscene_{scene}")),
            (Kind::Subscribe, None) => ("subscribe", String::new()),
            (Kind::Scan, scene) => ("SCAN", scene.unwrap_or_default().to_string()),
            (Kind::Unsubscribe, _) => ("unsubscribe", String::new()),
        };
        sqlx::query(
            "INSERT INTO scan_events
                 (scene, event, event_key, openid, ticket, new_follower, created_at, received_at)
             VALUES (?, ?, ?, ?, NULL, ?, ?, ?)",
        )
        .bind(if e.kind == Kind::Unsubscribe {
            None
        } else {
            e.scene
        })
        .bind(event)
        .bind(key)
        .bind(&e.user)
        .bind(e.kind == Kind::Subscribe && e.scene.is_some())
        .bind(e.at)
        .bind(e.at)
        .execute(&mut connection)
        .await
        .unwrap();
    }
    drop(connection);

    let app = spawn_app_with(|s| {
        s.utc_offset = time::UtcOffset::UTC;
        s.database_url = url.clone();
    })
    .await;

    check_against_hand_count(&app, &events).await;
}
