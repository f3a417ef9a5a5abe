//! `/metrics` in the Prometheus text format.

use actix_web::{HttpResponse, web};

use super::AppState;
use crate::telemetry;
use crate::telemetry::metric_names::CACHED_TICKETS;

pub async fn render(state: web::Data<AppState>) -> HttpResponse {
    // A gauge read when scraped: the cache counts its own entries.
    metrics::gauge!(CACHED_TICKETS).set(state.codes.cached_tickets().await as f64);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(telemetry::metrics_handle().render())
}
