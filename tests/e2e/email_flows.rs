//! The email/password family through the outbox: confirmation, resend, reset by
//! email, reset by function, custom confirmation (webhooks served by wiremock).

use http::StatusCode;
use latchkey::{Credentials, ErrorCode, ErrorKind, UserState};
use latchkey_testkit::TestServer;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::kit::mails;
use crate::support::app;

const EMAIL: &str = "ada@example.com";
const PASSWORD: &str = "correct horse";

/// A server whose email/password users must confirm by email; its admin token.
async fn confirming_server() -> (TestServer, String) {
    let mut config = TestServer::config();
    config.apps[0].providers.local_userpass.auto_confirm = false;
    let admin = config
        .admin_token
        .clone()
        .expect("admin token")
        .into_exposed();
    (TestServer::start_with(config).await, admin)
}

fn assert_code(err: &latchkey::Error, code: ErrorCode) {
    assert_eq!(err.kind(), ErrorKind::Server, "{err:?}");
    assert_eq!(err.error_code(), Some(code), "{err:?}");
}

#[tokio::test]
async fn register_confirm_then_log_in() {
    let (server, admin) = confirming_server().await;
    let app = app(&server);
    let auth = app.email_password_auth();
    auth.register_user(EMAIL, PASSWORD).await.unwrap();

    // Pending: the right password is still refused, with a rejected-credential error.
    let err = app
        .log_in(Credentials::email_password(EMAIL, PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED), "{err:?}");
    assert!(!err.is_session_expired());
    assert!(app.current_user().is_none());

    let sent = mails(&server, &admin, EMAIL, "confirm").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (token, token_id) = (&sent[0].token, &sent[0].token_id);

    // A made-up pair is refused and confirms nothing.
    let err = auth
        .confirm_user("0".repeat(32), token_id.clone())
        .await
        .unwrap_err();
    assert_code(&err, ErrorCode::UserpassTokenInvalid);

    auth.confirm_user(token.clone(), token_id.clone())
        .await
        .unwrap();
    let user = app
        .log_in(Credentials::email_password(EMAIL, PASSWORD))
        .await
        .unwrap();
    assert_eq!(user.state(), UserState::LoggedIn);
    assert_eq!(user.profile().email().as_deref(), Some(EMAIL));
    assert_eq!(user.identities()[0].provider_type, "local-userpass");

    // The pair is single use; confirmed users cannot ask for another email.
    let err = auth
        .confirm_user(token.clone(), token_id.clone())
        .await
        .unwrap_err();
    assert_code(&err, ErrorCode::UserpassTokenInvalid);
    let err = auth.resend_confirmation_email(EMAIL).await.unwrap_err();
    assert_code(&err, ErrorCode::UserAlreadyConfirmed);
    server.shutdown().await;
}

#[tokio::test]
async fn resend_confirmation_email_invalidates_the_first_pair() {
    let (server, admin) = confirming_server().await;
    let app = app(&server);
    let auth = app.email_password_auth();
    auth.register_user(EMAIL, PASSWORD).await.unwrap();
    auth.resend_confirmation_email(EMAIL).await.unwrap();

    let sent = mails(&server, &admin, EMAIL, "confirm").await;
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_ne!(sent[0].token, sent[1].token);
    let err = auth
        .confirm_user(sent[0].token.clone(), sent[0].token_id.clone())
        .await
        .unwrap_err();
    assert_code(&err, ErrorCode::UserpassTokenInvalid);
    auth.confirm_user(sent[1].token.clone(), sent[1].token_id.clone())
        .await
        .unwrap();
    app.log_in(Credentials::email_password(EMAIL, PASSWORD))
        .await
        .unwrap();

    let err = auth
        .resend_confirmation_email("nobody@example.com")
        .await
        .unwrap_err();
    assert_code(&err, ErrorCode::UserNotFound);
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    server.shutdown().await;
}

#[tokio::test]
async fn reset_password_by_email_changes_it_and_ends_sessions() {
    let (server, admin) = confirming_server().await;
    let app = app(&server);
    let auth = app.email_password_auth();
    auth.register_user(EMAIL, PASSWORD).await.unwrap();
    let confirm = mails(&server, &admin, EMAIL, "confirm").await.remove(0);
    auth.confirm_user(confirm.token.clone(), confirm.token_id.clone())
        .await
        .unwrap();
    let user = app
        .log_in(Credentials::email_password(EMAIL, PASSWORD))
        .await
        .unwrap();
    let mut events = app.subscribe();

    auth.send_reset_password_email(EMAIL).await.unwrap();
    let reset = mails(&server, &admin, EMAIL, "reset").await;
    assert_eq!(reset.len(), 1, "{reset:?}");
    let reset = &reset[0];

    // A confirm pair never resets; a too-short password is refused without using the pair.
    let err = auth
        .reset_password(confirm.token.clone(), confirm.token_id.clone(), "new horse")
        .await
        .unwrap_err();
    assert_code(&err, ErrorCode::UserpassTokenInvalid);
    let err = auth
        .reset_password(reset.token.clone(), reset.token_id.clone(), "short")
        .await
        .unwrap_err();
    assert_code(&err, ErrorCode::BadRequest);

    auth.reset_password(reset.token.clone(), reset.token_id.clone(), "new horse")
        .await
        .unwrap();
    // Single use.
    let err = auth
        .reset_password(reset.token.clone(), reset.token_id.clone(), "newer horse")
        .await
        .unwrap_err();
    assert_code(&err, ErrorCode::UserpassTokenInvalid);

    // The old password is gone, the new one works, and the old session was revoked.
    let err = app
        .log_in(Credentials::email_password(EMAIL, PASSWORD))
        .await
        .unwrap_err();
    assert_code(&err, ErrorCode::InvalidPassword);
    let err = user.refresh_access_token().await.unwrap_err();
    assert!(err.is_session_expired(), "{err:?}");
    assert_eq!(user.state(), UserState::LoggedOut);
    assert!(crate::kit::drain(&mut events).contains(
        &latchkey::events::UserEvent::SessionExpired {
            user_id: user.id().to_owned()
        }
    ));
    let again = app
        .log_in(Credentials::email_password(EMAIL, "new horse"))
        .await
        .unwrap();
    assert_eq!(again.id(), user.id());

    let err = auth
        .send_reset_password_email("nobody@example.com")
        .await
        .unwrap_err();
    assert_code(&err, ErrorCode::UserNotFound);
    server.shutdown().await;
}

#[tokio::test]
async fn call_reset_password_function_success_and_fail() {
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/reset"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "status": "success" })))
        .mount(&hook)
        .await;
    let mut config = TestServer::config();
    config.apps[0].providers.local_userpass.reset_webhook_url =
        Some(format!("{}/reset", hook.uri()));
    let server = TestServer::start_with(config).await;
    let app = app(&server);
    let auth = app.email_password_auth();
    auth.register_user(EMAIL, PASSWORD).await.unwrap();

    auth.call_reset_password_function(EMAIL, "new horse", ("extra", 42, json!({ "k": true })))
        .await
        .unwrap();
    let received = hook.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    let body: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(body["username"], EMAIL);
    assert_eq!(body["password"], "new horse");
    assert_eq!(body["arguments"], json!(["extra", 42, { "k": true }]));
    assert!(
        body["token"].is_string() && body["tokenId"].is_string(),
        "{body}"
    );

    let err = app
        .log_in(Credentials::email_password(EMAIL, PASSWORD))
        .await
        .unwrap_err();
    assert_code(&err, ErrorCode::InvalidPassword);
    app.log_in(Credentials::email_password(EMAIL, "new horse"))
        .await
        .unwrap();

    // Arguments that are not a JSON array: a typed error before any request.
    let err = auth
        .call_reset_password_function(EMAIL, "newer horse", json!({ "not": "an array" }))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err:?}");
    assert_eq!(hook.received_requests().await.unwrap().len(), 1);

    // With a reset function, the email variant is refused.
    let err = auth.send_reset_password_email(EMAIL).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST), "{err:?}");

    // The function says no: 400, the password is unchanged.
    hook.reset().await;
    Mock::given(method("POST"))
        .and(path("/reset"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "status": "fail" })))
        .mount(&hook)
        .await;
    let err = auth
        .call_reset_password_function(EMAIL, "other horse", Vec::<String>::new())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST), "{err:?}");
    app.log_in(Credentials::email_password(EMAIL, "new horse"))
        .await
        .unwrap();
    let err = auth
        .call_reset_password_function("nobody@example.com", "other horse", ["x"])
        .await
        .unwrap_err();
    assert_code(&err, ErrorCode::UserNotFound);
    server.shutdown().await;
}

#[tokio::test]
async fn retry_custom_confirmation_through_the_confirmation_function() {
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/confirm"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "status": "pending" })))
        .mount(&hook)
        .await;
    let mut config = TestServer::config();
    let userpass = &mut config.apps[0].providers.local_userpass;
    userpass.auto_confirm = false;
    userpass.confirmation_webhook_url = Some(format!("{}/confirm", hook.uri()));
    let server = TestServer::start_with(config).await;
    let app = app(&server);
    let auth = app.email_password_auth();

    auth.register_user(EMAIL, PASSWORD).await.unwrap();
    let received = hook.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    let body: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(body["username"], EMAIL);
    assert!(
        app.log_in(Credentials::email_password(EMAIL, PASSWORD))
            .await
            .is_err(),
        "pending"
    );

    hook.reset().await;
    Mock::given(method("POST"))
        .and(path("/confirm"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "status": "success" })))
        .mount(&hook)
        .await;
    auth.retry_custom_confirmation(EMAIL).await.unwrap();
    app.log_in(Credentials::email_password(EMAIL, PASSWORD))
        .await
        .unwrap();
    let err = auth.retry_custom_confirmation(EMAIL).await.unwrap_err();
    assert_code(&err, ErrorCode::UserAlreadyConfirmed);
    server.shutdown().await;
}

#[tokio::test]
async fn pending_reset_function_hands_over_a_pair_for_reset_password() {
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/reset"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "status": "pending" })))
        .mount(&hook)
        .await;
    let mut config = TestServer::config();
    config.apps[0].providers.local_userpass.reset_webhook_url =
        Some(format!("{}/reset", hook.uri()));
    let server = TestServer::start_with(config).await;
    let app = app(&server);
    let auth = app.email_password_auth();
    auth.register_user(EMAIL, PASSWORD).await.unwrap();

    auth.call_reset_password_function(EMAIL, "ignored horse", [1])
        .await
        .unwrap();
    // Pending: nothing changed yet.
    app.log_in(Credentials::email_password(EMAIL, PASSWORD))
        .await
        .unwrap();
    let received = hook.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&received[0].body).unwrap();
    let (token, token_id) = (
        body["token"].as_str().unwrap().to_owned(),
        body["tokenId"].as_str().unwrap().to_owned(),
    );
    // The function hands the pair to the user, who completes with reset_password.
    auth.reset_password(token.clone(), token_id.clone(), "final horse")
        .await
        .unwrap();
    let err = app
        .log_in(Credentials::email_password(EMAIL, PASSWORD))
        .await
        .unwrap_err();
    assert_code(&err, ErrorCode::InvalidPassword);
    app.log_in(Credentials::email_password(EMAIL, "final horse"))
        .await
        .unwrap();
    let err = auth
        .reset_password(token, token_id, "again horse")
        .await
        .unwrap_err();
    assert_code(&err, ErrorCode::UserpassTokenInvalid);
    server.shutdown().await;
}

#[tokio::test]
async fn failed_confirmation_function_removes_the_registration() {
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/confirm"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "status": "fail" })))
        .mount(&hook)
        .await;
    let mut config = TestServer::config();
    let userpass = &mut config.apps[0].providers.local_userpass;
    userpass.auto_confirm = false;
    userpass.confirmation_webhook_url = Some(format!("{}/confirm", hook.uri()));
    let server = TestServer::start_with(config).await;
    let app = app(&server);
    let auth = app.email_password_auth();
    let err = auth.register_user(EMAIL, PASSWORD).await.unwrap_err();
    assert_code(&err, ErrorCode::BadRequest);
    let err = auth.retry_custom_confirmation(EMAIL).await.unwrap_err();
    assert_code(&err, ErrorCode::UserNotFound);

    // The function now accepts: the same email can register again and log in.
    hook.reset().await;
    Mock::given(method("POST"))
        .and(path("/confirm"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "status": "success" })))
        .mount(&hook)
        .await;
    auth.register_user(EMAIL, PASSWORD).await.unwrap();
    app.log_in(Credentials::email_password(EMAIL, PASSWORD))
        .await
        .unwrap();
    server.shutdown().await;
}
