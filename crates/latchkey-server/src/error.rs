//! [`Error`]: the one error type of the server's domain (login, sessions, users,
//! API keys, email/password flows, administration, providers).
//!
//! It says what went wrong, never how to answer it over HTTP: the HTTP layer maps it
//! to a status, an `error_code` and a JSON body in exactly one place
//! (`http::error`). Messages never contain a secret.

use std::borrow::Cow;
use std::fmt;

use crate::store::StoreError;

/// Whether a string or key anywhere in `map` holds U+0000, which PostgreSQL cannot store
/// in text or JSON columns: refused at the edge, so both engines answer alike (400).
pub(crate) fn holds_nul(map: &serde_json::Map<String, serde_json::Value>) -> bool {
    fn value(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(items) => items.iter().any(value),
            serde_json::Value::Object(map) => holds_nul(map),
            _ => false,
        }
    }
    map.iter().any(|(k, v)| k.contains('\0') || value(v))
}

/// `s` without control characters, at most `max_chars` long: safe to echo in a message.
pub(crate) fn printable(s: &str, max_chars: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect()
}

/// Why a request was refused. The `Display` text is the message sent to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request value is missing, malformed or out of range.
    #[error("{0}")]
    BadRequest(Cow<'static, str>),
    /// A request value is larger than its bound (413, like a body over the body limit).
    #[error("{0}")]
    PayloadTooLarge(Cow<'static, str>),
    /// The request carries no credentials where they are required.
    #[error("must authenticate first")]
    MissingAuth,
    /// A token or session is invalid, expired or revoked.
    #[error("{0}")]
    InvalidSession(Cow<'static, str>),
    /// Email/password login with an unknown email or a wrong password.
    #[error("invalid username/password")]
    InvalidPassword,
    /// A credential was rejected (bad token, unverifiable identity, unconfirmed account...).
    #[error("{0}")]
    AuthFailed(Cow<'static, str>),
    /// No hosted app has this client app id.
    #[error("cannot find app using Client App ID '{}'", printable(.0, 128))]
    AppNotFound(String),
    /// The provider is unknown, not implemented or disabled for the app.
    #[error("authentication provider '{}' not found or not enabled", printable(.0, 64))]
    ProviderNotFound(String),
    /// The access token belongs to another app than the route's.
    #[error("the access token belongs to another app")]
    AppDomainMismatch,
    /// An account name (email, identity) is taken.
    #[error("{0}")]
    AccountNameInUse(Cow<'static, str>),
    /// The user does not exist.
    #[error("user not found")]
    UserNotFound,
    /// The user is disabled.
    #[error("user is disabled")]
    UserDisabled,
    /// The API key does not exist (or is not the caller's).
    #[error("API key not found")]
    ApiKeyNotFound,
    /// An API key with this name exists.
    #[error("an API key with this name already exists")]
    ApiKeyNameTaken,
    /// The email/password credentials are already confirmed.
    #[error("already confirmed")]
    UserAlreadyConfirmed,
    /// A confirmation or reset token pair is invalid, used or expired.
    #[error("invalid token data")]
    UserpassTokenInvalid,
    /// Throttled: try again after `retry_after_secs`.
    #[error("{message}")]
    TooManyRequests {
        /// What was throttled.
        message: Cow<'static, str>,
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// The admin API is not configured (no `admin_token`).
    #[error("admin API disabled")]
    AdminDisabled,
    /// The database cannot serve now (down, unreachable, overloaded, out of space): try
    /// again after [`UNAVAILABLE_RETRY_AFTER_SECS`]. The cause was logged.
    #[error("the service is temporarily unavailable; try again later")]
    Unavailable,
    /// A server-side failure; the cause was logged when the error was made.
    #[error("internal server error")]
    Internal,
}

impl Error {
    /// [`Error::BadRequest`].
    pub(crate) fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Error::BadRequest(message.into())
    }

    /// [`Error::InvalidSession`].
    pub(crate) fn invalid_session(message: impl Into<Cow<'static, str>>) -> Self {
        Error::InvalidSession(message.into())
    }

    /// [`Error::InvalidSession`] "invalid session: failed to find refresh token", the text
    /// realm-web's logout looks for.
    pub(crate) fn refresh_token_not_found() -> Self {
        Error::invalid_session("invalid session: failed to find refresh token")
    }

    /// [`Error::AuthFailed`]: a rejected credential.
    pub(crate) fn auth_failed(message: impl Into<Cow<'static, str>>) -> Self {
        Error::AuthFailed(message.into())
    }

    /// [`Error::AuthFailed`] "confirmation required": email/password credentials not
    /// confirmed yet.
    pub(crate) fn confirmation_required() -> Self {
        Error::auth_failed("confirmation required")
    }

    /// [`Error::AccountNameInUse`].
    pub(crate) fn account_name_in_use(message: impl Into<Cow<'static, str>>) -> Self {
        Error::AccountNameInUse(message.into())
    }

    /// [`Error::TooManyRequests`].
    pub(crate) fn too_many_requests(
        message: impl Into<Cow<'static, str>>,
        retry_after_secs: u64,
    ) -> Self {
        Error::TooManyRequests {
            message: message.into(),
            retry_after_secs,
        }
    }

    /// [`Error::Internal`]. The cause is logged here, never sent.
    pub(crate) fn internal(cause: &dyn fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal server error");
        Error::Internal
    }

    /// Whether this refuses a presented credential or session (the 401 answers): such
    /// a login counts as a failure for throttling.
    pub fn is_rejected_credential(&self) -> bool {
        matches!(
            self,
            Error::MissingAuth
                | Error::InvalidSession(_)
                | Error::InvalidPassword
                | Error::AuthFailed(_)
        )
    }
}

/// The `Retry-After` of an [`Error::Unavailable`] answer, in seconds.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 5;

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database unavailable");
            Error::Unavailable
        } else {
            Error::internal(&e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_names_are_printable_and_bounded() {
        let e = Error::AppNotFound("a\nb".into());
        assert_eq!(e.to_string(), "cannot find app using Client App ID 'ab'");
        let long = Error::ProviderNotFound("p".repeat(100)).to_string();
        assert!(long.contains(&"p".repeat(64)) && !long.contains(&"p".repeat(65)));
    }
}

#[cfg(test)]
impl Error {
    /// One value of every variant, for tests that must cover them all: the `match` fails to compile when a variant is added.
    pub(crate) fn every_variant() -> Vec<Error> {
        let all = vec![
            Error::BadRequest("x".into()),
            Error::PayloadTooLarge("x".into()),
            Error::MissingAuth,
            Error::InvalidSession("x".into()),
            Error::InvalidPassword,
            Error::AuthFailed("x".into()),
            Error::AppNotFound("x".into()),
            Error::ProviderNotFound("x".into()),
            Error::AppDomainMismatch,
            Error::AccountNameInUse("x".into()),
            Error::UserNotFound,
            Error::UserDisabled,
            Error::ApiKeyNotFound,
            Error::ApiKeyNameTaken,
            Error::UserAlreadyConfirmed,
            Error::UserpassTokenInvalid,
            Error::TooManyRequests {
                message: "x".into(),
                retry_after_secs: 1,
            },
            Error::AdminDisabled,
            Error::Unavailable,
            Error::Internal,
        ];
        for e in &all {
            match e {
                Error::BadRequest(_)
                | Error::PayloadTooLarge(_)
                | Error::MissingAuth
                | Error::InvalidSession(_)
                | Error::InvalidPassword
                | Error::AuthFailed(_)
                | Error::AppNotFound(_)
                | Error::ProviderNotFound(_)
                | Error::AppDomainMismatch
                | Error::AccountNameInUse(_)
                | Error::UserNotFound
                | Error::UserDisabled
                | Error::ApiKeyNotFound
                | Error::ApiKeyNameTaken
                | Error::UserAlreadyConfirmed
                | Error::UserpassTokenInvalid
                | Error::TooManyRequests { .. }
                | Error::AdminDisabled
                | Error::Unavailable
                | Error::Internal => {}
            }
        }
        all
    }
}

/// docs/errors.md lists every code and status the server answers; these tests keep it
/// true.
#[cfg(test)]
mod errors_md {
    use super::Error;
    use crate::ApiError;

    /// The (code, status) rows of the table in docs/errors.md.
    fn documented() -> Vec<(String, u16)> {
        include_str!("../../../docs/errors.md")
            .lines()
            .filter_map(|line| {
                let mut cells = line.split('|').map(str::trim).skip(1);
                let code = cells.next()?.strip_prefix('`')?.strip_suffix('`')?;
                let status = cells.next()?.parse().ok()?;
                Some((code.to_owned(), status))
            })
            .collect()
    }

    #[test]
    fn every_error_is_listed() {
        let method = http::Method::GET;
        let mut answered: Vec<ApiError> = Error::every_variant()
            .into_iter()
            .map(ApiError::from)
            .collect();
        // The answers made outside the domain: the router's, the HTTP edge's and the
        // body limit's (431 and hyper's own 400 are written by `http::conn` with the
        // code of `from_status`).
        answered.push(ApiError::payload_too_large());
        answered.push(ApiError::unsupported_media_type());
        answered.push(ApiError::request_timeout());
        answered.push(ApiError::uri_too_long());
        answered.push(ApiError::origin_not_allowed());
        answered.push(ApiError::from_status(
            http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ));
        answered.push(ApiError::route_not_found(&method, "/x"));
        answered.push(ApiError::method_not_allowed(&method, "/x"));
        let answered: Vec<(String, u16)> = answered
            .iter()
            .map(|a| (a.error_code().as_str().to_owned(), a.status().as_u16()))
            .collect();
        let documented = documented();
        assert!(documented.len() >= 20, "{documented:?}");
        for pair in &answered {
            assert!(
                documented.contains(pair),
                "{pair:?} is answered but missing from docs/errors.md"
            );
        }
        for pair in &documented {
            assert!(
                answered.contains(pair),
                "docs/errors.md lists {pair:?}, which the server never answers"
            );
        }
    }
}
