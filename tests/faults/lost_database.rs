//! The database file removed while the service runs: writes would go on into a file no
//! one can open again, so nothing more is acknowledged, and /healthz says why.

use std::time::Duration;

use scene_qr::emulator::{PushTarget, sign_push_now};
use scene_qr::wechat::push::to_xml;

use crate::helpers::ChildApp;

const TOKEN: &str = "lostdbtoken";

async fn push(client: &awc::Client, target: &PushTarget, openid: &str) -> (u16, String) {
    let xml = to_xml(&[
        ("FromUserName", openid),
        ("CreateTime", "946771200"),
        ("MsgType", "event"),
        ("Event", "SCAN"),
        ("EventKey", "door"),
    ]);
    let signed = sign_push_now(target, &xml);
    match client
        .post(format!("{}?{}", target.url, signed.query))
        .send_body(signed.body)
        .await
    {
        Ok(mut response) => {
            let body = response.body().await.unwrap_or_default();
            (
                response.status().as_u16(),
                String::from_utf8_lossy(&body).into_owned(),
            )
        }
        Err(e) => (0, e.to_string()),
    }
}

#[actix_web::test]
async fn after_the_database_file_is_removed_no_push_is_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let database = format!("sqlite://{}", path.display());
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
        .finish();
    let before = push(&client, &target, "before").await;

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut after = Vec::new();
    for i in 0..5 {
        after.push(push(&client, &target, &format!("after{i}")).await);
    }
    let mut health = client
        .get(format!("{address}/healthz"))
        .send()
        .await
        .unwrap();
    let health_text = String::from_utf8_lossy(&health.body().await.unwrap()).into_owned();
    let output = child.stop();

    assert_eq!(before, (200, "success".to_string()));
    for (status, text) in &after {
        assert_eq!(*status, 503, "{text}");
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
