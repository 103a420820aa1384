//! Login and linking: the rules around a provider's verdict, the same for every
//! provider (throttling, finding or creating the user, disabled users, the link
//! rules), then a session.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use latchkey_protocol::{LoginResponse, ObjectId};
use serde_json::{Map, Value};

use super::sessions;
use super::state::{AppRuntime, ServerState};
use super::throttle::{LoginOutcome, identifier_key, too_many_logins};
use crate::error::Error;
use crate::ids::new_object_id;
use crate::providers::{ProviderRef, VerifiedIdentity};
use crate::store::{IdentityRecord, SessionRecord, StoreError, UserRecord};

/// Where a login goes: an app and one of its enabled providers.
#[derive(Clone)]
pub(crate) struct LoginTarget {
    pub(crate) app: Arc<AppRuntime>,
    pub(crate) provider: ProviderRef,
}

impl fmt::Debug for LoginTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginTarget")
            .field("app", &self.app.id())
            .field("provider", &self.provider.name())
            .finish()
    }
}

/// The app `app_id` and its provider `provider` (404 when either is unknown, or the
/// provider is not enabled).
pub(crate) fn target(
    state: &ServerState,
    app_id: &str,
    provider: &str,
) -> Result<LoginTarget, Error> {
    let app = state.app(app_id)?;
    let provider = app.provider(provider)?;
    Ok(LoginTarget { app, provider })
}

/// A login request, parsed.
#[derive(Debug)]
pub(crate) struct LoginRequest {
    /// The credential body (Extended JSON already converted), with the client's
    /// `provider` and `options` keys.
    pub(crate) body: Map<String, Value>,
    /// `Some` to link the credential to the bearer's user instead (`?link=true`): the
    /// access token, or why the request carries none.
    pub(crate) link: Option<Result<String, Error>>,
    /// The client's address, for throttling.
    pub(crate) client_ip: Option<IpAddr>,
}

/// Log in (or link) with `target`'s provider.
///
/// Throttled (see [`super::throttle`]) on the app, the provider and the parsed body,
/// so that every spelling of a path shares its buckets.
pub(crate) async fn login(
    state: &ServerState,
    target: &LoginTarget,
    request: LoginRequest,
) -> Result<LoginResponse, Error> {
    let LoginTarget { app, provider } = target;
    if !provider.throttled() {
        return login_checked(state, app, *provider, request).await;
    }
    let identifier = provider
        .login_identifier(&request.body)?
        .map(|id| identifier_key(app.id(), provider.name(), &id));
    let throttle = &state.throttle;
    let store = state.store.as_ref();
    let keys = throttle.login_keys(identifier, request.client_ip);
    // Reserved before the check: concurrent attempts never get past the limit.
    let reservation = match throttle
        .reserve_login(store, &keys, state.clock.now_secs())
        .await?
    {
        Ok(reservation) => reservation,
        Err(retry_after) => {
            tracing::info!(
                app = app.id(),
                provider = provider.name(),
                "login refused: throttled"
            );
            return Err(too_many_logins(retry_after));
        }
    };
    let result = login_checked(state, app, *provider, request).await;
    let outcome = match &result {
        Ok(_) => LoginOutcome::Success,
        Err(e) if e.is_rejected_credential() => LoginOutcome::Failure,
        Err(_) => LoginOutcome::NotCounted,
    };
    throttle.settle_login(store, reservation, outcome).await;
    result
}

/// A login (or link) that passed the throttle.
async fn login_checked(
    state: &ServerState,
    app: &AppRuntime,
    provider: ProviderRef,
    request: LoginRequest,
) -> Result<LoginResponse, Error> {
    let LoginRequest { mut body, link, .. } = request;
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

    if let Some(token) = link {
        return link_identity(state, app, provider, &token?, &body).await;
    }

    let ctx = state.provider_context(app);
    let verified = provider
        .authenticate(&ctx, &app.config.providers, &body)
        .await?
        .storable()?;
    let now = state.clock.now_secs();
    let device_id = sessions::device_for(state, app, device_hint).await?;
    let (session, user) = start_session(state, app, &verified, &device_id, now).await?;
    tracing::debug!(app = app.id(), user = %user.id, provider = provider.name(), "login");
    sessions::login_response(app, &session, &user, now)
}

/// Keep an identity's profile data current: a provider that vouches for data at this
/// login (a new name or picture at Google, say) replaces what an earlier login stored.
/// Providers that vouch for nothing (anonymous, API keys) leave the stored data alone.
async fn refresh_identity_data(
    state: &ServerState,
    app: &AppRuntime,
    stored: &IdentityRecord,
    verified: &VerifiedIdentity,
) -> Result<(), Error> {
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
        provider_type: verified.provider.to_owned(),
        id: verified.id.clone(),
        user_id: user_id.to_owned(),
        data: verified.data.clone(),
        created_at: now,
    }
}

/// Store a new session of the user owning a verified identity on `device_id`; a first
/// login creates the user with the identity, in the same transaction as the session
/// (`Store::start_session`). A disabled user gets no session.
async fn start_session(
    state: &ServerState,
    app: &AppRuntime,
    verified: &VerifiedIdentity,
    device_id: &str,
    now: i64,
) -> Result<(SessionRecord, UserRecord), Error> {
    let provider = verified.provider;
    // Two attempts: a concurrent first login with the same credentials may create the
    // user between our lookup and our insert; then we use theirs.
    for _ in 0..2 {
        if let Some(identity) = state
            .store
            .find_identity(app.id(), provider, &verified.id)
            .await?
        {
            refresh_identity_data(state, app, &identity, verified).await?;
            let user = state
                .store
                .get_user(app.id(), &identity.user_id)
                .await?
                .ok_or_else(|| Error::internal(&"identity without a user"))?;
            if user.disabled {
                return Err(Error::UserDisabled);
            }
            let session = sessions::new_session(app, &user.id, device_id, verified, now);
            state.store.start_session(None, &session).await?;
            return Ok((session, user));
        }
        let user = UserRecord {
            app_id: app.id().to_owned(),
            id: new_object_id(&state.clock).to_string(),
            created_at: now,
            disabled: false,
            custom_data: None,
        };
        let identity = identity_record(app, verified, &user.id, now);
        let session = sessions::new_session(app, &user.id, device_id, verified, now);
        match state
            .store
            .start_session(Some((&user, &identity)), &session)
            .await
        {
            Ok(()) => {
                tracing::debug!(app = app.id(), user = %user.id, provider, "created user");
                return Ok((session, user));
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::internal(&"identity creation kept conflicting"))
}

/// `?link=true`: attach the identity to the bearer's user, keep the session.
async fn link_identity(
    state: &ServerState,
    app: &AppRuntime,
    provider: ProviderRef,
    access_token: &str,
    body: &Map<String, Value>,
) -> Result<LoginResponse, Error> {
    let auth = sessions::authenticate_access(state, access_token).await?;
    if auth.app.id() != app.id() {
        return Err(Error::AppDomainMismatch);
    }
    if let Some(why) = provider.link_refusal() {
        return Err(Error::bad_request(why));
    }
    let ctx = state.provider_context(app);
    let verified = provider
        .authenticate(&ctx, &app.config.providers, body)
        .await?
        .storable()?;
    let now = state.clock.now_secs();
    let taken = || Error::account_name_in_use("the identity is already linked to another user");
    match state
        .store
        .find_identity(app.id(), provider.name(), &verified.id)
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
            tracing::info!(app = app.id(), user = %auth.user.id, provider = provider.name(), "linked identity");
        }
    }
    sessions::login_response(app, &auth.session, &auth.user, now)
}
