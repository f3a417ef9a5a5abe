//! Everything that speaks WeChat: the API client with its access token cache, creating a
//! code, and the pieces of the push protocol (signatures, safe-mode crypto, the XML of
//! events).
//!
//! The token cache is `Send + Sync` and shared by all workers, while each worker brings its
//! own [`WechatClient`].

mod client;
pub mod crypto;
pub mod errcode;
pub mod push;
mod qrcode;
pub mod signature;
mod token;

pub use client::{
    AccessToken, Endpoint, Quota, TokenEndpoint, UpstreamConfig, UpstreamError, WechatClient,
};
pub use qrcode::create as create_code;
pub use token::{FORCE_REFRESHES_PER_DAY, SharedTokens, TokenCache, TokenError};
