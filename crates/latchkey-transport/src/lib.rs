//! The HTTP transport abstraction of latchkey.
//!
//! Every request the SDK makes goes through an [`HttpTransport`]: a small,
//! object-safe trait over [`http::Request<Bytes>`] and [`http::Response<Bytes>`].
//! latchkey ships adapters for reqwest (`latchkey-transport-reqwest`) and hyper
//! (`latchkey-transport-hyper`); an application can bring its own, for example to
//! add a header or a proxy, by implementing the trait or with [`transport_fn`].
//!
//! ```
//! use latchkey_transport::{transport_fn, HttpRequest, HttpResponse, RequestOptions, SharedTransport};
//! use latchkey_transport::bytes::Bytes;
//!
//! # async fn demo() {
//! let fake = SharedTransport::new(transport_fn(|req: HttpRequest, _opts: RequestOptions| async move {
//!     assert_eq!(req.uri().path(), "/hello");
//!     Ok(HttpResponse::new(Bytes::from_static(b"{}")))
//! }));
//! let req = http::Request::get("http://127.0.0.1/hello").body(Bytes::new()).unwrap();
//! let resp = fake.send(req, &RequestOptions::default()).await.unwrap();
//! assert_eq!(resp.status(), 200);
//! # }
//! # tokio_test_block_on(demo());
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```
#![deny(missing_docs)]

pub mod adapter;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use bytes;
pub use http;

use bytes::Bytes;

/// A request as transports see it.
pub type HttpRequest = http::Request<Bytes>;
/// A response as transports return it (the whole body, buffered).
pub type HttpResponse = http::Response<Bytes>;

/// Sends one HTTP request and returns the response, whatever its status.
///
/// A non-2xx status is **not** an error at this layer: only failing to get a
/// response at all is a [`TransportError`]. Implementations must honour
/// [`RequestOptions::timeout`] and [`RequestOptions::max_response_bytes`] (stop reading a
/// longer body and fail with [`adapter::body_too_large`]).
#[async_trait::async_trait]
pub trait HttpTransport: fmt::Debug + Send + Sync {
    /// Send `request` and read the whole response.
    async fn send(
        &self,
        request: HttpRequest,
        options: &RequestOptions,
    ) -> Result<HttpResponse, TransportError>;
}

#[async_trait::async_trait]
impl<T: HttpTransport + ?Sized> HttpTransport for Arc<T> {
    async fn send(
        &self,
        request: HttpRequest,
        options: &RequestOptions,
    ) -> Result<HttpResponse, TransportError> {
        (**self).send(request, options).await
    }
}

#[async_trait::async_trait]
impl<T: HttpTransport + ?Sized> HttpTransport for Box<T> {
    async fn send(
        &self,
        request: HttpRequest,
        options: &RequestOptions,
    ) -> Result<HttpResponse, TransportError> {
        (**self).send(request, options).await
    }
}

/// A cheaply clonable, type-erased transport.
#[derive(Clone, Debug)]
pub struct SharedTransport(Arc<dyn HttpTransport>);

impl SharedTransport {
    /// Wrap a transport.
    pub fn new(transport: impl HttpTransport + 'static) -> Self {
        SharedTransport(Arc::new(transport))
    }

    /// Send a request through the wrapped transport.
    pub async fn send(
        &self,
        request: HttpRequest,
        options: &RequestOptions,
    ) -> Result<HttpResponse, TransportError> {
        self.0.send(request, options).await
    }
}

impl From<Arc<dyn HttpTransport>> for SharedTransport {
    fn from(t: Arc<dyn HttpTransport>) -> Self {
        SharedTransport(t)
    }
}

#[async_trait::async_trait]
impl HttpTransport for SharedTransport {
    async fn send(
        &self,
        request: HttpRequest,
        options: &RequestOptions,
    ) -> Result<HttpResponse, TransportError> {
        self.0.send(request, options).await
    }
}

/// The largest response body a transport reads unless told otherwise: 16 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Per-request options handed to the transport.
///
/// ```
/// use std::time::Duration;
/// use latchkey_transport::{RequestOptions, DEFAULT_MAX_RESPONSE_BYTES};
/// let o = RequestOptions::new().with_timeout(Duration::from_secs(5)).with_idempotent(true);
/// assert_eq!(o.timeout(), Some(Duration::from_secs(5)));
/// assert!(o.is_idempotent());
/// assert_eq!(o.max_response_bytes(), DEFAULT_MAX_RESPONSE_BYTES);
/// assert_eq!(o.route(), None);
/// assert_eq!(o.with_max_response_bytes(1024).max_response_bytes(), 1024);
/// let session = RequestOptions::new().with_route("/api/client/v2.0/auth/session");
/// assert_eq!(session.route(), Some("/api/client/v2.0/auth/session"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestOptions {
    timeout: Option<Duration>,
    idempotent: bool,
    attempt: u32,
    max_response_bytes: usize,
    route: Option<&'static str>,
}

impl Default for RequestOptions {
    fn default() -> Self {
        RequestOptions {
            timeout: None,
            idempotent: false,
            attempt: 0,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            route: None,
        }
    }
}

impl RequestOptions {
    /// No timeout, not idempotent, first attempt, bodies up to
    /// [`DEFAULT_MAX_RESPONSE_BYTES`], no route.
    pub fn new() -> Self {
        Self::default()
    }

    /// Name the API route the request is for, as a template without ids, e.g.
    /// `/api/client/v2.0/auth/api_keys/{key_id}` (the `paths` constants of
    /// `latchkey_protocol::routes`). The SDK sets it on every request it builds, for
    /// middleware: tracing spans, metrics, retry decisions. It never contains a secret.
    pub fn with_route(mut self, route: &'static str) -> Self {
        self.route = Some(route);
        self
    }

    /// The route template, or `None` for a request outside the client API (such as a
    /// request an application sends through `User::request` to its own endpoint).
    pub fn route(&self) -> Option<&'static str> {
        self.route
    }

    /// Read at most `max` bytes of response body. A longer body fails the request with a
    /// non-transient [`TransportErrorKind::Protocol`] error ("response body larger than
    /// `max` bytes", see [`adapter::body_too_large`]); transports stop reading as soon as
    /// the limit is passed (or at once when `Content-Length` announces more).
    pub fn with_max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max;
        self
    }

    /// The largest response body the transport may read, in bytes.
    pub fn max_response_bytes(&self) -> usize {
        self.max_response_bytes
    }

    /// Set the whole-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Mark the request as safe to retry.
    pub fn with_idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// Set the attempt number (0 for the first try), for middleware.
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// The whole-request timeout, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Whether the request may be retried.
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }

    /// The attempt number, 0 for the first try.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// What went wrong while sending a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// Could not connect (refused, DNS, unreachable).
    Connect,
    /// The request timed out.
    Timeout,
    /// I/O failed mid-request (reset, torn read).
    Io,
    /// TLS handshake or certificate failure.
    Tls,
    /// The peer spoke malformed HTTP, or the request could not be built.
    Protocol,
    /// The request was cancelled.
    Cancelled,
    /// Anything else.
    Other,
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportErrorKind::Connect => "connection failed",
            TransportErrorKind::Timeout => "request timed out",
            TransportErrorKind::Io => "I/O error",
            TransportErrorKind::Tls => "TLS error",
            TransportErrorKind::Protocol => "HTTP protocol error",
            TransportErrorKind::Cancelled => "request cancelled",
            TransportErrorKind::Other => "transport error",
        })
    }
}

/// Failure to get any HTTP response. Opaque: inspect it with [`kind`](Self::kind)
/// and the predicates; the adapter's own error is reachable through
/// [`std::error::Error::source`] only.
///
/// ```
/// use latchkey_transport::{TransportError, TransportErrorKind};
/// let e = TransportError::new(TransportErrorKind::Connect, "connection refused");
/// assert!(e.is_transient());
/// assert!(e.is_connect());
/// assert_eq!(e.to_string(), "connection failed: connection refused");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct TransportError {
    kind: TransportErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl TransportError {
    /// An error of `kind` with a message. The message must not contain secrets
    /// (URLs are fine: latchkey never puts tokens in URLs).
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        TransportError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attach the underlying error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// True for a timeout.
    pub fn is_timeout(&self) -> bool {
        self.kind == TransportErrorKind::Timeout
    }

    /// True when no connection could be made.
    pub fn is_connect(&self) -> bool {
        self.kind == TransportErrorKind::Connect
    }

    /// True when trying again later may succeed (connect, timeout, I/O).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            TransportErrorKind::Connect | TransportErrorKind::Timeout | TransportErrorKind::Io
        )
    }
}

/// A transport made from an async closure; handy for tests and small middleware.
///
/// See the crate documentation for an example.
pub fn transport_fn<F, Fut>(f: F) -> TransportFn<F>
where
    F: Fn(HttpRequest, RequestOptions) -> Fut + Send + Sync,
    Fut: Future<Output = Result<HttpResponse, TransportError>> + Send,
{
    TransportFn(f)
}

/// The transport returned by [`transport_fn`].
#[derive(Clone)]
pub struct TransportFn<F>(F);

impl<F> fmt::Debug for TransportFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TransportFn")
    }
}

#[async_trait::async_trait]
impl<F, Fut> HttpTransport for TransportFn<F>
where
    F: Fn(HttpRequest, RequestOptions) -> Fut + Send + Sync,
    Fut: Future<Output = Result<HttpResponse, TransportError>> + Send,
{
    async fn send(
        &self,
        request: HttpRequest,
        options: &RequestOptions,
    ) -> Result<HttpResponse, TransportError> {
        (self.0)(request, options.clone()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_classification() {
        use TransportErrorKind::*;
        for (kind, transient) in [
            (Connect, true),
            (Timeout, true),
            (Io, true),
            (Tls, false),
            (Protocol, false),
            (Cancelled, false),
            (Other, false),
        ] {
            assert_eq!(
                TransportError::new(kind, "x").is_transient(),
                transient,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn max_response_bytes_defaults_to_16_mib() {
        let o = RequestOptions::new();
        assert_eq!(o.max_response_bytes(), 16 * 1024 * 1024);
        assert_eq!(o, RequestOptions::default());
        let o = o.with_max_response_bytes(1).with_attempt(3);
        assert_eq!((o.max_response_bytes(), o.attempt()), (1, 3));
        let e = adapter::body_too_large(1, "http://x/");
        assert_eq!(e.kind(), TransportErrorKind::Protocol);
        assert!(!e.is_transient());
    }

    #[test]
    fn the_route_is_carried_and_unset_by_default() {
        assert_eq!(RequestOptions::new().route(), None);
        let o = RequestOptions::new()
            .with_attempt(1)
            .with_route("/api/client/v2.0/auth/session");
        assert_eq!(o.route(), Some("/api/client/v2.0/auth/session"));
        assert_ne!(o, RequestOptions::new().with_attempt(1));
    }

    #[test]
    fn source_is_kept() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let e = TransportError::new(TransportErrorKind::Io, "read failed").with_source(io);
        let src = std::error::Error::source(&e).unwrap();
        assert!(src.to_string().contains("reset"));
    }

    #[tokio::test]
    async fn shared_transport_is_dyn_and_clonable() {
        let t = SharedTransport::new(transport_fn(|_req, opts: RequestOptions| async move {
            assert_eq!(opts.attempt(), 2);
            Err(TransportError::new(TransportErrorKind::Timeout, "slow"))
        }));
        let t2 = t.clone();
        let req = http::Request::get("http://x/").body(Bytes::new()).unwrap();
        let err = t2
            .send(req, &RequestOptions::new().with_attempt(2))
            .await
            .unwrap_err();
        assert!(err.is_timeout());
    }
}
