//! Throttling of FAILED logins and of the routes that send confirmation / reset
//! messages, kept in the store (`Store::throttle_hit`), so that every node of a
//! cluster shares the counts and a restart keeps them.
//!
//! Logins (every provider but `anon-user`) count in three buckets:
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
//! An attempt is **reserved before** its credentials are checked: each bucket is hit
//! (one atomic statement each), and when one refuses, the hits already taken are given
//! back and the request is answered 429 `TooManyRequests` with `Retry-After`. So any
//! number of concurrent attempts, on one node or several, never get more than the limit
//! through to the password check. After the check, a success clears the pair and gives
//! back the other hits; a rejected credential keeps them; any other outcome (a bad
//! request, a database failure) gives them all back.
//!
//! Messages (`register`, `confirm/send`, `confirm/call`, `reset/send`, `reset/call`):
//! at most `max_messages_per_email` messages (emails or webhook calls) per email and
//! `max_messages_per_ip` requests per client per `message_window_secs`.
//!
//! Bucket names hold 128-bit hashes of the identifiers and addresses, never the values.
//! Stale buckets are deleted by the housekeeping task (`Store::purge_throttle`).

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use crate::config::{Config, ThrottleConfig};
use crate::error::Error;
use crate::store::{Store, ThrottleDecision, ThrottleHit, ThrottleRule};

/// Longest cool-down.
const MAX_LOCKOUT_SECS: u64 = 24 * 3600;

/// A hashed identifier (an app, a scope such as a provider, and a value).
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

fn ip_key(ip: IpAddr) -> Key {
    let mut h = Sha256::new();
    h.update(b"client");
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

/// The name of a bucket in the store: its kind and its hashed key.
fn bucket(kind: &str, key: &Key) -> String {
    format!("{kind}:{}", hex::encode(key))
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

/// A login attempt's buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LoginKeys {
    /// (identifier, client): lockouts.
    pair: Option<String>,
    /// Identifier from all clients: a window.
    id: Option<String>,
    /// Client: a window.
    ip: Option<String>,
}

/// The hits a login attempt took: what its outcome gives back or keeps.
#[derive(Debug)]
#[must_use = "a reservation is settled with Throttle::settle_login"]
pub(crate) struct LoginReservation {
    pair: Option<ThrottleHit>,
    others: Vec<ThrottleHit>,
}

/// What a login attempt turned out to be, for [`Throttle::settle_login`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginOutcome {
    /// Logged in: the pair is cleared, the other hits given back.
    Success,
    /// A rejected credential: every hit counts.
    Failure,
    /// Anything else (a bad request, a server failure): nothing counts.
    NotCounted,
}

/// The limiter: rules from the configuration, counts in the store.
#[derive(Debug)]
pub(crate) struct Throttle {
    config: ThrottleConfig,
    trust_forwarded_for: bool,
}

impl Throttle {
    pub(crate) fn new(config: &Config) -> Self {
        Throttle {
            config: config.throttle.clone(),
            trust_forwarded_for: config.trust_forwarded_for,
        }
    }

    /// The buckets of a login with identifier `id` (see [`identifier_key`]) from `ip`.
    pub(crate) fn login_keys(&self, id: Option<Key>, ip: Option<IpAddr>) -> LoginKeys {
        let ip = ip.map(client_key);
        LoginKeys {
            pair: id.map(|id| match ip {
                Some(ip) => bucket("login-pair", &pair_key(&id, ip)),
                None => bucket("login-pair", &id),
            }),
            id: id.map(|id| bucket("login-id", &id)),
            ip: ip.map(|ip| bucket("login-ip", &ip_key(ip))),
        }
    }

    fn pair_rule(&self) -> ThrottleRule {
        let c = &self.config;
        ThrottleRule::lockout(
            c.max_failures_per_identifier,
            c.lockout_secs,
            MAX_LOCKOUT_SECS,
        )
    }

    /// Reserve a login attempt: `Ok(Err(retry_after_secs))` when it must be refused now
    /// (nothing is kept then), else the hits, to settle with [`Throttle::settle_login`]
    /// once the credentials are checked.
    pub(crate) async fn reserve_login(
        &self,
        store: &dyn Store,
        keys: &LoginKeys,
        now: i64,
    ) -> Result<Result<LoginReservation, u64>, Error> {
        let c = &self.config;
        let buckets = [
            (keys.pair.as_deref(), self.pair_rule()),
            (
                keys.id.as_deref(),
                ThrottleRule::window(
                    c.max_failures_per_identifier_all_ips,
                    c.identifier_window_secs,
                ),
            ),
            (
                keys.ip.as_deref(),
                ThrottleRule::window(c.max_failures_per_ip, c.ip_window_secs),
            ),
        ];
        let mut hits: [Option<ThrottleHit>; 3] = [None, None, None];
        let mut wait = 0u64;
        for (slot, (name, rule)) in hits.iter_mut().zip(buckets) {
            let Some(name) = name else { continue };
            match hit(store, name, rule, now).await {
                Ok(Ok(h)) => *slot = Some(h),
                Ok(Err(retry_after)) => wait = wait.max(retry_after),
                Err(e) => {
                    release_all(store, hits.iter().flatten()).await;
                    return Err(e);
                }
            }
        }
        if wait > 0 {
            release_all(store, hits.iter().flatten()).await;
            return Ok(Err(wait));
        }
        let [pair, id, ip] = hits;
        if let Some(lockout) = pair.as_ref().and_then(ThrottleHit::lockout_secs) {
            tracing::warn!(
                lockout_secs = lockout,
                "login identifier locked for one client after repeated failures"
            );
        }
        if id
            .as_ref()
            .is_some_and(|h| h.count() == c.max_failures_per_identifier_all_ips)
        {
            tracing::warn!("login identifier throttled after repeated failures from many clients");
        }
        if ip
            .as_ref()
            .is_some_and(|h| h.count() == c.max_failures_per_ip)
        {
            tracing::warn!("client throttled after repeated login failures");
        }
        Ok(Ok(LoginReservation {
            pair,
            others: id.into_iter().chain(ip).collect(),
        }))
    }

    /// Settle a reserved attempt (see [`LoginOutcome`]). Failures to give hits back are
    /// logged: they only make the limit stricter until the window ends.
    pub(crate) async fn settle_login(
        &self,
        store: &dyn Store,
        reservation: LoginReservation,
        outcome: LoginOutcome,
    ) {
        let LoginReservation { pair, mut others } = reservation;
        // One call: the store may settle it in one transaction.
        let settled = match outcome {
            LoginOutcome::Failure => return,
            LoginOutcome::Success => {
                store
                    .throttle_settle(pair.as_ref().map(ThrottleHit::bucket), &others)
                    .await
            }
            LoginOutcome::NotCounted => {
                others.extend(pair);
                store.throttle_settle(None, &others).await
            }
        };
        if let Err(e) = settled {
            tracing::warn!(error = %e, "could not settle a login throttle");
        }
    }

    /// Check and count a request to a message route from `ip` for the email with key
    /// `email`. With `count_email` the request also counts as a message for the
    /// email (routes that always send one); else the email's limit is only checked, and
    /// [`Throttle::message_sent`] counts a message once it is sent. `Err` is the 429
    /// answer (or a store failure).
    pub(crate) async fn message_attempt(
        &self,
        store: &dyn Store,
        email: Option<&Key>,
        ip: Option<IpAddr>,
        count_email: bool,
        now: i64,
    ) -> Result<(), Error> {
        let c = &self.config;
        let rule = |limit| ThrottleRule::window(limit, c.message_window_secs);
        let email = email.map(|k| bucket("message-email", k));
        // Without `count_email`, the email's limit is only checked: concurrent requests
        // (registrations of one email) must not hold places from each other.
        let mut wait = 0u64;
        if !count_email && let Some(name) = &email {
            let refused = store
                .throttle_check(name, rule(c.max_messages_per_email), now)
                .await?;
            wait = refused.unwrap_or(0);
        }
        let mut taken = Vec::new();
        let counted = [
            (
                ip.map(|ip| bucket("message-ip", &ip_key(client_key(ip)))),
                c.max_messages_per_ip,
            ),
            (email.filter(|_| count_email), c.max_messages_per_email),
        ];
        for (name, limit) in counted {
            let Some(name) = name.filter(|_| wait == 0) else {
                continue;
            };
            match hit(store, &name, rule(limit), now).await {
                Ok(Ok(h)) => taken.push(h),
                Ok(Err(retry_after)) => wait = wait.max(retry_after),
                Err(e) => {
                    release_all(store, taken.iter()).await;
                    return Err(e);
                }
            }
        }
        if wait > 0 {
            release_all(store, taken.iter()).await;
            return Err(too_many_messages(wait));
        }
        if let Some(h) = taken
            .iter()
            .find(|h| h.bucket().starts_with("message-email:"))
            && h.count() == c.max_messages_per_email
        {
            tracing::warn!("email throttled after repeated confirmation / reset requests");
        }
        Ok(())
    }

    /// Count a message (email or webhook call) for the email with key `email`.
    pub(crate) async fn message_sent(
        &self,
        store: &dyn Store,
        email: &Key,
        now: i64,
    ) -> Result<(), Error> {
        let c = &self.config;
        let rule = ThrottleRule::window(c.max_messages_per_email, c.message_window_secs);
        // Already full (a concurrent request sent one): the message is sent regardless.
        let _ = hit(store, &bucket("message-email", email), rule, now).await?;
        Ok(())
    }

    /// Whether the client address is the last `X-Forwarded-For` entry (behind a
    /// trusted reverse proxy) rather than the socket peer.
    pub(crate) fn trusts_forwarded_for(&self) -> bool {
        self.trust_forwarded_for
    }
}

/// One hit: the hit when allowed, else the seconds to wait.
async fn hit(
    store: &dyn Store,
    bucket: &str,
    rule: ThrottleRule,
    now: i64,
) -> Result<Result<ThrottleHit, u64>, Error> {
    Ok(match store.throttle_hit(bucket, rule, now).await? {
        ThrottleDecision::Allowed(hit) => Ok(hit),
        ThrottleDecision::Limited { retry_after_secs } => Err(retry_after_secs.max(1)),
        // `ThrottleDecision` is non-exhaustive: anything new refuses, briefly.
        _ => Err(1),
    })
}

/// Give hits back; a failure is logged (it only keeps a hit counted).
async fn release_all<'a>(store: &dyn Store, hits: impl Iterator<Item = &'a ThrottleHit>) {
    for hit in hits {
        if let Err(e) = store.throttle_release(hit).await {
            tracing::warn!(error = %e, "could not give back a throttle hit");
        }
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
    use std::sync::Arc;

    use super::*;

    async fn store() -> Arc<dyn Store> {
        crate::store::open("sqlite::memory:").await.unwrap()
    }

    fn throttle(max_id: u32, max_ip: u32) -> Throttle {
        let mut c = Config::dev();
        c.throttle.max_failures_per_identifier = max_id;
        c.throttle.max_failures_per_ip = max_ip;
        Throttle::new(&c)
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    /// Reserve and fail (`Ok`), or the wait (`Err`).
    async fn fail(t: &Throttle, s: &dyn Store, k: &LoginKeys, now: i64) -> Result<(), u64> {
        let r = t.reserve_login(s, k, now).await.unwrap()?;
        t.settle_login(s, r, LoginOutcome::Failure).await;
        Ok(())
    }

    #[tokio::test]
    async fn identifier_lockout_doubles_and_resets() {
        let (t, s) = (throttle(3, 1000), store().await);
        let s = s.as_ref();
        let a = t.login_keys(Some(identifier_key("x", "p", "a")), None);
        let b = t.login_keys(Some(identifier_key("x", "p", "b")), None);
        for _ in 0..3 {
            fail(&t, s, &a, 100).await.unwrap();
        }
        assert_eq!(fail(&t, s, &a, 100).await, Err(900));
        assert!(fail(&t, s, &b, 100).await.is_ok());
        for _ in 0..3 {
            fail(&t, s, &a, 1000).await.unwrap();
        }
        assert_eq!(fail(&t, s, &a, 1000).await, Err(1800));
        // A success resets the pair.
        let r = t.reserve_login(s, &a, 2800).await.unwrap().unwrap();
        t.settle_login(s, r, LoginOutcome::Success).await;
        for _ in 0..3 {
            fail(&t, s, &a, 2800).await.unwrap();
        }
        assert_eq!(fail(&t, s, &a, 2800).await, Err(900));
    }

    #[tokio::test]
    async fn ip_window_and_uncounted_attempts() {
        let (t, s) = (throttle(1000, 2), store().await);
        let s = s.as_ref();
        let k = t.login_keys(None, ip("10.0.0.1"));
        let r = t.reserve_login(s, &k, 0).await.unwrap().unwrap();
        t.settle_login(s, r, LoginOutcome::NotCounted).await;
        fail(&t, s, &k, 0).await.unwrap();
        fail(&t, s, &k, 10).await.unwrap();
        assert_eq!(fail(&t, s, &k, 10).await, Err(890));
        assert!(fail(&t, s, &k, 900).await.is_ok());
    }

    #[tokio::test]
    async fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(
            client_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_key("::ffff:10.1.2.3".parse().unwrap()),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
        let (t, s) = (throttle(1000, 2), store().await);
        let s = s.as_ref();
        fail(&t, s, &t.login_keys(None, ip("2001:db8:1:2::1")), 0)
            .await
            .unwrap();
        let k = t.login_keys(None, ip("2001:db8:1:2:ffff:ffff:ffff:ffff"));
        fail(&t, s, &k, 0).await.unwrap();
        // Another address of the same /64 is limited too; another /64 is not.
        assert!(
            fail(&t, s, &t.login_keys(None, ip("2001:db8:1:2:1234::9")), 0)
                .await
                .is_err()
        );
        assert!(
            fail(&t, s, &t.login_keys(None, ip("2001:db8:1:3::1")), 0)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn pair_lockout_spares_other_clients_but_all_ips_cap_applies() {
        let mut c = Config::dev();
        c.throttle.max_failures_per_identifier = 3;
        c.throttle.max_failures_per_identifier_all_ips = 5;
        let (t, s) = (Throttle::new(&c), store().await);
        let s = s.as_ref();
        let id = Some(identifier_key("x", "p", "victim"));
        let attacker = t.login_keys(id, ip("198.51.100.7"));
        let owner = t.login_keys(id, ip("203.0.113.1"));
        for _ in 0..3 {
            fail(&t, s, &attacker, 0).await.unwrap();
        }
        assert!(fail(&t, s, &attacker, 0).await.is_err());
        // The owner's own success does not count.
        let r = t.reserve_login(s, &owner, 0).await.unwrap().unwrap();
        t.settle_login(s, r, LoginOutcome::Success).await;
        // Two more failures from other clients reach the all-clients cap.
        fail(&t, s, &t.login_keys(id, ip("198.51.100.8")), 0)
            .await
            .unwrap();
        fail(&t, s, &t.login_keys(id, ip("198.51.100.9")), 0)
            .await
            .unwrap();
        assert_eq!(fail(&t, s, &owner, 10).await, Err(890));
        assert!(fail(&t, s, &owner, 900).await.is_ok());
    }

    #[tokio::test]
    async fn buckets_hold_no_identifier() {
        let t = throttle(3, 3);
        let k = t.login_keys(
            Some(identifier_key("x", "p", "someone@example.com")),
            ip("10.9.8.7"),
        );
        for name in [&k.pair, &k.id, &k.ip] {
            let name = name.as_deref().unwrap();
            assert!(
                !name.contains("someone") && !name.contains("10.9.8.7"),
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn message_limits() {
        let mut c = Config::dev();
        c.throttle.max_messages_per_email = 2;
        c.throttle.max_messages_per_ip = 4;
        let (t, s) = (Throttle::new(&c), store().await);
        let s = s.as_ref();
        let e = identifier_key("x", "mail", "a@b.c");
        let f = identifier_key("x", "mail", "d@b.c");
        let attempt =
            |email, from, count, now| t.message_attempt(s, Some(email), ip(from), count, now);
        assert!(attempt(&e, "10.0.0.1", false, 0).await.is_ok());
        t.message_sent(s, &e, 0).await.unwrap();
        assert!(attempt(&e, "10.0.0.1", true, 0).await.is_ok());
        let refused = attempt(&e, "10.0.0.2", true, 5).await.unwrap_err();
        assert!(
            matches!(
                refused,
                Error::TooManyRequests {
                    retry_after_secs: 895,
                    ..
                }
            ),
            "{refused:?}"
        );
        assert!(attempt(&f, "10.0.0.1", true, 5).await.is_ok());
        assert!(attempt(&f, "10.0.0.1", true, 5).await.is_ok());
        assert!(attempt(&f, "10.0.0.1", true, 5).await.is_err());
        assert!(attempt(&e, "10.0.0.1", true, 900).await.is_ok());
    }
}
