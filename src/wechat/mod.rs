//! Everything that talks to WeChat: the HTTP client, the token cache and the ticket cache.
//!
//! [`CodeService`] is what the routes use: it is shared by all workers (the caches are
//! `Send + Sync`), while each worker brings its own [`WechatClient`].

mod client;
pub mod errcode;
mod tickets;
mod token;

use std::sync::Arc;

pub use client::{AccessToken, CreatedCode, Endpoint, UpstreamConfig, UpstreamError, WechatClient};
pub use tickets::Ticket;

use crate::domain::CodeRequest;
use tickets::TicketCache;
use token::TokenCache;

/// Tickets for codes, created on WeChat at most once per code per lifetime.
#[derive(Default)]
pub struct CodeService {
    tokens: TokenCache,
    tickets: TicketCache,
}

impl CodeService {
    pub fn new() -> Self {
        Self::default()
    }

    /// The ticket for `code`, from the cache or from WeChat.
    pub async fn ticket(
        &self,
        client: &WechatClient,
        code: &CodeRequest,
    ) -> Result<Arc<Ticket>, UpstreamError> {
        self.tickets.get(client, &self.tokens, code).await
    }

    /// Number of tickets held in the cache.
    pub fn cached_tickets(&self) -> u64 {
        self.tickets.count()
    }
}
