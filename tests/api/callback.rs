//! The callback: handshake, signatures, safe mode, every event type, duplicates, bad input.

use futures_util::future::join_all;
use scene_qr::emulator::{Follower, PushTarget, scan_xml, sign_push, sign_push_now};
use scene_qr::wechat::crypto::AesKey;
use scene_qr::wechat::push::to_xml;
use scene_qr::wechat::signature::sign;
use serde_json::Value;

use crate::helpers::{PUSH_TOKEN, TestApp, event_xml, spawn_app, spawn_app_with};

const SAMPLE_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

async fn totals(app: &TestApp) -> Value {
    let stats = app.get("/api/stats?from=2000-01-01&to=2000-12-31").await;
    assert_eq!(stats.status, 200, "{}", stats.text());
    stats.json()["totals"].clone()
}

/// Events are pushed with CreateTime in 2000 so the range the tests ask for holds them all.
const Y2000: i64 = 946_684_800 + 86_400;

#[actix_web::test]
async fn the_handshake_echoes_echostr_when_the_signature_matches() {
    let app = spawn_app().await;
    let signature = sign(&[PUSH_TOKEN, "1409304348", "abc"]);

    let good = app
        .get(&format!("/wechat/callback?signature={signature}&timestamp=1409304348&nonce=abc&echostr=5837397749"))
        .await;
    let wrong = app
        .get("/wechat/callback?signature=0000&timestamp=1409304348&nonce=abc&echostr=5837397749")
        .await;
    let missing = app
        .get("/wechat/callback?timestamp=1409304348&nonce=abc&echostr=1")
        .await;

    assert_eq!(good.status, 200);
    assert_eq!(good.text(), "5837397749");
    assert_eq!(wrong.status, 403);
    assert_eq!(missing.status, 403);
}

#[actix_web::test]
async fn a_plaintext_follow_from_a_code_is_stored_and_acknowledged() {
    let app = spawn_app().await;

    let response = app
        .push(&event_xml(
            "o7Lp5t6n59DeX3U0C7Kric9qEx-Q",
            Y2000,
            "subscribe",
            "qrscene_1000",
        ))
        .await;

    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "success");
    let stats = app
        .get("/api/stats?from=2000-01-01&to=2000-12-31")
        .await
        .json();
    let scene = &stats["scenes"][0];
    assert_eq!(scene["scene"], "1000");
    assert_eq!(scene["scans"], 1);
    assert_eq!(scene["new_followers"], 1);
    assert_eq!(scene["unique_users"], 1);
    assert_eq!(scene["last_scan"], "2000-01-02T00:00:00Z");
}

#[actix_web::test]
async fn each_event_type_is_counted_as_what_it_is() {
    let app = spawn_app().await;

    for (i, (name, key)) in [
        ("subscribe", "qrscene_7"),
        ("SCAN", "7"),
        ("subscribe", ""),
        ("subscribe", "last_trade_no_9"),
        ("unsubscribe", ""),
    ]
    .into_iter()
    .enumerate()
    {
        let response = app
            .push(&event_xml(&format!("o{i}"), Y2000 + i as i64, name, key))
            .await;
        assert_eq!(response.status, 200, "{name} {key}");
    }

    let totals = totals(&app).await;
    assert_eq!(totals["scans"], 2);
    assert_eq!(totals["new_followers"], 1);
    assert_eq!(totals["other_follows"], 2);
    assert_eq!(totals["unfollows"], 1);
}

#[actix_web::test]
async fn a_push_whose_key_is_longer_than_any_scene_is_stored_without_a_scene() {
    let app = spawn_app().await;
    let sixty_five = "a".repeat(65);

    let follow = app
        .push(&event_xml(
            "o1",
            Y2000,
            "subscribe",
            &format!("qrscene_{sixty_five}"),
        ))
        .await;
    let scan = app
        .push(&event_xml("o2", Y2000 + 1, "SCAN", &sixty_five))
        .await;

    assert_eq!(
        (follow.status.as_u16(), follow.text().as_str()),
        (200, "success")
    );
    assert_eq!(
        (scan.status.as_u16(), scan.text().as_str()),
        (200, "success")
    );
    let totals = totals(&app).await;
    assert_eq!(totals["other_follows"], 1);
    assert_eq!(totals["new_followers"], 0);
    assert_eq!(totals["scans"], 0);
    let stats = app
        .get("/api/stats?from=2000-01-01&to=2000-12-31")
        .await
        .json();
    assert_eq!(stats["scenes"].as_array().unwrap().len(), 0);
}

#[actix_web::test]
async fn other_messages_are_acknowledged_and_not_stored() {
    let app = spawn_app().await;
    let text = to_xml(&[
        ("FromUserName", "o1"),
        ("CreateTime", "946771200"),
        ("MsgType", "text"),
        ("Content", "hello"),
    ]);

    let response = app.push(&text).await;

    assert_eq!(
        (response.status.as_u16(), response.text().as_str()),
        (200, "success")
    );
    assert_eq!(totals(&app).await["scans"], 0);
}

#[actix_web::test]
async fn a_retried_push_is_stored_once() {
    let app = spawn_app().await;
    let push = event_xml("o1", Y2000, "SCAN", "shop-12");

    for _ in 0..3 {
        assert_eq!(app.push(&push).await.text(), "success");
    }

    assert_eq!(totals(&app).await["scans"], 1);
}

#[actix_web::test]
async fn a_thousand_concurrent_pushes_are_all_stored() {
    let app = spawn_app().await;
    let pushes: Vec<String> = (0..1000)
        .map(|i| {
            event_xml(
                &format!("user{i}"),
                Y2000 + i,
                "SCAN",
                &format!("scene{}", i % 10),
            )
        })
        .collect();

    let responses = join_all(pushes.iter().map(|xml| app.push(xml))).await;

    assert!(
        responses
            .iter()
            .all(|r| r.status == 200 && r.text() == "success")
    );
    let totals = totals(&app).await;
    assert_eq!(totals["scans"], 1000);
    assert_eq!(totals["unique_users"], 1000);
}

#[actix_web::test]
async fn a_push_with_a_wrong_signature_is_refused_and_not_stored() {
    let app = spawn_app().await;
    let mut target = app.push_target();
    target.token = "notourtoken".into();
    let push = sign_push_now(&target, &event_xml("o1", Y2000, "SCAN", "1"));

    let response = app
        .post(
            &format!("/wechat/callback?{}", push.query),
            push.body.into_bytes(),
        )
        .await;
    let unsigned = app
        .post(
            "/wechat/callback",
            event_xml("o1", Y2000, "SCAN", "1").into_bytes(),
        )
        .await;

    assert_eq!(response.status, 403);
    assert_eq!(unsigned.status, 403);
    assert_eq!(totals(&app).await["scans"], 0);
}

fn safe_mode_app_settings(s: &mut scene_qr::settings::Settings) {
    s.encoding_aes_key = AesKey::from_encoding_aes_key(SAMPLE_KEY);
}

#[actix_web::test]
async fn a_safe_mode_push_is_decrypted_and_stored() {
    let app = spawn_app_with(safe_mode_app_settings).await;

    let response = app
        .push(&event_xml("o1", Y2000, "subscribe", "qrscene_shop-12"))
        .await;

    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(totals(&app).await["new_followers"], 1);
}

#[actix_web::test]
async fn a_compatible_mode_push_is_read_from_its_encrypted_part() {
    let app = spawn_app_with(safe_mode_app_settings).await;
    let target = app.push_target();
    let key = target.aes_key.clone().unwrap();
    let inner = event_xml("o1", Y2000, "SCAN", "encrypted-scene");
    let encrypted = key.encrypt(&inner, &target.appid, [7; 16]);
    // The plain fields say one thing, the signed encrypted part another: the latter counts.
    let body = to_xml(&[
        ("ToUserName", "gh_1"),
        ("FromUserName", "o1"),
        ("CreateTime", "946771200"),
        ("MsgType", "event"),
        ("Event", "SCAN"),
        ("EventKey", "plain-scene"),
        ("Encrypt", &encrypted),
    ]);
    let now = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    let query = format!(
        "signature={}&timestamp={now}&nonce=n&encrypt_type=aes&msg_signature={}",
        sign(&[PUSH_TOKEN, &now, "n"]),
        sign(&[PUSH_TOKEN, &now, "n", &encrypted])
    );

    let response = app
        .post(&format!("/wechat/callback?{query}"), body.into_bytes())
        .await;

    assert_eq!(response.status, 200, "{}", response.text());
    let stats = app
        .get("/api/stats?from=2000-01-01&to=2000-12-31")
        .await
        .json();
    assert_eq!(stats["scenes"][0]["scene"], "encrypted-scene");
}

#[actix_web::test]
async fn a_safe_mode_push_for_another_appid_or_with_a_wrong_msg_signature_is_refused() {
    let app = spawn_app_with(safe_mode_app_settings).await;
    let xml = event_xml("o1", Y2000, "SCAN", "1");
    let other_app = PushTarget {
        appid: "wx9999999999999999".into(),
        ..app.push_target()
    };
    let for_other_app = sign_push_now(&other_app, &xml);
    let mut tampered = sign_push_now(&app.push_target(), &xml);
    tampered.query = tampered.query.replace("msg_signature=", "msg_signature=0");

    let wrong_appid = app
        .post(
            &format!("/wechat/callback?{}", for_other_app.query),
            for_other_app.body.into_bytes(),
        )
        .await;
    let wrong_signature = app
        .post(
            &format!("/wechat/callback?{}", tampered.query),
            tampered.body.into_bytes(),
        )
        .await;

    assert_eq!(wrong_appid.status, 400);
    assert!(wrong_appid.text().contains("another AppID"));
    assert_eq!(wrong_signature.status, 403);
    assert_eq!(totals(&app).await["scans"], 0);
}

#[actix_web::test]
async fn bad_bodies_are_refused_nothing_is_stored_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let huge = format!("<xml><MsgType>{}</MsgType></xml>", "a".repeat(70 * 1024));
    let cases: Vec<(&str, String, u16)> = vec![
        ("malformed XML", "<xml><MsgType>event</Msg".into(), 400),
        ("not XML", "hello".into(), 400),
        ("empty", String::new(), 400),
        ("missing FromUserName", to_xml(&[("CreateTime", "946771200"), ("MsgType", "event"), ("Event", "SCAN"), ("EventKey", "1")]), 400),
        ("missing CreateTime", to_xml(&[("FromUserName", "o1"), ("MsgType", "event"), ("Event", "SCAN"), ("EventKey", "1")]), 400),
        ("SCAN without EventKey", to_xml(&[("FromUserName", "o1"), ("CreateTime", "946771200"), ("MsgType", "event"), ("Event", "SCAN")]), 400),
        ("bad CreateTime", to_xml(&[("FromUserName", "o1"), ("CreateTime", "yesterday"), ("MsgType", "event"), ("Event", "SCAN"), ("EventKey", "1")]), 400),
        ("DOCTYPE", r#"<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><MsgType>&e;</MsgType></xml>"#.into(), 400),
        ("custom entity", "<xml><MsgType>&lol;</MsgType></xml>".into(), 400),
        ("over 64 KiB", huge, 413),
    ];

    for (name, body, status) in &cases {
        let response = app.push(body).await;
        assert_eq!(
            response.status.as_u16(),
            *status,
            "{name}: {}",
            response.text()
        );
    }
    let binary = app
        .push(&String::from_utf8_lossy(&[0xff, 0x00, 0xfe]))
        .await;

    assert_eq!(binary.status, 400);
    assert_eq!(app.get("/healthz").await.status, 200);
    assert_eq!(totals(&app).await["scans"], 0);
}

#[actix_web::test]
async fn without_a_token_in_live_mode_the_callback_is_off() {
    let app = spawn_app_with(|s| s.push_token = None).await;

    let get = app
        .get("/wechat/callback?signature=a&timestamp=1&nonce=n&echostr=x")
        .await;
    let post = app.push(&event_xml("o1", Y2000, "SCAN", "1")).await;

    assert_eq!(get.status, 404);
    assert_eq!(post.status, 404);
}

#[actix_web::test]
async fn the_emulators_scan_of_a_new_follower_is_a_follow_from_the_scene() {
    let app = spawn_app().await;

    let xml = scan_xml("shop 12", Some("gQ=="), Follower::New, "oUser", Y2000);
    let response = app.push(&xml).await;

    assert_eq!(response.status, 200);
    let stats = app
        .get("/api/stats?from=2000-01-01&to=2000-12-31")
        .await
        .json();
    assert_eq!(stats["scenes"][0]["scene"], "shop 12");
    assert_eq!(stats["scenes"][0]["new_followers"], 1);
}

#[actix_web::test]
async fn events_survive_a_restart() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.push(&event_xml(&format!("o{i}"), Y2000 + i, "SCAN", "kept"))
            .await;
    }
    app.post_form("/labels", &[("scene", "kept"), ("label", "Kept poster")])
        .await;

    let app = app.restart().await;

    let stats = app
        .get("/api/stats?from=2000-01-01&to=2000-12-31")
        .await
        .json();
    assert_eq!(stats["scenes"][0]["scans"], 5);
    assert_eq!(stats["scenes"][0]["label"], "Kept poster");
}

#[actix_web::test]
async fn a_push_signed_long_ago_is_refused_and_not_stored() {
    let app = spawn_app().await;
    let thirty_days_ago =
        (time::OffsetDateTime::now_utc().unix_timestamp() - 30 * 86_400).to_string();
    let push = sign_push(
        &app.push_target(),
        &event_xml("o1", Y2000, "SCAN", "1"),
        &thirty_days_ago,
        "n",
    );

    let response = app
        .post(
            &format!("/wechat/callback?{}", push.query),
            push.body.into_bytes(),
        )
        .await;

    assert_eq!(response.status, 403);
    assert!(response.text().contains("SCENE_QR_PUSH_WINDOW_SECONDS"));
    assert_eq!(totals(&app).await["scans"], 0);
}

#[actix_web::test]
async fn a_signed_query_replayed_with_another_body_is_refused_and_a_retry_is_stored_once() {
    let app = spawn_app().await;
    let genuine = event_xml("o-real", Y2000, "SCAN", "door");
    let push = sign_push_now(&app.push_target(), &genuine);
    let url = format!("/wechat/callback?{}", push.query);

    let first = app.post(&url, genuine.clone().into_bytes()).await;
    let forged = app
        .post(
            &url,
            event_xml("o-forged", Y2000, "SCAN", "nobody-scanned").into_bytes(),
        )
        .await;
    let retried = app.post(&url, genuine.into_bytes()).await;

    assert_eq!(first.text(), "success");
    assert_eq!(forged.status, 403);
    assert!(forged.text().contains("replayed"));
    assert_eq!(retried.text(), "success");
    let totals = totals(&app).await;
    assert_eq!(totals["scans"], 1);
    assert_eq!(totals["unique_users"], 1);
}
