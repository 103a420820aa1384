//! Wire rules: JSON errors for every client mistake, body limits, fallbacks.

use reqwest::Method;

use crate::common::*;

#[tokio::test]
async fn malformed_json_is_400_json() {
    let h = start().await;
    let url = h.app_url(APP, "/auth/providers/anon-user/login");
    for body in ["{nope", "[]", "\"str\"", "{\"a\":"] {
        let r = h.send(Method::POST, &url, None, Some(body)).await;
        r.assert_error(400, "BadRequest");
    }
}

#[tokio::test]
async fn oversized_body_is_413_json() {
    let h = start().await;
    let url = h.app_url(APP, "/auth/providers/local-userpass/login");
    let big = format!(
        "{{\"username\":\"a@b.c\",\"password\":\"{}\"}}",
        "x".repeat(70 * 1024)
    );
    let r = h.send(Method::POST, &url, None, Some(&big)).await;
    r.assert_error(413, "ReadSizeLimitExceeded");
    // Also when the length is not announced up front (chunked).
    let addr = h.server.local_addr();
    let path = format!("{PREFIX}/app/{APP}/auth/providers/local-userpass/login");
    let raw = tokio::task::spawn_blocking(move || chunked_post(addr, &path, big.as_bytes()))
        .await
        .unwrap();
    assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
    assert!(
        raw.to_ascii_lowercase()
            .contains("content-type: application/json\r\n"),
        "{raw}"
    );
    assert!(raw.contains("\"error_code\""), "{raw}");
}

/// POST `body` with `Transfer-Encoding: chunked` over a raw socket; returns the raw response.
fn chunked_post(addr: std::net::SocketAddr, path: &str, body: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    for chunk in body.chunks(8 * 1024) {
        // The server may answer and close before reading everything.
        if write!(s, "{:x}\r\n", chunk.len()).is_err()
            || s.write_all(chunk).is_err()
            || s.write_all(b"\r\n").is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn unknown_route_and_method_are_json() {
    let h = start().await;
    let r = h
        .send(
            Method::GET,
            &h.url("/api/client/v2.0/nothing-here"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status.as_u16(), 404);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert!(r.json()["error"].as_str().unwrap().contains("nothing-here"));
    let r = h
        .send(
            Method::PUT,
            &h.url(&format!("{PREFIX}/auth/profile")),
            None,
            Some(""),
        )
        .await;
    assert_eq!(r.status.as_u16(), 405);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert!(r.json()["error_code"].is_string());
}

#[tokio::test]
async fn bodyless_requests_accept_json_content_type() {
    let h = start().await;
    let t = h.anon().await;
    for (method, path, token) in [
        (Method::GET, "/auth/profile", &t.access),
        (Method::POST, "/auth/session", &t.refresh),
    ] {
        let resp = h
            .http
            .request(method, h.url(&format!("{PREFIX}{path}")))
            .bearer_auth(token)
            .header("content-type", "application/json;charset=utf-8")
            .header("accept", "application/json")
            .body("")
            .send()
            .await
            .unwrap();
        Reply::from(resp).await.assert_ok_json();
    }
    let resp = h
        .http
        .delete(h.url(&format!("{PREFIX}/auth/session")))
        .bearer_auth(&t.refresh)
        .header("content-type", "application/json;charset=utf-8")
        .body("")
        .send()
        .await
        .unwrap();
    Reply::from(resp).await.assert_no_content();
}

#[tokio::test]
async fn bad_path_encoding_is_json() {
    let h = start().await;
    let r = h
        .send(
            Method::POST,
            &h.url(&format!(
                "{PREFIX}/app/%FF%FE/auth/providers/anon-user/login"
            )),
            None,
            Some("{}"),
        )
        .await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.text);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
}

/// U+0000 anywhere in a body is refused with a 400 before any store sees it, so SQLite
/// and PostgreSQL (which stores no NUL in text or JSON) answer alike.
#[tokio::test]
async fn nul_characters_are_400_on_every_engine() {
    let h = start().await;
    let register = h.app_url(APP, "/auth/providers/local-userpass/register");
    for (url, body) in [
        (
            register.as_str(),
            r#"{"email":"nul\u0000@example.com","password":"secret123"}"#,
        ),
        (
            register.as_str(),
            r#"{"email":"ok@example.com","password":"secret\u0000123"}"#,
        ),
        (
            &h.app_url(APP, "/auth/providers/local-userpass/login"),
            r#"{"username":"a@example.com","password":"x\u0000"}"#,
        ),
        (
            &h.app_url(APP, "/auth/providers/anon-user/login"),
            r#"{"options":{"device":{"deviceId":"\u0000"}}}"#,
        ),
    ] {
        let msg = h
            .send(Method::POST, url, None, Some(body))
            .await
            .assert_error(400, "BadRequest");
        assert!(msg.contains("NUL"), "{msg}");
    }
    // Nothing was stored: the email registers cleanly afterwards.
    h.register("ok@example.com", "secret123")
        .await
        .assert_no_content();
}
