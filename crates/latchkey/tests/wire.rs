//! HTTP-level tests against a wiremock server: the wire format of every request the SDK
//! sends, pinned against realm-web 2.0.1's transcript (docs/realm-web-transcript.md), and
//! the handling of every error class of protocol.md §8.
#![cfg(all(feature = "all-providers", any(feature = "reqwest", feature = "hyper")))]

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey::events::UserEvent;
use latchkey::{App, Credentials, ErrorCode, ErrorKind, RetryPolicy, UserState};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const APP: &str = "myapp";
const DEVICE: &str = "65f0c0ffee0000000000abcd";
const P: &str = "/api/client/v2.0";

// ---------------------------------------------------------------- tokens

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn jwt(claims: Value) -> String {
    format!(
        "{}.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn access(sub: &str, lifetime: i64, n: usize) -> String {
    let iat = now();
    jwt(json!({"sub": sub, "typ": "access", "iat": iat, "exp": iat + lifetime, "n": n}))
}

fn refresh(sub: &str) -> String {
    let iat = now();
    jwt(json!({"sub": sub, "typ": "refresh", "iat": iat, "exp": iat + 5_000_000}))
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn bearer(r: &Request) -> Option<String> {
    r.headers.get("authorization").map(|v| {
        v.to_str()
            .unwrap()
            .strip_prefix("Bearer ")
            .unwrap()
            .to_owned()
    })
}

// ---------------------------------------------------------------- the fake server

#[derive(Default)]
struct State {
    /// Identities (provider types) by user id.
    identities: Mutex<HashMap<String, Vec<String>>>,
    next_user: AtomicUsize,
    tokens: AtomicUsize,
    /// Lifetime of access tokens issued at login (refreshes always get 1800 s).
    login_lifetime: AtomicI64,
}

struct Env {
    server: MockServer,
    app: App,
    state: Arc<State>,
}

fn json_reply(status: u16, body: Value) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(body)
}

fn err_reply(status: u16, code: &str, msg: &str) -> ResponseTemplate {
    json_reply(
        status,
        json!({"error": msg, "error_code": code, "link": "http://logs"}),
    )
}

async fn env() -> Env {
    env_with(RetryPolicy::new().with_initial_backoff(Duration::from_millis(2))).await
}

async fn env_with(retry: RetryPolicy) -> Env {
    let server = MockServer::start().await;
    let state = Arc::new(State::default());
    state.login_lifetime.store(1800, Ordering::SeqCst);
    let host = server.uri();
    Mock::given(method("GET"))
        .and(path(format!("{P}/app/{APP}/location")))
        .respond_with(json_reply(
            200,
            json!({"deployment_model": "GLOBAL", "location": "US-VA",
                   "hostname": host, "ws_hostname": host.replace("http", "ws")}),
        ))
        .mount(&server)
        .await;
    let s = state.clone();
    Mock::given(method("POST"))
        .and(path_regex(format!(
            "^{P}/app/{APP}/auth/providers/[a-z0-9-]+/login$"
        )))
        .respond_with(move |r: &Request| {
            let provider = r.url.path().rsplit('/').nth(1).unwrap().to_owned();
            let n = s.tokens.fetch_add(1, Ordering::SeqCst);
            let link = r.url.query() == Some("link=true");
            if link {
                let sub = claims(&bearer(r).unwrap())["sub"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                s.identities
                    .lock()
                    .unwrap()
                    .entry(sub.clone())
                    .or_default()
                    .push(provider);
                return json_reply(
                    200,
                    json!({"access_token": access(&sub, 1800, n), "user_id": sub,
                           "device_id": DEVICE}),
                );
            }
            let user = format!(
                "{:024x}",
                s.next_user.fetch_add(1, Ordering::SeqCst) + 0xabc000
            );
            s.identities
                .lock()
                .unwrap()
                .insert(user.clone(), vec![provider]);
            let life = s.login_lifetime.load(Ordering::SeqCst);
            json_reply(
                200,
                json!({"access_token": access(&user, life, n), "refresh_token": refresh(&user),
                       "user_id": user, "device_id": DEVICE}),
            )
        })
        .mount(&server)
        .await;
    let s = state.clone();
    Mock::given(method("GET"))
        .and(path(format!("{P}/auth/profile")))
        .respond_with(move |r: &Request| {
            let sub = claims(&bearer(r).unwrap())["sub"]
                .as_str()
                .unwrap()
                .to_owned();
            let ids: Vec<Value> = s
                .identities
                .lock()
                .unwrap()
                .get(&sub)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, p)| json!({"id": format!("{sub}-{i}"), "provider_type": p}))
                .collect();
            json_reply(
                200,
                json!({"user_id": sub, "domain_id": "d", "identities": ids,
                       "data": {"email": "x@example.com", "name": "Ann"}, "type": "normal"}),
            )
        })
        .mount(&server)
        .await;
    let s = state.clone();
    Mock::given(method("POST"))
        .and(path(format!("{P}/auth/session")))
        .respond_with(move |r: &Request| {
            let sub = claims(&bearer(r).unwrap())["sub"]
                .as_str()
                .unwrap()
                .to_owned();
            let n = s.tokens.fetch_add(1, Ordering::SeqCst);
            json_reply(201, json!({"access_token": access(&sub, 1800, n)}))
        })
        .mount(&server)
        .await;
    for (m, p) in [
        ("DELETE", format!("{P}/auth/session")),
        ("DELETE", format!("{P}/auth/delete")),
    ] {
        Mock::given(method(m))
            .and(path(p))
            .respond_with(ResponseTemplate::new(204))
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path_regex(format!(
            "^{P}/app/{APP}/auth/providers/local-userpass/(register|confirm|confirm/send|confirm/call|reset|reset/send|reset/call)$"
        )))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let key = |name: &str, secret: bool| {
        let mut k = json!({"_id": "65f0c0ffee00000000001234", "name": name, "disabled": false});
        if secret {
            k["key"] = json!("the-secret-api-key-value");
        }
        k
    };
    Mock::given(method("POST"))
        .and(path(format!("{P}/auth/api_keys")))
        .respond_with(move |r: &Request| {
            let body: Value = r.body_json().unwrap();
            json_reply(201, key(body["name"].as_str().unwrap(), true))
        })
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{P}/auth/api_keys")))
        .respond_with(json_reply(200, json!([key("ci", false)])))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(format!("^{P}/auth/api_keys/[0-9a-f]{{24}}$")))
        .respond_with(json_reply(
            200,
            json!({"_id": {"$oid": "65f0c0ffee00000000001234"}, "name": "ci", "disabled": true}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path_regex(format!(
            "^{P}/auth/api_keys/[0-9a-f]{{24}}/(enable|disable)$"
        )))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path_regex(format!("^{P}/auth/api_keys/[0-9a-f]{{24}}$")))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;

    let app = App::builder(APP)
        .base_url(server.uri())
        .in_memory_store()
        .retry_policy(retry)
        .build()
        .unwrap();
    Env { server, app, state }
}

impl Env {
    async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap()
    }

    /// Requests received after the first `from`.
    async fn since(&self, from: usize) -> Vec<Request> {
        self.requests().await.split_off(from)
    }

    async fn count(&self) -> usize {
        self.requests().await.len()
    }
}

// ---------------------------------------------------------------- wire assertions

#[derive(Debug, Clone, Copy, PartialEq)]
enum Auth {
    None,
    Access,
    Refresh,
}

fn auth_kind(r: &Request) -> Auth {
    match bearer(r) {
        None => Auth::None,
        Some(t) => match claims(&t)["typ"].as_str() {
            Some("access") => Auth::Access,
            Some("refresh") => Auth::Refresh,
            other => panic!("unexpected token type {other:?}"),
        },
    }
}

/// Method, path, query, `Accept`, `Content-Type` (only with a body), the kind of bearer,
/// and the exact top-level keys of the JSON body (`None`: no body at all).
fn assert_wire(
    r: &Request,
    m: &str,
    p: &str,
    query: Option<&str>,
    auth: Auth,
    keys: Option<&[&str]>,
) -> Value {
    let what = format!("{} {}", r.method, r.url);
    assert_eq!(r.method.as_str(), m, "{what}");
    assert_eq!(r.url.path(), p, "{what}");
    assert_eq!(r.url.query(), query, "{what}");
    assert_eq!(
        r.headers.get("accept").map(|v| v.to_str().unwrap()),
        Some("application/json"),
        "{what}"
    );
    assert_eq!(auth_kind(r), auth, "{what}");
    match keys {
        None => {
            assert!(r.body.is_empty(), "{what}: no body expected");
            assert!(
                r.headers.get("content-type").is_none(),
                "{what}: no Content-Type without a body"
            );
            Value::Null
        }
        Some(keys) => {
            assert_eq!(
                r.headers.get("content-type").map(|v| v.to_str().unwrap()),
                Some("application/json"),
                "{what}"
            );
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            let got: BTreeSet<&str> = body
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let want: BTreeSet<&str> = keys.iter().copied().collect();
            assert_eq!(got, want, "{what}: body keys of {body}");
            body
        }
    }
}

fn login_path(provider: &str) -> String {
    format!("{P}/app/{APP}/auth/providers/{provider}/login")
}

fn assert_device(body: &Value, device_id: Option<&str>) {
    let d = body["options"]["device"]
        .as_object()
        .expect("options.device");
    for k in ["sdkVersion", "platform", "platformVersion"] {
        assert!(
            d.get(k)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty()),
            "options.device.{k} in {body}"
        );
    }
    assert_eq!(body["options"].as_object().unwrap().len(), 1);
    match device_id {
        Some(id) => assert_eq!(d["deviceId"], json!({"$oid": id})),
        None => assert!(d.get("deviceId").is_none(), "no deviceId on a first login"),
    }
}

// ---------------------------------------------------------------- wire format

#[tokio::test]
async fn location_is_fetched_once_without_auth() {
    let e = env().await;
    e.app.log_in(Credentials::anonymous()).await.unwrap();
    e.app
        .log_in(Credentials::email_password("a@example.com", "pw"))
        .await
        .unwrap();
    let reqs = e.requests().await;
    let loc: Vec<&Request> = reqs
        .iter()
        .filter(|r| r.url.path().ends_with("/location"))
        .collect();
    assert_eq!(loc.len(), 1);
    assert_wire(
        loc[0],
        "GET",
        &format!("{P}/app/{APP}/location"),
        None,
        Auth::None,
        None,
    );
    assert!(reqs[0].url.path().ends_with("/location"), "location first");
}

#[tokio::test]
async fn login_bodies_per_provider_match_realm_web() {
    let e = env().await;
    let cases: Vec<(Credentials, &str, &[&str], Value)> = vec![
        (
            Credentials::anonymous(),
            "anon-user",
            &["options"],
            json!({}),
        ),
        (
            Credentials::email_password("alice@example.com", "p4ssw0rd!"),
            "local-userpass",
            &["username", "password", "options"],
            json!({"username": "alice@example.com", "password": "p4ssw0rd!"}),
        ),
        (
            Credentials::api_key("my-api-key-secret"),
            "api-key",
            &["key", "options"],
            json!({"key": "my-api-key-secret"}),
        ),
        (
            Credentials::jwt("a.b.c"),
            "custom-token",
            &["token", "options"],
            json!({"token": "a.b.c"}),
        ),
        (
            Credentials::function(json!({"username": "x", "n": 1})),
            "custom-function",
            &["username", "n", "options"],
            json!({"username": "x", "n": {"$numberInt": "1"}}),
        ),
        (
            Credentials::google_id_token("google-id-token-abc"),
            "oauth2-google",
            &["id_token", "options"],
            json!({"id_token": "google-id-token-abc"}),
        ),
        (
            Credentials::google_auth_code("google-auth-code-xyz"),
            "oauth2-google",
            &["authCode", "options"],
            json!({"authCode": "google-auth-code-xyz"}),
        ),
        (
            Credentials::apple("apple-id-token-abc"),
            "oauth2-apple",
            &["id_token", "options"],
            json!({"id_token": "apple-id-token-abc"}),
        ),
        (
            Credentials::facebook("fb-access-token-abc"),
            "oauth2-facebook",
            &["accessToken", "options"],
            json!({"accessToken": "fb-access-token-abc"}),
        ),
    ];
    for (i, (cred, provider, keys, fields)) in cases.into_iter().enumerate() {
        let from = e.count().await;
        let user = e.app.log_in(cred).await.unwrap();
        assert_eq!(user.identities()[0].provider_type, provider);
        assert_eq!(e.app.current_user().as_ref(), Some(&user));
        let reqs = e.since(from).await;
        let reqs: Vec<&Request> = reqs
            .iter()
            .filter(|r| !r.url.path().ends_with("/location"))
            .collect();
        assert_eq!(reqs.len(), 2, "login then profile for {provider}");
        let body = assert_wire(
            reqs[0],
            "POST",
            &login_path(provider),
            None,
            Auth::None,
            Some(keys),
        );
        for (k, v) in fields.as_object().unwrap() {
            assert_eq!(&body[k], v, "{provider}: {k}");
        }
        assert!(
            body.get("provider").is_none(),
            "realm-web sends no provider key"
        );
        // The first login has no device id yet; later ones send the stored one as an ObjectId.
        assert_device(&body, (i > 0).then_some(DEVICE));
        assert_wire(
            reqs[1],
            "GET",
            &format!("{P}/auth/profile"),
            None,
            Auth::Access,
            None,
        );
    }
}

#[tokio::test]
async fn session_routes_use_the_refresh_token_and_no_body() {
    let e = env().await;
    let user = e
        .app
        .log_in(Credentials::email_password("a@example.com", "pw"))
        .await
        .unwrap();
    let from = e.count().await;
    user.refresh_access_token().await.unwrap();
    user.refresh_custom_data().await.unwrap();
    user.refresh_profile().await.unwrap();
    user.log_out().await.unwrap();
    let reqs = e.since(from).await;
    assert_eq!(reqs.len(), 4);
    let session = format!("{P}/auth/session");
    assert_wire(&reqs[0], "POST", &session, None, Auth::Refresh, None);
    assert_wire(&reqs[1], "POST", &session, None, Auth::Refresh, None);
    assert_wire(
        &reqs[2],
        "GET",
        &format!("{P}/auth/profile"),
        None,
        Auth::Access,
        None,
    );
    assert_wire(&reqs[3], "DELETE", &session, None, Auth::Refresh, None);
    assert_eq!(user.state(), UserState::LoggedOut);
}

#[tokio::test]
async fn delete_user_uses_the_access_token() {
    let e = env().await;
    let user = e
        .app
        .log_in(Credentials::email_password("a@example.com", "pw"))
        .await
        .unwrap();
    let from = e.count().await;
    e.app.delete_user(&user).await.unwrap();
    let reqs = e.since(from).await;
    assert_eq!(
        reqs.len(),
        1,
        "realm-core: no DELETE /auth/session after deletion"
    );
    assert_wire(
        &reqs[0],
        "DELETE",
        &format!("{P}/auth/delete"),
        None,
        Auth::Access,
        None,
    );
    assert_eq!(user.state(), UserState::Removed);
    assert!(e.app.all_users().is_empty());
    // Removing it again is a typed error.
    assert_eq!(
        e.app.remove_user(&user).await.unwrap_err().kind(),
        ErrorKind::UserNotFound
    );
}

#[tokio::test]
async fn link_credentials_posts_login_with_link_true_and_the_access_token() {
    let e = env().await;
    let anon = e.app.log_in(Credentials::anonymous()).await.unwrap();
    let other = e
        .app
        .log_in(Credentials::email_password("b@example.com", "pw"))
        .await
        .unwrap();
    assert_eq!(e.app.current_user().as_ref(), Some(&other));
    let refresh_before = anon.refresh_token().unwrap();
    let access_before = anon.access_token().unwrap();

    // Anonymous credentials are refused locally.
    let from = e.count().await;
    let err = anon
        .link_credentials(Credentials::anonymous())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Credential);
    assert_eq!(e.count().await, from, "no request");

    anon.link_credentials(Credentials::email_password("linked@example.com", "pw"))
        .await
        .unwrap();
    let reqs = e.since(from).await;
    assert_eq!(reqs.len(), 2);
    let body = assert_wire(
        &reqs[0],
        "POST",
        &login_path("local-userpass"),
        Some("link=true"),
        Auth::Access,
        Some(&["username", "password", "options"]),
    );
    assert_eq!(body["username"], "linked@example.com");
    assert_device(&body, Some(DEVICE));
    assert_eq!(
        claims(&bearer(&reqs[0]).unwrap())["sub"],
        json!(anon.id()),
        "the linking user's token"
    );
    assert_wire(
        &reqs[1],
        "GET",
        &format!("{P}/auth/profile"),
        None,
        Auth::Access,
        None,
    );
    assert_eq!(
        anon.refresh_token().unwrap(),
        refresh_before,
        "refresh token kept"
    );
    assert_ne!(
        anon.access_token().unwrap(),
        access_before,
        "new access token"
    );
    let providers: Vec<String> = anon
        .identities()
        .into_iter()
        .map(|i| i.provider_type)
        .collect();
    assert_eq!(providers, ["anon-user", "local-userpass"]);
    assert!(!anon.is_anonymous());
    assert_eq!(
        e.app.current_user().as_ref(),
        Some(&anon),
        "the user becomes current"
    );

    // A logged-out user cannot link.
    other.log_out().await.unwrap();
    let err = other
        .link_credentials(Credentials::api_key("k"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotLoggedIn);
}

#[tokio::test]
async fn email_password_routes_send_exact_keys_and_no_authorization() {
    let e = env().await;
    // Even with a logged-in user, no Authorization header (realm-core's behaviour).
    e.app
        .log_in(Credentials::email_password("a@example.com", "pw"))
        .await
        .unwrap();
    let auth = e.app.email_password_auth();
    let from = e.count().await;
    auth.register_user("new@example.com", "secret123")
        .await
        .unwrap();
    auth.confirm_user("t", "tid").await.unwrap();
    auth.reset_password("t", "tid", "newpw123").await.unwrap();
    auth.send_reset_password_email("new@example.com")
        .await
        .unwrap();
    auth.call_reset_password_function("new@example.com", "newpw123", json!(["arg1", {"a": 1}]))
        .await
        .unwrap();
    auth.resend_confirmation_email("new@example.com")
        .await
        .unwrap();
    auth.retry_custom_confirmation("new@example.com")
        .await
        .unwrap();
    let reqs = e.since(from).await;
    assert_eq!(reqs.len(), 7);
    let route = |s: &str| format!("{P}/app/{APP}/auth/providers/local-userpass/{s}");
    let expected: [(&str, Value); 7] = [
        (
            "register",
            json!({"email": "new@example.com", "password": "secret123"}),
        ),
        ("confirm", json!({"token": "t", "tokenId": "tid"})),
        (
            "reset",
            json!({"token": "t", "tokenId": "tid", "password": "newpw123"}),
        ),
        ("reset/send", json!({"email": "new@example.com"})),
        (
            "reset/call",
            json!({"email": "new@example.com", "password": "newpw123",
                   "arguments": ["arg1", {"a": {"$numberInt": "1"}}]}),
        ),
        ("confirm/send", json!({"email": "new@example.com"})),
        ("confirm/call", json!({"email": "new@example.com"})),
    ];
    for (r, (suffix, body)) in reqs.iter().zip(expected) {
        let keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let got = assert_wire(r, "POST", &route(suffix), None, Auth::None, Some(&keys));
        assert_eq!(got, body, "{suffix}");
    }
    // Arguments that are not a list are refused before any request.
    let from = e.count().await;
    let err = auth
        .call_reset_password_function("new@example.com", "pw", json!({"not": "a list"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(e.count().await, from);
}

#[tokio::test]
async fn api_key_routes_use_the_refresh_token() {
    let e = env().await;
    let user = e
        .app
        .log_in(Credentials::email_password("a@example.com", "pw"))
        .await
        .unwrap();
    let keys = user.api_keys();
    let from = e.count().await;
    let created = keys.create("ci").await.unwrap();
    assert_eq!(created.name, "ci");
    assert_eq!(
        created.key.as_ref().unwrap().expose(),
        "the-secret-api-key-value"
    );
    assert!(!format!("{created:?}").contains("the-secret-api-key-value"));
    let id = created.id.clone();
    let one = keys.fetch(&id).await.unwrap();
    assert_eq!(one.id, id, "an Extended JSON $oid id is accepted");
    assert!(one.disabled && one.key.is_none());
    let all = keys.fetch_all().await.unwrap();
    assert_eq!(all.len(), 1);
    assert!(all[0].key.is_none());
    keys.enable(&id).await.unwrap();
    keys.disable(&id).await.unwrap();
    keys.delete(&id).await.unwrap();
    let reqs = e.since(from).await;
    assert_eq!(reqs.len(), 6);
    let base = format!("{P}/auth/api_keys");
    let body = assert_wire(
        &reqs[0],
        "POST",
        &base,
        None,
        Auth::Refresh,
        Some(&["name"]),
    );
    assert_eq!(body, json!({"name": "ci"}));
    assert_wire(
        &reqs[1],
        "GET",
        &format!("{base}/{id}"),
        None,
        Auth::Refresh,
        None,
    );
    assert_wire(&reqs[2], "GET", &base, None, Auth::Refresh, None);
    assert_wire(
        &reqs[3],
        "PUT",
        &format!("{base}/{id}/enable"),
        None,
        Auth::Refresh,
        None,
    );
    assert_wire(
        &reqs[4],
        "PUT",
        &format!("{base}/{id}/disable"),
        None,
        Auth::Refresh,
        None,
    );
    assert_wire(
        &reqs[5],
        "DELETE",
        &format!("{base}/{id}"),
        None,
        Auth::Refresh,
        None,
    );
    // Ids that would change the URL are refused locally.
    let err = keys.fetch("../session").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

// ---------------------------------------------------------------- error classes (§8)

#[tokio::test]
async fn access_token_401_refreshes_and_replays_once() {
    let e = env().await;
    let user = e
        .app
        .log_in(Credentials::email_password("a@example.com", "pw"))
        .await
        .unwrap();
    Mock::given(method("GET"))
        .and(path(format!("{P}/auth/profile")))
        .respond_with(err_reply(
            401,
            "InvalidSession",
            "invalid session: access token expired",
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&e.server)
        .await;
    let old = user.access_token().unwrap();
    let from = e.count().await;
    let profile = user.refresh_profile().await.unwrap();
    assert_eq!(profile.email().as_deref(), Some("x@example.com"));
    let reqs = e.since(from).await;
    let seq: Vec<(String, String)> = reqs
        .iter()
        .map(|r| (r.method.to_string(), r.url.path().to_owned()))
        .collect();
    assert_eq!(
        seq,
        [
            ("GET".into(), format!("{P}/auth/profile")),
            ("POST".into(), format!("{P}/auth/session")),
            ("GET".into(), format!("{P}/auth/profile")),
        ]
    );
    assert_eq!(bearer(&reqs[0]).unwrap(), old);
    assert_ne!(
        bearer(&reqs[2]).unwrap(),
        old,
        "replayed with the new token"
    );

    // A second 401 on the replay is returned as is: one refresh, one replay, no loop.
    Mock::given(method("GET"))
        .and(path(format!("{P}/auth/profile")))
        .respond_with(err_reply(401, "InvalidSession", "invalid session"))
        .with_priority(1)
        .mount(&e.server)
        .await;
    let from = e.count().await;
    let err = user.refresh_profile().await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(401));
    assert_eq!(err.error_code(), Some(ErrorCode::InvalidSession));
    assert_eq!(e.count().await - from, 3);
}

#[tokio::test]
async fn refresh_401_is_session_expired_and_logs_the_user_out() {
    let e = env().await;
    let user = e
        .app
        .log_in(Credentials::email_password("a@example.com", "pw"))
        .await
        .unwrap();
    let mut events = e.app.subscribe();
    Mock::given(method("POST"))
        .and(path(format!("{P}/auth/session")))
        .respond_with(err_reply(
            401,
            "InvalidSession",
            "invalid session: failed to find refresh token",
        ))
        .with_priority(1)
        .mount(&e.server)
        .await;
    let err = user.refresh_access_token().await.unwrap_err();
    assert!(err.is_session_expired());
    assert_eq!(err.kind(), ErrorKind::SessionExpired);
    assert_eq!(err.error_code(), Some(ErrorCode::InvalidSession));
    assert_eq!(user.state(), UserState::LoggedOut);
    assert!(user.access_token().is_none());
    assert_eq!(
        user.profile().email().as_deref(),
        Some("x@example.com"),
        "profile kept"
    );
    let mut seen = Vec::new();
    while let Ok(ev) = events.try_recv() {
        seen.push(ev);
    }
    assert!(seen.contains(&UserEvent::SessionExpired {
        user_id: user.id().to_owned()
    }));
    assert_eq!(e.app.current_user(), None);
}

#[tokio::test]
async fn api_key_401_logs_the_user_out() {
    let e = env().await;
    let user = e
        .app
        .log_in(Credentials::email_password("a@example.com", "pw"))
        .await
        .unwrap();
    Mock::given(method("GET"))
        .and(path(format!("{P}/auth/api_keys")))
        .respond_with(err_reply(401, "InvalidSession", "invalid session"))
        .with_priority(1)
        .mount(&e.server)
        .await;
    let from = e.count().await;
    let mut events = e.app.subscribe();
    let err = user.api_keys().fetch_all().await.unwrap_err();
    assert!(err.is_session_expired());
    assert_eq!(user.state(), UserState::LoggedOut);
    let reqs = e.since(from).await;
    // Like a refresh answered 401: no revoke with the token the server just rejected.
    assert_eq!(reqs.len(), 1, "the 401 only, no DELETE /auth/session");
    let mut seen = Vec::new();
    while let Ok(ev) = events.try_recv() {
        seen.push(ev);
    }
    assert_eq!(
        seen,
        vec![
            UserEvent::Switched { user_id: None },
            UserEvent::SessionExpired {
                user_id: user.id().to_owned()
            },
        ]
    );
    // Later calls fail locally.
    assert_eq!(
        user.api_keys().fetch_all().await.unwrap_err().kind(),
        ErrorKind::NotLoggedIn
    );
}

#[tokio::test]
async fn api_key_not_found_is_a_typed_404() {
    let e = env().await;
    let user = e
        .app
        .log_in(Credentials::email_password("a@example.com", "pw"))
        .await
        .unwrap();
    Mock::given(method("GET"))
        .and(path(format!("{P}/auth/api_keys/65f0c0ffee0000000000ffff")))
        .respond_with(err_reply(404, "APIKeyNotFound", "API key not found"))
        .with_priority(1)
        .mount(&e.server)
        .await;
    let err = user
        .api_keys()
        .fetch("65f0c0ffee0000000000ffff")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404));
    assert_eq!(err.error_code(), Some(ErrorCode::APIKeyNotFound));
    assert_eq!(
        err.error_body().unwrap().error.as_deref(),
        Some("API key not found")
    );
    assert_eq!(user.state(), UserState::LoggedIn, "a 404 logs nobody out");
}

#[tokio::test]
async fn error_bodies_by_content_type() {
    let e = env().await;
    let login = login_path("local-userpass");
    // `application/json; charset=utf-8` error bodies are parsed (realm-web's rule).
    Mock::given(method("POST"))
        .and(path(&login))
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            r#"{"error":"unauthorized","error_code":"InvalidPassword"}"#,
            "application/json; charset=utf-8",
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&e.server)
        .await;
    let err = e
        .app
        .log_in(Credentials::email_password("a@example.com", "wrong"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.error_code(), Some(ErrorCode::InvalidPassword));
    assert_eq!(err.error_code().unwrap().number(), Some(4349));
    assert!(!err.to_string().contains("wrong"));

    // A non-JSON error body: no code, the (scrubbed) text is kept.
    Mock::given(method("POST"))
        .and(path(&login))
        .respond_with(
            ResponseTemplate::new(400).set_body_raw("<html>bad gateway config</html>", "text/html"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&e.server)
        .await;
    let err = e
        .app
        .log_in(Credentials::email_password("a@example.com", "pw"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400));
    assert_eq!(err.error_code(), None);
    assert!(err.raw_body().unwrap().contains("bad gateway config"));

    // A JSON-looking body with a text content type is not trusted as an error body.
    Mock::given(method("POST"))
        .and(path(&login))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_raw(r#"{"error_code":"UserDisabled"}"#, "text/plain"),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&e.server)
        .await;
    let err = e
        .app
        .log_in(Credentials::email_password("a@example.com", "pw"))
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), None);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(403));
}

#[tokio::test]
async fn garbage_success_bodies_are_decode_errors_never_panics() {
    let e = env().await;
    let user = e
        .app
        .log_in(Credentials::email_password("a@example.com", "pw"))
        .await
        .unwrap();
    let garbage = [
        ResponseTemplate::new(200).set_body_raw("not json at all", "application/json"),
        ResponseTemplate::new(200).set_body_raw(r#"{"unexpected": true}"#, "application/json"),
        ResponseTemplate::new(200).set_body_raw(vec![0xff, 0xfe, 0x00], "application/octet-stream"),
        ResponseTemplate::new(200),
    ];
    for g in garbage {
        for (m, p) in [
            ("POST", login_path("local-userpass")),
            ("GET", format!("{P}/auth/profile")),
            ("POST", format!("{P}/auth/session")),
            ("GET", format!("{P}/auth/api_keys")),
            ("POST", format!("{P}/auth/api_keys")),
        ] {
            let guard = Mock::given(method(m))
                .and(path(&p))
                .respond_with(g.clone())
                .with_priority(1)
                .mount_as_scoped(&e.server)
                .await;
            let err = match (m, p.as_str()) {
                ("POST", x) if x.ends_with("/login") => e
                    .app
                    .log_in(Credentials::email_password("a@example.com", "pw"))
                    .await
                    .map(|_| ())
                    .unwrap_err(),
                ("GET", x) if x.ends_with("/profile") => {
                    user.refresh_profile().await.map(|_| ()).unwrap_err()
                }
                ("POST", x) if x.ends_with("/session") => {
                    user.refresh_access_token().await.unwrap_err()
                }
                ("GET", _) => user.api_keys().fetch_all().await.map(|_| ()).unwrap_err(),
                _ => user.api_keys().create("k").await.map(|_| ()).unwrap_err(),
            };
            assert_eq!(err.kind(), ErrorKind::Decode, "{m} {p}: {err}");
            assert_eq!(user.state(), UserState::LoggedIn, "{m} {p}");
            drop(guard);
        }
    }
    // A garbage location answer is a decode error too (on a fresh app).
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{P}/app/{APP}/location")))
        .respond_with(ResponseTemplate::new(200).set_body_raw("[]", "application/json"))
        .mount(&server)
        .await;
    let app = App::builder(APP)
        .base_url(server.uri())
        .in_memory_store()
        .build()
        .unwrap();
    let err = app.log_in(Credentials::anonymous()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
}

#[tokio::test]
async fn server_errors_are_transient_and_only_idempotent_requests_retry() {
    let e = env().await;
    let user = e
        .app
        .log_in(Credentials::email_password("a@example.com", "pw"))
        .await
        .unwrap();
    // 500 on a login: transient, not retried (POST).
    let login = Mock::given(method("POST"))
        .and(path(login_path("local-userpass")))
        .respond_with(err_reply(500, "InternalServerError", "boom"))
        .with_priority(1)
        .expect(1)
        .mount_as_scoped(&e.server)
        .await;
    let err = e
        .app
        .log_in(Credentials::email_password("a@example.com", "pw"))
        .await
        .unwrap_err();
    assert!(err.is_transient());
    assert_eq!(err.error_code(), Some(ErrorCode::InternalServerError));
    drop(login);

    // 503 on the profile: retried twice (max_retries = 2), then a transient error.
    let profile = Mock::given(method("GET"))
        .and(path(format!("{P}/auth/profile")))
        .respond_with(ResponseTemplate::new(503).set_body_raw("busy", "text/plain"))
        .with_priority(1)
        .expect(3)
        .mount_as_scoped(&e.server)
        .await;
    let err = user.refresh_profile().await.unwrap_err();
    assert!(err.is_transient());
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(user.state(), UserState::LoggedIn);
    drop(profile);

    // 503 then success: the retry hides the blip.
    Mock::given(method("GET"))
        .and(path(format!("{P}/auth/api_keys")))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&e.server)
        .await;
    assert_eq!(user.api_keys().fetch_all().await.unwrap().len(), 1);

    // 503 on a refresh (POST): one attempt, the still-valid token is kept.
    let refresh = Mock::given(method("POST"))
        .and(path(format!("{P}/auth/session")))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(1)
        .expect(1)
        .mount_as_scoped(&e.server)
        .await;
    let err = user.refresh_access_token().await.unwrap_err();
    assert!(err.is_transient());
    assert_eq!(user.state(), UserState::LoggedIn);
    drop(refresh);
}

#[tokio::test]
async fn max_retries_zero_disables_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{P}/app/{APP}/location")))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&server)
        .await;
    let app = App::builder(APP)
        .base_url(server.uri())
        .in_memory_store()
        .max_retries(0)
        .build()
        .unwrap();
    let err = app.log_in(Credentials::anonymous()).await.unwrap_err();
    assert!(err.is_transient());
    server.verify().await;
}

#[tokio::test]
async fn unserializable_function_payload_is_a_typed_error_before_any_request() {
    let e = env().await;
    let mut bad = std::collections::HashMap::new();
    bad.insert(vec![1u8], 1);
    let err = e.app.log_in(Credentials::function(bad)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Credential);
    let err = e.app.log_in(Credentials::function(42)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Credential);
    assert_eq!(e.count().await, 0);
}

// ---------------------------------------------------------------- concurrency

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_thousand_callers_share_one_refresh() {
    let e = env().await;
    // Login hands out an access token that lives one second (a lifetime of zero,
    // exp == iat, is refused), and that second passes.
    e.state.login_lifetime.store(1, Ordering::SeqCst);
    let user = e
        .app
        .log_in(Credentials::email_password("a@example.com", "pw"))
        .await
        .unwrap();
    let expired = user.access_token().unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let s = e.state.clone();
    Mock::given(method("POST"))
        .and(path(format!("{P}/auth/session")))
        .respond_with(move |r: &Request| {
            let sub = claims(&bearer(r).unwrap())["sub"]
                .as_str()
                .unwrap()
                .to_owned();
            let n = s.tokens.fetch_add(1, Ordering::SeqCst);
            json_reply(200, json!({"access_token": access(&sub, 1800, n)}))
                .set_delay(Duration::from_millis(50))
        })
        .with_priority(1)
        .expect(1)
        .mount(&e.server)
        .await;
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let u = user.clone();
            tokio::spawn(async move { u.valid_access_token().await })
        })
        .collect();
    let tokens: BTreeSet<String> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert_eq!(tokens.len(), 1, "everyone got the same new token");
    assert!(!tokens.contains(&expired));
    e.server.verify().await;
}

// ---------------------------------------------------------------- redaction

#[tokio::test]
async fn secret_bearing_types_redact_debug() {
    let secrets = [
        "pw-SECRET-1",
        "key-SECRET-2",
        "jwt-SECRET-3",
        "fn-SECRET-4",
        "fb-SECRET-5",
        "gid-SECRET-6",
        "gcode-SECRET-7",
        "apple-SECRET-8",
    ];
    let creds = [
        Credentials::email_password("a@example.com", secrets[0]),
        Credentials::api_key(secrets[1]),
        Credentials::jwt(secrets[2]),
        Credentials::function(json!({"password": secrets[3]})),
        Credentials::facebook(secrets[4]),
        Credentials::google_id_token(secrets[5]),
        Credentials::google_auth_code(secrets[6]),
        Credentials::apple(secrets[7]),
    ];
    for (c, s) in creds.iter().zip(secrets) {
        let dbg = format!("{c:?}");
        assert!(!dbg.contains(s), "{dbg}");
    }
    let e = env().await;
    let user = e
        .app
        .log_in(Credentials::email_password("a@example.com", "pw"))
        .await
        .unwrap();
    let created = user.api_keys().create("ci").await.unwrap();
    for dbg in [
        format!("{created:?}"),
        format!("{:?}", created.key),
        format!("{:?}", user.api_keys()),
        format!("{user:?}"),
        format!("{:?}", e.app),
    ] {
        assert!(!dbg.contains("the-secret-api-key-value"), "{dbg}");
        assert!(!dbg.contains(&user.access_token().unwrap()), "{dbg}");
        assert!(!dbg.contains(&user.refresh_token().unwrap()), "{dbg}");
    }
}
