//! A self-hostable App Services-compatible authentication server.
//!
//! `latchkey-server` speaks the client auth wire protocol of the Realm SDKs
//! (realm-core based SDKs and realm-web) and of the `latchkey` Rust SDK:
//! location, login with `anon-user` and `local-userpass` (and linking),
//! registration, token refresh, logout, profile and user deletion. Tokens are
//! HS256 JWTs naming server-side sessions, so logout and deletion take effect
//! immediately. Storage is SQLite.
//!
//! Inside, three layers point down: `http` (axum routes, extractors, the one mapping
//! of domain errors to JSON error answers), `auth` (the domain: every rule), and
//! `providers` (one module per authentication provider, with its configuration
//! table, behind one registry), over the store and small leaf modules.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use latchkey_server::{Config, Server};
//!
//! let server = Server::start(Config::dev()).await?;
//! println!("listening on {}", server.url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod admin;
mod auth;
pub mod clock;
pub mod config;
pub mod error;
mod http;
/// Entry points for the fuzz targets (`fuzz/`) and their corpus replay test: the
/// decoders of bytes from clients that are not public otherwise. Not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    /// Decode a request body as every JSON client route does (Extended JSON, canonical or
    /// relaxed, into a plain JSON object). `Err` is the 4xx the route would answer.
    pub fn request_body(
        bytes: &[u8],
    ) -> Result<serde_json::Map<String, serde_json::Value>, crate::error::Error> {
        crate::http::json_object(bytes)
    }
}
mod ids;
pub mod keys;
mod outbound;
mod password;
mod providers;
mod settings;
mod strict;
#[doc(inline)]
pub use latchkey_store as store;
pub mod tokens;
mod webhooks;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use clock::Clock;
pub use config::{
    AnonUserConfig, ApiKeyConfig, AppConfig, Config, ConfigError, ConsoleConfig,
    CustomFunctionConfig, DatabaseOptions, HousekeepingConfig, HttpConfig, LocalUserpassConfig,
    MetricsConfig, ProvidersConfig,
};
pub use http::ApiError;
pub use providers::{CustomFunction, CustomFunctionFuture, FunctionIdentity};
pub use store::{SqliteStore, Store, StoreError};

use auth::state::{AppRuntime, ServerState};

/// How long [`RunningServer::shutdown`] waits for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// Any other startup failure.
    #[error("cannot start server: {0}")]
    Other(String),
    /// A signing-key reload was refused (the running keys are unchanged).
    #[error("{0}")]
    KeyReload(String),
}

/// Starts servers.
#[derive(Debug, Clone, Copy)]
pub struct Server;

/// Validate `config`, build the hosted apps and open (and migrate) the database:
/// what both the server and the admin CLI need before doing anything.
pub(crate) async fn open_apps_and_store(
    config: &Config,
) -> Result<(HashMap<String, Arc<AppRuntime>>, Arc<dyn Store>), ServerError> {
    let apps = open_apps(config)?;
    let store = open_store(config).await?;
    Ok((apps, store))
}

/// Open the configured database with its `[database_options]` and bring its schema up
/// to date (the migrations alone: `latchkey-server migrate`).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, ServerError> {
    config.validate()?;
    let store = store::open_with(
        config.database.expose(),
        &config.database_options.store_options(),
    )
    .await?;
    Ok(store)
}

/// Validate `config` and build the hosted apps.
fn open_apps(config: &Config) -> Result<HashMap<String, Arc<AppRuntime>>, ServerError> {
    config.validate()?;
    let mut apps = HashMap::new();
    for app in &config.apps {
        let runtime =
            AppRuntime::new(app.clone()).map_err(|e| ServerError::Other(e.to_string()))?;
        apps.insert(app.id.clone(), Arc::new(runtime));
    }
    Ok(apps)
}

impl Server {
    /// Validate `config`, open and migrate the database, bind the listen address and
    /// serve in a background tokio task, on the system clock.
    pub async fn start(config: Config) -> Result<RunningServer, ServerError> {
        Server::start_with_clock(config, Clock::system()).await
    }

    /// Like [`Server::start`], with a clock that tests can [`Clock::advance`].
    pub async fn start_with_clock(
        config: Config,
        clock: Clock,
    ) -> Result<RunningServer, ServerError> {
        let (apps, store) = open_apps_and_store(&config).await?;
        Server::serve(config, apps, store, clock).await
    }

    /// Like [`Server::start`], on `store` instead of the configured `database`
    /// (which is then not opened): any [`Store`] implementation. The store is migrated
    /// first, and closed by [`RunningServer::shutdown`].
    pub async fn start_with_store(
        config: Config,
        store: Arc<dyn Store>,
    ) -> Result<RunningServer, ServerError> {
        Server::start_with_store_and_clock(config, store, Clock::system()).await
    }

    /// [`Server::start_with_store`] with a clock that tests can [`Clock::advance`].
    pub async fn start_with_store_and_clock(
        config: Config,
        store: Arc<dyn Store>,
        clock: Clock,
    ) -> Result<RunningServer, ServerError> {
        let apps = open_apps(&config)?;
        store.migrate().await?;
        Server::serve(config, apps, store, clock).await
    }

    /// Bind the listen address and serve `apps` on `store` in a background task.
    async fn serve(
        config: Config,
        apps: HashMap<String, Arc<AppRuntime>>,
        store: Arc<dyn Store>,
        clock: Clock,
    ) -> Result<RunningServer, ServerError> {
        let listener = http::conn::bind(config.listen).map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;

        // Before serving: the emails of earlier releases take their canonical form.
        auth::userpass::canonicalize_stored_emails(store.as_ref()).await?;
        let state = Arc::new(ServerState::new(
            &config,
            apps,
            store.clone(),
            clock.clone(),
            local_addr,
        ));
        let url = match config.public_url_trimmed() {
            Some(u) => u.to_owned(),
            None if local_addr.ip().is_unspecified() => {
                let loopback = match local_addr {
                    SocketAddr::V4(_) => std::net::IpAddr::from([127, 0, 0, 1]),
                    SocketAddr::V6(_) => std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
                };
                format!("http://{}", SocketAddr::new(loopback, local_addr.port()))
            }
            None => format!("http://{local_addr}"),
        };

        let hasher = state.hasher.clone();
        tokio::spawn(async move { hasher.warm_up().await });
        let (stop_housekeeping, stopped) = tokio::sync::watch::channel(());
        let housekeeping =
            auth::housekeeping::spawn(state.clone(), config.housekeeping.clone(), stopped);
        let metrics = http::metrics::Metrics::start();
        // `/metrics` on its own address when `[metrics] listen` is set.
        let metrics_server = match config.metrics.listen.filter(|_| config.metrics.enabled) {
            Some(addr) => {
                let bind_error = |source| ServerError::Bind { addr, source };
                let listener = http::conn::bind(addr).map_err(bind_error)?;
                let bound = listener.local_addr().map_err(bind_error)?;
                let (tx, rx) = oneshot::channel::<()>();
                let router = http::metrics_route(&state, &metrics, true);
                let task =
                    tokio::spawn(http::conn::serve(listener, router, config.http.clone(), rx));
                tracing::info!(%bound, "metrics served");
                Some((bound, tx, task))
            }
            None => None,
        };
        let serve_metrics = config.metrics.enabled && metrics_server.is_none();
        let app = http::router(
            state.clone(),
            http::cors::CorsPolicy::new(&config.apps),
            metrics,
            serve_metrics,
        );
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(http::conn::serve(listener, app, config.http.clone(), rx));
        tracing::info!(%local_addr, apps = config.apps.len(), "latchkey-server started");
        Ok(RunningServer {
            state,
            local_addr,
            url,
            clock,
            store,
            shutdown: Some(tx),
            task: Some(task),
            stop_housekeeping,
            housekeeping,
            metrics_server,
        })
    }
}

/// A server serving in the background. Dropping it stops accepting connections;
/// [`RunningServer::shutdown`] also waits for in-flight requests.
///
/// The server caps its open connections and closes slow or idle ones (the `[http]`
/// table, [`HttpConfig`]).
pub struct RunningServer {
    state: auth::state::SharedState,
    local_addr: SocketAddr,
    url: String,
    clock: Clock,
    store: Arc<dyn Store>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    /// Stops the housekeeping task (also when dropped).
    stop_housekeeping: tokio::sync::watch::Sender<()>,
    housekeeping: Option<JoinHandle<()>>,
    /// The separate `/metrics` listener (`[metrics] listen`): its address, stop signal
    /// and task.
    metrics_server: Option<(SocketAddr, oneshot::Sender<()>, JoinHandle<()>)>,
}

impl fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningServer")
            .field("local_addr", &self.local_addr)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Reloads the signing keys of a [`RunningServer`] from the configuration file it was
/// started from ([`Config::source_file`]), as `POST /admin/v1/keys/reload` does; the
/// binary calls it on SIGHUP. Cheap to clone.
#[derive(Clone)]
pub struct KeyReloader(auth::state::SharedState);

impl fmt::Debug for KeyReloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyReloader")
            .field("config_file", &self.0.config_file)
            .finish()
    }
}

impl KeyReloader {
    /// Re-read every app's signing keys, checked as at start; on error nothing changes
    /// and the message names the app and `kid`, never a key.
    pub async fn reload(&self) -> Result<(), ServerError> {
        auth::key_admin::reload(&self.0)
            .await
            .map(drop)
            .map_err(|e| ServerError::KeyReload(e.to_string()))
    }
}

impl RunningServer {
    /// A handle that reloads this server's signing keys (SIGHUP in the binary).
    pub fn key_reloader(&self) -> KeyReloader {
        KeyReloader(self.state.clone())
    }

    /// The address the server listens on (with the real port when port 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The base URL clients should use: `public_url` when configured, else
    /// `http://IP:PORT` (a wildcard listen address is shown as loopback).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The address of the separate `/metrics` listener (`[metrics] listen`), if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(|(addr, _, _)| *addr)
    }

    /// The server's clock; [`Clock::advance`] on it expires tokens without sleeping.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The server's storage, for tests and tools (e.g. disabling a user or setting
    /// custom data until the admin API exists).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Stop accepting connections, let in-flight requests finish (up to 30 s),
    /// then close the database.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.stop_housekeeping.send_replace(());
        if let Some((_, stop, task)) = self.metrics_server.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
        if let Some(housekeeping) = self.housekeeping.take() {
            let _ = housekeeping.await;
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            tracing::warn!("in-flight requests did not finish in time; aborting");
            task.abort();
        }
        self.store.close().await;
        tracing::info!("latchkey-server stopped");
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.stop_housekeeping.send_replace(());
    }
}
