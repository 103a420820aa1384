//! The app's published keys: `GET .../app/{app_id}/.well-known/jwks.json` and
//! `.../.well-known/openid-configuration` (see docs/tokens.md).

use axum::extract::{Path, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, header};

use super::client::hostname;
use super::error::ApiError;
use super::response::ok_json;
use crate::auth::state::SharedState;
use crate::auth::token_keys;

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
