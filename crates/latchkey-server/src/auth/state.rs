//! The server core: the hosted apps and the services every rule uses (store,
//! password hasher, clock, outbound clients, throttle, mailer, key caches).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use latchkey_protocol::Secret;

use super::mail::Mailer;
use super::throttle::Throttle;
use crate::clock::Clock;
use crate::config::{AppConfig, Config};
use crate::error::Error;
use crate::ids::derived_object_id;
use crate::password::PasswordHasher;
use crate::providers::jwks::JwksCache;
use crate::providers::{self, ProviderContext, ProviderRef};
use crate::store::Store;
use crate::tokens::{KeyError, KeyRing};

/// One hosted app, ready to serve.
#[derive(Debug)]
pub(crate) struct AppRuntime {
    pub(crate) config: AppConfig,
    /// The current key ring: replaced whole by a reload
    /// ([`super::key_admin::reload`]); read once per use with [`AppRuntime::keys`].
    keys: RwLock<Arc<KeyRing>>,
}

impl AppRuntime {
    pub(crate) fn new(config: AppConfig) -> Result<Self, KeyError> {
        let keys = RwLock::new(Arc::new(KeyRing::load(&config)?));
        Ok(AppRuntime { config, keys })
    }

    /// The current key ring. A caller that signs and then verifies keeps this one
    /// `Arc`, so a reload in between cannot split the two.
    pub(crate) fn keys(&self) -> Arc<KeyRing> {
        // A panic while holding the lock cannot leave a half-written ring (the write is
        // one pointer swap), so a poisoned lock is still good.
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Make `ring` the current key ring.
    pub(crate) fn set_keys(&self, ring: KeyRing) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(ring);
    }

    pub(crate) fn id(&self) -> &str {
        &self.config.id
    }

    /// The provider named `name` if it is implemented and enabled for this app, else
    /// [`Error::ProviderNotFound`].
    pub(crate) fn provider(&self, name: &str) -> Result<ProviderRef, Error> {
        providers::find(name)
            .filter(|p| p.enabled(&self.config.providers))
            .ok_or_else(|| Error::ProviderNotFound(name.to_owned()))
    }

    /// A stable id for this app's configuration of `provider` (a profile's `provider_id`).
    pub(crate) fn provider_config_id(&self, provider_type: &str) -> String {
        derived_object_id(&[&self.config.id, provider_type])
    }
}

/// Everything the rules need.
#[derive(Debug)]
pub(crate) struct ServerState {
    pub(crate) apps: HashMap<String, Arc<AppRuntime>>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) hasher: PasswordHasher,
    pub(crate) clock: Clock,
    /// The configured `public_url` without trailing slashes.
    pub(crate) public_url: Option<String>,
    /// The address the server listens on.
    pub(crate) local_addr: SocketAddr,
    /// Client for calls to identity providers (JWKS, token endpoints, Facebook
    /// Graph). Every call must also set its own per-request timeout.
    pub(crate) http: reqwest::Client,
    /// Client for webhooks: no redirects (see [`crate::webhooks`]).
    pub(crate) webhook_http: reqwest::Client,
    /// Bearer token of the admin API (`None`: the admin API is disabled).
    pub(crate) admin_token: Option<Secret>,
    /// Failed-login and message limiter.
    pub(crate) throttle: Throttle,
    /// Outbox and SMTP.
    pub(crate) mailer: Mailer,
    /// Cached JSON Web Key Sets of identity providers, by URL.
    pub(crate) jwks: JwksCache,
    /// How long a console sign-in lasts; `None`: the console is off.
    pub(crate) console_ttl_secs: Option<u64>,
    /// The configuration file the server was started from (`serve --config`): key
    /// reloads and rotations read and edit it. `None`: keys cannot be reloaded.
    pub(crate) config_file: Option<PathBuf>,
    /// Held by a key reload or rotation, so that two never interleave.
    pub(crate) key_admin: tokio::sync::Mutex<()>,
}

/// The core as shared by request handlers.
pub(crate) type SharedState = Arc<ServerState>;

impl ServerState {
    pub(crate) fn new(
        config: &Config,
        apps: HashMap<String, Arc<AppRuntime>>,
        store: Arc<dyn Store>,
        clock: Clock,
        local_addr: SocketAddr,
    ) -> Self {
        ServerState {
            apps,
            store,
            hasher: PasswordHasher::for_this_machine(),
            clock,
            public_url: config.public_url_trimmed().map(str::to_owned),
            local_addr,
            http: crate::outbound::client(),
            webhook_http: crate::outbound::webhook_client(),
            admin_token: config.admin_token.clone(),
            throttle: Throttle::new(config),
            mailer: Mailer::new(config),
            jwks: JwksCache::default(),
            console_ttl_secs: (config.console.enabled && config.admin_token.is_some())
                .then_some(config.console.session_ttl_secs),
            config_file: config.source_file.clone(),
            key_admin: tokio::sync::Mutex::new(()),
        }
    }

    /// The app with this client app id, or [`Error::AppNotFound`].
    pub(crate) fn app(&self, app_id: &str) -> Result<Arc<AppRuntime>, Error> {
        self.apps
            .get(app_id)
            .cloned()
            .ok_or_else(|| Error::AppNotFound(app_id.to_owned()))
    }

    /// What a provider of `app` may use.
    pub(crate) fn provider_context<'a>(&'a self, app: &'a AppRuntime) -> ProviderContext<'a> {
        ProviderContext {
            app_id: app.id(),
            store: self.store.as_ref(),
            hasher: &self.hasher,
            clock: &self.clock,
            http: &self.http,
            webhook_http: &self.webhook_http,
            jwks: &self.jwks,
        }
    }
}
