//! The HTTP layer: the connection edge ([`conn`]: accept loop, connection cap,
//! timeouts), routes, CORS ([`cors`]), body and URI limits, extractors
//! ([`extract`]), and the guarantee that every error (including the framework's own
//! rejections and fallbacks, and hyper's answers to unparsable requests) is a JSON
//! body with `Content-Type: application/json`. Domain errors become JSON answers in
//! one place ([`error`]). No rule lives here: a handler parses, calls one domain
//! function and renders its answer.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, Request, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use latchkey_protocol::routes::paths;

use crate::auth::state::SharedState;

mod access;
mod admin;
mod api_keys;
mod client;
pub(crate) mod conn;
mod console;
pub(crate) mod cors;
mod error;
mod extract;
mod keys;
pub(crate) mod metrics;
mod oauth;
mod response;
mod userpass;

pub use error::ApiError;
use extract::MAX_BODY_BYTES;
pub(crate) use extract::json_object;
use response::APPLICATION_JSON;

/// Longest accepted request target (path and query); a longer one is answered 414.
pub(crate) const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest accepted header block (names and values); a larger one is answered 431.
pub(crate) const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most accepted header lines; more are answered 431.
pub(crate) const MAX_HEADER_COUNT: usize = 64;

/// The whole application; `cors` is the apps' CORS policy; `metrics` the server's
/// metrics, served at `/metrics` when `serve_metrics`.
pub(crate) fn router(
    state: SharedState,
    cors: std::sync::Arc<cors::CorsPolicy>,
    metrics: std::sync::Arc<metrics::Metrics>,
    serve_metrics: bool,
) -> Router {
    let ops = Router::new()
        .route(metrics::HEALTHZ, get(metrics::healthz))
        .route(metrics::READYZ, get(metrics::readyz))
        .with_state(state.clone())
        .merge(metrics_route(&state, &metrics, serve_metrics));
    Router::new()
        .route(paths::LOCATION, get(client::location))
        .route(paths::JWKS, get(keys::jwks))
        .route(paths::OPENID_CONFIGURATION, get(keys::openid_configuration))
        .route(paths::LOGIN, post(client::login).get(oauth::start))
        .route(
            paths::OAUTH_CALLBACK,
            get(oauth::callback_get).post(oauth::callback_post),
        )
        .route(paths::REGISTER, post(userpass::register))
        .route(paths::CONFIRM, post(userpass::confirm))
        .route(paths::CONFIRM_SEND, post(userpass::confirm_send))
        .route(paths::CONFIRM_CALL, post(userpass::confirm_call))
        .route(paths::RESET, post(userpass::reset))
        .route(paths::RESET_SEND, post(userpass::reset_send))
        .route(paths::RESET_CALL, post(userpass::reset_call))
        .merge(admin::routes())
        .merge(console::routes())
        .merge(keys::admin_routes())
        .route(paths::SESSION, post(client::refresh).delete(client::logout))
        .route(paths::PROFILE, get(client::profile))
        .route(paths::DELETE_USER, delete(client::delete_user))
        .route(paths::API_KEYS, post(api_keys::create).get(api_keys::list))
        .route(
            paths::API_KEY,
            get(api_keys::get_one).delete(api_keys::delete),
        )
        .route(paths::API_KEY_ENABLE, axum::routing::put(api_keys::enable))
        .route(
            paths::API_KEY_DISABLE,
            axum::routing::put(api_keys::disable),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .merge(ops)
        .layer(middleware::from_fn_with_state(metrics, metrics::track))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(head_limits))
        .layer(middleware::from_fn_with_state(cors, cors::cors))
        // One span per request and one DEBUG line per answer, an INFO summary a
        // minute (`access`; docs/operations.md).
        .layer(access::layer())
}

/// `GET /metrics` on its own (stateless) router when `on`, else nothing.
pub(crate) fn metrics_route(
    state: &SharedState,
    metrics: &std::sync::Arc<metrics::Metrics>,
    on: bool,
) -> Router {
    if !on {
        return Router::new();
    }
    Router::new()
        .route(metrics::METRICS, get(metrics::metrics))
        .with_state((state.clone(), metrics.clone()))
}

/// 414 for a request target over [`MAX_URI_BYTES`], 431 for headers over
/// [`MAX_HEADER_BYTES`] or [`MAX_HEADER_COUNT`]. (hyper's own, larger limits bound
/// the memory a request head can take; see [`conn`].)
async fn head_limits(req: Request<axum::body::Body>, next: Next) -> Response {
    let uri_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return ApiError::uri_too_long().into_response();
    }
    let headers = req.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADER_COUNT || header_bytes > MAX_HEADER_BYTES {
        return ApiError::from_status(http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
            .into_response();
    }
    next.run(req).await
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::route_not_found(&method, uri.path())
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::method_not_allowed(&method, uri.path())
}

/// Replace any error response that is not JSON (axum's extractor rejections are
/// text/plain) with a JSON error body of the same status.
async fn json_errors(req: Request<axum::body::Body>, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == HeaderValue::from_static(APPLICATION_JSON));
    // The console's pages are HTML, errors included.
    let is_html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if is_json || is_html {
        return resp;
    }
    let allow = resp.headers().get(header::ALLOW).cloned();
    let mut replaced = ApiError::from_status(status).into_response();
    if let Some(allow) = allow {
        replaced.headers_mut().insert(header::ALLOW, allow);
    }
    replaced
}
