//! Sandbox only: "simulate scan" makes the emulator push a signed scan event to this
//! service's own callback, so code -> scan -> statistics works without an account.

use std::sync::Arc;

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};

use super::body::{self, FORM_BODY_WITHIN, MAX_FORM_BYTES};
use super::refuse_cross_site_form;
use crate::domain::{SceneKey, scene_rule};
use crate::emulator::{Emulator, Follower};
use crate::error::AppError;
use crate::pages::scene_stats_path;

pub async fn scan(
    req: HttpRequest,
    payload: web::Payload,
    emulator: web::Data<Arc<Emulator>>,
    http: web::Data<awc::Client>,
) -> Result<HttpResponse, AppError> {
    refuse_cross_site_form(&req)?;
    let body = body::read(&req, payload, MAX_FORM_BYTES, FORM_BODY_WITHIN).await?;
    let mut scene = String::new();
    let mut ticket = None;
    let mut follower = None;
    for (name, value) in form_urlencoded::parse(&body) {
        match name.as_ref() {
            "scene" => scene = value.into_owned(),
            "ticket" if !value.is_empty() => ticket = Some(value.into_owned()),
            "follower" if value == "new" => follower = Some(Follower::New),
            "follower" if value == "existing" => follower = Some(Follower::Existing),
            _ => {}
        }
    }
    let (Some(follower), Ok(scene)) = (follower, SceneKey::parse(&scene)) else {
        return Err(AppError::BadRequest {
            message: "a simulated scan needs a scene and follower=new or follower=existing".into(),
            allowed: concat!(
                "scene: ",
                scene_rule!(),
                "; follower: new or existing; ticket: optional."
            ),
        });
    };
    emulator
        .send_scan(&http, &scene, ticket.as_deref(), follower)
        .await
        .map_err(|e| AppError::Internal(format!("simulated scan failed: {e}").into()))?;
    Ok(HttpResponse::SeeOther()
        .insert_header((LOCATION, scene_stats_path(&scene)))
        .finish())
}
