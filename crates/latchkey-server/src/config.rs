//! Server configuration, read from TOML.
//!
//! ```toml
//! listen = "127.0.0.1:8080"          # port 0 picks any free port
//! database = "sqlite://latchkey.db"  # or "sqlite::memory:", or "postgres://user@host:5432/db"
//! public_url = "https://auth.example.org"   # optional
//! admin_token = "a-long-random-admin-token"  # optional
//!
//! [database_options]               # optional; see DatabaseOptions
//! max_connections = 10
//! password_env = "LATCHKEY_DATABASE_PASSWORD"
//!
//! [[apps]]
//! id = "myapp-abcde"
//! signing_secret = "at least 32 bytes of random secret material"
//! access_token_ttl_secs = 1800       # default
//! refresh_token_ttl_secs = 5184000   # default (60 days)
//!
//! [apps.providers.anon-user]
//! enabled = true
//!
//! [apps.providers.local-userpass]
//! enabled = true
//! auto_confirm = false
//! ```
//!
//! A key or table that no configuration type reads is refused at start, naming the
//! key, its line and the nearest valid key ([`UnknownKey`]); every value that is read
//! is validated.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use latchkey_protocol::Secret;
use serde::{Deserialize, Serialize};

use crate::ids::random_secret;
use crate::settings::{expose_optional_secret, expose_secret, yes};

// Each provider's table is defined next to the provider's code.
pub(crate) mod edge;
pub(crate) mod keys;
pub(crate) mod ops;

pub use crate::providers::{
    APPLE_AUTHORIZATION_URL, APPLE_ISSUER, APPLE_JWKS_URL, APPLE_TOKEN_URL, AnonUserConfig,
    ApiKeyConfig, AppleConfig, AudienceMatch, CustomFunctionConfig, CustomTokenConfig,
    DEFAULT_LEEWAY_SECS, FACEBOOK_AUTHORIZATION_URL, FACEBOOK_GRAPH_URL, FacebookConfig,
    GOOGLE_AUTHORIZATION_URL, GOOGLE_JWKS_URL, GOOGLE_TOKEN_URL, GoogleConfig, LocalUserpassConfig,
    MAX_CUSTOM_TOKEN_KEYS, MAX_FIELD_NAME_LEN, MAX_HS256_KEY_LEN, MAX_LEEWAY_SECS,
    MIN_HS256_KEY_LEN, MetadataField, ProvidersConfig, SigningAlgorithm,
};
pub use crate::settings::ConfigError;
pub use crate::settings::UnknownKey;
pub use edge::HttpConfig;
pub use keys::{MAX_SIGNING_KEYS, SigningKeyConfig, TokenAlgorithm};
pub use latchkey_protocol::{
    MAX_ACCESS_TOKEN_LIFETIME_SECS, MAX_REFRESH_TOKEN_LIFETIME_SECS,
    MIN_REFRESH_TOKEN_LIFETIME_SECS,
};
pub use ops::{ConsoleConfig, MetricsConfig};

/// Minimum length of an app's `signing_secret`, in bytes.
pub const MIN_SIGNING_SECRET_LEN: usize = 32;
/// Minimum length of `admin_token`, in bytes.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;
/// Default access-token lifetime (30 minutes, as App Services).
pub const DEFAULT_ACCESS_TOKEN_TTL_SECS: u64 = 1800;
/// Default refresh-token lifetime (60 days, as App Services).
pub const DEFAULT_REFRESH_TOKEN_TTL_SECS: u64 = 5_184_000;
/// Largest accepted housekeeping duration (10 years). Token lifetimes have their own
/// bounds: [`MAX_ACCESS_TOKEN_LIFETIME_SECS`], [`MIN_REFRESH_TOKEN_LIFETIME_SECS`] and
/// [`MAX_REFRESH_TOKEN_LIFETIME_SECS`].
pub const MAX_TOKEN_TTL_SECS: u64 = 10 * 365 * 24 * 3600;
/// Largest accepted database timeout (one hour).
pub const MAX_DATABASE_TIMEOUT_SECS: u64 = 3600;
/// The app id of [`Config::dev`].
pub const DEV_APP_ID: &str = "latchkey-dev";

/// The whole server configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on, e.g. `127.0.0.1:8080`; port 0 picks a free port.
    pub listen: SocketAddr,
    /// `sqlite://PATH` (the file is created when missing), `sqlite::memory:`, or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=...]` (several nodes may
    /// share one PostgreSQL database). A [`Secret`]: the URL may hold a password, so it
    /// never shows in `Debug` or logs.
    #[serde(serialize_with = "expose_secret")]
    pub database: Secret,
    /// `[database_options]`: pool size, timeouts, the PostgreSQL password's variable.
    #[serde(default, skip_serializing_if = "DatabaseOptions::is_default")]
    pub database_options: DatabaseOptions,
    /// The externally visible base URL (`http(s)://host[:port][/prefix]`), returned as
    /// `hostname` by the location route. Defaults to `http://<listen address>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Bearer token of the admin API (`/admin/v1`); without it the admin API is off.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose_optional_secret"
    )]
    pub admin_token: Option<Secret>,
    /// The apps this server hosts.
    #[serde(default)]
    pub apps: Vec<AppConfig>,
    /// `[smtp]`: send confirmation / reset emails over SMTP too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpConfig>,
    /// Keep every confirmation / reset message in the outbox table (readable via the
    /// admin API; holds plaintext tokens, meant for operators and tests). Default true.
    #[serde(default = "yes")]
    pub outbox: bool,
    /// `[throttle]`: failed-login limits.
    #[serde(default)]
    pub throttle: ThrottleConfig,
    /// Take the client IP from the last `X-Forwarded-For` entry (only behind a
    /// trusted reverse proxy). Default false: the socket address.
    #[serde(default)]
    pub trust_forwarded_for: bool,
    /// `[housekeeping]`: the background purge of expired sessions, stale throttle
    /// buckets and inactive anonymous users.
    #[serde(default)]
    pub housekeeping: HousekeepingConfig,
    /// `[http]`: connection cap and read/idle timeouts (slowloris protection).
    #[serde(default, skip_serializing_if = "HttpConfig::is_default")]
    pub http: HttpConfig,
    /// `[metrics]`: Prometheus `GET /metrics` (off by default).
    #[serde(default, skip_serializing_if = "MetricsConfig::is_default")]
    pub metrics: MetricsConfig,
    /// `[console]`: the web console at `/console` (off by default).
    #[serde(default, skip_serializing_if = "ConsoleConfig::is_default")]
    pub console: ConsoleConfig,
    /// The file this configuration was read from ([`Config::load`]; not a key of the
    /// file). A server started with it re-reads the signing keys from this file on
    /// `POST /admin/v1/keys/reload` or SIGHUP (docs/tokens.md).
    #[serde(skip)]
    pub source_file: Option<PathBuf>,
}

/// The optional top-level `[housekeeping]` table: a background task on every node
/// deletes expired sessions, stale throttling buckets and inactive anonymous users.
/// Each purge is one statement, so any number of nodes may run it at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HousekeepingConfig {
    /// Seconds between two runs (default 600; 0 turns the task off). The first run
    /// comes one interval after the start.
    #[serde(default = "default_housekeeping_interval_secs")]
    pub interval_secs: u64,
    /// Delete anonymous users (users whose only identities are `anon-user`) that are
    /// older than this and have not logged in since (no session started since; default
    /// 90 days, as App Services; 0 keeps them forever). Keep it above the apps'
    /// `refresh_token_ttl_secs`, so that a user whose session still lives is kept.
    #[serde(default = "default_anonymous_user_max_idle_secs")]
    pub anonymous_user_max_idle_secs: u64,
    /// Keep sessions this many seconds past their expiry before deleting them (default
    /// 0: at the first run after they expire).
    #[serde(default)]
    pub expired_session_grace_secs: u64,
}

impl Default for HousekeepingConfig {
    fn default() -> Self {
        HousekeepingConfig {
            interval_secs: default_housekeeping_interval_secs(),
            anonymous_user_max_idle_secs: default_anonymous_user_max_idle_secs(),
            expired_session_grace_secs: 0,
        }
    }
}

fn default_housekeeping_interval_secs() -> u64 {
    600
}

fn default_anonymous_user_max_idle_secs() -> u64 {
    90 * 24 * 3600
}

/// The optional top-level `[database_options]` table: how the server connects to its
/// `database`. Every key is optional; an absent key takes the engine's default (see
/// `latchkey_store::StoreOptions`).
///
/// ```
/// let config = latchkey_server::Config::from_toml_str(r#"
///     listen = "127.0.0.1:0"
///     database = "postgres://latchkey@db.internal:5432/latchkey"
///     [database_options]
///     max_connections = 20
///     connect_timeout_secs = 5
///     statement_timeout_secs = 30
///     password_env = "LATCHKEY_DATABASE_PASSWORD"
///     [[apps]]
///     id = "myapp"
///     signing_secret = "0123456789abcdef0123456789abcdef"
/// "#).unwrap();
/// assert_eq!(config.database_options.max_connections, Some(20));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseOptions {
    /// Most connections in each node's pool (default: 10 on PostgreSQL, 8 for a SQLite
    /// file; an in-memory SQLite database always has one). With several nodes, keep the
    /// sum of the nodes' pools below PostgreSQL's `max_connections`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Seconds to wait for a connection, connecting included (default: 10 on
    /// PostgreSQL, 30 on SQLite). A request that cannot get one in time is answered 503.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_secs: Option<u64>,
    /// PostgreSQL: the `statement_timeout` of each connection, in seconds (default:
    /// none). SQLite: how long a statement waits for the database lock (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_timeout_secs: Option<u64>,
    /// PostgreSQL: the name of an environment variable holding the password, used when
    /// the URL has none (keeps the secret out of the configuration file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
}

impl DatabaseOptions {
    fn is_default(&self) -> bool {
        *self == DatabaseOptions::default()
    }

    /// These options as the store takes them.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        let mut options = crate::store::StoreOptions::default();
        if let Some(max) = self.max_connections {
            options = options.max_connections(max);
        }
        if let Some(secs) = self.connect_timeout_secs {
            options = options.connect_timeout(Duration::from_secs(secs));
        }
        if let Some(secs) = self.statement_timeout_secs {
            options = options.statement_timeout(Duration::from_secs(secs));
        }
        if let Some(name) = &self.password_env {
            options = options.password_env(name.clone());
        }
        options
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(format!("database_options.{m}")));
        if self.max_connections == Some(0) {
            return invalid("max_connections must be at least 1");
        }
        for (name, value) in [
            ("connect_timeout_secs", self.connect_timeout_secs),
            ("statement_timeout_secs", self.statement_timeout_secs),
        ] {
            if let Some(secs) = value
                && !(1..=MAX_DATABASE_TIMEOUT_SECS).contains(&secs)
            {
                return invalid(&format!(
                    "{name} must be between 1 and {MAX_DATABASE_TIMEOUT_SECS}"
                ));
            }
        }
        if let Some(name) = &self.password_env
            && (name.is_empty() || name.contains(['=', '\0']))
        {
            return invalid("password_env must name an environment variable");
        }
        Ok(())
    }
}

/// One hosted app.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// The client app id used in app-scoped routes, e.g. `myapp-abcde`.
    pub id: String,
    /// HS256 secret that signs this app's refresh tokens, and its access tokens when
    /// `signing_keys` is empty; at least 32 bytes.
    #[serde(serialize_with = "expose_secret")]
    pub signing_secret: Secret,
    /// `[[apps.signing_keys]]`: the keys that sign and verify access tokens (ES256,
    /// EdDSA, RS256 or HS256; one active); see [`SigningKeyConfig`] and docs/tokens.md.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signing_keys: Vec<SigningKeyConfig>,
    /// Access-token lifetime in seconds (default 1800).
    #[serde(default = "default_access_ttl")]
    pub access_token_ttl_secs: u64,
    /// Refresh-token (session) lifetime in seconds (default 5184000, 60 days).
    #[serde(default = "default_refresh_ttl")]
    pub refresh_token_ttl_secs: u64,
    /// Authentication providers. A provider whose table is absent is disabled.
    #[serde(default)]
    pub providers: ProvidersConfig,
    /// Web origins whose browser pages may call this app ("Allowed Request Origins"),
    /// e.g. `["https://app.example"]`; `["*"]` allows any. Default none: browsers may
    /// not call the app cross-origin (other clients send no `Origin` and are not
    /// affected).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
}

/// The optional top-level `[smtp]` table: confirmation and reset emails are also
/// sent over SMTP when it is present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// SMTP server host name.
    pub host: String,
    /// SMTP port (default 587).
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// Login user name (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Login password (optional).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose_optional_secret"
    )]
    pub password: Option<Secret>,
    /// `"none"` (plain text, local relays only), `"starttls"` (default) or `"tls"`.
    #[serde(default = "default_smtp_tls")]
    pub tls: String,
    /// Default `From` address.
    pub from: String,
}

fn default_smtp_port() -> u16 {
    587
}

fn default_smtp_tls() -> String {
    "starttls".to_owned()
}

/// The top-level `[throttle]` table: limits on FAILED logins and on confirmation /
/// reset messages (counted in the database, so shared by every node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Consecutive failures allowed per identifier (e.g. email) FROM ONE CLIENT
    /// (IPv4 address or IPv6 /64) before a cool-down for that pair.
    #[serde(default = "default_max_failures_per_identifier")]
    pub max_failures_per_identifier: u32,
    /// First cool-down in seconds; it doubles at each further lockout (capped at 24 h).
    #[serde(default = "default_lockout_secs")]
    pub lockout_secs: u64,
    /// Failures allowed per identifier from ALL clients together within
    /// `identifier_window_secs` (caps distributed guessing).
    #[serde(default = "default_max_failures_per_identifier_all_ips")]
    pub max_failures_per_identifier_all_ips: u32,
    /// The window of `max_failures_per_identifier_all_ips`, in seconds.
    #[serde(default = "default_window_secs")]
    pub identifier_window_secs: u64,
    /// Failed logins allowed per client IP within `ip_window_secs`.
    #[serde(default = "default_max_failures_per_ip")]
    pub max_failures_per_ip: u32,
    /// The per-IP window in seconds.
    #[serde(default = "default_window_secs")]
    pub ip_window_secs: u64,
    /// Requests per email to `register`, `confirm/send`, `confirm/call`, `reset/send`
    /// and `reset/call` within `message_window_secs`.
    #[serde(default = "default_max_messages_per_email")]
    pub max_messages_per_email: u32,
    /// Requests per client IP to those routes within `message_window_secs`.
    #[serde(default = "default_max_messages_per_ip")]
    pub max_messages_per_ip: u32,
    /// The window of the message limits, in seconds.
    #[serde(default = "default_window_secs")]
    pub message_window_secs: u64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            max_failures_per_identifier: default_max_failures_per_identifier(),
            lockout_secs: default_lockout_secs(),
            max_failures_per_identifier_all_ips: default_max_failures_per_identifier_all_ips(),
            identifier_window_secs: default_window_secs(),
            max_failures_per_ip: default_max_failures_per_ip(),
            ip_window_secs: default_window_secs(),
            max_messages_per_email: default_max_messages_per_email(),
            max_messages_per_ip: default_max_messages_per_ip(),
            message_window_secs: default_window_secs(),
        }
    }
}

fn default_max_failures_per_identifier() -> u32 {
    20
}

fn default_lockout_secs() -> u64 {
    900
}

fn default_max_failures_per_identifier_all_ips() -> u32 {
    100
}

fn default_max_failures_per_ip() -> u32 {
    300
}

fn default_window_secs() -> u64 {
    900
}

fn default_max_messages_per_email() -> u32 {
    5
}

fn default_max_messages_per_ip() -> u32 {
    200
}

fn default_access_ttl() -> u64 {
    DEFAULT_ACCESS_TOKEN_TTL_SECS
}

fn default_refresh_ttl() -> u64 {
    DEFAULT_REFRESH_TOKEN_TTL_SECS
}

impl Config {
    /// Parse and validate a TOML configuration.
    ///
    /// ```
    /// let config = latchkey_server::Config::from_toml_str(r#"
    ///     listen = "127.0.0.1:0"
    ///     database = "sqlite::memory:"
    ///     [[apps]]
    ///     id = "myapp"
    ///     signing_secret = "0123456789abcdef0123456789abcdef"
    ///     [apps.providers.anon-user]
    /// "#).unwrap();
    /// assert!(config.apps[0].providers.anon_user.enabled);
    /// assert!(!config.apps[0].providers.local_userpass.enabled);
    /// assert_eq!(config.apps[0].access_token_ttl_secs, 1800);
    /// assert!(latchkey_server::Config::from_toml_str("listen = 1").is_err());
    /// ```
    pub fn from_toml_str(s: &str) -> Result<Config, ConfigError> {
        let config: Config = crate::strict::from_toml_str(s)?;
        config.validate()?;
        Ok(config)
    }

    /// Read, parse and validate a TOML configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Config::from_toml_str(&text)?;
        config.source_file = Some(path.to_owned());
        Ok(config)
    }

    /// A development configuration: `127.0.0.1:0`, an in-memory database and one app
    /// [`DEV_APP_ID`] with a random signing secret and every implemented provider on
    /// (email/password with auto-confirm), which browser pages of any origin may call
    /// (`allowed_origins = ["*"]`), with `/metrics` and the web console on.
    ///
    /// ```
    /// let config = latchkey_server::Config::dev();
    /// assert!(config.listen.ip().is_loopback());
    /// assert_eq!(config.apps[0].id, "latchkey-dev");
    /// assert!(config.validate().is_ok());
    /// ```
    pub fn dev() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: "sqlite::memory:".into(),
            database_options: DatabaseOptions::default(),
            public_url: None,
            admin_token: Some(random_secret().into()),
            apps: vec![AppConfig::new(DEV_APP_ID, random_secret()).with_all_providers()],
            smtp: None,
            outbox: true,
            throttle: ThrottleConfig::default(),
            trust_forwarded_for: false,
            housekeeping: HousekeepingConfig::default(),
            http: HttpConfig::default(),
            metrics: MetricsConfig {
                enabled: true,
                listen: None,
            },
            console: ConsoleConfig {
                enabled: true,
                ..ConsoleConfig::default()
            },
            source_file: None,
        }
        .allow_any_origin()
    }

    /// Let browser pages of any origin call every app (`allowed_origins = ["*"]`), as
    /// [`Config::dev`] does.
    pub fn allow_any_origin(mut self) -> Config {
        for app in &mut self.apps {
            app.allowed_origins = vec![edge::ANY_ORIGIN.to_owned()];
        }
        self
    }

    /// Check every value; [`Config::from_toml_str`] and the server call this.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if let Err(e) = crate::store::check_url(self.database.expose()) {
            return invalid(format!("database: {e}"));
        }
        self.database_options.validate()?;
        self.http.validate()?;
        self.metrics.validate()?;
        self.console.validate()?;
        for (name, value) in [
            ("interval_secs", self.housekeeping.interval_secs),
            (
                "anonymous_user_max_idle_secs",
                self.housekeeping.anonymous_user_max_idle_secs,
            ),
            (
                "expired_session_grace_secs",
                self.housekeeping.expired_session_grace_secs,
            ),
        ] {
            if value > MAX_TOKEN_TTL_SECS {
                return invalid(format!(
                    "housekeeping.{name} must be at most {MAX_TOKEN_TTL_SECS}"
                ));
            }
        }
        if let Some(url) = &self.public_url {
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"));
            match rest {
                Some(host) if !host.trim_end_matches('/').is_empty() => {}
                _ => {
                    return invalid(format!(
                        "public_url must be an absolute http:// or https:// URL, got {url:?}"
                    ));
                }
            }
            if url.contains(['?', '#', ' ']) {
                return invalid("public_url must not contain a query, fragment or space".into());
            }
        }
        if let Some(token) = &self.admin_token
            && token.len() < MIN_ADMIN_TOKEN_LEN
        {
            return invalid(format!(
                "admin_token must be at least {MIN_ADMIN_TOKEN_LEN} bytes long"
            ));
        }
        // A placeholder copied from an example ("…64 hex digits…", "change me") has
        // spaces or non-ASCII characters; a real token (`init`, `openssl rand -hex 32`)
        // has neither, and fits in an `Authorization` header as is.
        if let Some(token) = &self.admin_token
            && !token.expose().bytes().all(|b| b.is_ascii_graphic())
        {
            return invalid(
                "admin_token must be printable ASCII without spaces (a placeholder? \
                 generate one with `openssl rand -hex 32`)"
                    .into(),
            );
        }
        if self.apps.is_empty() {
            return invalid("at least one [[apps]] entry is required".into());
        }
        if let Some(smtp) = &self.smtp {
            if !matches!(smtp.tls.as_str(), "none" | "starttls" | "tls") {
                return invalid(format!(
                    "smtp.tls must be \"none\", \"starttls\" or \"tls\", got {:?}",
                    smtp.tls
                ));
            }
            if smtp.username.is_some() != smtp.password.is_some() {
                return invalid(
                    "smtp.username and smtp.password go together: set both or neither".into(),
                );
            }
            if smtp.host.is_empty() || !smtp.from.contains('@') {
                return invalid(
                    "smtp.host must be set and smtp.from must be an email address".into(),
                );
            }
        }
        let t = &self.throttle;
        if t.max_failures_per_identifier == 0
            || t.max_failures_per_identifier_all_ips == 0
            || t.max_failures_per_ip == 0
            || t.max_messages_per_email == 0
            || t.max_messages_per_ip == 0
            || t.lockout_secs == 0
            || t.identifier_window_secs == 0
            || t.ip_window_secs == 0
            || t.message_window_secs == 0
        {
            return invalid("every [throttle] value must be at least 1".into());
        }
        let mut seen = HashSet::new();
        for app in &self.apps {
            app.validate()?;
            if !seen.insert(app.id.as_str()) {
                return invalid(format!("duplicate app id {:?}", app.id));
            }
        }
        Ok(())
    }

    /// The app with this id.
    pub fn app(&self, id: &str) -> Option<&AppConfig> {
        self.apps.iter().find(|a| a.id == id)
    }

    /// `public_url` without trailing slashes.
    pub fn public_url_trimmed(&self) -> Option<&str> {
        self.public_url.as_deref().map(|u| u.trim_end_matches('/'))
    }
}

impl AppConfig {
    /// An app with default token lifetimes and every provider disabled.
    ///
    /// ```
    /// let app = latchkey_server::AppConfig::new("myapp", "0123456789abcdef0123456789abcdef")
    ///     .with_all_providers();
    /// assert!(app.providers.local_userpass.auto_confirm);
    /// assert!(!format!("{app:?}").contains("0123456789abcdef"));
    /// ```
    pub fn new(id: impl Into<String>, signing_secret: impl Into<Secret>) -> AppConfig {
        AppConfig {
            id: id.into(),
            signing_secret: signing_secret.into(),
            signing_keys: Vec::new(),
            access_token_ttl_secs: DEFAULT_ACCESS_TOKEN_TTL_SECS,
            refresh_token_ttl_secs: DEFAULT_REFRESH_TOKEN_TTL_SECS,
            providers: ProvidersConfig::default(),
            allowed_origins: Vec::new(),
        }
    }

    /// Turn on every provider that needs no outside service: anonymous, email/password
    /// with auto-confirm, API keys and custom-token (with a fresh random HS256 key,
    /// readable as `providers.custom_token.signing_keys[0]`).
    pub fn with_all_providers(mut self) -> AppConfig {
        self.providers.enable_for_dev();
        self
    }

    /// Check this app's values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 128
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !id_ok {
            return invalid(format!(
                "app id {:?} must be 1-128 characters of A-Z, a-z, 0-9, '-', '_' or '.'",
                self.id
            ));
        }
        if self.signing_secret.len() < MIN_SIGNING_SECRET_LEN {
            return invalid(format!(
                "app {:?}: signing_secret must be at least {MIN_SIGNING_SECRET_LEN} bytes long \
                 (got {}); generate one with e.g. `openssl rand -hex 32`",
                self.id,
                self.signing_secret.len()
            ));
        }
        self.validate_token_lifetimes()?;
        keys::validate_signing_keys(&self.id, &self.signing_keys)?;
        edge::validate_allowed_origins(&self.id, &self.allowed_origins)?;
        self.providers.validate(&self.id)
    }

    /// The token lifetimes' bounds, one documented constant each in `latchkey-protocol`:
    /// `access_token_ttl_secs` in 1 ..= [`MAX_ACCESS_TOKEN_LIFETIME_SECS`] (the longest
    /// the SDK accepts), `refresh_token_ttl_secs` in [`MIN_REFRESH_TOKEN_LIFETIME_SECS`]
    /// ..= [`MAX_REFRESH_TOKEN_LIFETIME_SECS`] and not shorter than the access token.
    fn validate_token_lifetimes(&self) -> Result<(), ConfigError> {
        let bounds = [
            (
                "access_token_ttl_secs",
                self.access_token_ttl_secs,
                1,
                MAX_ACCESS_TOKEN_LIFETIME_SECS,
            ),
            (
                "refresh_token_ttl_secs",
                self.refresh_token_ttl_secs,
                MIN_REFRESH_TOKEN_LIFETIME_SECS,
                MAX_REFRESH_TOKEN_LIFETIME_SECS,
            ),
        ];
        for (name, ttl, min, max) in bounds {
            if !(min..=max).contains(&ttl) {
                return Err(ConfigError::Invalid(format!(
                    "app {:?}: {name} must be between {min} and {max} seconds, got {ttl}",
                    self.id
                )));
            }
        }
        if self.refresh_token_ttl_secs < self.access_token_ttl_secs {
            return Err(ConfigError::Invalid(format!(
                "app {:?}: refresh_token_ttl_secs ({}) must not be shorter than \
                 access_token_ttl_secs ({})",
                self.id, self.refresh_token_ttl_secs, self.access_token_ttl_secs
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn toml_with(app_extra: &str) -> String {
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite::memory:\"\n[[apps]]\nid = \"a\"\nsigning_secret = \"{SECRET}\"\n{app_extra}"
        )
    }

    fn with_database(database: &str, options: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(&format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"{database}\"\n{options}\n[[apps]]\nid = \"a\"\nsigning_secret = \"{SECRET}\"\n"
        ))
    }

    #[test]
    fn postgres_database_and_options() {
        let c = with_database(
            "postgres://latchkey:hunter2@db.internal:5432/latchkey?sslmode=require",
            "[database_options]\nmax_connections = 25\nconnect_timeout_secs = 4\n\
             statement_timeout_secs = 30\npassword_env = \"PGPASS_LATCHKEY\"",
        )
        .unwrap();
        let o = c.database_options.store_options();
        assert_eq!(o.max_connections, Some(25));
        assert_eq!(o.connect_timeout, Some(Duration::from_secs(4)));
        assert_eq!(o.statement_timeout, Some(Duration::from_secs(30)));
        assert_eq!(o.password_env.as_deref(), Some("PGPASS_LATCHKEY"));
        // The URL (and its password) never shows in Debug.
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("db.internal"), "{shown}");
        // It is written back as it was read (the testkit writes configuration files).
        let written = toml::to_string(&c).unwrap();
        assert!(written.contains("hunter2@db.internal"), "{written}");
        assert_eq!(
            Config::from_toml_str(&written).unwrap().database_options,
            c.database_options
        );
        for scheme in ["postgresql", "sqlite"] {
            let url = if scheme == "sqlite" {
                "sqlite:///var/lib/l.db"
            } else {
                "postgresql://u@h/d"
            };
            let c = with_database(url, "").unwrap();
            assert_eq!(c.database_options, DatabaseOptions::default());
            assert_eq!(c.database_options.store_options(), Default::default());
        }
    }

    #[test]
    fn bad_database_settings_are_refused_without_the_password() {
        for (url, options, expected) in [
            ("mysql://u:hunter2@h/d", "", "unsupported database URL"),
            ("postgres://u:hunter2@h:5432", "", "database"),
            (
                "postgres://u@h/d",
                "[database_options]\nmax_connections = 0",
                "max_connections",
            ),
            (
                "postgres://u@h/d",
                "[database_options]\nconnect_timeout_secs = 0",
                "connect_timeout_secs",
            ),
            (
                "postgres://u@h/d",
                "[database_options]\nstatement_timeout_secs = 86400",
                "statement_timeout_secs",
            ),
            (
                "postgres://u@h/d",
                "[database_options]\npassword_env = \"\"",
                "password_env",
            ),
        ] {
            let err = with_database(url, options).unwrap_err().to_string();
            assert!(err.contains(expected), "{url} {options}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn full_config_parses() {
        let c = Config::from_toml_str(
            r#"
            listen = "0.0.0.0:8080"
            database = "sqlite:///tmp/x.db"
            public_url = "https://auth.example.org/"
            admin_token = "0123456789abcdef0123"
            [[apps]]
            id = "myapp-abcde"
            signing_secret = "0123456789abcdef0123456789abcdef"
            access_token_ttl_secs = 60
            refresh_token_ttl_secs = 3600
            [apps.providers.anon-user]
            enabled = false
            [apps.providers.local-userpass]
            auto_confirm = true
            [apps.providers.custom-token]
            enabled = true
            signing_keys = ["0123456789abcdef0123456789abcdef"]
            "#,
        )
        .unwrap();
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.public_url_trimmed(), Some("https://auth.example.org"));
        let app = c.app("myapp-abcde").unwrap();
        assert_eq!(app.access_token_ttl_secs, 60);
        assert!(!app.providers.anon_user.enabled);
        assert!(app.providers.local_userpass.enabled);
        assert!(app.providers.local_userpass.auto_confirm);
    }

    #[test]
    fn rejects_short_secret_with_clear_message() {
        let text = toml_with("").replace(SECRET, "short");
        let err = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(
            err.contains("signing_secret must be at least 32 bytes"),
            "{err}"
        );
    }

    #[test]
    fn rejects_bad_values() {
        assert!(Config::from_toml_str(&toml_with("access_token_ttl_secs = 0")).is_err());
        assert!(Config::from_toml_str(&toml_with("access_token_ttl_secs = -5")).is_err());
        let dup = format!(
            "{}\n[[apps]]\nid = \"a\"\nsigning_secret = \"{SECRET}\"",
            toml_with("")
        );
        assert!(
            Config::from_toml_str(&dup)
                .unwrap_err()
                .to_string()
                .contains("duplicate")
        );
        let bad_db = toml_with("").replace("sqlite::memory:", "postgres://x");
        assert!(Config::from_toml_str(&bad_db).is_err());
        let bad_id = toml_with("").replace("id = \"a\"", "id = \"a/b\"");
        assert!(Config::from_toml_str(&bad_id).is_err());
        let no_apps = "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite::memory:\"";
        assert!(Config::from_toml_str(no_apps).is_err());
        let bad_url = format!("public_url = \"ftp://x\"\n{}", toml_with(""));
        assert!(Config::from_toml_str(&bad_url).is_err());
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = Config::dev();
        let secret = c.apps[0].signing_secret.expose();
        let admin = c.admin_token.as_ref().unwrap().expose();
        let s = format!("{c:?}");
        assert!(!s.contains(secret) && !s.contains(admin), "{s}");
        assert!(s.contains("<redacted>"));
    }

    #[test]
    fn example_file_is_valid() {
        let c = Config::from_toml_str(include_str!("../latchkey.example.toml")).unwrap();
        assert_eq!(c.apps[0].id, "myapp-abcde");
        assert!(c.apps[0].providers.anon_user.enabled);
        assert!(!c.apps[0].providers.local_userpass.auto_confirm);
    }

    #[test]
    fn serializes_with_its_secrets() {
        let c = Config::dev();
        let text = toml::to_string(&c).unwrap();
        let back = Config::from_toml_str(&text).unwrap();
        assert_eq!(back.apps[0].signing_secret, c.apps[0].signing_secret);
        assert_eq!(back.admin_token, c.admin_token);
        assert_eq!(
            back.apps[0].providers.custom_token.signing_keys,
            c.apps[0].providers.custom_token.signing_keys
        );
    }

    /// The misspellings a newcomer made (issue 16), each refused with its line and the
    /// key that was meant.
    #[test]
    fn misspelled_keys_are_refused_with_a_suggestion() {
        let head = format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite::memory:\"\n[[apps]]\nid = \"a\"\nsigning_secret = \"{SECRET}\"\n"
        );
        let top = "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite::memory:\"\n";
        let app = format!("[[apps]]\nid = \"a\"\nsigning_secret = \"{SECRET}\"\n");
        for (text, key, line, table, meant) in [
            (
                format!("{head}[apps.providers.local-userpass]\nauto_confrim = true\n"),
                "auto_confrim",
                7,
                Some("apps.providers.local-userpass"),
                Some("auto_confirm"),
            ),
            (
                format!("{top}[throtle]\nlockout_secs = 60\n{app}"),
                "throtle",
                3,
                None,
                Some("throttle"),
            ),
            (
                format!("{head}[apps.providers.local_userpass]\nenabled = true\n"),
                "local_userpass",
                6,
                Some("apps.providers"),
                Some("local-userpass"),
            ),
            (
                format!("{head}[apps.providers.anon-user]\nenabeld = false\n"),
                "enabeld",
                7,
                Some("apps.providers.anon-user"),
                Some("enabled"),
            ),
            (
                format!("{head}[apps.providers.anon_user]\n"),
                "anon_user",
                6,
                Some("apps.providers"),
                Some("anon-user"),
            ),
            (
                format!("{head}acess_token_ttl_secs = 60\n"),
                "acess_token_ttl_secs",
                6,
                Some("apps"),
                Some("access_token_ttl_secs"),
            ),
            (
                format!("public-url = \"https://a.example\"\n{head}"),
                "public-url",
                1,
                None,
                Some("public_url"),
            ),
            (
                format!("{top}[smpt]\nhost = \"h\"\nfrom = \"a@b.c\"\n{app}"),
                "smpt",
                3,
                None,
                Some("smtp"),
            ),
            (
                format!("{top}[throttle]\nlockout_sec = 60\n{app}"),
                "lockout_sec",
                4,
                Some("throttle"),
                Some("lockout_secs"),
            ),
            (
                format!("{top}[[app]]\nid = \"a\"\nsigning_secret = \"{SECRET}\"\n"),
                "app",
                3,
                None,
                Some("apps"),
            ),
            (
                format!("{top}trust_forwarded = true\n{app}"),
                "trust_forwarded",
                3,
                None,
                Some("trust_forwarded_for"),
            ),
            (
                format!("{top}[database_option]\nmax_connections = 2\n{app}"),
                "database_option",
                3,
                None,
                Some("database_options"),
            ),
            (
                format!("{head}providers = {{ anon-user = {{ enabeld = true }} }}\n"),
                "enabeld",
                6,
                Some("apps"),
                Some("enabled"),
            ),
            (
                format!(
                    "{head}[apps.providers.custom-token]\nsigning_keys = [\"{SECRET}\"]\n\
                     metadata_fields = [{{ name = \"n\", requried = true }}]\n"
                ),
                "requried",
                8,
                Some("apps.providers.custom-token"),
                Some("required"),
            ),
            // Too far from every key for a guess: the valid keys are listed instead.
            (
                format!("{head}[apps.providers.google]\n"),
                "google",
                6,
                Some("apps.providers"),
                None,
            ),
        ] {
            let err = Config::from_toml_str(&text).unwrap_err();
            let ConfigError::UnknownKey(u) = &err else {
                panic!("{key}: not an unknown key: {err}");
            };
            assert_eq!(u.key, key, "{err}");
            assert_eq!(u.line, Some(line), "{key}: {err}");
            assert_eq!(u.table.as_deref(), table, "{key}: {err}");
            assert_eq!(u.suggestion.as_deref(), meant, "{key}: {err}");
            let shown = err.to_string();
            assert!(
                shown.contains(&format!("`{key}` at line {line}")),
                "{shown}"
            );
            match meant {
                Some(m) => assert!(shown.contains(&format!("did you mean `{m}`?")), "{shown}"),
                None => assert!(shown.contains("oauth2-google"), "{shown}"),
            }
            assert!(!shown.contains(SECRET), "{shown}");
        }
    }

    /// Every table of a full configuration refuses a misspelled key: a new table (or a
    /// provider's) without `#[serde(deny_unknown_fields)]` fails here.
    #[test]
    fn every_table_refuses_a_misspelled_key() {
        let mut config = Config::dev();
        config.smtp = Some(SmtpConfig {
            host: "smtp.example.org".into(),
            port: 587,
            username: Some("u".into()),
            password: Some("p".into()),
            tls: "starttls".into(),
            from: "a@example.org".into(),
        });
        config.database_options.max_connections = Some(2);
        config.apps[0].signing_keys = vec![SigningKeyConfig {
            kid: "k1".into(),
            algorithm: TokenAlgorithm::ES256,
            private_key: Some(crate::tokens::generate_key(TokenAlgorithm::ES256).unwrap()),
            private_key_file: None,
            active: true,
            verify_until: None,
        }];
        config.apps[0].providers.custom_token.metadata_fields = vec![MetadataField {
            name: "n".into(),
            field_name: None,
            required: true,
        }];
        let full: toml::Table = toml::from_str(&toml::to_string(&config).unwrap()).unwrap();
        assert!(Config::from_toml_str(&full.to_string()).is_ok());

        // Every (table path, key) of the document, arrays of tables included.
        fn walk(t: &toml::Table, path: Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
            if let Some(k) = t.keys().next() {
                out.push((path.clone(), k.clone()));
            }
            for (k, v) in t {
                let mut p = path.clone();
                p.push(k.clone());
                match v {
                    toml::Value::Table(inner) => walk(inner, p, out),
                    toml::Value::Array(a) => {
                        if let Some(toml::Value::Table(inner)) = a.first() {
                            p.push("0".into());
                            walk(inner, p, out);
                        }
                    }
                    _ => {}
                }
            }
        }
        let mut tables = Vec::new();
        walk(&full, Vec::new(), &mut tables);
        assert!(tables.len() >= 15, "{tables:?}");
        for (path, key) in tables {
            let mut doc = full.clone();
            let mut t = &mut doc;
            for seg in path.iter().filter(|s| s.parse::<usize>().is_err()) {
                t = match t.get_mut(seg.as_str()).unwrap() {
                    toml::Value::Table(inner) => inner,
                    toml::Value::Array(a) => match a.first_mut().unwrap() {
                        toml::Value::Table(inner) => inner,
                        _ => unreachable!(),
                    },
                    _ => unreachable!(),
                };
            }
            let value = t.remove(&key).unwrap();
            let mut wrong = key.clone();
            wrong.insert(key.len() - 1, 'x');
            t.insert(wrong.clone(), value);
            let err = Config::from_toml_str(&doc.to_string()).unwrap_err();
            let ConfigError::UnknownKey(u) = &err else {
                panic!("{path:?} {wrong}: {err}");
            };
            assert_eq!(u.key, wrong, "{err}");
            assert_eq!(
                u.suggestion.as_deref(),
                Some(key.as_str()),
                "{path:?}: {err}"
            );
            assert!(u.line.is_some(), "{err}");
        }
    }

    #[test]
    fn placeholder_admin_token_and_half_smtp_login_are_refused() {
        // The placeholder of docs/server.md's complete example.
        let placeholder = format!("admin_token = \"…64 hex digits…\"\n{}", toml_with(""));
        let err = Config::from_toml_str(&placeholder).unwrap_err().to_string();
        assert!(err.contains("admin_token must be printable ASCII"), "{err}");
        let spaced = format!(
            "admin_token = \"change me to a long token\"\n{}",
            toml_with("")
        );
        assert!(Config::from_toml_str(&spaced).is_err());
        let real = format!("admin_token = \"{SECRET}\"\n{}", toml_with(""));
        assert!(Config::from_toml_str(&real).is_ok());

        let smtp = |login: &str| {
            let text = toml_with("").replace(
                "[[apps]]",
                &format!("[smtp]\nhost = \"h\"\nfrom = \"a@b.c\"\n{login}\n[[apps]]"),
            );
            Config::from_toml_str(&text).map_err(|e| e.to_string())
        };
        assert!(smtp("").is_ok());
        assert!(smtp("username = \"u\"\npassword = \"p\"").is_ok());
        for half in ["username = \"u\"", "password = \"hunter2\""] {
            let err = smtp(half).unwrap_err();
            assert!(err.contains("set both or neither"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn dev_has_random_secrets() {
        assert_ne!(
            Config::dev().apps[0].signing_secret,
            Config::dev().apps[0].signing_secret
        );
    }
}
