//! Retries of idempotent requests after transient failures, with exponential backoff and
//! jitter.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use http::{Method, StatusCode};

/// When and how often a failed **idempotent** request is sent again.
///
/// Only requests that are safe to repeat are retried: `GET` (location, profile, API key
/// reads) and `PUT` (API key enable/disable). Logins, registrations, resets, refreshes,
/// logouts and deletions (`POST`, `DELETE`) are never retried, because the first attempt
/// may have reached the server.
///
/// A failure is transient when no response arrived because of a connect, I/O or timeout
/// error, or when the server answered `502`, `503` or `504`. The delay before retry `n`
/// (1-based) is `min(max_backoff, initial_backoff * 2^(n-1))`, of which the upper half is
/// random ("equal jitter"): delays grow with each retry and concurrent clients spread out.
///
/// ```
/// use std::time::Duration;
/// use latchkey_session::RetryPolicy;
///
/// let p = RetryPolicy::default();
/// assert_eq!(p.max_retries(), 2);
/// let p = RetryPolicy::new()
///     .with_max_retries(4)
///     .with_initial_backoff(Duration::from_millis(50))
///     .with_max_backoff(Duration::from_secs(1));
/// let (lo, hi) = p.backoff_bounds(3);
/// assert_eq!((lo, hi), (Duration::from_millis(100), Duration::from_millis(200)));
/// assert_eq!(RetryPolicy::none().max_retries(), 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Two retries, starting at 200 ms, capped at 5 s.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The default policy: two retries, backoff from 200 ms, capped at 5 s.
    pub fn new() -> Self {
        Self::default()
    }

    /// Never retry.
    pub fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// Retry at most `n` times (so at most `n + 1` attempts).
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// The base delay before the first retry.
    pub fn with_initial_backoff(mut self, d: Duration) -> Self {
        self.initial_backoff = d;
        self
    }

    /// The largest delay between two attempts.
    pub fn with_max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }

    /// The maximum number of retries.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The base delay before the first retry.
    pub fn initial_backoff(&self) -> Duration {
        self.initial_backoff
    }

    /// The largest delay between two attempts.
    pub fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// The range `[low, high]` of the delay before retry `retry` (1-based).
    pub fn backoff_bounds(&self, retry: u32) -> (Duration, Duration) {
        let exp = retry.saturating_sub(1).min(30);
        let full = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        (full / 2, full)
    }

    /// A random delay within [`backoff_bounds`](Self::backoff_bounds) for retry `retry`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let (lo, hi) = self.backoff_bounds(retry);
        let span = (hi - lo).as_nanos() as u64;
        if span == 0 {
            return lo;
        }
        lo + Duration::from_nanos(random_u64() % (span + 1))
    }

    /// Whether requests with `method` may be retried at all.
    pub fn is_idempotent(method: &Method) -> bool {
        matches!(
            *method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT
        )
    }

    /// Whether an answer with `status` is a transient server failure (502, 503, 504).
    pub fn is_transient_status(status: StatusCode) -> bool {
        matches!(
            status,
            StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
        )
    }
}

/// Non-cryptographic randomness for jitter (std's randomly keyed SipHash).
fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default(),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::new()
            .with_initial_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_millis(350));
        assert_eq!(
            p.backoff_bounds(1),
            (Duration::from_millis(50), Duration::from_millis(100))
        );
        assert_eq!(
            p.backoff_bounds(2),
            (Duration::from_millis(100), Duration::from_millis(200))
        );
        assert_eq!(
            p.backoff_bounds(3),
            (Duration::from_millis(175), Duration::from_millis(350))
        );
        assert_eq!(p.backoff_bounds(40), p.backoff_bounds(3));
        for retry in 1..6 {
            let (lo, hi) = p.backoff_bounds(retry);
            for _ in 0..50 {
                let d = p.backoff(retry);
                assert!(d >= lo && d <= hi, "{d:?} not in [{lo:?}, {hi:?}]");
            }
        }
    }

    #[test]
    fn jitter_varies() {
        let p = RetryPolicy::new().with_initial_backoff(Duration::from_secs(1));
        let samples: std::collections::HashSet<Duration> = (0..20).map(|_| p.backoff(1)).collect();
        assert!(samples.len() > 1, "jitter must vary: {samples:?}");
    }

    #[test]
    fn only_safe_methods_and_gateway_statuses() {
        assert!(RetryPolicy::is_idempotent(&Method::GET));
        assert!(RetryPolicy::is_idempotent(&Method::PUT));
        assert!(!RetryPolicy::is_idempotent(&Method::POST));
        assert!(!RetryPolicy::is_idempotent(&Method::DELETE));
        for s in [502, 503, 504] {
            assert!(RetryPolicy::is_transient_status(
                StatusCode::from_u16(s).unwrap()
            ));
        }
        for s in [200, 400, 401, 404, 429, 500] {
            assert!(!RetryPolicy::is_transient_status(
                StatusCode::from_u16(s).unwrap()
            ));
        }
    }
}
