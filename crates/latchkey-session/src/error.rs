//! The one public error type of the client SDK.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use latchkey_protocol::{ErrorBody, ErrorCode};
use latchkey_transport::TransportError;

use crate::store::StoreError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No HTTP response at all (connection refused, reset, TLS, ...).
    Transport,
    /// The request timed out.
    Timeout,
    /// The server answered with a non-2xx status.
    Server,
    /// The refresh token was rejected (401): the user is now logged out and must log in again.
    SessionExpired,
    /// The user is not logged in (client-side check).
    NotLoggedIn,
    /// The user is unknown to this app, or was removed (client-side check).
    UserNotFound,
    /// The credential could not produce a login body.
    Credential,
    /// The server's reply could not be understood.
    Decode,
    /// The user store failed.
    Store,
    /// The configuration is invalid (for example a bad base URL).
    InvalidConfig,
    /// An argument given to an SDK call is invalid (for example reset-function arguments
    /// that do not serialize to a JSON array).
    InvalidArgument,
    /// A browser sign-in (the OAuth redirect flow) ended without a login: the server
    /// answered `_baas_error` (consent denied, a refused credential, ...), or the redirect
    /// came back without a result. The message is the server's.
    SignInFailed,
    /// A browser sign-in's redirect came back with another `state` than the one sent (or
    /// for another app): not this sign-in's answer, and never used.
    StateMismatch,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Transport => "transport error",
            ErrorKind::Timeout => "request timed out",
            ErrorKind::Server => "server error",
            ErrorKind::SessionExpired => "session expired",
            ErrorKind::NotLoggedIn => "user not logged in",
            ErrorKind::UserNotFound => "user not found",
            ErrorKind::Credential => "invalid credential",
            ErrorKind::Decode => "unexpected server response",
            ErrorKind::Store => "user store error",
            ErrorKind::InvalidConfig => "invalid configuration",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::SignInFailed => "sign-in failed",
            ErrorKind::StateMismatch => "sign-in state mismatch",
        })
    }
}

/// Every failure of the latchkey client SDK.
///
/// Opaque and cheap to clone; inspect it with [`kind`](Self::kind) and the predicates.
/// It never contains tokens or passwords: server bodies kept for diagnosis are truncated
/// and scrubbed of anything that looks like a token.
///
/// ```
/// use latchkey_session::{Error, ErrorKind};
/// let e = Error::not_logged_in("user must be logged in");
/// assert_eq!(e.kind(), ErrorKind::NotLoggedIn);
/// assert!(!e.is_transient());
/// assert!(e.status().is_none());
/// ```
#[derive(Clone)]
pub struct Error {
    inner: Arc<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    status: Option<StatusCode>,
    body: Option<ErrorBody>,
    raw_body: Option<String>,
    retry_after: Option<Duration>,
    source: Option<BoxError>,
}

impl Inner {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Inner {
            kind,
            message: message.into(),
            status: None,
            body: None,
            raw_body: None,
            retry_after: None,
            source: None,
        }
    }
}

impl Error {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::from_inner(Inner::new(kind, message))
    }

    fn from_inner(inner: Inner) -> Self {
        Error {
            inner: Arc::new(inner),
        }
    }

    fn with_source(kind: ErrorKind, message: impl Into<String>, source: BoxError) -> Self {
        Self::from_inner(Inner {
            source: Some(source),
            ..Inner::new(kind, message)
        })
    }

    /// A transport failure (no response). Timeouts become [`ErrorKind::Timeout`].
    pub fn transport(err: TransportError) -> Self {
        let kind = if err.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Transport
        };
        let message = err.to_string();
        Self::with_source(kind, message, Box::new(err))
    }

    /// The request did not complete within its timeout.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }

    /// A non-2xx answer. `body` is the parsed JSON error body, if any; `raw` is the
    /// raw body text, which is scrubbed and truncated before being kept.
    pub fn server(status: StatusCode, body: Option<ErrorBody>, raw: Option<&str>) -> Self {
        let message = match &body {
            Some(b) => format!(
                "{}: {} (status {})",
                b.error_code.as_deref().unwrap_or("error"),
                b.error.as_deref().unwrap_or("no error message"),
                status.as_u16()
            ),
            None => format!(
                "http error code considered fatal (status {})",
                status.as_u16()
            ),
        };
        Self::from_inner(Inner {
            status: Some(status),
            body,
            raw_body: raw.map(scrub_body),
            ..Inner::new(ErrorKind::Server, message)
        })
    }

    /// The wait the server asked for with `Retry-After` (`None`: it did not). For an error
    /// just made (its only handle), as [`server`](Self::server) returns it.
    pub(crate) fn with_retry_after(mut self, wait: Option<Duration>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.retry_after = wait;
        }
        self
    }

    /// The session is over: the refresh token was rejected. `cause` is the server's 401.
    pub fn session_expired(cause: Option<Error>) -> Self {
        let mut inner = Inner::new(
            ErrorKind::SessionExpired,
            "the session has expired or was revoked; log in again",
        );
        if let Some(cause) = cause {
            inner.status = cause.status();
            inner.body = cause.error_body().cloned();
            inner.source = Some(Box::new(cause));
        }
        Self::from_inner(inner)
    }

    /// A client-side "user is not logged in" error.
    pub fn not_logged_in(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotLoggedIn, message)
    }

    /// A client-side "no such user" error.
    pub fn user_not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::UserNotFound, message)
    }

    /// A credential that could not build its login body.
    pub fn credential(err: latchkey_protocol::CredentialError) -> Self {
        let text = err.to_string();
        // The kind already says "invalid credential"; do not say it twice.
        let message = text
            .strip_prefix("invalid credential: ")
            .unwrap_or(&text)
            .to_owned();
        Self::with_source(ErrorKind::Credential, message, Box::new(err))
    }

    /// A server reply that could not be understood. `raw` is scrubbed and truncated.
    pub fn decode(message: impl Into<String>, raw: Option<&[u8]>) -> Self {
        Self::from_inner(Inner {
            raw_body: raw.map(|raw| scrub_body(&String::from_utf8_lossy(raw))),
            ..Inner::new(ErrorKind::Decode, message)
        })
    }

    /// A failure of the user store.
    pub fn store(err: StoreError) -> Self {
        let message = err.to_string();
        Self::with_source(ErrorKind::Store, message, Box::new(err))
    }

    /// The user was logged out or removed in memory, but the store could not record it.
    pub(crate) fn store_not_cleared(err: StoreError) -> Self {
        let message = format!(
            "the user is logged out in memory, but clearing it from the user store failed \
             (its tokens may still be stored): {err}"
        );
        Self::with_source(ErrorKind::Store, message, Box::new(err))
    }

    /// A login succeeded on the server, but the user store could not save the user, so the
    /// login was undone.
    pub(crate) fn store_not_saved(err: StoreError) -> Self {
        let message = format!(
            "the login could not be saved in the user store, so it was undone \
             (nothing changed on this device): {err}"
        );
        Self::with_source(ErrorKind::Store, message, Box::new(err))
    }

    /// An invalid configuration.
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidConfig, message)
    }

    /// An invalid argument to an SDK call (checked before any request is sent).
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    /// A browser sign-in ended without a login ([`ErrorKind::SignInFailed`]).
    pub fn sign_in_failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::SignInFailed, message)
    }

    /// A browser sign-in's answer is for another sign-in ([`ErrorKind::StateMismatch`]).
    pub fn state_mismatch(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::StateMismatch, message)
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// True when trying again later may succeed: a transient transport failure, a timeout,
    /// or a 5xx / 429 answer.
    pub fn is_transient(&self) -> bool {
        match self.inner.kind {
            ErrorKind::Timeout => true,
            ErrorKind::Transport => self
                .inner
                .source
                .as_ref()
                .and_then(|s| s.downcast_ref::<TransportError>())
                .is_some_and(TransportError::is_transient),
            ErrorKind::Server => self
                .inner
                .status
                .is_some_and(|s| s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS),
            _ => false,
        }
    }

    /// True for [`ErrorKind::Timeout`].
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == ErrorKind::Timeout
    }

    /// True for [`ErrorKind::SessionExpired`]: send the person to log in again.
    pub fn is_session_expired(&self) -> bool {
        self.inner.kind == ErrorKind::SessionExpired
    }

    /// The HTTP status of a server error (also kept on a session-expired error).
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// The parsed `error_code` of a server error.
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.inner.body.as_ref().and_then(ErrorBody::code)
    }

    /// The parsed error body of a server error.
    pub fn error_body(&self) -> Option<&ErrorBody> {
        self.inner.body.as_ref()
    }

    /// How long the server asked the client to wait, with a `Retry-After` header on a `429`
    /// or `503` answer (seconds, or an HTTP date counted from when the answer arrived).
    ///
    /// Requests that are safe to retry (`GET`, `PUT`) already waited and retried, up to
    /// [`RetryPolicy::max_retry_after`](crate::RetryPolicy::max_retry_after); this is for
    /// the others (a throttled login) and for waits longer than that.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// The server's body, scrubbed of tokens and truncated, when it was kept
    /// (non-JSON error bodies and undecodable replies).
    pub fn raw_body(&self) -> Option<&str> {
        self.inner.raw_body.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.inner.kind, self.inner.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("message", &self.inner.message);
        if let Some(s) = self.inner.status {
            d.field("status", &s.as_u16());
        }
        if let Some(b) = &self.inner.body {
            d.field("body", b);
        }
        if let Some(r) = &self.inner.raw_body {
            d.field("raw_body", r);
        }
        if let Some(w) = self.inner.retry_after {
            d.field("retry_after", &w);
        }
        if let Some(s) = &self.inner.source {
            d.field("source", &s.to_string());
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|s| &**s as &(dyn std::error::Error + 'static))
    }
}

impl From<TransportError> for Error {
    fn from(e: TransportError) -> Self {
        Error::transport(e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::store(e)
    }
}

impl From<latchkey_protocol::CredentialError> for Error {
    fn from(e: latchkey_protocol::CredentialError) -> Self {
        Error::credential(e)
    }
}

/// Longest body text kept in an error.
const MAX_BODY: usize = 512;

/// JSON keys whose values are always secret.
const SECRET_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "password",
    "key",
    "token",
    "id_token",
    "authCode",
    "accessToken",
];

/// Remove anything that looks like a secret from a body, then truncate it.
pub(crate) fn scrub_body(raw: &str) -> String {
    let scrubbed = match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(mut v) => {
            scrub_value(&mut v);
            v.to_string()
        }
        Err(_) => scrub_words(raw),
    };
    truncate(&scrubbed, MAX_BODY)
}

fn scrub_value(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if SECRET_KEYS.contains(&k.as_str()) && !val.is_null() {
                    *val = Value::String("<redacted>".into());
                } else {
                    scrub_value(val);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub_value),
        Value::String(s) if looks_like_jwt(s) => *s = "<redacted>".into(),
        _ => {}
    }
}

fn looks_like_jwt(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && s.len() >= 16
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
}

fn scrub_words(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if looks_like_jwt(word) {
            out.push_str("<redacted>");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in raw.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=') {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_tokens_from_json_and_text() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl";
        let s = scrub_body(&format!(
            r#"{{"access_token":"{jwt}","refresh_token":"opaque","user_id":"u"}}"#
        ));
        assert!(!s.contains(jwt) && !s.contains("opaque") && s.contains("\"u\""));
        let s = scrub_body(&format!("oops token={jwt} end"));
        assert!(!s.contains(jwt) && s.contains("oops") && s.contains("end"));
        let long = "x".repeat(5000);
        assert!(scrub_body(&long).len() <= MAX_BODY + 4);
    }

    #[test]
    fn server_error_predicates() {
        let body = ErrorBody::new(ErrorCode::InvalidSession, "invalid session");
        let e = Error::server(StatusCode::UNAUTHORIZED, Some(body), None);
        assert_eq!(e.kind(), ErrorKind::Server);
        assert_eq!(e.status(), Some(StatusCode::UNAUTHORIZED));
        assert_eq!(e.error_code(), Some(ErrorCode::InvalidSession));
        assert!(!e.is_transient());
        assert!(Error::server(StatusCode::BAD_GATEWAY, None, Some("<html>")).is_transient());
        let t = Error::transport(TransportError::new(
            latchkey_transport::TransportErrorKind::Connect,
            "refused",
        ));
        assert!(t.is_transient());
        assert_eq!(t.kind(), ErrorKind::Transport);
        let t = Error::transport(TransportError::new(
            latchkey_transport::TransportErrorKind::Timeout,
            "slow",
        ));
        assert!(t.is_timeout() && t.is_transient());
        let x = Error::session_expired(Some(e));
        assert!(x.is_session_expired());
        assert_eq!(x.error_code(), Some(ErrorCode::InvalidSession));
    }
}
