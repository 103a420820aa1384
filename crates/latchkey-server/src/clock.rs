//! The server's clock: system time plus an adjustable offset.
//!
//! Every token issue and check reads the time through a [`Clock`], so a test can
//! expire tokens on the server without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// System time shifted by a shared offset.
///
/// Clones share the offset: advancing one clone advances them all, including the
/// one inside a running server.
///
/// ```
/// use std::time::Duration;
/// use latchkey_server::Clock;
///
/// let clock = Clock::system();
/// let handle = clock.clone();
/// let before = clock.now_secs();
/// handle.advance(Duration::from_secs(3600));
/// assert!(clock.now_secs() >= before + 3600);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_secs: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock with no offset.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Unix time in whole seconds, offset included.
    pub fn now_secs(&self) -> i64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        system.saturating_add(self.offset_secs.load(Ordering::SeqCst))
    }

    /// Move this clock (and every clone of it) forward by `by`, rounded down to seconds.
    pub fn advance(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        // fetch_update so that the offset saturates instead of wrapping.
        let _ = self
            .offset_secs
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| {
                Some(cur.saturating_add(secs))
            });
    }

    /// The current offset from system time, in seconds.
    pub fn offset_secs(&self) -> i64 {
        self.offset_secs.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_offset() {
        let a = Clock::system();
        let b = a.clone();
        b.advance(Duration::from_secs(90));
        assert_eq!(a.offset_secs(), 90);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!((a.now_secs() - now - 90).abs() <= 1);
    }

    #[test]
    fn offset_saturates() {
        let c = Clock::system();
        c.advance(Duration::from_secs(u64::MAX));
        c.advance(Duration::from_secs(u64::MAX));
        assert_eq!(c.offset_secs(), i64::MAX);
    }
}
