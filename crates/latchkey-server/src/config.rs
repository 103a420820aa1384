//! Server configuration, read from TOML.
//!
//! ```toml
//! listen = "127.0.0.1:8080"          # port 0 picks any free port
//! database = "sqlite://latchkey.db"  # or "sqlite::memory:"
//! public_url = "https://auth.example.org"   # optional
//! admin_token = "a-long-random-admin-token"  # optional
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
//! Unknown keys are ignored (the configuration grows with every provider), but
//! every value that is read is validated.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rand::RngCore;
use serde::{Deserialize, Serialize};

mod idp;
pub use idp::{
    APPLE_ISSUER, APPLE_JWKS_URL, AppleConfig, AudienceMatch, CustomTokenConfig,
    DEFAULT_LEEWAY_SECS, FACEBOOK_GRAPH_URL, FacebookConfig, GOOGLE_JWKS_URL, GOOGLE_TOKEN_URL,
    GoogleConfig, MAX_CUSTOM_TOKEN_KEYS, MAX_FIELD_NAME_LEN, MAX_HS256_KEY_LEN, MAX_LEEWAY_SECS,
    MIN_HS256_KEY_LEN, MetadataField, SigningAlgorithm,
};

/// Minimum length of an app's `signing_secret`, in bytes.
pub const MIN_SIGNING_SECRET_LEN: usize = 32;
/// Minimum length of `admin_token`, in bytes.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;
/// Default access-token lifetime (30 minutes, as App Services).
pub const DEFAULT_ACCESS_TOKEN_TTL_SECS: u64 = 1800;
/// Default refresh-token lifetime (60 days, as App Services).
pub const DEFAULT_REFRESH_TOKEN_TTL_SECS: u64 = 5_184_000;
/// Largest accepted token lifetime (10 years).
pub const MAX_TOKEN_TTL_SECS: u64 = 10 * 365 * 24 * 3600;
/// The app id of [`Config::dev`].
pub const DEV_APP_ID: &str = "latchkey-dev";

/// The whole server configuration.
#[derive(Clone, Serialize, Deserialize)]
pub struct Config {
    /// Address to listen on, e.g. `127.0.0.1:8080`; port 0 picks a free port.
    pub listen: SocketAddr,
    /// `sqlite://PATH` (the file is created when missing) or `sqlite::memory:`.
    pub database: String,
    /// The externally visible base URL (`http(s)://host[:port][/prefix]`), returned as
    /// `hostname` by the location route. Defaults to `http://<listen address>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Bearer token for the admin API (not served yet). Redacted in `Debug`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<String>,
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
}

/// One hosted app.
#[derive(Clone, Serialize, Deserialize)]
pub struct AppConfig {
    /// The client app id used in app-scoped routes, e.g. `myapp-abcde`.
    pub id: String,
    /// HS256 secret that signs this app's tokens; at least 32 bytes. Redacted in `Debug`.
    pub signing_secret: String,
    /// Access-token lifetime in seconds (default 1800).
    #[serde(default = "default_access_ttl")]
    pub access_token_ttl_secs: u64,
    /// Refresh-token (session) lifetime in seconds (default 5184000, 60 days).
    #[serde(default = "default_refresh_ttl")]
    pub refresh_token_ttl_secs: u64,
    /// Authentication providers. A provider whose table is absent is disabled.
    #[serde(default)]
    pub providers: ProvidersConfig,
}

/// The `[apps.providers.*]` tables.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProvidersConfig {
    /// `[apps.providers.anon-user]`.
    #[serde(default, rename = "anon-user")]
    pub anon_user: AnonUserConfig,
    /// `[apps.providers.local-userpass]`.
    #[serde(default, rename = "local-userpass")]
    pub local_userpass: LocalUserpassConfig,
    /// `[apps.providers.api-key]`.
    #[serde(default, rename = "api-key")]
    pub api_key: ApiKeyConfig,
    /// `[apps.providers.custom-function]`.
    #[serde(default, rename = "custom-function")]
    pub custom_function: CustomFunctionConfig,
    /// `[apps.providers.custom-token]`.
    #[serde(default, rename = "custom-token")]
    pub custom_token: CustomTokenConfig,
    /// `[apps.providers.oauth2-google]`.
    #[serde(default, rename = "oauth2-google")]
    pub google: GoogleConfig,
    /// `[apps.providers.oauth2-apple]`.
    #[serde(default, rename = "oauth2-apple")]
    pub apple: AppleConfig,
    /// `[apps.providers.oauth2-facebook]`.
    #[serde(default, rename = "oauth2-facebook")]
    pub facebook: FacebookConfig,
}

/// Anonymous provider settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnonUserConfig {
    /// Whether anonymous login is allowed. True when the table is present and the key is not.
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// Email/password provider settings.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalUserpassConfig {
    /// Whether email/password login and registration are allowed. True when the table is
    /// present and the key is not.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Registered credentials are confirmed at once (development setups).
    #[serde(default)]
    pub auto_confirm: bool,
    /// Confirmation by function: POSTed `{"token","tokenId","username"}` at registration
    /// (and by `confirm/call`); answers `{"status":"success"|"pending"|"fail"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_webhook_url: Option<String>,
    /// Reset by function: POSTed by `reset/call`; `reset/send` is then refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_webhook_url: Option<String>,
    /// HMAC-SHA256 secret signing the two webhooks' requests
    /// (`X-Latchkey-Timestamp: <secs>`, `X-Latchkey-Signature: sha256=<hex HMAC of
    /// "<secs>.<body>">`). Redacted in `Debug`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    /// Page the confirmation email links to (`?token=..&tokenId=..` is appended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_url: Option<String>,
    /// Page the password-reset email links to (`?token=..&tokenId=..` is appended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_url: Option<String>,
    /// `From` address of this app's emails (default: `[smtp] from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_from: Option<String>,
}

impl fmt::Debug for LocalUserpassConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalUserpassConfig")
            .field("enabled", &self.enabled)
            .field("auto_confirm", &self.auto_confirm)
            .field("confirmation_webhook_url", &self.confirmation_webhook_url)
            .field("reset_webhook_url", &self.reset_webhook_url)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("confirmation_url", &self.confirmation_url)
            .field("reset_url", &self.reset_url)
            .field("email_from", &self.email_from)
            .finish()
    }
}

impl LocalUserpassConfig {
    /// Check the URLs and the webhook secret.
    pub fn validate(&self, app_id: &str) -> Result<(), ConfigError> {
        for (name, url) in [
            ("confirmation_webhook_url", &self.confirmation_webhook_url),
            ("reset_webhook_url", &self.reset_webhook_url),
            ("confirmation_url", &self.confirmation_url),
            ("reset_url", &self.reset_url),
        ] {
            if let Some(url) = url
                && !((url.starts_with("http://") || url.starts_with("https://"))
                    && url.len() > "https://".len()
                    && !url.contains([' ', '#']))
            {
                return Err(ConfigError::Invalid(format!(
                    "app {app_id:?}: local-userpass {name} must be an absolute http(s) URL"
                )));
            }
        }
        if self.webhook_secret.as_ref().is_some_and(|s| s.is_empty()) {
            return Err(ConfigError::Invalid(format!(
                "app {app_id:?}: local-userpass webhook_secret must not be empty"
            )));
        }
        if let Some(from) = &self.email_from
            && !from.contains('@')
        {
            return Err(ConfigError::Invalid(format!(
                "app {app_id:?}: local-userpass email_from must be an email address"
            )));
        }
        Ok(())
    }
}

/// The optional top-level `[smtp]` table: confirmation and reset emails are also
/// sent over SMTP when it is present.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpConfig {
    /// SMTP server host name.
    pub host: String,
    /// SMTP port (default 587).
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    /// Login user name (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Login password (optional). Redacted in `Debug`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// `"none"` (plain text, local relays only), `"starttls"` (default) or `"tls"`.
    #[serde(default = "default_smtp_tls")]
    pub tls: String,
    /// Default `From` address.
    pub from: String,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("from", &self.from)
            .finish()
    }
}

fn default_smtp_port() -> u16 {
    587
}

fn default_smtp_tls() -> String {
    "starttls".to_owned()
}

/// The top-level `[throttle]` table: limits on FAILED logins and on confirmation /
/// reset messages (in memory, per process).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// API key provider settings (user keys through the client API, server keys
/// through the admin API).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyConfig {
    /// Whether API keys can log in and users can manage their keys. True when the table
    /// is present and the key is not.
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// Custom function provider settings: the login payload is verified by a webhook
/// (configuration) or an in-process Rust function ([`CustomFunctionConfig::function`]).
#[derive(Clone, Serialize, Deserialize)]
pub struct CustomFunctionConfig {
    /// Whether custom-function login is allowed. True when the table is present and the
    /// key is not.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// URL the login payload is POSTed to (see `docs/providers-server.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// When set, requests carry `X-Latchkey-Timestamp: <secs>` and
    /// `X-Latchkey-Signature: sha256=<hex HMAC-SHA256>` of `"<secs>.<body>"` with this
    /// secret. Redacted in `Debug`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    /// Webhook timeout in milliseconds (default 5000).
    #[serde(default = "default_function_timeout_ms")]
    pub timeout_ms: u64,
    /// An in-process function, used instead of the webhook when set (library use only).
    #[serde(skip)]
    pub function: Option<crate::providers::custom_function::CustomFunction>,
}

fn default_function_timeout_ms() -> u64 {
    crate::providers::custom_function::DEFAULT_TIMEOUT_MS
}

impl fmt::Debug for CustomFunctionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomFunctionConfig")
            .field("enabled", &self.enabled)
            .field("webhook_url", &self.webhook_url)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("timeout_ms", &self.timeout_ms)
            .field("function", &self.function)
            .finish()
    }
}

fn yes() -> bool {
    true
}

fn default_access_ttl() -> u64 {
    DEFAULT_ACCESS_TOKEN_TTL_SECS
}

fn default_refresh_ttl() -> u64 {
    DEFAULT_REFRESH_TOKEN_TTL_SECS
}

/// The configuration could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML or a value has the wrong type.
    #[error("invalid config: {0}")]
    Parse(String),
    /// A value is out of range or inconsistent.
    #[error("invalid config: {0}")]
    Invalid(String),
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
        let config: Config = toml::from_str(s).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Read, parse and validate a TOML configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml_str(&text)
    }

    /// A development configuration: `127.0.0.1:0`, an in-memory database and one app
    /// [`DEV_APP_ID`] with a random signing secret and every implemented provider on
    /// (email/password with auto-confirm).
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
            database: "sqlite::memory:".to_owned(),
            public_url: None,
            admin_token: Some(random_secret()),
            apps: vec![AppConfig::new(DEV_APP_ID, random_secret()).with_all_providers()],
            smtp: None,
            outbox: true,
            throttle: ThrottleConfig::default(),
            trust_forwarded_for: false,
        }
    }

    /// Check every value; [`Config::from_toml_str`] and the server call this.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if let Err(e) = crate::store::check_url(&self.database) {
            return invalid(format!("database: {e}"));
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
    pub fn new(id: impl Into<String>, signing_secret: impl Into<String>) -> AppConfig {
        AppConfig {
            id: id.into(),
            signing_secret: signing_secret.into(),
            access_token_ttl_secs: DEFAULT_ACCESS_TOKEN_TTL_SECS,
            refresh_token_ttl_secs: DEFAULT_REFRESH_TOKEN_TTL_SECS,
            providers: ProvidersConfig::default(),
        }
    }

    /// Turn on every implemented provider (email/password with auto-confirm).
    pub fn with_all_providers(mut self) -> AppConfig {
        self.providers.anon_user.enabled = true;
        self.providers.local_userpass.enabled = true;
        self.providers.local_userpass.auto_confirm = true;
        self.providers.api_key.enabled = true;
        // custom-token (HS256) needs no outside service: a fresh random key, readable as
        // `providers.custom_token.signing_keys[0]` so the dev command can print it.
        let custom_token = &mut self.providers.custom_token;
        custom_token.enabled = true;
        if custom_token.signing_keys.is_empty() && custom_token.jwks_url.is_none() {
            custom_token.signing_algorithm = SigningAlgorithm::HS256;
            custom_token.signing_keys = vec![random_secret()];
        }
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
        for (name, ttl) in [
            ("access_token_ttl_secs", self.access_token_ttl_secs),
            ("refresh_token_ttl_secs", self.refresh_token_ttl_secs),
        ] {
            if ttl == 0 || ttl > MAX_TOKEN_TTL_SECS {
                return invalid(format!(
                    "app {:?}: {name} must be between 1 and {MAX_TOKEN_TTL_SECS}",
                    self.id
                ));
            }
        }
        self.providers.local_userpass.validate(&self.id)?;
        self.providers.custom_function.validate(&self.id)?;
        self.providers.custom_token.validate(&self.id)?;
        self.providers.google.validate(&self.id)?;
        self.providers.apple.validate(&self.id)?;
        self.providers.facebook.validate(&self.id)?;
        Ok(())
    }
}

/// 32 random bytes as 64 hex digits.
pub(crate) fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database", &self.database)
            .field("public_url", &self.public_url)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("apps", &self.apps)
            .field("smtp", &self.smtp)
            .field("outbox", &self.outbox)
            .field("throttle", &self.throttle)
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .finish()
    }
}

impl fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppConfig")
            .field("id", &self.id)
            .field("signing_secret", &"<redacted>")
            .field("access_token_ttl_secs", &self.access_token_ttl_secs)
            .field("refresh_token_ttl_secs", &self.refresh_token_ttl_secs)
            .field("providers", &self.providers)
            .finish()
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

    #[test]
    fn full_config_parses() {
        let c = Config::from_toml_str(
            r#"
            listen = "0.0.0.0:8080"
            database = "sqlite:///tmp/x.db"
            public_url = "https://auth.example.org/"
            admin_token = "0123456789abcdef0123"
            future_key = "ignored"
            [[apps]]
            id = "myapp-abcde"
            signing_secret = "0123456789abcdef0123456789abcdef"
            access_token_ttl_secs = 60
            refresh_token_ttl_secs = 120
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
        let secret = c.apps[0].signing_secret.clone();
        let admin = c.admin_token.clone().unwrap();
        let s = format!("{c:?}");
        assert!(!s.contains(&secret) && !s.contains(&admin), "{s}");
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
    fn dev_has_random_secrets() {
        assert_ne!(
            Config::dev().apps[0].signing_secret,
            Config::dev().apps[0].signing_secret
        );
    }
}
