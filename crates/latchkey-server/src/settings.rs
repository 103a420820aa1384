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
    UnknownKey(UnknownKey),
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

/// A configuration key or table that no configuration type reads.
///
/// Its `Display` names the key, the table it is in, its line and, when one is close,
/// the valid key it was probably meant to be:
///
/// ```
/// let err = latchkey_server::Config::from_toml_str(
///     "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite::memory:\"\n[throtle]\n",
/// )
/// .unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "invalid config: unknown key `throtle` at line 3 (top level); did you mean `throttle`?"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnknownKey {
    /// The key as written (for a table header, the header's unknown part).
    pub key: String,
    /// The table it is in, e.g. `apps.providers.local-userpass`; `None` at top level.
    pub table: Option<String>,
    /// 1-based line of the key, when known.
    pub line: Option<usize>,
    /// The nearest valid key, when one is close enough to be a likely misspelling.
    pub suggestion: Option<String>,
    /// Every valid key of that table, when known.
    pub valid: Vec<String>,
}

impl fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown key `{}`", self.key)?;
        if let Some(line) = self.line {
            write!(f, " at line {line}")?;
        }
        match &self.table {
            Some(table) => write!(f, " in [{table}]")?,
            None => write!(f, " (top level)")?,
        }
        match &self.suggestion {
            Some(s) => write!(f, "; did you mean `{s}`?"),
            None if !self.valid.is_empty() => {
                write!(f, "; valid keys here: {}", self.valid.join(", "))
            }
            None => Ok(()),
        }
    }
}
