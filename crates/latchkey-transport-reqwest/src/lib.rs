//! A [`reqwest`](https://docs.rs/reqwest/0.12) adapter for latchkey's
//! [`HttpTransport`].
//!
//! [`ReqwestTransport`] sends latchkey's [`HttpRequest`]s through a
//! `reqwest::Client` and hands back the whole response as an [`HttpResponse`]
//! (bodies longer than [`RequestOptions::max_response_bytes`] are a
//! non-transient [`TransportErrorKind::Protocol`] error; reading stops there).
//! Any status code is a response; only failing to get one is a
//! [`TransportError`], classified into a [`TransportErrorKind`] so the SDK
//! knows whether trying again may help. reqwest's own error stays reachable
//! through [`std::error::Error::source`] only: no reqwest type appears in this
//! crate's API except the argument of [`ReqwestTransport::with_client`].
//!
//! ```
//! use latchkey_transport::SharedTransport;
//! use latchkey_transport_reqwest::ReqwestTransport;
//!
//! # fn main() {
//! let transport = SharedTransport::new(ReqwestTransport::new());
//! # let _ = transport;
//! # }
//! ```
//!
//! # Features
//!
//! - `rustls` (default): HTTPS through rustls with the ring provider and the
//!   webpki root certificates (reqwest's `rustls-tls`).
//! - `native-tls`: HTTPS through the platform's TLS library (reqwest's
//!   `native-tls`). When both features are on, [`ReqwestTransport::new`] uses
//!   native-tls: `rustls` is on by default, so enabling `native-tls` is the
//!   explicit choice.
//!
//! With neither feature, the transport speaks plain HTTP only and an `https`
//! URL fails with a non-transient [`TransportErrorKind::Protocol`] error
//! (unless another crate in the build turned on a reqwest TLS feature).
//!
//! # Redirects
//!
//! The default client follows up to 10 redirects (reqwest's default policy),
//! turns `303` (and `301`/`302` after a `POST`) into a `GET` without a body,
//! and drops `Authorization` and cookies when a redirect leaves the origin.
//! A client passed to [`ReqwestTransport::with_client`] keeps its own policy.
#![deny(missing_docs)]

use std::error::Error as StdError;
use std::fmt;

use bytes::{Bytes, BytesMut};
use latchkey_transport::adapter::{
    body_too_large, check_uri, classify_hyper_chain, content_length_exceeds, error_chain,
    redacted_uri,
};
use latchkey_transport::{
    HttpRequest, HttpResponse, HttpTransport, RequestOptions, TransportError, TransportErrorKind,
};

/// An [`HttpTransport`] that sends requests through a `reqwest::Client`.
///
/// Cloning is cheap: clones share the client's connection pool.
///
/// ```no_run
/// use std::time::Duration;
/// use latchkey_transport::{HttpTransport, RequestOptions};
/// use latchkey_transport::bytes::Bytes;
/// use latchkey_transport_reqwest::ReqwestTransport;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let transport = ReqwestTransport::new();
/// let request = http::Request::get("http://127.0.0.1:8080/api/client/v2.0/app/myapp/location")
///     .header("accept", "application/json")
///     .body(Bytes::new())?;
/// let options = RequestOptions::new().with_timeout(Duration::from_secs(10));
/// let response = transport.send(request, &options).await?;
/// println!("status {}", response.status());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
}

impl ReqwestTransport {
    /// A transport over a new `reqwest::Client` with the TLS backend picked by
    /// this crate's features (see the [crate documentation](crate)) and
    /// reqwest's defaults otherwise: no overall timeout (latchkey passes one
    /// per request), up to 10 redirects.
    ///
    /// # Panics
    ///
    /// Like `reqwest::Client::new`, panics if the TLS backend cannot be
    /// initialised (for example when native-tls cannot load the system's
    /// root certificates). Use [`try_new`](Self::try_new) to get an error
    /// instead.
    ///
    /// ```
    /// use latchkey_transport_reqwest::ReqwestTransport;
    /// let transport = ReqwestTransport::new();
    /// assert_eq!(format!("{transport:?}"), "ReqwestTransport { .. }");
    /// ```
    pub fn new() -> Self {
        match Self::try_new() {
            Ok(t) => t,
            Err(e) => panic!("latchkey-transport-reqwest: {e}"),
        }
    }

    /// Like [`new`](Self::new), but returns a [`TransportErrorKind::Tls`]
    /// error if the TLS backend cannot be initialised.
    ///
    /// ```
    /// use latchkey_transport_reqwest::ReqwestTransport;
    /// let transport = ReqwestTransport::try_new().expect("TLS backend");
    /// # let _ = transport;
    /// ```
    pub fn try_new() -> Result<Self, TransportError> {
        let builder = reqwest::Client::builder();
        #[cfg(feature = "native-tls")]
        let builder = builder.use_native_tls();
        #[cfg(all(feature = "rustls", not(feature = "native-tls")))]
        let builder = builder.use_rustls_tls();
        let client = builder.build().map_err(|e| {
            TransportError::new(
                TransportErrorKind::Tls,
                "the HTTP client could not be built (TLS backend initialisation failed)",
            )
            .with_source(e)
        })?;
        Ok(ReqwestTransport { client })
    }

    /// A transport over a client you configured yourself: a proxy, extra
    /// root certificates, a client certificate, a user agent, a redirect
    /// policy. [`RequestOptions::timeout`] still applies per request, on top
    /// of any timeout set on the client.
    ///
    /// ```
    /// use latchkey_transport_reqwest::ReqwestTransport;
    /// let client = reqwest::Client::builder()
    ///     .user_agent("my-app/1.0")
    ///     .build()
    ///     .unwrap();
    /// let transport = ReqwestTransport::with_client(client);
    /// # let _ = transport;
    /// ```
    pub fn with_client(client: reqwest::Client) -> Self {
        ReqwestTransport { client }
    }
}

impl Default for ReqwestTransport {
    /// Same as [`ReqwestTransport::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ReqwestTransport {
    /// Prints nothing of the client: its configuration may hold proxy
    /// credentials or default headers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestTransport").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl HttpTransport for ReqwestTransport {
    async fn send(
        &self,
        request: HttpRequest,
        options: &RequestOptions,
    ) -> Result<HttpResponse, TransportError> {
        check_uri(request.uri())?;
        // The URI as errors name it, built only when one is (a clone of `Uri` shares its
        // bytes).
        let uri = request.uri().clone();
        let target = || redacted_uri(&uri);
        let method = request.method().clone();
        let mut req = reqwest::Request::try_from(request).map_err(|e| map_error(e, target()))?;
        if let Some(timeout) = options.timeout() {
            *req.timeout_mut() = Some(timeout);
        }
        let response = self
            .client
            .execute(req)
            .await
            .map_err(|e| map_error(e, target()))?;

        let status = response.status();
        let version = response.version();
        let headers = response.headers().clone();
        let body = read_body(response, &method, options.max_response_bytes(), target).await?;

        let mut out = HttpResponse::new(body);
        *out.status_mut() = status;
        *out.version_mut() = version;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

/// Read the whole body, but no more than `limit` bytes: a longer body (announced by
/// `Content-Length` or found while streaming) is a [`body_too_large`] error, and reading
/// stops there. A body that arrives in one chunk is returned as is, without a copy.
async fn read_body(
    mut response: reqwest::Response,
    method: &http::Method,
    limit: usize,
    target: impl Fn() -> String,
) -> Result<Bytes, TransportError> {
    if content_length_exceeds(method, response.status(), response.headers(), limit) {
        return Err(body_too_large(limit, &target()));
    }
    let mut first: Option<Bytes> = None;
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| map_error(e, target()))? {
        let read = first.as_ref().map_or(0, Bytes::len) + body.len();
        if chunk.len() > limit - read {
            return Err(body_too_large(limit, &target()));
        }
        match first.take() {
            None if body.is_empty() => first = Some(chunk),
            earlier => {
                if let Some(earlier) = earlier {
                    body.extend_from_slice(&earlier);
                }
                body.extend_from_slice(&chunk);
            }
        }
    }
    Ok(first.unwrap_or_else(|| body.freeze()))
}

/// Classify a reqwest error. reqwest's error (without its URL) becomes the
/// source; the message names the kind of failure and the target only.
fn map_error(error: reqwest::Error, target: String) -> TransportError {
    let (kind, what) = classify(&error);
    TransportError::new(kind, format!("{what} ({target})")).with_source(error.without_url())
}

fn classify(error: &reqwest::Error) -> (TransportErrorKind, &'static str) {
    use TransportErrorKind::*;
    if error.is_timeout() {
        return (Timeout, "the request timed out");
    }
    if error.is_builder() {
        return (Protocol, "the request could not be built");
    }
    if error.is_redirect() {
        return (Protocol, "too many redirects, or a redirect loop");
    }
    if chain_has_tls_error(error) {
        return (Tls, "the TLS handshake failed");
    }
    if error.is_connect() {
        // hyper-util's plain connector refuses `https` when reqwest was built
        // without TLS; its error type is private, only the message tells.
        // Retrying cannot help, so this is not a transient Connect error.
        if chain_mentions(error, "scheme is not http") {
            return (Protocol, "HTTPS is not enabled in this reqwest client");
        }
        return (Connect, "could not connect");
    }
    if let Some(kind) = classify_hyper_chain(error) {
        return kind;
    }
    if error.is_body() || error.is_decode() {
        return (Io, "reading the response body failed");
    }
    if error.is_request() {
        return (Io, "sending the request failed");
    }
    (Other, "the request failed")
}

/// True when a TLS library's error is somewhere in the source chain.
fn chain_has_tls_error(error: &(dyn StdError + 'static)) -> bool {
    error_chain(error).any(is_tls_error)
}

/// True when some error in the chain displays `needle`.
fn chain_mentions(error: &(dyn StdError + 'static), needle: &str) -> bool {
    error_chain(error).any(|e| e.to_string().contains(needle))
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
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    fn get(uri: &str) -> HttpRequest {
        http::Request::get(uri).body(Bytes::new()).unwrap()
    }

    /// A server that reads one request, answers `reply` as raw bytes and hangs up.
    async fn one_shot_server(reply: &'static [u8]) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = tokio::io::AsyncReadExt::read(&mut sock, &mut buf).await;
            let _ = sock.write_all(reply).await;
            let _ = sock.shutdown().await;
        });
        addr
    }

    #[test]
    fn debug_shows_no_configuration() {
        let client = reqwest::Client::builder()
            .default_headers({
                let mut h = reqwest::header::HeaderMap::new();
                h.insert("authorization", "Bearer secret-token".parse().unwrap());
                h
            })
            .build()
            .unwrap();
        let t = ReqwestTransport::with_client(client);
        let dbg = format!("{t:?}");
        assert_eq!(dbg, "ReqwestTransport { .. }");
        assert!(!dbg.contains("secret"));
    }

    #[test]
    fn describe_uri_drops_userinfo_and_query() {
        let uri: http::Uri = "http://user:pw@example.com:8080/a/b?token=secret"
            .parse()
            .unwrap();
        assert_eq!(redacted_uri(&uri), "http://example.com:8080/a/b");
    }

    #[tokio::test]
    async fn relative_and_foreign_urls_are_protocol_errors() {
        let t = ReqwestTransport::new();
        for uri in ["/relative/path", "ftp://127.0.0.1/file"] {
            let err = t.send(get(uri), &RequestOptions::new()).await.unwrap_err();
            assert_eq!(err.kind(), TransportErrorKind::Protocol, "{uri}");
            assert!(!err.is_transient());
        }
    }

    #[tokio::test]
    async fn refused_connection_is_connect() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let t = ReqwestTransport::new();
        let err = t
            .send(
                get(&format!("http://127.0.0.1:{port}/x?secret=1")),
                &RequestOptions::new(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), TransportErrorKind::Connect);
        assert!(err.is_transient());
        assert!(err.source().is_some());
        let shown = err.to_string();
        assert!(shown.contains(&format!("127.0.0.1:{port}/x")), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[tokio::test]
    async fn torn_body_is_io() {
        let addr =
            one_shot_server(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b").await;
        let t = ReqwestTransport::new();
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
        let t = ReqwestTransport::new();
        let err = t
            .send(get(&format!("http://{addr}/")), &RequestOptions::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), TransportErrorKind::Protocol, "{err:?}");
        assert!(!err.is_transient());
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
        let t = ReqwestTransport::new();
        let err = t
            .send(
                get(&format!("http://{addr}/")),
                &RequestOptions::new().with_timeout(Duration::from_millis(100)),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), TransportErrorKind::Timeout, "{err:?}");
        server.abort();
    }

    #[cfg(any(feature = "rustls", feature = "native-tls"))]
    #[tokio::test]
    async fn tls_handshake_failure_is_tls() {
        // A plain-HTTP server answering a TLS client: the handshake fails.
        let addr = one_shot_server(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
        let t = ReqwestTransport::new();
        let err = t
            .send(get(&format!("https://{addr}/")), &RequestOptions::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), TransportErrorKind::Tls, "{err:?}");
        assert!(!err.is_transient());
    }

    #[cfg(not(any(feature = "rustls", feature = "native-tls")))]
    #[tokio::test]
    async fn https_without_tls_feature() {
        let t = ReqwestTransport::new();
        let err = t
            .send(get("https://127.0.0.1:1/"), &RequestOptions::new())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), TransportErrorKind::Protocol, "{err:?}");
        assert!(!err.is_transient());
    }
}
