//! The code routes against a well-behaved WeChat: what is sent, what is shown.

use std::time::Duration;

use scene_qr::domain::Colour;
use scene_qr::emulator::Api;
use serde_json::json;

use crate::helpers::{ChildApp, spawn_app, spawn_app_with};

#[actix_web::test]
async fn a_scene_id_page_embeds_the_showqrcode_image_with_the_ticket_url_encoded() {
    let app = spawn_app().await;

    let page = app.get("/qrcode?scene_id=123").await;
    let api = app.get("/api/qrcode?scene_id=123").await.json();

    assert_eq!(page.status, 200);
    assert_eq!(page.content_type(), "text/html; charset=utf-8");
    let ticket = api["ticket"].as_str().expect("ticket");
    assert!(ticket.contains('+') && ticket.contains('/') && ticket.contains('='));
    let encoded: String = form_urlencoded::byte_serialize(ticket.as_bytes()).collect();
    let image_url = format!("{}/cgi-bin/showqrcode?ticket={encoded}", app.emulator_url);
    assert!(
        page.text().contains(&format!(r#"<img src="{image_url}""#)),
        "{}",
        page.text()
    );
    // The emulator decodes the ticket: a mangled `+` or `/` would not find the image.
    let image = app.get_url(&image_url).await;
    assert_eq!(image.status, 200);
    assert_eq!(image.content_type(), "image/png");
}

#[actix_web::test]
async fn each_kind_of_code_sends_its_action_name_and_exact_body() {
    let app = spawn_app().await;
    let cases = [
        (
            "scene_id=123",
            json!({"expire_seconds": 604800, "action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 123}}}),
        ),
        (
            "scene_str=shop-12&expire_seconds=3600",
            json!({"expire_seconds": 3600, "action_name": "QR_STR_SCENE", "action_info": {"scene": {"scene_str": "shop-12"}}}),
        ),
        (
            "scene_id=100000&permanent=true",
            json!({"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 100000}}}),
        ),
        (
            "scene_str=%E6%B5%B7%E6%8A%A5%20A&permanent=1",
            json!({"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "海报 A"}}}),
        ),
    ];

    for (query, expected_body) in &cases {
        let response = app.get(&format!("/api/qrcode?{query}")).await;
        assert_eq!(response.status, 200, "{query}: {}", response.text());
        assert_eq!(response.json()["action_name"], expected_body["action_name"]);
    }

    let sent: Vec<_> = app
        .emulator
        .requests(Api::QrcodeCreate)
        .into_iter()
        .map(|r| r.body.expect("a JSON body"))
        .collect();
    let expected: Vec<_> = cases.iter().map(|(_, body)| body.clone()).collect();
    assert_eq!(sent, expected);
}

#[actix_web::test]
async fn the_json_api_describes_a_temporary_code_completely() {
    let app = spawn_app().await;

    let response = app
        .get("/api/qrcode?scene_str=shop-12&expire_seconds=86400")
        .await;

    assert_eq!(response.status, 200);
    assert!(response.content_type().starts_with("application/json"));
    let body = response.json();
    assert_eq!(body["scene"], "shop-12");
    assert_eq!(body["kind"], "temporary");
    assert_eq!(body["action_name"], "QR_STR_SCENE");
    assert_eq!(body["expire_seconds"], 86400);
    let url = body["url"].as_str().expect("url");
    assert!(
        url.starts_with("http://weixin.qq.com/q/"),
        "escaped slashes decoded: {url}"
    );
    let expires_at = time::OffsetDateTime::parse(
        body["expires_at"].as_str().expect("expires_at"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    let in_a_day = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    assert!((expires_at - in_a_day).abs() < time::Duration::seconds(30));
    let ticket = body["ticket"].as_str().expect("ticket");
    let encoded: String = form_urlencoded::byte_serialize(ticket.as_bytes()).collect();
    assert_eq!(
        body["image_url"],
        format!("{}/cgi-bin/showqrcode?ticket={encoded}", app.emulator_url)
    );
}

#[actix_web::test]
async fn a_permanent_code_has_no_expiry() {
    let app = spawn_app().await;

    let body = app
        .get("/api/qrcode?scene_id=42&permanent=true")
        .await
        .json();
    let page = app.get("/qrcode?scene_id=42&permanent=true").await.text();

    assert_eq!(body["kind"], "permanent");
    assert_eq!(body["scene"], 42);
    assert_eq!(body["expire_seconds"], serde_json::Value::Null);
    assert_eq!(body["expires_at"], serde_json::Value::Null);
    assert!(page.contains("Permanent, never expires"));
    assert!(!page.contains("Expires</dt>"));
}

#[actix_web::test]
async fn the_page_shows_scene_kind_expiry_url_and_download_links() {
    let app = spawn_app().await;

    let page = app
        .get("/qrcode?scene_id=7&expire_seconds=7200")
        .await
        .text();
    let body = app
        .get("/api/qrcode?scene_id=7&expire_seconds=7200")
        .await
        .json();

    assert!(page.contains(r#"<span class="scene">7</span>"#));
    assert!(page.contains("Temporary, valid 2 hours"));
    assert!(page.contains(&format!(
        r#"<time datetime="{}""#,
        body["expires_at"].as_str().unwrap()
    )));
    assert!(page.contains(body["url"].as_str().unwrap()));
    assert!(page.contains(
        r#"href="/qrcode.png?scene_id=7&#38;expire_seconds=7200" download="scene-7.png""#
    ));
    assert!(page.contains(r#"href="/qrcode.svg?scene_id=7&#38;expire_seconds=7200""#));
}

#[actix_web::test]
async fn the_png_download_scans_to_the_codes_url() {
    let app = spawn_app().await;
    let url = app.get("/api/qrcode?scene_id=5").await.json()["url"].clone();

    let png = app.get("/qrcode.png?scene_id=5").await;

    assert_eq!(png.status, 200);
    assert_eq!(png.content_type(), "image/png");
    let image = image::load_from_memory(&png.body)
        .expect("a PNG")
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, content) = grids[0].decode().expect("a readable code");
    assert_eq!(content, url.as_str().unwrap());
    // One create call served the JSON and the image.
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 1);
}

#[actix_web::test]
async fn the_svg_download_is_an_svg_image_named_after_the_scene() {
    let app = spawn_app().await;

    let svg = app
        .get("/qrcode.svg?scene_str=shop%2F12&permanent=true")
        .await;

    assert_eq!(svg.status, 200);
    assert_eq!(svg.content_type(), "image/svg+xml");
    assert!(svg.text().contains("<svg"));
    let disposition = svg
        .headers
        .get("content-disposition")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(
        disposition,
        r#"inline; filename="scene-shop_12-permanent.svg""#
    );
}

#[actix_web::test]
async fn a_reply_with_a_text_plain_content_type_is_still_understood() {
    let app = spawn_app().await;
    app.emulator.set_content_type("text/plain");

    let response = app.get("/api/qrcode?scene_id=9").await;

    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.json()["ticket"].as_str().is_some());
}

#[actix_web::test]
async fn a_temporary_codes_page_prints_its_expiry_in_large_type_and_a_permanent_ones_does_not() {
    let app = spawn_app().await;

    let temporary = app.get("/qrcode?scene_id=5&expire_seconds=86400").await;
    let permanent = app.get("/qrcode?scene_id=6&permanent=true").await;
    let stylesheet = app.get("/static/style.css").await.text();

    let printed = temporary.text();
    assert!(
        printed.contains("<p class=\"print-expiry\">Temporary code: stops working on 20"),
        "{printed}"
    );
    assert!(!permanent.text().contains("print-expiry"));
    // Shown on paper only: hidden on screen, large in print.
    assert!(stylesheet.contains(".print-expiry { display: none; }"));
    assert!(stylesheet.contains(".print-expiry { display: block; font-size: 20pt;"));
}

#[actix_web::test]
async fn a_code_with_less_than_a_week_left_warns_against_printing_it_and_a_longer_one_does_not() {
    let app = spawn_app().await;

    let three_days = app
        .get("/qrcode?scene_id=8&expire_seconds=259200")
        .await
        .text();
    let ten_days = app
        .get("/qrcode?scene_id=8&expire_seconds=864000")
        .await
        .text();

    assert!(
        three_days.contains(r#"<div class="notice warning" role="alert">"#),
        "{three_days}"
    );
    assert!(three_days.contains("This code stops working within 3 days (on 20"));
    assert!(three_days.contains(
        r#"Do not print it: <a href="/qrcode?scene_id=8&#38;permanent=true">make a permanent code for print</a>."#
    ));
    assert!(!ten_days.contains("notice warning"), "{ten_days}");
    assert!(!ten_days.contains("Do not print it"));
}

#[actix_web::test]
async fn a_scene_too_large_for_a_permanent_code_is_warned_without_a_link() {
    let app = spawn_app().await;

    let page = app
        .get("/qrcode?scene_id=100001&expire_seconds=3600")
        .await
        .text();

    assert!(
        page.contains("This code stops working within 1 day"),
        "{page}"
    );
    assert!(page.contains("permanent codes take scene numbers from 1 to 100000"));
    assert!(!page.contains("permanent=true"));
}

/// What rqrr reads in a PNG, if it finds exactly one code.
fn scanned(png: &[u8]) -> Option<String> {
    let image = image::load_from_memory(png).expect("a PNG").to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    let [grid] = grids.as_slice() else {
        return None;
    };
    grid.decode().ok().map(|(_, content)| content)
}

#[actix_web::test]
async fn a_png_of_300_pixels_is_300_pixels_square_with_a_quiet_zone_and_scans_to_the_url() {
    let app = spawn_app().await;
    let url = app.get("/api/qrcode?scene_id=11").await.json()["url"].clone();

    let png = app.get("/qrcode.png?scene_id=11&size=300").await;

    assert_eq!(png.status, 200, "{}", png.text());
    assert_eq!(png.content_type(), "image/png");
    let image = image::load_from_memory(&png.body).unwrap().to_luma8();
    assert_eq!(image.dimensions(), (300, 300));
    assert_eq!(scanned(&png.body).as_deref(), url.as_str());
    // A WeChat url is a version 3 or 4 code (29 or 33 modules): 41 modules with the quiet
    // zone, so modules of 7 pixels at most, and 4 modules are at least 28 pixels of white.
    for i in 0..300 {
        for edge in 0..28 {
            for (x, y) in [(i, edge), (edge, i), (i, 299 - edge), (299 - edge, i)] {
                assert_eq!(image.get_pixel(x, y).0, [255], "at ({x}, {y})");
            }
        }
    }
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 1);
}

#[actix_web::test]
async fn a_print_size_of_8_cm_is_945_pixels_at_300_dpi() {
    let app = spawn_app().await;

    let png = app.get("/qrcode.png?scene_str=door&size=8cm").await;

    assert_eq!(png.status, 200, "{}", png.text());
    let image = image::load_from_memory(&png.body).unwrap();
    assert_eq!((image.width(), image.height()), (945, 945));
    assert!(scanned(&png.body).is_some());
}

#[actix_web::test]
async fn a_bad_size_is_refused_naming_the_allowed_forms_before_wechat_is_asked() {
    let app = spawn_app().await;

    for size in ["0", "99999", "abc", "8in"] {
        let response = app
            .get_owned(format!("/qrcode.png?scene_id=12&size={size}"))
            .await;

        assert_eq!(response.status, 400, "{size}");
        let page = response.text();
        assert!(
            page.contains("whole pixels from 128 to 4096") && page.contains("cm or mm"),
            "{size}: {page}"
        );
    }
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 0);
}

#[actix_web::test]
async fn the_png_without_a_size_is_the_kept_download() {
    let app = spawn_app().await;

    let first = app.get("/qrcode.png?scene_id=13").await;
    let sized = app.get("/qrcode.png?scene_id=13&size=500").await;
    let again = app.get("/qrcode.png?scene_id=13").await;

    assert_eq!(first.body, again.body);
    assert_ne!(first.body, sized.body);
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 1);
}

#[actix_web::test]
async fn a_captioned_svg_writes_the_label_and_the_scene_under_the_code() {
    let app = spawn_app().await;
    let saved = app
        .put(
            "/api/scenes/shop-12",
            r#"{"label": "海报 <东门> & 2"}"#,
            &[],
        )
        .await;
    assert_eq!(saved.status, 200, "{}", saved.text());

    let svg = app
        .get("/qrcode.svg?scene_str=shop-12&permanent=true&caption=1")
        .await;
    let plain = app
        .get("/qrcode.svg?scene_str=shop-12&permanent=true")
        .await;

    assert_eq!(svg.status, 200, "{}", svg.text());
    assert_eq!(svg.content_type(), "image/svg+xml");
    let text = svg.text();
    assert!(text.contains(">海报 &lt;东门&gt; &amp; 2</text>"), "{text}");
    assert!(text.contains(">Scene shop-12</text>"));
    assert!(!plain.text().contains("<text"));
}

#[actix_web::test]
async fn an_option_of_the_other_format_is_refused() {
    let app = spawn_app().await;

    let captioned_png = app.get("/qrcode.png?scene_id=14&caption=1").await;
    let sized_svg = app.get("/qrcode.svg?scene_id=14&size=300").await;

    assert_eq!(captioned_png.status, 400);
    assert!(
        captioned_png
            .text()
            .contains("caption applies to /qrcode.svg only")
    );
    assert_eq!(sized_svg.status, 400);
    assert!(
        sized_svg
            .text()
            .contains("size applies to /qrcode.png only")
    );
}

/// A red disc on a transparent square, as logos are, saved as a PNG in `dir`.
fn write_logo(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("logo.png");
    image::RgbaImage::from_fn(64, 64, |x, y| {
        let (dx, dy) = (i64::from(x) - 32, i64::from(y) - 32);
        if dx * dx + dy * dy <= 32 * 32 {
            image::Rgba([220, 30, 40, 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    })
    .save(&path)
    .expect("write the logo");
    path
}

#[actix_web::test]
async fn a_server_with_a_logo_and_a_colour_serves_branded_codes_that_scan_to_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let logo = write_logo(dir.path());
    let navy = Colour::parse("#1a3c8a").unwrap();
    let app = spawn_app_with(|settings| {
        settings.logo = Some(logo);
        settings.dark_colour = Some(navy);
    })
    .await;
    let url = app.get("/api/qrcode?scene_id=21").await.json()["url"].clone();

    let download = app.get("/qrcode.png?scene_id=21").await;
    let sized = app.get("/qrcode.png?scene_id=21&size=600").await;
    let svg = app.get("/qrcode.svg?scene_id=21").await.text();

    for png in [&download, &sized] {
        assert_eq!(png.status, 200, "{}", png.text());
        let image = image::load_from_memory(&png.body).unwrap().to_rgb8();
        let [red, green, _] = image.get_pixel(image.width() / 2, image.height() / 2).0;
        assert!(
            red > 180 && green < 80,
            "the logo in the middle: {red}, {green}"
        );
        assert!(
            image.pixels().any(|p| p.0 == [0x1a, 0x3c, 0x8a]),
            "navy modules"
        );
        assert_eq!(scanned(&png.body).as_deref(), url.as_str());
    }
    assert_eq!(image::load_from_memory(&sized.body).unwrap().width(), 600);
    assert!(svg.contains(r##"<path fill="#1a3c8a""##), "{svg}");
}

#[test]
fn a_logo_that_cannot_be_read_refuses_start_up_naming_the_setting_and_the_path() {
    let child = ChildApp::spawn(&[("SCENE_QR_LOGO", "/nonexistent/logo.png")]);

    let (code, output) = child.wait_for_exit(Duration::from_secs(20));

    assert_eq!(code, Some(2), "{output}");
    assert!(
        output.contains("SCENE_QR_LOGO=/nonexistent/logo.png: cannot be read"),
        "{output}"
    );
}

#[actix_web::test]
async fn downloads_of_chinese_scenes_keep_their_names_in_filename_star() {
    let app = spawn_app().await;
    let scene: String = form_urlencoded::byte_serialize("上海店-海报".as_bytes()).collect();
    let other: String = form_urlencoded::byte_serialize("北京店-海报".as_bytes()).collect();

    let png = app
        .get_owned(format!("/qrcode.png?scene_str={scene}"))
        .await;
    let other_png = app
        .get_owned(format!("/qrcode.png?scene_str={other}"))
        .await;

    let disposition = |answer: &crate::helpers::Response| {
        answer
            .headers
            .get("content-disposition")
            .and_then(|d| d.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(png.status, 200);
    assert_eq!(
        disposition(&png),
        "inline; filename=\"scene-___-__.png\"; \
         filename*=UTF-8''scene-%E4%B8%8A%E6%B5%B7%E5%BA%97-%E6%B5%B7%E6%8A%A5.png"
    );
    // Two scenes, two names: before, both were scene-___-__.png.
    assert_ne!(disposition(&png), disposition(&other_png));
}

#[actix_web::test]
async fn a_codes_page_shows_its_expiry_in_the_time_zone_of_the_statistics() {
    let app = spawn_app_with(|s| s.utc_offset = time::macros::offset!(+8)).await;

    let code = app
        .get("/api/qrcode?scene_id=31&expire_seconds=86400")
        .await
        .json();
    let page = app
        .get("/qrcode?scene_id=31&expire_seconds=86400")
        .await
        .text();

    let expires = time::OffsetDateTime::parse(
        code["expires_at"].as_str().unwrap_or_default(),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339 in the JSON, in UTC");
    let local = expires.to_offset(time::macros::offset!(+8));
    let shown = format!(
        "{}-{:02}-{:02} {:02}:{:02} UTC+08:00",
        local.year(),
        u8::from(local.month()),
        local.day(),
        local.hour(),
        local.minute()
    );
    assert!(page.contains(&shown), "{shown} not on the page");
    assert!(!page.contains(":00 UTC<"), "a time in UTC is left");
}

#[actix_web::test]
async fn the_embed_view_is_the_code_alone_and_frameable_by_the_tools_named() {
    let app = spawn_app_with(|s| {
        s.frame_ancestors = "'self' https://tools.example.com".into();
    })
    .await;
    let saved = app
        .post_form("/labels", &[("scene", "shop-9"), ("label", "上海店")])
        .await;
    assert_eq!(saved.status, 303);

    let embed = app
        .get("/embed/qrcode?scene_str=shop-9&expire_seconds=86400")
        .await;
    let page = app
        .get("/qrcode?scene_str=shop-9&expire_seconds=86400")
        .await;
    let bad = app.get("/embed/qrcode?scene_id=0").await;

    assert_eq!(embed.status, 200);
    let csp = |answer: &crate::helpers::Response| {
        answer
            .headers
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        csp(&embed).ends_with("frame-ancestors 'self' https://tools.example.com"),
        "{}",
        csp(&embed)
    );
    assert!(
        csp(&page).ends_with("frame-ancestors 'self'"),
        "{}",
        csp(&page)
    );
    let text = embed.text();
    let code = app
        .get("/api/qrcode?scene_str=shop-9&expire_seconds=86400")
        .await
        .json();
    let image = code["image_url"]
        .as_str()
        .unwrap_or_default()
        .replace('&', "&#38;");
    assert!(text.contains(&format!(r#"<img src="{image}""#)), "{text}");
    assert!(text.contains("上海店"), "{text}");
    assert!(text.contains("shop-9"), "{text}");
    assert!(text.contains("Expires 20"), "{text}");
    for app_part in ["<nav", "<form", "<header"] {
        assert!(
            !text.contains(app_part),
            "{app_part} in the embed view: {text}"
        );
    }
    assert_eq!(bad.status, 400);
    // The page, the JSON and the embed view share one code.
    assert_eq!(app.emulator.codes_created(), 1);
}
