//! The users of an app on this device: who they are, which one is current, and their
//! persistence in the user store.
//!
//! Every change that persists takes the app's write lock (async) before it changes memory
//! and keeps it until its store write is done, so the store sees the changes in the order
//! memory made them, one [`UserStore::apply`] call (one durable write) per change, and
//! none when nothing persisted changed. Writes of a blocking store run on the app's writer
//! thread, never on the async executor. A write that fails is reported to the caller and
//! retried with the next change (the current user, users whose save or removal failed).
//!
//! Lock order: the write lock, then the registry's lock, then a user's.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::SystemTime;

use tokio::sync::OwnedMutexGuard;

use crate::error::Error;
use crate::events::{Events, UserEvent};
use crate::profile::UserState;
use crate::record::{UserCell, UserData};
use crate::store::{StoreChange, StoreError, UserStore};

/// The registry of one app's users.
pub(crate) struct Registry {
    app_id: String,
    store: Arc<dyn UserStore>,
    events: Events,
    users: Arc<Mutex<Users>>,
    /// Held from a persisted change in memory to the end of its store write.
    writes: Arc<tokio::sync::Mutex<()>>,
    /// Runs the writes of a blocking store.
    writer: Arc<Writer>,
}

/// The write lock, owned so that a write on the blocking pool keeps it to its end.
type WriteGuard = OwnedMutexGuard<()>;

#[derive(Default)]
struct Users {
    /// Non-removed users, oldest login first.
    all: Vec<Arc<UserCell>>,
    /// The current user's id.
    current: Option<String>,
    /// The current user's id as the store holds it (last read or written).
    stored_current: Option<String>,
    /// Users whose last save failed: saved again with the next write.
    unsaved: HashSet<String>,
    /// Removed users whose removal from the store failed: removed again with the next write.
    unremoved: HashSet<String>,
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

    /// Make `id` current; a `Switched` event goes to `sent` if it changed.
    fn set_current(&mut self, id: Option<String>, sent: &mut Vec<UserEvent>) {
        if self.current != id {
            self.current = id.clone();
            sent.push(UserEvent::Switched { user_id: id });
        }
    }

    /// If `user_id` is the current user, make the next logged-in user current instead.
    fn move_current_off(&mut self, user_id: &str, sent: &mut Vec<UserEvent>) {
        if self.current.as_deref() == Some(user_id) {
            let next = self.first_logged_in(Some(user_id));
            self.set_current(next, sent);
        }
    }

    /// Add to `changes` what the store lacks besides them: the users whose last save or
    /// removal failed, and the current user.
    fn catch_up(&self, changes: &mut Vec<StoreChange>) {
        let saves = |id: &str, changes: &[StoreChange]| {
            changes.iter().any(|c| match c {
                StoreChange::SaveUser(u) => u.id == id,
                StoreChange::RemoveUser(r) => r == id,
                _ => false,
            })
        };
        for id in &self.unremoved {
            if !saves(id, changes) && !self.all.iter().any(|u| u.id() == id) {
                changes.push(StoreChange::RemoveUser(id.clone()));
            }
        }
        for user in &self.all {
            if self.unsaved.contains(user.id()) && !saves(user.id(), changes) {
                changes.push(StoreChange::SaveUser(user.data().to_stored()));
            }
        }
        if self.current != self.stored_current {
            changes.push(StoreChange::SetCurrentUser(self.current.clone()));
        }
    }

    /// Record what the store holds after `changes` were written (`ok`) or not.
    fn written(&mut self, changes: &[StoreChange], ok: bool) {
        for change in changes {
            match (change, ok) {
                (StoreChange::SaveUser(u), true) => {
                    self.unsaved.remove(&u.id);
                    self.unremoved.remove(&u.id);
                }
                (StoreChange::SaveUser(u), false) => {
                    self.unsaved.insert(u.id.clone());
                }
                (StoreChange::RemoveUser(id), true) => {
                    self.unremoved.remove(id);
                    self.unsaved.remove(id);
                }
                (StoreChange::RemoveUser(id), false) => {
                    self.unremoved.insert(id.clone());
                }
                (StoreChange::SetCurrentUser(id), true) => self.stored_current = id.clone(),
                (StoreChange::SetCurrentUser(_), false) => {}
            }
        }
    }
}

/// How a session ends (see [`Registry::end_session`]).
pub(crate) struct Ending<T> {
    /// What the caller wants back.
    pub(crate) value: T,
    /// The event to send after the current user moved (`LoggedOut`, `SessionExpired`).
    pub(crate) event: UserEvent,
    /// Forget the user too (state `Removed`).
    pub(crate) remove: bool,
}

impl Registry {
    /// Load `app_id`'s users from `store` (no network). Removed users are skipped; the
    /// current user is the stored one if it is logged in, else the first logged-in user.
    ///
    /// A store whose data is corrupt fails the load, unless `recover` is set: then the
    /// store moves the data aside and the app starts empty, with a warning and a
    /// [`UserEvent::StoreRecovered`] kept for the first subscriber.
    pub(crate) fn load(
        app_id: &str,
        store: Arc<dyn UserStore>,
        events: Events,
        now: SystemTime,
        recover: bool,
    ) -> Result<Self, Error> {
        let stored = match store.load(app_id) {
            Err(e) if recover && e.is_corrupt() => {
                let moved_to = store.set_aside(app_id).map_err(|aside| {
                    Error::store(StoreError::with_source(
                        format!("{e}; and it could not be set aside"),
                        aside,
                    ))
                })?;
                let error = e.to_string();
                tracing::warn!(
                    %error,
                    moved_to = ?moved_to,
                    "the user store was corrupt: it was moved aside and the app starts with no users"
                );
                events.keep_for_first_subscriber();
                events.emit(UserEvent::StoreRecovered { moved_to, error });
                store.load(app_id)?
            }
            other => other?,
        };
        if let Some(owner) = stored.app_id.as_deref()
            && owner != app_id
        {
            return Err(Error::store(StoreError::new(format!(
                "the store returned the users of app id {owner:?}, not {app_id:?}"
            ))));
        }
        let mut users = Users {
            stored_current: stored.current_user_id.clone(),
            ..Users::default()
        };
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
            users: Arc::new(Mutex::new(users)),
            writes: Arc::default(),
            writer: Arc::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Users> {
        lock(&self.users)
    }

    fn emit(&self, sent: Vec<UserEvent>) {
        for event in sent {
            self.events.emit(event);
        }
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

    /// Make `user` current in memory. It must be known and logged in.
    fn switch_in_memory(&self, user: &Arc<UserCell>) -> Result<(), Error> {
        let mut sent = Vec::new();
        {
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
            users.set_current(Some(user.id().to_owned()), &mut sent);
        }
        self.emit(sent);
        Ok(())
    }

    /// Make `user` current (from synchronous code): at once in memory; the store is
    /// written on the blocking pool right after (a failure is logged, and retried with the
    /// next write).
    pub(crate) fn switch_to(&self, user: &Arc<UserCell>) -> Result<(), Error> {
        self.switch_in_memory(user)?;
        self.write_current_soon();
        Ok(())
    }

    /// Make `user` current, in memory and in the store (a store failure is logged, and
    /// retried with the next write).
    pub(crate) async fn switch_to_now(&self, user: &Arc<UserCell>) -> Result<(), Error> {
        let guard = self.lock_writes().await;
        self.switch_in_memory(user)?;
        let _ = self.start_write(guard, Vec::new()).result().await;
        Ok(())
    }

    /// Record a login of `user_id`: the user (created if new) as changed by `apply` is
    /// saved with the current user, in one write, **before** memory changes. If that write
    /// fails, nothing changed (in memory or in the store) and the store's error is
    /// returned. Then the user is updated in memory, [`UserEvent::LoggedIn`] is sent, and
    /// the user becomes current.
    pub(crate) async fn logged_in(
        &self,
        user_id: String,
        apply: impl FnOnce(&mut UserData),
    ) -> Result<Arc<UserCell>, StoreError> {
        let guard = self.lock_writes().await;
        let existing = self.lock().all.iter().find(|u| u.id() == user_id).cloned();
        let mut data = match &existing {
            Some(cell) => cell.data().clone(),
            None => UserData::new(user_id.clone()),
        };
        apply(&mut data);
        let mut changes = vec![StoreChange::SaveUser(data.to_stored())];
        if self.lock().stored_current.as_deref() != Some(user_id.as_str()) {
            changes.push(StoreChange::SetCurrentUser(Some(user_id.clone())));
        }
        let (_guard, written) = self.write_exactly(guard, changes).await;
        written?;
        let mut sent = vec![UserEvent::LoggedIn {
            user_id: user_id.clone(),
        }];
        let user = {
            let mut users = self.lock();
            let user = match existing {
                Some(cell) => {
                    *cell.data() = data;
                    cell
                }
                None => {
                    let cell = UserCell::new(data);
                    users.all.push(cell.clone());
                    cell
                }
            };
            users.set_current(Some(user_id), &mut sent);
            user
        };
        self.emit(sent);
        Ok(user)
    }

    /// End `user`'s session if `end` says so: `end` clears the session in memory (under
    /// the user's lock) and returns an [`Ending`], or `None` to leave everything as is.
    /// Then, in memory: the user is forgotten if the ending says so, and current moves to
    /// the next logged-in user. Then one store write (the user saved, or removed, with the
    /// current user). Then the events: `Switched` (if current moved), the ending's event,
    /// `Removed` (if forgotten). Memory is authoritative: the write, still on its way, is
    /// returned next to the ending's value (so that the caller can overlap it with a
    /// request).
    pub(crate) async fn end_session<T>(
        &self,
        user: &Arc<UserCell>,
        end: impl FnOnce(&mut UserData) -> Option<Ending<T>>,
    ) -> Option<(T, PendingWrite)> {
        let guard = self.lock_writes().await;
        let mut sent = Vec::new();
        let (value, changes) = {
            let mut users = self.lock();
            let ending = end(&mut user.data())?;
            let change = if ending.remove {
                user.data().end_session(UserState::Removed);
                users.all.retain(|u| !Arc::ptr_eq(u, user));
                StoreChange::RemoveUser(user.id().to_owned())
            } else {
                StoreChange::SaveUser(user.data().to_stored())
            };
            users.move_current_off(user.id(), &mut sent);
            sent.push(ending.event);
            if ending.remove {
                sent.push(UserEvent::Removed {
                    user_id: user.id().to_owned(),
                });
            }
            (ending.value, vec![change])
        };
        let written = self.start_write(guard, changes);
        self.emit(sent);
        Some((value, written))
    }

    /// Forget `user` locally: tokens, registry, store, current; sends `Removed`. The user
    /// is gone from memory whatever happens; the error is the store's, if removing it there
    /// failed (`Ok` when the user was already removed).
    pub(crate) async fn remove(&self, user: &Arc<UserCell>) -> Result<(), StoreError> {
        let guard = self.lock_writes().await;
        user.data().end_session(UserState::Removed);
        let mut sent = Vec::new();
        {
            let mut users = self.lock();
            if !users.contains(user) {
                return Ok(());
            }
            users.all.retain(|u| !Arc::ptr_eq(u, user));
            users.move_current_off(user.id(), &mut sent);
        }
        sent.push(UserEvent::Removed {
            user_id: user.id().to_owned(),
        });
        let change = StoreChange::RemoveUser(user.id().to_owned());
        let written = self.start_write(guard, vec![change]).result().await;
        self.emit(sent);
        written
    }

    /// Change `user` with `f` and persist it (unless it is removed, or nothing stored
    /// changed); a store failure is logged.
    pub(crate) async fn update<R>(&self, user: &UserCell, f: impl FnOnce(&mut UserData) -> R) -> R {
        self.update_persisted(user, f).await.0
    }

    /// [`update`](Self::update), also returning whether persisting worked. In-memory state
    /// stays authoritative either way.
    pub(crate) async fn update_persisted<R>(
        &self,
        user: &UserCell,
        f: impl FnOnce(&mut UserData) -> R,
    ) -> (R, Result<(), StoreError>) {
        let guard = self.lock_writes().await;
        let (r, change) = {
            let mut d = user.data();
            let before = d.to_stored();
            let r = f(&mut d);
            let after = d.to_stored();
            let changed = d.state != UserState::Removed && after != before;
            (r, changed.then_some(StoreChange::SaveUser(after)))
        };
        let written = self.start_write(guard, change.into_iter().collect());
        (r, written.result().await)
    }

    async fn lock_writes(&self) -> WriteGuard {
        self.writes.clone().lock_owned().await
    }

    /// Start writing `changes` and what the store lacks besides them (see
    /// [`Users::catch_up`]); the write lock is released when the write is done. Nothing is
    /// written when there is nothing to write.
    fn start_write(&self, guard: WriteGuard, mut changes: Vec<StoreChange>) -> PendingWrite {
        self.lock().catch_up(&mut changes);
        match self.run_write(changes, move |written| {
            drop(guard);
            written
        }) {
            Ok(written) => PendingWrite::Done(written),
            Err(waiting) => PendingWrite::Writing(waiting),
        }
    }

    /// Write `changes` (exactly) and hand the write lock back when done.
    async fn write_exactly(
        &self,
        guard: WriteGuard,
        changes: Vec<StoreChange>,
    ) -> (WriteGuard, Result<(), StoreError>) {
        // The guard goes back with the outcome; if the caller is gone, it is released on
        // the writer thread, after the write.
        match self.run_write(changes, move |written| (guard, written)) {
            Ok(done) => done,
            Err(waiting) => match waiting.await {
                Ok(done) => done,
                Err(_) => (self.lock_writes().await, Err(panicked())),
            },
        }
    }

    /// Apply `changes` (none: nothing to do) and pass the outcome to `then`: here for a
    /// store that does not block, or when the store could write without waiting
    /// ([`UserStore::try_apply_now`]) (`Ok`), else on the writer thread (`Err`: where
    /// `then`'s result will arrive).
    fn run_write<T: Send + 'static>(
        &self,
        changes: Vec<StoreChange>,
        then: impl FnOnce(Result<(), StoreError>) -> T + Send + 'static,
    ) -> Result<T, tokio::sync::oneshot::Receiver<T>> {
        if changes.is_empty() {
            return Ok(then(Ok(())));
        }
        if !self.store.is_blocking() {
            return Ok(then(apply(
                &*self.store,
                &self.app_id,
                &self.users,
                &changes,
            )));
        }
        if let Some(written) = self.store.try_apply_now(&self.app_id, &changes) {
            return Ok(then(record(&self.users, &changes, written)));
        }
        let (store, app_id, users) = (self.store.clone(), self.app_id.clone(), self.users.clone());
        let (done, waiting) = tokio::sync::oneshot::channel();
        self.writer.run(Box::new(move || {
            let _ = done.send(then(apply(&*store, &app_id, &users, &changes)));
        }));
        Err(waiting)
    }

    /// Write the current user (and anything else the store lacks) from synchronous code,
    /// off the async executor, after any write in progress.
    fn write_current_soon(&self) {
        let (store, app_id, users) = (self.store.clone(), self.app_id.clone(), self.users.clone());
        let job = move |guard: WriteGuard| {
            let mut changes = Vec::new();
            lock(&users).catch_up(&mut changes);
            if !changes.is_empty() {
                let _ = apply(&*store, &app_id, &users, &changes);
            }
            drop(guard);
        };
        let blocking = self.store.is_blocking();
        match self.writes.clone().try_lock_owned() {
            Ok(guard) if !blocking => job(guard),
            Ok(guard) => self.writer.run(Box::new(move || job(guard))),
            Err(_) => {
                // A write is in progress: wait for it on another thread (never on the
                // writer, which must finish that write first), then queue this one.
                let writes = self.writes.clone();
                let writer = self.writer.clone();
                let wait = move || {
                    let guard = writes.blocking_lock_owned();
                    if blocking {
                        writer.run(Box::new(move || job(guard)));
                    } else {
                        job(guard);
                    }
                };
                if let Err(e) = std::thread::Builder::new()
                    .name("latchkey-store-wait".into())
                    .spawn(wait)
                {
                    tracing::error!(error = %e, "could not queue the current user's write; it is written with the next change");
                }
            }
        }
    }
}

/// Apply `changes` to `store` and record the outcome in `users` (under its lock, so that
/// the records follow the order of the writes).
fn apply(
    store: &dyn UserStore,
    app_id: &str,
    users: &Mutex<Users>,
    changes: &[StoreChange],
) -> Result<(), StoreError> {
    record(users, changes, store.apply(app_id, changes))
}

/// Record the outcome of a write of `changes` in `users`.
fn record(
    users: &Mutex<Users>,
    changes: &[StoreChange],
    written: Result<(), StoreError>,
) -> Result<(), StoreError> {
    lock(users).written(changes, written.is_ok());
    if let Err(e) = &written {
        tracing::error!(error = %e, "could not write to the user store");
    }
    written
}

/// A store write on its way: [`result`](Self::result) waits for it. Nobody is woken when
/// the write is done before anyone waits, so a write that overlaps a request costs no
/// extra wake-up.
pub(crate) enum PendingWrite {
    /// Done already (nothing to write, or a store that does not block).
    Done(Result<(), StoreError>),
    /// On the writer thread.
    Writing(tokio::sync::oneshot::Receiver<Result<(), StoreError>>),
}

impl PendingWrite {
    /// The outcome of the write.
    pub(crate) async fn result(self) -> Result<(), StoreError> {
        match self {
            PendingWrite::Done(written) => written,
            PendingWrite::Writing(waiting) => waiting.await.unwrap_or_else(|_| Err(panicked())),
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The thread that runs one app's store writes, one at a time and in order, off the async
/// executor. Started on the first write; it ends when the app's registry is dropped.
///
/// One thread per app rather than tokio's blocking pool: handing a write over and back
/// costs fewer system calls and thread switches (docs/benchmarks.md), and it works without
/// a tokio runtime.
#[derive(Default)]
struct Writer {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
}

impl Writer {
    /// Run `job` on the writer thread (here, if no thread can be started).
    fn run(&self, job: Job) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let job = match jobs.as_ref() {
            Some(tx) => match tx.send(job) {
                Ok(()) => return,
                // The thread is gone: start another.
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let started = std::thread::Builder::new()
            .name("latchkey-store".into())
            .spawn(move || {
                for job in rx {
                    // A store that panics fails its write (the caller gets an error), not
                    // the writes after it.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            });
        match started {
            Ok(_) => {
                // The receiver lives as long as the thread, which just started.
                let _ = tx.send(job);
                *jobs = Some(tx);
            }
            Err(e) => {
                drop(jobs);
                tracing::warn!(error = %e, "cannot start the user store's writer thread; writing in place");
                job();
            }
        }
    }
}

fn panicked() -> StoreError {
    StoreError::new("the user store panicked during a write")
}

fn lock(users: &Mutex<Users>) -> MutexGuard<'_, Users> {
    users.lock().unwrap_or_else(|p| p.into_inner())
}
