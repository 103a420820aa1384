//! [`Store`] on SQLite through sqlx: connecting, migrations (and the adoption of databases
//! made before the migration files); the methods are the shared SQL of `sql.rs`.

use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::types::Json;
use sqlx::{Sqlite, SqlitePool};

use crate::sqlite_reads::{InPlaceReads, ReadInPlace};
use crate::throttle::{RuleKind, ThrottleRow};
use latchkey_protocol::Secret;

use crate::{
    ApiKeyKind, ApiKeyRecord, CredentialStatus, IdentityRecord, OAuthStateRecord, OutboxRecord,
    SessionRecord, Store, StoreError, StoreOptions, ThrottleDecision, ThrottleHit, ThrottleRule,
    TokenPurpose, UserRecord, UserpassEmail, UserpassRecord, UserpassTokenRecord,
};

/// The SQLite migrations (`migrations/sqlite/*.sql`), embedded at compile time.
static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// SQLite storage.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Where reads go: several connections (WAL readers do not wait for the writer).
    pool: SqlitePool,
    /// Where writes go: one connection for a file (the same single connection for an
    /// in-memory database). SQLite lets one connection write at a time; with a pool of
    /// writers, a write that finds the lock taken sleeps in SQLite's busy handler (1, 2,
    /// 5, 10... ms) even when the lock is free again a few microseconds later. One writer
    /// connection queues writes in this process's pool instead, first come first served,
    /// and the busy timeout is left for other processes on the same file.
    writer: SqlitePool,
    /// The hot reads made on the calling thread (a file; not an in-memory database,
    /// whose one connection the pool holds): `sqlite_reads`.
    in_place: Option<Arc<InPlaceReads>>,
    /// The database file's path (or `:memory:`), for messages.
    target: String,
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
    ///
    /// A database file this call creates is created owner-only (`0600` on Unix; SQLite
    /// gives its `-wal` and `-shm` files the database file's mode), and a directory it
    /// creates `0700`: the file holds password hashes and outbox tokens. Only
    /// `sqlite::memory:`, `sqlite://:memory:` and a `mode=memory` parameter are
    /// in-memory databases; any other URL names a file, whatever its path contains.
    /// Errors name the file.
    pub async fn connect_with(
        url: &str,
        options: &StoreOptions,
    ) -> Result<SqliteStore, StoreError> {
        let memory = is_memory(url);
        let target = if memory {
            ":memory:".to_owned()
        } else {
            file_path(url).display().to_string()
        };
        let opened = |e: StoreError| e.context(&format!("cannot open SQLite database {target}"));
        if !memory {
            create_parent_dir(url)?;
            check_writable(url)?;
            create_private_file(url).map_err(opened)?;
        }
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| opened(e.into()))?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(options.statement_timeout.unwrap_or(Duration::from_secs(5)));
        let (connect, pool, writer) = if memory {
            // Each connection to an in-memory database sees its own empty database:
            // keep exactly one connection, forever.
            (
                connect,
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None),
                None,
            )
        } else {
            // A connection whose COMMIT or ROLLBACK failed (a full disk, an I/O error)
            // can come back still inside a transaction, holding the write lock: every
            // later write would wait for it and fail "database is locked", forever.
            // Close such a connection (closing releases its locks) instead of pooling
            // it; the pool opens a fresh one.
            let pool = |size: u32| {
                SqlitePoolOptions::new()
                    .max_connections(size)
                    .after_release(|conn, _| {
                        Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
                    })
            };
            (
                connect
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal),
                pool(options.max_connections.unwrap_or(8)),
                Some(pool(1)),
            )
        };
        let timed = |pool: SqlitePoolOptions| match options.connect_timeout {
            Some(timeout) => pool.acquire_timeout(timeout),
            None => pool,
        };
        let pool = timed(pool)
            .connect_with(connect.clone())
            .await
            .map_err(|e| opened(e.into()))?;
        let writer = match writer {
            Some(writer) => timed(writer)
                .connect_with(connect)
                .await
                .map_err(|e| opened(e.into()))?,
            None => pool.clone(),
        };
        let in_place = (!memory).then(|| Arc::new(InPlaceReads::new(file_path(url))));
        Ok(SqliteStore {
            pool,
            writer,
            in_place,
            target,
        })
    }

    /// The database file's path, or `:memory:`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Adopt the databases of earlier releases, then run the migrations. Errors name the
    /// file.
    async fn run_migrations(&self) -> Result<(), StoreError> {
        let failed =
            |e: StoreError| e.context(&format!("cannot migrate SQLite database {}", self.target));
        self.adopt_legacy_migrations().await.map_err(failed)?;
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| failed(e.into()))?;
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

/// A login's statements as one SQL text (see [`SqliteStore::write_login`]): with a new
/// user, `INSERT_USER` (`$1..$5`), `INSERT_IDENTITY` (`$6..$11`), `UPSERT_DEVICE`
/// (`$12..$15`) and `INSERT_SESSION` (`$16..$23`); without, the last two from `$1`.
fn login_sql(new_user: bool) -> String {
    use crate::sql::{
        INSERT_IDENTITY, INSERT_SESSION, INSERT_USER, UPSERT_DEVICE, shift_placeholders,
    };
    let mut statements = vec!["BEGIN IMMEDIATE".to_owned()];
    let mut shift = 0;
    if new_user {
        statements.push(INSERT_USER.to_owned());
        statements.push(shift_placeholders(INSERT_IDENTITY, 5));
        shift = 11;
    }
    statements.push(shift_placeholders(UPSERT_DEVICE, shift));
    statements.push(shift_placeholders(INSERT_SESSION, shift + 4));
    statements.push("COMMIT".to_owned());
    statements.join(";\n")
}

static NEW_USER_LOGIN: LazyLock<String> = LazyLock::new(|| login_sql(true));
static LOGIN: LazyLock<String> = LazyLock::new(|| login_sql(false));

/// Hot reads of a file on the calling thread (`sqlite_reads`); an in-memory database
/// reads through its one pooled connection.
impl ReadInPlace for SqliteStore {
    fn in_place(&self) -> Option<&InPlaceReads> {
        self.in_place.as_deref()
    }
}

impl SqliteStore {
    /// [`Store::start_session`] in one call to the connection's worker thread: the
    /// statements, between `BEGIN IMMEDIATE` and `COMMIT`, are one SQL text run on the
    /// writer connection (sqlx binds `$N` by number across the statements; each is
    /// prepared once and cached). A failure rolls back; a connection that cannot roll
    /// back is closed, which rolls back.
    async fn write_login(
        &self,
        new_user: Option<(&UserRecord, &IdentityRecord)>,
        s: &SessionRecord,
    ) -> Result<(), StoreError> {
        let mut query = sqlx::query(if new_user.is_some() {
            NEW_USER_LOGIN.as_str()
        } else {
            LOGIN.as_str()
        });
        if let Some((user, identity)) = new_user {
            query = query
                .bind(&user.app_id)
                .bind(&user.id)
                .bind(user.created_at)
                .bind(user.disabled)
                .bind(user.custom_data.as_ref().map(Json))
                .bind(&identity.app_id)
                .bind(&identity.provider_type)
                .bind(&identity.id)
                .bind(&identity.user_id)
                .bind(Json(&identity.data))
                .bind(identity.created_at);
        }
        let query = query
            .bind(&s.app_id)
            .bind(&s.device_id)
            .bind(&s.user_id)
            .bind(s.created_at)
            .bind(&s.app_id)
            .bind(&s.id)
            .bind(&s.user_id)
            .bind(&s.device_id)
            .bind(s.created_at)
            .bind(s.expires_at)
            .bind(&s.provider_type)
            .bind(&s.identity_id);
        let mut conn = self.writer.acquire().await?;
        let Err(e) = query.execute(&mut *conn).await else {
            return Ok(());
        };
        // The error came inside the transaction (ROLLBACK ends it), or at BEGIN or
        // COMMIT, where ROLLBACK may fail: then close the connection, which ends any
        // transaction it still holds; the pool opens a fresh one.
        if sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err() {
            conn.close().await.ok();
        }
        Err(e.into())
    }
}

/// The database part and the parameters of a `sqlite:` URL, split as sqlx splits them.
fn database_and_params(url: &str) -> (&str, Option<&str>) {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    match rest.split_once('?') {
        Some((database, params)) => (database, Some(params)),
        None => (rest, None),
    }
}

/// Whether `url` names an in-memory database, exactly as sqlx decides: the database part
/// is `:memory:` (`sqlite::memory:`, `sqlite://:memory:`), or a parameter says
/// `mode=memory`. A file path that merely contains `:memory:` is a file.
fn is_memory(url: &str) -> bool {
    let (database, params) = database_and_params(url);
    database == ":memory:"
        || params.is_some_and(|p| {
            url::form_urlencoded::parse(p.as_bytes()).any(|(k, v)| k == "mode" && v == "memory")
        })
}

/// The file path of a `sqlite://PATH` URL (percent-decoded, as sqlx opens it).
fn file_path(url: &str) -> std::path::PathBuf {
    let (database, _) = database_and_params(url);
    std::path::PathBuf::from(percent_decode(database))
}

/// `%XX` sequences decoded (sqlx decodes the database part so that `?` and `#` can be
/// in a file name); anything that is not valid UTF-8 afterwards is left as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
}

/// Create the database file, empty (an empty file is an empty SQLite database), readable
/// and writable by its owner only, when it does not exist yet. SQLite creates the `-wal`
/// and `-shm` files with the database file's permissions. An existing file keeps its
/// permissions (an operator may have chosen them); one that others can read is warned
/// about.
fn create_private_file(url: &str) -> Result<(), StoreError> {
    let path = file_path(url);
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    match open.open(&path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            #[cfg(unix)]
            if let Ok(meta) = std::fs::metadata(&path) {
                use std::os::unix::fs::PermissionsExt;
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    tracing::warn!(
                        path = %path.display(),
                        mode = format_args!("{mode:o}"),
                        "the database file holds password hashes and tokens but other users \
                         may read it; consider chmod 600"
                    );
                }
            }
            Ok(())
        }
        Err(e) => Err(StoreError::Database(format!(
            "cannot create the database file: {e}"
        ))),
    }
}

/// Refuse a database file that cannot be written (read-only permissions, or a file
/// that cannot be opened for writing): the server would start and fail every write.
/// [`StoreError::Config`] naming the path.
fn check_writable(url: &str) -> Result<(), StoreError> {
    if url.contains("mode=ro") {
        return Ok(());
    }
    let path = file_path(url);
    let Ok(meta) = std::fs::metadata(&path) else {
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
    if let Err(e) = std::fs::OpenOptions::new().append(true).open(&path) {
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
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(parent).map_err(|e| {
            StoreError::Database(format!(
                "cannot create database directory {}: {e}",
                parent.display()
            ))
        })?;
    }
    Ok(())
}

crate::sql::impl_store!(SqliteStore, Sqlite);
