//! How the app uses its user store: one write per change, none without a change, off the
//! async executor, logins that cannot be saved, failed writes retried, corrupt stores.

use std::sync::atomic::AtomicBool;
use std::thread::ThreadId;

use super::*;

/// A [`MemoryStore`] that records every `apply`, the thread it ran on, and fails while
/// `fail` is set.
#[derive(Debug, Clone, Default)]
struct Recording {
    inner: MemoryStore,
    fail: Arc<AtomicBool>,
    applied: Arc<Mutex<Vec<Vec<StoreChange>>>>,
    threads: Arc<Mutex<Vec<ThreadId>>>,
    blocking: bool,
    /// Writes `try_apply_now` accepts in place (then `None`, as a store that would wait).
    now: Arc<std::sync::atomic::AtomicUsize>,
}

impl Recording {
    fn take(&self) -> Vec<Vec<StoreChange>> {
        std::mem::take(&mut *self.applied.lock().unwrap())
    }
}

impl UserStore for Recording {
    fn load(&self, app_id: &str) -> Result<StoredUsers, StoreError> {
        self.inner.load(app_id)
    }
    fn save_user(&self, _: &str, _: &StoredUser) -> Result<(), StoreError> {
        unreachable!("the app writes through apply")
    }
    fn remove_user(&self, _: &str, _: &str) -> Result<(), StoreError> {
        unreachable!("the app writes through apply")
    }
    fn set_current_user(&self, _: &str, _: Option<&str>) -> Result<(), StoreError> {
        unreachable!("the app writes through apply")
    }
    fn apply(&self, app_id: &str, changes: &[StoreChange]) -> Result<(), StoreError> {
        self.threads
            .lock()
            .unwrap()
            .push(std::thread::current().id());
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::new("disk full"));
        }
        self.applied.lock().unwrap().push(changes.to_vec());
        self.inner.apply(app_id, changes)
    }
    fn is_blocking(&self) -> bool {
        self.blocking
    }
    fn try_apply_now(
        &self,
        app_id: &str,
        changes: &[StoreChange],
    ) -> Option<Result<(), StoreError>> {
        self.now
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()?;
        Some(self.apply(app_id, changes))
    }
}

fn recording_app(store: &Recording) -> (Arc<Fake>, AppCore) {
    let fake = Fake::new();
    let app = AppCore::new(
        AppConfig::new("app-1", "http://base.test/").with_clock(ManualClock::at(LOCAL_NOW)),
        SharedTransport::new(FakeTransport(fake.clone())),
        Arc::new(store.clone()),
    )
    .unwrap();
    (fake, app)
}

/// What each write did, in short: `save:<id>`, `remove:<id>`, `current:<id or ->`.
fn summary(writes: &[Vec<StoreChange>]) -> Vec<Vec<String>> {
    writes
        .iter()
        .map(|w| {
            w.iter()
                .map(|c| match c {
                    StoreChange::SaveUser(u) => format!("save:{}", u.id),
                    StoreChange::RemoveUser(id) => format!("remove:{id}"),
                    StoreChange::SetCurrentUser(id) => {
                        format!("current:{}", id.as_deref().unwrap_or("-"))
                    }
                })
                .collect()
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn one_write_per_change_and_none_without_a_change() {
    let store = Recording::default();
    let (_, app) = recording_app(&store);
    let a = app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    assert_eq!(
        summary(&store.take()),
        [["save:user-a@b.c", "current:user-a@b.c"]]
    );

    // Nothing that is stored changed: no write.
    a.refresh_profile().await.unwrap();
    app.switch_user(&a).unwrap();
    assert!(store.take().is_empty());

    a.refresh_access_token().await.unwrap();
    assert_eq!(summary(&store.take()), [["save:user-a@b.c"]]);

    let anon = app.log_in(&Anon(false)).await.unwrap();
    let id = anon.id().to_owned();
    assert_eq!(
        summary(&store.take()),
        [[format!("save:{id}"), format!("current:{id}")]]
    );
    // Anonymous log out: removed, and current moves back to a: one write.
    anon.log_out().await.unwrap();
    assert_eq!(
        summary(&store.take()),
        [[format!("remove:{id}"), "current:user-a@b.c".to_owned()]]
    );
    a.log_out().await.unwrap();
    assert_eq!(summary(&store.take()), [["save:user-a@b.c", "current:-"]]);
    let stored = store.inner.load("app-1").unwrap();
    assert_eq!(stored.users.len(), 1);
    assert!(stored.users[0].refresh_token.is_none());
    assert!(stored.current_user_id.is_none());
    // Logging out again changes nothing.
    a.log_out().await.unwrap();
    assert!(store.take().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_login_that_cannot_be_saved_fails_and_changes_nothing() {
    let store = Recording::default();
    let (fake, app) = recording_app(&store);
    let mut rx = app.subscribe();
    store.fail.store(true, Ordering::SeqCst);
    let err = app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store, "{err:?}");
    assert!(err.to_string().contains("undone"), "{err}");
    assert!(err.to_string().contains("disk full"), "{err}");
    assert!(app.all_users().is_empty() && app.current_user().is_none());
    assert!(store.inner.load("app-1").unwrap().users.is_empty());
    assert!(drain(&mut rx).is_empty());
    // The new session is ended on the server too.
    assert_eq!(fake.count("DELETE", "/auth/session"), 1);

    // A returning user whose new login cannot be saved keeps its previous session.
    store.fail.store(false, Ordering::SeqCst);
    let a = app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    let b = app.log_in(&EmailPw("b@b.c", "pw")).await.unwrap();
    let token = a.access_token().unwrap();
    store.fail.store(true, Ordering::SeqCst);
    let err = app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    assert_eq!(a.access_token().unwrap(), token);
    assert_eq!(app.current_user(), Some(b.clone()));
    let stored = store.inner.load("app-1").unwrap();
    assert_eq!(stored.current_user_id.as_deref(), Some(b.id()));
}

#[tokio::test(start_paused = true)]
async fn failed_writes_are_written_again_with_the_next_change() {
    let store = Recording::default();
    let (fake, app) = recording_app(&store);
    let a = app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    let b = app.log_in(&EmailPw("b@b.c", "pw")).await.unwrap();
    store.fail.store(true, Ordering::SeqCst);
    // The refreshed token of b cannot be saved (logged), nor the switch to a.
    Fake::set(&fake.server_time, LOCAL_NOW as i64 + 60);
    b.refresh_access_token().await.unwrap();
    app.switch_user(&a).unwrap();
    store.fail.store(false, Ordering::SeqCst);
    store.take();
    // The next change carries them.
    a.refresh_access_token().await.unwrap();
    let writes = summary(&store.take());
    assert_eq!(writes.len(), 1);
    let mut w = writes[0].clone();
    w.sort();
    assert_eq!(
        w,
        ["current:user-a@b.c", "save:user-a@b.c", "save:user-b@b.c"]
    );
    let stored = store.inner.load("app-1").unwrap();
    let sb = stored.users.iter().find(|u| u.id == b.id()).unwrap();
    assert_eq!(
        sb.access_token.as_ref().map(|t| t.expose().to_owned()),
        b.access_token()
    );
    assert_eq!(stored.current_user_id.as_deref(), Some(a.id()));
}

#[tokio::test(start_paused = true)]
async fn blocking_stores_are_written_off_the_async_executor() {
    for blocking in [true, false] {
        let store = Recording {
            blocking,
            ..Recording::default()
        };
        let (_, app) = recording_app(&store);
        let user = app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
        user.log_out().await.unwrap();
        let here = std::thread::current().id();
        let threads = store.threads.lock().unwrap().clone();
        assert_eq!(threads.len(), 2);
        assert!(
            threads.iter().all(|t| (*t != here) == blocking),
            "blocking={blocking}"
        );
    }
}

/// A blocking store that can write without waiting (`try_apply_now`) is written in place;
/// when it cannot, the write goes to the writer thread, and the order is kept.
#[tokio::test(start_paused = true)]
async fn writes_that_cannot_wait_are_made_in_place() {
    let store = Recording {
        blocking: true,
        ..Recording::default()
    };
    store.now.store(1, Ordering::SeqCst);
    let (_, app) = recording_app(&store);
    let user = app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    user.log_out().await.unwrap();
    let here = std::thread::current().id();
    let threads = store.threads.lock().unwrap().clone();
    assert_eq!(threads.len(), 2);
    assert_eq!(threads[0], here, "the login's write, in place");
    assert_ne!(
        threads[1], here,
        "the log out's write, on the writer thread"
    );
    assert_eq!(
        summary(&store.take()),
        [
            vec!["save:user-a@b.c", "current:user-a@b.c"],
            vec!["save:user-a@b.c", "current:-"]
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn switching_users_is_written_in_order() {
    let store = Recording {
        blocking: true,
        ..Recording::default()
    };
    let (_, app) = recording_app(&store);
    let a = app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    let b = app.log_in(&EmailPw("b@b.c", "pw")).await.unwrap();
    store.take();
    app.switch_user(&a).unwrap();
    // The switch was queued before this logout: it is written first.
    b.log_out().await.unwrap();
    assert_eq!(
        summary(&store.take()),
        [vec!["current:user-a@b.c"], vec!["save:user-b@b.c"]]
    );
    assert_eq!(
        store
            .inner
            .load("app-1")
            .unwrap()
            .current_user_id
            .as_deref(),
        Some(a.id())
    );
}

#[tokio::test(start_paused = true)]
async fn a_store_that_panics_fails_its_write_not_the_app() {
    let store = Recording {
        blocking: true,
        ..Recording::default()
    };
    #[derive(Debug)]
    struct Panics(Recording, Arc<AtomicBool>);
    impl UserStore for Panics {
        fn load(&self, app_id: &str) -> Result<StoredUsers, StoreError> {
            self.0.load(app_id)
        }
        fn save_user(&self, _: &str, _: &StoredUser) -> Result<(), StoreError> {
            unreachable!()
        }
        fn remove_user(&self, _: &str, _: &str) -> Result<(), StoreError> {
            unreachable!()
        }
        fn set_current_user(&self, _: &str, _: Option<&str>) -> Result<(), StoreError> {
            unreachable!()
        }
        fn apply(&self, app_id: &str, changes: &[StoreChange]) -> Result<(), StoreError> {
            assert!(!self.1.load(Ordering::SeqCst), "a bug in the store");
            self.0.apply(app_id, changes)
        }
    }
    let panics = Arc::new(AtomicBool::new(true));
    let app = AppCore::new(
        AppConfig::new("app-1", "http://base.test/").with_clock(ManualClock::at(LOCAL_NOW)),
        SharedTransport::new(FakeTransport(Fake::new())),
        Arc::new(Panics(store.clone(), panics.clone())),
    )
    .unwrap();
    let err = app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    assert!(err.to_string().contains("panicked"), "{err}");
    assert!(app.all_users().is_empty());
    // The writer goes on with the next write.
    panics.store(false, Ordering::SeqCst);
    app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    assert_eq!(store.inner.load("app-1").unwrap().users.len(), 1);
}

#[derive(Debug)]
struct Corrupt {
    set_aside: bool,
    moved: AtomicBool,
}

impl UserStore for Corrupt {
    fn load(&self, _: &str) -> Result<StoredUsers, StoreError> {
        if self.moved.load(Ordering::SeqCst) {
            Ok(StoredUsers::default())
        } else {
            Err(StoreError::new("garbage in users.db").corrupt())
        }
    }
    fn save_user(&self, _: &str, _: &StoredUser) -> Result<(), StoreError> {
        Ok(())
    }
    fn remove_user(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    fn set_current_user(&self, _: &str, _: Option<&str>) -> Result<(), StoreError> {
        Ok(())
    }
    fn set_aside(&self, _: &str) -> Result<Option<std::path::PathBuf>, StoreError> {
        if !self.set_aside {
            return Err(StoreError::new("read-only"));
        }
        self.moved.store(true, Ordering::SeqCst);
        Ok(Some("/data/users.db.corrupt-1".into()))
    }
}

#[tokio::test(start_paused = true)]
async fn a_corrupt_store_is_set_aside_with_an_event_when_recovery_is_on() {
    let build = |set_aside: bool, recover: bool| {
        AppCore::new(
            AppConfig::new("app-1", "http://base.test").with_corrupt_store_recovery(recover),
            SharedTransport::new(FakeTransport(Fake::new())),
            Arc::new(Corrupt {
                set_aside,
                moved: AtomicBool::new(false),
            }),
        )
    };
    // Off (this engine's default): a typed error, the data untouched.
    let err = build(true, false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    assert!(err.to_string().contains("garbage"), "{err}");

    let app = build(true, true).unwrap();
    assert!(app.all_users().is_empty());
    let mut first = app.subscribe();
    let mut second = app.subscribe();
    assert_eq!(
        drain(&mut first),
        [UserEvent::StoreRecovered {
            moved_to: Some("/data/users.db.corrupt-1".into()),
            error: "user store: garbage in users.db".into(),
        }]
    );
    assert!(drain(&mut second).is_empty());
    // The app works as usual afterwards.
    app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
    assert!(matches!(
        drain(&mut first).as_slice(),
        [UserEvent::LoggedIn { .. }, UserEvent::Switched { .. }]
    ));

    // A store that cannot set the data aside: the app does not start.
    let err = build(false, true).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    assert!(err.to_string().contains("could not be set aside"), "{err}");
}

#[cfg(feature = "file-store")]
#[tokio::test]
async fn the_on_disk_stores_recover_from_corrupt_files() {
    let dir = tempfile::tempdir().unwrap();
    let stores: [(Arc<dyn UserStore>, std::path::PathBuf); 2] = [
        (
            Arc::new(SqliteStore::new(dir.path().join("sqlite"))),
            SqliteStore::new(dir.path().join("sqlite")).path_for("app-1"),
        ),
        (
            Arc::new(FileStore::new(dir.path().join("json"))),
            FileStore::new(dir.path().join("json")).path_for("app-1"),
        ),
    ];
    for (store, path) in stores {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"{oops, this is not what a store file looks like}").unwrap();
        let app = AppCore::new(
            AppConfig::new("app-1", "http://base.test").with_corrupt_store_recovery(true),
            SharedTransport::new(FakeTransport(Fake::new())),
            store.clone(),
        )
        .unwrap();
        let events = drain(&mut app.subscribe());
        let [UserEvent::StoreRecovered { moved_to, .. }] = events.as_slice() else {
            panic!("{events:?}");
        };
        let moved_to = moved_to.clone().unwrap();
        assert!(std::fs::read(&moved_to).unwrap().starts_with(b"{oops"));
        app.log_in(&EmailPw("a@b.c", "pw")).await.unwrap();
        assert_eq!(store.load("app-1").unwrap().users.len(), 1);
    }
}
