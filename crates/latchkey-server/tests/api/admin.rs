//! The admin API under /admin/v1.

use reqwest::Method;
use serde_json::json;

use crate::common::*;
use crate::userpass_flows::{ADMIN, email_config};

fn admin_url(h: &Harness, rest: &str) -> String {
    h.url(&format!("/admin/v1/apps/{APP}{rest}"))
}

#[tokio::test]
async fn auth_is_required_and_constant() {
    let h = start_with(email_config()).await;
    let url = admin_url(&h, "/users");
    h.send(Method::GET, &url, None, None)
        .await
        .assert_error(401, "MissingAuthReq");
    h.send(Method::GET, &url, Some("wrong-token-wrong-token"), None)
        .await
        .assert_error(401, "InvalidSession");
    let users = h
        .send(Method::GET, &url, Some(ADMIN), None)
        .await
        .assert_ok_json();
    assert_eq!(users, json!([]));
    // Unknown app.
    h.send(
        Method::GET,
        &h.url("/admin/v1/apps/nope/users"),
        Some(ADMIN),
        None,
    )
    .await
    .assert_error(404, "InvalidParameter");
    // No admin_token configured: disabled.
    let mut c = email_config();
    c.admin_token = None;
    let h2 = start_with(c).await;
    let msg = h2
        .send(Method::GET, &admin_url(&h2, "/users"), Some(ADMIN), None)
        .await
        .assert_error(404, "NotFound");
    assert_eq!(msg, "admin API disabled");
}

#[tokio::test]
async fn user_routes() {
    let h = start_with(email_config()).await;
    let t = h.anon().await;
    let users = h
        .send(Method::GET, &admin_url(&h, "/users"), Some(ADMIN), None)
        .await
        .assert_ok_json();
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(users[0]["id"], t.user_id.as_str());
    assert_eq!(users[0]["identities"][0]["provider_type"], "anon-user");
    assert_eq!(users[0]["disabled"], false);
    let user_url = admin_url(&h, &format!("/users/{}", t.user_id));
    let u = h
        .send(Method::GET, &user_url, Some(ADMIN), None)
        .await
        .assert_ok_json();
    assert_eq!(u["custom_data"], serde_json::Value::Null);
    h.send(
        Method::GET,
        &admin_url(&h, "/users/000000000000000000000000"),
        Some(ADMIN),
        None,
    )
    .await
    .assert_error(404, "UserNotFound");

    // Custom data: objects only; appears in the access token after refresh.
    let cd = format!("{user_url}/custom_data");
    h.send(Method::PUT, &cd, Some(ADMIN), Some("[1]"))
        .await
        .assert_error(400, "BadRequest");
    h.send(Method::PUT, &cd, Some(ADMIN), Some(r#"{"plan":"pro"}"#))
        .await
        .assert_ok_json();
    let access = h.refresh(&t.refresh).await.assert_ok_json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(claims(&access)["user_data"], json!({"plan": "pro"}));

    // Revoke sessions (empty body without Content-Type).
    h.send(
        Method::DELETE,
        &format!("{user_url}/sessions"),
        Some(ADMIN),
        None,
    )
    .await
    .assert_ok_json();
    h.refresh(&t.refresh)
        .await
        .assert_error(401, "InvalidSession");

    // Delete.
    h.send(Method::DELETE, &user_url, Some(ADMIN), None)
        .await
        .assert_ok_json();
    h.send(Method::GET, &user_url, Some(ADMIN), None)
        .await
        .assert_error(404, "UserNotFound");
}

#[tokio::test]
async fn disable_and_enable() {
    let mut c = config();
    c.admin_token = Some(ADMIN.into());
    let h = start_with(c).await;
    let t = h.signed_up("d@example.com", "secret123").await;
    let user_url = admin_url(&h, &format!("/users/{}", t.user_id));
    // With a JSON content type and an empty body.
    let v = h
        .send(
            Method::PUT,
            &format!("{user_url}/disable"),
            Some(ADMIN),
            Some(""),
        )
        .await
        .assert_ok_json();
    assert_eq!(v["disabled"], true);
    h.refresh(&t.refresh)
        .await
        .assert_error(401, "InvalidSession");
    h.userpass("d@example.com", "secret123")
        .await
        .assert_error(403, "UserDisabled");
    h.send(
        Method::PUT,
        &format!("{user_url}/enable"),
        Some(ADMIN),
        None,
    )
    .await
    .assert_ok_json();
    h.userpass("d@example.com", "secret123")
        .await
        .assert_ok_json();
}

#[tokio::test]
async fn server_api_key_and_outbox() {
    let mut c = email_config();
    c.apps[0].providers.api_key.enabled = true;
    let h = start_with(c).await;
    let v = h
        .send(
            Method::POST,
            &admin_url(&h, "/api_keys"),
            Some(ADMIN),
            Some(r#"{"name":"backend"}"#),
        )
        .await
        .assert_ok_json();
    assert_eq!(v["name"], "backend");
    assert!(v["_id"].is_string() && v["key"].is_string());
    assert_eq!(v["disabled"], false);
    let login = h.login("api-key", json!({"key": v["key"]})).await;
    login.assert_ok_json();
    let outbox = h
        .send(Method::GET, &admin_url(&h, "/outbox"), Some(ADMIN), None)
        .await
        .assert_ok_json();
    assert_eq!(outbox, json!([]));
}

#[tokio::test]
async fn server_keys_can_be_listed_disabled_and_revoked() {
    let h = start_with(email_config()).await;
    let keys_url = admin_url(&h, "/api_keys");
    let create = |name: &'static str| {
        let h = &h;
        let url = keys_url.clone();
        async move {
            h.send(
                Method::POST,
                &url,
                Some(ADMIN),
                Some(&json!({ "name": name }).to_string()),
            )
            .await
            .assert_ok_json()
        }
    };
    let a = create("backend").await;
    let b = create("cron").await;
    let (a_id, a_key) = (a["_id"].as_str().unwrap(), a["key"].as_str().unwrap());
    let login_a = Tokens::from(
        &h.login("api-key", json!({ "key": a_key }))
            .await
            .assert_ok_json(),
    );
    let login_b = Tokens::from(
        &h.login("api-key", json!({ "key": b["key"].as_str().unwrap() }))
            .await
            .assert_ok_json(),
    );

    // Listed oldest first, without secrets.
    let listed = h
        .send(Method::GET, &keys_url, Some(ADMIN), None)
        .await
        .assert_ok_json();
    assert_eq!(
        listed,
        json!([
            {"_id": a_id, "name": "backend", "disabled": false},
            {"_id": b["_id"], "name": "cron", "disabled": false},
        ])
    );
    h.send(Method::GET, &keys_url, None, None)
        .await
        .assert_error(401, "MissingAuthReq");

    // Disable: the key cannot log in and its sessions end; enable: logins work again.
    let key_url = format!("{keys_url}/{a_id}");
    let v = h
        .send(
            Method::PUT,
            &format!("{key_url}/disable"),
            Some(ADMIN),
            None,
        )
        .await
        .assert_ok_json();
    assert_eq!(v["disabled"], true);
    h.refresh(&login_a.refresh)
        .await
        .assert_error(401, "InvalidSession");
    h.login("api-key", json!({ "key": a_key }))
        .await
        .assert_error(401, "AuthError");
    h.refresh(&login_b.refresh).await.assert_ok_json();
    let v = h
        .send(Method::PUT, &format!("{key_url}/enable"), Some(ADMIN), None)
        .await
        .assert_ok_json();
    assert_eq!(v["disabled"], false);
    let again = Tokens::from(
        &h.login("api-key", json!({ "key": a_key }))
            .await
            .assert_ok_json(),
    );

    // Delete: gone with its user and sessions.
    let v = h
        .send(Method::DELETE, &key_url, Some(ADMIN), None)
        .await
        .assert_ok_json();
    assert_eq!(v, json!({"deleted": true}));
    h.refresh(&again.refresh)
        .await
        .assert_error(401, "InvalidSession");
    h.login("api-key", json!({ "key": a_key }))
        .await
        .assert_error(401, "AuthError");
    for (method, url) in [
        (Method::DELETE, key_url.clone()),
        (Method::PUT, format!("{key_url}/disable")),
        (Method::DELETE, format!("{keys_url}/not-an-id")),
    ] {
        h.send(method, &url, Some(ADMIN), None)
            .await
            .assert_error(404, "APIKeyNotFound");
    }
    let listed = h
        .send(Method::GET, &keys_url, Some(ADMIN), None)
        .await
        .assert_ok_json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    h.refresh(&login_b.refresh).await.assert_ok_json();
}

#[tokio::test]
async fn changes_are_audited_with_who_what_and_outcome_and_reads_are_not() {
    let h = start_with(email_config()).await;
    let user = h.anon().await;
    let url = |rest: &str| admin_url(&h, rest);
    h.send(Method::GET, &url("/users"), Some(ADMIN), None)
        .await
        .assert_ok_json();
    h.send(
        Method::PUT,
        &url(&format!("/users/{}/disable", user.user_id)),
        Some(ADMIN),
        None,
    )
    .await
    .assert_ok_json();
    h.send(
        Method::PUT,
        &url("/users/000000000000000000000000/enable"),
        Some(ADMIN),
        None,
    )
    .await
    .assert_error(404, "UserNotFound");
    let audit = h
        .send(Method::GET, &url("/audit"), Some(ADMIN), None)
        .await
        .assert_ok_json();
    let entries = audit.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{audit}");
    assert_eq!(entries[0]["action"], "enable_user");
    assert_ne!(entries[0]["outcome"], "ok");
    assert_eq!(entries[1]["action"], "disable_user");
    assert_eq!(entries[1]["target"], user.user_id.as_str());
    assert_eq!(entries[1]["outcome"], "ok");
    assert_eq!(entries[1]["actor"], "admin-api 127.0.0.1");
    let seq = entries[0]["seq"].as_i64().unwrap();
    let older = h
        .send(
            Method::GET,
            &url(&format!("/audit?before={seq}&limit=5")),
            Some(ADMIN),
            None,
        )
        .await
        .assert_ok_json();
    assert_eq!(older.as_array().unwrap().len(), 1);
    h.send(Method::GET, &url("/audit?limit=0"), Some(ADMIN), None)
        .await
        .assert_error(400, "BadRequest");
    h.send(Method::GET, &url("/audit?before=x"), Some(ADMIN), None)
        .await
        .assert_error(400, "BadRequest");
    h.send(Method::GET, &url("/audit"), None, None)
        .await
        .assert_error(401, "MissingAuthReq");
}

#[tokio::test]
async fn counts_and_user_sessions() {
    let h = start_with(email_config()).await;
    let a = h.anon().await;
    let url = |rest: &str| admin_url(&h, rest);
    let counts = h
        .send(Method::GET, &url("/counts"), Some(ADMIN), None)
        .await
        .assert_ok_json();
    assert_eq!(counts["users"], 1);
    assert_eq!(counts["active_sessions"], 1);
    assert_eq!(counts["logins_last_hour"], json!({"anon-user": 1}));
    let sessions = h
        .send(
            Method::GET,
            &url(&format!("/users/{}/sessions", a.user_id)),
            Some(ADMIN),
            None,
        )
        .await
        .assert_ok_json();
    assert_eq!(sessions.as_array().unwrap().len(), 1);
    assert_eq!(sessions[0]["device_id"], a.device_id.as_str());
    assert_eq!(sessions[0]["provider_type"], "anon-user");
    h.send(
        Method::GET,
        &url("/users/000000000000000000000000/sessions"),
        Some(ADMIN),
        None,
    )
    .await
    .assert_error(404, "UserNotFound");
}
