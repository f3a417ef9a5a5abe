//! The database file removed while the service runs: writes would go on into a file no
//! one can open again, so nothing more is acknowledged, and /healthz says why.

use std::time::Duration;

use crate::helpers::ChildApp;
use crate::support::{Pusher, TOKEN, client, get_text};

#[actix_web::test]
async fn after_the_database_file_is_removed_no_push_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let database = format!("sqlite://{}", path.display());
    let mut child = ChildApp::spawn(&[("WECHAT_TOKEN", TOKEN), ("DATABASE_URL", &database)]);
    let address = child.wait_for_address();
    let pusher = Pusher::new(&address, Duration::from_secs(10), 1);
    let client = client(Duration::from_secs(10), 4);
    let before = pusher.push("before".into()).await;

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut after = Vec::new();
    for i in 0..5 {
        after.push(pusher.push(format!("after{i}")).await);
    }
    let (health, health_text) = get_text(&client, &format!("{address}/healthz")).await;
    let output = child.stop();

    assert!(before.acknowledged, "{before:?}");
    for answer in &after {
        assert_eq!(answer.status, Some(503), "{answer:?}");
    }
    assert_eq!(health, Some(503), "{health_text}");
    assert!(health_text.contains("removed or replaced"), "{health_text}");
    assert!(!path.exists(), "no new empty database was created");
    assert_eq!(
        output.matches("database writes are failing").count(),
        1,
        "{output}"
    );
}
