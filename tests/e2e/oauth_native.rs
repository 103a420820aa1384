//! Browser sign-in from a desktop or CLI app (`latchkey::browser`): the SDK's loopback
//! listener against the real server and the fake Google's consent step. The test plays
//! the browser over HTTP, hop by hop: the login URL, the consent, the server's callback,
//! the loopback relay page, and the relay page's post of the URL fragment.

use std::time::Duration;

use base64::Engine as _;
use http::StatusCode;
use latchkey::browser::{BrowserSignIn, CALLBACK_PATH, RedirectProvider};
use latchkey::events::UserEvent;
use latchkey::{App, ErrorKind, User};
use latchkey_testkit::FullStack;
use latchkey_testkit::idp::{FacebookUser, IdTokenClaims, ProviderRedirect};
use serde_json::Value;

/// How long the SDK waits for the browser (far longer than any test takes).
const WAIT: Duration = Duration::from_secs(120);

struct Native {
    stack: FullStack,
    app: App,
    browser: reqwest::Client,
}

impl Native {
    /// The server with the port-less loopback entry in Google's `redirect_uris`.
    async fn start() -> Native {
        let allowed = format!("http://127.0.0.1{CALLBACK_PATH}");
        let stack = FullStack::start_with_redirect_uris(&[allowed]).await;
        let app = App::builder(stack.server().app_id())
            .base_url(stack.server().url())
            .in_memory_store()
            .build()
            .unwrap();
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Native {
            stack,
            app,
            browser,
        }
    }

    /// The browser back at the server's callback: where the server sends it (the
    /// loopback redirect URI with the result in the fragment).
    async fn callback(&self, back: &ProviderRedirect) -> String {
        let resp = match &back.form {
            None => self.browser.get(&back.url).send().await.unwrap(),
            // Apple's response_mode=form_post.
            Some(form) => self
                .browser
                .post(&back.url)
                .form(form)
                .send()
                .await
                .unwrap(),
        };
        assert_eq!(resp.status(), StatusCode::FOUND);
        location(&resp)
    }

    /// What the relay page does at `final_url`: load the page (the fragment is not
    /// sent), then post the fragment to the same path from the same origin.
    async fn relay(&self, final_url: &str) -> reqwest::Response {
        let (page_url, fragment) = final_url.split_once('#').expect("a fragment");
        let page = self.browser.get(page_url).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()["cache-control"], "no-store");
        let csp = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("script-src 'nonce-"), "{csp}");
        let html = page.text().await.unwrap();
        assert!(html.contains("location.hash"), "{html}");
        self.post(page_url, fragment, &origin(page_url)).await
    }

    async fn post(&self, url: &str, body: &str, origin: &str) -> reqwest::Response {
        self.browser
            .post(url)
            .header("origin", origin)
            .header("content-type", "text/plain")
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_owned()
}

/// `http://127.0.0.1:{port}` of a loopback URL.
fn origin(url: &str) -> String {
    let url = url::Url::parse(url).unwrap();
    url.origin().ascii_serialization()
}

type Waiting = tokio::task::JoinHandle<Result<User, latchkey::Error>>;

/// `finish` on its own task, as the app waits while the person is in the browser.
fn wait(sign_in: BrowserSignIn) -> Waiting {
    tokio::spawn(sign_in.finish(WAIT))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_sign_in_through_the_loopback_listener() {
    let n = Native::start().await;
    let mut events = n.app.subscribe();
    let sign_in = n
        .app
        .browser_sign_in(RedirectProvider::Google)
        .await
        .unwrap();

    // The login URL: route 1c with a random state, the loopback redirect on the port the
    // OS picked, and the device information.
    let redirect = sign_in.redirect_uri().to_owned();
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    assert!(redirect.ends_with(CALLBACK_PATH), "{redirect}");
    let url = url::Url::parse(sign_in.url()).unwrap();
    assert!(
        url.path().ends_with("/auth/providers/oauth2-google/login"),
        "{url}"
    );
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["redirect"], redirect);
    assert_eq!(query["state"].len(), 64);
    let device: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(&query["device"])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(device["sdk"], "latchkey", "{device}");
    assert!(!format!("{sign_in:?}").contains(&query["state"]));
    let waiting = wait(sign_in);

    let authorize = n.open_url(&url).await;
    let claims = IdTokenClaims::default()
        .sub("native-1")
        .email("native@example.com");
    let back = n.stack.google.approve(&authorize, claims).unwrap();
    let final_url = n.callback(&back).await;
    assert!(
        final_url.starts_with(&format!("{redirect}#")),
        "{final_url}"
    );

    // Loopback only accepts the fragment from its own origin; anything else is refused
    // and the SDK keeps waiting.
    let (page_url, fragment) = final_url.split_once('#').unwrap();
    let foreign = n.post(page_url, fragment, "http://evil.example").await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let elsewhere = n
        .browser
        .get(page_url.replace(CALLBACK_PATH, "/favicon.ico"))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
    assert!(!waiting.is_finished());

    let relayed = n.relay(&final_url).await;
    assert_eq!(relayed.status(), StatusCode::OK);
    let user = waiting.await.unwrap().unwrap();

    assert_eq!(user.provider_type().as_deref(), Some("oauth2-google"));
    assert!(
        user.identities()
            .iter()
            .any(|i| i.provider_type == "oauth2-google" && i.id == "native-1"),
        "{:?}",
        user.identities()
    );
    assert_eq!(
        user.profile().email().as_deref(),
        Some("native@example.com")
    );
    assert_eq!(n.app.current_user().as_ref(), Some(&user));
    assert_eq!(
        events.recv().await.unwrap(),
        UserEvent::LoggedIn {
            user_id: user.id().to_owned()
        }
    );
    // The tokens work: a refresh succeeds, and the profile is fetched with the new token.
    user.refresh_access_token().await.unwrap();
    let mut later = Vec::new();
    while let Ok(event) = events.try_recv() {
        later.push(event);
    }
    let refreshed = UserEvent::TokenRefreshed {
        user_id: user.id().to_owned(),
    };
    assert!(later.contains(&refreshed), "{later:?}");
    user.refresh_profile().await.unwrap();

    // The listener is gone once the sign-in is over.
    assert!(n.browser.get(page_url).send().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_consent_is_a_typed_error() {
    let n = Native::start().await;
    let (waiting, authorize) = n.begin().await;
    let back = n.stack.google.deny(&authorize).unwrap();
    let final_url = n.callback(&back).await;
    assert!(final_url.contains("_baas_error="), "{final_url}");
    assert_eq!(n.relay(&final_url).await.status(), StatusCode::OK);
    let err = waiting.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SignInFailed, "{err}");
    assert!(err.to_string().contains("access_denied"), "{err}");
    assert!(n.app.current_user().is_none());
    assert!(n.app.all_users().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_for_another_state_is_refused_and_never_used() {
    let n = Native::start().await;
    let (waiting, authorize) = n.begin().await;
    let claims = IdTokenClaims::default().sub("native-2");
    let back = n.stack.google.approve(&authorize, claims).unwrap();
    let final_url = n.callback(&back).await;

    // A valid login, but with another state: not this sign-in's answer.
    let (page, fragment) = final_url.split_once('#').unwrap();
    let forged: Vec<String> = fragment
        .split('&')
        .map(|pair| {
            if pair.starts_with("_baas_state=") {
                "_baas_state=someone-elses-state".to_owned()
            } else {
                pair.to_owned()
            }
        })
        .collect();
    let forged = format!("{page}#{}", forged.join("&"));
    assert_ne!(forged, final_url);
    assert_eq!(n.relay(&forged).await.status(), StatusCode::OK);
    let err = waiting.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StateMismatch, "{err}");
    assert!(n.app.current_user().is_none());
    assert!(n.app.all_users().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_comes_back_then_the_wait_times_out_and_the_port_closes() {
    let n = Native::start().await;
    let sign_in = n
        .app
        .browser_sign_in(RedirectProvider::Google)
        .await
        .unwrap();
    let redirect = sign_in.redirect_uri().to_owned();
    let err = sign_in.finish(Duration::from_millis(50)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(n.browser.get(&redirect).send().await.is_err());
    assert!(n.app.current_user().is_none());
}

impl Native {
    /// A sign-in the app waits for, and the browser at Google's authorization URL.
    async fn begin(&self) -> (Waiting, String) {
        self.begin_with(RedirectProvider::Google).await
    }

    /// [`Native::begin`] with `provider`.
    async fn begin_with(&self, provider: RedirectProvider) -> (Waiting, String) {
        let sign_in = self.app.browser_sign_in(provider).await.unwrap();
        let url = url::Url::parse(sign_in.url()).unwrap();
        let waiting = wait(sign_in);
        (waiting, self.open_url(&url).await)
    }

    async fn open_url(&self, url: &url::Url) -> String {
        let resp = self.browser.get(url.as_str()).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND);
        location(&resp)
    }
}

/// The port-less loopback entry allows any port on `127.0.0.1` and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loopback_entry_allows_any_port_and_nothing_else() {
    let n = Native::start().await;
    let login = format!(
        "{}/api/client/v2.0/app/{}/auth/providers/oauth2-google/login",
        n.stack.server().url(),
        n.stack.server().app_id()
    );
    let status = |redirect: String| {
        let req = n
            .browser
            .get(&login)
            .query(&[("state", "abc"), ("redirect", redirect.as_str())]);
        async move { req.send().await.unwrap().status() }
    };
    for port in [1, 8080, 65535] {
        let ok = format!("http://127.0.0.1:{port}{CALLBACK_PATH}");
        assert_eq!(status(ok).await, StatusCode::FOUND, "{port}");
    }
    for refused in [
        format!("http://127.0.0.2:8080{CALLBACK_PATH}"),
        format!("http://localhost:8080{CALLBACK_PATH}"),
        format!("https://127.0.0.1:8080{CALLBACK_PATH}"),
        format!("http://127.0.0.1:8080{CALLBACK_PATH}/x"),
        format!("http://127.0.0.1:8080@evil.example{CALLBACK_PATH}"),
        format!("http://127.0.0.1:0{CALLBACK_PATH}"),
    ] {
        assert_eq!(
            status(refused.clone()).await,
            StatusCode::BAD_REQUEST,
            "{refused}"
        );
    }
}

/// Facebook and Apple (whose callback is a form POST) through the same listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facebook_and_apple_sign_in_the_same_way() {
    let n = Native::start().await;
    for provider in [RedirectProvider::Facebook, RedirectProvider::Apple] {
        let (waiting, authorize) = n.begin_with(provider).await;
        let sub = format!("native-{}", provider.name());
        let back = match provider {
            RedirectProvider::Apple => n
                .stack
                .apple
                .approve(&authorize, IdTokenClaims::default().sub(&sub)),
            _ => n
                .stack
                .facebook
                .approve(&authorize, FacebookUser::new(&sub, "Face Book")),
        }
        .unwrap();
        assert_eq!(back.form.is_some(), provider == RedirectProvider::Apple);
        let final_url = n.callback(&back).await;
        assert_eq!(n.relay(&final_url).await.status(), StatusCode::OK);
        let user = waiting.await.unwrap().unwrap();
        assert_eq!(user.provider_type().as_deref(), Some(provider.name()));
        assert!(
            user.identities()
                .iter()
                .any(|i| i.provider_type == provider.name() && i.id == sub),
            "{:?}",
            user.identities()
        );
        assert_eq!(n.app.current_user().as_ref(), Some(&user));
    }
    assert_eq!(n.app.all_users().len(), 2);
}
