//! Receiving a push as the protocol asks, in the order that costs an attacker the most and
//! the service the least: the query's signature and timestamp before a byte of the body is
//! read ([`PushReceiver::admit`]); then, with the body, the replay check, safe mode's
//! signature over the encrypted part and its decryption, and the event
//! ([`PushReceiver::open`]). The route reads the body in between, within its limits.

use super::freshness::{PushFreshness, Stale};
use super::{Fields, Push, PushError, interpret, parse_fields};
use crate::secret::Secret;
use crate::wechat::crypto::AesKey;
use crate::wechat::signature;

/// The account's server configuration, that pushes are checked against.
pub struct PushConfig {
    /// The Token: it signs every push's query.
    pub token: Secret,
    /// The EncodingAESKey, for safe-mode pushes.
    pub aes_key: Option<AesKey>,
    /// Safe-mode messages name the AppID they are for; others are refused.
    pub appid: String,
}

/// Why a push is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 403: not signed with our Token.
    #[error("signature does not match")]
    Signature,
    /// 403: signed long ago, or a signed query used again with another body.
    #[error(transparent)]
    Stale(#[from] Stale),
    /// 400: signed, but not a push we can read.
    #[error("{0}")]
    Malformed(String),
}

impl From<PushError> for Refusal {
    fn from(e: PushError) -> Self {
        Refusal::Malformed(e.to_string())
    }
}

/// The query WeChat signs, parsed once.
#[derive(Debug, Clone, Default)]
pub struct SignedQuery {
    signature: String,
    timestamp: String,
    nonce: String,
    echostr: Option<String>,
    encrypt_type: Option<String>,
    msg_signature: Option<String>,
}

impl SignedQuery {
    fn parse(query: &str) -> Self {
        let mut signed = SignedQuery::default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
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

    /// Whether the query's `signature` (or, with `extra`, its `msg_signature` over the
    /// encrypted part too) is the Token's.
    fn signed_by(&self, token: &Secret, extra: Option<&str>) -> bool {
        let mut parts = vec![token.expose(), self.timestamp.as_str(), self.nonce.as_str()];
        parts.extend(extra);
        let given = match extra {
            Some(_) => self.msg_signature.as_deref().unwrap_or_default(),
            None => self.signature.as_str(),
        };
        !given.is_empty() && signature::verify(given, &parts)
    }

    fn safe_mode(&self) -> bool {
        self.encrypt_type.as_deref() == Some("aes")
    }
}

/// Checks and reads pushes for one account.
pub struct PushReceiver {
    config: PushConfig,
    freshness: PushFreshness,
}

impl PushReceiver {
    /// `window_seconds`: how far from now a push's timestamp may be (0: no check).
    pub fn new(config: PushConfig, window_seconds: u32) -> Self {
        Self {
            config,
            freshness: PushFreshness::new(window_seconds),
        }
    }

    /// The `echostr` to answer WeChat's handshake with, if the query is signed by our Token.
    pub fn handshake(&self, query: &str) -> Option<String> {
        let signed = SignedQuery::parse(query);
        if signed.signed_by(&self.config.token, None) {
            signed.echostr
        } else {
            None
        }
    }

    /// Checks what the query alone can tell, `now` in Unix seconds: WeChat sends the
    /// query's `signature` in every mode (safe mode adds `msg_signature`), so a stranger's
    /// push is refused before its body is read.
    pub fn admit(&self, query: &str, now: i64) -> Result<SignedQuery, Refusal> {
        let signed = SignedQuery::parse(query);
        if !signed.signed_by(&self.config.token, None) {
            return Err(Refusal::Signature);
        }
        self.freshness.check_timestamp(&signed.timestamp, now)?;
        Ok(signed)
    }

    /// Reads the push that came with `signed` (from [`Self::admit`]) and `body`.
    pub fn open(&self, signed: &SignedQuery, body: &[u8]) -> Result<Push, Refusal> {
        let fields = self.fields(signed, body)?;
        Ok(interpret(&fields)?)
    }

    /// The push's fields, decrypted (and their `msg_signature` checked) in safe mode.
    ///
    /// Only a plaintext push claims its signed query for its body: there the body is not
    /// signed, and a second body under a seen query is a forgery. In safe mode
    /// `msg_signature` binds the encrypted body to the query already, so a forgery fails
    /// it; a claim would add nothing, and would refuse a retry that WeChat encrypted again
    /// (a new random prefix makes new bytes for the same message).
    fn fields(&self, signed: &SignedQuery, body: &[u8]) -> Result<Fields, Refusal> {
        if !signed.safe_mode() {
            // The query's signature, checked by `admit`, is all there is.
            self.freshness
                .claim(&signed.timestamp, &signed.nonce, body)?;
            return Ok(parse_fields(body)?);
        }
        let malformed = |e: &dyn std::fmt::Display| Refusal::Malformed(e.to_string());
        let Some(key) = &self.config.aes_key else {
            return Err(malformed(
                &"encrypt_type=aes, but no WECHAT_ENCODING_AES_KEY is configured",
            ));
        };
        let envelope = parse_fields(body)?;
        let Some(encrypted) = envelope.get("Encrypt").filter(|e| !e.is_empty()) else {
            return Err(malformed(&"encrypt_type=aes, but the push has no Encrypt"));
        };
        if !signed.signed_by(&self.config.token, Some(encrypted)) {
            return Err(Refusal::Signature);
        }
        let inner = key
            .decrypt(encrypted, &self.config.appid)
            .map_err(|e| malformed(&e))?;
        Ok(parse_fields(inner.as_bytes())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::push::to_xml;
    use crate::wechat::signature::sign;

    const TOKEN: &str = "receivertoken";
    const APPID: &str = "wx0123456789abcdef";

    fn receiver() -> PushReceiver {
        PushReceiver::new(
            PushConfig {
                token: Secret::new(TOKEN),
                aes_key: Some(AesKey::from_bytes([9; 32])),
                appid: APPID.into(),
            },
            300,
        )
    }

    fn scan(openid: &str) -> String {
        to_xml(&[
            ("FromUserName", openid),
            ("CreateTime", "946771200"),
            ("MsgType", "event"),
            ("Event", "SCAN"),
            ("EventKey", "door"),
        ])
    }

    /// A safe-mode body for `xml`, and the query that signs it.
    fn safe_mode(xml: &str, now: i64) -> (String, String) {
        let encrypted = AesKey::from_bytes([9; 32]).encrypt(xml, APPID, [1; 16]);
        let timestamp = now.to_string();
        let query = format!(
            "signature={}&timestamp={timestamp}&nonce=n1&encrypt_type=aes&msg_signature={}",
            sign(&[TOKEN, &timestamp, "n1"]),
            sign(&[TOKEN, &timestamp, "n1", &encrypted])
        );
        (
            query,
            to_xml(&[("ToUserName", "gh_1"), ("Encrypt", &encrypted)]),
        )
    }

    #[test]
    fn a_query_not_signed_by_the_token_is_refused_before_any_body() {
        let query = format!(
            "signature={}&timestamp=1800000000&nonce=n",
            sign(&["other", "1800000000", "n"])
        );

        let admitted = receiver().admit(&query, 1_800_000_000);

        assert_eq!(admitted.err(), Some(Refusal::Signature));
    }

    #[test]
    fn a_safe_mode_retry_encrypted_again_is_read() {
        let receiver = receiver();
        let now = 1_800_000_000;
        let (query, first) = safe_mode(&scan("o-real"), now);
        let encrypted_again = AesKey::from_bytes([9; 32]).encrypt(&scan("o-real"), APPID, [2; 16]);
        let timestamp = now.to_string();
        let retry_query = format!(
            "signature={}&timestamp={timestamp}&nonce=n1&encrypt_type=aes&msg_signature={}",
            sign(&[TOKEN, &timestamp, "n1"]),
            sign(&[TOKEN, &timestamp, "n1", &encrypted_again])
        );
        let retry = to_xml(&[("ToUserName", "gh_1"), ("Encrypt", &encrypted_again)]);

        let first = receiver.open(&receiver.admit(&query, now).unwrap(), first.as_bytes());
        let retried = receiver.open(
            &receiver.admit(&retry_query, now).unwrap(),
            retry.as_bytes(),
        );

        assert!(matches!(first, Ok(Push::Event(_))), "{first:?}");
        assert!(matches!(retried, Ok(Push::Event(_))), "{retried:?}");
    }

    #[test]
    fn a_forged_body_racing_a_safe_mode_push_does_not_take_its_query() {
        let receiver = receiver();
        let now = 1_800_000_000;
        let (query, genuine) = safe_mode(&scan("o-real"), now);
        let (_, forged) = safe_mode(&scan("o-forged"), now);
        let signed = receiver.admit(&query, now).unwrap();

        let forged = receiver.open(&signed, forged.as_bytes());
        let genuine = receiver.open(&signed, genuine.as_bytes());

        assert_eq!(forged.err(), Some(Refusal::Signature));
        match genuine {
            Ok(Push::Event(event)) => assert_eq!(event.openid, "o-real"),
            other => panic!("the real push was not read: {other:?}"),
        }
    }

    #[test]
    fn a_plaintext_query_is_read_again_only_with_its_first_body() {
        let receiver = receiver();
        let now = 1_800_000_000;
        let query = format!(
            "signature={}&timestamp={now}&nonce=n2",
            sign(&[TOKEN, &now.to_string(), "n2"])
        );
        let signed = receiver.admit(&query, now).unwrap();

        let first = receiver.open(&signed, scan("o-real").as_bytes());
        let retry = receiver.open(&signed, scan("o-real").as_bytes());
        let forged = receiver.open(&signed, scan("o-forged").as_bytes());

        assert!(matches!(first, Ok(Push::Event(_))));
        assert!(matches!(retry, Ok(Push::Event(_))));
        assert_eq!(forged.err(), Some(Refusal::Stale(Stale::Replayed)));
    }
}
