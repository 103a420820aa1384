//! `oauth2-google`, `oauth2-apple` and `oauth2-facebook` against the fake identity
//! providers of `latchkey_testkit::idp` (real RSA keys, real HTTP).

use latchkey_server::Config;
use latchkey_server::config::{AppleConfig, FacebookConfig, GoogleConfig};
use latchkey_testkit::idp::{FacebookUser, FakeFacebook, FakeOidc, IdTokenClaims};
use serde_json::json;

use crate::common::*;

const GOOGLE_CLIENT: &str = "1234-web.apps.googleusercontent.com";
const GOOGLE_SECRET: &str = "GOCSPX-test-client-secret";
const APPLE_CLIENT: &str = "com.example.app";

fn closed_port_url(path: &str) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}{path}")
}

fn google_config(idp: &FakeOidc) -> GoogleConfig {
    GoogleConfig {
        enabled: true,
        client_id: GOOGLE_CLIENT.into(),
        client_secret: Some(GOOGLE_SECRET.into()),
        jwks_url: idp.jwks_url(),
        token_url: idp.token_url(),
        ..GoogleConfig::default()
    }
}

fn apple_config(idp: &FakeOidc) -> AppleConfig {
    AppleConfig {
        enabled: true,
        client_id: APPLE_CLIENT.into(),
        client_ids: vec!["com.example.web".into()],
        jwks_url: idp.jwks_url(),
        ..AppleConfig::default()
    }
}

fn facebook_config(fb: &FakeFacebook) -> FacebookConfig {
    FacebookConfig {
        enabled: true,
        app_id: fb.app_id().to_owned(),
        app_secret: fb.app_secret().into(),
        graph_url: fb.graph_url(),
        ..FacebookConfig::default()
    }
}

fn with(f: impl FnOnce(&mut Config)) -> Config {
    let mut c = config();
    f(&mut c);
    c
}

async fn google(h: &Harness, token: &str) -> Reply {
    h.login("oauth2-google", json!({"id_token": token})).await
}

fn assert_auth_error(r: &Reply, prefix: &str, expected: &str) {
    let msg = r.assert_error(401, "AuthError");
    assert!(msg.starts_with(prefix), "{msg}");
    assert!(
        msg.contains(expected),
        "{msg:?} should contain {expected:?}"
    );
    assert!(!msg.contains("unauthorized"));
}

#[tokio::test]
async fn google_id_token_login_same_user_and_profile() {
    let idp = FakeOidc::google().await;
    let h = start_with(with(|c| c.apps[0].providers.google = google_config(&idp))).await;
    let claims = IdTokenClaims::new("g-123", GOOGLE_CLIENT)
        .email("ann@example.org")
        .email_verified(true)
        .name("Ann Lee")
        .given_name("Ann")
        .family_name("Lee")
        .picture("https://example.org/ann.png");
    let first = Tokens::from(&google(&h, &idp.id_token(&claims)).await.assert_ok_json());
    let second = Tokens::from(&google(&h, &idp.id_token(&claims)).await.assert_ok_json());
    assert_eq!(first.user_id, second.user_id);
    let p = h.profile(&first.access).await.assert_ok_json();
    assert_eq!(p["identities"][0]["id"], "g-123");
    assert_eq!(p["identities"][0]["provider_type"], "oauth2-google");
    let d = &p["data"];
    assert_eq!(d["email"], "ann@example.org");
    assert_eq!(d["name"], "Ann Lee");
    assert_eq!(d["first_name"], "Ann");
    assert_eq!(d["last_name"], "Lee");
    assert_eq!(d["picture"], "https://example.org/ann.png");
    assert_eq!(d["picture_url"], "https://example.org/ann.png");
    // The short issuer form is accepted too.
    let short = claims.clone().iss("accounts.google.com");
    let third = google(&h, &idp.id_token(&short)).await.assert_ok_json();
    assert_eq!(third["user_id"], first.user_id.as_str());
    assert_eq!(idp.jwks_requests(), 1);
}

#[tokio::test]
async fn later_logins_refresh_the_profile_data() {
    let idp = FakeOidc::google().await;
    let h = start_with(with(|c| c.apps[0].providers.google = google_config(&idp))).await;
    let before = IdTokenClaims::new("g-9", GOOGLE_CLIENT)
        .email("old@example.org")
        .name("Old Name");
    let first = Tokens::from(&google(&h, &idp.id_token(&before)).await.assert_ok_json());
    let p = h.profile(&first.access).await.assert_ok_json();
    assert_eq!(p["data"]["name"], "Old Name");

    // The person changed their name at Google: the next login brings the new data.
    let after = IdTokenClaims::new("g-9", GOOGLE_CLIENT)
        .email("new@example.org")
        .name("New Name");
    let second = Tokens::from(&google(&h, &idp.id_token(&after)).await.assert_ok_json());
    assert_eq!(second.user_id, first.user_id);
    let p = h.profile(&second.access).await.assert_ok_json();
    assert_eq!(p["data"]["name"], "New Name");
    assert_eq!(p["data"]["email"], "new@example.org");
    // Every session of the user sees it (the profile is read from the store).
    let p = h.profile(&first.access).await.assert_ok_json();
    assert_eq!(p["data"]["name"], "New Name");
}

#[tokio::test]
async fn google_id_token_rejections() {
    let idp = FakeOidc::google().await;
    let h = start_with(with(|c| c.apps[0].providers.google = google_config(&idp))).await;
    let ok = IdTokenClaims::new("g-1", GOOGLE_CLIENT);
    let cases = [
        (
            idp.id_token(&ok.clone().aud("someone-else")),
            "audience mismatch",
        ),
        (
            idp.id_token(&ok.clone().iss("https://evil.example")),
            "issuer mismatch",
        ),
        (idp.id_token(&ok.clone().expired()), "token expired"),
        (idp.id_token_with_unpublished_key(&ok), "unknown key"),
    ];
    for (token, expected) in cases {
        assert_auth_error(&google(&h, &token).await, "Google: ", expected);
    }
    // No aud at all.
    let mut no_aud = ok.clone();
    no_aud.aud = None;
    assert_auth_error(
        &google(&h, &idp.id_token(&no_aud)).await,
        "Google: ",
        "no aud",
    );
    // A tampered payload.
    let token = idp.id_token(&ok);
    let parts: Vec<&str> = token.split('.').collect();
    let other = idp.id_token(&ok.clone().sub("g-2"));
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        other.split('.').nth(1).unwrap(),
        parts[2]
    );
    assert_auth_error(&google(&h, &forged).await, "Google: ", "invalid signature");
    // Neither id_token nor authCode.
    h.login("oauth2-google", json!({}))
        .await
        .assert_error(400, "BadRequest");
}

#[tokio::test]
async fn google_auth_code_exchange() {
    let idp = FakeOidc::google().await;
    let h = start_with(with(|c| c.apps[0].providers.google = google_config(&idp))).await;
    let claims = IdTokenClaims::new("g-code", GOOGLE_CLIENT).email("code@example.org");
    let code = idp.auth_code(GOOGLE_CLIENT, GOOGLE_SECRET, &claims);
    let r = h.login("oauth2-google", json!({"authCode": code})).await;
    let t = Tokens::from(&r.assert_ok_json());
    let p = h.profile(&t.access).await.assert_ok_json();
    assert_eq!(p["identities"][0]["id"], "g-code");
    assert_eq!(p["data"]["email"], "code@example.org");
    // Same subject through an ID token: same user.
    let again = google(&h, &idp.id_token(&claims)).await.assert_ok_json();
    assert_eq!(again["user_id"], t.user_id.as_str());

    // A code is single-use.
    let r = h.login("oauth2-google", json!({"authCode": code})).await;
    assert_auth_error(&r, "Google: ", "invalid_grant");
    assert!(!r.text.contains(&code), "the code is never echoed");
}

#[tokio::test]
async fn google_auth_code_wrong_client_secret() {
    let idp = FakeOidc::google().await;
    let h = start_with(with(|c| {
        let mut g = google_config(&idp);
        g.client_secret = Some("not-the-secret".into());
        c.apps[0].providers.google = g;
    }))
    .await;
    let code = idp.auth_code(
        GOOGLE_CLIENT,
        GOOGLE_SECRET,
        &IdTokenClaims::new("g", GOOGLE_CLIENT),
    );
    let r = h.login("oauth2-google", json!({"authCode": code})).await;
    assert_auth_error(&r, "Google: ", "invalid_client");
    assert!(!r.text.contains("not-the-secret") && !r.text.contains(&code));
    assert_eq!(idp.token_requests(), 1);
}

#[tokio::test]
async fn google_unreachable_is_auth_error_not_500() {
    let h = start_with(with(|c| {
        c.apps[0].providers.google = GoogleConfig {
            enabled: true,
            client_id: GOOGLE_CLIENT.into(),
            client_secret: Some(GOOGLE_SECRET.into()),
            jwks_url: closed_port_url("/jwks"),
            token_url: closed_port_url("/token"),
            ..GoogleConfig::default()
        };
    }))
    .await;
    let r = h
        .login("oauth2-google", json!({"authCode": "4/0abc"}))
        .await;
    assert_eq!(
        r.assert_error(401, "AuthError"),
        "Google: authorization code could not be verified: identity provider unreachable"
    );
    // An ID token needs the JWKS, which is unreachable too.
    let idp = FakeOidc::google().await;
    let r = google(&h, &idp.id_token(&IdTokenClaims::new("g", GOOGLE_CLIENT))).await;
    assert_eq!(
        r.assert_error(401, "AuthError"),
        "Google: ID token could not be verified: identity provider unreachable"
    );
}

#[tokio::test]
async fn apple_login_and_rejections() {
    let idp = FakeOidc::apple().await;
    let google_idp = FakeOidc::google().await;
    let h = start_with(with(|c| {
        c.apps[0].providers.apple = apple_config(&idp);
        c.apps[0].providers.google = google_config(&google_idp);
    }))
    .await;
    let claims = IdTokenClaims::new("001234.abcd", APPLE_CLIENT)
        .email("x@privaterelay.appleid.com")
        .extra("email_verified", "true");
    let login = |t: String| h.login("oauth2-apple", json!({"id_token": t}));
    let first = Tokens::from(&login(idp.id_token(&claims)).await.assert_ok_json());
    let second = login(idp.id_token(&claims)).await.assert_ok_json();
    assert_eq!(second["user_id"], first.user_id.as_str());
    let p = h.profile(&first.access).await.assert_ok_json();
    assert_eq!(p["identities"][0]["provider_type"], "oauth2-apple");
    assert_eq!(p["data"]["email"], "x@privaterelay.appleid.com");
    // The second client id (web services id) is accepted too.
    let web = login(idp.id_token(&claims.clone().aud("com.example.web")))
        .await
        .assert_ok_json();
    assert_eq!(web["user_id"], first.user_id.as_str());

    let r = login(idp.id_token(&claims.clone().aud("com.other.app"))).await;
    assert_auth_error(&r, "Apple: ", "audience mismatch");
    let r = login(idp.id_token(&claims.clone().iss("https://accounts.google.com"))).await;
    assert_auth_error(&r, "Apple: ", "issuer mismatch");
    let r = login(idp.id_token(&claims.clone().expired())).await;
    assert_auth_error(&r, "Apple: ", "token expired");
    // A Google token is not an Apple token (other keys, other issuer).
    let r = login(google_idp.id_token(&IdTokenClaims::new("001234.abcd", APPLE_CLIENT))).await;
    assert_auth_error(&r, "Apple: ", "");

    // The same `sub` at Google is another identity, hence another user.
    let g = google(
        &h,
        &google_idp.id_token(&IdTokenClaims::new("001234.abcd", GOOGLE_CLIENT)),
    )
    .await
    .assert_ok_json();
    assert_ne!(g["user_id"], first.user_id.as_str());
}

async fn facebook(h: &Harness, token: &str) -> Reply {
    h.login("oauth2-facebook", json!({"accessToken": token}))
        .await
}

#[tokio::test]
async fn facebook_login_same_user_and_profile() {
    let fb = FakeFacebook::start().await;
    let h = start_with(with(|c| {
        c.apps[0].providers.facebook = facebook_config(&fb)
    }))
    .await;
    let user = FacebookUser::new("10150000001", "Ann Lee")
        .email("ann@example.org")
        .picture_url("https://fb.example/ann.jpg");
    let first = Tokens::from(
        &facebook(&h, &fb.issue_token(user.clone()))
            .await
            .assert_ok_json(),
    );
    let second = facebook(&h, &fb.issue_token(user)).await.assert_ok_json();
    assert_eq!(second["user_id"], first.user_id.as_str());
    let p = h.profile(&first.access).await.assert_ok_json();
    assert_eq!(p["identities"][0]["id"], "10150000001");
    assert_eq!(p["identities"][0]["provider_type"], "oauth2-facebook");
    let d = &p["data"];
    assert_eq!(d["name"], "Ann Lee");
    assert_eq!(d["email"], "ann@example.org");
    assert_eq!(d["first_name"], "Ann");
    assert_eq!(d["last_name"], "Lee");
    assert_eq!(d["picture"], "https://fb.example/ann.jpg");
    assert_eq!(d["picture_url"], "https://fb.example/ann.jpg");
    assert_eq!(fb.debug_token_requests(), 2);
    assert_eq!(fb.me_requests(), 2);
}

#[tokio::test]
async fn facebook_rejections() {
    let fb = FakeFacebook::start().await;
    let h = start_with(with(|c| {
        c.apps[0].providers.facebook = facebook_config(&fb)
    }))
    .await;
    let user = FacebookUser::new("1015", "Bob Roe");

    let r = facebook(&h, &fb.expired_token(user.clone())).await;
    assert_auth_error(&r, "Facebook: ", "expired");
    let r = facebook(&h, &fb.token_for_other_app(user.clone())).await;
    assert_auth_error(&r, "Facebook: ", "another app");
    let token = fb.issue_token(user.clone());
    facebook(&h, &token).await.assert_ok_json();
    fb.revoke(&token);
    let r = facebook(&h, &token).await;
    assert_auth_error(&r, "Facebook: ", "not valid");
    let r = facebook(&h, "EAAmadeup").await;
    assert_auth_error(&r, "Facebook: ", "not valid");
    assert!(!r.text.contains("EAAmadeup"));
    // Other-app tokens never reach /me.
    h.login("oauth2-facebook", json!({}))
        .await
        .assert_error(400, "BadRequest");
}

#[tokio::test]
async fn facebook_wrong_app_secret_rejects() {
    let fb = FakeFacebook::start().await;
    let h = start_with(with(|c| {
        let mut f = facebook_config(&fb);
        f.app_secret = "wrong-secret".into();
        c.apps[0].providers.facebook = f;
    }))
    .await;
    let r = facebook(&h, &fb.issue_token(FacebookUser::new("1", "A B"))).await;
    assert_auth_error(&r, "Facebook: ", "could not be verified");
    assert!(!r.text.contains("wrong-secret"));
}

#[tokio::test]
async fn facebook_unreachable_is_auth_error_not_500() {
    let h = start_with(with(|c| {
        c.apps[0].providers.facebook = FacebookConfig {
            enabled: true,
            app_id: "1234567890".into(),
            app_secret: "s3cret".into(),
            graph_url: closed_port_url(""),
            ..FacebookConfig::default()
        };
    }))
    .await;
    let r = facebook(&h, "EAAsomething").await;
    assert_eq!(
        r.assert_error(401, "AuthError"),
        "Facebook: access token could not be verified: identity provider unreachable"
    );
}

#[tokio::test]
async fn unconfigured_providers_are_not_found() {
    let h = start().await;
    for (provider, body) in [
        ("oauth2-google", json!({"id_token": "x.y.z"})),
        ("oauth2-apple", json!({"id_token": "x.y.z"})),
        ("oauth2-facebook", json!({"accessToken": "EAA"})),
    ] {
        h.login(provider, body)
            .await
            .assert_error(404, "AuthProviderNotFound");
    }
    // Present but disabled.
    let idp = FakeOidc::apple().await;
    let h = start_with(with(|c| {
        let mut a = apple_config(&idp);
        a.enabled = false;
        c.apps[0].providers.apple = a;
    }))
    .await;
    h.login(
        "oauth2-apple",
        json!({"id_token": idp.id_token(&IdTokenClaims::new("s", APPLE_CLIENT))}),
    )
    .await
    .assert_error(404, "AuthProviderNotFound");
}

#[test]
fn config_from_toml() {
    let text = format!(
        r#"
        listen = "127.0.0.1:0"
        database = "sqlite::memory:"
        [[apps]]
        id = "a"
        signing_secret = "{SECRET}"
        [apps.providers.oauth2-google]
        client_id = "g.apps.googleusercontent.com"
        client_secret = "GOCSPX-x"
        [apps.providers.oauth2-apple]
        client_ids = ["com.example.app", "com.example.web"]
        [apps.providers.oauth2-facebook]
        app_id = "123456"
        app_secret = "fb-secret"
        fields = ["id", "name", "age_range"]
        "#
    );
    let c = Config::from_toml_str(&text).unwrap();
    let p = &c.apps[0].providers;
    assert!(p.google.enabled && p.apple.enabled && p.facebook.enabled);
    assert_eq!(p.google.redirect_uri, "postmessage");
    assert_eq!(
        p.google.jwks_url,
        "https://www.googleapis.com/oauth2/v3/certs"
    );
    assert_eq!(p.google.token_url, "https://oauth2.googleapis.com/token");
    assert_eq!(p.google.issuers.len(), 2);
    assert_eq!(p.apple.issuer, "https://appleid.apple.com");
    assert_eq!(p.apple.jwks_url, "https://appleid.apple.com/auth/keys");
    assert_eq!(p.facebook.graph_url, "https://graph.facebook.com");
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("GOCSPX-x") && !debug.contains("fb-secret"),
        "{debug}"
    );

    let bad = text.replace("client_id = \"g.apps.googleusercontent.com\"", "");
    let e = Config::from_toml_str(&bad).unwrap_err().to_string();
    assert!(
        e.contains("[apps.providers.oauth2-google] client_id is required"),
        "{e}"
    );
    let bad = text.replace("app_secret = \"fb-secret\"", "");
    let e = Config::from_toml_str(&bad).unwrap_err().to_string();
    assert!(e.contains("app_secret is required"), "{e}");
    let bad = text.replace(
        "client_ids = [\"com.example.app\", \"com.example.web\"]",
        "",
    );
    assert!(Config::from_toml_str(&bad).is_err());
}

#[tokio::test]
async fn google_key_rotation_and_retirement() {
    let idp = FakeOidc::google().await;
    let h = start_with(with(|c| c.apps[0].providers.google = google_config(&idp))).await;
    let claims = IdTokenClaims::new("g-rot", GOOGLE_CLIENT);
    let old_token = idp.id_token(&claims);
    google(&h, &old_token).await.assert_ok_json();
    assert_eq!(idp.jwks_requests(), 1);
    // Google rotates and retires the old key at once: the new kid triggers one refetch.
    idp.rotate_key();
    idp.retire_old_keys();
    google(&h, &idp.id_token(&claims)).await.assert_ok_json();
    assert_eq!(idp.jwks_requests(), 2);
    // The old key is gone from the refetched set, and the cooldown allows no new fetch.
    assert_auth_error(&google(&h, &old_token).await, "Google: ", "unknown key");
    assert_eq!(idp.jwks_requests(), 2);
}
