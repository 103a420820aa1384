//! The `custom-function` provider: webhook contract and in-process functions.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use latchkey_server::{Config, CustomFunction, FunctionIdentity};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::common::*;

/// What the fake webhook saw: headers and raw body of each call.
type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// The webhook's behaviour is chosen by the last path segment.
async fn hook(
    Path(mode): Path<String>,
    State(seen): State<Seen>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    seen.lock().unwrap().push((headers, body.clone()));
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let user = payload["user"].as_str().unwrap_or("").to_owned();
    match mode.as_str() {
        "ok" => axum::Json(json!({"id": user, "name": format!("Name of {user}")})).into_response(),
        "no-name" => axum::Json(json!({"id": user})).into_response(),
        "status" => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        "forbidden" => (StatusCode::FORBIDDEN, axum::Json(json!({"id": user}))).into_response(),
        "not-json" => (StatusCode::OK, "<html>hello</html>").into_response(),
        "no-id" => axum::Json(json!({"name": "x"})).into_response(),
        "empty-id" => axum::Json(json!({"id": ""})).into_response(),
        "number-id" => axum::Json(json!({"id": 42})).into_response(),
        "error" => axum::Json(json!({"id": user, "error": "user is banned"})).into_response(),
        "huge" => {
            // A 1 MiB JSON answer (valid, with an id): too large to be read.
            let padding = "x".repeat(1024 * 1024);
            axum::Json(json!({"id": user, "padding": padding})).into_response()
        }
        "redirect" => Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header("location", "/hook/ok")
            .body(axum::body::Body::empty())
            .unwrap(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            axum::Json(json!({"id": user})).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A raw HTTP server answering every request with a 1 MiB chunked JSON body (no
/// Content-Length); returns its URL.
async fn chunked_huge_webhook() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Read the request head and its Content-Length body.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len: usize = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                            transfer-encoding: chunked\r\nconnection: close\r\n\r\n";
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let piece = vec![b' '; 16 * 1024];
                for _ in 0..64 {
                    let mut c = format!("{:x}\r\n", piece.len()).into_bytes();
                    c.extend_from_slice(&piece);
                    c.extend_from_slice(b"\r\n");
                    if sock.write_all(&c).await.is_err() {
                        return;
                    }
                }
                let _ = sock.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    format!("http://{addr}/hook")
}

/// A fake webhook on 127.0.0.1:0; returns its base URL and the calls it saw.
async fn webhook() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route("/hook/{mode}", axum::routing::post(hook))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), seen)
}

fn config_for(url: &str, secret: Option<&str>, timeout_ms: u64) -> Config {
    let mut c = config();
    let cf = &mut c.apps[0].providers.custom_function;
    cf.enabled = true;
    cf.webhook_url = Some(url.to_owned());
    cf.webhook_secret = secret.map(Into::into);
    cf.timeout_ms = timeout_ms;
    c
}

async fn login_fn(h: &Harness, body: Value) -> Reply {
    h.login("custom-function", body).await
}

#[tokio::test]
async fn webhook_success_same_user_and_name() {
    let (base, seen) = webhook().await;
    let h = start_with(config_for(&format!("{base}/ok"), None, 5000)).await;
    let a = Tokens::from(
        &login_fn(&h, json!({"user": "ext-1"}))
            .await
            .assert_ok_json(),
    );
    let again = Tokens::from(
        &login_fn(
            &h,
            json!({"user": "ext-1", "options": {"device": {"sdkVersion": "2.0.1"}}}),
        )
        .await
        .assert_ok_json(),
    );
    assert_eq!(a.user_id, again.user_id, "same external id, same user");
    let other = Tokens::from(
        &login_fn(&h, json!({"user": "ext-2"}))
            .await
            .assert_ok_json(),
    );
    assert_ne!(other.user_id, a.user_id);

    let p = h.profile(&a.access).await.assert_ok_json();
    assert_eq!(p["type"], "normal");
    assert_eq!(p["data"]["name"], "Name of ext-1");
    let ids = p["identities"].as_array().unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0]["provider_type"], "custom-function");
    assert_eq!(ids[0]["id"], "ext-1");

    // Unsigned without a secret; the payload is exactly the credential (no options).
    let calls = seen.lock().unwrap();
    assert_eq!(calls.len(), 3);
    assert!(calls[0].0.get("x-latchkey-signature").is_none());
    assert_eq!(calls[0].0["content-type"], "application/json");
    let sent: Value = serde_json::from_slice(&calls[1].1).unwrap();
    assert_eq!(sent, json!({"user": "ext-1"}));
}

#[tokio::test]
async fn webhook_without_name() {
    let (base, _) = webhook().await;
    let h = start_with(config_for(&format!("{base}/no-name"), None, 5000)).await;
    let t = Tokens::from(&login_fn(&h, json!({"user": "n"})).await.assert_ok_json());
    let p = h.profile(&t.access).await.assert_ok_json();
    assert!(p["data"].get("name").is_none(), "{p}");
}

#[tokio::test]
async fn webhook_requests_are_signed_and_plain_json() {
    let (base, seen) = webhook().await;
    let secret = "hook-secret-0123456789";
    let h = start_with(config_for(&format!("{base}/ok"), Some(secret), 5000)).await;
    // core sends the payload as canonical EJSON, with `provider` first.
    let raw = r#"{"provider":"custom-function","user":"signed","n":{"$numberInt":"42"},"d":{"$numberDouble":"1.5"},"options":{"device":{"sdkVersion":"14.0"}}}"#;
    let url = h.app_url(APP, "/auth/providers/custom-function/login");
    h.send(reqwest::Method::POST, &url, None, Some(raw))
        .await
        .assert_ok_json();

    let calls = seen.lock().unwrap();
    let (headers, body) = &calls[0];
    let sent: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(sent, json!({"user": "signed", "n": 42, "d": 1.5}));
    assert!(sent["n"].is_i64(), "EJSON number arrives as a plain number");
    let header = headers["x-latchkey-signature"].to_str().unwrap();
    // The signature covers "<timestamp>.<raw body>", the timestamp being the
    // server's clock in Unix seconds (receivers refuse old ones: no replay).
    let stamp = headers["x-latchkey-timestamp"].to_str().unwrap();
    let secs: i64 = stamp.parse().unwrap();
    assert!((secs - h.server.clock().now_secs()).abs() <= 5, "{secs}");
    let mut signed = format!("{stamp}.").into_bytes();
    signed.extend_from_slice(body);
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&signed);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(header, expected);
    // The body alone (the old scheme) does not verify.
    let mut body_only = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    body_only.update(body);
    assert_ne!(
        header,
        format!("sha256={}", hex::encode(body_only.finalize().into_bytes()))
    );
    // The receiver's check: a different secret does not verify.
    let mut wrong = Hmac::<Sha256>::new_from_slice(b"other").unwrap();
    wrong.update(&signed);
    assert_ne!(
        header,
        format!("sha256={}", hex::encode(wrong.finalize().into_bytes()))
    );
}

#[tokio::test]
async fn bad_webhook_answers_are_auth_errors() {
    let (base, _) = webhook().await;
    for mode in [
        "status",
        "forbidden",
        "not-json",
        "no-id",
        "empty-id",
        "number-id",
        "error",
        "missing-route",
    ] {
        let h = start_with(config_for(&format!("{base}/{mode}"), None, 5000)).await;
        let m = login_fn(&h, json!({"user": "secret-payload-value"}))
            .await
            .assert_error(401, "AuthError");
        assert!(m.contains("custom function"), "{mode}: {m}");
        assert!(!m.contains("secret-payload-value"), "{mode}: {m}");
        assert!(
            !m.contains("banned"),
            "{mode}: webhook error text not echoed: {m}"
        );
    }
}

#[tokio::test]
async fn webhook_timeout_is_an_auth_error() {
    let (base, _) = webhook().await;
    let h = start_with(config_for(&format!("{base}/slow"), None, 200)).await;
    let started = std::time::Instant::now();
    let m = login_fn(&h, json!({"user": "slow"}))
        .await
        .assert_error(401, "AuthError");
    assert!(m.contains("timed out"), "{m}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn unreachable_webhook_is_an_auth_error() {
    // A port that was free a moment ago: connection refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let h = start_with(config_for(&format!("http://{addr}/hook"), None, 2000)).await;
    let m = login_fn(&h, json!({"user": "x"}))
        .await
        .assert_error(401, "AuthError");
    assert!(m.contains("unreachable"), "{m}");
}

#[tokio::test]
async fn enabled_provider_needs_a_webhook_or_function() {
    let mut c = config();
    c.apps[0].providers.custom_function.enabled = true;
    assert!(c.validate().is_err());
    let toml = r#"
        listen = "127.0.0.1:0"
        database = "sqlite::memory:"
        [[apps]]
        id = "a"
        signing_secret = "0123456789abcdef0123456789abcdef"
        [apps.providers.custom-function]
        webhook_url = "https://auth.example.org/login-hook"
        webhook_secret = "whsec-0123456789"
    "#;
    let c = Config::from_toml_str(toml).unwrap();
    let cf = &c.apps[0].providers.custom_function;
    assert!(cf.enabled);
    assert_eq!(cf.timeout_ms, 5000);
    assert!(!format!("{c:?}").contains("whsec-0123456789"));
    // Absent table: disabled.
    let c = config();
    assert!(!c.apps[0].providers.custom_function.enabled);
}

#[tokio::test]
async fn disabled_provider_is_not_found() {
    let h = start().await;
    login_fn(&h, json!({"user": "x"}))
        .await
        .assert_error(404, "AuthProviderNotFound");
}

fn config_with_function(f: CustomFunction, timeout_ms: u64) -> Config {
    let mut c = config();
    let cf = &mut c.apps[0].providers.custom_function;
    cf.enabled = true;
    cf.timeout_ms = timeout_ms;
    cf.function = Some(f);
    c
}

#[tokio::test]
async fn in_process_function() {
    let f = CustomFunction::new(|payload: Value| async move {
        match payload["user"].as_str() {
            Some("banned") => Err("this account is banned".to_owned()),
            Some(u) if !u.is_empty() => {
                let n = payload["n"].as_i64().unwrap_or(0);
                Ok(FunctionIdentity::new(u).with_name(format!("{u}-{n}")))
            }
            _ => Err(String::new()),
        }
    });
    let h = start_with(config_with_function(f, 5000)).await;
    let raw = r#"{"user":"inproc","n":{"$numberInt":"7"}}"#;
    let url = h.app_url(APP, "/auth/providers/custom-function/login");
    let t = Tokens::from(
        &h.send(reqwest::Method::POST, &url, None, Some(raw))
            .await
            .assert_ok_json(),
    );
    let p = h.profile(&t.access).await.assert_ok_json();
    assert_eq!(
        p["data"]["name"], "inproc-7",
        "$numberInt reached the function as 7"
    );
    assert_eq!(p["identities"][0]["id"], "inproc");
    let again = Tokens::from(
        &login_fn(&h, json!({"user": "inproc"}))
            .await
            .assert_ok_json(),
    );
    assert_eq!(t.user_id, again.user_id);
    // The latest login's data replaces the earlier one.
    let p = h.profile(&t.access).await.assert_ok_json();
    assert_eq!(p["data"]["name"], "inproc-0");

    let m = login_fn(&h, json!({"user": "banned"}))
        .await
        .assert_error(401, "AuthError");
    assert_eq!(m, "this account is banned");
    let m = login_fn(&h, json!({})).await.assert_error(401, "AuthError");
    assert_eq!(m, "custom function rejected the login");
}

#[tokio::test]
async fn in_process_function_empty_id_and_timeout() {
    let f = CustomFunction::new(|payload: Value| async move {
        if payload["slow"] == true {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        Ok(FunctionIdentity::new(
            payload["user"].as_str().unwrap_or(""),
        ))
    });
    let h = start_with(config_with_function(f, 200)).await;
    login_fn(&h, json!({"user": ""}))
        .await
        .assert_error(401, "AuthError");
    let m = login_fn(&h, json!({"user": "u", "slow": true}))
        .await
        .assert_error(401, "AuthError");
    assert!(m.contains("timed out"), "{m}");
    assert!(format!("{:?}", h.server).contains("RunningServer"));
}

#[tokio::test]
async fn oversized_webhook_answers_are_failures() {
    let (base, seen) = webhook().await;
    // 1 MiB with Content-Length, then 1 MiB chunked (the read stops at 64 KiB).
    for url in [format!("{base}/huge"), chunked_huge_webhook().await] {
        let h = start_with(config_for(&url, None, 5000)).await;
        let msg = login_fn(&h, json!({"user": "big"}))
            .await
            .assert_error(401, "AuthError");
        assert!(msg.contains("webhook answer too large"), "{url}: {msg}");
    }
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn webhook_redirects_are_not_followed() {
    let (base, seen) = webhook().await;
    let h = start_with(config_for(
        &format!("{base}/redirect"),
        Some("s3cret-hook"),
        5000,
    ))
    .await;
    let msg = login_fn(&h, json!({"user": "r"}))
        .await
        .assert_error(401, "AuthError");
    assert!(msg.contains("HTTP 307"), "{msg}");
    // Only the redirecting endpoint was called: the payload went nowhere else.
    let calls = seen.lock().unwrap();
    assert_eq!(calls.len(), 1);
}
