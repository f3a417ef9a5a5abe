//! Batches: stored, made at WeChat's pace, reused, stopped and resumed, and downloaded as
//! a ZIP whose images scan back to each code's `url`.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::{Duration, Instant};

use scene_qr::emulator::{Api, Fault};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// Longest a test waits for a batch to finish.
const FINISH_WITHIN: Duration = Duration::from_secs(30);

/// Submits `body` to `POST /api/batches` and returns the new batch's id.
async fn submit(app: &TestApp, body: Value) -> String {
    let answer = app.post_json("/api/batches", &body).await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let id = answer.json()["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        answer.headers.get("location").and_then(|l| l.to_str().ok()),
        Some(format!("/api/batches/{id}").as_str())
    );
    id
}

/// `GET /api/batches/{id}` once `done(progress)` holds, or the last answer after
/// [`FINISH_WITHIN`].
async fn progress_once(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + FINISH_WITHIN;
    loop {
        let answer = app.get_owned(format!("/api/batches/{id}")).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let progress = answer.json();
        if done(&progress) || Instant::now() > deadline {
            return progress;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

fn finished(progress: &Value) -> bool {
    matches!(progress["state"].as_str(), Some("done" | "stopped"))
}

#[actix_web::test]
async fn a_pattern_batch_makes_each_code_once_and_its_pages_cost_wechat_nothing_more() {
    let app = spawn_app().await;

    let id = submit(
        &app,
        json!({"pattern": "shop-{01..12}", "kind": "permanent"}),
    )
    .await;
    let progress = progress_once(&app, &id, finished).await;

    assert_eq!(progress["state"], "done", "{progress}");
    assert_eq!(progress["total"], 12);
    assert_eq!(progress["done"], 12);
    assert_eq!(progress["reused"], 0);
    assert_eq!(progress["errors"], json!([]));
    assert_eq!(app.emulator.codes_created(), 12);
    // Made into the cache the pages are served from: no new code for their pages.
    for n in 1..=12 {
        let page = app
            .get_owned(format!("/api/qrcode?scene_str=shop-{n:02}&permanent=true"))
            .await;
        assert_eq!(page.status, 200);
    }
    assert_eq!(app.emulator.codes_created(), 12);
}

#[actix_web::test]
async fn a_batch_reuses_every_live_code_and_saves_its_labels_and_groups() {
    let app = spawn_app().await;
    let first = submit(&app, json!({"pattern": "p-{1..5}", "kind": "permanent"})).await;
    progress_once(&app, &first, finished).await;
    let rows: Vec<Value> = (1..=8)
        .map(|n| json!({"scene": format!("p-{n}"), "label": format!("海报 {n}"), "group": "华东"}))
        .collect();

    let second = submit(&app, json!({"kind": "permanent", "rows": rows})).await;
    let progress = progress_once(&app, &second, finished).await;

    assert_eq!(progress["state"], "done", "{progress}");
    assert_eq!(progress["done"], 8);
    assert_eq!(progress["reused"], 5);
    assert_eq!(app.emulator.codes_created(), 8);
    let scene = app.get("/api/scenes/p-7").await.json();
    assert_eq!(scene["label"], "海报 7", "{scene}");
    assert_eq!(scene["group"], "华东", "{scene}");
}

#[actix_web::test]
async fn invalid_rows_are_refused_by_index_and_nothing_is_created() {
    let app = spawn_app().await;
    let body = json!({"kind": "permanent", "rows": [
        {"scene": "ok"},
        {"scene": ""},
        {"scene": 200000},
        {"scene": "ok"},
        {"scene": "t", "kind": "temporary", "expire_seconds": 10}
    ]});

    let answer = app.post_json("/api/batches", &body).await;

    assert_eq!(answer.status, 400, "{}", answer.text());
    let refusal = answer.json();
    let indexes: Vec<u64> = refusal["rows"]
        .as_array()
        .map(|rows| rows.iter().filter_map(|r| r["at"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(indexes, [1, 2, 3, 4], "{refusal}");
    assert!(
        refusal["hint"]
            .as_str()
            .is_some_and(|h| h.contains("expire_seconds")),
        "{refusal}"
    );
    for not_a_batch in [
        json!({}),
        json!([1, 2]),
        json!({"pattern": "x-{1..5}"}),
        json!({"pattern": "x-{1..6000}", "kind": "permanent"}),
        json!({"pattern": "x-{1..5}", "expire_seconds": 3600}),
    ] {
        let answer = app.post_json("/api/batches", &not_a_batch).await;
        assert_eq!(answer.status, 400, "{}", answer.text());
    }
    // Another site's form cannot pass for JSON: a body without the JSON content type is
    // refused, whatever it holds.
    let as_form = app
        .post(
            "/api/batches",
            br#"{"kind":"permanent","rows":[{"scene":"a"}]}"#.to_vec(),
        )
        .await;
    assert_eq!(as_form.status, 400, "{}", as_form.text());
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 0);
    assert_eq!(app.emulator.token_calls(), 0);
    assert_eq!(app.get("/api/batches/0123").await.status, 404);
    assert_eq!(
        app.get("/api/batches/0123456789abcdef0123456789abcdef")
            .await
            .status,
        404
    );
}

#[actix_web::test]
async fn a_busy_wechat_is_tried_again_after_a_back_off() {
    let app = spawn_app().await;
    app.emulator
        .fail_next(Api::QrcodeCreate, Fault::Errcode(45011), 1);
    app.emulator
        .fail_next(Api::QrcodeCreate, Fault::Errcode(-1), 1);

    let id = submit(&app, json!({"pattern": "b-{1..3}", "kind": "permanent"})).await;
    let progress = progress_once(&app, &id, finished).await;

    assert_eq!(progress["state"], "done", "{progress}");
    assert_eq!(progress["done"], 3);
    assert_eq!(progress["errors"], json!([]));
    // Two refused, then three made.
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 5);
}

#[actix_web::test]
async fn the_daily_quota_and_the_permanent_cap_stop_a_batch_with_a_message() {
    for (errcode, words) in [(45009, "daily quota"), (45029, "permanent codes")] {
        let app = spawn_app().await;
        let made = submit(&app, json!({"pattern": "q-{1..2}", "kind": "permanent"})).await;
        progress_once(&app, &made, finished).await;
        app.emulator
            .fail_next(Api::QrcodeCreate, Fault::Errcode(errcode), 1);

        let id = submit(&app, json!({"pattern": "q-{1..6}", "kind": "permanent"})).await;
        let progress = progress_once(&app, &id, finished).await;

        assert_eq!(progress["state"], "stopped", "{progress}");
        // The two codes made earlier are reused; the first new one met the errcode.
        assert_eq!(progress["done"], 2, "{progress}");
        assert_eq!(progress["reused"], 2, "{progress}");
        let errors = progress["errors"].as_array().cloned().unwrap_or_default();
        assert_eq!(errors.len(), 1, "{progress}");
        assert_eq!(errors[0]["scene"], "q-3");
        assert_eq!(errors[0]["errcode"], errcode);
        let reason = progress["stop_reason"].as_str().unwrap_or_default();
        assert!(reason.contains(words), "{reason}");
        // No other row was tried: one refused create after the first batch's two.
        assert_eq!(app.emulator.calls(Api::QrcodeCreate), 3, "{errcode}");
    }
}

#[actix_web::test]
async fn a_batch_interrupted_by_a_restart_goes_on_where_it_was() {
    let app = spawn_app().await;
    app.emulator
        .set_delay(Api::QrcodeCreate, Duration::from_millis(200));
    let id = submit(&app, json!({"pattern": "r-{1..12}", "kind": "permanent"})).await;
    let before = progress_once(&app, &id, |p| p["done"].as_u64() >= Some(3)).await;
    let done_before = before["done"].as_u64().unwrap_or_default();

    let app = app.restart().await;
    let progress = progress_once(&app, &id, finished).await;

    assert!((3..12).contains(&done_before), "{before}");
    assert_eq!(progress["state"], "done", "{progress}");
    assert_eq!(progress["done"], 12);
    // Rows made before the restart are not made again; a create in flight when the server
    // stopped may be asked again (WeChat answers a permanent scene with the same code).
    let creates = app.emulator.calls(Api::QrcodeCreate);
    assert!((12..=13).contains(&creates), "{creates} creates");
}

#[actix_web::test]
async fn the_zip_holds_each_code_as_png_and_svg_named_in_chinese_with_an_index() {
    let app = spawn_app().await;
    let csv = "\u{feff}scene,label,group,kind\nsh-1,上海店-海报,华东,permanent\nbj-1,北京店-海报,华北,permanent\n7,,,temporary\n";
    let created = app
        .post_form("/batches", &[("csv", csv), ("kind", "permanent")])
        .await;
    assert_eq!(created.status, 303, "{}", created.text());
    let location = created
        .headers
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_string();
    // The batch's page, with its "Batch started" notice as the fragment's target.
    let page = location
        .strip_suffix("#batch-started")
        .expect("the notice's fragment")
        .to_string();
    let id = page.trim_start_matches("/batches/").to_string();
    let progress = progress_once(&app, &id, finished).await;
    assert_eq!(progress["done"], 3, "{progress}");

    let answer = app.get_owned(format!("{page}.zip")).await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type(), "application/zip");
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(answer.body)).expect("a ZIP archive");
    let names: Vec<String> = archive
        .file_names()
        .map(|name| name.expect("a UTF-8 name").into_owned())
        .collect();
    for name in [
        "上海店-海报-sh-1.png",
        "上海店-海报-sh-1.svg",
        "北京店-海报-bj-1.png",
        "scene-7.png",
        "index.csv",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} not in {names:?}");
    }
    assert_eq!(names.len(), 7, "{names:?}");
    let mut index = String::new();
    archive
        .by_name("index.csv")
        .expect("index.csv")
        .read_to_string(&mut index)
        .expect("UTF-8");
    assert!(index.starts_with('\u{feff}'), "no byte order mark");
    let mut lines = csv::Reader::from_reader(index.trim_start_matches('\u{feff}').as_bytes());
    let mut urls = BTreeMap::new();
    for record in lines.records() {
        let record = record.expect("a CSV record");
        urls.insert(record[6].to_string(), record[5].to_string());
        assert!(!record[5].is_empty());
        let expected_kind = if &record[0] == "7" {
            "temporary"
        } else {
            "permanent"
        };
        assert_eq!(&record[3], expected_kind);
        assert_eq!(record[4].is_empty(), expected_kind == "permanent");
    }
    assert_eq!(urls.len(), 3);
    // Each image scans back to its code's url, which is the url its page shows.
    for (png, url) in &urls {
        let mut bytes = Vec::new();
        archive
            .by_name(png)
            .expect("the PNG")
            .read_to_end(&mut bytes)
            .expect("read");
        let image = image::load_from_memory(&bytes).expect("a PNG").to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(image);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1, "{png}");
        let (_, content) = grids[0].decode().expect("decodes");
        assert_eq!(&content, url, "{png}");
    }
    let page = app
        .get("/api/qrcode?scene_str=sh-1&permanent=true")
        .await
        .json();
    assert_eq!(
        page["url"].as_str(),
        urls.get("上海店-海报-sh-1.png").map(|s| s.as_str())
    );
    assert_eq!(app.emulator.codes_created(), 3);
}

#[actix_web::test]
async fn the_preview_counts_reused_codes_and_refused_rows_are_named_by_line() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/api/qrcode?scene_str=v-1&permanent=true")
            .await
            .status,
        200
    );

    let preview = app
        .post_form(
            "/batches/preview",
            &[
                ("csv", "scene,label\nv-1,One\nv-2,Two\nv-3,Three\n"),
                ("kind", "permanent"),
            ],
        )
        .await;
    let refused = app
        .post_form(
            "/batches/preview",
            &[("csv", "scene\nok\n\nok\n"), ("kind", "permanent")],
        )
        .await;

    assert_eq!(preview.status, 200);
    let page = preview.text();
    assert!(
        page.contains("<dt>Exist already, reused</dt><dd>1</dd>"),
        "{page}"
    );
    assert!(
        page.contains("<dt>New permanent codes</dt><dd>2</dd>"),
        "{page}"
    );
    assert!(page.contains("Create 3 codes"), "{page}");
    assert_eq!(refused.status, 400);
    let page = refused.text();
    assert!(
        page.contains("Line 4 (ok): scene ok is given already at 2"),
        "{page}"
    );
    // The form is shown again as typed.
    assert!(page.contains("scene\nok\n\nok\n"), "{page}");
    assert_eq!(app.emulator.codes_created(), 1);
}

#[actix_web::test]
async fn the_batch_page_refreshes_itself_until_done_and_then_offers_the_downloads() {
    let app = spawn_app().await;
    app.emulator
        .set_delay(Api::QrcodeCreate, Duration::from_millis(300));
    let rows = json!([
        {"scene": "w-1", "label": "<b>一</b>"},
        {"scene": "w-2", "label": "二"},
        {"scene": "w-3", "label": "三"}
    ]);
    let id = submit(&app, json!({"kind": "permanent", "rows": rows})).await;

    let running = app.get_owned(format!("/batches/{id}")).await;
    progress_once(&app, &id, finished).await;
    let done = app.get_owned(format!("/batches/{id}")).await;
    let sheet = app.get_owned(format!("/batches/{id}/print")).await;

    assert_eq!(running.status, 200);
    assert!(
        running.text().contains(&format!(
            r#"<meta http-equiv="refresh" content="2; url=/batches/{id}">"#
        )),
        "{}",
        running.text()
    );
    let page = done.text();
    assert!(!page.contains("http-equiv"), "{page}");
    assert!(
        page.contains(&format!(r#"href="/batches/{id}.zip""#)),
        "{page}"
    );
    assert!(
        page.contains(&format!(r#"href="/batches/{id}/print""#)),
        "{page}"
    );
    assert!(
        page.contains("&#60;b&#62;一&#60;/b&#62;"),
        "the label is escaped: {page}"
    );
    assert!(!page.contains("<b>一"), "{page}");
    assert_eq!(sheet.status, 200);
    let sheet = sheet.text();
    assert_eq!(sheet.matches(r#"<figure class="print-cell">"#).count(), 3);
    assert_eq!(sheet.matches("data:image/svg+xml;base64,").count(), 3);
    assert!(sheet.contains("二"), "{sheet}");
    assert_eq!(app.get("/batches/not-a-batch").await.status, 404);
    assert_eq!(app.get("/batches/not-a-batch.zip").await.status, 404);
}

#[actix_web::test]
async fn scenes_whose_file_names_meet_still_get_one_file_each() {
    let app = spawn_app().await;
    let rows = json!([{"scene": "a b"}, {"scene": "a_b"}, {"scene": "a:b"}]);
    let id = submit(&app, json!({"kind": "permanent", "rows": rows})).await;
    let progress = progress_once(&app, &id, finished).await;
    assert_eq!(progress["done"], 3, "{progress}");

    let answer = app.get_owned(format!("/batches/{id}.zip")).await;

    assert_eq!(answer.status, 200, "{}", answer.text());
    let archive = zip::ZipArchive::new(std::io::Cursor::new(answer.body)).expect("a ZIP");
    let mut names: Vec<String> = archive
        .file_names()
        .map(|name| name.expect("a UTF-8 name").into_owned())
        .filter(|name| name.ends_with(".png"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["scene-a_b-2.png", "scene-a_b-3.png", "scene-a_b.png"]
    );
}
