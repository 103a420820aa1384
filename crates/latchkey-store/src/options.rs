//! [`StoreOptions`]: how [`open_with`](crate::open_with) connects, beyond the URL.

use std::time::Duration;

use latchkey_protocol::Secret;

use crate::StoreError;

/// Connection settings beside the database URL. Every field is optional; unset fields
/// take the engine's default.
///
/// ```
/// use std::time::Duration;
/// use latchkey_store::StoreOptions;
///
/// let options = StoreOptions::default()
///     .max_connections(20)
///     .connect_timeout(Duration::from_secs(5))
///     .statement_timeout(Duration::from_secs(10))
///     .password_env("LATCHKEY_DATABASE_PASSWORD");
/// assert_eq!(options.max_connections, Some(20));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Most connections in the pool. Default: 10 on PostgreSQL, 8 for a SQLite file (an
    /// in-memory SQLite database always has exactly one).
    pub max_connections: Option<u32>,
    /// How long to wait for a connection (connecting included) before failing. Default:
    /// 10 s on PostgreSQL, 30 s on SQLite.
    pub connect_timeout: Option<Duration>,
    /// PostgreSQL: the server's `statement_timeout` (a statement running longer is
    /// cancelled, and fails as [`StoreError::Unavailable`](crate::StoreError::Unavailable):
    /// servers answer it 503 with `Retry-After`). SQLite: how long a statement waits for the database lock (its busy
    /// timeout). Default: none on PostgreSQL, 5 s on SQLite.
    pub statement_timeout: Option<Duration>,
    /// PostgreSQL: the name of an environment variable that holds the password, used
    /// when the URL has none (so the URL in the configuration file can stay free of
    /// secrets). Ignored by SQLite.
    pub password_env: Option<String>,
}

impl StoreOptions {
    /// Set [`StoreOptions::max_connections`].
    pub fn max_connections(mut self, max: u32) -> Self {
        self.max_connections = Some(max);
        self
    }

    /// Set [`StoreOptions::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Set [`StoreOptions::statement_timeout`].
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = Some(timeout);
        self
    }

    /// Set [`StoreOptions::password_env`].
    pub fn password_env(mut self, name: impl Into<String>) -> Self {
        self.password_env = Some(name.into());
        self
    }

    /// The password of [`StoreOptions::password_env`], when one is named.
    /// [`StoreError::Config`] when the variable is not set (the message names the
    /// variable, never a value).
    pub(crate) fn env_password(&self) -> Result<Option<Secret>, StoreError> {
        let Some(name) = &self.password_env else {
            return Ok(None);
        };
        // Not `VarError`'s own message: for a value that is not UTF-8 it shows the value.
        let problem = match std::env::var(name) {
            Ok(value) => return Ok(Some(Secret::new(value))),
            Err(std::env::VarError::NotPresent) => "is not set",
            Err(std::env::VarError::NotUnicode(_)) => "is not valid UTF-8",
        };
        Err(StoreError::Config(format!(
            "the database password variable {name} {problem}"
        )))
    }
}
