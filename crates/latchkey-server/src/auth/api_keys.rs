//! API keys: user keys (managed by their user through the client API, with a refresh
//! token) and server keys (managed by an admin, each with its own server user). The
//! key format and login are the `api-key` provider's ([`crate::providers::api_key`]).
//!
//! Anything about a key that is not the caller's (unknown, malformed or another
//! user's id) is [`Error::ApiKeyNotFound`], never a session error, because
//! realm-core logs the user out on a 401 from the key routes.

use latchkey_protocol::{ApiKeyResponse, ProviderType, UserType};
use serde_json::{Map, Value};

use super::sessions::{self, SessionAuth};
use super::state::{AppRuntime, ServerState};
use crate::error::Error;
use crate::ids::new_object_id;
use crate::providers::api_key::{hash_key, new_key, parse_key_id};
use crate::store::{ApiKeyKind, ApiKeyRecord, IdentityRecord, StoreError, UserRecord};

/// Most user API keys one user may have.
pub(crate) const MAX_USER_KEYS: usize = 20;
/// Most server API keys one app may have.
pub(crate) const MAX_SERVER_KEYS: usize = 100;
/// Longest key name, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 128;

/// Check a key name: a string of 1-128 characters, not blank, no control characters.
pub(crate) fn validate_name(name: &str) -> Result<(), Error> {
    if name.trim().is_empty() {
        return Err(Error::bad_request("API key name must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::bad_request(format!(
            "API key name must be at most {MAX_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::bad_request(
            "API key name must not contain control characters",
        ));
    }
    Ok(())
}

/// The client view of a stored key (no secret).
fn view(record: &ApiKeyRecord) -> ApiKeyResponse {
    ApiKeyResponse {
        id: record.id.clone(),
        key: None,
        name: record.name.clone(),
        disabled: record.disabled,
    }
}

/// Store a new key (and its identity, and for a server key its user); returns it with
/// the secret, which is never available again. The caller has validated `name`.
async fn create_key(
    state: &ServerState,
    app: &AppRuntime,
    kind: ApiKeyKind,
    owner: Option<&str>,
    name: &str,
) -> Result<ApiKeyResponse, Error> {
    let now = state.clock.now_secs();
    let id = new_object_id(&state.clock).to_string();
    let key = new_key(&id);
    let server_user = match owner {
        Some(_) => None,
        None => Some(UserRecord {
            app_id: app.id().to_owned(),
            id: new_object_id(&state.clock).to_string(),
            created_at: now,
            disabled: false,
            custom_data: None,
        }),
    };
    let user_id = owner
        .map(str::to_owned)
        .or_else(|| server_user.as_ref().map(|u| u.id.clone()))
        .unwrap_or_default();
    let mut data = Map::new();
    if kind == ApiKeyKind::Server {
        // A server user's profile `data.name` is its key's name.
        data.insert("name".to_owned(), Value::from(name));
    }
    let record = ApiKeyRecord {
        app_id: app.id().to_owned(),
        id: id.clone(),
        user_id: user_id.clone(),
        kind,
        name: name.to_owned(),
        hash: hash_key(&key).into(),
        disabled: false,
        created_at: now,
    };
    let identity = IdentityRecord {
        app_id: app.id().to_owned(),
        provider_type: ProviderType::ApiKey.as_str().to_owned(),
        id: id.clone(),
        user_id,
        data,
        created_at: now,
    };
    match state
        .store
        .create_api_key(&record, &identity, server_user.as_ref())
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Err(Error::ApiKeyNameTaken),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(app = app.id(), key = %id, kind = kind.as_str(), "created API key");
    Ok(ApiKeyResponse {
        id,
        key: Some(key.into()),
        name: name.to_owned(),
        disabled: false,
    })
}

/// How many keys of a kind one holder may have, and how to say so.
#[derive(Debug, Clone, Copy)]
struct KeyLimit {
    max: usize,
    holder: &'static str,
    keys: &'static str,
}

const USER_KEYS: KeyLimit = KeyLimit {
    max: MAX_USER_KEYS,
    holder: "a user",
    keys: "API keys",
};

const SERVER_KEYS: KeyLimit = KeyLimit {
    max: MAX_SERVER_KEYS,
    holder: "an app",
    keys: "server API keys",
};

/// A new key of `kind` named `name` (owned by `owner` for a user key), after the name
/// and count rules: names are unique per owner (per app for server keys), and at most
/// `limit.max` keys exist.
async fn create_checked(
    state: &ServerState,
    app: &AppRuntime,
    kind: ApiKeyKind,
    owner: Option<&str>,
    name: &str,
    limit: KeyLimit,
) -> Result<ApiKeyResponse, Error> {
    validate_name(name)?;
    let existing = state.store.list_api_keys(app.id(), kind, owner).await?;
    if existing.iter().any(|k| k.name == name) {
        return Err(Error::ApiKeyNameTaken);
    }
    if existing.len() >= limit.max {
        let KeyLimit { max, holder, keys } = limit;
        return Err(Error::bad_request(format!(
            "API key limit reached: {holder} can have at most {max} {keys}"
        )));
    }
    create_key(state, app, kind, owner, name).await
}

/// The key `raw_id` of `app` if it is `wanted`; else (and when `raw_id` is malformed
/// or unknown) [`Error::ApiKeyNotFound`].
async fn find_key(
    state: &ServerState,
    app: &AppRuntime,
    raw_id: &str,
    wanted: impl FnOnce(&ApiKeyRecord) -> bool,
) -> Result<ApiKeyRecord, Error> {
    let id = parse_key_id(raw_id).ok_or(Error::ApiKeyNotFound)?;
    match state.store.get_api_key(app.id(), &id).await? {
        Some(k) if wanted(&k) => Ok(k),
        _ => Err(Error::ApiKeyNotFound),
    }
}

/// Delete the key `key`.
async fn delete_key(
    state: &ServerState,
    app: &AppRuntime,
    key: &ApiKeyRecord,
) -> Result<(), Error> {
    if !state.store.delete_api_key(app.id(), &key.id).await? {
        return Err(Error::ApiKeyNotFound);
    }
    Ok(())
}

/// Disable (revoking the sessions it created) or enable the key `key`.
async fn set_key_disabled(
    state: &ServerState,
    app: &AppRuntime,
    key: &mut ApiKeyRecord,
    disabled: bool,
) -> Result<(), Error> {
    if !state
        .store
        .set_api_key_disabled(app.id(), &key.id, disabled)
        .await?
    {
        return Err(Error::ApiKeyNotFound);
    }
    key.disabled = disabled;
    Ok(())
}

/// The profile `type` of a user with these identities: `server` for a server key's
/// user (only `api-key` identities, the first carrying the key name), else `normal`.
pub(crate) fn user_type(identities: &[IdentityRecord]) -> UserType {
    let api_key = ProviderType::ApiKey.as_str();
    let server = !identities.is_empty()
        && identities.iter().all(|i| i.provider_type == api_key)
        && identities[0].data.contains_key("name");
    if server {
        UserType::Server
    } else {
        UserType::Normal
    }
}

// ---- User keys (client API, refresh token) ----

/// Authenticate the refresh token of a key route: its session, with the `api-key`
/// provider enabled for its app.
pub(crate) async fn caller(state: &ServerState, refresh_token: &str) -> Result<SessionAuth, Error> {
    let auth = sessions::authenticate_refresh(state, refresh_token).await?;
    auth.app.provider(ProviderType::ApiKey.as_str())?;
    Ok(auth)
}

/// The caller's user key `raw_id`, or [`Error::ApiKeyNotFound`].
async fn own_key(
    state: &ServerState,
    auth: &SessionAuth,
    raw_id: &str,
) -> Result<ApiKeyRecord, Error> {
    find_key(state, &auth.app, raw_id, |k| {
        k.kind == ApiKeyKind::User && k.user_id == auth.user.id
    })
    .await
}

/// Create a user key named `name` for the caller; the answer carries the secret, shown
/// only this once.
pub(crate) async fn create_user_key(
    state: &ServerState,
    auth: &SessionAuth,
    name: &str,
) -> Result<ApiKeyResponse, Error> {
    // A session that logged in with an API key cannot mint further keys: disabling
    // or deleting the key must end everything it gave access to.
    if auth.session.provider_type.as_deref() == Some(ProviderType::ApiKey.as_str()) {
        return Err(Error::bad_request(
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
        return Err(Error::bad_request(
            "anonymous users cannot create API keys; link a non-anonymous identity first",
        ));
    }
    create_checked(
        state,
        &auth.app,
        ApiKeyKind::User,
        Some(&auth.user.id),
        name,
        USER_KEYS,
    )
    .await
}

/// The caller's keys, oldest first, without secrets.
pub(crate) async fn list_user_keys(
    state: &ServerState,
    auth: &SessionAuth,
) -> Result<Vec<ApiKeyResponse>, Error> {
    let keys = state
        .store
        .list_api_keys(auth.app.id(), ApiKeyKind::User, Some(&auth.user.id))
        .await?;
    Ok(keys.iter().map(view).collect())
}

/// The caller's key `key_id`.
pub(crate) async fn get_user_key(
    state: &ServerState,
    auth: &SessionAuth,
    key_id: &str,
) -> Result<ApiKeyResponse, Error> {
    Ok(view(&own_key(state, auth, key_id).await?))
}

/// Delete the caller's key `key_id`.
pub(crate) async fn delete_user_key(
    state: &ServerState,
    auth: &SessionAuth,
    key_id: &str,
) -> Result<(), Error> {
    let key = own_key(state, auth, key_id).await?;
    delete_key(state, &auth.app, &key).await?;
    tracing::info!(app = auth.app.id(), user = %auth.user.id, key = %key.id, "deleted API key");
    Ok(())
}

/// Disable (revoking the sessions it created) or enable the caller's key `key_id`.
pub(crate) async fn set_user_key_disabled(
    state: &ServerState,
    auth: &SessionAuth,
    key_id: &str,
    disabled: bool,
) -> Result<(), Error> {
    let mut key = own_key(state, auth, key_id).await?;
    set_key_disabled(state, &auth.app, &mut key, disabled).await?;
    tracing::info!(app = auth.app.id(), user = %auth.user.id, key = %key.id, disabled, "changed API key");
    Ok(())
}

// ---- Server keys (admin API and command) ----

/// Create a server API key for `app`, with its own server user (profile
/// `type: "server"`, `data.name` = the key name). The response carries the secret
/// `key`, shown only this once. Names are unique per app; at most 100 server keys.
pub(crate) async fn create_server_key(
    state: &ServerState,
    app: &AppRuntime,
    name: &str,
) -> Result<ApiKeyResponse, Error> {
    create_checked(state, app, ApiKeyKind::Server, None, name, SERVER_KEYS).await
}

/// The server API keys of `app`, oldest first (no secrets).
pub(crate) async fn list_server_keys(
    state: &ServerState,
    app: &AppRuntime,
) -> Result<Vec<ApiKeyResponse>, Error> {
    let keys = state
        .store
        .list_api_keys(app.id(), ApiKeyKind::Server, None)
        .await?;
    Ok(keys.iter().map(view).collect())
}

/// The server key `key_id` of `app`: [`Error::ApiKeyNotFound`] when `key_id` is
/// malformed, unknown or a user key.
async fn server_key(
    state: &ServerState,
    app: &AppRuntime,
    key_id: &str,
) -> Result<ApiKeyRecord, Error> {
    find_key(state, app, key_id, |k| k.kind == ApiKeyKind::Server).await
}

/// Delete a server API key and its server user (with its sessions).
/// [`Error::ApiKeyNotFound`] when `key_id` is malformed, unknown or a user key.
pub(crate) async fn delete_server_key(
    state: &ServerState,
    app: &AppRuntime,
    key_id: &str,
) -> Result<(), Error> {
    let key = server_key(state, app, key_id).await?;
    delete_key(state, app, &key).await?;
    tracing::info!(app = app.id(), key = %key.id, "deleted server API key");
    Ok(())
}

/// Disable (revoking the sessions it created) or enable a server API key; returns
/// the key. [`Error::ApiKeyNotFound`] as [`delete_server_key`].
pub(crate) async fn set_server_key_disabled(
    state: &ServerState,
    app: &AppRuntime,
    key_id: &str,
    disabled: bool,
) -> Result<ApiKeyResponse, Error> {
    let mut key = server_key(state, app, key_id).await?;
    set_key_disabled(state, app, &mut key, disabled).await?;
    tracing::info!(app = app.id(), key = %key.id, disabled, "changed server API key");
    Ok(view(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("k").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("  ").is_err());
        assert!(validate_name(&"é".repeat(128)).is_ok());
        assert!(validate_name(&"x".repeat(129)).is_err());
        assert!(validate_name("a\nb").is_err());
    }
}
