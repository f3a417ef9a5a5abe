//! Scene settings and groups: `GET`/`PUT /api/scenes/{scene}`, the scene page's form, and
//! the statistics of a group.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

async fn settings(app: &TestApp, scene: &str) -> Value {
    let answer = app.get_owned(format!("/api/scenes/{scene}")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

async fn put(app: &TestApp, scene: &str, body: Value) -> Value {
    let answer = app
        .put(&format!("/api/scenes/{scene}"), &body.to_string(), &[])
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()
}

#[actix_web::test]
async fn a_scene_never_configured_has_no_label_and_no_group() {
    let app = spawn_app().await;

    let answer = settings(&app, "shop%2012").await;

    assert_eq!(
        answer,
        json!({"scene": "shop 12", "label": null, "group": null})
    );
}

#[actix_web::test]
async fn settings_put_are_read_back() {
    let app = spawn_app().await;

    let saved = put(
        &app,
        "7",
        json!({"label": "Door poster", "group": " East region "}),
    )
    .await;

    let expected = json!({"scene": "7", "label": "Door poster", "group": "East region"});
    assert_eq!(saved, expected);
    assert_eq!(settings(&app, "7").await, expected);
}

#[actix_web::test]
async fn a_field_left_out_stays_and_a_null_or_empty_one_is_removed() {
    let app = spawn_app().await;
    put(&app, "7", json!({"label": "Door", "group": "East"})).await;

    let group_moved = put(&app, "7", json!({"group": "West"})).await;
    let group_removed = put(&app, "7", json!({"group": null})).await;
    let label_emptied = put(&app, "7", json!({"label": "", "group": "North"})).await;

    assert_eq!(group_moved["label"], "Door");
    assert_eq!(group_moved["group"], "West");
    assert_eq!(group_removed["label"], "Door");
    assert!(group_removed["group"].is_null());
    assert!(label_emptied["label"].is_null());
    assert_eq!(label_emptied["group"], "North");
    assert_eq!(settings(&app, "7").await, label_emptied);
}

#[actix_web::test]
async fn bad_settings_are_400_naming_the_field_and_what_is_allowed() {
    let app = spawn_app().await;
    let long_group = "g".repeat(51);
    let long_label = "l".repeat(101);

    for (body, says) in [
        (json!({"group": long_group}).to_string(), "group has 51"),
        (json!({"label": long_label}).to_string(), "label has 101"),
        (
            json!({"group": "East\nregion"}).to_string(),
            "group contains",
        ),
        (json!({"label": "x", "colour": "red"}).to_string(), "colour"),
        (json!({"group": 5}).to_string(), "invalid type"),
        ("{}".to_string(), "neither label nor group"),
        ("label=x".to_string(), "not a settings object"),
    ] {
        let answer = app.put("/api/scenes/7", &body, &[]).await;

        assert_eq!(answer.status, 400, "{body}");
        let error = answer.json();
        assert!(
            error["error"].as_str().unwrap().contains(says),
            "{body}: {error}"
        );
        let hint = error["hint"].as_str().unwrap();
        assert!(hint.contains("1 to 50") && hint.contains("100"), "{hint}");
    }
    assert_eq!(
        settings(&app, "7").await,
        json!({"scene": "7", "label": null, "group": null}),
        "nothing saved"
    );
}

#[actix_web::test]
async fn a_text_that_is_no_scene_is_400_on_the_settings_api() {
    let app = spawn_app().await;
    let sixty_five = "a".repeat(65);

    let read = app.get_owned(format!("/api/scenes/{sixty_five}")).await;
    let write = app
        .put(
            &format!("/api/scenes/{sixty_five}"),
            r#"{"group": "East"}"#,
            &[],
        )
        .await;
    let control = app.get("/api/scenes/a%0Ab").await;

    for answer in [read, write, control] {
        assert_eq!(answer.status, 400);
        let error = answer.json();
        assert!(
            error["hint"]
                .as_str()
                .unwrap()
                .contains("1 to 64 characters"),
            "{error}"
        );
    }
}

#[actix_web::test]
async fn a_put_from_another_site_is_refused_and_one_from_this_site_taken() {
    let app = spawn_app().await;
    let host = app.address.trim_start_matches("http://").to_string();
    let own = format!("http://{host}");

    let cross_site = app
        .put(
            "/api/scenes/7",
            r#"{"group": "Evil"}"#,
            &[("Origin", "http://evil.example")],
        )
        .await;
    let same_site = app
        .put("/api/scenes/7", r#"{"group": "East"}"#, &[("Origin", &own)])
        .await;

    assert_eq!(cross_site.status, 403);
    assert_eq!(same_site.status, 200, "{}", same_site.text());
    assert_eq!(settings(&app, "7").await["group"], "East");
}

#[actix_web::test]
async fn the_settings_address_takes_get_and_put_only() {
    let app = spawn_app().await;

    let post = app.post("/api/scenes/7", b"{}".to_vec()).await;

    assert_eq!(post.status, 405);
    assert_eq!(post.headers.get("allow").unwrap(), "GET, PUT");
    assert_eq!(post.json()["status"], 405);
}

#[actix_web::test]
async fn the_scene_page_s_form_sets_the_group_and_the_other_forms_leave_it() {
    let app = spawn_app().await;

    let from_scene_page = app
        .post_form(
            "/labels",
            &[
                ("scene", "7"),
                ("label", "Door"),
                ("group", " East region "),
                ("back", "/stats/7"),
            ],
        )
        .await;
    let from_code_page = app
        .post_form("/labels", &[("scene", "7"), ("label", "Front door")])
        .await;
    let too_long = app
        .post_form(
            "/labels",
            &[("scene", "7"), ("label", "x"), ("group", &"g".repeat(51))],
        )
        .await;

    assert_eq!(from_scene_page.status, 303);
    assert_eq!(from_code_page.status, 303);
    assert_eq!(too_long.status, 400);
    assert!(
        too_long.text().contains("group has 51"),
        "{}",
        too_long.text()
    );
    assert_eq!(
        settings(&app, "7").await,
        json!({"scene": "7", "label": "Front door", "group": "East region"})
    );
    let page = app.get("/stats/7").await.text();
    assert!(
        page.contains(r#"name="group" value="East region""#),
        "{page}"
    );
}

#[actix_web::test]
async fn a_label_or_group_with_markup_shows_as_text_on_every_page() {
    let app = spawn_app().await;
    put(
        &app,
        "7",
        json!({"label": "<script>alert(1)</script>", "group": "<script>alert(2)</script>"}),
    )
    .await;

    let page = app.get("/stats/7").await.text();

    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("&#60;script&#62;alert(1)"));
    assert!(page.contains("&#60;script&#62;alert(2)"));
}
