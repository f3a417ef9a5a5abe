//! The access token that replicas share (`access_tokens`, one row per AppID): the stored
//! token, the lease of the one replica fetching a new one, and the count of forced
//! refreshes. Plain values here; what they mean to WeChat is `wechat::token`'s business.

use std::time::Duration;

use sqlx::PgPool;

use crate::store::{StoreError, unix_now_ms};

/// The stored token of `$1` if it is usable after `$2` (Unix ms).
const STORED: &str = "SELECT token, usable_until FROM access_tokens
     WHERE appid = $1 AND token IS NOT NULL AND usable_until > $2";

/// Takes the fetch lease of `$1` for holder `$2` until `$3`, unless another holder's lease
/// runs past `$4` (now): a row comes back when the lease is `$2`'s.
const LEASE: &str = "INSERT INTO access_tokens (appid, fetcher, fetch_until) VALUES ($1, $2, $3)
     ON CONFLICT (appid) DO UPDATE SET fetcher = excluded.fetcher, fetch_until = excluded.fetch_until
     WHERE access_tokens.fetcher IS NULL OR access_tokens.fetcher = excluded.fetcher
        OR access_tokens.fetch_until < $4
     RETURNING fetcher";

/// Stores token `$3` usable until `$4` and ends the lease, if holder `$2` still holds it:
/// a replica whose lease ran out must not put back a token that a later fetch has ended.
const SAVE: &str =
    "UPDATE access_tokens SET token = $3, usable_until = $4, fetcher = NULL, fetch_until = 0
     WHERE appid = $1 AND fetcher = $2";

/// Ends holder `$2`'s lease of `$1` without a token (the fetch failed).
const RELEASE: &str = "UPDATE access_tokens SET fetcher = NULL, fetch_until = 0
     WHERE appid = $1 AND fetcher = $2";

/// Clears token `$2` of `$1`, only if it is still the stored one (compare and set).
const DROP_IF_CURRENT: &str =
    "UPDATE access_tokens SET token = NULL, usable_until = 0 WHERE appid = $1 AND token = $2";

/// The forced refreshes of `$1` counted on day `$2`.
const FORCED_ON: &str =
    "SELECT forced_today FROM access_tokens WHERE appid = $1 AND forced_day = $2";

/// Counts a forced refresh of `$1` at `$2` (Unix ms) on day `$3`, if the last was at least
/// `$4` ms before and fewer than `$5` were counted that day: a row comes back when it may go.
const TAKE_FORCED: &str = "INSERT INTO access_tokens (appid, forced_day, forced_today, forced_at)
     VALUES ($1, $3, 1, $2)
     ON CONFLICT (appid) DO UPDATE SET forced_at = $2, forced_day = $3,
         forced_today = CASE WHEN access_tokens.forced_day = $3 THEN access_tokens.forced_today + 1 ELSE 1 END
     WHERE access_tokens.forced_at <= $2 - $4
       AND (access_tokens.forced_day <> $3 OR access_tokens.forced_today < $5)
     RETURNING appid";

/// One AppID's row of `access_tokens`, as this process sees it.
#[derive(Clone)]
pub(crate) struct TokenShare {
    pool: PgPool,
    appid: String,
    /// This process, the holder of its leases.
    holder: String,
}

/// A token as stored: its value and until when it may be used (Unix ms).
pub(crate) struct StoredToken {
    pub(crate) value: String,
    pub(crate) usable_until_ms: i64,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl TokenShare {
    pub(crate) fn new(pool: PgPool, appid: &str, holder: &str) -> Self {
        Self {
            pool,
            appid: appid.to_string(),
            holder: holder.to_string(),
        }
    }

    /// The stored token, if there is one usable for a while yet.
    pub(crate) async fn stored(&self) -> Result<Option<StoredToken>, StoreError> {
        let row: Option<(String, i64)> = sqlx::query_as(STORED)
            .bind(&self.appid)
            .bind(unix_now_ms())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(value, usable_until_ms)| StoredToken {
            value,
            usable_until_ms,
        }))
    }

    /// Takes the lease to fetch a new token for `lease`; false while another holds it.
    pub(crate) async fn lease(&self, lease: Duration) -> Result<bool, StoreError> {
        let now = unix_now_ms();
        let leased: Option<String> = sqlx::query_scalar(LEASE)
            .bind(&self.appid)
            .bind(&self.holder)
            .bind(now.saturating_add(millis(lease)))
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(leased.is_some())
    }

    /// Stores a token fetched under this process's lease, usable for `usable_for` from
    /// now, and ends the lease. False when the lease had been taken over meanwhile.
    pub(crate) async fn save(&self, value: &str, usable_for: Duration) -> Result<bool, StoreError> {
        let saved = sqlx::query(SAVE)
            .bind(&self.appid)
            .bind(&self.holder)
            .bind(value)
            .bind(unix_now_ms().saturating_add(millis(usable_for)))
            .execute(&self.pool)
            .await?;
        Ok(saved.rows_affected() == 1)
    }

    /// Ends this process's lease without a token.
    pub(crate) async fn release(&self) -> Result<(), StoreError> {
        sqlx::query(RELEASE)
            .bind(&self.appid)
            .bind(&self.holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Clears `rejected` if it is still the stored token.
    pub(crate) async fn drop_if_current(&self, rejected: &str) -> Result<(), StoreError> {
        sqlx::query(DROP_IF_CURRENT)
            .bind(&self.appid)
            .bind(rejected)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The forced refreshes counted on `day`, by every replica.
    pub(crate) async fn forced_on(&self, day: i64) -> Result<u32, StoreError> {
        let forced: Option<i32> = sqlx::query_scalar(FORCED_ON)
            .bind(&self.appid)
            .bind(day)
            .fetch_optional(&self.pool)
            .await?;
        Ok(forced.map_or(0, |count| u32::try_from(count).unwrap_or(0)))
    }

    /// Counts a forced refresh now, if the last one (by any replica) was at least
    /// `spacing` ago and fewer than `per_day` were counted on `day`.
    pub(crate) async fn take_forced(
        &self,
        day: i64,
        spacing: Duration,
        per_day: u32,
    ) -> Result<bool, StoreError> {
        let taken: Option<String> = sqlx::query_scalar(TAKE_FORCED)
            .bind(&self.appid)
            .bind(unix_now_ms())
            .bind(day)
            .bind(millis(spacing))
            .bind(i32::try_from(per_day).unwrap_or(i32::MAX))
            .fetch_optional(&self.pool)
            .await?;
        Ok(taken.is_some())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::TokenShare;
    use crate::store::Store;
    use crate::store::test_postgres::fresh_database;

    const HOUR: Duration = Duration::from_secs(3600);
    const LEASE: Duration = Duration::from_secs(15);

    /// Two processes' views of one AppID's row on one database.
    async fn two_replicas(test: &str) -> Option<(TokenShare, TokenShare)> {
        let url = fresh_database(test).await?;
        let mut shares = Vec::new();
        for _ in 0..2 {
            let (store, _writer) = Store::open(&url, time::UtcOffset::UTC).await.unwrap();
            shares.push(
                store
                    .token_share("wxone")
                    .expect("PostgreSQL shares tokens"),
            );
        }
        let second = shares.pop()?;
        Some((shares.pop()?, second))
    }

    fn value(share: Option<super::StoredToken>) -> Option<String> {
        share.map(|token| token.value)
    }

    #[actix_web::test]
    async fn one_replica_at_a_time_holds_the_lease_and_its_token_is_everyones() {
        let Some((first, second)) = two_replicas("token lease").await else {
            return;
        };
        assert!(first.lease(LEASE).await.unwrap());
        assert!(!second.lease(LEASE).await.unwrap());
        assert!(first.save("t1", HOUR).await.unwrap());

        assert_eq!(value(second.stored().await.unwrap()).as_deref(), Some("t1"));
        // The save ended the lease: the other may fetch now.
        assert!(second.lease(LEASE).await.unwrap());
    }

    #[actix_web::test]
    async fn a_lease_taken_over_after_its_end_keeps_the_late_token_out() {
        let Some((first, second)) = two_replicas("token lease taken over").await else {
            return;
        };
        assert!(first.lease(Duration::ZERO).await.unwrap());
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        assert!(second.lease(LEASE).await.unwrap());
        assert!(second.save("t2", HOUR).await.unwrap());

        // The first replica's fetch ended late; its token may be the one t2 replaced.
        assert!(!first.save("t1", HOUR).await.unwrap());
        assert_eq!(value(first.stored().await.unwrap()).as_deref(), Some("t2"));
    }

    #[actix_web::test]
    async fn a_rejected_token_is_cleared_only_while_it_is_the_stored_one() {
        let Some((first, second)) = two_replicas("token compare and set").await else {
            return;
        };
        assert!(first.lease(LEASE).await.unwrap());
        assert!(first.save("t1", HOUR).await.unwrap());
        assert!(second.lease(LEASE).await.unwrap());
        assert!(second.save("t2", HOUR).await.unwrap());

        first.drop_if_current("t1").await.unwrap();
        assert_eq!(value(first.stored().await.unwrap()).as_deref(), Some("t2"));
        second.drop_if_current("t2").await.unwrap();
        assert_eq!(value(first.stored().await.unwrap()), None);
    }

    #[actix_web::test]
    async fn an_expired_token_is_not_given_out() {
        let Some((first, _)) = two_replicas("expired shared token").await else {
            return;
        };
        assert!(first.lease(LEASE).await.unwrap());
        assert!(first.save("t1", Duration::ZERO).await.unwrap());
        assert_eq!(value(first.stored().await.unwrap()), None);
    }

    #[actix_web::test]
    async fn forced_refreshes_are_spaced_and_counted_per_day_for_all_replicas() {
        let Some((first, second)) = two_replicas("forced refresh limits").await else {
            return;
        };
        let spacing = Duration::from_millis(200);
        assert!(first.take_forced(100, spacing, 3).await.unwrap());
        assert!(!second.take_forced(100, spacing, 3).await.unwrap());
        actix_web::rt::time::sleep(spacing).await;
        assert!(second.take_forced(100, spacing, 3).await.unwrap());
        actix_web::rt::time::sleep(spacing).await;
        assert!(first.take_forced(100, spacing, 3).await.unwrap());
        actix_web::rt::time::sleep(spacing).await;
        // Three on day 100: none more that day, whoever asks; the next day counts anew.
        assert!(!second.take_forced(100, spacing, 3).await.unwrap());
        assert_eq!(first.forced_on(100).await.unwrap(), 3);
        assert!(second.take_forced(101, spacing, 3).await.unwrap());
        assert_eq!(first.forced_on(101).await.unwrap(), 1);
        assert_eq!(
            first.forced_on(100).await.unwrap(),
            0,
            "the row keeps the latest day"
        );
    }
}
