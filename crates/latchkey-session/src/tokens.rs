//! The token cache of one user: the tokens as received, their local expiry, when to refresh,
//! and the single-flight gate that refreshes go through. No I/O: the refresh requests
//! themselves are in `refresh`.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use latchkey_protocol::{AccessTokenClaims, RefreshTokenClaims, Secret};

use crate::error::Error;

/// The longest access-token lifetime (`exp - iat`) the SDK accepts: one year
/// ([`latchkey_protocol::MAX_ACCESS_TOKEN_LIFETIME_SECS`], the bound the server's
/// configuration check enforces too). Longer (or non-positive) lifetimes are a
/// [`ErrorKind::Decode`](crate::ErrorKind::Decode) error.
pub const MAX_ACCESS_TOKEN_LIFETIME: Duration =
    Duration::from_secs(latchkey_protocol::MAX_ACCESS_TOKEN_LIFETIME_SECS);

/// How long before its local expiry a token is refreshed: 60 s, or 10% of the lifetime
/// for tokens shorter than 10 minutes; never more than half the lifetime, so a token just
/// received is never due for a refresh at once.
///
/// ```
/// use std::time::Duration;
/// use latchkey_session::refresh_buffer;
/// assert_eq!(refresh_buffer(Duration::from_secs(1800)), Duration::from_secs(60));
/// assert_eq!(refresh_buffer(Duration::from_secs(100)), Duration::from_secs(10));
/// assert!(refresh_buffer(Duration::from_secs(1)) <= Duration::from_millis(500));
/// ```
pub fn refresh_buffer(lifetime: Duration) -> Duration {
    let buffer = if lifetime >= Duration::from_secs(600) {
        Duration::from_secs(60)
    } else {
        lifetime / 10
    };
    buffer.min(lifetime / 2)
}

/// The claims of an access token (read, not verified: the server verifies).
pub(crate) fn decode_access(token: &Secret) -> Result<AccessTokenClaims, Error> {
    AccessTokenClaims::decode_unverified(token.expose())
        .map_err(|e| Error::decode(format!("received a malformed access token: {e}"), None))
}

fn validate_refresh_token(token: &Secret) -> Result<(), Error> {
    RefreshTokenClaims::decode_unverified(token.expose())
        .map(|_| ())
        .map_err(|e| Error::decode(format!("received a malformed refresh token: {e}"), None))
}

fn invalid_lifetime_error() -> Error {
    Error::decode("access token has an invalid lifetime", None)
}

/// `exp - iat` as a duration in `1 s ..= MAX_ACCESS_TOKEN_LIFETIME`, with checked arithmetic.
fn token_lifetime(exp: i64, iat: i64) -> Result<Duration, Error> {
    exp.checked_sub(iat)
        .filter(|&secs| secs > 0 && secs as u64 <= MAX_ACCESS_TOKEN_LIFETIME.as_secs())
        .map(|secs| Duration::from_secs(secs as u64))
        .ok_or_else(invalid_lifetime_error)
}

/// Tokens just received.
pub(crate) struct TokenSet {
    access: Secret,
    refresh: Option<Secret>,
    expires_at: SystemTime,
    lifetime: Duration,
}

impl TokenSet {
    /// Validate both tokens of a login response; the expiry is computed from the access
    /// token's own `exp - iat`, counted from the local clock at receipt.
    pub(crate) fn from_login(
        access: Secret,
        refresh: Secret,
        now: SystemTime,
    ) -> Result<Self, Error> {
        validate_refresh_token(&refresh)?;
        let mut t = Self::access_only(access, now)?;
        t.refresh = Some(refresh);
        Ok(t)
    }

    /// Validate an access token; its lifetime `exp - iat` must be in
    /// `1 s ..= MAX_ACCESS_TOKEN_LIFETIME`, else a decode error (no panic, whatever the
    /// claims say).
    pub(crate) fn access_only(access: Secret, now: SystemTime) -> Result<Self, Error> {
        let claims = decode_access(&access)?;
        let lifetime = token_lifetime(claims.exp, claims.iat)?;
        let expires_at = now
            .checked_add(lifetime)
            .ok_or_else(invalid_lifetime_error)?;
        Ok(TokenSet {
            access,
            refresh: None,
            expires_at,
            lifetime,
        })
    }

    /// Restore stored tokens: the stored expiry and lifetime win when they are sane (the
    /// expiry capped at now + the token's own, already validated, lifetime); else the
    /// token's.
    pub(crate) fn restore(
        access: Secret,
        refresh: Secret,
        now: SystemTime,
        expires_at_ms: Option<i64>,
        lifetime_secs: Option<i64>,
    ) -> Result<Self, Error> {
        let mut t = Self::from_login(access, refresh, now)?;
        if let Some(at) = expires_at_ms.and_then(from_ms) {
            t.expires_at = at.min(t.expires_at);
        }
        if let Some(l) = lifetime_secs.and_then(|l| token_lifetime(l, 0).ok()) {
            t.lifetime = l;
        }
        Ok(t)
    }

    /// The access token.
    pub(crate) fn access(&self) -> &Secret {
        &self.access
    }
}

/// What a caller needs to decide whether to refresh before using the access token.
pub(crate) struct Snapshot {
    /// The access token.
    pub(crate) token: Secret,
    /// The cache generation the token belongs to.
    pub(crate) generation: u64,
    /// `now >= local expiry - buffer`.
    pub(crate) needs_refresh: bool,
    /// `now >= local expiry`.
    pub(crate) expired: bool,
}

/// The tokens of one user, with their local expiry. Every change bumps a generation
/// counter, so a caller can tell whether the tokens changed since it looked.
#[derive(Clone, Default)]
pub(crate) struct TokenCache {
    access: Option<Secret>,
    refresh: Option<Secret>,
    expires_at: Option<SystemTime>,
    lifetime: Option<Duration>,
    generation: u64,
}

impl TokenCache {
    /// Store tokens just received (a set without a refresh token keeps the current one).
    pub(crate) fn set(&mut self, t: TokenSet) {
        self.access = Some(t.access);
        if let Some(r) = t.refresh {
            self.refresh = Some(r);
        }
        self.expires_at = Some(t.expires_at);
        self.lifetime = Some(t.lifetime);
        self.generation += 1;
    }

    /// Forget every token.
    pub(crate) fn clear(&mut self) {
        self.access = None;
        self.refresh = None;
        self.expires_at = None;
        self.lifetime = None;
        self.generation += 1;
    }

    /// The access token.
    pub(crate) fn access(&self) -> Option<&Secret> {
        self.access.as_ref()
    }

    /// The refresh token.
    pub(crate) fn refresh(&self) -> Option<&Secret> {
        self.refresh.as_ref()
    }

    /// The local expiry of the access token.
    pub(crate) fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// The access token's lifetime, `exp - iat`.
    pub(crate) fn lifetime(&self) -> Option<Duration> {
        self.lifetime
    }

    /// The generation: bumped by every [`set`](Self::set) and [`clear`](Self::clear).
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The access token and whether it is due for a refresh at `now`.
    pub(crate) fn snapshot(&self, now: SystemTime) -> Option<Snapshot> {
        let token = self.access.clone()?;
        let expires_at = self.expires_at.unwrap_or(now);
        let buffer = refresh_buffer(self.lifetime.unwrap_or_default());
        let refresh_at = expires_at.checked_sub(buffer).unwrap_or(expires_at);
        Some(Snapshot {
            token,
            generation: self.generation,
            needs_refresh: now >= refresh_at,
            expired: now >= expires_at,
        })
    }
}

/// The single-flight gate of one user's refreshes: any number of concurrent callers share
/// one refresh and its result.
#[derive(Default)]
pub(crate) struct RefreshGate {
    /// Held while refreshing; keeps the last result for the callers that waited.
    last: tokio::sync::Mutex<Option<Result<(), Error>>>,
    /// Completed refreshes.
    completed: AtomicU64,
}

impl RefreshGate {
    /// Run `refresh` unless a refresh completed while this caller waited for the gate (its
    /// result is returned instead) or `up_to_date()` says no refresh is needed any more.
    pub(crate) async fn run<F>(
        &self,
        up_to_date: impl FnOnce() -> bool,
        refresh: impl FnOnce() -> F,
    ) -> Result<(), Error>
    where
        F: Future<Output = Result<(), Error>>,
    {
        let seen = self.completed.load(Ordering::SeqCst);
        let mut last = self.last.lock().await;
        if self.completed.load(Ordering::SeqCst) != seen
            && let Some(result) = last.as_ref()
        {
            return result.clone();
        }
        if up_to_date() {
            return Ok(());
        }
        let result = refresh().await;
        *last = Some(result.clone());
        self.completed.fetch_add(1, Ordering::SeqCst);
        result
    }
}

/// Unix milliseconds, saturating (never panics, whatever the time).
pub(crate) fn to_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

fn from_ms(ms: i64) -> Option<SystemTime> {
    if ms >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_millis(ms as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_millis(ms.unsigned_abs()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millisecond_conversions_never_panic() {
        for ms in [
            i64::MIN,
            i64::MIN + 1,
            -1,
            0,
            1,
            1_700_000_000_000,
            i64::MAX,
        ] {
            if let Some(t) = from_ms(ms) {
                assert_eq!(to_ms(t), ms);
            }
        }
        assert_eq!(to_ms(UNIX_EPOCH), 0);
    }
}
