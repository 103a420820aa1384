//! User API key routes (`/api/client/v2.0/auth/api_keys...`, protocol.md §6).
//!
//! They are not app-scoped: the app comes from the bearer token, which must be a
//! REFRESH token. Anything about a key that is not the caller's (unknown, malformed
//! or another user's id) is 404 `APIKeyNotFound`, never 401, because realm-core logs
//! the user out on a 401 from these routes.

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use latchkey_protocol::ProviderType;
use serde_json::Value;

use super::auth::{self, SessionAuth};
use super::extract::json_object;
use super::response::{json_response, no_content, ok_json};
use crate::error::ApiError;
use crate::providers::api_key::{self, key_not_found};
use crate::state::{ServerState, SharedState};
use crate::store::{ApiKeyKind, ApiKeyRecord};

/// The refresh-token caller, with the `api-key` provider enabled for its app.
async fn caller(state: &ServerState, headers: &HeaderMap) -> Result<SessionAuth, ApiError> {
    let auth = auth::refresh(state, headers).await?;
    if !auth.app.provider_enabled(ProviderType::ApiKey) {
        return Err(ApiError::provider_not_found(ProviderType::ApiKey.as_str()));
    }
    Ok(auth)
}

/// The caller's user key `raw_id`, or 404.
async fn own_key(
    state: &ServerState,
    auth: &SessionAuth,
    raw_id: &str,
) -> Result<ApiKeyRecord, ApiError> {
    api_key::find_key(state, &auth.app, raw_id, |k| {
        k.kind == ApiKeyKind::User && k.user_id == auth.user.id
    })
    .await
}

/// `POST /auth/api_keys` `{"name": ...}`: 201 with the key, whose secret is shown once.
pub(crate) async fn create(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let auth = caller(&state, &headers).await?;
    let body = json_object(body)?;
    let name = match body.get("name") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(ApiError::bad_request("'name' must be a string")),
        None => return Err(ApiError::bad_request("missing required field 'name'")),
    };
    // A session that logged in with an API key cannot mint further keys: disabling
    // or deleting the key must end everything it gave access to.
    if auth.session.provider_type.as_deref() == Some(ProviderType::ApiKey.as_str()) {
        return Err(ApiError::bad_request(
            "cannot create API keys from a session that logged in with an API key; \
             log in with another provider",
        ));
    }
    // Only users with a real identity may own keys: not anonymous users, not server
    // key users.
    let identities = state
        .store
        .list_identities(auth.app.id(), &auth.user.id)
        .await?;
    let named = identities.iter().any(|i| {
        i.provider_type != ProviderType::Anonymous.as_str()
            && i.provider_type != ProviderType::ApiKey.as_str()
    });
    if !named {
        return Err(ApiError::bad_request(
            "anonymous users cannot create API keys; link a non-anonymous identity first",
        ));
    }
    let created = api_key::create_user_key(&state, &auth.app, &auth.user.id, &name).await?;
    Ok(json_response(StatusCode::CREATED, &created))
}

/// `GET /auth/api_keys`: the caller's keys, oldest first, without secrets.
pub(crate) async fn list(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let auth = caller(&state, &headers).await?;
    let keys = state
        .store
        .list_api_keys(auth.app.id(), ApiKeyKind::User, Some(&auth.user.id))
        .await?;
    let views: Vec<_> = keys.iter().map(api_key::view).collect();
    Ok(ok_json(&views))
}

/// `GET /auth/api_keys/{key_id}`.
pub(crate) async fn get_one(
    State(state): State<SharedState>,
    Path(key_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let auth = caller(&state, &headers).await?;
    let key = own_key(&state, &auth, &key_id).await?;
    Ok(ok_json(&api_key::view(&key)))
}

/// `DELETE /auth/api_keys/{key_id}`: 204.
pub(crate) async fn delete(
    State(state): State<SharedState>,
    Path(key_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let auth = caller(&state, &headers).await?;
    let key = own_key(&state, &auth, &key_id).await?;
    if !state.store.delete_api_key(auth.app.id(), &key.id).await? {
        return Err(key_not_found());
    }
    tracing::info!(app = auth.app.id(), user = %auth.user.id, key = %key.id, "deleted API key");
    Ok(no_content())
}

async fn set_disabled(
    state: &ServerState,
    headers: &HeaderMap,
    key_id: &str,
    disabled: bool,
) -> Result<Response, ApiError> {
    let auth = caller(state, headers).await?;
    let key = own_key(state, &auth, key_id).await?;
    if !state
        .store
        .set_api_key_disabled(auth.app.id(), &key.id, disabled)
        .await?
    {
        return Err(key_not_found());
    }
    tracing::info!(app = auth.app.id(), user = %auth.user.id, key = %key.id, disabled, "changed API key");
    Ok(no_content())
}

/// `PUT /auth/api_keys/{key_id}/enable`: 204.
pub(crate) async fn enable(
    State(state): State<SharedState>,
    Path(key_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    set_disabled(&state, &headers, &key_id, false).await
}

/// `PUT /auth/api_keys/{key_id}/disable`: 204.
pub(crate) async fn disable(
    State(state): State<SharedState>,
    Path(key_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    set_disabled(&state, &headers, &key_id, true).await
}
