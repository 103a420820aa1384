//! User API keys through `user.api_keys()` against the real server.

use http::StatusCode;
use latchkey::{Credentials, ErrorCode, ErrorKind, UserState};
use latchkey_testkit::TestServer;

use crate::support::app;

#[tokio::test]
async fn create_fetch_list_disable_enable_delete() {
    let server = TestServer::start().await;
    let app = app(&server);
    app.email_password_auth()
        .register_user("keys@example.com", "s3cret-pass")
        .await
        .unwrap();
    let user = app
        .log_in(Credentials::email_password(
            "keys@example.com",
            "s3cret-pass",
        ))
        .await
        .unwrap();
    let keys = user.api_keys();
    assert!(keys.fetch_all().await.unwrap().is_empty());

    let ci = keys.create("ci").await.unwrap();
    let deploy = keys.create("deploy").await.unwrap();
    assert_eq!(ci.id.len(), 24);
    assert_ne!(ci.id, deploy.id);
    let secret = ci
        .key
        .as_ref()
        .expect("secret on create")
        .expose()
        .to_owned();
    assert!(!format!("{ci:?}").contains(&secret), "no secret in Debug");

    // A duplicate name is refused.
    let err = keys.create("ci").await.unwrap_err();
    assert_eq!(
        err.error_code(),
        Some(ErrorCode::APIKeyAlreadyExists),
        "{err:?}"
    );
    assert_eq!(user.state(), UserState::LoggedIn);

    let fetched = keys.fetch(&ci.id).await.unwrap();
    assert_eq!(fetched.id, ci.id);
    assert_eq!(fetched.name, "ci");
    assert!(!fetched.disabled);
    assert!(fetched.key.is_none(), "the secret is shown only once");

    let mut all = keys.fetch_all().await.unwrap();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        all.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
        vec!["ci", "deploy"]
    );
    assert!(all.iter().all(|k| k.key.is_none()));

    // Disabled: the key cannot log in; enabled again: it can.
    let cli = crate::support::app(&server);
    keys.disable(&ci.id).await.unwrap();
    assert!(keys.fetch(&ci.id).await.unwrap().disabled);
    let err = cli
        .log_in(Credentials::api_key(secret.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED), "{err:?}");
    assert_eq!(err.error_code(), Some(ErrorCode::AuthError));
    keys.enable(&ci.id).await.unwrap();
    assert!(!keys.fetch(&ci.id).await.unwrap().disabled);
    let as_owner = cli
        .log_in(Credentials::api_key(secret.clone()))
        .await
        .unwrap();
    assert_eq!(as_owner.id(), user.id());

    // Deleted: gone from the list, fetch is APIKeyNotFound (404), the user stays
    // logged in, and the key no longer logs in.
    keys.delete(&ci.id).await.unwrap();
    let err = keys.fetch(&ci.id).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server, "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(err.error_code(), Some(ErrorCode::APIKeyNotFound));
    assert!(!err.is_session_expired());
    assert_eq!(user.state(), UserState::LoggedIn);
    assert!(user.access_token().is_some());
    let all = keys.fetch_all().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id, deploy.id);
    for err in [
        keys.enable(&ci.id).await.unwrap_err(),
        keys.disable(&ci.id).await.unwrap_err(),
        keys.delete(&ci.id).await.unwrap_err(),
    ] {
        assert_eq!(err.error_code(), Some(ErrorCode::APIKeyNotFound), "{err:?}");
    }
    assert_eq!(user.state(), UserState::LoggedIn);
    let err = crate::support::app(&server)
        .log_in(Credentials::api_key(secret))
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::AuthError), "{err:?}");

    // An id that is not a key id is refused locally.
    let err = keys.fetch("../profile").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn key_calls_need_a_live_session() {
    let server = TestServer::start().await;
    let app = app(&server);
    app.email_password_auth()
        .register_user("k2@example.com", "s3cret-pass")
        .await
        .unwrap();
    let user = app
        .log_in(Credentials::email_password("k2@example.com", "s3cret-pass"))
        .await
        .unwrap();
    let key = user.api_keys().create("one").await.unwrap();
    let mut events = app.subscribe();

    // The refresh token is revoked elsewhere (the same session logged out from a copy of
    // the token): the next key call is a session expiry and logs the user out.
    let refresh = user.refresh_token().unwrap();
    let (status, _, _) = crate::support::raw(
        http::Method::DELETE,
        &latchkey_protocol::routes::Routes::new(server.url(), server.app_id()).session(),
        Some(&refresh),
        None,
    )
    .await;
    assert!(status.is_success());
    let err = user.api_keys().fetch(&key.id).await.unwrap_err();
    assert!(err.is_session_expired(), "{err:?}");
    assert_eq!(user.state(), UserState::LoggedOut);
    assert!(crate::kit::drain(&mut events).contains(
        &latchkey::events::UserEvent::SessionExpired {
            user_id: user.id().to_owned()
        }
    ));
    // Logged out: a typed client-side error, no request needed.
    let err = user.api_keys().fetch_all().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotLoggedIn, "{err:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn keys_of_other_users_and_server_keys_are_invisible() {
    let config = TestServer::config();
    let admin = config.admin_token.clone().unwrap().into_exposed();
    let server = TestServer::start_with(config).await;
    let app = app(&server);
    let mut users = Vec::new();
    for email in ["owner@example.com", "other@example.com"] {
        app.email_password_auth()
            .register_user(email, "s3cret-pass")
            .await
            .unwrap();
        users.push(
            app.log_in(Credentials::email_password(email, "s3cret-pass"))
                .await
                .unwrap(),
        );
    }
    let (owner, other) = (&users[0], &users[1]);
    let key = owner.api_keys().create("mine").await.unwrap();
    let server_key = crate::kit::admin_ok(
        &server,
        &admin,
        http::Method::POST,
        "/api_keys",
        Some(serde_json::json!({ "name": "backend" })),
    )
    .await;
    let server_key_id = server_key["_id"].as_str().unwrap().to_owned();

    for id in [key.id.as_str(), server_key_id.as_str()] {
        let keys = other.api_keys();
        for err in [
            keys.fetch(id).await.unwrap_err(),
            keys.disable(id).await.unwrap_err(),
            keys.enable(id).await.unwrap_err(),
            keys.delete(id).await.unwrap_err(),
        ] {
            assert_eq!(err.error_code(), Some(ErrorCode::APIKeyNotFound), "{err:?}");
        }
        let err = owner.api_keys().fetch(id).await;
        if id == server_key_id {
            let err = err.unwrap_err();
            assert_eq!(err.error_code(), Some(ErrorCode::APIKeyNotFound), "{err:?}");
        }
    }
    assert!(other.api_keys().fetch_all().await.unwrap().is_empty());
    let mine = owner.api_keys().fetch_all().await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].id, key.id);
    assert!(!owner.api_keys().fetch(&key.id).await.unwrap().disabled);
    assert_eq!(other.state(), UserState::LoggedIn);
    // The server key still logs in.
    app.log_in(Credentials::api_key(server_key["key"].as_str().unwrap()))
        .await
        .unwrap();
    server.shutdown().await;
}
