//! Logging set-up.

use std::io::Write;

use log::LevelFilter;

/// Keeps the log writer running; dropping it writes out what is still queued.
pub struct LogGuard(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard);

/// Starts env_logger with `filter` (RUST_LOG syntax), writing to standard error.
///
/// Lines are handed to a writer thread that writes them in batches: one `write` per
/// request line on the request's own thread cost a quarter of a cached page's time under
/// load. Nothing is dropped (the queue applies back-pressure when full), and the returned
/// guard writes the rest out at exit.
///
/// The HTTP client crates are held at `info` whatever the filter says: at `trace` they may
/// print a request head, and the query of a WeChat request carries the access token or
/// the AppSecret, which must never reach a log.
pub fn init_logging(filter: &str) -> LogGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-writer")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let _ = env_logger::Builder::new()
        .target(env_logger::Target::Pipe(Box::new(writer)))
        .parse_filters(filter)
        .filter_module("awc", LevelFilter::Info)
        .filter_module("h2", LevelFilter::Info)
        .format(|out, record| {
            writeln!(
                out,
                "[{} {:<5} {}] {}",
                out.timestamp_millis(),
                record.level(),
                record.target(),
                record.args()
            )
        })
        .try_init();
    LogGuard(guard)
}

/// Prometheus metrics: one recorder per process, installed on first use, and the
/// middleware that logs and counts every request.
pub mod metrics_export {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    use actix_web::body::{BodySize, MessageBody};
    use actix_web::dev::{ServiceRequest, ServiceResponse};
    use actix_web::http::Method;
    use actix_web::middleware::Next;
    use metrics::{Counter, Histogram};
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
                let handle = match recorder {
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
                };
                // Histograms keep raw samples until folded into buckets; without a scrape
                // they would only grow, so fold them every few seconds.
                let upkeep = handle.clone();
                std::thread::Builder::new()
                    .name("metrics-upkeep".into())
                    .spawn(move || {
                        loop {
                            std::thread::sleep(Duration::from_secs(5));
                            upkeep.run_upkeep();
                        }
                    })
                    .ok();
                handle
            })
            .clone()
    }

    /// Metric handles for one route, per worker thread: looking a labelled metric up in
    /// the global registry on every request would hash and allocate its labels each time.
    struct RouteMetrics {
        duration: Histogram,
        counts: Vec<(Method, u16, Counter)>,
    }

    thread_local! {
        static ROUTES: RefCell<HashMap<String, RouteMetrics>> = RefCell::new(HashMap::new());
    }

    fn record(route: &str, method: &Method, status: u16, elapsed: Duration) {
        ROUTES.with(|routes| {
            let mut routes = routes.borrow_mut();
            let metrics = match routes.get_mut(route) {
                Some(metrics) => metrics,
                None => routes
                    .entry(route.to_string())
                    .or_insert_with(|| RouteMetrics {
                        duration: metrics::histogram!(
                            "scene_qr_http_request_duration_seconds",
                            "route" => route.to_string()
                        ),
                        counts: Vec::new(),
                    }),
            };
            metrics.duration.record(elapsed.as_secs_f64());
            match metrics
                .counts
                .iter()
                .find(|(m, s, _)| m == method && *s == status)
            {
                Some((_, _, counter)) => counter.increment(1),
                None => {
                    let counter = metrics::counter!(
                        "scene_qr_http_requests_total",
                        "route" => route.to_string(),
                        "method" => method.to_string(),
                        "status" => status.to_string()
                    );
                    counter.increment(1);
                    metrics.counts.push((method.clone(), status, counter));
                }
            }
        });
    }

    /// Logs one line per request (address, method, path without the query string, status,
    /// size, duration) and counts it by route pattern (not raw path: bounded cardinality).
    pub async fn observe_requests(
        req: ServiceRequest,
        next: Next<impl MessageBody>,
    ) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
        let started = Instant::now();
        let response = next.call(req).await?;
        let elapsed = started.elapsed();
        let request = response.request();
        let status = response.status().as_u16();
        let route = request.match_pattern();
        let route = route.as_deref().unwrap_or("unmatched");
        record(route, request.method(), status, elapsed);
        if log::log_enabled!(log::Level::Info) {
            let size = match response.response().body().size() {
                BodySize::Sized(n) => n,
                _ => 0,
            };
            log::info!(
                "{} \"{} {}\" {status} {size} {:.3}ms",
                request
                    .peer_addr()
                    .map(|a| a.ip().to_string())
                    .unwrap_or_default(),
                request.method(),
                request.path(),
                elapsed.as_secs_f64() * 1000.0,
            );
        }
        Ok(response)
    }
}
