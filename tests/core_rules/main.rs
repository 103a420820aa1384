//! The realm-core rules that realm-web does not check but the Swift, Kotlin, .NET
//! and Dart SDKs (all built on realm-core) need (protocol.md §1.5, §7.1, §10),
//! checked with raw HTTP requests shaped exactly as realm-core sends them.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, StatusCode};
use latchkey_protocol::routes::Routes;
use latchkey_server::{CustomFunction, FunctionIdentity};
use latchkey_testkit::TestServer;
use latchkey_transport::{HttpTransport, RequestOptions};
use latchkey_transport_reqwest::ReqwestTransport;
use serde_json::{Value, json};

/// realm-core's request content type, sent on every request but location.
const CORE_CONTENT_TYPE: &str = "application/json;charset=utf-8";

struct Reply {
    status: StatusCode,
    content_type: Option<String>,
    body: Value,
}

/// A request the way realm-core sends it: JSON content type and `Accept` always,
/// an empty string body when there is nothing to send.
async fn core(method: Method, url: &str, bearer: Option<&str>, body: Option<Value>) -> Reply {
    let mut req = http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", CORE_CONTENT_TYPE)
        .header("accept", "application/json");
    if let Some(t) = bearer {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let resp = ReqwestTransport::new()
        .send(req.body(body).unwrap(), &RequestOptions::new())
        .await
        .unwrap();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = if resp.body().is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(resp.body()).unwrap_or(Value::Null)
    };
    let reply = Reply {
        status: resp.status(),
        content_type,
        body,
    };
    // Rule: a JSON response is labelled exactly `application/json`, success or error.
    if !resp.body().is_empty() {
        assert_eq!(
            reply.content_type.as_deref(),
            Some("application/json"),
            "{url}"
        );
    }
    // Rule: a success body never carries `error` or `error_code` (core would read an error).
    if reply.status.is_success() && reply.body.is_object() {
        assert!(reply.body.get("error").is_none() && reply.body.get("error_code").is_none());
    }
    reply
}

/// realm-core's `options.device`: twelve string fields, no `deviceId`.
fn device(app_id: &str) -> Value {
    json!({"device": {
        "appId": app_id, "platform": "Linux", "platformVersion": "6.1", "sdk": "Realm Swift",
        "sdkVersion": "10.54.0", "cpuArch": "x86_64", "deviceName": "", "deviceVersion": "",
        "frameworkName": "", "frameworkVersion": "", "coreVersion": "14.14.0", "bundleId": ""
    }})
}

/// realm-core decodes both tokens: three segments, JSON payload, integer `exp` and `iat`.
fn assert_core_jwt(token: &str) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "three segments");
    assert!(parts.iter().all(|p| !p.is_empty()));
    use base64::Engine;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .expect("base64url payload");
    let claims: Value = serde_json::from_slice(&payload).expect("JSON payload");
    assert!(claims["exp"].is_i64(), "integer exp: {claims}");
    assert!(claims["iat"].is_i64(), "integer iat: {claims}");
    if let Some(data) = claims.get("user_data") {
        assert!(data.is_object(), "user_data must be an object, never null");
    }
    claims
}

fn is_object_id(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 24 && s.chars().all(|c| c.is_ascii_hexdigit()))
}

async fn server() -> (TestServer, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut config = TestServer::config();
    let log = seen.clone();
    config.apps[0].providers.custom_function.enabled = true;
    config.apps[0].providers.custom_function.function = Some(CustomFunction::new(move |payload| {
        let log = log.clone();
        async move {
            log.lock().unwrap().push(payload.clone());
            let name = payload["username"].as_str().unwrap_or_default().to_owned();
            Ok(FunctionIdentity::new(format!("fn-{name}")))
        }
    }));
    (TestServer::start_with(config).await, seen)
}

#[tokio::test]
async fn location_has_ws_hostname_and_exact_content_type() {
    let (server, _) = server().await;
    let routes = Routes::new(server.url(), server.app_id());
    // core sends the location request with no headers at all
    let resp = ReqwestTransport::new()
        .send(
            http::Request::get(routes.location())
                .body(Bytes::new())
                .unwrap(),
            &RequestOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    let hostname = body["hostname"].as_str().unwrap();
    assert!(!hostname.ends_with('/'));
    assert_eq!(hostname, server.url());
    assert!(body["ws_hostname"].as_str().unwrap().starts_with("ws://"));
    assert!(body["deployment_model"].is_string() && body["location"].is_string());
    server.shutdown().await;
}

#[tokio::test]
async fn core_login_refresh_profile_logout() {
    let (server, _) = server().await;
    let r = Routes::new(server.url(), server.app_id());

    // `provider` first, then the credential, then the twelve device fields.
    let login = core(
        Method::POST,
        &r.login("anon-user", false),
        None,
        Some(json!({"provider": "anon-user", "options": device(server.app_id())})),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let access = login.body["access_token"].as_str().unwrap().to_owned();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();
    assert_core_jwt(&access);
    let rclaims = assert_core_jwt(&refresh);
    assert_eq!(rclaims["typ"], "refresh");
    assert!(is_object_id(&login.body["user_id"]));
    assert!(is_object_id(&login.body["device_id"]));

    // GET with a JSON content type and an empty body is fine.
    let profile = core(Method::GET, &r.profile(), Some(&access), None).await;
    assert_eq!(profile.status, StatusCode::OK);
    let ids = profile.body["identities"].as_array().unwrap();
    assert_eq!(
        ids.len(),
        1,
        "exactly one anon-user identity drives is_anonymous()"
    );
    assert!(ids[0]["id"].is_string());
    assert_eq!(ids[0]["provider_type"], "anon-user");
    assert!(profile.body["data"].is_object());
    assert_eq!(profile.body["type"], "normal");

    // Body-less POST with the JSON content type.
    let refreshed = core(Method::POST, &r.session(), Some(&refresh), None).await;
    assert_eq!(refreshed.status, StatusCode::OK);
    let new_access = refreshed.body["access_token"].as_str().unwrap();
    assert_core_jwt(new_access);

    let out = core(Method::DELETE, &r.session(), Some(&refresh), None).await;
    assert!(out.status.is_success());
    if out.status == StatusCode::NO_CONTENT {
        assert_eq!(
            out.content_type, None,
            "a body-less 204 has no content type"
        );
    }
    // Any 401 to the refresh token now: InvalidSession, with the text realm-web relies on.
    let again = core(Method::POST, &r.session(), Some(&refresh), None).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert_eq!(again.body["error_code"], "InvalidSession");
    assert!(
        again.body["error"]
            .as_str()
            .unwrap()
            .contains("failed to find refresh token")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn provider_key_is_ignored_and_profile_data_are_strings() {
    let (server, _) = server().await;
    let r = Routes::new(server.url(), server.app_id());
    let reg = core(
        Method::POST,
        &r.email_password(latchkey_protocol::routes::EmailPasswordRoute::Register),
        None,
        Some(json!({"email": "core@example.com", "password": "p4ssw0rd!"})),
    )
    .await;
    assert!(reg.status.is_success(), "{}", reg.body);
    let login = core(
        Method::POST,
        &r.login("local-userpass", false),
        None,
        Some(
            json!({"provider": "local-userpass", "username": "core@example.com",
                    "password": "p4ssw0rd!", "options": device(server.app_id())}),
        ),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let access = login.body["access_token"].as_str().unwrap();
    let profile = core(Method::GET, &r.profile(), Some(access), None).await;
    for (key, value) in profile.body["data"].as_object().unwrap() {
        assert!(
            value.is_string(),
            "core casts data.{key} to a string: {value}"
        );
    }
    assert_eq!(profile.body["data"]["email"], "core@example.com");
    server.shutdown().await;
}

#[tokio::test]
async fn canonical_extended_json_bodies_are_accepted() {
    let (server, seen) = server().await;
    let r = Routes::new(server.url(), server.app_id());
    // custom-function: core sends the payload as given (no `provider`), numbers wrapped.
    let login = core(
        Method::POST,
        &r.login("custom-function", false),
        None,
        Some(json!({
            "username": "ejson",
            "age": {"$numberInt": "42"},
            "big": {"$numberLong": "9007199254740993"},
            "ratio": {"$numberDouble": "0.5"},
            "options": {"device": {"deviceId": {"$oid": "65f0c0ffee0000000000abcd"}}}
        })),
    )
    .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let payload = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        payload,
        json!({"username": "ejson", "age": 42, "big": 9007199254740993i64, "ratio": 0.5}),
        "the function receives plain JSON without options"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_missing_api_key_is_404_not_401() {
    let (server, _) = server().await;
    let r = Routes::new(server.url(), server.app_id());
    core(
        Method::POST,
        &r.email_password(latchkey_protocol::routes::EmailPasswordRoute::Register),
        None,
        Some(json!({"email": "keys@example.com", "password": "p4ssw0rd!"})),
    )
    .await;
    let login = core(
        Method::POST,
        &r.login("local-userpass", false),
        None,
        Some(
            json!({"provider": "local-userpass", "username": "keys@example.com",
                    "password": "p4ssw0rd!", "options": device(server.app_id())}),
        ),
    )
    .await;
    let refresh = login.body["refresh_token"].as_str().unwrap();
    // core logs the user out on any 401 to a refresh-token request, so "not found" must be 404.
    let missing = core(
        Method::GET,
        &r.api_key("65f0c0ffee0000000000abcd"),
        Some(refresh),
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["error_code"], "APIKeyNotFound");
    // PUT with the JSON content type and an empty body.
    let enable = core(
        Method::PUT,
        &r.api_key_enabled("65f0c0ffee0000000000abcd", true),
        Some(refresh),
        None,
    )
    .await;
    assert_eq!(enable.status, StatusCode::NOT_FOUND);
    // A created key's `_id` is a plain 24-hex string; `key` only on create.
    let created = core(
        Method::POST,
        &r.api_keys(),
        Some(refresh),
        Some(json!({"name": "core-key"})),
    )
    .await;
    assert!(created.status.is_success(), "{}", created.body);
    assert!(is_object_id(&created.body["_id"]));
    assert!(created.body["key"].is_string());
    assert_eq!(created.body["disabled"], false);
    let listed = core(Method::GET, &r.api_keys(), Some(refresh), None).await;
    assert!(listed.body[0].get("key").is_none());
    server.shutdown().await;
}
