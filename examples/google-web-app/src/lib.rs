//! A small web app that signs people in with Google through latchkey, using the
//! server-side authorization-code flow (the Rust counterpart of the Realm docs' Node.js
//! server example).
//!
//! The flow:
//!
//! 1. `GET /login` makes a random CSRF `state`, keeps it in a short-lived HttpOnly cookie
//!    and redirects the browser (302) to Google's authorization URL with `client_id`,
//!    `redirect_uri`, `response_type=code`, `scope=openid email profile` and `state`.
//! 2. Google sends the browser back to `GET /auth/callback?code=..&state=..`. The app checks
//!    `state` against the cookie (single use), then logs in with
//!    `app.log_in(Credentials::google_auth_code(code))`: latchkey-server exchanges the code
//!    at Google's token endpoint and verifies the ID token it gets back.
//! 3. Each signed-in visitor gets their own [`latchkey::App`] (in-memory user store) and
//!    [`latchkey::User`], kept in this process's memory under a random session id; the
//!    browser holds only that id, in an HttpOnly `SameSite=Lax` cookie. The latchkey tokens
//!    never reach the browser.
//!
//! Routes: `GET /` (who is signed in, or a sign-in link), `GET /login`,
//! `GET /auth/callback`, `GET /me` (JSON: id, email, name, identities; 401 without a
//! session) and `POST /logout`.
//!
//! Two settings must agree between this app and latchkey-server: the OAuth client id, and
//! the redirect URI. Google only accepts a code exchange whose `redirect_uri` equals the one
//! used at the authorization step, so set the server's `redirect_uri` under
//! `[apps.providers.oauth2-google]` to this app's `/auth/callback` URL (see
//! `docs/providers-server.md`). Cookies get the `Secure` attribute when the redirect URI is
//! `https://`.
//!
//! ```no_run
//! use google_web_app::{WebAppConfig, router};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let config = WebAppConfig::new(
//!     "http://127.0.0.1:8080",                      // latchkey-server
//!     "myapp-abcde",                                // the app id
//!     "1234-web.apps.googleusercontent.com",        // Google OAuth client id
//!     "http://127.0.0.1:3000/auth/callback",        // this app's callback
//! );
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, router(config)).await
//! # }
//! ```
//!
//! Sessions live in memory: they end at logout or when the process stops. This is an
//! example; a production app would bound and expire them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use latchkey::{App, Credentials, User, UserState};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde::Deserialize;
use serde_json::json;
use url::Url;

/// Google's OAuth 2.0 authorization endpoint.
pub const GOOGLE_AUTHORIZE_URL: &str = "https://accounts.google.com/o/oauth2/v2/auth";
/// The scopes requested: `openid` makes Google return the ID token latchkey verifies.
pub const SCOPE: &str = "openid email profile";
/// Cookie holding the visitor's session id (HttpOnly).
pub const SESSION_COOKIE: &str = "gwa_session";
/// Cookie holding the pending CSRF `state` between `/login` and `/auth/callback`.
pub const STATE_COOKIE: &str = "gwa_oauth_state";
/// How long a sign-in may take between `/login` and `/auth/callback`.
const STATE_MAX_AGE_SECS: u32 = 600;

/// Where latchkey-server and Google are, and who this app is to them.
#[derive(Debug, Clone)]
pub struct WebAppConfig {
    /// latchkey-server's base URL, e.g. `http://127.0.0.1:8080`.
    pub latchkey_url: String,
    /// The latchkey app id, e.g. `myapp-abcde`.
    pub app_id: String,
    /// Google's authorization endpoint (default [`GOOGLE_AUTHORIZE_URL`]).
    pub google_authorize_url: String,
    /// The Google OAuth client id (the same one latchkey-server is configured with).
    pub google_client_id: String,
    /// This app's callback URL, e.g. `https://app.example.org/auth/callback`.
    pub redirect_uri: String,
}

impl WebAppConfig {
    /// A configuration with Google's real authorization endpoint.
    pub fn new(
        latchkey_url: impl Into<String>,
        app_id: impl Into<String>,
        google_client_id: impl Into<String>,
        redirect_uri: impl Into<String>,
    ) -> Self {
        WebAppConfig {
            latchkey_url: latchkey_url.into(),
            app_id: app_id.into(),
            google_authorize_url: GOOGLE_AUTHORIZE_URL.to_owned(),
            google_client_id: google_client_id.into(),
            redirect_uri: redirect_uri.into(),
        }
    }

    /// Use another authorization endpoint (a test double, for instance).
    pub fn with_google_authorize_url(mut self, url: impl Into<String>) -> Self {
        self.google_authorize_url = url.into();
        self
    }

    /// Check that the URLs parse and nothing required is empty.
    pub fn validate(&self) -> Result<(), String> {
        for (what, value) in [
            ("latchkey URL", &self.latchkey_url),
            ("Google authorize URL", &self.google_authorize_url),
            ("redirect URI", &self.redirect_uri),
        ] {
            Url::parse(value).map_err(|e| format!("{what} {value:?}: {e}"))?;
        }
        if self.app_id.is_empty() {
            return Err("the app id is empty".to_owned());
        }
        if self.google_client_id.is_empty() {
            return Err("the Google client id is empty".to_owned());
        }
        Ok(())
    }

    /// Cookies are `Secure` when the app is served over HTTPS.
    fn secure_cookies(&self) -> bool {
        self.redirect_uri.starts_with("https://")
    }
}

/// The web app's routes, ready for `axum::serve`.
pub fn router(config: WebAppConfig) -> Router {
    let shared = Arc::new(Shared {
        config,
        sessions: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/me", get(me))
        .route("/logout", post(logout))
        .with_state(shared)
}

/// One signed-in visitor: their own latchkey app and user.
#[derive(Debug, Clone)]
struct Session {
    app: App,
    user: User,
}

impl Session {
    /// Log the user out at latchkey-server and forget them. Local log-out succeeds even if
    /// the server cannot be reached, so there is nothing to report to the visitor.
    async fn end(self) {
        let _ = self.app.remove_user(&self.user).await;
    }
}

#[derive(Debug)]
struct Shared {
    config: WebAppConfig,
    sessions: Mutex<HashMap<String, Session>>,
}

impl Shared {
    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The visitor's session, if their cookie names one whose user is still logged in.
    /// A session whose latchkey session expired is dropped.
    fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let mut sessions = self.sessions();
        let session = sessions.get(&id)?.clone();
        if session.user.state() == UserState::LoggedIn {
            Some(session)
        } else {
            sessions.remove(&id);
            None
        }
    }
}

/// `GET /`: who is signed in, or a sign-in link.
async fn home(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let body = match shared.session(&headers) {
        Some(session) => format!(
            "<p>Signed in as <strong>{}</strong>.</p>\n\
             <p><a href=\"/me\">Your account (JSON)</a></p>\n\
             <form method=\"post\" action=\"/logout\"><button>Sign out</button></form>",
            escape_html(&display_name(&session.user))
        ),
        None => "<p>You are not signed in.</p>\n\
                 <p><a href=\"/login\">Sign in with Google</a></p>"
            .to_owned(),
    };
    page(StatusCode::OK, &body)
}

/// `GET /login`: a fresh CSRF state in a cookie, and a 302 to Google.
async fn login(State(shared): State<Arc<Shared>>) -> Response {
    let config = &shared.config;
    let Ok(mut url) = Url::parse(&config.google_authorize_url) else {
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "<p>The Google authorization URL is misconfigured.</p>",
        );
    };
    let state = random_token();
    url.query_pairs_mut()
        .append_pair("client_id", &config.google_client_id)
        .append_pair("redirect_uri", &config.redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", SCOPE)
        .append_pair("state", &state);
    let cookie = set_cookie(
        STATE_COOKIE,
        &state,
        Some(STATE_MAX_AGE_SECS),
        config.secure_cookies(),
    );
    redirect(StatusCode::FOUND, url.as_str(), [cookie])
}

/// What Google appends to the redirect URI.
#[derive(Debug, Deserialize)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    /// Set instead of `code` when the person declined or Google refused.
    error: Option<String>,
}

/// `GET /auth/callback`: check the state, log in with the code, start a session.
async fn callback(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Query<CallbackParams>,
) -> Response {
    let config = &shared.config;
    let secure = config.secure_cookies();
    // The state is single use: whatever happens next, the cookie is cleared.
    let clear_state = set_cookie(STATE_COOKIE, "", Some(0), secure);
    let expected = cookie(&headers, STATE_COOKIE);
    let state_ok = match (params.state.as_deref(), expected.as_deref()) {
        (Some(got), Some(expected)) => !expected.is_empty() && same_secret(got, expected),
        _ => false,
    };
    if !state_ok {
        return with_cookie(
            failure(
                StatusCode::BAD_REQUEST,
                "The sign-in request is invalid or has expired.",
            ),
            clear_state,
        );
    }
    if let Some(error) = params.error {
        let message = format!("Google did not sign you in ({error}).");
        return with_cookie(failure(StatusCode::BAD_REQUEST, &message), clear_state);
    }
    let Some(code) = params.code.filter(|c| !c.is_empty()) else {
        return with_cookie(
            failure(
                StatusCode::BAD_REQUEST,
                "Google sent no authorization code.",
            ),
            clear_state,
        );
    };

    // One latchkey App per visitor: its current user is this visitor, nobody else.
    let app = match App::builder(&config.app_id)
        .base_url(&config.latchkey_url)
        .in_memory_store()
        .build()
    {
        Ok(app) => app,
        Err(_) => {
            let status = StatusCode::INTERNAL_SERVER_ERROR;
            let message = "The latchkey configuration is invalid.";
            return with_cookie(failure(status, message), clear_state);
        }
    };
    let user = match app.log_in(Credentials::google_auth_code(code)).await {
        Ok(user) => user,
        Err(e) => {
            // A 4xx from latchkey: the code was rejected (used, expired, not ours).
            // Anything else: latchkey-server (or Google behind it) is unavailable.
            let (status, message) = if e.status().is_some_and(|s| s.is_client_error()) {
                (StatusCode::UNAUTHORIZED, "Google sign-in was rejected.")
            } else {
                (
                    StatusCode::BAD_GATEWAY,
                    "The sign-in service is unavailable; try again later.",
                )
            };
            return with_cookie(failure(status, message), clear_state);
        }
    };

    // A new session id at every sign-in (no session fixation); an older session of this
    // browser is ended.
    let session_id = random_token();
    let previous = {
        let mut sessions = shared.sessions();
        let previous = cookie(&headers, SESSION_COOKIE).and_then(|id| sessions.remove(&id));
        sessions.insert(session_id.clone(), Session { app, user });
        previous
    };
    if let Some(previous) = previous {
        previous.end().await;
    }
    let session_cookie = set_cookie(SESSION_COOKIE, &session_id, None, secure);
    redirect(StatusCode::FOUND, "/", [clear_state, session_cookie])
}

/// `GET /me`: the signed-in user as JSON, or 401.
async fn me(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(session) = shared.session(&headers) else {
        let body = Json(json!({ "error": "not signed in" }));
        return no_store((StatusCode::UNAUTHORIZED, body).into_response());
    };
    let user = &session.user;
    let profile = user.profile();
    let body = json!({
        "id": user.id(),
        "email": profile.email(),
        "name": profile.name(),
        "identities": user.identities(),
    });
    no_store(Json(body).into_response())
}

/// `POST /logout`: end the session here and at latchkey-server, clear the cookie.
async fn logout(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let session = cookie(&headers, SESSION_COOKIE).and_then(|id| shared.sessions().remove(&id));
    if let Some(session) = session {
        session.end().await;
    }
    let clear = set_cookie(SESSION_COOKIE, "", Some(0), shared.config.secure_cookies());
    redirect(StatusCode::SEE_OTHER, "/", [clear])
}

/// The name to greet: the profile's name, else its email, else the user id.
fn display_name(user: &User) -> String {
    let profile = user.profile();
    profile
        .name()
        .or_else(|| profile.email())
        .unwrap_or_else(|| user.id().to_owned())
}

/// A 32-character random token (about 190 bits) from the OS-seeded CSPRNG.
fn random_token() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// Compare two secrets without stopping at the first difference.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in the request, if any.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

/// A `Set-Cookie` value: HttpOnly, `SameSite=Lax`, path `/`; `max_age` `None` makes a
/// browser-session cookie, `Some(0)` deletes it.
fn set_cookie(name: &str, value: &str, max_age: Option<u32>, secure: bool) -> HeaderValue {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(max_age) = max_age {
        cookie.push_str(&format!("; Max-Age={max_age}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).expect("cookie names and random tokens are header-safe")
}

fn with_cookie(mut response: Response, cookie: HeaderValue) -> Response {
    response.headers_mut().append(SET_COOKIE, cookie);
    response
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn redirect<const N: usize>(status: StatusCode, to: &str, cookies: [HeaderValue; N]) -> Response {
    let mut response = status.into_response();
    match HeaderValue::from_str(to) {
        Ok(location) => {
            response.headers_mut().insert(LOCATION, location);
        }
        Err(_) => return page(StatusCode::INTERNAL_SERVER_ERROR, "<p>Bad redirect.</p>"),
    }
    for cookie in cookies {
        response = with_cookie(response, cookie);
    }
    no_store(response)
}

/// An error page with a way to start again.
fn failure(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<p>{}</p>\n<p><a href=\"/login\">Sign in again</a> or <a href=\"/\">go home</a>.</p>",
        escape_html(message)
    );
    page(status, &body)
}

/// A minimal HTML page around `body` (which must already be escaped).
fn page(status: StatusCode, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">\
         <title>Google sign-in with latchkey</title></head>\n<body>\n{body}\n</body></html>\n"
    );
    let headers = [(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    )];
    no_store((status, headers, html).into_response())
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_cookie_among_several() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; gwa_session=abc"));
        headers.append(COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&headers, STATE_COOKIE), None);
    }

    #[test]
    fn cookies_are_http_only_and_secure_over_https() {
        let plain = set_cookie(SESSION_COOKIE, "x", None, false);
        assert_eq!(plain, "gwa_session=x; Path=/; HttpOnly; SameSite=Lax");
        let secure = set_cookie(STATE_COOKIE, "", Some(0), true);
        assert!(secure.to_str().unwrap().ends_with("; Max-Age=0; Secure"));
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn random_tokens_differ() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape_html("<b>\"Tom\" & 'Jerry'</b>"),
            "&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn validates_config() {
        let good = WebAppConfig::new("http://127.0.0.1:8080", "app", "client", "http://x/cb");
        assert!(good.validate().is_ok());
        assert!(!good.secure_cookies());
        let bad = WebAppConfig::new("not a url", "app", "client", "http://x/cb");
        assert!(bad.validate().is_err());
        let empty = WebAppConfig::new("http://127.0.0.1:8080", "", "client", "http://x/cb");
        assert!(empty.validate().is_err());
    }
}
