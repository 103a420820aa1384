//! What the SDK sees of the server's hardening: throttled logins, token-pair expiry and
//! invalidation, forged and misdirected tokens.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use latchkey::{Credentials, ErrorCode, ErrorKind};
use latchkey_testkit::full::{APPLE_CLIENT_ID, GOOGLE_CLIENT_ID};
use latchkey_testkit::idp::IdTokenClaims;
use latchkey_testkit::{FullStack, TestServer};
use serde_json::json;

use crate::kit::mails;
use crate::support::app;

#[tokio::test]
async fn throttled_logins_are_a_transient_typed_error() {
    let mut config = TestServer::config();
    config.throttle.max_failures_per_identifier = 3;
    let server = TestServer::start_with(config).await;
    let app = app(&server);
    let auth = app.email_password_auth();
    auth.register_user("locked@example.com", "s3cret-pass")
        .await
        .unwrap();
    auth.register_user("free@example.com", "s3cret-pass")
        .await
        .unwrap();
    for _ in 0..3 {
        let err = app
            .log_in(Credentials::email_password(
                "locked@example.com",
                "wrong-pass",
            ))
            .await
            .unwrap_err();
        assert_eq!(
            err.error_code(),
            Some(ErrorCode::InvalidPassword),
            "{err:?}"
        );
    }
    // Locked: even the right password is refused, with 429.
    let err = app
        .log_in(Credentials::email_password(
            "locked@example.com",
            "s3cret-pass",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::TOO_MANY_REQUESTS), "{err:?}");
    assert_eq!(
        err.error_code(),
        Some(ErrorCode::TooManyRequests),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert!(!err.is_session_expired());
    assert!(app.current_user().is_none());
    // Other users and anonymous logins are unaffected.
    app.log_in(Credentials::email_password(
        "free@example.com",
        "s3cret-pass",
    ))
    .await
    .unwrap();
    app.log_in(Credentials::anonymous()).await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn token_pairs_expire_after_thirty_minutes_and_are_purpose_bound() {
    let mut config = TestServer::config();
    config.apps[0].providers.local_userpass.auto_confirm = false;
    let admin = config.admin_token.clone().unwrap().into_exposed();
    let server = TestServer::start_with(config).await;
    let app = app(&server);
    let auth = app.email_password_auth();
    auth.register_user("late@example.com", "s3cret-pass")
        .await
        .unwrap();
    let first = mails(&server, &admin, "late@example.com", "confirm")
        .await
        .remove(0);
    server.advance_clock(Duration::from_secs(31 * 60));
    let err = auth
        .confirm_user(first.token, first.token_id)
        .await
        .unwrap_err();
    assert_eq!(
        err.error_code(),
        Some(ErrorCode::UserpassTokenInvalid),
        "{err:?}"
    );

    // A fresh pair works within its 30 minutes.
    auth.resend_confirmation_email("late@example.com")
        .await
        .unwrap();
    let second = mails(&server, &admin, "late@example.com", "confirm")
        .await
        .pop()
        .unwrap();
    server.advance_clock(Duration::from_secs(29 * 60));
    auth.confirm_user(second.token, second.token_id)
        .await
        .unwrap();

    // Reset pairs: a newer one invalidates the older; a reset pair never confirms.
    auth.send_reset_password_email("late@example.com")
        .await
        .unwrap();
    auth.send_reset_password_email("late@example.com")
        .await
        .unwrap();
    let resets = mails(&server, &admin, "late@example.com", "reset").await;
    assert_eq!(resets.len(), 2);
    let err = auth
        .reset_password(
            resets[0].token.clone(),
            resets[0].token_id.clone(),
            "n3w-password",
        )
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::UserpassTokenInvalid));
    let err = auth
        .confirm_user(resets[1].token.clone(), resets[1].token_id.clone())
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::UserpassTokenInvalid));
    // A reset pair past 30 minutes is refused.
    server.advance_clock(Duration::from_secs(31 * 60));
    let err = auth
        .reset_password(
            resets[1].token.clone(),
            resets[1].token_id.clone(),
            "n3w-password",
        )
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::UserpassTokenInvalid));
    app.log_in(Credentials::email_password(
        "late@example.com",
        "s3cret-pass",
    ))
    .await
    .unwrap();
    server.shutdown().await;
}

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn forged_and_misdirected_tokens_are_refused() {
    let stack = FullStack::start().await;
    let app = app(stack.server());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "sub": "ext-1", "aud": stack.server().app_id(), "iat": now, "exp": now + 600,
        "name": "Eve", "email": "eve@example.com",
    });
    // `alg: none`, unsigned.
    let none = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT" })),
        b64(&claims)
    );
    // An RS256 header over an HS256 key's claims, with a made-up signature.
    let rs = format!(
        "{}.{}.{}",
        b64(&json!({ "alg": "RS256", "typ": "JWT" })),
        b64(&claims),
        URL_SAFE_NO_PAD.encode([7u8; 256])
    );
    for bad in [none, rs, "not-a-jwt".to_owned(), String::new()] {
        let err = app.log_in(Credentials::jwt(bad)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Server, "{err:?}");
        assert!(
            err.status() == Some(StatusCode::UNAUTHORIZED)
                || err.status() == Some(StatusCode::BAD_REQUEST),
            "{err:?}"
        );
        assert!(!err.is_session_expired());
    }

    // An Apple token given to Google and a Google token given to Apple.
    let apple = stack.apple_id_token("a-1", "a@example.com");
    let google = stack.google_id_token("g-1", "g@example.com", "G");
    let err = app
        .log_in(Credentials::google_id_token(apple))
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::AuthError), "{err:?}");
    let err = app.log_in(Credentials::apple(google)).await.unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::AuthError), "{err:?}");
    // Google tokens for another client id, or from another issuer.
    let other_client = stack.google.id_token(&IdTokenClaims::new(
        "g-1",
        "someone-else.apps.googleusercontent.com",
    ));
    let other_issuer = stack
        .google
        .id_token(&IdTokenClaims::new("g-1", GOOGLE_CLIENT_ID).iss("https://evil.example.com"));
    let apple_for_google_client = stack
        .apple
        .id_token(&IdTokenClaims::new("g-1", GOOGLE_CLIENT_ID));
    for bad in [other_client, other_issuer, apple_for_google_client] {
        let err = app
            .log_in(Credentials::google_id_token(bad))
            .await
            .unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::AuthError), "{err:?}");
    }
    let expired_apple = stack
        .apple
        .id_token(&IdTokenClaims::new("a-1", APPLE_CLIENT_ID).expired());
    let err = app
        .log_in(Credentials::apple(expired_apple))
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::AuthError), "{err:?}");
    // A Google auth code that was never issued.
    let err = app
        .log_in(Credentials::google_auth_code("4/never-issued"))
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::AuthError), "{err:?}");
    assert!(app.all_users().is_empty());
}

#[tokio::test]
async fn provider_tokens_expire_by_the_server_clock() {
    let stack = FullStack::start().await;
    let app = app(stack.server());
    // Issued now, valid 10 minutes by the JWT's own claims.
    let jwt = stack.custom_jwt("clock-1", "Cloe", "cloe@example.com");
    let google = stack.google_id_token("g-clock", "g@example.com", "G");
    let apple = stack.apple_id_token("a-clock", "a@example.com");
    // One day later on the server.
    stack.server().advance_clock(Duration::from_secs(24 * 3600));
    for creds in [
        Credentials::jwt(jwt),
        Credentials::google_id_token(google),
        Credentials::apple(apple),
    ] {
        let err = app.log_in(creds).await.unwrap_err();
        assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED), "{err:?}");
        assert_eq!(err.error_code(), Some(ErrorCode::AuthError), "{err:?}");
    }
    assert!(app.all_users().is_empty());
}
