//! Reading request bodies within a size and a time limit.
//!
//! actix times out a request's head but not its body: a client that announces a body and
//! never sends it would hold its connection (and a file descriptor) for as long as it
//! likes. Every handler that reads a body reads it through [`read`].

use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::web::{Bytes, Payload};

use crate::error::AppError;

/// Time a form's body may take: a browser sends it with the request.
pub const FORM_BODY_WITHIN: Duration = Duration::from_secs(10);
/// Largest form accepted: the forms hold a scene, a label and a path.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// 413.
    #[error("the body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// 408.
    #[error("the body did not arrive within {} s", .within.as_secs_f32())]
    TooSlow { within: Duration },
    /// 400: the connection broke, or the body was not what its headers said.
    #[error("the body could not be read: {0}")]
    Broken(String),
}

/// Reads the whole body, refusing it at once when its declared length is over `limit`.
pub async fn read(
    req: &HttpRequest,
    payload: Payload,
    limit: usize,
    within: Duration,
) -> Result<Bytes, BodyError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    match actix_web::rt::time::timeout(within, payload.to_bytes_limited(limit)).await {
        Err(_) => Err(BodyError::TooSlow { within }),
        Ok(Err(_)) => Err(BodyError::TooLarge { limit }),
        Ok(Ok(Err(e))) => Err(BodyError::Broken(e.to_string())),
        Ok(Ok(Ok(body))) => Ok(body),
    }
}

/// For the forms' pages.
impl From<BodyError> for AppError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge { limit } => AppError::TooLarge { limit },
            BodyError::TooSlow { within } => AppError::TooSlow { within },
            BodyError::Broken(message) => AppError::BadRequest {
                message,
                allowed: "a form sent whole with its request",
            },
        }
    }
}
