//! Keeping one user's access token fresh: proactive refresh before it expires, reactive
//! refresh after a 401 (replayed once), both single-flight; and the end of a session when
//! the server rejects the refresh token.

use std::sync::Arc;

use http::Method;
use latchkey_protocol::routes::paths;
use latchkey_protocol::{RefreshResponse, Secret};
use latchkey_transport::HttpResponse;

use crate::context::AppContext;
use crate::error::Error;
use crate::events::UserEvent;
use crate::profile::UserState;
use crate::record::UserCell;
use crate::registry::Ending;
use crate::tokens::TokenSet;
use crate::wire::{self, ApiRequest, UNAUTHORIZED};

/// The token operations of one user of one app.
pub(crate) struct Refresher<'a> {
    user: &'a Arc<UserCell>,
    app: &'a AppContext,
}

impl<'a> Refresher<'a> {
    /// The token operations of `user`, an user of `app`.
    pub(crate) fn new(user: &'a Arc<UserCell>, app: &'a AppContext) -> Self {
        Refresher { user, app }
    }

    /// An access token that is not about to expire, and the token generation it belongs
    /// to: refreshed first (single-flight) when due. If that refresh fails but the old token
    /// has not expired yet, the old token is returned; if the session is over the error is
    /// session-expired.
    pub(crate) async fn valid_access(&self) -> Result<(Secret, u64), Error> {
        let snap = self.user.data().snapshot(self.app.now())?;
        if !snap.needs_refresh {
            return Ok((snap.token, snap.generation));
        }
        match self.refresh(Some(snap.generation)).await {
            Ok(()) => {
                let s = self.user.data().snapshot(self.app.now())?;
                Ok((s.token, s.generation))
            }
            Err(e) if !e.is_session_expired() && !snap.expired => {
                tracing::warn!(user_id = self.user.id(), error = %e, "proactive refresh failed; using the still-valid token");
                Ok((snap.token, snap.generation))
            }
            Err(e) => Err(e),
        }
    }

    /// The 401 → refresh → replay-once rule for access-token requests: `build` makes the
    /// request for a token; the replay's answer is returned whatever its status.
    pub(crate) async fn send_authenticated(
        &self,
        build: impl Fn(&Secret) -> Result<ApiRequest, Error>,
    ) -> Result<HttpResponse, Error> {
        let (token, generation) = self.valid_access().await?;
        let resp = self.app.send(build(&token)?).await?;
        if resp.status() != UNAUTHORIZED {
            return Ok(resp);
        }
        tracing::debug!(
            user_id = self.user.id(),
            "401 on an access-token request; refreshing once"
        );
        self.refresh(Some(generation)).await?;
        let token = self.user.data().logged_in_access()?;
        self.app.send(build(&token)?).await
    }

    /// Single-flight refresh. `observed` is the token generation the caller saw: if the
    /// tokens changed since, no refresh is needed.
    pub(crate) async fn refresh(&self, observed: Option<u64>) -> Result<(), Error> {
        let up_to_date = || observed.is_some_and(|g| self.user.data().tokens.generation() != g);
        self.user
            .refresh_gate()
            .run(up_to_date, || self.refresh_now())
            .await
    }

    /// `POST /auth/session` with the refresh token; the new access token replaces the old
    /// one unless the user logged out (or logged in again) meanwhile.
    async fn refresh_now(&self) -> Result<(), Error> {
        let refresh = self.user.data().logged_in_refresh()?;
        let routes = self.app.routes().await?;
        let req = wire::build(
            Method::POST,
            Some(paths::SESSION),
            &routes.session(),
            Some(&refresh),
            None,
        )?;
        let resp = self.app.send(req).await?;
        if resp.status() == UNAUTHORIZED {
            return Err(self.session_rejected(&resp, &refresh).await);
        }
        let resp = wire::check_status(resp)?;
        let body: RefreshResponse = wire::parse_json(&resp, "refresh response")?;
        let tokens = TokenSet::access_only(body.access_token, self.app.now())?;
        let applied = self
            .app
            .registry()
            .update(self.user, |d| {
                if d.holds_session(&refresh) {
                    d.tokens.set(tokens);
                    true
                } else {
                    false
                }
            })
            .await;
        if applied {
            self.app.emit(UserEvent::TokenRefreshed {
                user_id: self.user.id().to_owned(),
            });
        }
        Ok(())
    }

    /// `refresh` was answered 401 (`resp`): the session is over. Expires it and returns the
    /// session-expired error, caused by the server's answer.
    pub(crate) async fn session_rejected(&self, resp: &HttpResponse, refresh: &Secret) -> Error {
        let cause = wire::server_error(resp);
        self.expire_session(refresh).await;
        Error::session_expired(Some(cause))
    }

    async fn expire_session(&self, refresh: &Secret) {
        // An anonymous user has no credential to log in with again: once its session is
        // over it can never come back, so it is removed (realm-core removes it too). A
        // store failure is logged by the registry; the caller gets the session-expired
        // error either way.
        let user_id = self.user.id().to_owned();
        let ended = self
            .app
            .registry()
            .end_session(self.user, |d| {
                if !d.holds_session(refresh) {
                    return None;
                }
                let anonymous = d.is_anonymous();
                d.end_session(UserState::LoggedOut);
                Some(Ending {
                    value: (),
                    event: UserEvent::SessionExpired { user_id },
                    remove: anonymous,
                })
            })
            .await;
        if let Some(((), written)) = ended {
            // A store failure is logged by the registry.
            let _ = written.result().await;
            tracing::info!(
                user_id = self.user.id(),
                "refresh token rejected; the user is logged out"
            );
        }
    }
}
