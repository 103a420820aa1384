//! The HTTP layer: routes, CORS, body limits, extractors ([`extract`]), and the
//! guarantee that every error (including the framework's own rejections and
//! fallbacks) is a JSON body with `Content-Type: application/json`. Domain errors
//! become JSON answers in one place ([`error`]). No rule lives here: a handler
//! parses, calls one domain function and renders its answer.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use latchkey_protocol::routes::paths;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::auth::state::SharedState;

mod admin;
mod api_keys;
mod client;
mod error;
mod extract;
mod response;
mod userpass;

pub use error::ApiError;
use extract::MAX_BODY_BYTES;
pub(crate) use extract::json_object;
use response::APPLICATION_JSON;

/// The response header realm-web reads in the OAuth link flow.
const X_BAAS_LOCATION: HeaderName = HeaderName::from_static("x-baas-location");

/// The whole application.
pub(crate) fn router(state: SharedState) -> Router {
    Router::new()
        .route(paths::LOCATION, get(client::location))
        .route(paths::LOGIN, post(client::login))
        .route(paths::REGISTER, post(userpass::register))
        .route(paths::CONFIRM, post(userpass::confirm))
        .route(paths::CONFIRM_SEND, post(userpass::confirm_send))
        .route(paths::CONFIRM_CALL, post(userpass::confirm_call))
        .route(paths::RESET, post(userpass::reset))
        .route(paths::RESET_SEND, post(userpass::reset_send))
        .route(paths::RESET_CALL, post(userpass::reset_call))
        .merge(admin::routes())
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
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(json_errors))
        .layer(cors())
        .layer(TraceLayer::new_for_http())
}

/// CORS for realm-web in browsers (protocol.md §1.6): echo the Origin, allow
/// credentials, expose `X-BAAS-Location`.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .allow_credentials(true)
        .expose_headers([X_BAAS_LOCATION])
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
    if is_json {
        return resp;
    }
    let allow = resp.headers().get(header::ALLOW).cloned();
    let mut replaced = ApiError::from_status(status).into_response();
    if let Some(allow) = allow {
        replaced.headers_mut().insert(header::ALLOW, allow);
    }
    replaced
}
