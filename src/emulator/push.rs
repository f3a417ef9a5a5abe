//! The emulator's side of the callback: pushes signed (and in safe mode encrypted) the way
//! WeChat sends them, for the sandbox's "simulate scan" and for the tests.

use std::time::Duration;

use super::state::{Emulator, PushTarget, random_text};
use crate::wechat::push::to_xml;
use crate::wechat::signature::sign;

/// Who scans: someone who then follows the account, or an existing follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follower {
    New,
    Existing,
}

/// A push ready to send: the query string and the body.
#[derive(Debug, Clone)]
pub struct SignedPush {
    pub query: String,
    pub body: String,
}

/// Signs `xml` for `target` (and encrypts it when the target has an AES key).
pub fn sign_push(target: &PushTarget, xml: &str, timestamp: &str, nonce: &str) -> SignedPush {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("signature", &sign(&[&target.token, timestamp, nonce]));
    query.append_pair("timestamp", timestamp);
    query.append_pair("nonce", nonce);
    let body = match &target.aes_key {
        None => xml.to_string(),
        Some(key) => {
            let random: [u8; 16] = rand::random();
            let encrypted = key.encrypt(xml, &target.appid, random);
            query.append_pair("encrypt_type", "aes");
            query.append_pair(
                "msg_signature",
                &sign(&[&target.token, timestamp, nonce, &encrypted]),
            );
            to_xml(&[("ToUserName", "gh_sandbox00000"), ("Encrypt", &encrypted)])
        }
    };
    SignedPush {
        query: query.finish(),
        body,
    }
}

/// Signs `xml` for `target` as WeChat does at the moment it pushes: the current time and a
/// fresh nonce, which the callback requires (it refuses old timestamps and reused nonces).
pub fn sign_push_now(target: &PushTarget, xml: &str) -> SignedPush {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    sign_push(target, xml, &now.to_string(), &random_text(16))
}

/// The XML of a scan of `scene` by a user who is new or already follows.
pub fn scan_xml(
    scene: &str,
    ticket: Option<&str>,
    follower: Follower,
    openid: &str,
    at: i64,
) -> String {
    let key = match follower {
        Follower::New => format!("qrscene_{scene}"),
        Follower::Existing => scene.to_string(),
    };
    let event = match follower {
        Follower::New => "subscribe",
        Follower::Existing => "SCAN",
    };
    let created = at.to_string();
    let mut fields = vec![
        ("ToUserName", "gh_sandbox00000"),
        ("FromUserName", openid),
        ("CreateTime", created.as_str()),
        ("MsgType", "event"),
        ("Event", event),
        ("EventKey", key.as_str()),
    ];
    if let Some(ticket) = ticket {
        fields.push(("Ticket", ticket));
    }
    to_xml(&fields)
}

impl Emulator {
    /// Sends a scan of `scene` by a made-up user to the push target, as WeChat would.
    pub async fn send_scan(
        &self,
        http: &awc::Client,
        scene: &str,
        ticket: Option<&str>,
        follower: Follower,
    ) -> Result<(), String> {
        let target = self
            .push_target()
            .ok_or("the emulator has no callback to push to")?;
        let openid = format!("o{}", random_text(27));
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let xml = scan_xml(scene, ticket, follower, &openid, now);
        let push = sign_push_now(&target, &xml);
        let mut response = http
            .post(format!("{}?{}", target.url, push.query))
            .timeout(Duration::from_secs(5))
            .content_type("text/xml")
            .send_body(push.body)
            .await
            .map_err(|e| format!("the callback did not answer: {e}"))?;
        let body = response.body().await.unwrap_or_default();
        if response.status().is_success() && body.as_ref() == b"success" {
            Ok(())
        } else {
            Err(format!(
                "the callback answered {}: {}",
                response.status(),
                String::from_utf8_lossy(&body)
            ))
        }
    }
}
