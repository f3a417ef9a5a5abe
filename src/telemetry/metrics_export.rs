//! Prometheus metrics: one recorder per process, installed on first use.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds: from a cached page (sub-millisecond) to a timed-out
/// upstream call.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The handle that renders `/metrics`. Several apps in one process (the tests) share it.
pub fn metrics_handle() -> PrometheusHandle {
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

thread_local! {
    static WORKER: String = {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed).to_string()
    };
}

/// The `worker` label of the metrics counted on every request: a number per thread.
///
/// Each worker counts in series of its own, so that two cores never write to one
/// counter (the cache line moving between them on every request cost a measurable share of
/// the cached page's throughput; see bench/README.md). Sum over `worker` for the service's
/// totals.
pub fn worker() -> String {
    WORKER.with(Clone::clone)
}
