//! [`FileStore`]: one JSON file per app id under a directory, locked for several
//! processes (feature `file-store`).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::disk::{self, io_error};
use crate::store::{
    StoreChange, StoreError, StoredUser, StoredUsers, UserStore, apply_all, remove, upsert,
};

/// A store that keeps one JSON file per app id under a directory: the locked-single-file
/// design. [`SqliteStore`](crate::SqliteStore), the default, is cheaper and reads these
/// files when it first opens an app (see `docs/sdk.md`, "The user store").
///
/// - **Several processes**: every read-modify-write holds an exclusive lock on the
///   directory (`flock`, on unix), so changes made at once by several processes (or
///   several apps) are never lost. Elsewhere the lock covers this process only.
/// - **Crash safety**: a write goes to a temporary file in the same directory (write,
///   fsync, rename, fsync of the directory), so a crash leaves the old file or the new one.
///   Temporary files of writers that died are deleted under the lock.
/// - **Cost**: each change rewrites the whole file, so it grows with the number of users.
/// - Files are owner-only (0600; the directory 0700) on unix, and a directory other users
///   can write is refused. A file that cannot be parsed is reported as a corrupt
///   [`StoreError`], never a panic; [`set_aside`](UserStore::set_aside) moves it away.
///
/// ```no_run
/// use latchkey_session::{FileStore, UserStore};
/// let store = FileStore::new("/tmp/latchkey-demo");
/// let users = store.load("myapp-abcde")?;
/// println!("{} cached users", users.users.len());
/// # Ok::<(), latchkey_session::StoreError>(())
/// ```
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    lock: Mutex<()>,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The exclusive lock on the store directory, held for one read or read-modify-write.
struct DirLock {
    #[cfg(unix)]
    _dir: fs::File,
}

impl DirLock {
    /// Wait for the lock on `dir` (which exists).
    fn acquire(dir: &Path) -> Result<Self, StoreError> {
        #[cfg(unix)]
        {
            let what = || format!("cannot lock the user store directory {}", dir.display());
            let file = fs::File::open(dir).map_err(io_error(what()))?;
            rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
                .map_err(|e| StoreError::with_source(what(), io::Error::from(e)))?;
            Ok(DirLock { _dir: file })
        }
        #[cfg(not(unix))]
        {
            let _ = dir;
            Ok(DirLock {})
        }
    }
}

impl FileStore {
    /// A store under `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileStore {
            dir: dir.into(),
            lock: Mutex::new(()),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds `app_id`'s users: `<name>.users.json`, where `<name>` is the
    /// app id with every byte outside `[A-Za-z0-9-]` written as `_XX` (upper-case hex of
    /// its UTF-8 bytes). The mapping is injective: two app ids never share a file.
    ///
    /// ```
    /// use latchkey_session::FileStore;
    /// let store = FileStore::new("/data");
    /// assert!(store.path_for("myapp-abcde").ends_with("myapp-abcde.users.json"));
    /// assert!(store.path_for("a.b").ends_with("a_2Eb.users.json"));
    /// assert!(store.path_for("a_b").ends_with("a_5Fb.users.json"));
    /// ```
    pub fn path_for(&self, app_id: &str) -> PathBuf {
        self.dir
            .join(format!("{}.users.json", disk::encode_app_id(app_id)))
    }

    /// Run `f` holding this process's lock and, when the directory exists (or `create`
    /// makes it), the directory lock. `f` learns whether the directory exists.
    fn locked<R>(
        &self,
        create: bool,
        f: impl FnOnce(bool) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let exists = if create {
            disk::create_dir(&self.dir)?;
            true
        } else {
            disk::check_dir(&self.dir)?
        };
        let _dir = if exists {
            Some(DirLock::acquire(&self.dir)?)
        } else {
            None
        };
        f(exists)
    }

    fn read(&self, app_id: &str) -> Result<StoredUsers, StoreError> {
        let path = self.path_for(app_id);
        let Some(doc) = self.read_path(&path)? else {
            return Ok(StoredUsers::default());
        };
        match doc.app_id.as_deref() {
            Some(owner) if owner == app_id => Ok(doc),
            // Written before files carried their app id. Only unambiguous when the
            // name needed no escaping: the old mapping kept [A-Za-z0-9-] as is and
            // turned everything else into `_`, so such a name had exactly one owner.
            None if !disk::encode_app_id(app_id).contains('_') => Ok(doc),
            _ => Err(StoreError::new(format!(
                "{} holds the users of another app id, not {app_id:?}",
                path.display()
            ))),
        }
    }

    /// The document in `path`; `None` when there is no file.
    fn read_path(&self, path: &Path) -> Result<Option<StoredUsers>, StoreError> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(e) => {
                return Err(StoreError::with_source(
                    format!("cannot read {}", path.display()),
                    e,
                ));
            }
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            StoreError::with_source(format!("corrupt user file {}", path.display()), e).corrupt()
        })
    }

    /// Write `doc` as `app_id`'s file, atomically. The directory lock is held.
    fn write(&self, app_id: &str, doc: &StoredUsers) -> Result<(), StoreError> {
        let path = self.path_for(app_id);
        let mut doc = doc.clone();
        doc.app_id = Some(app_id.to_owned());
        let json = serde_json::to_vec_pretty(&doc)
            .map_err(|e| StoreError::with_source("cannot serialize users", e))?;
        let (mut f, tmp) = self.create_temp(&path).map_err(io_error(format!(
            "cannot create a temporary file in {}",
            self.dir.display()
        )))?;
        let result = (|| {
            f.write_all(&json)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, &path)?;
            disk::sync_dir(&self.dir)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(io_error(format!(
            "cannot write the user file {}",
            path.display()
        )))
    }

    /// A new temporary file beside `path`. Under the directory lock no other writer has
    /// one, so a name that is taken belongs to a writer that died: it is replaced.
    fn create_temp(&self, path: &Path) -> io::Result<(fs::File, PathBuf)> {
        let prefix = temp_prefix(path);
        let mut attempts = 0;
        loop {
            let tmp = self.dir.join(format!(
                "{prefix}{}.{}.tmp",
                std::process::id(),
                TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            match disk::create_private(&tmp) {
                Ok(f) => return Ok((f, tmp)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 8 => {
                    attempts += 1;
                    fs::remove_file(&tmp)?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Delete the temporary files that writers of `app_id`'s file left when they died
    /// (they may hold tokens). The directory lock is held.
    fn remove_stray_temps(&self, app_id: &str) {
        let prefix = temp_prefix(&self.path_for(app_id));
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(".tmp") {
                match fs::remove_file(entry.path()) {
                    Ok(()) => tracing::debug!(file = %name, "removed a stray temporary user file"),
                    Err(e) => {
                        tracing::warn!(file = %name, error = %e, "cannot remove a stray temporary user file")
                    }
                }
            }
        }
    }

    fn update(&self, app_id: &str, f: impl FnOnce(&mut StoredUsers)) -> Result<(), StoreError> {
        self.locked(true, |_| {
            let mut doc = self.read(app_id)?;
            f(&mut doc);
            self.write(app_id, &doc)
        })
    }

    /// Delete `app_id`'s file and any temporary file left beside it (after its users
    /// moved to another store). `Ok` when there was nothing to delete.
    pub(crate) fn delete(&self, app_id: &str) -> Result<(), StoreError> {
        self.locked(false, |exists| {
            if !exists {
                return Ok(());
            }
            self.remove_stray_temps(app_id);
            let path = self.path_for(app_id);
            match fs::remove_file(&path) {
                Ok(()) => disk::sync_dir(&self.dir)
                    .map_err(io_error(format!("cannot sync {}", self.dir.display()))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(StoreError::with_source(
                    format!("cannot delete {}", path.display()),
                    e,
                )),
            }
        })
    }
}

/// Temporary files of `path` are named `.<file name>.<pid>.<counter>.tmp`.
fn temp_prefix(path: &Path) -> String {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("users");
    format!(".{name}.")
}

impl UserStore for FileStore {
    fn load(&self, app_id: &str) -> Result<StoredUsers, StoreError> {
        self.locked(false, |exists| {
            if !exists {
                return Ok(StoredUsers::default());
            }
            self.remove_stray_temps(app_id);
            self.read(app_id)
        })
    }
    fn save_user(&self, app_id: &str, user: &StoredUser) -> Result<(), StoreError> {
        self.update(app_id, |d| upsert(d, user))
    }
    fn remove_user(&self, app_id: &str, user_id: &str) -> Result<(), StoreError> {
        self.update(app_id, |d| remove(d, user_id))
    }
    fn set_current_user(&self, app_id: &str, user_id: Option<&str>) -> Result<(), StoreError> {
        self.update(app_id, |d| d.current_user_id = user_id.map(str::to_owned))
    }
    /// All the changes in one read-modify-write: one durable write.
    fn apply(&self, app_id: &str, changes: &[StoreChange]) -> Result<(), StoreError> {
        self.update(app_id, |d| apply_all(d, changes))
    }
    /// Rename the file to `<file>.corrupt-<unix ms>` (owner-only).
    fn set_aside(&self, app_id: &str) -> Result<Option<PathBuf>, StoreError> {
        self.locked(false, |exists| {
            let path = self.path_for(app_id);
            if !exists || !path.exists() {
                return Ok(None);
            }
            let aside = disk::set_aside(&path)
                .map_err(io_error(format!("cannot move {} aside", path.display())))?;
            Ok(Some(aside))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{concurrent_writers_lose_nothing, user};

    #[test]
    fn round_trip_per_app_and_no_temp_files_left() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("nested"));
        store.save_user("app-1", &user("a")).unwrap();
        store.save_user("app-1", &user("b")).unwrap();
        store.set_current_user("app-1", Some("b")).unwrap();
        store.save_user("app-2", &user("c")).unwrap();
        store.remove_user("app-1", "a").unwrap();

        let again = FileStore::new(dir.path().join("nested"));
        let d1 = again.load("app-1").unwrap();
        assert_eq!(d1.users.len(), 1);
        assert_eq!(d1.users[0], user("b"));
        assert_eq!(d1.current_user_id.as_deref(), Some("b"));
        assert_eq!(again.load("app-2").unwrap().users[0].id, "c");
        assert!(again.load("app-3").unwrap().users.is_empty());
        let names: Vec<_> = fs::read_dir(dir.path().join("nested"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
        assert_eq!(names.len(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("s"));
        store.save_user("app", &user("a")).unwrap();
        let mode = fs::metadata(store.path_for("app"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = fs::metadata(dir.path().join("s"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        store.save_user("app", &user("a")).unwrap();
        // A stale temp file from a crashed writer does not affect reads or writes.
        fs::write(dir.path().join(".app.users.json.1.1.tmp"), b"garbage").unwrap();
        store.save_user("app", &user("b")).unwrap();
        let text = fs::read_to_string(store.path_for("app")).unwrap();
        let doc: StoredUsers = serde_json::from_str(&text).unwrap();
        assert_eq!(doc.users.len(), 2);
    }

    #[test]
    fn corrupt_file_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        fs::write(store.path_for("app"), b"{not json").unwrap();
        let err = store.load("app").unwrap_err();
        assert!(err.is_corrupt());
        assert!(err.to_string().contains("corrupt"));
        // Writes also refuse to clobber a corrupt file silently.
        assert!(store.save_user("app", &user("a")).is_err());
    }

    #[test]
    fn path_is_keyed_by_app_id_and_sanitized() {
        let store = FileStore::new("/x");
        assert_eq!(
            store.path_for("../evil/app"),
            PathBuf::from("/x/_2E_2E_2Fevil_2Fapp.users.json")
        );
        assert_eq!(
            store.path_for("myapp-abcde"),
            PathBuf::from("/x/myapp-abcde.users.json")
        );
    }

    #[test]
    fn different_app_ids_never_share_a_file() {
        let ids = [
            "a.b", "a_b", "a/b", "a b", "a_2Eb", "a-b", "ab", "é", "_C3_A9", "a..b", "a._b",
        ];
        let store = FileStore::new("/x");
        let paths: std::collections::HashSet<_> = ids.iter().map(|id| store.path_for(id)).collect();
        assert_eq!(paths.len(), ids.len());

        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        store.save_user("a.b", &user("u-dot")).unwrap();
        store.save_user("a_b", &user("u-underscore")).unwrap();
        assert_eq!(store.load("a.b").unwrap().users[0].id, "u-dot");
        assert_eq!(store.load("a_b").unwrap().users[0].id, "u-underscore");
        assert_eq!(store.load("a.b").unwrap().users.len(), 1);
        // Each file says whose it is.
        let text = fs::read_to_string(store.path_for("a.b")).unwrap();
        let doc: StoredUsers = serde_json::from_str(&text).unwrap();
        assert_eq!(doc.app_id.as_deref(), Some("a.b"));
    }

    #[test]
    fn a_file_of_another_app_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        store.save_user("app-2", &user("theirs")).unwrap();
        // Copied (or renamed) into app-1's place.
        fs::copy(store.path_for("app-2"), store.path_for("app-1")).unwrap();
        let err = store.load("app-1").unwrap_err();
        assert!(err.to_string().contains("another app id"), "{err}");
        assert!(!err.to_string().contains("RT-secret"));
        // Writes refuse to clobber it too.
        assert!(store.save_user("app-1", &user("mine")).is_err());
        assert_eq!(store.load("app-2").unwrap().users[0].id, "theirs");
    }

    #[test]
    fn files_without_an_app_id_load_only_when_unambiguous() {
        // A file as the previous version wrote it: no app id inside.
        let legacy = serde_json::to_vec(&StoredUsers {
            app_id: None,
            users: vec![user("old")],
            current_user_id: Some("old".into()),
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        // `myapp-abcde` maps to the same name as before, and that name had one owner.
        fs::write(dir.path().join("myapp-abcde.users.json"), &legacy).unwrap();
        let doc = store.load("myapp-abcde").unwrap();
        assert_eq!(doc.users[0].id, "old");
        store.save_user("myapp-abcde", &user("new")).unwrap();
        assert_eq!(store.load("myapp-abcde").unwrap().users.len(), 2);
        // An escaped name could be an old file of another app (`a_2Eb` was written
        // as `a_2Eb.users.json` by app id `a_2Eb`): refused for `a.b`.
        fs::write(store.path_for("a.b"), &legacy).unwrap();
        assert!(store.load("a.b").is_err());
    }

    #[test]
    fn stored_user_debug_is_redacted() {
        let s = format!("{:?}", user("a"));
        assert!(!s.contains("AT-secret") && !s.contains("RT-secret"));
    }

    #[test]
    fn several_stores_on_one_directory_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        concurrent_writers_lose_nothing(dir.path(), 20, FileStore::new);
    }

    #[test]
    fn temporary_files_of_dead_writers_are_removed_and_never_block_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        store.save_user("app", &user("a")).unwrap();
        // What a writer killed between creating and renaming its temporary file leaves,
        // including one with the name this process will pick next (same PID after a
        // restart: PID 1 in a container).
        let next = TMP_COUNTER.load(Ordering::Relaxed);
        for n in next..next + 4 {
            let name = format!(".app.users.json.{}.{n}.tmp", std::process::id());
            fs::write(dir.path().join(name), b"{\"tokens\": 1}").unwrap();
        }
        store.save_user("app", &user("b")).unwrap();
        assert_eq!(store.load("app").unwrap().users.len(), 2);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["app.users.json"]);
    }

    #[test]
    fn a_corrupt_file_is_set_aside_on_request() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        assert_eq!(store.set_aside("app").unwrap(), None);
        fs::write(store.path_for("app"), b"{oops").unwrap();
        let aside = store.set_aside("app").unwrap().unwrap();
        assert_eq!(fs::read(&aside).unwrap(), b"{oops");
        assert!(store.load("app").unwrap().users.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_other_users_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let store = FileStore::new(dir.path());
        assert!(
            store
                .load("app")
                .unwrap_err()
                .to_string()
                .contains("chmod o-w")
        );
        assert!(store.save_user("app", &user("a")).is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
