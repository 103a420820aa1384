//! Prometheus metrics (`GET /metrics`, the `[metrics]` table) and the health probes
//! (`GET /healthz`, `GET /readyz`).
//!
//! Every request passes [`track`]: it times the request and, from the route template
//! (never the raw path: no ids or tokens in labels), the method and the status, counts
//! it, and counts logins, refreshes, registrations and throttled answers. The series
//! are `metrics-exporter-prometheus` handles: recording one is an atomic operation, and
//! finding it takes no lock for the routes of [`KNOWN_ROUTES`] (a `OnceLock` per series,
//! set at the series' first use); another route's series is looked up in the recorder's
//! registry. Database pool use and query errors are read at scrape time.
//!
//! The metric names and labels are listed in `docs/operations.md`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use latchkey_protocol::routes::paths;
use metrics::{Counter, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use super::response::json_response;
use crate::auth::ops;
use crate::auth::state::SharedState;

/// The latency histogram's buckets, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// How often recorded latencies are folded into the histograms between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);
/// The `route` label of a request that matched no route.
const UNMATCHED: &str = "unmatched";

/// Route templates whose series are found without a lock. A route missing here still
/// gets its series (through the recorder's registry).
pub(crate) const KNOWN_ROUTES: &[&str] = &[
    paths::LOCATION,
    paths::LOGIN,
    paths::SESSION,
    paths::PROFILE,
    paths::DELETE_USER,
    paths::API_KEYS,
    paths::API_KEY,
    paths::API_KEY_ENABLE,
    paths::API_KEY_DISABLE,
    paths::REGISTER,
    paths::CONFIRM,
    paths::CONFIRM_SEND,
    paths::CONFIRM_CALL,
    paths::RESET,
    paths::RESET_SEND,
    paths::RESET_CALL,
    paths::JWKS,
    paths::OPENID_CONFIGURATION,
    paths::OAUTH_CALLBACK,
    HEALTHZ,
    READYZ,
    METRICS,
];

/// Liveness probe path.
pub(crate) const HEALTHZ: &str = "/healthz";
/// Readiness probe path.
pub(crate) const READYZ: &str = "/readyz";
/// Metrics path.
pub(crate) const METRICS: &str = "/metrics";

/// Methods with their own series slots; others share the last.
const METHODS: [&str; 6] = ["GET", "POST", "PUT", "DELETE", "OPTIONS", "OTHER"];
/// Status classes.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Outcomes of logins, refreshes and registrations.
const OUTCOMES: [&str; 4] = ["success", "failure", "throttled", "error"];

fn method_index(m: &Method) -> usize {
    match *m {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::DELETE => 3,
        Method::OPTIONS => 4,
        _ => 5,
    }
}

fn class_index(status: StatusCode) -> usize {
    usize::from(status.as_u16() / 100).clamp(1, 5) - 1
}

/// `success` (2xx), `throttled` (429), `error` (5xx), `failure` (any other).
fn outcome_index(status: StatusCode) -> usize {
    if status.is_success() {
        0
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        2
    } else if status.is_server_error() {
        3
    } else {
        1
    }
}

/// The series of one route and method, registered at first use.
#[derive(Default)]
struct MethodSeries {
    latency: OnceLock<Histogram>,
    by_class: [OnceLock<Counter>; 5],
    throttled: OnceLock<Counter>,
}

/// The series of one route.
#[derive(Default)]
struct RouteSeries {
    methods: [MethodSeries; 6],
}

/// The server's metrics: the recorder and the handles of its series.
pub(crate) struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    routes: HashMap<&'static str, RouteSeries>,
    unmatched: RouteSeries,
    /// Logins by provider index (see `providers`) and outcome; the last row is
    /// "other" (an unknown provider name).
    logins: Vec<[OnceLock<Counter>; 4]>,
    providers: Vec<&'static str>,
    refreshes: [OnceLock<Counter>; 4],
    registrations: [OnceLock<Counter>; 4],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

impl Metrics {
    /// A new, empty set of metrics, and a task that keeps the histograms' memory
    /// bounded between scrapes (it ends when the metrics are dropped).
    pub(crate) fn start() -> Arc<Metrics> {
        let recorder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        describe(&recorder);
        let providers: Vec<&'static str> = ops::provider_names().collect();
        let metrics = Arc::new(Metrics {
            routes: KNOWN_ROUTES
                .iter()
                .map(|r| (*r, RouteSeries::default()))
                .collect(),
            unmatched: RouteSeries::default(),
            logins: (0..=providers.len()).map(|_| Default::default()).collect(),
            providers,
            refreshes: Default::default(),
            registrations: Default::default(),
            recorder,
            handle,
        });
        let weak: Weak<Metrics> = Arc::downgrade(&metrics);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
            tick.tick().await;
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(m) => m.handle.run_upkeep(),
                    None => break,
                }
            }
        });
        metrics
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &METADATA)
    }

    fn series<'a>(
        &'a self,
        cell: &'a OnceLock<Counter>,
        name: &'static str,
        labels: impl FnOnce() -> Vec<Label>,
    ) -> &'a Counter {
        cell.get_or_init(|| self.counter(name, labels()))
    }

    /// Record one answered request.
    fn record(&self, route: &str, method: &Method, status: StatusCode, elapsed: Duration) {
        let series = match self.routes.get(route) {
            Some(s) => Some(s),
            None if route == UNMATCHED => Some(&self.unmatched),
            None => None,
        };
        let m = method_index(method);
        let class = class_index(status);
        let route_label = || Label::new("route", route.to_owned());
        let method_label = || Label::new("method", METHODS[m]);
        let class_label = || Label::new("status", CLASSES[class]);
        let latency_key = || {
            Key::from_parts(
                "latchkey_http_request_duration_seconds",
                vec![route_label(), method_label()],
            )
        };
        let requests = || vec![route_label(), method_label(), class_label()];
        let throttled = || vec![route_label()];
        let secs = elapsed.as_secs_f64();
        match series {
            Some(s) => {
                let s = &s.methods[m];
                s.latency
                    .get_or_init(|| self.recorder.register_histogram(&latency_key(), &METADATA))
                    .record(secs);
                self.series(&s.by_class[class], "latchkey_http_requests_total", requests)
                    .increment(1);
                if status == StatusCode::TOO_MANY_REQUESTS {
                    self.series(&s.throttled, "latchkey_throttled_requests_total", throttled)
                        .increment(1);
                }
            }
            None => {
                self.recorder
                    .register_histogram(&latency_key(), &METADATA)
                    .record(secs);
                self.counter("latchkey_http_requests_total", requests())
                    .increment(1);
                if status == StatusCode::TOO_MANY_REQUESTS {
                    self.counter("latchkey_throttled_requests_total", throttled())
                        .increment(1);
                }
            }
        }
    }

    /// The index of `provider` (a path segment) among the providers; any name outside
    /// the registry is `other`, the last.
    fn provider_index(&self, provider: &str) -> usize {
        self.providers
            .iter()
            .position(|p| *p == provider)
            .unwrap_or(self.providers.len())
    }

    /// Count a login through the provider of [`Metrics::provider_index`] `i`.
    fn record_login(&self, i: usize, status: StatusCode) {
        let name = self.providers.get(i).copied().unwrap_or("other");
        let o = outcome_index(status);
        self.series(&self.logins[i][o], "latchkey_logins_total", || {
            vec![
                Label::new("provider", name),
                Label::new("outcome", OUTCOMES[o]),
            ]
        })
        .increment(1);
    }

    fn record_outcome(
        &self,
        cells: &[OnceLock<Counter>; 4],
        name: &'static str,
        status: StatusCode,
    ) {
        let o = outcome_index(status);
        self.series(&cells[o], name, || vec![Label::new("outcome", OUTCOMES[o])])
            .increment(1);
    }

    /// The Prometheus text exposition of every series, with the database pool and
    /// query-error gauges read now.
    fn render(&self, state: &SharedState) -> String {
        let pool = ops::pool_status(state);
        let gauge = |name: &'static str, labels: Vec<Label>, value: f64| {
            self.recorder
                .register_gauge(&Key::from_parts(name, labels), &METADATA)
                .set(value);
        };
        gauge(
            "latchkey_db_pool_connections",
            vec![Label::new("state", "idle")],
            f64::from(pool.idle),
        );
        gauge(
            "latchkey_db_pool_connections",
            vec![Label::new("state", "in_use")],
            f64::from(pool.size.saturating_sub(pool.idle)),
        );
        gauge(
            "latchkey_db_pool_max_connections",
            vec![],
            f64::from(pool.max),
        );
        let errors = ops::query_errors();
        for (kind, n) in [
            ("unavailable", errors.unavailable),
            ("database", errors.database),
            ("corrupt", errors.corrupt),
        ] {
            self.counter(
                "latchkey_db_query_errors_total",
                vec![Label::new("kind", kind)],
            )
            .absolute(n);
        }
        self.handle.render()
    }
}

/// The help lines of the series.
fn describe(recorder: &PrometheusRecorder) {
    use metrics::{KeyName, SharedString, Unit};
    let help = |name: &'static str, unit: Option<Unit>, text: &'static str| {
        recorder.describe_counter(KeyName::from(name), unit, SharedString::from(text));
    };
    help(
        "latchkey_http_request_duration_seconds",
        Some(Unit::Seconds),
        "Time to answer a request, by route template and method.",
    );
    help(
        "latchkey_http_requests_total",
        None,
        "Answered requests by route template, method and status class.",
    );
    help(
        "latchkey_throttled_requests_total",
        None,
        "Requests answered 429 (failed-login or message limits), by route template.",
    );
    help(
        "latchkey_logins_total",
        None,
        "Logins and links by provider and outcome (success, failure, throttled, error).",
    );
    help(
        "latchkey_refreshes_total",
        None,
        "Access-token refreshes by outcome.",
    );
    help(
        "latchkey_registrations_total",
        None,
        "Email/password registrations by outcome.",
    );
    help(
        "latchkey_db_pool_connections",
        None,
        "Database connections of this node's pool, idle or in use.",
    );
    help(
        "latchkey_db_pool_max_connections",
        None,
        "Most connections this node's pool opens.",
    );
    help(
        "latchkey_db_query_errors_total",
        None,
        "Failed database statements of this process, by kind.",
    );
}

/// The provider segment of a login path (`.../auth/providers/{provider}/login`).
fn login_provider(path: &str) -> &str {
    path.trim_end_matches('/')
        .rsplit('/')
        .nth(1)
        .unwrap_or_default()
}

/// The middleware that times and counts every request (added with `Router::layer`, so
/// the route template is known).
pub(crate) async fn track(
    State(metrics): State<Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let login_provider = match &route {
        Some(r) if r.as_str() == paths::LOGIN => {
            Some(metrics.provider_index(login_provider(req.uri().path())))
        }
        _ => None,
    };
    let resp = next.run(req).await;
    let status = resp.status();
    let route = route.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    metrics.record(route, &method, status, start.elapsed());
    if let Some(provider) = login_provider {
        metrics.record_login(provider, status);
    } else if route == paths::SESSION && method == Method::POST {
        metrics.record_outcome(&metrics.refreshes, "latchkey_refreshes_total", status);
    } else if route == paths::REGISTER && method == Method::POST {
        metrics.record_outcome(
            &metrics.registrations,
            "latchkey_registrations_total",
            status,
        );
    }
    resp
}

/// `GET /metrics`.
pub(crate) async fn metrics(
    State((state, metrics)): State<(SharedState, Arc<Metrics>)>,
) -> Response {
    let body = metrics.render(&state);
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// `GET /healthz`: the process is up and answers (no database round trip).
pub(crate) async fn healthz() -> Response {
    json_response(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when the database answers and its migrations are applied, else
/// 503 with the reason.
pub(crate) async fn readyz(State(state): State<SharedState>) -> Response {
    match ops::ready(&state).await {
        Ok(()) => json_response(StatusCode::OK, &serde_json::json!({"status": "ready"})),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({"status": "unavailable", "reason": reason}),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_provider_is_the_segment_before_login() {
        assert_eq!(
            login_provider("/api/client/v2.0/app/a/auth/providers/anon-user/login"),
            "anon-user"
        );
        assert_eq!(login_provider("/login"), "");
    }

    #[test]
    fn status_classes_and_outcomes() {
        assert_eq!(CLASSES[class_index(StatusCode::OK)], "2xx");
        assert_eq!(CLASSES[class_index(StatusCode::NOT_FOUND)], "4xx");
        assert_eq!(CLASSES[class_index(StatusCode::BAD_GATEWAY)], "5xx");
        assert_eq!(OUTCOMES[outcome_index(StatusCode::OK)], "success");
        assert_eq!(OUTCOMES[outcome_index(StatusCode::UNAUTHORIZED)], "failure");
        assert_eq!(
            OUTCOMES[outcome_index(StatusCode::TOO_MANY_REQUESTS)],
            "throttled"
        );
        assert_eq!(
            OUTCOMES[outcome_index(StatusCode::SERVICE_UNAVAILABLE)],
            "error"
        );
    }
}
