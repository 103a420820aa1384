//! Helpers for transport implementations, shared by the reqwest and hyper
//! adapters so that both classify failures and describe URLs the same way.

use std::error::Error as StdError;

use crate::{TransportError, TransportErrorKind};

/// An error and its sources, outermost first.
///
/// Unlike walking [`StdError::source`], this steps *into* a `std::io::Error`
/// that wraps another error (`io::Error::source` skips the error it wraps).
///
/// ```
/// use latchkey_transport::adapter::error_chain;
/// let inner = std::io::Error::new(std::io::ErrorKind::Other, "inner");
/// let outer = std::io::Error::new(std::io::ErrorKind::Other, inner);
/// // `outer.source()` would skip `inner`; the chain does not.
/// assert!(error_chain(&outer).skip(1).any(|e| e.to_string() == "inner"));
/// ```
pub fn error_chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&err| next_in_chain(err))
}

fn next_in_chain<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    if let Some(io) = err.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
    {
        return Some(inner);
    }
    err.source()
}

/// `scheme://host[:port]/path` without user info or query: safe for messages
/// and logs (latchkey never puts secrets in paths).
///
/// ```
/// use latchkey_transport::adapter::redacted_uri;
/// let uri: http::Uri = "http://user:pw@example.com:8080/a?token=secret".parse().unwrap();
/// assert_eq!(redacted_uri(&uri), "http://example.com:8080/a");
/// ```
pub fn redacted_uri(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("");
    let host = uri.host().unwrap_or("");
    let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{scheme}://{host}{port}{}", uri.path())
}

/// Reject what no HTTP client can send: a URI that is not absolute `http` or
/// `https` with a host. The error is a non-transient [`TransportErrorKind::Protocol`].
///
/// ```
/// use latchkey_transport::adapter::check_uri;
/// assert!(check_uri(&"https://example.com/x".parse().unwrap()).is_ok());
/// assert!(check_uri(&"/relative".parse().unwrap()).is_err());
/// assert!(check_uri(&"ftp://example.com/".parse().unwrap()).is_err());
/// ```
pub fn check_uri(uri: &http::Uri) -> Result<(), TransportError> {
    let protocol =
        |message: String| Err(TransportError::new(TransportErrorKind::Protocol, message));
    match uri.scheme_str() {
        Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {}
        Some(_) => {
            return protocol(format!(
                "invalid request URL {}: the scheme must be http or https",
                redacted_uri(uri)
            ));
        }
        None => {
            return protocol(
                "invalid request URL: it must be absolute (scheme and host)".to_owned(),
            );
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return protocol("invalid request URL: it has no host".to_owned());
    }
    Ok(())
}

/// Classify a failure from the hyper and I/O errors in its chain, or `None`
/// when the chain holds neither. Returns the kind and a short description.
#[cfg(feature = "hyper")]
pub fn classify_hyper_chain(
    error: &(dyn StdError + 'static),
) -> Option<(TransportErrorKind, &'static str)> {
    use TransportErrorKind::*;
    let mut io_seen = false;
    for err in error_chain(error) {
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            if h.is_timeout() {
                return Some((Timeout, "the request timed out"));
            }
            if h.is_parse() {
                return Some((Protocol, "the server sent malformed HTTP"));
            }
            if h.is_user() {
                return Some((Protocol, "the request could not be sent"));
            }
            if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
                return Some((Io, "the connection closed before the response was complete"));
            }
            if h.is_body_write_aborted() {
                return Some((Io, "writing the request body failed"));
            }
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::TimedOut => return Some((Timeout, "the request timed out")),
                std::io::ErrorKind::ConnectionRefused => {
                    return Some((Connect, "could not connect"));
                }
                _ => io_seen = true,
            }
        }
    }
    io_seen.then_some((Io, "an I/O error interrupted the request"))
}

/// The error for a response body over [`RequestOptions::max_response_bytes`](crate::RequestOptions::max_response_bytes):
/// a non-transient [`TransportErrorKind::Protocol`] error saying
/// "response body larger than `limit` bytes (`target`)".
///
/// ```
/// use latchkey_transport::TransportErrorKind;
/// use latchkey_transport::adapter::body_too_large;
/// let e = body_too_large(1024, "http://example.com/x");
/// assert_eq!(e.kind(), TransportErrorKind::Protocol);
/// assert!(!e.is_transient());
/// assert!(e.to_string().contains("response body larger than 1024 bytes"));
/// ```
pub fn body_too_large(limit: usize, target: &str) -> TransportError {
    TransportError::new(
        TransportErrorKind::Protocol,
        format!("response body larger than {limit} bytes ({target})"),
    )
}

/// True when the response to a `method` request, with `status` and `headers`, announces
/// a body of more than `limit` bytes in `Content-Length`. Responses that have no body
/// whatever the header says (to `HEAD`; `1xx`, `204`, `304`) never do; an absent or
/// unparsable header is left to the check while reading.
///
/// ```
/// use http::{HeaderMap, Method, StatusCode, header::CONTENT_LENGTH};
/// use latchkey_transport::adapter::content_length_exceeds;
/// let (get, ok) = (Method::GET, StatusCode::OK);
/// let mut h = HeaderMap::new();
/// assert!(!content_length_exceeds(&get, ok, &h, 10));
/// h.insert(CONTENT_LENGTH, "11".parse().unwrap());
/// assert!(content_length_exceeds(&get, ok, &h, 10));
/// assert!(!content_length_exceeds(&get, ok, &h, 11));
/// assert!(!content_length_exceeds(&Method::HEAD, ok, &h, 10));
/// assert!(!content_length_exceeds(&get, StatusCode::NOT_MODIFIED, &h, 10));
/// ```
pub fn content_length_exceeds(
    method: &http::Method,
    status: http::StatusCode,
    headers: &http::HeaderMap,
    limit: usize,
) -> bool {
    if method == http::Method::HEAD
        || status.is_informational()
        || status == http::StatusCode::NO_CONTENT
        || status == http::StatusCode::NOT_MODIFIED
    {
        return false;
    }
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|len| len > limit as u64)
}
