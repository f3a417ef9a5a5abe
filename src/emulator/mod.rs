//! An emulator of the WeChat endpoints scene-qr calls, served over real HTTP on loopback.
//!
//! Sandbox mode runs it in-process so a fresh clone works without an account; the tests run
//! it with injected faults (errcodes, delays, revoked tokens, odd content types, broken
//! bodies) and read its call counts. It behaves like the reference in `wechat-api.md`:
//! HTTP 200 with an `errcode` on failure, escaped slashes in JSON, tickets holding `+`, `/`
//! and `=`, a stable token shared until it expires, a new classic token on every call.

mod push;
mod state;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

pub use push::{Follower, SignedPush, scan_xml, sign_push, sign_push_now};
use state::TokenProblem;
pub use state::{Api, Emulator, EmulatorConfig, Fault, PushTarget, RecordedRequest};

/// Bytes in front of the URL inside a ticket. Chosen so that every ticket's base64 holds
/// `+` and `/` (as WeChat's do), which catches a page that forgets to URL-encode it.
const TICKET_PREFIX: [u8; 6] = [0xfb, 0xef, 0xbe, 0xff, 0xff, 0xff];

/// Starts the emulator on `listener` with one worker.
pub fn start(listener: TcpListener, emulator: Arc<Emulator>) -> std::io::Result<Server> {
    let state = web::Data::from(emulator);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/cgi-bin/token", web::get().to(token))
            .route("/cgi-bin/stable_token", web::post().to(stable_token))
            .route("/cgi-bin/qrcode/create", web::post().to(create))
            .route("/cgi-bin/showqrcode", web::get().to(show))
            .route("/cgi-bin/openapi/quota/get", web::post().to(quota))
            .route("/emulator/calls", web::get().to(calls))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}

/// What every handler does first: count, record, wait, and play an injected fault.
async fn arrive(
    emulator: &Emulator,
    api: Api,
    req: &HttpRequest,
    body: Option<Value>,
) -> Option<HttpResponse> {
    emulator.count(api);
    emulator.record(RecordedRequest {
        api,
        query: req.query_string().to_string(),
        body,
    });
    if let Some(delay) = emulator.delay(api) {
        actix_web::rt::time::sleep(delay).await;
    }
    emulator.next_fault(api).map(|fault| match fault {
        Fault::Errcode(code) => reply(emulator, &errcode(code)),
        Fault::HttpStatus(status) => {
            HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY))
                .content_type("text/html")
                .body("<html><body>upstream error</body></html>")
        }
        Fault::Garbage => HttpResponse::Ok()
            .content_type(emulator.content_type())
            .body("<html>not json"),
    })
}

/// A JSON reply the way WeChat writes it: status 200, slashes escaped.
fn reply(emulator: &Emulator, value: &Value) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(emulator.content_type())
        .body(value.to_string().replace('/', "\\/"))
}

fn errcode(code: i64) -> Value {
    let errmsg = match code {
        -1 => "system error",
        40001 => "invalid credential, access_token is invalid or not latest",
        40013 => "invalid appid",
        40014 => "invalid access_token",
        40125 => "invalid appsecret",
        40164 => "invalid ip 203.0.113.7, not in whitelist",
        42001 => "access_token expired",
        44002 => "empty post data",
        45009 => "reach max api daily quota limit",
        47001 => "data format error",
        76021 => "cgi_path not found",
        _ => "invalid args",
    };
    json!({ "errcode": code, "errmsg": format!("{errmsg} rid: 0000-emulator") })
}

fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn check_credentials(
    emulator: &Emulator,
    appid: Option<&str>,
    secret: Option<&str>,
) -> Option<Value> {
    if appid != Some(emulator.config.appid.as_str()) {
        Some(errcode(40013))
    } else if secret != Some(emulator.config.secret.as_str()) {
        Some(errcode(40125))
    } else {
        None
    }
}

async fn token(req: HttpRequest, emulator: web::Data<Emulator>) -> HttpResponse {
    if let Some(fault) = arrive(&emulator, Api::Token, &req, None).await {
        return fault;
    }
    if query_param(&req, "grant_type").as_deref() != Some("client_credential") {
        return reply(&emulator, &errcode(40002));
    }
    let appid = query_param(&req, "appid");
    let secret = query_param(&req, "secret");
    if let Some(problem) = check_credentials(&emulator, appid.as_deref(), secret.as_deref()) {
        return reply(&emulator, &problem);
    }
    let (token, expires_in) = emulator.mint_token();
    reply(
        &emulator,
        &json!({ "access_token": token, "expires_in": expires_in }),
    )
}

async fn stable_token(
    req: HttpRequest,
    body: web::Bytes,
    emulator: web::Data<Emulator>,
) -> HttpResponse {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    if let Some(fault) = arrive(&emulator, Api::StableToken, &req, parsed.clone()).await {
        return fault;
    }
    // The stable endpoint takes JSON only.
    let Some(body) = parsed else {
        return reply(&emulator, &errcode(47001));
    };
    if body.get("grant_type").and_then(Value::as_str) != Some("client_credential") {
        return reply(&emulator, &errcode(40002));
    }
    let appid = body.get("appid").and_then(Value::as_str);
    let secret = body.get("secret").and_then(Value::as_str);
    if let Some(problem) = check_credentials(&emulator, appid, secret) {
        return reply(&emulator, &problem);
    }
    let force = body
        .get("force_refresh")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (token, expires_in) = emulator.stable_token(force);
    reply(
        &emulator,
        &json!({ "access_token": token, "expires_in": expires_in }),
    )
}

async fn create(req: HttpRequest, body: web::Bytes, emulator: web::Data<Emulator>) -> HttpResponse {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    if let Some(fault) = arrive(&emulator, Api::QrcodeCreate, &req, parsed.clone()).await {
        return fault;
    }
    if let Some(refusal) = token_refusal(&emulator, &req) {
        return refusal;
    }
    let Some(body) = parsed else {
        return reply(
            &emulator,
            &errcode(if body.is_empty() { 44002 } else { 47001 }),
        );
    };
    match create_reply(&emulator, &body) {
        Some(answer) => {
            emulator.count_created();
            reply(&emulator, &answer)
        }
        None => reply(&emulator, &errcode(40097)),
    }
}

/// WeChat's answer to a call whose `access_token` is unknown, expired or revoked.
fn token_refusal(emulator: &Emulator, req: &HttpRequest) -> Option<HttpResponse> {
    let token = query_param(req, "access_token").unwrap_or_default();
    let errcode_of = match emulator.check_token(&token) {
        Ok(()) => return None,
        Err(TokenProblem::Unknown) => 40014,
        Err(TokenProblem::Expired) => 42001,
        Err(TokenProblem::Revoked) => 40001,
    };
    Some(reply(emulator, &errcode(errcode_of)))
}

/// The daily quota of `qrcode/create`, the one `cgi_path` asked about here.
const CREATE_DAILY_LIMIT: u64 = 100_000;

async fn quota(req: HttpRequest, body: web::Bytes, emulator: web::Data<Emulator>) -> HttpResponse {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    if let Some(fault) = arrive(&emulator, Api::QuotaGet, &req, parsed.clone()).await {
        return fault;
    }
    if let Some(refusal) = token_refusal(&emulator, &req) {
        return refusal;
    }
    let path = parsed
        .as_ref()
        .and_then(|body| body.get("cgi_path")?.as_str());
    if path != Some("/cgi-bin/qrcode/create") {
        return reply(&emulator, &errcode(76021));
    }
    let used = emulator.codes_created().min(CREATE_DAILY_LIMIT);
    reply(
        &emulator,
        &json!({
            "errcode": 0,
            "errmsg": "ok",
            "quota": {
                "daily_limit": CREATE_DAILY_LIMIT,
                "used": used,
                "remain": CREATE_DAILY_LIMIT - used,
            },
        }),
    )
}

/// Validates a `qrcode/create` body like WeChat does and answers with a ticket.
fn create_reply(emulator: &Emulator, body: &Value) -> Option<Value> {
    let action = body.get("action_name")?.as_str()?;
    let scene = body.get("action_info")?.get("scene")?;
    let scene_text = match action {
        "QR_SCENE" => {
            let id = scene.get("scene_id")?.as_u64()?;
            (1..=u64::from(u32::MAX))
                .contains(&id)
                .then(|| id.to_string())?
        }
        "QR_LIMIT_SCENE" => {
            let id = scene.get("scene_id")?.as_u64()?;
            (1..=100_000).contains(&id).then(|| id.to_string())?
        }
        "QR_STR_SCENE" | "QR_LIMIT_STR_SCENE" => {
            let s = scene.get("scene_str")?.as_str()?;
            (1..=64)
                .contains(&s.chars().count())
                .then(|| s.to_string())?
        }
        _ => return None,
    };
    let permanent = action.starts_with("QR_LIMIT");
    // A permanent scene always maps to the same code; a temporary request makes a new one.
    let sequence = if permanent {
        stable_hash(&format!("{action}:{scene_text}"))
    } else {
        emulator.next_sequence()
    };
    let url = format!("http://weixin.qq.com/q/{}", short_code(sequence));
    let ticket = mint_ticket(sequence, &url);
    if permanent {
        Some(json!({ "ticket": ticket, "url": url }))
    } else {
        // Left out, WeChat uses a very short default; too long, it caps at 30 days.
        let expire_seconds = body
            .get("expire_seconds")
            .and_then(Value::as_u64)
            .unwrap_or(30)
            .min(2_592_000);
        Some(json!({ "ticket": ticket, "expire_seconds": expire_seconds, "url": url }))
    }
}

/// Calls received so far, for benchmarks that run the emulator as its own process.
async fn calls(emulator: web::Data<Emulator>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "token": emulator.calls(Api::Token),
        "stable_token": emulator.calls(Api::StableToken),
        "qrcode_create": emulator.calls(Api::QrcodeCreate),
        "showqrcode": emulator.calls(Api::ShowQrcode),
        "quota_get": emulator.calls(Api::QuotaGet),
    }))
}

async fn show(req: HttpRequest, emulator: web::Data<Emulator>) -> HttpResponse {
    if let Some(fault) = arrive(&emulator, Api::ShowQrcode, &req, None).await {
        return fault;
    }
    match query_param(&req, "ticket").and_then(|t| showqrcode_image(&t)) {
        Some(png) => HttpResponse::Ok()
            .content_type("image/png")
            .insert_header(("Cache-Control", "max-age=604800"))
            .body(png),
        _ => HttpResponse::NotFound()
            .content_type("text/plain")
            .body("invalid ticket"),
    }
}

/// The image `showqrcode` answers for `ticket`, if it is one this emulator issued: what
/// sandbox mode serves from the service's own address, so that the code's image loads
/// wherever the service is reached, not only on the emulator's loopback port.
pub fn showqrcode_image(ticket: &str) -> Option<Vec<u8>> {
    crate::render::png(&ticket_url(ticket)?).ok()
}

/// A ticket is base64 of prefix, sequence and URL, as WeChat's embed the URL too; so
/// `showqrcode` needs no memory of the tickets it issued.
fn mint_ticket(sequence: u64, url: &str) -> String {
    let mut bytes = Vec::with_capacity(TICKET_PREFIX.len() + 8 + url.len() + 1);
    bytes.extend_from_slice(&TICKET_PREFIX);
    bytes.extend_from_slice(&sequence.to_be_bytes());
    bytes.extend_from_slice(url.as_bytes());
    // Make the length not a multiple of three, so the base64 ends in `=`.
    if bytes.len() % 3 == 0 {
        bytes.push(0);
    }
    BASE64.encode(bytes)
}

fn ticket_url(ticket: &str) -> Option<String> {
    let bytes = BASE64.decode(ticket).ok()?;
    let rest = bytes.strip_prefix(&TICKET_PREFIX[..])?.get(8..)?;
    let url = rest.strip_suffix(&[0]).unwrap_or(rest);
    String::from_utf8(url.to_vec()).ok()
}

fn short_code(sequence: u64) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut state = sequence;
    (0..22)
        .map(|_| {
            // splitmix64: every sequence number gives a different, random-looking code.
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ALPHABET[((z ^ (z >> 31)) % 62) as usize] as char
        })
        .collect()
}

/// FNV-1a: stable across runs, unlike std's randomly seeded hasher.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_hold_url_unsafe_characters_and_decode_back_to_their_url() {
        for sequence in [1, 2, 3, 99, 123_456] {
            let url = format!("http://weixin.qq.com/q/{}", short_code(sequence));
            let ticket = mint_ticket(sequence, &url);
            assert!(
                ticket.contains('+') && ticket.contains('/') && ticket.ends_with('='),
                "{ticket}"
            );
            assert_eq!(ticket_url(&ticket).as_deref(), Some(url.as_str()));
        }
    }
}
