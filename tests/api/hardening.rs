//! Access control, permanent-code policy, the allowance of new codes, security headers
//! and metrics.

use std::io::Write;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use scene_qr::auth::Networks;
use scene_qr::emulator::Api;
use scene_qr::settings::{AuthMode, Permission};

use crate::helpers::{ChildApp, spawn_app, spawn_app_with};

fn users_file(lines: &[String]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
    file
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
}

async fn get_with_header(
    url: &str,
    header: Option<(&str, String)>,
) -> (u16, actix_web::http::header::HeaderMap) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let mut request = client.get(url);
    if let Some((name, value)) = header {
        request = request.insert_header((name, value));
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.headers().clone())
}

#[actix_web::test]
async fn basic_auth_lets_in_listed_users_and_asks_everyone_else() {
    let argon = scene_qr::auth::hash_password("s3cret pass").unwrap();
    let bcrypt = bcrypt::hash("other", 4).unwrap();
    let file = users_file(&[
        format!("alice:{argon}"),
        "# a comment".into(),
        format!("bob:{bcrypt}"),
    ]);
    let path = file.path().to_path_buf();
    let app = spawn_app_with(|s| {
        s.auth = AuthMode::Basic;
        s.users_file = Some(path);
    })
    .await;
    let url = |path: &str| format!("{}{path}", app.address);

    let (anonymous, headers) = get_with_header(&url("/"), None).await;
    let (wrong, _) =
        get_with_header(&url("/"), Some(("Authorization", basic("alice", "nope")))).await;
    let (unknown, _) = get_with_header(
        &url("/"),
        Some(("Authorization", basic("eve", "s3cret pass"))),
    )
    .await;
    let (alice, _) = get_with_header(
        &url("/api/qrcode?scene_id=1"),
        Some(("Authorization", basic("alice", "s3cret pass"))),
    )
    .await;
    let (alice_again, _) = get_with_header(
        &url("/stats"),
        Some(("Authorization", basic("alice", "s3cret pass"))),
    )
    .await;
    let (bob, _) = get_with_header(&url("/"), Some(("Authorization", basic("bob", "other")))).await;
    let (metrics, _) = get_with_header(&url("/metrics"), None).await;

    assert_eq!(anonymous, 401);
    assert!(
        headers
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("Basic realm=")
    );
    assert_eq!((wrong, unknown), (401, 401));
    assert_eq!((alice, alice_again, bob), (200, 200, 200));
    assert_eq!(metrics, 401, "metrics are for staff too");
    for open in [
        "/healthz",
        "/static/style.css",
        "/wechat/callback?signature=x&timestamp=1&nonce=n&echostr=e",
    ] {
        let (status, _) = get_with_header(&url(open), None).await;
        assert_ne!(status, 401, "{open} needs no sign-in");
    }
}

#[actix_web::test]
async fn header_auth_trusts_the_proxy_only() {
    let trusted = spawn_app_with(|s| {
        s.auth = AuthMode::Header;
        s.auth_header = Some("x-forwarded-user".into());
        s.trusted_proxies = Some(Networks(vec!["127.0.0.1/32".parse().unwrap()]));
    })
    .await;
    let untrusted = spawn_app_with(|s| {
        s.auth = AuthMode::Header;
        s.auth_header = Some("x-forwarded-user".into());
        s.trusted_proxies = Some(Networks(vec!["10.0.0.0/8".parse().unwrap()]));
    })
    .await;

    let (named, _) = get_with_header(
        &format!("{}/", trusted.address),
        Some(("X-Forwarded-User", "alice".into())),
    )
    .await;
    let (unnamed, _) = get_with_header(&format!("{}/", trusted.address), None).await;
    let (spoofed, _) = get_with_header(
        &format!("{}/", untrusted.address),
        Some(("X-Forwarded-User", "alice".into())),
    )
    .await;
    let (health, _) = get_with_header(&format!("{}/healthz", untrusted.address), None).await;

    assert_eq!(named, 200);
    assert_eq!(unnamed, 401);
    assert_eq!(spoofed, 403);
    assert_eq!(health, 200);
}

#[test]
fn hash_password_prints_a_users_file_line_that_signs_in() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scene-qr"))
        .env_clear()
        .args(["hash-password", "carol"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"p4ssword\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();

    assert!(output.status.success());
    let line = String::from_utf8(output.stdout).unwrap();
    let (name, hash) = line.trim().split_once(':').unwrap();
    assert_eq!(name, "carol");
    assert!(!line.contains("p4ssword"));
    let file = users_file(&[line.trim().to_string()]);
    let users = scene_qr::auth::load_users(file.path()).unwrap();
    assert_eq!(users.get("carol").map(String::as_str), Some(hash));
}

#[test]
fn basic_auth_without_a_usable_users_file_refuses_to_start() {
    let bad = users_file(&["alice:plaintext".into()]);
    let (code, output) = ChildApp::spawn(&[
        ("SCENE_QR_LISTEN", "127.0.0.1:0"),
        ("SCENE_QR_AUTH", "basic"),
        ("SCENE_QR_USERS_FILE", bad.path().to_str().unwrap()),
    ])
    .wait_for_exit(Duration::from_secs(10));
    let (missing_code, missing) = ChildApp::spawn(&[
        ("SCENE_QR_LISTEN", "127.0.0.1:0"),
        ("SCENE_QR_AUTH", "basic"),
    ])
    .wait_for_exit(Duration::from_secs(10));

    assert_eq!(code, Some(2));
    assert!(
        output.contains("line 1") && output.contains("not an argon2 or bcrypt hash"),
        "{output}"
    );
    assert_eq!(missing_code, Some(2));
    assert!(missing.contains("SCENE_QR_USERS_FILE"), "{missing}");
}

#[test]
fn listening_beyond_loopback_without_access_control_is_warned_about() {
    let mut child = ChildApp::spawn(&[("SCENE_QR_LISTEN", "0.0.0.0:0")]);

    let warning = child.wait_for_line("SCENE_QR_AUTH=none", Duration::from_secs(20));

    assert!(
        warning.is_some_and(|line| line.contains("WARN")),
        "{:?}",
        child.seen
    );
}

#[actix_web::test]
async fn permanent_codes_are_denied_by_default_in_live_mode_without_access_control() {
    let app = spawn_app_with(|s| s.permanent = None).await;

    let page = app.get("/qrcode?scene_id=1&permanent=true").await;
    let json = app.get("/api/qrcode?scene_str=a&permanent=true").await;
    let temporary = app.get("/api/qrcode?scene_id=1").await;

    assert_eq!(page.status, 403);
    assert!(
        page.text().contains("SCENE_QR_PERMANENT=allow"),
        "{}",
        page.text()
    );
    assert_eq!(json.status, 403);
    assert_eq!(temporary.status, 200);
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 1);
}

#[actix_web::test]
async fn permanent_codes_follow_the_setting_and_the_mode() {
    let denied = spawn_app_with(|s| s.permanent = Some(Permission::Deny)).await;
    let with_auth = spawn_app_with(|s| {
        s.permanent = None;
        s.auth = AuthMode::Header;
        s.auth_header = Some("x-user".into());
        s.trusted_proxies = Some(Networks(vec!["127.0.0.1/32".parse().unwrap()]));
    })
    .await;
    let sandbox = spawn_app_with(|s| {
        s.permanent = None;
        s.appid = None;
        s.appsecret = None;
    })
    .await;

    let (authed, _) = get_with_header(
        &format!("{}/api/qrcode?scene_id=1&permanent=true", with_auth.address),
        Some(("X-User", "alice".into())),
    )
    .await;

    assert_eq!(
        denied
            .get("/api/qrcode?scene_id=1&permanent=true")
            .await
            .status,
        403
    );
    assert_eq!(authed, 200);
    assert_eq!(
        sandbox
            .get("/api/qrcode?scene_id=1&permanent=true")
            .await
            .status,
        200
    );
}

#[actix_web::test]
async fn new_codes_beyond_the_allowance_get_429_with_retry_after_and_cached_ones_do_not_count() {
    let app = spawn_app_with(|s| s.new_codes_per_minute = 3).await;
    for id in 1..=3 {
        assert_eq!(
            app.get(&format!("/api/qrcode?scene_id={id}")).await.status,
            200
        );
    }

    let over = app.get("/api/qrcode?scene_id=4").await;
    let over_page = app.get("/qrcode?scene_id=5").await;
    let cached = app.get("/qrcode?scene_id=2").await;

    assert_eq!(over.status, 429);
    let retry_after: u64 = over
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert!(
        over.json()["error"]
            .as_str()
            .unwrap()
            .contains("too many new codes")
    );
    assert_eq!(over_page.status, 429);
    assert!(over_page.headers.contains_key("retry-after"));
    assert_eq!(cached.status, 200);
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 3);
}

#[actix_web::test]
async fn every_answer_carries_the_security_headers() {
    let app =
        spawn_app_with(|s| s.frame_ancestors = "'self' https://tools.example.com".into()).await;

    for path in [
        "/",
        "/qrcode?scene_id=1",
        "/qrcode?scene_id=0",
        "/stats",
        "/nowhere",
        "/static/style.css",
    ] {
        let response = app.get(path).await;
        let csp = response
            .headers
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(!csp.contains("script-src"), "no script is allowed at all");
        assert!(
            csp.contains(&format!("img-src 'self' data: {}", app.emulator_url)),
            "{csp}"
        );
        // The app frames itself at most: SCENE_QR_FRAME_ANCESTORS is for the embed view.
        assert!(csp.ends_with("frame-ancestors 'self'"), "{path}: {csp}");
        assert_eq!(
            response.headers.get("x-content-type-options").unwrap(),
            "nosniff"
        );
        assert!(response.headers.contains_key("referrer-policy"), "{path}");
    }
}

/// The value of the sample `name{labels}` in Prometheus text, 0 when absent.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} "))
        })
        .filter(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[actix_web::test]
async fn metrics_are_prometheus_text_and_their_counters_move() {
    let app = spawn_app().await;
    app.get("/api/qrcode?scene_id=1").await;
    let before = app.get("/metrics").await.text();

    app.get("/api/qrcode?scene_id=1").await;
    app.get("/api/qrcode?scene_id=987654").await;
    app.push(&scene_qr::wechat::push::to_xml(&[
        ("FromUserName", "ometrics"),
        ("CreateTime", "946771200"),
        ("MsgType", "event"),
        ("Event", "SCAN"),
        ("EventKey", "1"),
    ]))
    .await;
    let response = app.get("/metrics").await;
    let after = response.text();

    assert!(response.content_type().starts_with("text/plain"));
    for line in after
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "not a sample: {line}");
        assert!(line.starts_with("scene_qr_"), "{line}");
    }
    let moved = |name: &str, labels: &[(&str, &str)], by: f64| {
        let delta = sample(&after, name, labels) - sample(&before, name, labels);
        assert!(
            delta >= by,
            "{name}{labels:?} moved by {delta}, expected at least {by}"
        );
    };
    moved(
        "scene_qr_http_requests_total",
        &[("route", "/api/qrcode"), ("status", "200")],
        2.0,
    );
    moved(
        "scene_qr_http_request_duration_seconds_count",
        &[("route", "/api/qrcode")],
        2.0,
    );
    moved("scene_qr_ticket_cache_total", &[("result", "hit")], 1.0);
    moved("scene_qr_ticket_cache_total", &[("result", "miss")], 1.0);
    moved("scene_qr_token_cache_total", &[("result", "hit")], 1.0);
    moved(
        "scene_qr_upstream_calls_total",
        &[("endpoint", "/cgi-bin/qrcode/create"), ("errcode", "0")],
        1.0,
    );
    moved(
        "scene_qr_upstream_call_duration_seconds_count",
        &[("endpoint", "/cgi-bin/qrcode/create")],
        1.0,
    );
    moved("scene_qr_callback_events_total", &[("event", "SCAN")], 1.0);
    moved("scene_qr_stored_events_total", &[("outcome", "new")], 1.0);
    assert!(
        after.contains("# TYPE scene_qr_token_refreshes_total counter")
            || !after.contains("scene_qr_token_refreshes_total{")
    );
    assert!(
        sample(&after, "scene_qr_cached_tickets", &[]) >= 2.0,
        "the gauge counts cached codes"
    );
    assert!(!after.contains(&app.secret));
}

#[actix_web::test]
async fn requests_are_counted_by_route_pattern_never_by_raw_path() {
    let app = spawn_app().await;
    let before = app.get("/metrics").await.text();

    for path in [
        "/stats/1",
        "/stats/2",
        "/stats/1",
        "/healthz",
        "/healthz",
        "/nowhere/1",
    ] {
        app.get(path).await;
    }
    let after = app.get("/metrics").await.text();

    let moved = |labels: &[(&str, &str)]| {
        sample(&after, "scene_qr_http_requests_total", labels)
            - sample(&before, "scene_qr_http_requests_total", labels)
    };
    // At least: the recorder is shared with the tests running beside this one.
    assert!(moved(&[("route", "/stats/{scene}")]) >= 3.0);
    assert!(moved(&[("route", "/healthz"), ("status", "200")]) >= 2.0);
    assert!(moved(&[("route", "unmatched"), ("status", "404")]) >= 1.0);
    assert!(!after.contains("route=\"/stats/1\""), "{after}");
    assert!(!after.contains("/nowhere"), "{after}");
}

#[actix_web::test]
async fn other_methods_get_405_with_the_allowed_one_and_no_upstream_call() {
    let app = spawn_app().await;

    let response = app.post("/qrcode?scene_id=1", Vec::new()).await;

    assert_eq!(response.status, 405);
    assert_eq!(response.headers.get("allow").unwrap(), "GET");
    assert!(response.text().contains("GET only"), "{}", response.text());
    assert!(response.headers.contains_key("content-security-policy"));
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 0);
    assert_eq!(
        app.post("/api/qrcode?scene_id=1", Vec::new()).await.status,
        405
    );
    assert_eq!(app.get("/qrcode?scene_id=1").await.status, 200);
}

/// Sends `request` as raw bytes and reads the answer until the server closes (at most 5 s).
async fn raw_request(address: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = address.trim_start_matches("http://");
    let exchange = async {
        let mut stream = actix_web::rt::net::TcpStream::connect(host).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer).into_owned())
    };
    actix_web::rt::time::timeout(Duration::from_secs(5), exchange)
        .await
        .expect("the server answered within 5 s")
        .expect("raw request")
}

#[actix_web::test]
async fn made_up_methods_are_counted_as_other_and_add_no_series() {
    let app = spawn_app().await;
    // The label values of `method` in the request counts: the metrics are process-wide,
    // so other tests add series meanwhile, but none with a method outside this set.
    let methods = |text: &str| -> std::collections::BTreeSet<String> {
        text.lines()
            .filter(|line| line.starts_with("scene_qr_http_requests_total{"))
            .filter_map(|line| {
                let start = line.find("method=\"")? + "method=\"".len();
                let end = start + line[start..].find('"')?;
                Some(line[start..end].to_string())
            })
            .collect()
    };
    let before = app.get("/metrics").await.text();

    for i in 0..300 {
        let answer = raw_request(
            &app.address,
            &format!("MADEUP{i} /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    }
    let after = app.get("/metrics").await.text();

    let allowed = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "other",
    ];
    let unexpected: Vec<_> = methods(&after)
        .into_iter()
        .filter(|method| !allowed.contains(&method.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "methods became labels: {unexpected:?}"
    );
    assert_eq!(
        sample(
            &after,
            "scene_qr_http_requests_total",
            &[("route", "/healthz"), ("method", "other")]
        ) - sample(
            &before,
            "scene_qr_http_requests_total",
            &[("route", "/healthz"), ("method", "other")]
        ),
        300.0
    );
}

#[actix_web::test]
async fn the_servers_allowance_of_new_codes_bounds_all_clients_together() {
    // No allowance per client: only the service's own limit stands.
    let app = spawn_app_with(|s| {
        s.new_codes_per_minute = 0;
        s.new_codes_per_minute_total = 3;
    })
    .await;
    for id in 1..=3 {
        assert_eq!(
            app.get(&format!("/api/qrcode?scene_id={id}")).await.status,
            200
        );
    }

    let over = app.get("/api/qrcode?scene_id=4").await;
    let cached = app.get("/api/qrcode?scene_id=1").await;

    assert_eq!(over.status, 429, "{}", over.text());
    assert!(over.headers.contains_key("retry-after"));
    assert!(
        over.json()["error"]
            .as_str()
            .unwrap()
            .contains("on this server")
    );
    assert_eq!(cached.status, 200);
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 3);
}

#[actix_web::test]
async fn the_label_form_sends_staff_back_only_to_the_services_own_pages() {
    let app = spawn_app().await;

    let own = app
        .post_form(
            "/labels",
            &[
                ("scene", "7"),
                ("label", "Door"),
                ("back", "/qrcode?scene_id=7"),
            ],
        )
        .await;
    let elsewhere = app
        .post_form(
            "/labels",
            &[
                ("scene", "7"),
                ("label", "Door"),
                ("back", "/\t/evil.example"),
            ],
        )
        .await;

    let location = |r: &crate::helpers::Response| {
        r.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(own.status, 303);
    assert_eq!(location(&own), "/qrcode?scene_id=7#name-saved");
    assert_eq!(elsewhere.status, 303);
    assert_eq!(location(&elsewhere), "/stats/7#name-saved");
}
