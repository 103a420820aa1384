//! [`ApiError`]: the HTTP shape of every failed request, a JSON
//! `{"error", "error_code"}` body with `Content-Type: application/json` exactly.
//!
//! The domain's [`Error`] becomes an [`ApiError`] here and nowhere else
//! (`From<Error> for ApiError`): the one table of statuses and error codes.

use std::borrow::Cow;
use std::fmt;

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use latchkey_protocol::{ErrorBody, ErrorCode};

use super::response::json_response;
use crate::error::{Error, printable};

/// An error answer of the client API: status, `error_code` and a message that
/// never contains a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: Cow<'static, str>,
    /// `Retry-After` seconds (429 and 503 answers).
    retry_after: Option<u64>,
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let (status, code) = match &e {
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            // The status and code of every other oversize body.
            Error::PayloadTooLarge(_) => {
                let too_large = ApiError::payload_too_large();
                (too_large.status, too_large.code)
            }
            Error::MissingAuth => (StatusCode::UNAUTHORIZED, ErrorCode::MissingAuthReq),
            Error::InvalidSession(_) => (StatusCode::UNAUTHORIZED, ErrorCode::InvalidSession),
            Error::InvalidPassword => (StatusCode::UNAUTHORIZED, ErrorCode::InvalidPassword),
            Error::AuthFailed(_) => (StatusCode::UNAUTHORIZED, ErrorCode::AuthError),
            Error::AppNotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::InvalidParameter),
            Error::ProviderNotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::AuthProviderNotFound),
            Error::AppDomainMismatch => (StatusCode::FORBIDDEN, ErrorCode::UserAppDomainMismatch),
            Error::AccountNameInUse(_) => (StatusCode::CONFLICT, ErrorCode::AccountNameInUse),
            Error::UserNotFound => (StatusCode::NOT_FOUND, ErrorCode::UserNotFound),
            Error::UserDisabled => (StatusCode::FORBIDDEN, ErrorCode::UserDisabled),
            // 404, never 401: realm-core logs the user out on a 401 from the key routes.
            Error::ApiKeyNotFound => (StatusCode::NOT_FOUND, ErrorCode::APIKeyNotFound),
            Error::ApiKeyNameTaken => (StatusCode::CONFLICT, ErrorCode::APIKeyAlreadyExists),
            Error::UserAlreadyConfirmed => (StatusCode::CONFLICT, ErrorCode::UserAlreadyConfirmed),
            Error::UserpassTokenInvalid => {
                (StatusCode::BAD_REQUEST, ErrorCode::UserpassTokenInvalid)
            }
            Error::TooManyRequests { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyRequests)
            }
            Error::AdminDisabled => (StatusCode::NOT_FOUND, not_found_code()),
            Error::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Other("ServiceUnavailable".to_owned()),
            ),
            Error::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::InternalServerError,
            ),
        };
        let mut api = ApiError::new(status, code, e.to_string());
        api.retry_after = match e {
            Error::TooManyRequests {
                retry_after_secs, ..
            } => Some(retry_after_secs),
            Error::Unavailable => Some(crate::error::UNAVAILABLE_RETRY_AFTER_SECS),
            _ => None,
        };
        api
    }
}

/// The `error_code` of a 413: realm-core's name for a request body over the server's
/// limit (Realm Swift documents `RLMAppErrorReadSizeLimitExceeded` as "The request
/// body size exceeded a server-configured limit").
pub(crate) const READ_SIZE_LIMIT_EXCEEDED: &str = "ReadSizeLimitExceeded";

fn not_found_code() -> ErrorCode {
    ErrorCode::Other("NotFound".to_owned())
}

fn method_not_allowed_code() -> ErrorCode {
    ErrorCode::Other("MethodNotAllowed".to_owned())
}

impl ApiError {
    /// An error with any status, code and message.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The `Retry-After` seconds of a 429 answer.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `error_code`.
    pub fn error_code(&self) -> &ErrorCode {
        &self.code
    }

    /// The `error` message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody::new(self.code.clone(), self.message.clone())
    }

    /// 413 `ReadSizeLimitExceeded` (the code realm-core knows for a request body
    /// over the server's limit): the request body is too large.
    pub fn payload_too_large() -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Other(READ_SIZE_LIMIT_EXCEEDED.to_owned()),
            "request body too large",
        )
    }

    /// 415 `BadRequest`: a request body that is not JSON.
    pub fn unsupported_media_type() -> Self {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::BadRequest,
            "request body must be JSON (Content-Type: application/json)",
        )
    }

    /// 408 `BadRequest`: the request body did not arrive in time. The answer closes
    /// the connection (`Connection: close`).
    pub fn request_timeout() -> Self {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::BadRequest,
            "request body not received in time",
        )
    }

    /// 414 `BadRequest`: the request target is longer than the server reads.
    pub fn uri_too_long() -> Self {
        ApiError::new(
            StatusCode::URI_TOO_LONG,
            ErrorCode::BadRequest,
            "request URI too long",
        )
    }

    /// 403 `DomainNotAllowed`: the request's `Origin` may not call this app.
    pub fn origin_not_allowed() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::DomainNotAllowed,
            "origin not allowed",
        )
    }

    /// 404 for a path the server does not serve.
    pub fn route_not_found(method: &http::Method, path: &str) -> Self {
        let shown = printable(path, 256);
        ApiError::new(
            StatusCode::NOT_FOUND,
            not_found_code(),
            format!("no route {method} {shown}"),
        )
    }

    /// 405 for a known path with a method it does not serve.
    pub fn method_not_allowed(method: &http::Method, path: &str) -> Self {
        let shown = printable(path, 256);
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            method_not_allowed_code(),
            format!("method {method} not allowed on {shown}"),
        )
    }

    /// A generic error for a status produced outside a handler (e.g. by a framework rejection).
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::unsupported_media_type(),
            StatusCode::URI_TOO_LONG => ApiError::uri_too_long(),
            StatusCode::REQUEST_TIMEOUT => ApiError::request_timeout(),
            StatusCode::NOT_FOUND => ApiError::new(status, not_found_code(), "not found"),
            StatusCode::METHOD_NOT_ALLOWED => {
                ApiError::new(status, method_not_allowed_code(), "method not allowed")
            }
            StatusCode::UNAUTHORIZED => Error::invalid_session("invalid session").into(),
            s if s.is_server_error() => {
                ApiError::new(s, ErrorCode::InternalServerError, "internal server error")
            }
            s => ApiError::new(
                s,
                ErrorCode::BadRequest,
                s.canonical_reason()
                    .map(|r| r.to_ascii_lowercase())
                    .unwrap_or_else(|| "bad request".to_owned()),
            ),
        }
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ApiError({} {}: {})",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = json_response(self.status, &self.body());
        if let Some(secs) = self.retry_after
            && let Ok(v) = http::HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
        if self.status == StatusCode::REQUEST_TIMEOUT {
            resp.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn response_is_json_with_exact_content_type() {
        let resp = ApiError::from(Error::InvalidPassword).into_response();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()[http::header::CONTENT_TYPE],
            "application/json"
        );
        let bytes = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        let body: ErrorBody = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body.code(), Some(ErrorCode::InvalidPassword));
        assert_eq!(body.error.as_deref(), Some("invalid username/password"));
    }

    #[test]
    fn app_not_found_strips_control_chars() {
        let e = ApiError::from(Error::AppNotFound("a\nb".into()));
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        assert!(!e.message().contains('\n'));
    }

    #[test]
    fn database_outages_are_503_with_retry_after() {
        let e = ApiError::from(Error::from(crate::store::StoreError::Unavailable(
            "connection refused".into(),
        )));
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.error_code().as_str(), "ServiceUnavailable");
        assert_eq!(
            e.retry_after(),
            Some(crate::error::UNAVAILABLE_RETRY_AFTER_SECS)
        );
        assert!(!e.message().contains("refused"), "{}", e.message());
        let other = ApiError::from(Error::from(crate::store::StoreError::Database("x".into())));
        assert_eq!(other.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(other.retry_after(), None);
    }

    #[test]
    fn throttled_answers_carry_retry_after() {
        let e = ApiError::from(Error::too_many_requests("slow down", 7));
        assert_eq!(e.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(e.retry_after(), Some(7));
        let resp = e.into_response();
        assert_eq!(resp.headers()[http::header::RETRY_AFTER], "7");
    }

    #[test]
    fn rejected_credentials_are_exactly_the_401_answers() {
        let all = Error::every_variant();
        for e in all {
            let rejected = e.is_rejected_credential();
            assert_eq!(
                ApiError::from(e.clone()).status() == StatusCode::UNAUTHORIZED,
                rejected,
                "{e:?}"
            );
        }
    }
}
