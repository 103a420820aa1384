//! `Retry-After` on 429 and 503 against a real HTTP server (wiremock): honoured and
//! bounded for requests that are safe to retry, reported on the error for the others.
//!
//! Real time, with waits of one second: paused tokio time cannot be used with a real
//! socket (while the runtime waits for the server's answer it would jump to the request
//! timeout). The exact waits are checked with paused time in latchkey-session's tests.
#![cfg(all(feature = "anonymous", any(feature = "reqwest", feature = "hyper")))]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use latchkey::{App, Credentials, ErrorKind};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const APP: &str = "myapp";
const P: &str = "/api/client/v2.0";

fn jwt(sub: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let e = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.sig",
        e(json!({"alg": "HS256"})),
        e(json!({"sub": sub, "iat": now, "exp": now + 1800}))
    )
}

fn busy(status: u16, retry_after: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("retry-after", retry_after)
        .set_body_json(json!({"error": "slow down", "error_code": "TooManyRequests"}))
}

/// A server that answers an anonymous login; `first` answers come before the normal
/// ones, once each: `(method, path, reply)`.
async fn server(first: Vec<(&str, String, ResponseTemplate)>) -> MockServer {
    let server = MockServer::start().await;
    for (m, p, reply) in first {
        Mock::given(method(m))
            .and(path(p))
            .respond_with(reply)
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(format!("{P}/app/{APP}/location")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"hostname": server.uri()})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!(
            "{P}/app/{APP}/auth/providers/anon-user/login"
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": jwt("u1"), "refresh_token": jwt("u1"),
            "user_id": "u1", "device_id": "65f0c0ffee0000000000abcd"})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{P}/auth/profile")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "identities": [{"id": "i", "provider_type": "anon-user"}], "data": {}, "type": "normal"})))
        .mount(&server)
        .await;
    server
}

fn app(server: &MockServer) -> App {
    App::builder(APP)
        .base_url(server.uri())
        .in_memory_store()
        .build()
        .unwrap()
}

async fn hits(server: &MockServer, m: &str, suffix: &str) -> usize {
    let requests = server.received_requests().await.unwrap();
    requests
        .iter()
        .filter(|r| r.method.as_str() == m && r.url.path().ends_with(suffix))
        .count()
}

#[tokio::test]
async fn gets_answered_429_or_503_with_retry_after_wait_then_retry() {
    let server = server(vec![
        ("GET", format!("{P}/app/{APP}/location"), busy(429, "1")),
        ("GET", format!("{P}/auth/profile"), busy(503, "1")),
    ])
    .await;
    let started = Instant::now();
    let user = app(&server).log_in(Credentials::anonymous()).await.unwrap();
    assert_eq!(user.id(), "u1");
    // Each GET waited the second it was asked to wait, then succeeded.
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(hits(&server, "GET", "/location").await, 2);
    assert_eq!(hits(&server, "GET", "/auth/profile").await, 2);
    assert_eq!(hits(&server, "POST", "/login").await, 1);
}

#[tokio::test]
async fn a_login_answered_429_is_not_retried_and_says_when_to_come_back() {
    let login = format!("{P}/app/{APP}/auth/providers/anon-user/login");
    let server = server(vec![("POST", login, busy(429, "30"))]).await;
    let err = app(&server)
        .log_in(Credentials::anonymous())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.status().map(|s| s.as_u16()), Some(429));
    assert!(err.is_transient());
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert_eq!(hits(&server, "POST", "/login").await, 1);
}

#[tokio::test]
async fn a_retry_after_beyond_the_bound_is_not_waited_for() {
    let location = format!("{P}/app/{APP}/location");
    let server = server(vec![("GET", location, busy(503, "3600"))]).await;
    let err = app(&server)
        .log_in(Credentials::anonymous())
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(503));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    assert_eq!(hits(&server, "GET", "/location").await, 1);
}
