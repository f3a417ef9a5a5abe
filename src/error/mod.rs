//! One error type for every answer that is not a success, from the routes, access control
//! and the router itself (no such page, a method the address does not take), and its two
//! renderings: an HTML page for people and a JSON body for tools, chosen once by route in
//! [`ErrorAnswers`]. Status codes and wording live here and nowhere else.

use actix_web::http::StatusCode;
use actix_web::http::header::{ALLOW, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

mod answers;
pub use answers::ErrorAnswers;

/// A cause kept for the log: the error as it happened, not its text.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

use crate::codes::CodeError;
use crate::domain::{
    InvalidBatch, InvalidImageRequest, InvalidRequest, InvalidSettings, InvalidStatsQuery,
};
use crate::pages::{ErrorPage, Layout, render};
use crate::stats::PastTheEnd;
use crate::store::StoreError;
use crate::wechat::{UpstreamError, errcode};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the request is not valid; `allowed` says what is. Nothing was sent to WeChat.
    #[error("{message}")]
    BadRequest {
        message: String,
        allowed: &'static str,
    },
    /// 400: a batch of codes with invalid rows (each named) or not a batch at all. Nothing
    /// was stored.
    #[error("{0}")]
    BadBatch(InvalidBatch),
    /// 502 when WeChat refused, broke or could not be reached; 504 when it was too slow.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// 413: a body larger than the route takes.
    #[error("the request's body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// 408: a body that did not arrive in time.
    #[error("the request's body did not arrive within {} s", .within.as_secs())]
    TooSlow { within: std::time::Duration },
    /// 401: access control wants a user name and password (HTTP Basic).
    #[error("sign in with your scene-qr user name and password")]
    SignInRequired,
    /// 401: the sign-in proxy sent the request without naming a user.
    #[error("the sign-in proxy did not name a user")]
    UnnamedUser,
    /// 403: a form posted from another site, or a request that bypassed the sign-in proxy.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404: no page, or no file of `static/`, at this address.
    #[error("{0}")]
    NotFound(&'static str),
    /// 405: the address exists but answers only `allowed` (the `Allow` header's value).
    #[error("this address answers {allowed} only")]
    MethodNotAllowed { allowed: &'static str },
    /// 403: permanent codes are switched off (SCENE_QR_PERMANENT=deny).
    #[error("permanent codes are not allowed on this server")]
    PermanentDenied,
    /// 429: the client has used its allowance of new codes.
    #[error("too many new codes from you: try again in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// 429: the service has used its allowance of new codes, whoever asked.
    #[error("too many new codes on this server: try again in {retry_after} s")]
    ServerBusy { retry_after: u64 },
    /// 503: the database could not save something (full disk, a lock held by another
    /// program); nothing was acknowledged. The writer logs the outage once.
    #[error("{0}")]
    StoreUnavailable(String),
    /// 503: the database cannot be reached (PostgreSQL gone or refusing connections), so
    /// what was asked could not be read. The connection watch logs the outage once.
    #[error("{0}")]
    DatabaseUnreachable(String),
    /// 500: a fault of scene-qr itself (the cause is for the log, not the page).
    #[error("internal error: {0}")]
    Internal(Cause),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest { .. } | AppError::BadBatch(_) => StatusCode::BAD_REQUEST,
            AppError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooSlow { .. } => StatusCode::REQUEST_TIMEOUT,
            AppError::SignInRequired | AppError::UnnamedUser => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) | AppError::PermanentDenied => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AppError::RateLimited { .. } | AppError::ServerBusy { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            AppError::StoreUnavailable(_) | AppError::DatabaseUnreachable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::Upstream(UpstreamError::Timeout { .. }) => StatusCode::GATEWAY_TIMEOUT,
            AppError::Upstream(_) => StatusCode::BAD_GATEWAY,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A headline for the page.
    fn title(&self) -> &'static str {
        match self {
            AppError::BadRequest { .. }
            | AppError::BadBatch(_)
            | AppError::TooLarge { .. }
            | AppError::TooSlow { .. } => "This request is not valid",
            AppError::SignInRequired | AppError::UnnamedUser => "Sign in to scene-qr",
            AppError::Forbidden(_) => "This request is not allowed",
            AppError::NotFound(_) => "There is no page here",
            AppError::MethodNotAllowed { .. } => "This address does not take that request",
            AppError::PermanentDenied => "Permanent codes are switched off",
            AppError::RateLimited { .. } | AppError::ServerBusy { .. } => "Too many new codes",
            AppError::StoreUnavailable(_) => "Nothing was saved",
            AppError::DatabaseUnreachable(_) => "The database cannot be reached",
            AppError::Upstream(UpstreamError::Rejected { .. }) => {
                "WeChat refused to create the code"
            }
            AppError::Upstream(UpstreamError::Timeout { .. }) => "WeChat did not answer in time",
            AppError::Upstream(_) => "WeChat could not be reached",
            AppError::Internal(_) => "Something went wrong in scene-qr",
        }
    }

    /// What went wrong, safe to show to anyone.
    fn message(&self) -> String {
        match self {
            AppError::Internal(_) => "The error has been logged.".into(),
            other => other.to_string(),
        }
    }

    /// What to do about it.
    fn hint(&self) -> Option<&'static str> {
        match self {
            AppError::BadRequest { allowed, .. } => Some(allowed),
            AppError::BadBatch(_) => Some(InvalidBatch::ALLOWED),
            AppError::SignInRequired | AppError::Forbidden(_) => None,
            AppError::UnnamedUser => {
                Some("The sign-in proxy must set the user header that SCENE_QR_AUTH_HEADER names.")
            }
            AppError::NotFound(_) => None,
            AppError::MethodNotAllowed { .. } => None,
            AppError::TooLarge { .. } => Some("The forms here hold a few short fields."),
            AppError::TooSlow { .. } => Some("Send the form again."),
            AppError::PermanentDenied => Some(
                "An account may hold at most 100,000 permanent codes, and they can never be \
                 deleted, so this server creates none. Use a temporary code (up to 30 days), or \
                 have an administrator turn on access control (SCENE_QR_AUTH) or set \
                 SCENE_QR_PERMANENT=allow and restart scene-qr.",
            ),
            AppError::RateLimited { .. } => Some(
                "Codes already created are not limited. The allowance of new codes \
                 (SCENE_QR_NEW_CODES_PER_MINUTE) protects the account's daily WeChat quota.",
            ),
            AppError::ServerBusy { .. } => Some(
                "Codes already created are not limited. The whole server's allowance of new \
                 codes (SCENE_QR_NEW_CODES_PER_MINUTE_TOTAL) protects the account's daily \
                 WeChat quota; it is shared by everyone using this server.",
            ),
            AppError::StoreUnavailable(_) => Some(
                "The database could not save this, so nothing was changed. Try again in a \
                 minute. If it keeps happening, tell the administrator: /healthz says why \
                 (a full disk, or the database file locked by another program).",
            ),
            AppError::DatabaseUnreachable(_) => Some(
                "Nothing was lost, and pages of codes already made still work. Try again in a \
                 minute. If it keeps happening, tell the administrator: /healthz says why.",
            ),
            AppError::Upstream(UpstreamError::Rejected { errcode, .. }) => errcode::hint(*errcode),
            AppError::Upstream(UpstreamError::Timeout { .. }) => Some(
                "Nothing was cached; reload the page to try again. If it keeps happening, WeChat \
                 or the network to it is slow (see SCENE_QR_UPSTREAM_TIMEOUT_MS).",
            ),
            AppError::Upstream(_) => Some(
                "Nothing was cached; reload the page to try again. If it keeps happening, check \
                 this server's network access to the WeChat API.",
            ),
            AppError::Internal(_) => None,
        }
    }

    fn errcode(&self) -> Option<(i64, &str)> {
        match self {
            AppError::Upstream(UpstreamError::Rejected {
                errcode, errmsg, ..
            }) => Some((*errcode, errmsg.as_str())),
            _ => None,
        }
    }

    fn log(&self) {
        match self {
            AppError::BadRequest { message, .. } => log::debug!("bad request: {message}"),
            AppError::BadBatch(invalid) => log::debug!("bad batch: {invalid}"),
            AppError::TooLarge { .. } | AppError::TooSlow { .. } => log::debug!("{self}"),
            AppError::SignInRequired | AppError::UnnamedUser => log::debug!("{self}"),
            AppError::Forbidden(why) => log::warn!("forbidden: {why}"),
            AppError::NotFound(_) | AppError::MethodNotAllowed { .. } => log::debug!("{self}"),
            AppError::PermanentDenied => log::info!("refused a permanent code: not allowed"),
            AppError::RateLimited { .. } => log::info!("refused a new code: over the allowance"),
            AppError::ServerBusy { .. } => {
                log::info!("refused a new code: over the server's allowance")
            }
            // The database writer logs each outage once; one line per refused request
            // would fill the log during one.
            AppError::StoreUnavailable(e) | AppError::DatabaseUnreachable(e) => {
                log::debug!("{e}")
            }
            AppError::Upstream(e) => log::warn!("{e}"),
            AppError::Internal(e) => log::error!("{e}"),
        }
    }
}

impl From<InvalidRequest> for AppError {
    fn from(e: InvalidRequest) -> Self {
        AppError::BadRequest {
            message: e.to_string(),
            allowed: InvalidRequest::ALLOWED,
        }
    }
}

impl From<InvalidImageRequest> for AppError {
    fn from(e: InvalidImageRequest) -> Self {
        match e {
            InvalidImageRequest::Code(e) => e.into(),
            other => AppError::BadRequest {
                message: other.to_string(),
                allowed: InvalidImageRequest::ALLOWED,
            },
        }
    }
}

impl From<InvalidStatsQuery> for AppError {
    fn from(e: InvalidStatsQuery) -> Self {
        AppError::BadRequest {
            message: e.to_string(),
            allowed: InvalidStatsQuery::ALLOWED,
        }
    }
}

impl From<InvalidSettings> for AppError {
    fn from(e: InvalidSettings) -> Self {
        AppError::BadRequest {
            message: e.to_string(),
            allowed: InvalidSettings::ALLOWED,
        }
    }
}

impl From<PastTheEnd> for AppError {
    fn from(e: PastTheEnd) -> Self {
        AppError::BadRequest {
            message: e.to_string(),
            allowed: "page: from 1 to the number of pages /stats shows (50 rows a page); \
                      the JSON and the CSV have every row.",
        }
    }
}

impl From<CodeError> for AppError {
    fn from(e: CodeError) -> Self {
        match e {
            CodeError::Upstream(e) => AppError::Upstream(e),
            CodeError::RateLimited { retry_after } => AppError::RateLimited {
                retry_after: retry_after.as_secs_f64().ceil() as u64,
            },
            CodeError::ServerBusy { retry_after } => AppError::ServerBusy {
                retry_after: retry_after.as_secs_f64().ceil() as u64,
            },
            CodeError::NotRecorded(e) | CodeError::Unknown(e) | CodeError::TokenUnshared(e) => {
                AppError::StoreUnavailable(e)
            }
            CodeError::Unrendered(e) => AppError::Internal(Box::new(e)),
        }
    }
}

impl AppError {
    /// Extra headers the status calls for.
    fn decorate(&self, response: &mut HttpResponse) {
        let headers = response.headers_mut();
        match self {
            AppError::RateLimited { retry_after } | AppError::ServerBusy { retry_after } => {
                if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                    headers.insert(RETRY_AFTER, value);
                }
            }
            AppError::MethodNotAllowed { allowed } => {
                headers.insert(ALLOW, HeaderValue::from_static(allowed));
            }
            AppError::SignInRequired => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Basic realm="scene-qr", charset="UTF-8""#),
                );
            }
            _ => {}
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        if e.is_write() {
            AppError::StoreUnavailable(e.to_string())
        } else if e.is_unreachable() {
            AppError::DatabaseUnreachable(e.to_string())
        } else {
            AppError::Internal(Box::new(e))
        }
    }
}

impl AppError {
    /// The error as an HTML page, for people.
    pub fn page(&self, layout: Layout) -> HttpResponse {
        let (errcode, errmsg) = match self.errcode() {
            Some((code, msg)) => (Some(code), msg.to_string()),
            None => (None, String::new()),
        };
        let page = ErrorPage {
            layout,
            status: self.status().as_u16(),
            title: self.title(),
            message: self.message(),
            hint: self.hint(),
            errcode,
            errmsg,
        };
        let mut response = render(self.status(), &page);
        self.decorate(&mut response);
        response
    }

    /// The error as JSON, for tools.
    pub fn json(&self) -> HttpResponse {
        let mut body = json!({
            "status": self.status().as_u16(),
            "error": self.message(),
            "hint": self.hint(),
        });
        if let (Some((code, msg)), Some(map)) = (self.errcode(), body.as_object_mut()) {
            map.insert("errcode".into(), json!(code));
            map.insert("errmsg".into(), json!(msg));
        }
        if let (AppError::BadBatch(InvalidBatch::Rows(rows)), Some(map)) =
            (self, body.as_object_mut())
        {
            map.insert("rows".into(), json!(rows));
        }
        let mut response = HttpResponse::build(self.status()).json(body);
        self.decorate(&mut response);
        response
    }
}

/// Answered as JSON here; [`ErrorAnswers`] logs it and answers the routes for people with
/// [`AppError::page`] instead.
impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        self.json()
    }
}
