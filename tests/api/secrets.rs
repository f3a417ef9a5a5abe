//! The AppSecret and access tokens never appear in a response or a log line.

use std::time::Duration;

use scene_qr::emulator::{Api, Fault};

use crate::helpers::{APPID, ChildApp, Response, spawn_app, start_emulator};

fn assert_clean(what: &str, text: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(!text.contains(secret.as_str()), "{what} leaks a credential");
    }
}

fn whole(response: &Response) -> String {
    format!("{:?}\n{}", response.headers, response.text())
}

#[actix_web::test]
async fn no_response_contains_the_secret_or_a_token() {
    let app = spawn_app().await;
    let mut seen = Vec::new();
    seen.push(whole(&app.get("/qrcode?scene_id=1").await));
    seen.push(whole(&app.get("/api/qrcode?scene_id=1").await));
    seen.push(whole(&app.get("/qrcode.svg?scene_id=1").await));
    app.emulator.revoke_tokens(false);
    seen.push(whole(&app.get("/api/qrcode?scene_id=2").await));
    app.emulator
        .fail_next(Api::QrcodeCreate, Fault::Errcode(40001), 2);
    seen.push(whole(&app.get("/qrcode?scene_id=3").await));
    seen.push(whole(&app.get("/api/qrcode?scene_id=4").await));
    app.emulator.fail_next(Api::QrcodeCreate, Fault::Garbage, 1);
    seen.push(whole(&app.get("/api/qrcode?scene_id=5").await));

    let mut secrets = app.emulator.issued_tokens();
    assert!(secrets.len() >= 2, "tokens were issued and replaced");
    secrets.push(app.secret.clone());
    for (i, text) in seen.iter().enumerate() {
        assert_clean(&format!("response {i}"), text, &secrets);
    }
}

#[actix_web::test]
async fn the_log_at_trace_level_never_contains_the_secret_or_a_token() {
    let (emulator, emulator_url) = start_emulator();
    let secret = emulator.config.secret.clone();
    let mut child = ChildApp::spawn(&[
        ("SCENE_QR_LISTEN", "127.0.0.1:0"),
        ("WECHAT_APPID", APPID),
        ("WECHAT_APPSECRET", &secret),
        ("WECHAT_API_BASE", &emulator_url),
        ("WECHAT_MP_BASE", &emulator_url),
        ("RUST_LOG", "trace"),
        ("SCENE_QR_WORKERS", "1"),
        ("WECHAT_TOKEN", "tracetoken"),
    ]);
    let address = child.wait_for_address();
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let get = |path: &str| client.get(format!("{address}{path}")).send();

    let _ = get("/qrcode?scene_id=1").await;
    emulator.revoke_tokens(false);
    let _ = get("/qrcode?scene_id=2").await;
    emulator.fail_next(Api::QrcodeCreate, Fault::Errcode(40001), 2);
    let _ = get("/api/qrcode?scene_id=3").await;
    emulator.fail_next(Api::StableToken, Fault::Errcode(40125), 1);
    emulator.revoke_tokens(true);
    let _ = get("/api/qrcode?scene_id=4").await;
    let _ = get("/api/qrcode?scene_id=5").await;
    let _ = get("/qrcode?scene_id=0").await;
    let openid = "oTRACEuser0123456789abcdefgh";
    let target = scene_qr::emulator::PushTarget {
        url: format!("{address}/wechat/callback"),
        token: "tracetoken".into(),
        aes_key: None,
        appid: APPID.into(),
    };
    let xml = scene_qr::emulator::scan_xml(
        "7",
        None,
        scene_qr::emulator::Follower::New,
        openid,
        946771200,
    );
    let push = scene_qr::emulator::sign_push_now(&target, &xml);
    let pushed = client
        .post(format!("{address}/wechat/callback?{}", push.query))
        .send_body(push.body)
        .await
        .map(|r| r.status().as_u16());
    let log = child.stop();

    assert_eq!(pushed.ok(), Some(200));
    assert!(!log.contains(openid), "the log shows an openid");

    assert!(
        log.contains("upstream /cgi-bin/qrcode/create"),
        "the calls were logged: {log}"
    );
    assert!(log.contains(" TRACE "), "trace level was on");
    let mut secrets = emulator.issued_tokens();
    assert!(secrets.len() >= 3);
    secrets.push(secret);
    assert_clean("the log", &log, &secrets);
}
