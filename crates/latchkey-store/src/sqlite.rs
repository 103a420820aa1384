//! [`Store`] on SQLite through sqlx: connecting, migrations (and the adoption of databases
//! made before the migration files); the methods are the shared SQL of `sql.rs`.

use std::str::FromStr;
use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::types::Json;
use sqlx::{Sqlite, SqlitePool};

use crate::throttle::{RuleKind, ThrottleRow};
use crate::{
    ApiKeyKind, ApiKeyRecord, CredentialStatus, IdentityRecord, OutboxRecord, SessionRecord, Store,
    StoreError, StoreOptions, ThrottleDecision, ThrottleHit, ThrottleRule, TokenPurpose,
    UserRecord, UserpassRecord, UserpassTokenRecord,
};

/// The SQLite migrations (`migrations/sqlite/*.sql`), embedded at compile time.
static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// SQLite storage.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Open (and create when missing) `sqlite://PATH`, or a private in-memory database
    /// for `sqlite::memory:`. Does not migrate: call [`Store::migrate`].
    pub async fn connect(url: &str) -> Result<SqliteStore, StoreError> {
        SqliteStore::connect_with(url, &StoreOptions::default()).await
    }

    /// [`SqliteStore::connect`] with [`StoreOptions`]: `max_connections` (a file's pool;
    /// an in-memory database keeps exactly one connection), `connect_timeout` (waiting
    /// for a connection) and `statement_timeout` (the busy timeout: how long a statement
    /// waits for the database lock).
    pub async fn connect_with(
        url: &str,
        options: &StoreOptions,
    ) -> Result<SqliteStore, StoreError> {
        let memory =
            url == "sqlite::memory:" || url.contains(":memory:") || url.contains("mode=memory");
        if !memory {
            create_parent_dir(url)?;
            check_writable(url)?;
        }
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(options.statement_timeout.unwrap_or(Duration::from_secs(5)));
        let (connect, pool) = if memory {
            // Each connection to an in-memory database sees its own empty database:
            // keep exactly one connection, forever.
            (
                connect,
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None),
            )
        } else {
            (
                connect
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal),
                SqlitePoolOptions::new()
                    .max_connections(options.max_connections.unwrap_or(8))
                    // A connection whose COMMIT or ROLLBACK failed (a full disk, an I/O
                    // error) can come back still inside a transaction, holding the write
                    // lock: every later write would wait for it and fail "database is
                    // locked", forever. Close such a connection (closing releases its
                    // locks) instead of pooling it; the pool opens a fresh one.
                    .after_release(|conn, _| {
                        Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
                    }),
            )
        };
        let pool = match options.connect_timeout {
            Some(timeout) => pool.acquire_timeout(timeout),
            None => pool,
        };
        let pool = pool.connect_with(connect).await?;
        Ok(SqliteStore { pool })
    }

    /// Adopt the databases of earlier releases, then run the migrations.
    async fn run_migrations(&self) -> Result<(), StoreError> {
        self.adopt_legacy_migrations().await?;
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Adopt a database made before the migration files: its applied versions are in a
    /// `schema_migrations(version, applied_at)` table and it has no `_sqlx_migrations`.
    /// Record those versions in `_sqlx_migrations` with the migrator's own checksums, in
    /// one transaction, so that they are not run again and later migrations apply.
    /// `schema_migrations` is left as it was, so the earlier release still opens the
    /// database.
    async fn adopt_legacy_migrations(&self) -> Result<(), StoreError> {
        // IMMEDIATE: two servers starting on one file adopt once, one after the other.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master
             WHERE type = 'table' AND name IN ('schema_migrations', '_sqlx_migrations')",
        )
        .fetch_all(&mut *tx)
        .await?;
        if tables != ["schema_migrations"] {
            return Ok(());
        }
        tx.ensure_migrations_table().await?;
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
                .fetch_all(&mut *tx)
                .await?;
        for migration in MIGRATOR.iter().filter(|m| applied.contains(&m.version)) {
            sqlx::query(
                "INSERT INTO _sqlx_migrations
                 (version, description, success, checksum, execution_time)
                 VALUES (?, ?, TRUE, ?, -1)",
            )
            .bind(migration.version)
            .bind(&*migration.description)
            .bind(&*migration.checksum)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        tracing::info!(?applied, "adopted the migrations of an earlier release");
        Ok(())
    }
}

/// The file path of a `sqlite://PATH` URL.
fn file_path(url: &str) -> &std::path::Path {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    std::path::Path::new(rest.split('?').next().unwrap_or(rest))
}

/// Refuse a database file that cannot be written (read-only permissions, or a file
/// that cannot be opened for writing): the server would start and fail every write.
/// [`StoreError::Config`] naming the path.
fn check_writable(url: &str) -> Result<(), StoreError> {
    if url.contains("mode=ro") {
        return Ok(());
    }
    let path = file_path(url);
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    let refuse = |why: String| {
        Err(StoreError::Config(format!(
            "the database file {} cannot be written: {why}",
            path.display()
        )))
    };
    if meta.permissions().readonly() {
        return refuse("it is read-only".to_owned());
    }
    if let Err(e) = std::fs::OpenOptions::new().append(true).open(path) {
        return refuse(e.to_string());
    }
    Ok(())
}

/// Create the directory of a `sqlite://PATH` database file when it is missing.
fn create_parent_dir(url: &str) -> Result<(), StoreError> {
    let path = file_path(url);
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            StoreError::Database(format!(
                "cannot create database directory {}: {e}",
                parent.display()
            ))
        })?;
    }
    Ok(())
}

crate::sql::impl_store!(SqliteStore, Sqlite);
