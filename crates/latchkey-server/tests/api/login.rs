//! Location, anonymous login, profile, login body handling, devices.

use reqwest::Method;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn location_has_hostname_and_ws_hostname() {
    let h = start().await;
    let r = h
        .send(Method::GET, &h.app_url(APP, "/location"), None, None)
        .await;
    let v = r.assert_ok_json();
    let port = h.server.local_addr().port();
    assert_eq!(v["hostname"], format!("http://127.0.0.1:{port}"));
    assert_eq!(v["hostname"], h.server.url());
    assert_eq!(v["ws_hostname"], format!("ws://127.0.0.1:{port}"));
    assert_eq!(v["deployment_model"], "LOCAL");
    assert_eq!(v["location"], "local");
    h.server.shutdown().await;
}

#[tokio::test]
async fn location_uses_public_url() {
    let mut c = config();
    c.public_url = Some("https://auth.example.org/base/".into());
    let h = start_with(c).await;
    assert_eq!(h.server.url(), "https://auth.example.org/base");
    let url = format!(
        "http://{}{PREFIX}/app/{APP}/location",
        h.server.local_addr()
    );
    let v = h.send(Method::GET, &url, None, None).await.assert_ok_json();
    assert_eq!(v["hostname"], "https://auth.example.org/base");
    assert_eq!(v["ws_hostname"], "wss://auth.example.org/base");
}

#[tokio::test]
async fn unknown_app_is_404_json() {
    let h = start().await;
    let r = h
        .send(Method::GET, &h.app_url("nope", "/location"), None, None)
        .await;
    let msg = r.assert_error(404, "InvalidParameter");
    assert!(msg.contains("nope"), "{msg}");
    let r = h.login_in("nope", "anon-user", json!({})).await;
    r.assert_error(404, "InvalidParameter");
}

#[tokio::test]
async fn anonymous_login_returns_well_formed_tokens() {
    let h = start().await;
    let v = h.login("anon-user", json!({})).await.assert_ok_json();
    let t = Tokens::from(&v);
    assert!(is_hex24(&t.user_id), "{}", t.user_id);
    assert!(is_hex24(&t.device_id) && t.device_id != "000000000000000000000000");

    assert_eq!(segment(&t.access, 0)["alg"], "HS256");
    let a = claims(&t.access);
    assert!(a["exp"].is_i64() && a["iat"].is_i64(), "{a}");
    assert_eq!(
        a["exp"].as_i64().unwrap() - a["iat"].as_i64().unwrap(),
        1800
    );
    assert_eq!(a["typ"], "access");
    assert_eq!(a["sub"], t.user_id.as_str());
    assert_eq!(a["baas_device_id"], t.device_id.as_str());
    assert_eq!(a["baas_domain_id"], APP);
    assert!(
        a.get("user_data").is_none(),
        "no custom data, no claim: {a}"
    );
    let session = a["iss"].as_str().unwrap().to_owned();
    assert!(session.len() >= 32);

    let r = claims(&t.refresh);
    assert!(r["exp"].is_i64() && r["iat"].is_i64(), "{r}");
    assert_eq!(
        r["exp"].as_i64().unwrap() - r["iat"].as_i64().unwrap(),
        5_184_000
    );
    assert_eq!(r["typ"], "refresh");
    assert_eq!(r["baas_id"], session.as_str());
    assert_eq!(r["sub"], t.user_id.as_str());

    // Every anonymous login is a new user.
    let again = h.anon().await;
    assert_ne!(again.user_id, t.user_id);
}

#[tokio::test]
async fn anonymous_profile_has_one_anon_identity() {
    let h = start().await;
    let t = h.anon().await;
    let p = h.profile(&t.access).await.assert_ok_json();
    assert_eq!(p["user_id"], t.user_id.as_str());
    assert_eq!(p["domain_id"], APP);
    assert_eq!(p["type"], "normal");
    assert_eq!(p["data"], json!({}));
    let ids = p["identities"].as_array().unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0]["provider_type"], "anon-user");
    assert!(ids[0]["id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(ids[0]["provider_id"].as_str().is_some_and(is_hex24));
}

#[tokio::test]
async fn core_style_body_and_charset_content_type_are_accepted() {
    let h = start().await;
    let body = json!({
        "provider": "anon-user",
        "options": {"device": {
            "appId": APP, "platform": "Linux", "platformVersion": "6.1", "sdk": "Rust",
            "sdkVersion": "0.1.0", "cpuArch": "x86_64", "deviceName": "", "deviceVersion": "",
            "frameworkName": "", "frameworkVersion": "", "coreVersion": "14.14.0", "bundleId": ""
        }}
    });
    let resp = h
        .http
        .post(h.app_url(APP, "/auth/providers/anon-user/login"))
        .header("content-type", "application/json;charset=utf-8")
        .header("accept", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    Reply::from(resp).await.assert_ok_json();
    // An empty body with a JSON content type is an empty object.
    let r = h
        .send(
            Method::POST,
            &h.app_url(APP, "/auth/providers/anon-user/login"),
            None,
            Some(""),
        )
        .await;
    r.assert_ok_json();
}

#[tokio::test]
async fn known_device_id_is_reused_in_any_encoding() {
    let h = start().await;
    let first = h.anon().await;
    // realm-web sends the stored id as canonical EJSON.
    let v = h
        .login(
            "anon-user",
            json!({"options": {"device": {"sdkVersion": "2.0.1", "deviceId": {"$oid": first.device_id}}}}),
        )
        .await
        .assert_ok_json();
    assert_eq!(v["device_id"], first.device_id.as_str());
    assert_eq!(
        claims(v["access_token"].as_str().unwrap())["baas_device_id"],
        first.device_id.as_str()
    );
    // Plain hex works as well.
    let v = h
        .login(
            "anon-user",
            json!({"options": {"device": {"deviceId": first.device_id}}}),
        )
        .await
        .assert_ok_json();
    assert_eq!(v["device_id"], first.device_id.as_str());
    // An id this app never issued is replaced by a new one.
    let v = h
        .login(
            "anon-user",
            json!({"options": {"device": {"deviceId": {"$oid": "65f0c0ffee0000000000abcd"}}}}),
        )
        .await
        .assert_ok_json();
    assert_ne!(v["device_id"], "65f0c0ffee0000000000abcd");
    assert!(is_hex24(v["device_id"].as_str().unwrap()));
    // The all-zero id means "none".
    let v = h
        .login(
            "anon-user",
            json!({"options": {"device": {"deviceId": {"$oid": "000000000000000000000000"}}}}),
        )
        .await
        .assert_ok_json();
    assert_ne!(v["device_id"], "000000000000000000000000");
}

#[tokio::test]
async fn unknown_or_disabled_provider_is_not_401() {
    let mut c = config();
    c.apps[0].providers.anon_user.enabled = false;
    let h = start_with(c).await;
    h.login("anon-user", json!({}))
        .await
        .assert_error(404, "AuthProviderNotFound");
    h.login("no-such-provider", json!({}))
        .await
        .assert_error(404, "AuthProviderNotFound");
    // Known to the protocol but not configured for this app.
    h.login("oauth2-facebook", json!({"accessToken": "x"}))
        .await
        .assert_error(404, "AuthProviderNotFound");
}

#[tokio::test]
async fn several_apps_on_one_server() {
    let mut c = config();
    c.apps.push(
        latchkey_server::AppConfig::new("second-app", "another-secret-0123456789abcdefghij")
            .with_all_providers(),
    );
    let h = start_with(c).await;
    let a = h.anon().await;
    let b = Tokens::from(
        &h.login_in("second-app", "anon-user", json!({}))
            .await
            .assert_ok_json(),
    );
    // Non-app-scoped routes find the app from the token.
    assert_eq!(
        h.profile(&a.access).await.assert_ok_json()["domain_id"],
        APP
    );
    assert_eq!(
        h.profile(&b.access).await.assert_ok_json()["domain_id"],
        "second-app"
    );
    h.refresh(&b.refresh).await.assert_ok_json();
    // The same email registers separately per app.
    h.register("same@example.com", "secret123")
        .await
        .assert_no_content();
    h.register_in("second-app", "same@example.com", "secret123")
        .await
        .assert_no_content();
    // A token of one app cannot link in another.
    let url = h.app_url(
        "second-app",
        "/auth/providers/local-userpass/login?link=true",
    );
    let body = json!({"username": "same@example.com", "password": "secret123"}).to_string();
    h.send(Method::POST, &url, Some(&a.access), Some(&body))
        .await
        .assert_error(403, "UserAppDomainMismatch");
}

#[tokio::test]
async fn canonical_extended_json_bodies_are_accepted() {
    let h = start().await;
    h.register("ejson@example.com", "secret123")
        .await
        .assert_no_content();
    // Numbers and ids wrapped the way bson's EJSON.serialize(relaxed: false) sends them.
    let v = h
        .login(
            "local-userpass",
            json!({
                "username": "ejson@example.com",
                "password": "secret123",
                "options": {"device": {
                    "sdkVersion": "2.0.1",
                    "screen": {"$numberInt": "1080"},
                    "ratio": {"$numberDouble": "1.5"},
                    "deviceId": {"$oid": "65f0c0ffee0000000000abcd"}
                }}
            }),
        )
        .await
        .assert_ok_json();
    assert!(is_hex24(v["device_id"].as_str().unwrap()));
}
