//! The middleware that logs one line per request and counts it in the metrics.
//!
//! It runs on every request, a cached page included, so it is written for that path: its
//! future is a concrete type (`middleware::from_fn` boxes two futures per request), metric
//! handles are kept per worker, and the log line is assembled with integer formatting
//! (formatting the address and a float through `core::fmt` was two fifths of its cost).

use std::cell::RefCell;
use std::future::{Ready, ready};
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::metric_names::{HTTP_REQUEST_DURATION, HTTP_REQUESTS};
use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::Method;
use actix_web::{Error, HttpRequest};
use foldhash::{HashMap, HashMapExt};
use metrics::{Counter, Histogram};
use pin_project_lite::pin_project;

/// Logs one line per request (address, method, path without the query string, status,
/// size, duration) and counts it by route pattern (not raw path: bounded cardinality).
pub struct ObserveRequests;

impl<S, B> Transform<S, ServiceRequest> for ObserveRequests
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = ObserveRequestsService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ObserveRequestsService {
            service,
            // Asked once per worker: the filter is fixed when logging starts, and asking the
            // logger on each request walks its directives, once more than the line itself does.
            log_access: log::log_enabled!(log::Level::Info),
        }))
    }
}

pub struct ObserveRequestsService<S> {
    service: S,
    log_access: bool,
}

impl<S, B> Service<ServiceRequest> for ObserveRequestsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = Observed<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        Observed {
            started: Instant::now(),
            log_access: self.log_access,
            inner: self.service.call(req),
        }
    }
}

pin_project! {
    /// A request being answered; observed when the answer is ready.
    pub struct Observed<F> {
        #[pin]
        inner: F,
        started: Instant,
        log_access: bool,
    }
}

impl<F, B> Future for Observed<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
    B: MessageBody,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        let elapsed = this.started.elapsed();
        match &result {
            Ok(response) => {
                let size = match response.response().body().size() {
                    BodySize::Sized(n) => n,
                    _ => 0,
                };
                observe(
                    response.request(),
                    response.status().as_u16(),
                    size,
                    elapsed,
                    *this.log_access,
                );
            }
            // Handlers and extractors answer their errors as responses; an error reaching
            // this far comes from a middleware, and the server answers it without a request
            // left to describe.
            Err(error) => log::warn!("a request failed before its answer: {error}"),
        }
        Poll::Ready(result)
    }
}

fn observe(request: &HttpRequest, status: u16, size: u64, elapsed: Duration, log_access: bool) {
    record(request, status, elapsed);
    if log_access {
        LINE.with_borrow_mut(|line| {
            line.clear();
            write_access_line(
                line,
                request.peer_addr().map(|a| a.ip()),
                request.method(),
                request.path(),
                status,
                size,
                elapsed,
            );
            log::info!("{line}");
        });
    }
}

/// Metric handles for one route, per worker thread: looking a labelled metric up in
/// the global registry on every request would hash and allocate its labels each time.
struct RouteMetrics {
    /// The pattern is a plain path, so a request for that path is this route's without
    /// matching it against every route again.
    static_route: bool,
    duration: Histogram,
    counts: Vec<(Method, u16, Counter)>,
}

impl RouteMetrics {
    fn new(pattern: &str) -> Self {
        Self {
            static_route: pattern.starts_with('/') && !pattern.contains('{'),
            duration: metrics::histogram!(
                HTTP_REQUEST_DURATION,
                "route" => pattern.to_string(),
                "worker" => super::worker()
            ),
            counts: Vec::new(),
        }
    }

    fn record(&mut self, pattern: &str, method: &Method, status: u16, elapsed: Duration) {
        self.duration.record(elapsed.as_secs_f64());
        let method = known_method(method);
        match self
            .counts
            .iter()
            .find(|(m, s, _)| m == method && *s == status)
        {
            Some((_, _, counter)) => counter.increment(1),
            None => {
                let counter = metrics::counter!(
                    HTTP_REQUESTS,
                    "route" => pattern.to_string(),
                    "method" => method.as_str().to_string(),
                    "status" => status.to_string(),
                    "worker" => super::worker()
                );
                counter.increment(1);
                self.counts.push((method.clone(), status, counter));
            }
        }
    }
}

/// Stands for every method outside the standard set in the metrics.
static OTHER_METHOD: std::sync::LazyLock<Method> =
    std::sync::LazyLock::new(|| Method::from_bytes(b"other").unwrap_or(Method::GET));

/// The method as a metric label: a standard one as itself, any other as `other`. actix
/// accepts any token as a method, and one series per made-up method would let clients
/// grow the metrics, and this worker's list of series, without bound.
fn known_method(method: &Method) -> &Method {
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    if STANDARD.contains(method) {
        method
    } else {
        &OTHER_METHOD
    }
}

thread_local! {
    /// Keyed by route pattern (and "unmatched"): as many entries as routes.
    static ROUTES: RefCell<HashMap<String, RouteMetrics>> = RefCell::new(HashMap::new());
    /// The log line being assembled, reused so that a line costs no allocation.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

fn record(request: &HttpRequest, status: u16, elapsed: Duration) {
    ROUTES.with_borrow_mut(|routes| {
        let path = request.path();
        if let Some(metrics) = routes.get_mut(path)
            && metrics.static_route
        {
            metrics.record(path, request.method(), status, elapsed);
            return;
        }
        // Matches the path against the routes again: only for routes with parameters and
        // for the first request of each static one.
        let pattern = request.match_pattern();
        let pattern = pattern.as_deref().unwrap_or("unmatched");
        if let Some(metrics) = routes.get_mut(pattern) {
            metrics.record(pattern, request.method(), status, elapsed);
            return;
        }
        let mut metrics = RouteMetrics::new(pattern);
        metrics.record(pattern, request.method(), status, elapsed);
        routes.insert(pattern.to_string(), metrics);
    });
}

/// `127.0.0.1 "GET /qrcode" 200 2235 0.412ms`
fn write_access_line(
    line: &mut String,
    peer: Option<IpAddr>,
    method: &Method,
    path: &str,
    status: u16,
    size: u64,
    elapsed: Duration,
) {
    let mut digits = itoa::Buffer::new();
    match peer {
        Some(IpAddr::V4(ip)) => {
            for (i, octet) in ip.octets().into_iter().enumerate() {
                if i > 0 {
                    line.push('.');
                }
                line.push_str(digits.format(octet));
            }
        }
        Some(ip) => line.push_str(&ip.to_string()),
        None => line.push('-'),
    }
    line.push_str(" \"");
    line.push_str(method.as_str());
    line.push(' ');
    line.push_str(path);
    line.push_str("\" ");
    line.push_str(digits.format(status));
    line.push(' ');
    line.push_str(digits.format(size));
    line.push(' ');
    // Milliseconds to three decimals from whole microseconds (cut, not rounded): integer
    // formatting, where a float would go through core::fmt's slow path.
    // In u64 (584,000 years): formatting a u128 costs twice as much.
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    line.push_str(digits.format(micros / 1000));
    line.push('.');
    let fraction = digits.format(1000 + micros % 1000);
    line.push_str(&fraction[1..]);
    line.push_str("ms");
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    fn line(peer: Option<IpAddr>, micros: u64) -> String {
        let mut line = String::new();
        write_access_line(
            &mut line,
            peer,
            &Method::GET,
            "/qrcode",
            200,
            2235,
            Duration::from_micros(micros),
        );
        line
    }

    #[test]
    fn an_access_line_reads_like_a_common_log_line() {
        assert_eq!(
            line(Some([127, 0, 0, 1].into()), 412),
            r#"127.0.0.1 "GET /qrcode" 200 2235 0.412ms"#
        );
    }

    #[test]
    fn durations_keep_their_leading_zeros_and_whole_milliseconds() {
        assert!(line(None, 5).ends_with(" 0.005ms"), "{}", line(None, 5));
        assert!(line(None, 1_234_050).ends_with(" 1234.050ms"));
        assert!(line(None, 0).ends_with(" 0.000ms"));
    }

    #[test]
    fn other_addresses_are_written_in_their_usual_form() {
        assert!(line(Some(Ipv6Addr::LOCALHOST.into()), 1).starts_with("::1 \"GET"));
        assert!(line(None, 1).starts_with("- \"GET"));
        assert!(line(Some([10, 200, 3, 255].into()), 1).starts_with("10.200.3.255 "));
    }
}
