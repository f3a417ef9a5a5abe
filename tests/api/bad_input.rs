//! Every bad input: a 400 that says what is wrong and what is allowed, and nothing upstream.

use scene_qr::emulator::Api;

use crate::helpers::spawn_app;

/// (query, words the answer must contain)
const BAD_QUERIES: &[(&str, &str)] = &[
    ("", "give a scene"),
    ("scene_id=", "scene_id \"\" is not valid"),
    ("scene_id=abc", "whole number from 1 to 4294967295"),
    ("scene_id=0", "whole number from 1 to 4294967295"),
    ("scene_id=-5", "whole number from 1 to 4294967295"),
    ("scene_id=4294967296", "whole number from 1 to 4294967295"),
    ("scene_id=1e3", "whole number"),
    (
        "scene_id=100001&permanent=true",
        "permanent code takes a whole number from 1 to 100000",
    ),
    ("scene_str=", "scene_str is empty"),
    (
        "scene_str=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "scene_str has 65 characters",
    ),
    ("scene_str=a%0Ab", "control character"),
    ("scene_id=1&scene_str=a", "not both"),
    ("scene_id=1&scene_id=2", "more than once"),
    ("scene_id=1&expire_seconds=59", "from 60 to 2592000"),
    ("scene_id=1&expire_seconds=2592001", "from 60 to 2592000"),
    ("scene_id=1&expire_seconds=soon", "from 60 to 2592000"),
    (
        "scene_id=1&permanent=true&expire_seconds=600",
        "temporary codes only",
    ),
    ("scene_id=1&permanent=yes", "use true, 1, false or 0"),
    ("scene_id=1&colour=red", "unknown parameter"),
];

#[actix_web::test]
async fn every_bad_query_is_a_400_page_saying_what_is_wrong_and_what_is_allowed() {
    let app = spawn_app().await;

    for (query, words) in BAD_QUERIES {
        let page = app.get(&format!("/qrcode?{query}")).await;

        assert_eq!(page.status, 400, "{query}");
        assert_eq!(page.content_type(), "text/html; charset=utf-8", "{query}");
        let text = page.text();
        let unescaped = text.replace("&#34;", "\"").replace("&quot;", "\"");
        assert!(unescaped.contains(words), "{query}: {text}");
        assert!(
            text.contains("A code is asked for with one scene"),
            "{query}: allowed values shown"
        );
    }
    assert_eq!(app.emulator.token_calls(), 0);
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 0);
}

#[actix_web::test]
async fn every_bad_query_is_a_400_json_error_on_the_api() {
    let app = spawn_app().await;

    for (query, words) in BAD_QUERIES {
        let response = app.get(&format!("/api/qrcode?{query}")).await;

        assert_eq!(response.status, 400, "{query}");
        let body = response.json();
        assert_eq!(body["status"], 400);
        assert!(
            body["error"].as_str().unwrap().contains(words),
            "{query}: {body}"
        );
        assert!(
            body["hint"]
                .as_str()
                .unwrap()
                .contains("A code is asked for with one scene")
        );
    }
    assert_eq!(app.emulator.token_calls(), 0);
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 0);
}

#[actix_web::test]
async fn bad_queries_on_the_image_routes_are_400_too() {
    let app = spawn_app().await;

    for route in ["/qrcode.png", "/qrcode.svg"] {
        let response = app.get(&format!("{route}?scene_id=0")).await;
        assert_eq!(response.status, 400, "{route}");
    }
    assert_eq!(app.emulator.calls(Api::QrcodeCreate), 0);
}

#[actix_web::test]
async fn a_scene_str_of_markup_is_shown_as_text() {
    let app = spawn_app().await;

    let page = app
        .get("/qrcode?scene_str=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .await;
    let error = app
        .get("/qrcode?scene_id=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .await;

    assert_eq!(page.status, 200);
    assert!(
        page.text()
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{}",
        page.text()
    );
    assert!(!page.text().contains("<script>"));
    assert_eq!(error.status, 400);
    assert!(!error.text().contains("<script>"));
}

#[actix_web::test]
async fn a_query_that_is_not_valid_percent_encoding_is_still_answered() {
    let app = spawn_app().await;

    let response = app.get("/api/qrcode?scene_str=%FF%FE").await;

    // Undecodable bytes become U+FFFD: a valid two-character scene, never a crash.
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["scene"], "\u{FFFD}\u{FFFD}");
}
