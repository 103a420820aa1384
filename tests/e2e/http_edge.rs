//! The HTTP edge under attack, over real sockets: slow and idle clients (slowloris),
//! connection floods, the JSON error shape of every error whoever produces it, and
//! CORS (issue 10, items 2, 5 and 6). Each `attack_*` test is one row of the attack
//! table.

use std::net::SocketAddr;
use std::time::Duration;

use latchkey_server::{Config, HttpConfig};
use latchkey_testkit::TestServer;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest a test waits for the server to close a connection or answer: far
/// above the one-second timeouts configured here, so a pass never depends on timing.
const GUARD: Duration = Duration::from_secs(60);

/// A server whose `[http]` timeouts are all `long` seconds except those set by `f`.
async fn server_with(f: impl FnOnce(&mut HttpConfig)) -> TestServer {
    let mut config = TestServer::config();
    config.http = HttpConfig {
        header_read_timeout_secs: 60,
        body_read_timeout_secs: 60,
        idle_timeout_secs: 60,
        ..HttpConfig::default()
    };
    f(&mut config.http);
    TestServer::start_with(config).await
}

fn addr(server: &TestServer) -> SocketAddr {
    server
        .url()
        .trim_start_matches("http://")
        .parse()
        .expect("test server address")
}

fn login_path(server: &TestServer, provider: &str) -> String {
    format!(
        "/api/client/v2.0/app/{}/auth/providers/{provider}/login",
        server.app_id()
    )
}

/// Read until the server closes the connection (EOF or reset); returns what was read.
/// Fails the test if the connection is still open after [`GUARD`].
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(GUARD, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    out
}

/// A parsed HTTP/1.1 answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// Lower-cased names.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn parse(raw: &[u8]) -> Answer {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no complete answer: {text:?}"));
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Answer {
            status,
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn has_cors_headers(&self) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.starts_with("access-control-"))
    }

    /// The answer is an error of protocol.md §8.1 with this status and code:
    /// `Content-Type: application/json` exactly, `error` and `error_code` strings.
    fn assert_json_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        let body: Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"));
        assert!(body["error"].is_string(), "{body}");
        assert_eq!(body["error_code"], code, "{body}");
        body
    }
}

/// Send `request` (raw bytes, ending the connection after it) and parse the answer.
async fn exchange(server: &TestServer, request: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr(server)).await.unwrap();
    // The server may answer and close before reading everything (e.g. 431, 413).
    let _ = stream.write_all(request).await;
    Answer::parse(&read_until_closed(&mut stream).await)
}

/// A request with `Connection: close` and these extra header lines and body.
fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

/// An anonymous login over a fresh connection succeeds.
async fn assert_served(server: &TestServer) {
    let req = request("POST", &login_path(server, "anon-user"), &[JSON], "{}");
    let answer = tokio::time::timeout(GUARD, exchange(server, &req))
        .await
        .expect("a real request is served");
    assert_eq!(answer.status, 200, "{answer:?}");
}

// ---- Item 2: slow and idle clients, connection floods ----

#[tokio::test]
async fn attack_slowloris_headers_closed() {
    let server = server_with(|h| h.header_read_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
    stream
        .write_all(b"GET /api/client/v2.0/app/x/location HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    // Closed by the header-read timeout (the others are 60 s), without an answer.
    let got = read_until_closed(&mut stream).await;
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    assert_served(&server).await;
}

#[tokio::test]
async fn attack_slowloris_trickled_headers_closed() {
    let server = server_with(|h| h.header_read_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
    stream
        .write_all(b"GET /api/client/v2.0/app/x/location HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    // One header byte every 100 ms: steady progress does not extend the deadline.
    let closed = tokio::time::timeout(GUARD, async {
        let mut buf = [0u8; 64];
        loop {
            if stream.write_all(b"X").await.is_err() {
                return;
            }
            match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => return,
                Ok(Ok(n)) => panic!("unexpected answer {:?}", &buf[..n]),
                Err(_still_open) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a trickling client kept its connection");
}

#[tokio::test]
async fn attack_slow_body_closed() {
    let server = server_with(|h| h.body_read_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"user",
        login_path(&server, "anon-user")
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // 408 in the JSON shape, then the connection is closed.
    let answer = Answer::parse(&read_until_closed(&mut stream).await);
    answer.assert_json_error(408, "BadRequest");
    assert_eq!(answer.header("connection"), Some("close"));
    assert_served(&server).await;
}

#[tokio::test]
async fn attack_idle_keepalive_closed() {
    let server = server_with(|h| h.idle_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
    let location = format!(
        "GET /api/client/v2.0/app/{}/location HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        server.app_id()
    );
    stream.write_all(location.as_bytes()).await.unwrap();
    // The answer, then silence: the idle timeout closes the kept-alive connection.
    let got = read_until_closed(&mut stream).await;
    let answer = Answer::parse(&got);
    assert_eq!(answer.status, 200, "{answer:?}");
    let json: Value = serde_json::from_slice(&answer.body).expect("one whole answer");
    assert!(json["hostname"].is_string(), "{json}");
}

#[tokio::test]
async fn keepalive_connection_serves_several_requests() {
    // The idle timeout runs between requests, not across them.
    let server = server_with(|_| {}).await;
    let mut stream = TcpStream::connect(addr(&server)).await.unwrap();
    let location = format!(
        "GET /api/client/v2.0/app/{}/location HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        server.app_id()
    );
    for _ in 0..3 {
        stream.write_all(location.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = stream.read(&mut buf).await.unwrap();
        let answer = Answer::parse(&buf[..n]);
        assert_eq!(answer.status, 200, "{answer:?}");
    }
}

/// How many of the connections from `clients` (their local ports) the server at
/// `port` has accepted and not closed (Linux; `None` elsewhere): this process's
/// sockets (`/proc/self/fd`) that `/proc/net/tcp{,6}` shows established from `port`
/// to one of `clients`. Connections still waiting in the listen queue belong to no
/// process.
fn accepted_connections(port: u16, clients: &std::collections::HashSet<u16>) -> Option<usize> {
    let ours: std::collections::HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .ok()?
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            Some(t.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let mut count = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).ok()?;
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(remote), Some(state), Some(inode)) =
                (fields.get(1), fields.get(2), fields.get(3), fields.get(9))
            else {
                continue;
            };
            let port_of = |a: &str| {
                a.rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            };
            let from_client = port_of(remote).is_some_and(|p| clients.contains(&p));
            // 01: ESTABLISHED.
            if port_of(local) == Some(port)
                && from_client
                && *state == "01"
                && ours.contains(*inode)
            {
                count += 1;
            }
        }
    }
    Some(count)
}

/// The flood tests count sockets of this process: one at a time.
static FLOODS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn attack_connection_flood_capped() {
    let _one_flood = FLOODS.lock().await;
    // Long timeouts: the only thing bounding the server's sockets is the cap.
    let server = server_with(|h| h.max_connections = 50).await;
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(addr(&server)).await.unwrap());
    }
    // Without the cap, all 200 are accepted within milliseconds.
    let port = addr(&server).port();
    let clients = idle
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect();
    let mut seen = 0;
    for _ in 0..15 {
        if let Some(accepted) = accepted_connections(port, &clients) {
            seen = seen.max(accepted);
            assert!(
                accepted <= 50,
                "{accepted} connections accepted over a cap of 50"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if accepted_connections(port, &clients).is_some() {
        assert!(seen > 0, "the flood was not accepted at all");
    }
    // The flood goes away: the waiting connections get their turn.
    drop(idle);
    assert_served(&server).await;
}

#[tokio::test]
async fn attack_fd_exhaustion_flood_served_after_timeouts() {
    let _one_flood = FLOODS.lock().await;
    // The scenario scaled down: far more idle and half-open connections from
    // one client than the cap, held open by the client; real requests are still served.
    let server = server_with(|h| {
        h.max_connections = 50;
        h.header_read_timeout_secs = 1;
        h.idle_timeout_secs = 1;
    })
    .await;
    let mut held = Vec::new();
    for i in 0..200 {
        let mut s = TcpStream::connect(addr(&server)).await.unwrap();
        if i % 2 == 0 {
            let _ = s.write_all(b"POST /api/client/v2.0/app/x/auth/prov").await;
        }
        held.push(s);
    }
    assert_served(&server).await;
    assert_served(&server).await;
    drop(held);
}

// ---- Item 5: the JSON error shape, whoever produces the error ----

#[tokio::test]
async fn attack_malformed_request_is_json_400() {
    let server = server_with(|_| {}).await;
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nno colon here\r\n\r\n",
        b"GET /\x01 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    ] {
        exchange(&server, garbage)
            .await
            .assert_json_error(400, "BadRequest");
    }
}

#[tokio::test]
async fn attack_long_uri_is_json_414() {
    let server = server_with(|_| {}).await;
    let path = format!("/api/client/v2.0/{}", "a".repeat(10 * 1024));
    exchange(&server, &request("GET", &path, &[], ""))
        .await
        .assert_json_error(414, "BadRequest");
}

#[tokio::test]
async fn attack_huge_headers_are_json_431() {
    let server = server_with(|_| {}).await;
    let big = "b".repeat(70 * 1024);
    let path = login_path(&server, "anon-user");
    exchange(
        &server,
        &request("POST", &path, &[JSON, ("X-Big", &big)], "{}"),
    )
    .await
    .assert_json_error(431, "BadRequest");
    // Too many header lines, likewise.
    let many: Vec<(String, String)> = (0..200).map(|i| (format!("X-H{i}"), "v".into())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    exchange(&server, &request("POST", &path, &many, "{}"))
        .await
        .assert_json_error(431, "BadRequest");
}

#[tokio::test]
async fn attack_oversized_body_is_json_413_read_size_limit() {
    let server = server_with(|_| {}).await;
    let big = json!({ "username": "a@b.c", "password": "x".repeat(70 * 1024) }).to_string();
    let path = login_path(&server, "local-userpass");
    exchange(&server, &request("POST", &path, &[JSON], &big))
        .await
        .assert_json_error(413, "ReadSizeLimitExceeded");
}

#[tokio::test]
async fn unknown_route_wrong_method_and_bad_json_are_json() {
    let server = server_with(|_| {}).await;
    exchange(&server, &request("GET", "/nothing-here", &[], ""))
        .await
        .assert_json_error(404, "NotFound");
    let answer = exchange(
        &server,
        &request("PUT", "/api/client/v2.0/auth/profile", &[], ""),
    )
    .await;
    answer.assert_json_error(405, "MethodNotAllowed");
    assert!(answer.header("allow").is_some(), "{answer:?}");
    let path = login_path(&server, "anon-user");
    exchange(&server, &request("POST", &path, &[JSON], "{nope"))
        .await
        .assert_json_error(400, "BadRequest");
}

// ---- Item 6: JSON bodies only, CORS ----

#[tokio::test]
async fn attack_text_plain_login_and_register_refused_415() {
    // A cross-origin form or `fetch` in no-cors mode can send text/plain without a
    // preflight; the JSON routes refuse it, and it changes nothing.
    let server = server_with(|_| {}).await;
    let body = json!({ "email": "plain@example.com", "password": "Pa55w0rd!" }).to_string();
    let register = format!(
        "/api/client/v2.0/app/{}/auth/providers/local-userpass/register",
        server.app_id()
    );
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        exchange(
            &server,
            &request("POST", &register, &[("Content-Type", content_type)], &body),
        )
        .await
        .assert_json_error(415, "BadRequest");
    }
    // A body without any Content-Type, likewise.
    exchange(&server, &request("POST", &register, &[], &body))
        .await
        .assert_json_error(415, "BadRequest");
    let login = json!({ "username": "plain@example.com", "password": "Pa55w0rd!" }).to_string();
    let path = login_path(&server, "local-userpass");
    exchange(
        &server,
        &request("POST", &path, &[("Content-Type", "text/plain")], &login),
    )
    .await
    .assert_json_error(415, "BadRequest");
    // Nothing was registered: the same registration as JSON (realm-core's content
    // type) succeeds, and login works.
    let utf8 = ("Content-Type", "application/json;charset=utf-8");
    let answer = exchange(&server, &request("POST", &register, &[utf8], &body)).await;
    assert!(answer.status < 300, "{answer:?}");
    let answer = exchange(&server, &request("POST", &path, &[JSON], &login)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// A server whose app allows exactly `https://app.example`, with the admin API on.
async fn cors_server() -> TestServer {
    let mut config = TestServer::config();
    config.apps[0].allowed_origins = vec!["https://app.example".into()];
    TestServer::start_with(config).await
}

fn preflight(path: &str, origin: &str) -> Vec<u8> {
    request(
        "OPTIONS",
        path,
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization,content-type",
            ),
        ],
        "",
    )
}

#[tokio::test]
async fn cors_allowed_origin_preflight_and_requests() {
    let server = cors_server().await;
    let path = login_path(&server, "anon-user");
    let answer = exchange(&server, &preflight(&path, "https://app.example")).await;
    assert_eq!(answer.status, 204, "{answer:?}");
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let methods = answer.header("access-control-allow-methods").unwrap();
    for m in ["GET", "POST", "PUT", "DELETE", "OPTIONS"] {
        assert!(methods.contains(m), "{methods}");
    }
    let headers = answer
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    for h in ["authorization", "content-type", "accept"] {
        assert!(headers.contains(h), "{headers}");
    }
    assert!(answer.header("vary").unwrap().contains("Origin"));
    // realm-web uses bearer headers, never cookies: no credentials mode.
    assert_eq!(answer.header("access-control-allow-credentials"), None);

    // The actual request, and an error answer, name the origin too.
    let origin = ("Origin", "https://app.example");
    let answer = exchange(&server, &request("POST", &path, &[JSON, origin], "{}")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(answer.header("access-control-allow-credentials"), None);
    let answer = exchange(
        &server,
        &request("GET", "/api/client/v2.0/auth/profile", &[origin], ""),
    )
    .await;
    answer.assert_json_error(401, "MissingAuthReq");
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    // Node and native clients send no Origin: served, without CORS headers.
    let answer = exchange(&server, &request("POST", &path, &[JSON], "{}")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(!answer.has_cors_headers(), "{answer:?}");
}

#[tokio::test]
async fn attack_cors_foreign_origin_refused() {
    let server = cors_server().await;
    let path = login_path(&server, "anon-user");
    for evil in [
        "https://evil.example",
        "https://app.example.evil.example",
        "null",
        "http://app.example",
    ] {
        let answer = exchange(&server, &preflight(&path, evil)).await;
        answer.assert_json_error(403, "DomainNotAllowed");
        assert!(!answer.has_cors_headers(), "{answer:?}");
        let answer = exchange(
            &server,
            &request("POST", &path, &[JSON, ("Origin", evil)], "{}"),
        )
        .await;
        answer.assert_json_error(403, "DomainNotAllowed");
        assert!(!answer.has_cors_headers(), "{answer:?}");
    }
    // An app that allows no origin refuses every one, even one another app allows.
    let mut config = TestServer::config();
    let other = latchkey_server::AppConfig::new("other-app", "0123456789abcdef0123456789abcdef")
        .with_all_providers();
    config.apps[0].allowed_origins = Vec::new();
    config.apps.push(latchkey_server::AppConfig {
        allowed_origins: vec!["https://other.example".into()],
        ..other
    });
    let server = TestServer::start_with(config).await;
    let path = login_path(&server, "anon-user");
    let answer = exchange(&server, &preflight(&path, "https://other.example")).await;
    answer.assert_json_error(403, "DomainNotAllowed");
}

#[tokio::test]
async fn attack_cors_admin_routes_have_no_cors_headers() {
    let server = cors_server().await;
    let admin = format!("/admin/v1/apps/{}/users", server.app_id());
    for origin in ["https://app.example", "https://evil.example"] {
        let answer = exchange(&server, &preflight(&admin, origin)).await;
        assert!(answer.status >= 400, "{answer:?}");
        assert!(!answer.has_cors_headers(), "{answer:?}");
        let answer = exchange(&server, &request("GET", &admin, &[("Origin", origin)], "")).await;
        assert!(answer.status >= 400, "{answer:?}");
        assert!(!answer.has_cors_headers(), "{answer:?}");
    }
}

#[tokio::test]
async fn dev_config_allows_any_origin() {
    let mut config = Config::dev();
    config.apps[0].id = "dev-app".into();
    let server = TestServer::start_with(config).await;
    let answer = exchange(
        &server,
        &preflight(&login_path(&server, "anon-user"), "http://localhost:5173"),
    )
    .await;
    assert_eq!(answer.status, 204, "{answer:?}");
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some("http://localhost:5173")
    );
}
