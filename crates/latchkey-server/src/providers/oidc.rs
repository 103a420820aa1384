//! Verification of inbound JWTs shared by `custom-token`, `oauth2-google` and
//! `oauth2-apple`: one algorithm only, compact JWS only, signature against static keys
//! (every one tried) or a JWKS key by `kid`, then `exp` (required), `nbf`, `iat`, `aud`
//! (required) and `iss` against the server clock with a bounded leeway.
//!
//! Every rejection is a 401 `AuthError` whose message starts with the provider's label
//! ("custom JWT: token expired", "Google: audience mismatch"). Tokens, keys and claim
//! values are never logged nor echoed.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{ProviderContext, VerifiedIdentity};
use super::jwks::JwksError;
use crate::error::Error;
use crate::settings::{ConfigError, invalid};

/// Default clock-skew leeway for `exp`, `nbf` and `iat`, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 60;
/// Largest accepted `leeway_secs`.
pub const MAX_LEEWAY_SECS: u64 = 300;

/// How a token's `aud` is matched against the configured `audience` list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudienceMatch {
    /// At least one configured audience must be in the token's `aud` (default).
    #[default]
    Any,
    /// Every configured audience must be in the token's `aud`.
    All,
}

/// The serde default of `leeway_secs`.
pub(crate) fn default_leeway() -> u64 {
    DEFAULT_LEEWAY_SECS
}

/// Check a configured `leeway_secs` of `provider`'s table.
pub(crate) fn check_leeway(app: &str, provider: &str, leeway: u64) -> Result<(), ConfigError> {
    if leeway > MAX_LEEWAY_SECS {
        return invalid(
            app,
            provider,
            format!("leeway_secs must be at most {MAX_LEEWAY_SECS}, got {leeway}"),
        );
    }
    Ok(())
}

/// Longest accepted inbound JWT (App Services' custom-JWT limit).
pub(crate) const MAX_TOKEN_LEN: usize = 1_000_000;
/// Smallest accepted RSA modulus, in bits.
const MIN_RSA_BITS: usize = 2048;

/// 401 `AuthError` "`{label}: {what} could not be verified: identity provider unreachable"`.
///
/// An unreachable identity provider is reported as a rejected credential (401, not
/// 5xx), so clients show an error instead of retrying a login in a loop.
pub(crate) fn unreachable(label: &str, what: &str) -> Error {
    Error::auth_failed(format!(
        "{label}: {what} could not be verified: identity provider unreachable"
    ))
}

/// An RS256 verification key from a PEM public key (`BEGIN PUBLIC KEY` or
/// `BEGIN RSA PUBLIC KEY`) of at least 2048 bits.
pub(crate) fn rsa_key_from_pem(pem: &str) -> Result<DecodingKey, String> {
    use rsa::pkcs1::DecodeRsaPublicKey as _;
    use rsa::pkcs8::DecodePublicKey as _;
    use rsa::traits::PublicKeyParts as _;
    let pem = pem.trim();
    let key = if pem.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
        rsa::RsaPublicKey::from_pkcs1_pem(pem)
            .map_err(|e| format!("invalid RSA public key: {e}"))?
    } else if pem.starts_with("-----BEGIN PUBLIC KEY-----") {
        rsa::RsaPublicKey::from_public_key_pem(pem)
            .map_err(|e| format!("invalid RSA public key: {e}"))?
    } else {
        return Err(
            "expected an RSA public key in PEM (-----BEGIN PUBLIC KEY----- or \
             -----BEGIN RSA PUBLIC KEY-----)"
                .to_owned(),
        );
    };
    if key.size() * 8 < MIN_RSA_BITS {
        return Err(format!("RSA key must be at least {MIN_RSA_BITS} bits"));
    }
    Ok(DecodingKey::from_rsa_raw_components(
        &key.n().to_bytes_be(),
        &key.e().to_bytes_be(),
    ))
}

/// Where the verification keys come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Keys<'a> {
    /// Configured keys; each is tried in turn (rotation).
    Static(&'a [DecodingKey]),
    /// The key named by the token's `kid` in the JWK Set at this URL.
    Jwks(&'a str),
}

/// What a token must satisfy besides its signature.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules<'a> {
    /// Message prefix: "custom JWT", "Google", "Apple".
    pub(crate) label: &'static str,
    /// What the token is, for "could not be verified" messages ("ID token", "token").
    pub(crate) what: &'static str,
    /// The only accepted `alg`.
    pub(crate) algorithm: Algorithm,
    /// Accepted audiences (never empty).
    pub(crate) audiences: &'a [String],
    /// Any or all of `audiences` must be in `aud`.
    pub(crate) audience_match: AudienceMatch,
    /// Accepted issuers; empty means `iss` is not checked.
    pub(crate) issuers: &'a [String],
    /// Leeway for `exp`, `nbf` and `iat`, in seconds.
    pub(crate) leeway_secs: u64,
}

/// Verify `token` and return its claims.
pub(crate) async fn verify(
    ctx: &ProviderContext<'_>,
    token: &str,
    keys: Keys<'_>,
    rules: &Rules<'_>,
) -> Result<Map<String, Value>, Error> {
    let label = rules.label;
    let reject = |why: &str| Error::auth_failed(format!("{label}: {why}"));
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(reject("malformed token"));
    }
    // Compact JWS only: three parts (a JWE has five, JSON serialisation none).
    if token.split('.').count() != 3 {
        return Err(reject("malformed token (expected a signed JWT)"));
    }
    let header = raw_header(token).ok_or_else(|| reject("malformed token header"))?;
    let expected = alg_name(rules.algorithm);
    match header.get("alg").and_then(Value::as_str) {
        Some(alg) if alg == expected => {}
        Some(alg) if alg.eq_ignore_ascii_case("none") => {
            return Err(reject(&format!(
                "unsigned tokens (alg none) are not accepted; expected {expected}"
            )));
        }
        _ => {
            return Err(reject(&format!(
                "token algorithm not allowed; expected {expected}"
            )));
        }
    }
    if header.contains_key("crit") || header.contains_key("b64") {
        return Err(reject("unsupported critical header parameters"));
    }

    let mut validation = Validation::new(rules.algorithm);
    // Time and audience are checked below, against the server clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation.leeway = 0;

    let jwks_key;
    let candidates: &[DecodingKey] = match keys {
        Keys::Static(keys) => keys,
        Keys::Jwks(url) => {
            let kid = header
                .get("kid")
                .and_then(Value::as_str)
                .ok_or_else(|| reject("token has no key id (kid)"))?;
            jwks_key = match ctx.jwks.key(ctx.http, url, kid).await {
                Ok(key) => key,
                Err(JwksError::UnknownKid) => {
                    return Err(reject("token is signed by an unknown key"));
                }
                Err(JwksError::Unreachable) => return Err(unreachable(label, rules.what)),
            };
            std::slice::from_ref(&jwks_key)
        }
    };

    let mut claims = None;
    for key in candidates {
        match jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation) {
            Ok(data) => {
                claims = Some(data.claims);
                break;
            }
            Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::InvalidAlgorithm) => {
                return Err(reject("token algorithm not allowed"));
            }
            Err(_) => return Err(reject("malformed token")),
        }
    }
    let claims = claims.ok_or_else(|| reject("invalid signature"))?;
    check_claims(&claims, rules, ctx.clock.now_secs())?;
    Ok(claims)
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::RS256 => "RS256",
        _ => "an unsupported algorithm",
    }
}

/// The JOSE header as JSON, read without verification.
fn raw_header(token: &str) -> Option<Map<String, Value>> {
    let first = token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(first).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// A NumericDate claim: `Ok(None)` when absent, `Err` when not a number.
fn numeric(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, ()> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or(()),
        Some(_) => Err(()),
    }
}

fn check_claims(claims: &Map<String, Value>, rules: &Rules<'_>, now: i64) -> Result<(), Error> {
    let label = rules.label;
    let reject = |why: &str| Error::auth_failed(format!("{label}: {why}"));
    let leeway = i64::try_from(rules.leeway_secs).unwrap_or(0);
    let exp = numeric(claims, "exp")
        .map_err(|()| reject("exp claim is not a number"))?
        .ok_or_else(|| reject("token has no exp claim"))?;
    if exp.saturating_add(leeway) <= now {
        return Err(reject("token expired"));
    }
    if let Some(nbf) = numeric(claims, "nbf").map_err(|()| reject("nbf claim is not a number"))?
        && nbf > now.saturating_add(leeway)
    {
        return Err(reject("token not valid yet (nbf is in the future)"));
    }
    if let Some(iat) = numeric(claims, "iat").map_err(|()| reject("iat claim is not a number"))?
        && iat > now.saturating_add(leeway)
    {
        return Err(reject("token issued in the future (iat)"));
    }

    let aud: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => return Err(reject("token has no aud claim")),
    };
    let has = |a: &String| aud.contains(&a.as_str());
    let aud_ok = match rules.audience_match {
        AudienceMatch::Any => rules.audiences.iter().any(has),
        AudienceMatch::All => !rules.audiences.is_empty() && rules.audiences.iter().all(has),
    };
    if !aud_ok {
        return Err(reject("audience mismatch"));
    }

    if !rules.issuers.is_empty() {
        match claims.get("iss").and_then(Value::as_str) {
            Some(iss) if rules.issuers.iter().any(|i| i == iss) => {}
            Some(_) => return Err(reject("issuer mismatch")),
            None => return Err(reject("token has no iss claim")),
        }
    }
    Ok(())
}

impl<'a> Rules<'a> {
    /// The rules of an OpenID Connect ID token: RS256, any one of `audiences`.
    pub(crate) fn id_token(
        label: &'static str,
        audiences: &'a [String],
        issuers: &'a [String],
        leeway_secs: u64,
    ) -> Self {
        Rules {
            label,
            what: "ID token",
            algorithm: Algorithm::RS256,
            audiences,
            audience_match: AudienceMatch::Any,
            issuers,
            leeway_secs,
        }
    }
}

/// Verify an OpenID Connect ID token of `provider` with a key from `jwks_url`: the
/// identity is `sub`, the profile its standard claims.
pub(crate) async fn verify_id_token(
    ctx: &ProviderContext<'_>,
    provider: &'static str,
    token: &str,
    jwks_url: &str,
    rules: &Rules<'_>,
) -> Result<VerifiedIdentity, Error> {
    let claims = verify(ctx, token, Keys::Jwks(jwks_url), rules).await?;
    Ok(VerifiedIdentity {
        provider,
        id: subject(rules.label, &claims, "sub")?,
        data: id_token_profile(&claims),
    })
}

/// The external user id in `claim`: a non-empty string (or an integer), at most 512 bytes.
pub(crate) fn subject(
    label: &str,
    claims: &Map<String, Value>,
    claim: &str,
) -> Result<String, Error> {
    let id = match claims.get(claim) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        _ => {
            return Err(Error::auth_failed(format!(
                "{label}: token has no '{claim}' claim"
            )));
        }
    };
    if id.is_empty() || id.len() > 512 {
        return Err(Error::auth_failed(format!(
            "{label}: the '{claim}' claim must be 1-512 bytes"
        )));
    }
    Ok(id)
}

/// Profile data of an OpenID Connect ID token: `email`, `name`, `given_name` as
/// `first_name`, `family_name` as `last_name`, `picture` (also as `picture_url`).
/// Only string claims are copied.
pub(crate) fn id_token_profile(claims: &Map<String, Value>) -> Map<String, Value> {
    let mut data = Map::new();
    for (claim, keys) in [
        ("email", &["email"][..]),
        ("name", &["name"]),
        ("given_name", &["first_name"]),
        ("family_name", &["last_name"]),
        ("picture", &["picture", "picture_url"]),
    ] {
        if let Some(Value::String(v)) = claims.get(claim)
            && !v.is_empty()
        {
            for key in keys {
                data.insert((*key).to_owned(), Value::String(v.clone()));
            }
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules<'a>(aud: &'a [String], m: AudienceMatch, iss: &'a [String]) -> Rules<'a> {
        Rules {
            label: "test",
            what: "token",
            algorithm: Algorithm::HS256,
            audiences: aud,
            audience_match: m,
            issuers: iss,
            leeway_secs: 60,
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn claim_checks() {
        let aud = ["a".to_owned(), "b".to_owned()];
        let iss = ["https://i".to_owned()];
        let any = rules(&aud, AudienceMatch::Any, &iss);
        let all = rules(&aud, AudienceMatch::All, &iss);
        let now = 1_000_000;
        let ok = claims(serde_json::json!({"exp": now + 10, "aud": "a", "iss": "https://i"}));
        assert!(check_claims(&ok, &any, now).is_ok());
        assert!(check_claims(&ok, &all, now).is_err());
        let both = claims(
            serde_json::json!({"exp": now + 10, "aud": ["b", "a", "c"], "iss": "https://i"}),
        );
        assert!(check_claims(&both, &all, now).is_ok());
        // Within the leeway.
        let skew = claims(
            serde_json::json!({"exp": now - 30, "nbf": now + 30, "aud": "a", "iss": "https://i"}),
        );
        assert!(check_claims(&skew, &any, now).is_ok());
        let expired = claims(serde_json::json!({"exp": now - 61, "aud": "a", "iss": "https://i"}));
        let e = check_claims(&expired, &any, now).unwrap_err();
        assert_eq!(e.to_string(), "test: token expired");
        let no_exp = claims(serde_json::json!({"aud": "a", "iss": "https://i"}));
        assert!(check_claims(&no_exp, &any, now).is_err());
        let str_exp =
            claims(serde_json::json!({"exp": "999999999999", "aud": "a", "iss": "https://i"}));
        assert!(check_claims(&str_exp, &any, now).is_err());
        let wrong_iss = claims(serde_json::json!({"exp": now + 10, "aud": "a", "iss": "x"}));
        assert_eq!(
            check_claims(&wrong_iss, &any, now).unwrap_err().to_string(),
            "test: issuer mismatch"
        );
    }

    #[test]
    fn profile_mapping() {
        let c = claims(serde_json::json!({
            "email": "a@b.c", "given_name": "A", "family_name": "B", "picture": "https://p",
            "name": 5
        }));
        let d = id_token_profile(&c);
        assert_eq!(d["email"], "a@b.c");
        assert_eq!(d["first_name"], "A");
        assert_eq!(d["last_name"], "B");
        assert_eq!(d["picture"], "https://p");
        assert_eq!(d["picture_url"], "https://p");
        assert!(!d.contains_key("name"));
    }
}
