//! Retries of idempotent requests after transient failures, with exponential backoff and
//! jitter, and the server's `Retry-After`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, StatusCode, header};

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
/// A `429 Too Many Requests` or `503 Service Unavailable` answer with a `Retry-After`
/// header (seconds, or an HTTP date) is honoured: the retry waits at least that long. It is
/// bounded by [`max_retry_after`](Self::max_retry_after) (default 10 s): when the server
/// asks for more, the answer is returned at once (its error has
/// [`retry_after`](crate::Error::retry_after)) rather than holding the caller. A `429`
/// without `Retry-After` is not retried.
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
/// assert_eq!(RetryPolicy::default().max_retry_after(), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_retries: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// Two retries, starting at 200 ms, capped at 5 s; `Retry-After` honoured up to 10 s.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(10),
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

    /// The longest `Retry-After` honoured: a `429` or `503` asking for more is not retried.
    /// `Duration::ZERO` never waits for `Retry-After` (a `503` is then retried after the
    /// usual backoff only when it has no `Retry-After`).
    pub fn with_max_retry_after(mut self, d: Duration) -> Self {
        self.max_retry_after = d;
        self
    }

    /// The longest `Retry-After` honoured.
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
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

    /// How long to wait before retry `retry` (1-based) of a request **safe to retry** that
    /// was answered `status`, given the answer's `Retry-After` (see [`retry_after`]); `None`
    /// when it must not be retried.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::StatusCode;
    /// use latchkey_session::RetryPolicy;
    /// let p = RetryPolicy::default();
    /// let secs = |s| Some(Duration::from_secs(s));
    /// assert_eq!(p.delay_for(StatusCode::TOO_MANY_REQUESTS, secs(3), 1), secs(3));
    /// assert_eq!(p.delay_for(StatusCode::SERVICE_UNAVAILABLE, secs(4), 1), secs(4));
    /// assert_eq!(p.delay_for(StatusCode::TOO_MANY_REQUESTS, secs(60), 1), None);
    /// assert_eq!(p.delay_for(StatusCode::TOO_MANY_REQUESTS, None, 1), None);
    /// assert!(p.delay_for(StatusCode::BAD_GATEWAY, None, 1).is_some());
    /// assert_eq!(p.delay_for(StatusCode::NOT_FOUND, secs(1), 1), None);
    /// ```
    pub fn delay_for(
        &self,
        status: StatusCode,
        retry_after: Option<Duration>,
        retry: u32,
    ) -> Option<Duration> {
        let honoured = match (status, retry_after) {
            (StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE, Some(wait)) => {
                if wait > self.max_retry_after {
                    return None;
                }
                wait
            }
            (StatusCode::TOO_MANY_REQUESTS, None) => return None,
            _ if Self::is_transient_status(status) => Duration::ZERO,
            _ => return None,
        };
        Some(honoured.max(self.backoff(retry)))
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

/// The wait a `Retry-After` header asks for, at `now`: delay-seconds (`120`) or an HTTP
/// date (`Wed, 21 Oct 2015 07:28:00 GMT`; one in the past asks for no wait). `None` when
/// there is no such header or it cannot be read.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use http::{HeaderMap, HeaderValue};
/// use latchkey_session::retry_after;
/// let now = UNIX_EPOCH + Duration::from_secs(1_445_412_470);
/// let mut h = HeaderMap::new();
/// assert_eq!(retry_after(&h, now), None);
/// h.insert("retry-after", HeaderValue::from_static("120"));
/// assert_eq!(retry_after(&h, now), Some(Duration::from_secs(120)));
/// h.insert("retry-after", HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
/// assert_eq!(retry_after(&h, now), Some(Duration::from_secs(10)));
/// h.insert("retry-after", HeaderValue::from_static("soon"));
/// assert_eq!(retry_after(&h, now), None);
/// ```
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
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
