//! Access-token signing keys: the JWKS and discovery routes, and a rotation across a
//! restart on the same database (tokens minted before it work until they expire).

use std::time::Duration;

use latchkey_server::config::{SigningKeyConfig, TokenAlgorithm};
use latchkey_server::keys::{ROTATION_MARGIN_SECS, RotateOptions, new_signing_key, rotate};
use latchkey_server::{Config, tokens};
use reqwest::Method;
use serde_json::Value;

use crate::common::*;

async fn get(h: &Harness, rest: &str) -> Reply {
    h.send(Method::GET, &h.app_url(APP, rest), None, None).await
}

#[tokio::test]
async fn hs256_app_publishes_an_empty_key_set_and_a_discovery_document() {
    let h = start().await;
    let r = get(&h, "/.well-known/jwks.json").await;
    assert_eq!(r.assert_ok_json(), serde_json::json!({"keys": []}));
    // The access-token lifetime (1800 s) capped at 10 minutes.
    assert_eq!(r.headers["cache-control"], "public, max-age=600");
    let d = get(&h, "/.well-known/openid-configuration")
        .await
        .assert_ok_json();
    assert_eq!(
        d["jwks_uri"],
        h.app_url(APP, "/.well-known/jwks.json").as_str()
    );
    assert_eq!(d["issuer"], h.app_url(APP, "").as_str());
    h.send(
        Method::GET,
        &h.app_url("nope", "/.well-known/jwks.json"),
        None,
        None,
    )
    .await
    .assert_error(404, "InvalidParameter");
    // The access token names the signing_secret's kid.
    let t = h.anon().await;
    assert_eq!(segment(&t.access, 0)["alg"], "HS256");
    assert_eq!(
        segment(&t.access, 0)["kid"],
        tokens::secret_kid(SECRET.as_bytes()).as_str()
    );
    h.server.shutdown().await;
}

fn es256(kid: &str) -> SigningKeyConfig {
    new_signing_key(kid, TokenAlgorithm::ES256, true).unwrap()
}

#[tokio::test]
async fn rotation_keeps_every_session_and_old_tokens_until_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config();
    c.database = format!("sqlite://{}", dir.path().join("l.db").display()).into();
    c.apps[0].access_token_ttl_secs = 600;
    c.apps[0].signing_keys = vec![es256("first")];

    let h = start_with(c.clone()).await;
    let before = h.anon().await;
    assert_eq!(segment(&before.access, 0)["kid"], "first");
    assert_eq!(segment(&before.access, 0)["alg"], "ES256");
    // The claims official clients decode are unchanged.
    let claims = claims(&before.access);
    assert_eq!(claims["baas_domain_id"], APP);
    assert_eq!(claims["typ"], "access");
    let jwks = get(&h, "/.well-known/jwks.json").await;
    assert_eq!(jwks.headers["cache-control"], "public, max-age=600");
    let keys = jwks.assert_ok_json()["keys"].clone();
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert_eq!(keys[0]["kid"], "first");
    assert_eq!(keys[0]["alg"], "ES256");
    assert_eq!(keys[0]["use"], "sig");
    assert!(keys[0].get("d").is_none());
    let now = h.server.clock().now_secs();
    h.server.shutdown().await;

    // `keys rotate` on the configuration text, then a restart on the same database.
    let rotated = rotate(
        &toml::to_string(&c).unwrap(),
        &RotateOptions {
            app: None,
            algorithm: TokenAlgorithm::EdDSA,
            stage: false,
            key_dir: None,
            now,
        },
    )
    .unwrap();
    let c2 = Config::from_toml_str(&rotated.text).unwrap();
    let h = start_with(c2).await;
    // The token minted before the rotation still works, and so does the session.
    h.profile(&before.access).await.assert_ok_json();
    let fresh = h.refresh(&before.refresh).await.assert_ok_json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(segment(&fresh, 0)["alg"], "EdDSA");
    let new_kid = segment(&fresh, 0)["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, "first");
    h.profile(&fresh).await.assert_ok_json();
    let kids: Vec<Value> = get(&h, "/.well-known/jwks.json").await.assert_ok_json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(
        kids,
        vec![Value::from("first"), Value::from(new_kid.clone())]
    );

    // Once expired, the old token is refused; the refresh token still works.
    h.server.clock().advance(Duration::from_secs(601));
    h.profile(&before.access)
        .await
        .assert_error(401, "InvalidSession");
    let later = h.refresh(&before.refresh).await.assert_ok_json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(segment(&later, 0)["kid"], new_kid.as_str());

    // Past verify_until the retired key is no longer published.
    h.server
        .clock()
        .advance(Duration::from_secs(ROTATION_MARGIN_SECS as u64));
    let keys = get(&h, "/.well-known/jwks.json").await.assert_ok_json()["keys"].clone();
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert_eq!(keys[0]["kid"], new_kid.as_str());
    h.profile(&later).await.assert_ok_json();
    h.server.shutdown().await;
}

#[tokio::test]
async fn a_bad_key_stops_the_start_with_a_clear_error() {
    let mut c = config();
    let mut key = es256("bad");
    key.private_key = Some("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----".into());
    c.apps[0].signing_keys = vec![key];
    let err = latchkey_server::Server::start(c)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("signing key \"bad\""), "{err}");
    assert!(!err.contains("AAAA"), "{err}");
}
