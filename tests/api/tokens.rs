//! Token rejection: drop the token, get a fresh one, retry once, never loop.

use scene_qr::emulator::{Api, Fault};
use scene_qr::wechat::TokenEndpoint;

use crate::helpers::{APPID, spawn_app, spawn_app_with};

#[actix_web::test]
async fn a_revoked_token_is_replaced_and_the_call_retried_once() {
    let app = spawn_app().await;
    app.get("/api/qrcode?scene_id=1").await;
    // Another system forced a refresh: our cached token is dead, the stable one is new.
    app.emulator.revoke_tokens(true);

    let response = app.get("/api/qrcode?scene_id=2").await;

    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(app.emulator.token_calls(), 2);
    // scene 1, scene 2 with the dead token, scene 2 again with the fresh one.
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 3);
    let refresh = &app.emulator.requests(Api::StableToken)[1];
    assert_eq!(refresh.body.as_ref().unwrap()["force_refresh"], false);
}

#[actix_web::test]
async fn a_stable_endpoint_handing_back_the_rejected_token_is_asked_to_force_a_refresh() {
    let app = spawn_app().await;
    app.get("/api/qrcode?scene_id=1").await;
    app.emulator.revoke_tokens(false);

    let response = app.get("/api/qrcode?scene_id=2").await;

    assert_eq!(response.status, 200, "{}", response.text());
    let forced: Vec<bool> = app
        .emulator
        .requests(Api::StableToken)
        .iter()
        .map(|r| r.body.as_ref().unwrap()["force_refresh"].as_bool().unwrap())
        .collect();
    assert_eq!(forced, [false, false, true]);
}

#[actix_web::test]
async fn each_token_errcode_triggers_exactly_one_retry() {
    for errcode in [40001, 40014, 42001] {
        let app = spawn_app().await;
        app.emulator
            .fail_next(Api::QrcodeCreate, Fault::Errcode(errcode), 1);

        let response = app.get("/api/qrcode?scene_id=1").await;

        assert_eq!(response.status, 200, "errcode {errcode}");
        assert_eq!(
            app.emulator.calls(Api::QrcodeCreate),
            2,
            "errcode {errcode}"
        );
    }
}

#[actix_web::test]
async fn a_token_rejected_again_after_the_retry_is_a_502_not_a_loop() {
    let app = spawn_app().await;
    app.emulator
        .fail_next(Api::QrcodeCreate, Fault::Errcode(40001), 10);

    let response = app.get("/api/qrcode?scene_id=1").await;

    assert_eq!(response.status, 502);
    assert_eq!(response.json()["errcode"], 40001);
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 2);
    assert!(app.emulator.token_calls() <= 3);
}

#[actix_web::test]
async fn the_classic_endpoint_is_a_get_with_the_credentials_in_the_query() {
    let app = spawn_app_with(|s| s.token_endpoint = TokenEndpoint::Classic).await;

    let response = app.get("/api/qrcode?scene_id=1").await;

    assert_eq!(response.status, 200);
    assert_eq!(app.emulator.calls(Api::StableToken), 0);
    let requests = app.emulator.requests(Api::Token);
    assert_eq!(requests.len(), 1);
    let query: Vec<(String, String)> = form_urlencoded::parse(requests[0].query.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(
        query,
        [
            ("grant_type".to_string(), "client_credential".to_string()),
            ("appid".to_string(), APPID.to_string()),
            ("secret".to_string(), app.secret.clone()),
        ]
    );
}

#[actix_web::test]
async fn the_stable_endpoint_gets_the_credentials_as_json() {
    let app = spawn_app().await;

    app.get("/api/qrcode?scene_id=1").await;

    let request = &app.emulator.requests(Api::StableToken)[0];
    assert_eq!(
        request.body.as_ref().unwrap(),
        &serde_json::json!({
            "grant_type": "client_credential",
            "appid": APPID,
            "secret": app.secret,
            "force_refresh": false,
        })
    );
}
