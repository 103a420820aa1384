//! Fetching and caching JSON Web Key Sets (Google, Apple, custom-token `jwks_url`).
//!
//! * One cache entry per URL; a key set is used for its `Cache-Control: max-age`,
//!   bounded to [`MIN_MAX_AGE`]..[`MAX_MAX_AGE`] (default [`DEFAULT_MAX_AGE`]).
//! * A token naming an unknown `kid` makes one refetch (the provider rotated its keys),
//!   but such forced refetches happen at most once per [`REFETCH_COOLDOWN`] per URL, so
//!   tokens with made-up `kid`s cannot make the server hammer the provider.
//! * Fetches are single-flight per URL (concurrent logins wait for the one fetch).
//! * When the provider is unreachable, keys fetched less than `max-age +`
//!   [`STALE_GRACE`] ago are still used; after that, verification fails closed. After
//!   a failed fetch, no new fetch is tried for [`FAILURE_BACKOFF`].
//! * Only RSA signing keys (`kty: RSA`, `use` absent or `sig`, `alg` absent or
//!   `RS256`) with a `kid` are kept. The answer may be a JWK Set or a single JWK.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use serde_json::Value;

use crate::outbound::read_body;

/// Key-set lifetime when the answer has no usable `Cache-Control: max-age`.
pub(crate) const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);
/// Shortest honoured `max-age`.
pub(crate) const MIN_MAX_AGE: Duration = Duration::from_secs(300);
/// Longest honoured `max-age`.
pub(crate) const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Minimum time between two refetches forced by unknown `kid`s (per URL).
pub(crate) const REFETCH_COOLDOWN: Duration = Duration::from_secs(30);
/// How long expired keys may still be used while the provider is unreachable.
pub(crate) const STALE_GRACE: Duration = Duration::from_secs(3600);
/// No new fetch for this long after a failed one.
pub(crate) const FAILURE_BACKOFF: Duration = Duration::from_secs(5);
/// Per-request timeout of a JWKS fetch.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest accepted JWKS document.
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Longest accepted `kid`.
const MAX_KID_LEN: usize = 256;

/// Why no key was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JwksError {
    /// The key set could not be fetched (network error, timeout, non-2xx, bad JSON).
    Unreachable,
    /// The key set does not contain the token's `kid` (after the refetch, if allowed).
    UnknownKid,
}

/// The key sets of every configured URL.
#[derive(Debug, Default)]
pub(crate) struct JwksCache {
    entries: Mutex<HashMap<String, Arc<Entry>>>,
}

#[derive(Debug, Default)]
struct Entry {
    /// Held across a fetch: single flight.
    state: tokio::sync::Mutex<EntryState>,
}

#[derive(Debug, Default)]
struct EntryState {
    keys: Option<KeySet>,
    last_forced: Option<Instant>,
    last_failure: Option<Instant>,
}

#[derive(Debug)]
struct KeySet {
    keys: HashMap<String, DecodingKey>,
    fetched_at: Instant,
    max_age: Duration,
}

impl KeySet {
    fn fresh(&self, now: Instant) -> bool {
        now < self.fetched_at + self.max_age
    }

    fn usable_stale(&self, now: Instant) -> bool {
        now < self.fetched_at + self.max_age + STALE_GRACE
    }
}

impl JwksCache {
    fn entry(&self, url: &str) -> Arc<Entry> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.entry(url.to_owned()).or_default().clone()
    }

    /// The key named `kid` in the key set at `url`.
    pub(crate) async fn key(
        &self,
        http: &reqwest::Client,
        url: &str,
        kid: &str,
    ) -> Result<DecodingKey, JwksError> {
        if kid.is_empty() || kid.len() > MAX_KID_LEN {
            return Err(JwksError::UnknownKid);
        }
        let entry = self.entry(url);
        let mut st = entry.state.lock().await;
        let now = Instant::now();
        if let Some(set) = st.keys.as_ref().filter(|s| s.fresh(now)) {
            if let Some(key) = set.keys.get(kid) {
                return Ok(key.clone());
            }
            let may_refetch = st
                .last_forced
                .is_none_or(|t| now.duration_since(t) >= REFETCH_COOLDOWN);
            if !may_refetch {
                return Err(JwksError::UnknownKid);
            }
            st.last_forced = Some(now);
            tracing::debug!(url, "unknown kid: refetching the key set");
        }
        let backing_off = st
            .last_failure
            .is_some_and(|t| now.duration_since(t) < FAILURE_BACKOFF);
        let fetched = if backing_off {
            Err(JwksError::Unreachable)
        } else {
            fetch(http, url).await
        };
        match fetched {
            Ok(set) => {
                st.last_failure = None;
                let key = set.keys.get(kid).cloned();
                st.keys = Some(set);
                key.ok_or(JwksError::UnknownKid)
            }
            Err(e) => {
                if !backing_off {
                    st.last_failure = Some(now);
                }
                match st.keys.as_ref().filter(|s| s.usable_stale(now)) {
                    Some(set) => set.keys.get(kid).cloned().ok_or(JwksError::UnknownKid),
                    None => Err(e),
                }
            }
        }
    }
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<KeySet, JwksError> {
    let resp = http
        .get(url)
        .timeout(FETCH_TIMEOUT)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(url, error = %e.without_url(), "JWKS fetch failed");
            JwksError::Unreachable
        })?;
    let status = resp.status();
    if !status.is_success() {
        tracing::warn!(url, %status, "JWKS fetch failed");
        return Err(JwksError::Unreachable);
    }
    let max_age = resp
        .headers()
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(max_age)
        .map(|a| a.clamp(MIN_MAX_AGE, MAX_MAX_AGE))
        .unwrap_or(DEFAULT_MAX_AGE);
    let body = read_body(resp, MAX_JWKS_BYTES).await.map_err(|_| {
        tracing::warn!(url, "JWKS answer unreadable or too large");
        JwksError::Unreachable
    })?;
    let doc: Value = serde_json::from_slice(&body).map_err(|_| {
        tracing::warn!(url, "JWKS answer is not JSON");
        JwksError::Unreachable
    })?;
    let keys = parse_keys(&doc);
    if keys.is_empty() {
        tracing::warn!(url, "JWKS answer has no usable RSA signing key");
    }
    Ok(KeySet {
        keys,
        fetched_at: Instant::now(),
        max_age,
    })
}

/// `max-age=N` of a `Cache-Control` value (`no-cache`/`no-store` mean the minimum).
fn max_age(cache_control: &str) -> Option<Duration> {
    let mut result = None;
    for directive in cache_control.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            result = v
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    result
}

/// The usable RSA keys of a JWK Set (or of a single JWK), by `kid`.
fn parse_keys(doc: &Value) -> HashMap<String, DecodingKey> {
    let list: Vec<&Value> = match doc.get("keys") {
        Some(Value::Array(keys)) => keys.iter().collect(),
        Some(_) => Vec::new(),
        None => vec![doc],
    };
    let mut out = HashMap::new();
    for jwk in list {
        let s = |k: &str| jwk.get(k).and_then(Value::as_str);
        if s("kty") != Some("RSA")
            || !matches!(s("use"), None | Some("sig"))
            || !matches!(s("alg"), None | Some("RS256"))
        {
            continue;
        }
        let (Some(kid), Some(n), Some(e)) = (s("kid"), s("n"), s("e")) else {
            continue;
        };
        if kid.is_empty() || kid.len() > MAX_KID_LEN {
            continue;
        }
        if let Ok(key) = DecodingKey::from_rsa_components(n, e) {
            out.insert(kid.to_owned(), key);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control() {
        assert_eq!(
            max_age("public, max-age=19800, must-revalidate, no-transform"),
            Some(Duration::from_secs(19800))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
    }

    #[test]
    fn keys_are_filtered() {
        let doc = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "a", "use": "sig", "alg": "RS256", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "b", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "kid": "c", "x": "AQAB", "y": "AQAB"},
            {"kty": "RSA", "kid": "d", "alg": "RS512", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
        ]});
        let keys = parse_keys(&doc);
        assert_eq!(keys.len(), 1);
        assert!(keys.contains_key("a"));
        let single = serde_json::json!({"kty": "RSA", "kid": "x", "n": "AQAB", "e": "AQAB"});
        assert!(parse_keys(&single).contains_key("x"));
    }
}
