//! A scene's settings for tools: `GET /api/scenes/{scene}` reads its label and group,
//! `PUT /api/scenes/{scene}` changes them. The pages' forms (`POST /labels`) save the same.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::body::{self, FORM_BODY_WITHIN, MAX_FORM_BYTES};
use super::{AppState, refuse_cross_site_form};
use crate::domain::{SceneKey, SettingsChange, scene_rule};
use crate::error::AppError;
use crate::store::labels::SceneSettings;

/// Any valid key is a scene: one never configured has no label and no group.
pub async fn get(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let scene = scene(&path)?;
    let settings = state.store.scene_settings(&scene).await?;
    Ok(HttpResponse::Ok().json(SettingsJson::of(&scene, settings)))
}

/// Answers with the settings as committed.
pub async fn put(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    // Browsers send no cross-site PUT without asking first, which nothing here answers;
    // the check is the forms' all the same, so that no browser-borne change gets in.
    refuse_cross_site_form(&req)?;
    let scene = scene(&path)?;
    let body = body::read(&req, payload, MAX_FORM_BYTES, FORM_BODY_WITHIN).await?;
    let change = SettingsChange::from_json(&body)?;
    state.store.save_scene_settings(&scene, change).await?;
    let settings = state.store.scene_settings(&scene).await?;
    Ok(HttpResponse::Ok().json(SettingsJson::of(&scene, settings)))
}

fn scene(path: &str) -> Result<SceneKey, AppError> {
    SceneKey::parse(path).map_err(|invalid| AppError::BadRequest {
        message: invalid.to_string(),
        allowed: concat!(
            "/api/scenes/SCENE, where SCENE is a scene_id or a scene_str (",
            scene_rule!(),
            ")."
        ),
    })
}

/// `{"scene": "7", "label": "Door", "group": null}`.
#[derive(Serialize)]
struct SettingsJson<'a> {
    scene: &'a str,
    label: Option<String>,
    group: Option<String>,
}

impl<'a> SettingsJson<'a> {
    fn of(scene: &'a SceneKey, settings: SceneSettings) -> Self {
        Self {
            scene,
            label: settings.label,
            group: settings.group,
        }
    }
}
