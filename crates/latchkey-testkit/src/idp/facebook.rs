//! A fake Facebook Graph API: `debug_token` and `me`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use rand::Rng as _;
use serde_json::{Map, Value, json};

use super::consent::{AuthorizationRequest, PendingRequests, ProviderRedirect, pkce_matches};
use super::serve::{Served, random_alnum, unix_now};

/// Lifetime of tokens from [`FakeFacebook::issue_token`] (Facebook's long-lived tokens).
const TOKEN_LIFETIME_SECS: i64 = 60 * 24 * 3600;
/// Application name reported for tokens of the fake's own app.
const APP_NAME: &str = "Latchkey Test App";
/// Application name reported for tokens of the other app.
const OTHER_APP_NAME: &str = "Some Other App";

/// A Facebook user, as the fake Graph API's `me` endpoint describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FacebookUser {
    /// App-scoped user id (`id`, and `user_id` in `debug_token`).
    pub id: String,
    /// Full name (`name`).
    pub name: String,
    /// Email (`email`); `None` for users without a (shared) email, as happens on Facebook.
    pub email: Option<String>,
    /// First name (`first_name`).
    pub first_name: String,
    /// Last name (`last_name`).
    pub last_name: String,
    /// Profile picture URL (`picture.data.url`); `None` leaves `picture` out.
    pub picture_url: Option<String>,
}

impl FacebookUser {
    /// A user with id `id` and name `name`; `first_name`/`last_name` are the first
    /// word and the rest of `name`. No email, no picture.
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> FacebookUser {
        let name = name.into();
        let (first, last) = name.split_once(' ').unwrap_or((&name, ""));
        FacebookUser {
            id: id.into(),
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            name,
            email: None,
            picture_url: None,
        }
    }

    /// Set the email.
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Set the picture URL.
    pub fn picture_url(mut self, url: impl Into<String>) -> Self {
        self.picture_url = Some(url.into());
        self
    }
}

#[derive(Debug, Clone)]
struct IssuedToken {
    user: FacebookUser,
    /// The app the token was issued to.
    app_id: String,
    expires_at: i64,
    revoked: bool,
}

/// A code granted at the consent step, waiting to be exchanged.
#[derive(Debug)]
struct GrantedCode {
    user: FacebookUser,
    redirect_uri: String,
    code_challenge: Option<String>,
}

#[derive(Debug)]
struct Shared {
    codes: Mutex<HashMap<String, GrantedCode>>,
    pending: PendingRequests,
    app_id: String,
    app_secret: String,
    other_app_id: String,
    tokens: Mutex<HashMap<String, IssuedToken>>,
    debug_token_requests: AtomicUsize,
    me_requests: AtomicUsize,
}

impl Shared {
    fn tokens(&self) -> MutexGuard<'_, HashMap<String, IssuedToken>> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, user: FacebookUser, app_id: String, expires_at: i64) -> String {
        let token = format!("EAA{}", random_alnum(120));
        self.tokens().insert(
            token.clone(),
            IssuedToken {
                user,
                app_id,
                expires_at,
                revoked: false,
            },
        );
        token
    }

    fn codes(&self) -> MutexGuard<'_, HashMap<String, GrantedCode>> {
        self.codes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Grant a code for `request` to `user`.
    fn grant(&self, request: &AuthorizationRequest, user: FacebookUser) -> Result<String, String> {
        if request.client_id != self.app_id {
            return Err(format!("unknown client_id {}", request.client_id));
        }
        let code = format!("AQ{}", random_alnum(60));
        self.codes().insert(
            code.clone(),
            GrantedCode {
                user,
                redirect_uri: request.redirect_uri.clone(),
                code_challenge: request.code_challenge.clone(),
            },
        );
        Ok(code)
    }

    fn app_name(&self, app_id: &str) -> &'static str {
        if app_id == self.app_id {
            APP_NAME
        } else {
            OTHER_APP_NAME
        }
    }
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    served: Served,
}

/// A fake Facebook Graph API on `127.0.0.1:<free port>`.
///
/// Routes (also under a version prefix, e.g. `/v19.0/debug_token`):
/// * `GET /debug_token?input_token=T&access_token={app_id}|{app_secret}`: with the
///   right app token, `200 {"data":{"app_id","type":"USER","application","is_valid",
///   "user_id","expires_at","data_access_expires_at","issued_at","scopes":["email",
///   "public_profile"]}}`; invalid tokens (expired, revoked) get `is_valid: false` plus
///   `data.error {code: 190, subcode, message}`; unknown tokens get
///   `{"data":{"is_valid":false,"scopes":[],"error":{..}}}`. A wrong or missing app
///   token gets `400 {"error":{"message","type":"OAuthException","code":190}}`.
/// * `GET /me?fields=id,name,email,first_name,last_name,picture&access_token=T` (or
///   `Authorization: Bearer T`): the requested fields of the token's user (`picture`
///   as `{"data":{"url",..}}`; `email` only if the user has one; no `fields` means
///   `id,name`). Invalid, expired or revoked tokens get the OAuthException 400.
///   Tokens issued to another app still work here, as on Facebook.
///
/// Clones share the same server, which stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct FakeFacebook {
    inner: Arc<Inner>,
}

impl FakeFacebook {
    /// Start a fake Graph API with a random app id and app secret.
    ///
    /// # Panics
    /// Outside a tokio runtime, or if no loopback port can be bound.
    pub async fn start() -> FakeFacebook {
        let mut rng = rand::thread_rng();
        let app_id = rng
            .gen_range(100_000_000_000_000u64..999_999_999_999_999)
            .to_string();
        let mut other_app_id = app_id.clone();
        while other_app_id == app_id {
            other_app_id = rng
                .gen_range(100_000_000_000_000u64..999_999_999_999_999)
                .to_string();
        }
        let app_secret: String = (0..32)
            .map(|_| format!("{:x}", rng.gen_range(0..16u8)))
            .collect();
        let shared = Arc::new(Shared {
            codes: Mutex::new(HashMap::new()),
            pending: PendingRequests::default(),
            app_id,
            app_secret,
            other_app_id,
            tokens: Mutex::new(HashMap::new()),
            debug_token_requests: AtomicUsize::new(0),
            me_requests: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/debug_token", get(debug_token))
            .route("/me", get(me))
            .route("/{version}/debug_token", get(debug_token))
            .route("/{version}/me", get(me))
            .route("/dialog/oauth", get(dialog))
            .route("/{version}/dialog/oauth", get(dialog))
            .route("/consent", post(consent))
            .route("/oauth/access_token", get(exchange))
            .route("/{version}/oauth/access_token", get(exchange))
            .with_state(shared.clone());
        let served = Served::start(router).await;
        FakeFacebook {
            inner: Arc::new(Inner { shared, served }),
        }
    }

    /// Base URL of the Graph API, e.g. `http://127.0.0.1:41234` (no trailing slash,
    /// no version).
    pub fn graph_url(&self) -> String {
        self.inner.served.base_url()
    }

    /// The app id the server must be configured with.
    pub fn app_id(&self) -> &str {
        &self.inner.shared.app_id
    }

    /// The app secret the server must be configured with.
    pub fn app_secret(&self) -> &str {
        &self.inner.shared.app_secret
    }

    /// The app token `{app_id}|{app_secret}` that `debug_token` requires.
    pub fn app_token(&self) -> String {
        format!("{}|{}", self.app_id(), self.app_secret())
    }

    /// The app id `debug_token` reports for [`FakeFacebook::token_for_other_app`] tokens.
    pub fn other_app_id(&self) -> &str {
        &self.inner.shared.other_app_id
    }

    fn insert(&self, user: FacebookUser, app_id: String, expires_at: i64) -> String {
        self.inner.shared.insert(user, app_id, expires_at)
    }

    /// URL of the Login dialog (the authorization endpoint with its consent page),
    /// `{base_url}/dialog/oauth`.
    pub fn authorization_url(&self) -> String {
        format!("{}/dialog/oauth", self.graph_url())
    }

    /// The consent step, decided by the test without a browser: `user` allows the
    /// authorization request `authorize_url`. Returns where Facebook sends the
    /// browser (with a fresh code). `Err` for a request the dialog would refuse.
    pub fn approve(
        &self,
        authorize_url: &str,
        user: FacebookUser,
    ) -> Result<ProviderRedirect, String> {
        let request = AuthorizationRequest::from_url(authorize_url)?;
        let code = self.inner.shared.grant(&request, user)?;
        Ok(ProviderRedirect::new(&request, Ok(&code)))
    }

    /// The consent step, refused by the user: `error=access_denied`.
    pub fn deny(&self, authorize_url: &str) -> Result<ProviderRedirect, String> {
        let request = AuthorizationRequest::from_url(authorize_url)?;
        Ok(ProviderRedirect::new(&request, Err("access_denied")))
    }

    /// A valid user access token (random, opaque) of this app for `user`, expiring
    /// in 60 days.
    pub fn issue_token(&self, user: FacebookUser) -> String {
        let app_id = self.app_id().to_owned();
        self.insert(user, app_id, unix_now() + TOKEN_LIFETIME_SECS)
    }

    /// A token of this app for `user` that expired an hour ago.
    pub fn expired_token(&self, user: FacebookUser) -> String {
        let app_id = self.app_id().to_owned();
        self.insert(user, app_id, unix_now() - 3600)
    }

    /// A valid token for `user`, but issued to another app: `debug_token` reports
    /// `app_id` = [`FakeFacebook::other_app_id`] (and `is_valid: true`).
    pub fn token_for_other_app(&self, user: FacebookUser) -> String {
        let app_id = self.other_app_id().to_owned();
        self.insert(user, app_id, unix_now() + TOKEN_LIFETIME_SECS)
    }

    /// Invalidate `token` (as when the user logs out or removes the app). Unknown
    /// tokens are ignored.
    pub fn revoke(&self, token: &str) {
        if let Some(issued) = self.inner.shared.tokens().get_mut(token) {
            issued.revoked = true;
        }
    }

    /// How many times `debug_token` was called.
    pub fn debug_token_requests(&self) -> usize {
        self.inner
            .shared
            .debug_token_requests
            .load(Ordering::SeqCst)
    }

    /// How many times `me` was called.
    pub fn me_requests(&self) -> usize {
        self.inner.shared.me_requests.load(Ordering::SeqCst)
    }
}

fn oauth_exception(message: &str, code: u32) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "error": {
                "message": message,
                "type": "OAuthException",
                "code": code,
                "fbtrace_id": random_alnum(11),
            }
        })),
    )
        .into_response()
}

/// `access_token` from the query, else from `Authorization: Bearer` / `OAuth`.
fn access_token(query: &HashMap<String, String>, headers: &HeaderMap) -> Option<String> {
    if let Some(token) = query.get("access_token") {
        return Some(token.clone());
    }
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("OAuth "))
        .map(|t| t.trim().to_owned())
}

/// Why a known token is not valid: `(subcode, message)`.
fn invalidity(token: &IssuedToken, now: i64) -> Option<(u32, String)> {
    if token.revoked {
        Some((
            460,
            "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.".to_owned(),
        ))
    } else if token.expires_at <= now {
        Some((
            463,
            format!(
                "Error validating access token: Session has expired at unix time {}. The current unix time is {}.",
                token.expires_at, now
            ),
        ))
    } else {
        None
    }
}

async fn debug_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    shared.debug_token_requests.fetch_add(1, Ordering::SeqCst);
    let app_token = format!("{}|{}", shared.app_id, shared.app_secret);
    match access_token(&query, &headers) {
        Some(token) if token == app_token => {}
        Some(_) => return oauth_exception("Invalid OAuth access token signature.", 190),
        None => {
            return oauth_exception("An access token is required to request this resource.", 104);
        }
    }
    let Some(input) = query.get("input_token") else {
        return oauth_exception("(#100) The parameter input_token is required", 100);
    };
    let issued = shared.tokens().get(input).cloned();
    let Some(issued) = issued else {
        return Json(json!({
            "data": {
                "error": {
                    "code": 190,
                    "message": "Invalid OAuth access token - Cannot parse access token",
                },
                "is_valid": false,
                "scopes": [],
            }
        }))
        .into_response();
    };
    let now = unix_now();
    let mut data = Map::new();
    data.insert("app_id".into(), Value::from(issued.app_id.clone()));
    data.insert("type".into(), Value::from("USER"));
    data.insert(
        "application".into(),
        Value::from(shared.app_name(&issued.app_id)),
    );
    data.insert(
        "data_access_expires_at".into(),
        Value::from(issued.expires_at + 30 * 24 * 3600),
    );
    data.insert("expires_at".into(), Value::from(issued.expires_at));
    data.insert(
        "issued_at".into(),
        Value::from(issued.expires_at - TOKEN_LIFETIME_SECS),
    );
    let invalid = invalidity(&issued, now);
    data.insert("is_valid".into(), Value::from(invalid.is_none()));
    if let Some((subcode, message)) = invalid {
        data.insert(
            "error".into(),
            json!({ "code": 190, "subcode": subcode, "message": message }),
        );
    }
    data.insert("scopes".into(), json!(["email", "public_profile"]));
    data.insert("user_id".into(), Value::from(issued.user.id.clone()));
    Json(json!({ "data": data })).into_response()
}

async fn me(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    shared.me_requests.fetch_add(1, Ordering::SeqCst);
    let Some(token) = access_token(&query, &headers) else {
        return oauth_exception(
            "An active access token must be used to query information about the current user.",
            2500,
        );
    };
    let issued = shared.tokens().get(&token).cloned();
    let Some(issued) = issued else {
        return oauth_exception("Invalid OAuth access token data.", 190);
    };
    if let Some((_, message)) = invalidity(&issued, unix_now()) {
        return oauth_exception(&message, 190);
    }
    let fields = query.get("fields").map(String::as_str).unwrap_or("id,name");
    let user = &issued.user;
    let mut body = Map::new();
    for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        // `picture.type(large)` and similar modifiers select the same picture here.
        let base = field.split(['.', '{']).next().unwrap_or(field);
        let value = match base {
            "id" => Some(Value::from(user.id.clone())),
            "name" => Some(Value::from(user.name.clone())),
            "first_name" => Some(Value::from(user.first_name.clone())),
            "last_name" => Some(Value::from(user.last_name.clone())),
            "email" => user.email.clone().map(Value::from),
            "picture" => user.picture_url.as_ref().map(|url| {
                json!({
                    "data": {
                        "height": 50,
                        "is_silhouette": false,
                        "url": url,
                        "width": 50,
                    }
                })
            }),
            other => {
                return oauth_exception(
                    &format!(
                        "(#100) Tried accessing nonexisting field ({other}) on node type (User)"
                    ),
                    100,
                );
            }
        };
        if let Some(value) = value {
            body.insert(base.to_owned(), value);
        }
    }
    // Facebook always includes the id.
    body.entry("id")
        .or_insert_with(|| Value::from(user.id.clone()));
    Json(Value::Object(body)).into_response()
}

/// `GET /dialog/oauth`: the Login dialog's consent page.
async fn dialog(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    shared
        .pending
        .open("Facebook", &query, |client| client == shared.app_id)
}

/// `POST /consent`: back to the client with a code or `error=access_denied`.
async fn consent(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    shared.pending.decide(&form, |request, consent| {
        let mut user = FacebookUser::new(
            consent.sub.unwrap_or_else(|| "10000000001".to_owned()),
            consent.name.unwrap_or_else(|| "Some One".to_owned()),
        );
        user.email = consent.email;
        shared.grant(request, user)
    })
}

/// `GET /oauth/access_token?client_id&client_secret&redirect_uri&code[&code_verifier]`:
/// `{"access_token","token_type":"bearer","expires_in"}`, or the OAuthException 400.
async fn exchange(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| query.get(k).map(String::as_str);
    if get("client_id") != Some(shared.app_id.as_str())
        || get("client_secret") != Some(shared.app_secret.as_str())
    {
        return oauth_exception("Error validating client secret.", 1);
    }
    let Some(granted) = get("code").and_then(|c| shared.codes().remove(c)) else {
        return oauth_exception("This authorization code has been used.", 100);
    };
    if get("redirect_uri") != Some(granted.redirect_uri.as_str())
        || !pkce_matches(granted.code_challenge.as_deref(), get("code_verifier"))
    {
        return oauth_exception(
            "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
            100,
        );
    }
    let token = shared.insert(
        granted.user,
        shared.app_id.clone(),
        unix_now() + TOKEN_LIFETIME_SECS,
    );
    Json(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": TOKEN_LIFETIME_SECS,
    }))
    .into_response()
}
