//! Sandbox only: "simulate scan" makes the emulator push a signed scan event to this
//! service's own callback, so code -> scan -> statistics works without an account; and
//! the emulator's `showqrcode` images are served from the service's own address, so that
//! a colleague opening a shared sandbox sees them too.

use std::sync::Arc;

use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};

use super::body::{self, FORM_BODY_WITHIN, MAX_FORM_BYTES};
use super::refuse_cross_site_form;
use crate::domain::{SceneKey, scene_rule};
use crate::emulator::{Emulator, Follower, showqrcode_image};
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
        // The statistics page says the scan was sent when it is the fragment's target.
        .insert_header((
            LOCATION,
            format!("{}#scan-simulated", scene_stats_path(&scene)),
        ))
        .finish())
}

/// `GET /cgi-bin/showqrcode?ticket=…`: the image of a code the sandbox's emulator made.
pub async fn image(req: HttpRequest) -> Result<HttpResponse, AppError> {
    let ticket = form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(name, _)| name == "ticket")
        .map(|(_, ticket)| ticket.into_owned())
        .unwrap_or_default();
    let png = showqrcode_image(&ticket).ok_or(AppError::NotFound(
        "No code of this sandbox has this ticket: open the code's page for its image.",
    ))?;
    Ok(HttpResponse::Ok()
        .content_type("image/png")
        .insert_header(("Cache-Control", "max-age=604800"))
        .body(png))
}
