//! The account's budgets for tools: `GET /api/status` says how many of the account's
//! 100,000 permanent codes are used, what is left of today's `qrcode/create` quota, and when
//! the latest event arrived (a WeChat that stopped calling shows here first).

use actix_web::{HttpResponse, web};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::AppState;
use crate::codes::WorkerCodes;
use crate::error::AppError;
use crate::wechat::Quota;

/// Permanent codes an account may ever hold.
const PERMANENT_CODES_LIMIT: u64 = 100_000;

#[derive(Serialize)]
struct StatusJson {
    permanent_codes_used: u64,
    permanent_codes_limit: u64,
    /// `null` when WeChat could not be asked; `create_quota_error` then says why.
    create_quota: Option<QuotaJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    create_quota_error: Option<String>,
    /// RFC 3339, UTC; `null` before the first event.
    last_event_received_at: Option<String>,
}

#[derive(Serialize)]
struct QuotaJson {
    daily_limit: u64,
    used: u64,
    remain: u64,
}

impl From<Quota> for QuotaJson {
    fn from(quota: Quota) -> Self {
        Self {
            daily_limit: quota.daily_limit,
            used: quota.used,
            remain: quota.remain,
        }
    }
}

/// A failure of WeChat leaves the rest of the status worth showing: it is reported in
/// the answer, not as the answer.
pub async fn json(
    state: web::Data<AppState>,
    codes: web::Data<WorkerCodes>,
) -> Result<HttpResponse, AppError> {
    let permanent_codes_used = state.store.permanent_codes_used().await?;
    let last_event = state.store.last_event_received_at().await?;
    let (create_quota, create_quota_error) = match codes.create_quota().await {
        Ok(quota) => (Some(QuotaJson::from(quota)), None),
        Err(e) => {
            let reason = AppError::from(e).to_string();
            log::warn!("today's create quota could not be read: {reason}");
            (None, Some(reason))
        }
    };
    Ok(HttpResponse::Ok().json(StatusJson {
        permanent_codes_used,
        permanent_codes_limit: PERMANENT_CODES_LIMIT,
        create_quota,
        create_quota_error,
        last_event_received_at: last_event
            .and_then(|at| OffsetDateTime::from_unix_timestamp(at).ok())
            .and_then(|at| at.format(&Rfc3339).ok()),
    }))
}
