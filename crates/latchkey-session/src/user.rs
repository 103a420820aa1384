//! The [`User`] handle: a user's state, tokens and profile, and the requests made as it.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Method, header};
use latchkey_protocol::routes::paths;
use latchkey_protocol::{Credential, CredentialError, ProfileResponse, ProviderType, Secret};
use latchkey_transport::HttpResponse;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::context::AppContext;
use crate::error::Error;
use crate::events::UserEvent;
use crate::profile::{CachedProfile, UserIdentity, UserProfile, UserState};
use crate::record::UserCell;
use crate::refresh::Refresher;
use crate::registry::Ending;
use crate::tokens::{TokenSet, decode_access};
use crate::wire::{self, ApiRequest, UNAUTHORIZED};

/// A user of an app: a cheap-clone handle (an `Arc` inside); clones see the same state.
///
/// Secrets never appear in its `Debug` output.
///
/// ```no_run
/// # async fn demo(user: latchkey_session::User) -> Result<(), latchkey_session::Error> {
/// println!("{} is {:?}", user.id(), user.state());
/// let token = user.valid_access_token().await?; // refreshed first when about to expire
/// # let _ = token; Ok(()) }
/// ```
///
/// A user handle keeps its app's engine alive (like realm-core's `User`), so it stays
/// usable after the `App` it came from is dropped.
#[derive(Clone)]
pub struct User {
    cell: Arc<UserCell>,
    app: Arc<AppContext>,
}

impl PartialEq for User {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
    }
}

impl Eq for User {}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.cell.data();
        f.debug_struct("User")
            .field("id", &self.cell.id())
            .field("state", &d.state)
            .field("identities", &d.profile.identities)
            .field("access_token", &d.tokens.access())
            .field("refresh_token", &d.tokens.refresh())
            .finish_non_exhaustive()
    }
}

impl User {
    /// The handle of `cell`, a user of `app`.
    pub(crate) fn new(cell: Arc<UserCell>, app: Arc<AppContext>) -> Self {
        User { cell, app }
    }

    /// The shared user behind this handle.
    pub(crate) fn cell(&self) -> &Arc<UserCell> {
        &self.cell
    }

    /// The app this user belongs to.
    pub(crate) fn context(&self) -> &Arc<AppContext> {
        &self.app
    }

    fn tokens(&self) -> Refresher<'_> {
        Refresher::new(&self.cell, &self.app)
    }

    /// The user's id (immutable).
    pub fn id(&self) -> &str {
        self.cell.id()
    }

    /// The user's state.
    pub fn state(&self) -> UserState {
        self.cell.state()
    }

    /// True when the user is logged in (realm's `user.isLoggedIn`).
    pub fn is_logged_in(&self) -> bool {
        self.state() == UserState::LoggedIn
    }

    /// True when logged in with exactly one identity, of type `anon-user`.
    pub fn is_anonymous(&self) -> bool {
        self.cell.is_anonymous()
    }

    /// The profile, as of the last login or [`refresh_profile`](Self::refresh_profile).
    pub fn profile(&self) -> UserProfile {
        UserProfile::from_data(self.cell.data().profile.data.clone())
    }

    /// The linked identities.
    pub fn identities(&self) -> Vec<UserIdentity> {
        self.cell.data().profile.identities.clone()
    }

    /// The profile `type` (`"normal"`, or `"server"` for API-key users), if known.
    pub fn user_type(&self) -> Option<String> {
        self.cell.data().profile.user_type.clone()
    }

    /// The provider used for the last login (e.g. `"local-userpass"`), if known.
    pub fn provider_type(&self) -> Option<String> {
        self.cell.data().provider_type.clone()
    }

    /// The device id the server assigned (never the all-zero id).
    pub fn device_id(&self) -> Option<String> {
        self.cell.device_id()
    }

    /// The current access token; `None` when not logged in. It may be expired: use
    /// [`valid_access_token`](Self::valid_access_token) to get a fresh one.
    pub fn access_token(&self) -> Option<String> {
        let token = self.cell.data().logged_in_access();
        token.ok().map(Secret::into_exposed)
    }

    /// The refresh token; `None` when not logged in.
    pub fn refresh_token(&self) -> Option<String> {
        let token = self.cell.data().logged_in_refresh();
        token.ok().map(Secret::into_exposed)
    }

    /// When the access token expires, by the local clock: the time of receipt plus the
    /// token's own `exp - iat` (so a skewed server or client clock does not matter).
    ///
    /// ```no_run
    /// # fn demo(user: latchkey_session::User) {
    /// if let Some(at) = user.access_token_expires_at() {
    ///     let left = at.duration_since(std::time::SystemTime::now()).unwrap_or_default();
    ///     println!("token valid for {left:?}");
    /// }
    /// # }
    /// ```
    pub fn access_token_expires_at(&self) -> Option<SystemTime> {
        let d = self.cell.data();
        match d.state {
            UserState::LoggedIn => d.tokens.expires_at(),
            _ => None,
        }
    }

    /// The custom user data: the `user_data` claim of the current access token.
    /// `Ok(None)` when logged out or when there is none; a decode error when it does not
    /// deserialize into `T`.
    ///
    /// ```no_run
    /// # async fn demo(user: latchkey_session::User) -> Result<(), latchkey_session::Error> {
    /// #[derive(serde::Deserialize)]
    /// struct Prefs { theme: String }
    /// user.refresh_custom_data().await?;
    /// if let Some(prefs) = user.custom_data::<Prefs>()? {
    ///     println!("theme: {}", prefs.theme);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn custom_data<T: DeserializeOwned>(&self) -> Result<Option<T>, Error> {
        let token = self.cell.data().logged_in_access();
        let Ok(token) = token else {
            return Ok(None);
        };
        let claims = decode_access(&token)?;
        match claims.user_data {
            None => Ok(None),
            Some(map) => serde_json::from_value(Value::Object(map))
                .map(Some)
                .map_err(|e| Error::decode(format!("custom user data: {e}"), None)),
        }
    }

    /// An access token that is not about to expire: refreshed first (single-flight) when
    /// `now >= local expiry - buffer` (see [`refresh_buffer`](crate::refresh_buffer)). If
    /// that refresh fails but the old token has not expired yet, the old token is returned;
    /// if the session is over the error is
    /// [`ErrorKind::SessionExpired`](crate::ErrorKind::SessionExpired).
    pub async fn valid_access_token(&self) -> Result<String, Error> {
        Ok(self.tokens().valid_access().await?.0.into_exposed())
    }

    /// Refresh the access token now (`POST /auth/session`), single-flight: concurrent
    /// callers share one request and its result.
    ///
    /// A 401 means the session is over: the user becomes `LoggedOut` (tokens cleared,
    /// profile kept), [`UserEvent::SessionExpired`] is sent and the error is
    /// [`ErrorKind::SessionExpired`](crate::ErrorKind::SessionExpired). An anonymous user,
    /// who can never log in again, is then removed (state `Removed`, a
    /// [`UserEvent::Removed`] follows). Any other failure changes nothing.
    pub async fn refresh_access_token(&self) -> Result<(), Error> {
        self.tokens().refresh(None).await
    }

    /// Refresh the custom user data: refreshes the access token, whose `user_data` claim
    /// [`custom_data`](Self::custom_data) then reads.
    pub async fn refresh_custom_data(&self) -> Result<(), Error> {
        self.refresh_access_token().await
    }

    /// Re-read the profile (`GET /auth/profile`, refresh-and-replay on 401) and persist it.
    pub async fn refresh_profile(&self) -> Result<UserProfile, Error> {
        let url = self.app.routes().await?.profile();
        let resp = self
            .send_authenticated(|t| {
                wire::build(Method::GET, Some(paths::PROFILE), &url, Some(t), None)
            })
            .await?;
        let resp = wire::check_status(resp)?;
        let profile: ProfileResponse = wire::parse_json(&resp, "profile")?;
        self.app
            .registry()
            .update(&self.cell, |d| {
                d.profile = CachedProfile::from_response(profile);
            })
            .await;
        Ok(self.profile())
    }

    /// Link another identity to this user: `POST .../providers/{provider}/login?link=true`
    /// with the credential body plus `options.device`, authenticated with this user's
    /// **access** token (refresh-and-replay once on 401, as realm-web does). The new access
    /// token replaces the old one, the refresh token is kept, the profile is re-read
    /// (`GET /auth/profile`, now listing the new identity) and the user becomes current.
    ///
    /// Anonymous credentials are refused locally with an
    /// [`ErrorKind::Credential`](crate::ErrorKind::Credential) error (realm-core's
    /// "Cannot add anonymous credentials to an existing user"); a user who is not logged in
    /// gets [`ErrorKind::NotLoggedIn`](crate::ErrorKind::NotLoggedIn). A link response for
    /// another user id is a [`ErrorKind::Decode`](crate::ErrorKind::Decode) error.
    ///
    /// ```no_run
    /// # async fn demo(user: latchkey_session::User, email: &dyn latchkey_session::Credential)
    /// # -> Result<(), latchkey_session::Error> {
    /// user.link_credentials(email).await?;
    /// assert!(user.identities().len() >= 2);
    /// # Ok(()) }
    /// ```
    pub async fn link_credentials(&self, credential: &dyn Credential) -> Result<(), Error> {
        #[derive(Deserialize)]
        struct LinkResponse {
            access_token: Secret,
            #[serde(default)]
            user_id: Option<String>,
        }
        let provider = credential.provider_name().to_owned();
        if provider == ProviderType::Anonymous.as_str() {
            return Err(Error::credential(CredentialError::new(
                "cannot add anonymous credentials to an existing user",
            )));
        }
        if self.state() != UserState::LoggedIn {
            return Err(Error::not_logged_in(
                "the user must be logged in to link credentials",
            ));
        }
        let mut body = credential.login_body()?;
        body.insert(
            "options".into(),
            serde_json::json!({ "device": self.app.device_info() }),
        );
        let body = Value::Object(body);
        let url = self.app.routes().await?.login(&provider, true);
        let resp = self
            .send_authenticated(|t| {
                let body = Some(body.clone());
                wire::build(Method::POST, Some(paths::LOGIN), &url, Some(t), body)
            })
            .await?;
        let resp = wire::check_status(resp)?;
        let link: LinkResponse = wire::parse_json(&resp, "link response")?;
        if link.user_id.as_deref().is_some_and(|id| id != self.id()) {
            return Err(Error::decode("the link response is for another user", None));
        }
        let tokens = TokenSet::access_only(link.access_token, self.app.now())?;
        let applied = self
            .app
            .registry()
            .update(&self.cell, |d| {
                if d.state == UserState::LoggedIn {
                    d.tokens.set(tokens);
                    true
                } else {
                    false
                }
            })
            .await;
        if !applied {
            return Err(Error::not_logged_in("the user logged out while linking"));
        }
        self.refresh_profile().await?;
        // Only fails if the user logged out meanwhile; then there is nothing to make current.
        let _ = self.app.registry().switch_to_now(&self.cell).await;
        Ok(())
    }

    /// Log out: the tokens are cleared locally first (state `LoggedOut`; anonymous users
    /// become `Removed`), the change is persisted, current moves to the next logged-in user,
    /// then the session is revoked with `DELETE /auth/session`.
    ///
    /// Returns `Ok(())` once the local logout is done, **even if the revoke request fails**
    /// (offline, server error): the failure is logged at `warn` level. Logging out a user who
    /// is not logged in is a no-op.
    ///
    /// In-memory state is authoritative: if the user store cannot record the logout (the
    /// tokens may then still be on disk), the user **is** logged out (or, if anonymous,
    /// removed) in memory, the session is still revoked, and the error is
    /// [`ErrorKind::Store`](crate::ErrorKind::Store).
    pub async fn log_out(&self) -> Result<(), Error> {
        let target = if self.is_anonymous() {
            UserState::Removed
        } else {
            UserState::LoggedOut
        };
        self.log_out_as(target).await
    }

    /// Log out, then leave the user in `target` (`LoggedOut`, or `Removed` to forget it).
    pub(crate) async fn log_out_as(&self, target: UserState) -> Result<(), Error> {
        let app = &self.app;
        let ended = app
            .registry()
            .end_session(&self.cell, |d| {
                if d.state != UserState::LoggedIn {
                    return None;
                }
                let refresh = d.tokens.refresh().cloned();
                d.end_session(UserState::LoggedOut);
                Some(Ending {
                    value: refresh,
                    event: UserEvent::LoggedOut {
                        user_id: self.id().to_owned(),
                    },
                    remove: target == UserState::Removed,
                })
            })
            .await;
        // What is left in the store: the user logged out, or (removed) no record at all. The
        // store write goes on while the session is revoked.
        let Some((refresh, stored)) = ended else {
            return Ok(());
        };
        if let Some(refresh) = refresh {
            app.revoke(&refresh).await;
        }
        stored.result().await.map_err(Error::store_not_cleared)
    }

    /// Send an authenticated request to any endpoint of the app, with this user's access
    /// token (refreshed first when about to expire). A 401 answer triggers one refresh and
    /// one replay; the replay's answer is returned as is, whatever its status.
    ///
    /// A URI without scheme and host (e.g. `/api/client/v2.0/app/x/functions/call`) is
    /// resolved against the app's host from the location endpoint. `Authorization` is set,
    /// and `Accept: application/json` added if absent.
    ///
    /// ```no_run
    /// # async fn demo(user: latchkey_session::User) -> Result<(), latchkey_session::Error> {
    /// let req = http::Request::post("/api/client/v2.0/app/myapp-abcde/functions/call")
    ///     .header("content-type", "application/json")
    ///     .body(bytes::Bytes::from_static(br#"{"name":"sum","arguments":[1,2]}"#))
    ///     .expect("valid request");
    /// let resp = user.request(req).await?;
    /// println!("{}", resp.status());
    /// # Ok(()) }
    /// ```
    pub async fn request(&self, request: http::Request<Bytes>) -> Result<HttpResponse, Error> {
        let (parts, body) = request.into_parts();
        let uri = if parts.uri.authority().is_none() {
            let routes = self.app.routes().await?;
            let pq = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            format!("{}{}", routes.host(), pq)
                .parse::<http::Uri>()
                .map_err(|e| Error::invalid_config(format!("invalid request URI: {e}")))?
        } else {
            parts.uri.clone()
        };
        // The application built this request: its route is read from its path.
        let route = wire::route_of(uri.path());
        self.send_authenticated(|token| {
            let mut req = http::Request::new(body.clone());
            *req.method_mut() = parts.method.clone();
            *req.uri_mut() = uri.clone();
            *req.version_mut() = parts.version;
            *req.headers_mut() = parts.headers.clone();
            req.headers_mut()
                .insert(header::AUTHORIZATION, wire::bearer_value(token)?);
            req.headers_mut()
                .entry(header::ACCEPT)
                .or_insert(HeaderValue::from_static("application/json"));
            Ok(ApiRequest {
                request: req,
                route,
            })
        })
        .await
    }

    /// Send a JSON request for `route` (a template of
    /// [`latchkey_protocol::routes::paths`], or `None` outside the client API) to `url`,
    /// authenticated with this user's **refresh** token (the user API-key routes use it),
    /// and check its status. `Accept: application/json` is sent, and
    /// `Content-Type: application/json` with a body.
    ///
    /// A 401 means the refresh token is no longer valid, and is handled exactly like a
    /// refresh answered 401 (see [`refresh_access_token`](Self::refresh_access_token)): the
    /// tokens are cleared locally and the user becomes `LoggedOut` (profile kept; an
    /// anonymous user is then removed, as after a failed refresh), one
    /// [`UserEvent::SessionExpired`] is sent (no `LoggedOut` event), no
    /// `DELETE /auth/session` is sent, and the error is
    /// [`ErrorKind::SessionExpired`](crate::ErrorKind::SessionExpired). Other non-2xx
    /// answers are server errors. For provider crates' client APIs.
    ///
    /// ```no_run
    /// # async fn demo(user: latchkey_session::User, core: latchkey_session::AppCore) -> Result<(), latchkey_session::Error> {
    /// use latchkey_protocol::routes::paths;
    /// let url = core.routes().await?.api_keys();
    /// let resp = user.send_with_refresh_token(http::Method::GET, paths::API_KEYS, &url, None).await?;
    /// # let _ = resp; Ok(()) }
    /// ```
    pub async fn send_with_refresh_token(
        &self,
        method: Method,
        route: impl Into<Option<&'static str>>,
        url: &str,
        body: Option<Value>,
    ) -> Result<HttpResponse, Error> {
        let refresh = self.cell.data().logged_in_refresh()?;
        let req = wire::build(method, route.into(), url, Some(&refresh), body)?;
        let resp = self.app.send(req).await?;
        if resp.status() == UNAUTHORIZED {
            // The same rule as a refresh answered 401: the session is over. No revoke request
            // is sent (the server just rejected this token).
            return Err(self.tokens().session_rejected(&resp, &refresh).await);
        }
        wire::check_status(resp)
    }

    /// Send an access-token request built by `build`, with the 401 → refresh → replay-once
    /// rule.
    pub(crate) async fn send_authenticated(
        &self,
        build: impl Fn(&Secret) -> Result<ApiRequest, Error>,
    ) -> Result<HttpResponse, Error> {
        self.tokens().send_authenticated(build).await
    }
}
