//! The emulator's memory: issued tokens, call counts, recorded requests and injected faults.
//! Tests hold an `Arc<Emulator>` and steer it directly.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::Value;

use crate::wechat::crypto::AesKey;

/// The emulated endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    Token,
    StableToken,
    QrcodeCreate,
    ShowQrcode,
    QuotaGet,
}

impl Api {
    fn index(self) -> usize {
        match self {
            Api::Token => 0,
            Api::StableToken => 1,
            Api::QrcodeCreate => 2,
            Api::ShowQrcode => 3,
            Api::QuotaGet => 4,
        }
    }
}

/// A misbehaviour to play on the next call(s) of an endpoint.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer HTTP 200 with `{"errcode":N,"errmsg":"…"}`, as WeChat does.
    Errcode(i64),
    /// Answer with this HTTP status and an HTML body.
    HttpStatus(u16),
    /// Answer HTTP 200 with a body that is not JSON.
    Garbage,
}

/// One request as the emulator received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub api: Api,
    pub query: String,
    /// The JSON body, when there was one.
    pub body: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub appid: String,
    pub secret: String,
    /// `expires_in` of new tokens, in seconds (WeChat: 7200).
    pub token_expires_in: u32,
}

impl EmulatorConfig {
    /// Credentials made up on the spot, for sandbox mode.
    pub fn random() -> Self {
        Self {
            appid: format!("wxsandbox{}", random_text(9).to_lowercase()),
            secret: random_text(32),
            token_expires_in: 7200,
        }
    }
}

pub(super) struct TokenRecord {
    pub expires: Instant,
    pub revoked: bool,
}

/// Why a token was refused, as WeChat's errcode.
pub(super) enum TokenProblem {
    Unknown,
    Expired,
    Revoked,
}

#[derive(Default)]
struct Inner {
    faults: HashMap<Api, VecDeque<Fault>>,
    delays: HashMap<Api, Duration>,
    content_type: Option<String>,
    tokens: HashMap<String, TokenRecord>,
    /// What the stable endpoint hands out while it is valid.
    stable_current: Option<String>,
    token_expires_in: Option<u32>,
    requests: Vec<RecordedRequest>,
    /// Off for long benchmark runs, where the log would only grow.
    no_request_log: bool,
    push_target: Option<PushTarget>,
}

/// Where and how the emulator pushes events: the account's server configuration.
#[derive(Debug, Clone)]
pub struct PushTarget {
    /// The service's `/wechat/callback` URL.
    pub url: String,
    pub token: String,
    /// Safe mode when set.
    pub aes_key: Option<AesKey>,
    pub appid: String,
}

pub struct Emulator {
    pub config: EmulatorConfig,
    calls: [AtomicUsize; 5],
    /// Codes created (tickets issued), what the quota counts as used.
    created: AtomicU64,
    sequence: AtomicU64,
    // A std mutex: held for map look-ups only, never across an `.await`.
    inner: Mutex<Inner>,
}

impl Emulator {
    pub fn new(config: EmulatorConfig) -> Self {
        Self {
            config,
            calls: Default::default(),
            created: AtomicU64::new(0),
            sequence: AtomicU64::new(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many calls `api` has received.
    /// Codes created so far: the `used` of the `qrcode/create` quota.
    pub fn codes_created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    pub(super) fn count_created(&self) {
        self.created.fetch_add(1, Ordering::Relaxed);
    }

    pub fn calls(&self, api: Api) -> usize {
        self.calls[api.index()].load(Ordering::SeqCst)
    }

    /// Calls to the token endpoints, classic and stable together.
    pub fn token_calls(&self) -> usize {
        self.calls(Api::Token) + self.calls(Api::StableToken)
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self, api: Api) -> Vec<RecordedRequest> {
        self.inner()
            .requests
            .iter()
            .filter(|r| r.api == api)
            .cloned()
            .collect()
    }

    /// Plays `fault` on the next `times` calls of `api`.
    pub fn fail_next(&self, api: Api, fault: Fault, times: usize) {
        let mut inner = self.inner();
        let queue = inner.faults.entry(api).or_default();
        queue.extend(std::iter::repeat_n(fault, times));
    }

    /// Makes every call of `api` wait this long before answering.
    pub fn set_delay(&self, api: Api, delay: Duration) {
        self.inner().delays.insert(api, delay);
    }

    /// The `Content-Type` of JSON replies (default `application/json; encoding=utf-8`).
    pub fn set_content_type(&self, content_type: &str) {
        self.inner().content_type = Some(content_type.to_string());
    }

    /// `expires_in` of tokens issued from now on.
    pub fn set_token_expires_in(&self, seconds: u32) {
        self.inner().token_expires_in = Some(seconds);
    }

    /// Kills every token issued so far, as a forced refresh by another system would. With
    /// `reissue`, the stable endpoint moves on to a new token at once; without, it keeps
    /// handing out the dead one until asked with `force_refresh`.
    pub fn revoke_tokens(&self, reissue: bool) {
        let mut inner = self.inner();
        for record in inner.tokens.values_mut() {
            record.revoked = true;
        }
        if reissue {
            inner.stable_current = None;
        }
    }

    /// Points the emulator's pushes at a service.
    pub fn set_push_target(&self, target: PushTarget) {
        self.inner().push_target = Some(target);
    }

    pub fn push_target(&self) -> Option<PushTarget> {
        self.inner().push_target.clone()
    }

    /// Every token this emulator has issued.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.inner().tokens.keys().cloned().collect()
    }

    pub(super) fn count(&self, api: Api) {
        self.calls[api.index()].fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn record(&self, request: RecordedRequest) {
        let mut inner = self.inner();
        if !inner.no_request_log {
            inner.requests.push(request);
        }
    }

    /// Whether to keep every request for [`Emulator::requests`] (on by default).
    pub fn keep_request_log(&self, keep: bool) {
        self.inner().no_request_log = !keep;
    }

    pub(super) fn next_fault(&self, api: Api) -> Option<Fault> {
        self.inner()
            .faults
            .get_mut(&api)
            .and_then(VecDeque::pop_front)
    }

    pub(super) fn delay(&self, api: Api) -> Option<Duration> {
        self.inner().delays.get(&api).copied()
    }

    pub(super) fn content_type(&self) -> String {
        self.inner()
            .content_type
            .clone()
            .unwrap_or_else(|| "application/json; encoding=utf-8".into())
    }

    pub(super) fn next_sequence(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::SeqCst)
    }

    /// Classic endpoint: a new token on every call. Returns the token and its `expires_in`.
    pub(super) fn mint_token(&self) -> (String, u32) {
        let mut inner = self.inner();
        let expires_in = inner
            .token_expires_in
            .unwrap_or(self.config.token_expires_in);
        let token = random_token();
        inner.tokens.insert(
            token.clone(),
            TokenRecord {
                expires: Instant::now() + Duration::from_secs(expires_in.into()),
                revoked: false,
            },
        );
        (token, expires_in)
    }

    /// Stable endpoint: the current token while it is valid, a new one when it has expired,
    /// when there is none, or when `force_refresh` asks for one (which kills the old one).
    pub(super) fn stable_token(&self, force_refresh: bool) -> (String, u32) {
        {
            let mut inner = self.inner();
            let current = inner.stable_current.clone();
            if let Some(current) = current {
                let now = Instant::now();
                let remaining = inner
                    .tokens
                    .get(&current)
                    .map(|r| r.expires.saturating_duration_since(now))
                    .unwrap_or_default();
                if force_refresh {
                    if let Some(record) = inner.tokens.get_mut(&current) {
                        record.revoked = true;
                    }
                } else if !remaining.is_zero() {
                    return (current, remaining.as_secs().max(1) as u32);
                }
            }
        }
        let (token, expires_in) = self.mint_token();
        self.inner().stable_current = Some(token.clone());
        (token, expires_in)
    }

    pub(super) fn check_token(&self, token: &str) -> Result<(), TokenProblem> {
        let inner = self.inner();
        match inner.tokens.get(token) {
            None => Err(TokenProblem::Unknown),
            Some(record) if record.revoked => Err(TokenProblem::Revoked),
            Some(record) if record.expires <= Instant::now() => Err(TokenProblem::Expired),
            Some(_) => Ok(()),
        }
    }
}

pub(super) fn random_text(len: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Shaped like WeChat's: long, with `_` and `-` among letters and digits.
fn random_token() -> String {
    format!(
        "{}_{}-{}",
        random_text(60),
        random_text(40),
        random_text(30)
    )
}
