//! `/metrics` in the Prometheus text format.

use actix_web::HttpResponse;

use crate::telemetry::metrics_export;

pub async fn render() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics_export::handle().render())
}
