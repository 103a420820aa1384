//! `custom-token`: HS256 (with key rotation), RS256 with PEM keys and with a JWKS
//! (rotation and the refetch cooldown), and every rejection path of the JWT rules.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use latchkey_server::Config;
use latchkey_server::config::{AudienceMatch, CustomTokenConfig, MetadataField, SigningAlgorithm};
use latchkey_testkit::idp::{FakeOidc, IdTokenClaims};
use serde_json::{Value, json};

use crate::common::*;

const KEY1: &str = "custom-token-key-one-0123456789abcdef";
const KEY2: &str = "custom-token-key-two-0123456789abcdef";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn field(name: &str, field_name: Option<&str>, required: bool) -> MetadataField {
    MetadataField {
        name: name.to_owned(),
        field_name: field_name.map(str::to_owned),
        required,
    }
}

fn hs256_config(keys: &[&str]) -> CustomTokenConfig {
    CustomTokenConfig {
        enabled: true,
        signing_keys: keys.iter().map(|k| (*k).into()).collect(),
        ..CustomTokenConfig::default()
    }
}

fn with_custom(custom: CustomTokenConfig) -> Config {
    let mut c = config();
    c.apps[0].providers.custom_token = custom;
    c
}

/// Claims valid for [`APP`] (default audience = app id) for user `sub`.
fn claims(sub: &str) -> Value {
    json!({"sub": sub, "aud": APP, "iat": now(), "exp": now() + 600})
}

fn hs256(key: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn unsigned(alg: &str, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

async fn login(h: &Harness, token: &str) -> Reply {
    h.login("custom-token", json!({"token": token})).await
}

async fn assert_rejected(h: &Harness, token: &str, expected: &str) {
    let msg = login(h, token).await.assert_error(401, "AuthError");
    assert!(msg.starts_with("custom JWT: "), "{msg}");
    assert!(
        msg.contains(expected),
        "{msg:?} should contain {expected:?}"
    );
}

struct RsaKey {
    encoding: EncodingKey,
    public_pem: String,
}

fn rsa_key() -> RsaKey {
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    use rsa::pkcs8::EncodePublicKey as _;
    let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let der = private.to_pkcs1_der().unwrap();
    RsaKey {
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        public_pem: private
            .to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap(),
    }
}

fn rs256(key: &RsaKey, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key.encoding).unwrap()
}

#[tokio::test]
async fn hs256_login_same_user_and_metadata() {
    let mut custom = hs256_config(&[KEY1]);
    custom.metadata_fields = vec![
        field("email", None, false),
        field("user_data.name", Some("name"), true),
        field("user_data.occupation", None, false),
        field(r"http://example\.com/age", Some("min_age"), false),
        field("missing.optional", None, false),
    ];
    let h = start_with(with_custom(custom)).await;
    let mut c = claims("24601");
    c["email"] = json!("jv@example.org");
    c["user_data"] = json!({"name": "Jean Valjean", "occupation": "mayor"});
    c["http://example.com/age"] = json!(52);

    let first = Tokens::from(&login(&h, &hs256(KEY1, &c)).await.assert_ok_json());
    let second = Tokens::from(&login(&h, &hs256(KEY1, &c)).await.assert_ok_json());
    assert_eq!(first.user_id, second.user_id, "same subject, same user");
    let other = Tokens::from(
        &login(
            &h,
            &hs256(KEY1, &{
                let mut o = c.clone();
                o["sub"] = json!("other");
                o
            }),
        )
        .await
        .assert_ok_json(),
    );
    assert_ne!(other.user_id, first.user_id);

    let profile = h.profile(&first.access).await.assert_ok_json();
    assert_eq!(profile["identities"][0]["id"], "24601");
    assert_eq!(profile["identities"][0]["provider_type"], "custom-token");
    let data = &profile["data"];
    assert_eq!(data["email"], "jv@example.org");
    assert_eq!(data["name"], "Jean Valjean");
    assert_eq!(data["occupation"], "mayor");
    assert_eq!(data["min_age"], "52", "non-string claims become strings");
    assert!(data.get("optional").is_none());
    h.server.shutdown().await;
}

#[tokio::test]
async fn hs256_every_configured_key_is_tried() {
    let h = start_with(with_custom(hs256_config(&[KEY1, KEY2]))).await;
    let a = login(&h, &hs256(KEY1, &claims("u1")))
        .await
        .assert_ok_json();
    let b = login(&h, &hs256(KEY2, &claims("u1")))
        .await
        .assert_ok_json();
    assert_eq!(a["user_id"], b["user_id"]);
    let other_key = "a-key-that-is-not-configured-0123456789";
    assert_rejected(&h, &hs256(other_key, &claims("u1")), "invalid signature").await;
}

#[tokio::test]
async fn time_claims_with_leeway() {
    let h = start_with(with_custom(hs256_config(&[KEY1]))).await;
    let mut c = claims("t");
    // Within the default 60 s leeway.
    c["exp"] = json!(now() - 20);
    login(&h, &hs256(KEY1, &c)).await.assert_ok_json();
    c["exp"] = json!(now() - 120);
    assert_rejected(&h, &hs256(KEY1, &c), "token expired").await;
    let mut c = claims("t");
    c["nbf"] = json!(now() + 600);
    assert_rejected(&h, &hs256(KEY1, &c), "nbf").await;
    let mut c = claims("t");
    c["iat"] = json!(now() + 600);
    assert_rejected(&h, &hs256(KEY1, &c), "iat").await;
    let mut c = claims("t");
    c.as_object_mut().unwrap().remove("exp");
    assert_rejected(&h, &hs256(KEY1, &c), "no exp").await;
    let mut c = claims("t");
    c["exp"] = json!("tomorrow");
    assert_rejected(&h, &hs256(KEY1, &c), "exp claim is not a number").await;
}

#[tokio::test]
async fn server_clock_decides_expiry() {
    let h = start_with(with_custom(hs256_config(&[KEY1]))).await;
    let token = hs256(KEY1, &claims("clock"));
    login(&h, &token).await.assert_ok_json();
    h.server
        .clock()
        .advance(std::time::Duration::from_secs(3600));
    assert_rejected(&h, &token, "token expired").await;
}

#[tokio::test]
async fn audience_default_any_and_all() {
    // Default audience: the app id.
    let h = start_with(with_custom(hs256_config(&[KEY1]))).await;
    let mut c = claims("a");
    c["aud"] = json!("someone-else");
    assert_rejected(&h, &hs256(KEY1, &c), "audience mismatch").await;
    c.as_object_mut().unwrap().remove("aud");
    assert_rejected(&h, &hs256(KEY1, &c), "no aud").await;
    c["aud"] = json!(["x", APP]);
    login(&h, &hs256(KEY1, &c)).await.assert_ok_json();
    h.server.shutdown().await;

    let mut custom = hs256_config(&[KEY1]);
    custom.audience = vec!["aud-1".into(), "aud-2".into()];
    let h = start_with(with_custom(custom.clone())).await;
    let mut c = claims("a");
    c["aud"] = json!("aud-2");
    login(&h, &hs256(KEY1, &c)).await.assert_ok_json();
    c["aud"] = json!(APP);
    assert_rejected(&h, &hs256(KEY1, &c), "audience mismatch").await;
    h.server.shutdown().await;

    custom.audience_match = AudienceMatch::All;
    let h = start_with(with_custom(custom)).await;
    let mut c = claims("a");
    c["aud"] = json!(["aud-1"]);
    assert_rejected(&h, &hs256(KEY1, &c), "audience mismatch").await;
    c["aud"] = json!(["aud-2", "extra", "aud-1"]);
    login(&h, &hs256(KEY1, &c)).await.assert_ok_json();
}

#[tokio::test]
async fn issuer_when_configured() {
    let mut custom = hs256_config(&[KEY1]);
    custom.issuer = Some("https://issuer.example".into());
    let h = start_with(with_custom(custom)).await;
    let mut c = claims("i");
    assert_rejected(&h, &hs256(KEY1, &c), "no iss").await;
    c["iss"] = json!("https://evil.example");
    assert_rejected(&h, &hs256(KEY1, &c), "issuer mismatch").await;
    c["iss"] = json!("https://issuer.example");
    login(&h, &hs256(KEY1, &c)).await.assert_ok_json();
}

#[tokio::test]
async fn alg_none_tampering_and_malformed() {
    let h = start_with(with_custom(hs256_config(&[KEY1]))).await;
    for alg in ["none", "None", "noNE"] {
        assert_rejected(&h, &unsigned(alg, &claims("n")), "alg none").await;
    }
    // Tampered payload with the original signature.
    let token = hs256(KEY1, &claims("victim"));
    let parts: Vec<&str> = token.split('.').collect();
    let forged = URL_SAFE_NO_PAD.encode(claims("attacker").to_string());
    let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
    assert_rejected(&h, &tampered, "invalid signature").await;
    // HS512 is not the configured algorithm, even with the right key.
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims("x"),
        &EncodingKey::from_secret(KEY1.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_rejected(&h, &hs512, "algorithm not allowed").await;
    for junk in ["", "abc", "a.b.c", "a.b.c.d.e"] {
        assert_rejected(&h, junk, "malformed").await;
    }
    // A missing or non-string token is a bad request, not a rejected credential.
    h.login("custom-token", json!({}))
        .await
        .assert_error(400, "BadRequest");
    h.login("custom-token", json!({"token": 5}))
        .await
        .assert_error(400, "BadRequest");
}

#[tokio::test]
async fn required_metadata_field_missing_is_rejected() {
    let mut custom = hs256_config(&[KEY1]);
    custom.metadata_fields = vec![field("user_data.occupation", None, true)];
    let h = start_with(with_custom(custom)).await;
    let mut c = claims("m");
    c["user_data"] = json!({"name": "x"});
    assert_rejected(
        &h,
        &hs256(KEY1, &c),
        "required metadata field 'user_data.occupation' is missing",
    )
    .await;
    c["user_data"]["occupation"] = json!("baker");
    login(&h, &hs256(KEY1, &c)).await.assert_ok_json();
    c["user_data"]["occupation"] = json!("x".repeat(4097));
    assert_rejected(&h, &hs256(KEY1, &c), "exceeds 4096").await;
}

#[tokio::test]
async fn custom_user_id_claim() {
    let mut custom = hs256_config(&[KEY1]);
    custom.user_id_claim = "uid".into();
    let h = start_with(with_custom(custom)).await;
    let mut c = claims("ignored");
    assert_rejected(&h, &hs256(KEY1, &c), "no 'uid' claim").await;
    c["uid"] = json!(42);
    let t = Tokens::from(&login(&h, &hs256(KEY1, &c)).await.assert_ok_json());
    let p = h.profile(&t.access).await.assert_ok_json();
    assert_eq!(p["identities"][0]["id"], "42");
}

#[tokio::test]
async fn rs256_pem_keys_and_algorithm_confusion() {
    let (k1, k2) = tokio::task::spawn_blocking(|| (rsa_key(), rsa_key()))
        .await
        .unwrap();
    let custom = CustomTokenConfig {
        enabled: true,
        signing_algorithm: SigningAlgorithm::RS256,
        signing_keys: vec![k1.public_pem.clone().into(), k2.public_pem.clone().into()],
        ..CustomTokenConfig::default()
    };
    let h = start_with(with_custom(custom)).await;
    let a = login(&h, &rs256(&k1, &claims("r"))).await.assert_ok_json();
    let b = login(&h, &rs256(&k2, &claims("r"))).await.assert_ok_json();
    assert_eq!(a["user_id"], b["user_id"]);
    // HS256 "signed" with the public key as the HMAC secret must not verify.
    let confused = hs256(&k1.public_pem, &claims("r"));
    assert_rejected(&h, &confused, "algorithm not allowed").await;
    assert_rejected(&h, &unsigned("none", &claims("r")), "alg none").await;
    let mut c = claims("r");
    c["exp"] = json!(now() - 3600);
    assert_rejected(&h, &rs256(&k1, &c), "token expired").await;
    h.server.shutdown().await;

    // And an HS256 configuration never accepts RS256 tokens.
    let h = start_with(with_custom(hs256_config(&[KEY1]))).await;
    assert_rejected(&h, &rs256(&k1, &claims("r")), "algorithm not allowed").await;
}

fn jwks_config(idp: &FakeOidc) -> CustomTokenConfig {
    CustomTokenConfig {
        enabled: true,
        signing_algorithm: SigningAlgorithm::RS256,
        jwks_url: Some(idp.jwks_url()),
        audience: vec!["my-api".into()],
        issuer: Some(idp.issuer().to_owned()),
        ..CustomTokenConfig::default()
    }
}

#[tokio::test]
async fn rs256_jwks_cache_and_rotation() {
    let idp = FakeOidc::start("https://login.example").await;
    let h = start_with(with_custom(jwks_config(&idp))).await;
    let claims = IdTokenClaims::new("jwks-user", "my-api").email("j@example.org");
    let first = login(&h, &idp.id_token(&claims)).await.assert_ok_json();
    login(&h, &idp.id_token(&claims)).await.assert_ok_json();
    assert_eq!(idp.jwks_requests(), 1, "the key set is cached");

    // The provider rotates: the new kid is unknown, so the server refetches once.
    idp.rotate_key();
    let rotated = login(&h, &idp.id_token(&claims)).await.assert_ok_json();
    assert_eq!(rotated["user_id"], first["user_id"]);
    assert_eq!(idp.jwks_requests(), 2);
    login(&h, &idp.id_token(&claims)).await.assert_ok_json();
    assert_eq!(idp.jwks_requests(), 2);

    // A refetch just happened: unknown kids now cause no fetch at all (cooldown).
    for _ in 0..10 {
        assert_rejected(
            &h,
            &idp.id_token_with_unpublished_key(&claims),
            "unknown key",
        )
        .await;
    }
    assert_eq!(idp.jwks_requests(), 2);

    // Wrong audience and issuer are still checked in JWKS mode.
    assert_rejected(
        &h,
        &idp.id_token(&claims.clone().aud("other-api")),
        "audience mismatch",
    )
    .await;
    assert_rejected(
        &h,
        &idp.id_token(&claims.clone().iss("https://evil.example")),
        "issuer mismatch",
    )
    .await;
}

#[tokio::test]
async fn rs256_jwks_unknown_kid_flood_is_bounded() {
    let idp = FakeOidc::start("https://login.example").await;
    let h = start_with(with_custom(jwks_config(&idp))).await;
    let claims = IdTokenClaims::new("u", "my-api");
    login(&h, &idp.id_token(&claims)).await.assert_ok_json();
    assert_eq!(idp.jwks_requests(), 1);
    for _ in 0..25 {
        assert_rejected(
            &h,
            &idp.id_token_with_unpublished_key(&claims),
            "signed by an unknown key",
        )
        .await;
    }
    // One forced refetch for the first unknown kid, none for the rest.
    assert_eq!(idp.jwks_requests(), 2);
    // A token without kid is rejected without a fetch.
    let no_kid = {
        let key = tokio::task::spawn_blocking(rsa_key).await.unwrap();
        rs256(
            &key,
            &json!({"sub": "u", "aud": "my-api", "exp": now() + 60, "iss": idp.issuer()}),
        )
    };
    assert_rejected(&h, &no_kid, "no key id").await;
    assert_eq!(idp.jwks_requests(), 2);
}

#[tokio::test]
async fn jwks_unreachable_is_auth_error_not_500() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let custom = CustomTokenConfig {
        enabled: true,
        signing_algorithm: SigningAlgorithm::RS256,
        jwks_url: Some(format!("http://127.0.0.1:{port}/jwks")),
        ..CustomTokenConfig::default()
    };
    let h = start_with(with_custom(custom)).await;
    let key = tokio::task::spawn_blocking(rsa_key).await.unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k1".into());
    let token = jsonwebtoken::encode(&header, &claims("x"), &key.encoding).unwrap();
    let msg = login(&h, &token).await.assert_error(401, "AuthError");
    assert_eq!(
        msg,
        "custom JWT: token could not be verified: identity provider unreachable"
    );
}

#[tokio::test]
async fn disabled_provider_is_not_found() {
    let mut c = config();
    c.apps[0].providers.custom_token.enabled = false;
    let h = start_with(c).await;
    h.login("custom-token", json!({"token": hs256(KEY1, &claims("d"))}))
        .await
        .assert_error(404, "AuthProviderNotFound");
}

#[tokio::test]
async fn dev_config_has_a_usable_custom_token_key() {
    let dev = Config::dev();
    let key = dev.apps[0].providers.custom_token.signing_keys[0]
        .expose()
        .to_owned();
    assert!(dev.apps[0].providers.custom_token.enabled);
    assert_eq!(key.len(), 64);
    assert_ne!(
        key,
        Config::dev().apps[0].providers.custom_token.signing_keys[0].expose()
    );
    assert!(
        !format!("{dev:?}").contains(&key),
        "the key is redacted in Debug"
    );
    let h = start_with(dev).await;
    let mut c = claims("dev-user");
    c["aud"] = json!(latchkey_server::config::DEV_APP_ID);
    let url = h.app_url(
        latchkey_server::config::DEV_APP_ID,
        "/auth/providers/custom-token/login",
    );
    let body = json!({"token": hs256(&key, &c)}).to_string();
    h.send(reqwest::Method::POST, &url, None, Some(&body))
        .await
        .assert_ok_json();
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
        [apps.providers.custom-token]
        signing_keys = ["{KEY1}"]
        audience = ["x", "y"]
        audience_match = "all"
        issuer = "https://i"
        leeway_secs = 10
        user_id_claim = "uid"
        metadata_fields = [
          {{ name = "email" }},
          {{ name = "user_data.name", field_name = "name", required = true }},
        ]
        "#
    );
    let c = Config::from_toml_str(&text).unwrap();
    let ct = &c.apps[0].providers.custom_token;
    assert!(ct.enabled);
    assert_eq!(ct.signing_algorithm, SigningAlgorithm::HS256);
    assert_eq!(ct.audience_match, AudienceMatch::All);
    assert_eq!(ct.leeway_secs, 10);
    assert_eq!(ct.metadata_fields[1].target(), "name");
    assert!(ct.metadata_fields[1].required);
    assert!(!c.apps[0].providers.google.enabled);

    let bad = text.replace("leeway_secs = 10", "leeway_secs = 301");
    let e = Config::from_toml_str(&bad).unwrap_err().to_string();
    assert!(e.contains("leeway_secs must be at most 300"), "{e}");
    let bad = text.replace("audience_match = \"all\"", "audience_match = \"some\"");
    assert!(Config::from_toml_str(&bad).is_err());
    let bad = text.replace(KEY1, "short");
    let e = Config::from_toml_str(&bad).unwrap_err().to_string();
    assert!(
        e.contains("[apps.providers.custom-token] signing_keys[0]"),
        "{e}"
    );
    let bad = text.replace(
        "signing_keys = [",
        "signing_algorithm = \"RS256\"\nsigning_keys = [",
    );
    let e = Config::from_toml_str(&bad).unwrap_err().to_string();
    assert!(e.contains("RSA public key"), "{e}");
}

#[tokio::test]
async fn embedded_key_headers_are_ignored() {
    let (trusted, attacker) = tokio::task::spawn_blocking(|| (rsa_key(), rsa_key()))
        .await
        .unwrap();
    let custom = CustomTokenConfig {
        enabled: true,
        signing_algorithm: SigningAlgorithm::RS256,
        signing_keys: vec![trusted.public_pem.clone().into()],
        ..CustomTokenConfig::default()
    };
    let h = start_with(with_custom(custom)).await;
    // The attacker's token points at the attacker's own keys: jku/x5u are never
    // fetched and an embedded jwk is never trusted.
    let mut header = Header::new(Algorithm::RS256);
    header.jku = Some("http://127.0.0.1:9/jwks".into());
    header.x5u = Some("http://127.0.0.1:9/cert".into());
    header.kid = Some("attacker".into());
    let token = jsonwebtoken::encode(&header, &claims("victim"), &attacker.encoding).unwrap();
    assert_rejected(&h, &token, "invalid signature").await;
}

/// An identity provider vouching for a NUL (U+0000) in the subject or in profile data is
/// refused (401) on every engine: PostgreSQL could not store it.
#[tokio::test]
async fn nul_in_subject_or_metadata_is_refused() {
    let mut custom = hs256_config(&[KEY1]);
    custom.metadata_fields = vec![field("name", None, false)];
    let h = start_with(with_custom(custom)).await;
    let msg = login(&h, &hs256(KEY1, &claims("a\u{0}b")))
        .await
        .assert_error(401, "AuthError");
    assert!(msg.contains("NUL"), "{msg}");
    let mut c = claims("nul-name");
    c["name"] = json!("Jean\u{0}");
    login(&h, &hs256(KEY1, &c))
        .await
        .assert_error(401, "AuthError");
    c["name"] = json!("Jean");
    login(&h, &hs256(KEY1, &c)).await.assert_ok_json();
}
