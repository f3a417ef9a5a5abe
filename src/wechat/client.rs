//! The WeChat API client: one method per endpoint, wire formats private to this file.
//!
//! One client per actix worker: `awc::Client` holds `Rc`s and is not `Send`, and a client
//! per worker also gives each worker its own keep-alive connection pool, so no lock is
//! shared between workers on the way to WeChat.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::domain::{CodeRequest, Kind, Scene};
use crate::secret::Secret;
use crate::telemetry::metric_names::{UPSTREAM_CALL_DURATION, UPSTREAM_CALLS};

/// How access tokens are obtained (WECHAT_TOKEN_ENDPOINT). The stable endpoint hands back
/// the account's current token, so other systems sharing the AppID keep theirs; the
/// classic one issues a new token, which ends the one they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenEndpoint {
    /// POST /cgi-bin/stable_token
    Stable,
    /// GET /cgi-bin/token
    Classic,
}

/// Replies from WeChat are small (a token, a ticket); anything bigger is not a reply we know.
const MAX_REPLY_BYTES: usize = 64 * 1024;

/// Concurrent connections a worker may open to WeChat. Cold starts request many distinct
/// scenes at once; a pool this wide keeps them from queuing behind one another.
const CONNECTIONS_PER_WORKER: usize = 256;

/// What every worker needs to build its client: cheap to clone, `Send`.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub api_base: String,
    pub appid: String,
    pub secret: Secret,
    pub token_endpoint: TokenEndpoint,
    pub timeout: Duration,
}

pub struct WechatClient {
    http: awc::Client,
    config: UpstreamConfig,
}

/// The endpoints called, for messages and logs (never with their query strings, which carry
/// the token or the secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Token,
    StableToken,
    QrcodeCreate,
    QuotaGet,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Token => "/cgi-bin/token",
            Endpoint::StableToken => "/cgi-bin/stable_token",
            Endpoint::QrcodeCreate => "/cgi-bin/qrcode/create",
            Endpoint::QuotaGet => "/cgi-bin/openapi/quota/get",
        }
    }
}

/// A call to WeChat that did not give what was asked. `Clone + Send + Sync`, so it can cross
/// moka's single-flight boundary and reach every request that waited on the call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    #[error("WeChat {endpoint} answered errcode {errcode} ({errmsg})")]
    Rejected {
        endpoint: Endpoint,
        errcode: i64,
        errmsg: String,
    },
    #[error("could not reach WeChat {endpoint}: {reason}")]
    Unreachable { endpoint: Endpoint, reason: String },
    #[error("WeChat {endpoint} did not answer within {} ms", .after.as_millis())]
    Timeout { endpoint: Endpoint, after: Duration },
    #[error("WeChat {endpoint} answered HTTP {status}")]
    BadStatus { endpoint: Endpoint, status: u16 },
    #[error("WeChat {endpoint} sent a reply that is not the expected JSON ({reason})")]
    BadReply { endpoint: Endpoint, reason: String },
}

impl UpstreamError {
    /// WeChat errcodes meaning "this access token is no good": get another, retry once.
    pub fn is_token_rejected(&self) -> bool {
        matches!(
            self,
            UpstreamError::Rejected {
                errcode: 40001 | 40014 | 42001,
                ..
            }
        )
    }
}

/// An access token. A credential: `Debug` hides it and it has no `Display`. Two tokens are
/// equal when their values are, whatever lifetime each came with.
#[derive(Clone)]
pub struct AccessToken {
    value: Arc<str>,
    /// How long this process may use it: WeChat's `expires_in` less a safety margin.
    pub usable_for: Duration,
}

impl AccessToken {
    pub fn new(value: &str, expires_in: Duration) -> Self {
        // Renew before WeChat does: a token used in its last seconds can die in flight.
        // Five minutes, or half the lifetime when WeChat gives less than ten.
        let margin = Duration::from_secs(300).min(expires_in / 2);
        Self {
            value: Arc::from(value),
            usable_for: expires_in - margin,
        }
    }

    /// A token stored by another process, usable for `usable_for` more (its margin taken
    /// already).
    pub fn shared(value: &str, usable_for: Duration) -> Self {
        Self {
            value: Arc::from(value),
            usable_for,
        }
    }

    /// The value, for the request that carries it and for the store that shares it with
    /// other replicas; never for a message or a log line.
    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl PartialEq for AccessToken {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Eq for AccessToken {}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([redacted])")
    }
}

/// The reply to `qrcode/create`.
#[derive(Debug, Clone)]
pub struct CreatedCode {
    pub ticket: String,
    pub url: String,
    /// Lifetime WeChat granted (temporary codes only).
    pub expire_seconds: Option<u32>,
}

/// Today's quota of one API, as WeChat counts it (and as `/api/status` shows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Quota {
    pub daily_limit: u64,
    pub used: u64,
    pub remain: u64,
}

#[derive(Deserialize)]
struct QuotaReply {
    quota: Quota,
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    expires_in: u64,
}

#[derive(Deserialize)]
struct CreateReply {
    ticket: String,
    url: String,
    expire_seconds: Option<u32>,
}

impl WechatClient {
    pub fn new(config: UpstreamConfig) -> Self {
        let connector = awc::Connector::new()
            .limit(CONNECTIONS_PER_WORKER)
            .timeout(config.timeout);
        let http = awc::Client::builder()
            .connector(connector)
            .timeout(config.timeout)
            .finish();
        Self { http, config }
    }

    /// How long a call may take before it is given up.
    pub fn timeout(&self) -> Duration {
        self.config.timeout
    }

    pub fn token_endpoint(&self) -> TokenEndpoint {
        self.config.token_endpoint
    }

    /// Gets an access token. `force_refresh` (stable endpoint only) mints a new one and kills
    /// the current one for every system sharing the AppID: WeChat allows it 20 times a day.
    pub async fn fetch_token(&self, force_refresh: bool) -> Result<AccessToken, UpstreamError> {
        let reply: TokenReply = match self.config.token_endpoint {
            TokenEndpoint::Stable => {
                let endpoint = Endpoint::StableToken;
                let body = json!({
                    "grant_type": "client_credential",
                    "appid": self.config.appid,
                    "secret": self.config.secret.expose(),
                    "force_refresh": force_refresh,
                });
                self.call(
                    endpoint,
                    self.http.post(self.url(endpoint, &[])),
                    Some(body),
                )
                .await?
            }
            TokenEndpoint::Classic => {
                let endpoint = Endpoint::Token;
                let query = [
                    ("grant_type", "client_credential"),
                    ("appid", self.config.appid.as_str()),
                    ("secret", self.config.secret.expose()),
                ];
                self.call(endpoint, self.http.get(self.url(endpoint, &query)), None)
                    .await?
            }
        };
        if reply.access_token.is_empty() || reply.expires_in == 0 {
            return Err(UpstreamError::BadReply {
                endpoint: self.token_endpoint_name(),
                reason: "empty access_token or expires_in".into(),
            });
        }
        Ok(AccessToken::new(
            &reply.access_token,
            Duration::from_secs(reply.expires_in),
        ))
    }

    /// Creates the ticket for one code.
    pub async fn create_qrcode(
        &self,
        token: &AccessToken,
        code: &CodeRequest,
    ) -> Result<CreatedCode, UpstreamError> {
        let endpoint = Endpoint::QrcodeCreate;
        let url = self.url(endpoint, &[("access_token", token.expose())]);
        let reply: CreateReply = self
            .call(endpoint, self.http.post(url), Some(create_body(code)))
            .await
            .map_err(|e| redact(e, token.expose()))?;
        if reply.ticket.is_empty() || reply.url.is_empty() {
            return Err(UpstreamError::BadReply {
                endpoint,
                reason: "empty ticket or url".into(),
            });
        }
        Ok(CreatedCode {
            ticket: reply.ticket,
            url: reply.url,
            expire_seconds: reply.expire_seconds,
        })
    }

    /// Today's quota of `qrcode/create` (`openapi/quota/get`).
    pub async fn create_quota(&self, token: &AccessToken) -> Result<Quota, UpstreamError> {
        let endpoint = Endpoint::QuotaGet;
        let url = self.url(endpoint, &[("access_token", token.expose())]);
        let body = json!({ "cgi_path": Endpoint::QrcodeCreate.path() });
        let reply: QuotaReply = self
            .call(endpoint, self.http.post(url), Some(body))
            .await
            .map_err(|e| redact(e, token.expose()))?;
        Ok(reply.quota)
    }

    fn token_endpoint_name(&self) -> Endpoint {
        match self.config.token_endpoint {
            TokenEndpoint::Stable => Endpoint::StableToken,
            TokenEndpoint::Classic => Endpoint::Token,
        }
    }

    fn url(&self, endpoint: Endpoint, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}{}", self.config.api_base, endpoint.path());
        if !query.is_empty() {
            url.push('?');
            url.push_str(
                &form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(query)
                    .finish(),
            );
        }
        url
    }

    /// Sends one request and decodes the reply: a non-zero `errcode` is an error whatever
    /// else the body holds, and the body is parsed whatever its `Content-Type` says.
    async fn call<T: DeserializeOwned>(
        &self,
        endpoint: Endpoint,
        request: awc::ClientRequest,
        body: Option<Value>,
    ) -> Result<T, UpstreamError> {
        let started = Instant::now();
        let outcome = actix_web::rt::time::timeout(self.config.timeout, async {
            let mut response = match &body {
                Some(body) => request.send_json(body).await,
                None => request.send().await,
            }
            .map_err(|e| match e {
                // awc's own timers and ours give the same answer: too slow.
                awc::error::SendRequestError::Timeout
                | awc::error::SendRequestError::Connect(awc::error::ConnectError::Timeout) => {
                    UpstreamError::Timeout {
                        endpoint,
                        after: self.config.timeout,
                    }
                }
                other => UpstreamError::Unreachable {
                    endpoint,
                    reason: other.to_string(),
                },
            })?;
            let status = response.status();
            let bytes = response
                .body()
                .limit(MAX_REPLY_BYTES)
                .await
                .map_err(|e| match e {
                    awc::error::PayloadError::Io(io)
                        if io.kind() == std::io::ErrorKind::TimedOut =>
                    {
                        UpstreamError::Timeout {
                            endpoint,
                            after: self.config.timeout,
                        }
                    }
                    other => UpstreamError::BadReply {
                        endpoint,
                        reason: other.to_string(),
                    },
                })?;
            if !status.is_success() {
                return Err(UpstreamError::BadStatus {
                    endpoint,
                    status: status.as_u16(),
                });
            }
            decode(endpoint, &bytes)
        })
        .await
        .unwrap_or(Err(UpstreamError::Timeout {
            endpoint,
            after: self.config.timeout,
        }))
        .map_err(|e| redact(e, self.config.secret.expose()));

        let elapsed = started.elapsed();
        let errcode = match &outcome {
            Ok(_) => "0".to_string(),
            Err(UpstreamError::Rejected { errcode, .. }) => errcode.to_string(),
            Err(UpstreamError::Timeout { .. }) => "timeout".into(),
            Err(UpstreamError::Unreachable { .. }) => "unreachable".into(),
            Err(UpstreamError::BadStatus { status, .. }) => format!("http_{status}"),
            Err(UpstreamError::BadReply { .. }) => "bad_reply".into(),
        };
        metrics::counter!(UPSTREAM_CALLS, "endpoint" => endpoint.path(), "errcode" => errcode)
            .increment(1);
        metrics::histogram!(UPSTREAM_CALL_DURATION, "endpoint" => endpoint.path())
            .record(elapsed.as_secs_f64());
        let elapsed_ms = elapsed.as_millis();
        match &outcome {
            Ok(_) => log::info!("upstream {endpoint} errcode=0 in {elapsed_ms} ms"),
            Err(UpstreamError::Rejected { errcode, .. }) => {
                log::warn!("upstream {endpoint} errcode={errcode} in {elapsed_ms} ms")
            }
            Err(e) => log::warn!("upstream {endpoint} failed in {elapsed_ms} ms: {e}"),
        }
        outcome
    }
}

fn create_body(code: &CodeRequest) -> Value {
    let scene = match &code.scene {
        Scene::Id(id) => json!({ "scene_id": id.get() }),
        Scene::Str(s) => json!({ "scene_str": s.as_str() }),
    };
    let mut body = json!({
        "action_name": code.action_name(),
        "action_info": { "scene": scene },
    });
    // Always send the lifetime of a temporary code: left out, WeChat gives 30 to 60 seconds.
    if let (Kind::Temporary(lifetime), Some(map)) = (code.kind, body.as_object_mut()) {
        map.insert("expire_seconds".into(), json!(lifetime.seconds()));
    }
    body
}

fn decode<T: DeserializeOwned>(endpoint: Endpoint, bytes: &[u8]) -> Result<T, UpstreamError> {
    let bad = |reason: String| UpstreamError::BadReply { endpoint, reason };
    let value: Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    let errcode = value.get("errcode").and_then(Value::as_i64).unwrap_or(0);
    if errcode != 0 {
        let errmsg = value
            .get("errmsg")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return Err(UpstreamError::Rejected {
            endpoint,
            errcode,
            errmsg: errmsg.chars().take(200).collect(),
        });
    }
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}

/// Takes a credential out of an error text, should WeChat or a transport error ever echo it.
fn redact(error: UpstreamError, secret: &str) -> UpstreamError {
    if secret.is_empty() {
        return error;
    }
    let clean = |s: String| s.replace(secret, "[redacted]");
    match error {
        UpstreamError::Rejected {
            endpoint,
            errcode,
            errmsg,
        } => UpstreamError::Rejected {
            endpoint,
            errcode,
            errmsg: clean(errmsg),
        },
        UpstreamError::Unreachable { endpoint, reason } => UpstreamError::Unreachable {
            endpoint,
            reason: clean(reason),
        },
        UpstreamError::BadReply { endpoint, reason } => UpstreamError::BadReply {
            endpoint,
            reason: clean(reason),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Lifetime;

    #[test]
    fn a_temporary_code_always_sends_its_lifetime() {
        let code =
            CodeRequest::from_query("scene_id=123", Lifetime::new(604_800).unwrap()).unwrap();
        assert_eq!(
            create_body(&code),
            json!({"expire_seconds": 604800, "action_name": "QR_SCENE", "action_info": {"scene": {"scene_id": 123}}})
        );
    }

    #[test]
    fn a_permanent_code_sends_no_lifetime() {
        let code = CodeRequest::from_query(
            "scene_str=shop-12&permanent=true",
            Lifetime::new(60).unwrap(),
        )
        .unwrap();
        assert_eq!(
            create_body(&code),
            json!({"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": "shop-12"}}})
        );
    }

    #[test]
    fn errcode_zero_is_success_and_nonzero_is_an_error() {
        let ok: Result<Value, _> = decode(Endpoint::QrcodeCreate, br#"{"errcode":0,"ticket":"t"}"#);
        assert!(ok.is_ok());
        let err = decode::<Value>(
            Endpoint::QrcodeCreate,
            br#"{"errcode":45009,"errmsg":"reach max api daily quota limit"}"#,
        );
        assert!(matches!(
            err,
            Err(UpstreamError::Rejected { errcode: 45009, .. })
        ));
    }

    #[test]
    fn escaped_slashes_decode_to_plain_urls() {
        let reply: CreateReply = decode(
            Endpoint::QrcodeCreate,
            br#"{"ticket":"gQ==","expire_seconds":60,"url":"http:\/\/weixin.qq.com\/q\/kZgf"}"#,
        )
        .unwrap();
        assert_eq!(reply.url, "http://weixin.qq.com/q/kZgf");
    }

    #[test]
    fn the_token_margin_is_five_minutes_or_half_a_short_lifetime() {
        assert_eq!(
            AccessToken::new("t", Duration::from_secs(7200)).usable_for,
            Duration::from_secs(6900)
        );
        assert_eq!(
            AccessToken::new("t", Duration::from_secs(300)).usable_for,
            Duration::from_secs(150)
        );
    }
}
