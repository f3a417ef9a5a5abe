//! Naming scenes: `POST /labels` from the forms on the code, home and statistics pages.

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};

use super::stats::scene_path;
use super::{AppState, refuse_cross_site_form};
use crate::domain::MAX_SCENE_STR_CHARS;
use crate::error::{AppError, PageError};
use crate::store::labels::MAX_LABEL_CHARS;

const ALLOWED: &str = "scene: 1 to 64 characters; label: up to 100 characters of text \
    without line breaks (empty removes the name).";

pub async fn save(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let layout = state.layout;
    let fail = |error| PageError { error, layout };
    refuse_cross_site_form(&req).map_err(fail)?;
    let mut scene = String::new();
    let mut label = String::new();
    let mut back = String::new();
    for (name, value) in form_urlencoded::parse(&body) {
        match name.as_ref() {
            "scene" => scene = value.trim().to_string(),
            "label" => label = value.trim().to_string(),
            "back" => back = value.into_owned(),
            _ => {}
        }
    }
    let invalid = |message: &str| {
        fail(AppError::BadRequest {
            message: message.to_string(),
            allowed: ALLOWED,
        })
    };
    if scene.is_empty() || scene.chars().count() > MAX_SCENE_STR_CHARS {
        return Err(invalid("the scene must have 1 to 64 characters"));
    }
    if label.chars().count() > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
        return Err(invalid(
            "the name must be up to 100 characters, without line breaks",
        ));
    }
    state
        .store
        .set_label(&scene, &label)
        .await
        .map_err(|e| fail(e.into()))?;
    // Only a path on this site: a form must not be able to send staff elsewhere.
    let location = if back.starts_with('/') && !back.starts_with("//") && !back.contains('\\') {
        back
    } else {
        scene_path(&scene)
    };
    Ok(HttpResponse::SeeOther()
        .insert_header((LOCATION, location))
        .finish())
}
