//! The `api-key` provider: user API keys (created by a user through the client API,
//! log in as that user) and server API keys (created by an admin, each with its own
//! server user).
//!
//! A key is 64 characters: its 24-hex id followed by 40 random alphanumeric
//! characters (about 238 bits). Only the SHA-256 of the whole key is stored; a login
//! looks the record up by the id prefix (not secret) and compares the hashes in
//! constant time. Keys are high-entropy, so no slow password hash is needed.
//!
//! Every key has an `api-key` identity whose id is the key id: on the creating user
//! for a user key, on the server user for a server key. Logging in with a key proves
//! that identity, so the usual login path finds the right user.

use latchkey_protocol::{ApiKeyResponse, LoginBody, ObjectId, ProviderType, UserType};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ProviderContext, VerifiedIdentity, required_str};
use crate::error::ApiError;
use crate::ids::new_object_id;
use crate::state::{AppRuntime, ServerState};
use crate::store::{ApiKeyKind, ApiKeyRecord, IdentityRecord, StoreError, UserRecord};

/// Most user API keys one user may have.
pub(crate) const MAX_USER_KEYS: usize = 20;
/// Most server API keys one app may have.
pub(crate) const MAX_SERVER_KEYS: usize = 100;
/// Longest key name, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 128;
/// Length of a key: 24-hex id + random part.
const KEY_LEN: usize = 64;
const ID_LEN: usize = 24;

/// 401 `AuthError` "invalid API key": unknown, wrong, disabled or deleted key.
fn invalid_key() -> ApiError {
    ApiError::auth_error("invalid API key")
}

/// 404 `APIKeyNotFound` (never 401: core logs the user out on a 401 here).
pub(crate) fn key_not_found() -> ApiError {
    ApiError::new(
        http::StatusCode::NOT_FOUND,
        latchkey_protocol::ErrorCode::APIKeyNotFound,
        "API key not found",
    )
}

/// The stored form of a key: lowercase hex SHA-256.
fn hash_key(key: &str) -> String {
    super::userpass_flows::sha256_hex(key)
}

/// A new key for `id`: the id then 40 random alphanumeric characters.
fn new_key(id: &str) -> String {
    let secret: String = rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(KEY_LEN - ID_LEN)
        .map(char::from)
        .collect();
    format!("{id}{secret}")
}

/// The canonical (lowercase) form of a key id from a URL, or `None` when malformed.
pub(crate) fn parse_key_id(raw: &str) -> Option<String> {
    raw.parse::<ObjectId>().ok().map(|id| id.to_string())
}

/// Check a key name: a string of 1-128 characters, not blank, no control characters.
pub(crate) fn validate_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::bad_request("API key name must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::bad_request(format!(
            "API key name must be at most {MAX_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "API key name must not contain control characters",
        ));
    }
    Ok(())
}

fn name_taken() -> ApiError {
    ApiError::new(
        http::StatusCode::CONFLICT,
        latchkey_protocol::ErrorCode::APIKeyAlreadyExists,
        "an API key with this name already exists",
    )
}

/// The client view of a stored key (no secret).
pub(crate) fn view(record: &ApiKeyRecord) -> ApiKeyResponse {
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
) -> Result<ApiKeyResponse, ApiError> {
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
        Err(StoreError::Conflict) => return Err(name_taken()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(app = app.id(), key = %id, kind = kind.as_str(), "created API key");
    Ok(ApiKeyResponse {
        id,
        key: Some(key),
        name: name.to_owned(),
        disabled: false,
    })
}

/// Create a user API key for `user_id` (client route `POST /auth/api_keys`). The
/// caller has checked that the user may have keys.
pub(crate) async fn create_user_key(
    state: &ServerState,
    app: &AppRuntime,
    user_id: &str,
    name: &str,
) -> Result<ApiKeyResponse, ApiError> {
    validate_name(name)?;
    let existing = state
        .store
        .list_api_keys(app.id(), ApiKeyKind::User, Some(user_id))
        .await?;
    if existing.iter().any(|k| k.name == name) {
        return Err(name_taken());
    }
    if existing.len() >= MAX_USER_KEYS {
        return Err(ApiError::bad_request(format!(
            "API key limit reached: a user can have at most {MAX_USER_KEYS} API keys"
        )));
    }
    create_key(state, app, ApiKeyKind::User, Some(user_id), name).await
}

/// Create a server API key for `app`, with its own server user (profile
/// `type: "server"`, `data.name` = the key name). The response carries the secret
/// `key`, shown only this once. Names are unique per app; at most 100 server keys.
pub(crate) async fn create_server_key(
    state: &ServerState,
    app: &AppRuntime,
    name: &str,
) -> Result<ApiKeyResponse, ApiError> {
    validate_name(name)?;
    let existing = state
        .store
        .list_api_keys(app.id(), ApiKeyKind::Server, None)
        .await?;
    if existing.iter().any(|k| k.name == name) {
        return Err(name_taken());
    }
    if existing.len() >= MAX_SERVER_KEYS {
        return Err(ApiError::bad_request(format!(
            "API key limit reached: an app can have at most {MAX_SERVER_KEYS} server API keys"
        )));
    }
    create_key(state, app, ApiKeyKind::Server, None, name).await
}

/// The server API keys of `app`, oldest first (no secrets).
pub(crate) async fn list_server_keys(
    state: &ServerState,
    app: &AppRuntime,
) -> Result<Vec<ApiKeyResponse>, ApiError> {
    let keys = state
        .store
        .list_api_keys(app.id(), ApiKeyKind::Server, None)
        .await?;
    Ok(keys.iter().map(view).collect())
}

/// The server key `key_id` of `app`: 404 `APIKeyNotFound` when `key_id` is
/// malformed, unknown or a user key.
async fn server_key(
    state: &ServerState,
    app: &AppRuntime,
    key_id: &str,
) -> Result<ApiKeyRecord, ApiError> {
    find_key(state, app, key_id, |k| k.kind == ApiKeyKind::Server).await
}

/// The key `raw_id` of `app` if it is `wanted`; else (and when `raw_id` is malformed
/// or unknown) 404 `APIKeyNotFound`.
pub(crate) async fn find_key(
    state: &ServerState,
    app: &AppRuntime,
    raw_id: &str,
    wanted: impl FnOnce(&ApiKeyRecord) -> bool,
) -> Result<ApiKeyRecord, ApiError> {
    let id = parse_key_id(raw_id).ok_or_else(key_not_found)?;
    match state.store.get_api_key(app.id(), &id).await? {
        Some(k) if wanted(&k) => Ok(k),
        _ => Err(key_not_found()),
    }
}

/// Delete a server API key and its server user (with its sessions). 404
/// `APIKeyNotFound` when `key_id` is malformed, unknown or a user key.
pub(crate) async fn delete_server_key(
    state: &ServerState,
    app: &AppRuntime,
    key_id: &str,
) -> Result<(), ApiError> {
    let id = server_key(state, app, key_id).await?.id;
    if !state.store.delete_api_key(app.id(), &id).await? {
        return Err(key_not_found());
    }
    tracing::info!(app = app.id(), key = %id, "deleted server API key");
    Ok(())
}

/// Disable (revoking the sessions it created) or enable a server API key; returns
/// the key. 404 `APIKeyNotFound` as [`delete_server_key`].
pub(crate) async fn set_server_key_disabled(
    state: &ServerState,
    app: &AppRuntime,
    key_id: &str,
    disabled: bool,
) -> Result<ApiKeyResponse, ApiError> {
    let mut key = server_key(state, app, key_id).await?;
    if !state
        .store
        .set_api_key_disabled(app.id(), &key.id, disabled)
        .await?
    {
        return Err(key_not_found());
    }
    key.disabled = disabled;
    tracing::info!(app = app.id(), key = %key.id, disabled, "changed server API key");
    Ok(view(&key))
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

/// Verify `{"key": K}`: the identity is the key's `api-key` identity. Unknown,
/// wrong, disabled and deleted keys are all 401 `AuthError` "invalid API key".
pub(crate) async fn authenticate(
    ctx: ProviderContext<'_>,
    body: &LoginBody,
) -> Result<VerifiedIdentity, ApiError> {
    let key = required_str(body, "key")?;
    let presented = Sha256::digest(key.as_bytes());
    let record = match key.get(..ID_LEN).and_then(parse_key_id) {
        Some(id) if key.len() == KEY_LEN => ctx.state.store.get_api_key(ctx.app.id(), &id).await?,
        _ => None,
    };
    let Some(record) = record else {
        return Err(invalid_key());
    };
    let stored = hex::decode(record.hash.expose()).unwrap_or_default();
    let matches: bool = presented.as_slice().ct_eq(stored.as_slice()).into();
    if !matches {
        return Err(invalid_key());
    }
    if record.disabled {
        tracing::debug!(app = ctx.app.id(), key = %record.id, "disabled API key refused");
        return Err(invalid_key());
    }
    Ok(VerifiedIdentity {
        provider: ProviderType::ApiKey,
        id: record.id,
        data: Map::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Arc;

    use serde_json::json;

    use crate::clock::Clock;
    use crate::config::{AppConfig, Config};
    use crate::store::{SqliteStore, Store};

    /// A served router and its state, for driving library functions and HTTP together.
    async fn serve() -> (Arc<ServerState>, Arc<AppRuntime>, String) {
        let mut config = Config::dev();
        config.apps =
            vec![AppConfig::new("srv", "0123456789abcdef0123456789abcdef").with_all_providers()];
        let app = Arc::new(AppRuntime::new(config.apps[0].clone()).unwrap());
        let mut apps = HashMap::new();
        apps.insert("srv".to_owned(), app.clone());
        let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
        store.migrate().await.unwrap();
        let store: Arc<dyn Store> = Arc::new(store);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ServerState::new(
            &config,
            apps,
            store,
            Clock::system(),
            addr,
        ));
        let router = crate::http::router(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (state, app, format!("http://{addr}/api/client/v2.0"))
    }

    async fn post_json(url: &str, bearer: Option<&str>, body: Value) -> (u16, Value) {
        let mut req = reqwest::Client::new().post(url).json(&body);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get_json(url: &str, bearer: &str) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .get(url)
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn server_keys_log_in_as_their_server_user() {
        let (state, app, base) = serve().await;
        let login = format!("{base}/app/srv/auth/providers/api-key/login");
        let created = create_server_key(&state, &app, "backend").await.unwrap();
        let key = created.key.clone().expect("secret on create");
        assert_eq!(key.len(), KEY_LEN);
        assert!(!format!("{created:?}").contains(&key));
        assert_eq!(
            create_server_key(&state, &app, "backend")
                .await
                .unwrap_err()
                .error_code(),
            &latchkey_protocol::ErrorCode::APIKeyAlreadyExists
        );
        assert!(create_server_key(&state, &app, "").await.is_err());

        let (status, v) = post_json(&login, None, json!({"key": key})).await;
        assert_eq!(status, 200, "{v}");
        let user_id = v["user_id"].as_str().unwrap().to_owned();
        let (status, again) = post_json(&login, None, json!({"key": key})).await;
        assert_eq!(status, 200);
        assert_eq!(again["user_id"], user_id.as_str(), "same server user");
        let access = v["access_token"].as_str().unwrap();
        let (status, p) = get_json(&format!("{base}/auth/profile"), access).await;
        assert_eq!(status, 200, "{p}");
        assert_eq!(p["type"], "server");
        assert_eq!(p["data"]["name"], "backend");
        assert_eq!(p["identities"][0]["provider_type"], "api-key");
        assert_eq!(p["identities"][0]["id"], created.id.as_str());

        // A server user cannot create user keys, and does not see server keys.
        let refresh = v["refresh_token"].as_str().unwrap();
        let (status, e) = post_json(
            &format!("{base}/auth/api_keys"),
            Some(refresh),
            json!({"name": "x"}),
        )
        .await;
        assert_eq!(status, 400, "{e}");
        let (status, list) = get_json(&format!("{base}/auth/api_keys"), refresh).await;
        assert_eq!((status, list), (200, json!([])));
        let (status, e) = get_json(&format!("{base}/auth/api_keys/{}", created.id), refresh).await;
        assert_eq!(status, 404, "{e}");
        assert_eq!(e["error_code"], "APIKeyNotFound");

        let listed = list_server_keys(&state, &app).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, None);
        assert_eq!(listed[0].name, "backend");

        // Deleting the key deletes its user and sessions.
        assert!(delete_server_key(&state, &app, "nope").await.is_err());
        delete_server_key(&state, &app, &created.id).await.unwrap();
        assert!(delete_server_key(&state, &app, &created.id).await.is_err());
        let (status, e) = post_json(&login, None, json!({"key": key})).await;
        assert_eq!(status, 401, "{e}");
        assert_eq!(e["error_code"], "AuthError");
        assert!(
            state
                .store
                .get_user("srv", &user_id)
                .await
                .unwrap()
                .is_none()
        );
        let (status, _) =
            post_json(&format!("{base}/auth/session"), Some(refresh), json!({})).await;
        assert_eq!(status, 401);
        // The name is free again.
        create_server_key(&state, &app, "backend").await.unwrap();
    }

    #[tokio::test]
    async fn server_key_limit() {
        let (state, app, _) = serve().await;
        for i in 0..MAX_SERVER_KEYS {
            create_server_key(&state, &app, &format!("k{i}"))
                .await
                .unwrap();
        }
        let e = create_server_key(&state, &app, "one-too-many")
            .await
            .unwrap_err();
        assert!(e.message().contains("at most 100"), "{e:?}");
        assert_eq!(list_server_keys(&state, &app).await.unwrap().len(), 100);
    }

    #[test]
    fn keys_embed_their_id() {
        let id = "0123456789abcdef01234567";
        let k = new_key(id);
        assert_eq!(k.len(), KEY_LEN);
        assert!(k.starts_with(id));
        assert!(k.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(new_key(id), k);
        assert_eq!(hash_key(&k).len(), 64);
    }

    #[test]
    fn names_and_ids() {
        assert!(validate_name("k").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("  ").is_err());
        assert!(validate_name(&"é".repeat(128)).is_ok());
        assert!(validate_name(&"x".repeat(129)).is_err());
        assert!(validate_name("a\nb").is_err());
        assert_eq!(
            parse_key_id("0123456789ABCDEF01234567").as_deref(),
            Some("0123456789abcdef01234567")
        );
        assert!(parse_key_id("nope").is_none());
        assert!(parse_key_id("0123456789abcdef0123456z").is_none());
    }
}
