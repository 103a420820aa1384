//! [`StoreError`], and its conversion from the database driver's errors.

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

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict,
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
