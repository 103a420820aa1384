//! Reading request bodies (Extended JSON) and bearer tokens.

use axum::extract::rejection::BytesRejection;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use latchkey_protocol::ejson;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Largest accepted request body.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// Parse a request body as (canonical or relaxed) Extended JSON into a plain JSON
/// object. An empty body is an empty object: realm-core sends `""` with a JSON
/// content type on body-less requests.
pub(crate) fn json_object(
    body: Result<Bytes, BytesRejection>,
) -> Result<Map<String, Value>, ApiError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large()
        } else {
            ApiError::bad_request("cannot read request body")
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_slice(&bytes)
        // serde_json's syntax errors name a position, never the content.
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    match ejson::to_plain(value) {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request("request body must be a JSON object")),
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::missing_auth());
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::invalid_session("invalid session: malformed Authorization header"))?
        .trim();
    if value.is_empty() {
        return Err(ApiError::missing_auth());
    }
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::invalid_session(
            "invalid session: expected a Bearer token",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::missing_auth());
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_protocol::ErrorCode;

    #[test]
    fn bodies() {
        assert!(json_object(Ok(Bytes::from_static(b""))).unwrap().is_empty());
        assert!(
            json_object(Ok(Bytes::from_static(b" \n")))
                .unwrap()
                .is_empty()
        );
        let m = json_object(Ok(Bytes::from_static(br#"{"a":{"$numberInt":"7"}}"#))).unwrap();
        assert_eq!(m["a"], 7);
        let e = json_object(Ok(Bytes::from_static(b"{nope"))).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(e.error_code(), &ErrorCode::BadRequest);
        assert!(json_object(Ok(Bytes::from_static(b"[1]"))).is_err());
    }

    #[test]
    fn bearer_tokens() {
        let mut h = HeaderMap::new();
        assert_eq!(
            bearer(&h).unwrap_err().error_code(),
            &ErrorCode::MissingAuthReq
        );
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h).unwrap(), "abc");
        h.insert(header::AUTHORIZATION, "bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&h).unwrap(), "abc");
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(
            bearer(&h).unwrap_err().error_code(),
            &ErrorCode::InvalidSession
        );
        h.insert(header::AUTHORIZATION, "Bearer".parse().unwrap());
        assert_eq!(
            bearer(&h).unwrap_err().error_code(),
            &ErrorCode::MissingAuthReq
        );
    }
}
