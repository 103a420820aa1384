//! The in-memory record of one user: state, tokens, profile and device id, its stored
//! form, and the shared cell that every handle of the user points to.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use latchkey_protocol::{ObjectId, Secret};

use crate::error::Error;
use crate::profile::{CachedProfile, UserState};
use crate::store::StoredUser;
use crate::tokens::{RefreshGate, Snapshot, TokenCache, TokenSet, to_ms};

/// Everything known about one user on this device.
#[derive(Clone)]
pub(crate) struct UserData {
    id: String,
    pub(crate) state: UserState,
    pub(crate) tokens: TokenCache,
    pub(crate) profile: CachedProfile,
    pub(crate) device_id: Option<String>,
    pub(crate) provider_type: Option<String>,
}

impl UserData {
    /// A user known by id only (logged out, no profile yet).
    pub(crate) fn new(id: String) -> Self {
        UserData {
            id,
            state: UserState::LoggedOut,
            tokens: TokenCache::default(),
            profile: CachedProfile::default(),
            device_id: None,
            provider_type: None,
        }
    }

    /// Restore a stored user. A logged-in user whose tokens are missing or malformed reads
    /// as logged out (realm-core's rule); expiry is not checked.
    pub(crate) fn from_stored(su: StoredUser, now: SystemTime) -> Self {
        let mut d = UserData::new(su.id);
        d.profile = CachedProfile {
            data: su.profile,
            identities: su.identities,
            user_type: su.user_type,
        };
        d.device_id = su.device_id;
        d.provider_type = su.provider_type;
        if su.state == UserState::LoggedIn
            && let (Some(a), Some(r)) = (su.access_token, su.refresh_token)
            && let Ok(t) = TokenSet::restore(
                a,
                r,
                now,
                su.access_token_expires_at_ms,
                su.access_token_lifetime_secs,
            )
        {
            d.tokens.set(t);
            d.state = UserState::LoggedIn;
        }
        d
    }

    /// The stored form.
    pub(crate) fn to_stored(&self) -> StoredUser {
        StoredUser {
            id: self.id.clone(),
            state: self.state,
            access_token: self.tokens.access().cloned(),
            refresh_token: self.tokens.refresh().cloned(),
            access_token_expires_at_ms: self.tokens.expires_at().map(to_ms),
            access_token_lifetime_secs: self.tokens.lifetime().map(|l| l.as_secs() as i64),
            profile: self.profile.data.clone(),
            identities: self.profile.identities.clone(),
            user_type: self.profile.user_type.clone(),
            device_id: self.device_id.clone(),
            provider_type: self.provider_type.clone(),
        }
    }

    /// Clear the tokens and leave the user in `state` (logged out or removed).
    pub(crate) fn end_session(&mut self, state: UserState) {
        self.tokens.clear();
        self.state = state;
    }

    /// The access token of a logged-in user.
    pub(crate) fn logged_in_access(&self) -> Result<Secret, Error> {
        self.logged_in_token(self.tokens.access())
    }

    /// The refresh token of a logged-in user.
    pub(crate) fn logged_in_refresh(&self) -> Result<Secret, Error> {
        self.logged_in_token(self.tokens.refresh())
    }

    fn logged_in_token(&self, token: Option<&Secret>) -> Result<Secret, Error> {
        self.if_logged_in(token.cloned())
    }

    /// The access token of a logged-in user and whether it is due for a refresh at `now`.
    pub(crate) fn snapshot(&self, now: SystemTime) -> Result<Snapshot, Error> {
        self.if_logged_in(self.tokens.snapshot(now))
    }

    fn if_logged_in<T>(&self, value: Option<T>) -> Result<T, Error> {
        match (self.state, value) {
            (UserState::LoggedIn, Some(v)) => Ok(v),
            _ => Err(Error::not_logged_in("the user is not logged in")),
        }
    }

    /// Logged in with `refresh` as its refresh token (not logged out or refreshed since).
    pub(crate) fn holds_session(&self, refresh: &Secret) -> bool {
        self.state == UserState::LoggedIn && self.tokens.refresh() == Some(refresh)
    }

    /// Logged in with exactly one identity, of type `anon-user`.
    pub(crate) fn is_anonymous(&self) -> bool {
        self.state == UserState::LoggedIn && self.profile.is_anonymous()
    }
}

/// One user, shared by all its handles: the record behind a lock, and the refresh gate.
pub(crate) struct UserCell {
    id: String,
    data: Mutex<UserData>,
    refresh: RefreshGate,
}

impl UserCell {
    /// A shared cell for `data`.
    pub(crate) fn new(data: UserData) -> Arc<Self> {
        Arc::new(UserCell {
            id: data.id.clone(),
            data: Mutex::new(data),
            refresh: RefreshGate::default(),
        })
    }

    /// The record, locked.
    pub(crate) fn data(&self) -> MutexGuard<'_, UserData> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The single-flight gate of this user's refreshes.
    pub(crate) fn refresh_gate(&self) -> &RefreshGate {
        &self.refresh
    }

    /// The user id (immutable).
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The state.
    pub(crate) fn state(&self) -> UserState {
        self.data().state
    }

    /// See [`UserData::is_anonymous`].
    pub(crate) fn is_anonymous(&self) -> bool {
        self.data().is_anonymous()
    }

    /// The device id the server assigned, if it is a real one.
    pub(crate) fn device_id(&self) -> Option<String> {
        self.data().device_id.clone().filter(|d| is_device_id(d))
    }
}

/// A 24-hex, non-zero ObjectId string.
pub(crate) fn is_device_id(s: &str) -> bool {
    s.parse::<ObjectId>().map(|o| !o.is_zero()).unwrap_or(false)
}
