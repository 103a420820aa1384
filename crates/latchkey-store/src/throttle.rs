//! Throttling kept in the store ([`Store::throttle_hit`](crate::Store::throttle_hit)): the
//! rules a bucket counts by, and what a hit decides.
//!
//! The server reserves an attempt **before** it checks the credentials: it hits the
//! buckets of the attempt (e.g. the email and client together, the email from all
//! clients, the client), and goes on only when every hit is allowed. An attempt that
//! turns out not to count is given back ([`Store::throttle_release`](crate::Store::throttle_release)),
//! a successful login clears its lockout bucket ([`Store::throttle_clear`](crate::Store::throttle_clear)).
//! Each hit is one atomic statement on the database, so concurrent attempts, on one node
//! or several, never get more than the limit through.

/// Largest number of seconds a rule takes (about 34,000 years): keeps the arithmetic of
/// the stored times far from overflowing.
const MAX_SECS: i64 = 1 << 40;

/// Lockouts double at most this many times (as the server's in-memory throttle did).
pub(crate) const MAX_DOUBLINGS: i64 = 16;

/// How a bucket counts its hits. A bucket is always hit with the same rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    pub(crate) limit: i64,
    pub(crate) kind: RuleKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuleKind {
    Window {
        window_secs: i64,
    },
    Lockout {
        lockout_secs: i64,
        max_lockout_secs: i64,
    },
}

impl ThrottleRule {
    /// At most `limit` hits in a window of `window_secs` seconds that opens at its first
    /// hit; once the limit is reached, hits are refused until the window ends. (A limit
    /// or window of 0 counts as 1.)
    ///
    /// ```
    /// // 12 failed logins per email from all clients per 15 minutes.
    /// let per_email = latchkey_store::ThrottleRule::window(12, 900);
    /// # let _ = per_email;
    /// ```
    pub fn window(limit: u32, window_secs: u64) -> ThrottleRule {
        ThrottleRule {
            limit: i64::from(limit.max(1)),
            kind: RuleKind::Window {
                window_secs: secs(window_secs),
            },
        }
    }

    /// At most `limit` consecutive hits: the `limit`-th locks the bucket for
    /// `lockout_secs`, and each further lockout doubles it (16 times at most), up to
    /// `max_lockout_secs`. After a lockout the count starts again; the lockouts are
    /// forgotten `max_lockout_secs` after the latest allowed hit or the end of the latest
    /// lockout, or when the bucket is cleared (a successful login). (Values of 0 count
    /// as 1.)
    ///
    /// ```
    /// // 5 failures for one email from one client, then 15 minutes, 30, 60, ... up to a day.
    /// let per_pair = latchkey_store::ThrottleRule::lockout(5, 900, 86_400);
    /// # let _ = per_pair;
    /// ```
    pub fn lockout(limit: u32, lockout_secs: u64, max_lockout_secs: u64) -> ThrottleRule {
        let max_lockout_secs = secs(max_lockout_secs);
        ThrottleRule {
            limit: i64::from(limit.max(1)),
            kind: RuleKind::Lockout {
                lockout_secs: secs(lockout_secs).min(max_lockout_secs),
                max_lockout_secs,
            },
        }
    }

    /// The number of hits allowed.
    pub fn limit(&self) -> u32 {
        u32::try_from(self.limit).unwrap_or(u32::MAX)
    }
}

/// Seconds as the store keeps them: at least 1, at most [`MAX_SECS`].
fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(MAX_SECS).clamp(1, MAX_SECS)
}

/// How long a hit of a bucket whose row holds `hits`, `expires_at` and `locked_until`
/// would be refused at `now` (`None`: it would be allowed), as the throttle statements
/// decide.
pub(crate) fn refused_for(
    rule: &ThrottleRule,
    hits: i64,
    expires_at: i64,
    locked_until: i64,
    now: i64,
) -> Option<u64> {
    let until = match rule.kind {
        RuleKind::Window { .. } if expires_at > now && hits >= rule.limit => expires_at,
        RuleKind::Lockout { .. } if locked_until > now => locked_until,
        _ => return None,
    };
    Some(u64::try_from((until - now).max(1)).unwrap_or(1))
}

/// What [`Store::throttle_hit`](crate::Store::throttle_hit) decided.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThrottleDecision {
    /// The hit is allowed, and counted.
    Allowed(ThrottleHit),
    /// The bucket is over its limit: the hit is refused and not counted.
    Limited {
        /// Seconds until a hit can be allowed again (at least 1), for `Retry-After`.
        retry_after_secs: u64,
    },
}

impl ThrottleDecision {
    /// Whether the hit was allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, ThrottleDecision::Allowed(_))
    }
}

/// An allowed hit: what [`Store::throttle_release`](crate::Store::throttle_release) needs
/// to give it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleHit {
    pub(crate) bucket: String,
    pub(crate) window_start: i64,
    pub(crate) count: i64,
    pub(crate) lockout_secs: Option<u64>,
}

impl ThrottleHit {
    /// The bucket hit.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The hit's number in its window (or since the latest lockout): 1 for the first.
    pub fn count(&self) -> u32 {
        u32::try_from(self.count).unwrap_or(u32::MAX)
    }

    /// For a [`ThrottleRule::lockout`] bucket: the lockout in seconds when this hit
    /// reached the limit and locked the bucket.
    pub fn lockout_secs(&self) -> Option<u64> {
        self.lockout_secs
    }
}

/// The row a throttle statement returns.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ThrottleRow {
    allowed: bool,
    hits: i64,
    window_start: i64,
    expires_at: i64,
    locked_until: i64,
}

impl ThrottleRow {
    /// The decision of the hit of `bucket` at `now` that returned this row.
    pub(crate) fn decision(self, bucket: &str, rule: &ThrottleRule, now: i64) -> ThrottleDecision {
        let refused_until = match rule.kind {
            RuleKind::Window { .. } => self.expires_at,
            RuleKind::Lockout { .. } => self.locked_until,
        };
        if !self.allowed {
            let wait = refused_until.saturating_sub(now).max(1);
            return ThrottleDecision::Limited {
                retry_after_secs: u64::try_from(wait).unwrap_or(1),
            };
        }
        let locked = matches!(rule.kind, RuleKind::Lockout { .. }) && self.locked_until > now;
        ThrottleDecision::Allowed(ThrottleHit {
            bucket: bucket.to_owned(),
            window_start: self.window_start,
            count: self.hits,
            lockout_secs: locked.then(|| u64::try_from(self.locked_until - now).unwrap_or(0)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_clamp_their_values() {
        let w = ThrottleRule::window(0, 0);
        assert_eq!(
            (w.limit(), w.kind),
            (1, RuleKind::Window { window_secs: 1 })
        );
        let l = ThrottleRule::lockout(3, 10_000, 600);
        assert_eq!(
            l.kind,
            RuleKind::Lockout {
                lockout_secs: 600,
                max_lockout_secs: 600
            }
        );
        let huge = ThrottleRule::window(u32::MAX, u64::MAX);
        assert_eq!(huge.limit(), u32::MAX);
        assert_eq!(
            huge.kind,
            RuleKind::Window {
                window_secs: MAX_SECS
            }
        );
    }
}
