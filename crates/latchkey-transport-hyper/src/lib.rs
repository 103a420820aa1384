//! A [hyper](https://hyper.rs) adapter for latchkey's [`HttpTransport`], over
//! `hyper_util::client::legacy::Client`.
//!
//! [`HyperTransport`] is for applications that already run hyper and want no
//! second HTTP stack. It keeps a connection pool, speaks HTTP/1.1 over plain
//! TCP or TLS, applies [`RequestOptions::timeout`] to the whole exchange
//! (redirects and body included), follows redirects itself, and reads the whole
//! body, up to [`RequestOptions::max_response_bytes`] (a longer body is a
//! non-transient [`TransportErrorKind::Protocol`] error, and reading stops there). Any status code is a response; only failing to get one is a
//! [`TransportError`], classified into a [`TransportErrorKind`]. hyper's own
//! errors are reachable through [`std::error::Error::source`] only; no hyper
//! type appears in this crate's API.
//!
//! ```
//! use latchkey_transport::SharedTransport;
//! use latchkey_transport_hyper::HyperTransport;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let transport = SharedTransport::new(HyperTransport::new());
//! # let _ = transport;
//! # }
//! ```
//!
//! # Features
//!
//! - `rustls` (default): HTTPS through hyper-rustls with rustls' ring provider
//!   and the webpki root certificates.
//! - `native-tls`: HTTPS through the platform's TLS library, via hyper-tls.
//!   When both features are on, [`HyperTransport::new`] uses native-tls
//!   (`rustls` is on by default, so enabling `native-tls` is the explicit
//!   choice); [`HyperTransport::rustls`] still picks rustls.
//!
//! With neither feature the transport speaks plain HTTP only, and an `https`
//! URL fails with a [`TransportErrorKind::Protocol`] error.
//!
//! # Redirects
//!
//! Up to [`DEFAULT_MAX_REDIRECTS`] redirects (`301`, `302`, `303`, `307`,
//! `308`) are followed; more is a [`TransportErrorKind::Protocol`] error.
//! `303`, and `301`/`302` after a `POST`, become a `GET` without a body;
//! `307` and `308` repeat the method and body. A redirect to another origin
//! (scheme, host or port) drops `Authorization`, `Proxy-Authorization` and
//! cookies. A redirect without a usable `Location` is returned as the
//! response.
//!
//! # Runtime
//!
//! The transport spawns its connection tasks on the current tokio runtime:
//! create it and send through it from inside one.
#![deny(missing_docs)]

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap};
use http::{Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use latchkey_transport::adapter::{
    body_too_large, check_uri, classify_hyper_chain, content_length_exceeds, error_chain,
    redacted_uri,
};
use latchkey_transport::{
    HttpRequest, HttpResponse, HttpTransport, RequestOptions, TransportError, TransportErrorKind,
};

/// How many redirects a [`HyperTransport`] follows unless told otherwise
/// (reqwest's default too).
pub const DEFAULT_MAX_REDIRECTS: usize = 10;

/// An [`HttpTransport`] over hyper-util's pooled client.
///
/// Cloning is cheap: clones share the connection pool.
///
/// ```no_run
/// use std::time::Duration;
/// use latchkey_transport::{HttpTransport, RequestOptions};
/// use latchkey_transport::bytes::Bytes;
/// use latchkey_transport_hyper::HyperTransport;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let transport = HyperTransport::new();
/// let request = http::Request::post("http://127.0.0.1:8080/api/client/v2.0/auth/session")
///     .header("authorization", "Bearer <refresh token>")
///     .body(Bytes::new())?;
/// let options = RequestOptions::new().with_timeout(Duration::from_secs(10));
/// let response = transport.send(request, &options).await?;
/// println!("status {}", response.status());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct HyperTransport {
    backend: Backend,
    max_redirects: usize,
}

type Body = Full<Bytes>;

#[derive(Clone)]
enum Backend {
    #[cfg(not(any(feature = "rustls", feature = "native-tls")))]
    Plain(Client<HttpConnector, Body>),
    #[cfg(feature = "rustls")]
    Rustls(Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>),
    #[cfg(feature = "native-tls")]
    NativeTls(Client<hyper_tls::HttpsConnector<HttpConnector>, Body>),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            #[cfg(not(any(feature = "rustls", feature = "native-tls")))]
            Backend::Plain(_) => "plain-http",
            #[cfg(feature = "rustls")]
            Backend::Rustls(_) => "rustls",
            #[cfg(feature = "native-tls")]
            Backend::NativeTls(_) => "native-tls",
        }
    }

    fn supports_https(&self) -> bool {
        match self {
            #[cfg(not(any(feature = "rustls", feature = "native-tls")))]
            Backend::Plain(_) => false,
            #[allow(unreachable_patterns)]
            _ => true,
        }
    }

    async fn request(
        &self,
        request: http::Request<Body>,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
        match self {
            #[cfg(not(any(feature = "rustls", feature = "native-tls")))]
            Backend::Plain(c) => c.request(request).await,
            #[cfg(feature = "rustls")]
            Backend::Rustls(c) => c.request(request).await,
            #[cfg(feature = "native-tls")]
            Backend::NativeTls(c) => c.request(request).await,
        }
    }
}

fn http_connector() -> HttpConnector {
    let mut http = HttpConnector::new();
    // The TLS connectors wrap this one and handle `https` themselves.
    http.enforce_http(false);
    http.set_nodelay(true);
    http
}

fn client<C>(connector: C) -> Client<C, Body>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector)
}

impl HyperTransport {
    /// A transport with the TLS backend picked by this crate's features (see
    /// the [crate documentation](crate)).
    ///
    /// # Panics
    ///
    /// Panics if the native-tls backend cannot be initialised; use
    /// [`try_new`](Self::try_new) to get an error instead. The rustls backend
    /// cannot fail.
    ///
    /// ```
    /// use latchkey_transport_hyper::HyperTransport;
    /// let transport = HyperTransport::new();
    /// assert!(format!("{transport:?}").starts_with("HyperTransport"));
    /// ```
    pub fn new() -> Self {
        match Self::try_new() {
            Ok(t) => t,
            Err(e) => panic!("latchkey-transport-hyper: {e}"),
        }
    }

    /// Like [`new`](Self::new), but returns a [`TransportErrorKind::Tls`]
    /// error if the TLS backend cannot be initialised.
    ///
    /// ```
    /// use latchkey_transport_hyper::HyperTransport;
    /// let transport = HyperTransport::try_new().expect("TLS backend");
    /// # let _ = transport;
    /// ```
    pub fn try_new() -> Result<Self, TransportError> {
        #[cfg(feature = "native-tls")]
        {
            Self::native_tls()
        }
        #[cfg(all(feature = "rustls", not(feature = "native-tls")))]
        {
            Ok(Self::rustls())
        }
        #[cfg(not(any(feature = "rustls", feature = "native-tls")))]
        {
            Ok(Self::from_backend(Backend::Plain(client(http_connector()))))
        }
    }

    /// A transport that speaks HTTPS through rustls (ring provider, webpki
    /// roots) and plain HTTP.
    ///
    /// ```
    /// use latchkey_transport_hyper::HyperTransport;
    /// let transport = HyperTransport::rustls();
    /// assert!(format!("{transport:?}").contains("rustls"));
    /// ```
    #[cfg(feature = "rustls")]
    pub fn rustls() -> Self {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            // The ring provider supports the default protocol versions.
            .expect("rustls' ring provider supports TLS 1.2 and 1.3")
            .https_or_http()
            .enable_http1()
            .wrap_connector(http_connector());
        Self::from_backend(Backend::Rustls(client(connector)))
    }

    /// A transport that speaks HTTPS through the platform's TLS library
    /// (hyper-tls) and plain HTTP. Fails with [`TransportErrorKind::Tls`]
    /// when the TLS library cannot be initialised.
    ///
    /// ```
    /// use latchkey_transport_hyper::HyperTransport;
    /// let transport = HyperTransport::native_tls().expect("native TLS");
    /// assert!(format!("{transport:?}").contains("native-tls"));
    /// ```
    #[cfg(feature = "native-tls")]
    pub fn native_tls() -> Result<Self, TransportError> {
        let tls = native_tls::TlsConnector::new().map_err(|e| {
            TransportError::new(
                TransportErrorKind::Tls,
                "the native TLS backend could not be initialised",
            )
            .with_source(e)
        })?;
        let connector = hyper_tls::HttpsConnector::from((http_connector(), tls.into()));
        Ok(Self::from_backend(Backend::NativeTls(client(connector))))
    }

    fn from_backend(backend: Backend) -> Self {
        HyperTransport {
            backend,
            max_redirects: DEFAULT_MAX_REDIRECTS,
        }
    }

    /// Follow at most `max` redirects per request; `0` turns following off,
    /// so a `3xx` is returned as the response.
    ///
    /// ```
    /// use latchkey_transport_hyper::HyperTransport;
    /// let transport = HyperTransport::new().with_max_redirects(0);
    /// assert!(format!("{transport:?}").contains("max_redirects: 0"));
    /// ```
    pub fn with_max_redirects(mut self, max: usize) -> Self {
        self.max_redirects = max;
        self
    }

    async fn send_following(
        &self,
        request: HttpRequest,
        max_body: usize,
    ) -> Result<HttpResponse, TransportError> {
        let (parts, mut body) = request.into_parts();
        let mut method = parts.method;
        let mut uri = parts.uri;
        let version = parts.version;
        let mut headers = parts.headers;
        let mut extensions = Some(parts.extensions);
        let mut redirects = 0usize;

        loop {
            check_uri_for(&uri, self.backend.supports_https())?;
            let target = redacted_uri(&uri);
            let mut hop = http::Request::new(Full::new(body.clone()));
            *hop.method_mut() = method.clone();
            *hop.uri_mut() = uri.clone();
            *hop.version_mut() = version;
            *hop.headers_mut() = headers.clone();
            if let Some(ext) = extensions.take() {
                *hop.extensions_mut() = ext;
            }

            let response = self
                .backend
                .request(hop)
                .await
                .map_err(|e| map_client_error(e, &target))?;

            let status = response.status();
            if self.max_redirects > 0
                && is_redirect(status)
                && let Some(next) = redirect_target(&uri, response.headers())
            {
                let next = next?;
                if redirects >= self.max_redirects {
                    return Err(TransportError::new(
                        TransportErrorKind::Protocol,
                        format!(
                            "too many redirects: more than {} ({target})",
                            self.max_redirects
                        ),
                    ));
                }
                redirects += 1;
                // Dropping the redirect's body closes that connection
                // rather than reading an unbounded body we do not need.
                drop(response);

                if status == StatusCode::SEE_OTHER
                    || ((status == StatusCode::MOVED_PERMANENTLY || status == StatusCode::FOUND)
                        && method == Method::POST)
                {
                    if method != Method::HEAD {
                        method = Method::GET;
                    }
                    body = Bytes::new();
                    for name in [
                        header::CONTENT_TYPE,
                        header::CONTENT_LENGTH,
                        header::CONTENT_ENCODING,
                        header::TRANSFER_ENCODING,
                    ] {
                        headers.remove(name);
                    }
                }
                if !same_origin(&uri, &next) {
                    remove_credentials(&mut headers);
                }
                headers.remove(header::HOST);
                uri = next;
                continue;
            }

            let (parts, incoming) = response.into_parts();
            if content_length_exceeds(&method, parts.status, &parts.headers, max_body) {
                return Err(body_too_large(max_body, &target));
            }
            let bytes = read_body(incoming, max_body, &target).await?;
            let mut out = HttpResponse::new(bytes);
            *out.status_mut() = parts.status;
            *out.version_mut() = parts.version;
            *out.headers_mut() = parts.headers;
            return Ok(out);
        }
    }
}

impl Default for HyperTransport {
    /// Same as [`HyperTransport::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HyperTransport {
    /// Shows the TLS backend and the redirect limit; nothing about pooled
    /// connections or requests.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperTransport")
            .field("tls", &self.backend.name())
            .field("max_redirects", &self.max_redirects)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl HttpTransport for HyperTransport {
    async fn send(
        &self,
        request: HttpRequest,
        options: &RequestOptions,
    ) -> Result<HttpResponse, TransportError> {
        let max_body = options.max_response_bytes();
        match options.timeout() {
            None => self.send_following(request, max_body).await,
            Some(limit) => {
                let target = redacted_uri(request.uri());
                match tokio::time::timeout(limit, self.send_following(request, max_body)).await {
                    Ok(result) => result,
                    Err(elapsed) => Err(TransportError::new(
                        TransportErrorKind::Timeout,
                        format!(
                            "the request timed out after {} ms ({target})",
                            limit.as_millis()
                        ),
                    )
                    .with_source(elapsed)),
                }
            }
        }
    }
}

/// Read the whole body frame by frame, but no more than `limit` bytes: past that the
/// body is dropped (closing the connection) and the error is [`body_too_large`].
async fn read_body(
    mut incoming: hyper::body::Incoming,
    limit: usize,
    target: &str,
) -> Result<Bytes, TransportError> {
    let mut body = BytesMut::new();
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| map_body_error(e, target))?;
        if let Ok(data) = frame.into_data() {
            if data.len() > limit - body.len() {
                return Err(body_too_large(limit, target));
            }
            body.extend_from_slice(&data);
        }
    }
    Ok(body.freeze())
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::MOVED_PERMANENTLY
            | StatusCode::FOUND
            | StatusCode::SEE_OTHER
            | StatusCode::TEMPORARY_REDIRECT
            | StatusCode::PERMANENT_REDIRECT
    )
}

/// Where a redirect points: `None` when there is no usable `Location` (the
/// redirect is then returned as the response), an error when it points at
/// something other than `http`/`https`.
fn redirect_target(current: &Uri, headers: &HeaderMap) -> Option<Result<Uri, TransportError>> {
    let location = headers.get(header::LOCATION)?.to_str().ok()?;
    let base = url::Url::parse(&current.to_string()).ok()?;
    let mut next = base.join(location).ok()?;
    if next.scheme() != "http" && next.scheme() != "https" {
        return Some(Err(TransportError::new(
            TransportErrorKind::Protocol,
            format!(
                "a redirect points to an unsupported scheme {:?} ({})",
                next.scheme(),
                redacted_uri(current)
            ),
        )));
    }
    next.set_fragment(None);
    next.as_str().parse::<Uri>().ok().map(Ok)
}

fn origin(uri: &Uri) -> (String, String, Option<u16>) {
    let scheme = uri.scheme_str().unwrap_or("").to_ascii_lowercase();
    let host = uri.host().unwrap_or("").to_ascii_lowercase();
    let port = uri.port_u16().or(match scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    });
    (scheme, host, port)
}

fn same_origin(a: &Uri, b: &Uri) -> bool {
    origin(a) == origin(b)
}

fn remove_credentials(headers: &mut HeaderMap) {
    headers.remove(header::AUTHORIZATION);
    headers.remove(header::PROXY_AUTHORIZATION);
    headers.remove(header::COOKIE);
    headers.remove("cookie2");
    headers.remove(header::WWW_AUTHENTICATE);
}

/// Reject what cannot be sent: `https` without a TLS backend, or anything
/// [`check_uri`] refuses.
fn check_uri_for(uri: &Uri, https: bool) -> Result<(), TransportError> {
    if !https
        && uri
            .scheme_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("https"))
    {
        return Err(TransportError::new(
            TransportErrorKind::Protocol,
            format!(
                "HTTPS needs the `rustls` or `native-tls` feature of \
                 latchkey-transport-hyper ({})",
                redacted_uri(uri)
            ),
        ));
    }
    check_uri(uri)
}

fn map_client_error(error: hyper_util::client::legacy::Error, target: &str) -> TransportError {
    let (kind, what) = classify_client_error(&error);
    TransportError::new(kind, format!("{what} ({target})")).with_source(error)
}

fn map_body_error(error: hyper::Error, target: &str) -> TransportError {
    let (kind, what) = classify_hyper_chain(&error)
        .unwrap_or((TransportErrorKind::Io, "reading the response body failed"));
    TransportError::new(kind, format!("{what} ({target})")).with_source(error)
}

fn classify_client_error(
    error: &hyper_util::client::legacy::Error,
) -> (TransportErrorKind, &'static str) {
    use TransportErrorKind::*;
    if chain_has_tls_error(error) {
        return (Tls, "the TLS handshake failed");
    }
    if error.is_connect() {
        if let Some((Timeout, what)) = classify_hyper_chain(error) {
            return (Timeout, what);
        }
        return (Connect, "could not connect");
    }
    classify_hyper_chain(error).unwrap_or((Other, "the request failed"))
}

/// True when a TLS library's error is somewhere in the source chain.
fn chain_has_tls_error(error: &(dyn StdError + 'static)) -> bool {
    error_chain(error).any(is_tls_error)
}

#[allow(unused_variables)]
fn is_tls_error(err: &(dyn StdError + 'static)) -> bool {
    #[cfg(feature = "rustls")]
    if err.is::<rustls::Error>() {
        return true;
    }
    #[cfg(feature = "native-tls")]
    if err.is::<native_tls::Error>() {
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn get(uri: &str) -> HttpRequest {
        http::Request::get(uri).body(Bytes::new()).unwrap()
    }

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn origins() {
        assert!(same_origin(
            &uri("http://a.example/x"),
            &uri("http://A.example:80/y")
        ));
        assert!(same_origin(
            &uri("https://a.example/x"),
            &uri("https://a.example:443/")
        ));
        assert!(!same_origin(
            &uri("http://a.example/x"),
            &uri("https://a.example/x")
        ));
        assert!(!same_origin(
            &uri("http://a.example/x"),
            &uri("http://b.example/x")
        ));
        assert!(!same_origin(
            &uri("http://127.0.0.1:1000/"),
            &uri("http://127.0.0.1:1001/")
        ));
    }

    #[test]
    fn redirect_locations_resolve() {
        let base = uri("http://h.example:8080/a/b?q=1");
        let mut headers = HeaderMap::new();
        let mut at = |loc: &str| {
            headers.insert(header::LOCATION, loc.parse().unwrap());
            redirect_target(&base, &headers)
        };
        assert_eq!(
            at("/new").unwrap().unwrap(),
            uri("http://h.example:8080/new")
        );
        assert_eq!(at("c").unwrap().unwrap(), uri("http://h.example:8080/a/c"));
        assert_eq!(
            at("https://other.example/z#frag").unwrap().unwrap(),
            uri("https://other.example/z")
        );
        assert_eq!(
            at("//other.example/z").unwrap().unwrap(),
            uri("http://other.example/z")
        );
        let err = at("ftp://files.example/x").unwrap().unwrap_err();
        assert_eq!(err.kind(), TransportErrorKind::Protocol);
        assert!(redirect_target(&base, &HeaderMap::new()).is_none());
    }

    #[test]
    fn credentials_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
        h.insert(header::COOKIE, "a=b".parse().unwrap());
        h.insert(header::ACCEPT, "application/json".parse().unwrap());
        remove_credentials(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::ACCEPT));
    }

    #[test]
    fn describe_uri_drops_userinfo_and_query() {
        assert_eq!(
            redacted_uri(&uri("http://user:pw@example.com:8080/a/b?token=secret")),
            "http://example.com:8080/a/b"
        );
    }

    #[tokio::test]
    async fn debug_names_backend_only() {
        let t = HyperTransport::new();
        let dbg = format!("{t:?}");
        assert!(dbg.starts_with("HyperTransport { tls: "), "{dbg}");
        assert!(dbg.contains("max_redirects: 10"), "{dbg}");
    }

    #[tokio::test]
    async fn relative_and_foreign_urls_are_protocol_errors() {
        let t = HyperTransport::new();
        for u in ["/relative/path", "ftp://127.0.0.1/file"] {
            let err = t.send(get(u), &RequestOptions::new()).await.unwrap_err();
            assert_eq!(err.kind(), TransportErrorKind::Protocol, "{u}");
            assert!(!err.is_transient());
        }
    }

    #[tokio::test]
    async fn refused_connection_is_connect() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let t = HyperTransport::new();
        let err = t
            .send(
                get(&format!("http://127.0.0.1:{port}/x?secret=1")),
                &RequestOptions::new(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), TransportErrorKind::Connect, "{err:?}");
        assert!(err.is_transient());
        assert!(err.source().is_some());
        let shown = err.to_string();
        assert!(shown.contains(&format!("127.0.0.1:{port}/x")), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    async fn one_shot_server(reply: &'static [u8]) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await;
            let _ = sock.write_all(reply).await;
            let _ = sock.shutdown().await;
        });
        addr
    }

    #[tokio::test]
    async fn torn_body_is_io() {
        let addr =
            one_shot_server(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b").await;
        let t = HyperTransport::new();
        let err = t
            .send(get(&format!("http://{addr}/")), &RequestOptions::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), TransportErrorKind::Io, "{err:?}");
        assert!(err.is_transient());
    }

    #[tokio::test]
    async fn malformed_response_is_protocol() {
        let addr = one_shot_server(b"NOT HTTP AT ALL\r\n\r\n").await;
        let t = HyperTransport::new();
        let err = t
            .send(get(&format!("http://{addr}/")), &RequestOptions::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), TransportErrorKind::Protocol, "{err:?}");
        assert!(!err.is_transient());
    }

    #[tokio::test]
    async fn redirect_without_location_is_the_response() {
        let addr = one_shot_server(b"HTTP/1.1 302 Found\r\ncontent-length: 2\r\n\r\nhi").await;
        let t = HyperTransport::new();
        let resp = t
            .send(get(&format!("http://{addr}/")), &RequestOptions::new())
            .await
            .unwrap();
        assert_eq!(resp.status(), 302);
        assert_eq!(resp.body().as_ref(), b"hi");
    }

    #[tokio::test]
    async fn redirects_off_returns_the_redirect() {
        let addr = one_shot_server(
            b"HTTP/1.1 308 Permanent Redirect\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n",
        )
        .await;
        let t = HyperTransport::new().with_max_redirects(0);
        let resp = t
            .send(get(&format!("http://{addr}/")), &RequestOptions::new())
            .await
            .unwrap();
        assert_eq!(resp.status(), 308);
        assert_eq!(resp.headers()["location"], "/elsewhere");
    }

    #[tokio::test]
    async fn stalled_server_is_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(sock);
        });
        let t = HyperTransport::new();
        let err = t
            .send(
                get(&format!("http://{addr}/")),
                &RequestOptions::new().with_timeout(Duration::from_millis(100)),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), TransportErrorKind::Timeout, "{err:?}");
        assert!(err.is_transient());
        server.abort();
    }

    #[cfg(any(feature = "rustls", feature = "native-tls"))]
    #[tokio::test]
    async fn tls_handshake_failure_is_tls() {
        // A plain-HTTP server answering a TLS client: the handshake fails.
        let addr = one_shot_server(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
        let t = HyperTransport::new();
        let err = t
            .send(get(&format!("https://{addr}/")), &RequestOptions::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), TransportErrorKind::Tls, "{err:?}");
        assert!(!err.is_transient());
    }

    #[cfg(not(any(feature = "rustls", feature = "native-tls")))]
    #[tokio::test]
    async fn https_without_tls_feature_is_protocol() {
        let t = HyperTransport::new();
        let err = t
            .send(get("https://127.0.0.1:1/"), &RequestOptions::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), TransportErrorKind::Protocol);
    }
}
