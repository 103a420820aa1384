//! Anonymous login, profile, refresh, 401 replay, session expiry, log out.

use std::time::Duration;

use http::{Method, StatusCode};
use latchkey::{Credentials, ErrorCode, UserState};
use latchkey_protocol::routes::Routes;
use latchkey_testkit::TestServer;

use crate::support::{app, raw};

#[tokio::test]
async fn anonymous_login_profile_and_reuse() {
    let server = TestServer::start().await;
    let app = app(&server);

    let user = app.log_in(Credentials::anonymous()).await.unwrap();
    assert_eq!(user.state(), UserState::LoggedIn);
    assert_eq!(user.id().len(), 24, "user ids are ObjectId hex");
    let identities = user.identities();
    assert_eq!(identities.len(), 1);
    assert_eq!(identities[0].provider_type, "anon-user");
    assert!(user.device_id().is_some());
    assert!(user.access_token().is_some());
    assert_eq!(app.current_user().unwrap().id(), user.id());

    // Anonymous reuse: same user, no new account.
    let again = app.log_in(Credentials::anonymous()).await.unwrap();
    assert_eq!(again.id(), user.id());
    // Opting out of reuse creates a second anonymous user.
    let other = app.log_in(Credentials::anonymous_no_reuse()).await.unwrap();
    assert_ne!(other.id(), user.id());
    assert_eq!(app.all_users().len(), 2);
    assert_eq!(app.current_user().unwrap().id(), other.id());

    server.shutdown().await;
}

#[tokio::test]
async fn refresh_issues_a_new_access_token_for_the_same_session() {
    let server = TestServer::start().await;
    let app = app(&server);
    let user = app.log_in(Credentials::anonymous()).await.unwrap();
    let first = user.access_token().unwrap();
    let refresh = user.refresh_token().unwrap();

    tokio::time::sleep(Duration::from_millis(1100)).await; // a new `iat`
    user.refresh_access_token().await.unwrap();
    let second = user.access_token().unwrap();
    assert_ne!(first, second);
    assert_eq!(
        user.refresh_token().unwrap(),
        refresh,
        "refresh tokens are not rotated"
    );

    let a = latchkey_protocol::AccessTokenClaims::decode_unverified(&first).unwrap();
    let b = latchkey_protocol::AccessTokenClaims::decode_unverified(&second).unwrap();
    assert_eq!(a.iss, b.iss, "same session");
    assert_eq!(b.sub, user.id());
    server.shutdown().await;
}

#[tokio::test]
async fn expired_access_token_is_refreshed_and_the_request_replayed() {
    let server = TestServer::start().await;
    let app = app(&server);
    let user = app.log_in(Credentials::anonymous()).await.unwrap();
    let old = user.access_token().unwrap();
    let mut events = app.subscribe();

    // The server's clock moves 31 minutes ahead: it now rejects the access token
    // the client still believes is fresh, so the first profile call gets a 401.
    server.advance_clock(Duration::from_secs(31 * 60));
    let (status, _, body) = raw(
        Method::GET,
        &Routes::new(server.url(), server.app_id()).profile(),
        Some(&old),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error_code"], "InvalidSession");

    user.refresh_profile()
        .await
        .expect("401 -> refresh -> replay");
    assert_ne!(user.access_token().unwrap(), old, "a new token was fetched");
    assert_eq!(user.state(), UserState::LoggedIn);

    let mut saw_refresh = false;
    while let Ok(event) = events.try_recv() {
        if format!("{event:?}").contains("TokenRefreshed") {
            saw_refresh = true;
        }
    }
    assert!(saw_refresh, "a TokenRefreshed event was emitted");
    server.shutdown().await;
}

#[tokio::test]
async fn expired_refresh_token_ends_the_session_with_a_distinct_error() {
    let server = TestServer::start().await;
    let app = app(&server);
    app.email_password_auth()
        .register_user("dora@example.com", "s3cret-pass")
        .await
        .unwrap();
    let dora = app
        .log_in(Credentials::email_password(
            "dora@example.com",
            "s3cret-pass",
        ))
        .await
        .unwrap();
    let anon = app.log_in(Credentials::anonymous()).await.unwrap();

    // 61 days later on the server: the refresh tokens (60 days) have expired too.
    server.advance_clock(Duration::from_secs(61 * 24 * 3600));
    let err = dora.refresh_access_token().await.unwrap_err();
    assert!(err.is_session_expired(), "got {err:?}");
    assert_eq!(
        dora.state(),
        UserState::LoggedOut,
        "known, can log in again"
    );
    assert!(dora.access_token().is_none());

    // An anonymous user has no way back in: its expired session removes it.
    let err = anon.refresh_access_token().await.unwrap_err();
    assert!(err.is_session_expired(), "got {err:?}");
    assert_eq!(anon.state(), UserState::Removed);
    let ids: Vec<String> = app.all_users().iter().map(|u| u.id().to_owned()).collect();
    assert_eq!(ids, vec![dora.id().to_owned()]);
    server.shutdown().await;
}

#[tokio::test]
async fn log_out_revokes_the_session_on_the_server() {
    let server = TestServer::start().await;
    let app = app(&server);
    app.email_password_auth()
        .register_user("bob@example.com", "s3cret-pass")
        .await
        .unwrap();
    let user = app
        .log_in(Credentials::email_password(
            "bob@example.com",
            "s3cret-pass",
        ))
        .await
        .unwrap();
    let refresh = user.refresh_token().unwrap();

    user.log_out().await.unwrap();
    assert_eq!(user.state(), UserState::LoggedOut);
    assert!(user.access_token().is_none());
    assert!(app.current_user().is_none());
    assert_eq!(app.all_users().len(), 1, "a logged-out user stays known");

    // The old refresh token no longer works: the server deleted the session.
    let (status, content_type, body) = raw(
        Method::POST,
        &Routes::new(server.url(), server.app_id()).session(),
        Some(&refresh),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(body["error_code"], "InvalidSession");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("failed to find refresh token"),
        "{body}"
    );

    // Logging in again works and yields the same user.
    let again = app
        .log_in(Credentials::email_password(
            "bob@example.com",
            "s3cret-pass",
        ))
        .await
        .unwrap();
    assert_eq!(again.id(), user.id());
    server.shutdown().await;
}

#[tokio::test]
async fn anonymous_log_out_removes_the_user() {
    let server = TestServer::start().await;
    let app = app(&server);
    let user = app.log_in(Credentials::anonymous()).await.unwrap();
    user.log_out().await.unwrap();
    assert_eq!(user.state(), UserState::Removed);
    assert!(app.all_users().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn log_out_works_with_the_server_down() {
    let server = TestServer::start().await;
    let app = app(&server);
    app.email_password_auth()
        .register_user("carol@example.com", "s3cret-pass")
        .await
        .unwrap();
    let user = app
        .log_in(Credentials::email_password(
            "carol@example.com",
            "s3cret-pass",
        ))
        .await
        .unwrap();
    server.shutdown().await;
    // Whatever the network says, the user is logged out locally.
    let _ = user.log_out().await;
    assert_eq!(user.state(), UserState::LoggedOut);
    assert!(user.access_token().is_none());
}

#[tokio::test]
async fn unknown_app_is_a_typed_error() {
    let server = TestServer::start().await;
    let app = latchkey::App::builder("no-such-app")
        .base_url(server.url())
        .in_memory_store()
        .build()
        .unwrap();
    let err = app.log_in(Credentials::anonymous()).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND), "{err:?}");
    assert!(err.error_code().is_some());
    assert_ne!(err.error_code(), Some(ErrorCode::InvalidSession));
    server.shutdown().await;
}
