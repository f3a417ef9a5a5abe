//! The account's budgets: `GET /status` for staff and `GET /api/status` for tools say how
//! many of the account's 100,000 permanent codes are used, what is left of today's
//! `qrcode/create` quota, how many temporary codes expire within a week, and when the
//! latest event arrived (a WeChat that stopped calling shows here first).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::AppState;
use super::stats::local_time;
use crate::codes::WorkerCodes;
use crate::error::AppError;
use crate::pages::{self, StatusPage, offset_label};
use crate::wechat::{FORCE_REFRESHES_PER_DAY, Quota};

/// Permanent codes an account may ever hold.
const PERMANENT_CODES_LIMIT: u64 = 100_000;

/// Token errors are counted over the last day.
const TOKEN_ERRORS_WITHIN: Duration = Duration::from_secs(86_400);

/// Temporary codes expiring within this are counted as expiring soon.
const EXPIRING_WITHIN: Duration = Duration::from_secs(7 * 86_400);

/// What both answers show.
struct AccountStatus {
    permanent_codes_used: u64,
    create_quota: Result<Quota, String>,
    expiring_soon: u64,
    /// Unix seconds.
    last_event_received_at: Option<i64>,
    /// Access tokens WeChat rejected in the last 24 h, on this replica.
    token_errors: usize,
    /// Forced refreshes of the token spent today, by every replica (of 20).
    forced_refreshes: u32,
}

/// A failure of WeChat leaves the rest of the status worth showing: it is reported in
/// the answer, not as the answer.
async fn gather(state: &AppState, codes: &WorkerCodes) -> Result<AccountStatus, AppError> {
    let create_quota = codes.create_quota().await.map_err(|e| {
        let reason = AppError::from(e).to_string();
        log::warn!("today's create quota could not be read: {reason}");
        reason
    });
    Ok(AccountStatus {
        permanent_codes_used: state.store.permanent_codes_used().await?,
        create_quota,
        expiring_soon: state
            .store
            .temporary_codes_expiring(EXPIRING_WITHIN)
            .await?,
        last_event_received_at: state.store.last_event_received_at().await?,
        token_errors: state.codes.token_rejections_within(TOKEN_ERRORS_WITHIN),
        forced_refreshes: state.codes.forced_refreshes_today().await?,
    })
}

pub async fn page(
    state: web::Data<AppState>,
    codes: web::Data<WorkerCodes>,
) -> Result<HttpResponse, AppError> {
    let status = gather(&state, &codes).await?;
    let (quota, quota_error) = match status.create_quota {
        Ok(quota) => (Some(quota), None),
        Err(reason) => (None, Some(reason)),
    };
    let page = StatusPage {
        layout: state.layout,
        permanent_used: status.permanent_codes_used,
        permanent_limit: PERMANENT_CODES_LIMIT,
        permanent_left: PERMANENT_CODES_LIMIT.saturating_sub(status.permanent_codes_used),
        quota,
        quota_error,
        expiring_soon: status.expiring_soon,
        last_event: local_time(status.last_event_received_at, state.utc_offset),
        token_errors: status.token_errors,
        forced_refreshes: status.forced_refreshes,
        forced_refreshes_limit: FORCE_REFRESHES_PER_DAY,
        offset: offset_label(state.utc_offset),
    };
    Ok(pages::render(StatusCode::OK, &page))
}

#[derive(Serialize)]
struct StatusJson {
    permanent_codes_used: u64,
    permanent_codes_limit: u64,
    /// `null` when WeChat could not be asked; `create_quota_error` then says why.
    create_quota: Option<Quota>,
    #[serde(skip_serializing_if = "Option::is_none")]
    create_quota_error: Option<String>,
    temporary_codes_expiring_within_7_days: u64,
    /// RFC 3339, UTC; `null` before the first event.
    last_event_received_at: Option<String>,
    token: TokenJson,
}

#[derive(Serialize)]
struct TokenJson {
    /// Rejected by WeChat in the last 24 h, on the replica that answered.
    errors_last_24h: usize,
    /// Spent today (WeChat's day, from midnight UTC+8), by every replica.
    forced_refreshes_today: u32,
    forced_refreshes_limit: u32,
}

pub async fn json(
    state: web::Data<AppState>,
    codes: web::Data<WorkerCodes>,
) -> Result<HttpResponse, AppError> {
    let status = gather(&state, &codes).await?;
    let (create_quota, create_quota_error) = match status.create_quota {
        Ok(quota) => (Some(quota), None),
        Err(reason) => (None, Some(reason)),
    };
    Ok(HttpResponse::Ok().json(StatusJson {
        permanent_codes_used: status.permanent_codes_used,
        permanent_codes_limit: PERMANENT_CODES_LIMIT,
        create_quota,
        create_quota_error,
        temporary_codes_expiring_within_7_days: status.expiring_soon,
        last_event_received_at: status
            .last_event_received_at
            .and_then(|at| OffsetDateTime::from_unix_timestamp(at).ok())
            .and_then(|at| at.format(&Rfc3339).ok()),
        token: TokenJson {
            errors_last_24h: status.token_errors,
            forced_refreshes_today: status.forced_refreshes,
            forced_refreshes_limit: FORCE_REFRESHES_PER_DAY,
        },
    }))
}
