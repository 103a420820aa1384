//! Building blocks of configuration tables, shared by the server configuration
//! ([`crate::config`]) and the providers' own tables: the error, value checks and
//! serde helpers.

use std::fmt;
use std::path::PathBuf;

use latchkey_protocol::Secret;
use serde::Serializer;

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

/// Serialize a [`Secret`] as its value (`Secret` has no `Serialize` of its own, so
/// that writing one out is always spelled out like this).
pub(crate) fn expose_secret<S: Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose())
}

/// [`expose_secret`] for an optional secret.
pub(crate) fn expose_optional_secret<S: Serializer>(
    secret: &Option<Secret>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => s.serialize_some(secret.expose()),
        None => s.serialize_none(),
    }
}

/// [`expose_secret`] for a list of secrets.
pub(crate) fn expose_secrets<S: Serializer>(secrets: &[Secret], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(secrets.iter().map(Secret::expose))
}
