//! The home page, its form, health, static files and unknown paths.

use scene_qr::emulator::Api;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn the_home_page_offers_a_form_for_a_scene_its_kind_and_lifetime() {
    let app = spawn_app().await;

    let page = app.get("/").await;

    assert_eq!(page.status, 200);
    let text = page.text();
    assert!(text.contains(r#"<form action="/open" method="get""#));
    for field in [
        r#"name="scene""#,
        r#"name="scene_type""#,
        r#"name="kind""#,
        r#"name="expire_seconds""#,
    ] {
        assert!(text.contains(field), "{field}");
    }
    assert!(
        text.contains(r#"value="604800""#),
        "default lifetime prefilled"
    );
}

#[actix_web::test]
async fn the_form_redirects_to_the_codes_canonical_page() {
    let app = spawn_app().await;
    let cases = [
        (
            "scene=123&scene_type=id&kind=temporary&expire_seconds=3600",
            "/qrcode?scene_id=123&expire_seconds=3600",
        ),
        (
            "scene=shop+12&scene_type=str&kind=permanent&expire_seconds=3600",
            "/qrcode?scene_str=shop+12&permanent=true",
        ),
        (
            "scene=+9+&scene_type=id&kind=temporary&expire_seconds=",
            "/qrcode?scene_id=9&expire_seconds=604800",
        ),
        // Text typed with "a number" chosen (the default) is taken as text.
        (
            "scene=shop-13&scene_type=id&kind=temporary&expire_seconds=3600",
            "/qrcode?scene_str=shop-13&expire_seconds=3600",
        ),
    ];

    for (form, location) in cases {
        let response = app.get(&format!("/open?{form}")).await;

        assert_eq!(response.status, 303, "{form}");
        assert_eq!(
            response.headers.get("location").unwrap(),
            location,
            "{form}"
        );
    }
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 0);
}

#[actix_web::test]
async fn a_refused_form_comes_back_filled_in_with_the_problem() {
    let app = spawn_app().await;

    let response = app
        .get("/open?scene=0&scene_type=id&kind=temporary&expire_seconds=600")
        .await;

    assert_eq!(response.status, 400);
    let text = response.text();
    assert!(text.contains(r#"value="0""#));
    assert!(text.contains("whole number from 1 to 4294967295"));
    assert!(text.contains(r#"value="600""#));
}

#[actix_web::test]
async fn healthz_answers_ok_without_calling_wechat() {
    let app = spawn_app().await;

    let response = app.get("/healthz").await;

    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "ok");
    assert_eq!(app.emulator.token_calls(), 0);
}

#[actix_web::test]
async fn the_stylesheet_is_served_from_the_binary_and_revalidates() {
    let app = spawn_app().await;

    let css = app.get("/static/style.css").await;
    let missing = app.get("/static/nope.css").await;

    assert_eq!(css.status, 200);
    assert!(css.content_type().starts_with("text/css"));
    assert!(css.text().contains("@media print"));
    assert!(css.headers.contains_key("etag"));
    assert_eq!(missing.status, 404);
}

#[actix_web::test]
async fn every_page_links_the_stylesheet_and_no_outside_host() {
    let app = spawn_app().await;

    for path in ["/", "/qrcode?scene_id=1", "/qrcode?scene_id=0", "/nowhere"] {
        let text = app.get(path).await.text();
        assert!(
            text.contains(r#"<link rel="stylesheet" href="/static/style.css">"#),
            "{path}"
        );
        assert!(!text.contains("<script"), "{path}: no script");
        let outside = text.matches("http").filter(|_| true).count();
        let allowed = text.matches(&app.emulator_url).count()
            + text.matches("http://weixin.qq.com/q/").count();
        assert_eq!(
            outside, allowed,
            "{path}: only the code's image and url point elsewhere"
        );
    }
}

#[actix_web::test]
async fn an_unknown_path_is_a_404_page() {
    let app = spawn_app().await;

    let response = app.get("/qrcodes").await;

    assert_eq!(response.status, 404);
    assert!(response.text().contains("There is no page here"));
}

#[actix_web::test]
async fn pages_in_live_mode_carry_no_sandbox_badge() {
    let app = spawn_app().await;

    let text = app.get("/").await.text();

    assert!(!text.contains("badge sandbox"));
}

#[actix_web::test]
async fn the_home_form_asks_whether_the_code_is_for_printing_and_warns_against_printing_a_temporary_one()
 {
    let app = spawn_app().await;
    for scene in ["a", "b"] {
        let path = format!("/api/qrcode?scene_str={scene}&permanent=true");
        assert_eq!(app.get_owned(path).await.status, 200);
    }

    let page = app.get("/").await.text();

    for shown in [
        "<strong>For a short time</strong>",
        "Not for print",
        "<strong>For printing</strong>: a permanent code, never expires",
        "none can be deleted: 2 used so far, <a href=\"/status\">see the account's budgets</a>",
        "<a href=\"/batches/new\">Make a batch</a>",
    ] {
        assert!(page.contains(shown), "{shown} missing from the home page");
    }
}
