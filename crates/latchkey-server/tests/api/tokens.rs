//! Forged, re-signed and `alg:none` tokens are refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

use crate::common::*;

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn resign(claims: &Value, alg: Algorithm, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(secret).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn forged_tokens_are_401_invalid_session() {
    let h = start().await;
    let victim = h.anon().await;
    let attacker = h.anon().await;

    // Attacker's token with the victim's id, original signature kept.
    let mut forged_claims = claims(&attacker.access);
    forged_claims["sub"] = Value::from(victim.user_id.clone());
    forged_claims["iss"] = claims(&victim.access)["iss"].clone();
    let parts: Vec<&str> = attacker.access.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], b64(&forged_claims), parts[2]);

    let header_none = serde_json::json!({"alg": "none", "typ": "JWT"});
    let alg_none = format!("{}.{}.", b64(&header_none), b64(&forged_claims));
    let alg_none_sig = format!("{}.{}.{}", b64(&header_none), b64(&forged_claims), parts[2]);
    let header_none_mixed = serde_json::json!({"alg": "nOnE", "typ": "JWT"});
    let alg_none_mixed = format!("{}.{}.", b64(&header_none_mixed), b64(&forged_claims));

    let wrong_key = resign(
        &forged_claims,
        Algorithm::HS256,
        b"some-other-secret-0123456789abcdef",
    );
    // Right key, wrong algorithm: only HS256 is accepted.
    let hs512 = resign(&claims(&victim.access), Algorithm::HS512, SECRET.as_bytes());
    let hs384 = resign(&claims(&victim.access), Algorithm::HS384, SECRET.as_bytes());

    for (name, token) in [
        ("tampered", tampered.as_str()),
        ("alg none", alg_none.as_str()),
        ("alg none with sig", alg_none_sig.as_str()),
        ("alg nOnE", alg_none_mixed.as_str()),
        ("wrong key", wrong_key.as_str()),
        ("HS512", hs512.as_str()),
        ("HS384", hs384.as_str()),
        ("garbage", "not-a-jwt"),
        ("two parts", "a.b"),
    ] {
        let r = h.profile(token).await;
        assert_eq!(r.status.as_u16(), 401, "{name}: {}", r.text);
        r.assert_error(401, "InvalidSession");
    }

    // The same right-key re-signing trick on a refresh token.
    let hs512_refresh = resign(
        &claims(&victim.refresh),
        Algorithm::HS512,
        SECRET.as_bytes(),
    );
    h.refresh(&hs512_refresh)
        .await
        .assert_error(401, "InvalidSession");
    // A correctly re-signed token (i.e. with the real secret) is accepted: the test
    // above fails for the right reason.
    let resigned = resign(&claims(&victim.access), Algorithm::HS256, SECRET.as_bytes());
    h.profile(&resigned).await.assert_ok_json();
}

#[tokio::test]
async fn token_for_unknown_session_is_refused() {
    let h = start().await;
    let t = h.anon().await;
    let mut c = claims(&t.refresh);
    c["baas_id"] = Value::from("0123456789abcdef0123456789abcdef");
    let token = resign(&c, Algorithm::HS256, SECRET.as_bytes());
    h.refresh(&token).await.assert_refresh_token_not_found();
    // A session of another user cannot be borrowed by changing `sub`.
    let other = h.anon().await;
    let mut c = claims(&t.access);
    c["sub"] = Value::from(other.user_id);
    let token = resign(&c, Algorithm::HS256, SECRET.as_bytes());
    h.profile(&token).await.assert_error(401, "InvalidSession");
}
