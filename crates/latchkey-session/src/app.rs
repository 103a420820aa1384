//! The app engine: configuration, location, HTTP plumbing, login and the user registry.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use latchkey_protocol::routes::Routes;
use latchkey_protocol::{
    AccessTokenClaims, Credential, DeviceInfo, ErrorBody, LocationResponse, LoginResponse,
    ObjectId, ProfileResponse, RefreshTokenClaims,
};
use latchkey_transport::{HttpRequest, HttpResponse, RequestOptions, SharedTransport};
use serde_json::Value;
use tokio::sync::broadcast;
use tracing::Instrument;

use crate::clock::{SharedClock, SystemClock};
use crate::error::Error;
use crate::events::UserEvent;
use crate::retry::RetryPolicy;
use crate::store::{StoreError, StoredUser, UserStore};
use crate::user::{TokenSet, User, UserData, UserIdentity, UserInner, UserState};
use latchkey_protocol::Secret;

/// Default per-request timeout (realm-core's 60 s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest response body read from the auth routes (location, login, session,
/// profile, API keys, email/password, delete): 1 MiB. Other requests (for example
/// [`User::request`](crate::User::request) to a function) keep the transport's default,
/// [`latchkey_transport::DEFAULT_MAX_RESPONSE_BYTES`] (16 MiB). A longer body fails with a
/// non-transient [`ErrorKind::Transport`](crate::ErrorKind::Transport) error whose source
/// is a [`TransportErrorKind::Protocol`](latchkey_transport::TransportErrorKind::Protocol)
/// error.
pub const AUTH_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// The SDK name sent in `options.device.sdk`.
pub const SDK_NAME: &str = "latchkey";

/// Configuration of an [`AppCore`].
///
/// ```
/// use std::time::Duration;
/// use latchkey_session::AppConfig;
/// let c = AppConfig::new("myapp-abcde", "http://127.0.0.1:8080/")
///     .with_request_timeout(Duration::from_secs(5))
///     .with_local_app("demo", "1.0");
/// assert_eq!(c.app_id(), "myapp-abcde");
/// assert_eq!(c.base_url(), "http://127.0.0.1:8080");
/// ```
#[derive(Debug, Clone)]
pub struct AppConfig {
    app_id: String,
    base_url: String,
    request_timeout: Duration,
    app_name: Option<String>,
    app_version: Option<String>,
    sdk_version: String,
    clock: SharedClock,
    retry: RetryPolicy,
}

impl AppConfig {
    /// A configuration for `app_id` served at `base_url` (a trailing `/` is trimmed).
    pub fn new(app_id: impl Into<String>, base_url: impl Into<String>) -> Self {
        let mut base_url = base_url.into();
        while base_url.ends_with('/') {
            base_url.pop();
        }
        AppConfig {
            app_id: app_id.into(),
            base_url,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            app_name: None,
            app_version: None,
            sdk_version: env!("CARGO_PKG_VERSION").to_owned(),
            clock: Arc::new(SystemClock),
            retry: RetryPolicy::default(),
        }
    }

    /// Set the retry policy for idempotent requests (default: [`RetryPolicy::default`],
    /// two retries).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Set the per-request timeout (default 60 s).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Name and version of the local application, sent as device info at login.
    pub fn with_local_app(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.app_name = Some(name.into());
        self.app_version = Some(version.into());
        self
    }

    /// The SDK version reported at login (the facade sets its own).
    pub fn with_sdk_version(mut self, version: impl Into<String>) -> Self {
        self.sdk_version = version.into();
        self
    }

    /// The wall clock used for token expiry (tests inject a manual one).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The app id.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    fn validate(&self) -> Result<(), Error> {
        if self.app_id.trim().is_empty() {
            return Err(Error::invalid_config("the app id is empty"));
        }
        let uri: http::Uri = self
            .base_url
            .parse()
            .map_err(|e| Error::invalid_config(format!("invalid base URL: {e}")))?;
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => {
                return Err(Error::invalid_config(
                    "invalid base URL: the scheme must be http or https",
                ));
            }
        }
        if uri.authority().is_none() {
            return Err(Error::invalid_config("invalid base URL: no host"));
        }
        if uri.query().is_some() {
            return Err(Error::invalid_config(
                "invalid base URL: it must not have a query",
            ));
        }
        Ok(())
    }
}

pub(crate) struct AppInner {
    pub(crate) config: AppConfig,
    transport: SharedTransport,
    store: Arc<dyn UserStore>,
    events: broadcast::Sender<UserEvent>,
    location: tokio::sync::Mutex<Option<Routes>>,
    registry: Mutex<Registry>,
}

#[derive(Default)]
pub(crate) struct Registry {
    /// Non-removed users, oldest login first.
    users: Vec<Arc<UserInner>>,
    current: Option<String>,
}

impl Registry {
    /// The current user's entry, if any.
    fn current_user(&self) -> Option<&Arc<UserInner>> {
        let id = self.current.as_deref()?;
        self.users.iter().find(|u| u.id() == id)
    }
}

/// The engine behind `latchkey::App`: one app id, its users, their sessions.
///
/// Cheap to clone (an `Arc` inside). Building one reads the store and touches no network;
/// the location is fetched lazily before the first request.
///
/// ```
/// use std::sync::Arc;
/// use latchkey_session::{AppConfig, AppCore, MemoryStore};
/// use latchkey_transport::{transport_fn, SharedTransport, TransportError, TransportErrorKind};
///
/// let offline = SharedTransport::new(transport_fn(|_req, _opts| async {
///     Err(TransportError::new(TransportErrorKind::Connect, "offline"))
/// }));
/// let app = AppCore::new(
///     AppConfig::new("myapp-abcde", "http://127.0.0.1:8080"),
///     offline,
///     Arc::new(MemoryStore::new()),
/// )?;
/// assert!(app.current_user().is_none());
/// # Ok::<(), latchkey_session::Error>(())
/// ```
#[derive(Clone)]
pub struct AppCore {
    pub(crate) inner: Arc<AppInner>,
}

impl std::fmt::Debug for AppCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCore")
            .field("app_id", &self.inner.config.app_id)
            .field("base_url", &self.inner.config.base_url)
            .field("users", &self.all_users().len())
            .finish_non_exhaustive()
    }
}

impl AppCore {
    /// Build the engine and load its users from `store` (no network).
    ///
    /// Fails with [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) for a bad
    /// base URL and [`ErrorKind::Store`](crate::ErrorKind::Store) when the store cannot be read.
    pub fn new(
        config: AppConfig,
        transport: SharedTransport,
        store: Arc<dyn UserStore>,
    ) -> Result<Self, Error> {
        config.validate()?;
        let stored = store.load(&config.app_id)?;
        if let Some(owner) = stored.app_id.as_deref()
            && owner != config.app_id
        {
            return Err(Error::store(StoreError::new(format!(
                "the store returned the users of app id {owner:?}, not {:?}",
                config.app_id
            ))));
        }
        let (events, _) = broadcast::channel(256);
        let inner = Arc::new(AppInner {
            config,
            transport,
            store,
            events,
            location: tokio::sync::Mutex::new(None),
            registry: Mutex::new(Registry::default()),
        });
        {
            let now = inner.clock_now();
            let mut reg = inner.registry();
            for su in stored.users {
                if su.state == UserState::Removed {
                    continue;
                }
                reg.users
                    .push(UserInner::new(UserData::from_stored(su, now)));
            }
            // The persisted current user if it is logged in, else the first logged-in user.
            reg.current = stored
                .current_user_id
                .filter(|id| {
                    reg.users
                        .iter()
                        .any(|u| u.id() == id && u.state() == UserState::LoggedIn)
                })
                .or_else(|| first_logged_in(&reg.users, None));
        }
        Ok(AppCore { inner })
    }

    /// The configuration.
    pub fn config(&self) -> &AppConfig {
        &self.inner.config
    }

    /// The app id.
    pub fn app_id(&self) -> &str {
        &self.inner.config.app_id
    }

    /// Subscribe to user events (logins, refreshes, logouts, expiries, removals, switches).
    ///
    /// A slow receiver that falls more than 256 events behind gets
    /// [`broadcast::error::RecvError::Lagged`].
    pub fn subscribe(&self) -> crate::EventReceiver {
        self.inner.events.subscribe()
    }

    /// The current user: the last user logged in or switched to, while it is logged in.
    pub fn current_user(&self) -> Option<User> {
        let reg = self.inner.registry();
        reg.current_user()
            .map(|u| User::new(u.clone(), self.inner.clone()))
    }

    /// Every user known on this device that is not removed (logged in or logged out),
    /// oldest login first.
    pub fn all_users(&self) -> Vec<User> {
        let reg = self.inner.registry();
        reg.users
            .iter()
            .map(|u| User::new(u.clone(), self.inner.clone()))
            .collect()
    }

    /// Make `user` the current user. It must be logged in and belong to this app.
    pub fn switch_user(&self, user: &User) -> Result<(), Error> {
        let mut reg = self.inner.registry();
        if !reg.users.iter().any(|u| user.is(u)) {
            return Err(Error::user_not_found(
                "the user is not a user of this app, or was removed",
            ));
        }
        if user.state() != UserState::LoggedIn {
            return Err(Error::not_logged_in(
                "user is no longer valid or is logged out",
            ));
        }
        self.inner.set_current(&mut reg, Some(user.id().to_owned()));
        Ok(())
    }

    /// Log in with any credential.
    ///
    /// With an anonymous credential that allows reuse, a logged-in anonymous user is
    /// returned (and made current) without a network call. Otherwise: location (once),
    /// `POST .../login` with the credential body plus `options.device`, then
    /// `GET /auth/profile` with the new access token (a profile failure fails the login);
    /// then the user is created or updated, persisted, made current, and
    /// [`UserEvent::LoggedIn`] is sent.
    pub async fn log_in(&self, credential: &dyn Credential) -> Result<User, Error> {
        let provider = credential.provider_name().to_owned();
        if credential.reuse_anonymous_user()
            && let Some(user) = self.find_anonymous_user()
        {
            tracing::debug!(user_id = user.id(), "reusing the logged-in anonymous user");
            self.switch_user(&user)?;
            return Ok(user);
        }
        let mut body = credential.login_body()?;
        let device = self.inner.device_info();
        body.insert("options".into(), serde_json::json!({ "device": device }));
        let routes = self.inner.routes().await?;
        let req = self.inner.request(
            Method::POST,
            &routes.login(&provider, false),
            None,
            Some(Value::Object(body)),
        )?;
        let resp = self.inner.execute_checked(req).await?;
        let login: LoginResponse = parse_json(&resp, "login response")?;
        let refresh_token = login
            .refresh_token
            .ok_or_else(|| Error::decode("no refresh token in the login response", None))?;
        let tokens = TokenSet::from_login(
            Secret::new(login.access_token),
            Secret::new(refresh_token),
            self.inner.clock_now(),
        )?;
        let profile = self.inner.fetch_profile(&tokens.access).await?;
        let device_id = Some(login.device_id).filter(|d| is_device_id(d));

        let user = {
            let mut reg = self.inner.registry();
            let existing = reg.users.iter().find(|u| u.id() == login.user_id).cloned();
            let inner = match existing {
                Some(u) => u,
                None => {
                    let u = UserInner::new(UserData::new(login.user_id));
                    reg.users.push(u.clone());
                    u
                }
            };
            let user = User::new(inner, self.inner.clone());
            user.update(&self.inner, |d| {
                d.state = UserState::LoggedIn;
                d.set_tokens(tokens);
                d.apply_profile(profile);
                if device_id.is_some() {
                    d.device_id = device_id;
                }
                d.provider_type = Some(provider);
            });
            self.inner.emit(UserEvent::LoggedIn {
                user_id: user.id().to_owned(),
            });
            self.inner.set_current(&mut reg, Some(user.id().to_owned()));
            user
        };
        Ok(user)
    }

    /// Remove `user` from this device: logged in → logged out with a best-effort
    /// `DELETE /auth/session`; then forgotten locally (state `Removed`). The server account
    /// is untouched. Fails with `UserNotFound` if the user was already removed.
    ///
    /// If the user store cannot forget the user, the error is
    /// [`ErrorKind::Store`](crate::ErrorKind::Store): the user **is** removed in memory
    /// (and logged out, its session revoked as usual), but its record, possibly with
    /// tokens, may still be in the store.
    pub async fn remove_user(&self, user: &User) -> Result<(), Error> {
        self.ensure_not_removed(user)?;
        user.log_out_as(UserState::Removed).await?;
        // A logged-out user is removed locally without a request.
        self.inner
            .remove_locally(user)
            .map_err(Error::store_not_cleared)
    }

    /// Delete `user`'s account on the server (`DELETE /auth/delete`, with refresh-and-replay
    /// on 401), then remove it locally. The user must be logged in. When the request fails
    /// nothing changes locally. When the account is deleted but the user store cannot
    /// forget the user, the error is [`ErrorKind::Store`](crate::ErrorKind::Store) (the
    /// user is removed in memory).
    pub async fn delete_user(&self, user: &User) -> Result<(), Error> {
        self.ensure_not_removed(user)?;
        if user.state() != UserState::LoggedIn {
            return Err(Error::not_logged_in("user must be logged in to be deleted"));
        }
        let routes = self.inner.routes().await?;
        let url = routes.delete_user();
        let resp = user
            .send_authenticated(|token| self.inner.request(Method::DELETE, &url, Some(token), None))
            .await?;
        check_status(resp)?;
        user.update(&self.inner, |d| {
            d.clear_tokens();
            d.state = UserState::Removed;
        });
        self.inner
            .remove_locally(user)
            .map_err(Error::store_not_cleared)
    }

    /// The routes on the current host (fetching the location first if needed).
    ///
    /// For provider crates that add client APIs (email/password, API keys).
    pub async fn routes(&self) -> Result<Routes, Error> {
        self.inner.routes().await
    }

    /// Send an unauthenticated JSON request (`Accept: application/json`, and
    /// `Content-Type: application/json` when `body` is present) and check its status:
    /// a non-2xx answer is an [`ErrorKind::Server`](crate::ErrorKind::Server) error.
    ///
    /// For provider crates' client APIs (registration, confirmation, resets).
    pub async fn send_json(
        &self,
        method: Method,
        url: &str,
        body: Option<Value>,
    ) -> Result<HttpResponse, Error> {
        let req = self.inner.request(method, url, None, body)?;
        self.inner.execute_checked(req).await
    }

    /// A `UserNotFound` error unless `user` is still known on this device.
    fn ensure_not_removed(&self, user: &User) -> Result<(), Error> {
        if self.inner.registry().users.iter().any(|u| user.is(u)) {
            Ok(())
        } else {
            Err(Error::user_not_found("user has already been removed"))
        }
    }

    fn find_anonymous_user(&self) -> Option<User> {
        let reg = self.inner.registry();
        reg.current_user()
            .filter(|u| u.is_anonymous())
            .or_else(|| reg.users.iter().rev().find(|u| u.is_anonymous()))
            .map(|u| User::new(u.clone(), self.inner.clone()))
    }
}

/// The OS version reported as `options.device.platformVersion` (realm-core requires one):
/// the kernel release on Linux and Android, else `0.0.0` (realm-web's "unknown").
fn platform_version() -> String {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION
        .get_or_init(|| {
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty() && s.len() < 64)
                .unwrap_or_else(|| "0.0.0".to_owned())
        })
        .clone()
}

fn first_logged_in(users: &[Arc<UserInner>], except: Option<&str>) -> Option<String> {
    users
        .iter()
        .find(|u| u.state() == UserState::LoggedIn && Some(u.id()) != except)
        .map(|u| u.id().to_owned())
}

/// A 24-hex, non-zero ObjectId string.
pub(crate) fn is_device_id(s: &str) -> bool {
    s.parse::<ObjectId>().map(|o| !o.is_zero()).unwrap_or(false)
}

impl AppInner {
    pub(crate) fn device_info(&self) -> DeviceInfo {
        let cfg = &self.config;
        let device_id = {
            let reg = self.registry();
            let current = reg.current_user().and_then(|u| u.device_id());
            current.or_else(|| reg.users.iter().rev().find_map(|u| u.device_id()))
        };
        DeviceInfo {
            sdk: Some(SDK_NAME.to_owned()),
            sdk_version: Some(cfg.sdk_version.clone()),
            platform: Some(std::env::consts::OS.to_owned()),
            platform_version: Some(platform_version()),
            cpu_arch: Some(std::env::consts::ARCH.to_owned()),
            app_id: cfg.app_name.clone(),
            app_version: cfg.app_version.clone(),
            device_id,
        }
    }

    pub(crate) fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn clock_now(&self) -> std::time::SystemTime {
        self.config.clock.now()
    }

    pub(crate) fn emit(&self, event: UserEvent) {
        tracing::debug!(?event, "user event");
        // No receivers is fine.
        let _ = self.events.send(event);
    }

    /// Persist `user`. A failure is logged and returned; in-memory state stays
    /// authoritative either way.
    pub(crate) fn save(&self, user: &StoredUser) -> Result<(), StoreError> {
        let result = self.store.save_user(&self.config.app_id, user);
        if let Err(e) = &result {
            tracing::error!(error = %e, user_id = %user.id, "could not persist the user");
        }
        result
    }

    pub(crate) fn set_current(&self, reg: &mut Registry, id: Option<String>) {
        if reg.current == id {
            return;
        }
        reg.current = id.clone();
        if let Err(e) = self
            .store
            .set_current_user(&self.config.app_id, id.as_deref())
        {
            tracing::error!(error = %e, "could not persist the current user");
        }
        self.emit(UserEvent::Switched { user_id: id });
    }

    /// After `user` stopped being logged in: move "current" to the next logged-in user.
    pub(crate) fn user_logged_out(&self, user: &User) {
        let mut reg = self.registry();
        self.move_current_off(&mut reg, user.id());
    }

    /// If `user_id` is the current user, make the next logged-in user current instead.
    fn move_current_off(&self, reg: &mut Registry, user_id: &str) {
        if reg.current.as_deref() == Some(user_id) {
            let next = first_logged_in(&reg.users, Some(user_id));
            self.set_current(reg, next);
        }
    }

    /// Forget `user` locally: registry, store, current; emits `Removed`. The user is gone
    /// from memory whatever happens; the error is the store's, if removing it there failed
    /// (`Ok` when the user was already removed).
    pub(crate) fn remove_locally(&self, user: &User) -> Result<(), StoreError> {
        user.update_no_save(|d| {
            d.clear_tokens();
            d.state = UserState::Removed;
        });
        let mut reg = self.registry();
        let before = reg.users.len();
        reg.users.retain(|u| !user.is(u));
        if reg.users.len() == before {
            return Ok(());
        }
        let result = self.store.remove_user(&self.config.app_id, user.id());
        if let Err(e) = &result {
            tracing::error!(error = %e, user_id = user.id(), "could not remove the user from the store");
        }
        self.move_current_off(&mut reg, user.id());
        self.emit(UserEvent::Removed {
            user_id: user.id().to_owned(),
        });
        result
    }

    pub(crate) async fn routes(&self) -> Result<Routes, Error> {
        let mut loc = self.location.lock().await;
        if let Some(r) = loc.as_ref() {
            return Ok(r.clone());
        }
        let base = Routes::new(self.config.base_url.clone(), self.config.app_id.clone());
        let req = self.request(Method::GET, &base.location(), None, None)?;
        let resp = self.execute_checked(req).await?;
        let location: LocationResponse = parse_json(&resp, "location response")?;
        let host = if location.hostname.is_empty() {
            self.config.base_url.clone()
        } else {
            location.hostname
        };
        let routes = Routes::new(host, self.config.app_id.clone());
        tracing::debug!(host = routes.host(), "location resolved");
        *loc = Some(routes.clone());
        Ok(routes)
    }

    /// Build a request with realm-web's headers.
    pub(crate) fn request(
        &self,
        method: Method,
        url: &str,
        bearer: Option<&Secret>,
        body: Option<Value>,
    ) -> Result<HttpRequest, Error> {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(url)
            .header(header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            builder = builder.header(header::AUTHORIZATION, bearer_value(token)?);
        }
        let body = match body {
            Some(v) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(&v).map_err(|e| {
                    Error::invalid_config(format!("cannot serialize the request body: {e}"))
                })?)
            }
            None => Bytes::new(),
        };
        builder
            .body(body)
            .map_err(|e| Error::invalid_config(format!("invalid request: {e}")))
    }

    /// Send through the transport with the configured timeout, retrying idempotent
    /// requests after transient failures (see [`RetryPolicy`]). Any status is `Ok`.
    ///
    /// One `latchkey.request` span per call, with the method, the route template (never a
    /// token: tokens are only ever in headers), the final status and the attempt count.
    pub(crate) async fn execute(&self, req: HttpRequest) -> Result<HttpResponse, Error> {
        let span = tracing::debug_span!(
            "latchkey.request",
            method = %req.method(),
            route = %route_template(req.uri().path()),
            status = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        self.execute_with_retries(req).instrument(span).await
    }

    async fn execute_with_retries(&self, req: HttpRequest) -> Result<HttpResponse, Error> {
        let policy = self.config.retry;
        let idempotent = RetryPolicy::is_idempotent(req.method());
        let max_retries = if idempotent { policy.max_retries() } else { 0 };
        let mut attempt = 0u32;
        loop {
            let result = self
                .send_once(clone_request(&req), attempt, idempotent)
                .await;
            let retryable = match &result {
                Ok(resp) => RetryPolicy::is_transient_status(resp.status()),
                Err(e) => e.is_transient(),
            };
            if !retryable || attempt >= max_retries {
                let span = tracing::Span::current();
                span.record("attempts", attempt + 1);
                match &result {
                    Ok(resp) => {
                        span.record("status", resp.status().as_u16());
                        tracing::debug!("response");
                    }
                    Err(e) => tracing::debug!(error = %e, "no response"),
                }
                return result;
            }
            attempt += 1;
            let delay = policy.backoff(attempt);
            match &result {
                Ok(resp) => tracing::debug!(
                    status = resp.status().as_u16(),
                    ?delay,
                    attempt,
                    "transient status; retrying"
                ),
                Err(e) => {
                    tracing::debug!(error = %e, ?delay, attempt, "transient failure; retrying")
                }
            }
            tokio::time::sleep(delay).await;
        }
    }

    async fn send_once(
        &self,
        req: HttpRequest,
        attempt: u32,
        idempotent: bool,
    ) -> Result<HttpResponse, Error> {
        let timeout = self.config.request_timeout;
        let opts = RequestOptions::new()
            .with_timeout(timeout)
            .with_idempotent(idempotent)
            .with_attempt(attempt)
            .with_max_response_bytes(max_response_bytes(req.uri().path()));
        let is_location = req.uri().path().ends_with("/location");
        let fut = self.transport.send(req, &opts);
        let result = match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "transport error");
                Err(e)
            }
            Err(_) => {
                tracing::debug!("request timed out");
                Err(latchkey_transport::TransportError::new(
                    latchkey_transport::TransportErrorKind::Timeout,
                    format!("no response within {timeout:?}"),
                ))
            }
        };
        result.map_err(|e| {
            if e.is_connect() && !is_location {
                // The host may have moved: look the location up again next time.
                if let Ok(mut loc) = self.location.try_lock() {
                    *loc = None;
                }
            }
            Error::transport(e)
        })
    }

    pub(crate) async fn execute_checked(&self, req: HttpRequest) -> Result<HttpResponse, Error> {
        check_status(self.execute(req).await?)
    }

    pub(crate) async fn fetch_profile(&self, access: &Secret) -> Result<ProfileResponse, Error> {
        let routes = self.routes().await?;
        let req = self.request(Method::GET, &routes.profile(), Some(access), None)?;
        let resp = self.execute_checked(req).await?;
        parse_json(&resp, "profile")
    }
}

fn clone_request(req: &HttpRequest) -> HttpRequest {
    let mut r = http::Request::new(req.body().clone());
    *r.method_mut() = req.method().clone();
    *r.uri_mut() = req.uri().clone();
    *r.version_mut() = req.version();
    *r.headers_mut() = req.headers().clone();
    r
}

/// The response-body limit for a request to `path`: [`AUTH_MAX_RESPONSE_BYTES`] on the auth
/// routes, the transport default elsewhere.
pub(crate) fn max_response_bytes(path: &str) -> usize {
    match route_template(path) {
        "other" | FUNCTIONS_CALL => latchkey_transport::DEFAULT_MAX_RESPONSE_BYTES,
        _ => AUTH_MAX_RESPONSE_BYTES,
    }
}

const FUNCTIONS_CALL: &str = "/api/client/v2.0/app/{app_id}/functions/call";

/// The route template of a client API path, for logs: `/api/client/v2.0/auth/api_keys/{key_id}`
/// rather than the real id. Paths outside the client API are reported as `other`.
pub(crate) fn route_template(path: &str) -> &'static str {
    use latchkey_protocol::routes::paths;
    let Some(i) = path.find(latchkey_protocol::routes::API_PREFIX) else {
        return "other";
    };
    let rest = &path[i + latchkey_protocol::routes::API_PREFIX.len()..];
    let segs: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["app", _, "location"] => paths::LOCATION,
        ["app", _, "auth", "providers", _, "login"] => paths::LOGIN,
        ["app", _, "auth", "providers", "local-userpass", "register"] => paths::REGISTER,
        ["app", _, "auth", "providers", "local-userpass", "confirm"] => paths::CONFIRM,
        [
            "app",
            _,
            "auth",
            "providers",
            "local-userpass",
            "confirm",
            "send",
        ] => paths::CONFIRM_SEND,
        [
            "app",
            _,
            "auth",
            "providers",
            "local-userpass",
            "confirm",
            "call",
        ] => paths::CONFIRM_CALL,
        ["app", _, "auth", "providers", "local-userpass", "reset"] => paths::RESET,
        [
            "app",
            _,
            "auth",
            "providers",
            "local-userpass",
            "reset",
            "send",
        ] => paths::RESET_SEND,
        [
            "app",
            _,
            "auth",
            "providers",
            "local-userpass",
            "reset",
            "call",
        ] => paths::RESET_CALL,
        ["app", _, "functions", "call"] => FUNCTIONS_CALL,
        ["auth", "session"] => paths::SESSION,
        ["auth", "profile"] => paths::PROFILE,
        ["auth", "delete"] => paths::DELETE_USER,
        ["auth", "api_keys"] => paths::API_KEYS,
        ["auth", "api_keys", _] => paths::API_KEY,
        ["auth", "api_keys", _, "enable"] => paths::API_KEY_ENABLE,
        ["auth", "api_keys", _, "disable"] => paths::API_KEY_DISABLE,
        _ => "other",
    }
}

pub(crate) fn bearer_value(token: &Secret) -> Result<HeaderValue, Error> {
    let mut v = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| Error::decode("the token contains characters invalid in a header", None))?;
    v.set_sensitive(true);
    Ok(v)
}

/// `Ok` for 2xx, else a server error with the parsed JSON error body.
pub(crate) fn check_status(resp: HttpResponse) -> Result<HttpResponse, Error> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    Err(server_error(&resp))
}

pub(crate) fn server_error(resp: &HttpResponse) -> Error {
    let status = resp.status();
    let body = if is_json(resp) {
        serde_json::from_slice::<ErrorBody>(resp.body()).ok()
    } else {
        None
    };
    let raw = if body.is_none() && !resp.body().is_empty() {
        Some(String::from_utf8_lossy(resp.body()).into_owned())
    } else {
        None
    };
    Error::server(status, body, raw.as_deref())
}

fn is_json(resp: &HttpResponse) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        })
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    resp: &HttpResponse,
    what: &str,
) -> Result<T, Error> {
    serde_json::from_slice(resp.body())
        .map_err(|e| Error::decode(format!("cannot decode the {what}: {e}"), Some(resp.body())))
}

pub(crate) fn validate_refresh_token(token: &Secret) -> Result<(), Error> {
    RefreshTokenClaims::decode_unverified(token.expose())
        .map(|_| ())
        .map_err(|e| Error::decode(format!("received a malformed refresh token: {e}"), None))
}

pub(crate) fn decode_access(token: &Secret) -> Result<AccessTokenClaims, Error> {
    AccessTokenClaims::decode_unverified(token.expose())
        .map_err(|e| Error::decode(format!("received a malformed access token: {e}"), None))
}

/// Status used to detect an expired session.
pub(crate) const UNAUTHORIZED: StatusCode = StatusCode::UNAUTHORIZED;

/// Identities from a profile.
pub(crate) fn identities_of(p: &ProfileResponse) -> Vec<UserIdentity> {
    p.identities
        .iter()
        .map(|i| UserIdentity {
            id: i.id.clone(),
            provider_type: i.provider_type.clone(),
        })
        .collect()
}
