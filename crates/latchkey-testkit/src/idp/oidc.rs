//! A fake OpenID Connect provider (Google or Apple): JWKS, RS256 ID tokens and a
//! Google-style OAuth2 authorization-code token endpoint.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::consent::{AuthorizationRequest, PendingRequests, ProviderRedirect, pkce_matches};
use super::keys::KeyPair;
use super::serve::{Served, random_alnum, unix_now};

/// Google's ID token issuer.
const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// Apple's ID token issuer.
const APPLE_ISSUER: &str = "https://appleid.apple.com";

/// Claims of an ID token minted by [`FakeOidc`].
///
/// Build with [`IdTokenClaims::new`] and the chaining setters, or set the public
/// fields directly. `None` fields are left out of the token, except `iss`
/// (defaults to the fake's issuer), `iat` (defaults to now) and `exp` (defaults to
/// `iat + 3600`). `iat`/`exp` are serialised as integer seconds since the Unix
/// epoch. Entries of [`IdTokenClaims::extra`] are added last and override any
/// standard claim of the same name (e.g. Apple's string `"email_verified": "true"`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdTokenClaims {
    /// `sub`: the provider's stable user id.
    pub sub: String,
    /// `aud`: the client id the token is for (`None` leaves the claim out).
    pub aud: Option<String>,
    /// `iss`: defaults to [`FakeOidc::issuer`].
    pub iss: Option<String>,
    /// `iat` (seconds since the epoch): defaults to the time of minting.
    pub iat: Option<i64>,
    /// `exp` (seconds since the epoch): defaults to `iat + 3600`.
    pub exp: Option<i64>,
    /// `email`.
    pub email: Option<String>,
    /// `email_verified` (a JSON boolean).
    pub email_verified: Option<bool>,
    /// `name`.
    pub name: Option<String>,
    /// `given_name`.
    pub given_name: Option<String>,
    /// `family_name`.
    pub family_name: Option<String>,
    /// `picture` (a URL).
    pub picture: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// Any other claims; they override standard ones of the same name.
    pub extra: Map<String, Value>,
}

impl IdTokenClaims {
    /// Claims for user `sub` with audience `aud` (the client id the server expects).
    pub fn new(sub: impl Into<String>, aud: impl Into<String>) -> IdTokenClaims {
        IdTokenClaims {
            sub: sub.into(),
            aud: Some(aud.into()),
            ..IdTokenClaims::default()
        }
    }

    /// Set `sub`.
    #[allow(clippy::should_implement_trait)] // named after the claim, like the other setters
    pub fn sub(mut self, sub: impl Into<String>) -> Self {
        self.sub = sub.into();
        self
    }

    /// Set `aud`.
    pub fn aud(mut self, aud: impl Into<String>) -> Self {
        self.aud = Some(aud.into());
        self
    }

    /// Set `iss` (instead of the fake's own issuer).
    pub fn iss(mut self, iss: impl Into<String>) -> Self {
        self.iss = Some(iss.into());
        self
    }

    /// Set `iat` (seconds since the Unix epoch).
    pub fn iat(mut self, iat: i64) -> Self {
        self.iat = Some(iat);
        self
    }

    /// Set `exp` (seconds since the Unix epoch).
    pub fn exp(mut self, exp: i64) -> Self {
        self.exp = Some(exp);
        self
    }

    /// Make the token already expired: issued two hours ago, expired one hour ago.
    pub fn expired(self) -> Self {
        let now = unix_now();
        self.iat(now - 7200).exp(now - 3600)
    }

    /// Set `email`.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Set `email_verified`.
    pub fn email_verified(mut self, verified: bool) -> Self {
        self.email_verified = Some(verified);
        self
    }

    /// Set `name`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Set `given_name`.
    pub fn given_name(mut self, given_name: impl Into<String>) -> Self {
        self.given_name = Some(given_name.into());
        self
    }

    /// Set `family_name`.
    pub fn family_name(mut self, family_name: impl Into<String>) -> Self {
        self.family_name = Some(family_name.into());
        self
    }

    /// Set `picture`.
    pub fn picture(mut self, picture: impl Into<String>) -> Self {
        self.picture = Some(picture.into());
        self
    }

    /// Set `nonce`.
    pub fn nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }

    /// Add (or override) any claim.
    pub fn extra(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(name.into(), value.into());
        self
    }

    /// The JSON payload, with defaults filled in for `issuer` and the current time.
    fn to_payload(&self, issuer: &str) -> Map<String, Value> {
        let iat = self.iat.unwrap_or_else(unix_now);
        let exp = self.exp.unwrap_or(iat + 3600);
        let mut m = Map::new();
        m.insert(
            "iss".into(),
            Value::from(self.iss.clone().unwrap_or_else(|| issuer.to_owned())),
        );
        m.insert("sub".into(), Value::from(self.sub.clone()));
        if let Some(aud) = &self.aud {
            m.insert("aud".into(), Value::from(aud.clone()));
        }
        m.insert("iat".into(), Value::from(iat));
        m.insert("exp".into(), Value::from(exp));
        let optional = [
            ("email", self.email.clone().map(Value::from)),
            ("email_verified", self.email_verified.map(Value::from)),
            ("name", self.name.clone().map(Value::from)),
            ("given_name", self.given_name.clone().map(Value::from)),
            ("family_name", self.family_name.clone().map(Value::from)),
            ("picture", self.picture.clone().map(Value::from)),
            ("nonce", self.nonce.clone().map(Value::from)),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                m.insert(name.into(), value);
            }
        }
        for (name, value) in &self.extra {
            m.insert(name.clone(), value.clone());
        }
        m
    }
}

/// A code registered with [`FakeOidc::auth_code`] (or granted at the consent step),
/// waiting to be exchanged.
#[derive(Debug)]
struct PendingCode {
    client_id: String,
    client_secret: String,
    claims: IdTokenClaims,
    /// The `redirect_uri` of the authorization request; the exchange must repeat it.
    redirect_uri: Option<String>,
    /// The PKCE S256 challenge; the exchange must bring its verifier.
    code_challenge: Option<String>,
}

#[derive(Debug)]
struct Keys {
    /// Published keys, oldest first; the last one is current.
    published: Vec<KeyPair>,
    /// Signs tokens nobody can verify against the JWKS.
    unpublished: Option<KeyPair>,
}

#[derive(Debug)]
struct Shared {
    issuer: String,
    keys: Mutex<Keys>,
    codes: Mutex<HashMap<String, PendingCode>>,
    /// Registered OAuth clients (id -> secret) of the authorization endpoint.
    clients: Mutex<HashMap<String, String>>,
    /// Authorization requests waiting at the consent page.
    pending: PendingRequests,
    jwks_requests: AtomicUsize,
    token_requests: AtomicUsize,
}

impl Shared {
    fn keys(&self) -> MutexGuard<'_, Keys> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn codes(&self) -> MutexGuard<'_, HashMap<String, PendingCode>> {
        self.codes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Grant a code for `request` to the user `claims` (`aud` defaults to the client).
    fn grant(
        &self,
        request: &AuthorizationRequest,
        claims: IdTokenClaims,
    ) -> Result<String, String> {
        let secret = Self::lock(&self.clients)
            .get(&request.client_id)
            .cloned()
            .ok_or_else(|| format!("unknown client_id {}", request.client_id))?;
        let claims = IdTokenClaims {
            aud: claims.aud.or_else(|| Some(request.client_id.clone())),
            ..claims
        };
        let code = format!("4/0{}", random_alnum(40));
        self.codes().insert(
            code.clone(),
            PendingCode {
                client_id: request.client_id.clone(),
                client_secret: secret,
                claims,
                redirect_uri: Some(request.redirect_uri.clone()),
                code_challenge: request.code_challenge.clone(),
            },
        );
        Ok(code)
    }

    fn current_key(&self) -> KeyPair {
        self.keys()
            .published
            .last()
            .cloned()
            .expect("a FakeOidc always has a current key")
    }

    fn mint(&self, claims: &IdTokenClaims) -> String {
        self.current_key().sign(&claims.to_payload(&self.issuer))
    }
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    served: Served,
}

/// A fake OpenID Connect provider (Google or Apple) on `127.0.0.1:<free port>`.
///
/// Routes:
/// * `GET /jwks`: `{"keys":[{"kty":"RSA","kid","use":"sig","alg":"RS256","n","e"}]}`,
///   newest key first, with `Cache-Control: public, max-age=3600`.
/// * `POST /token`: Google's OAuth2 authorization-code exchange (form fields
///   `code`, `client_id`, `client_secret`, `redirect_uri`,
///   `grant_type=authorization_code`; client credentials may instead come as HTTP
///   Basic auth). Success: `200 {"access_token","expires_in":3599,"id_token",
///   "token_type":"Bearer","scope":"openid email profile"}`. Errors: unknown or used
///   code `400 {"error":"invalid_grant"}`, wrong client id or secret
///   `401 {"error":"invalid_client"}` (the code stays usable), another
///   `grant_type` `400 {"error":"unsupported_grant_type"}`, no code
///   `400 {"error":"invalid_request"}`.
/// * `GET /.well-known/openid-configuration`: `issuer`, `jwks_uri`, `token_endpoint`.
///
/// Clones share the same server, which stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct FakeOidc {
    inner: Arc<Inner>,
}

impl FakeOidc {
    /// A fake Google (issuer `https://accounts.google.com`).
    pub async fn google() -> FakeOidc {
        FakeOidc::start(GOOGLE_ISSUER).await
    }

    /// A fake Apple (issuer `https://appleid.apple.com`).
    pub async fn apple() -> FakeOidc {
        FakeOidc::start(APPLE_ISSUER).await
    }

    /// A fake provider whose tokens carry `iss = issuer`. Generates one RSA-2048
    /// key (on tokio's blocking pool) and starts serving.
    ///
    /// # Panics
    /// Outside a tokio runtime, or if no loopback port can be bound.
    pub async fn start(issuer: impl Into<String>) -> FakeOidc {
        let key = KeyPair::generate_async().await;
        let shared = Arc::new(Shared {
            issuer: issuer.into(),
            keys: Mutex::new(Keys {
                published: vec![key],
                unpublished: None,
            }),
            codes: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            pending: PendingRequests::default(),
            jwks_requests: AtomicUsize::new(0),
            token_requests: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .route("/authorize", get(authorize))
            .route("/consent", post(consent))
            .route("/.well-known/openid-configuration", get(discovery))
            .with_state(shared.clone());
        let served = Served::start(router).await;
        FakeOidc {
            inner: Arc::new(Inner { shared, served }),
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn base_url(&self) -> String {
        self.inner.served.base_url()
    }

    /// URL of the JSON Web Key Set, `{base_url}/jwks`.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.base_url())
    }

    /// URL of the OAuth2 token endpoint, `{base_url}/token`.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url())
    }

    /// The `iss` of minted tokens (unless overridden in the claims).
    pub fn issuer(&self) -> &str {
        &self.inner.shared.issuer
    }

    /// The key id of the current signing key (the `kid` of new tokens).
    pub fn current_kid(&self) -> String {
        self.inner.shared.current_key().kid().to_owned()
    }

    /// An RS256 ID token for `claims`, signed by the current key (header `kid` names it).
    pub fn id_token(&self, claims: &IdTokenClaims) -> String {
        self.inner.shared.mint(claims)
    }

    /// Register a single-use authorization code for client `client_id` /
    /// `client_secret`; exchanging it at [`FakeOidc::token_url`] returns an ID token
    /// for `claims`, minted at exchange time with the then-current key.
    pub fn auth_code(
        &self,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
        claims: &IdTokenClaims,
    ) -> String {
        let code = format!("4/0{}", random_alnum(40));
        self.inner.shared.codes().insert(
            code.clone(),
            PendingCode {
                client_id: client_id.into(),
                client_secret: client_secret.into(),
                claims: claims.clone(),
                redirect_uri: None,
                code_challenge: None,
            },
        );
        code
    }

    /// URL of the authorization endpoint (with its consent page), `{base_url}/authorize`.
    pub fn authorization_url(&self) -> String {
        format!("{}/authorize", self.base_url())
    }

    /// Register an OAuth client of the authorization endpoint; codes granted to it are
    /// exchanged with this secret.
    pub fn register_client(&self, client_id: impl Into<String>, client_secret: impl Into<String>) {
        Shared::lock(&self.inner.shared.clients).insert(client_id.into(), client_secret.into());
    }

    /// The consent step, decided by the test without a browser: the user `claims`
    /// allows the authorization request `authorize_url` (as the server redirected
    /// to it). Returns where the provider sends the browser (with a fresh code).
    /// `Err` for a request the endpoint would refuse (unknown client, bad query).
    pub fn approve(
        &self,
        authorize_url: &str,
        claims: IdTokenClaims,
    ) -> Result<ProviderRedirect, String> {
        let request = AuthorizationRequest::from_url(authorize_url)?;
        let code = self.inner.shared.grant(&request, claims)?;
        Ok(ProviderRedirect::new(&request, Ok(&code)))
    }

    /// The consent step, refused by the user: `error=access_denied`.
    pub fn deny(&self, authorize_url: &str) -> Result<ProviderRedirect, String> {
        let request = AuthorizationRequest::from_url(authorize_url)?;
        Ok(ProviderRedirect::new(&request, Err("access_denied")))
    }

    /// Generate a new key and make it current; older keys stay published in the
    /// JWKS (so tokens they signed still verify). Returns the new `kid`.
    ///
    /// Generates RSA-2048 on the calling thread (typically well under a second).
    pub fn rotate_key(&self) -> String {
        let key = KeyPair::generate();
        let kid = key.kid().to_owned();
        self.inner.shared.keys().published.push(key);
        kid
    }

    /// Stop publishing every key but the current one (as after a provider retires
    /// old keys), so tokens signed by them no longer verify.
    pub fn retire_old_keys(&self) {
        let mut keys = self.inner.shared.keys();
        let len = keys.published.len();
        keys.published.drain(..len - 1);
    }

    /// An RS256 ID token for `claims` with a valid signature by a real key that is
    /// NOT in the JWKS (its `kid` is unknown too). For negative tests. The key is
    /// generated on first use and reused.
    pub fn id_token_with_unpublished_key(&self, claims: &IdTokenClaims) -> String {
        let key = {
            let existing = self.inner.shared.keys().unpublished.clone();
            match existing {
                Some(key) => key,
                None => {
                    let key = KeyPair::generate();
                    self.inner.shared.keys().unpublished = Some(key.clone());
                    key
                }
            }
        };
        key.sign(&claims.to_payload(&self.inner.shared.issuer))
    }

    /// How many times `GET /jwks` was served (to test the server's JWKS cache).
    pub fn jwks_requests(&self) -> usize {
        self.inner.shared.jwks_requests.load(Ordering::SeqCst)
    }

    /// How many times `POST /token` was called (successful or not).
    pub fn token_requests(&self) -> usize {
        self.inner.shared.token_requests.load(Ordering::SeqCst)
    }
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    shared.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let keys: Vec<_> = shared
        .keys()
        .published
        .iter()
        .rev()
        .map(|k| k.jwk())
        .collect();
    (
        [(header::CACHE_CONTROL, "public, max-age=3600")],
        Json(json!({ "keys": keys })),
    )
        .into_response()
}

async fn discovery(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    Json(json!({
        "issuer": shared.issuer,
        "jwks_uri": format!("http://{host}/jwks"),
        "token_endpoint": format!("http://{host}/token"),
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token"],
        "subject_types_supported": ["public"],
    }))
    .into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// `user:password` from `Authorization: Basic ...` (RFC 6749 §2.3.1 form-encodes both).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((form_unescape(user), form_unescape(password)))
}

/// Undo `application/x-www-form-urlencoded` escaping (`+` and `%XX`).
fn form_unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    shared.token_requests.fetch_add(1, Ordering::SeqCst);
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {}
        Some(_) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Invalid grant_type",
            );
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Missing grant_type",
            );
        }
    }
    let Some(code) = form.get("code").filter(|c| !c.is_empty()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: code",
        );
    };
    let (client_id, client_secret) = match basic_credentials(&headers) {
        Some(credentials) => credentials,
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    let claims = {
        let mut codes = shared.codes();
        let Some(pending) = codes.get(code) else {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Bad Request");
        };
        if pending.client_id != client_id || pending.client_secret != client_secret {
            return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized");
        }
        let redirect_ok = pending
            .redirect_uri
            .as_ref()
            .is_none_or(|r| form.get("redirect_uri") == Some(r));
        let verifier = form.get("code_verifier").map(String::as_str);
        if !redirect_ok || !pkce_matches(pending.code_challenge.as_deref(), verifier) {
            codes.remove(code);
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Bad Request");
        }
        codes.remove(code).map(|p| p.claims).expect("code present")
    };
    let id_token = shared.mint(&claims);
    Json(json!({
        "access_token": format!("ya29.{}", random_alnum(64)),
        "expires_in": 3599,
        "id_token": id_token,
        "token_type": "Bearer",
        "scope": "openid email profile",
    }))
    .into_response()
}

/// `GET /authorize`: the consent page of an authorization request.
async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let clients = Shared::lock(&shared.clients).clone();
    shared
        .pending
        .open(&shared.issuer, &query, |c| clients.contains_key(c))
}

/// `POST /consent`: back to the client with a code or `error=access_denied`.
async fn consent(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    shared.pending.decide(&form, |request, user| {
        let claims = IdTokenClaims {
            sub: user.sub.unwrap_or_else(|| "fake-user-1".to_owned()),
            email: user.email,
            name: user.name,
            ..IdTokenClaims::default()
        };
        shared.grant(request, claims)
    })
}
