//! Bodies announced and never sent: a push that is not signed is refused from its query
//! alone, a signed one is given up on before WeChat's 5 s, and neither holds the service.

use std::time::{Duration, Instant};

use scene_qr::emulator::sign_push_now;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{event_xml, spawn_app};

/// Sends the head of a POST announcing a 65,000-byte body, and no body; returns the
/// status line of the answer and how long it took (at most `limit`).
async fn stalled_post(address: &str, path_and_query: &str, limit: Duration) -> (String, Duration) {
    let host = address.trim_start_matches("http://");
    let started = Instant::now();
    let exchange = async {
        let mut stream = actix_web::rt::net::TcpStream::connect(host).await?;
        let head = format!(
            "POST {path_and_query} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/xml\r\n\
             Content-Length: 65000\r\n\r\n<xml>"
        );
        stream.write_all(head.as_bytes()).await?;
        let mut answer = vec![0u8; 512];
        let read = stream.read(&mut answer).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer[..read]).into_owned())
    };
    let answer = match actix_web::rt::time::timeout(limit, exchange).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => format!("error: {e}"),
        Err(_) => "no answer".into(),
    };
    let status = answer.lines().next().unwrap_or_default().to_string();
    (status, started.elapsed())
}

#[actix_web::test]
async fn an_unsigned_push_is_refused_without_waiting_for_its_body() {
    let app = spawn_app().await;

    let stalled: Vec<_> = futures_util::future::join_all(
        (0..300).map(|_| stalled_post(&app.address, "/wechat/callback", Duration::from_secs(10))),
    )
    .await;
    let started = Instant::now();
    let health = app.get("/healthz").await;
    let health_took = started.elapsed();

    let slowest = stalled
        .iter()
        .map(|(_, took)| *took)
        .max()
        .unwrap_or_default();
    for (status, _) in &stalled {
        assert_eq!(status, "HTTP/1.1 403 Forbidden");
    }
    assert!(
        slowest < Duration::from_secs(2),
        "slowest refusal took {slowest:?}"
    );
    assert_eq!(health.status, 200);
    assert!(health_took < Duration::from_secs(1), "{health_took:?}");
}

#[actix_web::test]
async fn a_signed_push_whose_body_never_comes_is_answered_before_wechat_gives_up() {
    let app = spawn_app().await;
    let push = sign_push_now(
        &app.push_target(),
        &event_xml("o1", 946_771_200, "SCAN", "1"),
    );

    let (status, took) = stalled_post(
        &app.address,
        &format!("/wechat/callback?{}", push.query),
        Duration::from_secs(10),
    )
    .await;

    assert_eq!(status, "HTTP/1.1 408 Request Timeout");
    assert!(
        took < Duration::from_millis(4_800),
        "answered after {took:?}, WeChat waits 5 s"
    );
}
