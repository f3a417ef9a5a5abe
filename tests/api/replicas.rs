//! Several servers on one PostgreSQL database and one WeChat emulator, as replicas behind a
//! load balancer. Each test needs `SCENE_QR_TEST_POSTGRES` (CI starts a server); without it
//! it says so and passes, unless `SCENE_QR_REQUIRE_POSTGRES` is set.

use std::time::Duration;

use futures_util::future::join_all;
use scene_qr::domain::{CodeRequest, Lifetime};
use scene_qr::emulator::Api;
use sqlx::PgPool;

use crate::helpers::{
    TestApp, cut_off_database, event_xml, postgres_database_or_skip, spawn_app_with,
};

/// Three replicas on a new PostgreSQL database, or `None` (after saying so) without one.
async fn three_replicas(test: &str) -> Option<[TestApp; 3]> {
    let url = postgres_database_or_skip(test)?;
    let first = spawn_app_with(|settings| settings.database_url = url).await;
    let second = first.replica().await;
    let third = first.replica().await;
    Some([first, second, third])
}

#[actix_web::test]
async fn concurrent_first_requests_on_three_replicas_create_one_code() {
    let Some(replicas) = three_replicas("one code across replicas").await else {
        return;
    };
    // A slow WeChat: every replica's request arrives while the first create is in flight.
    replicas[0]
        .emulator
        .set_delay(Api::QrcodeCreate, Duration::from_millis(300));
    let paths = [
        "/api/qrcode?scene_str=poster&permanent=true",
        "/api/qrcode?scene_id=77&expire_seconds=86400",
    ];
    for path in paths {
        let requests = replicas
            .iter()
            .flat_map(|replica| (0..4).map(move |_| replica.get(path)));
        let answers = join_all(requests).await;

        let tickets: Vec<String> = answers
            .iter()
            .map(|answer| {
                assert_eq!(answer.status, 200, "{path}: {}", answer.text());
                answer.json()["ticket"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        assert!(
            tickets.iter().all(|t| *t == tickets[0]),
            "{path}: {tickets:?}"
        );
    }
    assert_eq!(replicas[0].emulator.calls(Api::QrcodeCreate), paths.len());
}

#[actix_web::test]
async fn a_claim_left_by_a_replica_that_died_holds_the_code_back_no_longer_than_its_lease() {
    let Some(replicas) = three_replicas("claim of a dead replica").await else {
        return;
    };
    let query = "scene_id=78&expire_seconds=86400";
    let code = CodeRequest::from_query(query, Lifetime::new(604_800).expect("lifetime"))
        .expect("a valid code");
    // A replica claimed the code and died before creating it: its lease runs 1.5 s more.
    let database = PgPool::connect(&replicas[0].settings.database_url)
        .await
        .expect("database");
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    sqlx::query("INSERT INTO code_claims (code, holder, lease_until) VALUES ($1, 'dead', $2)")
        .bind(code.query_string())
        .bind(i64::try_from(now_ms).expect("milliseconds") + 1_500)
        .execute(&database)
        .await
        .expect("claim");

    let started = std::time::Instant::now();
    let answer = replicas[1].get(&format!("/api/qrcode?{query}")).await;
    let waited = started.elapsed();

    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(waited >= Duration::from_millis(1_200), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(replicas[0].emulator.calls(Api::QrcodeCreate), 1);
    let claims: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM code_claims")
        .fetch_one(&database)
        .await
        .expect("claims");
    assert_eq!(claims, 0, "recording the code ends the claim");
}

#[actix_web::test]
async fn a_lost_database_refuses_pushes_keeps_cached_pages_and_comes_back_by_itself() {
    let Some(replicas) = three_replicas("lost database").await else {
        return;
    };
    let app = &replicas[0];
    let page = "/qrcode?scene_id=5";
    assert_eq!(app.get(page).await.status, 200);
    let first = event_xml("o-before", 1_700_000_000, "SCAN", "5");
    assert_eq!(app.push(&first).await.text(), "success");

    cut_off_database(&app.settings.database_url, true).await;
    let during = event_xml("o-during", 1_700_000_100, "SCAN", "5");
    let refused = app.push(&during).await;
    let cached = app.get(page).await;
    let health = app.get("/healthz").await;
    cut_off_database(&app.settings.database_url, false).await;

    assert_ne!(
        refused.text(),
        "success",
        "a push that was not stored is not acknowledged"
    );
    assert!(refused.status.is_server_error(), "{}", refused.status);
    assert_eq!(
        cached.status, 200,
        "a cached code's page is served without the database"
    );
    assert_ne!(health.status, 200, "{}", health.text());
    // WeChat retries; the service reconnects by itself, without a restart.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let retried = loop {
        let answer = app.push(&during).await;
        if answer.text() == "success" || std::time::Instant::now() > deadline {
            break answer;
        }
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(retried.text(), "success");
    let stats = app
        .get("/api/stats?from=2023-11-14&to=2023-11-15")
        .await
        .json();
    assert_eq!(stats["totals"]["scans"], 2, "{stats}");
}
