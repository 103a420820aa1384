//! Refresh, logout, delete, expiry, disabling and custom data.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn refresh_keeps_the_session() {
    let h = start().await;
    let t = h.anon().await;
    // core sends an empty body with a JSON content type.
    let r = h
        .send(
            Method::POST,
            &h.url(&format!("{PREFIX}/auth/session")),
            Some(&t.refresh),
            Some(""),
        )
        .await;
    let v = r.assert_ok_json();
    let access = v["access_token"].as_str().unwrap();
    assert!(v.get("refresh_token").is_none());
    assert_eq!(claims(access)["iss"], claims(&t.access)["iss"]);
    assert_eq!(claims(access)["iss"], claims(&t.refresh)["baas_id"]);
    assert_eq!(claims(access)["sub"], t.user_id.as_str());
    h.profile(access).await.assert_ok_json();
}

#[tokio::test]
async fn logout_revokes_the_session_immediately() {
    let h = start().await;
    let t = h.anon().await;
    h.logout(&t.refresh).await.assert_no_content();
    h.refresh(&t.refresh).await.assert_refresh_token_not_found();
    // Access tokens of the session die with it.
    h.profile(&t.access)
        .await
        .assert_error(401, "InvalidSession");
    // Logging out again is the same 401 (realm-web ignores it by its text).
    h.logout(&t.refresh).await.assert_refresh_token_not_found();
}

#[tokio::test]
async fn other_sessions_survive_a_logout() {
    let h = start().await;
    let a = h.signed_up("two@example.com", "secret123").await;
    let b = h.userpass_tokens("two@example.com", "secret123").await;
    h.logout(&a.refresh).await.assert_no_content();
    h.refresh(&b.refresh).await.assert_ok_json();
    h.profile(&b.access).await.assert_ok_json();
}

#[tokio::test]
async fn token_types_are_not_interchangeable() {
    let h = start().await;
    let t = h.anon().await;
    h.refresh(&t.access).await.assert_refresh_token_not_found();
    h.logout(&t.access)
        .await
        .assert_error(401, "InvalidSession");
    h.profile(&t.refresh)
        .await
        .assert_error(401, "InvalidSession");
    // Nothing was revoked by the failed calls.
    h.refresh(&t.refresh).await.assert_ok_json();
}

#[tokio::test]
async fn missing_authorization_is_missing_auth_req() {
    let h = start().await;
    for (method, path) in [
        (Method::GET, "/auth/profile"),
        (Method::POST, "/auth/session"),
        (Method::DELETE, "/auth/session"),
        (Method::DELETE, "/auth/delete"),
    ] {
        let r = h
            .send(method, &h.url(&format!("{PREFIX}{path}")), None, None)
            .await;
        assert_eq!(
            r.assert_error(401, "MissingAuthReq"),
            "must authenticate first"
        );
    }
}

#[tokio::test]
async fn expired_tokens_are_rejected_by_the_server_clock() {
    let h = start().await;
    let t = h.anon().await;
    h.server.clock().advance(Duration::from_secs(1799));
    h.profile(&t.access).await.assert_ok_json();
    h.server.clock().advance(Duration::from_secs(2));
    let msg = h
        .profile(&t.access)
        .await
        .assert_error(401, "InvalidSession");
    assert!(msg.contains("expired"), "{msg}");
    // The refresh token still works and gives a fresh access token.
    let v = h.refresh(&t.refresh).await.assert_ok_json();
    let fresh = v["access_token"].as_str().unwrap();
    h.profile(fresh).await.assert_ok_json();
    // Past the refresh token's lifetime the session is over.
    h.server.clock().advance(Duration::from_secs(5_184_000));
    h.refresh(&t.refresh).await.assert_refresh_token_not_found();
}

#[tokio::test]
async fn delete_user_removes_everything() {
    let h = start().await;
    let t = h.signed_up("gone@example.com", "secret123").await;
    let r = h
        .send(
            Method::DELETE,
            &h.url(&format!("{PREFIX}/auth/delete")),
            Some(&t.access),
            None,
        )
        .await;
    r.assert_no_content();
    // realm-web's removeUser() then logs out and must see this text.
    h.logout(&t.refresh).await.assert_refresh_token_not_found();
    h.profile(&t.access)
        .await
        .assert_error(401, "InvalidSession");
    // The credentials went with the user (App Services: InvalidPassword after delete).
    h.userpass("gone@example.com", "secret123")
        .await
        .assert_error(401, "InvalidPassword");
    let again = h.signed_up("gone@example.com", "secret123").await;
    assert_ne!(again.user_id, t.user_id);
}

#[tokio::test]
async fn disabled_user_loses_sessions_and_cannot_log_in() {
    let h = start().await;
    let t = h.signed_up("off@example.com", "secret123").await;
    assert!(
        h.server
            .store()
            .set_user_disabled(APP, &t.user_id, true)
            .await
            .unwrap()
    );
    h.refresh(&t.refresh)
        .await
        .assert_error(401, "InvalidSession");
    h.profile(&t.access)
        .await
        .assert_error(401, "InvalidSession");
    h.userpass("off@example.com", "secret123")
        .await
        .assert_error(403, "UserDisabled");
    // A wrong password still answers InvalidPassword (no state leak).
    h.userpass("off@example.com", "not-the-one")
        .await
        .assert_error(401, "InvalidPassword");
    h.server
        .store()
        .set_user_disabled(APP, &t.user_id, false)
        .await
        .unwrap();
    h.refresh(&t.refresh).await.assert_ok_json();
    h.userpass("off@example.com", "secret123")
        .await
        .assert_ok_json();
}

#[tokio::test]
async fn custom_data_is_in_the_access_token() {
    let h = start().await;
    let t = h.anon().await;
    let data = json!({"plan": "pro", "n": 3});
    h.server
        .store()
        .set_custom_data(APP, &t.user_id, data.as_object())
        .await
        .unwrap();
    let v = h.refresh(&t.refresh).await.assert_ok_json();
    assert_eq!(
        claims(v["access_token"].as_str().unwrap())["user_data"],
        data
    );
}
