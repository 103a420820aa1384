//! Failed-login throttling.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn twenty_failures_lock_even_unknown_email() {
    let h = start().await;
    for _ in 0..20 {
        h.userpass("ghost@example.com", "wrong-password")
            .await
            .assert_error(401, "InvalidPassword");
    }
    let r = h.userpass("ghost@example.com", "wrong-password").await;
    r.assert_error(429, "TooManyRequests");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 900, "{retry}");
    // Other identifiers are unaffected; anonymous logins are never limited.
    h.userpass("other@example.com", "wrong-password")
        .await
        .assert_error(401, "InvalidPassword");
    h.anon().await;
    // After the cool-down, attempts are allowed again.
    h.server.clock().advance(Duration::from_secs(901));
    h.userpass("ghost@example.com", "wrong-password")
        .await
        .assert_error(401, "InvalidPassword");
}

#[tokio::test]
async fn success_resets_the_counter() {
    let h = start().await;
    h.register("real@example.com", "secret123")
        .await
        .assert_no_content();
    for _ in 0..19 {
        h.userpass("real@example.com", "wrong-password")
            .await
            .assert_error(401, "InvalidPassword");
    }
    h.userpass("real@example.com", "secret123")
        .await
        .assert_ok_json();
    for _ in 0..19 {
        h.userpass("real@example.com", "wrong-password")
            .await
            .assert_error(401, "InvalidPassword");
    }
    h.userpass("real@example.com", "secret123")
        .await
        .assert_ok_json();
}

#[tokio::test]
async fn per_ip_limit() {
    let mut c = config();
    c.throttle.max_failures_per_ip = 5;
    let h = start_with(c).await;
    for i in 0..5 {
        h.userpass(&format!("u{i}@example.com"), "wrong-password")
            .await
            .assert_error(401, "InvalidPassword");
    }
    let r = h.userpass("fresh@example.com", "wrong-password").await;
    r.assert_error(429, "TooManyRequests");
    assert!(r.headers.contains_key("retry-after"));
    h.anon().await;
}

#[tokio::test]
async fn forwarded_for_is_used_only_when_trusted() {
    async fn fail_from(h: &Harness, ip: &str, email: &str) -> Reply {
        let url = h.app_url(APP, "/auth/providers/local-userpass/login");
        let resp = h
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-forwarded-for", format!("203.0.113.9, {ip}"))
            .body(format!(
                r#"{{"username":"{email}","password":"wrong-password"}}"#
            ))
            .send()
            .await
            .unwrap();
        Reply::from(resp).await
    }
    for trusted in [false, true] {
        let mut c = config();
        c.throttle.max_failures_per_ip = 2;
        c.trust_forwarded_for = trusted;
        let h = start_with(c).await;
        fail_from(&h, "10.0.0.1", "a@example.com")
            .await
            .assert_error(401, "InvalidPassword");
        fail_from(&h, "10.0.0.2", "b@example.com")
            .await
            .assert_error(401, "InvalidPassword");
        let third = fail_from(&h, "10.0.0.3", "c@example.com").await;
        if trusted {
            // Three different (forwarded) client IPs: no limit.
            third.assert_error(401, "InvalidPassword");
        } else {
            // The header is ignored: all three come from 127.0.0.1.
            third.assert_error(429, "TooManyRequests");
        }
    }
}

/// A failed `local-userpass` login through a raw (possibly percent-encoded) path.
async fn fail_at(h: &Harness, path: &str, email: &str) -> Reply {
    let url = h.url(&format!("{PREFIX}{path}"));
    let body = json!({"username": email, "password": "wrong-password"}).to_string();
    h.send(Method::POST, &url, None, Some(&body)).await
}

#[tokio::test]
async fn percent_encoded_paths_share_the_lockout() {
    let h = start().await;
    let plain = format!("/app/{APP}/auth/providers/local-userpass/login");
    for _ in 0..20 {
        fail_at(&h, &plain, "victim@example.com")
            .await
            .assert_error(401, "InvalidPassword");
    }
    // axum decodes these to the same app and provider: they must be refused too.
    let encoded_app = APP.replace('-', "%2D");
    assert_ne!(encoded_app, APP);
    for path in [
        format!("/app/{APP}/auth/providers/local%2Duserpass/login"),
        format!("/app/{encoded_app}/auth/providers/local-userpass/login"),
        format!("/app/{encoded_app}/auth/providers/local%2duserpass/login"),
        format!("/app/{APP}/auth/providers/%6Cocal-userpass/login"),
    ] {
        fail_at(&h, &path, "victim@example.com")
            .await
            .assert_error(429, "TooManyRequests");
    }
    // A JSON body spelling the username with an escape is the same username.
    let url = h.url(&format!("{PREFIX}{plain}"));
    let body = r#"{"username":"victim\u0040example.com","password":"wrong-password"}"#;
    h.send(Method::POST, &url, None, Some(body))
        .await
        .assert_error(429, "TooManyRequests");
}

#[tokio::test]
async fn overlong_usernames_are_refused_before_hashing() {
    let mut c = config();
    c.throttle.max_failures_per_ip = 1;
    let h = start_with(c).await;
    let long = format!("{}@example.com", "x".repeat(250));
    assert!(long.len() > 254);
    for _ in 0..3 {
        let msg = h
            .userpass(&long, "wrong-password")
            .await
            .assert_error(400, "BadRequest");
        assert!(msg.contains("254"), "{msg}");
    }
    // A 400 is not a failure: the per-IP limit (1) is untouched.
    h.userpass("a@example.com", "wrong-password")
        .await
        .assert_error(401, "InvalidPassword");
}

async fn fail_from(h: &Harness, ip: &str, email: &str, password: &str) -> Reply {
    let url = h.app_url(APP, "/auth/providers/local-userpass/login");
    let resp = h
        .http
        .post(url)
        .header("content-type", "application/json")
        .header("x-forwarded-for", ip)
        .body(json!({"username": email, "password": password}).to_string())
        .send()
        .await
        .unwrap();
    Reply::from(resp).await
}

#[tokio::test]
async fn ipv6_clients_are_limited_per_64() {
    let mut c = config();
    c.throttle.max_failures_per_ip = 2;
    c.trust_forwarded_for = true;
    let h = start_with(c).await;
    fail_from(&h, "2001:db8:0:1::1", "a@example.com", "wrong-password")
        .await
        .assert_error(401, "InvalidPassword");
    fail_from(
        &h,
        "2001:db8:0:1:ffff::2",
        "b@example.com",
        "wrong-password",
    )
    .await
    .assert_error(401, "InvalidPassword");
    // Same /64, new address: throttled. Another /64: not.
    fail_from(
        &h,
        "2001:db8:0:1:1234:5678:9abc:def0",
        "c@example.com",
        "wrong-password",
    )
    .await
    .assert_error(429, "TooManyRequests");
    fail_from(&h, "2001:db8:0:2::1", "c@example.com", "wrong-password")
        .await
        .assert_error(401, "InvalidPassword");
}

#[tokio::test]
async fn attacker_cannot_lock_out_the_owner_network_but_all_ips_cap_holds() {
    let mut c = config();
    c.trust_forwarded_for = true;
    c.throttle.max_failures_per_identifier_all_ips = 30;
    let h = start_with(c).await;
    h.register("owner@example.com", "secret123")
        .await
        .assert_no_content();
    for _ in 0..20 {
        fail_from(&h, "198.51.100.7", "owner@example.com", "wrong-password")
            .await
            .assert_error(401, "InvalidPassword");
    }
    fail_from(&h, "198.51.100.7", "owner@example.com", "secret123")
        .await
        .assert_error(429, "TooManyRequests");
    // The owner, from another network, still logs in.
    fail_from(&h, "203.0.113.5", "owner@example.com", "secret123")
        .await
        .assert_ok_json();
    // Distributed guessing: 30 failures from all clients together lock the email.
    for i in 0..10 {
        fail_from(
            &h,
            &format!("192.0.2.{i}"),
            "owner@example.com",
            "wrong-password",
        )
        .await
        .assert_error(401, "InvalidPassword");
    }
    let r = fail_from(&h, "203.0.113.5", "owner@example.com", "secret123").await;
    r.assert_error(429, "TooManyRequests");
    assert!(r.headers.contains_key("retry-after"));
    h.server.clock().advance(Duration::from_secs(901));
    fail_from(&h, "203.0.113.5", "owner@example.com", "secret123")
        .await
        .assert_ok_json();
}

async fn flow(h: &Harness, suffix: &str, body: serde_json::Value) -> Reply {
    let url = h.app_url(APP, &format!("/auth/providers/local-userpass/{suffix}"));
    h.send(Method::POST, &url, None, Some(&body.to_string()))
        .await
}

#[tokio::test]
async fn confirmation_and_reset_messages_are_limited_per_email() {
    let h = start().await;
    h.register("bomb@example.com", "secret123")
        .await
        .assert_no_content();
    for _ in 0..5 {
        flow(&h, "reset/send", json!({"email": "bomb@example.com"}))
            .await
            .assert_no_content();
    }
    for suffix in ["reset/send", "confirm/send", "reset/call", "confirm/call"] {
        let r = flow(
            &h,
            suffix,
            json!({"email": "bomb@example.com", "password": "secret456"}),
        )
        .await;
        r.assert_error(429, "TooManyRequests");
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry > 0 && retry <= 900, "{retry}");
    }
    // Registering the same email again is refused too; other emails are fine.
    h.register("bomb@example.com", "secret123")
        .await
        .assert_error(429, "TooManyRequests");
    h.register("other@example.com", "secret123")
        .await
        .assert_no_content();
    flow(&h, "reset/send", json!({"email": "other@example.com"}))
        .await
        .assert_no_content();
    h.server.clock().advance(Duration::from_secs(901));
    flow(&h, "reset/send", json!({"email": "bomb@example.com"}))
        .await
        .assert_no_content();
}

#[tokio::test]
async fn message_routes_are_limited_per_ip() {
    let mut c = config();
    c.throttle.max_messages_per_ip = 3;
    let h = start_with(c).await;
    for i in 0..3 {
        h.register(&format!("u{i}@example.com"), "secret123")
            .await
            .assert_no_content();
    }
    flow(&h, "reset/send", json!({"email": "u0@example.com"}))
        .await
        .assert_error(429, "TooManyRequests");
    h.register("u9@example.com", "secret123")
        .await
        .assert_error(429, "TooManyRequests");
    // Token routes and logins are not message routes.
    h.userpass("u0@example.com", "secret123")
        .await
        .assert_ok_json();
}

/// Attempts are reserved before the password check: 150 wrong passwords sent at once
/// for one email from one client let exactly the limit through to a 401; every other
/// one is refused 429 with `Retry-After`, on either engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_failures_never_pass_the_limit() {
    const LIMIT: u32 = 5;
    let mut c = config();
    c.throttle.max_failures_per_identifier = LIMIT;
    let h = std::sync::Arc::new(start_with(c).await);
    h.register("target@example.com", "secret123")
        .await
        .assert_no_content();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..150 {
        let h = h.clone();
        tasks.spawn(async move { h.userpass("target@example.com", "wrong-password").await });
    }
    let (mut unauthorized, mut throttled) = (0, 0);
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.unwrap();
        match reply.status.as_u16() {
            401 => {
                reply.assert_error(401, "InvalidPassword");
                unauthorized += 1;
            }
            429 => {
                reply.assert_error(429, "TooManyRequests");
                assert!(reply.headers.contains_key("retry-after"));
                throttled += 1;
            }
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    assert_eq!(unauthorized, LIMIT, "401 answers");
    assert_eq!(throttled, 150 - LIMIT, "429 answers");
    // Even the right password is refused now: the pair is locked.
    h.userpass("target@example.com", "secret123")
        .await
        .assert_error(429, "TooManyRequests");
}
