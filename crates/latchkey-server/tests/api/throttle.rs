//! Failed-login throttling.

use std::time::Duration;

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
