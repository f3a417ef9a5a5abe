//! The code routes: the page, its JSON twin for tools, and locally rendered images. All
//! four take the same query ([`CodeRequest::from_query`]) and read parse -> answer ->
//! respond; [`WorkerCodes::answer`] does the rest.

use actix_web::body::BoxBody;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use bytes::Bytes;

use super::AppState;
use super::download::content_disposition;
use crate::auth::StaffUser;
use crate::codes::{AnswerKind, WorkerCodes, file_stem};
use crate::domain::{CodeRequest, ImageFormat, ImageRequest, Kind};
use crate::error::AppError;
use crate::pages::html;

/// The code the query asks for: a bad query, or a permanent code where they are off,
/// never reaches a cache or WeChat.
fn requested_code(req: &HttpRequest, state: &AppState) -> Result<CodeRequest, AppError> {
    let code = CodeRequest::from_query(req.query_string(), state.default_lifetime)?;
    refuse_denied(&code, state)?;
    Ok(code)
}

/// Refuses a permanent code where they are off.
fn refuse_denied(code: &CodeRequest, state: &AppState) -> Result<(), AppError> {
    if code.kind == Kind::Permanent && !state.permanent_allowed {
        return Err(AppError::PermanentDenied);
    }
    Ok(())
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

/// Parses the query and answers it as `kind`.
async fn answer(
    req: &HttpRequest,
    state: &AppState,
    codes: &WorkerCodes,
    kind: AnswerKind,
) -> Result<(CodeRequest, Bytes), AppError> {
    let code = requested_code(req, state)?;
    let body = codes.answer(&code, kind, || requester(req)).await?;
    Ok((code, body))
}

/// The code's page.
pub async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    codes: web::Data<WorkerCodes>,
) -> Result<HttpResponse, AppError> {
    let (_, body) = answer(&req, &state, &codes, AnswerKind::Page).await?;
    Ok(html(StatusCode::OK, body))
}

/// The code alone, for a frame in another tool: its image, scene, label and expiry.
pub async fn embed(
    req: HttpRequest,
    state: web::Data<AppState>,
    codes: web::Data<WorkerCodes>,
) -> Result<HttpResponse, AppError> {
    let code = requested_code(&req, &state)?;
    let body = codes.embed(&code, || requester(&req)).await?;
    Ok(html(StatusCode::OK, body))
}

/// The code as JSON, for internal tools.
pub async fn json(
    req: HttpRequest,
    state: web::Data<AppState>,
    codes: web::Data<WorkerCodes>,
) -> Result<HttpResponse, AppError> {
    let (_, body) = answer(&req, &state, &codes, AnswerKind::Json).await?;
    // Built directly, as `pages::html`: the hot path of tools that call in bursts.
    let mut response = HttpResponse::with_body(StatusCode::OK, BoxBody::new(body));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(AnswerKind::Json.content_type()),
    );
    Ok(response)
}

pub async fn png(
    req: HttpRequest,
    state: web::Data<AppState>,
    codes: web::Data<WorkerCodes>,
) -> Result<HttpResponse, AppError> {
    image(&req, &state, &codes, ImageFormat::Png).await
}

pub async fn svg(
    req: HttpRequest,
    state: web::Data<AppState>,
    codes: web::Data<WorkerCodes>,
) -> Result<HttpResponse, AppError> {
    image(&req, &state, &codes, ImageFormat::Svg).await
}

/// The code rendered locally from its `url`, for download. Its options (a size, a caption)
/// are checked with the code, before anything is looked up.
async fn image(
    req: &HttpRequest,
    state: &AppState,
    codes: &WorkerCodes,
    format: ImageFormat,
) -> Result<HttpResponse, AppError> {
    let request = ImageRequest::from_query(req.query_string(), state.default_lifetime, format)?;
    refuse_denied(&request.code, state)?;
    let body = codes.image(&request, || requester(req)).await?;
    let kind = AnswerKind::from(format);
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, kind.content_type()))
        .insert_header((
            CONTENT_DISPOSITION,
            content_disposition(
                "inline",
                &format!("{}.{}", file_stem(&request.code), kind.extension()),
            ),
        ))
        .body(body))
}
