//! Users: the [`User`] handle, its state, profile and identities, and token management.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Method, header};
use latchkey_protocol::{
    Credential, CredentialError, ProfileResponse, ProviderType, RefreshResponse,
};
use latchkey_transport::{HttpRequest, HttpResponse};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::app::{
    AppCore, AppInner, UNAUTHORIZED, bearer_value, check_status, decode_access, identities_of,
    is_device_id, parse_json, server_error, validate_refresh_token,
};
use crate::error::Error;
use crate::events::UserEvent;
use crate::store::{StoreError, StoredUser};
use latchkey_protocol::Secret;

/// The state of a user on this device (protocol.md §9.1).
///
/// ```
/// use latchkey_session::UserState;
/// assert_ne!(UserState::LoggedIn, UserState::LoggedOut);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UserState {
    /// Has tokens and can make requests.
    LoggedIn,
    /// Tokens cleared; still known on this device (profile and identities kept).
    LoggedOut,
    /// Forgotten by this device.
    Removed,
}

/// One identity (provider account) linked to a user.
///
/// ```
/// use latchkey_session::UserIdentity;
/// let i = UserIdentity { id: "x".into(), provider_type: "anon-user".into() };
/// assert_eq!(i.provider_type, "anon-user");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UserIdentity {
    /// Provider-specific identity id.
    pub id: String,
    /// Provider name, e.g. `"local-userpass"`.
    pub provider_type: String,
}

/// A user's profile metadata (`data` of `GET /auth/profile`), with typed accessors for the
/// well-known keys.
///
/// ```
/// use latchkey_session::UserProfile;
/// let mut data = serde_json::Map::new();
/// data.insert("email".into(), "a@b.c".into());
/// data.insert("picture".into(), "https://x/p.png".into());
/// let p = UserProfile::from_data(data);
/// assert_eq!(p.email().as_deref(), Some("a@b.c"));
/// assert_eq!(p.picture_url().as_deref(), Some("https://x/p.png"));
/// assert_eq!(p.name().as_deref(), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserProfile {
    data: Map<String, Value>,
}

impl UserProfile {
    /// A profile from its raw `data` document.
    pub fn from_data(data: Map<String, Value>) -> Self {
        UserProfile { data }
    }

    fn str(&self, key: &str) -> Option<String> {
        self.data
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// `name`.
    ///
    /// The accessors return owned values, so `let email = user.profile().email();` works
    /// (a profile is a snapshot taken from the user handle).
    pub fn name(&self) -> Option<String> {
        self.str("name")
    }
    /// `email`.
    pub fn email(&self) -> Option<String> {
        self.str("email")
    }
    /// `picture_url` (realm-core's key), else `picture` (realm-web's).
    pub fn picture_url(&self) -> Option<String> {
        self.str("picture_url").or_else(|| self.str("picture"))
    }
    /// `first_name`.
    pub fn first_name(&self) -> Option<String> {
        self.str("first_name")
    }
    /// `last_name`.
    pub fn last_name(&self) -> Option<String> {
        self.str("last_name")
    }
    /// `gender`.
    pub fn gender(&self) -> Option<String> {
        self.str("gender")
    }
    /// `birthday`.
    pub fn birthday(&self) -> Option<String> {
        self.str("birthday")
    }
    /// `min_age`.
    pub fn min_age(&self) -> Option<String> {
        self.str("min_age")
    }
    /// `max_age`.
    pub fn max_age(&self) -> Option<String> {
        self.str("max_age")
    }
    /// Any key of the raw document.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.data.get(key).cloned()
    }
    /// The raw `data` document.
    pub fn data(&self) -> &Map<String, Value> {
        &self.data
    }
    /// The raw `data` document, owned (realm's `profileAsBsonDocument()`).
    pub fn into_data(self) -> Map<String, Value> {
        self.data
    }
}

/// Tokens just received.
pub(crate) struct TokenSet {
    pub(crate) access: Secret,
    refresh: Option<Secret>,
    expires_at: SystemTime,
    lifetime: Duration,
}

impl TokenSet {
    /// Validate both tokens of a login response; the expiry is computed from the access
    /// token's own `exp - iat`, counted from the local clock at receipt.
    pub(crate) fn from_login(
        access: Secret,
        refresh: Secret,
        now: SystemTime,
    ) -> Result<Self, Error> {
        validate_refresh_token(&refresh)?;
        let mut t = Self::access_only(access, now)?;
        t.refresh = Some(refresh);
        Ok(t)
    }

    /// Validate an access token; its lifetime `exp - iat` must be in
    /// `1 s ..= MAX_ACCESS_TOKEN_LIFETIME`, else a decode error (no panic, whatever the
    /// claims say).
    fn access_only(access: Secret, now: SystemTime) -> Result<Self, Error> {
        let claims = decode_access(&access)?;
        let lifetime = token_lifetime(claims.exp, claims.iat)?;
        let expires_at = now
            .checked_add(lifetime)
            .ok_or_else(invalid_lifetime_error)?;
        Ok(TokenSet {
            access,
            refresh: None,
            expires_at,
            lifetime,
        })
    }
}

/// The longest access-token lifetime (`exp - iat`) the SDK accepts: one year. Longer (or
/// non-positive) lifetimes are a [`ErrorKind::Decode`](crate::ErrorKind::Decode) error.
pub const MAX_ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);

fn invalid_lifetime_error() -> Error {
    Error::decode("access token has an invalid lifetime", None)
}

/// `exp - iat` as a duration in `1 s ..= MAX_ACCESS_TOKEN_LIFETIME`, with checked arithmetic.
fn token_lifetime(exp: i64, iat: i64) -> Result<Duration, Error> {
    exp.checked_sub(iat)
        .filter(|&secs| secs > 0 && secs as u64 <= MAX_ACCESS_TOKEN_LIFETIME.as_secs())
        .map(|secs| Duration::from_secs(secs as u64))
        .ok_or_else(invalid_lifetime_error)
}

/// How long before its local expiry a token is refreshed: 60 s, or 10% of the lifetime
/// for tokens shorter than 10 minutes; never more than half the lifetime, so a token just
/// received is never due for a refresh at once.
///
/// ```
/// use std::time::Duration;
/// use latchkey_session::refresh_buffer;
/// assert_eq!(refresh_buffer(Duration::from_secs(1800)), Duration::from_secs(60));
/// assert_eq!(refresh_buffer(Duration::from_secs(100)), Duration::from_secs(10));
/// assert!(refresh_buffer(Duration::from_secs(1)) <= Duration::from_millis(500));
/// ```
pub fn refresh_buffer(lifetime: Duration) -> Duration {
    let buffer = if lifetime >= Duration::from_secs(600) {
        Duration::from_secs(60)
    } else {
        lifetime / 10
    };
    buffer.min(lifetime / 2)
}

pub(crate) struct UserData {
    id: String,
    pub(crate) state: UserState,
    access_token: Option<Secret>,
    refresh_token: Option<Secret>,
    expires_at: Option<SystemTime>,
    lifetime: Option<Duration>,
    profile: Map<String, Value>,
    identities: Vec<UserIdentity>,
    user_type: Option<String>,
    pub(crate) device_id: Option<String>,
    pub(crate) provider_type: Option<String>,
    generation: u64,
}

/// Unix milliseconds, saturating (never panics, whatever the time).
fn to_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

fn from_ms(ms: i64) -> Option<SystemTime> {
    if ms >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_millis(ms as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_millis(ms.unsigned_abs()))
    }
}

impl UserData {
    pub(crate) fn new(id: String) -> Self {
        UserData {
            id,
            state: UserState::LoggedOut,
            access_token: None,
            refresh_token: None,
            expires_at: None,
            lifetime: None,
            profile: Map::new(),
            identities: Vec::new(),
            user_type: None,
            device_id: None,
            provider_type: None,
            generation: 0,
        }
    }

    /// Restore a stored user. A logged-in user whose tokens are missing or malformed reads
    /// as logged out (realm-core's rule); expiry is not checked.
    pub(crate) fn from_stored(su: StoredUser, now: SystemTime) -> Self {
        let mut d = UserData::new(su.id);
        d.profile = su.profile;
        d.identities = su.identities;
        d.user_type = su.user_type;
        d.device_id = su.device_id;
        d.provider_type = su.provider_type;
        if su.state == UserState::LoggedIn
            && let (Some(a), Some(r)) = (su.access_token, su.refresh_token)
        {
            let (a, r) = (Secret::new(a), Secret::new(r));
            if let Ok(mut t) = TokenSet::from_login(a, r, now) {
                // The stored expiry and lifetime win when they are sane (the expiry capped
                // at now + the token's own, already validated, lifetime); else the token's.
                if let Some(at) = su.access_token_expires_at_ms.and_then(from_ms) {
                    t.expires_at = at.min(t.expires_at);
                }
                if let Some(l) = su
                    .access_token_lifetime_secs
                    .and_then(|l| token_lifetime(l, 0).ok())
                {
                    t.lifetime = l;
                }
                d.set_tokens(t);
                d.state = UserState::LoggedIn;
            }
        }
        d
    }

    pub(crate) fn to_stored(&self) -> StoredUser {
        StoredUser {
            id: self.id.clone(),
            state: self.state,
            access_token: self.access_token.as_ref().map(|s| s.expose().to_owned()),
            refresh_token: self.refresh_token.as_ref().map(|s| s.expose().to_owned()),
            access_token_expires_at_ms: self.expires_at.map(to_ms),
            access_token_lifetime_secs: self.lifetime.map(|l| l.as_secs() as i64),
            profile: self.profile.clone(),
            identities: self.identities.clone(),
            user_type: self.user_type.clone(),
            device_id: self.device_id.clone(),
            provider_type: self.provider_type.clone(),
        }
    }

    pub(crate) fn set_tokens(&mut self, t: TokenSet) {
        self.access_token = Some(t.access);
        if let Some(r) = t.refresh {
            self.refresh_token = Some(r);
        }
        self.expires_at = Some(t.expires_at);
        self.lifetime = Some(t.lifetime);
        self.generation += 1;
    }

    pub(crate) fn clear_tokens(&mut self) {
        self.access_token = None;
        self.refresh_token = None;
        self.expires_at = None;
        self.lifetime = None;
        self.generation += 1;
    }

    pub(crate) fn apply_profile(&mut self, p: ProfileResponse) {
        self.identities = identities_of(&p);
        self.user_type = serde_json::to_value(&p.user_type)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        self.profile = p.data;
    }

    /// The access token of a logged-in user.
    fn logged_in_access(&self) -> Result<Secret, Error> {
        match (&self.state, &self.access_token) {
            (UserState::LoggedIn, Some(t)) => Ok(t.clone()),
            _ => Err(Error::not_logged_in("the user is not logged in")),
        }
    }

    /// The refresh token of a logged-in user.
    fn logged_in_refresh(&self) -> Result<Secret, Error> {
        match (&self.state, &self.refresh_token) {
            (UserState::LoggedIn, Some(r)) => Ok(r.clone()),
            _ => Err(Error::not_logged_in("the user is not logged in")),
        }
    }

    fn is_anonymous(&self) -> bool {
        self.state == UserState::LoggedIn
            && self.identities.len() == 1
            && self.identities[0].provider_type == "anon-user"
    }
}

pub(crate) struct UserInner {
    id: String,
    data: Mutex<UserData>,
    /// Single-flight refresh gate; holds the last refresh result for waiters.
    gate: tokio::sync::Mutex<Option<Result<(), Error>>>,
    /// Completed refresh attempts.
    attempts: AtomicU64,
}

/// A user of an app: a cheap-clone handle (an `Arc` inside); clones see the same state.
///
/// Secrets never appear in its `Debug` output.
///
/// ```no_run
/// # async fn demo(user: latchkey_session::User) -> Result<(), latchkey_session::Error> {
/// println!("{} is {:?}", user.id(), user.state());
/// let token = user.valid_access_token().await?; // refreshed first when about to expire
/// # let _ = token; Ok(()) }
/// ```
///
/// A user handle keeps its app's engine alive (like realm-core's `User`), so it stays
/// usable after the `App` it came from is dropped.
#[derive(Clone)]
pub struct User {
    inner: Arc<UserInner>,
    app: Arc<AppInner>,
}

impl UserInner {
    pub(crate) fn new(data: UserData) -> Arc<Self> {
        Arc::new(UserInner {
            id: data.id.clone(),
            data: Mutex::new(data),
            gate: tokio::sync::Mutex::new(None),
            attempts: AtomicU64::new(0),
        })
    }

    fn data(&self) -> MutexGuard<'_, UserData> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn state(&self) -> UserState {
        self.data().state
    }

    pub(crate) fn is_anonymous(&self) -> bool {
        self.data().is_anonymous()
    }

    pub(crate) fn device_id(&self) -> Option<String> {
        self.data().device_id.clone().filter(|d| is_device_id(d))
    }
}

impl PartialEq for User {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for User {}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.data();
        f.debug_struct("User")
            .field("id", &self.inner.id)
            .field("state", &d.state)
            .field("identities", &d.identities)
            .field("access_token", &d.access_token)
            .field("refresh_token", &d.refresh_token)
            .finish_non_exhaustive()
    }
}

struct Snapshot {
    token: Secret,
    generation: u64,
    needs_refresh: bool,
    expired: bool,
}

impl User {
    pub(crate) fn new(inner: Arc<UserInner>, app: Arc<AppInner>) -> Self {
        User { inner, app }
    }

    /// True when this handle is for `inner`.
    pub(crate) fn is(&self, inner: &Arc<UserInner>) -> bool {
        Arc::ptr_eq(&self.inner, inner)
    }

    fn data(&self) -> MutexGuard<'_, UserData> {
        self.inner.data()
    }

    /// Change the user and persist it (unless it is removed); a store failure is logged.
    pub(crate) fn update<R>(&self, app: &AppInner, f: impl FnOnce(&mut UserData) -> R) -> R {
        self.update_persisted(app, f).0
    }

    /// [`update`](Self::update), also returning whether persisting worked.
    fn update_persisted<R>(
        &self,
        app: &AppInner,
        f: impl FnOnce(&mut UserData) -> R,
    ) -> (R, Result<(), StoreError>) {
        let mut d = self.data();
        let r = f(&mut d);
        let saved = if d.state != UserState::Removed {
            app.save(&d.to_stored())
        } else {
            Ok(())
        };
        (r, saved)
    }

    pub(crate) fn update_no_save(&self, f: impl FnOnce(&mut UserData)) {
        f(&mut self.data());
    }

    /// The user's id (immutable).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The user's state.
    pub fn state(&self) -> UserState {
        self.data().state
    }

    /// True when the user is logged in (realm's `user.isLoggedIn`).
    pub fn is_logged_in(&self) -> bool {
        self.state() == UserState::LoggedIn
    }

    /// True when logged in with exactly one identity, of type `anon-user`.
    pub fn is_anonymous(&self) -> bool {
        self.inner.is_anonymous()
    }

    /// The profile, as of the last login or [`refresh_profile`](Self::refresh_profile).
    pub fn profile(&self) -> UserProfile {
        UserProfile::from_data(self.data().profile.clone())
    }

    /// The linked identities.
    pub fn identities(&self) -> Vec<UserIdentity> {
        self.data().identities.clone()
    }

    /// The profile `type` (`"normal"`, or `"server"` for API-key users), if known.
    pub fn user_type(&self) -> Option<String> {
        self.data().user_type.clone()
    }

    /// The provider used for the last login (e.g. `"local-userpass"`), if known.
    pub fn provider_type(&self) -> Option<String> {
        self.data().provider_type.clone()
    }

    /// The device id the server assigned (never the all-zero id).
    pub fn device_id(&self) -> Option<String> {
        self.inner.device_id()
    }

    /// The current access token; `None` when not logged in. It may be expired: use
    /// [`valid_access_token`](Self::valid_access_token) to get a fresh one.
    pub fn access_token(&self) -> Option<String> {
        self.data()
            .logged_in_access()
            .ok()
            .map(Secret::into_exposed)
    }

    /// The refresh token; `None` when not logged in.
    pub fn refresh_token(&self) -> Option<String> {
        self.data()
            .logged_in_refresh()
            .ok()
            .map(Secret::into_exposed)
    }

    /// When the access token expires, by the local clock: the time of receipt plus the
    /// token's own `exp - iat` (so a skewed server or client clock does not matter).
    ///
    /// ```no_run
    /// # fn demo(user: latchkey_session::User) {
    /// if let Some(at) = user.access_token_expires_at() {
    ///     let left = at.duration_since(std::time::SystemTime::now()).unwrap_or_default();
    ///     println!("token valid for {left:?}");
    /// }
    /// # }
    /// ```
    pub fn access_token_expires_at(&self) -> Option<SystemTime> {
        let d = self.data();
        match d.state {
            UserState::LoggedIn => d.expires_at,
            _ => None,
        }
    }

    /// The custom user data: the `user_data` claim of the current access token.
    /// `Ok(None)` when logged out or when there is none; a decode error when it does not
    /// deserialize into `T`.
    ///
    /// ```no_run
    /// # async fn demo(user: latchkey_session::User) -> Result<(), latchkey_session::Error> {
    /// #[derive(serde::Deserialize)]
    /// struct Prefs { theme: String }
    /// user.refresh_custom_data().await?;
    /// if let Some(prefs) = user.custom_data::<Prefs>()? {
    ///     println!("theme: {}", prefs.theme);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn custom_data<T: DeserializeOwned>(&self) -> Result<Option<T>, Error> {
        let Ok(token) = self.data().logged_in_access() else {
            return Ok(None);
        };
        let claims = decode_access(&token)?;
        match claims.user_data {
            None => Ok(None),
            Some(map) => serde_json::from_value(Value::Object(map))
                .map(Some)
                .map_err(|e| Error::decode(format!("custom user data: {e}"), None)),
        }
    }

    fn snapshot(&self, now: SystemTime) -> Result<Snapshot, Error> {
        let d = self.data();
        let token = d.logged_in_access()?;
        let expires_at = d.expires_at.unwrap_or(now);
        let buffer = refresh_buffer(d.lifetime.unwrap_or_default());
        let refresh_at = expires_at.checked_sub(buffer).unwrap_or(expires_at);
        Ok(Snapshot {
            token,
            generation: d.generation,
            needs_refresh: now >= refresh_at,
            expired: now >= expires_at,
        })
    }

    /// An access token that is not about to expire: refreshed first (single-flight) when
    /// `now >= local expiry - buffer` (see [`refresh_buffer`]). If that refresh fails but
    /// the old token has not expired yet, the old token is returned; if the session is over
    /// the error is [`ErrorKind::SessionExpired`](crate::ErrorKind::SessionExpired).
    pub async fn valid_access_token(&self) -> Result<String, Error> {
        Ok(self.valid_access_secret().await?.0.into_exposed())
    }

    async fn valid_access_secret(&self) -> Result<(Secret, u64), Error> {
        let app = self.app.clone();
        let snap = self.snapshot(app.clock_now())?;
        if !snap.needs_refresh {
            return Ok((snap.token, snap.generation));
        }
        match self
            .refresh_single_flight(&app, Some(snap.generation))
            .await
        {
            Ok(()) => {
                let s = self.snapshot(app.clock_now())?;
                Ok((s.token, s.generation))
            }
            Err(e) if !e.is_session_expired() && !snap.expired => {
                tracing::warn!(user_id = self.id(), error = %e, "proactive refresh failed; using the still-valid token");
                Ok((snap.token, snap.generation))
            }
            Err(e) => Err(e),
        }
    }

    /// Refresh the access token now (`POST /auth/session`), single-flight: concurrent
    /// callers share one request and its result.
    ///
    /// A 401 means the session is over: the user becomes `LoggedOut` (tokens cleared,
    /// profile kept), [`UserEvent::SessionExpired`] is sent and the error is
    /// [`ErrorKind::SessionExpired`](crate::ErrorKind::SessionExpired). An anonymous user,
    /// who can never log in again, is then removed (state `Removed`, a
    /// [`UserEvent::Removed`] follows). Any other failure changes nothing.
    pub async fn refresh_access_token(&self) -> Result<(), Error> {
        let app = self.app.clone();
        self.refresh_single_flight(&app, None).await
    }

    /// Refresh the custom user data: refreshes the access token, whose `user_data` claim
    /// [`custom_data`](Self::custom_data) then reads.
    pub async fn refresh_custom_data(&self) -> Result<(), Error> {
        self.refresh_access_token().await
    }

    /// Re-read the profile (`GET /auth/profile`, refresh-and-replay on 401) and persist it.
    pub async fn refresh_profile(&self) -> Result<UserProfile, Error> {
        let app = self.app.clone();
        let routes = app.routes().await?;
        let url = routes.profile();
        let resp = self
            .send_authenticated(|t| app.request(Method::GET, &url, Some(t), None))
            .await?;
        let resp = check_status(resp)?;
        let profile: ProfileResponse = parse_json(&resp, "profile")?;
        self.update(&app, |d| d.apply_profile(profile));
        Ok(self.profile())
    }

    /// The engine of the app this user belongs to (for provider crates' client APIs, such
    /// as user API keys).
    ///
    /// ```no_run
    /// # async fn demo(user: latchkey_session::User) -> Result<(), latchkey_session::Error> {
    /// let routes = user.app_core().routes().await?;
    /// println!("API keys live at {}", routes.api_keys());
    /// # Ok(()) }
    /// ```
    pub fn app_core(&self) -> AppCore {
        AppCore {
            inner: self.app.clone(),
        }
    }

    /// Link another identity to this user: `POST .../providers/{provider}/login?link=true`
    /// with the credential body plus `options.device`, authenticated with this user's
    /// **access** token (refresh-and-replay once on 401, as realm-web does). The new access
    /// token replaces the old one, the refresh token is kept, the profile is re-read
    /// (`GET /auth/profile`, now listing the new identity) and the user becomes current.
    ///
    /// Anonymous credentials are refused locally with an
    /// [`ErrorKind::Credential`](crate::ErrorKind::Credential) error (realm-core's
    /// "Cannot add anonymous credentials to an existing user"); a user who is not logged in
    /// gets [`ErrorKind::NotLoggedIn`](crate::ErrorKind::NotLoggedIn). A link response for
    /// another user id is a [`ErrorKind::Decode`](crate::ErrorKind::Decode) error.
    ///
    /// ```no_run
    /// # async fn demo(user: latchkey_session::User, email: &dyn latchkey_session::Credential)
    /// # -> Result<(), latchkey_session::Error> {
    /// user.link_credentials(email).await?;
    /// assert!(user.identities().len() >= 2);
    /// # Ok(()) }
    /// ```
    pub async fn link_credentials(&self, credential: &dyn Credential) -> Result<(), Error> {
        #[derive(Deserialize)]
        struct LinkResponse {
            access_token: String,
            #[serde(default)]
            user_id: Option<String>,
        }
        let provider = credential.provider_name().to_owned();
        if provider == ProviderType::Anonymous.as_str() {
            return Err(Error::credential(CredentialError::new(
                "cannot add anonymous credentials to an existing user",
            )));
        }
        if self.state() != UserState::LoggedIn {
            return Err(Error::not_logged_in(
                "the user must be logged in to link credentials",
            ));
        }
        let app = self.app.clone();
        let mut body = credential.login_body()?;
        body.insert(
            "options".into(),
            serde_json::json!({ "device": app.device_info() }),
        );
        let body = Value::Object(body);
        let routes = app.routes().await?;
        let url = routes.login(&provider, true);
        let resp = self
            .send_authenticated(|t| app.request(Method::POST, &url, Some(t), Some(body.clone())))
            .await?;
        let resp = check_status(resp)?;
        let link: LinkResponse = parse_json(&resp, "link response")?;
        if link.user_id.as_deref().is_some_and(|id| id != self.id()) {
            return Err(Error::decode("the link response is for another user", None));
        }
        let tokens = TokenSet::access_only(Secret::new(link.access_token), app.clock_now())?;
        let applied = self.update(&app, |d| {
            if d.state == UserState::LoggedIn {
                d.set_tokens(tokens);
                true
            } else {
                false
            }
        });
        if !applied {
            return Err(Error::not_logged_in("the user logged out while linking"));
        }
        self.refresh_profile().await?;
        let mut reg = app.registry();
        app.set_current(&mut reg, Some(self.id().to_owned()));
        Ok(())
    }

    /// Log out: the tokens are cleared locally first (state `LoggedOut`; anonymous users
    /// become `Removed`), the change is persisted, current moves to the next logged-in user,
    /// then the session is revoked with `DELETE /auth/session`.
    ///
    /// Returns `Ok(())` once the local logout is done, **even if the revoke request fails**
    /// (offline, server error): the failure is logged at `warn` level. Logging out a user who
    /// is not logged in is a no-op.
    ///
    /// In-memory state is authoritative: if the user store cannot record the logout (the
    /// tokens may then still be on disk), the user **is** logged out (or, if anonymous,
    /// removed) in memory, the session is still revoked, and the error is
    /// [`ErrorKind::Store`](crate::ErrorKind::Store).
    pub async fn log_out(&self) -> Result<(), Error> {
        let target = if self.is_anonymous() {
            UserState::Removed
        } else {
            UserState::LoggedOut
        };
        self.log_out_as(target).await
    }

    pub(crate) async fn log_out_as(&self, target: UserState) -> Result<(), Error> {
        let app = self.app.clone();
        let (refresh, saved) = self.update_persisted(&app, |d| {
            if d.state != UserState::LoggedIn {
                return None;
            }
            let r = d.refresh_token.take();
            d.clear_tokens();
            d.state = UserState::LoggedOut;
            r
        });
        let Some(refresh) = refresh else {
            return Ok(());
        };
        app.user_logged_out(self);
        app.emit(UserEvent::LoggedOut {
            user_id: self.id().to_owned(),
        });
        // What is left in the store: the record saved above, unless the user is removed,
        // when only removing the record counts.
        let stored = if target == UserState::Removed {
            app.remove_locally(self)
        } else {
            saved
        };
        let revoke = async {
            let routes = app.routes().await?;
            let req = app.request(Method::DELETE, &routes.session(), Some(&refresh), None)?;
            check_status(app.execute(req).await?)
        };
        if let Err(e) = revoke.await {
            tracing::warn!(user_id = self.id(), error = %e, "logged out locally, but revoking the session failed");
        }
        stored.map_err(Error::store_not_cleared)
    }

    /// Send an authenticated request to any endpoint of the app, with this user's access
    /// token (refreshed first when about to expire). A 401 answer triggers one refresh and
    /// one replay; the replay's answer is returned as is, whatever its status.
    ///
    /// A URI without scheme and host (e.g. `/api/client/v2.0/app/x/functions/call`) is
    /// resolved against the app's host from the location endpoint. `Authorization` is set,
    /// and `Accept: application/json` added if absent.
    ///
    /// ```no_run
    /// # async fn demo(user: latchkey_session::User) -> Result<(), latchkey_session::Error> {
    /// let req = http::Request::post("/api/client/v2.0/app/myapp-abcde/functions/call")
    ///     .header("content-type", "application/json")
    ///     .body(bytes::Bytes::from_static(br#"{"name":"sum","arguments":[1,2]}"#))
    ///     .expect("valid request");
    /// let resp = user.request(req).await?;
    /// println!("{}", resp.status());
    /// # Ok(()) }
    /// ```
    pub async fn request(&self, request: http::Request<Bytes>) -> Result<HttpResponse, Error> {
        let app = self.app.clone();
        let (parts, body) = request.into_parts();
        let uri = if parts.uri.authority().is_none() {
            let routes = app.routes().await?;
            let pq = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            format!("{}{}", routes.host(), pq)
                .parse::<http::Uri>()
                .map_err(|e| Error::invalid_config(format!("invalid request URI: {e}")))?
        } else {
            parts.uri.clone()
        };
        self.send_authenticated(|token| {
            let mut req = http::Request::new(body.clone());
            *req.method_mut() = parts.method.clone();
            *req.uri_mut() = uri.clone();
            *req.version_mut() = parts.version;
            *req.headers_mut() = parts.headers.clone();
            req.headers_mut()
                .insert(header::AUTHORIZATION, bearer_value(token)?);
            req.headers_mut()
                .entry(header::ACCEPT)
                .or_insert(HeaderValue::from_static("application/json"));
            Ok(req)
        })
        .await
    }

    /// Send a JSON request authenticated with this user's **refresh** token (the user
    /// API-key routes use it) and check its status. `Accept: application/json` is sent, and
    /// `Content-Type: application/json` with a body.
    ///
    /// A 401 means the refresh token is no longer valid, and is handled exactly like a
    /// refresh answered 401 (see [`refresh_access_token`](Self::refresh_access_token)): the
    /// tokens are cleared locally and the user becomes `LoggedOut` (profile kept; an
    /// anonymous user is then removed, as after a failed refresh), one
    /// [`UserEvent::SessionExpired`] is sent (no `LoggedOut` event), no
    /// `DELETE /auth/session` is sent, and the error is
    /// [`ErrorKind::SessionExpired`](crate::ErrorKind::SessionExpired). Other non-2xx
    /// answers are server errors. For provider crates' client APIs.
    ///
    /// ```no_run
    /// # async fn demo(user: latchkey_session::User, core: latchkey_session::AppCore) -> Result<(), latchkey_session::Error> {
    /// let url = core.routes().await?.api_keys();
    /// let resp = user.send_with_refresh_token(http::Method::GET, &url, None).await?;
    /// # let _ = resp; Ok(()) }
    /// ```
    pub async fn send_with_refresh_token(
        &self,
        method: Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<HttpResponse, Error> {
        let app = self.app.clone();
        let refresh = self.data().logged_in_refresh()?;
        let req = app.request(method, url, Some(&refresh), body)?;
        let resp = app.execute(req).await?;
        if resp.status() == UNAUTHORIZED {
            // The same rule as a refresh answered 401: the session is over. No revoke request
            // is sent (the server just rejected this token).
            return Err(self.session_rejected(&app, &resp, &refresh));
        }
        check_status(resp)
    }

    /// The 401 → refresh → replay-once rule for access-token requests.
    pub(crate) async fn send_authenticated(
        &self,
        build: impl Fn(&Secret) -> Result<HttpRequest, Error>,
    ) -> Result<HttpResponse, Error> {
        let app = self.app.clone();
        let (token, generation) = self.valid_access_secret().await?;
        let resp = app.execute(build(&token)?).await?;
        if resp.status() != UNAUTHORIZED {
            return Ok(resp);
        }
        tracing::debug!(
            user_id = self.id(),
            "401 on an access-token request; refreshing once"
        );
        self.refresh_single_flight(&app, Some(generation)).await?;
        let token = self.data().logged_in_access()?;
        app.execute(build(&token)?).await
    }

    /// Single-flight refresh. `observed` is the token generation the caller saw: if the
    /// token changed since, no refresh is needed.
    async fn refresh_single_flight(
        &self,
        app: &AppInner,
        observed: Option<u64>,
    ) -> Result<(), Error> {
        let seen = self.inner.attempts.load(Ordering::SeqCst);
        let mut gate = self.inner.gate.lock().await;
        if self.inner.attempts.load(Ordering::SeqCst) != seen
            && let Some(result) = gate.as_ref()
        {
            return result.clone();
        }
        if let Some(g) = observed
            && self.data().generation != g
        {
            return Ok(());
        }
        let result = self.do_refresh(app).await;
        *gate = Some(result.clone());
        self.inner.attempts.fetch_add(1, Ordering::SeqCst);
        result
    }

    async fn do_refresh(&self, app: &AppInner) -> Result<(), Error> {
        let refresh = self.data().logged_in_refresh()?;
        let routes = app.routes().await?;
        let req = app.request(Method::POST, &routes.session(), Some(&refresh), None)?;
        let resp = app.execute(req).await?;
        if resp.status() == UNAUTHORIZED {
            return Err(self.session_rejected(app, &resp, &refresh));
        }
        let resp = check_status(resp)?;
        let body: RefreshResponse = parse_json(&resp, "refresh response")?;
        let tokens = TokenSet::access_only(Secret::new(body.access_token), app.clock_now())?;
        let applied = self.update(app, |d| {
            if d.state == UserState::LoggedIn && d.refresh_token.as_ref() == Some(&refresh) {
                d.set_tokens(tokens);
                true
            } else {
                false
            }
        });
        if applied {
            app.emit(UserEvent::TokenRefreshed {
                user_id: self.id().to_owned(),
            });
        }
        Ok(())
    }

    /// `refresh` was answered 401 (`resp`): the session is over. Expires it and returns the
    /// session-expired error, caused by the server's answer.
    fn session_rejected(&self, app: &AppInner, resp: &HttpResponse, refresh: &Secret) -> Error {
        let cause = server_error(resp);
        self.expire_session(app, refresh);
        Error::session_expired(Some(cause))
    }

    fn expire_session(&self, app: &AppInner, refresh: &Secret) {
        // An anonymous user has no credential to log in with again: once its session is
        // over it can never come back, so it is removed (realm-core removes it too).
        let expired = self.update(app, |d| {
            if d.state == UserState::LoggedIn && d.refresh_token.as_ref() == Some(refresh) {
                let anonymous = d.is_anonymous();
                d.clear_tokens();
                d.state = UserState::LoggedOut;
                Some(anonymous)
            } else {
                None
            }
        });
        if let Some(anonymous) = expired {
            tracing::info!(
                user_id = self.id(),
                "refresh token rejected; the user is logged out"
            );
            app.user_logged_out(self);
            app.emit(UserEvent::SessionExpired {
                user_id: self.id().to_owned(),
            });
            if anonymous {
                // A store failure is already logged by `remove_locally`; the caller gets
                // the session-expired error either way.
                let _ = app.remove_locally(self);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millisecond_conversions_never_panic() {
        for ms in [
            i64::MIN,
            i64::MIN + 1,
            -1,
            0,
            1,
            1_700_000_000_000,
            i64::MAX,
        ] {
            if let Some(t) = from_ms(ms) {
                assert_eq!(to_ms(t), ms);
            }
        }
        assert_eq!(to_ms(UNIX_EPOCH), 0);
    }
}
