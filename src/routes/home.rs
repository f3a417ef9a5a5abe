//! The home page: a form for staff who do not want to type query strings.

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpRequest, HttpResponse, web};

use super::AppState;
use crate::domain::CodeRequest;
use crate::pages::{HomeForm, HomePage, render};

pub async fn page(state: web::Data<AppState>) -> HttpResponse {
    home(&state, &HomeForm::default(), None, StatusCode::OK).await
}

/// The form's target: turns its fields into a code's canonical address and redirects there,
/// so the QR page's URL is the one to bookmark or share. A refused form comes back filled in.
pub async fn open(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let mut form = HomeForm::default();
    for (name, value) in form_urlencoded::parse(req.query_string().as_bytes()) {
        let field = match name.as_ref() {
            "scene" => &mut form.scene,
            "scene_type" => &mut form.scene_type,
            "kind" => &mut form.kind,
            "expire_seconds" => &mut form.expire_seconds,
            _ => continue,
        };
        *field = value.into_owned();
    }
    let scene = form.scene.trim();
    // "shop-13" typed with "a number" chosen (the default) is text: taken as such rather
    // than refused. Digits stay a number, and a number out of range is said to be one.
    let as_text = form.scene_type == "str" || !scene.bytes().all(|b| b.is_ascii_digit());
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair(if as_text { "scene_str" } else { "scene_id" }, scene);
    if form.kind == "permanent" {
        query.append_pair("permanent", "true");
    } else if !form.expire_seconds.trim().is_empty() {
        query.append_pair("expire_seconds", form.expire_seconds.trim());
    }
    match CodeRequest::from_query(&query.finish(), state.default_lifetime) {
        Ok(code) => HttpResponse::SeeOther()
            .insert_header((LOCATION, format!("/qrcode?{}", code.query_string())))
            .finish(),
        Err(e) => home(&state, &form, Some(e.to_string()), StatusCode::BAD_REQUEST).await,
    }
}

/// The page, with the permanent codes used so far beside the choice of a permanent code
/// (left out when the database cannot say: the form works without it).
async fn home(
    state: &AppState,
    form: &HomeForm,
    error: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    render(
        status,
        &HomePage {
            layout: state.layout,
            default_lifetime: state.default_lifetime.seconds(),
            form,
            error,
            permanent_used: state.store.permanent_codes_used().await.ok(),
        },
    )
}
