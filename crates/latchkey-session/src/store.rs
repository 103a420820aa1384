//! Persistence of users: the [`UserStore`] trait, [`MemoryStore`] and (feature `file-store`)
//! the on-disk `SqliteStore` (the default) and `FileStore`.
//!
//! The trait is **synchronous**, so that anyone can implement it in a few lines. The app
//! never calls a blocking store on the async executor: it reads its users once, in
//! `build()` (no async, no network, so that `current_user()` works offline right away), and
//! runs every write on tokio's blocking pool ([`UserStore::is_blocking`]), one at a time and
//! in the order the changes were made in memory. Each persisted change is one call to
//! [`UserStore::apply`]: one durable write when the store implements it as a transaction.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
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

/// One change to the users an app keeps, as [`UserStore::apply`] receives it.
// A change list lives for one write and holds one or two changes: boxing the user would
// cost an allocation per save to save a few hundred bytes of stack.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StoreChange {
    /// Insert or replace one user (a new user goes after the others).
    SaveUser(StoredUser),
    /// Forget the user with this id (and clear the current user if it was that one).
    RemoveUser(String),
    /// Record the current user (`None`: no current user).
    SetCurrentUser(Option<String>),
}

/// Where an app keeps its users. Keyed by app id (not base URL).
///
/// The app reads its users once with [`load`](Self::load) when it is built, then writes
/// every change with [`apply`](Self::apply): a login saves the user and the current user
/// together, a logout saves (or removes) the user and moves the current user, and so on.
/// Methods are synchronous; see [`is_blocking`](Self::is_blocking) for where they run.
///
/// Only `load` and the three single-change methods are required. Override
/// [`apply`](Self::apply) to make a change atomic and durable in one write, and
/// [`set_aside`](Self::set_aside) to let an app start when the stored data is corrupt.
///
/// ```
/// use latchkey_session::{MemoryStore, StoreChange, UserStore};
/// let store = MemoryStore::new();
/// store.set_current_user("app-1", Some("u1")).unwrap();
/// assert_eq!(store.load("app-1").unwrap().current_user_id.as_deref(), Some("u1"));
/// store.apply("app-1", &[StoreChange::SetCurrentUser(None)]).unwrap();
/// assert!(store.load("app-1").unwrap().current_user_id.is_none());
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

    /// Apply `changes`, in order. The app calls this once per change it makes (never with an
    /// empty list), and returns its error to the caller (a login that cannot be saved fails).
    ///
    /// The default calls the single-change methods one after the other, so a failure can
    /// leave the first changes applied; the stores of this crate apply the whole list in one
    /// transaction (all or nothing, one durable write).
    fn apply(&self, app_id: &str, changes: &[StoreChange]) -> Result<(), StoreError> {
        for change in changes {
            match change {
                StoreChange::SaveUser(user) => self.save_user(app_id, user)?,
                StoreChange::RemoveUser(id) => self.remove_user(app_id, id)?,
                StoreChange::SetCurrentUser(id) => self.set_current_user(app_id, id.as_deref())?,
            }
        }
        Ok(())
    }

    /// `load` reported the data of `app_id` as corrupt ([`StoreError::is_corrupt`]): move it
    /// out of the way, keeping it for inspection, so that the next `load` starts empty.
    /// Returns where it was kept, if anywhere.
    ///
    /// Apps built with the `latchkey` facade do this by default (and send a
    /// [`UserEvent::StoreRecovered`](crate::UserEvent::StoreRecovered)); the default refuses.
    fn set_aside(&self, app_id: &str) -> Result<Option<PathBuf>, StoreError> {
        let _ = app_id;
        Err(StoreError::new("this store cannot set corrupt data aside"))
    }

    /// Whether calls can block on I/O. The app runs the writes of a blocking store on its
    /// writer thread, never on the async executor (but see [`try_apply_now`](Self::try_apply_now));
    /// a store that only touches memory returns `false` and is called in place. Default:
    /// `true`.
    fn is_blocking(&self) -> bool {
        true
    }

    /// Apply `changes` as [`apply`](Self::apply) does, but only if that cannot wait: for
    /// a lock held by another process, a disk flush, a file to create. When it would have
    /// to wait, return `None` having changed nothing; the app then hands the write to its
    /// writer thread as usual.
    ///
    /// The app tries this first, on the async executor, for a blocking store: a write that
    /// only touches memory and the OS page cache costs tens of microseconds there, less
    /// than the hand-over to another thread and back. [`SqliteStore`](crate::SqliteStore)
    /// does so (see its docs); the default never does (`None`).
    fn try_apply_now(
        &self,
        app_id: &str,
        changes: &[StoreChange],
    ) -> Option<Result<(), StoreError>> {
        let _ = (app_id, changes);
        None
    }
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
    fn apply(&self, app_id: &str, changes: &[StoreChange]) -> Result<(), StoreError> {
        (**self).apply(app_id, changes)
    }
    fn set_aside(&self, app_id: &str) -> Result<Option<PathBuf>, StoreError> {
        (**self).set_aside(app_id)
    }
    fn is_blocking(&self) -> bool {
        (**self).is_blocking()
    }
    fn try_apply_now(
        &self,
        app_id: &str,
        changes: &[StoreChange],
    ) -> Option<Result<(), StoreError>> {
        (**self).try_apply_now(app_id, changes)
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

/// Apply `changes` to an in-memory document, in order.
pub(crate) fn apply_all(doc: &mut StoredUsers, changes: &[StoreChange]) {
    for change in changes {
        match change {
            StoreChange::SaveUser(user) => upsert(doc, user),
            StoreChange::RemoveUser(id) => remove(doc, id),
            StoreChange::SetCurrentUser(id) => doc.current_user_id = id.clone(),
        }
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
    fn apply(&self, app_id: &str, changes: &[StoreChange]) -> Result<(), StoreError> {
        self.with(app_id, |d| apply_all(d, changes));
        Ok(())
    }
    fn is_blocking(&self) -> bool {
        false
    }
}

/// What the on-disk stores' tests share.
#[cfg(all(test, feature = "file-store"))]
pub(crate) mod test_support {
    use super::*;
    use crate::profile::UserState;

    /// A logged-in user with tokens, as stores hold them.
    pub(crate) fn user(id: &str) -> StoredUser {
        StoredUser {
            id: id.into(),
            state: UserState::LoggedIn,
            access_token: Some("AT-secret".into()),
            refresh_token: Some("RT-secret".into()),
            access_token_expires_at_ms: Some(1),
            access_token_lifetime_secs: Some(1800),
            profile: Default::default(),
            identities: vec![],
            user_type: None,
            device_id: Some("d".into()),
            provider_type: None,
        }
    }

    /// Four threads, each with its own store on `dir` (as separate processes would have),
    /// log in `per_thread` users each, every login one change with the current user; then a
    /// new store loads every user.
    pub(crate) fn concurrent_writers_lose_nothing<S: UserStore + 'static>(
        dir: &std::path::Path,
        per_thread: usize,
        open: fn(std::path::PathBuf) -> S,
    ) {
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let path = dir.to_owned();
                std::thread::spawn(move || {
                    let store = open(path);
                    for i in 0..per_thread {
                        let id = format!("t{t}-u{i}");
                        let login = [
                            StoreChange::SaveUser(user(&id)),
                            StoreChange::SetCurrentUser(Some(id.clone())),
                        ];
                        store.apply("app", &login).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let loaded = open(dir.to_owned()).load("app").unwrap();
        assert_eq!(loaded.users.len(), 4 * per_thread);
        let current = loaded.current_user_id.unwrap();
        assert!(loaded.users.iter().any(|u| u.id == current));
    }
}
