//! The access-token cache: one token for the whole process, fetched once per lifetime.
//!
//! Every token call spends quota the account shares with its other systems (2,000 a day on
//! the classic endpoint), so concurrent misses are coalesced by moka into one call, a
//! rejected token is dropped only if it is still the cached one, and a call is retried once
//! with a fresh token, never in a loop.

use std::future::Future;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;
use moka::ops::compute::Op;

use super::client::TokenEndpoint;
use super::client::{AccessToken, UpstreamError, WechatClient};
use crate::telemetry::metric_names::{TOKEN_CACHE, TOKEN_REFRESHES};

/// WeChat allows `force_refresh` at most every 30 seconds (and 20 times a day).
const FORCE_REFRESH_SPACING: Duration = Duration::from_secs(30);

/// Registered once: every new code reads the token (see `codes.rs` on hot-path counters).
static TOKEN_HITS: LazyLock<metrics::Counter> =
    LazyLock::new(|| metrics::counter!(TOKEN_CACHE, "result" => "hit"));
static TOKEN_MISSES: LazyLock<metrics::Counter> =
    LazyLock::new(|| metrics::counter!(TOKEN_CACHE, "result" => "miss"));

pub struct TokenCache {
    cache: Cache<(), AccessToken>,
    /// When this process last forced a refresh; a std mutex because it is held for a
    /// comparison only, never across an `.await`, and only on the rare rejected-token path.
    last_forced: Mutex<Option<Instant>>,
}

struct TokenExpiry;

impl Expiry<(), AccessToken> for TokenExpiry {
    fn expire_after_create(&self, _: &(), token: &AccessToken, _: Instant) -> Option<Duration> {
        Some(token.usable_for)
    }
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenCache {
    pub fn new() -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(1)
                .expire_after(TokenExpiry)
                .build(),
            last_forced: Mutex::new(None),
        }
    }

    /// The cached token, or a fresh one (one call for all concurrent callers).
    pub async fn current(&self, client: &WechatClient) -> Result<AccessToken, UpstreamError> {
        let entry = self
            .cache
            .entry(())
            .or_try_insert_with(client.fetch_token(false))
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
    ) -> Result<T, UpstreamError>
    where
        F: Fn(AccessToken) -> Fut,
        Fut: Future<Output = Result<T, UpstreamError>>,
    {
        let token = self.current(client).await?;
        match call(token.clone()).await {
            Err(e) if e.is_token_rejected() => {
                log::warn!("access token rejected ({e}); fetching a fresh one and retrying once");
                let fresh = self.replace(client, &token).await?;
                call(fresh).await
            }
            other => other,
        }
    }

    /// Replaces a token WeChat rejected. Drops it only if it is still the cached one: another
    /// request may already have put a fresh token in its place, which must not be thrown away.
    async fn replace(
        &self,
        client: &WechatClient,
        rejected: &AccessToken,
    ) -> Result<AccessToken, UpstreamError> {
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
        self.cache
            .try_get_with((), async {
                let fresh = client.fetch_token(false).await?;
                // The stable endpoint hands back the current token while WeChat thinks it is
                // valid. If that is the very token just rejected, only a forced refresh helps.
                if fresh == *rejected
                    && client.token_endpoint() == TokenEndpoint::Stable
                    && self.may_force_refresh()
                {
                    log::warn!("stable_token returned the rejected token; forcing a refresh");
                    metrics::counter!(TOKEN_REFRESHES, "reason" => "forced").increment(1);
                    client.fetch_token(true).await
                } else {
                    metrics::counter!(TOKEN_REFRESHES, "reason" => "rejected").increment(1);
                    Ok(fresh)
                }
            })
            .await
            .map_err(|e| (*e).clone())
    }

    fn may_force_refresh(&self) -> bool {
        // A poisoned lock only means another thread panicked mid-comparison; the value is
        // still a plain timestamp, so keep using it.
        let mut last = self
            .last_forced
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        match *last {
            Some(at) if now.duration_since(at) < FORCE_REFRESH_SPACING => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }
}
