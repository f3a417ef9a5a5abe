//! `kill -9` of one of three replicas on one PostgreSQL database in the middle of a burst of
//! pushes spread over all three: every push any replica answered `success` is in the
//! database, counted, and the two survivors keep storing. Needs `SCENE_QR_TEST_POSTGRES`
//! (CI starts a server); without it the test says so and passes, unless
//! `SCENE_QR_REQUIRE_POSTGRES` is set.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::PgPool;

use crate::helpers::{ChildApp, postgres_database_or_skip};
use crate::support::{Burst, Pusher, TOKEN, acknowledged_but_missing};

/// Pushes in the burst, and how many must be acknowledged before the kill.
const BURST: usize = 900;
const KILL_AFTER: usize = 150;

#[actix_web::test]
async fn after_kill_9_of_one_replica_every_acknowledged_push_is_stored_and_counted() {
    let Some(database) = postgres_database_or_skip("replica kill -9") else {
        return;
    };
    let env = [("WECHAT_TOKEN", TOKEN), ("DATABASE_URL", database.as_str())];
    let mut replicas: Vec<ChildApp> = (0..3).map(|_| ChildApp::spawn(&env)).collect();
    let pushers: Vec<Pusher> = replicas
        .iter_mut()
        .map(|replica| Pusher::new(&replica.wait_for_address(), Duration::from_secs(10), 32))
        .collect();

    // Act: the burst, spread over the replicas, runs beside this task; the kill of the
    // first replica lands once part of it is answered.
    let burst = Burst::start(&pushers, "replica", BURST);
    burst
        .wait_for_acknowledged(KILL_AFTER, Duration::from_secs(20))
        .await;
    replicas[0].signal("KILL");
    let answers = burst.answers(Duration::from_secs(30)).await;

    // Assert
    let acknowledged = answers.iter().filter(|a| a.acknowledged).count();
    assert!(
        acknowledged >= KILL_AFTER,
        "the burst was not under way: {acknowledged}"
    );
    assert!(
        acknowledged < BURST,
        "the kill landed after the burst, so it proves nothing: all {BURST} acknowledged"
    );
    let pool = PgPool::connect(&database).await.expect("database");
    let stored: HashSet<String> = sqlx::query_scalar("SELECT openid FROM scan_events")
        .fetch_all(&pool)
        .await
        .expect("read scan_events")
        .into_iter()
        .collect();
    let missing = acknowledged_but_missing(&answers, &stored);
    assert!(
        missing.is_empty(),
        "{} acknowledged pushes are not stored: {missing:?}",
        missing.len()
    );
    // Counted in the transaction that stored them: no stored scan is uncounted.
    let stored_scans: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM scan_events WHERE scene = 'fault'")
            .fetch_one(&pool)
            .await
            .expect("count scan_events");
    let counted_scans: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(scans), 0) AS BIGINT) FROM scene_days WHERE scene = 'fault'",
    )
    .fetch_one(&pool)
    .await
    .expect("sum scene_days");
    assert_eq!(counted_scans, stored_scans);
    // The survivors keep storing.
    for (survivor, pusher) in pushers[1..].iter().enumerate() {
        let after = pusher.push(format!("after-kill-{survivor}")).await;
        assert!(after.acknowledged, "a survivor after the kill: {after:?}");
    }
}
