//! Authenticating bearer tokens: find the app from the token, verify it with that
//! app's key, then look the session and the user up, so that logout, user
//! deletion and disabling take effect immediately.

use std::sync::Arc;

use http::HeaderMap;

use super::extract::bearer;
use crate::error::ApiError;
use crate::state::{AppRuntime, ServerState};
use crate::store::{SessionRecord, UserRecord};
use crate::tokens::{TokenError, unverified_domain};

/// A request authenticated with an access or a refresh token: its app, its live
/// session and the session's enabled user.
#[derive(Debug)]
pub(crate) struct SessionAuth {
    pub(crate) app: Arc<AppRuntime>,
    pub(crate) session: SessionRecord,
    pub(crate) user: UserRecord,
}

fn access_error(e: &TokenError) -> ApiError {
    match e {
        TokenError::Expired => ApiError::invalid_session("invalid session: access token expired"),
        TokenError::WrongType => {
            ApiError::invalid_session("invalid session: expected an access token")
        }
        _ => ApiError::invalid_session("invalid session: invalid access token"),
    }
}

/// The app a token claims to belong to.
fn token_app(state: &ServerState, token: &str) -> Option<Arc<AppRuntime>> {
    let domain = unverified_domain(token)?;
    state.apps.get(&domain).cloned()
}

/// A live session of `user_id` and its enabled user.
async fn live_session(
    state: &ServerState,
    app: &AppRuntime,
    session_id: &str,
    user_id: &str,
    now: i64,
) -> Result<Option<(SessionRecord, UserRecord)>, ApiError> {
    let Some(session) = state.store.get_session(app.id(), session_id).await? else {
        return Ok(None);
    };
    if session.user_id != user_id || session.expires_at <= now {
        return Ok(None);
    }
    let Some(user) = state.store.get_user(app.id(), user_id).await? else {
        return Ok(None);
    };
    if user.disabled {
        return Ok(None);
    }
    Ok(Some((session, user)))
}

/// Authenticate `Authorization: Bearer <access token>`.
pub(crate) async fn access(
    state: &ServerState,
    headers: &HeaderMap,
) -> Result<SessionAuth, ApiError> {
    let token = bearer(headers)?;
    let invalid = || ApiError::invalid_session("invalid session: invalid access token");
    let app = token_app(state, token).ok_or_else(invalid)?;
    let now = state.clock.now_secs();
    let claims = app
        .keys
        .verify_access(token, now)
        .map_err(|e| access_error(&e))?;
    let session_id = claims.iss.as_deref().ok_or_else(invalid)?;
    let Some((session, user)) = live_session(state, &app, session_id, &claims.sub, now).await?
    else {
        return Err(ApiError::invalid_session(
            "invalid session: session not found or revoked",
        ));
    };
    Ok(SessionAuth { app, session, user })
}

/// Authenticate `Authorization: Bearer <refresh token>`. Every failure but a missing
/// header is 401 `InvalidSession` "invalid session: failed to find refresh token".
pub(crate) async fn refresh(
    state: &ServerState,
    headers: &HeaderMap,
) -> Result<SessionAuth, ApiError> {
    let token = bearer(headers)?;
    let not_found = ApiError::refresh_token_not_found;
    let app = token_app(state, token).ok_or_else(not_found)?;
    let now = state.clock.now_secs();
    let claims = app.keys.verify_refresh(token, now).map_err(|e| {
        tracing::debug!(app = app.id(), reason = %e, "refresh token rejected");
        not_found()
    })?;
    let session_id = claims.baas_id.as_deref().ok_or_else(not_found)?;
    let (session, user) = live_session(state, &app, session_id, &claims.sub, now)
        .await?
        .ok_or_else(not_found)?;
    Ok(SessionAuth { app, session, user })
}
