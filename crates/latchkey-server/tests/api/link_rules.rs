//! Linking rules beyond the basic flow (`link.rs`), and device id handling.

use latchkey_server::{AppConfig, Config, CustomFunction, FunctionIdentity};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

/// The test config plus an in-process custom function: `{"user": U}` is identity U.
fn config_with_function() -> Config {
    let mut c = config();
    let cf = &mut c.apps[0].providers.custom_function;
    cf.enabled = true;
    cf.function = Some(CustomFunction::new(|payload: Value| async move {
        match payload["user"].as_str() {
            Some(u) if !u.is_empty() => Ok(FunctionIdentity::new(u).with_name("Linked Name")),
            _ => Err("no user".to_owned()),
        }
    }));
    c
}

async fn link(h: &Harness, provider: &str, access: &str, body: Value) -> Reply {
    let url = h.app_url(APP, &format!("/auth/providers/{provider}/login?link=true"));
    h.send(Method::POST, &url, Some(access), Some(&body.to_string()))
        .await
}

fn identity_types(profile: &Value) -> Vec<String> {
    profile["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["provider_type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn linked_anonymous_user_keeps_id_session_and_reports_both_identities() {
    let h = start_with(config_with_function()).await;
    let anon = h.anon().await;
    let v = link(
        &h,
        "custom-function",
        &anon.access,
        json!({"user": "ext-link"}),
    )
    .await
    .assert_ok_json();
    assert_eq!(v["user_id"], anon.user_id.as_str());
    assert_eq!(v["device_id"], anon.device_id.as_str());

    // The old refresh token stays valid, and the profile shows both identities.
    let r = h.refresh(&anon.refresh).await.assert_ok_json();
    let p = h
        .profile(r["access_token"].as_str().unwrap())
        .await
        .assert_ok_json();
    assert_eq!(p["user_id"], anon.user_id.as_str());
    assert_eq!(identity_types(&p), ["anon-user", "custom-function"]);
    assert_eq!(p["data"]["name"], "Linked Name");
    assert_eq!(p["type"], "normal");
    // The link response's access token works as well.
    h.profile(v["access_token"].as_str().unwrap())
        .await
        .assert_ok_json();

    // Logging in with the linked credential returns the same user.
    let t = Tokens::from(
        &h.login("custom-function", json!({"user": "ext-link"}))
            .await
            .assert_ok_json(),
    );
    assert_eq!(t.user_id, anon.user_id);
    // A new anonymous login is a different user.
    assert_ne!(h.anon().await.user_id, anon.user_id);
    // The linked (formerly anonymous) user can now own API keys.
    let r = h
        .send(
            Method::POST,
            &h.url(&format!("{PREFIX}/auth/api_keys")),
            Some(&anon.refresh),
            Some(r#"{"name":"after-link"}"#),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
}

#[tokio::test]
async fn anonymous_credentials_cannot_be_linked() {
    let h = start().await;
    let u = h.signed_up("named@example.com", "secret123").await;
    let m = link(&h, "anon-user", &u.access, json!({}))
        .await
        .assert_error(400, "BadRequest");
    assert!(m.contains("anonymous"), "{m}");
    let p = h.profile(&u.access).await.assert_ok_json();
    assert_eq!(identity_types(&p), ["local-userpass"]);
}

#[tokio::test]
async fn identity_of_another_user_cannot_be_linked() {
    let h = start_with(config_with_function()).await;
    let owner = Tokens::from(
        &h.login("custom-function", json!({"user": "taken"}))
            .await
            .assert_ok_json(),
    );
    let anon = h.anon().await;
    let m = link(
        &h,
        "custom-function",
        &anon.access,
        json!({"user": "taken"}),
    )
    .await
    .assert_error(409, "AccountNameInUse");
    assert!(m.contains("already linked to another user"), "{m}");
    // Nothing moved.
    let p = h.profile(&anon.access).await.assert_ok_json();
    assert_eq!(identity_types(&p), ["anon-user"]);
    let t = Tokens::from(
        &h.login("custom-function", json!({"user": "taken"}))
            .await
            .assert_ok_json(),
    );
    assert_eq!(t.user_id, owner.user_id);
}

#[tokio::test]
async fn api_keys_cannot_be_linked() {
    let h = start().await;
    let owner = h.signed_up("keyowner@example.com", "secret123").await;
    let r = h
        .send(
            Method::POST,
            &h.url(&format!("{PREFIX}/auth/api_keys")),
            Some(&owner.refresh),
            Some(r#"{"name":"k"}"#),
        )
        .await;
    let key = r.json()["key"].as_str().unwrap().to_owned();
    let anon = h.anon().await;
    let m = link(&h, "api-key", &anon.access, json!({"key": key}))
        .await
        .assert_error(400, "BadRequest");
    assert!(m.contains("API key"), "{m}");
    // Not even to the owner itself.
    link(&h, "api-key", &owner.access, json!({"key": key}))
        .await
        .assert_error(400, "BadRequest");
    let p = h.profile(&anon.access).await.assert_ok_json();
    assert_eq!(identity_types(&p), ["anon-user"]);
    // The key still logs in as its owner.
    let t = Tokens::from(
        &h.login("api-key", json!({"key": key}))
            .await
            .assert_ok_json(),
    );
    assert_eq!(t.user_id, owner.user_id);
}

#[tokio::test]
async fn rejected_or_disabled_credentials_do_not_link() {
    let h = start_with(config_with_function()).await;
    let anon = h.anon().await;
    link(&h, "custom-function", &anon.access, json!({}))
        .await
        .assert_error(401, "AuthError");
    // An unknown provider.
    link(
        &h,
        "no-such-provider",
        &anon.access,
        json!({"token": "x.y.z"}),
    )
    .await
    .assert_error(404, "AuthProviderNotFound");
    let p = h.profile(&anon.access).await.assert_ok_json();
    assert_eq!(identity_types(&p), ["anon-user"]);
    // The session is still fine.
    h.refresh(&anon.refresh).await.assert_ok_json();
}

#[tokio::test]
async fn link_with_a_token_of_another_app_is_refused() {
    let mut c = config_with_function();
    let mut other = AppConfig::new("other-app", SECRET).with_all_providers();
    other.providers.custom_function = c.apps[0].providers.custom_function.clone();
    c.apps.push(other);
    let h = start_with(c).await;
    let anon_other = Tokens::from(
        &h.login_in("other-app", "anon-user", json!({}))
            .await
            .assert_ok_json(),
    );
    link(
        &h,
        "custom-function",
        &anon_other.access,
        json!({"user": "x"}),
    )
    .await
    .assert_error(403, "UserAppDomainMismatch");
    let p = h.profile(&anon_other.access).await.assert_ok_json();
    assert_eq!(identity_types(&p), ["anon-user"]);
}

// Device ids (protocol.md §3.3).

#[tokio::test]
async fn device_id_is_reused_across_providers_and_on_refresh() {
    let h = start_with(config_with_function()).await;
    let first = h.anon().await;
    let v = h
        .login(
            "custom-function",
            json!({"user": "dev", "options": {"device": {"deviceId": {"$oid": first.device_id}}}}),
        )
        .await
        .assert_ok_json();
    assert_eq!(v["device_id"], first.device_id.as_str());
    let refresh = v["refresh_token"].as_str().unwrap();
    assert_eq!(claims(refresh)["baas_device_id"], first.device_id.as_str());
    let r = h.refresh(refresh).await.assert_ok_json();
    assert_eq!(
        claims(r["access_token"].as_str().unwrap())["baas_device_id"],
        first.device_id.as_str()
    );
}

#[tokio::test]
async fn device_id_forms() {
    let h = start().await;
    let first = h.anon().await;
    // Uppercase hex names the same ObjectId; the answer is canonical lowercase.
    let v = h
        .login(
            "anon-user",
            json!({"options": {"device": {"deviceId": first.device_id.to_uppercase()}}}),
        )
        .await
        .assert_ok_json();
    assert_eq!(v["device_id"], first.device_id.as_str());
    // Malformed ids are ignored: a fresh id, never an error.
    for bad in [
        json!("xyz"),
        json!(42),
        json!({"$oid": "nope"}),
        json!(null),
        json!(""),
    ] {
        let v = h
            .login(
                "anon-user",
                json!({"options": {"device": {"deviceId": bad}}}),
            )
            .await
            .assert_ok_json();
        let id = v["device_id"].as_str().unwrap();
        assert!(
            is_hex24(id) && id != "000000000000000000000000",
            "{bad}: {id}"
        );
        assert_ne!(id, first.device_id);
    }
    // No options at all, or no device block.
    for body in [json!({}), json!({"options": {}})] {
        let v = h.login("anon-user", body).await.assert_ok_json();
        assert!(is_hex24(v["device_id"].as_str().unwrap()));
    }
}

#[tokio::test]
async fn device_ids_are_per_app() {
    let mut c = config();
    c.apps
        .push(AppConfig::new("second-app", SECRET).with_all_providers());
    let h = start_with(c).await;
    let first = h.anon().await;
    let v = h
        .login_in(
            "second-app",
            "anon-user",
            json!({"options": {"device": {"deviceId": {"$oid": first.device_id}}}}),
        )
        .await
        .assert_ok_json();
    assert_ne!(v["device_id"], first.device_id.as_str());
    assert!(is_hex24(v["device_id"].as_str().unwrap()));
}
