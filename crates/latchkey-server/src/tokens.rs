//! Signing and verifying the server's own HS256 access and refresh tokens.
//!
//! Verification here is cryptographic and temporal only: signature (HS256 and
//! nothing else), integer `exp`/`iat`, the expected `typ`, and `exp` against the
//! server [`Clock`](crate::Clock). The session lookup that makes revocation
//! immediate happens in the HTTP layer (`http::auth`).

use std::fmt;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use latchkey_protocol::{AccessTokenClaims, RefreshTokenClaims, TokenType};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Why a token was rejected. None of the variants carries the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a three-part JWS, bad base64 or JSON, missing or non-integer claims.
    #[error("malformed token")]
    Malformed,
    /// The signature does not verify, or the algorithm is not HS256.
    #[error("invalid token signature")]
    Signature,
    /// An access token where a refresh token is required, or the other way round.
    #[error("wrong token type")]
    WrongType,
    /// `exp` is not in the future.
    #[error("token expired")]
    Expired,
    /// Signing failed.
    #[error("cannot sign token: {0}")]
    Sign(String),
}

/// One app's signing key.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Built once: HS256 only, no `exp`/`aud`/required-claim checks (see [`Self::verify`]).
    validation: Validation,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKeys(<redacted>)")
    }
}

/// The signature check of [`TokenKeys::verify`]: HS256 only. `exp` is checked there
/// against the server clock, not the system clock; `typ` and `iat` too.
fn hs256_validation() -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation.leeway = 0;
    validation
}

/// The `baas_domain_id` claim of a token, read **without** verifying it, to find
/// which app's key verifies it.
pub fn unverified_domain(token: &str) -> Option<String> {
    let claims: Map<String, Value> = jsonwebtoken::dangerous::insecure_decode_claims(token).ok()?;
    claims
        .get("baas_domain_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

impl TokenKeys {
    /// Keys from an HS256 secret.
    pub fn new(secret: &[u8]) -> Result<Self, TokenError> {
        Ok(TokenKeys {
            encoding: EncodingKey::from_secret(secret)
                .map_err(|e| TokenError::Sign(e.to_string()))?,
            decoding: DecodingKey::from_secret(secret)
                .map_err(|e| TokenError::Sign(e.to_string()))?,
            validation: hs256_validation(),
        })
    }

    fn sign<T: serde::Serialize>(&self, claims: &T) -> Result<String, TokenError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| TokenError::Sign(e.to_string()))
    }

    /// Sign access-token claims.
    pub fn sign_access(&self, claims: &AccessTokenClaims) -> Result<String, TokenError> {
        self.sign(claims)
    }

    /// Sign refresh-token claims.
    pub fn sign_refresh(&self, claims: &RefreshTokenClaims) -> Result<String, TokenError> {
        self.sign(claims)
    }

    fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        typ: TokenType,
        now: i64,
    ) -> Result<T, TokenError> {
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &self.decoding, &self.validation)
                .map_err(|e| match e.kind() {
                    ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => {
                        TokenError::Signature
                    }
                    _ => TokenError::Malformed,
                })?;
        let expected = match typ {
            TokenType::Access => "access",
            TokenType::Refresh => "refresh",
        };
        if data.claims.get("typ").and_then(Value::as_str) != Some(expected) {
            return Err(TokenError::WrongType);
        }
        let exp = match data.claims.get("exp") {
            Some(Value::Number(n)) => n.as_i64().ok_or(TokenError::Malformed)?,
            _ => return Err(TokenError::Malformed),
        };
        if !matches!(data.claims.get("iat"), Some(Value::Number(n)) if n.is_i64()) {
            return Err(TokenError::Malformed);
        }
        let claims: T = serde_json::from_value(Value::Object(data.claims))
            .map_err(|_| TokenError::Malformed)?;
        if exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// Verify an access token: HS256 signature, `typ:"access"`, integer `exp`/`iat`,
    /// `exp > now`.
    pub fn verify_access(&self, token: &str, now: i64) -> Result<AccessTokenClaims, TokenError> {
        self.verify(token, TokenType::Access, now)
    }

    /// Verify a refresh token: HS256 signature, `typ:"refresh"`, integer `exp`/`iat`,
    /// `exp > now`.
    pub fn verify_refresh(&self, token: &str, now: i64) -> Result<RefreshTokenClaims, TokenError> {
        self.verify(token, TokenType::Refresh, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn access(exp: i64) -> AccessTokenClaims {
        AccessTokenClaims {
            sub: "u1".into(),
            exp,
            iat: exp - 1800,
            iss: Some("s1".into()),
            typ: TokenType::Access,
            baas_device_id: Some("000000000000000000000000".into()),
            baas_domain_id: Some("app".into()),
            user_data: None,
        }
    }

    fn refresh(exp: i64) -> RefreshTokenClaims {
        RefreshTokenClaims {
            sub: "u1".into(),
            exp,
            iat: exp - 60,
            baas_id: Some("s1".into()),
            typ: TokenType::Refresh,
            baas_device_id: None,
            baas_domain_id: Some("app".into()),
        }
    }

    #[test]
    fn round_trip_and_type_confusion() {
        let k = TokenKeys::new(SECRET).unwrap();
        let at = k.sign_access(&access(2000)).unwrap();
        let rt = k.sign_refresh(&refresh(2000)).unwrap();
        assert_eq!(k.verify_access(&at, 1000).unwrap().sub, "u1");
        assert_eq!(
            k.verify_refresh(&rt, 1000).unwrap().baas_id.as_deref(),
            Some("s1")
        );
        assert_eq!(k.verify_access(&rt, 1000), Err(TokenError::WrongType));
        assert_eq!(k.verify_refresh(&at, 1000), Err(TokenError::WrongType));
        assert_eq!(k.verify_access(&at, 2000), Err(TokenError::Expired));
        assert_eq!(unverified_domain(&at).as_deref(), Some("app"));
    }

    #[test]
    fn rejects_other_keys_and_algorithms() {
        let k = TokenKeys::new(SECRET).unwrap();
        let other = TokenKeys::new(b"another-secret-another-secret-xx").unwrap();
        let at = other.sign_access(&access(2000)).unwrap();
        assert_eq!(k.verify_access(&at, 1000), Err(TokenError::Signature));

        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&access(2000)).unwrap());
        for header in [
            r#"{"alg":"none","typ":"JWT"}"#,
            r#"{"alg":"HS512","typ":"JWT"}"#,
        ] {
            let h = URL_SAFE_NO_PAD.encode(header);
            for sig in ["", "c2ln"] {
                let t = format!("{h}.{payload}.{sig}");
                assert!(k.verify_access(&t, 1000).is_err(), "{header} {sig}");
            }
        }
        assert_eq!(k.verify_access("garbage", 1000), Err(TokenError::Malformed));
    }

    #[test]
    fn rejects_float_exp_and_missing_typ() {
        let k = TokenKeys::new(SECRET).unwrap();
        let t = k
            .sign(&serde_json::json!({"sub":"u","exp":2000.5,"iat":1,"typ":"access"}))
            .unwrap();
        assert_eq!(k.verify_access(&t, 1000), Err(TokenError::Malformed));
        let t = k
            .sign(&serde_json::json!({"sub":"u","exp":2000,"iat":1}))
            .unwrap();
        assert_eq!(k.verify_access(&t, 1000), Err(TokenError::WrongType));
        let t = k
            .sign(&serde_json::json!({"sub":"u","exp":2000,"typ":"access"}))
            .unwrap();
        assert_eq!(k.verify_access(&t, 1000), Err(TokenError::Malformed));
    }
}
