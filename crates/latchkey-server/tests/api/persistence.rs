//! A SQLite file database survives a restart.

use crate::common::*;

#[tokio::test]
async fn file_database_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("latchkey.db");
    // The missing directory is created.
    let mut c = config();
    c.database = format!("sqlite://{}", path.display()).into();

    let h = start_with(c.clone()).await;
    let t = h.signed_up("keep@example.com", "secret123").await;
    h.server.shutdown().await;
    assert!(path.exists());

    let h = start_with(c).await;
    let again = h.userpass_tokens("keep@example.com", "secret123").await;
    assert_eq!(again.user_id, t.user_id);
    // Sessions survive too.
    h.refresh(&t.refresh).await.assert_ok_json();
    h.profile(&t.access).await.assert_ok_json();
    h.register("keep@example.com", "secret123")
        .await
        .assert_error(409, "AccountNameInUse");
    h.server.shutdown().await;
}

/// `Server::start_with_store` serves on a store the caller made: it migrates it, every
/// login lands in it, and the configured database is not opened.
#[tokio::test]
async fn server_starts_on_a_store_the_caller_made() {
    use std::sync::Arc;

    use latchkey_server::{Server, SqliteStore, Store};

    let dir = tempfile::tempdir().unwrap();
    let unused = dir.path().join("configured.db");
    let mut c = config();
    c.database = format!("sqlite://{}", unused.display()).into();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::connect("sqlite::memory:").await.unwrap());

    let server = Server::start_with_store(c, store.clone()).await.unwrap();
    let h = Harness {
        server,
        http: client(),
        database: None,
    };
    let t = h.signed_up("mine@example.com", "secret123").await;
    h.refresh(&t.refresh).await.assert_ok_json();
    h.profile(&t.access).await.assert_ok_json();
    assert!(store.get_user(APP, &t.user_id).await.unwrap().is_some());
    assert!(
        store
            .find_userpass(APP, "mine@example.com")
            .await
            .unwrap()
            .is_some()
    );
    assert!(Arc::ptr_eq(h.server.store(), &store));
    h.server.shutdown().await;
    assert!(!unused.exists(), "the configured database is not opened");
}

/// A database file the server cannot write refuses to start, naming its path (it would
/// otherwise start and fail every login).
#[tokio::test]
async fn read_only_database_file_refuses_to_start() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latchkey.db");
    let mut c = config();
    c.database = format!("sqlite://{}", path.display()).into();
    let h = start_with(c.clone()).await;
    h.signed_up("keep@example.com", "secret123").await;
    h.server.shutdown().await;

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let err = latchkey_server::Server::start(c.clone())
        .await
        .expect_err("a read-only database must not start");
    let shown = err.to_string();
    assert!(shown.contains(&path.display().to_string()), "{shown}");
    assert!(shown.contains("cannot be written"), "{shown}");

    // Writable again: it starts and has kept its data.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let h = start_with(c).await;
    h.userpass_tokens("keep@example.com", "secret123").await;
    h.server.shutdown().await;
}
