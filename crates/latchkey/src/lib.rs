//! User authentication for apps that speak the App Services client API (the API the Realm
//! SDKs speak), against `latchkey-server` or any compatible backend.
//!
//! `use latchkey::{App, Credentials};` is all you need:
//!
//! ```no_run
//! use latchkey::{App, Credentials};
//!
//! # #[cfg(feature = "anonymous")]
//! # async fn demo() -> Result<(), latchkey::Error> {
//! let app = App::builder("myapp-abcde").base_url("http://127.0.0.1:8080").build()?;
//! let user = app.log_in(Credentials::anonymous()).await?;
//! println!("logged in as {}", user.id());
//! let token = user.valid_access_token().await?;   // refreshed when about to expire
//! user.log_out().await?;
//! # let _ = token; Ok(()) }
//! ```
//!
//! Provider APIs hang off the app and the user, with nothing else to import:
//!
//! ```no_run
//! use latchkey::{App, Credentials};
//!
//! # #[cfg(all(feature = "anonymous", feature = "email-password", feature = "api-key"))]
//! # async fn demo(app: App) -> Result<(), latchkey::Error> {
//! let user = app.log_in(Credentials::anonymous()).await?;
//! app.email_password_auth().register_user("someone@example.com", "Pa55w0rd!").await?;
//! user.link_credentials(Credentials::email_password("someone@example.com", "Pa55w0rd!")).await?;
//! let key = user.api_keys().create("ci").await?;         // the secret is in key.key, once
//! let server = app.log_in(Credentials::api_key(key.key.unwrap().expose())).await?;
//! # let _ = server; Ok(()) }
//! ```
//!
//! # Cargo features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `anonymous` | yes (via `all-providers`) | [`Credentials::anonymous`] |
//! | `email-password` | yes (via `all-providers`) | [`Credentials::email_password`], [`App::email_password_auth`] |
//! | `api-key` | yes (via `all-providers`) | [`Credentials::api_key`], [`User::api_keys`] |
//! | `custom-jwt` | yes (via `all-providers`) | [`Credentials::jwt`] |
//! | `custom-function` | yes (via `all-providers`) | [`Credentials::function`] |
//! | `facebook` | yes (via `all-providers`) | [`Credentials::facebook`] |
//! | `google` | yes (via `all-providers`) | [`Credentials::google_id_token`], [`Credentials::google_auth_code`] |
//! | `apple` | yes (via `all-providers`) | [`Credentials::apple`] |
//! | `all-providers` | yes | every provider |
//! | `reqwest` | yes | the default transport (reqwest) |
//! | `hyper` | no | a transport over hyper-util's client (used when `reqwest` is off) |
//! | `rustls` / `native-tls` | `rustls` | TLS for the built-in transports |
//! | `file-store` | yes | `FileStore`, the default store, in the platform data directory |
//!
//! With `default-features = false`, pass your own transport with [`AppBuilder::transport`].
//!
//! # Behaviour
//!
//! Location is fetched lazily once per [`App`]; idempotent requests (`GET`, `PUT`) are
//! retried after transient failures with exponential backoff ([`RetryPolicy`]); access tokens are refreshed before they
//! expire and after a 401 (replayed once); refresh is single-flight per user; a rejected
//! refresh token logs the user out with [`UserEvent::SessionExpired`] and an error for which
//! [`Error::is_session_expired`] is true; users persist through the [`UserStore`] after
//! every change; secrets never appear in `Debug`, `Display`, logs or errors.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

pub use bytes;
pub use http;
/// Re-exported so that custom data types and function payloads need no extra dependency.
pub use serde_json;

pub use latchkey_protocol::{CredentialError, ErrorBody, LoginBody};
#[cfg(feature = "file-store")]
pub use latchkey_session::FileStore;
pub use latchkey_session::{
    Credential, Error, ErrorCode, ErrorKind, EventReceiver, MemoryStore, RetryPolicy, Secret,
    SharedTransport, StoreError, StoredUser, StoredUsers, UserEvent, UserIdentity, UserProfile,
    UserState, UserStore,
};
pub use latchkey_transport::{
    DEFAULT_MAX_RESPONSE_BYTES, HttpRequest, HttpResponse, HttpTransport, RequestOptions,
    TransportError, TransportErrorKind, transport_fn,
};

#[cfg(feature = "anonymous")]
pub use latchkey_anonymous::AnonymousCredential;
#[cfg(feature = "api-key")]
pub use latchkey_api_key::{ApiKey, ApiKeyCredential, ApiKeys};
#[cfg(feature = "apple")]
pub use latchkey_apple::AppleCredential;
#[cfg(feature = "custom-function")]
pub use latchkey_custom_function::FunctionCredential;
#[cfg(feature = "custom-jwt")]
pub use latchkey_custom_jwt::JwtCredential;
#[cfg(feature = "email-password")]
pub use latchkey_email_password::{EmailPasswordAuth, EmailPasswordCredential};
#[cfg(feature = "facebook")]
pub use latchkey_facebook::FacebookCredential;
#[cfg(feature = "google")]
pub use latchkey_google::GoogleCredential;
#[cfg(feature = "hyper")]
pub use latchkey_transport_hyper::HyperTransport;
#[cfg(feature = "reqwest")]
pub use latchkey_transport_reqwest::ReqwestTransport;

/// The engine crate, for advanced use (custom provider client APIs, clocks).
pub use latchkey_session as session;

use latchkey_session::{AppConfig, AppCore};

/// An App Services app: its users, their sessions and the client API.
///
/// Cheap to clone (an `Arc` inside). Build one with [`App::builder`].
///
/// ```no_run
/// use latchkey::{App, Credentials};
/// # #[cfg(feature = "email-password")]
/// # async fn demo() -> Result<(), latchkey::Error> {
/// let app = App::builder("myapp-abcde").base_url("http://127.0.0.1:8080").build()?;
/// let user = app.log_in(Credentials::email_password("someone@example.com", "Pa55w0rd!")).await?;
/// assert_eq!(app.current_user().as_ref(), Some(&user));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct App {
    core: AppCore,
}

impl App {
    /// Start building an app for `app_id` (the client app id, e.g. `myapp-abcde`).
    pub fn builder(app_id: impl Into<String>) -> AppBuilder {
        AppBuilder {
            app_id: app_id.into(),
            base_url: None,
            store: StoreChoice::Default,
            transport: None,
            request_timeout: None,
            local_app: None,
            retry: None,
        }
    }

    /// The app id.
    pub fn app_id(&self) -> &str {
        self.core.app_id()
    }

    /// The engine behind this app (for provider crates' client APIs).
    pub fn core(&self) -> &AppCore {
        &self.core
    }

    /// Log in with any credential: [`Credentials`] or a third-party [`Credential`].
    ///
    /// The user becomes the current user. An anonymous credential (with reuse, the default)
    /// returns the logged-in anonymous user without a network call.
    ///
    /// ```no_run
    /// # #[cfg(feature = "anonymous")]
    /// # async fn demo(app: latchkey::App) -> Result<(), latchkey::Error> {
    /// use latchkey::Credentials;
    /// let anon = app.log_in(Credentials::anonymous()).await?;
    /// let same = app.log_in(Credentials::anonymous()).await?;
    /// assert_eq!(anon, same);
    /// # Ok(()) }
    /// ```
    pub async fn log_in(&self, credential: impl Credential) -> Result<User, Error> {
        self.core.log_in(&credential).await.map(User)
    }

    /// The current user (logged in), if any.
    pub fn current_user(&self) -> Option<User> {
        self.core.current_user().map(User)
    }

    /// Every user on this device that is not removed (logged in or logged out).
    pub fn all_users(&self) -> Vec<User> {
        self.core.all_users().into_iter().map(User).collect()
    }

    /// The user on this device with id `user_id` (logged in or logged out), if any —
    /// realm's `app.allUsers[id]`.
    ///
    /// ```no_run
    /// # fn demo(app: latchkey::App) {
    /// if let Some(user) = app.user("6b0a...") {
    ///     println!("{:?}", user.state());
    /// }
    /// # }
    /// ```
    pub fn user(&self, user_id: &str) -> Option<User> {
        self.all_users().into_iter().find(|u| u.id() == user_id)
    }

    /// Make `user` the current user; it must be logged in.
    ///
    /// ```no_run
    /// # fn demo(app: latchkey::App, user: latchkey::User) -> Result<(), latchkey::Error> {
    /// app.switch_user(&user)?;
    /// # Ok(()) }
    /// ```
    pub fn switch_user(&self, user: &User) -> Result<(), Error> {
        self.core.switch_user(user)
    }

    /// Log `user` out (if logged in) and forget it on this device. The server account stays.
    ///
    /// If the user store cannot forget the user, the error is [`ErrorKind::Store`]: the
    /// user is removed in memory all the same, but its record (possibly with tokens) may
    /// still be stored.
    ///
    /// ```no_run
    /// # async fn demo(app: latchkey::App, user: latchkey::User) -> Result<(), latchkey::Error> {
    /// app.remove_user(&user).await?;
    /// assert!(app.all_users().iter().all(|u| u.id() != user.id()));
    /// # Ok(()) }
    /// ```
    pub async fn remove_user(&self, user: &User) -> Result<(), Error> {
        self.core.remove_user(user).await
    }

    /// Delete `user`'s account on the server, then forget it locally. It must be logged in.
    ///
    /// ```no_run
    /// # async fn demo(app: latchkey::App, user: latchkey::User) -> Result<(), latchkey::Error> {
    /// app.delete_user(&user).await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_user(&self, user: &User) -> Result<(), Error> {
        self.core.delete_user(user).await
    }

    /// Subscribe to [`UserEvent`]s.
    ///
    /// ```no_run
    /// # async fn demo(app: latchkey::App) {
    /// let mut events = app.subscribe();
    /// while let Ok(event) = events.recv().await {
    ///     println!("{event:?}");
    /// }
    /// # }
    /// ```
    pub fn subscribe(&self) -> EventReceiver {
        self.core.subscribe()
    }

    /// The email/password client API: registration, confirmation and password resets.
    ///
    /// ```no_run
    /// # async fn demo(app: latchkey::App) -> Result<(), latchkey::Error> {
    /// let auth = app.email_password_auth();
    /// auth.register_user("someone@example.com", "Pa55w0rd!").await?;
    /// auth.confirm_user("token", "tokenId").await?;
    /// auth.send_reset_password_email("someone@example.com").await?;
    /// auth.reset_password("token", "tokenId", "N3wPa55w0rd!").await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "email-password")]
    pub fn email_password_auth(&self) -> EmailPasswordAuth {
        EmailPasswordAuth::new(&self.core)
    }
}

#[derive(Debug)]
enum StoreChoice {
    Default,
    Memory,
    Custom(Arc<dyn UserStore>),
    #[cfg(feature = "file-store")]
    Dir(std::path::PathBuf),
}

/// Builder for [`App`]. Nothing touches the network; `build()` only reads the user store.
///
/// ```
/// use std::time::Duration;
/// use latchkey::{App, transport_fn, TransportError, TransportErrorKind};
///
/// let offline = transport_fn(|_req, _opts| async {
///     Err(TransportError::new(TransportErrorKind::Connect, "offline"))
/// });
/// let app = App::builder("myapp-abcde")
///     .base_url("http://127.0.0.1:8080")
///     .in_memory_store()
///     .transport(offline)
///     .request_timeout(Duration::from_secs(10))
///     .device_info("my-app", "1.2.3")
///     .build()?;
/// assert!(app.current_user().is_none());
/// assert!(App::builder("x").base_url("not a url").in_memory_store().build().is_err());
/// # Ok::<(), latchkey::Error>(())
/// ```
#[derive(Debug)]
pub struct AppBuilder {
    app_id: String,
    base_url: Option<String>,
    store: StoreChoice,
    transport: Option<SharedTransport>,
    request_timeout: Option<Duration>,
    local_app: Option<(String, String)>,
    retry: Option<RetryPolicy>,
}

impl AppBuilder {
    /// The server's base URL, e.g. `http://127.0.0.1:8080` (required).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Keep users in one file per app id under `dir` (a [`FileStore`]).
    #[cfg(feature = "file-store")]
    pub fn storage_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.store = StoreChoice::Dir(dir.into());
        self
    }

    /// Keep users in memory only.
    pub fn in_memory_store(mut self) -> Self {
        self.store = StoreChoice::Memory;
        self
    }

    /// Keep users in any [`UserStore`].
    pub fn user_store(mut self, store: impl UserStore + 'static) -> Self {
        self.store = StoreChoice::Custom(Arc::new(store));
        self
    }

    /// Send requests through `transport` (any [`HttpTransport`], including a
    /// [`SharedTransport`]) instead of the built-in one.
    pub fn transport(mut self, transport: impl HttpTransport + 'static) -> Self {
        self.transport = Some(SharedTransport::new(transport));
        self
    }

    /// Per-request timeout (default 60 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// How idempotent requests (`GET`, `PUT`) are retried after transient failures
    /// (default: [`RetryPolicy::default`], two retries with exponential backoff and jitter).
    /// Logins, registrations, resets, refreshes, logouts and deletions are never retried.
    ///
    /// ```
    /// use std::time::Duration;
    /// use latchkey::{App, RetryPolicy};
    /// # #[cfg(any(feature = "reqwest", feature = "hyper"))] {
    /// let app = App::builder("myapp-abcde")
    ///     .base_url("http://127.0.0.1:8080")
    ///     .in_memory_store()
    ///     .retry_policy(RetryPolicy::new().with_initial_backoff(Duration::from_millis(50)))
    ///     .build()?;
    /// # }
    /// # Ok::<(), latchkey::Error>(())
    /// ```
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Shorthand for a default [`RetryPolicy`] with at most `n` retries (`0` disables
    /// retries).
    ///
    /// ```
    /// # #[cfg(any(feature = "reqwest", feature = "hyper"))] {
    /// let app = latchkey::App::builder("myapp-abcde")
    ///     .base_url("http://127.0.0.1:8080")
    ///     .in_memory_store()
    ///     .max_retries(0)
    ///     .build()?;
    /// # }
    /// # Ok::<(), latchkey::Error>(())
    /// ```
    pub fn max_retries(mut self, n: u32) -> Self {
        self.retry = Some(self.retry.unwrap_or_default().with_max_retries(n));
        self
    }

    /// Name and version of your application, sent as device info at login.
    pub fn device_info(
        mut self,
        app_name: impl Into<String>,
        app_version: impl Into<String>,
    ) -> Self {
        self.local_app = Some((app_name.into(), app_version.into()));
        self
    }

    /// Build the app: validates the configuration and loads cached users from the store.
    /// No network.
    ///
    /// The default store is a [`FileStore`] in `<platform data dir>/latchkey` with the
    /// `file-store` feature (memory if there is no data directory), else memory. The default
    /// transport is reqwest (feature `reqwest`), else hyper (feature `hyper`); with neither,
    /// a transport must be given.
    pub fn build(self) -> Result<App, Error> {
        let base_url = self
            .base_url
            .ok_or_else(|| Error::invalid_config("a base URL is required"))?;
        let mut config =
            AppConfig::new(self.app_id, base_url).with_sdk_version(env!("CARGO_PKG_VERSION"));
        if let Some(t) = self.request_timeout {
            config = config.with_request_timeout(t);
        }
        if let Some((name, version)) = self.local_app {
            config = config.with_local_app(name, version);
        }
        if let Some(policy) = self.retry {
            config = config.with_retry_policy(policy);
        }
        let transport = match self.transport {
            Some(t) => t,
            None => default_transport()?,
        };
        let store: Arc<dyn UserStore> = match self.store {
            StoreChoice::Memory => Arc::new(MemoryStore::new()),
            StoreChoice::Custom(s) => s,
            #[cfg(feature = "file-store")]
            StoreChoice::Dir(dir) => Arc::new(FileStore::new(dir)),
            StoreChoice::Default => default_store(),
        };
        Ok(App {
            core: AppCore::new(config, transport, store)?,
        })
    }
}

#[allow(unreachable_code)]
fn default_transport() -> Result<SharedTransport, Error> {
    // `try_new`, not `new`: a TLS backend that cannot start is a typed error from
    // `build()`, never a panic.
    let tls_failed = |e: latchkey_transport::TransportError| {
        Error::invalid_config(format!("the HTTP transport could not start: {e}"))
    };
    #[cfg(feature = "reqwest")]
    return latchkey_transport_reqwest::ReqwestTransport::try_new()
        .map(SharedTransport::new)
        .map_err(tls_failed);
    #[cfg(all(feature = "hyper", not(feature = "reqwest")))]
    return latchkey_transport_hyper::HyperTransport::try_new()
        .map(SharedTransport::new)
        .map_err(tls_failed);
    #[cfg(not(any(feature = "reqwest", feature = "hyper")))]
    {
        let _ = tls_failed;
        Err(Error::invalid_config(
            "no transport: enable the `reqwest` or `hyper` feature, or call AppBuilder::transport",
        ))
    }
}

fn default_store() -> Arc<dyn UserStore> {
    #[cfg(feature = "file-store")]
    if let Some(dir) = dirs::data_dir() {
        return Arc::new(FileStore::new(dir.join("latchkey")));
    }
    Arc::new(MemoryStore::new())
}

/// Credentials to log in with. Constructors exist only for the providers whose features
/// are enabled; any third-party [`Credential`] works with [`Credentials::custom`] or
/// directly with [`App::log_in`].
///
/// `Debug` never shows secrets.
///
/// ```
/// use latchkey::{Credential, Credentials};
/// # #[cfg(all(feature = "anonymous", feature = "email-password"))] {
/// let c = Credentials::email_password("someone@example.com", "Pa55w0rd!");
/// assert_eq!(c.provider_name(), "local-userpass");
/// assert!(!format!("{c:?}").contains("Pa55w0rd!"));
/// assert!(Credentials::anonymous().reuse_anonymous_user());
/// assert!(!Credentials::anonymous_no_reuse().reuse_anonymous_user());
/// # }
/// ```
#[derive(Debug)]
pub struct Credentials(Box<dyn Credential>);

impl Credentials {
    /// Anonymous login that reuses a logged-in anonymous user (`anon-user`).
    #[cfg(feature = "anonymous")]
    pub fn anonymous() -> Self {
        Credentials(Box::new(AnonymousCredential::new()))
    }

    /// Anonymous login that always creates a new anonymous user.
    #[cfg(feature = "anonymous")]
    pub fn anonymous_no_reuse() -> Self {
        Credentials(Box::new(AnonymousCredential::no_reuse()))
    }

    /// Email/password login (`local-userpass`).
    #[cfg(feature = "email-password")]
    pub fn email_password(email: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials(Box::new(EmailPasswordCredential::new(email, password)))
    }

    /// User or server API key login (`api-key`), with the secret shown when the key was
    /// created.
    ///
    /// ```
    /// let c = latchkey::Credentials::api_key("my-secret-key");
    /// # use latchkey::Credential;
    /// assert_eq!(c.provider_name(), "api-key");
    /// assert!(!format!("{c:?}").contains("my-secret-key"));
    /// ```
    #[cfg(feature = "api-key")]
    pub fn api_key(key: impl Into<String>) -> Self {
        Credentials(Box::new(ApiKeyCredential::new(key)))
    }

    /// Custom JWT login (`custom-token`) with a token signed by your own identity system.
    ///
    /// ```
    /// # use latchkey::Credential;
    /// let c = latchkey::Credentials::jwt("eyJhbGciOi...");
    /// assert_eq!(c.provider_name(), "custom-token");
    /// ```
    #[cfg(feature = "custom-jwt")]
    pub fn jwt(token: impl Into<String>) -> Self {
        Credentials(Box::new(JwtCredential::new(token)))
    }

    /// Custom function login (`custom-function`): `payload` is the login body your
    /// authentication function receives. It must serialize to a JSON object; otherwise
    /// [`App::log_in`] fails with an [`ErrorKind::Credential`] error, before any request.
    ///
    /// ```
    /// # use latchkey::Credential;
    /// use serde_json::json;
    /// let c = latchkey::Credentials::function(json!({ "username": "ilovemongodb" }));
    /// assert_eq!(c.provider_name(), "custom-function");
    /// assert!(latchkey::Credentials::function(42).login_body().is_err());
    /// ```
    #[cfg(feature = "custom-function")]
    pub fn function(payload: impl serde::Serialize) -> Self {
        Credentials(Box::new(FunctionCredential::new(payload)))
    }

    /// Facebook login (`oauth2-facebook`) with a Facebook user access token.
    ///
    /// ```
    /// # use latchkey::Credential;
    /// let c = latchkey::Credentials::facebook("EAAB...");
    /// assert_eq!(c.provider_name(), "oauth2-facebook");
    /// ```
    #[cfg(feature = "facebook")]
    pub fn facebook(access_token: impl Into<String>) -> Self {
        Credentials(Box::new(FacebookCredential::new(access_token)))
    }

    /// Google login (`oauth2-google`) with a Google ID token.
    ///
    /// ```
    /// # use latchkey::Credential;
    /// let c = latchkey::Credentials::google_id_token("eyJhbGciOi...");
    /// assert_eq!(c.login_body().unwrap()["id_token"], "eyJhbGciOi...");
    /// ```
    #[cfg(feature = "google")]
    pub fn google_id_token(id_token: impl Into<String>) -> Self {
        Credentials(Box::new(GoogleCredential::id_token(id_token)))
    }

    /// Google login (`oauth2-google`) with a server auth code.
    ///
    /// ```
    /// # use latchkey::Credential;
    /// let c = latchkey::Credentials::google_auth_code("4/0Ad...");
    /// assert_eq!(c.login_body().unwrap()["authCode"], "4/0Ad...");
    /// ```
    #[cfg(feature = "google")]
    pub fn google_auth_code(code: impl Into<String>) -> Self {
        Credentials(Box::new(GoogleCredential::auth_code(code)))
    }

    /// Sign in with Apple (`oauth2-apple`) with the ID token Apple returned.
    ///
    /// ```
    /// # use latchkey::Credential;
    /// let c = latchkey::Credentials::apple("eyJraWQiOi...");
    /// assert_eq!(c.provider_name(), "oauth2-apple");
    /// ```
    #[cfg(feature = "apple")]
    pub fn apple(id_token: impl Into<String>) -> Self {
        Credentials(Box::new(AppleCredential::new(id_token)))
    }

    /// Wrap any credential.
    pub fn custom(credential: impl Credential + 'static) -> Self {
        Credentials(Box::new(credential))
    }
}

impl Credential for Credentials {
    fn provider_name(&self) -> &str {
        self.0.provider_name()
    }

    fn login_body(&self) -> Result<LoginBody, CredentialError> {
        self.0.login_body()
    }

    fn reuse_anonymous_user(&self) -> bool {
        self.0.reuse_anonymous_user()
    }
}

/// A user of an [`App`]: a cheap-clone handle; clones see the same state.
///
/// It dereferences to the engine's [`session::User`], so every method documented there
/// (`id()`, `state()`, `profile()`, `identities()`, `device_id()`, `access_token()`,
/// `valid_access_token()`, `custom_data()`, `refresh_custom_data()`, `refresh_profile()`,
/// `log_out()`, `request()`, ...) works directly on it; this type adds the provider
/// features' APIs, such as [`api_keys`](Self::api_keys), with nothing to import.
/// Secrets never appear in its `Debug` output.
///
/// ```no_run
/// # async fn demo(app: latchkey::App) -> Result<(), latchkey::Error> {
/// let user = app.current_user().expect("someone is logged in");
/// println!("{} ({:?}), {} identities", user.id(), user.state(), user.identities().len());
/// if let Some(email) = user.profile().email() {
///     println!("email: {email}");
/// }
/// let token = user.valid_access_token().await?;
/// # let _ = token; Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct User(latchkey_session::User);

impl User {
    /// Link another identity to this user (`POST .../login?link=true` with this user's
    /// access token). The refresh token is kept, the profile re-read and the user becomes
    /// current. Anonymous credentials are refused with an [`ErrorKind::Credential`] error,
    /// before any request.
    ///
    /// ```no_run
    /// # #[cfg(all(feature = "anonymous", feature = "email-password"))]
    /// # async fn demo(app: latchkey::App) -> Result<(), latchkey::Error> {
    /// use latchkey::Credentials;
    /// let user = app.log_in(Credentials::anonymous()).await?;
    /// app.email_password_auth().register_user("someone@example.com", "Pa55w0rd!").await?;
    /// user.link_credentials(Credentials::email_password("someone@example.com", "Pa55w0rd!")).await?;
    /// assert_eq!(user.identities().len(), 2);
    /// # Ok(()) }
    /// ```
    pub async fn link_credentials(&self, credential: impl Credential) -> Result<(), Error> {
        self.0.link_credentials(&credential).await
    }

    /// This user's API keys: create, fetch, list, enable, disable and delete (all with the
    /// refresh token; a `401` logs the user out).
    ///
    /// ```no_run
    /// # async fn demo(user: latchkey::User) -> Result<(), latchkey::Error> {
    /// let created = user.api_keys().create("ci").await?;
    /// let secret = created.key.as_ref().expect("shown once, on create").expose().to_owned();
    /// let all = user.api_keys().fetch_all().await?;
    /// user.api_keys().disable(&created.id).await?;
    /// user.api_keys().delete(&created.id).await?;
    /// # let _ = (secret, all); Ok(()) }
    /// ```
    #[cfg(feature = "api-key")]
    pub fn api_keys(&self) -> ApiKeys {
        ApiKeys::new(&self.0)
    }

    /// The engine's user handle.
    pub fn into_inner(self) -> latchkey_session::User {
        self.0
    }
}

impl Deref for User {
    type Target = latchkey_session::User;

    fn deref(&self) -> &latchkey_session::User {
        &self.0
    }
}

impl AsRef<latchkey_session::User> for User {
    fn as_ref(&self) -> &latchkey_session::User {
        &self.0
    }
}

impl From<latchkey_session::User> for User {
    fn from(user: latchkey_session::User) -> Self {
        User(user)
    }
}

impl From<User> for latchkey_session::User {
    fn from(user: User) -> Self {
        user.0
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}
