//! The binary: configuration errors, `--help`, and sandbox mode out of the box.

use std::time::Duration;

use crate::helpers::ChildApp;

#[test]
fn only_one_credential_refuses_to_start_naming_the_missing_one() {
    let (code, output) = ChildApp::spawn(&[("WECHAT_APPID", "wx0123456789abcdef")])
        .wait_for_exit(Duration::from_secs(10));

    assert_eq!(code, Some(2));
    assert_eq!(output.lines().count(), 1, "{output}");
    assert!(output.contains("WECHAT_APPSECRET is not set"), "{output}");
}

#[test]
fn a_bad_value_refuses_to_start_naming_the_environment_variable() {
    let cases = [
        ("SCENE_QR_LISTEN", "localhost", "IP:PORT"),
        ("SCENE_QR_EXPIRE_SECONDS", "30", "60 to 2592000"),
        ("SCENE_QR_UPSTREAM_TIMEOUT_MS", "fast", "100 to 60000"),
        ("WECHAT_TOKEN_ENDPOINT", "sometimes", "stable, classic"),
        (
            "WECHAT_API_BASE",
            "api.weixin.qq.com",
            "http:// or https://",
        ),
    ];
    for (variable, value, allowed) in cases {
        let (code, output) =
            ChildApp::spawn(&[(variable, value)]).wait_for_exit(Duration::from_secs(10));

        assert_eq!(code, Some(2), "{variable}");
        assert_eq!(output.lines().count(), 1, "{variable}: {output}");
        assert!(output.contains(variable), "{variable}: {output}");
        assert!(output.contains(allowed), "{variable}: {output}");
    }
}

#[test]
fn a_bad_secret_is_refused_without_repeating_it() {
    let (code, output) = ChildApp::spawn(&[
        ("WECHAT_APPID", "wx0123456789abcdef"),
        ("WECHAT_APPSECRET", "has a space"),
    ])
    .wait_for_exit(Duration::from_secs(10));

    assert_eq!(code, Some(2));
    assert!(output.contains("WECHAT_APPSECRET"), "{output}");
    assert!(!output.contains("has a space"), "{output}");
}

#[test]
fn help_lists_every_setting_with_its_environment_variable() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_scene-qr"))
        .env_clear()
        .arg("--help")
        .output()
        .expect("run --help");
    let (code, help) = (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
    );

    assert_eq!(code, Some(0));
    for variable in [
        "SCENE_QR_LISTEN",
        "WECHAT_APPID",
        "WECHAT_APPSECRET",
        "WECHAT_API_BASE",
        "WECHAT_MP_BASE",
        "WECHAT_TOKEN_ENDPOINT",
        "SCENE_QR_EXPIRE_SECONDS",
        "SCENE_QR_UPSTREAM_TIMEOUT_MS",
        "RUST_LOG",
    ] {
        assert!(
            help.contains(&format!("[env: {variable}")),
            "{variable} in --help"
        );
    }
}

#[actix_web::test]
async fn with_no_credentials_it_serves_codes_in_sandbox_mode() {
    let mut child = ChildApp::spawn(&[("SCENE_QR_LISTEN", "127.0.0.1:0")]);
    let address = child.wait_for_address();
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();

    let mut page = client
        .get(format!("{address}/qrcode?scene_id=1"))
        .send()
        .await
        .unwrap();
    let html = String::from_utf8(page.body().await.unwrap().to_vec()).unwrap();
    let image_src = html
        .split(r#"<img src=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an <img>")
        .replace("&#38;", "&");
    let image = client
        .get(format!("{address}{image_src}"))
        .send()
        .await
        .unwrap();
    let unknown = client
        .get(format!("{address}/cgi-bin/showqrcode?ticket=forged"))
        .send()
        .await
        .unwrap();
    let log = child.stop();

    assert_eq!(page.status(), 200);
    assert!(html.contains("badge sandbox"));
    // Served from the service's own address, reachable wherever the service is.
    assert!(
        image_src.starts_with("/cgi-bin/showqrcode?ticket="),
        "{image_src}"
    );
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers().get("content-type").unwrap(), "image/png");
    assert_eq!(unknown.status(), 404);
    assert_eq!(log.matches("sandbox mode").count(), 1, "{log}");
}

#[test]
fn at_start_it_raises_the_open_file_limit_and_warns_about_plaintext_pushes() {
    let mut child = ChildApp::spawn(&[
        ("WECHAT_APPID", "wx0123456789abcdef"),
        ("WECHAT_APPSECRET", "a-secret-never-used"),
        // Nothing listens there: no call leaves the machine, and none is made at start.
        ("WECHAT_API_BASE", "http://127.0.0.1:9"),
        ("WECHAT_TOKEN", "plaintexttoken"),
    ]);

    child.wait_for_address();
    let output = child.stop();

    let limit_line = output
        .lines()
        .find(|line| line.contains("open-file limit"))
        .unwrap_or_else(|| panic!("no open-file limit line: {output}"));
    let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
    assert!(
        limit_line.contains(&format!("open-file limit {hard}:")),
        "raised to the hard limit {hard}: {limit_line}"
    );
    assert!(
        limit_line.contains("connections on each of"),
        "{limit_line}"
    );
    assert!(
        output.contains("WECHAT_ENCODING_AES_KEY is not set"),
        "{output}"
    );
}

#[test]
fn a_database_that_cannot_be_opened_refuses_to_start_naming_it() {
    let missing = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}",
        missing.path().join("no-such-dir/scene-qr.db").display()
    );
    let (code, output) =
        ChildApp::spawn(&[("DATABASE_URL", url.as_str())]).wait_for_exit(Duration::from_secs(10));

    assert_eq!(code, Some(2));
    // One line says it all (the log lines of the sandbox's start come before it).
    let refusal: Vec<&str> = output
        .lines()
        .filter(|line| line.starts_with("scene-qr:"))
        .collect();
    assert_eq!(refusal.len(), 1, "{output}");
    assert!(
        refusal[0].contains(&format!("DATABASE_URL={url}")),
        "{output}"
    );
    assert!(
        refusal[0].contains("unable to open database file"),
        "{output}"
    );
}

#[test]
fn an_unreachable_postgres_refuses_to_start_naming_it_without_its_password() {
    // Port 1 on loopback: nothing listens there.
    let url = "postgres://scene:hunter2@127.0.0.1:1/scene";
    let (code, output) =
        ChildApp::spawn(&[("DATABASE_URL", url)]).wait_for_exit(Duration::from_secs(10));

    assert_eq!(code, Some(2));
    let refusal: Vec<&str> = output
        .lines()
        .filter(|line| line.starts_with("scene-qr:"))
        .collect();
    assert_eq!(refusal.len(), 1, "{output}");
    assert!(
        refusal[0].contains("DATABASE_URL=postgres://scene:***@127.0.0.1:1/scene"),
        "{output}"
    );
    assert!(refusal[0].contains("Connection refused"), "{output}");
    assert!(!output.contains("hunter2"), "{output}");
}
