//! `qrcode/create`: a new code on WeChat, as a [`Ticket`].

use time::OffsetDateTime;

use super::client::WechatClient;
use super::token::{TokenCache, TokenError};
use crate::domain::{CodeRequest, Kind, Ticket};

/// Creates the code on WeChat (one `qrcode/create` call, plus a retry on a rejected token).
pub async fn create(
    client: &WechatClient,
    tokens: &TokenCache,
    code: &CodeRequest,
) -> Result<Ticket, TokenError> {
    let created = tokens
        .with_token(client, |token| async move {
            client.create_qrcode(&token, code).await
        })
        .await?;
    // Whole seconds: what pages and JSON show, and what WeChat counts in.
    let now = OffsetDateTime::now_utc();
    let created_at = now - time::Duration::nanoseconds(now.nanosecond().into());
    // Temporary codes: trust the lifetime WeChat granted; fall back to the one asked for.
    let expire_seconds = match code.kind {
        Kind::Temporary(asked) => Some(created.expire_seconds.unwrap_or(asked.seconds())),
        Kind::Permanent => None,
    };
    Ok(Ticket {
        ticket: created.ticket,
        url: created.url,
        expire_seconds,
        created_at,
        expires_at: expire_seconds.map(|s| created_at + time::Duration::seconds(i64::from(s))),
    })
}
