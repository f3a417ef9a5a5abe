//! The access-token cache: one token for the whole process, and with replicas on one
//! database, one for all of them.
//!
//! Every token call spends quota the account shares with its other systems (2,000 a day on
//! the classic endpoint), so concurrent misses are coalesced by moka into one call, a
//! rejected token is dropped only if it is still the cached one, and a call is retried once
//! with a fresh token, never in a loop. Replicas share the token through [`SharedTokens`]:
//! one fetches while the others wait for what it stores, since a classic fetch ends the
//! token everyone else holds.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use moka::Expiry;
use moka::future::Cache;
use moka::ops::compute::Op;

use super::client::TokenEndpoint;
use super::client::{AccessToken, UpstreamError, WechatClient};
use crate::telemetry::metric_names::{TOKEN_CACHE, TOKEN_REFRESHES};

/// WeChat allows `force_refresh` at most every 30 seconds and 20 times a day.
const FORCE_REFRESH_SPACING: Duration = Duration::from_secs(30);
pub const FORCE_REFRESHES_PER_DAY: u32 = 20;

/// WeChat's days, those its daily limits count in, begin at midnight in China (UTC+8).
const WECHAT_DAY_OFFSET_SECONDS: i64 = 8 * 3600;

/// Rejected tokens remembered for the status page's count, at most: WeChat rejects a token
/// a few times a day at worst, and this bounds what a storm of rejections may hold.
const REJECTIONS_KEPT: usize = 1_000;

/// How often a replica waiting for another's new token looks for it.
const SHARED_POLL: Duration = Duration::from_millis(100);

/// Registered once: every new code reads the token (see `codes.rs` on hot-path counters).
static TOKEN_HITS: LazyLock<metrics::Counter> =
    LazyLock::new(|| metrics::counter!(TOKEN_CACHE, "result" => "hit"));
static TOKEN_MISSES: LazyLock<metrics::Counter> =
    LazyLock::new(|| metrics::counter!(TOKEN_CACHE, "result" => "miss"));

/// No token could be had, or the call made with one failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The token the replicas share could not be read or saved (the database is failing);
    /// none is fetched meanwhile, since a fetch no other replica knows of may end theirs.
    #[error("the access token the replicas share could not be read or saved: {0}")]
    Unshared(String),
}

/// Where processes sharing one AppID keep its token: the database, when several replicas
/// use one. Implemented over the store by `codes`; this module knows only these steps.
pub trait SharedTokens: Send + Sync {
    /// The stored token, if one is usable for a while yet.
    fn stored(&self) -> BoxFuture<'_, Result<Option<AccessToken>, TokenError>>;
    /// Takes the lease to fetch a new token for `lease`; false while another holds it.
    fn lease(&self, lease: Duration) -> BoxFuture<'_, Result<bool, TokenError>>;
    /// Stores a token fetched under this process's lease and ends the lease.
    fn save<'a>(&'a self, token: &'a AccessToken) -> BoxFuture<'a, Result<(), TokenError>>;
    /// Ends this process's lease without a token (the fetch failed).
    fn release(&self) -> BoxFuture<'_, Result<(), TokenError>>;
    /// Clears `rejected` if it is still the stored token (compare and set).
    fn drop_if_current<'a>(
        &'a self,
        rejected: &'a AccessToken,
    ) -> BoxFuture<'a, Result<(), TokenError>>;
    /// The forced refreshes counted on WeChat's `day`, by every process.
    fn forced_on(&self, day: i64) -> BoxFuture<'_, Result<u32, TokenError>>;
    /// Counts a forced refresh now, if the last one by any process was at least `spacing`
    /// ago and fewer than `per_day` were counted on WeChat's `day`.
    fn take_forced_refresh(
        &self,
        day: i64,
        spacing: Duration,
        per_day: u32,
    ) -> BoxFuture<'_, Result<bool, TokenError>>;
}

pub struct TokenCache {
    cache: Cache<(), AccessToken>,
    /// Forced refreshes of this process, when no other shares the token. A std mutex: it
    /// is held for a comparison only, never across an `.await`.
    forced: Mutex<ForcedRefreshes>,
    /// When WeChat rejected this process's token, oldest first ([`REJECTIONS_KEPT`]).
    rejections: Mutex<VecDeque<Instant>>,
    shared: Option<Arc<dyn SharedTokens>>,
}

/// The forced refreshes counted on one day, and when the last one was.
#[derive(Default)]
struct ForcedRefreshes {
    last: Option<Instant>,
    day: i64,
    today: u32,
}

impl ForcedRefreshes {
    /// Counts a forced refresh at `now` on WeChat's `day`, if WeChat's limits allow it.
    fn take(&mut self, now: Instant, day: i64) -> bool {
        if self.day != day {
            self.day = day;
            self.today = 0;
        }
        let spaced = self
            .last
            .is_none_or(|at| now.duration_since(at) >= FORCE_REFRESH_SPACING);
        if !spaced || self.today >= FORCE_REFRESHES_PER_DAY {
            return false;
        }
        self.last = Some(now);
        self.today += 1;
        true
    }
}

struct TokenExpiry;

impl Expiry<(), AccessToken> for TokenExpiry {
    fn expire_after_create(&self, _: &(), token: &AccessToken, _: Instant) -> Option<Duration> {
        Some(token.usable_for)
    }
}

/// WeChat's day now: the days its daily limits count in.
fn wechat_day() -> i64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    (now + WECHAT_DAY_OFFSET_SECONDS).div_euclid(86_400)
}

/// How long a replica may take to fetch a token before another may: the call, and a forced
/// refresh after it, each within the upstream timeout.
fn fetch_lease(client: &WechatClient) -> Duration {
    client.timeout() * 2 + Duration::from_secs(5)
}

impl TokenCache {
    /// A cache for this process alone, or sharing its token through `shared`.
    pub fn new(shared: Option<Arc<dyn SharedTokens>>) -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(1)
                .expire_after(TokenExpiry)
                .build(),
            forced: Mutex::new(ForcedRefreshes::default()),
            rejections: Mutex::new(VecDeque::new()),
            shared,
        }
    }

    /// The cached token, or a fresh one (one call for all concurrent callers).
    pub async fn current(&self, client: &WechatClient) -> Result<AccessToken, TokenError> {
        let entry = self
            .cache
            .entry(())
            .or_try_insert_with(self.obtain(client, None))
            .await
            .map_err(|e| (*e).clone())?;
        if entry.is_fresh() {
            TOKEN_MISSES.increment(1);
        } else {
            TOKEN_HITS.increment(1);
        }
        Ok(entry.into_value())
    }

    /// Runs `call` with the current token; if WeChat rejects the token, replaces it and runs
    /// `call` once more. The second answer is final, whatever it is.
    pub async fn with_token<T, F, Fut>(
        &self,
        client: &WechatClient,
        call: F,
    ) -> Result<T, TokenError>
    where
        F: Fn(AccessToken) -> Fut,
        Fut: Future<Output = Result<T, UpstreamError>>,
    {
        let token = self.current(client).await?;
        match call(token.clone()).await {
            Err(e) if e.is_token_rejected() => {
                log::warn!("access token rejected ({e}); fetching a fresh one and retrying once");
                self.count_rejection();
                let fresh = self.replace(client, &token).await?;
                Ok(call(fresh).await?)
            }
            other => Ok(other?),
        }
    }

    fn forced(&self) -> std::sync::MutexGuard<'_, ForcedRefreshes> {
        // A poisoned lock only means another thread panicked mid-comparison; the values
        // are still plain counts, so keep using them.
        self.forced
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn rejections(&self) -> std::sync::MutexGuard<'_, VecDeque<Instant>> {
        // Plain timestamps: nothing is left half-done under this lock after a panic.
        self.rejections
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn count_rejection(&self) {
        let mut rejections = self.rejections();
        if rejections.len() == REJECTIONS_KEPT {
            rejections.pop_front();
        }
        rejections.push_back(Instant::now());
    }

    /// How many times WeChat rejected this process's token within `window`.
    pub fn rejections_within(&self, window: Duration) -> usize {
        let rejections = self.rejections();
        let now = Instant::now();
        rejections
            .iter()
            .filter(|at| now.duration_since(**at) <= window)
            .count()
    }

    /// The forced refreshes spent today (WeChat's day), by every process sharing the token.
    pub async fn forced_refreshes_today(&self) -> Result<u32, TokenError> {
        let day = wechat_day();
        if let Some(shared) = &self.shared {
            return shared.forced_on(day).await;
        }
        let forced = self.forced();
        Ok(if forced.day == day { forced.today } else { 0 })
    }

    /// Replaces a token WeChat rejected. Drops it only if it is still the cached (and the
    /// stored) one: another request or replica may already have put a fresh token in its
    /// place, which must not be thrown away.
    async fn replace(
        &self,
        client: &WechatClient,
        rejected: &AccessToken,
    ) -> Result<AccessToken, TokenError> {
        let rejected_clone = rejected.clone();
        self.cache
            .entry(())
            .and_compute_with(|entry| async move {
                match entry {
                    Some(entry) if *entry.value() == rejected_clone => Op::Remove,
                    _ => Op::Nop,
                }
            })
            .await;
        if let Some(shared) = &self.shared {
            shared.drop_if_current(rejected).await?;
        }
        self.cache
            .try_get_with((), self.obtain(client, Some(rejected)))
            .await
            .map_err(|e| (*e).clone())
    }

    /// A token other than `rejected`: the one another replica stored, or one fetched by
    /// this process, which stores it for the others. While another replica holds the lease
    /// to fetch, waits for what it stores, up to the lease's end.
    async fn obtain(
        &self,
        client: &WechatClient,
        rejected: Option<&AccessToken>,
    ) -> Result<AccessToken, TokenError> {
        let Some(shared) = &self.shared else {
            return self.fetch(client, rejected).await;
        };
        let usable = |stored: Option<AccessToken>| stored.filter(|token| Some(token) != rejected);
        let lease = fetch_lease(client);
        let give_up = Instant::now() + lease + SHARED_POLL;
        loop {
            if let Some(token) = usable(shared.stored().await?) {
                return Ok(token);
            }
            if shared.lease(lease).await? {
                // Looked at again under the lease: another replica may have stored one
                // between the first look and the lease.
                if let Some(token) = usable(shared.stored().await?) {
                    shared.release().await?;
                    return Ok(token);
                }
                let fetched = self.fetch(client, rejected).await;
                return match fetched {
                    Ok(token) => {
                        // Fetched is fetched: a failed save costs the others a fetch of
                        // their own once the lease ends, not this request its token.
                        if let Err(e) = shared.save(&token).await {
                            log::warn!("a new access token could not be shared: {e}");
                        }
                        Ok(token)
                    }
                    Err(e) => {
                        if let Err(release) = shared.release().await {
                            log::debug!("the token lease stays to its end: {release}");
                        }
                        Err(e)
                    }
                };
            }
            if Instant::now() >= give_up {
                return Err(TokenError::Unshared(
                    "another replica has been fetching the access token for too long".into(),
                ));
            }
            actix_web::rt::time::sleep(SHARED_POLL).await;
        }
    }

    /// Fetches a token from WeChat. When replacing `rejected` and the stable endpoint hands
    /// the very same token back (WeChat still thinks it valid), only a forced refresh helps.
    async fn fetch(
        &self,
        client: &WechatClient,
        rejected: Option<&AccessToken>,
    ) -> Result<AccessToken, TokenError> {
        let fresh = client.fetch_token(false).await?;
        let Some(rejected) = rejected else {
            return Ok(fresh);
        };
        if fresh == *rejected
            && client.token_endpoint() == TokenEndpoint::Stable
            && self.may_force_refresh().await?
        {
            log::warn!("stable_token returned the rejected token; forcing a refresh");
            metrics::counter!(TOKEN_REFRESHES, "reason" => "forced").increment(1);
            return Ok(client.fetch_token(true).await?);
        }
        metrics::counter!(TOKEN_REFRESHES, "reason" => "rejected").increment(1);
        Ok(fresh)
    }

    /// Whether a forced refresh may go now, counting it if so: within WeChat's limits for
    /// every process sharing the token.
    async fn may_force_refresh(&self) -> Result<bool, TokenError> {
        let day = wechat_day();
        if let Some(shared) = &self.shared {
            return shared
                .take_forced_refresh(day, FORCE_REFRESH_SPACING, FORCE_REFRESHES_PER_DAY)
                .await;
        }
        Ok(self.forced().take(Instant::now(), day))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forced_refreshes_are_30_seconds_apart_and_20_a_day() {
        let mut forced = ForcedRefreshes::default();
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);

        assert!(forced.take(at(0), 1));
        assert!(!forced.take(at(29), 1));
        let day_one: Vec<bool> = (1..=20).map(|n| forced.take(at(30 * n), 1)).collect();
        assert_eq!(day_one.iter().filter(|taken| **taken).count(), 19);
        assert!(!day_one[19], "the 21st of the day");
        assert!(forced.take(at(30 * 21), 2), "a new day");
    }
}
