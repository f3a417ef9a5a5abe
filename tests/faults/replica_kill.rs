//! `kill -9` of one of three replicas on one PostgreSQL database in the middle of a burst of
//! pushes spread over all three: every push any replica answered `success` is in the
//! database, counted, and the two survivors keep storing. Needs `SCENE_QR_TEST_POSTGRES`
//! (CI starts a server); without it the test says so and passes, unless
//! `SCENE_QR_REQUIRE_POSTGRES` is set.

use std::cell::Cell;
use std::collections::HashSet;
use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use sqlx::PgPool;

use crate::helpers::{ChildApp, fresh_postgres_database};
use crate::support::{Pusher, TOKEN, acknowledged_but_missing};

/// Pushes in the burst, and how many must be acknowledged before the kill.
const BURST: usize = 900;
const KILL_AFTER: usize = 150;

#[actix_web::test]
async fn after_kill_9_of_one_replica_every_acknowledged_push_is_stored_and_counted() {
    if std::env::var_os("SCENE_QR_TEST_POSTGRES").is_none() {
        assert!(
            std::env::var_os("SCENE_QR_REQUIRE_POSTGRES").is_none(),
            "SCENE_QR_REQUIRE_POSTGRES is set but SCENE_QR_TEST_POSTGRES is not"
        );
        let _ = writeln!(
            std::io::stderr(),
            "replica kill -9: skipped (no SCENE_QR_TEST_POSTGRES)"
        );
        return;
    }
    // Arrange
    let database = fresh_postgres_database();
    let env = [("WECHAT_TOKEN", TOKEN), ("DATABASE_URL", database.as_str())];
    let mut replicas: Vec<ChildApp> = (0..3).map(|_| ChildApp::spawn(&env)).collect();
    let pushers: Vec<Pusher> = replicas
        .iter_mut()
        .map(|replica| Pusher::new(&replica.wait_for_address(), Duration::from_secs(10), 32))
        .collect();
    let acknowledged_so_far = Rc::new(Cell::new(0_usize));

    // Act: the burst, spread over the replicas, runs beside this task; the kill of the
    // first replica lands once part of it is answered.
    let burst = actix_web::rt::spawn({
        let pushers = pushers.clone();
        let count = acknowledged_so_far.clone();
        join_all((0..BURST).map(move |i| {
            let pusher = pushers[i % pushers.len()].clone();
            let count = count.clone();
            async move {
                let answer = pusher.push(format!("replica{i}")).await;
                if answer.acknowledged {
                    count.set(count.get() + 1);
                }
                answer
            }
        }))
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while acknowledged_so_far.get() < KILL_AFTER && Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(1)).await;
    }
    replicas[0].signal("KILL");
    let answers = actix_web::rt::time::timeout(Duration::from_secs(30), burst)
        .await
        .expect("every push ends within its timeout")
        .expect("burst task");

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
    for pusher in &pushers[1..] {
        let after = pusher.push(format!("after-kill-{}", rand_suffix())).await;
        assert!(after.acknowledged, "a survivor after the kill: {after:?}");
    }
}

/// A name no other push of the test has.
fn rand_suffix() -> u64 {
    rand::random()
}
