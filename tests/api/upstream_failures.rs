//! Every upstream failure: a status and a message a staff member can act on.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use scene_qr::emulator::{Api, Fault};

use crate::helpers::{spawn_app, spawn_app_with};

#[actix_web::test]
async fn a_wechat_errcode_is_a_502_page_with_errcode_errmsg_and_a_hint() {
    let cases = [
        (40013, "invalid appid", "WECHAT_APPID"),
        (40125, "invalid appsecret", "WECHAT_APPSECRET"),
        (40164, "not in whitelist", "IP whitelist"),
        (45009, "daily quota", "daily quota for this API is used up"),
    ];
    for (errcode, errmsg, hint) in cases {
        let app = spawn_app().await;
        app.emulator
            .fail_next(Api::QrcodeCreate, Fault::Errcode(errcode), 1);

        let page = app.get("/qrcode?scene_id=1").await;

        assert_eq!(page.status, 502, "{errcode}");
        let text = page.text();
        assert!(text.contains(&format!("<code>{errcode}</code>")), "{text}");
        assert!(text.contains(errmsg), "{errcode}: {text}");
        assert!(text.contains(hint), "{errcode}: {text}");
    }
}

#[actix_web::test]
async fn a_token_endpoint_errcode_is_reported_the_same_way_on_the_api() {
    let app = spawn_app().await;
    app.emulator
        .fail_next(Api::StableToken, Fault::Errcode(40164), 1);

    let response = app.get("/api/qrcode?scene_id=1").await;

    assert_eq!(response.status, 502);
    let body = response.json();
    assert_eq!(body["errcode"], 40164);
    assert!(body["errmsg"].as_str().unwrap().contains("whitelist"));
    assert!(body["hint"].as_str().unwrap().contains("IP whitelist"));
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 0);
}

#[actix_web::test]
async fn wrong_credentials_are_reported_as_such() {
    let app = spawn_app_with(|s| s.appsecret = Some(scene_qr::secret::Secret::new("wrong"))).await;

    let response = app.get("/api/qrcode?scene_id=1").await;

    assert_eq!(response.status, 502);
    assert_eq!(response.json()["errcode"], 40125);
}

#[actix_web::test]
async fn an_upstream_5xx_is_a_502_with_a_plain_explanation() {
    let app = spawn_app().await;
    app.emulator
        .fail_next(Api::QrcodeCreate, Fault::HttpStatus(500), 1);

    let page = app.get("/qrcode?scene_id=1").await;

    assert_eq!(page.status, 502);
    assert!(page.text().contains("answered HTTP 500"), "{}", page.text());
}

#[actix_web::test]
async fn an_unparsable_body_is_a_502() {
    let app = spawn_app().await;
    app.emulator.fail_next(Api::QrcodeCreate, Fault::Garbage, 1);

    let response = app.get("/api/qrcode?scene_id=1").await;

    assert_eq!(response.status, 502);
    assert!(
        response.json()["error"]
            .as_str()
            .unwrap()
            .contains("not the expected JSON")
    );
}

#[actix_web::test]
async fn an_unreachable_upstream_is_a_502() {
    // A port that was just free: nothing listens there.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let app = spawn_app_with(|s| s.api_base = closed).await;

    let response = app.get("/api/qrcode?scene_id=1").await;

    assert_eq!(response.status, 502);
    assert!(
        response.json()["error"]
            .as_str()
            .unwrap()
            .contains("could not reach WeChat")
    );
}

#[actix_web::test]
async fn an_upstream_slower_than_the_timeout_is_a_504_within_the_timeout_plus_a_second() {
    let app = spawn_app_with(|s| s.upstream_timeout_ms = 500).await;
    app.emulator
        .set_delay(Api::QrcodeCreate, Duration::from_secs(5));

    let started = Instant::now();
    let page = app.get("/qrcode?scene_id=1").await;
    let elapsed = started.elapsed();

    assert_eq!(page.status, 504);
    assert!(elapsed < Duration::from_millis(1_500), "took {elapsed:?}");
    assert!(page.text().contains("did not answer within 500 ms"));
}
