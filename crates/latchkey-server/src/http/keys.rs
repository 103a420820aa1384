//! The app's published keys: `GET .../app/{app_id}/.well-known/jwks.json` and
//! `.../.well-known/openid-configuration`, and the admin routes of signing keys:
//! list, reload, rotate (see docs/tokens.md).

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, header};
use serde_json::Value;

use super::client::hostname;
use super::error::ApiError;
use super::extract::{AdminCaller, EJson};
use super::response::ok_json;
use crate::auth::state::SharedState;
use crate::auth::{key_admin, token_keys};
use crate::config::TokenAlgorithm;
use crate::error::Error;

fn cached(mut resp: Response, max_age: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        resp.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    resp
}

/// `GET .../app/{app_id}/.well-known/jwks.json`.
pub(crate) async fn jwks(
    State(state): State<SharedState>,
    Path(app_id): Path<String>,
) -> Result<Response, ApiError> {
    let published = token_keys::published(&state, &app_id)?;
    Ok(cached(ok_json(&published.jwks), published.max_age_secs))
}

/// `GET .../app/{app_id}/.well-known/openid-configuration`.
pub(crate) async fn openid_configuration(
    State(state): State<SharedState>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let base = hostname(&state, &headers);
    let (doc, max_age) = token_keys::discovery(&state, &app_id, &base)?;
    Ok(cached(ok_json(&doc), max_age))
}

/// The admin routes of signing keys.
pub(crate) fn admin_routes() -> Router<SharedState> {
    Router::new()
        .route("/admin/v1/apps/{app}/keys", get(list_keys))
        .route("/admin/v1/apps/{app}/keys/rotate", post(rotate_keys))
        .route("/admin/v1/keys/reload", post(reload_keys))
}

/// `GET /admin/v1/apps/{app}/keys`: the app's signing keys, no private material.
async fn list_keys(
    State(state): State<SharedState>,
    Path(app): Path<String>,
    _: AdminCaller,
) -> Result<Response, ApiError> {
    Ok(ok_json(&key_admin::list(&state, &app)?))
}

/// `POST /admin/v1/keys/reload`: re-read every app's signing keys from the
/// configuration file.
async fn reload_keys(
    State(state): State<SharedState>,
    _: AdminCaller,
) -> Result<Response, ApiError> {
    Ok(ok_json(&key_admin::reload(&state).await?))
}

/// `POST /admin/v1/apps/{app}/keys/rotate`, body optional:
/// `{"algorithm": "ES256", "stage": false}`.
async fn rotate_keys(
    State(state): State<SharedState>,
    Path(app): Path<String>,
    _: AdminCaller,
    EJson(body): EJson,
) -> Result<Response, ApiError> {
    let mut algorithm = TokenAlgorithm::ES256;
    let mut stage = false;
    for (name, value) in &body {
        match (name.as_str(), value) {
            ("algorithm", Value::String(a)) => {
                algorithm = TokenAlgorithm::ALL
                    .into_iter()
                    .find(|t| t.as_str() == a)
                    .ok_or_else(|| {
                        Error::bad_request("'algorithm' must be ES256, EdDSA, RS256 or HS256")
                    })?;
            }
            ("algorithm", _) => {
                return Err(
                    Error::bad_request("'algorithm' must be ES256, EdDSA, RS256 or HS256").into(),
                );
            }
            ("stage", Value::Bool(b)) => stage = *b,
            ("stage", _) => return Err(Error::bad_request("'stage' must be a boolean").into()),
            _ => {
                return Err(Error::bad_request(
                    "unknown field; the body may hold 'algorithm' and 'stage'",
                )
                .into());
            }
        }
    }
    Ok(ok_json(
        &key_admin::rotate(&state, &app, algorithm, stage).await?,
    ))
}
