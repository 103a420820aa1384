//! The HTTP edge's configuration: the `[http]` table (timeouts and the connection cap
//! against slow clients and floods) and each app's `allowed_origins` (CORS). The
//! server's `http` layer enforces them; they live here so that reading and checking a
//! configuration needs nothing of the HTTP stack.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::settings::ConfigError;

/// Default [`HttpConfig::header_read_timeout_secs`].
pub(crate) const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// Default [`HttpConfig::body_read_timeout_secs`].
pub(crate) const DEFAULT_BODY_READ_TIMEOUT_SECS: u64 = 15;
/// Default [`HttpConfig::idle_timeout_secs`].
pub(crate) const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// Default [`HttpConfig::max_connections`]: below the common soft limit of 1,024 open
/// files, leaving room for the database and log files.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Largest accepted timeout (one hour).
pub(crate) const MAX_HTTP_TIMEOUT_SECS: u64 = 3600;
/// Largest accepted [`HttpConfig::max_connections`].
pub(crate) const MAX_MAX_CONNECTIONS: usize = 1_000_000;
/// The `allowed_origins` entry that allows every origin.
pub(crate) const ANY_ORIGIN: &str = "*";
/// Most `allowed_origins` entries per app.
pub(crate) const MAX_ALLOWED_ORIGINS: usize = 100;

/// The optional top-level `[http]` table: timeouts and the connection cap that keep
/// slow or idle clients from exhausting the server. Every key is optional.
///
/// ```
/// let config = latchkey_server::Config::from_toml_str(r#"
///     listen = "127.0.0.1:0"
///     database = "sqlite::memory:"
///     [http]
///     header_read_timeout_secs = 5
///     max_connections = 2000
///     [[apps]]
///     id = "myapp"
///     signing_secret = "0123456789abcdef0123456789abcdef"
/// "#).unwrap();
/// assert_eq!(config.http.header_read_timeout_secs, 5);
/// assert_eq!(config.http.idle_timeout_secs, 60);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Seconds a client has to send a whole request head (request line and headers),
    /// from the opening of the connection or the first byte of a later request
    /// (default 10).
    pub header_read_timeout_secs: u64,
    /// Seconds a client has to send a whole request body, from the end of its head
    /// (default 15). Past it the answer is 408 and the connection is closed.
    pub body_read_timeout_secs: u64,
    /// Seconds a kept-alive connection may stay silent after its last response, and
    /// that the server waits for a client to read a response (default 60).
    pub idle_timeout_secs: u64,
    /// Most connections open at once (default 512). Further connections wait in the
    /// listen queue until one closes. Keep it below the process's open-file limit
    /// (`ulimit -n`) minus some 64 for the database and logs.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_read_timeout_secs: DEFAULT_HEADER_READ_TIMEOUT_SECS,
            body_read_timeout_secs: DEFAULT_BODY_READ_TIMEOUT_SECS,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl HttpConfig {
    /// Whether every value is the default (the table is then not written out).
    pub fn is_default(&self) -> bool {
        *self == HttpConfig::default()
    }

    /// Check the values: timeouts from 1 s to an hour, a cap from 1 to a million.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, secs) in [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("body_read_timeout_secs", self.body_read_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
        ] {
            if secs == 0 || secs > MAX_HTTP_TIMEOUT_SECS {
                return Err(ConfigError::Invalid(format!(
                    "http.{name} must be between 1 and {MAX_HTTP_TIMEOUT_SECS}"
                )));
            }
        }
        if self.max_connections == 0 || self.max_connections > MAX_MAX_CONNECTIONS {
            return Err(ConfigError::Invalid(format!(
                "http.max_connections must be between 1 and {MAX_MAX_CONNECTIONS}"
            )));
        }
        Ok(())
    }

    /// [`HttpConfig::header_read_timeout_secs`] as a duration.
    pub(crate) fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }

    /// [`HttpConfig::idle_timeout_secs`] as a duration.
    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// [`HttpConfig::body_read_timeout_secs`] as a duration.
    pub(crate) fn body_read_timeout(&self) -> Duration {
        Duration::from_secs(self.body_read_timeout_secs)
    }
}

/// Check an app's `allowed_origins`: `"*"`, or origins as browsers send them,
/// `http(s)://host[:port]` without a path or a trailing slash.
pub(crate) fn validate_allowed_origins(app: &str, origins: &[String]) -> Result<(), ConfigError> {
    if origins.len() > MAX_ALLOWED_ORIGINS {
        return Err(ConfigError::Invalid(format!(
            "app {app:?}: allowed_origins has more than {MAX_ALLOWED_ORIGINS} entries"
        )));
    }
    for origin in origins {
        if origin != ANY_ORIGIN && !is_origin(origin) {
            return Err(ConfigError::Invalid(format!(
                "app {app:?}: allowed_origins entry {origin:?} must be \"*\" or an origin \
                 such as \"https://app.example\" (scheme, host and optional port; no path, \
                 no trailing slash)"
            )));
        }
    }
    Ok(())
}

/// `http(s)://host[:port]`, nothing more.
fn is_origin(s: &str) -> bool {
    let Some(authority) = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
    else {
        return false;
    };
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 literal without a port ends with ']'.
        Some((h, p)) if !p.ends_with(']') => (h, Some(p)),
        _ => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '[' | ']' | ':'));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    host_ok && port_ok
}
