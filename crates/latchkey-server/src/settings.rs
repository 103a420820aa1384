//! Building blocks of configuration tables, shared by the server configuration
//! ([`crate::config`]) and the providers' own tables: the error, value checks and
//! serde helpers.

use std::fmt;
use std::path::PathBuf;

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
    /// A key or table that no configuration type reads (usually a misspelling).
    #[error("invalid config: {0}")]
    UnknownKey(crate::strict::UnknownKey),
}

/// [`ConfigError::Invalid`] about the `[apps.providers.<provider>]` table of `app`.
pub(crate) fn invalid<T>(
    app: &str,
    provider: &str,
    message: impl fmt::Display,
) -> Result<T, ConfigError> {
    Err(ConfigError::Invalid(format!(
        "app {app:?}: [apps.providers.{provider}] {message}"
    )))
}

/// An absolute `http://` or `https://` URL without spaces.
pub(crate) fn check_url(
    app: &str,
    provider: &str,
    key: &str,
    url: &str,
) -> Result<(), ConfigError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !url.contains(char::is_whitespace) => {
            Ok(())
        }
        _ => invalid(
            app,
            provider,
            format!("{key} must be an absolute http:// or https:// URL, got {url:?}"),
        ),
    }
}

/// No blank string in `values`.
pub(crate) fn check_non_empty(
    app: &str,
    provider: &str,
    key: &str,
    values: &[String],
) -> Result<(), ConfigError> {
    if values.iter().any(|v| v.trim().is_empty()) {
        return invalid(
            app,
            provider,
            format!("{key} must not contain empty strings"),
        );
    }
    Ok(())
}

/// The serde default of switches that are on unless turned off (a provider's
/// `enabled`: a present table turns it on).
pub(crate) fn yes() -> bool {
    true
}

// Secrets serialize through `latchkey_protocol::secret::{expose, expose_option,
// expose_all}`, the one named way to write a secret out.
pub(crate) use latchkey_protocol::secret::{
    expose as expose_secret, expose_all as expose_secrets, expose_option as expose_optional_secret,
};
