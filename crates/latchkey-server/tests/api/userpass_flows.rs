//! local-userpass confirmation and password reset: email (outbox), webhooks, tokens.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use latchkey_server::Config;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

pub(crate) const ADMIN: &str = "admin-token-0123456789abcdef";

/// Config with confirmation by email (no auto-confirm) and a known admin token.
pub(crate) fn email_config() -> Config {
    let mut c = config();
    c.admin_token = Some(ADMIN.into());
    let up = &mut c.apps[0].providers.local_userpass;
    up.auto_confirm = false;
    up.confirmation_url = Some("https://app.example/confirm".into());
    up.reset_url = Some("https://app.example/reset".into());
    c
}

pub(crate) async fn up(h: &Harness, suffix: &str, body: Value) -> Reply {
    let url = h.app_url(APP, &format!("/auth/providers/local-userpass/{suffix}"));
    h.send(Method::POST, &url, None, Some(&body.to_string()))
        .await
}

pub(crate) async fn outbox(h: &Harness) -> Vec<Value> {
    let url = h.url(&format!("/admin/v1/apps/{APP}/outbox"));
    h.send(Method::GET, &url, Some(ADMIN), None)
        .await
        .assert_ok_json()
        .as_array()
        .unwrap()
        .clone()
}

/// One recorded webhook call: the JSON body and the signature header.
pub(crate) type Call = (Value, Option<String>);

/// A webhook: records (body, signature header) and answers `answer`.
#[derive(Clone)]
pub(crate) struct Hook {
    pub(crate) url: String,
    pub(crate) calls: Arc<Mutex<Vec<Call>>>,
    /// The `X-Latchkey-Timestamp` header of each call.
    pub(crate) stamps: Arc<Mutex<Vec<Option<String>>>>,
    pub(crate) answer: Arc<Mutex<Value>>,
    pub(crate) delay: Arc<Mutex<Duration>>,
}

async fn hook_handler(
    State(hook): State<Hook>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let sig = headers
        .get("x-latchkey-signature")
        .map(|v| v.to_str().unwrap().to_owned());
    let stamp = headers
        .get("x-latchkey-timestamp")
        .map(|v| v.to_str().unwrap().to_owned());
    hook.stamps.lock().unwrap().push(stamp);
    hook.calls.lock().unwrap().push((body, sig));
    let delay = *hook.delay.lock().unwrap();
    tokio::time::sleep(delay).await;
    Json(hook.answer.lock().unwrap().clone())
}

pub(crate) async fn hook(answer: Value) -> Hook {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = Hook {
        url: format!("http://{}/hook", listener.local_addr().unwrap()),
        calls: Arc::default(),
        stamps: Arc::default(),
        answer: Arc::new(Mutex::new(answer)),
        delay: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook_handler))
        .with_state(hook.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    hook
}

#[tokio::test]
async fn email_confirmation_flow() {
    let h = start_with(email_config()).await;
    up(
        &h,
        "register",
        json!({"email": "a@example.com", "password": "secret123"}),
    )
    .await
    .assert_no_content();
    // Pending credentials cannot log in.
    h.userpass("a@example.com", "secret123")
        .await
        .assert_error(401, "AuthError");
    let msgs = outbox(&h).await;
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m["to"], "a@example.com");
    assert_eq!(m["kind"], "confirm");
    let (token, token_id) = (
        m["token"].as_str().unwrap(),
        m["token_id"].as_str().unwrap(),
    );
    assert!(token.len() >= 32 && token_id.len() >= 32);
    assert!(m["body"].as_str().unwrap().contains(&format!(
        "https://app.example/confirm?token={token}&tokenId={token_id}"
    )));
    assert!(m["subject"].is_string() && m["created_at"].is_i64());
    // A confirm token is no reset token.
    up(
        &h,
        "reset",
        json!({"password": "newpass123", "token": token, "tokenId": token_id}),
    )
    .await
    .assert_error(400, "UserpassTokenInvalid");
    // Bad pair.
    let msg = up(&h, "confirm", json!({"token": "nope", "tokenId": token_id}))
        .await
        .assert_error(400, "UserpassTokenInvalid");
    assert_eq!(msg, "invalid token data");
    up(&h, "confirm", json!({"token": token, "tokenId": token_id}))
        .await
        .assert_no_content();
    // Single use.
    up(&h, "confirm", json!({"token": token, "tokenId": token_id}))
        .await
        .assert_error(400, "UserpassTokenInvalid");
    h.userpass("a@example.com", "secret123")
        .await
        .assert_ok_json();
}

#[tokio::test]
async fn confirm_send_errors_and_new_token_invalidates_old() {
    let h = start_with(email_config()).await;
    let msg = up(&h, "confirm/send", json!({"email": "nobody@example.com"}))
        .await
        .assert_error(404, "UserNotFound");
    assert_eq!(msg, "user not found");
    up(
        &h,
        "register",
        json!({"email": "b@example.com", "password": "secret123"}),
    )
    .await
    .assert_no_content();
    up(&h, "confirm/send", json!({"email": "b@example.com"}))
        .await
        .assert_no_content();
    let msgs = outbox(&h).await;
    assert_eq!(msgs.len(), 2);
    // The first token no longer works; the second does.
    up(
        &h,
        "confirm",
        json!({"token": msgs[0]["token"], "tokenId": msgs[0]["token_id"]}),
    )
    .await
    .assert_error(400, "UserpassTokenInvalid");
    up(
        &h,
        "confirm",
        json!({"token": msgs[1]["token"], "tokenId": msgs[1]["token_id"]}),
    )
    .await
    .assert_no_content();
    let msg = up(&h, "confirm/send", json!({"email": "b@example.com"}))
        .await
        .assert_error(409, "UserAlreadyConfirmed");
    assert_eq!(msg, "already confirmed");
    // Without a webhook, confirm/call is a clear 400.
    up(&h, "confirm/call", json!({"email": "b@example.com"}))
        .await
        .assert_error(400, "BadRequest");
    // An Authorization header is ignored.
    let url = h.app_url(APP, "/auth/providers/local-userpass/confirm/send");
    h.send(
        Method::POST,
        &url,
        Some("garbage"),
        Some(r#"{"email":"nobody@example.com"}"#),
    )
    .await
    .assert_error(404, "UserNotFound");
}

#[tokio::test]
async fn tokens_expire_after_30_minutes_and_are_stored_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = email_config();
    c.database = format!("sqlite://{}", dir.path().join("db.sqlite").display()).into();
    let h = start_with(c).await;
    up(
        &h,
        "register",
        json!({"email": "c@example.com", "password": "secret123"}),
    )
    .await
    .assert_no_content();
    let m = outbox(&h).await.remove(0);
    let (token, token_id) = (
        m["token"].as_str().unwrap(),
        m["token_id"].as_str().unwrap(),
    );
    // The tokens table holds SHA-256 hashes only.
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("db.sqlite").display()
    ))
    .await
    .unwrap();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT token_hash, token_id_hash FROM userpass_tokens")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    use sha2::Digest;
    assert_eq!(
        rows[0].0,
        hex::encode(sha2::Sha256::digest(token.as_bytes()))
    );
    assert_eq!(
        rows[0].1,
        hex::encode(sha2::Sha256::digest(token_id.as_bytes()))
    );
    pool.close().await;
    h.server.clock().advance(Duration::from_secs(31 * 60));
    up(&h, "confirm", json!({"token": token, "tokenId": token_id}))
        .await
        .assert_error(400, "UserpassTokenInvalid");
}

#[tokio::test]
async fn password_reset_by_email_revokes_sessions() {
    let mut c = email_config();
    c.apps[0].providers.local_userpass.auto_confirm = true;
    let h = start_with(c).await;
    let t = h.signed_up("r@example.com", "old-password").await;
    up(&h, "reset/send", json!({"email": "nobody@example.com"}))
        .await
        .assert_error(404, "UserNotFound");
    up(&h, "reset/send", json!({"email": "r@example.com"}))
        .await
        .assert_no_content();
    let m = outbox(&h).await.remove(0);
    assert_eq!(m["kind"], "reset");
    assert!(
        m["body"]
            .as_str()
            .unwrap()
            .contains("https://app.example/reset?token=")
    );
    let (token, token_id) = (m["token"].clone(), m["token_id"].clone());
    // A reset token does not confirm.
    up(&h, "confirm", json!({"token": token, "tokenId": token_id}))
        .await
        .assert_error(400, "UserpassTokenInvalid");
    // Password length is checked without burning the token.
    up(
        &h,
        "reset",
        json!({"password": "short", "token": token, "tokenId": token_id}),
    )
    .await
    .assert_error(400, "BadRequest");
    up(
        &h,
        "reset",
        json!({"password": "new-password", "token": "x", "tokenId": token_id}),
    )
    .await
    .assert_error(400, "UserpassTokenInvalid");
    up(
        &h,
        "reset",
        json!({"password": "new-password", "token": token, "tokenId": token_id}),
    )
    .await
    .assert_no_content();
    up(
        &h,
        "reset",
        json!({"password": "new-password2", "token": token, "tokenId": token_id}),
    )
    .await
    .assert_error(400, "UserpassTokenInvalid");
    h.refresh(&t.refresh)
        .await
        .assert_error(401, "InvalidSession");
    h.userpass("r@example.com", "old-password")
        .await
        .assert_error(401, "InvalidPassword");
    h.userpass("r@example.com", "new-password")
        .await
        .assert_ok_json();
}

#[tokio::test]
async fn confirmation_webhook_success_pending_fail_and_signature() {
    let hk = hook(json!({"status": "success"})).await;
    let mut c = email_config();
    let upc = &mut c.apps[0].providers.local_userpass;
    upc.confirmation_webhook_url = Some(hk.url.clone());
    upc.webhook_secret = Some("hook-secret".into());
    let h = start_with(c).await;

    up(
        &h,
        "register",
        json!({"email": "s@example.com", "password": "secret123"}),
    )
    .await
    .assert_no_content();
    h.userpass("s@example.com", "secret123")
        .await
        .assert_ok_json();
    {
        let calls = hk.calls.lock().unwrap();
        let (body, sig) = &calls[0];
        assert_eq!(body["username"], "s@example.com");
        assert!(body["token"].is_string() && body["tokenId"].is_string());
        // HMAC-SHA256 over "<timestamp>.<raw body>" (serde_json serializes the same
        // bytes).
        let stamp = hk.stamps.lock().unwrap()[0]
            .clone()
            .expect("timestamp header");
        let secs: i64 = stamp.parse().unwrap();
        assert!((secs - h.server.clock().now_secs()).abs() <= 5, "{secs}");
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"hook-secret").unwrap();
        mac.update(format!("{stamp}.{body}").as_bytes());
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(sig.as_deref(), Some(expected.as_str()));
    }

    *hk.answer.lock().unwrap() = json!({"status": "pending"});
    up(
        &h,
        "register",
        json!({"email": "p@example.com", "password": "secret123"}),
    )
    .await
    .assert_no_content();
    h.userpass("p@example.com", "secret123")
        .await
        .assert_error(401, "AuthError");
    // The client finishes with confirm {token, tokenId} from the function.
    let (token, token_id) = {
        let calls = hk.calls.lock().unwrap();
        let b = &calls.last().unwrap().0;
        (b["token"].clone(), b["tokenId"].clone())
    };
    up(&h, "confirm", json!({"token": token, "tokenId": token_id}))
        .await
        .assert_no_content();
    h.userpass("p@example.com", "secret123")
        .await
        .assert_ok_json();

    *hk.answer.lock().unwrap() = json!({"status": "fail"});
    let msg = up(
        &h,
        "register",
        json!({"email": "f@example.com", "password": "secret123"}),
    )
    .await
    .assert_error(400, "BadRequest");
    assert_eq!(msg, "failed to confirm user \"f@example.com\"");
    // No credentials were kept: the email can register again.
    up(&h, "confirm/call", json!({"email": "f@example.com"}))
        .await
        .assert_error(404, "UserNotFound");

    // confirm/call re-runs the function.
    *hk.answer.lock().unwrap() = json!({"status": "pending"});
    up(
        &h,
        "register",
        json!({"email": "q@example.com", "password": "secret123"}),
    )
    .await
    .assert_no_content();
    *hk.answer.lock().unwrap() = json!({"status": "success"});
    up(&h, "confirm/call", json!({"email": "q@example.com"}))
        .await
        .assert_no_content();
    up(&h, "confirm/call", json!({"email": "q@example.com"}))
        .await
        .assert_error(409, "UserAlreadyConfirmed");
    h.userpass("q@example.com", "secret123")
        .await
        .assert_ok_json();
    // No email was queued in function mode.
    assert!(outbox(&h).await.is_empty());
}

#[tokio::test]
async fn reset_webhook_modes() {
    let hk = hook(json!({"status": "success"})).await;
    let mut c = email_config();
    c.apps[0].providers.local_userpass.auto_confirm = true;
    c.apps[0].providers.local_userpass.reset_webhook_url = Some(hk.url.clone());
    let h = start_with(c).await;
    let t = h.signed_up("w@example.com", "old-password").await;

    let msg = up(&h, "reset/send", json!({"email": "w@example.com"}))
        .await
        .assert_error(400, "BadRequest");
    assert_eq!(msg, "reset is handled by a function");
    up(
        &h,
        "reset/call",
        json!({"email": "nobody@example.com", "password": "new-password", "arguments": []}),
    )
    .await
    .assert_error(404, "UserNotFound");

    let args = json!([{"$numberInt": "42"}, "x"]);
    up(
        &h,
        "reset/call",
        json!({"email": "w@example.com", "password": "new-password", "arguments": args}),
    )
    .await
    .assert_no_content();
    {
        let calls = hk.calls.lock().unwrap();
        let b = &calls.last().unwrap().0;
        assert_eq!(b["username"], "w@example.com");
        assert_eq!(b["password"], "new-password");
        assert_eq!(b["currentPasswordValid"], false);
        assert_eq!(b["arguments"], json!([42, "x"]));
        assert!(b["token"].is_string() && b["tokenId"].is_string());
        assert!(calls.last().unwrap().1.is_none(), "no secret, no signature");
    }
    h.refresh(&t.refresh)
        .await
        .assert_error(401, "InvalidSession");
    h.userpass("w@example.com", "new-password")
        .await
        .assert_ok_json();

    *hk.answer.lock().unwrap() = json!({"status": "pending"});
    up(
        &h,
        "reset/call",
        json!({"email": "w@example.com", "password": "other-password", "arguments": []}),
    )
    .await
    .assert_no_content();
    h.userpass("w@example.com", "new-password")
        .await
        .assert_ok_json();

    *hk.answer.lock().unwrap() = json!({"status": "fail"});
    let msg = up(
        &h,
        "reset/call",
        json!({"email": "w@example.com", "password": "other-password", "arguments": []}),
    )
    .await
    .assert_error(400, "BadRequest");
    assert_eq!(msg, "failed to reset password for user \"w@example.com\"");
    h.userpass("w@example.com", "new-password")
        .await
        .assert_ok_json();
}

#[tokio::test]
async fn reset_call_without_webhook_is_400() {
    let h = start_with(email_config()).await;
    up(
        &h,
        "reset/call",
        json!({"email": "x@example.com", "password": "new-password", "arguments": []}),
    )
    .await
    .assert_error(400, "BadRequest");
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_request() {
    let hk = hook(json!({"status": "success"})).await;
    *hk.delay.lock().unwrap() = Duration::from_millis(800);
    let mut c = email_config();
    c.apps[0].providers.local_userpass.confirmation_webhook_url = Some(hk.url.clone());
    let h = start_with(c).await;
    let url = h.app_url(APP, "/auth/providers/local-userpass/register");
    let http = h.http.clone();
    let slow = tokio::spawn(async move {
        http.post(url)
            .header("content-type", "application/json")
            .body(r#"{"email":"slow@example.com","password":"secret123"}"#)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    h.server.shutdown().await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(slow.await.unwrap().unwrap(), 204);
}

/// A minimal SMTP server on 127.0.0.1 that records each message's DATA.
async fn fake_smtp() -> (u16, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let data = Arc::new(Mutex::new(Vec::new()));
    let store = data.clone();
    tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            let store = store.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 fake ESMTP\r\n").await.unwrap();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        w.write_all(b"250-fake\r\n250 8BITMIME\r\n").await.unwrap();
                    } else if upper.starts_with("DATA") {
                        w.write_all(b"354 go ahead\r\n").await.unwrap();
                        let mut msg = String::new();
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                            msg.push_str(&l);
                            msg.push('\n');
                        }
                        store.lock().unwrap().push(msg);
                        w.write_all(b"250 queued\r\n").await.unwrap();
                    } else if upper.starts_with("QUIT") {
                        w.write_all(b"221 bye\r\n").await.unwrap();
                        break;
                    } else {
                        w.write_all(b"250 ok\r\n").await.unwrap();
                    }
                }
            });
        }
    });
    (port, data)
}

#[tokio::test]
async fn messages_are_also_sent_over_smtp() {
    let (port, data) = fake_smtp().await;
    let mut c = email_config();
    c.smtp = Some(
        toml::from_str(&format!(
            "host = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"auth@example.com\""
        ))
        .unwrap(),
    );
    let h = start_with(c).await;
    up(
        &h,
        "register",
        json!({"email": "mail@example.com", "password": "secret123"}),
    )
    .await
    .assert_no_content();
    let m = outbox(&h).await.remove(0);
    let token = m["token"].as_str().unwrap().to_owned();
    let mut sent = None;
    for _ in 0..100 {
        if let Some(s) = data.lock().unwrap().first().cloned() {
            sent = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = sent.expect("SMTP message received");
    assert!(sent.contains("To: mail@example.com"), "{sent}");
    assert!(sent.contains("From: auth@example.com"), "{sent}");
    // Quoted-printable may wrap long lines: compare without soft breaks.
    let unwrapped = sent.replace("=\n", "");
    assert!(unwrapped.contains(&token), "{sent}");
}

#[tokio::test]
async fn smtp_failure_does_not_fail_the_request() {
    let mut c = email_config();
    c.smtp = Some(
        toml::from_str("host = \"127.0.0.1\"\nport = 1\ntls = \"none\"\nfrom = \"a@example.com\"")
            .unwrap(),
    );
    let h = start_with(c).await;
    up(
        &h,
        "register",
        json!({"email": "x@example.com", "password": "secret123"}),
    )
    .await
    .assert_no_content();
    assert_eq!(outbox(&h).await.len(), 1);
}

#[test]
fn config_keys_parse_and_validate() {
    let base = format!(
        "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite::memory:\"\n{{top}}\n[[apps]]\nid = \"a\"\nsigning_secret = \"{SECRET}\"\n[apps.providers.local-userpass]\n{{up}}"
    );
    let cfg = |top: &str, up: &str| {
        Config::from_toml_str(&base.replace("{top}", top).replace("{up}", up))
    };
    let c = cfg(
        "outbox = false\ntrust_forwarded_for = true",
        "confirmation_webhook_url = \"http://127.0.0.1:9/c\"\nreset_webhook_url = \"https://h/r\"\n\
         webhook_secret = \"s3cr3t-value\"\nconfirmation_url = \"https://a/c\"\nreset_url = \"https://a/r\"\n\
         email_from = \"x@y.z\"\n[smtp]\nhost = \"mail\"\nusername = \"latchkey\"\npassword = \"smtp-pass-value\"\nfrom = \"a@b.c\"\n\
         [throttle]\nmax_failures_per_ip = 7",
    )
    .unwrap();
    assert!(!c.outbox && c.trust_forwarded_for);
    let up = &c.apps[0].providers.local_userpass;
    assert_eq!(up.reset_url.as_deref(), Some("https://a/r"));
    let smtp = c.smtp.as_ref().unwrap();
    assert_eq!((smtp.port, smtp.tls.as_str()), (587, "starttls"));
    assert_eq!(c.throttle.max_failures_per_ip, 7);
    assert_eq!(c.throttle.max_failures_per_identifier, 20);
    assert_eq!(c.throttle.lockout_secs, 900);
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("s3cr3t-value") && !debug.contains("smtp-pass-value"),
        "{debug}"
    );
    // Defaults.
    let d = cfg("", "").unwrap();
    assert!(d.outbox && !d.trust_forwarded_for && d.smtp.is_none());
    // Invalid values.
    assert!(cfg("", "reset_url = \"ftp://x\"").is_err());
    assert!(cfg("[smtp]\nhost = \"m\"\nfrom = \"a@b.c\"\ntls = \"ssl\"", "").is_err());
    assert!(cfg("[throttle]\nlockout_secs = 0", "").is_err());
}

#[tokio::test]
async fn reset_webhook_redirects_are_not_followed() {
    // The real hook, and an endpoint redirecting (307, which re-POSTs) to it.
    let hk = hook(json!({"status": "success"})).await;
    let target = hk.url.clone();
    let redirect = axum::Router::new().route(
        "/moved",
        axum::routing::post(move || {
            let target = target.clone();
            async move { axum::response::Redirect::temporary(&target) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let moved = format!("http://{}/moved", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, redirect).await.unwrap() });

    let mut c = email_config();
    c.apps[0].providers.local_userpass.auto_confirm = true;
    c.apps[0].providers.local_userpass.reset_webhook_url = Some(moved);
    let h = start_with(c).await;
    h.register("m@example.com", "old-password")
        .await
        .assert_no_content();
    let msg = up(
        &h,
        "reset/call",
        json!({"email": "m@example.com", "password": "new-password", "arguments": []}),
    )
    .await
    .assert_error(400, "BadRequest");
    assert_eq!(msg, "failed to reset password for user \"m@example.com\"");
    // The payload (with the new password) never reached the redirect target.
    assert!(hk.calls.lock().unwrap().is_empty());
    h.userpass("m@example.com", "old-password")
        .await
        .assert_ok_json();
}
