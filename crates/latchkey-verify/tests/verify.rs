//! latchkey-verify against real signatures and a real HTTP key server (axum on
//! loopback): every check, the JWKS cache (refetch on an unknown kid, cooldown), the
//! revocation check and the axum extractor's answers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use latchkey_verify::axum::LatchkeyUser;
use latchkey_verify::{Verifier, VerifyError};
use serde_json::{Value, json};

const APP: &str = "myapp";

/// An Ed25519 key from a seed byte: (signing key, public JWK named `kid`).
fn ed_key(seed: u8, kid: &str) -> (EncodingKey, Jwk) {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&[seed; 32]);
    let enc = EncodingKey::from_ed_der(&der);
    let mut jwk = Jwk::from_encoding_key(&enc, Algorithm::EdDSA).unwrap();
    jwk.common.key_id = Some(kid.into());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    (enc, jwk)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims() -> Value {
    json!({
        "sub": "5f0000000000000000000001",
        "exp": now() + 600,
        "iat": now() - 60,
        "iss": "session-1",
        "typ": "access",
        "baas_device_id": "000000000000000000000000",
        "baas_domain_id": APP,
        "user_data": {"plan": "pro"},
    })
}

fn sign(key: &EncodingKey, kid: &str, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::EdDSA);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(&h, claims, key).unwrap()
}

fn jwks(keys: &[&Jwk]) -> String {
    serde_json::to_string(&JwkSet {
        keys: keys.iter().map(|k| (*k).clone()).collect(),
    })
    .unwrap()
}

#[tokio::test]
async fn checks_signature_times_type_and_app() {
    let (k1, j1) = ed_key(1, "k1");
    let (other, _) = ed_key(2, "k1");
    let v = Verifier::from_jwks(APP, &jwks(&[&j1])).unwrap();

    let user = v.verify(&sign(&k1, "k1", &claims())).await.unwrap();
    assert_eq!(user.user_id(), "5f0000000000000000000001");
    assert_eq!(user.device_id(), None, "all zeros is no device");
    assert_eq!(user.session_id(), Some("session-1"));
    assert_eq!(user.app_id(), APP);
    assert_eq!(user.user_data().unwrap()["plan"], "pro");
    #[derive(serde::Deserialize)]
    struct Data {
        plan: String,
    }
    assert_eq!(user.custom_data::<Data>().unwrap().plan, "pro");
    assert!(
        (60..=61).contains(&user.age().as_secs()),
        "{:?}",
        user.age()
    );
    assert!(
        !format!("{user:?}").contains("pro"),
        "custom data stays out of Debug"
    );

    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims();
        f(&mut c);
        sign(&k1, "k1", &c)
    };
    let cases: Vec<(&str, String, VerifyError)> = vec![
        (
            "expired",
            with(&|c| c["exp"] = json!(now() - 31)),
            VerifyError::Expired,
        ),
        (
            "not yet",
            with(&|c| c["nbf"] = json!(now() + 120)),
            VerifyError::NotYetValid,
        ),
        (
            "future iat",
            with(&|c| c["iat"] = json!(now() + 120)),
            VerifyError::NotYetValid,
        ),
        (
            "refresh",
            with(&|c| c["typ"] = json!("refresh")),
            VerifyError::WrongType,
        ),
        (
            "no typ",
            with(&|c| {
                c.as_object_mut().unwrap().remove("typ");
            }),
            VerifyError::WrongType,
        ),
        (
            "other app",
            with(&|c| c["baas_domain_id"] = json!("other")),
            VerifyError::WrongApp,
        ),
        (
            "float exp",
            with(&|c| c["exp"] = json!(1e12)),
            VerifyError::Malformed,
        ),
        (
            "other key",
            sign(&other, "k1", &claims()),
            VerifyError::Signature,
        ),
        (
            "unknown kid",
            sign(&k1, "k9", &claims()),
            VerifyError::UnknownKey,
        ),
        ("garbage", "a.b.c".into(), VerifyError::Malformed),
    ];
    for (what, token, expected) in cases {
        assert_eq!(v.verify(&token).await.unwrap_err(), expected, "{what}");
    }
    // Inside the leeway (30 s) an expired token still passes.
    assert!(
        v.verify(&with(&|c| c["exp"] = json!(now() - 5)))
            .await
            .is_ok()
    );

    // HS256 (whatever the secret) and alg none are refused before any key lookup.
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("k1".into());
    let hs = jsonwebtoken::encode(&h, &claims(), &EncodingKey::from_secret(b"x").unwrap()).unwrap();
    assert!(matches!(
        v.verify(&hs).await,
        Err(VerifyError::UnsupportedAlgorithm(_))
    ));
    let good = sign(&k1, "k1", &claims());
    let payload = good.split('.').nth(1).unwrap();
    let none = format!("eyJhbGciOiJub25lIiwia2lkIjoiazEifQ.{payload}.");
    assert!(v.verify(&none).await.is_err());
    // ES256 named in the header for the EdDSA key: the key's algorithm wins.
    let parts: Vec<&str> = good.split('.').collect();
    let es_header = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0"; // {"alg":"ES256","kid":"k1"}
    let confused = format!("{es_header}.{}.{}", parts[1], parts[2]);
    assert_eq!(
        v.verify(&confused).await.unwrap_err(),
        VerifyError::Signature
    );
}

/// A key server: its JWKS (replaceable), a fetch counter, and a profile route whose
/// status is settable (the revocation check).
#[derive(Clone)]
struct KeyServer {
    jwks: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
    profile: Arc<Mutex<StatusCode>>,
}

async fn serve_jwks(State(s): State<KeyServer>) -> (HeaderMap, String) {
    s.fetches.fetch_add(1, Ordering::SeqCst);
    let mut h = HeaderMap::new();
    h.insert("cache-control", "public, max-age=600".parse().unwrap());
    (h, s.jwks.lock().unwrap().clone())
}

async fn serve_profile(State(s): State<KeyServer>) -> (StatusCode, Json<Value>) {
    (*s.profile.lock().unwrap(), Json(json!({})))
}

async fn key_server(initial: String) -> (KeyServer, String) {
    let s = KeyServer {
        jwks: Arc::new(Mutex::new(initial)),
        fetches: Arc::new(AtomicUsize::new(0)),
        profile: Arc::new(Mutex::new(StatusCode::OK)),
    };
    let router = Router::new()
        .route(
            "/api/client/v2.0/app/{app}/.well-known/jwks.json",
            get(serve_jwks),
        )
        .route("/api/client/v2.0/auth/profile", get(serve_profile))
        .with_state(s.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (s, url)
}

#[tokio::test]
async fn fetches_once_refetches_on_unknown_kid_with_a_cooldown() {
    let (k1, j1) = ed_key(1, "k1");
    let (k2, j2) = ed_key(2, "k2");
    let (server, url) = key_server(jwks(&[&j1])).await;

    let v = Verifier::builder(&url, APP)
        .refetch_cooldown(Duration::from_secs(3600))
        .build();
    for _ in 0..3 {
        v.verify(&sign(&k1, "k1", &claims())).await.unwrap();
    }
    assert_eq!(
        server.fetches.load(Ordering::SeqCst),
        1,
        "cached for max-age"
    );
    // A forged kid: one refetch, then the cooldown holds.
    for _ in 0..3 {
        let err = v.verify(&sign(&k1, "forged", &claims())).await.unwrap_err();
        assert_eq!(err, VerifyError::UnknownKey);
    }
    assert_eq!(server.fetches.load(Ordering::SeqCst), 2);

    // Rotation: a verifier with no cooldown picks the new key up at its first token.
    let v = Verifier::builder(&url, APP)
        .refetch_cooldown(Duration::ZERO)
        .build();
    v.verify(&sign(&k1, "k1", &claims())).await.unwrap();
    *server.jwks.lock().unwrap() = jwks(&[&j1, &j2]);
    v.verify(&sign(&k2, "k2", &claims())).await.unwrap();
    v.verify(&sign(&k1, "k1", &claims())).await.unwrap();
}

#[tokio::test]
async fn unreachable_keys_are_transient_and_revocation_is_checked_online() {
    // Nothing listens there.
    let v = Verifier::builder("http://127.0.0.1:9", APP).build();
    let (k1, j1) = ed_key(1, "k1");
    let err = v.verify(&sign(&k1, "k1", &claims())).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(err.www_authenticate().is_none());

    let (server, url) = key_server(jwks(&[&j1])).await;
    let v = Verifier::builder(&url, APP).check_revocation(true).build();
    let token = sign(&k1, "k1", &claims());
    v.verify(&token).await.unwrap();
    *server.profile.lock().unwrap() = StatusCode::UNAUTHORIZED;
    assert_eq!(v.verify(&token).await.unwrap_err(), VerifyError::Revoked);
    *server.profile.lock().unwrap() = StatusCode::BAD_GATEWAY;
    assert!(v.verify(&token).await.unwrap_err().is_transient());
}

#[tokio::test]
async fn the_extractor_answers_401_with_www_authenticate() {
    let (k1, j1) = ed_key(1, "k1");
    let (_server, url) = key_server(jwks(&[&j1])).await;
    let verifier = Verifier::builder(&url, APP).build();
    async fn me(LatchkeyUser(user): LatchkeyUser) -> String {
        user.user_id().to_owned()
    }
    let api = Router::new().route("/me", get(me)).with_state(verifier);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}/me", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, api).await });

    let http = reqwest::Client::new();
    let ok = http
        .get(&api_url)
        .bearer_auth(sign(&k1, "k1", &claims()))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "5f0000000000000000000001");

    let missing = http.get(&api_url).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.headers()["www-authenticate"],
        r#"Bearer realm="latchkey""#
    );

    let mut c = claims();
    c["exp"] = json!(now() - 3600);
    let expired = http
        .get(&api_url)
        .bearer_auth(sign(&k1, "k1", &c))
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 401);
    assert_eq!(
        expired.headers()["www-authenticate"],
        r#"Bearer realm="latchkey", error="invalid_token", error_description="token expired""#
    );
    assert_eq!(expired.headers()["content-type"], "application/json");
    assert_eq!(
        serde_json::from_str::<Value>(&expired.text().await.unwrap()).unwrap(),
        json!({"error": "token expired"})
    );
}
