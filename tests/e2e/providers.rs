//! Every provider against the real server (`FullStack`: fake Google, Apple and
//! Facebook signing with real keys, an in-process custom function, a custom-JWT key).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Method, StatusCode};
use latchkey::{App, Credentials, ErrorCode, ErrorKind, UserState};
use latchkey_testkit::FullStack;
use latchkey_testkit::idp::FacebookUser;
use latchkey_testkit::record::RecordingTransport;
use latchkey_transport_reqwest::ReqwestTransport;
use serde_json::json;

use crate::kit::{admin, provider_types};
use crate::support::app;

/// A rejected credential: 401 `AuthError`, never a session expiry, and the secret
/// appears nowhere in the error.
fn assert_rejected(err: &latchkey::Error, secret: &str) {
    assert_eq!(err.kind(), ErrorKind::Server, "{err:?}");
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED), "{err:?}");
    assert_eq!(err.error_code(), Some(ErrorCode::AuthError), "{err:?}");
    assert!(!err.is_session_expired(), "{err:?}");
    let shown = format!(
        "{err:?} | {err} | {:?} | {:?}",
        err.raw_body(),
        err.error_body()
    );
    assert!(!shown.contains(secret), "secret in the error: {shown}");
}

#[tokio::test]
async fn user_api_key_logs_in_as_its_owner() {
    let stack = FullStack::start().await;
    let app = app(stack.server());
    app.email_password_auth()
        .register_user("owner@example.com", "correct horse")
        .await
        .unwrap();
    let owner = app
        .log_in(Credentials::email_password(
            "owner@example.com",
            "correct horse",
        ))
        .await
        .unwrap();
    let key = owner.api_keys().create("ci").await.unwrap();
    assert_eq!(key.name, "ci");
    assert!(!key.disabled);
    let secret = key
        .key
        .as_ref()
        .expect("secret on create")
        .expose()
        .to_owned();

    // Another device logs in with the key: the same user.
    let ci = crate::support::app(stack.server());
    let as_owner = ci
        .log_in(Credentials::api_key(secret.clone()))
        .await
        .unwrap();
    assert_eq!(as_owner.id(), owner.id());
    assert_eq!(as_owner.state(), UserState::LoggedIn);
    assert_eq!(as_owner.provider_type().as_deref(), Some("api-key"));
    assert_eq!(as_owner.user_type().as_deref(), Some("normal"));
    let types = provider_types(&as_owner);
    assert!(types.contains(&"local-userpass".to_owned()), "{types:?}");
    assert!(types.contains(&"api-key".to_owned()), "{types:?}");
    assert_eq!(
        as_owner.profile().email().as_deref(),
        Some("owner@example.com")
    );

    // A wrong key (right id prefix, wrong secret) is an AuthError.
    let mut wrong = secret.clone();
    let last = wrong.pop().unwrap();
    wrong.push(if last == 'a' { 'b' } else { 'a' });
    let err = ci
        .log_in(Credentials::api_key(wrong.clone()))
        .await
        .unwrap_err();
    assert_rejected(&err, &wrong);
    assert!(!format!("{err:?} {err}").contains(&secret));
}

#[tokio::test]
async fn server_api_key_logs_in_as_a_server_user() {
    let stack = FullStack::start().await;
    let server = stack.server();
    let (status, created) = admin(
        server,
        stack.admin_token(),
        Method::POST,
        "/api_keys",
        Some(json!({ "name": "backend" })),
    )
    .await;
    assert!(status.is_success(), "{status} {created}");
    assert_eq!(created["name"], "backend");
    assert_eq!(created["disabled"], false);
    let secret = created["key"].as_str().expect("key shown once").to_owned();
    let key_id = created["_id"].as_str().expect("_id").to_owned();

    let app = app(server);
    let user = app
        .log_in(Credentials::api_key(secret.clone()))
        .await
        .unwrap();
    assert_eq!(user.state(), UserState::LoggedIn);
    assert_eq!(user.user_type().as_deref(), Some("server"));
    assert_eq!(user.provider_type().as_deref(), Some("api-key"));
    let ids = user.identities();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(ids[0].provider_type, "api-key");
    assert_eq!(ids[0].id, key_id);

    // Same key again, from another device: the same server user.
    let again = crate::support::app(server)
        .log_in(Credentials::api_key(secret))
        .await
        .unwrap();
    assert_eq!(again.id(), user.id());

    // A second server key is a second server user.
    let (_, other) = admin(
        server,
        stack.admin_token(),
        Method::POST,
        "/api_keys",
        Some(json!({ "name": "worker" })),
    )
    .await;
    let other_user = app
        .log_in(Credentials::api_key(other["key"].as_str().unwrap()))
        .await
        .unwrap();
    assert_ne!(other_user.id(), user.id());
}

#[tokio::test]
async fn custom_jwt_maps_sub_to_a_user_with_metadata() {
    let stack = FullStack::start().await;
    let app = app(stack.server());
    let token = stack.custom_jwt("ext-42", "Jay Walker", "jay@example.com");
    let user = app.log_in(Credentials::jwt(token.clone())).await.unwrap();
    assert_eq!(user.state(), UserState::LoggedIn);
    assert_eq!(user.provider_type().as_deref(), Some("custom-token"));
    let ids = user.identities();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].provider_type, "custom-token");
    assert_eq!(ids[0].id, "ext-42");
    let profile = user.profile();
    assert_eq!(profile.name().as_deref(), Some("Jay Walker"));
    assert_eq!(profile.email().as_deref(), Some("jay@example.com"));

    // Same sub (new token, other device) → same user.
    let again = crate::support::app(stack.server())
        .log_in(Credentials::jwt(stack.custom_jwt(
            "ext-42",
            "Jay W.",
            "jay@example.com",
        )))
        .await
        .unwrap();
    assert_eq!(again.id(), user.id());
    // Another sub → another user.
    let other = app
        .log_in(Credentials::jwt(stack.custom_jwt(
            "ext-43",
            "Kay",
            "kay@example.com",
        )))
        .await
        .unwrap();
    assert_ne!(other.id(), user.id());

    // Forged: the payload changed (sub ext-43 → ext-42 impersonation) under the old
    // signature.
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = json!("admin");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    );
    let err = app
        .log_in(Credentials::jwt(forged.clone()))
        .await
        .unwrap_err();
    assert_rejected(&err, &forged);
    // A token with a garbage signature.
    let garbage = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode("nope")
    );
    let err = app
        .log_in(Credentials::jwt(garbage.clone()))
        .await
        .unwrap_err();
    assert_rejected(&err, &garbage);
    assert_eq!(app.current_user().unwrap().id(), other.id(), "unchanged");
}

#[tokio::test]
async fn custom_function_same_username_same_user_and_rejections() {
    let stack = FullStack::start().await;
    let app = app(stack.server());
    let user = app
        .log_in(Credentials::function(json!({ "username": "ilovemongodb" })))
        .await
        .unwrap();
    assert_eq!(user.provider_type().as_deref(), Some("custom-function"));
    let ids = user.identities();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].provider_type, "custom-function");
    assert_eq!(ids[0].id, "fn:ilovemongodb");
    assert_eq!(user.profile().name().as_deref(), Some("ilovemongodb"));

    // Any Serialize works: a struct with the same username is the same user.
    #[derive(serde::Serialize)]
    struct Payload {
        username: &'static str,
        attempt: u32,
    }
    let again = crate::support::app(stack.server())
        .log_in(Credentials::function(Payload {
            username: "ilovemongodb",
            attempt: 2,
        }))
        .await
        .unwrap();
    assert_eq!(again.id(), user.id());
    let other = app
        .log_in(Credentials::function(json!({ "username": "someone-else" })))
        .await
        .unwrap();
    assert_ne!(other.id(), user.id());

    // Rejected by the function.
    for payload in [json!({ "username": "" }), json!({ "user": "x" })] {
        let err = app
            .log_in(Credentials::function(payload))
            .await
            .unwrap_err();
        assert_rejected(&err, "\u{0}");
    }
}

#[tokio::test]
async fn custom_function_unserializable_payload_fails_before_any_request() {
    struct Unserializable;
    impl serde::Serialize for Unserializable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("cannot serialize this"))
        }
    }

    let stack = FullStack::start().await;
    let recorder = RecordingTransport::new(ReqwestTransport::new());
    let app = App::builder(stack.server().app_id())
        .base_url(stack.server().url())
        .in_memory_store()
        .transport(recorder.clone())
        .build()
        .unwrap();
    let err = app
        .log_in(Credentials::function(Unserializable))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Credential, "{err:?}");
    // Not an object either: a typed Credential error.
    let err = app.log_in(Credentials::function(42)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Credential, "{err:?}");
    let err = app
        .log_in(Credentials::function(vec!["username"]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Credential, "{err:?}");
    assert!(
        recorder.requests().is_empty(),
        "no request was sent: {:?}",
        recorder.requests()
    );
    assert!(app.current_user().is_none());
}

#[tokio::test]
async fn facebook_login_copies_the_profile() {
    let stack = FullStack::start().await;
    let app = app(stack.server());
    let token = stack.facebook.issue_token(
        FacebookUser::new("10001", "Fay Book")
            .email("fay@example.com")
            .picture_url("https://pics.example.com/fay.png"),
    );
    let user = app.log_in(Credentials::facebook(token)).await.unwrap();
    assert_eq!(user.provider_type().as_deref(), Some("oauth2-facebook"));
    let ids = user.identities();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].provider_type, "oauth2-facebook");
    assert_eq!(ids[0].id, "10001");
    let p = user.profile();
    assert_eq!(p.name().as_deref(), Some("Fay Book"));
    assert_eq!(p.email().as_deref(), Some("fay@example.com"));
    assert_eq!(p.first_name().as_deref(), Some("Fay"));
    assert_eq!(p.last_name().as_deref(), Some("Book"));
    assert_eq!(
        p.picture_url().as_deref(),
        Some("https://pics.example.com/fay.png")
    );

    // A second token for the same Facebook user → same user.
    let again = crate::support::app(stack.server())
        .log_in(Credentials::facebook(stack.facebook_token(
            "10001",
            "Fay Book",
            "fay@example.com",
        )))
        .await
        .unwrap();
    assert_eq!(again.id(), user.id());

    // Revoked, expired, other app's and made-up tokens are refused.
    let revoked = stack.facebook_token("10002", "Rev Oked", "rev@example.com");
    stack.facebook.revoke(&revoked);
    let expired = stack
        .facebook
        .expired_token(FacebookUser::new("10003", "Ex Pired"));
    let foreign = stack
        .facebook
        .token_for_other_app(FacebookUser::new("10004", "For Eign"));
    for bad in [revoked, expired, foreign, "made-up-token".to_owned()] {
        let err = app
            .log_in(Credentials::facebook(bad.clone()))
            .await
            .unwrap_err();
        assert_rejected(&err, &bad);
    }
}

#[tokio::test]
async fn google_id_token_and_auth_code_are_the_same_account() {
    let stack = FullStack::start().await;
    let app = app(stack.server());
    let id_token = stack.google_id_token("g-123", "gina@example.com", "Gina Google");
    let user = app
        .log_in(Credentials::google_id_token(id_token))
        .await
        .unwrap();
    assert_eq!(user.provider_type().as_deref(), Some("oauth2-google"));
    let ids = user.identities();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].provider_type, "oauth2-google");
    assert_eq!(ids[0].id, "g-123");
    assert_eq!(user.profile().email().as_deref(), Some("gina@example.com"));
    assert_eq!(user.profile().name().as_deref(), Some("Gina Google"));

    // The auth-code flow for the same Google account → the same user.
    let code = stack.google_auth_code("g-123", "gina@example.com", "Gina Google");
    let web = crate::support::app(stack.server());
    let same = web
        .log_in(Credentials::google_auth_code(code.clone()))
        .await
        .unwrap();
    assert_eq!(same.id(), user.id());
    assert_eq!(same.identities().len(), 1, "no second identity");
    assert_eq!(same.profile().email().as_deref(), Some("gina@example.com"));

    // A code is single use.
    let err = web
        .log_in(Credentials::google_auth_code(code.clone()))
        .await
        .unwrap_err();
    assert_rejected(&err, &code);
    assert_eq!(web.current_user().unwrap().id(), user.id(), "unchanged");

    // Another Google account is another user; an expired ID token is refused.
    let other = app
        .log_in(Credentials::google_id_token(stack.google_id_token(
            "g-456",
            "hal@example.com",
            "Hal",
        )))
        .await
        .unwrap();
    assert_ne!(other.id(), user.id());
    let expired = stack.google.id_token(
        &latchkey_testkit::idp::IdTokenClaims::new(
            "g-123",
            latchkey_testkit::full::GOOGLE_CLIENT_ID,
        )
        .expired(),
    );
    let err = app
        .log_in(Credentials::google_id_token(expired.clone()))
        .await
        .unwrap_err();
    assert_rejected(&err, &expired);
}

#[tokio::test]
async fn apple_login_and_rejections() {
    let stack = FullStack::start().await;
    let app = app(stack.server());
    let user = app
        .log_in(Credentials::apple(
            stack.apple_id_token("apple-001", "ann@privaterelay.appleid.com"),
        ))
        .await
        .unwrap();
    assert_eq!(user.provider_type().as_deref(), Some("oauth2-apple"));
    let ids = user.identities();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].provider_type, "oauth2-apple");
    assert_eq!(ids[0].id, "apple-001");
    assert_eq!(
        user.profile().email().as_deref(),
        Some("ann@privaterelay.appleid.com")
    );

    let again = crate::support::app(stack.server())
        .log_in(Credentials::apple(
            stack.apple_id_token("apple-001", "ann@privaterelay.appleid.com"),
        ))
        .await
        .unwrap();
    assert_eq!(again.id(), user.id());

    // Wrong audience, unpublished key: refused.
    let wrong_aud = stack
        .apple
        .id_token(&latchkey_testkit::idp::IdTokenClaims::new(
            "apple-001",
            "com.someone.else",
        ));
    let unpublished =
        stack
            .apple
            .id_token_with_unpublished_key(&latchkey_testkit::idp::IdTokenClaims::new(
                "apple-001",
                latchkey_testkit::full::APPLE_CLIENT_ID,
            ));
    for bad in [wrong_aud, unpublished] {
        let err = app
            .log_in(Credentials::apple(bad.clone()))
            .await
            .unwrap_err();
        assert_rejected(&err, &bad);
    }
}

#[tokio::test]
async fn custom_function_receives_plain_json_numbers() {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let log = seen.clone();
    let mut config = latchkey_testkit::TestServer::config();
    let f = &mut config.apps[0].providers.custom_function;
    f.enabled = true;
    f.function = Some(latchkey_server::CustomFunction::new(move |payload| {
        log.lock().unwrap().push(payload.clone());
        async move {
            let name = payload["username"].as_str().unwrap_or_default().to_owned();
            Ok(latchkey_server::FunctionIdentity::new(format!("id:{name}")).with_name(name))
        }
    }));
    let server = latchkey_testkit::TestServer::start_with(config).await;
    let app = app(&server);
    let user = app
        .log_in(Credentials::function(json!({
            "username": "numbers",
            "small": 42,
            "big": 9_007_199_254_740_993_i64,
            "real": 2.5,
            "nested": { "list": [1, -2, true, null, "s"] },
        })))
        .await
        .unwrap();
    assert_eq!(user.identities()[0].id, "id:numbers");
    assert_eq!(user.profile().name().as_deref(), Some("numbers"));
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0],
        json!({
            "username": "numbers",
            "small": 42,
            "big": 9_007_199_254_740_993_i64,
            "real": 2.5,
            "nested": { "list": [1, -2, true, null, "s"] },
        })
    );
    server.shutdown().await;
}
