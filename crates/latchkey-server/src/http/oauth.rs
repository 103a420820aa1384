//! The browser OAuth redirect flow's routes (protocol.md §3.7): `GET` on the login
//! route starts it, `/auth/callback` (`GET`, or `POST` for Apple's `form_post`)
//! finishes it. The rules are in `auth::oauth`.
//!
//! Every answer carries `Cache-Control: no-store` and `Referrer-Policy: no-referrer`:
//! the final redirect holds tokens in its fragment, and the callback URL a code.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use latchkey_protocol::routes::paths;

use super::client::hostname;
use super::error::ApiError;
use super::extract::{ClientIp, LoginRoute, bearer};
use super::response::no_content;
use crate::auth::oauth::{self, CallbackRequest, FlowError, StartRequest};
use crate::auth::state::{ServerState, SharedState};

/// The header realm-web reads in the link flow instead of `Location`.
const X_BAAS_LOCATION: &str = "x-baas-location";

/// This server's callback URL, as the provider must see it (the same base as the
/// location route's `hostname`).
fn callback_url(state: &ServerState, headers: &HeaderMap) -> String {
    format!("{}{}", hostname(state, headers), paths::OAUTH_CALLBACK)
}

/// Whether the query flag `name` is `true` (or `1`).
fn flag(query: &HashMap<String, String>, name: &str) -> bool {
    query
        .get(name)
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The headers of every answer of the flow.
fn private(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

/// `302 Found` to `url`.
fn found(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(location) => {
            let mut resp = StatusCode::FOUND.into_response();
            resp.headers_mut().insert(header::LOCATION, location);
            resp
        }
        Err(_) => {
            ApiError::from(crate::error::Error::internal(&"unencodable redirect")).into_response()
        }
    }
}

/// `GET .../auth/providers/{provider}/login?state&redirect&device` (or
/// `?link=true&providerRedirectHeader=true` with an access token): 302 to the
/// provider, or, with `providerRedirectHeader=true`, 200 with `X-BAAS-Location`.
pub(crate) async fn start(
    State(state): State<SharedState>,
    LoginRoute(target): LoginRoute,
    Query(query): Query<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if !oauth::has_redirect_flow(&target) {
        let mut resp = ApiError::method_not_allowed(&method, uri.path()).into_response();
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    let in_header = flag(&query, "providerRedirectHeader");
    let link = flag(&query, "link").then(|| bearer(&headers).map(str::to_owned));
    let mut query = query;
    let request = StartRequest {
        redirect: query.remove("redirect"),
        client_state: query.remove("state"),
        device: query.remove("device"),
        link,
        callback: callback_url(&state, &headers),
    };
    private(match oauth::start(&state, &target, request).await {
        Ok(url) if in_header => match HeaderValue::from_str(&url) {
            Ok(value) => {
                let mut resp = no_content();
                *resp.status_mut() = StatusCode::OK;
                resp.headers_mut().insert(X_BAAS_LOCATION, value);
                resp
            }
            Err(_) => found(&url),
        },
        Ok(url) => found(&url),
        // A fetch (providerRedirectHeader) reads errors as JSON.
        Err(FlowError {
            back_to: Some(back_to),
            ..
        }) if !in_header => found(&back_to),
        Err(FlowError { error, .. }) => ApiError::from(error).into_response(),
    })
}

/// `GET /auth/callback?code&state` (or `?error&state`).
pub(crate) async fn callback_get(
    State(state): State<SharedState>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    callback(&state, client_ip, &headers, query).await
}

/// `POST /auth/callback` with a form body (Apple's `response_mode=form_post`).
pub(crate) async fn callback_post(
    State(state): State<SharedState>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    callback(&state, client_ip, &headers, form).await
}

async fn callback(
    state: &ServerState,
    client_ip: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    mut params: HashMap<String, String>,
) -> Response {
    let request = CallbackRequest {
        state: params.remove("state"),
        code: params.remove("code"),
        error: params.remove("error"),
        client_ip,
        callback: callback_url(state, headers),
    };
    private(match oauth::finish(state, request).await {
        Ok(url) => found(&url),
        Err(error) => ApiError::from(error).into_response(),
    })
}
