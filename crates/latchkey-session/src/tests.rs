//! Unit tests of the session engine: a scripted fake server, a mockall transport, a manual
//! clock and paused tokio time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Method, StatusCode};
use latchkey_protocol::routes::paths;
use latchkey_protocol::{Credential, CredentialError, LoginBody};
use latchkey_transport::{
    HttpRequest, HttpResponse, HttpTransport, RequestOptions, SharedTransport, TransportError,
    TransportErrorKind,
};
use serde_json::{Value, json};

use crate::*;

// ---------------------------------------------------------------- helpers

fn jwt(payload: Value) -> String {
    format!(
        "{}.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

#[derive(Debug)]
struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    fn at(secs: u64) -> Arc<Self> {
        Arc::new(ManualClock(Mutex::new(
            UNIX_EPOCH + Duration::from_secs(secs),
        )))
    }
    fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

/// A local clock value used by most tests.
const LOCAL_NOW: u64 = 1_700_000_000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Ok,
    Unauthorized,
    ServerError,
    Offline,
}

#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    url: String,
    auth: Option<String>,
    content_type: Option<String>,
    accept: Option<String>,
    body: String,
}

/// A scripted App Services server.
#[derive(Debug)]
struct Fake {
    /// Server clock for `iat` (seconds).
    server_time: Mutex<i64>,
    lifetime: Mutex<i64>,
    /// `(exp, iat)` of the next access tokens, overriding `server_time` and `lifetime`.
    access_claims: Mutex<Option<(i64, i64)>>,
    user_data: Mutex<Option<Value>>,
    refresh_mode: Mutex<Mode>,
    logout_mode: Mutex<Mode>,
    profile_mode: Mutex<Mode>,
    /// Statuses to answer on `/custom`, in order (then 200).
    custom: Mutex<Vec<u16>>,
    refresh_delay: Mutex<Duration>,
    login_body_override: Mutex<Option<(u16, String, &'static str)>>,
    next_user: AtomicUsize,
    counter: AtomicUsize,
    log: Mutex<Vec<Recorded>>,
    /// `(path, max_response_bytes)` of every request.
    limits: Mutex<Vec<(String, usize)>>,
    /// provider by user id, for the profile's identities.
    providers: Mutex<HashMap<String, String>>,
    /// user id by access token.
    owners: Mutex<HashMap<String, String>>,
}

impl Fake {
    fn new() -> Arc<Self> {
        Arc::new(Fake {
            server_time: Mutex::new(LOCAL_NOW as i64),
            lifetime: Mutex::new(1800),
            access_claims: Mutex::new(None),
            user_data: Mutex::new(None),
            refresh_mode: Mutex::new(Mode::Ok),
            logout_mode: Mutex::new(Mode::Ok),
            profile_mode: Mutex::new(Mode::Ok),
            custom: Mutex::new(Vec::new()),
            refresh_delay: Mutex::new(Duration::ZERO),
            login_body_override: Mutex::new(None),
            next_user: AtomicUsize::new(1),
            counter: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            limits: Mutex::new(Vec::new()),
            providers: Mutex::new(HashMap::new()),
            owners: Mutex::new(HashMap::new()),
        })
    }

    fn set<T>(m: &Mutex<T>, v: T) {
        *m.lock().unwrap() = v;
    }

    fn count(&self, method: &str, path_suffix: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.method.as_str() == method && r.url.ends_with(path_suffix))
            .count()
    }

    fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    fn access_token(&self, user_id: &str) -> String {
        let (exp, iat) = self.access_claims.lock().unwrap().unwrap_or_else(|| {
            let iat = *self.server_time.lock().unwrap();
            (iat + *self.lifetime.lock().unwrap(), iat)
        });
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let mut claims = json!({"sub": user_id, "iat": iat, "exp": exp, "typ": "access", "n": n,
            "baas_device_id": "65f0c0ffee0000000000abcd"});
        if let Some(d) = self.user_data.lock().unwrap().clone() {
            claims["user_data"] = d;
        }
        let t = jwt(claims);
        self.owners
            .lock()
            .unwrap()
            .insert(t.clone(), user_id.to_owned());
        t
    }

    fn refresh_token(&self, user_id: &str) -> String {
        let iat = *self.server_time.lock().unwrap();
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let t = jwt(
            json!({"sub": user_id, "iat": iat, "exp": iat + 5_184_000, "typ": "refresh", "n": n}),
        );
        self.owners
            .lock()
            .unwrap()
            .insert(t.clone(), user_id.to_owned());
        t
    }

    fn owner(&self, auth: &Option<String>) -> Option<String> {
        let token = auth.as_deref()?.strip_prefix("Bearer ")?;
        self.owners.lock().unwrap().get(token).cloned()
    }

    async fn handle(&self, req: HttpRequest) -> Result<HttpResponse, TransportError> {
        let h = |n: http::HeaderName| req.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
        let rec = Recorded {
            method: req.method().clone(),
            url: req.uri().to_string(),
            auth: h(http::header::AUTHORIZATION),
            content_type: h(http::header::CONTENT_TYPE),
            accept: h(http::header::ACCEPT),
            body: String::from_utf8_lossy(req.body()).into_owned(),
        };
        self.log.lock().unwrap().push(rec.clone());
        let path = req.uri().path().to_owned();
        let offline = || {
            Err(TransportError::new(
                TransportErrorKind::Connect,
                "connection refused",
            ))
        };
        let json_reply = |status: u16, body: Value| {
            Ok(http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Bytes::from(body.to_string()))
                .unwrap())
        };
        let invalid_session =
            |msg: &str| json_reply(401, json!({"error": msg, "error_code": "InvalidSession"}));
        let m = req.method().clone();
        if path.ends_with("/location") {
            return json_reply(
                200,
                json!({"hostname": "http://host.test", "ws_hostname": "ws://host.test",
                "deployment_model": "LOCAL", "location": "local"}),
            );
        }
        if path.ends_with("/login") {
            if let Some((status, body, ct)) = self.login_body_override.lock().unwrap().clone() {
                return Ok(http::Response::builder()
                    .status(status)
                    .header("content-type", ct)
                    .body(Bytes::from(body))
                    .unwrap());
            }
            let provider = path.rsplit('/').nth(1).unwrap().to_owned();
            let body: Value = serde_json::from_str(&rec.body).unwrap();
            // Email users keep their id across logins; others get a new one.
            let user_id = match body.get("username").and_then(Value::as_str) {
                Some(email) => format!("user-{email}"),
                None => format!("user-{}", self.next_user.fetch_add(1, Ordering::SeqCst)),
            };
            self.providers
                .lock()
                .unwrap()
                .insert(user_id.clone(), provider);
            return json_reply(
                200,
                json!({
                    "access_token": self.access_token(&user_id),
                    "refresh_token": self.refresh_token(&user_id),
                    "user_id": user_id,
                    "device_id": "65f0c0ffee0000000000abcd",
                }),
            );
        }
        if path.ends_with("/auth/profile") {
            match *self.profile_mode.lock().unwrap() {
                Mode::Ok => {}
                Mode::Unauthorized => return invalid_session("invalid session"),
                Mode::ServerError => {
                    return json_reply(
                        500,
                        json!({"error": "boom", "error_code": "InternalServerError"}),
                    );
                }
                Mode::Offline => return offline(),
            }
            let Some(user_id) = self.owner(&rec.auth) else {
                return invalid_session("invalid session");
            };
            let provider = self
                .providers
                .lock()
                .unwrap()
                .get(&user_id)
                .cloned()
                .unwrap_or_default();
            return json_reply(
                200,
                json!({
                    "user_id": user_id, "domain_id": "d",
                    "identities": [{"id": format!("{user_id}-identity"), "provider_type": provider}],
                    "data": {"email": "a@b.c", "name": "Ann", "picture": "http://p", "min_age": "18"},
                    "type": "normal"
                }),
            );
        }
        if path.ends_with("/auth/session") && m == Method::POST {
            let delay = *self.refresh_delay.lock().unwrap();
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            match *self.refresh_mode.lock().unwrap() {
                Mode::Ok => {}
                Mode::Unauthorized => {
                    return invalid_session("invalid session: failed to find refresh token");
                }
                Mode::ServerError => {
                    return Ok(http::Response::builder()
                        .status(503)
                        .body(Bytes::from_static(b"<html>busy</html>"))
                        .unwrap());
                }
                Mode::Offline => return offline(),
            }
            let Some(user_id) = self.owner(&rec.auth) else {
                return invalid_session("invalid session: failed to find refresh token");
            };
            return json_reply(201, json!({"access_token": self.access_token(&user_id)}));
        }
        if path.ends_with("/auth/session") && m == Method::DELETE {
            return match *self.logout_mode.lock().unwrap() {
                Mode::Offline => offline(),
                Mode::ServerError => json_reply(500, json!({"error": "boom"})),
                _ => Ok(http::Response::builder()
                    .status(204)
                    .body(Bytes::new())
                    .unwrap()),
            };
        }
        if path.ends_with("/auth/delete") {
            return Ok(http::Response::builder()
                .status(204)
                .body(Bytes::new())
                .unwrap());
        }
        if path.ends_with("/custom") {
            let mut q = self.custom.lock().unwrap();
            let status = if q.is_empty() { 200 } else { q.remove(0) };
            return json_reply(status, json!({"ok": status == 200}));
        }
        json_reply(404, json!({"error": "not found", "error_code": "NotFound"}))
    }
}

#[derive(Debug, Clone)]
struct FakeTransport(Arc<Fake>);

#[async_trait::async_trait]
impl HttpTransport for FakeTransport {
    async fn send(
        &self,
        request: HttpRequest,
        o: &RequestOptions,
    ) -> Result<HttpResponse, TransportError> {
        self.0
            .limits
            .lock()
            .unwrap()
            .push((request.uri().path().to_owned(), o.max_response_bytes()));
        self.0.handle(request).await
    }
}

#[derive(Debug)]
struct Anon(bool);
impl Credential for Anon {
    fn provider_name(&self) -> &str {
        "anon-user"
    }
    fn login_body(&self) -> Result<LoginBody, CredentialError> {
        Ok(LoginBody::new())
    }
    fn reuse_anonymous_user(&self) -> bool {
        self.0
    }
}

struct EmailPw(&'static str, &'static str);
impl std::fmt::Debug for EmailPw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EmailPw({}, <redacted>)", self.0)
    }
}
impl Credential for EmailPw {
    fn provider_name(&self) -> &str {
        "local-userpass"
    }
    fn login_body(&self) -> Result<LoginBody, CredentialError> {
        let mut b = LoginBody::new();
        b.insert("username".into(), json!(self.0));
        b.insert("password".into(), json!(self.1));
        Ok(b)
    }
}

struct Env {
    fake: Arc<Fake>,
    clock: Arc<ManualClock>,
    store: MemoryStore,
    app: AppCore,
}

fn env() -> Env {
    let fake = Fake::new();
    let clock = ManualClock::at(LOCAL_NOW);
    let store = MemoryStore::new();
    let app = app_with(&fake, &clock, &store);
    Env {
        fake,
        clock,
        store,
        app,
    }
}

fn app_with(fake: &Arc<Fake>, clock: &Arc<ManualClock>, store: &MemoryStore) -> AppCore {
    AppCore::new(
        AppConfig::new("app-1", "http://base.test/").with_clock(clock.clone()),
        SharedTransport::new(FakeTransport(fake.clone())),
        Arc::new(store.clone()),
    )
    .unwrap()
}

fn drain(rx: &mut EventReceiver) -> Vec<UserEvent> {
    let mut v = Vec::new();
    while let Ok(e) = rx.try_recv() {
        v.push(e);
    }
    v
}

// ---------------------------------------------------------------- login & requests

#[tokio::test(start_paused = true)]
async fn login_sends_device_info_fetches_profile_and_uses_location_once() {
    let e = env();
    let mut rx = e.app.subscribe();
    let user = e.app.log_in(&EmailPw("a@b.c", "pw-secret")).await.unwrap();
    assert_eq!(user.id(), "user-a@b.c");
    assert_eq!(user.state(), UserState::LoggedIn);
    assert_eq!(user.profile().name().as_deref(), Some("Ann"));
    assert_eq!(user.profile().picture_url().as_deref(), Some("http://p"));
    assert_eq!(user.profile().min_age().as_deref(), Some("18"));
    assert_eq!(user.identities()[0].provider_type, "local-userpass");
    assert_eq!(user.user_type().as_deref(), Some("normal"));
    assert_eq!(
        user.device_id().as_deref(),
        Some("65f0c0ffee0000000000abcd")
    );
    assert_eq!(e.app.current_user(), Some(user.clone()));

    let reqs = e.fake.requests();
    assert_eq!(
        reqs[0].url,
        "http://base.test/api/client/v2.0/app/app-1/location"
    );
    assert_eq!(
        reqs[1].url,
        "http://host.test/api/client/v2.0/app/app-1/auth/providers/local-userpass/login"
    );
    assert_eq!(reqs[2].url, "http://host.test/api/client/v2.0/auth/profile");
    assert!(
        reqs.iter()
            .all(|r| r.accept.as_deref() == Some("application/json"))
    );
    assert_eq!(reqs[1].content_type.as_deref(), Some("application/json"));
    assert!(reqs[1].auth.is_none());
    assert!(reqs[2].content_type.is_none());
    assert!(reqs[2].auth.as_deref().unwrap().starts_with("Bearer ey"));
    let body: Value = serde_json::from_str(&reqs[1].body).unwrap();
    assert_eq!(body["username"], "a@b.c");
    assert_eq!(body["options"]["device"]["sdk"], "latchkey");
    assert!(body["options"]["device"]["sdkVersion"].is_string());
    assert!(body["options"]["device"]["platform"].is_string());
    assert!(body["options"]["device"].get("deviceId").is_none());

    // Second login: device id from the first one, no second location request.
    e.app.log_in(&EmailPw("b@b.c", "pw")).await.unwrap();
    assert_eq!(e.fake.count("GET", "/location"), 1);
    let last_login = e
        .fake
        .requests()
        .into_iter()
        .rfind(|r| r.url.ends_with("/login"))
        .unwrap();
    let body: Value = serde_json::from_str(&last_login.body).unwrap();
    assert_eq!(
        body["options"]["device"]["deviceId"],
        json!({"$oid": "65f0c0ffee0000000000abcd"})
    );

    let events = drain(&mut rx);
    assert!(events.contains(&UserEvent::LoggedIn {
        user_id: "user-a@b.c".into()
    }));
    assert!(events.contains(&UserEvent::Switched {
        user_id: Some("user-b@b.c".into())
    }));
}

#[tokio::test(start_paused = true)]
async fn profile_failure_fails_the_login() {
    let e = env();
    Fake::set(&e.fake.profile_mode, Mode::ServerError);
    let err = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert_eq!(err.error_code(), Some(ErrorCode::InternalServerError));
    assert!(e.app.all_users().is_empty());
    assert!(e.app.current_user().is_none());
    assert!(e.store.load("app-1").unwrap().users.is_empty());
}

#[tokio::test(start_paused = true)]
async fn malformed_login_replies_are_typed_errors_without_secrets() {
    let e = env();
    let secret_jwt = jwt(json!({"sub": "u", "iat": 1, "exp": 2}));
    let cases: Vec<(u16, String, &'static str, ErrorKind)> = vec![
        (
            200,
            "not json at all".into(),
            "text/plain",
            ErrorKind::Decode,
        ),
        (200, "{}".into(), "application/json", ErrorKind::Decode),
        (
            200,
            format!(r#"{{"access_token":"{secret_jwt}","user_id":"u","device_id":"d"}}"#),
            "application/json",
            ErrorKind::Decode,
        ),
        (
            200,
            format!(
                r#"{{"access_token":"garbage","refresh_token":"{secret_jwt}","user_id":"u","device_id":"d"}}"#
            ),
            "application/json",
            ErrorKind::Decode,
        ),
        (
            200,
            r#"{"access_token":"a.b.c","refresh_token":"a.b.c","user_id":"u","device_id":"d"}"#
                .into(),
            "application/json",
            ErrorKind::Decode,
        ),
        (
            401,
            r#"{"error":"unauthorized","error_code":"InvalidPassword"}"#.into(),
            "application/json",
            ErrorKind::Server,
        ),
        (
            502,
            "<html>bad gateway</html>".into(),
            "text/html",
            ErrorKind::Server,
        ),
        (
            400,
            r#"{"error_code": 42}"#.into(),
            "application/json",
            ErrorKind::Server,
        ),
    ];
    for (status, body, ct, kind) in cases {
        Fake::set(
            &e.fake.login_body_override,
            Some((status, body.clone(), ct)),
        );
        let err = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{body}: {err:?}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(&secret_jwt), "secret leaked: {shown}");
    }
    Fake::set(
        &e.fake.login_body_override,
        Some((
            401,
            r#"{"error":"unauthorized","error_code":"InvalidPassword"}"#.into(),
            "application/json",
        )),
    );
    let err = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::InvalidPassword));
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    assert!(e.app.all_users().is_empty());
}

#[test]
fn invalid_base_url_is_a_config_error() {
    for url in ["not a url", "ftp://x", "http://", "/relative"] {
        let err = AppCore::new(
            AppConfig::new("app", url),
            SharedTransport::new(FakeTransport(Fake::new())),
            Arc::new(MemoryStore::new()),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{url}");
    }
}

#[tokio::test(start_paused = true)]
async fn request_timeout_is_enforced() {
    #[derive(Debug)]
    struct Hang;
    #[async_trait::async_trait]
    impl HttpTransport for Hang {
        async fn send(
            &self,
            _r: HttpRequest,
            o: &RequestOptions,
        ) -> Result<HttpResponse, TransportError> {
            assert_eq!(o.timeout(), Some(Duration::from_secs(5)));
            std::future::pending().await
        }
    }
    let app = AppCore::new(
        AppConfig::new("app", "http://x").with_request_timeout(Duration::from_secs(5)),
        SharedTransport::new(Hang),
        Arc::new(MemoryStore::new()),
    )
    .unwrap();
    let err = app.log_in(&Anon(true)).await.unwrap_err();
    assert!(err.is_timeout() && err.is_transient(), "{err:?}");
}

// ---------------------------------------------------------------- proactive refresh & skew

async fn proactive_refresh_with_server_clock(server_time: i64) {
    let e = env();
    Fake::set(&e.fake.server_time, server_time);
    let user = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    let login_token = user.access_token().unwrap();
    // Expiry is local receipt time + (exp - iat), whatever the server's clock says.
    assert_eq!(
        user.access_token_expires_at(),
        Some(UNIX_EPOCH + Duration::from_secs(LOCAL_NOW + 1800))
    );
    assert_eq!(user.valid_access_token().await.unwrap(), login_token);
    e.clock.advance(Duration::from_secs(1739));
    assert_eq!(user.valid_access_token().await.unwrap(), login_token);
    assert_eq!(e.fake.count("POST", "/auth/session"), 0);
    e.clock.advance(Duration::from_secs(2)); // 1741 s: inside the 60 s buffer
    let fresh = user.valid_access_token().await.unwrap();
    assert_ne!(fresh, login_token);
    assert_eq!(e.fake.count("POST", "/auth/session"), 1);
    assert_eq!(user.access_token(), Some(fresh.clone()));
    // The refresh bearer is the refresh token.
    let refresh = e
        .fake
        .requests()
        .into_iter()
        .rfind(|r| r.url.ends_with("/auth/session"))
        .unwrap();
    assert_eq!(
        refresh.auth,
        Some(format!("Bearer {}", user.refresh_token().unwrap()))
    );
    assert!(refresh.content_type.is_none() && refresh.body.is_empty());
    // Fresh again: no further refresh.
    assert_eq!(user.valid_access_token().await.unwrap(), fresh);
    assert_eq!(e.fake.count("POST", "/auth/session"), 1);
}

#[tokio::test(start_paused = true)]
async fn proactive_refresh_without_skew() {
    proactive_refresh_with_server_clock(LOCAL_NOW as i64).await;
}

#[tokio::test(start_paused = true)]
async fn proactive_refresh_with_server_clock_far_behind() {
    // iat/exp long in the local past: a naive exp check would refresh forever.
    proactive_refresh_with_server_clock(1_000_000_000).await;
}

#[tokio::test(start_paused = true)]
async fn proactive_refresh_with_server_clock_far_ahead() {
    // iat/exp far in the local future: a naive exp check would never refresh.
    proactive_refresh_with_server_clock(2_500_000_000).await;
}

#[tokio::test(start_paused = true)]
async fn short_tokens_use_a_ten_percent_buffer() {
    let e = env();
    Fake::set(&e.fake.lifetime, 100);
    let user = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    e.clock.advance(Duration::from_secs(89));
    user.valid_access_token().await.unwrap();
    assert_eq!(e.fake.count("POST", "/auth/session"), 0);
    e.clock.advance(Duration::from_secs(2));
    user.valid_access_token().await.unwrap();
    assert_eq!(e.fake.count("POST", "/auth/session"), 1);
    assert_eq!(
        refresh_buffer(Duration::from_secs(1800)),
        Duration::from_secs(60)
    );
    assert_eq!(
        refresh_buffer(Duration::from_secs(100)),
        Duration::from_secs(10)
    );
}

/// `(exp, iat)` pairs whose lifetime is not in `1 s ..= 1 year`.
const BAD_LIFETIMES: &[(i64, i64)] = &[
    (i64::MAX, 0),
    (i64::MAX, i64::MIN),
    (0, i64::MIN),
    (i64::MIN, 0),
    (i64::MIN, i64::MAX),
    (100, 200),
    (5, 5),
    (0, 0),
    (-20, -10),
    (-1, 0),
    (366 * 24 * 3600, 0),
    (LOCAL_NOW as i64 + 365 * 24 * 3600 + 1, LOCAL_NOW as i64),
];

#[tokio::test(start_paused = true)]
async fn login_with_an_invalid_token_lifetime_fails_cleanly() {
    for &(exp, iat) in BAD_LIFETIMES {
        let e = env();
        let mut rx = e.app.subscribe();
        Fake::set(&e.fake.access_claims, Some((exp, iat)));
        let err = e
            .app
            .log_in(&EmailPw("a@b.c", "pw"))
            .await
            .expect_err("an invalid lifetime must fail the login");
        assert_eq!(
            err.kind(),
            ErrorKind::Decode,
            "exp={exp} iat={iat}: {err:?}"
        );
        assert!(
            err.to_string()
                .contains("access token has an invalid lifetime"),
            "{err}"
        );
        assert!(e.app.all_users().is_empty() && e.app.current_user().is_none());
        assert!(e.store.load("app-1").unwrap().users.is_empty());
        assert!(drain(&mut rx).is_empty());
        // No profile request with the rejected token.
        assert_eq!(e.fake.count("GET", "/auth/profile"), 0);
    }
}

#[tokio::test(start_paused = true)]
async fn refresh_with_an_invalid_token_lifetime_fails_cleanly() {
    for &(exp, iat) in BAD_LIFETIMES {
        let e = env();
        let user = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
        let token = user.access_token().unwrap();
        let expires = user.access_token_expires_at();
        let stored = e.store.load("app-1").unwrap();
        let mut rx = e.app.subscribe();
        Fake::set(&e.fake.access_claims, Some((exp, iat)));
        let err = user.refresh_access_token().await.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Decode,
            "exp={exp} iat={iat}: {err:?}"
        );
        assert!(err.to_string().contains("invalid lifetime"), "{err}");
        // Nothing changed.
        assert_eq!(user.state(), UserState::LoggedIn);
        assert_eq!(user.access_token(), Some(token.clone()));
        assert_eq!(user.access_token_expires_at(), expires);
        assert_eq!(e.store.load("app-1").unwrap(), stored);
        assert!(drain(&mut rx).is_empty());
        // A proactive refresh that gets such a token keeps the still-valid one.
        e.clock.advance(Duration::from_secs(1790));
        assert_eq!(user.valid_access_token().await.unwrap(), token);
        assert_eq!(user.state(), UserState::LoggedIn);
    }
}

#[tokio::test(start_paused = true)]
async fn link_with_an_invalid_token_lifetime_fails_cleanly() {
    for &(exp, iat) in BAD_LIFETIMES {
        let e = env();
        let user = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
        let token = user.access_token().unwrap();
        let identities = user.identities();
        Fake::set(&e.fake.access_claims, Some((exp, iat)));
        let err = user
            .link_credentials(&EmailPw("a@b.c", "pw"))
            .await
            .unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Decode,
            "exp={exp} iat={iat}: {err:?}"
        );
        assert!(err.to_string().contains("invalid lifetime"), "{err}");
        assert_eq!(user.state(), UserState::LoggedIn);
        assert_eq!(user.access_token(), Some(token));
        assert_eq!(user.identities(), identities);
    }
}

#[tokio::test(start_paused = true)]
async fn sane_token_lifetimes_are_accepted() {
    for (exp, iat, lifetime) in [
        (-5i64, -10i64, 5u64),
        (1, 0, 1),
        (365 * 24 * 3600, 0, 365 * 24 * 3600),
    ] {
        let e = env();
        Fake::set(&e.fake.access_claims, Some((exp, iat)));
        let user = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
        assert_eq!(
            user.access_token_expires_at(),
            Some(UNIX_EPOCH + Duration::from_secs(LOCAL_NOW + lifetime))
        );
    }
}

#[tokio::test(start_paused = true)]
async fn stored_users_with_absurd_expiry_values_do_not_panic() {
    let fake = Fake::new();
    let clock = ManualClock::at(LOCAL_NOW);
    let store = MemoryStore::new();
    let access = jwt(json!({"sub": "u1", "iat": 0, "exp": 1800, "typ": "access"}));
    let refresh = jwt(json!({"sub": "u1", "iat": 0, "exp": 99, "typ": "refresh"}));
    for (ms, secs) in [(i64::MAX, i64::MAX), (i64::MIN, i64::MIN), (0, 0), (-1, -1)] {
        let mut su = stored_logged_in("u1", &access, &refresh);
        su.access_token_expires_at_ms = Some(ms);
        su.access_token_lifetime_secs = Some(secs);
        store.save_user("app-1", &su).unwrap();
        let app = app_with(&fake, &clock, &store);
        let user = app.current_user().unwrap();
        assert_eq!(user.state(), UserState::LoggedIn);
        // Never later than the token's own lifetime from now.
        assert!(
            user.access_token_expires_at().unwrap()
                <= UNIX_EPOCH + Duration::from_secs(LOCAL_NOW + 1800)
        );
        // Whatever was stored, asking for a token neither panics nor loops.
        let _ = user.valid_access_token().await;
    }
}

#[tokio::test(start_paused = true)]
async fn tiny_lifetimes_do_not_refresh_before_every_request() {
    let e = env();
    Fake::set(&e.fake.lifetime, 1);
    let user = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    let token = user.access_token().unwrap();
    for _ in 0..5 {
        assert_eq!(user.valid_access_token().await.unwrap(), token);
    }
    assert_eq!(e.fake.count("POST", "/auth/session"), 0);
    e.clock.advance(Duration::from_millis(950));
    assert_ne!(user.valid_access_token().await.unwrap(), token);
    assert_eq!(e.fake.count("POST", "/auth/session"), 1);
    // The fresh token is not due at once either.
    user.valid_access_token().await.unwrap();
    assert_eq!(e.fake.count("POST", "/auth/session"), 1);

    // A zero lifetime (exp == iat) used to make every call refresh; it is now refused.
    let e = env();
    Fake::set(&e.fake.lifetime, 0);
    let err = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!(e.fake.count("POST", "/auth/session"), 0);
}

#[test]
fn refresh_buffer_is_at_most_half_the_lifetime() {
    for ms in [
        0u64, 1, 2, 999, 1_000, 1_001, 2_000, 10_000, 119_999, 120_000, 599_999, 600_000, 1_800_000,
    ] {
        let l = Duration::from_millis(ms);
        let b = refresh_buffer(l);
        assert!(b * 2 <= l, "{l:?} -> {b:?}");
        assert!(b <= Duration::from_secs(60), "{l:?} -> {b:?}");
    }
    assert_eq!(refresh_buffer(Duration::ZERO), Duration::ZERO);
    assert_eq!(
        refresh_buffer(MAX_ACCESS_TOKEN_LIFETIME),
        Duration::from_secs(60)
    );
}

#[test]
fn a_store_answering_for_another_app_is_refused() {
    #[derive(Debug)]
    struct Foreign;
    impl UserStore for Foreign {
        fn load(&self, _app_id: &str) -> Result<StoredUsers, StoreError> {
            Ok(StoredUsers {
                app_id: Some("app-2".into()),
                ..Default::default()
            })
        }
        fn save_user(&self, _: &str, _: &StoredUser) -> Result<(), StoreError> {
            Ok(())
        }
        fn remove_user(&self, _: &str, _: &str) -> Result<(), StoreError> {
            Ok(())
        }
        fn set_current_user(&self, _: &str, _: Option<&str>) -> Result<(), StoreError> {
            Ok(())
        }
    }
    let fake = Fake::new();
    let err = AppCore::new(
        AppConfig::new("app-1", "http://base.test"),
        SharedTransport::new(FakeTransport(fake)),
        Arc::new(Foreign),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    assert!(err.to_string().contains("app-2"), "{err}");
}

/// A [`MemoryStore`] whose writes fail while `fail` is set.
#[derive(Debug, Clone, Default)]
struct FlakyStore {
    inner: MemoryStore,
    fail: Arc<std::sync::atomic::AtomicBool>,
}

impl FlakyStore {
    fn check(&self) -> Result<(), StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            Err(StoreError::new("disk full"))
        } else {
            Ok(())
        }
    }
}

impl UserStore for FlakyStore {
    fn load(&self, app_id: &str) -> Result<StoredUsers, StoreError> {
        self.inner.load(app_id)
    }
    fn save_user(&self, app_id: &str, user: &StoredUser) -> Result<(), StoreError> {
        self.check()?;
        self.inner.save_user(app_id, user)
    }
    fn remove_user(&self, app_id: &str, user_id: &str) -> Result<(), StoreError> {
        self.check()?;
        self.inner.remove_user(app_id, user_id)
    }
    fn set_current_user(&self, app_id: &str, user_id: Option<&str>) -> Result<(), StoreError> {
        self.check()?;
        self.inner.set_current_user(app_id, user_id)
    }
}

fn flaky_env() -> (Arc<Fake>, FlakyStore, AppCore) {
    let fake = Fake::new();
    let store = FlakyStore::default();
    let app = AppCore::new(
        AppConfig::new("app-1", "http://base.test/").with_clock(ManualClock::at(LOCAL_NOW)),
        SharedTransport::new(FakeTransport(fake.clone())),
        Arc::new(store.clone()),
    )
    .unwrap();
    (fake, store, app)
}

fn assert_store_not_cleared(err: &Error) {
    assert_eq!(err.kind(), ErrorKind::Store, "{err:?}");
    assert!(err.to_string().contains("logged out in memory"), "{err}");
    assert!(err.to_string().contains("disk full"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn log_out_reports_a_store_that_kept_the_tokens() {
    let (fake, store, app) = flaky_env();
    let user = app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    store.fail.store(true, Ordering::SeqCst);
    let err = user.log_out().await.unwrap_err();
    assert_store_not_cleared(&err);
    // Logged out in memory all the same, and the session was revoked.
    assert_eq!(user.state(), UserState::LoggedOut);
    assert!(user.access_token().is_none() && user.refresh_token().is_none());
    assert!(app.current_user().is_none());
    assert_eq!(fake.count("DELETE", "/auth/session"), 1);
    // The store still holds the tokens: that is what the error reports.
    let stored = store.inner.load("app-1").unwrap();
    assert!(stored.users[0].refresh_token.is_some());
    // A second log out is a no-op.
    user.log_out().await.unwrap();

    // With a working store, log out is Ok.
    let (_, _, app) = flaky_env();
    let user = app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    user.log_out().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn anonymous_log_out_and_remove_user_report_store_failures() {
    let (_, store, app) = flaky_env();
    let anon = app.log_in(&Anon(false)).await.unwrap();
    store.fail.store(true, Ordering::SeqCst);
    let err = anon.log_out().await.unwrap_err();
    assert_store_not_cleared(&err);
    assert_eq!(anon.state(), UserState::Removed);
    assert!(app.all_users().is_empty());

    // remove_user of a logged-in user, then of a logged-out one.
    store.fail.store(false, Ordering::SeqCst);
    let a = app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    let b = app.log_in(&EmailPw("b@b.c", "pw")).await.unwrap();
    b.log_out().await.unwrap();
    store.fail.store(true, Ordering::SeqCst);
    assert_store_not_cleared(&app.remove_user(&a).await.unwrap_err());
    assert_eq!(a.state(), UserState::Removed);
    assert_store_not_cleared(&app.remove_user(&b).await.unwrap_err());
    assert_eq!(b.state(), UserState::Removed);
    assert!(app.all_users().is_empty());
    assert_eq!(
        app.remove_user(&a).await.unwrap_err().kind(),
        ErrorKind::UserNotFound
    );
    // With a working store, remove_user is Ok.
    store.fail.store(false, Ordering::SeqCst);
    let c = app.log_in(&EmailPw("c@b.c", "pw")).await.unwrap();
    app.remove_user(&c).await.unwrap();
    assert!(
        store
            .inner
            .load("app-1")
            .unwrap()
            .users
            .iter()
            .all(|u| u.id != c.id())
    );
}

// ---------------------------------------------------------------- response-body limits

#[tokio::test(start_paused = true)]
async fn auth_routes_limit_response_bodies_to_one_mib() {
    let e = env();
    let user = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    user.refresh_access_token().await.unwrap();
    user.refresh_profile().await.unwrap();
    let fn_call = http::Request::post("/api/client/v2.0/app/app-1/functions/call")
        .body(Bytes::from_static(b"{}"))
        .unwrap();
    user.request(fn_call).await.unwrap();
    let custom = http::Request::get("http://host.test/custom")
        .body(Bytes::new())
        .unwrap();
    user.request(custom).await.unwrap();
    user.log_out().await.unwrap();
    let limits = e.fake.limits.lock().unwrap().clone();
    for (path, limit) in &limits {
        let expected = if path.ends_with("/functions/call") || path.ends_with("/custom") {
            latchkey_transport::DEFAULT_MAX_RESPONSE_BYTES
        } else {
            AUTH_MAX_RESPONSE_BYTES
        };
        assert_eq!(*limit, expected, "{path}");
    }
    for route in ["/location", "/login", "/auth/session", "/auth/profile"] {
        assert!(limits.iter().any(|(p, _)| p.ends_with(route)), "{route}");
    }
    assert_eq!(AUTH_MAX_RESPONSE_BYTES, 1024 * 1024);
}

#[tokio::test(start_paused = true)]
async fn an_oversized_reply_is_a_permanent_transport_error() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let t = SharedTransport::new(latchkey_transport::transport_fn(
        move |req: HttpRequest, opts: RequestOptions| {
            seen.fetch_add(1, Ordering::SeqCst);
            async move {
                Err(latchkey_transport::adapter::body_too_large(
                    opts.max_response_bytes(),
                    &req.uri().to_string(),
                ))
            }
        },
    ));
    let app = AppCore::new(
        AppConfig::new("app-1", "http://base.test"),
        t,
        Arc::new(MemoryStore::new()),
    )
    .unwrap();
    let err = app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err:?}");
    assert!(!err.is_transient());
    assert!(
        err.to_string().contains("larger than 1048576 bytes"),
        "{err}"
    );
    // The location GET is idempotent, but this failure is not retried.
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------- session expiry & transient failures

#[tokio::test(start_paused = true)]
async fn refresh_401_ends_the_session() {
    let e = env();
    let user = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    let mut rx = e.app.subscribe();
    Fake::set(&e.fake.refresh_mode, Mode::Unauthorized);
    let err = user.refresh_access_token().await.unwrap_err();
    assert!(err.is_session_expired(), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::SessionExpired);
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(err.error_code(), Some(ErrorCode::InvalidSession));
    assert_eq!(user.state(), UserState::LoggedOut);
    assert!(user.access_token().is_none() && user.refresh_token().is_none());
    assert_eq!(
        user.profile().email().as_deref(),
        Some("a@b.c"),
        "profile kept"
    );
    assert!(e.app.current_user().is_none());
    assert_eq!(e.app.all_users(), vec![user.clone()]);
    let events = drain(&mut rx);
    assert!(
        events.contains(&UserEvent::SessionExpired {
            user_id: user.id().into()
        }),
        "{events:?}"
    );
    assert!(events.contains(&UserEvent::Switched { user_id: None }));
    let stored = e.store.load("app-1").unwrap();
    assert_eq!(stored.users[0].state, UserState::LoggedOut);
    assert!(stored.users[0].access_token.is_none() && stored.users[0].refresh_token.is_none());
    // Later calls are client-side errors, no network.
    let before = e.fake.requests().len();
    assert_eq!(
        user.valid_access_token().await.unwrap_err().kind(),
        ErrorKind::NotLoggedIn
    );
    assert_eq!(e.fake.requests().len(), before);
}

#[tokio::test(start_paused = true)]
async fn proactive_refresh_401_is_session_expired_too() {
    let e = env();
    let user = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    Fake::set(&e.fake.refresh_mode, Mode::Unauthorized);
    e.clock.advance(Duration::from_secs(1790));
    let err = user.valid_access_token().await.unwrap_err();
    assert!(err.is_session_expired());
    assert_eq!(user.state(), UserState::LoggedOut);
}

#[tokio::test(start_paused = true)]
async fn transient_refresh_failure_keeps_the_valid_token() {
    for mode in [Mode::Offline, Mode::ServerError] {
        let e = env();
        let user = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
        let token = user.access_token().unwrap();
        let mut rx = e.app.subscribe();
        Fake::set(&e.fake.refresh_mode, mode);
        let err = user.refresh_access_token().await.unwrap_err();
        assert!(err.is_transient(), "{mode:?}: {err:?}");
        assert!(!err.is_session_expired());
        // Inside the buffer but not expired: the old token is still handed out.
        e.clock.advance(Duration::from_secs(1770));
        assert_eq!(user.valid_access_token().await.unwrap(), token);
        assert_eq!(user.state(), UserState::LoggedIn);
        assert_eq!(e.app.current_user(), Some(user.clone()));
        assert!(drain(&mut rx).is_empty());
        // Past expiry the failure surfaces, and still nobody is logged out.
        e.clock.advance(Duration::from_secs(60));
        let err = user.valid_access_token().await.unwrap_err();
        assert!(err.is_transient());
        assert_eq!(user.state(), UserState::LoggedIn);
        // The server comes back: the next call refreshes.
        Fake::set(&e.fake.refresh_mode, Mode::Ok);
        assert_ne!(user.valid_access_token().await.unwrap(), token);
    }
}

// ---------------------------------------------------------------- single flight

#[tokio::test(start_paused = true)]
async fn one_hundred_concurrent_callers_share_one_refresh() {
    let e = env();
    let user = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    let old = user.access_token().unwrap();
    Fake::set(&e.fake.refresh_delay, Duration::from_millis(50));
    e.clock.advance(Duration::from_secs(3600)); // expired
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let u = user.clone();
            tokio::spawn(async move { u.valid_access_token().await })
        })
        .collect();
    let tokens: Vec<String> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert_eq!(e.fake.count("POST", "/auth/session"), 1);
    assert!(tokens.iter().all(|t| t == &tokens[0] && t != &old));
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_a_failed_refresh() {
    let e = env();
    let user = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    Fake::set(&e.fake.refresh_delay, Duration::from_millis(50));
    Fake::set(&e.fake.refresh_mode, Mode::Unauthorized);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let u = user.clone();
            tokio::spawn(async move { u.refresh_access_token().await })
        })
        .collect();
    for r in futures::future::join_all(tasks).await {
        assert!(r.unwrap().unwrap_err().is_session_expired());
    }
    assert_eq!(e.fake.count("POST", "/auth/session"), 1);
}

// ---------------------------------------------------------------- 401 replay (mockall)

mockall::mock! {
    Transport {}
    #[async_trait::async_trait]
    impl HttpTransport for Transport {
        async fn send(&self, request: HttpRequest, options: &RequestOptions) -> Result<HttpResponse, TransportError>;
    }
}

impl std::fmt::Debug for MockTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MockTransport")
    }
}

fn stored_logged_in(id: &str, access: &str, refresh: &str) -> StoredUser {
    StoredUser {
        id: id.into(),
        state: UserState::LoggedIn,
        access_token: Some(access.into()),
        refresh_token: Some(refresh.into()),
        access_token_expires_at_ms: Some(((LOCAL_NOW + 1800) * 1000) as i64),
        access_token_lifetime_secs: Some(1800),
        profile: Default::default(),
        identities: vec![UserIdentity {
            id: "i".into(),
            provider_type: "local-userpass".into(),
        }],
        user_type: Some("normal".into()),
        device_id: None,
        provider_type: Some("local-userpass".into()),
    }
}

fn resp(status: u16, body: &str) -> HttpResponse {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Bytes::from(body.to_owned()))
        .unwrap()
}

fn bearer(req: &HttpRequest) -> String {
    req.headers()["authorization"].to_str().unwrap().to_owned()
}

fn mock_app(mock: MockTransport, access: &str, refresh: &str) -> (AppCore, User) {
    let store = MemoryStore::new();
    store
        .save_user("app-1", &stored_logged_in("u1", access, refresh))
        .unwrap();
    store.set_current_user("app-1", Some("u1")).unwrap();
    let app = AppCore::new(
        AppConfig::new("app-1", "http://base.test").with_clock(ManualClock::at(LOCAL_NOW)),
        SharedTransport::new(mock),
        Arc::new(store),
    )
    .unwrap();
    let user = app.current_user().unwrap();
    (app, user)
}

#[tokio::test(start_paused = true)]
async fn a_401_refreshes_once_and_replays_once() {
    let old = jwt(json!({"sub": "u1", "iat": LOCAL_NOW, "exp": LOCAL_NOW + 1800}));
    let new = jwt(json!({"sub": "u1", "iat": LOCAL_NOW + 1, "exp": LOCAL_NOW + 1801}));
    let refresh =
        jwt(json!({"sub": "u1", "iat": LOCAL_NOW, "exp": LOCAL_NOW + 99999, "typ": "refresh"}));
    let mut mock = MockTransport::new();
    let mut seq = mockall::Sequence::new();
    mock.expect_send()
        .withf(|r, _| r.uri().path().ends_with("/location"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(resp(200, r#"{"hostname":"http://host.test"}"#)));
    let (o, n, rt) = (old.clone(), new.clone(), refresh.clone());
    mock.expect_send()
        .withf(move |r, _| r.uri() == "http://host.test/custom" && bearer(r) == format!("Bearer {o}"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(resp(401, r#"{"error":"invalid session: access token expired","error_code":"InvalidSession"}"#)));
    mock.expect_send()
        .withf(move |r, _| {
            r.method() == Method::POST
                && r.uri().path() == "/api/client/v2.0/auth/session"
                && bearer(r) == format!("Bearer {rt}")
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(move |_, _| Ok(resp(200, &json!({"access_token": n}).to_string())));
    let n2 = new.clone();
    mock.expect_send()
        .withf(move |r, _| {
            r.uri() == "http://host.test/custom" && bearer(r) == format!("Bearer {n2}")
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| {
            Ok(resp(
                401,
                r#"{"error":"still no","error_code":"InvalidSession"}"#,
            ))
        });
    let (_app, user) = mock_app(mock, &old, &refresh);
    let req = http::Request::get("/custom").body(Bytes::new()).unwrap();
    let r = user.request(req).await.unwrap();
    // The replay's 401 is returned as is: no second refresh, no third attempt.
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(user.access_token(), Some(new));
    assert_eq!(user.state(), UserState::LoggedIn);
}

#[tokio::test(start_paused = true)]
async fn a_401_then_success_returns_the_replayed_response() {
    let e = env();
    let user = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    Fake::set(&e.fake.custom, vec![401]);
    let req = http::Request::post("http://host.test/custom")
        .header("content-type", "application/json")
        .body(Bytes::from_static(b"{\"x\":1}"))
        .unwrap();
    let r = user.request(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(e.fake.count("POST", "/auth/session"), 1);
    let customs: Vec<_> = e
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.url.ends_with("/custom"))
        .collect();
    assert_eq!(customs.len(), 2);
    assert_eq!(customs[1].body, "{\"x\":1}");
    assert_ne!(customs[0].auth, customs[1].auth);
}

#[tokio::test(start_paused = true)]
async fn a_401_whose_refresh_is_rejected_is_session_expired() {
    let e = env();
    let user = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    Fake::set(&e.fake.custom, vec![401]);
    Fake::set(&e.fake.refresh_mode, Mode::Unauthorized);
    let err = user
        .request(http::Request::get("/custom").body(Bytes::new()).unwrap())
        .await
        .unwrap_err();
    assert!(err.is_session_expired());
    assert_eq!(user.state(), UserState::LoggedOut);
    assert_eq!(e.fake.count("GET", "/custom"), 1);
}

// ---------------------------------------------------------------- anonymous users

#[tokio::test(start_paused = true)]
async fn anonymous_login_reuses_the_logged_in_anonymous_user() {
    let e = env();
    let a = e.app.log_in(&Anon(true)).await.unwrap();
    assert!(a.is_anonymous());
    let b = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    assert_eq!(e.app.current_user(), Some(b.clone()));
    let requests = e.fake.requests().len();
    let again = e.app.log_in(&Anon(true)).await.unwrap();
    assert_eq!(again, a);
    assert_eq!(e.fake.requests().len(), requests, "no network call");
    assert_eq!(e.app.current_user(), Some(a.clone()));
    // no_reuse always creates a new anonymous user.
    let c = e.app.log_in(&Anon(false)).await.unwrap();
    assert_ne!(c, a);
    assert_eq!(e.fake.count("POST", "/anon-user/login"), 2);
    assert_eq!(e.app.current_user(), Some(c.clone()));
    // Reuse now prefers the current anonymous user.
    assert_eq!(e.app.log_in(&Anon(true)).await.unwrap(), c);
}

#[tokio::test(start_paused = true)]
async fn anonymous_logout_removes_the_user() {
    let e = env();
    let a = e.app.log_in(&Anon(true)).await.unwrap();
    let refresh = a.refresh_token().unwrap();
    let mut rx = e.app.subscribe();
    a.log_out().await.unwrap();
    assert_eq!(a.state(), UserState::Removed);
    assert!(e.app.all_users().is_empty());
    assert!(e.app.current_user().is_none());
    assert!(e.store.load("app-1").unwrap().users.is_empty());
    let del = e
        .fake
        .requests()
        .into_iter()
        .rfind(|r| r.method == Method::DELETE)
        .unwrap();
    assert!(del.url.ends_with("/auth/session"));
    assert_eq!(del.auth, Some(format!("Bearer {refresh}")));
    let events = drain(&mut rx);
    assert!(events.contains(&UserEvent::LoggedOut {
        user_id: a.id().into()
    }));
    assert!(events.contains(&UserEvent::Removed {
        user_id: a.id().into()
    }));
    // A new anonymous login creates a new user.
    let b = e.app.log_in(&Anon(true)).await.unwrap();
    assert_ne!(b.id(), a.id());
}

// ---------------------------------------------------------------- logout, remove, delete

#[tokio::test(start_paused = true)]
async fn logout_offline_still_logs_out_locally() {
    for mode in [Mode::Offline, Mode::ServerError] {
        let e = env();
        let user = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
        Fake::set(&e.fake.logout_mode, mode);
        user.log_out().await.unwrap();
        assert_eq!(user.state(), UserState::LoggedOut);
        assert!(user.access_token().is_none());
        assert_eq!(user.profile().name().as_deref(), Some("Ann"));
        assert!(e.app.current_user().is_none());
        let stored = e.store.load("app-1").unwrap();
        assert_eq!(stored.users[0].state, UserState::LoggedOut);
        assert!(stored.users[0].refresh_token.is_none());
        assert_eq!(stored.current_user_id, None);
        // Logging out again is a no-op without a request.
        let n = e.fake.requests().len();
        user.log_out().await.unwrap();
        assert_eq!(e.fake.requests().len(), n);
    }
}

#[tokio::test(start_paused = true)]
async fn current_user_transitions() {
    let e = env();
    let a = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    let b = e.app.log_in(&EmailPw("b@b.c", "pw")).await.unwrap();
    assert_eq!(e.app.current_user(), Some(b.clone()));
    e.app.switch_user(&a).unwrap();
    assert_eq!(e.app.current_user(), Some(a.clone()));
    assert_eq!(
        e.store.load("app-1").unwrap().current_user_id.as_deref(),
        Some(a.id())
    );
    a.log_out().await.unwrap();
    assert_eq!(
        e.app.current_user(),
        Some(b.clone()),
        "moves to the next logged-in user"
    );
    let err = e.app.switch_user(&a).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotLoggedIn);
    b.log_out().await.unwrap();
    assert!(e.app.current_user().is_none());
    assert_eq!(e.app.all_users().len(), 2);
    // Logging back in updates the same user object and makes it current.
    let a2 = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    assert_eq!(a2, a);
    assert_eq!(a.state(), UserState::LoggedIn);
    assert_eq!(e.app.current_user(), Some(a.clone()));
    e.app.remove_user(&b).await.unwrap();
    assert_eq!(b.state(), UserState::Removed);
    assert_eq!(e.app.all_users(), vec![a.clone()]);
    assert_eq!(
        e.app.remove_user(&b).await.unwrap_err().kind(),
        ErrorKind::UserNotFound
    );
    assert_eq!(
        e.app.switch_user(&b).unwrap_err().kind(),
        ErrorKind::UserNotFound
    );
    e.app.remove_user(&a).await.unwrap();
    assert!(e.app.current_user().is_none() && e.app.all_users().is_empty());
    assert!(e.store.load("app-1").unwrap().users.is_empty());
}

#[tokio::test(start_paused = true)]
async fn delete_user_deletes_on_the_server_then_locally() {
    let e = env();
    let a = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    let access = a.access_token().unwrap();
    e.app.delete_user(&a).await.unwrap();
    let del = e
        .fake
        .requests()
        .into_iter()
        .rfind(|r| r.method == Method::DELETE)
        .unwrap();
    assert!(del.url.ends_with("/auth/delete"));
    assert_eq!(del.auth, Some(format!("Bearer {access}")));
    assert_eq!(e.fake.count("DELETE", "/auth/session"), 0);
    assert_eq!(a.state(), UserState::Removed);
    assert!(e.app.all_users().is_empty());
    assert_eq!(
        e.app.delete_user(&a).await.unwrap_err().kind(),
        ErrorKind::UserNotFound
    );
}

// ---------------------------------------------------------------- persistence

#[tokio::test(start_paused = true)]
async fn a_new_app_finds_its_users_with_no_network() {
    let e = env();
    let a = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    let b = e.app.log_in(&EmailPw("b@b.c", "pw")).await.unwrap();
    b.log_out().await.unwrap();
    e.app.switch_user(&a).unwrap();

    let fake2 = Fake::new();
    let app2 = app_with(&fake2, &e.clock, &e.store);
    let current = app2.current_user().unwrap();
    assert_eq!(current.id(), a.id());
    assert_eq!(current.access_token(), a.access_token());
    assert_eq!(current.refresh_token(), a.refresh_token());
    assert_eq!(
        current.access_token_expires_at(),
        a.access_token_expires_at()
    );
    assert_eq!(current.profile(), a.profile());
    assert_eq!(current.identities(), a.identities());
    assert_eq!(current.device_id(), a.device_id());
    let all = app2.all_users();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].state(), UserState::LoggedOut);
    assert!(fake2.requests().is_empty(), "no network");
    // Another app id sharing the store sees nothing.
    let other = AppCore::new(
        AppConfig::new("app-2", "http://base.test"),
        SharedTransport::new(FakeTransport(fake2.clone())),
        Arc::new(e.store.clone()),
    )
    .unwrap();
    assert!(other.all_users().is_empty());
}

#[tokio::test(start_paused = true)]
async fn every_change_is_persisted() {
    let e = env();
    let a = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    let stored = |e: &Env| e.store.load("app-1").unwrap().users[0].clone();
    assert_eq!(
        stored(&e).access_token.map(Secret::into_exposed),
        a.access_token()
    );
    assert_eq!(
        stored(&e).device_id.as_deref(),
        Some("65f0c0ffee0000000000abcd")
    );
    a.refresh_access_token().await.unwrap();
    assert_eq!(
        stored(&e).access_token.map(Secret::into_exposed),
        a.access_token()
    );
    a.refresh_profile().await.unwrap();
    assert_eq!(stored(&e).profile.get("name"), Some(&json!("Ann")));
}

#[tokio::test(start_paused = true)]
async fn stored_user_with_malformed_tokens_reads_as_logged_out() {
    let store = MemoryStore::new();
    store
        .save_user("app-1", &stored_logged_in("u1", "garbage", "also-garbage"))
        .unwrap();
    store.set_current_user("app-1", Some("u1")).unwrap();
    let app = app_with(&Fake::new(), &ManualClock::at(LOCAL_NOW), &store);
    assert!(app.current_user().is_none());
    assert_eq!(app.all_users()[0].state(), UserState::LoggedOut);
}

#[cfg(feature = "file-store")]
#[tokio::test(start_paused = true)]
async fn file_store_round_trip_through_apps() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let clock = ManualClock::at(LOCAL_NOW);
    let mk = || {
        AppCore::new(
            AppConfig::new("app-1", "http://base.test").with_clock(clock.clone()),
            SharedTransport::new(FakeTransport(fake.clone())),
            Arc::new(FileStore::new(dir.path())),
        )
    };
    let app = mk().unwrap();
    let a = app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    drop(app);
    let n = fake.requests().len();
    let app2 = mk().unwrap();
    assert_eq!(app2.current_user().unwrap().id(), a.id());
    assert_eq!(fake.requests().len(), n);
    // A corrupt file is a typed store error from the constructor.
    std::fs::write(FileStore::new(dir.path()).path_for("app-1"), b"{oops").unwrap();
    let err = mk().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
}

// ---------------------------------------------------------------- custom data

#[tokio::test(start_paused = true)]
async fn custom_data_reads_the_access_token_claim() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Data {
        favourite: String,
    }
    let e = env();
    let a = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    assert_eq!(a.custom_data::<Data>().unwrap(), None);
    Fake::set(&e.fake.user_data, Some(json!({"favourite": "tea"})));
    a.refresh_custom_data().await.unwrap();
    assert_eq!(
        a.custom_data::<Data>().unwrap(),
        Some(Data {
            favourite: "tea".into()
        })
    );
    assert_eq!(
        a.custom_data::<u32>().unwrap_err().kind(),
        ErrorKind::Decode
    );
    a.log_out().await.unwrap();
    assert_eq!(a.custom_data::<Data>().unwrap(), None);
}

// ---------------------------------------------------------------- redaction

#[tokio::test(start_paused = true)]
async fn secrets_never_appear_in_debug_or_display() {
    let e = env();
    let a = e.app.log_in(&EmailPw("a@b.c", "pw-secret")).await.unwrap();
    let access = a.access_token().unwrap();
    let refresh = a.refresh_token().unwrap();
    let check = |s: String| {
        assert!(
            !s.contains(&access) && !s.contains(&refresh) && !s.contains("pw-secret"),
            "{s}"
        );
    };
    check(format!("{a:?}"));
    check(format!("{:?}", e.app));
    check(format!("{:?}", e.store));
    check(format!("{:?}", e.store.load("app-1").unwrap()));
    check(format!("{:?}", Secret::new(access.clone())));
    check(format!("{}", Secret::new(access.clone())));
    check(format!("{:?}", EmailPw("a@b.c", "pw-secret")));
    // An undecodable reply that echoes the tokens.
    Fake::set(
        &e.fake.login_body_override,
        Some((
            200,
            format!(r#"{{"access_token":"{access}","refresh_token":"{refresh}","user_id":5}}"#),
            "application/json",
        )),
    );
    let err = e
        .app
        .log_in(&EmailPw("a@b.c", "pw-secret"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    check(format!("{err:?}"));
    check(format!("{err}"));
    check(err.raw_body().unwrap_or_default().to_owned());
    // A failed refresh.
    Fake::set(&e.fake.refresh_mode, Mode::Unauthorized);
    let err = a.refresh_access_token().await.unwrap_err();
    check(format!("{err:?} {err}"));
}

// ---------------------------------------------------------------- refresh-token requests

#[tokio::test(start_paused = true)]
async fn refresh_token_requests_use_the_refresh_bearer_and_log_out_on_401() {
    let e = env();
    let user = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    let refresh = user.refresh_token().unwrap();
    let url = "http://host.test/custom";
    let r = user
        .send_with_refresh_token(Method::POST, None, url, Some(json!({"name": "k"})))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let sent = e
        .fake
        .requests()
        .into_iter()
        .rfind(|r| r.url == url)
        .unwrap();
    assert_eq!(sent.auth, Some(format!("Bearer {refresh}")));
    assert_eq!(sent.content_type.as_deref(), Some("application/json"));
    assert_eq!(sent.body, r#"{"name":"k"}"#);
    // A 404 is a plain server error and changes nothing.
    Fake::set(&e.fake.custom, vec![404]);
    let err = user
        .send_with_refresh_token(Method::GET, None, url, None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    assert_eq!(user.state(), UserState::LoggedIn);
    // A 401 logs the user out: no refresh attempt, no replay.
    let mut rx = e.app.subscribe();
    Fake::set(&e.fake.custom, vec![401]);
    let err = user
        .send_with_refresh_token(Method::GET, None, url, None)
        .await
        .unwrap_err();
    assert!(err.is_session_expired());
    assert_eq!(user.state(), UserState::LoggedOut);
    assert_eq!(e.fake.count("POST", "/auth/session"), 0);
    assert!(drain(&mut rx).contains(&UserEvent::SessionExpired {
        user_id: user.id().into()
    }));
    let err = user
        .send_with_refresh_token(Method::GET, None, url, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotLoggedIn);
}

#[tokio::test(start_paused = true)]
async fn a_401_on_a_refresh_token_request_is_a_failed_refresh() {
    for anonymous in [false, true] {
        let e = env();
        let user = if anonymous {
            e.app.log_in(&Anon(false)).await.unwrap()
        } else {
            e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap()
        };
        assert_eq!(user.is_anonymous(), anonymous);
        let mut rx = e.app.subscribe();
        Fake::set(&e.fake.custom, vec![401]);
        let err = user
            .send_with_refresh_token(Method::GET, None, "http://host.test/custom", None)
            .await
            .unwrap_err();
        assert!(err.is_session_expired(), "{err:?}");
        assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
        // Like a refresh answered 401: logged out locally, no LoggedOut event, no revoke
        // with the rejected token. A normal user stays known with its profile; an
        // anonymous user can never log in again, so it is removed.
        assert!(user.access_token().is_none() && user.refresh_token().is_none());
        assert!(e.app.current_user().is_none());
        let stored = e.store.load("app-1").unwrap();
        let events = drain(&mut rx);
        let mut expected = vec![
            UserEvent::Switched { user_id: None },
            UserEvent::SessionExpired {
                user_id: user.id().into(),
            },
        ];
        if anonymous {
            assert_eq!(user.state(), UserState::Removed);
            assert!(e.app.all_users().is_empty());
            assert!(stored.users.is_empty());
            expected.push(UserEvent::Removed {
                user_id: user.id().into(),
            });
        } else {
            assert_eq!(user.state(), UserState::LoggedOut);
            assert_eq!(user.profile().email().as_deref(), Some("a@b.c"));
            assert_eq!(e.app.all_users(), vec![user.clone()]);
            assert_eq!(stored.users[0].state, UserState::LoggedOut);
            assert!(stored.users[0].refresh_token.is_none());
        }
        assert_eq!(events, expected, "anonymous={anonymous}");
        assert_eq!(e.fake.count("DELETE", "/auth/session"), 0);
        assert_eq!(e.fake.count("POST", "/auth/session"), 0);
    }
}

// ---------------------------------------------------------------- logs

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn secrets_never_appear_in_trace_logs() {
    let buf = LogBuffer::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // Global (not thread-local) so that callsite interest caching by concurrently running
    // tests cannot hide events; other tests' logs land in the buffer too, which only widens
    // the check.
    tracing::subscriber::set_global_default(subscriber).expect("only this test sets it");
    let e = env();
    let user = e.app.log_in(&EmailPw("a@b.c", "pw-secret")).await.unwrap();
    let tokens = [user.access_token().unwrap(), user.refresh_token().unwrap()];
    e.clock.advance(Duration::from_secs(1790));
    let refreshed = user.valid_access_token().await.unwrap();
    Fake::set(&e.fake.custom, vec![401, 401]);
    user.request(http::Request::get("/custom").body(Bytes::new()).unwrap())
        .await
        .unwrap();
    let second = user.access_token().unwrap();
    Fake::set(&e.fake.logout_mode, Mode::Offline);
    user.log_out().await.unwrap();
    let logs = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("latchkey.request"),
        "spans are logged: {logs}"
    );
    assert!(logs.contains("revoking the session failed"));
    // One span per request: method, route template, status.
    assert!(
        logs.contains("method=POST route=/api/client/v2.0/auth/session"),
        "{logs}"
    );
    assert!(logs.contains("status=201"), "{logs}");
    assert!(
        logs.contains("route=/api/client/v2.0/auth/profile"),
        "{logs}"
    );
    for secret in tokens
        .iter()
        .chain([&refreshed, &second])
        .map(String::as_str)
        .chain(["pw-secret"])
    {
        assert!(!logs.contains(secret), "secret in logs");
    }
}

#[tokio::test(start_paused = true)]
async fn a_user_handle_outlives_its_app() {
    let e = env();
    let user = e.app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    let Env { fake, app, .. } = e;
    drop(app);
    user.refresh_access_token().await.unwrap();
    assert_eq!(fake.count("POST", "/auth/session"), 1);
    user.log_out().await.unwrap();
    assert_eq!(user.state(), UserState::LoggedOut);
}

// ---------------------------------------------------------------- retries (paused time)

type Script = Arc<Mutex<Vec<(Method, String, tokio::time::Instant)>>>;

/// A transport that answers `/location` normally and every other request from `replies`
/// (in order; then 200 `{}`), recording each attempt with the (paused) tokio time.
fn scripted(
    replies: Vec<Result<u16, TransportErrorKind>>,
    location_replies: Vec<Result<u16, TransportErrorKind>>,
) -> (SharedTransport, Script) {
    let log: Script = Arc::default();
    let replies = Arc::new(Mutex::new(replies));
    let location_replies = Arc::new(Mutex::new(location_replies));
    let l = log.clone();
    let t = SharedTransport::new(latchkey_transport::transport_fn(
        move |req: HttpRequest, _o: RequestOptions| {
            let log = l.clone();
            let replies = replies.clone();
            let location_replies = location_replies.clone();
            async move {
                let path = req.uri().path().to_owned();
                log.lock().unwrap().push((
                    req.method().clone(),
                    path.clone(),
                    tokio::time::Instant::now(),
                ));
                let queue = if path.ends_with("/location") {
                    location_replies
                } else {
                    replies
                };
                let next = {
                    let mut q = queue.lock().unwrap();
                    if q.is_empty() { Ok(200) } else { q.remove(0) }
                };
                match next {
                    Err(kind) => Err(TransportError::new(kind, "scripted failure")),
                    Ok(200) if path.ends_with("/location") => {
                        Ok(resp(200, r#"{"hostname":"http://host.test"}"#))
                    }
                    Ok(status) => Ok(resp(status, "{}")),
                }
            }
        },
    ));
    (t, log)
}

fn retry_app(t: SharedTransport, policy: RetryPolicy) -> AppCore {
    AppCore::new(
        AppConfig::new("app-1", "http://base.test")
            .with_clock(ManualClock::at(LOCAL_NOW))
            .with_retry_policy(policy),
        t,
        Arc::new(MemoryStore::new()),
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn idempotent_requests_retry_with_growing_backoff_then_give_up() {
    let (t, log) = scripted(vec![], vec![Ok(503), Ok(502), Ok(504), Ok(200)]);
    let policy = RetryPolicy::new().with_initial_backoff(Duration::from_millis(400));
    let app = retry_app(t, policy);
    let err = app.routes().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.status(), Some(StatusCode::GATEWAY_TIMEOUT));
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 3, "one try and max_retries = 2 retries");
    let gap1 = log[1].2 - log[0].2;
    let gap2 = log[2].2 - log[1].2;
    let (lo1, hi1) = policy.backoff_bounds(1);
    let (lo2, hi2) = policy.backoff_bounds(2);
    assert!(gap1 >= lo1 && gap1 <= hi1, "{gap1:?}");
    assert!(gap2 >= lo2 && gap2 <= hi2, "{gap2:?}");
    assert!(
        hi1 <= lo2,
        "backoff grows: retry 2 waits at least as long as retry 1 at most"
    );
    // The next call starts afresh and succeeds on the fourth scripted reply.
    assert!(app.routes().await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn transient_transport_errors_on_get_are_retried() {
    let (t, log) = scripted(
        vec![],
        vec![
            Err(TransportErrorKind::Connect),
            Err(TransportErrorKind::Timeout),
        ],
    );
    let app = retry_app(t, RetryPolicy::default());
    let routes = app.routes().await.unwrap();
    assert_eq!(routes.host(), "http://host.test");
    assert_eq!(log.lock().unwrap().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn permanent_failures_are_not_retried() {
    for reply in [
        Ok(500),
        Ok(404),
        Ok(429),
        Err(TransportErrorKind::Tls),
        Err(TransportErrorKind::Protocol),
    ] {
        let (t, log) = scripted(vec![], vec![reply]);
        let app = retry_app(t, RetryPolicy::default());
        assert!(app.routes().await.is_err());
        assert_eq!(log.lock().unwrap().len(), 1, "{reply:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn non_idempotent_requests_are_never_retried() {
    // POST (email/password route) and POST login: one attempt each, even on 503 / connect.
    for reply in [Ok(503), Err(TransportErrorKind::Connect), Ok(502)] {
        let (t, log) = scripted(vec![reply], vec![]);
        let app = retry_app(t, RetryPolicy::new().with_max_retries(5));
        let routes = app.routes().await.unwrap();
        let url = routes.email_password(latchkey_protocol::routes::EmailPasswordRoute::Register);
        assert!(
            app.send_json(Method::POST, paths::REGISTER, &url, Some(json!({})))
                .await
                .is_err()
        );
        let (t2, log2) = scripted(vec![reply], vec![]);
        let app2 = retry_app(t2, RetryPolicy::new().with_max_retries(5));
        assert!(app2.log_in(&Anon(false)).await.is_err());
        let posts = |l: &Script| {
            l.lock()
                .unwrap()
                .iter()
                .filter(|(m, _, _)| m == Method::POST)
                .count()
        };
        assert_eq!(posts(&log), 1, "{reply:?}");
        assert_eq!(posts(&log2), 1, "{reply:?}");
    }
    // DELETE (log out, delete user, API key delete) is not retried either.
    let (t, log) = scripted(vec![Ok(503)], vec![]);
    let app = retry_app(t, RetryPolicy::new().with_max_retries(5));
    let routes = app.routes().await.unwrap();
    assert!(
        app.send_json(Method::DELETE, paths::API_KEY, &routes.api_key("k"), None)
            .await
            .is_err()
    );
    assert_eq!(
        log.lock()
            .unwrap()
            .iter()
            .filter(|(m, _, _)| m == Method::DELETE)
            .count(),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn put_is_retried_and_none_policy_disables_retries() {
    let (t, log) = scripted(vec![Ok(503), Ok(200)], vec![]);
    let app = retry_app(t, RetryPolicy::default());
    let routes = app.routes().await.unwrap();
    app.send_json(
        Method::PUT,
        paths::API_KEY_ENABLE,
        &routes.api_key_enabled("k", true),
        None,
    )
    .await
    .unwrap();
    assert_eq!(log.lock().unwrap().len(), 3, "location + PUT twice");

    let (t, log) = scripted(vec![], vec![Ok(503)]);
    let app = retry_app(t, RetryPolicy::none());
    assert!(app.routes().await.is_err());
    assert_eq!(log.lock().unwrap().len(), 1);
}

#[test]
fn route_templates_hide_ids() {
    use crate::wire::route_template;
    let cases = [
        (
            "/api/client/v2.0/app/a/location",
            "/api/client/v2.0/app/{app_id}/location",
        ),
        (
            "/api/client/v2.0/app/a/auth/providers/anon-user/login",
            "/api/client/v2.0/app/{app_id}/auth/providers/{provider}/login",
        ),
        (
            "/proxy/api/client/v2.0/auth/api_keys/65f0c0ffee0000000000abcd/disable",
            "/api/client/v2.0/auth/api_keys/{key_id}/disable",
        ),
        (
            "/api/client/v2.0/app/a/auth/providers/local-userpass/reset/call",
            "/api/client/v2.0/app/{app_id}/auth/providers/local-userpass/reset/call",
        ),
        (
            "/api/client/v2.0/auth/session",
            "/api/client/v2.0/auth/session",
        ),
        ("/elsewhere", "other"),
    ];
    for (path, template) in cases {
        assert_eq!(route_template(path), template, "{path}");
    }
}

// ---------------------------------------------------------------- the user store

mod store;

mod retry_after;
