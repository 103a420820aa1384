//! The access log: one span per request (`request`: method, route template, and the
//! app and user once a bearer token names them) and one DEBUG line per answer (status,
//! latency), target `latchkey_server::http::access`; and, at INFO, one summary line a
//! minute (requests, answers by class, mean latency) instead of a line per request, so
//! logging stays cheap under load. Tokens, passwords and keys are never fields.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::Request;
use axum::response::Response;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;
use tracing::Span;
use tracing::field::Empty;

/// How often the INFO summary is written (when there were requests).
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Counters of the answers since the last summary.
#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    /// By status class: 1xx-2xx-3xx, 4xx, 5xx.
    ok: AtomicU64,
    client_errors: AtomicU64,
    server_errors: AtomicU64,
    latency_us: AtomicU64,
}

impl Counters {
    fn record(&self, status: u16, latency: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let class = match status {
            500.. => &self.server_errors,
            400..500 => &self.client_errors,
            _ => &self.ok,
        };
        class.fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Write the summary of the answers since the last one, and start again.
    fn summarize(&self, every: Duration) {
        let requests = self.requests.swap(0, Ordering::Relaxed);
        let ok = self.ok.swap(0, Ordering::Relaxed);
        let client_errors = self.client_errors.swap(0, Ordering::Relaxed);
        let server_errors = self.server_errors.swap(0, Ordering::Relaxed);
        let latency_us = self.latency_us.swap(0, Ordering::Relaxed);
        if requests == 0 {
            return;
        }
        tracing::info!(
            target: "latchkey_server::http::access",
            requests,
            ok,
            client_errors,
            server_errors,
            mean_latency_us = latency_us / requests,
            period_secs = every.as_secs(),
            "requests answered"
        );
    }
}

/// Write the summary every `every` while the counters live (the router holds them).
fn spawn_summary(counters: Weak<Counters>, every: Duration) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(counters) = counters.upgrade() else {
                return;
            };
            counters.summarize(every);
        }
    });
}

/// The request span: method and route template now, app and user when a bearer token
/// is authenticated ([`record_caller`]).
fn make_span<B>(req: &Request<B>) -> Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("(no route)", MatchedPath::as_str);
    tracing::debug_span!(
        target: "latchkey_server::http::access",
        "request",
        method = %req.method(),
        route,
        app = Empty,
        user = Empty,
    )
}

/// Name the authenticated app and user in the current request's span.
pub(crate) fn record_caller(app: &str, user: &str) {
    let span = Span::current();
    span.record("app", app);
    span.record("user", user);
}

/// How the request span is made.
type MakeSpan = fn(&Request<axum::body::Body>) -> Span;

/// The access-log layer of the router.
pub(crate) fn layer() -> TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    MakeSpan,
    (),
    impl Fn(&Response, Duration, &Span) + Clone,
> {
    let counters = Arc::new(Counters::default());
    spawn_summary(Arc::downgrade(&counters), SUMMARY_EVERY);
    TraceLayer::new_for_http()
        .make_span_with(make_span::<axum::body::Body> as MakeSpan)
        .on_request(())
        .on_response(move |res: &Response, latency: Duration, _span: &Span| {
            counters.record(res.status().as_u16(), latency);
            tracing::debug!(
                target: "latchkey_server::http::access",
                status = res.status().as_u16(),
                latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
                "answered"
            );
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_by_class_and_start_again() {
        let c = Counters::default();
        c.record(200, Duration::from_micros(10));
        c.record(404, Duration::from_micros(20));
        c.record(503, Duration::from_micros(30));
        assert_eq!(c.requests.load(Ordering::Relaxed), 3);
        assert_eq!(c.ok.load(Ordering::Relaxed), 1);
        assert_eq!(c.client_errors.load(Ordering::Relaxed), 1);
        assert_eq!(c.server_errors.load(Ordering::Relaxed), 1);
        assert_eq!(c.latency_us.load(Ordering::Relaxed), 60);
        c.summarize(SUMMARY_EVERY);
        assert_eq!(c.requests.load(Ordering::Relaxed), 0);
        assert_eq!(c.latency_us.load(Ordering::Relaxed), 0);
    }
}
