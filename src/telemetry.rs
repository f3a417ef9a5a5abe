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

/// Prometheus metrics: one recorder per process, installed on first use.
pub mod metrics_export {
    use std::sync::OnceLock;
    use std::time::Instant;

    use actix_web::body::MessageBody;
    use actix_web::dev::{ServiceRequest, ServiceResponse};
    use actix_web::middleware::Next;
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

    /// Latency buckets in seconds: from a cached page (sub-millisecond) to a timed-out
    /// upstream call.
    const BUCKETS: &[f64] = &[
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];

    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

    /// The handle that renders `/metrics`. Several apps in one process (the tests) share it.
    pub fn handle() -> PrometheusHandle {
        HANDLE
            .get_or_init(|| {
                let recorder = PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                    .map(PrometheusBuilder::build_recorder);
                match recorder {
                    Ok(recorder) => {
                        let handle = recorder.handle();
                        if metrics::set_global_recorder(recorder).is_err() {
                            log::warn!("a metrics recorder was already installed");
                        }
                        handle
                    }
                    Err(e) => {
                        log::error!("metrics are off: {e}");
                        PrometheusBuilder::new().build_recorder().handle()
                    }
                }
            })
            .clone()
    }

    /// Counts every request by route pattern (not raw path: bounded cardinality), method
    /// and status, with its latency.
    pub async fn record_requests(
        req: ServiceRequest,
        next: Next<impl MessageBody>,
    ) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
        let started = Instant::now();
        let method = req.method().to_string();
        let response = next.call(req).await?;
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        let status = response.status().as_u16().to_string();
        metrics::counter!("scene_qr_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
            .increment(1);
        metrics::histogram!("scene_qr_http_request_duration_seconds", "route" => route)
            .record(started.elapsed().as_secs_f64());
        Ok(response)
    }
}
