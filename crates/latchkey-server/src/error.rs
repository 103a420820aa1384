//! [`ApiError`]: every failed request becomes one of these, and then a JSON
//! `{"error", "error_code"}` body with `Content-Type: application/json` exactly.

use std::borrow::Cow;
use std::fmt;

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use latchkey_protocol::{ErrorBody, ErrorCode};

use crate::http::response::json_response;
use crate::store::StoreError;

/// `s` without control characters, at most `max_chars` long: safe to echo in a message.
pub(crate) fn printable(s: &str, max_chars: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect()
}

/// An error answer of the client API: status, `error_code` and a message that
/// never contains a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: Cow<'static, str>,
    /// `Retry-After` seconds (429 answers).
    retry_after: Option<u64>,
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

    /// 429 `TooManyRequests` with a `Retry-After` header of `retry_after_secs`.
    pub fn too_many_requests(message: impl Into<Cow<'static, str>>, retry_after_secs: u64) -> Self {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyRequests,
            message,
        );
        e.retry_after = Some(retry_after_secs);
        e
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

    /// 400 `BadRequest`.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    /// 401 `MissingAuthReq` "must authenticate first".
    pub fn missing_auth() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::MissingAuthReq,
            "must authenticate first",
        )
    }

    /// 401 `InvalidSession` with `message`.
    pub fn invalid_session(message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidSession, message)
    }

    /// 401 `InvalidSession` "invalid session: failed to find refresh token", the text
    /// realm-web's logout looks for.
    pub fn refresh_token_not_found() -> Self {
        ApiError::invalid_session("invalid session: failed to find refresh token")
    }

    /// 401 `InvalidPassword` "invalid username/password".
    pub fn invalid_password() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidPassword,
            "invalid username/password",
        )
    }

    /// 404 `InvalidParameter` for an unknown client app id.
    pub fn app_not_found(app_id: &str) -> Self {
        // The id came from the URL: keep the echo short and printable.
        let shown = printable(app_id, 128);
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::InvalidParameter,
            format!("cannot find app using Client App ID '{shown}'"),
        )
    }

    /// 404 `AuthProviderNotFound`: the provider is unknown, not implemented or disabled.
    pub fn provider_not_found(provider: &str) -> Self {
        let shown = printable(provider, 64);
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::AuthProviderNotFound,
            format!("authentication provider '{shown}' not found or not enabled"),
        )
    }

    /// 409 `AccountNameInUse` with `message`.
    pub fn account_name_in_use(message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::new(StatusCode::CONFLICT, ErrorCode::AccountNameInUse, message)
    }

    /// 404 `UserNotFound` "user not found".
    pub fn user_not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UserNotFound,
            "user not found",
        )
    }

    /// 403 `UserDisabled`.
    pub fn user_disabled() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::UserDisabled,
            "user is disabled",
        )
    }

    /// 401 `AuthError` with `message`: a rejected credential.
    pub fn auth_error(message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::AuthError, message)
    }

    /// 401 `AuthError` "confirmation required": email/password credentials not confirmed yet.
    pub fn confirmation_required() -> Self {
        ApiError::auth_error("confirmation required")
    }

    /// 413 `BadRequest`: the request body is too large.
    pub fn payload_too_large() -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BadRequest,
            "request body too large",
        )
    }

    /// 404 for a path the server does not serve.
    pub fn route_not_found(method: &http::Method, path: &str) -> Self {
        let shown = printable(path, 256);
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::Other("NotFound".to_owned()),
            format!("no route {method} {shown}"),
        )
    }

    /// 405 for a known path with a method it does not serve.
    pub fn method_not_allowed(method: &http::Method, path: &str) -> Self {
        let shown = printable(path, 256);
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Other("MethodNotAllowed".to_owned()),
            format!("method {method} not allowed on {shown}"),
        )
    }

    /// 500 `InternalServerError`. The cause is logged, never sent.
    pub fn internal(cause: &dyn fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal server error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalServerError,
            "internal server error",
        )
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody::new(self.code.clone(), self.message.clone())
    }

    /// A generic error for a status produced outside a handler (e.g. by a framework rejection).
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(),
            StatusCode::NOT_FOUND => {
                ApiError::new(status, ErrorCode::Other("NotFound".to_owned()), "not found")
            }
            StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
                status,
                ErrorCode::Other("MethodNotAllowed".to_owned()),
                "method not allowed",
            ),
            StatusCode::UNAUTHORIZED => ApiError::invalid_session("invalid session"),
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
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn response_is_json_with_exact_content_type() {
        let resp = ApiError::invalid_password().into_response();
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
        let e = ApiError::app_not_found("a\nb");
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        assert!(!e.message().contains('\n'));
    }
}
