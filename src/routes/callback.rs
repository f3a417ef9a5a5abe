//! `/wechat/callback`: the account's server URL. WeChat verifies it with a signed `GET`
//! and pushes follows and scans to it as signed (optionally encrypted) XML `POST`s.
//!
//! A push is answered `success` only once its event is committed, so an acknowledged scan
//! is never lost; anything else makes WeChat retry, and retries are stored once. Every push
//! is answered within [`ANSWER_WITHIN`], before WeChat stops waiting, and its query is
//! checked (signature, timestamp) before a byte of its body is read. The protocol itself
//! lives in [`crate::wechat::push`]; this route reads, stores and answers.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::body::{self, BodyError};
use crate::store::{Store, StoreError, Stored, unix_now};
use crate::telemetry::metric_names::{CALLBACK_EVENTS, STORED_EVENTS};
use crate::wechat::push::{MAX_PUSH_BYTES, Push, PushReceiver, Refusal};

/// WeChat waits 5 s for an answer and then retries; an answer after that is wasted, and a
/// `success` it never saw makes it send the push again. So a push that is not read and
/// stored within this time is answered with an error (WeChat retries it) while there is
/// still time for the answer to arrive.
pub const ANSWER_WITHIN: Duration = Duration::from_millis(4_000);

/// The callback's state; `receiver` is `None` in live mode without `WECHAT_TOKEN`.
pub struct Callback {
    pub receiver: Option<PushReceiver>,
    pub store: Store,
}

fn plain(status: StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(text.to_string())
}

fn disabled() -> HttpResponse {
    log::info!("a request reached /wechat/callback, which is off: WECHAT_TOKEN is not set");
    plain(
        StatusCode::NOT_FOUND,
        "the WeChat callback is not configured on this server",
    )
}

/// The handshake WeChat makes when the server URL is saved.
pub async fn handshake(req: HttpRequest, callback: web::Data<Callback>) -> HttpResponse {
    let Some(receiver) = &callback.receiver else {
        return disabled();
    };
    match receiver.handshake(req.query_string()) {
        Some(echostr) => plain(StatusCode::OK, &echostr),
        None => plain(StatusCode::FORBIDDEN, "signature does not match"),
    }
}

pub async fn receive(
    req: HttpRequest,
    payload: web::Payload,
    callback: web::Data<Callback>,
) -> HttpResponse {
    let started = Instant::now();
    let Some(receiver) = &callback.receiver else {
        return disabled();
    };
    let signed = match receiver.admit(req.query_string(), unix_now()) {
        Ok(signed) => signed,
        Err(refusal) => return refused(&refusal),
    };
    let body = match body::read(&req, payload, MAX_PUSH_BYTES, ANSWER_WITHIN).await {
        Ok(body) => body,
        Err(e) => return unreadable(&e),
    };
    let event = match receiver.open(&signed, &body) {
        Ok(Push::Event(event)) => event,
        Ok(Push::Ignored { msg_type }) => {
            metrics::counter!(CALLBACK_EVENTS, "event" => "other").increment(1);
            log::debug!("push of type {msg_type} acknowledged, not stored");
            return plain(StatusCode::OK, "success");
        }
        Err(refusal) => return refused(&refusal),
    };
    let kind = event.kind.as_str();
    metrics::counter!(CALLBACK_EVENTS, "event" => kind).increment(1);
    let left = ANSWER_WITHIN.saturating_sub(started.elapsed());
    let stored = actix_web::rt::time::timeout(left, callback.store.store_event(event)).await;
    answer(kind, stored)
}

/// What WeChat is told once the event's fate is known. A passive reply to the user (a
/// message for that scene) would be built here, from the stored event: only after the
/// commit, and only for a push that is acknowledged.
fn answer(
    kind: &str,
    stored: Result<Result<Stored, StoreError>, impl std::fmt::Debug>,
) -> HttpResponse {
    let outcome = match &stored {
        Ok(Ok(Stored::New)) => "new",
        Ok(Ok(Stored::Duplicate)) => "duplicate",
        Ok(Err(_)) => "failed",
        Err(_) => "late",
    };
    metrics::counter!(STORED_EVENTS, "outcome" => outcome).increment(1);
    match stored {
        Ok(Ok(Stored::New)) => {
            log::debug!("stored a {kind} event");
            plain(StatusCode::OK, "success")
        }
        Ok(Ok(Stored::Duplicate)) => {
            log::debug!("a retried {kind} push was already stored");
            plain(StatusCode::OK, "success")
        }
        // Not `success`: WeChat retries the push, so the scan is not lost. The database
        // writer logs each outage once; a line per push would flood the log during one.
        Ok(Err(e)) => {
            log::debug!("a {kind} push was not stored: {e}");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the event could not be stored; WeChat will retry",
            )
        }
        // The write may still be committed; WeChat's retry will then find it stored.
        Err(_) => {
            log::debug!("a {kind} push was not stored within {ANSWER_WITHIN:?}");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the event was not stored in time; WeChat will retry",
            )
        }
    }
}

fn refused(refusal: &Refusal) -> HttpResponse {
    log::warn!("refused a push to /wechat/callback: {refusal}");
    let status = match refusal {
        Refusal::Signature | Refusal::Stale(_) => StatusCode::FORBIDDEN,
        Refusal::Malformed(_) => StatusCode::BAD_REQUEST,
    };
    plain(status, &refusal.to_string())
}

fn unreadable(error: &BodyError) -> HttpResponse {
    log::warn!("refused a push to /wechat/callback: {error}");
    let status = match error {
        BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        BodyError::TooSlow { .. } => StatusCode::REQUEST_TIMEOUT,
        BodyError::Broken(_) => StatusCode::BAD_REQUEST,
    };
    plain(status, &error.to_string())
}
