//! Linking identities with `?link=true`.

use reqwest::Method;
use serde_json::json;

use crate::common::*;

async fn link(h: &Harness, provider: &str, access: Option<&str>, body: serde_json::Value) -> Reply {
    let url = h.app_url(APP, &format!("/auth/providers/{provider}/login?link=true"));
    h.send(Method::POST, &url, access, Some(&body.to_string()))
        .await
}

#[tokio::test]
async fn link_email_password_to_anonymous_user() {
    let h = start().await;
    let anon = h.anon().await;
    h.register("linked@example.com", "secret123")
        .await
        .assert_no_content();
    let v = link(
        &h,
        "local-userpass",
        Some(&anon.access),
        json!({"username": "linked@example.com", "password": "secret123",
               "options": {"device": {"sdkVersion": "2.0.1"}}}),
    )
    .await
    .assert_ok_json();
    assert_eq!(v["user_id"], anon.user_id.as_str());
    assert_eq!(v["device_id"], anon.device_id.as_str());
    // Same session: the old refresh token still works.
    assert_eq!(
        claims(v["access_token"].as_str().unwrap())["iss"],
        claims(&anon.access)["iss"]
    );
    let r = h.refresh(&anon.refresh).await.assert_ok_json();
    let access = r["access_token"].as_str().unwrap();

    let p = h.profile(access).await.assert_ok_json();
    let types: Vec<&str> = p["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["provider_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["anon-user", "local-userpass"]);
    assert_eq!(p["data"]["email"], "linked@example.com");

    // Logging in with the linked credentials returns the same user.
    let t = h.userpass_tokens("linked@example.com", "secret123").await;
    assert_eq!(t.user_id, anon.user_id);
    // Linking the same identity again to the same user is harmless.
    link(
        &h,
        "local-userpass",
        Some(&anon.access),
        json!({"username": "linked@example.com", "password": "secret123"}),
    )
    .await
    .assert_ok_json();
}

#[tokio::test]
async fn link_refusals() {
    let h = start().await;
    let a = h.anon().await;
    // Anonymous credentials cannot be linked.
    let r = link(&h, "anon-user", Some(&a.access), json!({})).await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.text);
    // An identity owned by another user.
    h.register("owned@example.com", "secret123")
        .await
        .assert_no_content();
    h.userpass("owned@example.com", "secret123")
        .await
        .assert_ok_json();
    link(
        &h,
        "local-userpass",
        Some(&a.access),
        json!({"username": "owned@example.com", "password": "secret123"}),
    )
    .await
    .assert_error(409, "AccountNameInUse");
    // No token, a refresh token, a wrong password.
    link(
        &h,
        "local-userpass",
        None,
        json!({"username": "owned@example.com", "password": "secret123"}),
    )
    .await
    .assert_error(401, "MissingAuthReq");
    link(
        &h,
        "local-userpass",
        Some(&a.refresh),
        json!({"username": "owned@example.com", "password": "secret123"}),
    )
    .await
    .assert_error(401, "InvalidSession");
    link(
        &h,
        "local-userpass",
        Some(&a.access),
        json!({"username": "owned@example.com", "password": "wrong-pass"}),
    )
    .await
    .assert_error(401, "InvalidPassword");
    // The anonymous user is unchanged.
    let p = h.profile(&a.access).await.assert_ok_json();
    assert_eq!(p["identities"].as_array().unwrap().len(), 1);
}
