//! [`AppCore`]: the app's public operations — login, the current user and the other users
//! on this device, removal and deletion — and the client-API plumbing provider crates
//! build on.

use std::sync::Arc;

use base64::Engine as _;
use http::Method;
use latchkey_protocol::routes::{Routes, paths};
use latchkey_protocol::{Credential, LoginResponse};
use latchkey_transport::{HttpResponse, SharedTransport};
use serde_json::Value;

use crate::config::AppConfig;
use crate::context::AppContext;
use crate::error::Error;
use crate::events::EventReceiver;
use crate::profile::{CachedProfile, UserState};
use crate::record::{UserCell, is_device_id};
use crate::redirect::{self, RedirectProvider};
use crate::store::UserStore;
use crate::tokens::TokenSet;
use crate::user::User;
use crate::wire;

/// The engine behind `latchkey::App`: one app id, its users, their sessions.
///
/// Cheap to clone (an `Arc` inside). Building one reads the store and touches no network;
/// the location is fetched lazily before the first request.
///
/// ```
/// use std::sync::Arc;
/// use latchkey_session::{AppConfig, AppCore, MemoryStore};
/// use latchkey_transport::{transport_fn, SharedTransport, TransportError, TransportErrorKind};
///
/// let offline = SharedTransport::new(transport_fn(|_req, _opts| async {
///     Err(TransportError::new(TransportErrorKind::Connect, "offline"))
/// }));
/// let app = AppCore::new(
///     AppConfig::new("myapp-abcde", "http://127.0.0.1:8080"),
///     offline,
///     Arc::new(MemoryStore::new()),
/// )?;
/// assert!(app.current_user().is_none());
/// # Ok::<(), latchkey_session::Error>(())
/// ```
#[derive(Clone)]
pub struct AppCore {
    app: Arc<AppContext>,
}

impl std::fmt::Debug for AppCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCore")
            .field("app_id", &self.config().app_id())
            .field("base_url", &self.config().base_url())
            .field("users", &self.all_users().len())
            .finish_non_exhaustive()
    }
}

impl AppCore {
    /// Build the engine and load its users from `store` (no network).
    ///
    /// Fails with [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) for a bad
    /// base URL and [`ErrorKind::Store`](crate::ErrorKind::Store) when the store cannot be read.
    pub fn new(
        config: AppConfig,
        transport: SharedTransport,
        store: Arc<dyn UserStore>,
    ) -> Result<Self, Error> {
        let app = AppContext::new(config, transport, store)?;
        Ok(AppCore { app: Arc::new(app) })
    }

    fn handle(&self, cell: Arc<UserCell>) -> User {
        User::new(cell, self.app.clone())
    }

    /// The configuration.
    pub fn config(&self) -> &AppConfig {
        self.app.config()
    }

    /// The app id.
    pub fn app_id(&self) -> &str {
        self.config().app_id()
    }

    /// Subscribe to user events (logins, refreshes, logouts, expiries, removals, switches).
    ///
    /// A slow receiver that falls more than 256 events behind gets
    /// [`RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged).
    pub fn subscribe(&self) -> EventReceiver {
        self.app.subscribe()
    }

    /// The current user: the last user logged in or switched to, while it is logged in.
    pub fn current_user(&self) -> Option<User> {
        self.app.registry().current().map(|u| self.handle(u))
    }

    /// Every user known on this device that is not removed (logged in or logged out),
    /// oldest login first.
    pub fn all_users(&self) -> Vec<User> {
        let all = self.app.registry().all();
        all.into_iter().map(|u| self.handle(u)).collect()
    }

    /// Make `user` the current user. It must be logged in and belong to this app. Made at
    /// once in memory; written to the user store right after, off the async executor (a
    /// failure is logged, and written again with the next change).
    pub fn switch_user(&self, user: &User) -> Result<(), Error> {
        self.app.registry().switch_to(user.cell())
    }

    /// Log in with any credential.
    ///
    /// With an anonymous credential that allows reuse, a logged-in anonymous user is
    /// returned (and made current) without a network call. Otherwise: location (once),
    /// `POST .../login` with the credential body plus `options.device`, then
    /// `GET /auth/profile` with the new access token (a profile failure fails the login);
    /// then the user is created or updated, persisted, made current, and
    /// [`UserEvent::LoggedIn`](crate::UserEvent::LoggedIn) is sent.
    ///
    /// The user is saved (with the current user, in one write) **before** anything changes
    /// in memory. If the user store cannot save it, the login fails with an
    /// [`ErrorKind::Store`](crate::ErrorKind::Store) error and is undone: nothing changed on
    /// this device (in memory or in the store), and the new session is revoked on the
    /// server (best effort).
    pub async fn log_in(&self, credential: &dyn Credential) -> Result<User, Error> {
        let provider = credential.provider_name().to_owned();
        if credential.reuse_anonymous_user()
            && let Some(user) = self.app.registry().anonymous_user()
        {
            let user = self.handle(user);
            tracing::debug!(user_id = user.id(), "reusing the logged-in anonymous user");
            self.app.registry().switch_to_now(user.cell()).await?;
            return Ok(user);
        }
        let mut body = credential.login_body()?;
        let device = self.app.device_info();
        body.insert("options".into(), serde_json::json!({ "device": device }));
        let url = self.app.routes().await?.login(&provider, false);
        let req = wire::build(
            Method::POST,
            Some(paths::LOGIN),
            &url,
            None,
            Some(Value::Object(body)),
        )?;
        let resp = self.app.send_checked(req).await?;
        let login: LoginResponse = wire::parse_json(&resp, "login response")?;
        self.complete_login(provider, login).await
    }

    /// The URL of a browser sign-in with `provider` (route 1c of protocol.md: `GET
    /// .../auth/providers/{provider}/login?state&redirect&device`), for the person's
    /// browser. The server sends the browser back to `redirect` (which must be one of the
    /// provider's `redirect_uris` on the server) with the result in the URL fragment;
    /// give that fragment and the same `state` to
    /// [`complete_redirect_login`](Self::complete_redirect_login).
    ///
    /// `state` should be random and used once (1 to 256 characters). Fetches the
    /// location first if needed.
    pub async fn redirect_login_url(
        &self,
        provider: RedirectProvider,
        redirect: &str,
        state: &str,
    ) -> Result<String, Error> {
        if state.is_empty() || state.len() > 256 {
            return Err(Error::invalid_argument(
                "the sign-in state must be 1 to 256 characters",
            ));
        }
        let device = serde_json::to_vec(&self.app.device_info())
            .map_err(|e| Error::invalid_argument(format!("device information: {e}")))?;
        let device = base64::engine::general_purpose::STANDARD.encode(device);
        let url = self.app.routes().await?.login(provider.name(), false);
        Ok(format!(
            "{url}?{}",
            redirect::login_query(state, redirect, &device)
        ))
    }

    /// Finish a browser sign-in from the fragment (with or without its `#`) of the URL the
    /// server redirected to, started with `state` by
    /// [`redirect_login_url`](Self::redirect_login_url): the same steps as
    /// [`log_in`](Self::log_in) after its request (profile fetched, user saved and made
    /// current, [`UserEvent::LoggedIn`](crate::UserEvent::LoggedIn) sent).
    ///
    /// Errors: [`ErrorKind::StateMismatch`](crate::ErrorKind::StateMismatch) when the
    /// fragment holds another state or app id (nothing is read further);
    /// [`ErrorKind::SignInFailed`](crate::ErrorKind::SignInFailed) with the server's
    /// `_baas_error` (consent denied, ...) or when there is no result at all.
    pub async fn complete_redirect_login(
        &self,
        provider: RedirectProvider,
        fragment: &str,
        state: &str,
    ) -> Result<User, Error> {
        let login = redirect::parse_fragment(fragment, self.app_id(), state)?;
        self.complete_login(provider.name().to_owned(), login).await
    }

    /// A login response becomes a user: profile fetched, user saved and made current (see
    /// [`log_in`](Self::log_in) for the undo on a store failure).
    async fn complete_login(&self, provider: String, login: LoginResponse) -> Result<User, Error> {
        let refresh_token = login
            .refresh_token
            .ok_or_else(|| Error::decode("no refresh token in the login response", None))?;
        let tokens =
            TokenSet::from_login(login.access_token, refresh_token.clone(), self.app.now())?;
        let profile = self.app.fetch_profile(tokens.access()).await?;
        let device_id = Some(login.device_id).filter(|d| is_device_id(d));
        let saved = self.app.registry().logged_in(login.user_id, |d| {
            d.state = UserState::LoggedIn;
            d.tokens.set(tokens);
            d.profile = CachedProfile::from_response(profile);
            if device_id.is_some() {
                d.device_id = device_id;
            }
            d.provider_type = Some(provider);
        });
        match saved.await {
            Ok(user) => Ok(self.handle(user)),
            Err(e) => {
                // Nothing changed on this device: end the new session on the server too.
                self.app.revoke(&refresh_token).await;
                Err(Error::store_not_saved(e))
            }
        }
    }

    /// Remove `user` from this device: logged in → logged out with a best-effort
    /// `DELETE /auth/session`; then forgotten locally (state `Removed`). The server account
    /// is untouched. Fails with `UserNotFound` if the user was already removed.
    ///
    /// If the user store cannot forget the user, the error is
    /// [`ErrorKind::Store`](crate::ErrorKind::Store): the user **is** removed in memory
    /// (and logged out, its session revoked as usual), but its record, possibly with
    /// tokens, may still be in the store.
    pub async fn remove_user(&self, user: &User) -> Result<(), Error> {
        self.ensure_not_removed(user)?;
        user.log_out_as(UserState::Removed).await?;
        // A logged-out user is removed locally without a request.
        self.app
            .registry()
            .remove(user.cell())
            .await
            .map_err(Error::store_not_cleared)
    }

    /// Delete `user`'s account on the server (`DELETE /auth/delete`, with refresh-and-replay
    /// on 401), then remove it locally. The user must be logged in. When the request fails
    /// nothing changes locally. When the account is deleted but the user store cannot
    /// forget the user, the error is [`ErrorKind::Store`](crate::ErrorKind::Store) (the
    /// user is removed in memory).
    pub async fn delete_user(&self, user: &User) -> Result<(), Error> {
        self.ensure_not_removed(user)?;
        if user.state() != UserState::LoggedIn {
            return Err(Error::not_logged_in("user must be logged in to be deleted"));
        }
        let url = self.app.routes().await?.delete_user();
        let resp = user
            .send_authenticated(|token| {
                wire::build(
                    Method::DELETE,
                    Some(paths::DELETE_USER),
                    &url,
                    Some(token),
                    None,
                )
            })
            .await?;
        wire::check_status(resp)?;
        self.app
            .registry()
            .remove(user.cell())
            .await
            .map_err(Error::store_not_cleared)
    }

    /// The routes on the current host (fetching the location first if needed).
    ///
    /// For provider crates that add client APIs (email/password, API keys).
    pub async fn routes(&self) -> Result<Routes, Error> {
        self.app.routes().await
    }

    /// Send an unauthenticated JSON request for `route` (a template of
    /// [`latchkey_protocol::routes::paths`], or `None` outside the client API) to `url`
    /// (`Accept: application/json`, and `Content-Type: application/json` when `body` is
    /// present) and check its status: a non-2xx answer is an
    /// [`ErrorKind::Server`](crate::ErrorKind::Server) error.
    ///
    /// For provider crates' client APIs (registration, confirmation, resets).
    ///
    /// ```no_run
    /// # async fn demo(core: latchkey_session::AppCore) -> Result<(), latchkey_session::Error> {
    /// use latchkey_protocol::routes::{EmailPasswordRoute, paths};
    /// let url = core.routes().await?.email_password(EmailPasswordRoute::ResetSend);
    /// let body = serde_json::json!({ "email": "someone@example.com" });
    /// core.send_json(http::Method::POST, paths::RESET_SEND, &url, Some(body)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_json(
        &self,
        method: Method,
        route: impl Into<Option<&'static str>>,
        url: &str,
        body: Option<Value>,
    ) -> Result<HttpResponse, Error> {
        let req = wire::build(method, route.into(), url, None, body)?;
        self.app.send_checked(req).await
    }

    /// A `UserNotFound` error unless `user` is still known on this device.
    fn ensure_not_removed(&self, user: &User) -> Result<(), Error> {
        if self.app.registry().contains(user.cell()) {
            Ok(())
        } else {
            Err(Error::user_not_found("user has already been removed"))
        }
    }
}

impl User {
    /// The engine of the app this user belongs to (for provider crates' client APIs, such
    /// as user API keys).
    ///
    /// ```no_run
    /// # async fn demo(user: latchkey_session::User) -> Result<(), latchkey_session::Error> {
    /// let routes = user.app_core().routes().await?;
    /// println!("API keys live at {}", routes.api_keys());
    /// # Ok(()) }
    /// ```
    pub fn app_core(&self) -> AppCore {
        AppCore {
            app: self.context().clone(),
        }
    }
}
