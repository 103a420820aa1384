//! The browser OAuth redirect flow (protocol.md §3.7, route 1c) against the real
//! server and the fake providers' consent step, driven over HTTP as a browser would
//! (redirects not followed, so every hop is checked): sign-in with Google, Facebook
//! and Apple (form_post), linking, and the flow's security rules (no open redirect,
//! single-use expiring state, links need a live access token and reach that user
//! only, no token in the logs).

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use http::StatusCode;
use latchkey_testkit::FullStack;
use latchkey_testkit::idp::{FacebookUser, IdTokenClaims, ProviderRedirect};
use serde_json::Value;

use crate::support::Captured;

/// The app's one allowed redirect URI (never fetched: the test reads the Location).
const REDIRECT: &str = "http://127.0.0.1:9/app/oauth-done";
/// realm-web's state: 12 lowercase letters.
const CLIENT_STATE: &str = "qwertyuiopas";

const PROVIDERS: [&str; 3] = ["oauth2-google", "oauth2-facebook", "oauth2-apple"];

struct Web {
    stack: FullStack,
    http: reqwest::Client,
}

impl Web {
    async fn start() -> Web {
        let stack = FullStack::start_with_redirect_uris(&[REDIRECT.to_owned()]).await;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Web { stack, http }
    }

    fn base(&self) -> String {
        self.stack.server().url()
    }

    fn login_url(&self, provider: &str, query: &[(&str, &str)]) -> String {
        let mut url = url::Url::parse(&format!(
            "{}/api/client/v2.0/app/{}/auth/providers/{provider}/login",
            self.base(),
            self.stack.server().app_id()
        ))
        .unwrap();
        url.query_pairs_mut().extend_pairs(query);
        url.into()
    }

    /// Route 1c for a plain sign-in: the provider's authorization URL.
    async fn begin(&self, provider: &str) -> String {
        self.begin_on(provider, "000000000000000000000000").await
    }

    /// [`Web::begin`] from the device `device_id` (realm-web's `device` parameter).
    async fn begin_on(&self, provider: &str, device_id: &str) -> String {
        let device = base64::engine::general_purpose::STANDARD.encode(format!(
            r#"{{"appId":"web-test","platform":"chrome","deviceId":"{device_id}"}}"#
        ));
        let resp = self
            .http
            .get(self.login_url(
                provider,
                &[
                    ("state", CLIENT_STATE),
                    ("redirect", REDIRECT),
                    ("device", &device),
                ],
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND, "{provider}");
        assert_eq!(resp.headers()["cache-control"], "no-store");
        location(&resp)
    }

    /// The provider's consent step, allowed by user `sub`.
    fn approve(&self, provider: &str, authorize: &str, sub: &str) -> ProviderRedirect {
        let email = format!("{sub}@example.com");
        match provider {
            "oauth2-google" => self
                .stack
                .google
                .approve(authorize, IdTokenClaims::default().sub(sub).email(email)),
            "oauth2-apple" => self
                .stack
                .apple
                .approve(authorize, IdTokenClaims::default().sub(sub).email(email)),
            _ => self
                .stack
                .facebook
                .approve(authorize, FacebookUser::new(sub, "Face Book").email(email)),
        }
        .unwrap()
    }

    /// The browser arriving back at the server's callback.
    async fn callback(&self, back: &ProviderRedirect) -> reqwest::Response {
        match &back.form {
            None => self.http.get(&back.url).send().await.unwrap(),
            Some(form) => self.http.post(&back.url).form(form).send().await.unwrap(),
        }
    }

    /// A whole sign-in; the final fragment.
    async fn sign_in(&self, provider: &str, sub: &str) -> HashMap<String, String> {
        let authorize = self.begin(provider).await;
        let back = self.approve(provider, &authorize, sub);
        let resp = self.callback(&back).await;
        assert_eq!(resp.status(), StatusCode::FOUND, "{provider}");
        fragment(&location(&resp))
    }

    async fn profile(&self, access: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}/api/client/v2.0/auth/profile", self.base()))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    /// A new email/password user: (user id, access token).
    async fn password_user(&self, email: &str) -> (String, String) {
        let app = format!(
            "{}/api/client/v2.0/app/{}/auth/providers/local-userpass",
            self.base(),
            self.stack.server().app_id()
        );
        let body = serde_json::json!({"username": email, "password": "correct horse"});
        let register = serde_json::json!({"email": email, "password": "correct horse"});
        let resp = self
            .http
            .post(format!("{app}/register"))
            .json(&register)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
        let resp: Value = self
            .http
            .post(format!("{app}/login"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            resp["user_id"].as_str().unwrap().to_owned(),
            resp["access_token"].as_str().unwrap().to_owned(),
        )
    }

    /// Route 1c for a link (`providerRedirectHeader=true`), with `bearer`.
    async fn begin_link(&self, provider: &str, bearer: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(self.login_url(
            provider,
            &[
                ("link", "true"),
                ("state", CLIENT_STATE),
                ("redirect", REDIRECT),
                ("providerRedirectHeader", "true"),
            ],
        ));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        req.send().await.unwrap()
    }
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location: {resp:?}"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// The `#...` keys of a final redirect to [`REDIRECT`].
fn fragment(location: &str) -> HashMap<String, String> {
    let (base, fragment) = location.split_once('#').expect("a fragment");
    assert_eq!(base, REDIRECT);
    url::form_urlencoded::parse(fragment.as_bytes())
        .into_owned()
        .collect()
}

/// `_baas_ua`: access, refresh, user id, device id.
fn user_auth(fragment: &HashMap<String, String>) -> Vec<String> {
    let parts: Vec<String> = fragment["_baas_ua"].split('$').map(str::to_owned).collect();
    assert_eq!(parts.len(), 4, "{fragment:?}");
    parts
}

/// A JSON error answer of `status` (never a redirect).
async fn assert_json_error(resp: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(resp.status(), status);
    assert!(resp.headers().get("location").is_none());
    assert_eq!(resp.headers()["content-type"], "application/json");
    resp.json().await.unwrap()
}

#[tokio::test]
async fn google_facebook_and_apple_sign_in_through_the_browser_flow() {
    let web = Web::start().await;
    for provider in PROVIDERS {
        let authorize = web.begin(provider).await;
        let back = web.approve(provider, &authorize, "person-1");
        // Apple answers with a form POST; the others with a GET.
        assert_eq!(back.form.is_some(), provider == "oauth2-apple");
        let resp = web.callback(&back).await;
        assert_eq!(resp.status(), StatusCode::FOUND, "{provider}");
        let f = fragment(&location(&resp));
        assert_eq!(f["_baas_state"], CLIENT_STATE);
        assert_eq!(f["_baas_client_app_id"], web.stack.server().app_id());
        assert!(!f.contains_key("_baas_error"), "{f:?}");
        let [access, refresh, user_id, device_id] = user_auth(&f).try_into().unwrap();
        assert!(!refresh.is_empty());
        assert_eq!(device_id.len(), 24, "a new device");
        let profile = web.profile(&access).await;
        assert_eq!(profile["user_id"], user_id.as_str());
        let identity = &profile["identities"][0];
        assert_eq!(identity["provider_type"], provider);
        assert_eq!(identity["id"], "person-1");
        assert_eq!(profile["data"]["email"], "person-1@example.com");
        // The same person again, from that device: the same user, the same device.
        let authorize = web.begin_on(provider, &device_id).await;
        let resp = web
            .callback(&web.approve(provider, &authorize, "person-1"))
            .await;
        let again = user_auth(&fragment(&location(&resp)));
        assert_eq!(again[2], user_id, "{provider}");
        assert_eq!(
            again[3], device_id,
            "{provider}: the device sent at the start"
        );
    }
}

#[tokio::test]
async fn the_authorization_request_carries_state_pkce_and_the_callback() {
    let web = Web::start().await;
    let callback = format!("{}/api/client/v2.0/auth/callback", web.base());
    for provider in PROVIDERS {
        let authorize = url::Url::parse(&web.begin(provider).await).unwrap();
        let q: HashMap<String, String> = authorize.query_pairs().into_owned().collect();
        assert_eq!(q["redirect_uri"], callback);
        assert_eq!(q["response_type"], "code");
        assert!(q["state"].len() >= 43, "a 256-bit server-side state");
        assert_ne!(q["state"], CLIENT_STATE, "never the client's state");
        let pkce = q.get("code_challenge_method").map(String::as_str);
        let form_post = q.get("response_mode").map(String::as_str);
        if provider == "oauth2-apple" {
            assert_eq!((pkce, form_post), (None, Some("form_post")));
        } else {
            assert_eq!((pkce, form_post), (Some("S256"), None));
        }
    }
}

#[tokio::test]
async fn only_the_apps_exact_redirect_uris_are_accepted() {
    let web = Web::start().await;
    let near_misses = [
        "https://evil.example/app/oauth-done",
        "http://127.0.0.1:9/app/oauth-done/",
        "http://127.0.0.1:9/app/oauth-done?x=1",
        "http://127.0.0.1:9/app/oauth-done#x",
        "http://127.0.0.1:9/APP/oauth-done",
        "http://127.0.0.1:99/app/oauth-done",
        "//evil.example",
        "",
    ];
    for provider in PROVIDERS {
        for redirect in near_misses {
            let resp = web
                .http
                .get(web.login_url(provider, &[("state", CLIENT_STATE), ("redirect", redirect)]))
                .send()
                .await
                .unwrap();
            let body = assert_json_error(resp, StatusCode::BAD_REQUEST).await;
            assert_eq!(body["error_code"], "BadRequest", "{redirect}: {body}");
        }
        // No redirect at all, or no state: refused too.
        let resp = web
            .http
            .get(web.login_url(provider, &[("state", CLIENT_STATE)]))
            .send()
            .await
            .unwrap();
        assert_json_error(resp, StatusCode::BAD_REQUEST).await;
        let resp = web
            .http
            .get(web.login_url(provider, &[("redirect", REDIRECT)]))
            .send()
            .await
            .unwrap();
        assert_json_error(resp, StatusCode::BAD_REQUEST).await;
    }
    // A provider without the flow (anonymous): its login route takes POST only.
    let resp = web
        .http
        .get(web.login_url(
            "anon-user",
            &[("state", CLIENT_STATE), ("redirect", REDIRECT)],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["allow"], "POST");
    assert_json_error(resp, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[tokio::test]
async fn a_state_is_single_use_expires_and_must_be_known() {
    let web = Web::start().await;
    for provider in PROVIDERS {
        let authorize = web.begin(provider).await;
        let back = web.approve(provider, &authorize, "replayed");
        assert_eq!(web.callback(&back).await.status(), StatusCode::FOUND);
        // The same callback again (a replay): refused, no redirect, nothing issued.
        let body = assert_json_error(web.callback(&back).await, StatusCode::BAD_REQUEST).await;
        assert!(
            body["error"].as_str().unwrap().contains("OAuth state"),
            "{body}"
        );
    }
    // Unknown, missing and tampered states.
    let cb = format!("{}/api/client/v2.0/auth/callback", web.base());
    for query in ["?code=x&state=unknown", "?code=x", "", "?state=&code=x"] {
        let resp = web.http.get(format!("{cb}{query}")).send().await.unwrap();
        assert_json_error(resp, StatusCode::BAD_REQUEST).await;
    }
    // Expired: the person took longer than 10 minutes at the consent page.
    let authorize = web.begin("oauth2-google").await;
    let back = web.approve("oauth2-google", &authorize, "slow");
    web.stack.server().advance_clock(Duration::from_secs(601));
    assert_json_error(web.callback(&back).await, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn provider_errors_come_back_in_baas_error() {
    let web = Web::start().await;
    for provider in PROVIDERS {
        let authorize = web.begin(provider).await;
        let back = match provider {
            "oauth2-google" => web.stack.google.deny(&authorize),
            "oauth2-apple" => web.stack.apple.deny(&authorize),
            _ => web.stack.facebook.deny(&authorize),
        }
        .unwrap();
        let resp = web.callback(&back).await;
        assert_eq!(resp.status(), StatusCode::FOUND);
        let f = fragment(&location(&resp));
        assert_eq!(f["_baas_state"], CLIENT_STATE);
        assert!(f["_baas_error"].contains("access_denied"), "{f:?}");
        assert!(!f.contains_key("_baas_ua"));
    }
    // A code the provider refuses (already used at the token endpoint): _baas_error.
    let authorize = web.begin("oauth2-google").await;
    let back = web.approve("oauth2-google", &authorize, "x");
    let mut forged = back.clone();
    forged.url = forged.url.replace("code=", "code=forged");
    // The forged code spends the state; the error comes back to the app.
    let f = fragment(&location(&web.callback(&forged).await));
    assert!(f["_baas_error"].contains("rejected"), "{f:?}");
}

#[tokio::test]
async fn linking_needs_a_live_access_token_and_links_that_user_only() {
    let web = Web::start().await;
    let (alice, alice_access) = web.password_user("alice@example.com").await;
    let (bob, bob_access) = web.password_user("bob@example.com").await;

    // No token, a malformed one, or a refresh token: 401 JSON, nothing started.
    let resp = web.begin_link("oauth2-google", None).await;
    assert_json_error(resp, StatusCode::UNAUTHORIZED).await;
    let resp = web.begin_link("oauth2-google", Some("not-a-token")).await;
    assert_json_error(resp, StatusCode::UNAUTHORIZED).await;

    // Alice links Google: 200 with X-BAAS-Location (not a 3xx).
    let resp = web.begin_link("oauth2-google", Some(&alice_access)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let authorize = resp.headers()["x-baas-location"]
        .to_str()
        .unwrap()
        .to_owned();
    let back = web.approve("oauth2-google", &authorize, "alice-google");
    let resp = web.callback(&back).await;
    let f = fragment(&location(&resp));
    assert_eq!(f["_baas_link"], "ok", "{f:?}");
    let [access, _, user_id, _] = user_auth(&f).try_into().unwrap();
    assert_eq!(user_id, alice);
    let profile = web.profile(&access).await;
    let types: Vec<&str> = profile["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["provider_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["local-userpass", "oauth2-google"]);
    // Bob is untouched, and Google's alice-google now signs in as Alice.
    let bob_profile = web.profile(&bob_access).await;
    assert_eq!(bob_profile["identities"].as_array().unwrap().len(), 1);
    let f = web.sign_in("oauth2-google", "alice-google").await;
    assert_eq!(user_auth(&f)[2], alice);
    // Bob cannot link Alice's Google identity.
    let resp = web.begin_link("oauth2-google", Some(&bob_access)).await;
    let authorize = resp.headers()["x-baas-location"]
        .to_str()
        .unwrap()
        .to_owned();
    let f = fragment(&location(
        &web.callback(&web.approve("oauth2-google", &authorize, "alice-google"))
            .await,
    ));
    assert!(f["_baas_error"].contains("already linked"), "{f:?}");
    assert_ne!(bob, alice);

    // A session revoked between the start and the callback: no link.
    let resp = web.begin_link("oauth2-facebook", Some(&bob_access)).await;
    let authorize = resp.headers()["x-baas-location"]
        .to_str()
        .unwrap()
        .to_owned();
    let users = format!(
        "{}/admin/v1/apps/{}/users/{bob}/sessions",
        web.base(),
        web.stack.server().app_id()
    );
    let revoke = web
        .http
        .delete(&users)
        .bearer_auth(web.stack.admin_token())
        .send()
        .await
        .unwrap();
    assert!(revoke.status().is_success(), "{revoke:?}");
    let f = fragment(&location(
        &web.callback(&web.approve("oauth2-facebook", &authorize, "bob-fb"))
            .await,
    ));
    assert!(f["_baas_error"].contains("session"), "{f:?}");
}

#[tokio::test]
async fn the_link_answer_allows_a_credentialed_cross_origin_fetch() {
    let web = Web::start().await;
    let (_, access) = web.password_user("carol@example.com").await;
    // The dev app allows every origin; realm-web's fetch is credentialed.
    let resp = web
        .http
        .get(web.login_url(
            "oauth2-google",
            &[
                ("link", "true"),
                ("state", CLIENT_STATE),
                ("redirect", REDIRECT),
                ("providerRedirectHeader", "true"),
            ],
        ))
        .bearer_auth(&access)
        .header("origin", "http://127.0.0.1:9")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], "http://127.0.0.1:9");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(
        h["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("X-BAAS-Location")
    );
}

/// Every sign-in, with the server's logs at TRACE: no token, code, state or secret of
/// the flow shows in them.
///
/// The subscriber is the process-wide default (a thread's scoped subscriber misses
/// events whose interest other test threads cached), so the capture also holds what
/// tests running beside this one log; the assertions look for this test's values only.
#[tokio::test]
async fn no_token_code_or_state_reaches_the_logs() {
    static LOGS: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    let logs = LOGS
        .get_or_init(|| {
            let logs = Captured::default();
            let writer = logs.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_env_filter(tracing_subscriber::EnvFilter::new(
                    "info,latchkey_server=trace,tower_http=trace",
                ))
                .with_ansi(false)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other test sets the global subscriber");
            logs
        })
        .clone();

    let web = Web::start().await;
    let mut secrets = vec![
        latchkey_testkit::full::GOOGLE_CLIENT_SECRET.to_owned(),
        latchkey_testkit::full::APPLE_CLIENT_SECRET.to_owned(),
        web.stack.facebook.app_secret().to_owned(),
    ];
    for provider in PROVIDERS {
        let authorize = web.begin(provider).await;
        let q: HashMap<String, String> = url::Url::parse(&authorize)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        secrets.push(q["state"].clone());
        let back = web.approve(provider, &authorize, "logged");
        let url = url::Url::parse(&back.url).unwrap();
        let fields: Vec<(String, String)> = match &back.form {
            Some(form) => form.clone(),
            None => url.query_pairs().into_owned().collect(),
        };
        secrets.extend(
            fields
                .into_iter()
                .filter(|(k, _)| k == "code")
                .map(|(_, v)| v),
        );
        let resp = web.callback(&back).await;
        let f = fragment(&location(&resp));
        let ua = user_auth(&f);
        secrets.push(ua[0].clone());
        secrets.push(ua[1].clone());
    }
    let text = logs.text();
    assert!(
        text.contains("auth/callback"),
        "the requests are logged:\n{text}"
    );
    for secret in &secrets {
        assert!(secret.len() >= 16);
        assert!(
            !text.contains(secret.as_str()),
            "{secret} in the logs:\n{text}"
        );
    }
}
