//! Every metric's name, in one place: the names are the service's interface to its
//! dashboards and alerts (the README lists them), so they are chosen here, not where they
//! are counted.

/// Requests answered, by `route`, `method` (`other` for non-standard ones), `status`, `worker`.
pub const HTTP_REQUESTS: &str = "scene_qr_http_requests_total";
/// Time to answer, by `route` and `worker`.
pub const HTTP_REQUEST_DURATION: &str = "scene_qr_http_request_duration_seconds";
/// Calls to WeChat, by `endpoint` and `errcode`.
pub const UPSTREAM_CALLS: &str = "scene_qr_upstream_calls_total";
/// Time a call to WeChat took, by `endpoint`.
pub const UPSTREAM_CALL_DURATION: &str = "scene_qr_upstream_call_duration_seconds";
/// Ticket look-ups, by `result` (hit or miss) and `worker`.
pub const TICKET_CACHE: &str = "scene_qr_ticket_cache_total";
/// Access-token look-ups, by `result`.
pub const TOKEN_CACHE: &str = "scene_qr_token_cache_total";
/// Access tokens fetched again after WeChat refused one.
pub const TOKEN_REFRESHES: &str = "scene_qr_token_refreshes_total";
/// Tickets in the cache.
pub const CACHED_TICKETS: &str = "scene_qr_cached_tickets";
/// Pushes received, by `event`.
pub const CALLBACK_EVENTS: &str = "scene_qr_callback_events_total";
/// What became of pushed events, by `outcome` (new, duplicate, failed, late).
pub const STORED_EVENTS: &str = "scene_qr_stored_events_total";
