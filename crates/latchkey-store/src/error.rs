//! [`StoreError`], and its conversion from the database driver's errors.

use std::sync::atomic::{AtomicU64, Ordering};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness constraint failed (duplicate email, identity already linked, ...).
    #[error("record already exists")]
    Conflict,
    /// The database failed.
    #[error("database error: {0}")]
    Database(String),
    /// The database cannot be reached or cannot serve now (connection refused or lost,
    /// no connection free within the connect timeout, the server shutting down or
    /// starting, a statement timeout, a full disk, a locked or read-only SQLite file):
    /// the same request may succeed later. Servers answer it 503 with `Retry-After`.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A stored value could not be decoded.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// The database URL or [`StoreOptions`](crate::StoreOptions) cannot be used (a
    /// malformed URL, a PostgreSQL URL without a database, a password variable that is not
    /// set). The message never holds a password.
    #[error("invalid database configuration: {0}")]
    Config(String),
    /// The database URL names no engine this crate supports (see [`crate::open`]).
    #[error(
        "unsupported database URL (scheme {scheme:?}): supported are {}",
        crate::SUPPORTED_URLS
    )]
    UnsupportedUrl {
        /// What stood before the URL's first `:` (the rest of the URL may hold a
        /// password, so it is not kept).
        scheme: String,
    },
}

impl StoreError {
    /// Whether this is [`StoreError::Unavailable`]: a failure that a retry later may not
    /// meet.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// The same error with `context` (what was being done, to which database) before its
    /// message; the kind stays. `context` must hold no secret.
    pub(crate) fn context(self, context: &str) -> StoreError {
        match self {
            StoreError::Database(m) => StoreError::Database(format!("{context}: {m}")),
            StoreError::Unavailable(m) => StoreError::Unavailable(format!("{context}: {m}")),
            StoreError::Corrupt(m) => StoreError::Corrupt(format!("{context}: {m}")),
            StoreError::Config(m) => StoreError::Config(format!("{context}: {m}")),
            other => other,
        }
    }
}

/// Whether a database's own error code means "not now" rather than "never":
/// PostgreSQL's SQLSTATE classes 08 (connection exception), 53 (insufficient
/// resources), 57 (operator intervention: shutdown, cannot connect now, and 57014, a
/// statement cancelled by `statement_timeout` or an operator: the database is too slow or
/// busy now, and the same request may well pass later) and 40001/40P01 (serialization
/// failure, deadlock); SQLite's BUSY, LOCKED,
/// READONLY, IOERR, FULL and CANTOPEN (extended codes included).
fn unavailable_code(code: &str) -> bool {
    // SQLite's codes are numbers below 10 000; PostgreSQL's SQLSTATEs are 5 characters.
    if code.len() < 5
        && let Ok(n) = code.parse::<u32>()
    {
        // SQLite: the primary result code is the low byte of the extended one.
        return matches!(n & 0xff, 5 | 6 | 8 | 10 | 13 | 14);
    }
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57")
        || code == "40001"
        || code == "40P01"
}

/// Failed database statements of this process (all stores), by kind: unavailable,
/// database, corrupt. Read with [`query_errors`].
static QUERY_ERRORS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// Database statements that failed in this process since it started, over every store
/// (a uniqueness conflict, the answer to a duplicate, is not a failure), for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryErrors {
    /// Failures that may pass later ([`StoreError::Unavailable`]).
    pub unavailable: u64,
    /// Other database failures ([`StoreError::Database`]).
    pub database: u64,
    /// Stored values that could not be decoded ([`StoreError::Corrupt`]).
    pub corrupt: u64,
}

/// The [`QueryErrors`] counted so far.
pub fn query_errors() -> QueryErrors {
    let n = |i: usize| QUERY_ERRORS[i].load(Ordering::Relaxed);
    QueryErrors {
        unavailable: n(0),
        database: n(1),
        corrupt: n(2),
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let error = StoreError::from_driver(e);
        let kind = match &error {
            StoreError::Unavailable(_) => Some(0),
            StoreError::Database(_) => Some(1),
            StoreError::Corrupt(_) => Some(2),
            _ => None,
        };
        if let Some(i) = kind {
            QUERY_ERRORS[i].fetch_add(1, Ordering::Relaxed);
        }
        error
    }
}

impl StoreError {
    fn from_driver(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict,
            sqlx::Error::Database(ref d)
                if d.code().is_some_and(|code| unavailable_code(&code)) =>
            {
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(e.to_string())
            }
            e => StoreError::Database(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Database(format!("migration failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_and_conflicts_are_not() {
        let before = query_errors();
        let _ = StoreError::from(sqlx::Error::PoolTimedOut);
        let _ = StoreError::from(sqlx::Error::RowNotFound);
        let after = query_errors();
        assert!(after.unavailable > before.unavailable);
        assert!(after.database > before.database);
    }

    #[test]
    fn transient_codes() {
        for code in [
            "08006", "08001", "57P01", "57P03", "57014", "53300", "40001", "5", "517", "8", "13",
            "14", "1546",
        ] {
            assert!(unavailable_code(code), "{code}");
        }
        for code in [
            "23505", "23503", "42P01", "22P02", "22021", "1", "19", "2067",
        ] {
            assert!(!unavailable_code(code), "{code}");
        }
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(!StoreError::from(sqlx::Error::RowNotFound).is_unavailable());
    }
}
