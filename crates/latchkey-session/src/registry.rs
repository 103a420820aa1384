//! The users of an app on this device: who they are, which one is current, and their
//! persistence in the user store.
//!
//! Lock order: the registry's lock before a user's, never the other way round.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use crate::error::Error;
use crate::events::{Events, UserEvent};
use crate::profile::UserState;
use crate::record::{UserCell, UserData};
use crate::store::{StoreError, UserStore};

/// The registry of one app's users.
pub(crate) struct Registry {
    app_id: String,
    store: Arc<dyn UserStore>,
    events: Events,
    users: Mutex<Users>,
}

#[derive(Default)]
struct Users {
    /// Non-removed users, oldest login first.
    all: Vec<Arc<UserCell>>,
    /// The current user's id.
    current: Option<String>,
}

impl Users {
    fn current(&self) -> Option<&Arc<UserCell>> {
        let id = self.current.as_deref()?;
        self.all.iter().find(|u| u.id() == id)
    }

    fn contains(&self, user: &Arc<UserCell>) -> bool {
        self.all.iter().any(|u| Arc::ptr_eq(u, user))
    }

    /// The first logged-in user other than `except`.
    fn first_logged_in(&self, except: Option<&str>) -> Option<String> {
        self.all
            .iter()
            .find(|u| u.state() == UserState::LoggedIn && Some(u.id()) != except)
            .map(|u| u.id().to_owned())
    }
}

impl Registry {
    /// Load `app_id`'s users from `store` (no network). Removed users are skipped; the
    /// current user is the stored one if it is logged in, else the first logged-in user.
    pub(crate) fn load(
        app_id: &str,
        store: Arc<dyn UserStore>,
        events: Events,
        now: SystemTime,
    ) -> Result<Self, Error> {
        let stored = store.load(app_id)?;
        if let Some(owner) = stored.app_id.as_deref()
            && owner != app_id
        {
            return Err(Error::store(StoreError::new(format!(
                "the store returned the users of app id {owner:?}, not {app_id:?}"
            ))));
        }
        let mut users = Users::default();
        for su in stored.users {
            if su.state != UserState::Removed {
                users
                    .all
                    .push(UserCell::new(UserData::from_stored(su, now)));
            }
        }
        users.current = stored
            .current_user_id
            .filter(|id| {
                users
                    .all
                    .iter()
                    .any(|u| u.id() == id && u.state() == UserState::LoggedIn)
            })
            .or_else(|| users.first_logged_in(None));
        Ok(Registry {
            app_id: app_id.to_owned(),
            store,
            events,
            users: Mutex::new(users),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Users> {
        self.users.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current user, if any.
    pub(crate) fn current(&self) -> Option<Arc<UserCell>> {
        self.lock().current().cloned()
    }

    /// Every user that is not removed, oldest login first.
    pub(crate) fn all(&self) -> Vec<Arc<UserCell>> {
        self.lock().all.clone()
    }

    /// Whether `user` is still known (not removed).
    pub(crate) fn contains(&self, user: &Arc<UserCell>) -> bool {
        self.lock().contains(user)
    }

    /// The logged-in anonymous user to reuse: the current user if it is one, else the
    /// latest.
    pub(crate) fn anonymous_user(&self) -> Option<Arc<UserCell>> {
        let users = self.lock();
        users
            .current()
            .filter(|u| u.is_anonymous())
            .or_else(|| users.all.iter().rev().find(|u| u.is_anonymous()))
            .cloned()
    }

    /// The device id to report at login: the current user's, else the latest user's.
    pub(crate) fn device_id(&self) -> Option<String> {
        let users = self.lock();
        let current = users.current().and_then(|u| u.device_id());
        current.or_else(|| users.all.iter().rev().find_map(|u| u.device_id()))
    }

    /// Make `user` current. It must be known and logged in.
    pub(crate) fn switch_to(&self, user: &Arc<UserCell>) -> Result<(), Error> {
        let mut users = self.lock();
        if !users.contains(user) {
            return Err(Error::user_not_found(
                "the user is not a user of this app, or was removed",
            ));
        }
        if user.state() != UserState::LoggedIn {
            return Err(Error::not_logged_in(
                "user is no longer valid or is logged out",
            ));
        }
        self.set_current(&mut users, Some(user.id().to_owned()));
        Ok(())
    }

    /// Make the user with id `user_id` current, without checks.
    pub(crate) fn make_current(&self, user_id: &str) {
        let mut users = self.lock();
        self.set_current(&mut users, Some(user_id.to_owned()));
    }

    /// Record a login of `user_id`: the user (created if new) is changed by `apply` and
    /// persisted, [`UserEvent::LoggedIn`] is sent, and the user becomes current.
    pub(crate) fn logged_in(
        &self,
        user_id: String,
        apply: impl FnOnce(&mut UserData),
    ) -> Arc<UserCell> {
        let mut users = self.lock();
        let existing = users.all.iter().find(|u| u.id() == user_id).cloned();
        let user = existing.unwrap_or_else(|| {
            let u = UserCell::new(UserData::new(user_id));
            users.all.push(u.clone());
            u
        });
        self.update(&user, apply);
        self.events.emit(UserEvent::LoggedIn {
            user_id: user.id().to_owned(),
        });
        self.set_current(&mut users, Some(user.id().to_owned()));
        user
    }

    /// After `user_id` stopped being logged in: move "current" to the next logged-in user.
    pub(crate) fn logged_out(&self, user_id: &str) {
        let mut users = self.lock();
        self.move_current_off(&mut users, user_id);
    }

    /// Forget `user` locally: tokens, registry, store, current; emits `Removed`. The user
    /// is gone from memory whatever happens; the error is the store's, if removing it there
    /// failed (`Ok` when the user was already removed).
    pub(crate) fn remove(&self, user: &Arc<UserCell>) -> Result<(), StoreError> {
        user.data().end_session(UserState::Removed);
        let mut users = self.lock();
        let before = users.all.len();
        users.all.retain(|u| !Arc::ptr_eq(u, user));
        if users.all.len() == before {
            return Ok(());
        }
        let result = self.store.remove_user(&self.app_id, user.id());
        if let Err(e) = &result {
            tracing::error!(error = %e, user_id = user.id(), "could not remove the user from the store");
        }
        self.move_current_off(&mut users, user.id());
        self.events.emit(UserEvent::Removed {
            user_id: user.id().to_owned(),
        });
        result
    }

    /// Change `user` with `f` and persist it (unless it is removed); a store failure is
    /// logged.
    pub(crate) fn update<R>(&self, user: &UserCell, f: impl FnOnce(&mut UserData) -> R) -> R {
        self.update_persisted(user, f).0
    }

    /// [`update`](Self::update), also returning whether persisting worked. In-memory state
    /// stays authoritative either way.
    pub(crate) fn update_persisted<R>(
        &self,
        user: &UserCell,
        f: impl FnOnce(&mut UserData) -> R,
    ) -> (R, Result<(), StoreError>) {
        let mut d = user.data();
        let r = f(&mut d);
        let saved = if d.state != UserState::Removed {
            let stored = d.to_stored();
            let result = self.store.save_user(&self.app_id, &stored);
            if let Err(e) = &result {
                tracing::error!(error = %e, user_id = %stored.id, "could not persist the user");
            }
            result
        } else {
            Ok(())
        };
        (r, saved)
    }

    fn set_current(&self, users: &mut Users, id: Option<String>) {
        if users.current == id {
            return;
        }
        users.current = id.clone();
        if let Err(e) = self.store.set_current_user(&self.app_id, id.as_deref()) {
            tracing::error!(error = %e, "could not persist the current user");
        }
        self.events.emit(UserEvent::Switched { user_id: id });
    }

    /// If `user_id` is the current user, make the next logged-in user current instead.
    fn move_current_off(&self, users: &mut Users, user_id: &str) {
        if users.current.as_deref() == Some(user_id) {
            let next = users.first_logged_in(Some(user_id));
            self.set_current(users, next);
        }
    }
}
