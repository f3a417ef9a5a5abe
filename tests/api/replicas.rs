//! Several servers on one PostgreSQL database and one WeChat emulator, as replicas behind a
//! load balancer. Each test needs `SCENE_QR_TEST_POSTGRES` (CI starts a server); without it
//! it says so and passes, unless `SCENE_QR_REQUIRE_POSTGRES` is set.

use std::io::Write;
use std::time::Duration;

use futures_util::future::join_all;
use scene_qr::emulator::Api;

use crate::helpers::{TestApp, fresh_postgres_database, spawn_app_with};

/// Three replicas on a new PostgreSQL database, or `None` (after saying so) without one.
async fn three_replicas(test: &str) -> Option<[TestApp; 3]> {
    if std::env::var_os("SCENE_QR_TEST_POSTGRES").is_none() {
        assert!(
            std::env::var_os("SCENE_QR_REQUIRE_POSTGRES").is_none(),
            "{test}: SCENE_QR_REQUIRE_POSTGRES is set but SCENE_QR_TEST_POSTGRES is not"
        );
        let _ = writeln!(
            std::io::stderr(),
            "{test}: skipped (no SCENE_QR_TEST_POSTGRES)"
        );
        return None;
    }
    let url = fresh_postgres_database();
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
