//! The client API routes: location, login (and link), session refresh and logout,
//! profile, and user self-deletion.

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use bytes::Bytes;
use http::{Extensions, HeaderMap, StatusCode};
use latchkey_protocol::{
    AccessTokenClaims, ErrorCode, Identity, LocationResponse, LoginResponse, ObjectId,
    ProfileResponse, ProviderType, RefreshResponse, RefreshTokenClaims, TokenType,
};
use serde_json::{Map, Value};

use super::auth;
use super::extract::json_object;
use super::response::{no_content, ok_json};
use crate::error::ApiError;
use crate::ids::{new_object_id, new_random_id};
use crate::providers::local_userpass::{self, MAX_EMAIL_LEN};
use crate::providers::{self, ProviderContext, VerifiedIdentity};
use crate::state::{AppRuntime, ServerState, SharedState, ws_url};
use crate::store::{IdentityRecord, SessionRecord, StoreError, UserRecord};
use crate::throttle::{identifier_key, too_many_logins};

fn sign_error(e: crate::tokens::TokenError) -> ApiError {
    ApiError::internal(&e)
}

/// A new access token for `session`.
fn access_token(
    app: &AppRuntime,
    session: &SessionRecord,
    user: &UserRecord,
    now: i64,
) -> Result<String, ApiError> {
    let ttl = i64::try_from(app.config.access_token_ttl_secs).unwrap_or(i64::MAX);
    let claims = AccessTokenClaims {
        sub: user.id.clone(),
        exp: now.saturating_add(ttl),
        iat: now,
        iss: Some(session.id.clone()),
        typ: TokenType::Access,
        baas_device_id: Some(session.device_id.clone()),
        baas_domain_id: Some(app.id().to_owned()),
        user_data: user.custom_data.clone(),
    };
    app.keys.sign_access(&claims).map_err(sign_error)
}

/// A refresh token naming `session` (valid until the session expires).
fn refresh_token(app: &AppRuntime, session: &SessionRecord, now: i64) -> Result<String, ApiError> {
    let claims = RefreshTokenClaims {
        sub: session.user_id.clone(),
        exp: session.expires_at,
        iat: now,
        baas_id: Some(session.id.clone()),
        typ: TokenType::Refresh,
        baas_device_id: Some(session.device_id.clone()),
        baas_domain_id: Some(app.id().to_owned()),
    };
    app.keys.sign_refresh(&claims).map_err(sign_error)
}

/// `GET .../app/{app_id}/location`.
pub(crate) async fn location(
    State(state): State<SharedState>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    state.app(&app_id)?;
    let hostname = state.hostname(&headers);
    Ok(ok_json(&LocationResponse {
        deployment_model: "LOCAL".to_owned(),
        location: "local".to_owned(),
        ws_hostname: ws_url(&hostname),
        hostname,
        sync_route: None,
    }))
}

/// Whether the query string asks to link (`link=true`).
fn wants_link(query: Option<&str>) -> bool {
    query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == "link").then_some(v)
        })
        .any(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// `POST .../app/{app_id}/auth/providers/{provider}/login[?link=true]`.
///
/// Throttled (see [`crate::throttle`]) after routing, on the decoded app id and
/// provider and the parsed body, so that every spelling of a path shares its buckets.
pub(crate) async fn login(
    State(state): State<SharedState>,
    Path((app_id, provider_name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    extensions: Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let app = state.app(&app_id)?;
    let provider = provider_name
        .parse::<ProviderType>()
        .ok()
        .filter(|p| app.provider_enabled(*p))
        .ok_or_else(|| ApiError::provider_not_found(&provider_name))?;
    let body = json_object(body)?;
    if provider == ProviderType::Anonymous {
        return login_checked(&state, &app, provider, query, &headers, body).await;
    }
    let identifier = match provider {
        ProviderType::EmailPassword => match body.get("username") {
            Some(Value::String(u)) if u.len() > MAX_EMAIL_LEN => {
                return Err(local_userpass::username_too_long());
            }
            Some(Value::String(u)) => Some(identifier_key(app.id(), provider.as_str(), u)),
            _ => None,
        },
        _ => None,
    };
    let throttle = &state.throttle;
    let keys = throttle.login_keys(identifier, throttle.client_ip(&headers, &extensions));
    if let Err(retry_after) = throttle.check_login(&keys, state.clock.now_secs()) {
        tracing::info!(
            app = app.id(),
            provider = provider.as_str(),
            "login refused: throttled"
        );
        return Err(too_many_logins(retry_after));
    }
    let result = login_checked(&state, &app, provider, query, &headers, body).await;
    match &result {
        Ok(_) => throttle.login_success(&keys),
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => {
            throttle.login_failure(&keys, state.clock.now_secs());
        }
        Err(_) => {}
    }
    result
}

/// A login (or link) that passed the throttle.
async fn login_checked(
    state: &ServerState,
    app: &AppRuntime,
    provider: ProviderType,
    query: Option<String>,
    headers: &HeaderMap,
    mut body: Map<String, Value>,
) -> Result<Response, ApiError> {
    let device_hint = body
        .get("options")
        .and_then(|o| o.get("device"))
        .and_then(|d| d.get("deviceId"))
        .and_then(ObjectId::from_json)
        .filter(|id| !id.is_zero());
    // The path names the provider; core's `provider` key and the options are not
    // part of the credential.
    body.remove("provider");
    body.remove("options");

    if wants_link(query.as_deref()) {
        return link(state, app, provider, headers, &body).await;
    }

    let ctx = ProviderContext { state, app };
    let verified = providers::authenticate(ctx, provider, &body).await?;
    let now = state.clock.now_secs();
    let user = user_for_identity(state, app, &verified, now).await?;
    if user.disabled {
        return Err(ApiError::user_disabled());
    }

    let device_id = match device_hint {
        Some(id) if state.store.device_exists(app.id(), &id.to_string()).await? => id.to_string(),
        _ => new_object_id(&state.clock).to_string(),
    };
    state
        .store
        .touch_device(app.id(), &device_id, &user.id, now)
        .await?;
    let ttl = i64::try_from(app.config.refresh_token_ttl_secs).unwrap_or(i64::MAX);
    let session = SessionRecord {
        app_id: app.id().to_owned(),
        id: new_random_id(),
        user_id: user.id.clone(),
        device_id,
        created_at: now,
        expires_at: now.saturating_add(ttl),
        provider_type: Some(verified.provider.as_str().to_owned()),
        identity_id: Some(verified.id.clone()),
    };
    state.store.create_session(&session).await?;
    tracing::info!(app = app.id(), user = %user.id, provider = provider.as_str(), "login");
    login_response(app, &session, &user, now)
}

/// The login answer for `session`: fresh access and refresh tokens.
fn login_response(
    app: &AppRuntime,
    session: &SessionRecord,
    user: &UserRecord,
    now: i64,
) -> Result<Response, ApiError> {
    Ok(ok_json(&LoginResponse {
        access_token: access_token(app, session, user, now)?,
        refresh_token: Some(refresh_token(app, session, now)?),
        user_id: user.id.clone(),
        device_id: session.device_id.clone(),
    }))
}

/// Keep an identity's profile data current: a provider that vouches for data at this
/// login (a new name or picture at Google, say) replaces what an earlier login stored.
/// Providers that vouch for nothing (anonymous, API keys) leave the stored data alone.
async fn refresh_identity_data(
    state: &ServerState,
    app: &AppRuntime,
    stored: &IdentityRecord,
    verified: &VerifiedIdentity,
) -> Result<(), ApiError> {
    if verified.data.is_empty() || verified.data == stored.data {
        return Ok(());
    }
    state
        .store
        .set_identity_data(app.id(), &stored.provider_type, &stored.id, &verified.data)
        .await?;
    Ok(())
}

/// The stored form of a verified identity of `user_id`.
fn identity_record(
    app: &AppRuntime,
    verified: &VerifiedIdentity,
    user_id: &str,
    now: i64,
) -> IdentityRecord {
    IdentityRecord {
        app_id: app.id().to_owned(),
        provider_type: verified.provider.as_str().to_owned(),
        id: verified.id.clone(),
        user_id: user_id.to_owned(),
        data: verified.data.clone(),
        created_at: now,
    }
}

/// The user owning a verified identity, created with it at its first login.
async fn user_for_identity(
    state: &ServerState,
    app: &AppRuntime,
    verified: &VerifiedIdentity,
    now: i64,
) -> Result<UserRecord, ApiError> {
    let provider = verified.provider.as_str();
    // Two attempts: a concurrent first login with the same credentials may create the
    // user between our lookup and our insert; then we use theirs.
    for _ in 0..2 {
        if let Some(identity) = state
            .store
            .find_identity(app.id(), provider, &verified.id)
            .await?
        {
            refresh_identity_data(state, app, &identity, verified).await?;
            return state
                .store
                .get_user(app.id(), &identity.user_id)
                .await?
                .ok_or_else(|| ApiError::internal(&"identity without a user"));
        }
        let user = UserRecord {
            app_id: app.id().to_owned(),
            id: new_object_id(&state.clock).to_string(),
            created_at: now,
            disabled: false,
            custom_data: None,
        };
        let identity = identity_record(app, verified, &user.id, now);
        match state
            .store
            .create_user_with_identity(&user, &identity)
            .await
        {
            Ok(()) => {
                tracing::info!(app = app.id(), user = %user.id, provider, "created user");
                return Ok(user);
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::internal(&"identity creation kept conflicting"))
}

/// `?link=true`: attach the identity to the bearer's user, keep the session.
async fn link(
    state: &ServerState,
    app: &AppRuntime,
    provider: ProviderType,
    headers: &HeaderMap,
    body: &Map<String, Value>,
) -> Result<Response, ApiError> {
    let auth = auth::access(state, headers).await?;
    if auth.app.id() != app.id() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::UserAppDomainMismatch,
            "the access token belongs to another app",
        ));
    }
    if provider == ProviderType::Anonymous {
        return Err(ApiError::bad_request(
            "cannot link anonymous credentials to an existing user",
        ));
    }
    if provider == ProviderType::ApiKey {
        return Err(ApiError::bad_request(
            "cannot link an API key: API keys always log in as their own user",
        ));
    }
    let ctx = ProviderContext { state, app };
    let verified = providers::authenticate(ctx, provider, body).await?;
    let now = state.clock.now_secs();
    let taken = || ApiError::account_name_in_use("the identity is already linked to another user");
    match state
        .store
        .find_identity(app.id(), provider.as_str(), &verified.id)
        .await?
    {
        Some(existing) if existing.user_id == auth.user.id => {
            refresh_identity_data(state, app, &existing, &verified).await?;
        }
        Some(_) => return Err(taken()),
        None => {
            let identity = identity_record(app, &verified, &auth.user.id, now);
            match state.store.add_identity(&identity).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => return Err(taken()),
                Err(e) => return Err(e.into()),
            }
            tracing::info!(app = app.id(), user = %auth.user.id, provider = provider.as_str(), "linked identity");
        }
    }
    login_response(app, &auth.session, &auth.user, now)
}

/// `POST /auth/session` (refresh bearer): a new access token for the same session.
pub(crate) async fn refresh(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let auth = auth::refresh(&state, &headers).await?;
    let now = state.clock.now_secs();
    Ok(ok_json(&RefreshResponse {
        access_token: access_token(&auth.app, &auth.session, &auth.user, now)?,
    }))
}

/// `DELETE /auth/session` (refresh bearer): end the session.
pub(crate) async fn logout(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let auth = auth::refresh(&state, &headers).await?;
    state
        .store
        .delete_session(auth.app.id(), &auth.session.id)
        .await?;
    tracing::info!(app = auth.app.id(), user = %auth.user.id, "logout");
    Ok(no_content())
}

/// `GET /auth/profile` (access bearer).
pub(crate) async fn profile(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let auth = auth::access(&state, &headers).await?;
    let records = state
        .store
        .list_identities(auth.app.id(), &auth.user.id)
        .await?;
    let user_type = providers::api_key::user_type(&records);
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
    Ok(ok_json(&ProfileResponse {
        user_id: auth.user.id.clone(),
        domain_id: auth.app.id().to_owned(),
        identities,
        data,
        user_type,
    }))
}

/// `DELETE /auth/delete` (access bearer): delete the user, its identities and sessions.
pub(crate) async fn delete_user(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let auth = auth::access(&state, &headers).await?;
    state
        .store
        .delete_user(auth.app.id(), &auth.user.id)
        .await?;
    tracing::info!(app = auth.app.id(), user = %auth.user.id, "deleted user");
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_query() {
        assert!(wants_link(Some("link=true")));
        assert!(wants_link(Some("a=b&link=TRUE")));
        assert!(!wants_link(Some("link=false")));
        assert!(!wants_link(Some("linked=true")));
        assert!(!wants_link(None));
    }
}
