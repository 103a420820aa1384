//! Email/password registration and login.

use http::StatusCode;
use latchkey::{Credentials, ErrorCode, UserState};
use latchkey_testkit::TestServer;

use crate::support::app;

#[tokio::test]
async fn register_then_log_in_and_read_the_profile() {
    let server = TestServer::start().await;
    let app = app(&server);
    app.email_password_auth()
        .register_user("ada@example.com", "correct horse")
        .await
        .unwrap();
    let user = app
        .log_in(Credentials::email_password(
            "ada@example.com",
            "correct horse",
        ))
        .await
        .unwrap();
    assert_eq!(user.state(), UserState::LoggedIn);
    assert_eq!(user.profile().email().as_deref(), Some("ada@example.com"));
    let ids = user.identities();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].provider_type, "local-userpass");

    // The same credentials on another device give the same user id.
    let other_device = crate::support::app(&server);
    let same = other_device
        .log_in(Credentials::email_password(
            "ada@example.com",
            "correct horse",
        ))
        .await
        .unwrap();
    assert_eq!(same.id(), user.id());
    server.shutdown().await;
}

#[tokio::test]
async fn wrong_password_and_unknown_email_are_invalid_password() {
    let server = TestServer::start().await;
    let app = app(&server);
    app.email_password_auth()
        .register_user("ada@example.com", "correct horse")
        .await
        .unwrap();

    let wrong = app
        .log_in(Credentials::email_password(
            "ada@example.com",
            "wrong horse",
        ))
        .await
        .unwrap_err();
    assert_eq!(
        wrong.error_code(),
        Some(ErrorCode::InvalidPassword),
        "{wrong:?}"
    );
    assert_eq!(wrong.status(), Some(StatusCode::UNAUTHORIZED));
    assert!(!wrong.is_session_expired());
    assert!(
        !wrong.to_string().contains("wrong horse"),
        "no secret in errors"
    );

    let unknown = app
        .log_in(Credentials::email_password(
            "nobody@example.com",
            "whatever1",
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.error_code(), Some(ErrorCode::InvalidPassword));
    assert!(app.current_user().is_none(), "failed logins change nothing");
    assert!(app.all_users().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn duplicate_and_invalid_registrations_are_rejected() {
    let server = TestServer::start().await;
    let app = app(&server);
    let auth = app.email_password_auth();
    auth.register_user("ada@example.com", "correct horse")
        .await
        .unwrap();
    let dup = auth
        .register_user("ada@example.com", "another one")
        .await
        .unwrap_err();
    assert_eq!(dup.error_code(), Some(ErrorCode::AccountNameInUse));
    let short = auth
        .register_user("bob@example.com", "12345")
        .await
        .unwrap_err();
    assert_eq!(short.error_code(), Some(ErrorCode::BadRequest));
    assert_eq!(short.status(), Some(StatusCode::BAD_REQUEST));
    server.shutdown().await;
}
