//! [`Store`] on SQLite through sqlx: connecting, migrations (and the adoption of databases
//! made before the migration files); the methods are the shared SQL of `sql.rs`.

use std::collections::HashMap;
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
    /// Logins waiting for the group commit (a file; `None` for an in-memory database).
    logins: Option<tokio::sync::mpsc::UnboundedSender<LoginJob>>,
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
        let logins = (!memory).then(|| {
            let (logins, queue) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(commit_logins(writer.clone(), queue));
            logins
        });
        Ok(SqliteStore {
            pool,
            writer,
            in_place,
            logins,
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

/// The statements of one login (no transaction around them), their placeholders
/// from `$shift + 1`, and how many placeholders they take: with a new user,
/// `INSERT_USER` (5), `INSERT_IDENTITY` (6), `UPSERT_DEVICE` (4) and `INSERT_SESSION`
/// (8); without, the last two.
fn login_statements(new_user: bool, shift: usize, out: &mut Vec<String>) -> usize {
    use crate::sql::{
        INSERT_IDENTITY, INSERT_SESSION, INSERT_USER, UPSERT_DEVICE, shift_placeholders,
    };
    let mut at = shift;
    if new_user {
        out.push(shift_placeholders(INSERT_USER, at));
        out.push(shift_placeholders(INSERT_IDENTITY, at + 5));
        at += 11;
    }
    out.push(shift_placeholders(UPSERT_DEVICE, at));
    out.push(shift_placeholders(INSERT_SESSION, at + 4));
    at + 12 - shift
}

/// One transaction (`BEGIN IMMEDIATE` ... `COMMIT`) of `new_users` logins that create
/// their user, then `existing` logins of known users, as one SQL text.
fn batch_sql(new_users: usize, existing: usize) -> String {
    let mut statements = vec!["BEGIN IMMEDIATE".to_owned()];
    let mut shift = 0;
    for i in 0..new_users + existing {
        shift += login_statements(i < new_users, shift, &mut statements);
    }
    statements.push("COMMIT".to_owned());
    statements.join(";\n")
}

static NEW_USER_LOGIN: LazyLock<String> = LazyLock::new(|| batch_sql(1, 0));
static LOGIN: LazyLock<String> = LazyLock::new(|| batch_sql(0, 1));

/// Bind one login's values, in [`login_statements`]' order (the rows' binders of the
/// shared SQL, `impl_store!`).
fn bind_login<'q>(
    mut query: BoundQuery<'q>,
    new_user: Option<(&'q UserRecord, &'q IdentityRecord)>,
    s: &'q SessionRecord,
) -> BoundQuery<'q> {
    if let Some((user, identity)) = new_user {
        query = bind_identity(bind_user(query, user), identity);
    }
    bind_session(
        bind_device(query, &s.app_id, &s.device_id, &s.user_id, s.created_at),
        s,
    )
}

/// The most logins committed in one transaction.
const MAX_BATCH: usize = 32;

/// A login waiting for the group commit.
struct LoginJob {
    new_user: Option<(UserRecord, IdentityRecord)>,
    session: SessionRecord,
    done: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

/// Group commit of logins (`Store::start_session`): one task takes every login waiting
/// when it is free and commits them in one transaction, in one call into the writer
/// connection's thread. Under load, a commit (and its WAL write) and the thread
/// wake-ups are shared by the batch; alone, a login is a batch of one. A batch that
/// fails (one login conflicts with an existing identity, say) is rolled back and its
/// logins are written one by one, so each gets its own answer. A login answered `Ok`
/// is committed, as without batching.
async fn commit_logins(
    writer: SqlitePool,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<LoginJob>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // New users first: the SQL text depends on the two counts only.
        batch.sort_by_key(|job| job.new_user.is_none());
        let result = if batch.len() == 1 {
            None
        } else {
            Some(write_batch(&writer, &batch).await)
        };
        match result {
            Some(Ok(())) => {
                for job in batch.drain(..) {
                    let _ = job.done.send(Ok(()));
                }
            }
            // One by one: a batch of one, or a batch that failed and was rolled back.
            _ => {
                for job in batch.drain(..) {
                    let new_user = job.new_user.as_ref().map(|(u, i)| (u, i));
                    let result = write_one(&writer, new_user, &job.session).await;
                    let _ = job.done.send(result);
                }
            }
        }
    }
}

/// Every login of `batch` in one transaction.
async fn write_batch(writer: &SqlitePool, batch: &[LoginJob]) -> Result<(), StoreError> {
    /// SQL texts by (new users, known users).
    type Texts = std::sync::Mutex<HashMap<(usize, usize), Arc<str>>>;
    /// The texts made so far, at most [`MAX_TEXTS`] (the mixes a load repeats); a
    /// rarer mix's text is made for its batch and dropped.
    static TEXTS: LazyLock<Texts> = LazyLock::new(Default::default);
    const MAX_TEXTS: usize = 64;
    let new_users = batch.iter().filter(|j| j.new_user.is_some()).count();
    let counts = (new_users, batch.len() - new_users);
    let sql = {
        let mut texts = TEXTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match texts.get(&counts) {
            Some(sql) => Arc::clone(sql),
            None => {
                let sql: Arc<str> = batch_sql(counts.0, counts.1).into();
                if texts.len() < MAX_TEXTS {
                    texts.insert(counts, Arc::clone(&sql));
                }
                sql
            }
        }
    };
    let mut query = sqlx::query(&sql);
    for job in batch {
        let new_user = job.new_user.as_ref().map(|(u, i)| (u, i));
        query = bind_login(query, new_user, &job.session);
    }
    execute_or_roll_back(writer, query).await
}

/// One login in one transaction.
async fn write_one(
    writer: &SqlitePool,
    new_user: Option<(&UserRecord, &IdentityRecord)>,
    session: &SessionRecord,
) -> Result<(), StoreError> {
    let sql = if new_user.is_some() {
        NEW_USER_LOGIN.as_str()
    } else {
        LOGIN.as_str()
    };
    execute_or_roll_back(writer, bind_login(sqlx::query(sql), new_user, session)).await
}

/// Run a `BEGIN IMMEDIATE` ... `COMMIT` text on the writer connection. A failure rolls
/// back; a connection that cannot roll back is closed, which rolls back.
async fn execute_or_roll_back<'q>(
    writer: &SqlitePool,
    query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
) -> Result<(), StoreError> {
    let mut conn = writer.acquire().await?;
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

/// Hot reads of a file on the calling thread (`sqlite_reads`); an in-memory database
/// reads through its one pooled connection.
impl ReadInPlace for SqliteStore {
    fn in_place(&self) -> Option<&InPlaceReads> {
        self.in_place.as_deref()
    }
}

impl SqliteStore {
    /// [`Store::throttle_settle`] as one transaction in one call into the writer's
    /// thread (`BEGIN IMMEDIATE`, the statements, `COMMIT`); always `Some`.
    async fn throttle_settle_in_one_call(
        &self,
        clear: Option<&str>,
        release: &[ThrottleHit],
    ) -> Option<Result<(), StoreError>> {
        use crate::sql::{THROTTLE_CLEAR, THROTTLE_RELEASE, shift_placeholders};
        if clear.is_none() && release.is_empty() {
            return Some(Ok(()));
        }
        let mut statements = vec!["BEGIN IMMEDIATE".to_owned()];
        let mut shift = 0;
        if clear.is_some() {
            statements.push(THROTTLE_CLEAR.to_owned());
            shift = 1;
        }
        for _ in release {
            statements.push(shift_placeholders(THROTTLE_RELEASE, shift));
            shift += 2;
        }
        statements.push("COMMIT".to_owned());
        let sql = statements.join(";\n");
        let mut query = sqlx::query(&sql);
        if let Some(bucket) = clear {
            query = query.bind(bucket);
        }
        for hit in release {
            query = query.bind(&hit.bucket).bind(hit.window_start);
        }
        Some(execute_or_roll_back(&self.writer, query).await)
    }

    /// [`Store::start_session`]: through the group commit of a file ([`commit_logins`]),
    /// else (an in-memory database) in one transaction of its own.
    async fn write_login(
        &self,
        new_user: Option<(&UserRecord, &IdentityRecord)>,
        session: &SessionRecord,
    ) -> Result<(), StoreError> {
        let Some(logins) = &self.logins else {
            return write_one(&self.writer, new_user, session).await;
        };
        let (done, answer) = tokio::sync::oneshot::channel();
        let job = LoginJob {
            new_user: new_user.map(|(u, i)| (u.clone(), i.clone())),
            session: session.clone(),
            done,
        };
        if logins.send(job).is_err() {
            // The group commit's task is gone (its runtime shut down): write alone.
            return write_one(&self.writer, new_user, session).await;
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Database(
                "the login writer stopped before answering".to_owned(),
            ))
        })
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
