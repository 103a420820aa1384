//! Throttling, in memory (per process): FAILED logins, and the routes that send
//! confirmation / reset messages.
//!
//! Logins (every provider but `anon-user`):
//! - Per identifier and client (the email of `local-userpass`, whether it exists or
//!   not, so the lock reveals nothing; the client is its IPv4 address or IPv6 /64):
//!   after `max_failures_per_identifier` consecutive failures, a cool-down of
//!   `lockout_secs` for that pair, doubling at each further lockout (capped at 24 h).
//!   A successful login from that client resets the pair. An attacker cannot lock
//!   the owner out from the owner's own network.
//! - Per identifier across all clients: at most `max_failures_per_identifier_all_ips`
//!   failures per `identifier_window_secs` (higher; caps distributed guessing).
//! - Per client: at most `max_failures_per_ip` failures per `ip_window_secs`
//!   (generous, so many users behind one NAT are fine).
//!
//! Messages (`register`, `confirm/send`, `confirm/call`, `reset/send`, `reset/call`):
//! at most `max_messages_per_email` messages (emails or webhook calls) per email and
//! `max_messages_per_ip` requests per client per `message_window_secs`.
//!
//! A limited request is answered 429 `TooManyRequests` with `Retry-After` before
//! any credential is checked or message sent.
//!
//! Identifiers are stored as 128-bit hashes, so the memory per entry is fixed, and
//! every map is capped ([`MAX_ENTRIES`], oldest entry evicted first, O(1)); expired
//! entries are pruned at most once per [`PRUNE_EVERY_SECS`].

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::config::{Config, ThrottleConfig};
use crate::error::Error;

/// Longest cool-down.
const MAX_LOCKOUT_SECS: u64 = 24 * 3600;
/// Most entries of each map; above it the oldest entry is evicted.
pub(crate) const MAX_ENTRIES: usize = 100_000;
/// Expired entries are pruned at most this often (the pruning is O(entries)).
const PRUNE_EVERY_SECS: i64 = 60;

/// A hashed bucket key (an identifier, or an identifier and a client).
pub(crate) type Key = [u8; 16];

/// The bucket key of an identifier (`app`, `scope` such as a provider, value).
pub(crate) fn identifier_key(app: &str, scope: &str, identifier: &str) -> Key {
    let mut h = Sha256::new();
    for part in [app, scope, identifier] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    truncate(h.finalize().as_slice())
}

fn pair_key(id: &Key, ip: IpAddr) -> Key {
    let mut h = Sha256::new();
    h.update(id);
    match ip {
        IpAddr::V4(v4) => h.update(v4.octets()),
        IpAddr::V6(v6) => h.update(v6.octets()),
    }
    truncate(h.finalize().as_slice())
}

fn truncate(digest: &[u8]) -> Key {
    let mut k = [0u8; 16];
    k.copy_from_slice(&digest[..16]);
    k
}

/// The throttling key of a client address: IPv4 as is (also when IPv4-mapped),
/// IPv6 reduced to its /64 (one subscriber usually has a whole /64).
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

/// A map with a size cap: when full, the oldest inserted entry goes first (O(1)
/// amortized, through an insertion queue that may hold stale keys).
#[derive(Debug)]
struct Capped<K, V> {
    map: HashMap<K, (V, u64)>,
    order: VecDeque<(K, u64)>,
    seq: u64,
    cap: usize,
}

impl<K: Hash + Eq + Copy, V: Default> Capped<K, V> {
    fn new(cap: usize) -> Self {
        Capped {
            map: HashMap::new(),
            order: VecDeque::new(),
            seq: 0,
            cap,
        }
    }

    fn get(&self, k: &K) -> Option<&V> {
        self.map.get(k).map(|(v, _)| v)
    }

    fn get_or_default(&mut self, k: K) -> &mut V {
        if !self.map.contains_key(&k) {
            while self.map.len() >= self.cap {
                let Some((old, seq)) = self.order.pop_front() else {
                    break;
                };
                if self.map.get(&old).is_some_and(|(_, s)| *s == seq) {
                    self.map.remove(&old);
                }
            }
            // Stale queue items (removed keys) are dropped when they pile up.
            if self.order.len() > 2 * self.cap {
                let map = &self.map;
                self.order
                    .retain(|(k, s)| map.get(k).is_some_and(|(_, cur)| cur == s));
            }
        }
        match self.map.entry(k) {
            Entry::Occupied(e) => &mut e.into_mut().0,
            Entry::Vacant(e) => {
                self.seq += 1;
                self.order.push_back((k, self.seq));
                &mut e.insert((V::default(), self.seq)).0
            }
        }
    }

    fn remove(&mut self, k: &K) {
        self.map.remove(k);
    }

    fn retain(&mut self, mut keep: impl FnMut(&V) -> bool) {
        self.map.retain(|_, (v, _)| keep(v));
        let map = &self.map;
        self.order
            .retain(|(k, s)| map.get(k).is_some_and(|(_, cur)| cur == s));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Consecutive failures with doubling cool-downs.
#[derive(Debug, Default, Clone, Copy)]
struct Lock {
    failures: u32,
    lockouts: u32,
    locked_until: i64,
    last: i64,
}

/// A fixed window counter.
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    start: i64,
    count: u32,
}

impl Window {
    fn end(&self, window: i64) -> i64 {
        self.start.saturating_add(window)
    }

    /// Seconds to wait when `max` is reached in the current window.
    fn wait(&self, now: i64, window: i64, max: u32) -> i64 {
        if self.end(window) > now && self.count >= max {
            self.end(window) - now
        } else {
            0
        }
    }

    fn hit(&mut self, now: i64, window: i64) -> u32 {
        if self.end(window) <= now {
            *self = Window {
                start: now,
                count: 0,
            };
        }
        self.count = self.count.saturating_add(1);
        self.count
    }
}

#[derive(Debug)]
struct Inner {
    /// (identifier, client) lockouts.
    pairs: Capped<Key, Lock>,
    /// Identifier failures from all clients.
    ids: Capped<Key, Window>,
    /// Client login failures.
    ips: Capped<IpAddr, Window>,
    /// Messages per email.
    emails: Capped<Key, Window>,
    /// Message route requests per client.
    message_ips: Capped<IpAddr, Window>,
    next_prune: i64,
}

impl Inner {
    fn new(cap: usize) -> Self {
        Inner {
            pairs: Capped::new(cap),
            ids: Capped::new(cap),
            ips: Capped::new(cap),
            emails: Capped::new(cap),
            message_ips: Capped::new(cap),
            next_prune: 0,
        }
    }
}

/// A login attempt's throttling keys.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LoginKeys {
    id: Option<Key>,
    pair: Option<Key>,
    ip: Option<IpAddr>,
}

/// The limiter.
#[derive(Debug)]
pub(crate) struct Throttle {
    config: ThrottleConfig,
    trust_forwarded_for: bool,
    inner: Mutex<Inner>,
}

impl Throttle {
    pub(crate) fn new(config: &Config) -> Self {
        Throttle::with_cap(config, MAX_ENTRIES)
    }

    fn with_cap(config: &Config, cap: usize) -> Self {
        Throttle {
            config: config.throttle.clone(),
            trust_forwarded_for: config.trust_forwarded_for,
            inner: Mutex::new(Inner::new(cap)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The keys of a login with identifier `id` (see [`identifier_key`]) from `ip`.
    pub(crate) fn login_keys(&self, id: Option<Key>, ip: Option<IpAddr>) -> LoginKeys {
        let ip = ip.map(client_key);
        LoginKeys {
            id,
            pair: id.map(|id| match ip {
                Some(ip) => pair_key(&id, ip),
                None => id,
            }),
            ip,
        }
    }

    /// `Err(retry_after_secs)` when a new login attempt must be refused now.
    pub(crate) fn check_login(&self, keys: &LoginKeys, now: i64) -> Result<(), u64> {
        let inner = self.lock();
        let c = &self.config;
        let mut wait = 0i64;
        if let Some(s) = keys.pair.and_then(|k| inner.pairs.get(&k).copied())
            && s.locked_until > now
        {
            wait = wait.max(s.locked_until - now);
        }
        if let Some(s) = keys.id.and_then(|k| inner.ids.get(&k).copied()) {
            wait = wait.max(s.wait(
                now,
                secs(c.identifier_window_secs),
                c.max_failures_per_identifier_all_ips,
            ));
        }
        if let Some(s) = keys.ip.and_then(|ip| inner.ips.get(&ip).copied()) {
            wait = wait.max(s.wait(now, secs(c.ip_window_secs), c.max_failures_per_ip));
        }
        retry_after(wait)
    }

    /// Count a failed login.
    pub(crate) fn login_failure(&self, keys: &LoginKeys, now: i64) {
        let mut inner = self.lock();
        let c = &self.config;
        if let Some(k) = keys.pair {
            let s = inner.pairs.get_or_default(k);
            s.failures += 1;
            s.last = now;
            if s.failures >= c.max_failures_per_identifier {
                s.failures = 0;
                s.lockouts = s.lockouts.saturating_add(1);
                let factor = 1u64 << (s.lockouts - 1).min(16);
                let cool = c.lockout_secs.saturating_mul(factor).min(MAX_LOCKOUT_SECS);
                s.locked_until = now.saturating_add(secs(cool));
                tracing::warn!(
                    lockout_secs = cool,
                    "login identifier locked for one client after repeated failures"
                );
            }
        }
        if let Some(k) = keys.id {
            let n = inner
                .ids
                .get_or_default(k)
                .hit(now, secs(c.identifier_window_secs));
            if n == c.max_failures_per_identifier_all_ips {
                tracing::warn!(
                    "login identifier throttled after repeated failures from many clients"
                );
            }
        }
        if let Some(ip) = keys.ip {
            let n = inner
                .ips
                .get_or_default(ip)
                .hit(now, secs(c.ip_window_secs));
            if n == c.max_failures_per_ip {
                tracing::warn!(%ip, "client throttled after repeated login failures");
            }
        }
        self.maybe_prune(&mut inner, now);
    }

    /// A successful login resets its (identifier, client) pair.
    pub(crate) fn login_success(&self, keys: &LoginKeys) {
        if let Some(k) = keys.pair {
            self.lock().pairs.remove(&k);
        }
    }

    /// Check and count a request to a message route from `ip` for the email with key
    /// `email`. With `count_email` the request also counts as a message for the
    /// email (routes that always send one); else [`Throttle::message_sent`] counts
    /// it once a message is sent.
    pub(crate) fn message_attempt(
        &self,
        email: Option<&Key>,
        ip: Option<IpAddr>,
        count_email: bool,
        now: i64,
    ) -> Result<(), u64> {
        let mut inner = self.lock();
        let c = &self.config;
        let window = secs(c.message_window_secs);
        let ip = ip.map(client_key);
        let mut wait = 0i64;
        if let Some(s) = email.and_then(|k| inner.emails.get(k).copied()) {
            wait = wait.max(s.wait(now, window, c.max_messages_per_email));
        }
        if let Some(s) = ip.and_then(|ip| inner.message_ips.get(&ip).copied()) {
            wait = wait.max(s.wait(now, window, c.max_messages_per_ip));
        }
        if wait == 0 {
            if let Some(ip) = ip {
                inner.message_ips.get_or_default(ip).hit(now, window);
            }
            if count_email && let Some(k) = email {
                let n = inner.emails.get_or_default(*k).hit(now, window);
                if n == c.max_messages_per_email {
                    tracing::warn!("email throttled after repeated confirmation / reset requests");
                }
            }
        }
        self.maybe_prune(&mut inner, now);
        retry_after(wait)
    }

    /// Count a message (email or webhook call) for the email with key `email`.
    pub(crate) fn message_sent(&self, email: &Key, now: i64) {
        let mut inner = self.lock();
        let window = secs(self.config.message_window_secs);
        inner.emails.get_or_default(*email).hit(now, window);
    }

    fn maybe_prune(&self, inner: &mut Inner, now: i64) {
        if now < inner.next_prune {
            return;
        }
        inner.next_prune = now.saturating_add(PRUNE_EVERY_SECS);
        let c = &self.config;
        let stale = now - secs(MAX_LOCKOUT_SECS);
        inner
            .pairs
            .retain(|s| s.locked_until > now || s.last > stale);
        let live = |window: u64| move |s: &Window| s.end(secs(window)) > now;
        inner.ids.retain(live(c.identifier_window_secs));
        inner.ips.retain(live(c.ip_window_secs));
        inner.emails.retain(live(c.message_window_secs));
        inner.message_ips.retain(live(c.message_window_secs));
    }

    /// Whether the client address is the last `X-Forwarded-For` entry (behind a
    /// trusted reverse proxy) rather than the socket peer.
    pub(crate) fn trusts_forwarded_for(&self) -> bool {
        self.trust_forwarded_for
    }

    #[cfg(test)]
    fn sizes(&self) -> [usize; 5] {
        let i = self.lock();
        [
            i.pairs.len(),
            i.ids.len(),
            i.ips.len(),
            i.emails.len(),
            i.message_ips.len(),
        ]
    }
}

fn secs(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn retry_after(wait: i64) -> Result<(), u64> {
    if wait > 0 {
        Err(u64::try_from(wait).unwrap_or(1).max(1))
    } else {
        Ok(())
    }
}

/// The 429 answer of a refused login.
pub(crate) fn too_many_logins(retry_after: u64) -> Error {
    Error::too_many_requests(
        "too many failed login attempts; try again later",
        retry_after,
    )
}

/// The 429 answer of a refused message route request.
pub(crate) fn too_many_messages(retry_after: u64) -> Error {
    Error::too_many_requests(
        "too many confirmation or reset requests; try again later",
        retry_after,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(max_id: u32, max_ip: u32) -> Throttle {
        let mut c = Config::dev();
        c.throttle.max_failures_per_identifier = max_id;
        c.throttle.max_failures_per_ip = max_ip;
        Throttle::new(&c)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn identifier_lockout_doubles_and_resets() {
        let t = throttle(3, 1000);
        let a = t.login_keys(Some(identifier_key("x", "p", "a")), None);
        let b = t.login_keys(Some(identifier_key("x", "p", "b")), None);
        for _ in 0..2 {
            t.login_failure(&a, 100);
        }
        assert!(t.check_login(&a, 100).is_ok());
        t.login_failure(&a, 100);
        assert_eq!(t.check_login(&a, 100), Err(900));
        assert!(t.check_login(&b, 100).is_ok());
        assert!(t.check_login(&a, 1000).is_ok());
        for _ in 0..3 {
            t.login_failure(&a, 1000);
        }
        assert_eq!(t.check_login(&a, 1000), Err(1800));
        t.login_success(&a);
        assert!(t.check_login(&a, 1000).is_ok());
    }

    #[test]
    fn ip_window() {
        let t = throttle(1000, 2);
        let k = t.login_keys(None, ip("10.0.0.1"));
        t.login_failure(&k, 0);
        assert!(t.check_login(&k, 0).is_ok());
        t.login_failure(&k, 10);
        assert_eq!(t.check_login(&k, 10), Err(890));
        assert!(t.check_login(&k, 900).is_ok());
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(
            client_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_key("::ffff:10.1.2.3".parse().unwrap()),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
        let t = throttle(1000, 2);
        t.login_failure(&t.login_keys(None, ip("2001:db8:1:2::1")), 0);
        t.login_failure(
            &t.login_keys(None, ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            0,
        );
        // Another address of the same /64 is limited too; another /64 is not.
        assert!(
            t.check_login(&t.login_keys(None, ip("2001:db8:1:2:1234::9")), 0)
                .is_err()
        );
        assert!(
            t.check_login(&t.login_keys(None, ip("2001:db8:1:3::1")), 0)
                .is_ok()
        );
        assert_eq!(t.sizes()[2], 1);
    }

    #[test]
    fn pair_lockout_spares_other_clients_but_all_ips_cap_applies() {
        let mut c = Config::dev();
        c.throttle.max_failures_per_identifier = 3;
        c.throttle.max_failures_per_identifier_all_ips = 5;
        let t = Throttle::new(&c);
        let id = Some(identifier_key("x", "p", "victim"));
        let attacker = t.login_keys(id, ip("198.51.100.7"));
        let owner = t.login_keys(id, ip("203.0.113.1"));
        for _ in 0..3 {
            t.login_failure(&attacker, 0);
        }
        assert!(t.check_login(&attacker, 0).is_err());
        assert!(t.check_login(&owner, 0).is_ok());
        // Two more failures from other clients reach the all-clients cap.
        t.login_failure(&t.login_keys(id, ip("198.51.100.8")), 0);
        t.login_failure(&t.login_keys(id, ip("198.51.100.9")), 0);
        assert_eq!(t.check_login(&owner, 10), Err(890));
        assert!(t.check_login(&owner, 900).is_ok());
    }

    #[test]
    fn maps_are_capped_oldest_first() {
        let c = Config::dev();
        let t = Throttle::with_cap(&c, 3);
        let keys: Vec<_> = (0..5)
            .map(|i| t.login_keys(Some(identifier_key("x", "p", &i.to_string())), None))
            .collect();
        for k in &keys {
            t.login_failure(k, 0);
        }
        assert_eq!(t.sizes()[0], 3);
        let inner = t.lock();
        assert!(inner.pairs.get(&keys[0].pair.unwrap()).is_none());
        assert!(inner.pairs.get(&keys[4].pair.unwrap()).is_some());
    }

    #[test]
    fn expired_entries_are_pruned() {
        let t = throttle(1000, 1000);
        t.login_failure(&t.login_keys(None, ip("10.0.0.1")), 0);
        assert_eq!(t.sizes()[2], 1);
        t.login_failure(&t.login_keys(None, ip("10.0.0.2")), 10_000);
        assert_eq!(t.sizes()[2], 1);
    }

    #[test]
    fn message_limits() {
        let mut c = Config::dev();
        c.throttle.max_messages_per_email = 2;
        c.throttle.max_messages_per_ip = 4;
        let t = Throttle::new(&c);
        let e = identifier_key("x", "mail", "a@b.c");
        let f = identifier_key("x", "mail", "d@b.c");
        assert!(
            t.message_attempt(Some(&e), ip("10.0.0.1"), false, 0)
                .is_ok()
        );
        t.message_sent(&e, 0);
        assert!(t.message_attempt(Some(&e), ip("10.0.0.1"), true, 0).is_ok());
        assert_eq!(
            t.message_attempt(Some(&e), ip("10.0.0.2"), true, 5),
            Err(895)
        );
        assert!(t.message_attempt(Some(&f), ip("10.0.0.1"), true, 5).is_ok());
        assert!(t.message_attempt(Some(&f), ip("10.0.0.1"), true, 5).is_ok());
        assert!(
            t.message_attempt(Some(&f), ip("10.0.0.1"), true, 5)
                .is_err()
        );
        assert!(
            t.message_attempt(Some(&e), ip("10.0.0.1"), true, 900)
                .is_ok()
        );
    }
}
