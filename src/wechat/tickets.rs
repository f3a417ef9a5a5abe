//! The ticket cache: one `qrcode/create` call per code per lifetime.
//!
//! Keyed by the whole [`CodeRequest`] (kind, scene and lifetime), so two lifetimes of the
//! same scene are two codes. Concurrent misses for one key are coalesced by moka into one
//! call; misses for different keys run in parallel (moka locks per key, not globally).
//! Failures are not cached: moka's `try_get_with` inserts nothing on `Err`, so the next
//! request asks WeChat again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use time::OffsetDateTime;

use super::client::{UpstreamError, WechatClient};
use super::token::TokenCache;
use crate::domain::{CodeRequest, Kind};

/// An account may hold at most 100,000 permanent codes, so this bound is never the reason
/// one is forgotten.
const MAX_PERMANENT_TICKETS: u64 = 100_000;
/// Temporary tickets are cheap to re-create but cost quota; a million is about 300 MB.
const MAX_TEMPORARY_TICKETS: u64 = 1_000_000;
/// A page must never show a code with less than this much of its life left.
const MIN_REMAINING: Duration = Duration::from_secs(60);

/// A created code, as the pages and the JSON show it.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub ticket: String,
    /// The text the QR image encodes.
    pub url: String,
    /// Lifetime granted by WeChat (temporary codes).
    pub expire_seconds: Option<u32>,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
}

impl Ticket {
    /// How long a ticket of this lifetime may be served from the cache: its lifetime less a
    /// tenth of it, and less at least a minute, so that someone who prints or scans the page
    /// still has a working code. A code that short-lived is not cached at all.
    pub fn servable_for(lifetime_seconds: u32) -> Duration {
        let lifetime = Duration::from_secs(lifetime_seconds.into());
        lifetime.saturating_sub((lifetime / 10).max(MIN_REMAINING))
    }
}

struct TicketExpiry;

impl Expiry<CodeRequest, Arc<Ticket>> for TicketExpiry {
    fn expire_after_create(
        &self,
        _: &CodeRequest,
        ticket: &Arc<Ticket>,
        _: Instant,
    ) -> Option<Duration> {
        ticket.expire_seconds.map(Ticket::servable_for)
    }
}

pub struct TicketCache {
    temporary: Cache<CodeRequest, Arc<Ticket>>,
    /// Separate so that a flood of temporary codes can never evict a permanent one.
    permanent: Cache<CodeRequest, Arc<Ticket>>,
}

impl Default for TicketCache {
    fn default() -> Self {
        Self::new()
    }
}

impl TicketCache {
    pub fn new() -> Self {
        Self {
            temporary: Cache::builder()
                .max_capacity(MAX_TEMPORARY_TICKETS)
                .expire_after(TicketExpiry)
                .build(),
            permanent: Cache::builder().max_capacity(MAX_PERMANENT_TICKETS).build(),
        }
    }

    /// The ticket for `code`, from the cache or from one `qrcode/create` call.
    pub async fn get(
        &self,
        client: &WechatClient,
        tokens: &TokenCache,
        code: &CodeRequest,
    ) -> Result<Arc<Ticket>, UpstreamError> {
        let cache = match code.kind {
            Kind::Temporary(_) => &self.temporary,
            Kind::Permanent => &self.permanent,
        };
        cache
            .try_get_with_by_ref(code, create(client, tokens, code))
            .await
            .map_err(|e| (*e).clone())
    }

    /// Number of tickets held (approximate: moka counts lazily).
    pub fn count(&self) -> u64 {
        self.temporary.entry_count() + self.permanent.entry_count()
    }
}

async fn create(
    client: &WechatClient,
    tokens: &TokenCache,
    code: &CodeRequest,
) -> Result<Arc<Ticket>, UpstreamError> {
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
    Ok(Arc::new(Ticket {
        ticket: created.ticket,
        url: created.url,
        expire_seconds,
        created_at,
        expires_at: expire_seconds.map(|s| created_at + time::Duration::seconds(i64::from(s))),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_week_long_code_is_served_for_nine_tenths_of_its_life() {
        assert_eq!(Ticket::servable_for(604_800), Duration::from_secs(544_320));
    }

    #[test]
    fn a_short_code_keeps_at_least_a_minute_in_hand() {
        assert_eq!(Ticket::servable_for(120), Duration::from_secs(60));
        assert_eq!(Ticket::servable_for(61), Duration::from_secs(1));
    }

    #[test]
    fn a_one_minute_code_is_never_served_from_the_cache() {
        assert_eq!(Ticket::servable_for(60), Duration::ZERO);
    }
}
