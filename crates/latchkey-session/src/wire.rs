//! Wire helpers: building requests as realm-web does (with the route they are for), the
//! bearer header, reading JSON replies and mapping error replies. No state, no I/O.

use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use latchkey_protocol::routes::{API_PREFIX, paths};
use latchkey_protocol::{ErrorBody, Secret};
use latchkey_transport::{DEFAULT_MAX_RESPONSE_BYTES, HttpRequest, HttpResponse};
use serde_json::Value;

use crate::error::Error;
use crate::retry::retry_after;

/// The largest response body read from the auth routes (location, login, session,
/// profile, API keys, email/password, delete): 1 MiB. Other requests (for example
/// [`User::request`](crate::User::request) to a function) keep the transport's default,
/// [`latchkey_transport::DEFAULT_MAX_RESPONSE_BYTES`] (16 MiB). A longer body fails with a
/// non-transient [`ErrorKind::Transport`](crate::ErrorKind::Transport) error whose source
/// is a [`TransportErrorKind::Protocol`](latchkey_transport::TransportErrorKind::Protocol)
/// error.
pub const AUTH_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Status of a rejected token.
pub(crate) const UNAUTHORIZED: StatusCode = StatusCode::UNAUTHORIZED;

/// The route template of a function call (`User::request` to `functions/call`).
const FUNCTIONS_CALL: &str = "/api/client/v2.0/app/{app_id}/functions/call";

/// A request ready to send, with the route template it was built for (`None` outside the
/// client API).
#[derive(Debug, Clone)]
pub(crate) struct ApiRequest {
    /// The request.
    pub(crate) request: HttpRequest,
    /// The route template, e.g. [`paths::SESSION`].
    pub(crate) route: Option<&'static str>,
}

impl ApiRequest {
    /// The response-body limit: [`AUTH_MAX_RESPONSE_BYTES`] on the auth routes, the
    /// transport default elsewhere.
    pub(crate) fn max_response_bytes(&self) -> usize {
        match self.route {
            None | Some(FUNCTIONS_CALL) => DEFAULT_MAX_RESPONSE_BYTES,
            Some(_) => AUTH_MAX_RESPONSE_BYTES,
        }
    }
}

/// Build a request for `route` with realm-web's headers: `Accept: application/json`, the
/// bearer token if any, and `Content-Type: application/json` with a body.
pub(crate) fn build(
    method: Method,
    route: Option<&'static str>,
    url: &str,
    bearer: Option<&Secret>,
    body: Option<Value>,
) -> Result<ApiRequest, Error> {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(url)
        .header(header::ACCEPT, "application/json");
    if let Some(token) = bearer {
        builder = builder.header(header::AUTHORIZATION, bearer_value(token)?);
    }
    let body = match body {
        Some(v) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Bytes::from(serde_json::to_vec(&v).map_err(|e| {
                Error::invalid_config(format!("cannot serialize the request body: {e}"))
            })?)
        }
        None => Bytes::new(),
    };
    let request = builder
        .body(body)
        .map_err(|e| Error::invalid_config(format!("invalid request: {e}")))?;
    Ok(ApiRequest { request, route })
}

/// `Bearer <token>`, marked sensitive (never logged by HTTP stacks).
pub(crate) fn bearer_value(token: &Secret) -> Result<HeaderValue, Error> {
    let mut v = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| Error::decode("the token contains characters invalid in a header", None))?;
    v.set_sensitive(true);
    Ok(v)
}

/// The route template of a request the SDK did not build (`User::request`), for logs and
/// limits: `/api/client/v2.0/auth/api_keys/{key_id}` rather than the real id. Paths
/// outside the client API are reported as `other`.
pub(crate) fn route_template(path: &str) -> &'static str {
    let Some(i) = path.find(API_PREFIX) else {
        return "other";
    };
    let rest = &path[i + API_PREFIX.len()..];
    let segs: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["app", _, "location"] => paths::LOCATION,
        ["app", _, "auth", "providers", "local-userpass", tail @ ..] => {
            match tail.join("/").as_str() {
                "register" => paths::REGISTER,
                "confirm" => paths::CONFIRM,
                "confirm/send" => paths::CONFIRM_SEND,
                "confirm/call" => paths::CONFIRM_CALL,
                "reset" => paths::RESET,
                "reset/send" => paths::RESET_SEND,
                "reset/call" => paths::RESET_CALL,
                "login" => paths::LOGIN,
                _ => "other",
            }
        }
        ["app", _, "auth", "providers", _, "login"] => paths::LOGIN,
        ["app", _, "functions", "call"] => FUNCTIONS_CALL,
        ["auth", "session"] => paths::SESSION,
        ["auth", "profile"] => paths::PROFILE,
        ["auth", "delete"] => paths::DELETE_USER,
        ["auth", "api_keys"] => paths::API_KEYS,
        ["auth", "api_keys", _] => paths::API_KEY,
        ["auth", "api_keys", _, "enable"] => paths::API_KEY_ENABLE,
        ["auth", "api_keys", _, "disable"] => paths::API_KEY_DISABLE,
        _ => "other",
    }
}

/// The route of a request the SDK did not build: its template, `None` outside the client
/// API.
pub(crate) fn route_of(path: &str) -> Option<&'static str> {
    Some(route_template(path)).filter(|r| *r != "other")
}

/// `Ok` for 2xx, else a server error with the parsed JSON error body.
pub(crate) fn check_status(resp: HttpResponse) -> Result<HttpResponse, Error> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    Err(server_error(&resp))
}

/// The server error of a non-2xx reply: its status, the parsed JSON error body, or the
/// raw body when it is not JSON.
pub(crate) fn server_error(resp: &HttpResponse) -> Error {
    let status = resp.status();
    let body = if is_json(resp) {
        serde_json::from_slice::<ErrorBody>(resp.body()).ok()
    } else {
        None
    };
    let raw = if body.is_none() && !resp.body().is_empty() {
        Some(String::from_utf8_lossy(resp.body()).into_owned())
    } else {
        None
    };
    let err = Error::server(status, body, raw.as_deref());
    match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
            err.with_retry_after(retry_after(resp.headers(), SystemTime::now()))
        }
        _ => err,
    }
}

fn is_json(resp: &HttpResponse) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        })
}

/// Decode a JSON reply; `what` names it in the decode error.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    resp: &HttpResponse,
    what: &str,
) -> Result<T, Error> {
    serde_json::from_slice(resp.body())
        .map_err(|e| Error::decode(format!("cannot decode the {what}: {e}"), Some(resp.body())))
}
