//! The bodies of latchkey's fuzz targets, one function per decoder that reads bytes from
//! outside. Each must return normally for every input: a panic (or an abort, a stack
//! overflow, a hang) is the bug libFuzzer reports.
//!
//! `fuzz_targets/<name>.rs` calls `<name>`; the workspace test `fuzz_corpora`
//! (tests/fuzz_corpora) compiles this file as a module and replays `fuzz/seeds/<name>/`
//! and `fuzz/regressions/<name>/` through the same functions, so CI runs the committed
//! inputs without cargo-fuzz.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use latchkey_protocol::{AccessTokenClaims, RefreshTokenClaims, ejson};
use latchkey_server::tokens::{KeyRing, UnverifiedToken};
use serde_json::Value;
use sha2::Sha256;

/// The body of one fuzz target.
pub type Target = fn(&[u8]);

/// Every target, by name (the `fuzz_targets/` file names and the seed directories).
pub const TARGETS: &[(&str, Target)] = &[
    ("ejson", ejson),
    ("request_body", request_body),
    ("client_token", client_token),
    ("server_token", server_token),
    ("error_body", error_body),
    ("server_config", server_config),
    ("user_file", user_file),
];

/// The HS256 secret of [`server_token`]'s keys.
pub const SERVER_SECRET: &[u8] = b"fuzz-signing-secret-0123456789abcdef";

/// Extended JSON (`latchkey_protocol::ejson`): any JSON document both ways. Converting
/// canonical Extended JSON back to plain JSON gives the original back for documents made
/// of strings, booleans, nulls, 32-bit integers, arrays and objects without `$` keys.
pub fn ejson(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let plain = ejson::to_plain(value.clone());
    let _ = ejson::to_canonical(plain);
    let canonical = ejson::to_canonical(value.clone());
    if round_trips(&value) {
        assert_eq!(
            ejson::to_plain(canonical),
            value,
            "canonical -> plain changed"
        );
    }
}

/// Whether `v` holds only values whose canonical Extended JSON form converts back exactly.
fn round_trips(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
        Value::Array(items) => items.iter().all(round_trips),
        Value::Object(map) => map
            .iter()
            .all(|(k, v)| !k.starts_with('$') && round_trips(v)),
        _ => true,
    }
}

/// The server's request body decoding (every JSON client route): any bytes give an object
/// or a 400 error, never a panic.
pub fn request_body(data: &[u8]) {
    if let Err(e) = latchkey_server::fuzzing::request_body(data) {
        let _ = format!("{e} {e:?}");
    }
}

/// Token text from fuzz input: odd first byte = structured (header JSON, claims JSON,
/// separated by a NUL, base64url-encoded and signed with `key` when given, else given a
/// fixed signature); even = the raw text after the first byte.
fn tokens_from(data: &[u8], key: Option<&[u8]>) -> Vec<String> {
    let Some((&mode, rest)) = data.split_first() else {
        return vec![String::new()];
    };
    if mode & 1 == 0 {
        return String::from_utf8_lossy(rest)
            .split('\n')
            .map(str::to_owned)
            .collect();
    }
    let parts: Vec<&[u8]> = rest.split(|&b| b == 0).collect();
    parts
        .chunks(2)
        .map(|pair| {
            let header = pair.first().copied().unwrap_or(br#"{"alg":"HS256"}"#);
            let claims = pair.get(1).copied().unwrap_or(b"{}");
            let signing_input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(claims)
            );
            let signature = match key {
                Some(key) => {
                    let mut mac =
                        Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
                    mac.update(signing_input.as_bytes());
                    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
                }
                None => "c2lnbmF0dXJl".to_owned(),
            };
            format!("{signing_input}.{signature}")
        })
        .collect()
}

/// The SDK's reading of the tokens it receives (`latchkey_protocol` claims, unverified,
/// and the session's lifetime checks): typed errors, never a panic.
pub fn client_token(data: &[u8]) {
    let tokens = tokens_from(data, None);
    let access = tokens.first().map(String::as_str).unwrap_or("");
    let refresh = tokens.get(1).map(String::as_str).unwrap_or(access);
    let _ = AccessTokenClaims::decode_unverified(access);
    let _ = RefreshTokenClaims::decode_unverified(refresh);
    if let Err(e) = latchkey_session::fuzzing::token_pair(access, refresh) {
        let _ = format!("{e} {e:?}");
    }
}

/// The server's token verification (`latchkey_server::tokens`), with tokens signed by its
/// own key in structured mode so that the claim checks are reached. Only HS256 tokens
/// with integer `exp`/`iat` and the right `typ` may pass.
pub fn server_token(data: &[u8]) {
    let keys = KeyRing::new(SERVER_SECRET).expect("a valid secret");
    for token in tokens_from(data, Some(SERVER_SECRET)) {
        // The token read once (the app it names, then verified from the same bytes)
        // must decide exactly as the token read from its text.
        if let Ok(parsed) = UnverifiedToken::parse(&token) {
            let _ = parsed.domain();
            assert_eq!(
                keys.verify_access_parsed(&parsed, 1_700_000_000),
                keys.verify_access(&token, 1_700_000_000)
            );
            assert_eq!(
                keys.verify_refresh_parsed(&parsed, 1_700_000_000),
                keys.verify_refresh(&token, 1_700_000_000)
            );
        }
        if let Ok(claims) = keys.verify_access(&token, 1_700_000_000) {
            assert!(claims.exp > 1_700_000_000, "an expired access token passed");
            assert!(
                keys.verify_refresh(&token, 1_700_000_000).is_err(),
                "a token passed as both access and refresh"
            );
        }
        if let Ok(claims) = keys.verify_refresh(&token, 1_700_000_000) {
            assert!(
                claims.exp > 1_700_000_000,
                "an expired refresh token passed"
            );
        }
    }
}

/// The SDK's reading of error replies: byte 0 picks the status, byte 1 the content
/// type; the rest is `Retry-After` value, NUL, body (or just the body).
pub fn error_body(data: &[u8]) {
    const TYPES: [&[u8]; 6] = [
        b"application/json",
        b"application/json; charset=utf-8",
        b"APPLICATION/JSON ",
        b"text/plain",
        b"text/html",
        b"",
    ];
    let status = u16::from(data.first().copied().unwrap_or(0));
    let content_type = TYPES[usize::from(data.get(1).copied().unwrap_or(0)) % TYPES.len()];
    let rest = data.get(2..).unwrap_or_default();
    let (retry_after, body) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&b""[..], rest),
    };
    let err = latchkey_session::fuzzing::error_response(status, content_type, retry_after, body);
    assert!(err.status().is_some_and(|s| s.as_u16() >= 400), "{err:?}");
}

/// The server's configuration file parser (TOML, then validation).
pub fn server_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match latchkey_server::Config::from_toml_str(text) {
        Ok(config) => assert!(config.validate().is_ok(), "validation is not stable"),
        Err(e) => {
            let _ = format!("{e} {e:?}");
        }
    }
}

/// The SDK's user store file (the JSON document of `FileStore`), decoded and restored.
pub fn user_file(data: &[u8]) {
    let _ = latchkey_session::fuzzing::user_file(data);
}
