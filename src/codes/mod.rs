//! Getting the ticket for a code, cheapest source first: the in-memory cache, then a live
//! code already in the database (after a restart), and only then WeChat, within each
//! client's allowance of new codes and the service's. A new code is shown only once the
//! inventory has recorded it. In front of it all, each worker keeps its own copy of
//! the answers of the codes it served last ([`WorkerAnswers`]).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::domain::{CodeRequest, Kind, Ticket};
use crate::store::{Store, StoreError};
use crate::telemetry;
use crate::telemetry::metric_names::TICKET_CACHE;
use crate::wechat::{TicketCache, TokenCache, UpstreamError, WechatClient, create_ticket};

mod worker_answers;
pub use worker_answers::WorkerAnswers;

#[derive(Debug, Clone, thiserror::Error)]
pub enum CodeError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The client has used its allowance of new codes; it may try again after this.
    #[error("too many new codes: try again in {} s", .retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    /// The service as a whole has used its allowance of new codes per minute.
    #[error("too many new codes on this server: try again in {} s", .retry_after.as_secs())]
    ServerBusy { retry_after: Duration },
    /// WeChat created the code, but the inventory could not record it, so it is not shown
    /// (a page is a promise that the code is remembered). The ticket is kept in memory and
    /// recorded on the next request, not created again.
    #[error("the new code could not be saved: {0}")]
    NotRecorded(String),
    /// Whether the scene already has a permanent code could not be read; none is created
    /// while that is unknown.
    #[error("earlier codes could not be read: {0}")]
    Unknown(String),
}

/// Bytes of rendered answers kept in the shared cache: pages of hot codes are served as
/// stored bytes, but 100,000 cached tickets must not also mean 100,000 stored pages. (Each
/// worker's own copy of hot answers has its own bound, [`worker_answers::MAX_CODES`].)
const RENDERED_BUDGET_BYTES: u64 = 16 * 1024 * 1024;
static RENDERED_BYTES: AtomicU64 = AtomicU64::new(0);

/// A cached code: its ticket, and the answers rendered from it, so that a cached code is
/// served without rendering a template or JSON again, in one cache look-up.
pub struct CodeEntry {
    pub ticket: Ticket,
    /// The page, with the label generation it was rendered under: a label change anywhere
    /// renders pages again (labels change rarely, pages are read constantly).
    page: ArcSwapOption<(u64, Bytes)>,
    json: ArcSwapOption<Bytes>,
    /// Bytes this entry holds against the budget, given back when it is dropped.
    held: AtomicU64,
}

impl AsRef<Ticket> for CodeEntry {
    fn as_ref(&self) -> &Ticket {
        &self.ticket
    }
}

impl Drop for CodeEntry {
    fn drop(&mut self) {
        RENDERED_BYTES.fetch_sub(*self.held.get_mut(), Ordering::Relaxed);
    }
}

impl CodeEntry {
    fn new(ticket: Ticket) -> Self {
        Self {
            ticket,
            page: ArcSwapOption::empty(),
            json: ArcSwapOption::empty(),
            held: AtomicU64::new(0),
        }
    }

    /// The page, if it was rendered under label generation `generation`.
    pub fn page(&self, generation: u64) -> Option<Bytes> {
        let page = self.page.load();
        page.as_ref()
            .filter(|page| page.0 == generation)
            .map(|page| page.1.clone())
    }

    pub fn json(&self) -> Option<Bytes> {
        self.json.load().as_deref().cloned()
    }

    /// Keeps a rendered page, if the budget has room.
    pub fn keep_page(&self, generation: u64, body: &Bytes) {
        if self.reserve(body.len())
            && let Some(old) = self.page.swap(Some(Arc::new((generation, body.clone()))))
        {
            self.release(old.1.len());
        }
    }

    /// Keeps the rendered JSON, if the budget has room.
    pub fn keep_json(&self, body: &Bytes) {
        if self.reserve(body.len())
            && let Some(old) = self.json.swap(Some(Arc::new(body.clone())))
        {
            self.release(old.len());
        }
    }

    fn reserve(&self, bytes: usize) -> bool {
        let bytes = bytes as u64;
        let before = RENDERED_BYTES.fetch_add(bytes, Ordering::Relaxed);
        if before + bytes > RENDERED_BUDGET_BYTES {
            RENDERED_BYTES.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        self.held.fetch_add(bytes, Ordering::Relaxed);
        true
    }

    fn release(&self, bytes: usize) {
        RENDERED_BYTES.fetch_sub(bytes as u64, Ordering::Relaxed);
        self.held.fetch_sub(bytes as u64, Ordering::Relaxed);
    }
}

// Handles registered once per worker: a cache hit is the hot path, and looking a labelled
// counter up in the registry would cost more than the hit itself.
thread_local! {
    static TICKET_HITS: metrics::Counter = ticket_counter("hit");
    static TICKET_MISSES: metrics::Counter = ticket_counter("miss");
}

/// Counts a ticket cache hit, the shared cache's or a worker's copy's.
fn count_ticket_hit() {
    TICKET_HITS.with(|hits| hits.increment(1));
}

fn ticket_counter(result: &'static str) -> metrics::Counter {
    metrics::counter!(
        TICKET_CACHE,
        "result" => result,
        "worker" => telemetry::worker()
    )
}

/// Codes created on WeChat that the inventory has not recorded yet, at most this many: a
/// bound on what an outage of the database can hold in memory.
const MAX_UNRECORDED: usize = 10_000;

/// The allowances of new codes, each per minute with a burst of the same size; 0 is no
/// limit.
#[derive(Debug, Clone, Copy)]
pub struct NewCodeAllowance {
    pub per_client: u32,
    pub in_total: u32,
}

/// Whether a ticket may still be shown (permanent ones always).
fn servable(ticket: &Ticket) -> bool {
    ticket
        .servable_for(time::OffsetDateTime::now_utc())
        .is_none_or(|left| !left.is_zero())
}

/// Shared by every worker.
pub struct CodeService {
    tokens: TokenCache,
    tickets: TicketCache<CodeEntry>,
    store: Store,
    /// New codes per client per minute; `None` when unlimited. Keyed per client (a sharded
    /// map inside governor), so clients never queue behind one lock.
    new_codes: Option<DefaultKeyedRateLimiter<String>>,
    /// Checks of `new_codes` since its clients were last swept (see `within_allowance`).
    checks_since_sweep: AtomicU64,
    /// New codes per minute for the whole service, whoever asks: many clients (or
    /// addresses) together must not spend the account's daily quota, or this process's
    /// memory, without bound.
    new_codes_in_total: Option<DefaultDirectRateLimiter>,
    /// Created, not yet recorded (the database was failing): used again, not created again.
    unrecorded: Mutex<HashMap<CodeRequest, Ticket>>,
}

impl CodeService {
    pub fn new(store: Store, allowance: NewCodeAllowance) -> Self {
        let per_minute = |n| NonZeroU32::new(n).map(Quota::per_minute);
        Self {
            tokens: TokenCache::new(),
            tickets: TicketCache::new(),
            store,
            new_codes: per_minute(allowance.per_client).map(RateLimiter::keyed),
            checks_since_sweep: AtomicU64::new(0),
            new_codes_in_total: per_minute(allowance.in_total).map(RateLimiter::direct),
            unrecorded: Mutex::new(HashMap::new()),
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
    ) -> Result<Arc<CodeEntry>, CodeError> {
        if let Some(ticket) = self.tickets.get(code).await {
            count_ticket_hit();
            return Ok(ticket);
        }
        TICKET_MISSES.with(|misses| misses.increment(1));
        // Boxed: the miss path holds the WeChat call's future, about 15 KB, which would
        // otherwise be part of every request's future, allocated and copied on every hit.
        Box::pin(self.fetch(wechat, code, client)).await
    }

    /// The miss path of [`Self::ticket`].
    async fn fetch(
        &self,
        wechat: &WechatClient,
        code: &CodeRequest,
        client: impl FnOnce() -> String,
    ) -> Result<Arc<CodeEntry>, CodeError> {
        // A code created earlier that the inventory could not record costs WeChat nothing
        // more: it is recorded now, not charged again.
        if !self.has_unrecorded(code) {
            self.within_allowance(client)?;
        }
        let ticket = self
            .tickets
            .get_with(code, async {
                // Live codes were loaded at start-up, so a temporary code missing from the
                // cache is new. A permanent one is looked up all the same: creating a second
                // one for a scene would waste one of the account's 100,000 for good.
                // Unknown is not "none": a failed look-up must not create a second one.
                if code.kind == Kind::Permanent
                    && let Some(ticket) = self
                        .store
                        .permanent_code(code)
                        .await
                        .map_err(|e| CodeError::Unknown(e.to_string()))?
                {
                    return Ok::<_, CodeError>(Arc::new(CodeEntry::new(ticket)));
                }
                let ticket = match self.unrecorded_ticket(code) {
                    Some(ticket) => ticket,
                    None => {
                        let ticket = create_ticket(wechat, &self.tokens, code).await?;
                        // Kept until recorded: a request that goes away before the record
                        // is committed does not lose the code.
                        self.keep_unrecorded(code, &ticket);
                        ticket
                    }
                };
                self.store
                    .record_code(code, &ticket)
                    .await
                    .map_err(|e| CodeError::NotRecorded(e.to_string()))?;
                self.unrecorded_tickets().remove(code);
                Ok(Arc::new(CodeEntry::new(ticket)))
            })
            .await?;
        Ok(ticket)
    }

    /// Spends one new code of the client's allowance, then one of the service's. Only new
    /// codes count: a cached code costs WeChat nothing. The client's comes first so that a
    /// client over its own allowance never uses up the one everybody shares.
    fn within_allowance(&self, client: impl FnOnce() -> String) -> Result<(), CodeError> {
        let wait = |not_until: governor::NotUntil<_>| {
            not_until
                .wait_time_from(DefaultClock::default().now())
                .max(Duration::from_secs(1))
        };
        if let Some(limiter) = &self.new_codes {
            // Every client asked about stays in the limiter's map until swept. A sweep
            // drops the clients whose allowance has refilled (60 / allowance seconds per
            // code spent, a minute at most), so sweeping every 1,024 checks keeps the map
            // to the clients of about the last minute, however many addresses ask.
            if self.checks_since_sweep.fetch_add(1, Ordering::Relaxed) % 1_024 == 1_023 {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
        if let Some(limiter) = &self.new_codes
            && let Err(not_until) = limiter.check_key(&client())
        {
            return Err(CodeError::RateLimited {
                retry_after: wait(not_until),
            });
        }
        if let Some(limiter) = &self.new_codes_in_total
            && let Err(not_until) = limiter.check()
        {
            return Err(CodeError::ServerBusy {
                retry_after: wait(not_until),
            });
        }
        Ok(())
    }

    fn has_unrecorded(&self, code: &CodeRequest) -> bool {
        self.unrecorded_tickets().contains_key(code)
    }

    /// A ticket created earlier that the inventory has not recorded, if still servable.
    fn unrecorded_ticket(&self, code: &CodeRequest) -> Option<Ticket> {
        let mut unrecorded = self.unrecorded_tickets();
        let ticket = unrecorded.get(code)?.clone();
        if servable(&ticket) {
            Some(ticket)
        } else {
            unrecorded.remove(code);
            None
        }
    }

    /// Keeps `ticket` until it is recorded; when full, after dropping those no longer
    /// servable.
    fn keep_unrecorded(&self, code: &CodeRequest, ticket: &Ticket) {
        let mut unrecorded = self.unrecorded_tickets();
        if unrecorded.len() >= MAX_UNRECORDED {
            unrecorded.retain(|_, ticket| servable(ticket));
        }
        if unrecorded.len() < MAX_UNRECORDED {
            unrecorded.insert(code.clone(), ticket.clone());
        }
    }

    fn unrecorded_tickets(&self) -> std::sync::MutexGuard<'_, HashMap<CodeRequest, Ticket>> {
        // Nothing can be left half-done under this lock: recover it after a panic.
        self.unrecorded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Fills the cache with the live codes of the database, so that a restart creates
    /// nothing that still exists. Returns how many were loaded.
    pub async fn load_live_codes(&self) -> Result<usize, StoreError> {
        let live = self.store.live_codes().await?;
        let count = live.len();
        for (code, ticket) in live {
            self.tickets
                .insert(code, Arc::new(CodeEntry::new(ticket)))
                .await;
        }
        Ok(count)
    }

    /// Number of tickets held in the cache.
    pub async fn cached_tickets(&self) -> u64 {
        self.tickets.count().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn clients_seen_once_do_not_stay_in_the_allowance_map() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("codes.db").display());
        let (store, _writer) = Store::open(&url).await.unwrap();
        let codes = CodeService::new(
            store,
            NewCodeAllowance {
                per_client: 120,
                in_total: 0,
            },
        );

        for address in 0..5_000 {
            codes.within_allowance(|| format!("ip:{address}")).unwrap();
            if address == 2_500 {
                // Their one code each is refilled after half a second, and swept a
                // replenish interval later.
                actix_web::rt::time::sleep(Duration::from_millis(1_200)).await;
            }
        }

        let held = codes.new_codes.as_ref().map_or(0, |limiter| limiter.len());
        assert!(held < 3_000, "{held} clients kept of 5,000");
    }
}
