//! End to end: the web app against the real latchkey-server and its fake Google
//! ([`FullStack`]), everything on 127.0.0.1.
//!
//! The test plays the browser: a cookie-aware `reqwest` client that does not follow
//! redirects. Instead of Google's consent screen, it mints an authorization code with
//! [`FullStack::google_auth_code`] and comes back to `/auth/callback` with it, as Google
//! would redirect the browser.

use std::collections::HashMap;

use google_web_app::{SCOPE, SESSION_COOKIE, STATE_COOKIE, WebAppConfig, router};
use latchkey_testkit::FullStack;
use latchkey_testkit::full::GOOGLE_CLIENT_ID;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;
use url::Url;

/// The latchkey stack plus the web app on a free loopback port.
struct Harness {
    stack: FullStack,
    /// e.g. `http://127.0.0.1:41234`
    base: String,
    authorize_url: String,
    redirect_uri: String,
}

impl Harness {
    async fn start() -> Harness {
        let stack = FullStack::start().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("local address"));
        // The fake Google has no consent screen: the browser is never sent there.
        let authorize_url = format!("{}/o/oauth2/v2/auth", stack.google.base_url());
        let redirect_uri = format!("{base}/auth/callback");
        let config = WebAppConfig::new(
            stack.server().url(),
            stack.server().app_id(),
            GOOGLE_CLIENT_ID,
            &redirect_uri,
        )
        .with_google_authorize_url(&authorize_url);
        config.validate().expect("valid configuration");
        tokio::spawn(async move {
            axum::serve(listener, router(config))
                .await
                .expect("the web app serves");
        });
        Harness {
            stack,
            base,
            authorize_url,
            redirect_uri,
        }
    }

    /// A new browser: its own cookie jar, redirects not followed.
    fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest client")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET /login`; returns the authorize URL's query parameters.
    async fn start_login(&self, browser: &reqwest::Client) -> HashMap<String, String> {
        let resp = browser
            .get(self.url("/login"))
            .send()
            .await
            .expect("GET /login");
        assert_eq!(resp.status(), StatusCode::FOUND);
        let location = location(&resp);
        let url = Url::parse(&location).expect("absolute authorize URL");
        assert!(
            location.starts_with(&format!("{}?", self.authorize_url)),
            "{location}"
        );
        url.query_pairs().into_owned().collect()
    }

    /// `GET /auth/callback?code=..&state=..` as Google's redirect would.
    async fn callback(
        &self,
        browser: &reqwest::Client,
        code: &str,
        state: &str,
    ) -> reqwest::Response {
        let mut url = Url::parse(&self.url("/auth/callback")).expect("callback URL");
        url.query_pairs_mut()
            .append_pair("code", code)
            .append_pair("state", state);
        browser.get(url).send().await.expect("GET /auth/callback")
    }

    /// The whole sign-in for Google user `sub`; returns the browser, signed in.
    async fn sign_in(&self, sub: &str, email: &str, name: &str) -> reqwest::Client {
        let browser = self.browser();
        let params = self.start_login(&browser).await;
        let code = self.stack.google_auth_code(sub, email, name);
        let resp = self.callback(&browser, &code, &params["state"]).await;
        assert_eq!(resp.status(), StatusCode::FOUND, "{}", body(resp).await);
        browser
    }

    async fn me(&self, browser: &reqwest::Client) -> (StatusCode, Value) {
        let resp = browser.get(self.url("/me")).send().await.expect("GET /me");
        let status = resp.status();
        (status, resp.json().await.expect("JSON from /me"))
    }
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get(LOCATION)
        .expect("a Location header")
        .to_str()
        .expect("ASCII Location")
        .to_owned()
}

/// The `Set-Cookie` header for cookie `name`.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// The value of a `Set-Cookie` header (`name=value; ...` -> `value`).
fn cookie_value(set_cookie: &str) -> &str {
    let pair = set_cookie.split(';').next().unwrap_or_default();
    pair.split_once('=').map(|(_, v)| v).unwrap_or_default()
}

async fn body(resp: reqwest::Response) -> String {
    resp.text().await.expect("a text body")
}

#[tokio::test(flavor = "multi_thread")]
async fn login_redirects_to_google_with_a_state_cookie() {
    let h = Harness::start().await;
    let browser = h.browser();
    let resp = browser.get(h.url("/login")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let cookie = set_cookie(&resp, STATE_COOKIE).expect("a state cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain-http app: {cookie}");

    let location = Url::parse(&location(&resp)).unwrap();
    let expected = Url::parse(&h.authorize_url).unwrap();
    assert_eq!(location.origin(), expected.origin());
    assert_eq!(location.path(), expected.path());
    let params: HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(params["client_id"], GOOGLE_CLIENT_ID);
    assert_eq!(params["redirect_uri"], h.redirect_uri);
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["scope"], SCOPE);
    assert!(params["scope"].split(' ').any(|s| s == "openid"));
    let state = &params["state"];
    assert!(state.len() >= 32, "state too short: {state}");
    assert_eq!(cookie_value(&cookie), state);

    // Every visit to /login makes a new state.
    let again = h.start_login(&browser).await;
    assert_ne!(&again["state"], state);
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_with_google_then_me_shows_the_identity() {
    let h = Harness::start().await;
    let browser = h.browser();

    let home = body(browser.get(h.url("/")).send().await.unwrap()).await;
    assert!(home.contains("href=\"/login\""), "{home}");

    let params = h.start_login(&browser).await;
    let code = h
        .stack
        .google_auth_code("g-1001", "grace@example.com", "Grace Hopper");
    let resp = h.callback(&browser, &code, &params["state"]).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(location(&resp), "/");
    let session = set_cookie(&resp, SESSION_COOKIE).expect("a session cookie");
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(cookie_value(&session).len() >= 32, "{session}");
    let cleared = set_cookie(&resp, STATE_COOKIE).expect("the state cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    let (status, me) = h.me(&browser).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["email"], "grace@example.com");
    assert_eq!(me["name"], "Grace Hopper");
    assert!(me["id"].as_str().is_some_and(|id| !id.is_empty()), "{me}");
    let identities = me["identities"].as_array().expect("identities");
    assert_eq!(identities.len(), 1, "{me}");
    assert_eq!(identities[0]["provider_type"], "oauth2-google");
    assert_eq!(identities[0]["id"], "g-1001");

    let home = body(browser.get(h.url("/")).send().await.unwrap()).await;
    assert!(
        home.contains("Signed in as <strong>Grace Hopper</strong>"),
        "{home}"
    );
    assert!(home.contains("action=\"/logout\""), "{home}");

    // Signing in again with the same Google account is the same latchkey user.
    let again = h
        .sign_in("g-1001", "grace@example.com", "Grace Hopper")
        .await;
    let (_, me_again) = h.me(&again).await;
    assert_eq!(me_again["id"], me["id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_state_is_rejected() {
    let h = Harness::start().await;
    let browser = h.browser();
    let params = h.start_login(&browser).await;
    let code = h.stack.google_auth_code("g-2", "mallory@example.com", "M");
    let resp = h.callback(&browser, &code, "not-the-state").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookie(&resp, SESSION_COOKIE).is_none());
    assert!(body(resp).await.contains("invalid or has expired"));
    assert_eq!(h.me(&browser).await.0, StatusCode::UNAUTHORIZED);

    // The state was single use: the right one no longer works either.
    let resp = h.callback(&browser, &code, &params["state"]).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(h.me(&browser).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callback_without_a_state_cookie_is_rejected() {
    let h = Harness::start().await;
    // The state came from someone else's /login (a login-CSRF attempt).
    let attacker = h.browser();
    let params = h.start_login(&attacker).await;
    let code = h.stack.google_auth_code("g-3", "attacker@example.com", "A");
    let victim = h.browser();
    let resp = h.callback(&victim, &code, &params["state"]).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(h.me(&victim).await.0, StatusCode::UNAUTHORIZED);
    // No state at all.
    let resp = victim
        .get(h.url(&format!("/auth/callback?code={code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reused_code_is_rejected() {
    let h = Harness::start().await;
    let browser = h.browser();
    let params = h.start_login(&browser).await;
    let code = h.stack.google_auth_code("g-4", "reuse@example.com", "R");
    let first = h.callback(&browser, &code, &params["state"]).await;
    assert_eq!(first.status(), StatusCode::FOUND);

    // A second browser replays the same code with a valid state of its own.
    let other = h.browser();
    let params = h.start_login(&other).await;
    let resp = h.callback(&other, &code, &params["state"]).await;
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert!(set_cookie(&resp, SESSION_COOKIE).is_none());
    let page = body(resp).await;
    assert!(page.contains("Google sign-in was rejected"), "{page}");
    assert!(page.contains("href=\"/login\""), "{page}");
    assert_eq!(h.me(&other).await.0, StatusCode::UNAUTHORIZED);
    // The first browser is unaffected.
    assert_eq!(h.me(&browser).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn google_errors_are_shown_not_logged_in() {
    let h = Harness::start().await;
    let browser = h.browser();
    let params = h.start_login(&browser).await;
    let url = format!(
        "/auth/callback?error=access_denied&state={}",
        params["state"]
    );
    let resp = browser.get(h.url(&url)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(body(resp).await.contains("access_denied"));
    assert_eq!(h.me(&browser).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn me_without_a_session_is_401() {
    let h = Harness::start().await;
    let (status, body) = h.me(&h.browser()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "not signed in");
    // A made-up session id is no session.
    let resp = reqwest::Client::new()
        .get(h.url("/me"))
        .header(COOKIE, format!("{SESSION_COOKIE}=made-up"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_ends_the_session() {
    let h = Harness::start().await;
    let browser = h.browser();
    let params = h.start_login(&browser).await;
    let code = h.stack.google_auth_code("g-5", "leaving@example.com", "L");
    let resp = h.callback(&browser, &code, &params["state"]).await;
    let session = set_cookie(&resp, SESSION_COOKIE).expect("a session cookie");
    let session_id = cookie_value(&session).to_owned();
    assert_eq!(h.me(&browser).await.0, StatusCode::OK);

    let resp = browser.post(h.url("/logout")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), "/");
    let cleared = set_cookie(&resp, SESSION_COOKIE).expect("the session cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    assert_eq!(h.me(&browser).await.0, StatusCode::UNAUTHORIZED);
    let home = body(browser.get(h.url("/")).send().await.unwrap()).await;
    assert!(home.contains("href=\"/login\""), "{home}");
    // The old session id is dead on the server too, not only forgotten by the browser.
    let resp = reqwest::Client::new()
        .get(h.url("/me"))
        .header(COOKIE, format!("{SESSION_COOKIE}={session_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Logging out without a session is harmless.
    let resp = browser.post(h.url("/logout")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_visitor_has_their_own_user() {
    let h = Harness::start().await;
    let ann = h.sign_in("g-ann", "ann@example.com", "Ann").await;
    let bob = h.sign_in("g-bob", "bob@example.com", "Bob").await;
    let (_, ann_me) = h.me(&ann).await;
    let (_, bob_me) = h.me(&bob).await;
    assert_eq!(ann_me["email"], "ann@example.com");
    assert_eq!(bob_me["email"], "bob@example.com");
    assert_ne!(ann_me["id"], bob_me["id"]);

    // Bob signing out does not sign Ann out.
    bob.post(h.url("/logout")).send().await.unwrap();
    assert_eq!(h.me(&bob).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(h.me(&ann).await.0, StatusCode::OK);
}
