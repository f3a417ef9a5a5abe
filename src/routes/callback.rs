//! `/wechat/callback`: the account's server URL. WeChat verifies it with a signed `GET`
//! and pushes follows and scans to it as signed (optionally encrypted) XML `POST`s.
//!
//! A push is answered `success` only once its event is committed, so an acknowledged scan
//! is never lost; anything else makes WeChat retry, and retries are stored once. Every push
//! is answered within [`ANSWER_WITHIN`], before WeChat stops waiting, and its query is
//! checked (signature, timestamp) before a byte of its body is read.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::body::{self, BodyError};
use crate::secret::Secret;
use crate::store::{Store, Stored, unix_now};
use crate::wechat::crypto::AesKey;
use crate::wechat::freshness::{PushFreshness, Stale};
use crate::wechat::push::{self, Push};
use crate::wechat::signature;

/// Largest push accepted: real ones are under 2 KiB.
pub const MAX_PUSH_BYTES: usize = 64 * 1024;

/// WeChat waits 5 s for an answer and then retries; an answer after that is wasted, and a
/// `success` it never saw makes it send the push again. So a push that is not read and
/// stored within this time is answered with an error (WeChat retries it) while there is
/// still time for the answer to arrive.
pub const ANSWER_WITHIN: Duration = Duration::from_millis(4_000);

/// How pushes are verified and decrypted.
pub struct CallbackConfig {
    pub token: Secret,
    pub aes_key: Option<AesKey>,
    /// Safe-mode messages name the AppID they are for; others are refused.
    pub appid: String,
}

/// The callback's state; `config` is `None` in live mode without `WECHAT_TOKEN`.
pub struct Callback {
    pub config: Option<CallbackConfig>,
    pub store: Store,
    /// Refuses old timestamps and replayed signed queries.
    pub freshness: PushFreshness,
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

/// The query WeChat signs, parsed once.
struct Signed {
    signature: String,
    timestamp: String,
    nonce: String,
    echostr: Option<String>,
    encrypt_type: Option<String>,
    msg_signature: Option<String>,
}

impl Signed {
    fn from_request(req: &HttpRequest) -> Self {
        let mut signed = Signed {
            signature: String::new(),
            timestamp: String::new(),
            nonce: String::new(),
            echostr: None,
            encrypt_type: None,
            msg_signature: None,
        };
        for (name, value) in form_urlencoded::parse(req.query_string().as_bytes()) {
            let value = value.into_owned();
            match name.as_ref() {
                "signature" => signed.signature = value,
                "timestamp" => signed.timestamp = value,
                "nonce" => signed.nonce = value,
                "echostr" => signed.echostr = Some(value),
                "encrypt_type" => signed.encrypt_type = Some(value),
                "msg_signature" => signed.msg_signature = Some(value),
                _ => {}
            }
        }
        signed
    }

    fn signs(&self, token: &Secret, extra: Option<&str>) -> bool {
        let mut parts = vec![token.expose(), self.timestamp.as_str(), self.nonce.as_str()];
        parts.extend(extra);
        let given = match extra {
            Some(_) => self.msg_signature.as_deref().unwrap_or_default(),
            None => self.signature.as_str(),
        };
        !given.is_empty() && signature::verify(given, &parts)
    }
}

/// The handshake WeChat makes when the server URL is saved.
pub async fn handshake(req: HttpRequest, callback: web::Data<Callback>) -> HttpResponse {
    let Some(config) = &callback.config else {
        return disabled();
    };
    let signed = Signed::from_request(&req);
    match &signed.echostr {
        Some(echostr) if signed.signs(&config.token, None) => plain(StatusCode::OK, echostr),
        _ => plain(StatusCode::FORBIDDEN, "signature does not match"),
    }
}

pub async fn receive(
    req: HttpRequest,
    payload: web::Payload,
    callback: web::Data<Callback>,
) -> HttpResponse {
    let started = Instant::now();
    let Some(config) = &callback.config else {
        return disabled();
    };
    // The query alone says whether the push can be ours: a stranger's push is refused
    // without waiting for its body.
    let signed = Signed::from_request(&req);
    if !signed.signs(&config.token, None) {
        return forbidden();
    }
    if let Err(stale) = callback
        .freshness
        .check_timestamp(&signed.timestamp, unix_now())
    {
        return refused_stale(&stale);
    }
    let body = match body::read(&req, payload, MAX_PUSH_BYTES, ANSWER_WITHIN).await {
        Ok(body) => body,
        Err(e) => return unreadable(&e),
    };
    if let Err(stale) = callback
        .freshness
        .claim(&signed.timestamp, &signed.nonce, &body)
    {
        return refused_stale(&stale);
    }
    let fields = match open(config, &signed, &body) {
        Ok(fields) => fields,
        Err(Refusal::Signature) => return forbidden(),
        Err(Refusal::Malformed(reason)) => return bad_push(&reason),
    };
    let event = match push::interpret(&fields) {
        Ok(Push::Event(event)) => event,
        Ok(Push::Ignored { msg_type }) => {
            metrics::counter!("scene_qr_callback_events_total", "event" => "other").increment(1);
            log::debug!("push of type {msg_type} acknowledged, not stored");
            return plain(StatusCode::OK, "success");
        }
        Err(e) => return bad_push(&e.to_string()),
    };
    let kind = event.kind.as_str();
    metrics::counter!("scene_qr_callback_events_total", "event" => kind).increment(1);
    let left = ANSWER_WITHIN.saturating_sub(started.elapsed());
    let stored = actix_web::rt::time::timeout(left, callback.store.store_event(event)).await;
    let outcome = match &stored {
        Ok(Ok(Stored::New)) => "new",
        Ok(Ok(Stored::Duplicate)) => "duplicate",
        Ok(Err(_)) => "failed",
        Err(_) => "late",
    };
    metrics::counter!("scene_qr_stored_events_total", "outcome" => outcome).increment(1);
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

/// Why a push was refused before its content was read.
enum Refusal {
    /// 403: not signed with our Token.
    Signature,
    /// 400: signed, but not a push we can read.
    Malformed(String),
}

/// The push's fields, decrypted (and their `msg_signature` checked) in safe mode; the
/// query's own signature was checked before the body was read.
fn open(config: &CallbackConfig, signed: &Signed, body: &[u8]) -> Result<push::Fields, Refusal> {
    let malformed = |e: &dyn std::fmt::Display| Refusal::Malformed(e.to_string());
    let safe_mode = signed.encrypt_type.as_deref() == Some("aes");
    if !safe_mode {
        // The query's signature, checked before the body was read, is all there is.
        return push::parse_fields(body).map_err(|e| malformed(&e));
    }
    let Some(key) = &config.aes_key else {
        return Err(malformed(
            &"encrypt_type=aes, but no WECHAT_ENCODING_AES_KEY is configured",
        ));
    };
    let envelope = push::parse_fields(body).map_err(|e| malformed(&e))?;
    let Some(encrypted) = envelope.get("Encrypt").filter(|e| !e.is_empty()) else {
        return Err(malformed(&"encrypt_type=aes, but the push has no Encrypt"));
    };
    if !signed.signs(&config.token, Some(encrypted)) {
        return Err(Refusal::Signature);
    }
    let inner = key
        .decrypt(encrypted, &config.appid)
        .map_err(|e| malformed(&e))?;
    push::parse_fields(inner.as_bytes()).map_err(|e| malformed(&e))
}

fn forbidden() -> HttpResponse {
    log::warn!("refused a push to /wechat/callback: the signature does not match");
    plain(StatusCode::FORBIDDEN, "signature does not match")
}

fn refused_stale(stale: &Stale) -> HttpResponse {
    log::warn!("refused a push to /wechat/callback: {stale}");
    plain(StatusCode::FORBIDDEN, &stale.to_string())
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

fn bad_push(reason: &str) -> HttpResponse {
    log::warn!("refused a push to /wechat/callback: {reason}");
    plain(StatusCode::BAD_REQUEST, reason)
}
