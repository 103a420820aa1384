//! Sign-in to the web console: the admin token is exchanged for a signed, expiring
//! session value (the console's cookie) and a CSRF token bound to it.
//!
//! The session is stateless, so that any node accepts it: `EXP.NONCE.MAC`, where MAC is
//! an HMAC-SHA256 of `EXP.NONCE` under a key derived from the admin token (changing the
//! admin token ends every console session). The CSRF token is an HMAC of the nonce
//! under the same key, so a page's forms carry a value that only a signed-in browser
//! can know. Logging out deletes the cookie in the browser.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::admin;
use super::state::ServerState;
use crate::error::Error;
use crate::ids::random_secret;

type HmacSha256 = Hmac<Sha256>;

/// A signed-in console session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsoleSession {
    /// The cookie's value.
    pub(crate) cookie: String,
    /// The CSRF token every form of this session carries.
    pub(crate) csrf: String,
}

/// The key sessions are signed with, derived from the admin token; `None` when there
/// is no admin token or no console.
fn key(state: &ServerState) -> Option<[u8; 32]> {
    let token = state.admin_token.as_ref()?;
    let mut h = Sha256::new();
    h.update(b"latchkey-console-session\0");
    h.update(token.expose().as_bytes());
    Some(h.finalize().into())
}

fn mac(key: &[u8; 32], parts: &[&str]) -> String {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            m.update(b".");
        }
        m.update(p.as_bytes());
    }
    hex::encode(m.finalize().into_bytes())
}

/// Sign in with the admin token: a new session lasting `ttl_secs`.
pub(crate) fn sign_in(
    state: &ServerState,
    token: &str,
    ttl_secs: u64,
) -> Result<ConsoleSession, Error> {
    admin::authorize(state, Ok(token))?;
    let key = key(state).ok_or(Error::AdminDisabled)?;
    let exp = state
        .clock
        .now_secs()
        .saturating_add(i64::try_from(ttl_secs).unwrap_or(i64::MAX));
    let nonce = random_secret();
    let exp = exp.to_string();
    let signature = mac(&key, &[&exp, &nonce]);
    Ok(ConsoleSession {
        csrf: mac(&key, &["csrf", &nonce]),
        cookie: format!("{exp}.{nonce}.{signature}"),
    })
}

/// The session a cookie value names, if it is genuine and has not expired.
pub(crate) fn session(state: &ServerState, cookie: &str) -> Option<ConsoleSession> {
    let key = key(state)?;
    let mut parts = cookie.splitn(3, '.');
    let (exp, nonce, signature) = (parts.next()?, parts.next()?, parts.next()?);
    let expected = mac(&key, &[exp, nonce]);
    if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
        return None;
    }
    if exp.parse::<i64>().ok()? <= state.clock.now_secs() {
        return None;
    }
    Some(ConsoleSession {
        csrf: mac(&key, &["csrf", nonce]),
        cookie: cookie.to_owned(),
    })
}

/// Whether `token` is the CSRF token of `session` (constant time).
pub(crate) fn csrf_ok(session: &ConsoleSession, token: &str) -> bool {
    bool::from(session.csrf.as_bytes().ct_eq(token.as_bytes()))
}
