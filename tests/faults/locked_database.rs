//! Another process holds the database's write lock for 10 s (a backup, an operator's
//! `sqlite3` shell, a migration gone wrong). Pushes cannot be committed meanwhile, so none
//! may be answered `success`; pages that need no write keep answering (`/healthz` may say
//! 503 while writes fail: that is an answer, and the truth); once the lock is
//! gone, pushes are acknowledged and stored again.

use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;

use crate::helpers::ChildApp;
use crate::support::{
    Answer, Pusher, TOKEN, acknowledged_but_missing, database_url, stored_openids, timed_get,
};

const LOCK_HELD: Duration = Duration::from_secs(10);
/// The patience of each push's client.
const PUSH_TIMEOUT: Duration = Duration::from_secs(6);
/// How long after the release a push must be acknowledged again.
const RECOVERY: Duration = Duration::from_secs(10);
/// How long a page may take during the lock.
const PAGE_LIMIT: Duration = Duration::from_secs(2);

/// Pushes one after another until `until`, each after the last one's answer.
async fn push_one_after_another(pusher: &Pusher, until: Instant) -> Vec<Answer> {
    let mut answers = Vec::new();
    while Instant::now() < until {
        answers.push(pusher.push(format!("locked{}", answers.len())).await);
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    answers
}

/// Asks for each page every 250 ms until `until`; each status and time.
async fn keep_asking_for(pages: &[String], until: Instant) -> Vec<(String, Option<u16>, Duration)> {
    let mut seen = Vec::new();
    while Instant::now() < until {
        for url in pages {
            let (status, took) = timed_get(url, PAGE_LIMIT).await;
            seen.push((url.clone(), status, took));
        }
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
    }
    seen
}

#[actix_web::test]
async fn under_a_foreign_write_lock_no_push_is_acknowledged_pages_answer_and_pushes_resume_after() {
    // Arrange: a service with one code cached, and a connection of the test's own.
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = database_url(&dir);
    let mut child = ChildApp::spawn(&[("WECHAT_TOKEN", TOKEN), ("DATABASE_URL", &database)]);
    let address = child.wait_for_address();
    let pusher = Pusher::new(&address, PUSH_TIMEOUT, 1);
    let pages = [
        format!("{address}/qrcode?scene_id=1"),
        format!("{address}/healthz"),
    ];
    for url in &pages {
        assert_eq!(
            timed_get(url, Duration::from_secs(10)).await.0,
            Some(200),
            "{url}"
        );
    }
    // Also the moment the new code's inventory row is committed: it went first in the queue.
    assert!(pusher.push("before".into()).await.acknowledged);
    let mut locker = SqliteConnection::connect(&database)
        .await
        .expect("a second connection to the database");

    // Act: hold the write lock for LOCK_HELD while pushing and asking for pages.
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut locker)
        .await
        .expect("take the write lock");
    let locked_at = Instant::now();
    let until = locked_at + LOCK_HELD;
    let (during, page_checks) = futures_util::join!(
        push_one_after_another(&pusher, until),
        keep_asking_for(&pages, until),
    );
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut locker)
        .await
        .expect("release the write lock");
    let released_at = Instant::now();
    locker.close().await.expect("close the second connection");
    let mut after = Vec::new();
    while released_at.elapsed() < RECOVERY {
        let answer = pusher.push(format!("released{}", after.len())).await;
        let acknowledged = answer.acknowledged;
        after.push(answer);
        if acknowledged {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }

    // Assert
    let slowest = during.iter().map(Answer::took).max().unwrap_or_default();
    let statuses: Vec<_> = during.iter().map(|a| a.status).collect();
    eprintln!(
        "during the {LOCK_HELD:?} lock: {} pushes answered {statuses:?}, \
         the slowest in {slowest:?}",
        during.len()
    );
    assert!(
        !during.is_empty(),
        "no push was sent while the lock was held"
    );
    // WeChat waits 5 s for an answer; one after that is lost, and the push sent again.
    assert!(
        slowest < Duration::from_millis(4_500),
        "a push waited {slowest:?} for its answer during the lock"
    );
    let refused: Vec<_> = during.iter().filter(|a| a.status != Some(503)).collect();
    assert!(refused.is_empty(), "answered other than 503: {refused:?}");
    // The lock was held until the last of them was answered.
    let acknowledged_while_locked: Vec<_> = during.iter().filter(|a| a.acknowledged).collect();
    assert!(
        acknowledged_while_locked.is_empty(),
        "acknowledged while nothing could be committed: {acknowledged_while_locked:?}"
    );
    // The code page needs no write: 200. /healthz: 200, or 503 if it reports that writes
    // are failing, which they are; either way an answer within PAGE_LIMIT.
    let failed_pages: Vec<_> = page_checks
        .iter()
        .filter(|(url, status, _)| match status {
            Some(200) => false,
            Some(503) => !url.ends_with("/healthz"),
            _ => true,
        })
        .collect();
    let slowest_page = page_checks.iter().map(|c| c.2).max().unwrap_or_default();
    let health_503 = page_checks
        .iter()
        .filter(|(url, status, _)| url.ends_with("/healthz") && *status == Some(503))
        .count();
    eprintln!(
        "during the lock: {} page requests, the slowest in {slowest_page:?}; \
         /healthz said 503 {health_503} times",
        page_checks.len()
    );
    assert!(page_checks.len() >= 2 * pages.len(), "{page_checks:?}");
    assert!(
        failed_pages.is_empty(),
        "pages did not answer within {PAGE_LIMIT:?} during the lock: {failed_pages:?}"
    );
    let resumed = after.last().expect("a push after the release");
    eprintln!(
        "after the release: {} pushes until one was acknowledged, {:?} after the release",
        after.len(),
        resumed.answered - released_at
    );
    assert!(
        resumed.acknowledged,
        "no push acknowledged within {RECOVERY:?} of the release: {after:?}"
    );
    let stored = stored_openids(&database).await;
    let all: Vec<Answer> = during.into_iter().chain(after.iter().cloned()).collect();
    let missing = acknowledged_but_missing(&all, &stored);
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );
    assert!(stored.contains(&resumed.openid));
    assert!(stored.contains("before"));
    let (health, _) = timed_get(&pages[1], PAGE_LIMIT).await;
    assert_eq!(health, Some(200), "/healthz once writes are stored again");
    drop(child);
}
