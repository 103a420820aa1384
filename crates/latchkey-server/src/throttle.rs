//! Throttling of FAILED logins, in memory (per process).
//!
//! - Per identifier (the email of `local-userpass`, whether it exists or not, so the
//!   lock reveals nothing): after `max_failures_per_identifier` consecutive
//!   failures, a cool-down of `lockout_secs`, doubling at each further lockout
//!   (capped at 24 h). A successful login resets the identifier.
//! - Per client IP: at most `max_failures_per_ip` failures per `ip_window_secs`
//!   (generous, so many users behind one NAT are fine).
//!
//! Successful and anonymous logins are never limited. A limited request is answered
//! 429 `TooManyRequests` with `Retry-After` before any credential is checked.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use latchkey_protocol::{ErrorCode, ejson};

use crate::clock::Clock;
use crate::config::{Config, ThrottleConfig};
use crate::error::ApiError;
use crate::http::MAX_BODY_BYTES;
use crate::state::SharedState;

/// Longest cool-down.
const MAX_LOCKOUT_SECS: u64 = 24 * 3600;
/// Above this many tracked keys, stale entries are pruned.
const PRUNE_ABOVE: usize = 50_000;

#[derive(Debug, Default, Clone, Copy)]
struct IdState {
    failures: u32,
    lockouts: u32,
    locked_until: i64,
    last: i64,
}

#[derive(Debug, Default, Clone, Copy)]
struct IpState {
    window_start: i64,
    failures: u32,
}

#[derive(Debug, Default)]
struct Inner {
    ids: HashMap<String, IdState>,
    ips: HashMap<IpAddr, IpState>,
}

/// The failed-login limiter.
#[derive(Debug)]
pub(crate) struct Throttle {
    config: ThrottleConfig,
    trust_forwarded_for: bool,
    inner: Mutex<Inner>,
}

impl Throttle {
    pub(crate) fn new(config: &Config) -> Self {
        Throttle {
            config: config.throttle.clone(),
            trust_forwarded_for: config.trust_forwarded_for,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(retry_after_secs)` when a new attempt must be refused now.
    pub(crate) fn check(&self, id: Option<&str>, ip: Option<IpAddr>, now: i64) -> Result<(), u64> {
        let inner = self.lock();
        let mut wait = 0i64;
        if let Some(s) = id.and_then(|id| inner.ids.get(id))
            && s.locked_until > now
        {
            wait = wait.max(s.locked_until - now);
        }
        if let Some(s) = ip.and_then(|ip| inner.ips.get(&ip)) {
            let window = secs(self.config.ip_window_secs);
            let end = s.window_start.saturating_add(window);
            if end > now && s.failures >= self.config.max_failures_per_ip {
                wait = wait.max(end - now);
            }
        }
        if wait > 0 {
            Err(u64::try_from(wait).unwrap_or(1).max(1))
        } else {
            Ok(())
        }
    }

    /// Count a failed attempt.
    pub(crate) fn failure(&self, id: Option<&str>, ip: Option<IpAddr>, now: i64) {
        let mut inner = self.lock();
        if let Some(id) = id {
            let s = inner.ids.entry(id.to_owned()).or_default();
            s.failures += 1;
            s.last = now;
            if s.failures >= self.config.max_failures_per_identifier {
                s.failures = 0;
                s.lockouts = s.lockouts.saturating_add(1);
                let factor = 1u64 << (s.lockouts - 1).min(16);
                let cool = self
                    .config
                    .lockout_secs
                    .saturating_mul(factor)
                    .min(MAX_LOCKOUT_SECS);
                s.locked_until = now.saturating_add(secs(cool));
                tracing::warn!(
                    lockout_secs = cool,
                    "login identifier locked after repeated failures"
                );
            }
        }
        if let Some(ip) = ip {
            let window = secs(self.config.ip_window_secs);
            let s = inner.ips.entry(ip).or_default();
            if s.window_start.saturating_add(window) <= now {
                *s = IpState {
                    window_start: now,
                    failures: 0,
                };
            }
            s.failures += 1;
            if s.failures == self.config.max_failures_per_ip {
                tracing::warn!(%ip, "client IP throttled after repeated login failures");
            }
        }
        if inner.ids.len() + inner.ips.len() > PRUNE_ABOVE {
            self.prune(&mut inner, now);
        }
    }

    /// A successful login resets its identifier.
    pub(crate) fn success(&self, id: Option<&str>) {
        if let Some(id) = id {
            self.lock().ids.remove(id);
        }
    }

    fn prune(&self, inner: &mut Inner, now: i64) {
        let stale = now - secs(MAX_LOCKOUT_SECS);
        inner
            .ids
            .retain(|_, s| s.locked_until > now || s.last > stale);
        let window = secs(self.config.ip_window_secs);
        inner
            .ips
            .retain(|_, s| s.window_start.saturating_add(window) > now);
    }

    /// The client IP: the socket peer, or the last `X-Forwarded-For` entry when
    /// `trust_forwarded_for` is set.
    pub(crate) fn client_ip(&self, req: &Request) -> Option<IpAddr> {
        if self.trust_forwarded_for
            && let Some(ip) = req
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .next_back()
        {
            return Some(ip);
        }
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
    }
}

fn secs(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The 429 answer.
pub(crate) fn too_many(retry_after: u64) -> Response {
    let mut resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::TooManyRequests,
        "too many failed login attempts; try again later",
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// `(app id, provider)` of a login path `.../app/{app}/auth/providers/{provider}/login`.
fn login_path(path: &str) -> Option<(&str, &str)> {
    let mut it = path.split('/');
    it.find(|s| *s == "app")?;
    let app = it.next()?;
    it.find(|s| *s == "providers")?;
    Some((app, it.next()?))
}

/// Middleware on the login route: refuse throttled attempts, count the outcome.
pub(crate) async fn login_guard(
    State(state): State<SharedState>,
    req: Request,
    next: Next,
) -> Response {
    let Some((app, provider)) = login_path(req.uri().path()) else {
        return next.run(req).await;
    };
    if provider == "anon-user" {
        return next.run(req).await;
    }
    let (app, provider) = (app.to_owned(), provider.to_owned());
    let throttle = &state.throttle;
    let ip = throttle.client_ip(&req);
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return ApiError::payload_too_large().into_response(),
    };
    let id = if provider == "local-userpass" {
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .map(ejson::to_plain)
            .and_then(|v| {
                v.get("username")
                    .and_then(|u| u.as_str())
                    .map(str::to_owned)
            })
            .map(|u| format!("{app}\u{0}{provider}\u{0}{u}"))
    } else {
        None
    };
    let clock: &Clock = &state.clock;
    if let Err(retry_after) = throttle.check(id.as_deref(), ip, clock.now_secs()) {
        tracing::info!(app, provider, "login refused: throttled");
        return too_many(retry_after);
    }
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if resp.status() == StatusCode::UNAUTHORIZED {
        throttle.failure(id.as_deref(), ip, clock.now_secs());
    } else if resp.status().is_success() {
        throttle.success(id.as_deref());
    }
    resp
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

    #[test]
    fn identifier_lockout_doubles_and_resets() {
        let t = throttle(3, 1000);
        for _ in 0..2 {
            t.failure(Some("a"), None, 100);
        }
        assert!(t.check(Some("a"), None, 100).is_ok());
        t.failure(Some("a"), None, 100);
        assert_eq!(t.check(Some("a"), None, 100), Err(900));
        assert!(t.check(Some("b"), None, 100).is_ok());
        assert!(t.check(Some("a"), None, 1000).is_ok());
        for _ in 0..3 {
            t.failure(Some("a"), None, 1000);
        }
        assert_eq!(t.check(Some("a"), None, 1000), Err(1800));
        t.success(Some("a"));
        assert!(t.check(Some("a"), None, 1000).is_ok());
    }

    #[test]
    fn ip_window() {
        let t = throttle(1000, 2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        t.failure(None, Some(ip), 0);
        assert!(t.check(None, Some(ip), 0).is_ok());
        t.failure(None, Some(ip), 10);
        assert_eq!(t.check(None, Some(ip), 10), Err(890));
        assert!(t.check(None, Some(ip), 900).is_ok());
    }

    #[test]
    fn paths() {
        assert_eq!(
            login_path("/api/client/v2.0/app/a/auth/providers/local-userpass/login"),
            Some(("a", "local-userpass"))
        );
    }
}
