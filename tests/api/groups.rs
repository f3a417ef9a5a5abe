//! Scene settings and groups: `GET`/`PUT /api/scenes/{scene}`, the scene page's form, the
//! statistics of a group checked against a count by hand, and the `/stats` table's pages,
//! search and order.

use std::collections::BTreeSet;

use futures_util::future::join_all;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::helpers::{TestApp, event_xml, spawn_app, spawn_app_with};

/// 2000-01-01T00:00:00Z.
const DAY0: i64 = 946_684_800;
const DAY: i64 = 86_400;

async fn settings(app: &TestApp, scene: &str) -> Value {
    let answer = app.get_owned(format!("/api/scenes/{scene}")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

async fn put(app: &TestApp, scene: &str, body: Value) -> Value {
    let answer = app
        .put(&format!("/api/scenes/{scene}"), &body.to_string(), &[])
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

#[actix_web::test]
async fn a_scene_never_configured_has_no_label_and_no_group() {
    let app = spawn_app().await;

    let answer = settings(&app, "shop%2012").await;

    assert_eq!(
        answer,
        json!({"scene": "shop 12", "label": null, "group": null})
    );
}

#[actix_web::test]
async fn settings_put_are_read_back() {
    let app = spawn_app().await;

    let saved = put(
        &app,
        "7",
        json!({"label": "Door poster", "group": " East region "}),
    )
    .await;

    let expected = json!({"scene": "7", "label": "Door poster", "group": "East region"});
    assert_eq!(saved, expected);
    assert_eq!(settings(&app, "7").await, expected);
    let stats = app.get("/api/stats").await.json();
    assert_eq!(stats["scenes"][0]["scene"], "7");
    assert_eq!(stats["scenes"][0]["label"], "Door poster");
    assert_eq!(stats["scenes"][0]["group"], "East region");
}

#[actix_web::test]
async fn a_field_left_out_stays_and_a_null_or_empty_one_is_removed() {
    let app = spawn_app().await;
    put(&app, "7", json!({"label": "Door", "group": "East"})).await;

    let group_moved = put(&app, "7", json!({"group": "West"})).await;
    let group_removed = put(&app, "7", json!({"group": null})).await;
    let label_emptied = put(&app, "7", json!({"label": "", "group": "North"})).await;

    assert_eq!(group_moved["label"], "Door");
    assert_eq!(group_moved["group"], "West");
    assert_eq!(group_removed["label"], "Door");
    assert!(group_removed["group"].is_null());
    assert!(label_emptied["label"].is_null());
    assert_eq!(label_emptied["group"], "North");
    assert_eq!(settings(&app, "7").await, label_emptied);
}

#[actix_web::test]
async fn bad_settings_are_400_naming_the_field_and_what_is_allowed() {
    let app = spawn_app().await;
    let long_group = "g".repeat(51);
    let long_label = "l".repeat(101);

    for (body, says) in [
        (json!({"group": long_group}).to_string(), "group has 51"),
        (json!({"label": long_label}).to_string(), "label has 101"),
        (
            json!({"group": "East\nregion"}).to_string(),
            "group contains",
        ),
        (json!({"label": "x", "colour": "red"}).to_string(), "colour"),
        (json!({"group": 5}).to_string(), "invalid type"),
        ("{}".to_string(), "neither label nor group"),
        ("label=x".to_string(), "not a settings object"),
    ] {
        let answer = app.put("/api/scenes/7", &body, &[]).await;

        assert_eq!(answer.status, 400, "{body}");
        let error = answer.json();
        assert!(
            error["error"].as_str().unwrap().contains(says),
            "{body}: {error}"
        );
        let hint = error["hint"].as_str().unwrap();
        assert!(hint.contains("1 to 50") && hint.contains("100"), "{hint}");
    }
    assert_eq!(
        settings(&app, "7").await,
        json!({"scene": "7", "label": null, "group": null}),
        "nothing saved"
    );
}

#[actix_web::test]
async fn a_text_that_is_no_scene_is_400_on_the_settings_api() {
    let app = spawn_app().await;
    let sixty_five = "a".repeat(65);

    let read = app.get_owned(format!("/api/scenes/{sixty_five}")).await;
    let write = app
        .put(
            &format!("/api/scenes/{sixty_five}"),
            r#"{"group": "East"}"#,
            &[],
        )
        .await;
    let control = app.get("/api/scenes/a%0Ab").await;

    for answer in [read, write, control] {
        assert_eq!(answer.status, 400);
        let error = answer.json();
        assert!(
            error["hint"]
                .as_str()
                .unwrap()
                .contains("1 to 64 characters"),
            "{error}"
        );
    }
}

#[actix_web::test]
async fn a_put_from_another_site_is_refused_and_one_from_this_site_taken() {
    let app = spawn_app().await;
    let host = app.address.trim_start_matches("http://").to_string();
    let own = format!("http://{host}");

    let cross_site = app
        .put(
            "/api/scenes/7",
            r#"{"group": "Evil"}"#,
            &[("Origin", "http://evil.example")],
        )
        .await;
    let same_site = app
        .put("/api/scenes/7", r#"{"group": "East"}"#, &[("Origin", &own)])
        .await;

    assert_eq!(cross_site.status, 403);
    assert_eq!(same_site.status, 200, "{}", same_site.text());
    assert_eq!(settings(&app, "7").await["group"], "East");
}

#[actix_web::test]
async fn the_settings_address_takes_get_and_put_only() {
    let app = spawn_app().await;

    let post = app.post("/api/scenes/7", b"{}".to_vec()).await;

    assert_eq!(post.status, 405);
    assert_eq!(post.headers.get("allow").unwrap(), "GET, PUT");
    assert_eq!(post.json()["status"], 405);
}

#[actix_web::test]
async fn the_scene_page_s_form_sets_the_group_and_the_other_forms_leave_it() {
    let app = spawn_app().await;

    let from_scene_page = app
        .post_form(
            "/labels",
            &[
                ("scene", "7"),
                ("label", "Door"),
                ("group", " East region "),
                ("back", "/stats/7"),
            ],
        )
        .await;
    let from_code_page = app
        .post_form("/labels", &[("scene", "7"), ("label", "Front door")])
        .await;
    let too_long = app
        .post_form(
            "/labels",
            &[("scene", "7"), ("label", "x"), ("group", &"g".repeat(51))],
        )
        .await;

    assert_eq!(from_scene_page.status, 303);
    assert_eq!(from_code_page.status, 303);
    assert_eq!(too_long.status, 400);
    assert!(
        too_long.text().contains("group has 51"),
        "{}",
        too_long.text()
    );
    assert_eq!(
        settings(&app, "7").await,
        json!({"scene": "7", "label": "Front door", "group": "East region"})
    );
    let page = app.get("/stats/7").await.text();
    assert!(
        page.contains(r#"name="group" value="East region""#),
        "{page}"
    );
}

#[actix_web::test]
async fn a_label_or_group_with_markup_shows_as_text_on_every_page() {
    let app = spawn_app().await;
    put(
        &app,
        "7",
        json!({"label": "<script>alert(1)</script>", "group": "<script>alert(2)</script>"}),
    )
    .await;

    let pages = [
        app.get("/stats/7").await.text(),
        app.get("/stats").await.text(),
        app.get("/stats?view=groups").await.text(),
        app.get("/stats?group=%3Cscript%3Ealert(2)%3C%2Fscript%3E")
            .await
            .text(),
    ];

    for page in &pages {
        assert!(!page.contains("<script>"), "{page}");
    }
    assert!(pages[0].contains("&#60;script&#62;alert(1)"));
    assert!(pages[0].contains("&#60;script&#62;alert(2)"));
    for page in &pages[1..] {
        assert!(page.contains("&#60;script&#62;alert(2)"), "{page}");
    }
}

// The statistics of groups, against a count by hand.

const EAST: [&str; 3] = ["e1", "e2", "e3"];
const WEST: [&str; 2] = ["w1", "w2"];
/// In no group.
const SOLO: &str = "solo";

#[derive(Debug, Clone)]
struct Event {
    user: String,
    at: i64,
    /// `subscribe`, `SCAN` or `unsubscribe`.
    kind: &'static str,
    /// The scene of a scan or of a follow from a code.
    scene: Option<&'static str>,
}

impl Event {
    fn xml(&self) -> String {
        let key = match (self.kind, self.scene) {
            ("subscribe", Some(scene)) => format!("qrscene_{scene}"),
            (_, scene) => scene.unwrap_or_default().to_string(),
        };
        event_xml(&self.user, self.at, self.kind, &key)
    }
}

/// Users follow through any scene (or none), scan, unfollow and follow again through
/// another scene, over 30 days, so that a group's scenes share users.
fn history() -> Vec<Event> {
    let scenes: Vec<&'static str> = EAST.iter().chain(&WEST).copied().chain([SOLO]).collect();
    let mut rng = StdRng::seed_from_u64(13);
    let mut events = Vec::new();
    for n in 0..30 {
        let user = format!("user-{n}");
        let mut at = DAY0 + rng.random_range(0..5 * DAY);
        let mut following = false;
        for _ in 0..rng.random_range(2..8) {
            let scene = scenes[rng.random_range(0..scenes.len())];
            let (kind, scene) = if !following {
                following = true;
                ("subscribe", (rng.random_range(0..10) < 8).then_some(scene))
            } else if rng.random_range(0..10) < 6 {
                ("SCAN", Some(scene))
            } else {
                following = false;
                ("unsubscribe", None)
            };
            events.push(Event {
                user: user.clone(),
                at,
                kind,
                scene,
            });
            at += rng.random_range(600..(6 * DAY));
        }
    }
    events
}

/// The range the checks use: days 3 to 14, so that events fall before, inside and after.
const FROM: &str = "2000-01-04";
const TO: &str = "2000-01-15";
const RANGE: (i64, i64) = (DAY0 + 3 * DAY, DAY0 + 15 * DAY);

/// Counts of the scenes `of` over [`RANGE`], by hand.
#[derive(Debug, PartialEq)]
struct Counted {
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
        .filter(|e| e.kind == "subscribe" && e.at > follow.at)
        .map(|e| e.at)
        .min()
        .unwrap_or(i64::MAX);
    mine.filter(|e| e.kind == "unsubscribe" && e.at >= follow.at && e.at < next_follow)
        .map(|e| e.at)
        .min()
}

fn in_range(e: &Event) -> bool {
    (RANGE.0..RANGE.1).contains(&e.at)
}

fn follows_of<'a>(events: &'a [Event], of: &'a [&str]) -> Vec<&'a Event> {
    events
        .iter()
        .filter(|e| e.kind == "subscribe" && e.scene.is_some_and(|s| of.contains(&s)))
        .filter(|e| in_range(e))
        .collect()
}

fn count(events: &[Event], of: &[&str]) -> Counted {
    let scans: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind != "unsubscribe" && e.scene.is_some_and(|s| of.contains(&s)))
        .filter(|e| in_range(e))
        .collect();
    let users: BTreeSet<&str> = scans.iter().map(|e| e.user.as_str()).collect();
    let follows = follows_of(events, of);
    Counted {
        scans: scans.len() as i64,
        new_followers: follows.len() as i64,
        unique_users: users.len() as i64,
        lost: follows
            .iter()
            .filter(|f| first_unfollow(events, f).is_some())
            .count() as i64,
    }
}

/// D`days` retention by hand: every follow of 2000 is old enough.
fn cohort(events: &[Event], of: &[&str], days: i64) -> Option<f64> {
    let follows = follows_of(events, of);
    let kept = follows
        .iter()
        .filter(|f| first_unfollow(events, f).is_none_or(|u| u - f.at >= days * DAY))
        .count();
    (!follows.is_empty()).then(|| kept as f64 / follows.len() as f64)
}

fn counted(row: &Value) -> Counted {
    let field = |name: &str| {
        row[name]
            .as_i64()
            .unwrap_or_else(|| panic!("{name} missing in {row}"))
    };
    Counted {
        scans: field("scans"),
        new_followers: field("new_followers"),
        unique_users: field("unique_users"),
        lost: field("lost"),
    }
}

fn assert_share(actual: &Value, expected: Option<f64>, what: &str) {
    match expected {
        None => assert!(actual.is_null(), "{what}: {actual}"),
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

async fn push_all(app: &TestApp, xml: impl IntoIterator<Item = String>) {
    let pushes: Vec<String> = xml.into_iter().collect();
    for chunk in pushes.chunks(16) {
        for answer in join_all(chunk.iter().map(|xml| app.push(xml))).await {
            assert_eq!(answer.text(), "success");
        }
    }
}

/// An app with [`history`] pushed and the East and West groups set.
async fn grouped_app(events: &[Event]) -> TestApp {
    let app = spawn_app_with(|s| s.utc_offset = time::UtcOffset::UTC).await;
    push_all(&app, events.iter().map(Event::xml)).await;
    for (group, scenes) in [("East", &EAST[..]), ("West", &WEST[..])] {
        for scene in scenes {
            put(&app, scene, json!({"group": group})).await;
        }
    }
    app
}

#[actix_web::test]
async fn a_group_s_totals_and_retentions_match_a_count_by_hand() {
    let events = history();
    let app = grouped_app(&events).await;

    for (group, scenes) in [("East", &EAST[..]), ("West", &WEST[..])] {
        let stats = app
            .get_owned(format!("/api/stats?from={FROM}&to={TO}&group={group}"))
            .await
            .json();

        let totals = &stats["totals"];
        let want = count(&events, scenes);
        assert!(want.new_followers > 0 && want.lost > 0, "{group}: {want:?}");
        assert_eq!(counted(totals), want, "{group}");
        assert_eq!(stats["group"], group);
        assert_eq!(
            (
                totals["other_follows"].as_i64(),
                totals["unfollows"].as_i64()
            ),
            (Some(0), Some(0))
        );
        let share = (want.new_followers - want.lost) as f64 / want.new_followers as f64;
        assert_share(&totals["retention"], Some(share), group);
        for days in [1, 7, 30] {
            assert_share(
                &totals[format!("retention_d{days}")],
                cohort(&events, scenes, days),
                &format!("{group} D{days}"),
            );
        }
    }
}

#[actix_web::test]
async fn the_group_filter_keeps_the_group_s_scenes_whose_sums_are_the_group_s() {
    let events = history();
    let app = grouped_app(&events).await;

    let stats = app
        .get_owned(format!("/api/stats?from={FROM}&to={TO}&group=East"))
        .await
        .json();

    let rows = stats["scenes"].as_array().unwrap();
    let names: BTreeSet<&str> = rows.iter().map(|r| r["scene"].as_str().unwrap()).collect();
    assert_eq!(names, BTreeSet::from(EAST));
    assert!(rows.iter().all(|r| r["group"] == "East"));
    for scene in EAST {
        let row = rows.iter().find(|r| r["scene"] == scene).unwrap();
        assert_eq!(counted(row), count(&events, &[scene]), "{scene}");
    }
    let sum = |field: &str| rows.iter().map(|r| r[field].as_i64().unwrap()).sum::<i64>();
    let totals = &stats["totals"];
    for field in ["scans", "new_followers", "lost", "retained"] {
        assert_eq!(totals[field].as_i64(), Some(sum(field)), "{field}");
    }
    let daily_scans: i64 = stats["daily"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["scans"].as_i64().unwrap())
        .sum();
    assert_eq!(daily_scans, sum("scans"));
    let daily_followers: i64 = stats["daily"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["new_followers"].as_i64().unwrap())
        .sum();
    assert_eq!(daily_followers, sum("new_followers"));
}

#[actix_web::test]
async fn the_groups_view_has_each_group_s_totals_and_the_scenes_in_none_last() {
    let events = history();
    let app = grouped_app(&events).await;

    let stats = app
        .get_owned(format!(
            "/api/stats?from={FROM}&to={TO}&view=groups&sort=group&order=asc"
        ))
        .await
        .json();
    let page = app
        .get_owned(format!("/stats?from={FROM}&to={TO}&view=groups"))
        .await;

    let groups = stats["groups"].as_array().unwrap();
    let names: Vec<&Value> = groups.iter().map(|g| &g["group"]).collect();
    assert_eq!(names, [&json!("East"), &json!("West"), &Value::Null]);
    for (group, scenes) in [
        (&groups[0], &EAST[..]),
        (&groups[1], &WEST[..]),
        (&groups[2], &[SOLO][..]),
    ] {
        assert_eq!(counted(group), count(&events, scenes), "{group}");
        let listed: BTreeSet<&str> = group["scenes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(listed, scenes.iter().copied().collect(), "{group}");
    }
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("<details>"), "{html}");
    assert!(html.contains("group=East"), "{html}");
    assert!(html.contains("Scenes in no group"), "{html}");
    assert!(
        html.contains(r#"<a href="/stats/e1?from=2000-01-04&#38;to=2000-01-15">e1</a>"#),
        "{html}"
    );
}

#[actix_web::test]
async fn the_chart_has_scans_new_followers_and_lost_followers() {
    let app = spawn_app_with(|s| s.utc_offset = time::UtcOffset::UTC).await;
    push_all(
        &app,
        [
            event_xml("ann", DAY0 + 100, "subscribe", "qrscene_door"),
            event_xml("bob", DAY0 + 200, "subscribe", "qrscene_door"),
            event_xml("bob", DAY0 + DAY, "unsubscribe", ""),
            event_xml("cat", DAY0 + DAY, "SCAN", "door"),
        ],
    )
    .await;

    let page = app.get("/stats?from=2000-01-01&to=2000-01-03").await.text();
    let stats = app
        .get("/api/stats?from=2000-01-01&to=2000-01-03")
        .await
        .json();

    assert!(page.contains("2000-01-01: 2 scans"), "{page}");
    assert!(page.contains("2000-01-01: 2 new followers"), "{page}");
    assert!(page.contains("2000-01-01: 1 lost since"), "{page}");
    assert!(page.contains("2000-01-02: 1 scans"), "{page}");
    assert_eq!(
        stats["daily"],
        json!([
            {"date": "2000-01-01", "scans": 2, "new_followers": 2, "lost": 1},
            {"date": "2000-01-02", "scans": 1, "new_followers": 0, "lost": 0},
            {"date": "2000-01-03", "scans": 0, "new_followers": 0, "lost": 0},
        ])
    );
}

// The table: pages, search, order.

/// Scenes 1 to 120, one scan each.
async fn hundred_and_twenty_scenes() -> TestApp {
    let app = spawn_app().await;
    push_all(
        &app,
        (1..=120).map(|n| event_xml(&format!("u{n}"), DAY0 + n * 60, "SCAN", &n.to_string())),
    )
    .await;
    app
}

/// The scenes of the table's rows on a `/stats` page, in order.
fn table_scenes(html: &str) -> Vec<String> {
    html.split("<td><a href=\"/stats/")
        .skip(1)
        .map(|row| row[..row.find('?').unwrap()].to_string())
        .collect()
}

#[actix_web::test]
async fn the_table_shows_fifty_rows_a_page_with_links_to_the_pages_beside() {
    let app = hundred_and_twenty_scenes().await;
    let range = "from=2000-01-01&to=2000-01-31";

    let first = app.get_owned(format!("/stats?{range}")).await.text();
    let second = app.get_owned(format!("/stats?{range}&page=2")).await.text();
    let last = app.get_owned(format!("/stats?{range}&page=3")).await.text();
    let json = app
        .get_owned(format!("/api/stats?{range}&page=3"))
        .await
        .json();

    // Every scene has one scan: ties stay in scene order.
    let expected =
        |scenes: std::ops::RangeInclusive<i32>| scenes.map(|n| n.to_string()).collect::<Vec<_>>();
    assert_eq!(table_scenes(&first), expected(1..=50));
    assert_eq!(table_scenes(&second), expected(51..=100));
    assert_eq!(table_scenes(&last), expected(101..=120));
    assert!(first.contains("Page 1 of 3"), "{first}");
    assert!(
        last.contains("Page 3 of 3 · scenes 101–120 of 120"),
        "{last}"
    );
    let next = |page: u32| {
        format!(
            r#"rel="next" href="/stats?from=2000-01-01&#38;to=2000-01-31&#38;sort=scans&#38;order=desc&#38;page={page}""#
        )
    };
    let previous = |page: &str| {
        format!(
            r#"rel="prev" href="/stats?from=2000-01-01&#38;to=2000-01-31&#38;sort=scans&#38;order=desc{page}""#
        )
    };
    assert!(first.contains(&next(2)), "{first}");
    assert!(!first.contains("rel=\"prev\""));
    assert!(second.contains(&previous("")), "{second}");
    assert!(second.contains(&next(3)), "{second}");
    assert!(last.contains(&previous("&#38;page=2")), "{last}");
    assert!(!last.contains("rel=\"next\""));
    assert_eq!(
        json["scenes"].as_array().unwrap().len(),
        120,
        "the JSON has every row"
    );
}

#[actix_web::test]
async fn page_links_keep_the_search_order_and_group_and_a_page_past_the_end_is_400() {
    let app = hundred_and_twenty_scenes().await;
    for n in 1..=60 {
        put(&app, &n.to_string(), json!({"group": "Early"})).await;
    }

    let page = app
        .get("/stats?from=2000-01-01&to=2000-01-31&group=Early&q=&sort=scene&order=desc")
        .await
        .text();
    let past = app
        .get("/stats?from=2000-01-01&to=2000-01-31&group=Early&page=3")
        .await;
    let past_json = app
        .get("/api/stats?from=2000-01-01&to=2000-01-31&group=Early&page=3")
        .await;

    assert_eq!(table_scenes(&page)[..2], ["60", "59"]);
    assert!(page.contains("Page 1 of 2 · scenes 1–50 of 60"), "{page}");
    assert!(
        page.contains(r#"href="/stats?from=2000-01-01&#38;to=2000-01-31&#38;sort=scene&#38;order=desc&#38;group=Early&#38;page=2""#),
        "{page}"
    );
    assert_eq!(past.status, 400);
    assert!(
        past.text().contains("page 3 is past the last page, 2"),
        "{}",
        past.text()
    );
    assert_eq!(past_json.status, 200, "the JSON is not paged");
}

#[actix_web::test]
async fn the_search_finds_scenes_by_key_or_label_ignoring_case() {
    let app = spawn_app().await;
    push_all(
        &app,
        [
            event_xml("ann", DAY0 + 100, "SCAN", "Shop-12"),
            event_xml("ann", DAY0 + 200, "SCAN", "7"),
            event_xml("ann", DAY0 + 300, "SCAN", "8"),
        ],
    )
    .await;
    put(&app, "7", json!({"label": "Shopping mall door"})).await;
    put(&app, "8", json!({"label": "Gate"})).await;
    let range = "from=2000-01-01&to=2000-01-31";

    let scenes = |stats: Value| {
        stats["scenes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["scene"].as_str().unwrap().to_string())
            .collect::<BTreeSet<_>>()
    };
    let lower = app
        .get_owned(format!("/api/stats?{range}&q=shop"))
        .await
        .json();
    let upper = app
        .get_owned(format!("/api/stats?{range}&q=%20SHOP%20"))
        .await
        .json();
    let page = app.get_owned(format!("/stats?{range}&q=sHoP")).await.text();
    let csv = app
        .get_owned(format!("/stats.csv?{range}&q=gate"))
        .await
        .text();
    let none = app
        .get_owned(format!("/stats?{range}&q=nothing"))
        .await
        .text();
    let too_long = app
        .get_owned(format!("/api/stats?q={}", "x".repeat(65)))
        .await;

    let shops = BTreeSet::from(["7".to_string(), "Shop-12".to_string()]);
    assert_eq!(scenes(lower), shops);
    assert_eq!(scenes(upper), shops);
    assert_eq!(
        table_scenes(&page).into_iter().collect::<BTreeSet<_>>(),
        shops
    );
    assert!(page.contains(r#"name="q" value="sHoP""#), "{page}");
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with("8,Gate,"), "{csv}");
    assert!(none.contains("Nothing matches"), "{none}");
    assert_eq!(too_long.status, 400);
    assert!(
        too_long.json()["error"]
            .as_str()
            .unwrap()
            .contains("65 characters")
    );
}

#[actix_web::test]
async fn the_table_sorts_by_group_lost_and_retention() {
    let app = spawn_app().await;
    // "half": two new followers, one lost; "kept": one, kept; "gone": three, all lost.
    let mut pushes = Vec::new();
    for (scene, followers, lost) in [("half", 2, 1), ("kept", 1, 0), ("gone", 3, 3)] {
        for n in 0..followers {
            let user = format!("{scene}-{n}");
            pushes.push(event_xml(
                &user,
                DAY0 + 100 + n,
                "subscribe",
                &format!("qrscene_{scene}"),
            ));
            if n < lost {
                pushes.push(event_xml(&user, DAY0 + DAY + n, "unsubscribe", ""));
            }
        }
    }
    push_all(&app, pushes).await;
    put(&app, "half", json!({"group": "West"})).await;
    put(&app, "kept", json!({"group": "East"})).await;

    let order = |query: &'static str| {
        let app = &app;
        async move {
            let stats = app
                .get(&format!("/api/stats?from=2000-01-01&to=2000-01-31&{query}"))
                .await
                .json();
            stats["scenes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["scene"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };

    assert_eq!(
        order("sort=lost&order=desc").await,
        ["gone", "half", "kept"]
    );
    assert_eq!(order("sort=lost&order=asc").await, ["kept", "half", "gone"]);
    assert_eq!(
        order("sort=retention&order=asc").await,
        ["gone", "half", "kept"]
    );
    assert_eq!(
        order("sort=retention&order=desc").await,
        ["kept", "half", "gone"]
    );
    assert_eq!(
        order("sort=group&order=asc").await,
        ["gone", "kept", "half"]
    );
    assert_eq!(
        order("sort=group&order=desc").await,
        ["half", "kept", "gone"]
    );
    let page = app
        .get("/stats?from=2000-01-01&to=2000-01-31&sort=retention&order=asc")
        .await
        .text();
    assert_eq!(table_scenes(&page), ["gone", "half", "kept"]);
    assert!(page.contains("Retention ▲"), "{page}");
}

#[actix_web::test]
async fn bad_table_parameters_are_400_with_what_is_allowed() {
    let app = spawn_app().await;

    for (query, says) in [
        (format!("group={}", "g".repeat(51)), "group has 51"),
        ("group=a%0Ab".to_string(), "control character"),
        ("view=tiles".to_string(), "view \"tiles\""),
        ("page=abc".to_string(), "page \"abc\""),
        ("page=0".to_string(), "page \"0\""),
        ("sort=colour".to_string(), "retention"),
    ] {
        let page = app.get_owned(format!("/stats?{query}")).await;
        let json = app.get_owned(format!("/api/stats?{query}")).await;

        assert_eq!(page.status, 400, "{query}");
        assert_eq!(json.status, 400, "{query}");
        let error = json.json();
        assert!(
            error["error"].as_str().unwrap().contains(says),
            "{query}: {error}"
        );
        let hint = error["hint"].as_str().unwrap();
        assert!(
            hint.contains("view (scenes or groups)") && hint.contains("50 rows a page"),
            "{hint}"
        );
    }
}
