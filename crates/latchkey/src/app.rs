//! [`App`] and its [`AppBuilder`].

use std::sync::Arc;
use std::time::Duration;

use latchkey_session::{AppConfig, AppCore, Error, RetryPolicy};

use crate::credentials::Credential;
#[cfg(feature = "email-password")]
use crate::email_password::EmailPasswordAuth;
use crate::events::EventReceiver;
#[cfg(feature = "file-store")]
use crate::store::SqliteStore;
use crate::store::{MemoryStore, UserStore};
use crate::transport::{HttpTransport, SharedTransport};
use crate::user::User;

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

    /// The engine behind this app: an implementation detail, for test harnesses and
    /// provider crates' client APIs. Not part of the documented API.
    #[doc(hidden)]
    pub fn core(&self) -> &AppCore {
        &self.core
    }

    /// Log in with any credential: [`Credentials`](crate::Credentials) or a third-party
    /// [`Credential`].
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
        self.core.log_in(&credential).await.map(User::from)
    }

    /// The current user (logged in), if any.
    pub fn current_user(&self) -> Option<User> {
        self.core.current_user().map(User::from)
    }

    /// Every user on this device that is not removed (logged in or logged out).
    pub fn all_users(&self) -> Vec<User> {
        self.core.all_users().into_iter().map(User::from).collect()
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

    /// Make `user` the current user; it must be logged in. The change is made at once in
    /// memory and written to the user store right after, never waiting on the async executor (a failure
    /// is logged and written again with the next change).
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
    /// If the user store cannot forget the user, the error is [`ErrorKind::Store`](crate::ErrorKind::Store): the
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

    /// Subscribe to [`UserEvent`](crate::events::UserEvent)s.
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
/// use latchkey::App;
/// use latchkey::transport::{transport_fn, TransportError, TransportErrorKind};
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

    /// Keep users in one SQLite database per app id under `dir` (a [`SqliteStore`]: safe
    /// for several processes and apps sharing `dir`, crash-safe, owner-only; a directory
    /// other users can write is refused). The JSON file that earlier versions kept there
    /// is migrated on first use.
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
    /// (default: [`RetryPolicy::default`], two retries with exponential backoff and jitter,
    /// honouring a server's `Retry-After` on 429 and 503 up to 10 s). Logins,
    /// registrations, resets, refreshes, logouts and deletions are never retried; their
    /// errors carry the server's [`Error::retry_after`].
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
    /// No network. The store is opened and read here, once, on the calling thread.
    ///
    /// The default store is a [`SqliteStore`] in `<platform data dir>/latchkey` with the
    /// `file-store` feature (memory if there is no data directory), else memory. The default
    /// transport is reqwest (feature `reqwest`), else hyper (feature `hyper`); with neither,
    /// a transport must be given.
    ///
    /// If the store reports its data as corrupt, the data is moved aside (kept for
    /// inspection; [`UserStore::set_aside`]) and the app starts with no users: a warning is
    /// logged and the first receiver from [`App::subscribe`] gets
    /// [`UserEvent::StoreRecovered`](crate::events::UserEvent::StoreRecovered). Any other
    /// store failure (an unreadable file, a directory other users can write) is an
    /// [`ErrorKind::Store`](crate::ErrorKind::Store) error.
    pub fn build(self) -> Result<App, Error> {
        let base_url = self
            .base_url
            .ok_or_else(|| Error::invalid_config("a base URL is required"))?;
        let mut config = AppConfig::new(self.app_id, base_url)
            .with_sdk_version(env!("CARGO_PKG_VERSION"))
            .with_corrupt_store_recovery(true);
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
            StoreChoice::Dir(dir) => Arc::new(SqliteStore::new(dir)),
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
        return Arc::new(SqliteStore::new(dir.join("latchkey")));
    }
    Arc::new(MemoryStore::new())
}
