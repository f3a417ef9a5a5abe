//! Getting the ticket for a code, cheapest source first: the in-memory cache, then a live
//! code already in the database (after a restart), and only then WeChat.

use std::sync::Arc;

use crate::domain::CodeRequest;
use crate::store::Store;
use crate::wechat::{Ticket, TicketCache, TokenCache, UpstreamError, WechatClient, create_ticket};

/// Shared by every worker.
pub struct CodeService {
    tokens: TokenCache,
    tickets: TicketCache,
    store: Store,
}

impl CodeService {
    pub fn new(store: Store) -> Self {
        Self {
            tokens: TokenCache::new(),
            tickets: TicketCache::new(),
            store,
        }
    }

    /// The ticket for `code`. Concurrent misses for one code make one database look-up and
    /// at most one WeChat call.
    pub async fn ticket(
        &self,
        client: &WechatClient,
        code: &CodeRequest,
    ) -> Result<Arc<Ticket>, UpstreamError> {
        self.tickets
            .get_with(code, async {
                // The database only saves quota: when it fails, WeChat still answers.
                match self.store.reusable_code(code).await {
                    Ok(Some(ticket)) => return Ok(Arc::new(ticket)),
                    Ok(None) => {}
                    Err(e) => log::warn!("looking up earlier codes failed: {e}"),
                }
                let ticket = create_ticket(client, &self.tokens, code).await?;
                if let Err(e) = self.store.record_code(code, &ticket).await {
                    log::error!(
                        "the new code for scene {} was not recorded: {e}",
                        code.scene
                    );
                }
                Ok(ticket)
            })
            .await
    }

    /// Number of tickets held in the cache.
    pub fn cached_tickets(&self) -> u64 {
        self.tickets.count()
    }
}
