//! [`FileStore`]: one JSON file per app id under a directory (feature `file-store`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::{StoreError, StoredUser, StoredUsers, UserStore, remove, upsert};

/// A store that keeps one JSON file per app id under a directory.
///
/// Writes are atomic (temporary file in the same directory, write, fsync, rename, fsync
/// of the directory) and files are created with owner-only permissions (0600; the
/// directory 0700) on unix. A file that cannot be parsed is reported as a corrupt
/// [`StoreError`], never a panic.
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
            .join(format!("{}.users.json", encode_app_id(app_id)))
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
            None if !encode_app_id(app_id).contains('_') => Ok(doc),
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
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
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

    fn write(&self, app_id: &str, doc: &StoredUsers) -> Result<(), StoreError> {
        let io = |what: &str| {
            let what = what.to_owned();
            move |e: std::io::Error| StoreError::with_source(what, e)
        };
        create_dir(&self.dir).map_err(io("cannot create the store directory"))?;
        let path = self.path_for(app_id);
        let mut doc = doc.clone();
        doc.app_id = Some(app_id.to_owned());
        let json = serde_json::to_vec_pretty(&doc)
            .map_err(|e| StoreError::with_source("cannot serialize users", e))?;
        let tmp = self.dir.join(format!(
            ".{}.{}.{}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("users"),
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut f = open_private(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, &path)?;
            sync_dir(&self.dir);
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(io("cannot write the user file"))
    }

    fn update(&self, app_id: &str, f: impl FnOnce(&mut StoredUsers)) -> Result<(), StoreError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut doc = self.read(app_id)?;
        f(&mut doc);
        self.write(app_id, &doc)
    }
}

/// `app_id` with each byte outside `[A-Za-z0-9-]` as `_XX`: injective, and a safe
/// file name on every platform.
fn encode_app_id(app_id: &str) -> String {
    let mut out = String::with_capacity(app_id.len());
    for b in app_id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02X}"));
        }
    }
    out
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn create_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

impl UserStore for FileStore {
    fn load(&self, app_id: &str) -> Result<StoredUsers, StoreError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.read(app_id)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::UserState;

    fn user(id: &str) -> StoredUser {
        StoredUser {
            id: id.into(),
            state: UserState::LoggedIn,
            access_token: Some("AT-secret".into()),
            refresh_token: Some("RT-secret".into()),
            access_token_expires_at_ms: Some(1),
            access_token_lifetime_secs: Some(1800),
            profile: Default::default(),
            identities: vec![],
            user_type: None,
            device_id: Some("d".into()),
            provider_type: None,
        }
    }

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
}
