//! Users survive a restart through the file store, with the server stopped.

use latchkey::{App, Credentials, UserState};
use latchkey_testkit::TestServer;

#[tokio::test]
async fn users_are_restored_from_the_file_store_without_network() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start().await;
    let app = App::builder(server.app_id())
        .base_url(server.url())
        .storage_dir(dir.path())
        .build()
        .unwrap();
    app.email_password_auth()
        .register_user("ada@example.com", "correct horse")
        .await
        .unwrap();
    let anon = app.log_in(Credentials::anonymous()).await.unwrap();
    let ada = app
        .log_in(Credentials::email_password(
            "ada@example.com",
            "correct horse",
        ))
        .await
        .unwrap();
    let token = ada.access_token().unwrap();
    let device = ada.device_id();
    let app_id = server.app_id().to_owned();
    drop(app);
    server.shutdown().await;

    // New process, server gone, a base URL where nothing listens.
    let restored = App::builder(app_id)
        .base_url("http://127.0.0.1:9")
        .storage_dir(dir.path())
        .build()
        .unwrap();
    let current = restored.current_user().expect("current user restored");
    assert_eq!(current.id(), ada.id());
    assert_eq!(current.state(), UserState::LoggedIn);
    assert_eq!(current.access_token().unwrap(), token);
    assert_eq!(current.device_id(), device);
    assert_eq!(
        current.profile().email().as_deref(),
        Some("ada@example.com")
    );
    let mut ids: Vec<String> = restored
        .all_users()
        .iter()
        .map(|u| u.id().to_owned())
        .collect();
    ids.sort();
    let mut expected = vec![anon.id().to_owned(), ada.id().to_owned()];
    expected.sort();
    assert_eq!(ids, expected);

    // With no server, a network call fails with a transient transport error
    // and the session stays intact.
    let err = current.refresh_access_token().await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(current.state(), UserState::LoggedIn);
}
