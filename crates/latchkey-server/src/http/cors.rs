//! CORS: which web origins may call the client API from a browser.
//!
//! Each app lists its allowed origins (`allowed_origins`, App Services' "Allowed
//! Request Origins"); the default is none. A request that carries an `Origin`:
//!
//! - on an admin route (`/admin/...`): gets no CORS header at all (browsers then
//!   refuse to send the admin token cross-origin or to show the answer);
//! - from the server's own origin (the `Origin` names the `Host` it was sent to):
//!   is served as it is, a same-origin request;
//! - from an allowed origin: is served, its answer (errors included) names that
//!   origin in `Access-Control-Allow-Origin`; a preflight (`OPTIONS` with
//!   `Access-Control-Request-Method`) is answered 204 with the methods and headers
//!   realm-web uses;
//! - from any other origin: is refused, 403 `DomainNotAllowed`, before any handler
//!   runs (as App Services did), preflights included.
//!
//! App-scoped routes (`/api/client/v2.0/app/{app_id}/...`) use that app's list. The
//! other client routes (`/auth/session`, `/auth/profile`, ...) name no app before the
//! token is read, and preflights carry no token, so they accept the origins allowed
//! by any hosted app.
//!
//! `Access-Control-Allow-Credentials` is sent only on the OAuth login routes
//! (`.../providers/oauth2-*/login`), to allowed origins: realm-web's link flow fetches
//! them in credentials mode (protocol.md §1.2). Everywhere else realm-web
//! authenticates with `Authorization: Bearer` headers, which need no credentials
//! mode, and the server sets no cookie anywhere.
//!
//! The OAuth callback (`/auth/callback`) is a top-level navigation from the identity
//! provider (Apple's `form_post` carries its `Origin`): like the admin routes it gets
//! no CORS treatment at all.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, header};
use latchkey_protocol::routes::{API_PREFIX, paths};

use super::error::ApiError;
use super::response::no_content;
use crate::config::AppConfig;
use crate::config::edge::ANY_ORIGIN;

/// The response header realm-web reads in the OAuth link flow, exposed to pages.
const EXPOSE_HEADERS: HeaderValue = HeaderValue::from_static("X-BAAS-Location");
/// `Access-Control-Allow-Credentials` of the OAuth login routes.
const ALLOW_CREDENTIALS: HeaderValue = HeaderValue::from_static("true");
/// What a preflight answer allows: the methods and headers realm-web sends.
const ALLOW_METHODS: HeaderValue = HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS");
const ALLOW_HEADERS: HeaderValue = HeaderValue::from_static("Authorization, Content-Type, Accept");
/// How long browsers may cache a preflight answer (seconds).
const MAX_AGE: HeaderValue = HeaderValue::from_static("600");

/// The origins one app (or, for routes without an app, any app) allows.
#[derive(Debug, Default, Clone)]
struct Origins {
    any: bool,
    /// Lower-cased.
    listed: HashSet<String>,
}

impl Origins {
    fn add(&mut self, origins: &[String]) {
        for o in origins {
            if o == ANY_ORIGIN {
                self.any = true;
            } else {
                self.listed.insert(o.to_ascii_lowercase());
            }
        }
    }

    fn allows(&self, origin: &str) -> bool {
        // `null` (sandboxed documents, files) is never an allowed origin.
        origin != "null" && (self.any || self.listed.contains(&origin.to_ascii_lowercase()))
    }
}

/// Every app's allowed origins.
#[derive(Debug, Default)]
pub(crate) struct CorsPolicy {
    apps: HashMap<String, Origins>,
    any_app: Origins,
}

impl CorsPolicy {
    /// The policy of these apps.
    pub(crate) fn new(apps: &[AppConfig]) -> Arc<CorsPolicy> {
        let mut policy = CorsPolicy::default();
        for app in apps {
            let mut origins = Origins::default();
            origins.add(&app.allowed_origins);
            policy.any_app.add(&app.allowed_origins);
            if origins.any {
                tracing::warn!(app = %app.id, "app allows requests from any web origin (allowed_origins = [\"*\"])");
            }
            policy.apps.insert(app.id.clone(), origins);
        }
        Arc::new(policy)
    }

    /// Whether `origin` may call `path`.
    fn allows(&self, path: &str, origin: &str) -> bool {
        let app_prefix = format!("{API_PREFIX}/app/");
        match path.strip_prefix(&app_prefix) {
            Some(rest) => {
                let app = rest.split('/').next().unwrap_or_default();
                self.apps.get(app).is_some_and(|o| o.allows(origin))
            }
            None => self.any_app.allows(origin),
        }
    }
}

/// Whether `origin` is the origin of the `Host` the request was sent to.
fn same_origin(headers: &HeaderMap, origin: &str) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    authority.is_some_and(|a| a.eq_ignore_ascii_case(host))
}

/// The CORS middleware (see the module documentation).
pub(crate) async fn cors(
    State(policy): State<Arc<CorsPolicy>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if path.starts_with("/admin/") || path == paths::OAUTH_CALLBACK {
        return next.run(req).await;
    }
    let credentials = oauth_login(path);
    let origin = req.headers().get(header::ORIGIN).cloned();
    let Some(origin) = origin else {
        return vary_origin(next.run(req).await);
    };
    let origin_str = origin.to_str().unwrap_or("null");
    if same_origin(req.headers(), origin_str) {
        return vary_origin(next.run(req).await);
    }
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if !policy.allows(req.uri().path(), origin_str) {
        return vary(ApiError::origin_not_allowed().into_response(), VARY_ORIGIN);
    }
    if preflight {
        let mut resp = no_content();
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS);
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS);
        h.insert(header::ACCESS_CONTROL_MAX_AGE, MAX_AGE);
        if credentials {
            h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, ALLOW_CREDENTIALS);
        }
        return vary(resp, VARY_PREFLIGHT);
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE_HEADERS);
    if credentials {
        h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, ALLOW_CREDENTIALS);
    }
    vary_origin(resp)
}

/// Whether `path` is the login route of an OAuth provider (`.../providers/oauth2-*/login`).
fn oauth_login(path: &str) -> bool {
    path.strip_prefix(API_PREFIX)
        .and_then(|rest| rest.strip_prefix("/app/"))
        .and_then(|rest| rest.split_once("/auth/providers/"))
        .is_some_and(|(app, rest)| {
            !app.contains('/')
                && rest
                    .strip_suffix("/login")
                    .is_some_and(|p| p.starts_with("oauth2-") && !p.contains('/'))
        })
}

/// `Vary` of every client API answer: it depends on the request's origin.
const VARY_ORIGIN: HeaderValue = HeaderValue::from_static("Origin");
/// `Vary` of a preflight answer.
const VARY_PREFLIGHT: HeaderValue = HeaderValue::from_static(
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
);

/// Add a `Vary` header.
fn vary(mut resp: Response, value: HeaderValue) -> Response {
    resp.headers_mut().append(header::VARY, value);
    resp
}

/// [`vary`] with `Origin`.
fn vary_origin(resp: Response) -> Response {
    vary(resp, VARY_ORIGIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::edge::*;

    #[test]
    fn oauth_login_paths() {
        assert!(oauth_login(
            "/api/client/v2.0/app/a/auth/providers/oauth2-google/login"
        ));
        assert!(!oauth_login(
            "/api/client/v2.0/app/a/auth/providers/local-userpass/login"
        ));
        assert!(!oauth_login("/api/client/v2.0/auth/session"));
        assert!(!oauth_login(
            "/api/client/v2.0/app/a/b/auth/providers/oauth2-google/login"
        ));
    }

    #[test]
    fn origins_are_validated() {
        let ok = [
            "*",
            "https://app.example",
            "http://localhost:3000",
            "http://127.0.0.1:8080",
            "http://[::1]:3000",
        ];
        validate_allowed_origins("a", &ok.map(String::from)).unwrap();
        for bad in [
            "",
            "app.example",
            "https://app.example/",
            "https://app.example/path",
            "https://",
            "https://app.example:port",
            "https://app.example:99999",
            "ftp://app.example",
            "https://app.example?x",
            "https://*.example",
        ] {
            assert!(
                validate_allowed_origins("a", &[bad.to_owned()]).is_err(),
                "{bad:?}"
            );
        }
        let many: Vec<String> = (0..=MAX_ALLOWED_ORIGINS)
            .map(|i| format!("https://a{i}.example"))
            .collect();
        assert!(validate_allowed_origins("a", &many).is_err());
    }

    #[test]
    fn policy_per_app_and_for_routes_without_an_app() {
        let mut one = AppConfig::new("one", "0123456789abcdef0123456789abcdef");
        one.allowed_origins = vec!["https://One.example".into()];
        let two = AppConfig::new("two", "0123456789abcdef0123456789abcdef");
        let mut wild = AppConfig::new("wild", "0123456789abcdef0123456789abcdef");
        wild.allowed_origins = vec!["*".into()];
        let policy = CorsPolicy::new(&[one.clone(), two.clone()]);
        let login = |app: &str| format!("{API_PREFIX}/app/{app}/auth/providers/anon-user/login");
        assert!(policy.allows(&login("one"), "https://one.example"));
        assert!(!policy.allows(&login("two"), "https://one.example"));
        assert!(!policy.allows(&login("one"), "https://evil.example"));
        assert!(!policy.allows(&login("nope"), "https://one.example"));
        let profile = format!("{API_PREFIX}/auth/profile");
        assert!(policy.allows(&profile, "https://one.example"));
        assert!(!policy.allows(&profile, "https://evil.example"));
        let policy = CorsPolicy::new(&[two, wild]);
        assert!(policy.allows(&login("wild"), "https://any.example"));
        assert!(!policy.allows(&login("wild"), "null"));
        assert!(!policy.allows(&login("two"), "https://any.example"));
        assert!(policy.allows(&profile, "https://any.example"));
    }
}
