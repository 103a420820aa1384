//! The wall clock, injectable for tests.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// A source of the current wall-clock time.
///
/// The session layer reads it when a token is received (to compute the token's local expiry)
/// and when deciding whether to refresh. Tests inject a manual clock.
///
/// ```
/// use latchkey_session::{Clock, SystemClock};
/// let now = SystemClock.now();
/// assert!(now > std::time::UNIX_EPOCH);
/// ```
pub trait Clock: fmt::Debug + Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system clock ([`SystemTime::now`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A shared clock.
pub type SharedClock = Arc<dyn Clock>;
