//! Entry points for the fuzz targets (`fuzz/`) and their corpus replay test: the
//! decoders that read bytes from outside (tokens from the server, error bodies, the user
//! store file), reachable without a network or a disk. Not part of the API.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use latchkey_protocol::Secret;

use crate::error::Error;
use crate::record::UserData;
use crate::store::StoredUsers;
use crate::tokens::TokenSet;

/// A token pair as received from a login or refresh: both are decoded and validated the
/// way a login response's are. `Err` is the typed error the SDK would return.
pub fn token_pair(access: &str, refresh: &str) -> Result<(), Error> {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    TokenSet::access_only(Secret::new(access), now)?;
    TokenSet::from_login(Secret::new(access), Secret::new(refresh), now).map(|_| ())
}

/// A non-2xx reply with `status` (mapped into 400..=599), `content_type`, `retry_after`
/// and `body`, turned into the SDK's error as the SDK does for every server reply. The
/// error is rendered with `Display` and `Debug`, which must not panic either.
pub fn error_response(status: u16, content_type: &[u8], retry_after: &[u8], body: &[u8]) -> Error {
    let status = StatusCode::from_u16(400 + status % 200).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = http::Response::new(Bytes::copy_from_slice(body));
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_bytes(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_bytes(retry_after) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    let err = crate::wire::server_error(&resp);
    let _ = format!("{err} {err:?} {:?}", err.raw_body());
    err
}

/// The contents of a user store file (`FileStore`'s JSON document), decoded as the file
/// store decodes it and restored as the SDK restores users at start. Returns how many
/// users came back logged in; `Err` for a document that is not a user store.
pub fn user_file(bytes: &[u8]) -> Result<usize, serde_json::Error> {
    let doc: StoredUsers = serde_json::from_slice(bytes)?;
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    Ok(doc
        .users
        .into_iter()
        .map(|su| UserData::from_stored(su, now))
        .filter(|d| d.state == crate::profile::UserState::LoggedIn)
        .count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn malformed_tokens_are_decode_errors() {
        for (access, refresh) in [("", ""), ("a.b.c", "a.b.c"), ("..", "x")] {
            let err = token_pair(access, refresh).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Decode, "{err:?}");
        }
    }

    #[test]
    fn error_replies_keep_their_status_and_never_show_a_token() {
        let err = error_response(
            1,
            b"application/json",
            b"",
            br#"{"error":"invalid session","error_code":"InvalidSession"}"#,
        );
        assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
        assert_eq!(
            err.error_code(),
            Some(latchkey_protocol::ErrorCode::InvalidSession)
        );
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJlc2lnbmF0dXJl";
        let err = error_response(
            102,
            b"text/html",
            b"120",
            format!("<p>{jwt}</p>").as_bytes(),
        );
        assert_eq!(err.status(), Some(StatusCode::BAD_GATEWAY));
        assert!(!format!("{err} {err:?}").contains(jwt), "{err:?}");
    }

    #[test]
    fn user_files_restore_only_users_with_sane_tokens() {
        assert!(user_file(b"{").is_err());
        assert_eq!(user_file(b"{}").unwrap(), 0);
        let doc =
            br#"{"users":[{"id":"a","state":"LoggedIn","access_token":"x","refresh_token":"y"}]}"#;
        assert_eq!(
            user_file(doc).unwrap(),
            0,
            "malformed tokens read as logged out"
        );
    }
}
