//! `kill -9` while a batch is being made, and right after a batch was accepted: the `202`
//! promised the batch was stored, and each row's code is recorded before its outcome. After
//! the restart both batches finish, and no scene has two permanent codes.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::ChildApp;
use crate::support::{client, database_url, get_text};

/// Rows of the batch the kill lands in, and how many must be made before it.
const ROWS: u64 = 100;
const KILL_AFTER: u64 = 15;

/// `POST /api/batches` with `body`: the new batch's id.
async fn submit(client: &awc::Client, address: &str, body: Value) -> String {
    let mut answer = client
        .post(format!("{address}/api/batches"))
        .send_json(&body)
        .await
        .expect("an answer");
    assert_eq!(answer.status().as_u16(), 202);
    let body: Value = answer.json().await.expect("JSON");
    body["id"].as_str().expect("an id").to_string()
}

/// The batch's progress once `done(progress)` holds, or the last one after 60 s.
async fn progress_once(
    client: &awc::Client,
    address: &str,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = get_text(client, &format!("{address}/api/batches/{id}")).await;
        let progress: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        if done(&progress) || Instant::now() > deadline {
            return progress;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn batches_killed_mid_way_or_just_accepted_finish_after_a_restart_with_one_code_per_scene() {
    // Arrange: sandbox mode, its emulator inside the child.
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = database_url(&dir);
    let env = [("DATABASE_URL", database.as_str())];
    let mut child = ChildApp::spawn(&env);
    let address = child.wait_for_address();
    let client = client(Duration::from_secs(10), 4);

    // Act
    let long = submit(
        &client,
        &address,
        json!({"pattern": "k-{001..100}", "kind": "permanent"}),
    )
    .await;
    let before = progress_once(&client, &address, &long, |p| {
        p["done"].as_u64() >= Some(KILL_AFTER)
    })
    .await;
    let accepted = submit(
        &client,
        &address,
        json!({"pattern": "a-{1..5}", "kind": "permanent"}),
    )
    .await;
    child.signal("KILL");
    let _ = child.wait_for_exit(Duration::from_secs(10));
    let mut restarted = ChildApp::spawn(&env);
    let address = restarted.wait_for_address();
    let finished = |p: &Value| p["state"] == "done" || p["state"] == "stopped";
    let long_after = progress_once(&client, &address, &long, finished).await;
    let accepted_after = progress_once(&client, &address, &accepted, finished).await;

    // Assert
    let done_before = before["done"].as_u64().unwrap_or_default();
    assert!(
        (KILL_AFTER..ROWS).contains(&done_before),
        "the kill did not land mid-batch: {before}"
    );
    assert_eq!(long_after["state"], "done", "{long_after}");
    assert_eq!(long_after["done"], ROWS);
    assert_eq!(accepted_after["state"], "done", "{accepted_after}");
    assert_eq!(accepted_after["done"], 5);
    let pool = sqlx::SqlitePool::connect(&database).await.expect("open");
    let (codes, scenes): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT scene) FROM codes WHERE kind = 'permanent'",
    )
    .fetch_one(&pool)
    .await
    .expect("count codes");
    assert_eq!((codes, scenes), (105, 105), "one permanent code per scene");
    // Each row shows the code the inventory holds for its scene.
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM batch_rows r JOIN codes c ON c.scene = r.scene \
         WHERE c.kind = 'permanent' AND r.url <> c.url",
    )
    .fetch_one(&pool)
    .await
    .expect("compare urls");
    assert_eq!(mismatched, 0);
    restarted.stop();
}
