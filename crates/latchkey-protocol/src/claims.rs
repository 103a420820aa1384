//! Access and refresh token claims (protocol.md §7).
//!
//! Clients read claims **without verifying the signature** (the server is the
//! only party that can and must verify). [`AccessTokenClaims::decode_unverified`]
//! and [`RefreshTokenClaims::decode_unverified`] use jsonwebtoken's insecure
//! decoding, which needs no crypto backend.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The `typ` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// An access token.
    Access,
    /// A refresh token.
    Refresh,
}

/// Claims of an access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// User id.
    pub sub: String,
    /// Expiry, Unix seconds (an integer on the wire).
    pub exp: i64,
    /// Issued at, Unix seconds (an integer on the wire).
    pub iat: i64,
    /// Session id (the refresh token's `baas_id`).
    #[serde(default)]
    pub iss: Option<String>,
    /// Always [`TokenType::Access`] for tokens from latchkey-server.
    #[serde(default = "access")]
    pub typ: TokenType,
    /// Device id, or all zeros.
    #[serde(default)]
    pub baas_device_id: Option<String>,
    /// App (domain) id.
    #[serde(default)]
    pub baas_domain_id: Option<String>,
    /// Custom user data. Absent when there is none; never `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<Map<String, Value>>,
}

fn access() -> TokenType {
    TokenType::Access
}

fn refresh() -> TokenType {
    TokenType::Refresh
}

/// Claims of a refresh token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshTokenClaims {
    /// User id.
    pub sub: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Session id.
    #[serde(default)]
    pub baas_id: Option<String>,
    /// Always [`TokenType::Refresh`] for tokens from latchkey-server.
    #[serde(default = "refresh")]
    pub typ: TokenType,
    /// Device id, or all zeros.
    #[serde(default)]
    pub baas_device_id: Option<String>,
    /// App (domain) id.
    #[serde(default)]
    pub baas_domain_id: Option<String>,
}

/// A token could not be decoded as a JWT with integer `exp`/`iat`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed JWT: {reason}")]
pub struct ClaimsError {
    reason: String,
}

fn decode<T: DeserializeOwned>(token: &str) -> Result<T, ClaimsError> {
    // realm-core requires exactly three non-empty segments.
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(ClaimsError {
            reason: "expected three non-empty dot-separated segments".into(),
        });
    }
    jsonwebtoken::dangerous::insecure_decode_claims::<T>(token).map_err(|e| ClaimsError {
        // jsonwebtoken errors never echo the token itself.
        reason: e.to_string(),
    })
}

impl AccessTokenClaims {
    /// Decode the payload of an access token without checking its signature.
    ///
    /// ```
    /// use latchkey_protocol::AccessTokenClaims;
    /// // header {"alg":"HS256","typ":"JWT"}, payload {"sub":"u1","exp":1800,"iat":0}
    /// let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1MSIsImV4cCI6MTgwMCwiaWF0IjowfQ.c2ln";
    /// let claims = AccessTokenClaims::decode_unverified(token).unwrap();
    /// assert_eq!(claims.sub, "u1");
    /// assert_eq!(claims.exp - claims.iat, 1800);
    /// assert!(AccessTokenClaims::decode_unverified("not-a-jwt").is_err());
    /// ```
    pub fn decode_unverified(token: &str) -> Result<Self, ClaimsError> {
        decode(token)
    }
}

impl RefreshTokenClaims {
    /// Decode the payload of a refresh token without checking its signature.
    pub fn decode_unverified(token: &str) -> Result<Self, ClaimsError> {
        decode(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn token(payload: &str) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn decodes_access_claims_with_user_data() {
        let t = token(r#"{"sub":"u","exp":100,"iat":10,"typ":"access","user_data":{"a":1}}"#);
        let c = AccessTokenClaims::decode_unverified(&t).unwrap();
        assert_eq!(c.user_data.unwrap()["a"], 1);
    }

    #[test]
    fn rejects_float_or_missing_exp() {
        assert!(
            AccessTokenClaims::decode_unverified(&token(r#"{"sub":"u","exp":1.5,"iat":1}"#))
                .is_err()
        );
        assert!(AccessTokenClaims::decode_unverified(&token(r#"{"sub":"u","iat":1}"#)).is_err());
        assert!(
            AccessTokenClaims::decode_unverified(&token(r#"{"sub":"u","exp":"1","iat":1}"#))
                .is_err()
        );
    }

    #[test]
    fn rejects_wrong_segment_count() {
        let t = token(r#"{"sub":"u","exp":100,"iat":10}"#);
        assert!(AccessTokenClaims::decode_unverified(&format!("{t}.x")).is_err());
        let two: String = t.rsplit_once('.').unwrap().0.to_owned();
        assert!(AccessTokenClaims::decode_unverified(&two).is_err());
    }

    #[test]
    fn refresh_claims() {
        let t = token(r#"{"sub":"u","exp":100,"iat":10,"typ":"refresh","baas_id":"s"}"#);
        let c = RefreshTokenClaims::decode_unverified(&t).unwrap();
        assert_eq!(c.typ, TokenType::Refresh);
        assert_eq!(c.baas_id.as_deref(), Some("s"));
    }
}
