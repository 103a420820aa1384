//! The admin API under `/admin/v1`: `Authorization: Bearer <admin_token>`, JSON in
//! and out. The operations live in [`crate::admin`], shared with the CLI.
//!
//! Without `admin_token` in the configuration every admin route answers 404
//! "admin API disabled".

use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post, put};
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use latchkey_protocol::{ErrorCode, ejson};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::extract::{bearer, json_object};
use super::response::ok_json;
use crate::admin::{AdminOp, execute};
use crate::error::ApiError;
use crate::state::SharedState;

/// The admin routes.
pub(crate) fn routes() -> Router<SharedState> {
    Router::new()
        .route(
            "/admin/v1/apps/{app}/api_keys",
            post(create_server_key).get(list_server_keys),
        )
        .route(
            "/admin/v1/apps/{app}/api_keys/{id}",
            axum::routing::delete(delete_server_key),
        )
        .route(
            "/admin/v1/apps/{app}/api_keys/{id}/disable",
            put(disable_server_key),
        )
        .route(
            "/admin/v1/apps/{app}/api_keys/{id}/enable",
            put(enable_server_key),
        )
        .route("/admin/v1/apps/{app}/users", get(list_users))
        .route(
            "/admin/v1/apps/{app}/users/{id}",
            get(get_user).delete(delete_user),
        )
        .route(
            "/admin/v1/apps/{app}/users/{id}/custom_data",
            put(set_custom_data),
        )
        .route("/admin/v1/apps/{app}/users/{id}/disable", put(disable_user))
        .route("/admin/v1/apps/{app}/users/{id}/enable", put(enable_user))
        .route(
            "/admin/v1/apps/{app}/users/{id}/sessions",
            axum::routing::delete(revoke_sessions),
        )
        .route("/admin/v1/apps/{app}/outbox", get(outbox))
}

/// Check the admin bearer token in constant time (hashes of equal length are compared).
fn authorize(state: &SharedState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &state.admin_token else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::Other("NotFound".to_owned()),
            "admin API disabled",
        ));
    };
    let given = bearer(headers)?;
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.expose().as_bytes());
    if bool::from(a.ct_eq(&b)) {
        Ok(())
    } else {
        tracing::warn!("admin API call with a wrong token");
        Err(ApiError::invalid_session("invalid admin token"))
    }
}

async fn run(
    state: &SharedState,
    headers: &HeaderMap,
    app: &str,
    op: AdminOp,
) -> Result<Response, ApiError> {
    authorize(state, headers)?;
    run_authorized(state, app, op).await
}

/// [`run`] for a caller that has already passed [`authorize`].
async fn run_authorized(state: &SharedState, app: &str, op: AdminOp) -> Result<Response, ApiError> {
    let app = state.app(app)?;
    Ok(ok_json(&execute(state, &app, op).await?))
}

async fn create_server_key(
    State(state): State<SharedState>,
    Path(app): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let body = json_object(body)?;
    let name = match body.get("name") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(ApiError::bad_request("'name' must be a string")),
    };
    run_authorized(&state, &app, AdminOp::CreateServerKey(name)).await
}

async fn list_server_keys(
    State(state): State<SharedState>,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    run(&state, &headers, &app, AdminOp::ListServerKeys).await
}

async fn delete_server_key(
    State(state): State<SharedState>,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    run(&state, &headers, &app, AdminOp::DeleteServerKey(id)).await
}

async fn disable_server_key(
    State(state): State<SharedState>,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    run(&state, &headers, &app, AdminOp::DisableServerKey(id)).await
}

async fn enable_server_key(
    State(state): State<SharedState>,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    run(&state, &headers, &app, AdminOp::EnableServerKey(id)).await
}

async fn list_users(
    State(state): State<SharedState>,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    run(&state, &headers, &app, AdminOp::ListUsers).await
}

async fn get_user(
    State(state): State<SharedState>,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    run(&state, &headers, &app, AdminOp::GetUser(id)).await
}

async fn delete_user(
    State(state): State<SharedState>,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    run(&state, &headers, &app, AdminOp::DeleteUser(id)).await
}

async fn disable_user(
    State(state): State<SharedState>,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    run(&state, &headers, &app, AdminOp::DisableUser(id)).await
}

async fn enable_user(
    State(state): State<SharedState>,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    run(&state, &headers, &app, AdminOp::EnableUser(id)).await
}

async fn revoke_sessions(
    State(state): State<SharedState>,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    run(&state, &headers, &app, AdminOp::RevokeSessions(id)).await
}

async fn set_custom_data(
    State(state): State<SharedState>,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let bytes = body.map_err(|_| ApiError::bad_request("cannot read request body"))?;
    let data = match serde_json::from_slice::<Value>(&bytes).map(ejson::to_plain) {
        Ok(v @ Value::Object(_)) => v,
        _ => return Err(ApiError::bad_request("custom data must be a JSON object")),
    };
    run_authorized(&state, &app, AdminOp::SetCustomData(id, data)).await
}

async fn outbox(
    State(state): State<SharedState>,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    run(&state, &headers, &app, AdminOp::Outbox).await
}
