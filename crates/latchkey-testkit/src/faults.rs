//! Fault injection for the SDK: wrap a real transport in a [`FaultTransport`] and make
//! chosen requests fail the way networks and overloaded servers fail — refused, reset
//! after the server acted, stalled past the SDK's timeout, cut short, answered with
//! garbage, or answered `5xx` by a proxy — while every other request goes through to the
//! real server.
//!
//! ```
//! use latchkey_testkit::faults::{Fault, FaultTransport, Rule};
//! use latchkey_transport::{transport_fn, HttpResponse, HttpTransport, RequestOptions};
//! use latchkey_transport::bytes::Bytes;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let inner = transport_fn(|_req, _opts: RequestOptions| async {
//!     Ok(HttpResponse::new(Bytes::from_static(b"{}")))
//! });
//! let faults = FaultTransport::new(inner);
//! faults.add(Rule::new(Fault::Reset).on("/auth/session").times(1));
//! let req = |path: &str| http::Request::post(format!("http://h{path}")).body(Bytes::new()).unwrap();
//! let err = faults.send(req("/api/client/v2.0/auth/session"), &RequestOptions::new()).await.unwrap_err();
//! assert!(err.is_transient());
//! // The reset request reached the server; its answer was lost.
//! assert_eq!(faults.forwarded("/auth/session"), 1);
//! // The rule is used up: the next request goes through.
//! faults.send(req("/api/client/v2.0/auth/session"), &RequestOptions::new()).await.unwrap();
//! assert_eq!(faults.forwarded("/auth/session"), 2);
//! assert_eq!(faults.injected(), 1);
//! # });
//! ```

use std::sync::{Arc, Mutex, MutexGuard};

use latchkey_transport::bytes::Bytes;
use latchkey_transport::{
    HttpRequest, HttpResponse, HttpTransport, RequestOptions, TransportError, TransportErrorKind,
};

/// One way a request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The connection is refused: the request never reaches the server.
    Refuse,
    /// The server receives and handles the request, then the connection is reset before
    /// the answer arrives.
    Reset,
    /// Nothing ever comes back (the request is not sent): the SDK's own timeout ends it.
    Stall,
    /// The server handles the request; its answer arrives with the body cut in half.
    Truncate,
    /// The server handles the request; its answer arrives as `200 OK` with a JSON
    /// content type and a body that is not what any route returns.
    Garbage,
    /// A proxy answers with this status (an HTML page, no JSON); the request never
    /// reaches the server. A storm of them is [`Rule::new`] without [`Rule::times`].
    Status(u16),
}

impl Fault {
    /// Every kind of fault, with `500`, `502`, `503` and `504` for [`Fault::Status`].
    pub const ALL: [Fault; 9] = [
        Fault::Refuse,
        Fault::Reset,
        Fault::Stall,
        Fault::Truncate,
        Fault::Garbage,
        Fault::Status(500),
        Fault::Status(502),
        Fault::Status(503),
        Fault::Status(504),
    ];

    /// Whether the server sees the request.
    pub fn reaches_server(self) -> bool {
        matches!(self, Fault::Reset | Fault::Truncate | Fault::Garbage)
    }
}

/// When to inject a [`Fault`]: on requests whose path contains a pattern (every request
/// by default), for a number of requests (every matching request until
/// [`FaultTransport::clear`] by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    fault: Fault,
    path: Option<String>,
    remaining: Option<usize>,
}

impl Rule {
    /// `fault` on every request.
    pub fn new(fault: Fault) -> Self {
        Rule {
            fault,
            path: None,
            remaining: None,
        }
    }

    /// Only on requests whose path contains `pattern` (e.g. `/auth/session`).
    pub fn on(mut self, pattern: impl Into<String>) -> Self {
        self.path = Some(pattern.into());
        self
    }

    /// Only on the next `n` matching requests.
    pub fn times(mut self, n: usize) -> Self {
        self.remaining = Some(n);
        self
    }

    fn matches(&self, path: &str) -> bool {
        self.remaining != Some(0) && self.path.as_deref().is_none_or(|p| path.contains(p))
    }
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    /// Paths of the requests that reached the inner transport, oldest first.
    forwarded: Vec<String>,
    injected: usize,
}

/// A transport that injects [`Fault`]s around a real one. Clones share the rules and
/// counters, so a test keeps one clone and gives another to the SDK.
#[derive(Debug, Clone)]
pub struct FaultTransport<T> {
    inner: T,
    state: Arc<Mutex<State>>,
}

impl<T> FaultTransport<T> {
    /// Wrap `inner`; no fault until [`add`](Self::add).
    pub fn new(inner: T) -> Self {
        FaultTransport {
            inner,
            state: Arc::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add a rule. The first rule that matches a request (in the order added) decides.
    pub fn add(&self, rule: Rule) {
        self.state().rules.push(rule);
    }

    /// Remove every rule: the network recovers.
    pub fn clear(&self) {
        self.state().rules.clear();
    }

    /// How many requests whose path contains `pattern` reached the inner transport
    /// (including those whose answer a fault then spoiled).
    pub fn forwarded(&self, pattern: &str) -> usize {
        self.state()
            .forwarded
            .iter()
            .filter(|p| p.contains(pattern))
            .count()
    }

    /// How many faults were injected.
    pub fn injected(&self) -> usize {
        self.state().injected
    }

    /// Forget the counters (rules stay).
    pub fn reset_counters(&self) {
        let mut state = self.state();
        state.forwarded.clear();
        state.injected = 0;
    }

    /// The fault for a request to `path`, using up one of its rule's requests.
    fn take(&self, path: &str) -> Option<Fault> {
        let mut state = self.state();
        let rule = state.rules.iter_mut().find(|r| r.matches(path))?;
        if let Some(n) = rule.remaining.as_mut() {
            *n -= 1;
        }
        let fault = rule.fault;
        state.injected += 1;
        Some(fault)
    }
}

fn io_error(kind: TransportErrorKind, message: &str) -> TransportError {
    TransportError::new(kind, message)
}

#[async_trait::async_trait]
impl<T: HttpTransport> HttpTransport for FaultTransport<T> {
    async fn send(
        &self,
        request: HttpRequest,
        options: &RequestOptions,
    ) -> Result<HttpResponse, TransportError> {
        let path = request.uri().path().to_owned();
        let fault = self.take(&path);
        match fault {
            Some(Fault::Refuse) => {
                return Err(io_error(
                    TransportErrorKind::Connect,
                    "injected: connection refused",
                ));
            }
            Some(Fault::Stall) => std::future::pending::<()>().await,
            Some(Fault::Status(code)) => {
                let mut resp = HttpResponse::new(Bytes::from_static(
                    b"<html><body><h1>Bad Gateway</h1>injected</body></html>",
                ));
                *resp.status_mut() = http::StatusCode::from_u16(code).expect("a valid status code");
                resp.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/html"),
                );
                return Ok(resp);
            }
            _ => {}
        }
        self.state().forwarded.push(path);
        let result = self.inner.send(request, options).await;
        match fault {
            Some(Fault::Reset) => Err(io_error(
                TransportErrorKind::Io,
                "injected: connection reset by peer",
            )),
            Some(Fault::Truncate) => result.map(|resp| {
                let (parts, body) = resp.into_parts();
                let half = body.slice(..body.len() / 2);
                HttpResponse::from_parts(parts, half)
            }),
            Some(Fault::Garbage) => result.map(|resp| {
                let (mut parts, _) = resp.into_parts();
                parts.status = http::StatusCode::OK;
                parts.headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                HttpResponse::from_parts(
                    parts,
                    Bytes::from_static(br#"{"access_token": 42, "user_id": [null, {"$oid": "#),
                )
            }),
            _ => result,
        }
    }
}
