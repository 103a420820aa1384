//! The operators' tables: `[metrics]` (Prometheus `GET /metrics`, optionally on its own
//! listen address) and `[console]` (the web console at `/console`). The health routes
//! (`/healthz`, `/readyz`) need no configuration.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::settings::ConfigError;

/// Shortest accepted [`ConsoleConfig::session_ttl_secs`] (one minute).
pub(crate) const MIN_CONSOLE_SESSION_TTL_SECS: u64 = 60;
/// Longest accepted [`ConsoleConfig::session_ttl_secs`] (one week).
pub(crate) const MAX_CONSOLE_SESSION_TTL_SECS: u64 = 7 * 24 * 3600;

/// The optional top-level `[metrics]` table: Prometheus metrics in the text format.
///
/// ```
/// let config = latchkey_server::Config::from_toml_str(r#"
///     listen = "0.0.0.0:8080"
///     database = "sqlite::memory:"
///     [metrics]
///     enabled = true
///     listen = "127.0.0.1:9464"
///     [[apps]]
///     id = "myapp"
///     signing_secret = "0123456789abcdef0123456789abcdef"
/// "#).unwrap();
/// assert!(config.metrics.enabled);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `GET /metrics` (default false; on in `latchkey-server dev`).
    pub enabled: bool,
    /// Serve `/metrics` on this address only, instead of on the main `listen` address
    /// (so that it need not be public). Port 0 picks a free port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
}

impl MetricsConfig {
    pub(crate) fn is_default(&self) -> bool {
        self == &MetricsConfig::default()
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.listen.is_some() && !self.enabled {
            return Err(ConfigError::Invalid(
                "metrics.listen is set but metrics.enabled is false".to_owned(),
            ));
        }
        Ok(())
    }
}

/// The optional top-level `[console]` table: the web console for operators at
/// `/console`. It signs in with the `admin_token`: without one it stays off, as the
/// admin API does.
///
/// ```
/// let config = latchkey_server::Config::from_toml_str(r#"
///     listen = "127.0.0.1:0"
///     database = "sqlite::memory:"
///     admin_token = "a-long-random-admin-token"
///     [console]
///     enabled = true
///     [[apps]]
///     id = "myapp"
///     signing_secret = "0123456789abcdef0123456789abcdef"
/// "#).unwrap();
/// assert!(config.console.enabled);
/// assert_eq!(config.console.session_ttl_secs, 8 * 3600);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Serve the console (default false; on in `latchkey-server dev`).
    pub enabled: bool,
    /// Seconds a console sign-in lasts (default 8 hours, at least 60, at most a week).
    pub session_ttl_secs: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: false,
            session_ttl_secs: 8 * 3600,
        }
    }
}

impl ConsoleConfig {
    pub(crate) fn is_default(&self) -> bool {
        self == &ConsoleConfig::default()
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let ttl = MIN_CONSOLE_SESSION_TTL_SECS..=MAX_CONSOLE_SESSION_TTL_SECS;
        if !ttl.contains(&self.session_ttl_secs) {
            return Err(ConfigError::Invalid(format!(
                "console.session_ttl_secs must be between {} and {}",
                ttl.start(),
                ttl.end()
            )));
        }
        Ok(())
    }
}
