//! One error type for every route, and its two renderings: an HTML page for people and a
//! JSON body for tools. Status codes and wording live here and nowhere else.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::codes::CodeError;
use crate::domain::{InvalidRequest, InvalidStatsQuery};
use crate::pages::{ErrorPage, Layout, render};
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
    /// 502 when WeChat refused, broke or could not be reached; 504 when it was too slow.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// 413: a body larger than the route takes.
    #[error("the request's body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// 408: a body that did not arrive in time.
    #[error("the request's body did not arrive within {} s", .within.as_secs())]
    TooSlow { within: std::time::Duration },
    /// 403: a form posted from another site.
    #[error("{0}")]
    Forbidden(&'static str),
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
    /// 500: a fault of scene-qr itself (the text is for the log, not the page).
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooSlow { .. } => StatusCode::REQUEST_TIMEOUT,
            AppError::Forbidden(_) | AppError::PermanentDenied => StatusCode::FORBIDDEN,
            AppError::RateLimited { .. } | AppError::ServerBusy { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            AppError::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Upstream(UpstreamError::Timeout { .. }) => StatusCode::GATEWAY_TIMEOUT,
            AppError::Upstream(_) => StatusCode::BAD_GATEWAY,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A headline for the page.
    fn title(&self) -> &'static str {
        match self {
            AppError::BadRequest { .. } | AppError::TooLarge { .. } | AppError::TooSlow { .. } => {
                "This request is not valid"
            }
            AppError::Forbidden(_) => "This request is not allowed",
            AppError::PermanentDenied => "Permanent codes are switched off",
            AppError::RateLimited { .. } | AppError::ServerBusy { .. } => "Too many new codes",
            AppError::StoreUnavailable(_) => "Nothing was saved",
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
            AppError::Forbidden(_) => None,
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
            AppError::TooLarge { .. } | AppError::TooSlow { .. } => log::debug!("{self}"),
            AppError::Forbidden(why) => log::warn!("forbidden: {why}"),
            AppError::PermanentDenied => log::info!("refused a permanent code: not allowed"),
            AppError::RateLimited { .. } => log::info!("refused a new code: over the allowance"),
            AppError::ServerBusy { .. } => {
                log::info!("refused a new code: over the server's allowance")
            }
            // The database writer logs each outage once; one line per refused request
            // would fill the log during one.
            AppError::StoreUnavailable(e) => log::debug!("{e}"),
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

impl From<InvalidStatsQuery> for AppError {
    fn from(e: InvalidStatsQuery) -> Self {
        AppError::BadRequest {
            message: e.to_string(),
            allowed: InvalidStatsQuery::ALLOWED,
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
            CodeError::NotRecorded(e) | CodeError::Unknown(e) => AppError::StoreUnavailable(e),
        }
    }
}

impl AppError {
    /// Extra headers the status calls for.
    fn decorate(&self, response: &mut HttpResponse) {
        if let AppError::RateLimited { retry_after } | AppError::ServerBusy { retry_after } = self
            && let Ok(value) = HeaderValue::from_str(&retry_after.to_string())
        {
            response.headers_mut().insert(RETRY_AFTER, value);
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        if e.is_write() {
            AppError::StoreUnavailable(e.to_string())
        } else {
            AppError::Internal(e.to_string())
        }
    }
}

/// An error answered as an HTML page (the pages and the image downloads).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct PageError {
    pub error: AppError,
    pub layout: Layout,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.error.status()
    }

    fn error_response(&self) -> HttpResponse {
        self.error.log();
        let (errcode, errmsg) = match self.error.errcode() {
            Some((code, msg)) => (Some(code), msg.to_string()),
            None => (None, String::new()),
        };
        let page = ErrorPage {
            layout: self.layout,
            status: self.error.status().as_u16(),
            title: self.error.title(),
            message: self.error.message(),
            hint: self.error.hint(),
            errcode,
            errmsg,
        };
        let mut response = render(self.error.status(), &page);
        self.error.decorate(&mut response);
        response
    }
}

/// An error answered as JSON (`/api/...`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ApiError(pub AppError);

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(error: E) -> Self {
        ApiError(error.into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.status()
    }

    fn error_response(&self) -> HttpResponse {
        self.0.log();
        let mut body = json!({
            "status": self.0.status().as_u16(),
            "error": self.0.message(),
            "hint": self.0.hint(),
        });
        if let (Some((code, msg)), Some(map)) = (self.0.errcode(), body.as_object_mut()) {
            map.insert("errcode".into(), json!(code));
            map.insert("errmsg".into(), json!(msg));
        }
        let mut response = HttpResponse::build(self.0.status()).json(body);
        self.0.decorate(&mut response);
        response
    }
}
