//! The code routes: the page, its JSON twin for tools, and locally rendered images.
//! All four take the same query ([`CodeRequest::from_query`]) and share one lookup.

use std::sync::Arc;

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use askama::Template;
use bytes::Bytes;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use super::AppState;
use super::stats::scene_path;
use crate::auth::StaffUser;
use crate::codes::{CodeEntry, WorkerAnswers};
use crate::domain::Ticket;
use crate::domain::{CodeRequest, Kind, Scene};
use crate::error::{ApiError, AppError, PageError};
use crate::pages::{QrCodePage, html, human_duration};
use crate::render;
use crate::wechat::WechatClient;

/// The code the query asks for: a bad query, or a permanent code where they are off,
/// never reaches a cache or WeChat.
fn requested_code(req: &HttpRequest, state: &AppState) -> Result<CodeRequest, AppError> {
    let code = CodeRequest::from_query(req.query_string(), state.default_lifetime)?;
    if code.kind == Kind::Permanent && !state.permanent_allowed {
        return Err(AppError::PermanentDenied);
    }
    Ok(code)
}

/// The ticket of `code`, from the shared cache or WeChat.
async fn ticket(
    req: &HttpRequest,
    state: &AppState,
    client: &WechatClient,
    code: &CodeRequest,
) -> Result<Arc<CodeEntry>, AppError> {
    Ok(state.codes.ticket(client, code, || requester(req)).await?)
}

/// Validates the query, then gets the ticket.
async fn lookup(
    req: &HttpRequest,
    state: &AppState,
    client: &WechatClient,
) -> Result<(CodeRequest, Arc<CodeEntry>), AppError> {
    let code = requested_code(req, state)?;
    let entry = ticket(req, state, client, &code).await?;
    Ok((code, entry))
}

/// Who the allowance of new codes is counted for: the signed-in user, else the address.
fn requester(req: &HttpRequest) -> String {
    if let Some(user) = req.extensions().get::<StaffUser>() {
        return format!("user:{}", user.0);
    }
    req.peer_addr()
        .map(|addr| format!("ip:{}", addr.ip()))
        .unwrap_or_else(|| "unknown".into())
}

fn page_error(state: &AppState) -> impl FnOnce(AppError) -> PageError {
    let layout = state.layout;
    move |error| PageError { error, layout }
}

/// The code's page: the stored rendering while the labels have not changed since, from
/// this worker's copy first.
pub async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    client: web::Data<WechatClient>,
    answers: web::Data<WorkerAnswers>,
) -> Result<HttpResponse, PageError> {
    let code = requested_code(&req, &state).map_err(page_error(&state))?;
    // Read before the label: a label saved meanwhile makes the next request render again.
    let generation = state.store.label_generation();
    if let Some(body) = answers.page(&code, generation) {
        return Ok(html(StatusCode::OK, body));
    }
    let entry = ticket(&req, &state, &client, &code)
        .await
        .map_err(page_error(&state))?;
    let body = match entry.page(generation) {
        Some(body) => body,
        None => {
            // Boxed, as the miss path: the label look-up's future is large and rarely needed.
            let body = Box::pin(render_page(&state, &code, &entry.ticket))
                .await
                .map_err(page_error(&state))?;
            entry.keep_page(generation, &body);
            body
        }
    };
    answers.keep_page(&code, &entry.ticket, generation, &body);
    Ok(html(StatusCode::OK, body))
}

async fn render_page(
    state: &AppState,
    code: &CodeRequest,
    ticket: &Ticket,
) -> Result<Bytes, AppError> {
    let scene = code.scene.to_string();
    let label = state.store.label(&scene).await?;
    let expires_at = ticket.expires_at;
    let page = QrCodePage {
        layout: state.layout,
        label: label.unwrap_or_default(),
        back: format!("/qrcode?{}", code.query_string()),
        stats_href: scene_path(&scene),
        ticket: ticket.ticket.clone(),
        scene,
        is_string_scene: matches!(code.scene, Scene::Str(_)),
        kind: code.kind.name(),
        action_name: code.action_name(),
        image_url: image_url(&state.mp_base, &ticket.ticket),
        url: ticket.url.clone(),
        lifetime: ticket.expire_seconds.map(human_duration),
        expires_at: expires_at.and_then(|t| {
            t.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        }),
        expires_at_rfc3339: expires_at.and_then(|t| t.format(&Rfc3339).ok()),
        query: code.query_string(),
        file_stem: file_stem(code),
    };
    page.render()
        .map(Bytes::from)
        .map_err(|e| AppError::Internal(format!("the code page failed to render: {e}")))
}

/// The code as JSON, for internal tools.
#[derive(Serialize)]
struct CodeJson<'a> {
    scene: &'a Scene,
    kind: &'static str,
    action_name: &'static str,
    ticket: &'a str,
    url: &'a str,
    image_url: String,
    expire_seconds: Option<u32>,
    expires_at: Option<String>,
}

/// The code as JSON: rendered once per ticket, then served as stored bytes.
pub async fn json(
    req: HttpRequest,
    state: web::Data<AppState>,
    client: web::Data<WechatClient>,
    answers: web::Data<WorkerAnswers>,
) -> Result<HttpResponse, ApiError> {
    let code = requested_code(&req, &state)?;
    if let Some(body) = answers.json(&code) {
        return Ok(json_response(body));
    }
    let entry = ticket(&req, &state, &client, &code).await?;
    let body = match entry.json() {
        Some(body) => body,
        None => {
            let body = render_json(&state, &code, &entry.ticket);
            entry.keep_json(&body);
            body
        }
    };
    answers.keep_json(&code, &entry.ticket, &body);
    Ok(json_response(body))
}

/// The code as JSON, once per ticket.
fn render_json(state: &AppState, code: &CodeRequest, ticket: &Ticket) -> Bytes {
    let json = CodeJson {
        scene: &code.scene,
        kind: code.kind.name(),
        action_name: code.action_name(),
        ticket: &ticket.ticket,
        url: &ticket.url,
        image_url: image_url(&state.mp_base, &ticket.ticket),
        expire_seconds: ticket.expire_seconds,
        expires_at: ticket.expires_at.and_then(|t| t.format(&Rfc3339).ok()),
    };
    // Serializing strings and numbers cannot fail.
    Bytes::from(serde_json::to_vec(&json).unwrap_or_default())
}

fn json_response(body: Bytes) -> HttpResponse {
    // Built directly, as `pages::html`: the hot path of tools that call in bursts.
    let mut response = HttpResponse::with_body(StatusCode::OK, BoxBody::new(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub async fn png(
    req: HttpRequest,
    state: web::Data<AppState>,
    client: web::Data<WechatClient>,
) -> Result<HttpResponse, PageError> {
    image(&req, &state, &client, ImageFormat::Png).await
}

pub async fn svg(
    req: HttpRequest,
    state: web::Data<AppState>,
    client: web::Data<WechatClient>,
) -> Result<HttpResponse, PageError> {
    image(&req, &state, &client, ImageFormat::Svg).await
}

#[derive(Clone, Copy)]
enum ImageFormat {
    Png,
    Svg,
}

/// The code rendered locally from its `url`, for download.
async fn image(
    req: &HttpRequest,
    state: &AppState,
    client: &WechatClient,
    format: ImageFormat,
) -> Result<HttpResponse, PageError> {
    let (code, entry) = lookup(req, state, client)
        .await
        .map_err(page_error(state))?;
    let url = &entry.ticket.url;
    let rendered = match format {
        ImageFormat::Png => render::png(url).map(|png| ("image/png", "png", Bytes::from(png))),
        ImageFormat::Svg => render::svg(url).map(|svg| ("image/svg+xml", "svg", Bytes::from(svg))),
    };
    let (content_type, extension, body) = rendered
        .map_err(|e| AppError::Internal(e.to_string()))
        .map_err(page_error(state))?;
    Ok(image_response(content_type, &code, extension, body))
}

fn image_response(
    content_type: &str,
    code: &CodeRequest,
    extension: &str,
    body: Bytes,
) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, content_type))
        .insert_header((
            CONTENT_DISPOSITION,
            format!("inline; filename=\"{}.{extension}\"", file_stem(code)),
        ))
        .body(body)
}

/// The `showqrcode` address of a ticket. Tickets hold `+`, `/` and `=`, so the ticket is
/// percent-encoded: unencoded, `+` would arrive as a space and WeChat would answer 404.
pub fn image_url(mp_base: &str, ticket: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(ticket.as_bytes()).collect();
    format!("{mp_base}/cgi-bin/showqrcode?ticket={encoded}")
}

/// A file name for downloads: `scene-123`, `scene-shop-12-permanent`. Only characters that
/// are safe in every file system and in a header survive.
fn file_stem(code: &CodeRequest) -> String {
    let scene: String = code
        .scene
        .to_string()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    match code.kind {
        Kind::Temporary(_) => format!("scene-{scene}"),
        Kind::Permanent => format!("scene-{scene}-permanent"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ticket_is_percent_encoded_in_the_image_url() {
        assert_eq!(
            image_url("https://mp.weixin.qq.com", "gQH+47/jo=="),
            "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=gQH%2B47%2Fjo%3D%3D"
        );
    }
}
