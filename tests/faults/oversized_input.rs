//! Input over the limits: a header block over actix-web's (431), a push over 64 KiB and
//! a `/labels` form over 16 KiB (413). Nothing is stored, and the service keeps serving.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::helpers::{TestApp, event_xml, spawn_app};

/// What actix-web 4 buffers of a request head before answering 431 (actix-http's
/// `MAX_BUFFER_SIZE`), and the most headers it parses (`MAX_HEADERS`).
const HEAD_LIMIT: usize = 128 * 1024;
const MAX_HEADERS: usize = 96;

/// Sends `request` as raw bytes on a new connection and returns the status line's code,
/// or what went wrong. Blocking, bounded by socket timeouts: run off the async runtime.
fn raw_status(address: &str, request: Vec<u8>) -> Result<u16, String> {
    let host = address.strip_prefix("http://").expect("http address");
    assert!(
        host.starts_with("127.0.0.1:"),
        "tests stay on loopback: {host}"
    );
    let mut stream = TcpStream::connect(host).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(10))))
        .map_err(|e| e.to_string())?;
    let written = stream.write_all(&request);
    let mut answer = Vec::new();
    let read = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status line (write: {written:?}, read: {read:?}): {text:?}"))
}

async fn raw(app: &TestApp, request: Vec<u8>) -> Result<u16, String> {
    let address = app.address.clone();
    actix_web::rt::task::spawn_blocking(move || raw_status(&address, request))
        .await
        .expect("raw request thread")
}

#[actix_web::test]
async fn a_header_over_the_limit_gets_431_and_the_service_keeps_serving() {
    // Arrange
    let app = spawn_app().await;
    let one_big_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}",
        "a".repeat(HEAD_LIMIT + 1024)
    );
    let mut many_headers = String::from("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for i in 0..=MAX_HEADERS {
        many_headers.push_str(&format!("X-Header-{i}: {i}\r\n"));
    }
    many_headers.push_str("\r\n");

    // Act
    let big = raw(&app, format!("{one_big_header}\r\n\r\n").into_bytes()).await;
    let many = raw(&app, many_headers.into_bytes()).await;

    // Assert
    assert_eq!(big, Ok(431), "a header of {} KiB", HEAD_LIMIT / 1024 + 1);
    assert_eq!(many, Ok(431), "{} headers", MAX_HEADERS + 1);
    assert_eq!(app.get("/healthz").await.status, 200);
    assert_eq!(app.get("/").await.status, 200);
}

#[actix_web::test]
async fn a_push_over_64_kib_gets_413_is_not_stored_and_the_next_push_is() {
    // Arrange
    let app = spawn_app().await;
    let padding = "a".repeat(64 * 1024);
    let oversized = event_xml("oversized", 946_771_200, "SCAN", &padding);
    assert!(oversized.len() > 64 * 1024);

    // Act
    let refused = app.push(&oversized).await;
    let normal = app
        .push(&event_xml("normal", 946_771_200, "SCAN", "fault"))
        .await;

    // Assert
    assert_eq!(refused.status, 413, "{}", refused.text());
    assert_eq!(
        (normal.status.as_u16(), normal.text().as_str()),
        (200, "success")
    );
    let totals = app
        .get("/api/stats?from=2000-01-01&to=2000-12-31")
        .await
        .json()["totals"]
        .clone();
    assert_eq!(
        totals["scans"], 1,
        "only the normal push is stored: {totals}"
    );
}

#[actix_web::test]
async fn a_labels_form_over_16_kib_gets_413_saves_nothing_and_a_normal_form_is_saved() {
    // Arrange
    let app = spawn_app().await;
    let padding = "a".repeat(16 * 1024);

    // Act
    let refused = app
        .post_form(
            "/labels",
            &[
                ("scene", "big"),
                ("label", "Too big"),
                ("padding", &padding),
            ],
        )
        .await;
    let saved = app
        .post_form("/labels", &[("scene", "small"), ("label", "Small enough")])
        .await;

    // Assert
    assert_eq!(refused.status, 413, "{}", refused.text());
    assert_eq!(saved.status, 303, "{}", saved.text());
    let stats = app.get("/stats/small").await;
    assert!(stats.text().contains("Small enough"), "{}", stats.text());
    let big = app.get("/stats/big").await;
    assert!(!big.text().contains("Too big"), "{}", big.text());
}
