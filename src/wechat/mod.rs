//! Everything that speaks WeChat: the API client with its token and ticket caches, and the
//! pieces of the push protocol (signatures, safe-mode crypto, the XML of events).
//!
//! The caches are `Send + Sync` and shared by all workers, while each worker brings its own
//! [`WechatClient`].

mod client;
pub mod crypto;
pub mod errcode;
pub mod push;
pub mod signature;
mod tickets;
mod token;

pub use client::{Endpoint, TokenEndpoint, UpstreamConfig, UpstreamError, WechatClient};
pub use tickets::{TicketCache, create as create_ticket};
pub use token::TokenCache;
