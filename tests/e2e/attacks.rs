//! The attack table: one row per attack on the real server and the answer it must get,
//! so that none can regress. docs/security.md lists the rows and what defends each.
//!
//! Two tables:
//! - [`request_rows`]: one HTTP request each (or raw bytes on a TCP connection) against
//!   one shared server, with the expected status, and optionally the `error_code` and
//!   response headers that must or must not be present. Every row also checks the
//!   invariants of every error answer: never a 5xx, and a body (when there is one) in the
//!   JSON error shape with `Content-Type: application/json`.
//! - [`scenario_rows`]: attacks that need several requests at once, each on a fresh
//!   server.
//!
//! Adding an attack is one entry: `Row::new(name, method, path)` with the request's parts
//! and an expectation, in the list of [`request_rows`].

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use futures::future::join_all;
use hmac::{Hmac, Mac};
use http::{Method, StatusCode};
use latchkey_protocol::routes::paths;
use latchkey_testkit::{Config, TestServer};
use latchkey_transport::{HttpTransport, RequestOptions};
use latchkey_transport_reqwest::ReqwestTransport;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The app's signing secret in these tests: known, so that rows can forge tokens with
/// the right key and every other part wrong.
const SIGNING_SECRET: &str = "attack-table-signing-secret-0123456789";
/// The custom-token provider's HS256 key.
const CUSTOM_TOKEN_KEY: &str = "attack-table-custom-token-key-0123456789";
/// A key the server never trusts.
const ATTACKER_KEY: &str = "the-attacker-s-own-key-0123456789abcdef";

// ------------------------------------------------------------------------ the table types

/// Which statuses a row accepts.
#[derive(Debug, Clone, Copy)]
enum Status {
    /// Exactly this one.
    Is(StatusCode),
    /// Any 4xx: the row is about "refused, and not a server failure".
    ClientError,
    /// Anything but a 5xx (bodies that a route ignores).
    NotServerError,
    /// Any 2xx (control rows: the same request done right works).
    Success,
}

/// One attack: the request and the answer it must get.
#[derive(Debug, Clone)]
struct Row {
    attack: String,
    method: Method,
    path: String,
    bearer: Option<String>,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    /// Raw bytes written to a TCP connection instead of an HTTP request.
    raw: Option<Vec<u8>>,
    status: Status,
    error_code: Option<&'static str>,
    header_absent: Vec<&'static str>,
}

impl Row {
    fn new(attack: impl Into<String>, method: Method, path: impl Into<String>) -> Row {
        Row {
            attack: attack.into(),
            method,
            path: path.into(),
            bearer: None,
            headers: Vec::new(),
            body: None,
            raw: None,
            status: Status::ClientError,
            error_code: None,
            header_absent: Vec::new(),
        }
    }

    /// Raw bytes on a fresh TCP connection (for what no HTTP client sends).
    fn raw(attack: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Row {
        let mut row = Row::new(attack, Method::GET, "/");
        row.raw = Some(bytes.into());
        row
    }

    fn bearer(mut self, token: impl Into<String>) -> Row {
        self.bearer = Some(token.into());
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Row {
        self.headers.push((name, value.into()));
        self
    }

    /// A body, sent with `Content-Type: application/json` (unless a row sets another).
    fn body(mut self, body: impl Into<Vec<u8>>) -> Row {
        self.body = Some(body.into());
        self
    }

    fn json(self, body: Value) -> Row {
        self.body(body.to_string())
    }

    fn expect(mut self, status: Status) -> Row {
        self.status = status;
        self
    }

    fn status(self, status: StatusCode) -> Row {
        self.expect(Status::Is(status))
    }

    fn code(mut self, code: &'static str) -> Row {
        self.error_code = Some(code);
        self
    }

    fn without_header(mut self, name: &'static str) -> Row {
        self.header_absent.push(name);
        self
    }
}

/// What the server answered.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    headers: http::HeaderMap,
    body: Bytes,
}

/// Everything rows need: the server, a logged-in user's tokens, the admin token.
struct Ctx {
    server: TestServer,
    http: ReqwestTransport,
    admin: String,
    /// A real access token and its claims.
    access: String,
    access_claims: Value,
    /// A real refresh token and its claims.
    refresh: String,
    refresh_claims: Value,
}

impl Ctx {
    /// `path` with `{app_id}` filled in and `{provider}` set to `provider`.
    fn app(&self, path: &str, provider: &str) -> String {
        path.replace("{app_id}", self.server.app_id())
            .replace("{provider}", provider)
    }

    async fn send(&self, row: &Row) -> Answer {
        if let Some(raw) = &row.raw {
            return send_raw(&self.server, raw).await;
        }
        let mut req = http::Request::builder()
            .method(row.method.clone())
            .uri(format!("{}{}", self.server.url(), row.path));
        if let Some(token) = &row.bearer {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let sets_type = row
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
        if row.body.is_some() && !sets_type {
            req = req.header("content-type", "application/json");
        }
        for (name, value) in &row.headers {
            req = req.header(*name, value);
        }
        let body = Bytes::from(row.body.clone().unwrap_or_default());
        let resp = self
            .http
            .send(req.body(body).unwrap(), &RequestOptions::new())
            .await
            .unwrap_or_else(|e| panic!("{}: no answer: {e}", row.attack));
        Answer {
            status: resp.status(),
            content_type: resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap_or("<not text>").to_owned()),
            headers: resp.headers().clone(),
            body: resp.body().clone(),
        }
    }
}

/// Write `raw` to a new connection to `server` and read the answer until the server
/// closes it or the head and `Content-Length` bytes of body have arrived.
async fn send_raw(server: &TestServer, raw: &[u8]) -> Answer {
    let addr = server.url().trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                break;
            }
        }
    }
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or_else(|| panic!("no HTTP status line in {head:?}"));
    let mut headers = http::HeaderMap::new();
    for line in lines {
        if let Some((n, v)) = line.split_once(':')
            && let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(n.trim().as_bytes()),
                http::HeaderValue::from_str(v.trim()),
            )
        {
            headers.append(n, v);
        }
    }
    Answer {
        status,
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        headers,
        body: Bytes::copy_from_slice(buf.get(end + 4..).unwrap_or_default()),
    }
}

/// What is wrong with `answer` for `row`, if anything.
fn check(row: &Row, answer: &Answer) -> Option<String> {
    let s = answer.status;
    let status_ok = match row.status {
        Status::Is(want) => s == want,
        Status::ClientError => s.is_client_error(),
        Status::NotServerError => !s.is_server_error(),
        Status::Success => s.is_success(),
    };
    let mut problems = Vec::new();
    if !status_ok {
        problems.push(format!("status {s}, expected {:?}", row.status));
    }
    if s.is_server_error() {
        problems.push("a 5xx for a client's request".to_owned());
    }
    let json: Option<Value> = serde_json::from_slice(&answer.body).ok();
    if s.is_client_error() || s.is_server_error() {
        if answer.content_type.as_deref() != Some("application/json") {
            problems.push(format!("error Content-Type {:?}", answer.content_type));
        }
        if !json
            .as_ref()
            .is_some_and(|j| j["error"].is_string() && j["error_code"].is_string())
        {
            problems.push("error body is not the JSON error shape".to_owned());
        }
    }
    if let Some(code) = row.error_code {
        let got = json.as_ref().and_then(|j| j["error_code"].as_str());
        if got != Some(code) {
            problems.push(format!("error_code {got:?}, expected {code:?}"));
        }
    }
    for name in &row.header_absent {
        if answer.headers.contains_key(*name) {
            problems.push(format!(
                "header {name} present: {:?}",
                answer.headers[*name]
            ));
        }
    }
    (!problems.is_empty()).then(|| {
        format!(
            "{}: {} (body {:?})",
            row.attack,
            problems.join("; "),
            String::from_utf8_lossy(&answer.body.slice(..answer.body.len().min(300)))
        )
    })
}

// ------------------------------------------------------------------------ token forging

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &str, input: &str) -> String {
    let mut mac = <M as Mac>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    b64(&mac.finalize().into_bytes())
}

fn hmac_sig(alg: &str, key: &str, input: &str) -> String {
    match alg {
        "HS384" => mac::<Hmac<sha2::Sha384>>(key, input),
        "HS512" => mac::<Hmac<sha2::Sha512>>(key, input),
        _ => mac::<Hmac<Sha256>>(key, input),
    }
}

/// A JWT with `header` and `claims`, signed by HMAC with `key` as the header's `alg`
/// says (HS256 for any other `alg`), or unsigned (empty signature) without a key.
fn jwt(header: Value, claims: &Value, key: Option<&str>) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let sig = match key {
        Some(key) => hmac_sig(header["alg"].as_str().unwrap_or("HS256"), key, &input),
        None => String::new(),
    };
    format!("{input}.{sig}")
}

fn claims_of(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn with(mut claims: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn hs256() -> Value {
    json!({ "alg": "HS256", "typ": "JWT" })
}

/// Custom-token claims for `sub`, valid for 10 minutes.
fn custom_claims(ctx: &Ctx, sub: &str) -> Value {
    json!({ "sub": sub, "aud": ctx.server.app_id(), "iat": now(), "exp": now() + 600 })
}

// ------------------------------------------------------------------------ the rows

/// Bodies no client route may answer with a 5xx, and every route that reads a body
/// answers with a 4xx.
fn malformed_bodies() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("truncated JSON", b"{\"username\":".to_vec()),
        ("a JSON array", b"[]".to_vec()),
        ("a JSON string", b"\"text\"".to_vec()),
        ("JSON null", b"null".to_vec()),
        ("a number", b"42".to_vec()),
        ("invalid UTF-8", b"{\"username\":\"\xff\xfe\"}".to_vec()),
        ("10,000 nested arrays", {
            let mut v = vec![b'['; 10_000];
            v.extend(vec![b']'; 10_000]);
            v
        }),
        ("a NUL byte", b"{\"a\":\0}".to_vec()),
        ("trailing garbage", b"{} {}".to_vec()),
        ("65 KiB + 1 (over the body limit)", {
            let mut v = b"{\"pad\":\"".to_vec();
            v.extend(vec![b'a'; 64 * 1024]);
            v.extend(b"\"}");
            v
        }),
    ]
}

fn request_rows(ctx: &Ctx) -> Vec<Row> {
    let mut rows = Vec::new();
    let login = |p: &str| ctx.app(paths::LOGIN, p);

    // Malformed bodies on every client route that reads a body: 4xx, never 5xx. Over the
    // body limit: 413 where the body is the first thing the route reads (a disabled
    // provider answers 404 first).
    let body_routes: Vec<(String, Method, String, Option<String>)> = [
        "anon-user",
        "local-userpass",
        "api-key",
        "custom-token",
        "custom-function",
        "oauth2-google",
        "oauth2-apple",
        "oauth2-facebook",
        "no-such-provider",
    ]
    .iter()
    .map(|p| (format!("login {p}"), Method::POST, login(p), None))
    .chain(
        [
            ("register", paths::REGISTER),
            ("confirm", paths::CONFIRM),
            ("confirm/send", paths::CONFIRM_SEND),
            ("confirm/call", paths::CONFIRM_CALL),
            ("reset", paths::RESET),
            ("reset/send", paths::RESET_SEND),
            ("reset/call", paths::RESET_CALL),
        ]
        .iter()
        .map(|(n, p)| (n.to_string(), Method::POST, ctx.app(p, ""), None)),
    )
    .chain([(
        "create API key".to_owned(),
        Method::POST,
        paths::API_KEYS.to_owned(),
        Some(ctx.refresh.clone()),
    )])
    .collect();
    for (route, method, path, bearer) in &body_routes {
        for (what, body) in malformed_bodies() {
            let mut row = Row::new(format!("{route}: {what}"), method.clone(), path).body(body);
            if let Some(t) = bearer {
                row = row.bearer(t);
            }
            let disabled = ["oauth2-", "custom-function", "no-such-provider"]
                .iter()
                .any(|p| route.contains(p));
            if what.starts_with("65 KiB") && !disabled {
                row = row.status(StatusCode::PAYLOAD_TOO_LARGE);
            }
            rows.push(row);
        }
    }
    // Routes that read no body: a malformed one changes nothing, and is never a 5xx.
    let key_path = paths::API_KEY.replace("{key_id}", "65f0c0ffee0000000000abcd");
    let bodiless: Vec<(&str, Method, String, String)> = vec![
        (
            "location",
            Method::GET,
            ctx.app(paths::LOCATION, ""),
            String::new(),
        ),
        (
            "profile",
            Method::GET,
            paths::PROFILE.into(),
            ctx.access.clone(),
        ),
        (
            "refresh",
            Method::POST,
            paths::SESSION.into(),
            ctx.refresh.clone(),
        ),
        (
            "list API keys",
            Method::GET,
            paths::API_KEYS.into(),
            ctx.refresh.clone(),
        ),
        (
            "get API key",
            Method::GET,
            key_path.clone(),
            ctx.refresh.clone(),
        ),
        (
            "enable API key",
            Method::PUT,
            paths::API_KEY_ENABLE.replace("{key_id}", "65f0c0ffee0000000000abcd"),
            ctx.refresh.clone(),
        ),
        (
            "disable API key",
            Method::PUT,
            paths::API_KEY_DISABLE.replace("{key_id}", "65f0c0ffee0000000000abcd"),
            ctx.refresh.clone(),
        ),
        (
            "delete API key",
            Method::DELETE,
            key_path,
            ctx.refresh.clone(),
        ),
    ];
    for (route, method, path, bearer) in &bodiless {
        for (what, body) in malformed_bodies() {
            let mut row = Row::new(format!("{route}: {what}"), method.clone(), path)
                .body(body)
                .expect(Status::NotServerError);
            if !bearer.is_empty() {
                row = row.bearer(bearer);
            }
            rows.push(row);
        }
    }

    // Token swaps: an access token where a refresh token belongs, and the other way round.
    let unauthorized = StatusCode::UNAUTHORIZED;
    rows.extend([
        Row::new(
            "refresh token as access token (profile)",
            Method::GET,
            paths::PROFILE,
        )
        .bearer(&ctx.refresh)
        .status(unauthorized),
        Row::new(
            "access token as refresh token (API keys)",
            Method::GET,
            paths::API_KEYS,
        )
        .bearer(&ctx.access)
        .status(unauthorized)
        .code("InvalidSession"),
        Row::new(
            "access token as refresh token (refresh)",
            Method::POST,
            paths::SESSION,
        )
        .bearer(&ctx.access)
        .status(unauthorized)
        .code("InvalidSession"),
        Row::new("no token (profile)", Method::GET, paths::PROFILE).status(unauthorized),
        Row::new("no token (refresh)", Method::POST, paths::SESSION).status(unauthorized),
        Row::new("Basic instead of Bearer", Method::GET, paths::PROFILE)
            .header("authorization", format!("Basic {}", ctx.access))
            .status(unauthorized),
        Row::new("empty bearer token", Method::GET, paths::PROFILE)
            .header("authorization", "Bearer ")
            .status(unauthorized),
        Row::new("not a JWT", Method::GET, paths::PROFILE)
            .bearer("not-a-jwt")
            .status(unauthorized),
        Row::new("a JWT of 2 parts", Method::GET, paths::PROFILE)
            .bearer(ctx.access.rsplit_once('.').unwrap().0)
            .status(unauthorized),
    ]);

    // Forged access and refresh tokens: every part right but one.
    let a = &ctx.access_claims;
    let r = &ctx.refresh_claims;
    // The real claims with `changes`, signed with the right key.
    let access_with = |changes| jwt(hs256(), &with(a.clone(), changes), Some(SIGNING_SECRET));
    let refresh_with = |changes| jwt(hs256(), &with(r.clone(), changes), Some(SIGNING_SECRET));
    let forged_access: Vec<(&str, String)> = vec![
        (
            "alg none, unsigned",
            jwt(json!({"alg": "none", "typ": "JWT"}), a, None),
        ),
        ("alg NoNe, unsigned", jwt(json!({"alg": "NoNe"}), a, None)),
        ("alg none with the real signature", {
            let sig = ctx.access.rsplit('.').next().unwrap();
            let unsigned = jwt(json!({"alg": "none"}), a, None);
            format!("{unsigned}{sig}")
        }),
        (
            "HS384 with the right key",
            jwt(json!({"alg": "HS384"}), a, Some(SIGNING_SECRET)),
        ),
        (
            "HS512 with the right key",
            jwt(json!({"alg": "HS512"}), a, Some(SIGNING_SECRET)),
        ),
        (
            "RS256 header, HMAC signature",
            jwt(json!({"alg": "RS256"}), a, Some(SIGNING_SECRET)),
        ),
        (
            "ES256 header",
            jwt(json!({"alg": "ES256"}), a, Some(SIGNING_SECRET)),
        ),
        (
            "signed with another key",
            jwt(hs256(), a, Some(ATTACKER_KEY)),
        ),
        ("claims changed, signature kept", {
            let sig = ctx.access.rsplit('.').next().unwrap();
            let other = with(a.clone(), json!({"sub": "65f0c0ffee0000000000dead"}));
            let forged = jwt(hs256(), &other, None);
            format!("{forged}{sig}")
        }),
        (
            "jku to the attacker's keys",
            jwt(
                json!({"alg": "HS256", "jku": "http://127.0.0.1:9/jwks"}),
                a,
                Some(ATTACKER_KEY),
            ),
        ),
        (
            "x5u to the attacker's certificate",
            jwt(
                json!({"alg": "HS256", "x5u": "http://127.0.0.1:9/cert"}),
                a,
                Some(ATTACKER_KEY),
            ),
        ),
        (
            "embedded jwk (attacker's key)",
            jwt(
                json!({"alg": "HS256", "jwk": {"kty": "oct", "k": b64(ATTACKER_KEY.as_bytes())}}),
                a,
                Some(ATTACKER_KEY),
            ),
        ),
        (
            "kid path traversal",
            jwt(
                json!({"alg": "HS256", "kid": "../../../../dev/null"}),
                a,
                Some(""),
            ),
        ),
        (
            "kid naming the attacker's key",
            jwt(
                json!({"alg": "HS256", "kid": "attacker"}),
                a,
                Some(ATTACKER_KEY),
            ),
        ),
        (
            "expired (right key)",
            access_with(json!({"exp": now() - 10, "iat": now() - 1810})),
        ),
        (
            "exp as a float (right key)",
            access_with(json!({"exp": (now() + 600) as f64 + 0.5})),
        ),
        (
            "exp as a string (right key)",
            access_with(json!({"exp": (now() + 600).to_string()})),
        ),
        ("no typ (right key)", access_with(json!({"typ": null}))),
        (
            "typ refresh (right key)",
            access_with(json!({"typ": "refresh"})),
        ),
        (
            "a session that does not exist (right key)",
            access_with(json!({"iss": "65f0c0ffee0000000000beef"})),
        ),
        (
            "another user's id (right key, own session)",
            access_with(json!({"sub": "65f0c0ffee0000000000dead"})),
        ),
        (
            "another app (right key)",
            access_with(json!({"baas_domain_id": "other-app"})),
        ),
    ];
    for (what, token) in forged_access {
        rows.push(
            Row::new(
                format!("forged access token: {what}"),
                Method::GET,
                paths::PROFILE,
            )
            .bearer(token)
            .status(unauthorized),
        );
    }
    let forged_refresh: Vec<(&str, String)> = vec![
        ("alg none, unsigned", jwt(json!({"alg": "none"}), r, None)),
        (
            "HS512 with the right key",
            jwt(json!({"alg": "HS512"}), r, Some(SIGNING_SECRET)),
        ),
        (
            "signed with another key",
            jwt(hs256(), r, Some(ATTACKER_KEY)),
        ),
        (
            "expired (right key)",
            refresh_with(json!({"exp": now() - 1})),
        ),
        (
            "typ access (right key)",
            refresh_with(json!({"typ": "access"})),
        ),
        (
            "a session that does not exist (right key)",
            refresh_with(
                json!({"baas_id": "65f0c0ffee0000000000beef", "baas_session_id": "65f0c0ffee0000000000beef"}),
            ),
        ),
    ];
    for (what, token) in forged_refresh {
        rows.push(
            Row::new(
                format!("forged refresh token: {what}"),
                Method::POST,
                paths::SESSION,
            )
            .bearer(token)
            .status(unauthorized),
        );
    }

    // Provider tokens (custom-token, HS256): algorithm confusion and header injection.
    let c = custom_claims(ctx, "ext-attack");
    let custom_with = |changes| jwt(hs256(), &with(c.clone(), changes), Some(CUSTOM_TOKEN_KEY));
    let custom: Vec<(&str, String)> = vec![
        ("alg none", jwt(json!({"alg": "none"}), &c, None)),
        (
            "HS512 with the right key",
            jwt(json!({"alg": "HS512"}), &c, Some(CUSTOM_TOKEN_KEY)),
        ),
        (
            "RS256 header, HMAC signature",
            jwt(json!({"alg": "RS256"}), &c, Some(CUSTOM_TOKEN_KEY)),
        ),
        (
            "signed with another key",
            jwt(hs256(), &c, Some(ATTACKER_KEY)),
        ),
        (
            "jku to the attacker's keys",
            jwt(
                json!({"alg": "HS256", "jku": "http://127.0.0.1:9/jwks"}),
                &c,
                Some(ATTACKER_KEY),
            ),
        ),
        (
            "x5u to the attacker's certificate",
            jwt(
                json!({"alg": "HS256", "x5u": "http://127.0.0.1:9/cert"}),
                &c,
                Some(ATTACKER_KEY),
            ),
        ),
        (
            "embedded jwk (attacker's key)",
            jwt(
                json!({"alg": "HS256", "jwk": {"kty": "oct", "k": b64(ATTACKER_KEY.as_bytes())}}),
                &c,
                Some(ATTACKER_KEY),
            ),
        ),
        (
            "kid naming the attacker's key",
            jwt(
                json!({"alg": "HS256", "kid": "attacker"}),
                &c,
                Some(ATTACKER_KEY),
            ),
        ),
        (
            "crit (right key)",
            jwt(
                json!({"alg": "HS256", "crit": ["exp"]}),
                &c,
                Some(CUSTOM_TOKEN_KEY),
            ),
        ),
        (
            "b64 false (right key)",
            jwt(
                json!({"alg": "HS256", "b64": false, "crit": ["b64"]}),
                &c,
                Some(CUSTOM_TOKEN_KEY),
            ),
        ),
        (
            "expired (right key)",
            custom_with(json!({"exp": now() - 3600, "iat": now() - 7200})),
        ),
        (
            "another audience (right key)",
            custom_with(json!({"aud": "other-app"})),
        ),
        ("the server's own access token", ctx.access.clone()),
    ];
    for (what, token) in custom {
        rows.push(
            Row::new(
                format!("custom-token login: {what}"),
                Method::POST,
                login("custom-token"),
            )
            .json(json!({ "token": token }))
            .status(unauthorized),
        );
    }
    // The control row: the same provider accepts a correct token.
    rows.push(
        Row::new(
            "custom-token login: correct token (control)",
            Method::POST,
            login("custom-token"),
        )
        .json(json!({ "token": jwt(hs256(), &c, Some(CUSTOM_TOKEN_KEY)) }))
        .status(StatusCode::OK),
    );

    // The admin API's token: right or refused (the comparison is constant-time, which a
    // test does not measure; these rows check that it is correct).
    let outbox = format!("/admin/v1/apps/{}/outbox", ctx.server.app_id());
    let admin = &ctx.admin;
    let mut flipped = admin.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'a' { b'b' } else { b'a' };
    let admin_refused: Vec<(&str, String)> = vec![
        (
            "a wrong token of the same length",
            String::from_utf8(flipped).unwrap(),
        ),
        ("a prefix of the token", admin[..admin.len() - 1].to_owned()),
        ("the token and one more byte", format!("{admin}x")),
        ("the token upper-cased", admin.to_uppercase()),
        ("a user's access token", ctx.access.clone()),
        ("empty", String::new()),
    ];
    for (what, token) in admin_refused {
        rows.push(
            Row::new(format!("admin API: {what}"), Method::GET, &outbox)
                .bearer(token)
                .status(unauthorized),
        );
    }
    rows.push(Row::new("admin API: no token", Method::GET, &outbox).status(unauthorized));
    rows.push(
        Row::new("admin API: the right token (control)", Method::GET, &outbox)
            .bearer(admin)
            .status(StatusCode::OK),
    );

    // Misdirected requests.
    rows.extend([
        Row::new(
            "unknown app id",
            Method::POST,
            paths::LOGIN
                .replace("{app_id}", "no-such-app")
                .replace("{provider}", "anon-user"),
        )
        .json(json!({}))
        .status(StatusCode::NOT_FOUND),
        Row::new(
            "path traversal in the app id",
            Method::GET,
            "/api/client/v2.0/app/..%2F..%2Fadmin/location",
        )
        .expect(Status::ClientError),
        Row::new("unknown route", Method::GET, "/api/client/v2.0/nope")
            .status(StatusCode::NOT_FOUND),
        Row::new("wrong method on login", Method::GET, login("anon-user"))
            .status(StatusCode::METHOD_NOT_ALLOWED),
    ]);

    // The HTTP stack's own answers (issue 10, item 5): JSON like every other error.
    let long_uri = format!(
        "GET /api/client/v2.0/app/{}/location?{} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        ctx.server.app_id(),
        "a".repeat(9 * 1024)
    );
    let huge_headers = format!(
        "GET /api/client/v2.0/app/{}/location HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
        ctx.server.app_id(),
        "b".repeat(17 * 1024)
    );
    rows.extend([
        Row::raw("malformed request line", &b"NOT-HTTP \x01\r\n\r\n"[..])
            .status(StatusCode::BAD_REQUEST),
        Row::raw("request target over 8 KiB", long_uri).status(StatusCode::URI_TOO_LONG),
        Row::raw("17 KiB of headers", huge_headers)
            .status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        Row::new(
            "body over 64 KiB (ReadSizeLimitExceeded)",
            Method::POST,
            login("anon-user"),
        )
        .body(vec![b' '; 64 * 1024 + 1])
        .status(StatusCode::PAYLOAD_TOO_LARGE)
        .code("ReadSizeLimitExceeded"),
    ]);

    // CORS and JSON-only bodies (item 6): the table's app allows one origin.
    let admin_users = format!("/admin/v1/apps/{}/users", ctx.server.app_id());
    rows.extend([
        Row::new(
            "text/plain login body (no preflight)",
            Method::POST,
            login("anon-user"),
        )
        .header("content-type", "text/plain")
        .body("{}")
        .status(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        Row::new(
            "form-encoded register body",
            Method::POST,
            ctx.app(paths::REGISTER, ""),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=a%40b.c&password=secret123")
        .status(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        Row::new("foreign Origin on login", Method::POST, login("anon-user"))
            .header("origin", "https://evil.example")
            .json(json!({}))
            .status(StatusCode::FORBIDDEN)
            .code("DomainNotAllowed")
            .without_header("access-control-allow-origin"),
        Row::new(
            "foreign Origin preflight",
            Method::OPTIONS,
            login("anon-user"),
        )
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .status(StatusCode::FORBIDDEN)
        .without_header("access-control-allow-origin"),
        Row::new(
            "Origin null on location",
            Method::GET,
            ctx.app(paths::LOCATION, ""),
        )
        .header("origin", "null")
        .status(StatusCode::FORBIDDEN),
        Row::new(
            "allowed Origin on location (control)",
            Method::GET,
            ctx.app(paths::LOCATION, ""),
        )
        .header("origin", ALLOWED_ORIGIN)
        .status(StatusCode::OK)
        .without_header("access-control-allow-credentials"),
        Row::new(
            "admin route with a foreign Origin: no CORS headers",
            Method::GET,
            &admin_users,
        )
        .bearer(admin)
        .header("origin", "https://evil.example")
        .without_header("access-control-allow-origin")
        .without_header("access-control-allow-credentials")
        .expect(Status::NotServerError),
    ]);

    // Emails and text the stores cannot keep (items 3 and 7; NUL for PostgreSQL).
    rows.extend([
        Row::new(
            "email with a trailing U+200B",
            Method::POST,
            ctx.app(paths::REGISTER, ""),
        )
        .json(json!({"email": "victim@example.com\u{200B}", "password": "secret123"}))
        .status(StatusCode::BAD_REQUEST),
        Row::new(
            "NUL in a register body",
            Method::POST,
            ctx.app(paths::REGISTER, ""),
        )
        .json(json!({"email": "nul\u{0}@example.com", "password": "secret123"}))
        .status(StatusCode::BAD_REQUEST),
    ]);
    rows
}

/// The server every request row runs against: a known signing secret, custom-token on.
fn table_config() -> Config {
    let mut config = TestServer::config();
    let app = &mut config.apps[0];
    app.signing_secret = SIGNING_SECRET.into();
    app.providers.custom_token.enabled = true;
    app.providers.custom_token.signing_keys = vec![CUSTOM_TOKEN_KEY.into()];
    app.allowed_origins = vec![ALLOWED_ORIGIN.to_owned()];
    config
}

/// The one web origin the table's app allows.
const ALLOWED_ORIGIN: &str = "https://app.example";

async fn context() -> Ctx {
    let config = table_config();
    let admin = config.admin_token.clone().unwrap().into_exposed();
    let server = TestServer::start_with(config).await;
    let http = ReqwestTransport::new();
    let url = format!(
        "{}{}",
        server.url(),
        paths::LOGIN
            .replace("{app_id}", server.app_id())
            .replace("{provider}", "anon-user")
    );
    let req = http::Request::post(url)
        .header("content-type", "application/json")
        .body(Bytes::from_static(b"{}"))
        .unwrap();
    let resp = http.send(req, &RequestOptions::new()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let login: Value = serde_json::from_slice(resp.body()).unwrap();
    let access = login["access_token"].as_str().unwrap().to_owned();
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();
    Ctx {
        access_claims: claims_of(&access),
        refresh_claims: claims_of(&refresh),
        server,
        http,
        admin,
        access,
        refresh,
    }
}

#[tokio::test]
async fn every_attack_gets_its_expected_answer() {
    let ctx = context().await;
    let rows = request_rows(&ctx);
    let mut failures = Vec::new();
    for row in &rows {
        let answer = ctx.send(row).await;
        failures.extend(check(row, &answer));
    }
    // The user the rows attacked is untouched: its tokens still work.
    let profile = Row::new(
        "control: the real access token",
        Method::GET,
        paths::PROFILE,
    )
    .bearer(&ctx.access)
    .status(StatusCode::OK);
    failures.extend(check(&profile, &ctx.send(&profile).await));
    let refresh = Row::new(
        "control: the real refresh token",
        Method::POST,
        paths::SESSION,
    )
    .bearer(&ctx.refresh)
    .expect(Status::Success);
    failures.extend(check(&refresh, &ctx.send(&refresh).await));
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    eprintln!("attack table: {} request rows held", rows.len());
    ctx.server.shutdown().await;
}

// ------------------------------------------------------------------------ scenario rows

/// An attack of several concurrent requests, on a fresh server.
struct Scenario {
    attack: &'static str,
    run: fn() -> futures::future::BoxFuture<'static, Result<(), String>>,
}

fn scenario_rows() -> Vec<Scenario> {
    vec![Scenario {
        attack: "150 concurrent wrong passwords for one email from one IP: \
                 at most the per-email+IP limit get 401, the rest 429",
        run: || Box::pin(concurrent_wrong_passwords()),
    }]
}

async fn concurrent_wrong_passwords() -> Result<(), String> {
    const ATTEMPTS: usize = 150;
    let config = TestServer::config();
    let limit = config.throttle.max_failures_per_identifier as usize;
    let server = TestServer::start_with(config).await;
    let http = ReqwestTransport::new();
    let post = |path: String, body: Value| {
        let http = http.clone();
        let url = format!("{}{}", server.url(), path);
        async move {
            let req = http::Request::post(url)
                .header("content-type", "application/json")
                .body(Bytes::from(body.to_string()))
                .unwrap();
            http.send(req, &RequestOptions::new())
                .await
                .unwrap()
                .status()
        }
    };
    let app = |p: &str| {
        p.replace("{app_id}", server.app_id())
            .replace("{provider}", "local-userpass")
    };
    let status = post(
        app(paths::REGISTER),
        json!({"email": "victim@example.com", "password": "s3cret-pass"}),
    )
    .await;
    if !status.is_success() {
        return Err(format!("register answered {status}"));
    }
    let statuses = join_all((0..ATTEMPTS).map(|i| {
        post(
            app(paths::LOGIN),
            json!({"username": "victim@example.com", "password": format!("wrong-{i}")}),
        )
    }))
    .await;
    let unauthorized = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    server.shutdown().await;
    if unauthorized > limit || unauthorized + throttled != ATTEMPTS {
        return Err(format!(
            "{unauthorized} answered 401 (limit {limit}), {throttled} answered 429, of {ATTEMPTS}"
        ));
    }
    Ok(())
}

#[tokio::test]
async fn every_scenario_attack_gets_its_expected_answer() {
    let mut failures = Vec::new();
    for row in scenario_rows() {
        if let Err(e) = (row.run)().await {
            failures.push(format!("{}: {e}", row.attack));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
