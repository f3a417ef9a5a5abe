//! Quota is money: each code is created once per lifetime, each token fetched once per
//! lifetime, whatever the concurrency; failures are never cached.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::future::join_all;
use scene_qr::emulator::{Api, Fault};

use crate::helpers::{Response, TestApp, spawn_app};

#[actix_web::test]
async fn a_second_request_for_the_same_scene_makes_no_upstream_call() {
    let app = spawn_app().await;
    let first = app.get("/qrcode?scene_id=1").await;

    let second = app.get("/qrcode?scene_id=1").await;
    let json = app.get("/api/qrcode?scene_id=1").await;

    assert!(
        [first.status, second.status, json.status]
            .iter()
            .all(|s| *s == 200)
    );
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 1);
    assert_eq!(app.emulator.token_calls(), 1);
}

#[actix_web::test]
async fn a_hundred_concurrent_first_requests_make_one_token_call_and_one_create_call() {
    let app = spawn_app().await;
    app.emulator
        .set_delay(Api::StableToken, Duration::from_millis(100));
    app.emulator
        .set_delay(Api::QrcodeCreate, Duration::from_millis(100));

    let responses = join_all((0..100).map(|_| app.get("/api/qrcode?scene_id=77"))).await;

    assert!(responses.iter().all(|r| r.status == 200));
    let tickets: std::collections::HashSet<_> = responses
        .iter()
        .map(|r| r.json()["ticket"].to_string())
        .collect();
    assert_eq!(tickets.len(), 1, "every request got the same code");
    assert_eq!(app.emulator.token_calls(), 1);
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 1);
}

#[actix_web::test]
async fn concurrent_requests_for_different_scenes_share_one_token_and_create_one_code_each() {
    let app = spawn_app().await;
    app.emulator
        .set_delay(Api::StableToken, Duration::from_millis(100));

    let responses =
        join_all((1..=50).map(|id| app.get_owned(format!("/api/qrcode?scene_id={id}")))).await;

    assert!(responses.iter().all(|r| r.status == 200));
    assert_eq!(app.emulator.token_calls(), 1);
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 50);
}

#[actix_web::test]
async fn different_lifetimes_and_kinds_of_one_scene_are_different_codes() {
    let app = spawn_app().await;

    for query in [
        "scene_id=3",
        "scene_id=3&expire_seconds=604800",
        "scene_id=3&expire_seconds=3600",
        "scene_id=3&permanent=true",
        "scene_str=3",
    ] {
        assert_eq!(app.get(&format!("/api/qrcode?{query}")).await.status, 200);
    }

    // The first two name the same code: the default lifetime is 604800.
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 4);
}

#[actix_web::test]
async fn a_ticket_is_created_again_once_too_little_of_its_life_is_left() {
    let app = spawn_app().await;
    // 62 s of life less the minute kept in hand: servable for one to two seconds (the
    // creation time is counted in whole seconds).
    let query = "/api/qrcode?scene_id=8&expire_seconds=62";
    let first = app.get(query).await.json();

    let cached = app.get(query).await.json();
    actix_web::rt::time::sleep(Duration::from_millis(2_500)).await;
    let renewed = app.get(query).await.json();

    assert_eq!(first["ticket"], cached["ticket"]);
    assert_ne!(first["ticket"], renewed["ticket"]);
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 2);
}

#[actix_web::test]
async fn a_one_minute_code_is_never_served_from_the_cache() {
    let app = spawn_app().await;

    app.get("/api/qrcode?scene_id=8&expire_seconds=60").await;
    app.get("/api/qrcode?scene_id=8&expire_seconds=60").await;

    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 2);
}

#[actix_web::test]
async fn permanent_codes_stay_cached() {
    let app = spawn_app().await;

    for _ in 0..3 {
        app.get("/api/qrcode?scene_str=door&permanent=true").await;
    }

    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 1);
}

#[actix_web::test]
async fn the_token_is_fetched_again_when_its_lifetime_is_over() {
    let app = spawn_app().await;
    // expires_in 2 s, less half of it as margin: usable for one second.
    app.emulator.set_token_expires_in(2);
    app.get("/api/qrcode?scene_id=1").await;

    app.get("/api/qrcode?scene_id=2").await;
    let calls_while_fresh = app.emulator.token_calls();
    actix_web::rt::time::sleep(Duration::from_millis(1_500)).await;
    let response = app.get("/api/qrcode?scene_id=3").await;

    assert_eq!(response.status, 200);
    assert_eq!(calls_while_fresh, 1);
    assert_eq!(app.emulator.token_calls(), 2);
}

#[actix_web::test]
async fn a_failure_is_not_cached_and_the_next_request_tries_again() {
    let app = spawn_app().await;
    app.emulator
        .fail_next(Api::QrcodeCreate, Fault::Errcode(-1), 1);

    let failed = app.get("/api/qrcode?scene_id=4").await;
    let retried = app.get("/api/qrcode?scene_id=4").await;

    assert_eq!(failed.status, 502);
    assert_eq!(retried.status, 200);
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 2);
}

#[actix_web::test]
async fn a_failed_token_call_is_not_cached_either() {
    let app = spawn_app().await;
    app.emulator
        .fail_next(Api::StableToken, Fault::HttpStatus(503), 1);

    let failed = app.get("/api/qrcode?scene_id=4").await;
    let retried = app.get("/api/qrcode?scene_id=4").await;

    assert_eq!(failed.status, 502);
    assert_eq!(retried.status, 200);
    assert_eq!(app.emulator.token_calls(), 2);
}

/// `n` requests for `path` at once, over as many connections: spread over the workers,
/// each of which keeps its own copy of the answers it served.
async fn burst(app: &TestApp, path: &str, n: usize) -> Vec<Response> {
    join_all((0..n).map(|_| app.get(path))).await
}

fn tickets(answers: &[Response]) -> HashSet<String> {
    answers
        .iter()
        .map(|a| a.json()["ticket"].as_str().expect("ticket").to_string())
        .collect()
}

#[actix_web::test]
async fn once_a_ticket_is_too_old_no_worker_answers_with_it_any_more() {
    let app = spawn_app().await;
    // 63 s of life less the minute kept in hand: servable for two to three seconds (the
    // creation time is counted in whole seconds).
    let json = "/api/qrcode?scene_id=8&expire_seconds=63";
    let page = "/qrcode?scene_id=8&expire_seconds=63";
    let old = tickets(&burst(&app, json, 16).await);
    burst(&app, page, 16).await;
    assert_eq!(
        tickets(&burst(&app, json, 16).await),
        old,
        "served from the caches"
    );

    actix_web::rt::time::sleep(Duration::from_millis(3_500)).await;
    // Pages first: each worker's kept page must expire on its own.
    let pages = burst(&app, page, 16).await;
    let new = tickets(&burst(&app, json, 16).await);

    assert_eq!(new.len(), 1);
    assert!(new.is_disjoint(&old), "an answer showed the old ticket");
    let encoded = |t: &String| form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>();
    for page in &pages {
        let text = page.text();
        assert!(new.iter().all(|t| text.contains(&encoded(t))), "{text}");
        assert!(!old.iter().any(|t| text.contains(&encoded(t))), "{text}");
    }
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 2);
}
