//! Email/password registration and login.

use reqwest::Method;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn register_then_login_creates_user_at_first_login() {
    let h = start().await;
    let t = h.signed_up("someone@example.com", "Pa55w0rd!").await;
    let p = h.profile(&t.access).await.assert_ok_json();
    assert_eq!(p["data"]["email"], "someone@example.com");
    let ids = p["identities"].as_array().unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0]["provider_type"], "local-userpass");
    assert!(is_hex24(ids[0]["id"].as_str().unwrap()));
    // The same credentials log in the same user, in a new session.
    let again = h.userpass_tokens("someone@example.com", "Pa55w0rd!").await;
    assert_eq!(again.user_id, t.user_id);
    assert_ne!(claims(&again.access)["iss"], claims(&t.access)["iss"]);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_answer_the_same() {
    let h = start().await;
    h.register("user@example.com", "right-password")
        .await
        .assert_no_content();
    let wrong = h.userpass("user@example.com", "wrong-password").await;
    let msg = wrong.assert_error(401, "InvalidPassword");
    assert_eq!(msg, "invalid username/password");
    let unknown = h.userpass("nobody@example.com", "wrong-password").await;
    unknown.assert_error(401, "InvalidPassword");
    assert_eq!(wrong.text, unknown.text);
    // Emails are canonical (lowercased, as Firebase Auth and GoTrue; issue 10 item 3):
    // another case of the address is the same account, and its wrong password the same
    // answer.
    h.userpass("USER@example.com", "right-password")
        .await
        .assert_ok_json();
    let wrong_case = h.userpass("USER@example.com", "wrong-password").await;
    wrong_case.assert_error(401, "InvalidPassword");
    assert_eq!(wrong.text, wrong_case.text);
}

#[tokio::test]
async fn duplicate_registration_is_409() {
    let h = start().await;
    h.register("dup@example.com", "secret123")
        .await
        .assert_no_content();
    let msg = h
        .register("dup@example.com", "other-secret")
        .await
        .assert_error(409, "AccountNameInUse");
    assert_eq!(msg, "name already in use");
}

#[tokio::test]
async fn password_length_bounds() {
    let h = start().await;
    let msg = h
        .register("a@example.com", "12345")
        .await
        .assert_error(400, "BadRequest");
    assert_eq!(msg, "password must be between 6 and 128 characters");
    h.register("b@example.com", &"x".repeat(129))
        .await
        .assert_error(400, "BadRequest");
    h.register("c@example.com", "123456")
        .await
        .assert_no_content();
    h.register("d@example.com", &"x".repeat(128))
        .await
        .assert_no_content();
    h.userpass("c@example.com", "123456").await.assert_ok_json();
}

#[tokio::test]
async fn register_rejects_bad_bodies() {
    let h = start().await;
    let url = h.app_url(APP, "/auth/providers/local-userpass/register");
    for body in [
        r#"{"email":"x@example.com"}"#,
        r#"{"email":"x@example.com","password":123456}"#,
        r#"{"email":"not-an-email","password":"secret123"}"#,
        r#"["x"]"#,
        r#"{"email":"#,
    ] {
        let r = h.send(Method::POST, &url, None, Some(body)).await;
        let msg = r.assert_error(400, "BadRequest");
        assert!(!msg.contains("123456"), "never echo a password: {msg}");
    }
}

#[tokio::test]
async fn register_ignores_authorization_header() {
    let h = start().await;
    let url = h.app_url(APP, "/auth/providers/local-userpass/register");
    let body = json!({"email": "web@example.com", "password": "secret123"}).to_string();
    h.send(Method::POST, &url, Some("garbage.token.here"), Some(&body))
        .await
        .assert_no_content();
    // Registering creates no user: the id comes at the first login.
    let t = h.userpass_tokens("web@example.com", "secret123").await;
    assert!(is_hex24(&t.user_id));
}

#[tokio::test]
async fn pending_credentials_cannot_log_in() {
    let mut c = config();
    c.apps[0].providers.local_userpass.auto_confirm = false;
    let h = start_with(c).await;
    h.register("pending@example.com", "secret123")
        .await
        .assert_no_content();
    let msg = h
        .userpass("pending@example.com", "secret123")
        .await
        .assert_error(401, "AuthError");
    assert!(msg.contains("confirmation required"), "{msg}");
    // The state is only revealed to the right password.
    h.userpass("pending@example.com", "wrong-one")
        .await
        .assert_error(401, "InvalidPassword");
    // Registering again while pending is still a duplicate.
    h.register("pending@example.com", "secret123")
        .await
        .assert_error(409, "AccountNameInUse");
}

#[tokio::test]
async fn disabled_provider_refuses_register_and_login() {
    let mut c = config();
    c.apps[0].providers.local_userpass.enabled = false;
    let h = start_with(c).await;
    h.register("x@example.com", "secret123")
        .await
        .assert_error(404, "AuthProviderNotFound");
    h.userpass("x@example.com", "secret123")
        .await
        .assert_error(404, "AuthProviderNotFound");
}

#[tokio::test]
async fn missing_credential_fields_are_400() {
    let h = start().await;
    h.login("local-userpass", json!({"username": "x@example.com"}))
        .await
        .assert_error(400, "BadRequest");
    h.login(
        "local-userpass",
        json!({"username": 5, "password": "secret123"}),
    )
    .await
    .assert_error(400, "BadRequest");
}

#[tokio::test]
async fn concurrent_first_logins_make_one_user() {
    let h = start().await;
    h.register("race@example.com", "secret123")
        .await
        .assert_no_content();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let http = h.http.clone();
        let url = h.app_url(APP, "/auth/providers/local-userpass/login");
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .header("content-type", "application/json")
                .body(json!({"username": "race@example.com", "password": "secret123"}).to_string())
                .send()
                .await
                .unwrap();
            Reply::from(r).await
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(Tokens::from(&t.await.unwrap().assert_ok_json()).user_id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
}
