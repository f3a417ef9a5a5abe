//! scene-qr: parametric WeChat Official Account QR codes (带参数二维码), one page per scene.
//!
//! A tour of the modules, in the order a request meets them:
//!
//! - [`settings`]: flags and environment variables, turned once at start-up into a
//!   [`settings::Config`] of checked values: live or sandbox mode, access control (with its
//!   users file read), the allowances.
//!   [`secret`] holds the credential type that is never printed.
//! - [`startup`]: builds the actix-web app on a given listener; in sandbox mode starts the
//!   [`emulator`] and points the app at it.
//! - [`routes`]: the HTTP handlers, one module per feature (home, code pages, callback,
//!   statistics, labels, sandbox, metrics, assets, health).
//! - [`domain`]: validated input. A [`domain::CodeRequest`] (scene plus kind) can only be
//!   built valid, so nothing past the routes re-checks it.
//! - [`codes`]: the ticket for a code, cheapest source first: the worker's own copy of a hot
//!   code's answers, the shared cache (with its rendered answers), the database for
//!   permanent codes, then WeChat, within each client's and the service's allowance.
//! - [`wechat`]: the WeChat API client and its two caches (access token, tickets), with
//!   single-flight misses and one retry on a rejected token; the push protocol
//!   (signatures, safe-mode AES, event XML, refusing replays).
//! - [`store`]: SQLite through sqlx: the inventory of codes, labels, scan events and the
//!   statistics queries. Every write goes through one writer that commits concurrent
//!   writes together and answers each only once it is on disk.
//! - [`chart`]: scans per day as server-rendered SVG.
//! - [`pages`] and [`render`]: askama templates, and the QR images rendered locally.
//! - [`error`]: one error type, rendered as a page or as JSON, with its HTTP status.
//! - [`emulator`]: the WeChat endpoints emulated over HTTP, for sandbox mode and the tests.
//! - [`auth`]: staff access control (none, Basic with a users file, or an SSO header).
//! - [`security_headers`]: the content security policy and the other headers on every
//!   answer.
//! - [`telemetry`]: logging set-up, Prometheus metrics, and the middleware that logs and
//!   counts every request.

pub mod auth;
pub mod chart;
pub mod codes;
pub mod domain;
pub mod emulator;
pub mod error;
pub mod pages;
pub mod render;
pub mod routes;
pub mod secret;
pub mod security_headers;
pub mod settings;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod wechat;
