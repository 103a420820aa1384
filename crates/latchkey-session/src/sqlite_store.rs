//! [`SqliteStore`]: one SQLite database per app id under a directory, in WAL mode, one
//! row per user (feature `file-store`). The default store.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

use crate::disk::{self, io_error};
use crate::file_store::FileStore;
use crate::store::{StoreChange, StoreError, StoredUser, StoredUsers, UserStore};

/// The schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

/// How long a write waits for another process's write before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes between two checkpoints of one connection: about 800 pages of log at three
/// pages per login, near SQLite's default of 1,000 pages.
const CHECKPOINT_EVERY: u32 = 256;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS meta (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS users (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        doc TEXT NOT NULL
    );
";

const META_APP_ID: &str = "app_id";
const META_CURRENT: &str = "current_user_id";
const META_JSON_MIGRATED: &str = "json_file_migrated";

/// The default store: one SQLite database per app id under a directory, in WAL mode, one
/// row per user (the user as a JSON document, in login order), plus the current user.
///
/// - **Several processes and several apps** may share the directory: every change is one
///   SQLite transaction, so concurrent changes are never lost (a writer waits up to 10 s
///   for another).
/// - **Crash safety and cost**: a change is one transaction, one append to the write-ahead
///   log; a crash or `kill -9` at any point keeps every committed change and leaves nothing
///   half-written. Saving a user writes that user's row only, whatever the number of
///   users. The log is synced to disk at checkpoints (`synchronous = NORMAL`): a power loss
///   or OS crash can undo the last changes, never corrupt the store;
///   [`with_full_sync`](Self::with_full_sync) syncs every change instead.
/// - **Opened once**: each app id's database is opened on first use and kept open.
/// - **Security**: the directory is created owner-only (0700), the database files are
///   owner-only (0600), and a directory other users can write is refused.
/// - **Failures**: a database that is not one, or is damaged, is a corrupt [`StoreError`];
///   [`set_aside`](UserStore::set_aside) moves it to `<file>.corrupt-<unix ms>`.
/// - **Migration**: the first time an app id is opened, its JSON file from
///   [`FileStore`] (the previous default, `<app id>.users.json` in the same directory) is
///   copied into the database, then deleted with any temporary file left beside it.
///
/// Nothing is created until the first write: loading from a directory that does not
/// exist (or holds no database) returns no users.
///
/// ```no_run
/// use latchkey_session::{SqliteStore, UserStore};
/// let store = SqliteStore::new("/tmp/latchkey-demo");
/// let users = store.load("myapp-abcde")?;
/// println!("{} cached users in {}", users.users.len(), store.path_for("myapp-abcde").display());
/// # Ok::<(), latchkey_session::StoreError>(())
/// ```
#[derive(Debug)]
pub struct SqliteStore {
    dir: PathBuf,
    full_sync: bool,
    open: Mutex<HashMap<String, Arc<Mutex<Db>>>>,
}

/// One app id's open database.
struct Db {
    conn: Connection,
    path: PathBuf,
    /// `synchronous = FULL`: every commit syncs, so no write is made in place.
    full_sync: bool,
    /// Writes of this connection since its last checkpoint. SQLite's automatic checkpoint
    /// is off (it would sync the database file inside whichever write crosses the
    /// threshold, possibly one made in place); the writer thread checkpoints every
    /// [`CHECKPOINT_EVERY`] writes instead, and no write is made in place while one is due.
    writes_since_checkpoint: u32,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

impl SqliteStore {
    /// A store under `dir` (created, owner-only, on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SqliteStore {
            dir: dir.into(),
            full_sync: false,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Make every change durable through a power loss or an OS crash too: one fsync per
    /// change (`synchronous = FULL`). It costs about 0.1 ms of CPU and a disk flush per
    /// change (docs/benchmarks.md). By default (`synchronous = NORMAL`) a change survives
    /// any crash of the program, and the log is synced at checkpoints: a power loss can
    /// undo the last changes, never corrupt the store.
    ///
    /// ```
    /// use latchkey_session::SqliteStore;
    /// let store = SqliteStore::new("/data").with_full_sync();
    /// # let _ = store;
    /// ```
    pub fn with_full_sync(mut self) -> Self {
        self.full_sync = true;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database that holds `app_id`'s users: `<name>.users.sqlite3`, where `<name>` is
    /// the app id written as in [`FileStore::path_for`] (injective: two app ids never
    /// share a database). SQLite keeps `-wal` and `-shm` files beside it while it is open.
    ///
    /// ```
    /// use latchkey_session::SqliteStore;
    /// let store = SqliteStore::new("/data");
    /// assert!(store.path_for("myapp-abcde").ends_with("myapp-abcde.users.sqlite3"));
    /// assert!(store.path_for("a.b").ends_with("a_2Eb.users.sqlite3"));
    /// ```
    pub fn path_for(&self, app_id: &str) -> PathBuf {
        self.dir
            .join(format!("{}.users.sqlite3", disk::encode_app_id(app_id)))
    }

    fn legacy(&self) -> FileStore {
        FileStore::new(&self.dir)
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<String, Arc<Mutex<Db>>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `app_id`'s database, opened once. When it does not exist: created if `create`,
    /// else `None`.
    fn db(&self, app_id: &str, create: bool) -> Result<Option<Arc<Mutex<Db>>>, StoreError> {
        let mut open = self.cache();
        if let Some(db) = open.get(app_id) {
            return Ok(Some(db.clone()));
        }
        let path = self.path_for(app_id);
        if create {
            disk::create_dir(&self.dir)?;
            match disk::create_private(&path) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(StoreError::with_source(
                        format!("cannot create the user store {}", path.display()),
                        e,
                    ));
                }
            }
        } else if !disk::check_dir(&self.dir)? || !path.exists() {
            return Ok(None);
        }
        disk::make_private(&path).map_err(io_error(format!(
            "cannot make {} owner-only",
            path.display()
        )))?;
        let db = Arc::new(Mutex::new(Db::open(path, app_id, self.full_sync)?));
        open.insert(app_id.to_owned(), db.clone());
        Ok(Some(db))
    }

    /// Copy `app_id`'s JSON file (from [`FileStore`]) into its database once, then delete
    /// the file. A corrupt file is a corrupt error (and stays where it is).
    fn migrate_json(&self, app_id: &str) -> Result<(), StoreError> {
        let legacy = self.legacy();
        if !legacy.path_for(app_id).exists() {
            return Ok(());
        }
        let db = self.db(app_id, true)?.expect("created");
        let mut db = lock(&db);
        let what = format!("cannot migrate {}", legacy.path_for(app_id).display());
        let migrated = db.write(&what, |tx| {
            if meta(tx, META_JSON_MIGRATED)?.is_some() {
                // Migrated before, but the file was not deleted (a crash in between), or
                // it reappeared: the database has the users now.
                return Ok(0);
            }
            let doc = legacy.load(app_id)?;
            let mut insert =
                tx.prepare_cached("INSERT OR IGNORE INTO users (id, doc) VALUES (?1, ?2)")?;
            for user in &doc.users {
                insert.execute(params![user.id, to_json(user)?])?;
            }
            if meta(tx, META_CURRENT)?.is_none()
                && let Some(current) = &doc.current_user_id
            {
                set_meta(tx, META_CURRENT, current)?;
            }
            set_meta(tx, META_JSON_MIGRATED, "1")?;
            Ok(doc.users.len())
        })?;
        if migrated > 0 {
            tracing::info!(
                users = migrated,
                app_id,
                "migrated the JSON user file into SQLite"
            );
        }
        drop(db);
        if let Err(e) = legacy.delete(app_id) {
            tracing::warn!(error = %e, "could not delete the migrated JSON user file; will try again");
        }
        Ok(())
    }

    /// The users in `app_id`'s database (none when it does not exist).
    fn read(&self, app_id: &str) -> Result<StoredUsers, StoreError> {
        let mut stored = StoredUsers {
            app_id: Some(app_id.to_owned()),
            ..StoredUsers::default()
        };
        let Some(db) = self.db(app_id, false)? else {
            return Ok(stored);
        };
        let db = lock(&db);
        let read = || -> rusqlite::Result<(Vec<String>, Option<String>)> {
            let mut stmt = db
                .conn
                .prepare_cached("SELECT doc FROM users ORDER BY seq")?;
            let docs = stmt
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((docs, meta(&db.conn, META_CURRENT)?))
        };
        let (docs, current) = read().map_err(|e| db.error("cannot read", e))?;
        for doc in docs {
            let user: StoredUser = serde_json::from_str(&doc).map_err(|e| {
                StoreError::with_source(format!("corrupt user record in {}", db.path.display()), e)
                    .corrupt()
            })?;
            stored.users.push(user);
        }
        stored.current_user_id = current;
        Ok(stored)
    }

    /// Close `app_id`'s database and move it (with its write-ahead log) aside.
    fn set_aside_db(&self, app_id: &str) -> Result<Option<PathBuf>, StoreError> {
        self.cache().remove(app_id);
        let path = self.path_for(app_id);
        if !path.exists() {
            return Ok(None);
        }
        let fail = || io_error(format!("cannot move {} aside", path.display()));
        let aside = disk::set_aside(&path).map_err(fail())?;
        let suffixed = |p: &Path, s: &str| {
            let mut name = p.as_os_str().to_owned();
            name.push(s);
            PathBuf::from(name)
        };
        let wal = suffixed(&path, "-wal");
        if wal.exists() {
            let wal_aside = suffixed(&aside, "-wal");
            fs::rename(&wal, &wal_aside).map_err(fail())?;
            disk::make_private(&wal_aside).map_err(fail())?;
        }
        match fs::remove_file(suffixed(&path, "-shm")) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail()(e)),
        }
        disk::sync_dir(&self.dir).map_err(fail())?;
        Ok(Some(aside))
    }
}

impl Db {
    /// Open `path` (which exists), in WAL mode, with the schema, for `app_id`.
    fn open(path: PathBuf, app_id: &str, full_sync: bool) -> Result<Db, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags)
            .map_err(|e| error(&path, "cannot open", e))?;
        let mut db = Db {
            conn,
            path,
            full_sync,
            writes_since_checkpoint: 0,
        };
        db.conn
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| db.error("cannot configure", e))?;
        let mode: String = db
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| db.error("cannot open", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::new(format!(
                "{}: SQLite refused WAL mode (journal mode {mode}); the directory must be \
                 on a local file system",
                db.path.display()
            )));
        }
        db.conn
            .pragma_update(
                None,
                "synchronous",
                if full_sync { "FULL" } else { "NORMAL" },
            )
            .map_err(|e| db.error("cannot configure", e))?;
        db.conn
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|e| db.error("cannot configure", e))?;
        let version: i64 = db
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| db.error("cannot open", e))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::new(format!(
                "{} was written by a newer version of latchkey (schema {version})",
                db.path.display()
            )));
        }
        if version < SCHEMA_VERSION || meta(&db.conn, META_APP_ID).ok().flatten().is_none() {
            db.write("cannot initialise", |tx| {
                tx.execute_batch(SCHEMA)?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
                if meta(tx, META_APP_ID)?.is_none() {
                    set_meta(tx, META_APP_ID, app_id)?;
                }
                Ok(())
            })?;
        }
        let owner = meta(&db.conn, META_APP_ID).map_err(|e| db.error("cannot read", e))?;
        if owner.as_deref() != Some(app_id) {
            return Err(StoreError::new(format!(
                "{} holds the users of another app id, not {app_id:?}",
                db.path.display()
            )));
        }
        Ok(db)
    }

    /// Run `f` in one immediate transaction (waiting for other writers) and commit it.
    fn write<R>(
        &mut self,
        what: &str,
        f: impl FnOnce(&Connection) -> Result<R, WriteError>,
    ) -> Result<R, StoreError> {
        let fail = |e: WriteError| match e {
            WriteError::Sql(e) => error(&self.path, what, e),
            WriteError::Store(e) => e,
        };
        let done = self.transaction(f).map_err(fail)?;
        self.writes_since_checkpoint += 1;
        if self.writes_since_checkpoint >= CHECKPOINT_EVERY {
            // Copy the log into the database file (and sync it) without waiting for
            // readers; a checkpoint that cannot finish now is tried again later.
            let checkpoint = self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            if checkpoint.is_ok() {
                self.writes_since_checkpoint = 0;
            }
        }
        Ok(done)
    }

    /// `f` in one immediate transaction, committed; rolled back if anything fails.
    fn transaction<R>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, WriteError>,
    ) -> Result<R, WriteError> {
        // Prepared once (like every statement here): BEGIN and COMMIT are not parsed again
        // for each change.
        let run = |sql: &str| self.conn.prepare_cached(sql)?.execute([]).map(drop);
        run("BEGIN IMMEDIATE")?;
        let done = f(&self.conn).and_then(|r| {
            run("COMMIT")?;
            Ok(r)
        });
        if done.is_err() && !self.conn.is_autocommit() {
            let _ = run("ROLLBACK");
        }
        done
    }

    fn error(&self, what: &str, e: rusqlite::Error) -> StoreError {
        error(&self.path, what, e)
    }

    fn apply(&mut self, changes: &[StoreChange]) -> Result<(), StoreError> {
        self.write("cannot write", |tx| write_changes(tx, changes))
    }

    /// [`apply`](Self::apply), only if it cannot wait (`None` when it would, having
    /// changed nothing): SQLite's write lock taken without waiting (busy timeout 0), no
    /// checkpoint due, and no error on the way (an error is left to `apply`, which reports
    /// it).
    fn try_apply_now(&mut self, changes: &[StoreChange]) -> Option<Result<(), StoreError>> {
        if self.full_sync || self.writes_since_checkpoint >= CHECKPOINT_EVERY {
            return None;
        }
        self.conn.busy_timeout(Duration::ZERO).ok()?;
        let done = self.transaction(|tx| write_changes(tx, changes));
        // (Setting a busy timeout cannot fail on an open connection.)
        let _ = self.conn.busy_timeout(BUSY_TIMEOUT);
        done.ok()?;
        self.writes_since_checkpoint += 1;
        Some(Ok(()))
    }
}

/// Write `changes` inside the transaction `tx`.
fn write_changes(tx: &Connection, changes: &[StoreChange]) -> Result<(), WriteError> {
    for change in changes {
        match change {
            StoreChange::SaveUser(user) => {
                tx.prepare_cached(
                    "INSERT INTO users (id, doc) VALUES (?1, ?2) \
                     ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
                )?
                .execute(params![user.id, to_json(user)?])?;
            }
            StoreChange::RemoveUser(id) => {
                tx.prepare_cached("DELETE FROM users WHERE id = ?1")?
                    .execute(params![id])?;
                tx.prepare_cached("DELETE FROM meta WHERE key = ?1 AND value = ?2")?
                    .execute(params![META_CURRENT, id])?;
            }
            StoreChange::SetCurrentUser(Some(id)) => set_meta(tx, META_CURRENT, id)?,
            StoreChange::SetCurrentUser(None) => {
                tx.prepare_cached("DELETE FROM meta WHERE key = ?1")?
                    .execute(params![META_CURRENT])?;
            }
        }
    }
    Ok(())
}

/// A failure inside a write transaction.
enum WriteError {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for WriteError {
    fn from(e: rusqlite::Error) -> Self {
        WriteError::Sql(e)
    }
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        WriteError::Store(e)
    }
}

fn lock(db: &Mutex<Db>) -> MutexGuard<'_, Db> {
    db.lock().unwrap_or_else(|p| p.into_inner())
}

fn to_json(user: &StoredUser) -> Result<String, StoreError> {
    serde_json::to_string(user).map_err(|e| StoreError::with_source("cannot serialize a user", e))
}

fn meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row(params![key], |r| r.get(0))
        .optional()
}

fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])
    .map(drop)
}

/// A store error for SQLite's `e` on `path`; damaged data is a corrupt error.
fn error(path: &Path, what: &str, e: rusqlite::Error) -> StoreError {
    let corrupt = matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    );
    let err = StoreError::with_source(format!("{what} the user store {}", path.display()), e);
    if corrupt { err.corrupt() } else { err }
}

impl UserStore for SqliteStore {
    /// The users of `app_id`, after migrating its JSON file on first open.
    fn load(&self, app_id: &str) -> Result<StoredUsers, StoreError> {
        if disk::check_dir(&self.dir)? {
            self.migrate_json(app_id)?;
        }
        self.read(app_id)
    }
    fn save_user(&self, app_id: &str, user: &StoredUser) -> Result<(), StoreError> {
        self.apply(app_id, &[StoreChange::SaveUser(user.clone())])
    }
    fn remove_user(&self, app_id: &str, user_id: &str) -> Result<(), StoreError> {
        self.apply(app_id, &[StoreChange::RemoveUser(user_id.to_owned())])
    }
    fn set_current_user(&self, app_id: &str, user_id: Option<&str>) -> Result<(), StoreError> {
        self.apply(
            app_id,
            &[StoreChange::SetCurrentUser(user_id.map(str::to_owned))],
        )
    }
    /// All the changes in one transaction: one durable write.
    fn apply(&self, app_id: &str, changes: &[StoreChange]) -> Result<(), StoreError> {
        let db = self.db(app_id, true)?.expect("created");
        let mut db = lock(&db);
        db.apply(changes)
    }
    /// In place when it cannot wait: the database is open already, SQLite's write lock is
    /// free (no other process or `App` is writing), no checkpoint is due and the store
    /// does not sync each change ([`with_full_sync`](Self::with_full_sync)). Such a write
    /// touches SQLite's memory and the OS page cache only (about 30 µs); otherwise `None`,
    /// and the app's writer thread writes (docs/benchmarks.md).
    fn try_apply_now(
        &self,
        app_id: &str,
        changes: &[StoreChange],
    ) -> Option<Result<(), StoreError>> {
        let db = self.cache().get(app_id)?.clone();
        let mut db = match db.try_lock() {
            Ok(db) => db,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        db.try_apply_now(changes)
    }
    /// Move whatever `load` found corrupt aside: the database (to
    /// `<file>.corrupt-<unix ms>`, with its write-ahead log) and/or a JSON file waiting to
    /// be migrated. Returns the database's new name if it moved, else the JSON file's.
    fn set_aside(&self, app_id: &str) -> Result<Option<PathBuf>, StoreError> {
        let legacy = self.legacy();
        let json = match legacy.load(app_id) {
            Err(e) if e.is_corrupt() => legacy.set_aside(app_id)?,
            _ => None,
        };
        self.cache().remove(app_id);
        let db = match self.read(app_id) {
            Err(e) if e.is_corrupt() => self.set_aside_db(app_id)?,
            _ => None,
        };
        Ok(db.or(json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::UserState;
    use crate::store::test_support::{concurrent_writers_lose_nothing, user};

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn ids(store: &SqliteStore, app_id: &str) -> Vec<String> {
        store
            .load(app_id)
            .unwrap()
            .users
            .into_iter()
            .map(|u| u.id)
            .collect()
    }

    #[test]
    fn writes_in_place_only_when_they_cannot_wait() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(dir.path());
        let save = |id: &str| [StoreChange::SaveUser(user(id))];
        // Not open yet (creating the file is left to the writer thread).
        assert!(store.try_apply_now("app", &save("a")).is_none());
        assert!(!store.path_for("app").exists());
        store.apply("app", &save("a")).unwrap();
        assert!(matches!(
            store.try_apply_now("app", &save("b")),
            Some(Ok(()))
        ));
        assert_eq!(ids(&SqliteStore::new(dir.path()), "app"), ["a", "b"]);

        // Another process holds the write lock: nothing is written, nothing waits.
        let other = Connection::open(store.path_for("app")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        assert!(store.try_apply_now("app", &save("c")).is_none());
        // The store's busy timeout is back: a write on the writer thread waits for the
        // lock, then succeeds.
        let (store, dir) = (Arc::new(store), Arc::new(dir));
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || store.apply("app", &save("c")))
        };
        std::thread::sleep(Duration::from_millis(200));
        other.execute_batch("COMMIT").unwrap();
        writer.join().unwrap().unwrap();
        assert_eq!(ids(&SqliteStore::new(dir.path()), "app"), ["a", "b", "c"]);

        // Full sync: every change syncs, so never in place.
        let full = SqliteStore::new(dir.path()).with_full_sync();
        full.apply("app", &save("d")).unwrap();
        assert!(full.try_apply_now("app", &save("e")).is_none());
    }

    #[test]
    fn in_place_writes_stop_while_a_checkpoint_is_due() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(dir.path());
        store.save_user("app", &user("first")).unwrap();
        let mut in_place = 0;
        while let Some(done) =
            store.try_apply_now("app", &[StoreChange::SaveUser(user(&in_place.to_string()))])
        {
            done.unwrap();
            in_place += 1;
            assert!(in_place < 10 * CHECKPOINT_EVERY, "never checkpoints");
        }
        // (Opening the database wrote its schema, then "first": two writes before.)
        assert_eq!(in_place, CHECKPOINT_EVERY - 2);
        // The writer thread's next write checkpoints; then writes go in place again, and
        // the log is reused from its start rather than growing.
        store.save_user("app", &user("checkpoint")).unwrap();
        let wal = dir.path().join("app.users.sqlite3-wal");
        let grown = fs::metadata(&wal).unwrap().len();
        assert!(grown > 100 * 4096, "{grown}");
        for i in 0..10 {
            let change = [StoreChange::SaveUser(user(&format!("after-{i}")))];
            assert!(matches!(store.try_apply_now("app", &change), Some(Ok(()))));
        }
        assert!(fs::metadata(&wal).unwrap().len() <= grown);
        assert_eq!(
            ids(&SqliteStore::new(dir.path()), "app").len(),
            1 + in_place as usize + 1 + 10
        );
    }

    #[test]
    fn round_trip_in_login_order_and_one_database_per_app() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(dir.path().join("nested"));
        store.save_user("app-1", &user("b")).unwrap();
        store.save_user("app-1", &user("a")).unwrap();
        store
            .apply(
                "app-1",
                &[
                    StoreChange::SaveUser(user("c")),
                    StoreChange::SetCurrentUser(Some("c".into())),
                ],
            )
            .unwrap();
        let mut b = user("b");
        b.state = UserState::LoggedOut;
        b.refresh_token = None;
        store.save_user("app-1", &b).unwrap();
        store.save_user("app-2", &user("z")).unwrap();

        let again = SqliteStore::new(dir.path().join("nested"));
        let d1 = again.load("app-1").unwrap();
        let ids: Vec<_> = d1.users.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(
            ids,
            ["b", "a", "c"],
            "login order, updates keep their place"
        );
        assert_eq!(d1.users[0], b);
        assert_eq!(d1.users[2], user("c"));
        assert_eq!(d1.current_user_id.as_deref(), Some("c"));
        assert_eq!(d1.app_id.as_deref(), Some("app-1"));
        // Removing the current user clears it.
        again.remove_user("app-1", "c").unwrap();
        let d1 = again.load("app-1").unwrap();
        assert_eq!(d1.users.len(), 2);
        assert!(d1.current_user_id.is_none());
        again.set_current_user("app-1", Some("a")).unwrap();
        again.set_current_user("app-1", None).unwrap();
        assert!(again.load("app-1").unwrap().current_user_id.is_none());
        assert_eq!(again.load("app-2").unwrap().users[0].id, "z");
        assert!(again.load("app-3").unwrap().users.is_empty());
        drop((store, again));
        // Closed: only the databases remain (SQLite removes its -wal and -shm files).
        assert_eq!(
            names(&dir.path().join("nested")),
            ["app-1.users.sqlite3", "app-2.users.sqlite3"]
        );
    }

    #[test]
    fn loading_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(dir.path().join("none"));
        assert!(store.load("app").unwrap().users.is_empty());
        assert!(!dir.path().join("none").exists());
        let store = SqliteStore::new(dir.path());
        assert!(store.load("app").unwrap().users.is_empty());
        assert!(names(dir.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn files_are_owner_only_and_open_directories_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(dir.path().join("s"));
        store.save_user("app", &user("a")).unwrap();
        assert_eq!(mode(&dir.path().join("s")), 0o700);
        let db = store.path_for("app");
        for suffix in ["", "-wal", "-shm"] {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            assert_eq!(mode(Path::new(&p)), 0o600, "{suffix}");
        }
        drop(store);

        let open = dir.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let store = SqliteStore::new(&open);
        let err = store.load("app").unwrap_err().to_string();
        assert!(err.contains("other users can write"), "{err}");
        assert!(store.save_user("app", &user("a")).is_err());
        assert!(names(&open).is_empty());
    }

    #[test]
    fn a_database_of_another_app_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(dir.path());
        store.save_user("app-2", &user("theirs")).unwrap();
        drop(store);
        fs::copy(
            dir.path().join("app-2.users.sqlite3"),
            dir.path().join("app-1.users.sqlite3"),
        )
        .unwrap();
        let store = SqliteStore::new(dir.path());
        let err = store.load("app-1").unwrap_err();
        assert!(err.to_string().contains("another app id"), "{err}");
        assert!(!err.is_corrupt());
        assert!(store.save_user("app-1", &user("mine")).is_err());
        assert_eq!(store.load("app-2").unwrap().users[0].id, "theirs");
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(dir.path());
        store.save_user("app", &user("a")).unwrap();
        drop(store);
        let conn = Connection::open(dir.path().join("app.users.sqlite3")).unwrap();
        conn.pragma_update(None, "user_version", 7).unwrap();
        drop(conn);
        let err = SqliteStore::new(dir.path()).load("app").unwrap_err();
        assert!(err.to_string().contains("newer version"), "{err}");
    }

    #[test]
    fn a_corrupt_database_is_reported_then_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(dir.path());
        store.save_user("app", &user("a")).unwrap();
        drop(store);
        let db = dir.path().join("app.users.sqlite3");
        fs::write(
            &db,
            b"this is not a database, but it is long enough to look like one....",
        )
        .unwrap();
        let store = SqliteStore::new(dir.path());
        let err = store.load("app").unwrap_err();
        assert!(err.is_corrupt(), "{err}");
        let aside = store.set_aside("app").unwrap().expect("moved");
        assert!(
            aside
                .to_string_lossy()
                .contains("app.users.sqlite3.corrupt-")
        );
        assert!(fs::read(&aside).unwrap().starts_with(b"this is not"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&aside).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(store.load("app").unwrap().users.is_empty());
        store.save_user("app", &user("b")).unwrap();
        assert_eq!(store.load("app").unwrap().users[0].id, "b");
        // A damaged record is corrupt too.
        let conn = Connection::open(&db).unwrap();
        conn.execute("UPDATE users SET doc = '{'", []).unwrap();
        drop(conn);
        let store = SqliteStore::new(dir.path());
        assert!(store.load("app").unwrap_err().is_corrupt());
    }

    /// A file exactly as `FileStore` wrote it before this store existed.
    const TODAYS_FILE: &str = r#"{
  "app_id": "myapp-abcde",
  "users": [
    {
      "id": "65f0c0ffee0000000000aaaa",
      "state": "LoggedIn",
      "access_token": "AT-secret",
      "refresh_token": "RT-secret",
      "access_token_expires_at_ms": 1700000000000,
      "access_token_lifetime_secs": 1800,
      "profile": {
        "email": "ada@example.com"
      },
      "identities": [
        {
          "id": "ada@example.com",
          "provider_type": "local-userpass"
        }
      ],
      "user_type": "normal",
      "device_id": "65f0c0ffee0000000000abcd",
      "provider_type": "local-userpass"
    },
    {
      "id": "65f0c0ffee0000000000bbbb",
      "state": "LoggedOut",
      "access_token": null,
      "refresh_token": null,
      "access_token_expires_at_ms": null,
      "access_token_lifetime_secs": null,
      "profile": {},
      "identities": [],
      "user_type": null,
      "device_id": null,
      "provider_type": "anon-user"
    }
  ],
  "current_user_id": "65f0c0ffee0000000000aaaa"
}"#;

    #[test]
    fn todays_json_file_is_migrated_once_then_deleted() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("myapp-abcde.users.json"), TODAYS_FILE).unwrap();
        // Temporary files that killed writers of the old store left behind.
        fs::write(dir.path().join(".myapp-abcde.users.json.1.0.tmp"), b"{").unwrap();
        fs::write(dir.path().join(".myapp-abcde.users.json.77.3.tmp"), b"").unwrap();
        let expected: StoredUsers = serde_json::from_str(TODAYS_FILE).unwrap();

        let store = SqliteStore::new(dir.path());
        let loaded = store.load("myapp-abcde").unwrap();
        assert_eq!(loaded.users, expected.users);
        assert_eq!(loaded.current_user_id, expected.current_user_id);
        assert_eq!(loaded.users[0].profile["email"], "ada@example.com");
        assert_eq!(
            loaded.users[0].refresh_token.as_ref().map(|t| t.expose()),
            Some("RT-secret")
        );
        drop(store);
        assert_eq!(names(dir.path()), ["myapp-abcde.users.sqlite3"]);

        // Migrated once: a file that reappears later (say, written by an older version)
        // is not merged again, only deleted.
        let store = SqliteStore::new(dir.path());
        store
            .remove_user("myapp-abcde", "65f0c0ffee0000000000bbbb")
            .unwrap();
        fs::write(dir.path().join("myapp-abcde.users.json"), TODAYS_FILE).unwrap();
        drop(store);
        let store = SqliteStore::new(dir.path());
        assert_eq!(store.load("myapp-abcde").unwrap().users.len(), 1);
        drop(store);
        assert_eq!(names(dir.path()), ["myapp-abcde.users.sqlite3"]);

        // A file without an app id inside (older still) migrates too.
        let mut old: serde_json::Value = serde_json::from_str(TODAYS_FILE).unwrap();
        old.as_object_mut().unwrap().remove("app_id");
        fs::write(
            dir.path().join("other-app.users.json"),
            serde_json::to_vec(&old).unwrap(),
        )
        .unwrap();
        let store = SqliteStore::new(dir.path());
        assert_eq!(store.load("other-app").unwrap().users.len(), 2);
    }

    #[test]
    fn a_corrupt_json_file_is_reported_then_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("app.users.json"), b"{\"users\": [").unwrap();
        let store = SqliteStore::new(dir.path());
        let err = store.load("app").unwrap_err();
        assert!(err.is_corrupt(), "{err}");
        let aside = store.set_aside("app").unwrap().expect("moved");
        assert!(aside.to_string_lossy().contains("app.users.json.corrupt-"));
        assert!(store.load("app").unwrap().users.is_empty());
        store.save_user("app", &user("a")).unwrap();
        assert_eq!(store.load("app").unwrap().users.len(), 1);
    }

    #[test]
    fn several_stores_on_one_directory_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        concurrent_writers_lose_nothing(dir.path(), 25, SqliteStore::new);
    }

    #[test]
    fn full_sync_is_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        for (store, level) in [
            (SqliteStore::new(dir.path()), 1),
            (SqliteStore::new(dir.path()).with_full_sync(), 2),
        ] {
            store.save_user("app", &user("a")).unwrap();
            let db = store.db("app", false).unwrap().unwrap();
            let db = lock(&db);
            let sync: i64 = db
                .conn
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap();
            assert_eq!(sync, level);
            let mode: String = db
                .conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
        }
    }

    #[test]
    fn debug_output_has_no_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::new(dir.path());
        store.save_user("app", &user("a")).unwrap();
        let s = format!("{store:?}");
        assert!(
            !s.contains("AT-secret") && s.contains("app.users.sqlite3"),
            "{s}"
        );
    }
}
