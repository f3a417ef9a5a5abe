//! Headers a client can set about itself change nothing unless a trusted proxy set them:
//! `X-Forwarded-For` (and its cousins) do not buy a client a fresh allowance of new codes.
//!
//! The other half, an identity header (`SCENE_QR_AUTH_HEADER`) from a peer outside
//! `SCENE_QR_TRUSTED_PROXIES` being refused, is `header_auth_trusts_the_proxy_only` in
//! `tests/api/hardening.rs`.

use std::time::Duration;

use scene_qr::emulator::Api;

use crate::helpers::spawn_app_with;

/// GET `url` with `headers`; the status.
async fn get_as(client: &awc::Client, url: &str, headers: &[(&str, &str)]) -> u16 {
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "tests stay on loopback: {url}"
    );
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    let mut response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    response.body().await.expect("body");
    response.status().as_u16()
}

#[actix_web::test]
async fn forwarding_headers_from_an_untrusted_peer_do_not_buy_a_new_allowance_of_new_codes() {
    // Arrange: two new codes a minute per client, no proxy trusted.
    let app = spawn_app_with(|s| s.new_codes_per_minute = 2).await;
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let url = |id: u32| format!("{}/api/qrcode?scene_id={id}", app.address);

    // Act: each request claims to come from somewhere else.
    let first = get_as(&client, &url(1), &[("X-Forwarded-For", "203.0.113.1")]).await;
    let second = get_as(&client, &url(2), &[("X-Forwarded-For", "203.0.113.2")]).await;
    let third = get_as(
        &client,
        &url(3),
        &[
            ("X-Forwarded-For", "203.0.113.3"),
            ("X-Real-IP", "203.0.113.3"),
            ("Forwarded", "for=203.0.113.3"),
        ],
    )
    .await;
    let fourth = get_as(
        &client,
        &url(4),
        &[("X-Forwarded-For", "198.51.100.4, 127.0.0.1")],
    )
    .await;

    // Assert: one allowance, the connecting address's.
    assert_eq!((first, second), (200, 200));
    assert_eq!(third, 429, "a forwarded address is not a new client");
    assert_eq!(fourth, 429);
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 2);
}
