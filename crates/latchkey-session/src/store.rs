//! Persistence of users: the [`UserStore`] trait, [`MemoryStore`] and (feature `file-store`)
//! `FileStore`.
//!
//! The trait is **synchronous**: the app reads its users in `build()` (no async, no network)
//! so that `current_user()` works offline right away, and every change is written through
//! before the call that made it returns. Stores hold small documents; a file store's
//! write-fsync-rename takes well under a millisecond on local disks.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use latchkey_protocol::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::profile::{UserIdentity, UserState};

/// A user as persisted: everything needed to restore it with no network.
///
/// Stores treat it as an opaque serde document; it contains tokens, so keep it private
/// (they are [`Secret`]s: its `Debug` output redacts them; serialized, they are plain
/// strings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredUser {
    /// The user's id.
    pub id: String,
    /// `LoggedIn` or `LoggedOut` (removed users are deleted from the store).
    pub state: UserState,
    /// The access token, when logged in.
    #[serde(default, serialize_with = "expose")]
    pub access_token: Option<Secret>,
    /// The refresh token, when logged in.
    #[serde(default, serialize_with = "expose")]
    pub refresh_token: Option<Secret>,
    /// Local expiry of the access token, Unix milliseconds of the local clock.
    #[serde(default)]
    pub access_token_expires_at_ms: Option<i64>,
    /// Lifetime of the access token (`exp - iat`), seconds.
    #[serde(default)]
    pub access_token_lifetime_secs: Option<i64>,
    /// Profile `data`.
    #[serde(default)]
    pub profile: Map<String, Value>,
    /// Identities from the profile.
    #[serde(default)]
    pub identities: Vec<UserIdentity>,
    /// The profile `type` (`normal`, `server`).
    #[serde(default)]
    pub user_type: Option<String>,
    /// The device id the server assigned.
    #[serde(default)]
    pub device_id: Option<String>,
    /// The provider used for the last login (e.g. `anon-user`).
    #[serde(default)]
    pub provider_type: Option<String>,
}

/// A stored token, written out as the plain string (the store's whole point).
fn expose<S: serde::Serializer>(token: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
    token.as_ref().map(Secret::expose).serialize(s)
}

/// Everything a store holds for one app.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StoredUsers {
    /// The app id these users belong to. `FileStore` writes it into every file and refuses
    /// a file written for another app; `AppCore::new` refuses a document whose app id is
    /// set and differs. `None` in documents written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Users in login order (oldest first).
    #[serde(default)]
    pub users: Vec<StoredUser>,
    /// The current user's id.
    #[serde(default)]
    pub current_user_id: Option<String>,
}

/// A user store failed.
///
/// ```
/// use latchkey_session::StoreError;
/// let e = StoreError::new("disk full");
/// assert_eq!(e.to_string(), "user store: disk full");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("user store: {message}")]
pub struct StoreError {
    message: String,
    corrupt: bool,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        StoreError {
            message: message.into(),
            corrupt: false,
            source: None,
        }
    }

    /// An error with a message and a cause.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError {
            message: message.into(),
            corrupt: false,
            source: Some(Box::new(source)),
        }
    }

    /// Mark the error as "the stored data is corrupt".
    pub fn corrupt(mut self) -> Self {
        self.corrupt = true;
        self
    }

    /// True when the stored data could not be parsed.
    pub fn is_corrupt(&self) -> bool {
        self.corrupt
    }
}

/// Where an app keeps its users. Keyed by app id (not base URL).
///
/// The app calls [`save_user`](Self::save_user) after every change to a user (tokens,
/// profile, state, device id), [`remove_user`](Self::remove_user) when a user is removed,
/// and [`set_current_user`](Self::set_current_user) when the current user changes.
/// Methods are synchronous (see the module docs).
///
/// ```
/// use latchkey_session::{MemoryStore, UserStore};
/// let store = MemoryStore::new();
/// store.set_current_user("app-1", Some("u1")).unwrap();
/// assert_eq!(store.load("app-1").unwrap().current_user_id.as_deref(), Some("u1"));
/// assert!(store.load("app-2").unwrap().users.is_empty());
/// ```
pub trait UserStore: fmt::Debug + Send + Sync {
    /// All users of `app_id` and the current user's id.
    fn load(&self, app_id: &str) -> Result<StoredUsers, StoreError>;
    /// Insert or replace one user.
    fn save_user(&self, app_id: &str, user: &StoredUser) -> Result<(), StoreError>;
    /// Forget one user.
    fn remove_user(&self, app_id: &str, user_id: &str) -> Result<(), StoreError>;
    /// Record the current user.
    fn set_current_user(&self, app_id: &str, user_id: Option<&str>) -> Result<(), StoreError>;
}

impl<S: UserStore + ?Sized> UserStore for std::sync::Arc<S> {
    fn load(&self, app_id: &str) -> Result<StoredUsers, StoreError> {
        (**self).load(app_id)
    }
    fn save_user(&self, app_id: &str, user: &StoredUser) -> Result<(), StoreError> {
        (**self).save_user(app_id, user)
    }
    fn remove_user(&self, app_id: &str, user_id: &str) -> Result<(), StoreError> {
        (**self).remove_user(app_id, user_id)
    }
    fn set_current_user(&self, app_id: &str, user_id: Option<&str>) -> Result<(), StoreError> {
        (**self).set_current_user(app_id, user_id)
    }
}

/// Apply a save to an in-memory document (shared by the stores).
pub(crate) fn upsert(doc: &mut StoredUsers, user: &StoredUser) {
    match doc.users.iter_mut().find(|u| u.id == user.id) {
        Some(slot) => *slot = user.clone(),
        None => doc.users.push(user.clone()),
    }
}

pub(crate) fn remove(doc: &mut StoredUsers, user_id: &str) {
    doc.users.retain(|u| u.id != user_id);
    if doc.current_user_id.as_deref() == Some(user_id) {
        doc.current_user_id = None;
    }
}

/// A store that keeps users in memory only (nothing survives the process). Clones share
/// the same data, so two apps built with clones of one `MemoryStore` see each other's users.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    apps: std::sync::Arc<Mutex<HashMap<String, StoredUsers>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, app_id: &str, f: impl FnOnce(&mut StoredUsers) -> R) -> R {
        let mut apps = self.apps.lock().unwrap_or_else(|p| p.into_inner());
        f(apps.entry(app_id.to_owned()).or_default())
    }
}

impl UserStore for MemoryStore {
    fn load(&self, app_id: &str) -> Result<StoredUsers, StoreError> {
        Ok(self.with(app_id, |d| d.clone()))
    }
    fn save_user(&self, app_id: &str, user: &StoredUser) -> Result<(), StoreError> {
        self.with(app_id, |d| upsert(d, user));
        Ok(())
    }
    fn remove_user(&self, app_id: &str, user_id: &str) -> Result<(), StoreError> {
        self.with(app_id, |d| remove(d, user_id));
        Ok(())
    }
    fn set_current_user(&self, app_id: &str, user_id: Option<&str>) -> Result<(), StoreError> {
        self.with(app_id, |d| d.current_user_id = user_id.map(str::to_owned));
        Ok(())
    }
}
