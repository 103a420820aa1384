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
//! # Cargo features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `anonymous` | yes (via `all-providers`) | [`Credentials::anonymous`] |
//! | `email-password` | yes (via `all-providers`) | [`Credentials::email_password`], [`App::email_password_auth`] |
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
//! Location is fetched lazily once per [`App`]; access tokens are refreshed before they
//! expire and after a 401 (replayed once); refresh is single-flight per user; a rejected
//! refresh token logs the user out with [`UserEvent::SessionExpired`] and an error for which
//! [`Error::is_session_expired`] is true; users persist through the [`UserStore`] after
//! every change; secrets never appear in `Debug`, `Display`, logs or errors.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::sync::Arc;
use std::time::Duration;

pub use bytes;
pub use http;

pub use latchkey_protocol::{CredentialError, ErrorBody, LoginBody};
#[cfg(feature = "file-store")]
pub use latchkey_session::FileStore;
pub use latchkey_session::{
    Credential, Error, ErrorCode, ErrorKind, EventReceiver, MemoryStore, SharedTransport,
    StoreError, StoredUser, StoredUsers, User, UserEvent, UserIdentity, UserProfile, UserState,
    UserStore,
};
pub use latchkey_transport::{
    HttpRequest, HttpResponse, HttpTransport, RequestOptions, TransportError, TransportErrorKind,
    transport_fn,
};

#[cfg(feature = "anonymous")]
pub use latchkey_anonymous::AnonymousCredential;
#[cfg(feature = "email-password")]
pub use latchkey_email_password::{EmailPasswordAuth, EmailPasswordCredential};

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
        self.core.log_in(&credential).await
    }

    /// The current user (logged in), if any.
    pub fn current_user(&self) -> Option<User> {
        self.core.current_user()
    }

    /// Every user on this device that is not removed (logged in or logged out).
    pub fn all_users(&self) -> Vec<User> {
        self.core.all_users()
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

    /// The email/password client API (registration, ...).
    ///
    /// ```no_run
    /// # async fn demo(app: latchkey::App) -> Result<(), latchkey::Error> {
    /// app.email_password_auth().register_user("someone@example.com", "Pa55w0rd!").await?;
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
    #[cfg(feature = "reqwest")]
    return Ok(SharedTransport::new(
        latchkey_transport_reqwest::ReqwestTransport::new(),
    ));
    #[cfg(feature = "hyper")]
    return Ok(SharedTransport::new(
        latchkey_transport_hyper::HyperTransport::new(),
    ));
    Err(Error::invalid_config(
        "no transport: enable the `reqwest` or `hyper` feature, or call AppBuilder::transport",
    ))
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
