//! Graceful shutdown: on SIGTERM or SIGINT the service finishes what it acknowledged.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::future::join_all;
use scene_qr::emulator::{PushTarget, sign_push_now};
use scene_qr::wechat::push::to_xml;

use crate::helpers::ChildApp;

const TOKEN: &str = "shutdowntoken";

async fn no_acknowledged_event_is_lost(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("events.db").display());
    let mut child = ChildApp::spawn(&[("WECHAT_TOKEN", TOKEN), ("DATABASE_URL", &database)]);
    let address = child.wait_for_address();
    let target = PushTarget {
        url: format!("{address}/wechat/callback"),
        token: TOKEN.into(),
        aes_key: None,
        appid: String::new(),
    };
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .connector(awc::Connector::new().limit(64))
        .finish();
    let send = |i: usize| {
        let xml = to_xml(&[
            ("FromUserName", &format!("user{i}")),
            ("CreateTime", "946771200"),
            ("MsgType", "event"),
            ("Event", "SCAN"),
            ("EventKey", "door"),
        ]);
        let push = sign_push_now(&target, &xml);
        let request = client
            .post(format!("{}?{}", target.url, push.query))
            .send_body(push.body);
        async move {
            match request.await {
                Ok(mut response) => {
                    let body = response.body().await.unwrap_or_default();
                    (response.status().is_success() && body.as_ref() == b"success").then_some(i)
                }
                Err(_) => None,
            }
        }
    };
    // A first wave is certainly acknowledged; the second is under way when the signal lands.
    let first: Vec<_> = join_all((0..200).map(send)).await;
    let second = actix_web::rt::spawn(join_all((200..2_000).map(send)));
    actix_web::rt::time::sleep(Duration::from_millis(30)).await;
    child.signal(signal);
    let second = second.await.unwrap();
    let (code, log) = child.wait_for_exit(Duration::from_secs(40));

    assert_eq!(code, Some(0), "{log}");
    let acknowledged: HashSet<String> = first
        .into_iter()
        .chain(second)
        .flatten()
        .map(|i| format!("user{i}"))
        .collect();
    assert!(acknowledged.len() >= 200, "{}", acknowledged.len());
    let pool = sqlx::SqlitePool::connect(&database).await.unwrap();
    let stored: HashSet<String> = sqlx::query_scalar("SELECT openid FROM scan_events")
        .fetch_all(&pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    assert!(
        log.contains(&format!("{signal}: finishing requests in flight")),
        "{log}"
    );
}

#[actix_web::test]
async fn sigterm_loses_no_acknowledged_event() {
    no_acknowledged_event_is_lost("TERM").await;
}

#[actix_web::test]
async fn sigint_loses_no_acknowledged_event() {
    no_acknowledged_event_is_lost("INT").await;
}
