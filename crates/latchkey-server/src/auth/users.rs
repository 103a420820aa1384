//! Users: the profile, deleting oneself, and the administrative operations on users
//! (list, show, delete, disable, enable, revoke sessions, custom data).

use latchkey_protocol::{CustomDataError, Identity, ProfileResponse};
use serde_json::{Map, Value, json};

use super::api_keys::user_type;
use super::sessions::SessionAuth;
use super::state::ServerState;
use crate::error::Error;
use crate::store::{IdentityRecord, UserRecord};

/// The caller's profile: identities, merged profile data, user type; `records` are the
/// caller's identities, oldest first (read with the session by
/// [`super::sessions::authenticate_profile`]).
pub(crate) fn profile(auth: &SessionAuth, records: Vec<IdentityRecord>) -> ProfileResponse {
    let user_type = user_type(&records);
    let mut data = Map::new();
    let mut identities = Vec::with_capacity(records.len());
    for r in records {
        for (k, v) in &r.data {
            // core reads profile values as strings without checking.
            if v.is_string() {
                data.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        identities.push(Identity {
            provider_id: Some(auth.app.provider_config_id(&r.provider_type)),
            provider_data: (!r.data.is_empty()).then(|| r.data.clone()),
            id: r.id,
            provider_type: r.provider_type,
        });
    }
    ProfileResponse {
        user_id: auth.user.id.clone(),
        domain_id: auth.app.id().to_owned(),
        identities,
        data,
        user_type,
    }
}

/// Delete the caller, with its identities and sessions.
pub(crate) async fn delete_self(state: &ServerState, auth: &SessionAuth) -> Result<(), Error> {
    state
        .store
        .delete_user(auth.app.id(), &auth.user.id)
        .await?;
    tracing::info!(app = auth.app.id(), user = %auth.user.id, "deleted user");
    Ok(())
}

/// The admin view of a user: id, identities, disabled, created_at, custom_data.
async fn user_json(state: &ServerState, user: &UserRecord) -> Result<Value, Error> {
    let identities: Vec<Value> = state
        .store
        .list_identities(&user.app_id, &user.id)
        .await?
        .into_iter()
        .map(|i| {
            json!({
                "id": i.id,
                "provider_type": i.provider_type,
                "data": i.data,
                "created_at": i.created_at,
            })
        })
        .collect();
    Ok(json!({
        "id": user.id,
        "identities": identities,
        "disabled": user.disabled,
        "created_at": user.created_at,
        "custom_data": user.custom_data,
    }))
}

async fn get_user(state: &ServerState, app: &str, id: &str) -> Result<UserRecord, Error> {
    state
        .store
        .get_user(app, id)
        .await?
        .ok_or(Error::UserNotFound)
}

/// Every user of `app`, in the admin view.
pub(crate) async fn list(state: &ServerState, app: &str) -> Result<Value, Error> {
    let mut out = Vec::new();
    for user in state.store.list_users(app).await? {
        out.push(user_json(state, &user).await?);
    }
    Ok(Value::Array(out))
}

/// The user `id` as stored now, in the admin view, or [`Error::UserNotFound`].
/// One page of the users matching `search`: `{"users": [..], "next": id or null}`.
pub(crate) async fn search(
    state: &ServerState,
    app: &str,
    search: &crate::store::UserSearch,
    after: Option<&str>,
    limit: u32,
) -> Result<Value, Error> {
    // One more than asked tells whether a next page exists.
    let mut found = state
        .store
        .search_users(app, search, after, limit + 1)
        .await?;
    let more = found.len() > limit as usize;
    found.truncate(limit as usize);
    let next = more.then(|| found.last().map(|u| u.id.clone())).flatten();
    let mut users = Vec::with_capacity(found.len());
    for user in &found {
        users.push(user_json(state, user).await?);
    }
    Ok(json!({"users": users, "next": next}))
}

/// A user's sessions (the user must exist).
pub(crate) async fn sessions(state: &ServerState, app: &str, id: &str) -> Result<Value, Error> {
    get_user(state, app, id).await?;
    let sessions: Vec<Value> = state
        .store
        .list_user_sessions(app, id)
        .await?
        .into_iter()
        .map(|s| {
            json!({
                "id": s.id,
                "device_id": s.device_id,
                "provider_type": s.provider_type,
                "created_at": s.created_at,
                "expires_at": s.expires_at,
            })
        })
        .collect();
    Ok(Value::Array(sessions))
}

pub(crate) async fn show(state: &ServerState, app: &str, id: &str) -> Result<Value, Error> {
    user_json(state, &get_user(state, app, id).await?).await
}

/// Delete a user with its identities, sessions and credentials.
pub(crate) async fn delete(state: &ServerState, app: &str, id: &str) -> Result<Value, Error> {
    if !state.store.delete_user(app, id).await? {
        return Err(Error::UserNotFound);
    }
    Ok(json!({"deleted": true}))
}

/// Disable a user (revoking all its sessions) or enable it.
pub(crate) async fn set_disabled(
    state: &ServerState,
    app: &str,
    id: &str,
    disabled: bool,
) -> Result<Value, Error> {
    if !state.store.set_user_disabled(app, id, disabled).await? {
        return Err(Error::UserNotFound);
    }
    if !disabled {
        return show(state, app, id).await;
    }
    let revoked = state.store.delete_user_sessions(app, id).await?;
    let mut v = show(state, app, id).await?;
    v["revoked_sessions"] = json!(revoked);
    Ok(v)
}

/// Revoke every session of a user.
pub(crate) async fn revoke_sessions(
    state: &ServerState,
    app: &str,
    id: &str,
) -> Result<Value, Error> {
    get_user(state, app, id).await?;
    let revoked = state.store.delete_user_sessions(app, id).await?;
    Ok(json!({"revoked_sessions": revoked}))
}

/// Check custom data against the bounds every access token must stay readable within
/// ([`MAX_CUSTOM_DATA_DEPTH`](latchkey_protocol::MAX_CUSTOM_DATA_DEPTH) levels: 400;
/// [`MAX_CUSTOM_DATA_BYTES`](latchkey_protocol::MAX_CUSTOM_DATA_BYTES) bytes: 413).
pub(crate) fn check_custom_data(data: &Map<String, Value>) -> Result<(), Error> {
    latchkey_protocol::check_custom_data(data).map_err(|e| match e {
        CustomDataError::TooLarge => Error::PayloadTooLarge(e.to_string().into()),
        _ => Error::bad_request(e.to_string()),
    })
}

/// Replace a user's custom data (a JSON object, within [`check_custom_data`]'s bounds;
/// placed in the access token's `user_data` claim at every issuance).
pub(crate) async fn set_custom_data(
    state: &ServerState,
    app: &str,
    id: &str,
    data: Value,
) -> Result<Value, Error> {
    let Value::Object(data) = data else {
        return Err(Error::bad_request("custom data must be a JSON object"));
    };
    check_custom_data(&data)?;
    if !state.store.set_custom_data(app, id, Some(&data)).await? {
        return Err(Error::UserNotFound);
    }
    show(state, app, id).await
}
