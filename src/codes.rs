//! Getting the ticket for a code, cheapest source first: the in-memory cache, then a live
//! code already in the database (after a restart), and only then WeChat, within each
//! client's allowance of new codes.

use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::domain::CodeRequest;
use crate::store::{Store, StoreWriter};
use crate::wechat::{Ticket, TicketCache, TokenCache, UpstreamError, WechatClient, create_ticket};

#[derive(Debug, Clone, thiserror::Error)]
pub enum CodeError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The client has used its allowance of new codes; it may try again after this.
    #[error("too many new codes: try again in {} s", .retry_after.as_secs())]
    RateLimited { retry_after: Duration },
}

/// A code's ticket, with the answers rendered from it kept beside it: a cached code is
/// served as stored bytes, without rendering a template or JSON again.
pub struct CachedCode {
    pub ticket: Ticket,
    json: OnceLock<Bytes>,
    /// The page, with the label generation it was rendered under: a label change anywhere
    /// makes pages render again (labels change rarely; pages are read constantly).
    page: ArcSwapOption<(u64, Bytes)>,
}

impl AsRef<Ticket> for CachedCode {
    fn as_ref(&self) -> &Ticket {
        &self.ticket
    }
}

impl CachedCode {
    fn new(ticket: Ticket) -> Self {
        Self {
            ticket,
            json: OnceLock::new(),
            page: ArcSwapOption::empty(),
        }
    }

    /// The JSON answer, rendered on first use.
    pub fn json(&self, render: impl FnOnce(&Ticket) -> Bytes) -> Bytes {
        self.json.get_or_init(|| render(&self.ticket)).clone()
    }

    /// The page, if it was rendered under label generation `generation`.
    pub fn page(&self, generation: u64) -> Option<Bytes> {
        self.page
            .load()
            .as_ref()
            .filter(|page| page.0 == generation)
            .map(|page| page.1.clone())
    }

    pub fn keep_page(&self, generation: u64, body: Bytes) {
        self.page.store(Some(Arc::new((generation, body))));
    }
}

/// Shared by every worker.
pub struct CodeService {
    tokens: TokenCache,
    tickets: TicketCache<CachedCode>,
    store: Store,
    writer: StoreWriter,
    /// New codes per client per minute; `None` when unlimited. Keyed per client (a sharded
    /// map inside governor), so clients never queue behind one lock.
    new_codes: Option<DefaultKeyedRateLimiter<String>>,
}

impl CodeService {
    pub fn new(store: Store, writer: StoreWriter, new_codes_per_minute: u32) -> Self {
        Self {
            tokens: TokenCache::new(),
            tickets: TicketCache::new(),
            store,
            writer,
            new_codes: NonZeroU32::new(new_codes_per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
        }
    }

    /// The ticket for `code`, asked for by `client` (a user name or an address, worked out
    /// only on a miss). Concurrent misses for one code make one database look-up and at
    /// most one WeChat call.
    pub async fn ticket(
        &self,
        wechat: &WechatClient,
        code: &CodeRequest,
        client: impl FnOnce() -> String,
    ) -> Result<Arc<CachedCode>, CodeError> {
        if let Some(ticket) = self.tickets.get(code).await {
            metrics::counter!("scene_qr_ticket_cache_total", "result" => "hit").increment(1);
            return Ok(ticket);
        }
        metrics::counter!("scene_qr_ticket_cache_total", "result" => "miss").increment(1);
        // Only new codes count against the allowance: a cached code costs WeChat nothing.
        if let Some(limiter) = &self.new_codes
            && let Err(not_until) = limiter.check_key(&client())
        {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(CodeError::RateLimited {
                retry_after: wait.max(Duration::from_secs(1)),
            });
        }
        let ticket = self
            .tickets
            .get_with(code, async {
                // The database only saves quota: when it fails, WeChat still answers.
                match self.store.reusable_code(code).await {
                    Ok(Some(ticket)) => return Ok(Arc::new(CachedCode::new(ticket))),
                    Ok(None) => {}
                    Err(e) => log::warn!("looking up earlier codes failed: {e}"),
                }
                let ticket = create_ticket(wechat, &self.tokens, code).await?;
                if let Err(e) = self.writer.record_code(code, ticket.clone()).await {
                    log::error!(
                        "the new code for scene {} was not recorded: {e}",
                        code.scene
                    );
                }
                Ok(Arc::new(CachedCode::new(ticket)))
            })
            .await?;
        Ok(ticket)
    }

    /// Number of tickets held in the cache.
    pub fn cached_tickets(&self) -> u64 {
        self.tickets.count()
    }
}
