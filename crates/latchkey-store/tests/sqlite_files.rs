//! The SQLite database on disk: created owner-only, in-memory only for the exact
//! in-memory URLs, and errors that name the file.

use std::path::Path;

use latchkey_store::{IdentityRecord, Store, StoreError, UserRecord};

/// Write a user `u1` (and its identity) to `store`.
async fn add_user(store: &dyn Store) {
    let user = UserRecord {
        app_id: "a".into(),
        id: "u1".into(),
        created_at: 1,
        disabled: false,
        custom_data: None,
    };
    let identity = IdentityRecord {
        app_id: "a".into(),
        provider_type: "anon-user".into(),
        id: "d1".into(),
        user_id: "u1".into(),
        data: Default::default(),
        created_at: 1,
    };
    store
        .create_user_with_identity(&user, &identity)
        .await
        .unwrap();
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The file holds password hashes and outbox tokens: it, its `-wal` and `-shm` files are
/// `0600`, and a directory made for it `0700`, whatever the umask lets through.
#[cfg(unix)]
#[tokio::test]
async fn attack_sqlite_database_file_is_created_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new-dir").join("latchkey.db");
    let store = latchkey_store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    add_user(&*store).await;
    // While the store is open, the write-ahead log and the shared memory exist.
    for path in [
        db.clone(),
        db.with_extension("db-wal"),
        db.with_extension("db-shm"),
    ] {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert_eq!(mode(db.parent().unwrap()), 0o700);
    store.close().await;
}

/// A file the operator made keeps its permissions (the server warns when others can
/// read it).
#[cfg(unix)]
#[tokio::test]
async fn an_existing_database_file_keeps_its_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("latchkey.db");
    std::fs::write(&db, b"").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
    let store = latchkey_store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    assert_eq!(mode(&db), 0o640);
    store.close().await;
}

/// Only `sqlite::memory:`, `sqlite://:memory:` and `mode=memory` are in-memory: a path
/// that merely contains `:memory:` or `mode=memory` is a file, and keeps its data.
#[tokio::test]
async fn attack_a_path_containing_memory_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["x:memory:y.db", ":memory:.db", "mode=memory/x.db"] {
        let path = dir.path().join(name);
        let url = format!("sqlite://{}", path.display());
        let store = latchkey_store::open(&url).await.unwrap();
        add_user(&*store).await;
        store.close().await;
        assert!(path.is_file(), "{url}: no file");
        let again = latchkey_store::open(&url).await.unwrap();
        assert!(
            again.get_user("a", "u1").await.unwrap().is_some(),
            "{url}: the data did not persist"
        );
        again.close().await;
    }
    // The exact in-memory forms stay in memory (and leave no file behind).
    for url in [
        "sqlite::memory:",
        "sqlite://:memory:",
        "sqlite://?mode=memory",
    ] {
        let store = latchkey_store::open(url).await.unwrap();
        assert!(store.list_users("a").await.unwrap().is_empty(), "{url}");
        store.close().await;
    }
}

/// Opening or migrating a database that cannot be used names its file.
#[tokio::test]
async fn database_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // Not a database: migrating fails.
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    let err = latchkey_store::open(&format!("sqlite://{}", garbage.display()))
        .await
        .unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains(&garbage.display().to_string()), "{shown}");
    // A directory where the file should be: opening fails.
    let directory = dir.path().join("a-directory.db");
    std::fs::create_dir(&directory).unwrap();
    let err = latchkey_store::open(&format!("sqlite://{}", directory.display()))
        .await
        .unwrap_err();
    let shown = err.to_string();
    assert!(shown.contains(&directory.display().to_string()), "{shown}");
    assert!(
        matches!(
            err,
            StoreError::Database(_) | StoreError::Unavailable(_) | StoreError::Config(_)
        ),
        "{err:?}"
    );
}
