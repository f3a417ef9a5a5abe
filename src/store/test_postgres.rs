//! A database of its own for each test against PostgreSQL, on the server named by
//! `SCENE_QR_TEST_POSTGRES` (`.ci/run` starts a throwaway one). Without that variable the
//! PostgreSQL half of a test is skipped, and says so, unless `SCENE_QR_REQUIRE_POSTGRES` is
//! set (as CI sets it), when a missing server is a failure.

use sqlx::postgres::PgConnectOptions;
use std::io::Write;

use sqlx::{ConnectOptions, Connection, Executor};

/// The URL of a new, empty database; `None` (after saying so) when no server is configured.
pub async fn fresh_database(test: &str) -> Option<String> {
    let Ok(server) = std::env::var("SCENE_QR_TEST_POSTGRES") else {
        assert!(
            std::env::var_os("SCENE_QR_REQUIRE_POSTGRES").is_none(),
            "{test}: SCENE_QR_REQUIRE_POSTGRES is set but SCENE_QR_TEST_POSTGRES is not"
        );
        skipped(test);
        return None;
    };
    let options: PgConnectOptions = server.parse().expect("SCENE_QR_TEST_POSTGRES");
    let mut admin = options
        .connect()
        .await
        .expect("connecting to SCENE_QR_TEST_POSTGRES");
    let name = format!("scene_qr_{}", rand::random::<u64>());
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("CREATE DATABASE");
    admin.close().await.ok();
    Some(options.database(&name).to_url_lossy().to_string())
}

/// Says that a test's PostgreSQL half was skipped, on the terminal itself: the test harness
/// keeps what a passing test prints to itself.
fn skipped(test: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "{test}: PostgreSQL half skipped (no SCENE_QR_TEST_POSTGRES; `bash .ci/run` starts one)"
    );
}
