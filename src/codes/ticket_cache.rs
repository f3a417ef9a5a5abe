//! The shared cache of codes: one `qrcode/create` call per code per lifetime.
//!
//! Keyed by the whole [`CodeRequest`] (kind, scene and lifetime), so two lifetimes of the
//! same scene are two codes. Concurrent misses for one key are coalesced by moka into one
//! call; misses for different keys run in parallel (moka locks per key, not globally).
//! Failures are not cached: moka's `try_get_with` inserts nothing on `Err`, so the next
//! request asks WeChat again.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use time::OffsetDateTime;

use crate::domain::{CodeRequest, Kind, Ticket};

/// An account may hold at most 100,000 permanent codes, so this bound is never the reason
/// one is forgotten.
const MAX_PERMANENT_TICKETS: u64 = 100_000;
/// Memory the temporary tickets may take, as [`entry_bytes`] estimates it. They are cheap
/// to create again (for quota), so memory, not their number, is what bounds them: about
/// 240,000 codes of usual size, where a bound by count alone let a flood of long scene
/// strings hold a gigabyte.
const TEMPORARY_TICKET_BYTES: u64 = 256 * 1024 * 1024;
/// What one cached code costs beyond its strings: the key and value structs, moka's entry,
/// its access-order and timer nodes, and the allocator's rounding (measured: RSS grew by
/// 1.26 KB per code with short strings).
const ENTRY_OVERHEAD_BYTES: usize = 1_024;
/// Estimated bytes a cached code holds, for the cache's memory bound.
fn entry_bytes(code: &CodeRequest, ticket: &Ticket) -> u32 {
    let strings = code.scene.to_string().len() + ticket.ticket.len() + ticket.url.len();
    u32::try_from(ENTRY_OVERHEAD_BYTES + strings).unwrap_or(u32::MAX)
}

struct TicketExpiry;

impl<V: AsRef<Ticket>> Expiry<CodeRequest, Arc<V>> for TicketExpiry {
    fn expire_after_create(&self, _: &CodeRequest, value: &Arc<V>, _: Instant) -> Option<Duration> {
        (**value).as_ref().servable_for(OffsetDateTime::now_utc())
    }
}

/// Hashes codes for the look-up every request makes. foldhash, not the standard SipHash:
/// a quarter of the look-up's instructions went to hashing. Its seed is random per
/// process, and new keys come only from staff within their allowance of new codes.
type Hasher = foldhash::fast::RandomState;

/// Tickets by code. `V` is the ticket, or anything that carries one (the service keeps
/// rendered answers beside it, so that a cached code costs one look-up).
pub struct TicketCache<V> {
    temporary: Cache<CodeRequest, Arc<V>, Hasher>,
    /// Separate so that a flood of temporary codes can never evict a permanent one.
    permanent: Cache<CodeRequest, Arc<V>, Hasher>,
}

impl<V: AsRef<Ticket> + Send + Sync + 'static> Default for TicketCache<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: AsRef<Ticket> + Send + Sync + 'static> TicketCache<V> {
    pub fn new() -> Self {
        Self::within(TEMPORARY_TICKET_BYTES)
    }

    /// A cache whose temporary tickets take at most `temporary_bytes` (as estimated).
    pub fn within(temporary_bytes: u64) -> Self {
        Self {
            temporary: Cache::builder()
                .max_capacity(temporary_bytes)
                .weigher(|code: &CodeRequest, value: &Arc<V>| entry_bytes(code, (**value).as_ref()))
                .expire_after(TicketExpiry)
                .build_with_hasher(Hasher::default()),
            permanent: Cache::builder()
                .max_capacity(MAX_PERMANENT_TICKETS)
                .build_with_hasher(Hasher::default()),
        }
    }

    /// The ticket for `code` from the cache, or from `init`: one `init` for all concurrent
    /// misses of the same code. An error is returned to every waiter and not kept.
    pub async fn get_with<E: Clone + Send + Sync + 'static>(
        &self,
        code: &CodeRequest,
        init: impl Future<Output = Result<Arc<V>, E>>,
    ) -> Result<Arc<V>, E> {
        let cache = match code.kind {
            Kind::Temporary(_) => &self.temporary,
            Kind::Permanent => &self.permanent,
        };
        cache
            .try_get_with_by_ref(code, init)
            .await
            .map_err(|e| (*e).clone())
    }

    /// The cached ticket for `code`, if there is one still servable.
    pub async fn get(&self, code: &CodeRequest) -> Option<Arc<V>> {
        match code.kind {
            Kind::Temporary(_) => self.temporary.get(code).await,
            Kind::Permanent => self.permanent.get(code).await,
        }
    }

    /// Puts a ticket known from elsewhere (the database) in the cache.
    pub async fn insert(&self, code: CodeRequest, ticket: Arc<V>) {
        match code.kind {
            Kind::Temporary(_) => self.temporary.insert(code, ticket).await,
            Kind::Permanent => self.permanent.insert(code, ticket).await,
        }
    }

    /// Number of tickets held. moka counts lazily, so its pending bookkeeping is done first.
    pub async fn count(&self) -> u64 {
        self.temporary.run_pending_tasks().await;
        self.permanent.run_pending_tasks().await;
        self.temporary.entry_count() + self.permanent.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn temporary_tickets_are_bounded_by_the_memory_they_take() {
        let budget = 100 * 1_100;
        let cache = TicketCache::<Ticket>::within(budget);
        for scene in 1..=1_000u32 {
            let query = format!("scene_id={scene}&expire_seconds=604800");
            let code =
                CodeRequest::from_query(&query, crate::domain::Lifetime::new(604_800).unwrap())
                    .unwrap();
            cache
                .insert(code, Arc::new(Ticket::created_now(604_800)))
                .await;
        }

        let held = cache.count().await;

        // Each ticket weighs at least its overhead; a thousand were inserted.
        let most = budget / ENTRY_OVERHEAD_BYTES as u64;
        assert!(
            (50..=most).contains(&held),
            "{held} tickets held, at most {most}"
        );
    }
}
