//! `/api/status`: the account's budgets, against what the emulator counted.

use scene_qr::emulator::{Api, Fault};

use crate::helpers::{event_xml, spawn_app};

#[actix_web::test]
async fn the_status_counts_permanent_scenes_and_reports_wechats_create_quota() {
    let app = spawn_app().await;
    for path in [
        "/api/qrcode?scene_str=poster&permanent=true",
        "/api/qrcode?scene_id=7&permanent=true",
        "/api/qrcode?scene_id=7",
        "/api/qrcode?scene_id=8&expire_seconds=3600",
        "/api/qrcode?scene_id=9&expire_seconds=2592000",
    ] {
        assert_eq!(app.get(path).await.status, 200, "{path}");
    }
    assert_eq!(
        app.push(&event_xml("o-1", 1_700_000_000, "SCAN", "7"))
            .await
            .text(),
        "success"
    );

    let status = app.get("/api/status").await;

    assert_eq!(status.status, 200, "{}", status.text());
    let status = status.json();
    // Two scenes with a permanent code (poster, 7); the temporary ones do not count.
    assert_eq!(status["permanent_codes_used"], 2, "{status}");
    assert_eq!(status["permanent_codes_limit"], 100_000);
    let created = app.emulator.codes_created();
    assert_eq!(created, 5);
    assert_eq!(status["create_quota"]["daily_limit"], 100_000, "{status}");
    assert_eq!(status["create_quota"]["used"], created);
    assert_eq!(status["create_quota"]["remain"], 100_000 - created);
    // The week-long and the hour-long codes expire within 7 days; the 30-day one does not.
    assert_eq!(
        status["temporary_codes_expiring_within_7_days"], 2,
        "{status}"
    );
    let received = status["last_event_received_at"]
        .as_str()
        .unwrap_or_default();
    let received =
        time::OffsetDateTime::parse(received, &time::format_description::well_known::Rfc3339)
            .expect("RFC 3339");
    let age = time::OffsetDateTime::now_utc() - received;
    assert!(age.whole_seconds().abs() < 60, "{received}");
}

#[actix_web::test]
async fn wechats_quota_is_read_once_a_minute_however_often_the_status_is_asked() {
    let app = spawn_app().await;

    for _ in 0..5 {
        assert_eq!(app.get("/api/status").await.status, 200);
    }

    assert_eq!(app.emulator.calls(Api::QuotaGet), 1);
    let asked = &app.emulator.requests(Api::QuotaGet)[0];
    assert_eq!(
        asked.body.as_ref().expect("a JSON body")["cgi_path"],
        "/cgi-bin/qrcode/create"
    );
}

#[actix_web::test]
async fn a_quota_wechat_will_not_give_leaves_the_rest_of_the_status_and_says_why() {
    let app = spawn_app().await;
    app.emulator
        .fail_next(Api::QuotaGet, Fault::Errcode(45009), 1);

    let status = app.get("/api/status").await;

    assert_eq!(status.status, 200, "{}", status.text());
    let status = status.json();
    assert_eq!(status["create_quota"], serde_json::Value::Null, "{status}");
    assert!(
        status["create_quota_error"]
            .as_str()
            .is_some_and(|e| e.contains("45009")),
        "{status}"
    );
    assert_eq!(status["permanent_codes_used"], 0);
    assert_eq!(status["last_event_received_at"], serde_json::Value::Null);
    // The failure is not kept: the next look asks WeChat again, and gets the quota.
    let again = app.get("/api/status").await.json();
    assert_eq!(again["create_quota"]["used"], 0, "{again}");
    assert_eq!(app.emulator.calls(Api::QuotaGet), 2);
}

#[actix_web::test]
async fn the_status_page_shows_the_budgets_to_staff() {
    let app = spawn_app().await;
    for path in [
        "/api/qrcode?scene_id=3&permanent=true",
        "/api/qrcode?scene_id=4&expire_seconds=3600",
    ] {
        assert_eq!(app.get(path).await.status, 200, "{path}");
    }

    let page = app.get("/status").await;

    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.content_type().starts_with("text/html"));
    let text = page.text();
    for shown in [
        "<dd>1 of 100000</dd>",
        "<dd>99999</dd>",
        "<dd>2 of 100000</dd>",
        "<dd>99998</dd>",
        "Temporary codes expiring within 7 days</dt><dd>1</dd>",
        "none yet",
    ] {
        assert!(text.contains(shown), "{shown} missing from {text}");
    }
}

#[actix_web::test]
async fn the_status_counts_rejected_tokens_and_the_forced_refreshes_spent_today() {
    let app = spawn_app().await;
    let fresh = app.get("/api/status").await.json();
    assert_eq!(fresh["token"]["errors_last_24h"], 0, "{fresh}");
    assert_eq!(fresh["token"]["forced_refreshes_today"], 0);
    assert_eq!(fresh["token"]["forced_refreshes_limit"], 20);
    // Another system ended the token, and WeChat hands the dead one back: a rejection, then
    // a forced refresh.
    app.emulator.revoke_tokens(false);

    assert_eq!(app.get("/api/qrcode?scene_id=2").await.status, 200);
    let status = app.get("/api/status").await.json();

    assert_eq!(status["token"]["errors_last_24h"], 1, "{status}");
    assert_eq!(status["token"]["forced_refreshes_today"], 1, "{status}");
    let page = app.get("/status").await.text();
    assert!(page.contains("<dd>1 of 20</dd>"), "{page}");
}
