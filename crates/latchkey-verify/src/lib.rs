//! Verify latchkey access tokens in your own Rust services.
//!
//! A latchkey app whose access tokens are signed with an asymmetric key (ES256, EdDSA
//! or RS256; see the server's docs/tokens.md) publishes the public keys at
//! `GET {server}/api/client/v2.0/app/{app_id}/.well-known/jwks.json`. A [`Verifier`]
//! fetches and caches that key set and checks a token offline:
//!
//! - the signature, with the key its `kid` header names and that key's algorithm
//!   (HS256 and `none` are refused: a service never holds the app's secret);
//! - `exp` and `nbf` (and an `iat` not in the future), with a leeway (default 30 s);
//! - `typ` is `access` (a refresh token is refused);
//! - the token was minted for the expected app: the **`baas_domain_id`** claim equals
//!   the app id. (latchkey tokens carry no `aud`, and their `iss` is the session id,
//!   exactly as the official Realm clients expect them.)
//!
//! An unknown `kid` (a key rotated in since the last fetch) refetches the key set at
//! once, at most once per cooldown (default 30 s); the set is otherwise refreshed after
//! the server's `Cache-Control: max-age` (default 5 minutes).
//!
//! Signature checks alone accept a revoked session's access token until it expires,
//! at most the app's `access_token_ttl_secs` (30 minutes by default), as with every
//! JWT. A service that must see a logout at once turns on
//! [`VerifierBuilder::check_revocation`]: each verification then also asks the server
//! (one request per call).
//!
//! ```no_run
//! # async fn demo(token: &str) -> Result<(), latchkey_verify::VerifyError> {
//! let verifier = latchkey_verify::Verifier::builder("https://auth.example.org", "myapp-abcde")
//!     .build();
//! let user = verifier.verify(token).await?;
//! println!("user {} on device {:?}", user.user_id(), user.device_id());
//! # Ok(()) }
//! ```
//!
//! With the `axum` feature, `axum::LatchkeyUser` is an extractor that answers 401 with
//! `WWW-Authenticate: Bearer ...` when the token is missing or invalid.

#![deny(missing_docs)]

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
pub use latchkey_protocol::AccessTokenClaims;
use latchkey_protocol::routes::paths;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio::sync::RwLock;

#[cfg(feature = "axum")]
pub mod axum;

/// Default leeway on `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Default least time between two key-set fetches caused by unknown `kid`s.
pub const DEFAULT_REFETCH_COOLDOWN: Duration = Duration::from_secs(30);
/// How long a key set is kept when the server sends no `Cache-Control: max-age`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// The longest a key set is kept, whatever the server says.
pub const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Timeout of each request to the server.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a token was not accepted. No variant carries the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No `Authorization: Bearer` token (extractors only).
    #[error("missing bearer token")]
    Missing,
    /// Not a JWS, bad base64 or JSON, or a claim missing or of the wrong type.
    #[error("malformed token")]
    Malformed,
    /// The header's `alg` is not ES256, EdDSA or RS256.
    #[error("unsupported token algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// The `kid` names no published key (even after a refetch), or is absent.
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not verify, or the algorithm is not the key's.
    #[error("invalid token signature")]
    Signature,
    /// `exp` is past (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// Not an access token (`typ` is not `access`).
    #[error("not an access token")]
    WrongType,
    /// Minted for another app (`baas_domain_id`).
    #[error("token of another app")]
    WrongApp,
    /// The server says the session is over (only with
    /// [`VerifierBuilder::check_revocation`]).
    #[error("session revoked")]
    Revoked,
    /// The key set could not be fetched or read.
    #[error("signing keys unavailable: {0}")]
    KeysUnavailable(String),
    /// The revocation check could not reach the server.
    #[error("revocation check unavailable: {0}")]
    RevocationUnavailable(String),
}

impl VerifyError {
    /// Whether the failure is the service's or the network's, not the token's:
    /// retrying later may succeed (an HTTP service answers 503).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            VerifyError::KeysUnavailable(_) | VerifyError::RevocationUnavailable(_)
        )
    }

    /// The HTTP status an API answers: 503 when [`Self::is_transient`], else 401.
    pub fn status(&self) -> http::StatusCode {
        if self.is_transient() {
            http::StatusCode::SERVICE_UNAVAILABLE
        } else {
            http::StatusCode::UNAUTHORIZED
        }
    }

    /// The `WWW-Authenticate` value of a 401 (RFC 6750): no error code for a missing
    /// token, `invalid_token` otherwise. `None` for transient failures.
    ///
    /// ```
    /// use latchkey_verify::VerifyError;
    /// assert_eq!(VerifyError::Missing.www_authenticate().unwrap(), r#"Bearer realm="latchkey""#);
    /// assert_eq!(
    ///     VerifyError::Expired.www_authenticate().unwrap(),
    ///     r#"Bearer realm="latchkey", error="invalid_token", error_description="token expired""#
    /// );
    /// ```
    pub fn www_authenticate(&self) -> Option<String> {
        match self {
            _ if self.is_transient() => None,
            VerifyError::Missing => Some(r#"Bearer realm="latchkey""#.to_owned()),
            other => Some(format!(
                r#"Bearer realm="latchkey", error="invalid_token", error_description="{other}""#
            )),
        }
    }
}

/// A verified access token: typed claims and the time of verification.
#[derive(Clone, PartialEq)]
pub struct VerifiedToken {
    claims: AccessTokenClaims,
    verified_at: i64,
}

impl fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedToken")
            .field("user_id", &self.claims.sub)
            .field("device_id", &self.claims.baas_device_id)
            .field("app_id", &self.claims.baas_domain_id)
            .field("issued_at", &self.claims.iat)
            .field("expires_at", &self.claims.exp)
            .finish_non_exhaustive()
    }
}

impl VerifiedToken {
    /// The user id (`sub`).
    pub fn user_id(&self) -> &str {
        &self.claims.sub
    }

    /// The device id (`baas_device_id`); `None` when absent or all zeros.
    pub fn device_id(&self) -> Option<&str> {
        self.claims
            .baas_device_id
            .as_deref()
            .filter(|d| d.bytes().any(|b| b != b'0'))
    }

    /// The session id (the token's `iss`, as App Services wrote it).
    pub fn session_id(&self) -> Option<&str> {
        self.claims.iss.as_deref()
    }

    /// The app id (`baas_domain_id`), the one the verifier expects.
    pub fn app_id(&self) -> &str {
        self.claims.baas_domain_id.as_deref().unwrap_or_default()
    }

    /// The user's custom data (`user_data`), when the token carries some.
    pub fn user_data(&self) -> Option<&Map<String, Value>> {
        self.claims.user_data.as_ref()
    }

    /// The custom data as `T`; `None` when there is none or it does not fit `T`.
    pub fn custom_data<T: DeserializeOwned>(&self) -> Option<T> {
        let data = self.claims.user_data.clone()?;
        serde_json::from_value(Value::Object(data)).ok()
    }

    /// `iat`, Unix seconds.
    pub fn issued_at(&self) -> i64 {
        self.claims.iat
    }

    /// `exp`, Unix seconds.
    pub fn expires_at(&self) -> i64 {
        self.claims.exp
    }

    /// How old the token was when verified (zero if `iat` was slightly ahead).
    pub fn age(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.verified_at - self.claims.iat).unwrap_or(0))
    }

    /// Every claim.
    pub fn claims(&self) -> &AccessTokenClaims {
        &self.claims
    }
}

/// The clock tokens are checked against, in Unix seconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Builds a [`Verifier`].
pub struct VerifierBuilder {
    base_url: String,
    app_id: String,
    jwks_url: Option<String>,
    leeway: Duration,
    cooldown: Duration,
    revocation: bool,
    http: Option<reqwest::Client>,
    clock: Clock,
}

impl fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierBuilder")
            .field("base_url", &self.base_url)
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl VerifierBuilder {
    /// Leeway on `exp`, `nbf` and `iat` (default [`DEFAULT_LEEWAY`]).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Least time between two fetches caused by unknown `kid`s (default
    /// [`DEFAULT_REFETCH_COOLDOWN`]), so that forged `kid`s cannot flood the server.
    pub fn refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Fetch the key set from this URL instead of the app's `.well-known/jwks.json`.
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// Also ask the server whether the token's session is still live (one request
    /// per verification to `GET /api/client/v2.0/auth/profile`): a logout or a
    /// disabled user is then refused at once instead of when the token expires.
    pub fn check_revocation(mut self, on: bool) -> Self {
        self.revocation = on;
        self
    }

    /// The HTTP client for the key set and revocation requests.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The clock `exp`, `nbf` and `iat` are checked against (default: the system
    /// clock), in Unix seconds.
    pub fn clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The verifier. Nothing is fetched before the first verification.
    pub fn build(self) -> Verifier {
        let base = self.base_url.trim_end_matches('/').to_owned();
        let jwks_url = self
            .jwks_url
            .unwrap_or_else(|| format!("{base}{}", paths::JWKS.replace("{app_id}", &self.app_id)));
        Verifier {
            inner: Arc::new(Inner {
                app_id: self.app_id,
                base_url: base,
                source: Source::Remote {
                    url: jwks_url,
                    http: self.http.unwrap_or_default(),
                },
                leeway: i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX),
                cooldown: self.cooldown,
                revocation: self.revocation,
                clock: self.clock,
                cache: RwLock::new(Cache::default()),
            }),
        }
    }
}

enum Source {
    Remote { url: String, http: reqwest::Client },
    Static,
}

#[derive(Clone)]
struct CachedKey {
    alg: Algorithm,
    key: DecodingKey,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, CachedKey>,
    fetched_at: Option<Instant>,
    max_age: Duration,
    /// The last fetch caused by an unknown `kid` (the cooldown's start).
    last_refetch: Option<Instant>,
}

impl Cache {
    fn fresh(&self) -> bool {
        self.fetched_at.is_some_and(|t| t.elapsed() < self.max_age)
    }
}

struct Inner {
    app_id: String,
    base_url: String,
    source: Source,
    leeway: i64,
    cooldown: Duration,
    revocation: bool,
    clock: Clock,
    cache: RwLock<Cache>,
}

/// Verifies one app's access tokens; cheap to clone (the key cache is shared).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("app_id", &self.inner.app_id)
            .field("base_url", &self.inner.base_url)
            .finish_non_exhaustive()
    }
}

/// The usable keys of a JWKS document: those with a `kid` and an ES256, EdDSA or
/// RS256 `alg`.
fn keys_of(set: &JwkSet) -> HashMap<String, CachedKey> {
    set.keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let alg: Algorithm = jwk.common.key_algorithm?.to_string().parse().ok()?;
            if !matches!(alg, Algorithm::ES256 | Algorithm::EdDSA | Algorithm::RS256) {
                return None;
            }
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((kid, CachedKey { alg, key }))
        })
        .collect()
}

/// `max-age` of a `Cache-Control` value.
fn max_age(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get(http::header::CACHE_CONTROL)?.to_str().ok()?;
    value.split(',').find_map(|d| {
        let secs = d.trim().strip_prefix("max-age=")?.parse::<u64>().ok()?;
        Some(Duration::from_secs(secs).min(MAX_MAX_AGE))
    })
}

impl Verifier {
    /// A verifier of `app_id`'s tokens, fetching keys from the server at `base_url`
    /// (the URL the SDK is configured with, e.g. `https://auth.example.org`).
    pub fn builder(base_url: impl Into<String>, app_id: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder {
            base_url: base_url.into(),
            app_id: app_id.into(),
            jwks_url: None,
            leeway: DEFAULT_LEEWAY,
            cooldown: DEFAULT_REFETCH_COOLDOWN,
            revocation: false,
            http: None,
            clock: Arc::new(system_now),
        }
    }

    /// A verifier with a fixed key set (a JWKS document, e.g. read from a file) that
    /// never fetches.
    ///
    /// ```
    /// let verifier = latchkey_verify::Verifier::from_jwks("myapp", r#"{"keys":[]}"#).unwrap();
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// assert!(verifier.verify("not-a-token").await.is_err());
    /// # });
    /// ```
    pub fn from_jwks(app_id: impl Into<String>, jwks: &str) -> Result<Verifier, VerifyError> {
        let set: JwkSet = serde_json::from_str(jwks)
            .map_err(|e| VerifyError::KeysUnavailable(format!("invalid JWKS: {e}")))?;
        let cache = Cache {
            keys: keys_of(&set),
            fetched_at: Some(Instant::now()),
            max_age: Duration::MAX,
            last_refetch: None,
        };
        Ok(Verifier {
            inner: Arc::new(Inner {
                app_id: app_id.into(),
                base_url: String::new(),
                source: Source::Static,
                leeway: DEFAULT_LEEWAY.as_secs() as i64,
                cooldown: DEFAULT_REFETCH_COOLDOWN,
                revocation: false,
                clock: Arc::new(system_now),
                cache: RwLock::new(cache),
            }),
        })
    }

    /// The app whose tokens this verifier accepts.
    pub fn app_id(&self) -> &str {
        &self.inner.app_id
    }

    async fn fetch(&self) -> Result<(HashMap<String, CachedKey>, Duration), VerifyError> {
        let Source::Remote { url, http } = &self.inner.source else {
            return Err(VerifyError::UnknownKey);
        };
        let unavailable = |e: &dyn fmt::Display| VerifyError::KeysUnavailable(e.to_string());
        let resp = http
            .get(url)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        if resp.status() != http::StatusCode::OK {
            return Err(unavailable(&format_args!(
                "{url} answered {}",
                resp.status()
            )));
        }
        let age = max_age(resp.headers()).unwrap_or(DEFAULT_MAX_AGE);
        let body = resp.bytes().await.map_err(|e| unavailable(&e))?;
        let set: JwkSet = serde_json::from_slice(&body)
            .map_err(|e| unavailable(&format_args!("invalid JWKS from {url}: {e}")))?;
        Ok((keys_of(&set), age))
    }

    /// The key `kid`, fetching the key set when it is stale or lacks `kid` (then at
    /// most once per cooldown). Fetches are single-flight.
    async fn key(&self, kid: &str) -> Result<CachedKey, VerifyError> {
        {
            let cache = self.inner.cache.read().await;
            if cache.fresh()
                && let Some(k) = cache.keys.get(kid)
            {
                return Ok(k.clone());
            }
        }
        let mut cache = self.inner.cache.write().await;
        let fresh = cache.fresh();
        if fresh && let Some(k) = cache.keys.get(kid) {
            return Ok(k.clone());
        }
        // A stale set is always refetched; a fresh one that lacks `kid` at most once
        // per cooldown (forged kids must not turn into a flood of fetches).
        let may_fetch = !fresh
            || cache
                .last_refetch
                .is_none_or(|t| t.elapsed() >= self.inner.cooldown);
        if may_fetch && matches!(self.inner.source, Source::Remote { .. }) {
            if fresh {
                cache.last_refetch = Some(Instant::now());
            }
            match self.fetch().await {
                Ok((keys, max_age)) => {
                    cache.keys = keys;
                    cache.max_age = max_age;
                    cache.fetched_at = Some(Instant::now());
                }
                // A stale set still serves the keys it has; with none, the error.
                Err(e) if cache.keys.is_empty() => return Err(e),
                Err(_) => {}
            }
        }
        cache.keys.get(kid).cloned().ok_or(VerifyError::UnknownKey)
    }

    /// Verify `token` (without `Bearer `): see the crate documentation for what is
    /// checked.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if !matches!(
            header.alg,
            Algorithm::ES256 | Algorithm::EdDSA | Algorithm::RS256
        ) {
            return Err(VerifyError::UnsupportedAlgorithm(format!(
                "{:?}",
                header.alg
            )));
        }
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        let key = self.key(&kid).await?;
        if key.alg != header.alg {
            return Err(VerifyError::Signature);
        }
        let mut validation = Validation::new(key.alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => VerifyError::Signature,
                _ => VerifyError::Malformed,
            })?;
        let claims = self.check_claims(data.claims)?;
        if self.inner.revocation {
            self.check_revocation(token).await?;
        }
        Ok(claims)
    }

    fn check_claims(&self, raw: Map<String, Value>) -> Result<VerifiedToken, VerifyError> {
        let int = |name: &str| match raw.get(name) {
            Some(Value::Number(n)) => n.as_i64().ok_or(VerifyError::Malformed).map(Some),
            None => Ok(None),
            Some(_) => Err(VerifyError::Malformed),
        };
        let exp = int("exp")?.ok_or(VerifyError::Malformed)?;
        let iat = int("iat")?.ok_or(VerifyError::Malformed)?;
        let nbf = int("nbf")?;
        if raw.get("typ").and_then(Value::as_str) != Some("access") {
            return Err(VerifyError::WrongType);
        }
        let now = (self.inner.clock)();
        let leeway = self.inner.leeway;
        if exp.saturating_add(leeway) <= now {
            return Err(VerifyError::Expired);
        }
        if iat.saturating_sub(leeway) > now || nbf.is_some_and(|n| n.saturating_sub(leeway) > now) {
            return Err(VerifyError::NotYetValid);
        }
        let claims: AccessTokenClaims =
            serde_json::from_value(Value::Object(raw)).map_err(|_| VerifyError::Malformed)?;
        if claims.baas_domain_id.as_deref() != Some(self.inner.app_id.as_str()) {
            return Err(VerifyError::WrongApp);
        }
        Ok(VerifiedToken {
            claims,
            verified_at: now,
        })
    }

    async fn check_revocation(&self, token: &str) -> Result<(), VerifyError> {
        let Source::Remote { http, .. } = &self.inner.source else {
            return Ok(());
        };
        let url = format!("{}{}", self.inner.base_url, paths::PROFILE);
        let unavailable = |e: &dyn fmt::Display| VerifyError::RevocationUnavailable(e.to_string());
        let resp = http
            .get(&url)
            .bearer_auth(token)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            http::StatusCode::UNAUTHORIZED => Err(VerifyError::Revoked),
            s => Err(unavailable(&format_args!("{url} answered {s}"))),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header.
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// headers.insert("authorization", "Bearer abc.def.ghi".parse().unwrap());
/// assert_eq!(latchkey_verify::bearer_token(&headers), Some("abc.def.ghi"));
/// ```
pub fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
