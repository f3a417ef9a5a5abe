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
//! - [`telemetry`] logs and counts it, `security_headers` sets the content security
//!   policy and the other headers, `error`'s `ErrorAnswers` renders any error on the
//!   way back (JSON under `/api/`, an HTML page elsewhere), and [`auth`] lets staff in
//!   (none, Basic with a users file, or an SSO header).
//! - `routes`: one handler module per feature (home, code pages, callback, statistics,
//!   labels, sandbox, metrics, assets, health), each reading parse -> answer -> respond.
//! - [`domain`]: validated input. A [`domain::CodeRequest`] (scene plus kind) can only be
//!   built valid, so nothing past the routes re-checks it; a [`domain::SceneKey`] is the one
//!   rule for a scene wherever it comes in (a code, a label, a statistics path, a push).
//! - `codes`: one entry point answers a code as a page, JSON, PNG or SVG, cheapest
//!   source first: the worker's own copy of a hot code's answers, the shared cache (whose
//!   entries keep their rendered answers), the database for permanent codes, then WeChat,
//!   within each client's and the service's allowance. `pages` and `render` (the QR
//!   images drawn locally, at a size for print, captioned, or branded with a logo and
//!   colours and read back before they are served) render what it keeps.
//! - [`wechat`]: the WeChat API client, the access token cache with single-flight misses
//!   and one retry on a rejected token (shared by replicas through the database, which
//!   `codes` plugs in), `qrcode/create`, and the account's quota.
//! - `stats`: what a statistics page, its JSON and CSV, or a scene's page show, gathered
//!   from the store's counts, filtered, put in the table's order and cut into pages, with
//!   no HTTP in sight.
//! - `store`: SQLite or PostgreSQL through sqlx: the inventory of codes, labels and groups,
//!   scan events, the statistics aggregates kept with them and their queries, and what
//!   replicas on one PostgreSQL database share (claims of new codes, the access token);
//!   `chart` draws scans, new followers and lost followers per day as server-rendered SVG.
//!
//! A push from WeChat: `routes::callback` hands its query to [`wechat::push`]'s receiver,
//! which checks the signature and timestamp before the body is read, then the replay
//! check, safe mode's signature and decryption, and reads a [`domain::AccountEvent`]; the
//! route gives it to `store`, whose one writer commits concurrent writes together and
//! answers each only once it is on disk; only then is WeChat told `success`.
//!
//! Events recorded elsewhere: [`import`] (`scene-qr import-events`) reads them as JSON
//! lines of push fields, through the same interpretation, into the same writer.

// Public: what the binary, the tests, the examples and the fuzz target use. The rest is
// the service's inside.
pub mod auth;
pub(crate) mod batches;
pub(crate) mod chart;
pub(crate) mod codes;
pub mod commands;
pub mod domain;
pub mod emulator;
pub(crate) mod error;
pub mod import;
pub(crate) mod pages;
pub(crate) mod render;
pub(crate) mod routes;
pub mod secret;
pub(crate) mod security_headers;
pub mod settings;
pub mod startup;
pub(crate) mod stats;
pub(crate) mod store;
pub mod telemetry;
pub mod wechat;
