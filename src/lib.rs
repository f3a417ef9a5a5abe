//! scene-qr: parametric WeChat Official Account QR codes (带参数二维码), one page per scene.
//!
//! Start-up: [`settings`] reads flags and environment variables and turns them once into a
//! [`settings::Config`] of checked values (live or sandbox mode, access control with its
//! users file read, the allowances); [`secret`] holds the credential type that is never
//! printed. [`startup`] builds the actix-web app on a listener it is given and, in sandbox
//! mode, starts the [`emulator`] of the WeChat API and points the app at it.
//!
//! A page request, in the order it meets the modules:
//!
//! - [`telemetry`] logs and counts it, [`security_headers`] sets the content security
//!   policy and the other headers, and [`auth`] lets staff in (none, Basic with a users
//!   file, or an SSO header).
//! - [`routes`]: one handler module per feature (home, code pages, callback, statistics,
//!   labels, sandbox, metrics, assets, health), each reading parse -> answer -> respond.
//! - [`domain`]: validated input. A [`domain::CodeRequest`] (scene plus kind) can only be
//!   built valid, so nothing past the routes re-checks it; a [`domain::SceneKey`] is the one
//!   rule for a scene wherever it comes in (a code, a label, a statistics path, a push).
//! - [`codes`]: the ticket for a code, cheapest source first: the worker's own copy of a hot
//!   code's answers, the shared cache (with its rendered answers), the database for
//!   permanent codes, then WeChat, within each client's and the service's allowance.
//! - [`wechat`]: the WeChat API client and its two caches (access token, tickets), with
//!   single-flight misses and one retry on a rejected token.
//! - [`stats`]: what a statistics page, its JSON and CSV, or a scene's page show, gathered
//!   from the store's counts and put in the table's order, with no HTTP in sight.
//! - [`store`]: SQLite through sqlx: the inventory of codes, labels, scan events and the
//!   statistics queries.
//! - [`pages`], [`render`] and [`chart`]: askama templates, the QR images rendered locally,
//!   scans per day as server-rendered SVG; [`error`]: one error type, rendered as a page or
//!   as JSON, with its HTTP status.
//!
//! A push from WeChat: `routes::callback` hands its query to [`wechat::push`]'s receiver,
//! which checks the signature and timestamp before the body is read, then the replay
//! check, safe mode's signature and decryption, and reads a [`domain::AccountEvent`]; the
//! route gives it to [`store`], whose one writer commits concurrent writes together and
//! answers each only once it is on disk; only then is WeChat told `success`.

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
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod wechat;
