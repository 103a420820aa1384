//! Access and refresh token claims (protocol.md §7).
//!
//! Clients read claims **without verifying the signature** (the server is the
//! only party that can and must verify). [`AccessTokenClaims::decode_unverified`]
//! and [`RefreshTokenClaims::decode_unverified`] use jsonwebtoken's insecure
//! decoding, which needs no crypto backend.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The longest access-token lifetime (`exp - iat`), in seconds: one year. The SDK refuses
/// a token that lives longer (a decode error at login), and the server refuses an
/// `access_token_ttl_secs` above it at start, so a server never issues a token its own
/// SDK cannot use. The shortest is one second.
pub const MAX_ACCESS_TOKEN_LIFETIME_SECS: u64 = 365 * 24 * 3600;

/// The shortest refresh-token (session) lifetime the server accepts, in seconds: 30
/// minutes, as App Services (its range was 30 minutes to 5 years). A session that ends
/// before a person can finish a task logs them out mid-task.
pub const MIN_REFRESH_TOKEN_LIFETIME_SECS: u64 = 30 * 60;

/// The longest refresh-token (session) lifetime the server accepts, in seconds: five
/// years, as App Services.
pub const MAX_REFRESH_TOKEN_LIFETIME_SECS: u64 = 5 * 365 * 24 * 3600;

/// The deepest custom user data (the access token's `user_data` claim) a server stores
/// and issues: an object counts one level, each nested object or array one more. The
/// claim sits one level inside the token's claims, so a token carries at most
/// `MAX_CUSTOM_DATA_DEPTH + 1` levels, far below the 128 that `serde_json` (the server's
/// and the SDK's token decoder) reads.
pub const MAX_CUSTOM_DATA_DEPTH: usize = 32;

/// The largest custom user data, in bytes of compact JSON: 4 KiB. With the other claims
/// and base64, an access token stays under 6.5 KiB, inside the 8 KiB a single request
/// header may take behind common reverse proxies (nginx's default
/// `large_client_header_buffers`), so every request that carries it is read.
pub const MAX_CUSTOM_DATA_BYTES: usize = 4 * 1024;

/// Why custom user data cannot be stored or issued in a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CustomDataError {
    /// Nested deeper than [`MAX_CUSTOM_DATA_DEPTH`].
    #[error("custom data is nested deeper than {MAX_CUSTOM_DATA_DEPTH} levels")]
    TooDeep,
    /// Larger than [`MAX_CUSTOM_DATA_BYTES`] as compact JSON.
    #[error("custom data is larger than {MAX_CUSTOM_DATA_BYTES} bytes of JSON")]
    TooLarge,
}

/// Check custom user data against [`MAX_CUSTOM_DATA_DEPTH`] and
/// [`MAX_CUSTOM_DATA_BYTES`]. The depth is checked first, without recursion, so any
/// value (even one nested thousands of levels) is checked safely.
///
/// ```
/// use latchkey_protocol::claims::{check_custom_data, CustomDataError};
/// let ok = serde_json::json!({"plan": "pro", "tags": ["a", {"b": 1}]});
/// assert!(check_custom_data(ok.as_object().unwrap()).is_ok());
/// let mut deep = serde_json::json!(1);
/// for _ in 0..40 {
///     deep = serde_json::json!({ "a": deep });
/// }
/// assert_eq!(check_custom_data(deep.as_object().unwrap()), Err(CustomDataError::TooDeep));
/// let big = serde_json::json!({ "a": "x".repeat(5000) });
/// assert_eq!(check_custom_data(big.as_object().unwrap()), Err(CustomDataError::TooLarge));
/// ```
pub fn check_custom_data(data: &Map<String, Value>) -> Result<(), CustomDataError> {
    // Iterative: (value, depth) pairs still to look at; the object itself is level 1.
    let mut pending: Vec<(&Value, usize)> = data.values().map(|v| (v, 2)).collect();
    while let Some((value, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Object(m) => Box::new(m.values()),
            Value::Array(a) => Box::new(a.iter()),
            _ => continue,
        };
        if depth > MAX_CUSTOM_DATA_DEPTH {
            return Err(CustomDataError::TooDeep);
        }
        pending.extend(children.map(|v| (v, depth + 1)));
    }
    let mut counter = ByteCounter(0);
    serde_json::to_writer(&mut counter, data).map_err(|_| CustomDataError::TooLarge)?;
    if counter.0 > MAX_CUSTOM_DATA_BYTES {
        return Err(CustomDataError::TooLarge);
    }
    Ok(())
}

/// Counts the bytes written to it; stops the writer once past [`MAX_CUSTOM_DATA_BYTES`].
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        if self.0 > MAX_CUSTOM_DATA_BYTES {
            return Err(std::io::Error::other("custom data too large"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

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
    fn custom_data_bounds() {
        fn nested(levels: usize) -> Map<String, Value> {
            let mut v = Value::from(1);
            for _ in 1..levels {
                v = serde_json::json!({ "a": v });
            }
            match serde_json::json!({ "a": v }) {
                Value::Object(m) => m,
                _ => unreachable!(),
            }
        }
        // `nested(n)` is an object n levels deep (its innermost value is a number).
        assert_eq!(check_custom_data(&nested(MAX_CUSTOM_DATA_DEPTH)), Ok(()));
        assert_eq!(
            check_custom_data(&nested(MAX_CUSTOM_DATA_DEPTH + 1)),
            Err(CustomDataError::TooDeep)
        );
        assert_eq!(
            check_custom_data(&nested(127)),
            Err(CustomDataError::TooDeep)
        );
        // Arrays count as levels too.
        let mut v = Value::from(1);
        for _ in 0..MAX_CUSTOM_DATA_DEPTH {
            v = Value::Array(vec![v]);
        }
        let m: Map<String, Value> = [("a".to_owned(), v)].into_iter().collect();
        assert_eq!(check_custom_data(&m), Err(CustomDataError::TooDeep));
        let fits = "x".repeat(MAX_CUSTOM_DATA_BYTES - r#"{"a":""}"#.len());
        let m: Map<String, Value> = [("a".to_owned(), Value::from(fits.clone()))]
            .into_iter()
            .collect();
        assert_eq!(check_custom_data(&m), Ok(()));
        let m: Map<String, Value> = [("a".to_owned(), Value::from(fits + "x"))]
            .into_iter()
            .collect();
        assert_eq!(check_custom_data(&m), Err(CustomDataError::TooLarge));
    }

    #[test]
    fn the_deepest_custom_data_stays_readable_in_a_token() {
        let mut v = Value::from(1);
        for _ in 1..MAX_CUSTOM_DATA_DEPTH {
            v = serde_json::json!({ "a": v });
        }
        let claims =
            serde_json::json!({"sub":"u","exp":100,"iat":10,"typ":"access","user_data":{"a":v}});
        let c = AccessTokenClaims::decode_unverified(&token(&claims.to_string())).unwrap();
        assert_eq!(check_custom_data(c.user_data.as_ref().unwrap()), Ok(()));
    }

    #[test]
    fn refresh_claims() {
        let t = token(r#"{"sub":"u","exp":100,"iat":10,"typ":"refresh","baas_id":"s"}"#);
        let c = RefreshTokenClaims::decode_unverified(&t).unwrap();
        assert_eq!(c.typ, TokenType::Refresh);
        assert_eq!(c.baas_id.as_deref(), Some("s"));
    }
}
