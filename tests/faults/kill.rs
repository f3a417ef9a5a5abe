//! `kill -9` in the middle of a burst of pushes: no shutdown runs, no buffer is flushed.
//! Whatever was answered `success` must already be on disk, and the service must start
//! again on the same database file.

use std::time::Duration;

use crate::helpers::ChildApp;
use crate::support::{
    Burst, Pusher, TOKEN, acknowledged_but_missing, database_url, stored_openids, timed_get,
};

/// Pushes in the burst, and how many must be acknowledged before the kill.
const BURST: usize = 600;
const KILL_AFTER: usize = 100;

#[actix_web::test]
async fn after_kill_9_mid_burst_every_acknowledged_push_is_stored_and_counted_and_the_service_restarts()
 {
    // Arrange
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = database_url(&dir);
    let env = [("WECHAT_TOKEN", TOKEN), ("DATABASE_URL", database.as_str())];
    let mut child = ChildApp::spawn(&env);
    let address = child.wait_for_address();
    let pusher = Pusher::new(&address, Duration::from_secs(10), 64);

    // Act: the burst runs beside this task; the kill lands once part of it is answered.
    let burst = Burst::start(std::slice::from_ref(&pusher), "killed", BURST);
    burst
        .wait_for_acknowledged(KILL_AFTER, Duration::from_secs(20))
        .await;
    child.signal("KILL");
    let answers = burst.answers(Duration::from_secs(30)).await;
    let (_, log) = child.wait_for_exit(Duration::from_secs(10));
    let mut restarted = ChildApp::spawn(&env);
    let restarted_address = restarted.wait_for_address();

    // Assert
    let acknowledged = answers.iter().filter(|a| a.acknowledged).count();
    let unanswered = answers.iter().filter(|a| a.status.is_none()).count();
    eprintln!(
        "kill -9 after {acknowledged} of {BURST} pushes were acknowledged; \
         {unanswered} got no answer"
    );
    assert!(
        acknowledged >= KILL_AFTER,
        "the burst was not under way: {acknowledged} acknowledged\n{log}"
    );
    assert!(
        acknowledged < BURST,
        "the kill landed after the burst, so it proves nothing: all {BURST} acknowledged"
    );
    let (health, _) = timed_get(
        &format!("{restarted_address}/healthz"),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(health, Some(200), "the restarted service serves pages");
    let stored = stored_openids(&database).await;
    let missing = acknowledged_but_missing(&answers, &stored);
    assert!(
        missing.is_empty(),
        "{} pushes acknowledged before kill -9 are not stored: {missing:?}",
        missing.len()
    );
    let after = Pusher::new(&restarted_address, Duration::from_secs(10), 1)
        .push("after-restart".into())
        .await;
    assert!(after.acknowledged, "after restart: {after:?}");
    assert!(stored_openids(&database).await.contains("after-restart"));
    let pool = sqlx::SqlitePool::connect(&database).await.expect("open");
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .expect("integrity_check");
    assert_eq!(integrity, "ok");
    // The statistics are committed with the events they count, so a kill between the two
    // cannot leave a stored scan uncounted (or a count without its scan).
    let stored_scans: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM scan_events WHERE scene = 'fault'")
            .fetch_one(&pool)
            .await
            .expect("count scan_events");
    let counted_scans: i64 =
        sqlx::query_scalar("SELECT COALESCE(SUM(scans), 0) FROM scene_days WHERE scene = 'fault'")
            .fetch_one(&pool)
            .await
            .expect("sum scene_days");
    assert_eq!(counted_scans, stored_scans, "scans counted vs stored");
}
