//! Logging set-up.

use log::LevelFilter;

/// Starts env_logger with `filter` (RUST_LOG syntax).
///
/// The HTTP client crates are held at `info` whatever the filter says: at `trace` they may
/// print a request head, and the query of a WeChat request carries the access token or
/// the AppSecret, which must never reach a log.
pub fn init_logging(filter: &str) {
    let _ = env_logger::Builder::new()
        .parse_filters(filter)
        .filter_module("awc", LevelFilter::Info)
        .filter_module("h2", LevelFilter::Info)
        .format_timestamp_millis()
        .try_init();
}
