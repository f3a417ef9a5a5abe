//! The database file removed while the service runs: writes would go on into a file no
//! one can open again, so nothing more is acknowledged, and /healthz says why.

use std::time::Duration;

use crate::helpers::ChildApp;
use crate::support::{Pusher, TOKEN};

#[actix_web::test]
async fn after_the_database_file_is_removed_no_push_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let database = format!("sqlite://{}", path.display());
    let mut child = ChildApp::spawn(&[("WECHAT_TOKEN", TOKEN), ("DATABASE_URL", &database)]);
    let address = child.wait_for_address();
    let pusher = Pusher::new(&address, Duration::from_secs(10), 1);
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let before = pusher.push("before".into()).await;

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut after = Vec::new();
    for i in 0..5 {
        after.push(pusher.push(format!("after{i}")).await);
    }
    let mut health = client
        .get(format!("{address}/healthz"))
        .send()
        .await
        .unwrap();
    let health_text = String::from_utf8_lossy(&health.body().await.unwrap()).into_owned();
    let output = child.stop();

    assert!(before.acknowledged, "{before:?}");
    for answer in &after {
        assert_eq!(answer.status, Some(503), "{answer:?}");
    }
    assert_eq!(health.status().as_u16(), 503, "{health_text}");
    assert!(health_text.contains("removed or replaced"), "{health_text}");
    assert!(!path.exists(), "no new empty database was created");
    assert_eq!(
        output.matches("database writes are failing").count(),
        1,
        "{output}"
    );
}
