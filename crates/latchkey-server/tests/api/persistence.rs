//! A SQLite file database survives a restart.

use crate::common::*;

#[tokio::test]
async fn file_database_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("latchkey.db");
    // The missing directory is created.
    let mut c = config();
    c.database = format!("sqlite://{}", path.display());

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
