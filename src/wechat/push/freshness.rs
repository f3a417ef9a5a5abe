//! Refusing replayed pushes.
//!
//! A plaintext push's signature covers the Token, `timestamp` and `nonce` of its query, not
//! its body: whoever has seen one signed query (in a proxy's log, say) could send it again
//! with any body. So pushes are accepted only with a timestamp near this server's clock,
//! and each signed query only ever with the body it first came with. WeChat's retries of a
//! push repeat the same body, so they still go through (and are stored once).

use std::time::Duration;

use sha1::{Digest, Sha1};

/// Signed queries remembered at most. Only correctly signed pushes are remembered, so
/// this is reached only by a real flood of scans within one window (500,000 in 10 minutes
/// at the default window); past it the oldest are forgotten first.
const MAX_REMEMBERED: u64 = 500_000;

/// Why a push is refused as stale or replayed (403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    #[error("the push's timestamp is not a number of seconds")]
    BadTimestamp,
    #[error(
        "the push's timestamp is {skew} s away from this server's clock; pushes more than \
         {window} s away are refused (SCENE_QR_PUSH_WINDOW_SECONDS; check the server's clock)"
    )]
    OutsideWindow { skew: i64, window: u64 },
    #[error("this signed query was already used with another body: a replayed push")]
    Replayed,
}

pub struct PushFreshness {
    /// `None`: the check is off (SCENE_QR_PUSH_WINDOW_SECONDS=0).
    window: Option<Duration>,
    /// SHA-1 of each signed query's `timestamp` and `nonce`, to the SHA-1 of the body it
    /// came with. Kept for twice the window: a timestamp is accepted up to the window on
    /// either side of now.
    seen: moka::sync::Cache<[u8; 20], [u8; 20]>,
}

impl PushFreshness {
    /// Accepts timestamps at most `window_seconds` from now; 0 turns the checks off.
    pub fn new(window_seconds: u32) -> Self {
        let window = (window_seconds > 0).then(|| Duration::from_secs(window_seconds.into()));
        let seen = moka::sync::Cache::builder()
            .max_capacity(MAX_REMEMBERED)
            // Least recently used goes first: moka's default admission policy may refuse to
            // keep a new claim at all once full, and an unkept claim protects nothing.
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .time_to_live(window.unwrap_or_default() * 2 + Duration::from_secs(1))
            .build();
        Self { window, seen }
    }

    /// Checks the query's timestamp against `now` (Unix seconds): enough to refuse an old
    /// signed query before its body is read.
    pub fn check_timestamp(&self, timestamp: &str, now: i64) -> Result<(), Stale> {
        let Some(window) = self.window else {
            return Ok(());
        };
        let sent: i64 = timestamp.parse().map_err(|_| Stale::BadTimestamp)?;
        let skew = sent.saturating_sub(now);
        if skew.unsigned_abs() > window.as_secs() {
            return Err(Stale::OutsideWindow {
                skew,
                window: window.as_secs(),
            });
        }
        Ok(())
    }

    /// Claims the signed query (`timestamp`, `nonce`) for `body`: the first body to come
    /// with it owns it, and a later push with it is accepted only with the same body.
    pub fn claim(&self, timestamp: &str, nonce: &str, body: &[u8]) -> Result<(), Stale> {
        if self.window.is_none() {
            return Ok(());
        }
        let query: [u8; 20] = Sha1::new()
            .chain_update(timestamp.as_bytes())
            .chain_update([0])
            .chain_update(nonce.as_bytes())
            .finalize()
            .into();
        let body: [u8; 20] = Sha1::digest(body).into();
        let claimed = self.seen.entry(query).or_insert(body);
        if claimed.is_fresh() || claimed.value() == &body {
            Ok(())
        } else {
            Err(Stale::Replayed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_timestamp_within_the_window_on_either_side_is_accepted() {
        let freshness = PushFreshness::new(300);
        assert_eq!(freshness.check_timestamp("1800000300", NOW), Ok(()));
        assert_eq!(freshness.check_timestamp("1799999700", NOW), Ok(()));
    }

    #[test]
    fn a_timestamp_beyond_the_window_is_refused_with_its_skew() {
        let freshness = PushFreshness::new(300);
        assert_eq!(
            freshness.check_timestamp("1799999699", NOW),
            Err(Stale::OutsideWindow {
                skew: -301,
                window: 300
            })
        );
        assert!(freshness.check_timestamp("1800000301", NOW).is_err());
        assert_eq!(
            freshness.check_timestamp("soon", NOW),
            Err(Stale::BadTimestamp)
        );
    }

    #[test]
    fn a_signed_query_is_accepted_again_only_with_the_same_body() {
        let freshness = PushFreshness::new(300);
        assert_eq!(freshness.claim("1800000000", "n1", b"scan"), Ok(()));

        assert_eq!(freshness.claim("1800000000", "n1", b"scan"), Ok(()));
        assert_eq!(
            freshness.claim("1800000000", "n1", b"forged"),
            Err(Stale::Replayed)
        );
        assert_eq!(freshness.claim("1800000000", "n2", b"forged"), Ok(()));
        assert_eq!(freshness.claim("1800000001", "n1", b"forged"), Ok(()));
    }

    #[test]
    fn a_window_of_zero_turns_both_checks_off() {
        let freshness = PushFreshness::new(0);
        assert_eq!(freshness.check_timestamp("1", NOW), Ok(()));
        assert_eq!(freshness.claim("1", "n", b"a"), Ok(()));
        assert_eq!(freshness.claim("1", "n", b"b"), Ok(()));
    }
}
