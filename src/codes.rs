//! Getting the ticket for a code, cheapest source first: the in-memory cache, then a live
//! code already in the database (after a restart), and only then WeChat, within each
//! client's allowance of new codes.

use std::num::NonZeroU32;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::domain::{CodeRequest, Kind, Lifetime};
use crate::store::{Store, StoreError, StoreWriter};
use crate::wechat::{Ticket, TicketCache, TokenCache, UpstreamError, WechatClient, create_ticket};

#[derive(Debug, Clone, thiserror::Error)]
pub enum CodeError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The client has used its allowance of new codes; it may try again after this.
    #[error("too many new codes: try again in {} s", .retry_after.as_secs())]
    RateLimited { retry_after: Duration },
}

/// What the answers for a code are rendered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Page,
    Json,
}

/// An answer rendered from one ticket, under one label generation.
struct Rendered {
    ticket: String,
    generation: u64,
    body: Bytes,
}

/// Memory for rendered answers: pages of hot codes stay, cold ones are evicted first.
const RENDERED_BUDGET_BYTES: u64 = 32 * 1024 * 1024;

/// Rendered pages and JSON of recently asked-for codes, so that a cached code is served as
/// stored bytes, without rendering a template or JSON again. Bounded by bytes, so that
/// 100,000 cached tickets do not also mean 100,000 stored pages.
pub struct RenderedAnswers {
    pages: moka::sync::Cache<CodeRequest, Arc<Rendered>>,
    json: moka::sync::Cache<CodeRequest, Arc<Rendered>>,
}

fn rendered_cache() -> moka::sync::Cache<CodeRequest, Arc<Rendered>> {
    moka::sync::Cache::builder()
        .max_capacity(RENDERED_BUDGET_BYTES / 2)
        .weigher(|_, rendered: &Arc<Rendered>| {
            u32::try_from(rendered.body.len() + rendered.ticket.len() + 128).unwrap_or(u32::MAX)
        })
        .build()
}

impl Default for RenderedAnswers {
    fn default() -> Self {
        Self {
            pages: rendered_cache(),
            json: rendered_cache(),
        }
    }
}

impl RenderedAnswers {
    fn cache(&self, format: Format) -> &moka::sync::Cache<CodeRequest, Arc<Rendered>> {
        match format {
            Format::Page => &self.pages,
            Format::Json => &self.json,
        }
    }

    /// The stored answer, if it was rendered from this ticket under this label generation
    /// (a label change anywhere renders pages again: labels change rarely, pages are read
    /// constantly).
    pub fn get(
        &self,
        code: &CodeRequest,
        format: Format,
        ticket: &Ticket,
        generation: u64,
    ) -> Option<Bytes> {
        self.cache(format)
            .get(code)
            .filter(|r| r.generation == generation && r.ticket == ticket.ticket)
            .map(|r| r.body.clone())
    }

    pub fn keep(
        &self,
        code: &CodeRequest,
        format: Format,
        ticket: &Ticket,
        generation: u64,
        body: Bytes,
    ) {
        let rendered = Rendered {
            ticket: ticket.ticket.clone(),
            generation,
            body,
        };
        self.cache(format).insert(code.clone(), Arc::new(rendered));
    }
}

/// Counter handles registered once: a cache hit is the hot path, and looking a labelled
/// counter up in the registry would cost more than the hit itself.
static TICKET_HITS: LazyLock<metrics::Counter> =
    LazyLock::new(|| metrics::counter!("scene_qr_ticket_cache_total", "result" => "hit"));
static TICKET_MISSES: LazyLock<metrics::Counter> =
    LazyLock::new(|| metrics::counter!("scene_qr_ticket_cache_total", "result" => "miss"));

/// Shared by every worker.
pub struct CodeService {
    tokens: TokenCache,
    tickets: TicketCache,
    pub rendered: RenderedAnswers,
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
            rendered: RenderedAnswers::default(),
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
    ) -> Result<Arc<Ticket>, CodeError> {
        if let Some(ticket) = self.tickets.get(code).await {
            TICKET_HITS.increment(1);
            return Ok(ticket);
        }
        TICKET_MISSES.increment(1);
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
                // Live codes were loaded at start-up, so a temporary code missing from the
                // cache is new. A permanent one is looked up all the same: creating a second
                // one for a scene would waste one of the account's 100,000 for good.
                if code.kind == Kind::Permanent {
                    match self.store.permanent_code(code).await {
                        Ok(Some(ticket)) => return Ok(Arc::new(ticket)),
                        Ok(None) => {}
                        Err(e) => log::warn!("looking up earlier codes failed: {e}"),
                    }
                }
                let ticket = create_ticket(wechat, &self.tokens, code).await?;
                if let Err(e) = self.writer.record_code(code, ticket.clone()).await {
                    log::error!(
                        "the new code for scene {} was not recorded: {e}",
                        code.scene
                    );
                }
                Ok(Arc::new(ticket))
            })
            .await?;
        Ok(ticket)
    }

    /// Fills the cache with the live codes of the database, so that a restart creates
    /// nothing that still exists. Returns how many were loaded.
    pub async fn load_live_codes(&self, default_lifetime: Lifetime) -> Result<usize, StoreError> {
        let live = self.store.live_codes(default_lifetime).await?;
        let count = live.len();
        for (code, ticket) in live {
            self.tickets.insert(code, Arc::new(ticket)).await;
        }
        Ok(count)
    }

    /// Number of tickets held in the cache.
    pub async fn cached_tickets(&self) -> u64 {
        self.tickets.count().await
    }
}
