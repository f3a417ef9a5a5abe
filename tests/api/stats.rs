//! Statistics, labels, the inventory of codes, and the sandbox's simulated scans.

use futures_util::future::join_all;
use scene_qr::emulator::Api;

use crate::helpers::{TestApp, event_xml, spawn_app, spawn_app_with};

/// 2000-01-01T00:00:00Z and the days after it.
const DAY0: i64 = 946_684_800;
const DAY: i64 = 86_400;

/// Scene "poster": two new followers, one of whom scans again the next day.
/// Scene "42": one existing follower, on day 3. Plus noise outside any scene.
async fn push_sample(app: &TestApp) {
    for xml in [
        event_xml("alice", DAY0 + 100, "subscribe", "qrscene_poster"),
        event_xml("bob", DAY0 + 200, "subscribe", "qrscene_poster"),
        event_xml("alice", DAY0 + DAY + 300, "SCAN", "poster"),
        event_xml("carol", DAY0 + 3 * DAY + 400, "SCAN", "42"),
        event_xml("dave", DAY0 + 500, "subscribe", ""),
        event_xml("bob", DAY0 + 2 * DAY, "unsubscribe", ""),
    ] {
        assert_eq!(app.push(&xml).await.text(), "success");
    }
}

#[actix_web::test]
async fn the_numbers_per_scene_match_the_pushed_events() {
    let app = spawn_app().await;
    push_sample(&app).await;

    let stats = app
        .get("/api/stats?from=2000-01-01&to=2000-01-31")
        .await
        .json();

    let scenes = stats["scenes"].as_array().unwrap();
    assert_eq!(scenes.len(), 2);
    let poster = &scenes[0];
    assert_eq!(poster["scene"], "poster");
    assert_eq!(
        (
            poster["scans"].as_i64(),
            poster["new_followers"].as_i64(),
            poster["unique_users"].as_i64()
        ),
        (Some(3), Some(2), Some(2))
    );
    assert_eq!(poster["last_scan"], "2000-01-02T00:05:00Z");
    let answer = &scenes[1];
    assert_eq!(answer["scene"], "42");
    assert_eq!(
        (answer["scans"].as_i64(), answer["new_followers"].as_i64()),
        (Some(1), Some(0))
    );
    let totals = &stats["totals"];
    assert_eq!(totals["scans"], 4);
    assert_eq!(totals["unique_users"], 3);
    assert_eq!(totals["other_follows"], 1);
    assert_eq!(totals["unfollows"], 1);
    let daily: Vec<i64> = stats["daily"].as_array().unwrap()[..5]
        .iter()
        .map(|d| d["scans"].as_i64().unwrap())
        .collect();
    assert_eq!(daily, [2, 1, 0, 1, 0]);
}

#[actix_web::test]
async fn the_csv_has_a_header_and_the_same_numbers() {
    let app = spawn_app().await;
    push_sample(&app).await;

    let csv = app.get("/stats.csv?from=2000-01-01&to=2000-01-31").await;

    assert_eq!(csv.status, 200);
    assert_eq!(csv.content_type(), "text/csv; charset=utf-8");
    assert_eq!(
        csv.text(),
        "\u{feff}scene,label,group,kinds,scans,new_followers,unique_users,lost,retained,retention,last_scan\n\
         poster,,,,3,2,2,1,1,0.5000,2000-01-02T00:05:00Z\n\
         42,,,,1,0,1,0,0,,2000-01-04T00:06:40Z\n"
    );
}

/// More scenes than the CSV counts at a time (200 a chunk): the file comes streamed (no
/// length announced before the body) and still whole, every scene once, in the table's order,
/// each with its own numbers.
#[actix_web::test]
async fn a_csv_of_many_scenes_arrives_streamed_whole_and_in_order() {
    let app = spawn_app().await;
    // Scene n: user n scans on day 0; for every third scene, user n again and user n + 1
    // on day 1 (three scans, two unique users, one of them counted in two scenes).
    let scenes = 1..=450_i64;
    let mut pushes = Vec::new();
    for n in scenes.clone() {
        pushes.push(event_xml(
            &format!("u{n}"),
            DAY0 + n,
            "SCAN",
            &n.to_string(),
        ));
        if n % 3 == 0 {
            for user in [n, n + 1] {
                let at = DAY0 + DAY + user;
                pushes.push(event_xml(&format!("u{user}"), at, "SCAN", &n.to_string()));
            }
        }
    }
    for batch in pushes.chunks(50) {
        for answer in join_all(batch.iter().map(|xml| app.push(xml))).await {
            assert_eq!(answer.text(), "success");
        }
    }

    let csv = app.get("/stats.csv?from=2000-01-01&to=2000-01-31").await;

    assert_eq!(csv.status, 200);
    assert!(
        !csv.headers.contains_key("content-length"),
        "{:?}",
        csv.headers
    );
    let text = csv.text();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "\u{feff}scene,label,group,kinds,scans,new_followers,unique_users,lost,retained,\
             retention,last_scan"
        )
    );
    // Most scans first; ties in scene order.
    let (busy, quiet): (Vec<i64>, Vec<i64>) = scenes.partition(|n| n % 3 == 0);
    let expected: Vec<(i64, i64, i64)> = busy
        .iter()
        .map(|&n| (n, 3, 2))
        .chain(quiet.iter().map(|&n| (n, 1, 1)))
        .collect();
    let got: Vec<(i64, i64, i64)> = lines
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), 11, "{line}");
            let number = |i: usize| cells[i].parse::<i64>().unwrap();
            (number(0), number(4), number(6))
        })
        .collect();
    assert_eq!(got, expected);
}

#[actix_web::test]
async fn a_date_range_counts_only_its_days() {
    let app = spawn_app().await;
    push_sample(&app).await;

    let stats = app
        .get("/api/stats?from=2000-01-02&to=2000-01-03")
        .await
        .json();

    assert_eq!(stats["totals"]["scans"], 1);
    assert_eq!(stats["daily"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn days_follow_the_configured_utc_offset() {
    let app = spawn_app_with(|s| s.utc_offset = time::UtcOffset::from_hms(8, 0, 0).unwrap()).await;
    // 20:00 UTC on 1 January is 04:00 on 2 January in Beijing.
    app.push(&event_xml("u", DAY0 + 20 * 3600, "SCAN", "late"))
        .await;

    let stats = app
        .get("/api/stats?from=2000-01-02&to=2000-01-02")
        .await
        .json();

    assert_eq!(stats["totals"]["scans"], 1);
    assert_eq!(stats["scenes"][0]["last_scan"], "2000-01-02T04:00:00+08:00");
}

#[actix_web::test]
async fn the_table_sorts_by_any_column() {
    let app = spawn_app().await;
    push_sample(&app).await;
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

    assert_eq!(order("sort=scans&order=asc").await, ["42", "poster"]);
    assert_eq!(order("sort=scene&order=asc").await, ["42", "poster"]);
    assert_eq!(order("sort=last&order=desc").await, ["42", "poster"]);
}

#[actix_web::test]
async fn pages_show_counts_and_never_an_openid() {
    let app = spawn_app().await;
    push_sample(&app).await;

    let page = app.get("/stats?from=2000-01-01&to=2000-01-31").await;
    let detail = app.get("/stats/poster?from=2000-01-01&to=2000-01-31").await;

    assert_eq!(page.status, 200);
    assert_eq!(detail.status, 200);
    for text in [
        page.text(),
        detail.text(),
        app.get("/stats.csv?from=2000-01-01&to=2000-01-31")
            .await
            .text(),
    ] {
        for openid in ["alice", "bob", "carol", "dave"] {
            assert!(!text.contains(openid), "{openid} shown");
        }
    }
    assert!(page.text().contains("<svg class=\"chart\""));
    assert!(detail.text().contains("2000-01-01: 2 scans"));
}

#[actix_web::test]
async fn bad_statistics_queries_are_400_with_what_is_allowed() {
    let app = spawn_app().await;

    for query in [
        "from=yesterday",
        "from=2000-02-01&to=2000-01-01",
        "from=2000-01-01&to=2002-01-01",
        "sort=openid",
        "order=up",
        "page=0",
    ] {
        let page = app.get(&format!("/stats?{query}")).await;
        let json = app.get(&format!("/api/stats?{query}")).await;
        assert_eq!(page.status, 400, "{query}");
        assert_eq!(json.status, 400, "{query}");
        assert!(json.json()["hint"].as_str().unwrap().contains("YYYY-MM-DD"));
    }
}

#[actix_web::test]
async fn a_text_that_is_no_scene_is_refused_wherever_a_scene_is_named() {
    let app = spawn_app().await;
    let sixty_five = "a".repeat(65);

    let page = app.get(&format!("/stats/{sixty_five}")).await;
    let chart = app.get(&format!("/api/stats?scene={sixty_five}")).await;
    let label = app
        .post_form("/labels", &[("scene", "a\nb"), ("label", "x")])
        .await;
    let sixty_four = app.get(&format!("/stats/{}", "a".repeat(64))).await;

    assert_eq!(page.status, 400);
    assert!(page.text().contains("65 characters"), "{}", page.text());
    assert_eq!(chart.status, 400);
    assert!(
        chart.json()["error"]
            .as_str()
            .unwrap()
            .contains("65 characters")
    );
    assert_eq!(label.status, 400);
    assert!(
        label.text().contains("control character"),
        "{}",
        label.text()
    );
    // A valid scene: not refused, but unknown (no code, name or scan).
    assert_eq!(sixty_four.status, 404);
}

#[actix_web::test]
async fn a_scene_with_no_code_name_or_scan_gets_a_404_offering_its_code() {
    let app = spawn_app().await;

    let unknown = app.get("/stats/never-seen").await;
    let numbered = app.get("/stats/4242").await;
    let named = app
        .post_form("/labels", &[("scene", "never-seen"), ("label", "Door")])
        .await;
    let known = app.get("/stats/never-seen").await;

    assert_eq!(unknown.status, 404);
    let page = unknown.text();
    assert!(page.contains("Scene never-seen"), "{page}");
    assert!(!page.contains("made elsewhere"), "{page}");
    assert!(
        page.contains(r#"href="/open?scene=never-seen&#38;scene_type=str&#38;kind=permanent""#),
        "{page}"
    );
    assert!(
        numbered
            .text()
            .contains(r#"href="/open?scene=4242&#38;scene_type=id&#38;kind=temporary""#),
        "{}",
        numbered.text()
    );
    assert_eq!(named.status, 303);
    assert_eq!(known.status, 200);
    assert_eq!(app.emulator.codes_created(), 0);
}

#[actix_web::test]
async fn a_label_set_on_the_code_page_shows_everywhere() {
    let app = spawn_app().await;
    app.get("/qrcode?scene_str=shop-12").await;

    let saved = app
        .post_form(
            "/labels",
            &[
                ("scene", "shop-12"),
                ("label", "Shop 12 <counter>"),
                ("back", "/qrcode?scene_str=shop-12"),
            ],
        )
        .await;

    assert_eq!(saved.status, 303);
    assert_eq!(
        saved.headers.get("location").unwrap(),
        "/qrcode?scene_str=shop-12#name-saved"
    );
    let page = app.get("/qrcode?scene_str=shop-12").await.text();
    assert!(page.contains("Shop 12 &#60;counter&#62;"));
    let stats = app.get("/api/stats").await.json();
    assert_eq!(stats["scenes"][0]["label"], "Shop 12 <counter>");
    assert_eq!(stats["scenes"][0]["kinds"][0], "temporary");
}

#[actix_web::test]
async fn labels_are_checked_and_forms_from_other_sites_refused() {
    let app = spawn_app().await;
    let long = "x".repeat(101);

    let too_long = app
        .post_form("/labels", &[("scene", "1"), ("label", &long)])
        .await;
    let no_scene = app.post_form("/labels", &[("label", "x")]).await;
    let offsite_back = app
        .post_form(
            "/labels",
            &[("scene", "1"), ("label", "x"), ("back", "//evil.example/")],
        )
        .await;
    let cross_site = {
        let url = format!("{}/labels", app.address);
        awc::Client::new()
            .post(url)
            .insert_header(("Origin", "http://evil.example"))
            .send_body("scene=1&label=x")
            .await
            .unwrap()
            .status()
    };

    assert_eq!(too_long.status, 400);
    assert_eq!(no_scene.status, 400);
    assert_eq!(
        offsite_back.headers.get("location").unwrap(),
        "/stats/1#name-saved"
    );
    assert_eq!(cross_site, 403);
}

#[actix_web::test]
async fn a_formula_in_a_label_stays_text_in_the_csv() {
    let app = spawn_app().await;
    app.post_form("/labels", &[("scene", "9"), ("label", "=HYPERLINK(\"x\")")])
        .await;

    let csv = app.get("/stats.csv").await.text();

    assert!(csv.contains("9,\"'=HYPERLINK(\"\"x\"\")\""), "{csv}");
}

#[actix_web::test]
async fn every_created_code_is_in_the_inventory_of_its_scene() {
    let app = spawn_app().await;
    app.get("/qrcode?scene_id=5").await;
    app.get("/qrcode?scene_id=5&permanent=true").await;

    let detail = app.get("/stats/5").await.text();

    assert!(detail.contains("QR_SCENE"));
    assert!(detail.contains("QR_LIMIT_SCENE"));
    assert!(detail.contains(r#"href="/qrcode?scene_id=5&#38;permanent=true""#));
}

#[actix_web::test]
async fn after_a_restart_live_codes_are_reused_instead_of_created_again() {
    let app = spawn_app().await;
    let before = app
        .get("/api/qrcode?scene_id=5&permanent=true")
        .await
        .json();
    let temporary = app.get("/api/qrcode?scene_str=week").await.json();
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 2);

    let app = app.restart().await;
    let after = app
        .get("/api/qrcode?scene_id=5&permanent=true")
        .await
        .json();
    let temporary_after = app.get("/api/qrcode?scene_str=week").await.json();

    assert_eq!(before["ticket"], after["ticket"]);
    assert_eq!(temporary["ticket"], temporary_after["ticket"]);
    assert_eq!(temporary["expires_at"], temporary_after["expires_at"]);
    assert_eq!(
        app.emulator.calls(Api::QrcodeCreate),
        2,
        "no new create call"
    );
}

#[actix_web::test]
async fn in_sandbox_mode_a_simulated_scan_reaches_the_statistics() {
    let app = spawn_app_with(|s| {
        s.appid = None;
        s.appsecret = None;
        s.push_token = None;
    })
    .await;
    let page = app.get("/qrcode?scene_id=5").await.text();
    assert!(page.contains("Simulate scan: new follower"));

    let new = app
        .post_form("/sandbox/scan", &[("scene", "5"), ("follower", "new")])
        .await;
    let existing = app
        .post_form("/sandbox/scan", &[("scene", "5"), ("follower", "existing")])
        .await;

    assert_eq!(new.status, 303, "{}", new.text());
    assert_eq!(
        new.headers.get("location").unwrap(),
        "/stats/5#scan-simulated"
    );
    assert_eq!(existing.status, 303);
    let stats = app.get("/api/stats").await.json();
    assert_eq!(stats["scenes"][0]["scans"], 2);
    assert_eq!(stats["scenes"][0]["new_followers"], 1);
}

#[actix_web::test]
async fn live_mode_has_no_simulated_scans() {
    let app = spawn_app().await;

    let page = app.get("/qrcode?scene_id=5").await.text();
    let post = app
        .post_form("/sandbox/scan", &[("scene", "5"), ("follower", "new")])
        .await;

    assert!(!page.contains("Simulate scan"));
    assert_eq!(post.status, 404);
}

#[actix_web::test]
async fn a_saved_label_shows_on_the_page_whichever_worker_answers() {
    let app = spawn_app().await;
    let page = "/qrcode?scene_id=31";
    // At once, over several connections: each worker keeps a copy of the page.
    let before = join_all((0..16).map(|_| app.get(page))).await;
    assert!(before.iter().all(|p| !p.text().contains("Till 3")));

    let saved = app
        .post_form(
            "/labels",
            &[("scene", "31"), ("label", "Till 3"), ("back", page)],
        )
        .await;
    assert_eq!(saved.status, 303);

    let after = join_all((0..16).map(|_| app.get(page))).await;
    for page in &after {
        assert!(page.text().contains("Till 3"), "{}", page.text());
    }
}

#[actix_web::test]
async fn a_bad_range_shows_the_date_form_again_as_typed() {
    let app = spawn_app().await;

    let page = app.get("/stats?from=2000-02-01&to=2000-01-01").await;

    assert_eq!(page.status, 400);
    let text = page.text();
    assert!(
        text.contains(r#"<form action="/stats" method="get" class="range">"#),
        "{text}"
    );
    assert!(text.contains(r#"name="from" value="2000-02-01""#), "{text}");
    assert!(text.contains(r#"name="to" value="2000-01-01""#), "{text}");
    assert!(text.contains("YYYY-MM-DD"), "what is allowed: {text}");
    assert!(!text.contains("Back to the start"), "{text}");
}

#[actix_web::test]
async fn a_printed_statistics_page_keeps_its_chart_and_says_its_range() {
    let app = spawn_app().await;

    let page = app.get("/stats?from=2000-01-01&to=2000-01-31").await.text();
    let stylesheet = app.get("/static/style.css").await.text();

    assert!(
        page.contains(
            r#"<p class="print-only">From 2000-01-01 to 2000-01-31, days and times in UTC+00:00.</p>"#
        ),
        "{page}"
    );
    // Print hides the page's header bar, not the chart's bars (they share a class name).
    let print_rules: Vec<&str> = stylesheet.split("@media print").skip(1).collect();
    assert!(
        print_rules
            .iter()
            .all(|rules| !rules.contains("  .bar,") && !rules.contains(" .bar {")),
        "a print rule hides every .bar"
    );
    assert!(
        print_rules
            .iter()
            .any(|r| r.contains("header.bar, .actions"))
    );
    assert!(
        print_rules
            .iter()
            .any(|r| r.contains(".print-only { display: block; }"))
    );
}
