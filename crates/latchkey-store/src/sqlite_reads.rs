//! Reads made in place: the two queries every authenticated request makes (a session
//! with its user, and with the user's identities for the profile) run on the calling
//! thread, on a connection of this module's own, instead of a round trip to a sqlx
//! connection's worker thread.
//!
//! Why: sqlx gives each SQLite connection a thread, and each statement is a message to
//! it and a message back, two thread wake-ups. For a primary-key lookup of a few pages
//! that SQLite answers in microseconds, the wake-ups were most of the request's cost
//! (a profile of the server refreshing tokens under load showed 37% of its time in
//! context switches). Here the lookup is a plain function call.
//!
//! Why it is safe to do on an async worker thread: the statements read a handful of
//! B-tree pages by key (the pages live in SQLite's cache or the OS page cache), and they
//! never wait for a lock: WAL readers do not wait for the writer, and the connection's
//! busy timeout is 0, so the rare moment SQLite would make a reader wait (a checkpoint
//! resetting the WAL) returns `SQLITE_BUSY` at once. Any error (busy, I/O, a schema the
//! statement does not fit) sends the read back to the sqlx pool, which waits and
//! reports errors as every other query does; the connection that failed is closed.
//!
//! Consistency is the same as the pool's: a read starts its own read transaction, so it
//! sees every commit made before it (a revoked session is refused on the next request).
//! At most one connection per thread that reads at the same moment is kept; they are
//! opened on first use and closed with the store.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OpenFlags};

use crate::records::{SessionProfileRow, SessionUserRow};
use crate::{IdentityRecord, SessionRecord, UserRecord};

/// The most idle connections kept.
const MAX_IDLE: usize = 16;

/// In-place readers of one SQLite file.
pub(crate) struct InPlaceReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Set by [`InPlaceReads::close`]: no more reads here.
    closed: AtomicBool,
}

impl fmt::Debug for InPlaceReads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InPlaceReads")
            .field("path", &self.path)
            .field("idle", &self.idle().len())
            .finish()
    }
}

impl InPlaceReads {
    /// Readers of the database file at `path` (opened on first use).
    pub(crate) fn new(path: PathBuf) -> Self {
        InPlaceReads {
            path,
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        }
    }

    /// Close the idle connections; every later read answers `None` (the store is closed).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.idle().clear();
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        // Read-write flags (a read-only connection cannot always use a WAL file that
        // another connection made) but `query_only`: this connection never writes.
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::ZERO)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }

    /// Run `read` on an idle connection (or a new one); `None` when it failed (the
    /// caller then reads through the pool). A connection that failed is closed.
    fn with_connection<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Option<T> {
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        let taken = self.idle().pop();
        let conn = match taken {
            Some(conn) => conn,
            None => match self.open() {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::debug!(error = %e, "in-place read: cannot open a connection");
                    return None;
                }
            },
        };
        match read(&conn) {
            Ok(value) => {
                let mut idle = self.idle();
                if idle.len() < MAX_IDLE && !self.closed.load(Ordering::Acquire) {
                    idle.push(conn);
                }
                Some(value)
            }
            Err(e) => {
                tracing::debug!(error = %e, "in-place read failed; reading through the pool");
                None
            }
        }
    }

    /// One optional row of `sql` with `params`, mapped by `map`, in place.
    fn optional<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        map: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Option<Option<T>> {
        self.with_connection(|conn| {
            let mut statement = conn.prepare_cached(sql)?;
            let mut rows = statement.query(params)?;
            rows.next()?.map(map).transpose()
        })
    }
}

/// The reads a store can make in place: `None` means "read through the pool" (every
/// method's default, PostgreSQL's choice), `Some(found)` is the answer.
pub(crate) trait ReadInPlace {
    /// The in-place readers, when the store has them.
    fn in_place(&self) -> Option<&InPlaceReads> {
        None
    }

    /// [`crate::Store::get_session_with_user`] (`sql` selects
    /// [`SessionUserRow::COLUMNS`] by `$1` app and `$2` session).
    fn session_with_user_in_place(
        &self,
        sql: &str,
        app_id: &str,
        session_id: &str,
    ) -> Option<Option<(SessionRecord, UserRecord)>> {
        self.in_place()?.optional(sql, (app_id, session_id), |row| {
            Ok(SessionUserRow::from_sqlite(row, 0)?.split())
        })
    }

    /// [`crate::Store::get_session_profile`] (`sql` selects [`SessionUserRow::COLUMNS`]
    /// and [`SessionProfileRow::IDENTITY_COLUMNS`]).
    #[allow(clippy::type_complexity)]
    fn session_profile_in_place(
        &self,
        sql: &str,
        app_id: &str,
        session_id: &str,
    ) -> Option<Option<(SessionRecord, UserRecord, Vec<IdentityRecord>)>> {
        self.in_place()?.with_connection(|conn| {
            let mut statement = conn.prepare_cached(sql)?;
            let rows = statement
                .query_map((app_id, session_id), SessionProfileRow::from_sqlite)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(SessionProfileRow::collect(rows))
        })
    }

    /// [`crate::Store::find_identity`] (`sql` selects [`IdentityRecord::COLUMNS`]).
    fn identity_in_place(
        &self,
        sql: &str,
        app_id: &str,
        provider_type: &str,
        id: &str,
    ) -> Option<Option<IdentityRecord>> {
        self.in_place()?.optional(
            sql,
            (app_id, provider_type, id),
            IdentityRecord::from_sqlite,
        )
    }

    /// [`crate::Store::get_user`] (`sql` selects [`UserRecord::COLUMNS`]).
    fn user_in_place(&self, sql: &str, app_id: &str, user_id: &str) -> Option<Option<UserRecord>> {
        self.in_place()?
            .optional(sql, (app_id, user_id), UserRecord::from_sqlite)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SqliteStore, Store, StoreOptions};

    const APP: &str = "app";

    fn user(id: &str) -> UserRecord {
        UserRecord {
            app_id: APP.into(),
            id: id.into(),
            created_at: 1_700_000_000,
            disabled: false,
            custom_data: Some(serde_json::from_str(r#"{"plan":"gold"}"#).unwrap()),
        }
    }

    fn identity(user_id: &str) -> IdentityRecord {
        IdentityRecord {
            app_id: APP.into(),
            provider_type: "local-userpass".into(),
            id: format!("id-of-{user_id}"),
            user_id: user_id.into(),
            data: serde_json::from_str(r#"{"email":"a@example.com"}"#).unwrap(),
            created_at: 1_700_000_000,
        }
    }

    fn session(id: &str, user_id: &str) -> SessionRecord {
        SessionRecord {
            app_id: APP.into(),
            id: id.into(),
            user_id: user_id.into(),
            device_id: "000000000000000000000001".into(),
            created_at: 1_700_000_000,
            expires_at: 1_800_000_000,
            provider_type: Some("local-userpass".into()),
            identity_id: Some(format!("id-of-{user_id}")),
        }
    }

    async fn file_store(dir: &tempfile::TempDir, options: &StoreOptions) -> SqliteStore {
        let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
        let store = SqliteStore::connect_with(&url, options).await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    /// The hot reads of a file are answered in place, equal to what the pool reads,
    /// and see every commit at once (a revoked session is gone at the next read).
    #[tokio::test]
    async fn hot_reads_are_made_in_place_and_see_every_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir, &StoreOptions::default()).await;
        let (u, i, s) = (user("u1"), identity("u1"), session("s1", "u1"));
        store.start_session(Some((&u, &i)), &s).await.unwrap();

        let sql = format!(
            "SELECT {} FROM sessions AS s JOIN users AS u
             ON u.app_id = s.app_id AND u.id = s.user_id WHERE s.app_id = $1 AND s.id = $2",
            SessionUserRow::COLUMNS
        );
        let reads = store.in_place().expect("a file reads in place");
        assert_eq!(
            store.session_with_user_in_place(&sql, APP, "s1"),
            Some(Some((s.clone(), u.clone())))
        );
        assert_eq!(
            reads.idle().len(),
            1,
            "the connection is kept for the next read"
        );
        assert_eq!(
            store.get_session_with_user(APP, "s1").await.unwrap(),
            Some((s.clone(), u.clone()))
        );
        let (ps, pu, pi) = store.get_session_profile(APP, "s1").await.unwrap().unwrap();
        assert_eq!((ps, pu, pi), (s.clone(), u.clone(), vec![i.clone()]));
        assert_eq!(
            store
                .find_identity(APP, "local-userpass", "id-of-u1")
                .await
                .unwrap(),
            Some(i.clone())
        );
        assert_eq!(store.get_user(APP, "u1").await.unwrap(), Some(u.clone()));
        assert_eq!(reads.idle().len(), 1, "one connection served them all");

        // A commit through the pool's writer is seen by the very next read.
        store.delete_session(APP, "s1").await.unwrap();
        assert_eq!(store.get_session_with_user(APP, "s1").await.unwrap(), None);
        assert_eq!(store.get_session_profile(APP, "s1").await.unwrap(), None);
        store.set_user_disabled(APP, "u1", true).await.unwrap();
        assert!(store.get_user(APP, "u1").await.unwrap().unwrap().disabled);

        // A commit of another process (here: another store on the same file) too.
        let other = file_store(&dir, &StoreOptions::default()).await;
        other
            .start_session(None, &session("s2", "u1"))
            .await
            .unwrap();
        assert!(
            store
                .get_session_with_user(APP, "s2")
                .await
                .unwrap()
                .is_some()
        );

        // A closed store reads nothing in place: the pool answers, closed.
        store.close().await;
        assert_eq!(reads.idle().len(), 0);
        assert!(store.get_session_with_user(APP, "s2").await.is_err());
        other.close().await;
    }

    /// A reader never waits on the calling thread (busy timeout 0: a lock it would have
    /// to wait for is an error, and the read goes to the pool, which waits) and never
    /// writes (`query_only`).
    #[tokio::test]
    async fn readers_never_wait_and_never_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir, &StoreOptions::default()).await;
        let conn = store.in_place().unwrap().open().unwrap();
        let timeout: i64 = conn
            .query_row("PRAGMA busy_timeout", (), |r| r.get(0))
            .unwrap();
        assert_eq!(timeout, 0);
        let query_only: bool = conn
            .query_row("PRAGMA query_only", (), |r| r.get(0))
            .unwrap();
        assert!(query_only);
        assert!(conn.execute("DELETE FROM users", ()).is_err());
        store.close().await;
    }

    /// A malformed JSON column is a read error (the pool then reports it), never a
    /// panic or a silently empty value.
    #[tokio::test]
    async fn a_malformed_json_column_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store = file_store(&dir, &StoreOptions::default()).await;
        let (u, i, s) = (user("u1"), identity("u1"), session("s1", "u1"));
        store.start_session(Some((&u, &i)), &s).await.unwrap();
        let raw = Connection::open(dir.path().join("db.sqlite")).unwrap();
        raw.execute("UPDATE users SET custom_data = '{not json'", ())
            .unwrap();
        let sql = format!(
            "SELECT {} FROM users WHERE app_id = $1 AND id = $2",
            UserRecord::COLUMNS
        );
        assert_eq!(store.user_in_place(&sql, APP, "u1"), None);
        assert!(store.get_user(APP, "u1").await.is_err());
        store.close().await;
    }
}
