//! Sessions: starting one at login (device, session record, tokens), authenticating
//! access and refresh tokens, refreshing and revoking.
//!
//! A token names its app (`baas_domain_id`), is verified with that app's key, and then
//! its session and user are looked up, so that logout, user deletion and disabling
//! take effect immediately.

use std::sync::Arc;

use latchkey_protocol::{
    AccessTokenClaims, LoginResponse, ObjectId, RefreshResponse, RefreshTokenClaims, Secret,
    TokenType,
};

use super::state::{AppRuntime, ServerState};
use crate::error::Error;
use crate::ids::{new_object_id, new_random_id};
use crate::providers::VerifiedIdentity;
use crate::store::{IdentityRecord, SessionRecord, UserRecord};
use crate::tokens::{TokenError, UnverifiedToken};

/// A request authenticated with an access or a refresh token: its app, its live
/// session and the session's enabled user.
#[derive(Debug)]
pub(crate) struct SessionAuth {
    pub(crate) app: Arc<AppRuntime>,
    pub(crate) session: SessionRecord,
    pub(crate) user: UserRecord,
}

fn sign_error(e: TokenError) -> Error {
    Error::internal(&e)
}

/// A new access token for `session`, which the server itself can read back.
///
/// Custom data outside the bounds of `latchkey_protocol::check_custom_data` (stored by
/// an earlier release, or written to the database directly) is left out of the token,
/// with a warning, rather than issuing a token that no request could use: the user
/// keeps working, without `user_data`, until an operator fixes the data.
fn access_token(
    app: &AppRuntime,
    session: &SessionRecord,
    user: &UserRecord,
    now: i64,
) -> Result<Secret, Error> {
    let ttl = i64::try_from(app.config.access_token_ttl_secs).unwrap_or(i64::MAX);
    let user_data = match &user.custom_data {
        Some(data) => match latchkey_protocol::check_custom_data(data) {
            Ok(()) => Some(data.clone()),
            Err(e) => {
                tracing::warn!(
                    app = app.id(),
                    user = %user.id,
                    reason = %e,
                    "custom data left out of the access token; replace it with the admin API"
                );
                None
            }
        },
        None => None,
    };
    let claims = AccessTokenClaims {
        sub: user.id.clone(),
        exp: now.saturating_add(ttl),
        iat: now,
        iss: Some(session.id.clone()),
        typ: TokenType::Access,
        baas_device_id: Some(session.device_id.clone()),
        baas_domain_id: Some(app.id().to_owned()),
        user_data,
    };
    let keys = app.keys();
    let token = keys.sign_access(&claims).map_err(sign_error)?;
    // Never issue a token the server cannot read (its own limits decide, not the
    // claims'). Custom data is the one part of the claims the server did not make; a
    // token without it holds strings and integers only, signed by a key that verified
    // its own signature when it was loaded, and is not read back.
    if claims.user_data.is_some()
        && let Err(e) = keys.verify_access(&token, now)
    {
        return Err(Error::internal(&format_args!(
            "issued an access token the server cannot read back: {e}"
        )));
    }
    Ok(Secret::from(token))
}

/// A refresh token naming `session` (valid until the session expires).
fn refresh_token(app: &AppRuntime, session: &SessionRecord, now: i64) -> Result<Secret, Error> {
    let claims = RefreshTokenClaims {
        sub: session.user_id.clone(),
        exp: session.expires_at,
        iat: now,
        baas_id: Some(session.id.clone()),
        typ: TokenType::Refresh,
        baas_device_id: Some(session.device_id.clone()),
        baas_domain_id: Some(app.id().to_owned()),
    };
    app.keys()
        .sign_refresh(&claims)
        .map(Secret::from)
        .map_err(sign_error)
}

/// The login answer for `session`: fresh access and refresh tokens.
pub(crate) fn login_response(
    app: &AppRuntime,
    session: &SessionRecord,
    user: &UserRecord,
    now: i64,
) -> Result<LoginResponse, Error> {
    Ok(LoginResponse {
        access_token: access_token(app, session, user, now)?,
        refresh_token: Some(refresh_token(app, session, now)?),
        user_id: user.id.clone(),
        device_id: session.device_id.clone(),
    })
}

/// The device of a new session: `device_hint` when the server knows it (issued by this
/// app), else a new device id.
pub(crate) async fn device_for(
    state: &ServerState,
    app: &AppRuntime,
    device_hint: Option<ObjectId>,
) -> Result<String, Error> {
    Ok(match device_hint {
        Some(id) if state.store.device_exists(app.id(), &id.to_string()).await? => id.to_string(),
        _ => new_object_id(&state.clock).to_string(),
    })
}

/// A new session of `user_id` on `device_id`, proven by `verified`, starting at `now`
/// (not stored yet: the login stores it with its other writes, `Store::start_session`).
pub(crate) fn new_session(
    app: &AppRuntime,
    user_id: &str,
    device_id: &str,
    verified: &VerifiedIdentity,
    now: i64,
) -> SessionRecord {
    let ttl = i64::try_from(app.config.refresh_token_ttl_secs).unwrap_or(i64::MAX);
    SessionRecord {
        app_id: app.id().to_owned(),
        id: new_random_id(),
        user_id: user_id.to_owned(),
        device_id: device_id.to_owned(),
        created_at: now,
        expires_at: now.saturating_add(ttl),
        provider_type: Some(verified.provider.to_owned()),
        identity_id: Some(verified.id.clone()),
    }
}

fn access_error(e: &TokenError) -> Error {
    match e {
        TokenError::Expired => Error::invalid_session("invalid session: access token expired"),
        TokenError::WrongType => {
            Error::invalid_session("invalid session: expected an access token")
        }
        _ => Error::invalid_session("invalid session: invalid access token"),
    }
}

/// The app a token claims to belong to.
fn token_app(state: &ServerState, token: &UnverifiedToken<'_>) -> Option<Arc<AppRuntime>> {
    state.apps.get(token.domain()?).cloned()
}

/// A live session of `user_id` and its enabled user.
pub(crate) async fn live_session(
    state: &ServerState,
    app: &AppRuntime,
    session_id: &str,
    user_id: &str,
    now: i64,
) -> Result<Option<(SessionRecord, UserRecord)>, Error> {
    // One query: the session joined with its user (never a cache, so a revoked session
    // or a disabled user is refused at the very next request).
    let Some((session, user)) = state
        .store
        .get_session_with_user(app.id(), session_id)
        .await?
    else {
        return Ok(None);
    };
    Ok(is_live(&session, &user, user_id, now).then_some((session, user)))
}

/// Whether `session` belongs to `user_id` (the token's subject), has not expired at
/// `now`, and its user is enabled.
fn is_live(session: &SessionRecord, user: &UserRecord, user_id: &str, now: i64) -> bool {
    session.user_id == user_id && session.expires_at > now && !user.disabled
}

/// An access token's app, verified claims and the time of the check.
fn verify_access(
    state: &ServerState,
    token: &str,
) -> Result<(Arc<AppRuntime>, AccessTokenClaims, i64), Error> {
    let invalid = || Error::invalid_session("invalid session: invalid access token");
    let token = UnverifiedToken::parse(token).map_err(|_| invalid())?;
    let app = token_app(state, &token).ok_or_else(invalid)?;
    let now = state.clock.now_secs();
    let claims = app
        .keys()
        .verify_access_parsed(&token, now)
        .map_err(|e| access_error(&e))?;
    if claims.iss.is_none() {
        return Err(invalid());
    }
    Ok((app, claims, now))
}

fn revoked() -> Error {
    Error::invalid_session("invalid session: session not found or revoked")
}

/// Authenticate an access token.
pub(crate) async fn authenticate_access(
    state: &ServerState,
    token: &str,
) -> Result<SessionAuth, Error> {
    let (app, claims, now) = verify_access(state, token)?;
    let session_id = claims.iss.as_deref().unwrap_or_default();
    let Some((session, user)) = live_session(state, &app, session_id, &claims.sub, now).await?
    else {
        return Err(revoked());
    };
    Ok(SessionAuth { app, session, user })
}

/// Authenticate an access token and read the user's identities with the session, in
/// one query (the profile route).
pub(crate) async fn authenticate_profile(
    state: &ServerState,
    token: &str,
) -> Result<(SessionAuth, Vec<IdentityRecord>), Error> {
    let (app, claims, now) = verify_access(state, token)?;
    let session_id = claims.iss.as_deref().unwrap_or_default();
    let Some((session, user, identities)) = state
        .store
        .get_session_profile(app.id(), session_id)
        .await?
    else {
        return Err(revoked());
    };
    if !is_live(&session, &user, &claims.sub, now) {
        return Err(revoked());
    }
    Ok((SessionAuth { app, session, user }, identities))
}

/// Authenticate a refresh token. Every failure is [`Error::refresh_token_not_found`].
pub(crate) async fn authenticate_refresh(
    state: &ServerState,
    token: &str,
) -> Result<SessionAuth, Error> {
    let not_found = Error::refresh_token_not_found;
    let token = UnverifiedToken::parse(token).map_err(|_| not_found())?;
    let app = token_app(state, &token).ok_or_else(not_found)?;
    let now = state.clock.now_secs();
    let claims = app.keys().verify_refresh_parsed(&token, now).map_err(|e| {
        tracing::debug!(app = app.id(), reason = %e, "refresh token rejected");
        not_found()
    })?;
    let session_id = claims.baas_id.as_deref().ok_or_else(not_found)?;
    let (session, user) = live_session(state, &app, session_id, &claims.sub, now)
        .await?
        .ok_or_else(not_found)?;
    Ok(SessionAuth { app, session, user })
}

/// A new access token for the refresh token's session.
pub(crate) fn refresh(state: &ServerState, auth: &SessionAuth) -> Result<RefreshResponse, Error> {
    let now = state.clock.now_secs();
    Ok(RefreshResponse {
        access_token: access_token(&auth.app, &auth.session, &auth.user, now)?,
    })
}

/// End the refresh token's session (logout).
pub(crate) async fn revoke(state: &ServerState, auth: &SessionAuth) -> Result<(), Error> {
    state
        .store
        .delete_session(auth.app.id(), &auth.session.id)
        .await?;
    tracing::info!(app = auth.app.id(), user = %auth.user.id, "logout");
    Ok(())
}
