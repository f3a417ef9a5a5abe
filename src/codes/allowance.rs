//! The allowances of new codes: each client's, and the service's whoever asks. Only new
//! codes count: a cached code costs WeChat nothing.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::CodeError;

/// The allowances of new codes, each per minute with a burst of the same size; 0 is no
/// limit.
#[derive(Debug, Clone, Copy)]
pub struct NewCodeAllowance {
    pub per_client: u32,
    pub in_total: u32,
}

/// The allowances, counted.
pub struct Allowance {
    /// New codes per client per minute; `None` when unlimited. Keyed per client (a sharded
    /// map inside governor), so clients never queue behind one lock.
    per_client: Option<DefaultKeyedRateLimiter<String>>,
    /// Checks of `per_client` since its clients were last swept (see [`Self::spend`]).
    checks_since_sweep: AtomicU64,
    /// New codes per minute for the whole service, whoever asks: many clients (or
    /// addresses) together must not spend the account's daily quota, or this process's
    /// memory, without bound.
    in_total: Option<DefaultDirectRateLimiter>,
}

impl Allowance {
    pub fn new(allowance: NewCodeAllowance) -> Self {
        let per_minute = |n| NonZeroU32::new(n).map(Quota::per_minute);
        Self {
            per_client: per_minute(allowance.per_client).map(RateLimiter::keyed),
            checks_since_sweep: AtomicU64::new(0),
            in_total: per_minute(allowance.in_total).map(RateLimiter::direct),
        }
    }

    /// Spends one new code of the client's allowance, then one of the service's. The
    /// client's comes first so that a client over its own allowance never uses up the one
    /// everybody shares.
    pub fn spend(&self, client: impl FnOnce() -> String) -> Result<(), CodeError> {
        let wait = |not_until: governor::NotUntil<_>| {
            not_until
                .wait_time_from(DefaultClock::default().now())
                .max(Duration::from_secs(1))
        };
        if let Some(limiter) = &self.per_client {
            // Every client asked about stays in the limiter's map until swept. A sweep
            // drops the clients whose allowance has refilled (60 / allowance seconds per
            // code spent, a minute at most), so sweeping every 1,024 checks keeps the map
            // to the clients of about the last minute, however many addresses ask.
            if self.checks_since_sweep.fetch_add(1, Ordering::Relaxed) % 1_024 == 1_023 {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
            if let Err(not_until) = limiter.check_key(&client()) {
                return Err(CodeError::RateLimited {
                    retry_after: wait(not_until),
                });
            }
        }
        if let Some(limiter) = &self.in_total
            && let Err(not_until) = limiter.check()
        {
            return Err(CodeError::ServerBusy {
                retry_after: wait(not_until),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn clients_seen_once_do_not_stay_in_the_allowance_map() {
        let allowance = Allowance::new(NewCodeAllowance {
            per_client: 120,
            in_total: 0,
        });

        for address in 0..5_000 {
            allowance.spend(|| format!("ip:{address}")).unwrap();
            if address == 2_500 {
                // Their one code each is refilled after half a second, and swept a
                // replenish interval later.
                actix_web::rt::time::sleep(Duration::from_millis(1_200)).await;
            }
        }

        let held = allowance
            .per_client
            .as_ref()
            .map_or(0, |limiter| limiter.len());
        assert!(held < 3_000, "{held} clients kept of 5,000");
    }

    #[test]
    fn the_service_s_allowance_is_spent_whoever_asks() {
        let allowance = Allowance::new(NewCodeAllowance {
            per_client: 0,
            in_total: 3,
        });

        for client in 0..3 {
            allowance.spend(|| format!("ip:{client}")).unwrap();
        }

        assert!(matches!(
            allowance.spend(|| "ip:4".into()),
            Err(CodeError::ServerBusy { .. })
        ));
    }
}
