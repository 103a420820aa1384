//! The fake identity providers, checked for real: tokens fetched and verified over
//! HTTP with the same library and key format the server uses.

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use latchkey_testkit::idp::{FacebookUser, FakeFacebook, FakeOidc, IdTokenClaims};
use serde_json::Value;

const CLIENT_ID: &str = "client-123.apps.googleusercontent.com";
const CLIENT_SECRET: &str = "s3cret";

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn fetch_jwks(fake: &FakeOidc) -> Value {
    let res = http().get(fake.jwks_url()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Verify `token` the way a relying party does: pick the JWKS key named by the
/// header's `kid`, check RS256, `aud` and `iss`.
async fn verify(fake: &FakeOidc, token: &str, aud: &str) -> Result<Value, String> {
    let jwks = fetch_jwks(fake).await;
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .ok_or("kid not in JWKS")?;
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[aud]);
    validation.set_issuer(&[fake.issuer()]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

/// Verify with every published key, ignoring `kid` (a token signed by an unknown
/// key must fail against all of them).
async fn verify_any_key(fake: &FakeOidc, token: &str, aud: &str) -> bool {
    let jwks = fetch_jwks(fake).await;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[aud]);
    validation.set_issuer(&[fake.issuer()]);
    jwks["keys"].as_array().unwrap().iter().any(|jwk| {
        let key = DecodingKey::from_rsa_components(
            jwk["n"].as_str().unwrap(),
            jwk["e"].as_str().unwrap(),
        )
        .unwrap();
        jsonwebtoken::decode::<Value>(token, &key, &validation).is_ok()
    })
}

fn alice() -> IdTokenClaims {
    IdTokenClaims::new("1234567890", CLIENT_ID)
        .email("alice@example.com")
        .email_verified(true)
        .name("Alice Liddell")
        .given_name("Alice")
        .family_name("Liddell")
        .picture("https://example.com/alice.png")
        .nonce("n-0S6_WzA2Mj")
}

#[tokio::test]
async fn jwks_is_a_well_formed_rsa_key_set() {
    let google = FakeOidc::google().await;
    let jwks = fetch_jwks(&google).await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["kid"], google.current_kid().as_str());
    assert_eq!(key["e"], "AQAB");
    // 2048-bit modulus: 256 bytes, 342 base64url characters without padding.
    assert_eq!(key["n"].as_str().unwrap().len(), 342);
    assert_eq!(google.jwks_requests(), 1);
    fetch_jwks(&google).await;
    assert_eq!(google.jwks_requests(), 2);
}

#[tokio::test]
async fn google_id_token_verifies_against_the_jwks() {
    let google = FakeOidc::google().await;
    assert_eq!(google.issuer(), "https://accounts.google.com");
    let token = google.id_token(&alice());
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), Some(google.current_kid().as_str()));

    let claims = verify(&google, &token, CLIENT_ID).await.unwrap();
    assert_eq!(claims["iss"], "https://accounts.google.com");
    assert_eq!(claims["sub"], "1234567890");
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Alice Liddell");
    assert_eq!(claims["given_name"], "Alice");
    assert_eq!(claims["family_name"], "Liddell");
    assert_eq!(claims["picture"], "https://example.com/alice.png");
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    let iat = claims["iat"].as_i64().expect("integer iat");
    let exp = claims["exp"].as_i64().expect("integer exp");
    assert_eq!(exp - iat, 3600);
    let now = jsonwebtoken::get_current_timestamp() as i64;
    assert!((iat - now).abs() < 60);
}

#[tokio::test]
async fn apple_id_token_has_apple_issuer_and_extra_claims() {
    let apple = FakeOidc::apple().await;
    assert_eq!(apple.issuer(), "https://appleid.apple.com");
    let claims = IdTokenClaims::new("001234.abcdef.1234", "com.example.app")
        .email("x@privaterelay.appleid.com")
        .extra("email_verified", "true")
        .extra("is_private_email", "true");
    let token = apple.id_token(&claims);
    let claims = verify(&apple, &token, "com.example.app").await.unwrap();
    assert_eq!(claims["iss"], "https://appleid.apple.com");
    assert_eq!(claims["email_verified"], "true");
    assert_eq!(claims["is_private_email"], "true");
    assert!(claims.get("name").is_none());
}

#[tokio::test]
async fn wrong_audience_issuer_or_expiry_fails_verification() {
    let google = FakeOidc::google().await;
    let token = google.id_token(&alice());
    assert!(verify(&google, &token, "someone-else").await.is_err());

    let token = google.id_token(&alice().iss("https://evil.example"));
    assert!(verify(&google, &token, CLIENT_ID).await.is_err());

    let token = google.id_token(&alice().expired());
    let err = verify(&google, &token, CLIENT_ID).await.unwrap_err();
    assert!(err.contains("Expired"), "{err}");

    let token = google.id_token(&alice().iat(1_000).exp(2_000));
    assert!(verify(&google, &token, CLIENT_ID).await.is_err());
}

#[tokio::test]
async fn token_signed_by_unpublished_key_fails_verification() {
    let google = FakeOidc::google().await;
    let token = google.id_token_with_unpublished_key(&alice());
    // The signature is real (the payload parses, the header names a key) ...
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_ne!(header.kid.as_deref(), Some(google.current_kid().as_str()));
    // ... but no published key verifies it, by kid or by trying them all.
    assert_eq!(
        verify(&google, &token, CLIENT_ID).await.unwrap_err(),
        "kid not in JWKS"
    );
    assert!(!verify_any_key(&google, &token, CLIENT_ID).await);
    // The same key is reused.
    let again = google.id_token_with_unpublished_key(&alice());
    assert_eq!(jsonwebtoken::decode_header(&again).unwrap().kid, header.kid);
    // A tampered token fails too, while the genuine one passes.
    let good = google.id_token(&alice());
    assert!(verify_any_key(&google, &good, CLIENT_ID).await);
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = google
        .id_token(&alice().sub("mallory"))
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    assert!(!verify_any_key(&google, &parts.join("."), CLIENT_ID).await);
}

#[tokio::test]
async fn key_rotation_keeps_old_keys_published() {
    let google = FakeOidc::google().await;
    let old_kid = google.current_kid();
    let old_token = google.id_token(&alice());
    let new_kid = google.rotate_key();
    assert_ne!(old_kid, new_kid);
    assert_eq!(google.current_kid(), new_kid);
    let new_token = google.id_token(&alice());
    assert_eq!(
        jsonwebtoken::decode_header(&new_token).unwrap().kid,
        Some(new_kid.clone())
    );
    let jwks = fetch_jwks(&google).await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [new_kid.as_str(), old_kid.as_str()]);
    verify(&google, &old_token, CLIENT_ID).await.unwrap();
    verify(&google, &new_token, CLIENT_ID).await.unwrap();

    google.retire_old_keys();
    assert!(verify(&google, &old_token, CLIENT_ID).await.is_err());
    verify(&google, &new_token, CLIENT_ID).await.unwrap();
}

async fn exchange(fake: &FakeOidc, form: &[(&str, &str)]) -> (u16, Value) {
    let res = http()
        .post(fake.token_url())
        .form(form)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn code_form<'a>(code: &'a str, secret: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("code", code),
        ("client_id", CLIENT_ID),
        ("client_secret", secret),
        ("redirect_uri", ""),
        ("grant_type", "authorization_code"),
    ]
}

#[tokio::test]
async fn auth_code_exchanges_once_for_a_verifiable_id_token() {
    let google = FakeOidc::google().await;
    let code = google.auth_code(CLIENT_ID, CLIENT_SECRET, &alice());

    let (status, body) = exchange(&google, &code_form(&code, CLIENT_SECRET)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    assert!(!body["access_token"].as_str().unwrap().is_empty());
    let id_token = body["id_token"].as_str().unwrap();
    let claims = verify(&google, id_token, CLIENT_ID).await.unwrap();
    assert_eq!(claims["sub"], "1234567890");
    assert_eq!(claims["email"], "alice@example.com");

    let (status, body) = exchange(&google, &code_form(&code, CLIENT_SECRET)).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(google.token_requests(), 2);
}

#[tokio::test]
async fn auth_code_errors() {
    let google = FakeOidc::google().await;
    let code = google.auth_code(CLIENT_ID, CLIENT_SECRET, &alice());

    let (status, body) = exchange(&google, &code_form("4/0nonsense", CLIENT_SECRET)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let (status, body) = exchange(&google, &code_form(&code, "wrong")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    let mut form = code_form(&code, CLIENT_SECRET);
    form[1].1 = "other-client";
    let (status, body) = exchange(&google, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    let mut form = code_form(&code, CLIENT_SECRET);
    form[4].1 = "refresh_token";
    let (status, body) = exchange(&google, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );

    // Failed client authentication did not use the code up.
    let (status, body) = exchange(&google, &code_form(&code, CLIENT_SECRET)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn auth_code_accepts_http_basic_client_credentials() {
    let google = FakeOidc::google().await;
    let code = google.auth_code(CLIENT_ID, CLIENT_SECRET, &alice());
    let res = http()
        .post(google.token_url())
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("code", code.as_str()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    verify(&google, body["id_token"].as_str().unwrap(), CLIENT_ID)
        .await
        .unwrap();
}

#[tokio::test]
async fn exchanged_token_uses_the_key_current_at_exchange_time() {
    let apple = FakeOidc::apple().await;
    let claims = IdTokenClaims::new("apple-user", "com.example.app");
    let code = apple.auth_code("com.example.app", "jwt-secret", &claims);
    let kid = apple.rotate_key();
    let (status, body) = exchange(
        &apple,
        &[
            ("code", code.as_str()),
            ("client_id", "com.example.app"),
            ("client_secret", "jwt-secret"),
            ("grant_type", "authorization_code"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id_token = body["id_token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(id_token).unwrap().kid,
        Some(kid)
    );
    let claims = verify(&apple, id_token, "com.example.app").await.unwrap();
    assert_eq!(claims["iss"], "https://appleid.apple.com");
}

#[tokio::test]
async fn discovery_document_points_at_the_fake() {
    let google = FakeOidc::google().await;
    let doc: Value = http()
        .get(format!(
            "{}/.well-known/openid-configuration",
            google.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], google.issuer());
    assert_eq!(doc["jwks_uri"], google.jwks_url().as_str());
    assert_eq!(doc["token_endpoint"], google.token_url().as_str());
}

fn bob() -> FacebookUser {
    FacebookUser::new("10158000000000001", "Bob Builder")
        .email("bob@example.com")
        .picture_url("https://example.com/bob.jpg")
}

async fn debug_token(fb: &FakeFacebook, input: &str, app_token: &str) -> (u16, Value) {
    let res = http()
        .get(format!("{}/debug_token", fb.graph_url()))
        .query(&[("input_token", input), ("access_token", app_token)])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

async fn me(fb: &FakeFacebook, token: &str) -> (u16, Value) {
    let res = http()
        .get(format!(
            "{}/me?fields=id,name,email,first_name,last_name,picture",
            fb.graph_url()
        ))
        .query(&[("access_token", token)])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn app_token(fb: &FakeFacebook) -> String {
    format!("{}|{}", fb.app_id(), fb.app_secret())
}

#[tokio::test]
async fn facebook_valid_token() {
    let fb = FakeFacebook::start().await;
    assert_eq!(fb.app_token(), app_token(&fb));
    let token = fb.issue_token(bob());
    let (status, body) = debug_token(&fb, &token, &app_token(&fb)).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["app_id"], fb.app_id());
    assert_eq!(data["type"], "USER");
    assert!(data["application"].is_string());
    assert_eq!(data["is_valid"], true);
    assert_eq!(data["user_id"], "10158000000000001");
    let now = jsonwebtoken::get_current_timestamp() as i64;
    assert!(data["expires_at"].as_i64().unwrap() > now);
    assert_eq!(
        data["scopes"],
        serde_json::json!(["email", "public_profile"])
    );
    assert!(data.get("error").is_none());

    let (status, profile) = me(&fb, &token).await;
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["id"], "10158000000000001");
    assert_eq!(profile["name"], "Bob Builder");
    assert_eq!(profile["first_name"], "Bob");
    assert_eq!(profile["last_name"], "Builder");
    assert_eq!(profile["email"], "bob@example.com");
    assert_eq!(
        profile["picture"]["data"]["url"],
        "https://example.com/bob.jpg"
    );
    assert_eq!(fb.debug_token_requests(), 1);
    assert_eq!(fb.me_requests(), 1);
}

#[tokio::test]
async fn facebook_me_honours_fields_and_missing_email() {
    let fb = FakeFacebook::start().await;
    let token = fb.issue_token(FacebookUser::new("42", "Carol"));
    let (status, profile) = me(&fb, &token).await;
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["first_name"], "Carol");
    assert_eq!(profile["last_name"], "");
    assert!(profile.get("email").is_none());
    assert!(profile.get("picture").is_none());

    let res = http()
        .get(format!("{}/v19.0/me?fields=id,email", fb.graph_url()))
        .bearer_auth(fb.issue_token(bob()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let profile: HashMap<String, Value> = res.json().await.unwrap();
    assert_eq!(profile.len(), 2);
    assert_eq!(profile["email"], "bob@example.com");
}

#[tokio::test]
async fn facebook_expired_token() {
    let fb = FakeFacebook::start().await;
    let token = fb.expired_token(bob());
    let (status, body) = debug_token(&fb, &token, &app_token(&fb)).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["is_valid"], false);
    assert_eq!(body["data"]["app_id"], fb.app_id());
    let now = jsonwebtoken::get_current_timestamp() as i64;
    assert!(body["data"]["expires_at"].as_i64().unwrap() < now);
    assert_eq!(body["data"]["error"]["code"], 190);

    let (status, body) = me(&fb, &token).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "OAuthException");
    assert_eq!(body["error"]["code"], 190);
}

#[tokio::test]
async fn facebook_token_for_other_app() {
    let fb = FakeFacebook::start().await;
    let token = fb.token_for_other_app(bob());
    let (status, body) = debug_token(&fb, &token, &app_token(&fb)).await;
    assert_eq!(status, 200);
    assert_ne!(body["data"]["app_id"], fb.app_id());
    assert_eq!(body["data"]["app_id"], fb.other_app_id());
    assert_eq!(body["data"]["is_valid"], true);
    assert_eq!(body["data"]["user_id"], "10158000000000001");
}

#[tokio::test]
async fn facebook_revoked_and_unknown_tokens() {
    let fb = FakeFacebook::start().await;
    let token = fb.issue_token(bob());
    fb.revoke(&token);
    let (status, body) = debug_token(&fb, &token, &app_token(&fb)).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["is_valid"], false);
    assert_eq!(body["data"]["error"]["code"], 190);
    let (status, body) = me(&fb, &token).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], 190);

    let (status, body) = debug_token(&fb, "EAAnotatoken", &app_token(&fb)).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["is_valid"], false);
    assert!(body["data"].get("user_id").is_none());
    let (status, body) = me(&fb, "EAAnotatoken").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "OAuthException");
}

#[tokio::test]
async fn facebook_debug_token_requires_the_app_token() {
    let fb = FakeFacebook::start().await;
    let token = fb.issue_token(bob());
    for bad in [
        format!("{}|wrong-secret", fb.app_id()),
        format!("{}|{}", fb.other_app_id(), fb.app_secret()),
        token.clone(),
        String::new(),
    ] {
        let (status, body) = debug_token(&fb, &token, &bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["type"], "OAuthException");
        assert_eq!(body["error"]["code"], 190);
        assert!(body["error"]["message"].is_string());
    }
    let res = http()
        .get(format!("{}/debug_token", fb.graph_url()))
        .query(&[("input_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn fakes_are_independent_and_stop_when_dropped() {
    let a = FakeOidc::google().await;
    let b = FakeOidc::google().await;
    assert_ne!(a.jwks_url(), b.jwks_url());
    assert_ne!(a.current_kid(), b.current_kid());
    let token = a.id_token(&alice());
    assert!(!verify_any_key(&b, &token, CLIENT_ID).await);

    let url = a.jwks_url();
    let clone = a.clone();
    drop(a);
    assert!(http().get(&url).send().await.is_ok(), "a clone keeps it up");
    drop(clone);
    tokio::task::yield_now().await;
    let fb = FakeFacebook::start().await;
    let graph = fb.graph_url();
    drop(fb);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(http().get(&url).send().await.is_err());
    assert!(http().get(format!("{graph}/me")).send().await.is_err());
}
