//! Helpers for the HTTP-level tests: a real server on 127.0.0.1:0 and a raw HTTP client.
#![allow(dead_code, unreachable_pub)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_server::{AppConfig, Clock, Config, RunningServer, Server};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

pub const APP: &str = "test-app";
pub const SECRET: &str = "test-signing-secret-0123456789abcdef";
pub const PREFIX: &str = "/api/client/v2.0";

pub fn config() -> Config {
    let mut c = Config::dev();
    c.apps = vec![AppConfig::new(APP, SECRET).with_all_providers()];
    c
}

pub struct Harness {
    pub server: RunningServer,
    pub http: reqwest::Client,
    /// The PostgreSQL database of a run with LATCHKEY_TEST_DATABASE=postgres.
    pub database: Option<latchkey_testkit::PostgresTestDb>,
}

pub async fn start() -> Harness {
    start_with(config()).await
}

/// Start a server with `config`; on a fresh PostgreSQL database instead of the
/// in-memory SQLite one when LATCHKEY_TEST_DATABASE=postgres.
pub async fn start_with(mut config: Config) -> Harness {
    let database = latchkey_testkit::test_database(&mut config).await;
    let server = Server::start_with_clock(config, Clock::system())
        .await
        .expect("server starts");
    Harness {
        server,
        http: client(),
        database,
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// A response read to the end.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub async fn from(resp: Response) -> Reply {
        let status = resp.status();
        let headers = resp.headers().clone();
        let content_type = headers
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let text = resp.text().await.unwrap();
        Reply {
            status,
            content_type,
            headers,
            text,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} {}", self.status, self.text))
    }

    /// Assert a JSON error with this status and code; returns the message.
    pub fn assert_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(
            self.content_type.as_deref(),
            Some("application/json"),
            "exact content type"
        );
        let body = self.json();
        assert_eq!(body["error_code"], code, "body: {}", self.text);
        body["error"].as_str().expect("error text").to_owned()
    }

    /// 401 `InvalidSession` "... failed to find refresh token", the text realm-web
    /// looks for.
    pub fn assert_refresh_token_not_found(&self) {
        let msg = self.assert_error(401, "InvalidSession");
        assert!(msg.contains("failed to find refresh token"), "{msg}");
    }

    pub fn assert_ok_json(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.text);
        assert_eq!(self.content_type.as_deref(), Some("application/json"));
        let v = self.json();
        assert!(v.get("error").is_none() && v.get("error_code").is_none());
        v
    }

    pub fn assert_no_content(&self) {
        assert_eq!(self.status, StatusCode::NO_CONTENT, "body: {}", self.text);
        assert_eq!(self.content_type, None);
        assert!(self.text.is_empty());
    }
}

impl Harness {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.server.url(), path)
    }

    pub fn app_url(&self, app: &str, rest: &str) -> String {
        self.url(&format!("{PREFIX}/app/{app}{rest}"))
    }

    pub async fn send(
        &self,
        method: Method,
        url: &str,
        bearer: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        let mut req = self.http.request(method, url);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        Reply::from(req.send().await.expect("request sent")).await
    }

    pub async fn login(&self, provider: &str, body: Value) -> Reply {
        self.login_in(APP, provider, body).await
    }

    pub async fn login_in(&self, app: &str, provider: &str, body: Value) -> Reply {
        let url = self.app_url(app, &format!("/auth/providers/{provider}/login"));
        self.send(Method::POST, &url, None, Some(&body.to_string()))
            .await
    }

    pub async fn anon(&self) -> Tokens {
        Tokens::from(&self.login("anon-user", json!({})).await.assert_ok_json())
    }

    pub async fn register(&self, email: &str, password: &str) -> Reply {
        self.register_in(APP, email, password).await
    }

    pub async fn register_in(&self, app: &str, email: &str, password: &str) -> Reply {
        let url = self.app_url(app, "/auth/providers/local-userpass/register");
        let body = json!({"email": email, "password": password}).to_string();
        self.send(Method::POST, &url, None, Some(&body)).await
    }

    pub async fn userpass(&self, email: &str, password: &str) -> Reply {
        self.login(
            "local-userpass",
            json!({"username": email, "password": password}),
        )
        .await
    }

    /// Log in with email/password, which must succeed.
    pub async fn userpass_tokens(&self, email: &str, password: &str) -> Tokens {
        Tokens::from(&self.userpass(email, password).await.assert_ok_json())
    }

    /// Register email/password credentials and log in with them; both must succeed.
    pub async fn signed_up(&self, email: &str, password: &str) -> Tokens {
        self.register(email, password).await.assert_no_content();
        self.userpass_tokens(email, password).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        self.send(
            Method::POST,
            &self.url(&format!("{PREFIX}/auth/session")),
            Some(refresh_token),
            None,
        )
        .await
    }

    pub async fn logout(&self, refresh_token: &str) -> Reply {
        self.send(
            Method::DELETE,
            &self.url(&format!("{PREFIX}/auth/session")),
            Some(refresh_token),
            None,
        )
        .await
    }

    pub async fn profile(&self, access_token: &str) -> Reply {
        self.send(
            Method::GET,
            &self.url(&format!("{PREFIX}/auth/profile")),
            Some(access_token),
            None,
        )
        .await
    }
}

/// The tokens and ids of a login response.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub user_id: String,
    pub device_id: String,
}

impl Tokens {
    pub fn from(v: &Value) -> Tokens {
        Tokens {
            access: v["access_token"].as_str().expect("access_token").to_owned(),
            refresh: v["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
            user_id: v["user_id"].as_str().expect("user_id").to_owned(),
            device_id: v["device_id"].as_str().expect("device_id").to_owned(),
        }
    }
}

/// Decode a JWT segment (0 = header, 1 = payload).
pub fn segment(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).expect("segment");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

pub fn claims(token: &str) -> Value {
    segment(token, 1)
}

pub fn is_hex24(s: &str) -> bool {
    s.len() == 24
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}
