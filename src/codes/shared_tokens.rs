//! The access token shared by replicas, kept in their database: the store's row of
//! `access_tokens` seen as `wechat`'s [`SharedTokens`]. Here because `codes` is the one
//! module that knows both the store and WeChat, which know nothing of each other.

use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use crate::store::{StoreError, TokenShare};
use crate::wechat::{AccessToken, SharedTokens, TokenError};

fn unshared(error: StoreError) -> TokenError {
    TokenError::Unshared(error.to_string())
}

impl SharedTokens for TokenShare {
    fn stored(&self) -> BoxFuture<'_, Result<Option<AccessToken>, TokenError>> {
        async move {
            let stored = self.stored().await.map_err(unshared)?;
            Ok(stored.map(|token| {
                let left = token.usable_until_ms - crate::store::unix_now_ms();
                let left = Duration::from_millis(u64::try_from(left).unwrap_or(0));
                AccessToken::shared(&token.value, left)
            }))
        }
        .boxed()
    }

    fn lease(&self, lease: Duration) -> BoxFuture<'_, Result<bool, TokenError>> {
        async move { self.lease(lease).await.map_err(unshared) }.boxed()
    }

    fn save<'a>(&'a self, token: &'a AccessToken) -> BoxFuture<'a, Result<(), TokenError>> {
        async move {
            if !self
                .save(token.expose(), token.usable_for)
                .await
                .map_err(unshared)?
            {
                log::info!("a new access token was not shared: another replica took the lease");
            }
            Ok(())
        }
        .boxed()
    }

    fn release(&self) -> BoxFuture<'_, Result<(), TokenError>> {
        async move { self.release().await.map_err(unshared) }.boxed()
    }

    fn drop_if_current<'a>(
        &'a self,
        rejected: &'a AccessToken,
    ) -> BoxFuture<'a, Result<(), TokenError>> {
        async move {
            self.drop_if_current(rejected.expose())
                .await
                .map_err(unshared)
        }
        .boxed()
    }

    fn forced_on(&self, day: i64) -> BoxFuture<'_, Result<u32, TokenError>> {
        async move { self.forced_on(day).await.map_err(unshared) }.boxed()
    }

    fn take_forced_refresh(
        &self,
        day: i64,
        spacing: Duration,
        per_day: u32,
    ) -> BoxFuture<'_, Result<bool, TokenError>> {
        async move {
            self.take_forced(day, spacing, per_day)
                .await
                .map_err(unshared)
        }
        .boxed()
    }
}
