//! The conformance suite that every [`Store`] implementation runs (feature `testing`).
//!
//! Each check is a `pub async fn` taking a freshly migrated, empty store; it panics
//! when the store breaks the [`Store`] contract. [`store_conformance_tests!`] expands to
//! one `#[tokio::test]` per check, so an implementation runs the whole suite with one
//! line in its tests (its crate needs `tokio` with `macros` and `rt-multi-thread` as a
//! dev-dependency):
//!
//! ```ignore
//! mod sqlite_memory {
//!     latchkey_store::store_conformance_tests!(async {
//!         latchkey_store::SqliteStore::connect("sqlite::memory:").await.unwrap()
//!     });
//! }
//! ```
//!
//! The block makes a new, empty store each time: a [`Store`], an `Arc<dyn Store>`, or a
//! [`TestStore`] when something (a temporary directory, a throwaway database) must live as
//! long as the store; or an `Option` of one of those, `None` skipping the check. The suite
//! migrates it before each check.
//!
//! # PostgreSQL
//!
//! [`postgres_test_store`] makes a [`PgStore`] on a new database of the server that
//! [`POSTGRES_URL_VAR`] names (an admin URL: its user may create databases), and drops the
//! database afterwards. Without the variable, PostgreSQL tests fail in CI (the `CI`
//! variable is set) and are skipped with a message on a developer machine.
//! `.ci/postgres.sh start` (or `cargo xtask test`) starts such a server.
//!
//! [`store_conformance_tests!`]: crate::store_conformance_tests

use std::any::Any;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once};

use latchkey_protocol::Secret;
use serde_json::{Map, Value, json};
use tokio::sync::Barrier;

use crate::{
    ApiKeyKind, ApiKeyRecord, AppCounts, AuditRecord, CredentialStatus, IdentityRecord,
    OutboxRecord, PgStore, SessionRecord, Store, StoreError, ThrottleDecision, ThrottleRule,
    TokenPurpose, UserRecord, UserSearch, UserpassEmail, UserpassRecord, UserpassTokenRecord,
};

/// A store under test, with whatever must outlive it (e.g. its temporary directory).
pub struct TestStore {
    store: Arc<dyn Store>,
    _guard: Box<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for TestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestStore")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl TestStore {
    /// A store under test.
    pub fn new(store: impl Store + 'static) -> TestStore {
        TestStore {
            store: Arc::new(store),
            _guard: Box::new(()),
        }
    }

    /// Keep `guard` alive as long as the store (e.g. a `tempfile::TempDir`).
    pub fn holding(self, guard: impl Any + Send + Sync) -> TestStore {
        TestStore {
            store: self.store,
            _guard: Box::new(guard),
        }
    }

    /// The store, migrated.
    pub async fn migrated(&self) -> Arc<dyn Store> {
        self.store.migrate().await.expect("migrate");
        self.store.clone()
    }
}

/// What a [`store_conformance_tests!`](crate::store_conformance_tests) block may return.
pub trait IntoTestStore {
    /// The store under test; `None` skips the check (a database that is not available
    /// on this machine, already reported).
    fn into_test_store(self) -> Option<TestStore>;
}

impl<S: Store + 'static> IntoTestStore for S {
    fn into_test_store(self) -> Option<TestStore> {
        Some(TestStore::new(self))
    }
}

impl IntoTestStore for Arc<dyn Store> {
    fn into_test_store(self) -> Option<TestStore> {
        Some(TestStore {
            store: self,
            _guard: Box::new(()),
        })
    }
}

impl IntoTestStore for TestStore {
    fn into_test_store(self) -> Option<TestStore> {
        Some(self)
    }
}

impl<T: IntoTestStore> IntoTestStore for Option<T> {
    fn into_test_store(self) -> Option<TestStore> {
        self.and_then(T::into_test_store)
    }
}

/// Runs the conformance suite: one `#[tokio::test]` per check of
/// [`latchkey_store::testing`](crate::testing), each on a new store made by the given
/// `async` block. Call it inside a module (the tests take the checks' names).
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        $crate::store_conformance_tests!(@checks $make;
            migrate_is_idempotent,
            round_trip,
            users,
            duplicate_identity_or_user_is_a_conflict,
            identities,
            sessions,
            devices,
            start_session_is_all_or_nothing,
            userpass_credentials,
            duplicate_email_is_a_conflict,
            userpass_emails_are_listed_in_pages,
            set_userpass_email_moves_tokens_and_refuses_a_taken_email,
            delete_userpass_takes_its_tokens,
            userpass_tokens_are_single_use,
            userpass_tokens_expire,
            replacing_a_token_invalidates_earlier_pairs,
            delete_userpass_tokens_by_purpose,
            outbox,
            api_keys,
            api_key_names_are_unique,
            disabling_an_api_key_revokes_its_sessions,
            deleting_a_user_key_takes_its_identity_and_sessions,
            deleting_a_server_key_takes_its_user,
            deleting_a_user_takes_what_it_owns,
            concurrent_logins_create_one_user,
            concurrent_reads_of_a_deleted_session,
            concurrent_session_deletes,
            concurrent_token_takes,
            concurrent_token_replacements_leave_one_pair,
            throttle_window,
            throttle_check_counts_nothing,
            throttle_lockout_doubles,
            throttle_release_and_clear,
            throttle_settle_clears_and_releases_at_once,
            throttle_purge,
            concurrent_throttle_hits_allow_exactly_the_limit,
            purge_sessions,
            purge_anonymous_users,
            concurrent_purges,
            oauth_states_are_single_use_and_expire,
            concurrent_oauth_state_takes,
            ready_and_pool_status,
            search_users_filters_and_pages,
            user_sessions_and_app_counts,
            audit_log,
            close,
        );
    };
    (@checks $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let Some(store) = $crate::testing::IntoTestStore::into_test_store($make.await)
                else {
                    return;
                };
                $crate::testing::$check(store.migrated().await).await;
            }
        )*
    };
}

/// The app most checks use.
const APP: &str = "a";
/// Another app on the same store: nothing of [`APP`] shows there.
const OTHER_APP: &str = "b";
/// How many tasks the concurrency checks run at once.
const TASKS: usize = 50;

fn user(id: &str) -> UserRecord {
    UserRecord {
        app_id: APP.into(),
        id: id.into(),
        created_at: 1,
        disabled: false,
        custom_data: None,
    }
}

fn identity(provider: &str, id: &str, user_id: &str) -> IdentityRecord {
    IdentityRecord {
        app_id: APP.into(),
        provider_type: provider.into(),
        id: id.into(),
        user_id: user_id.into(),
        data: Map::new(),
        created_at: 1,
    }
}

fn session(id: &str, user_id: &str, logged_in_with: Option<(&str, &str)>) -> SessionRecord {
    SessionRecord {
        app_id: APP.into(),
        id: id.into(),
        user_id: user_id.into(),
        device_id: "d".into(),
        created_at: 1,
        expires_at: 2,
        provider_type: logged_in_with.map(|(p, _)| p.into()),
        identity_id: logged_in_with.map(|(_, i)| i.into()),
    }
}

fn credentials(id: &str, email: &str) -> UserpassRecord {
    UserpassRecord {
        app_id: APP.into(),
        id: id.into(),
        email: email.into(),
        password_hash: Secret::new("h"),
        status: CredentialStatus::Pending,
        created_at: 1,
        updated_at: 1,
    }
}

fn token(email: &str, purpose: TokenPurpose, name: &str, expires_at: i64) -> UserpassTokenRecord {
    UserpassTokenRecord {
        app_id: APP.into(),
        purpose,
        email: email.into(),
        token_hash: format!("{name}-token"),
        token_id_hash: format!("{name}-id"),
        created_at: 1,
        expires_at,
    }
}

/// Take the pair `name` of [`token`] at time 1.
async fn take(
    s: &dyn Store,
    purpose: TokenPurpose,
    name: &str,
) -> Result<Option<String>, StoreError> {
    s.take_userpass_token(
        APP,
        purpose,
        &format!("{name}-id"),
        &format!("{name}-token"),
        1,
    )
    .await
}

fn api_key(id: &str, user_id: &str, kind: ApiKeyKind, name: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        app_id: APP.into(),
        id: id.into(),
        user_id: user_id.into(),
        kind,
        name: name.into(),
        hash: Secret::new(format!("hash-of-{id}")),
        disabled: false,
        created_at: 1,
    }
}

/// Create user API key `id` of `user_id` with its identity.
async fn create_user_key(s: &dyn Store, id: &str, user_id: &str, name: &str) {
    s.create_api_key(
        &api_key(id, user_id, ApiKeyKind::User, name),
        &identity("api-key", id, user_id),
        None,
    )
    .await
    .expect("create user key");
}

/// Create server API key `id` with its server user `user_id`.
async fn create_server_key(
    s: &dyn Store,
    id: &str,
    user_id: &str,
    name: &str,
) -> Result<(), StoreError> {
    s.create_api_key(
        &api_key(id, user_id, ApiKeyKind::Server, name),
        &identity("api-key", id, user_id),
        Some(&user(user_id)),
    )
    .await
}

/// User `u1` (anonymous identity `i1`) with user keys `k1` and `k2`, and a session
/// logged in with each: `s1` (k1), `s2` (k2), `s3` (i1).
async fn user_with_two_keys(s: &dyn Store) {
    s.create_user_with_identity(&user("u1"), &identity("anon-user", "i1", "u1"))
        .await
        .unwrap();
    create_user_key(s, "k1", "u1", "one").await;
    create_user_key(s, "k2", "u1", "two").await;
    s.create_session(&session("s1", "u1", Some(("api-key", "k1"))))
        .await
        .unwrap();
    s.create_session(&session("s2", "u1", Some(("api-key", "k2"))))
        .await
        .unwrap();
    s.create_session(&session("s3", "u1", Some(("anon-user", "i1"))))
        .await
        .unwrap();
}

async fn session_exists(s: &dyn Store, id: &str) -> bool {
    s.get_session(APP, id).await.unwrap().is_some()
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

/// Run `op` in [`TASKS`] tasks released at once; their results in task order.
async fn all_at_once<T, F, Fut>(store: &Arc<dyn Store>, op: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn Store>, usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    n_at_once(TASKS, store, op).await
}

/// Run `op` in `n` tasks released at once; their results in task order.
async fn n_at_once<T, F, Fut>(n: usize, store: &Arc<dyn Store>, op: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<dyn Store>, usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let start = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let start = start.clone();
            let run = op(store.clone(), i);
            tokio::spawn(async move {
                start.wait().await;
                run.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    results
}

/// `migrate` again (and again) changes nothing and keeps the data.
pub async fn migrate_is_idempotent(s: Arc<dyn Store>) {
    s.create_user_with_identity(&user("u1"), &identity("anon-user", "i1", "u1"))
        .await
        .unwrap();
    s.migrate().await.unwrap();
    s.migrate().await.unwrap();
    assert_eq!(s.get_user(APP, "u1").await.unwrap(), Some(user("u1")));
    assert_eq!(s.list_identities(APP, "u1").await.unwrap().len(), 1);
}

/// A tour of users, identities, sessions and credentials (the store's first test).
pub async fn round_trip(s: Arc<dyn Store>) {
    s.create_user_with_identity(&user("u1"), &identity("anon-user", "i1", "u1"))
        .await
        .unwrap();
    // The same identity again is a conflict and creates no second user.
    let err = s
        .create_user_with_identity(&user("u2"), &identity("anon-user", "i1", "u2"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict));
    assert!(s.get_user("a", "u2").await.unwrap().is_none());
    assert!(matches!(
        s.add_identity(&identity("anon-user", "i1", "u1")).await,
        Err(StoreError::Conflict)
    ));
    s.add_identity(&identity("local-userpass", "c1", "u1"))
        .await
        .unwrap();
    assert_eq!(s.list_identities("a", "u1").await.unwrap().len(), 2);

    let mut data = Map::new();
    data.insert("plan".into(), Value::from("pro"));
    assert!(s.set_custom_data("a", "u1", Some(&data)).await.unwrap());
    assert_eq!(
        s.get_user("a", "u1").await.unwrap().unwrap().custom_data,
        Some(data)
    );

    let session = SessionRecord {
        app_id: "a".into(),
        id: "s1".into(),
        user_id: "u1".into(),
        device_id: "d".into(),
        created_at: 1,
        expires_at: 2,
        provider_type: Some("api-key".into()),
        identity_id: Some("k1".into()),
    };
    s.create_session(&session).await.unwrap();
    assert_eq!(
        s.get_session("a", "s1").await.unwrap(),
        Some(session.clone())
    );
    assert!(s.get_session("b", "s1").await.unwrap().is_none());

    let cred = UserpassRecord {
        app_id: "a".into(),
        id: "c1".into(),
        email: "x@y.z".into(),
        password_hash: "h".into(),
        status: CredentialStatus::Pending,
        created_at: 1,
        updated_at: 1,
    };
    s.create_userpass(&cred).await.unwrap();
    let dup = UserpassRecord {
        id: "c2".into(),
        ..cred.clone()
    };
    assert!(matches!(
        s.create_userpass(&dup).await,
        Err(StoreError::Conflict)
    ));
    assert!(
        s.find_userpass("a", "X@y.z").await.unwrap().is_none(),
        "case-sensitive"
    );
    assert!(
        s.set_userpass_status("a", "x@y.z", CredentialStatus::Confirmed, 5)
            .await
            .unwrap()
    );
    assert_eq!(
        s.find_userpass("a", "x@y.z").await.unwrap().unwrap().status,
        CredentialStatus::Confirmed
    );

    assert!(
        s.set_userpass_password("a", "x@y.z", "h2", 6)
            .await
            .unwrap()
    );
    let stored = s.find_userpass("a", "x@y.z").await.unwrap().unwrap();
    assert_eq!(
        (stored.password_hash.expose(), stored.updated_at),
        ("h2", 6)
    );
    assert!(
        !format!("{stored:?}").contains("h2"),
        "hash redacted in Debug"
    );

    let second = SessionRecord {
        id: "s2".into(),
        ..s.get_session("a", "s1").await.unwrap().unwrap()
    };
    s.create_session(&second).await.unwrap();
    let other = SessionRecord {
        id: "s3".into(),
        provider_type: None,
        identity_id: None,
        ..second.clone()
    };
    s.create_session(&other).await.unwrap();
    assert_eq!(
        s.delete_identity_sessions("a", "api-key", "k1")
            .await
            .unwrap(),
        2
    );
    assert!(s.get_session("a", "s3").await.unwrap().is_some());
    s.create_session(&session).await.unwrap();
    s.create_session(&second).await.unwrap();
    assert_eq!(s.delete_user_sessions("a", "u1").await.unwrap(), 3);
    assert!(s.get_session("a", "s2").await.unwrap().is_none());
    s.create_session(&second).await.unwrap();
    assert!(s.delete_session("a", "s2").await.unwrap());
    assert!(!s.delete_session("a", "s2").await.unwrap());
    s.create_session(&second).await.unwrap();

    assert!(s.set_user_disabled("a", "u1", true).await.unwrap());
    assert!(s.get_user("a", "u1").await.unwrap().unwrap().disabled);
    assert!(!s.set_user_disabled("a", "nobody", true).await.unwrap());

    assert!(s.delete_user("a", "u1").await.unwrap());
    assert!(s.get_session("a", "s2").await.unwrap().is_none());
    assert!(s.get_session("a", "s1").await.unwrap().is_none());
    assert!(s.list_identities("a", "u1").await.unwrap().is_empty());
    assert!(s.find_userpass("a", "x@y.z").await.unwrap().is_none());
    assert!(!s.delete_user("a", "u1").await.unwrap());
}

/// `get_user`, `list_users` (oldest first, per app), `set_user_disabled`, `set_custom_data`.
pub async fn users(s: Arc<dyn Store>) {
    let u1 = UserRecord {
        created_at: 2,
        ..user("u1")
    };
    let u2 = UserRecord {
        created_at: 1,
        ..user("u2")
    };
    let u3 = UserRecord {
        created_at: 2,
        ..user("u3")
    };
    for u in [&u1, &u2, &u3] {
        let first = identity("anon-user", &format!("i-{}", u.id), &u.id);
        s.create_user_with_identity(u, &first).await.unwrap();
    }
    assert_eq!(s.list_users(APP).await.unwrap(), [u2, u1.clone(), u3]);
    assert!(s.list_users(OTHER_APP).await.unwrap().is_empty());
    assert_eq!(s.get_user(APP, "u1").await.unwrap(), Some(u1.clone()));
    assert_eq!(s.get_user(OTHER_APP, "u1").await.unwrap(), None);
    assert_eq!(s.get_user(APP, "nobody").await.unwrap(), None);

    assert!(s.set_user_disabled(APP, "u1", true).await.unwrap());
    assert!(s.get_user(APP, "u1").await.unwrap().unwrap().disabled);
    assert!(!s.get_user(APP, "u2").await.unwrap().unwrap().disabled);
    assert!(s.set_user_disabled(APP, "u1", false).await.unwrap());
    assert!(!s.get_user(APP, "u1").await.unwrap().unwrap().disabled);
    assert!(!s.set_user_disabled(APP, "nobody", true).await.unwrap());
    assert!(!s.set_user_disabled(OTHER_APP, "u1", true).await.unwrap());

    let data = object(json!({"plan": "pro", "n": 1.5, "tags": ["x"], "deep": {"on": true}}));
    assert!(s.set_custom_data(APP, "u1", Some(&data)).await.unwrap());
    let stored = s.get_user(APP, "u1").await.unwrap().unwrap();
    assert_eq!(stored.custom_data, Some(data));
    assert_eq!(
        s.list_users(APP).await.unwrap()[1].custom_data,
        stored.custom_data
    );
    assert!(s.set_custom_data(APP, "u1", None).await.unwrap());
    assert_eq!(s.get_user(APP, "u1").await.unwrap(), Some(u1));
    assert!(!s.set_custom_data(APP, "nobody", None).await.unwrap());
}

/// An identity or a user id that exists makes `create_user_with_identity` (and an
/// existing identity `add_identity`) a [`StoreError::Conflict`] that leaves nothing behind.
pub async fn duplicate_identity_or_user_is_a_conflict(s: Arc<dyn Store>) {
    s.create_user_with_identity(&user("u1"), &identity("anon-user", "i1", "u1"))
        .await
        .unwrap();
    let again = s
        .create_user_with_identity(&user("u2"), &identity("anon-user", "i1", "u2"))
        .await;
    assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    assert_eq!(s.get_user(APP, "u2").await.unwrap(), None);
    let same_user = s
        .create_user_with_identity(&user("u1"), &identity("anon-user", "i2", "u1"))
        .await;
    assert!(
        matches!(same_user, Err(StoreError::Conflict)),
        "{same_user:?}"
    );
    assert_eq!(
        s.find_identity(APP, "anon-user", "i2").await.unwrap(),
        None,
        "nothing of a failed creation stays"
    );
    let dup = s.add_identity(&identity("anon-user", "i1", "u1")).await;
    assert!(matches!(dup, Err(StoreError::Conflict)), "{dup:?}");
    assert_eq!(s.list_identities(APP, "u1").await.unwrap().len(), 1);

    // The same id under another provider, or in another app, is another identity.
    s.add_identity(&identity("custom-token", "i1", "u1"))
        .await
        .unwrap();
    let elsewhere = UserRecord {
        app_id: OTHER_APP.into(),
        ..user("u1")
    };
    let elsewhere_identity = IdentityRecord {
        app_id: OTHER_APP.into(),
        ..identity("anon-user", "i1", "u1")
    };
    s.create_user_with_identity(&elsewhere, &elsewhere_identity)
        .await
        .unwrap();
    assert_eq!(s.list_users(APP).await.unwrap().len(), 1);
    assert_eq!(s.list_users(OTHER_APP).await.unwrap(), [elsewhere]);
}

/// `find_identity`, `add_identity`, `set_identity_data`, `list_identities` (oldest first).
pub async fn identities(s: Arc<dyn Store>) {
    let first = IdentityRecord {
        created_at: 5,
        data: object(json!({"email": "x@y.z"})),
        ..identity("local-userpass", "c1", "u1")
    };
    s.create_user_with_identity(&user("u1"), &first)
        .await
        .unwrap();
    let older = IdentityRecord {
        created_at: 3,
        ..identity("anon-user", "i1", "u1")
    };
    let same_time = IdentityRecord {
        created_at: 5,
        ..identity("custom-token", "t1", "u1")
    };
    s.add_identity(&older).await.unwrap();
    s.add_identity(&same_time).await.unwrap();
    s.create_user_with_identity(&user("u2"), &identity("anon-user", "i2", "u2"))
        .await
        .unwrap();

    assert_eq!(
        s.find_identity(APP, "local-userpass", "c1").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(s.find_identity(APP, "anon-user", "c1").await.unwrap(), None);
    assert_eq!(
        s.find_identity(OTHER_APP, "local-userpass", "c1")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.list_identities(APP, "u1").await.unwrap(),
        [older, first.clone(), same_time]
    );
    assert!(s.list_identities(OTHER_APP, "u1").await.unwrap().is_empty());

    let data = object(json!({"email": "new@y.z", "name": "N", "n": [1, 2]}));
    assert!(
        s.set_identity_data(APP, "local-userpass", "c1", &data)
            .await
            .unwrap()
    );
    let found = s.find_identity(APP, "local-userpass", "c1").await.unwrap();
    assert_eq!(found.map(|i| i.data), Some(data.clone()));
    assert!(
        !s.set_identity_data(APP, "local-userpass", "nope", &data)
            .await
            .unwrap()
    );
    assert!(
        !s.set_identity_data(OTHER_APP, "local-userpass", "c1", &data)
            .await
            .unwrap()
    );
}

/// `create_session`, `get_session`, `delete_session`, `delete_user_sessions`,
/// `delete_identity_sessions`.
pub async fn sessions(s: Arc<dyn Store>) {
    for u in ["u1", "u2"] {
        s.create_user_with_identity(&user(u), &identity("anon-user", u, u))
            .await
            .unwrap();
    }
    let with_key = session("s1", "u1", Some(("api-key", "k1")));
    s.create_session(&with_key).await.unwrap();
    s.create_session(&session("s2", "u1", Some(("api-key", "k2"))))
        .await
        .unwrap();
    s.create_session(&session("s3", "u1", None)).await.unwrap();
    s.create_session(&session("s4", "u2", Some(("api-key", "k1"))))
        .await
        .unwrap();
    s.create_session(&session("s5", "u2", Some(("anon-user", "k1"))))
        .await
        .unwrap();
    assert_eq!(
        s.get_session(APP, "s1").await.unwrap(),
        Some(with_key.clone())
    );
    assert_eq!(s.get_session(OTHER_APP, "s1").await.unwrap(), None);
    // The session with its user, in one read; it follows the user's changes at once.
    let custom = Map::from_iter([("plan".to_owned(), json!("gold"))]);
    assert!(s.set_custom_data(APP, "u1", Some(&custom)).await.unwrap());
    let (got, owner) = s.get_session_with_user(APP, "s1").await.unwrap().unwrap();
    assert_eq!(got, with_key);
    assert_eq!(
        Some(owner),
        s.get_user(APP, "u1").await.unwrap(),
        "the join reads the user's row as get_user does"
    );
    assert!(s.set_user_disabled(APP, "u1", true).await.unwrap());
    let (_, owner) = s.get_session_with_user(APP, "s1").await.unwrap().unwrap();
    assert!(owner.disabled && owner.custom_data == Some(custom));
    assert!(s.set_user_disabled(APP, "u1", false).await.unwrap());
    assert_eq!(
        s.get_session_with_user(OTHER_APP, "s1").await.unwrap(),
        None
    );
    assert_eq!(s.get_session_with_user(APP, "nope").await.unwrap(), None);
    // ... and with the user's identities, oldest first, as list_identities has them.
    let mut second = identity("local-userpass", "c1", "u1");
    second.created_at += 1;
    second.data = object(json!({"email": "u1@example.com"}));
    s.add_identity(&second).await.unwrap();
    let (got, owner, identities) = s.get_session_profile(APP, "s1").await.unwrap().unwrap();
    assert_eq!(got, with_key);
    assert_eq!(Some(owner), s.get_user(APP, "u1").await.unwrap());
    assert_eq!(identities, s.list_identities(APP, "u1").await.unwrap());
    assert_eq!(identities.len(), 2);
    assert_eq!(s.get_session_profile(OTHER_APP, "s1").await.unwrap(), None);
    assert_eq!(s.get_session_profile(APP, "nope").await.unwrap(), None);
    let dup = s.create_session(&session("s1", "u2", None)).await;
    assert!(matches!(dup, Err(StoreError::Conflict)), "{dup:?}");
    assert_eq!(
        s.get_session(APP, "s1").await.unwrap().unwrap().user_id,
        "u1"
    );

    assert_eq!(
        s.delete_identity_sessions(APP, "api-key", "k1")
            .await
            .unwrap(),
        2
    );
    assert!(!session_exists(&*s, "s1").await && !session_exists(&*s, "s4").await);
    assert!(session_exists(&*s, "s2").await && session_exists(&*s, "s5").await);
    assert_eq!(
        s.delete_identity_sessions(OTHER_APP, "api-key", "k2")
            .await
            .unwrap(),
        0
    );

    assert_eq!(s.delete_user_sessions(OTHER_APP, "u1").await.unwrap(), 0);
    assert_eq!(s.delete_user_sessions(APP, "u1").await.unwrap(), 2);
    assert!(!session_exists(&*s, "s2").await && !session_exists(&*s, "s3").await);
    assert_eq!(s.delete_user_sessions(APP, "u1").await.unwrap(), 0);

    assert!(!s.delete_session(OTHER_APP, "s5").await.unwrap());
    assert!(s.get_session_with_user(APP, "s5").await.unwrap().is_some());
    assert!(s.delete_session(APP, "s5").await.unwrap());
    assert_eq!(s.get_session_with_user(APP, "s5").await.unwrap(), None);
    assert!(!s.delete_session(APP, "s5").await.unwrap());
    assert!(s.get_user(APP, "u2").await.unwrap().is_some(), "users stay");
}

/// `device_exists` and `touch_device`, per app.
pub async fn devices(s: Arc<dyn Store>) {
    assert!(!s.device_exists("a", "d1").await.unwrap());
    s.touch_device("a", "d1", "u", 1).await.unwrap();
    s.touch_device("a", "d1", "u", 2).await.unwrap();
    assert!(s.device_exists("a", "d1").await.unwrap());
    assert!(!s.device_exists("b", "d1").await.unwrap());
}

/// `start_session`: a login's writes (a new user and identity, the device, the session)
/// all happen or none does, and the store is usable after a failed one.
pub async fn start_session_is_all_or_nothing(s: Arc<dyn Store>) {
    let first = SessionRecord {
        device_id: "d1".into(),
        created_at: 10,
        ..session("s1", "u1", Some(("anon-user", "i1")))
    };
    let custom = Map::from_iter([("plan".to_owned(), json!("gold"))]);
    let new_user = UserRecord {
        custom_data: Some(custom),
        ..user("u1")
    };
    let mut new_identity = identity("anon-user", "i1", "u1");
    new_identity.data = object(json!({"name": "first"}));
    s.start_session(Some((&new_user, &new_identity)), &first)
        .await
        .unwrap();
    assert_eq!(s.get_user(APP, "u1").await.unwrap(), Some(new_user.clone()));
    assert_eq!(
        s.find_identity(APP, "anon-user", "i1").await.unwrap(),
        Some(new_identity.clone())
    );
    assert_eq!(s.get_session(APP, "s1").await.unwrap(), Some(first.clone()));
    assert!(s.device_exists(APP, "d1").await.unwrap());

    // The same identity again, with another user, device and session: a conflict, and
    // none of it is written.
    let second = SessionRecord {
        device_id: "d2".into(),
        ..session("s2", "u2", Some(("anon-user", "i1")))
    };
    let err = s
        .start_session(
            Some((&user("u2"), &identity("anon-user", "i1", "u2"))),
            &second,
        )
        .await;
    assert!(matches!(err, Err(StoreError::Conflict)), "{err:?}");
    assert_eq!(s.get_user(APP, "u2").await.unwrap(), None);
    assert_eq!(s.get_session(APP, "s2").await.unwrap(), None);
    assert!(!s.device_exists(APP, "d2").await.unwrap());

    // A session of a user that does not exist: refused, its device not recorded.
    let orphan = SessionRecord {
        device_id: "d3".into(),
        ..session("s3", "nobody", None)
    };
    assert!(s.start_session(None, &orphan).await.is_err());
    assert_eq!(s.get_session(APP, "s3").await.unwrap(), None);
    assert!(!s.device_exists(APP, "d3").await.unwrap());

    // The existing user logs in again on its device: a session, nothing else.
    let again = SessionRecord {
        created_at: 20,
        ..session("s4", "u1", Some(("anon-user", "i1")))
    };
    let again = SessionRecord {
        device_id: "d1".into(),
        ..again
    };
    s.start_session(None, &again).await.unwrap();
    assert_eq!(s.get_session(APP, "s4").await.unwrap(), Some(again));
    assert_eq!(s.list_identities(APP, "u1").await.unwrap(), [new_identity]);
    let dup = s.start_session(None, &first).await;
    assert!(matches!(dup, Err(StoreError::Conflict)), "{dup:?}");
    assert_eq!(s.list_users(APP).await.unwrap(), [new_user]);
}

/// `create_userpass`, `find_userpass` (exact email), `set_userpass_status`,
/// `set_userpass_password`; the hash never shows in `Debug`.
pub async fn userpass_credentials(s: Arc<dyn Store>) {
    let cred = UserpassRecord {
        password_hash: Secret::new("$argon2id$secret-hash"),
        ..credentials("c1", "Someone@Example.com")
    };
    s.create_userpass(&cred).await.unwrap();
    assert_eq!(
        s.find_userpass(APP, "Someone@Example.com").await.unwrap(),
        Some(cred.clone())
    );
    assert_eq!(
        s.find_userpass(APP, "someone@example.com").await.unwrap(),
        None
    );
    assert_eq!(
        s.find_userpass(OTHER_APP, "Someone@Example.com")
            .await
            .unwrap(),
        None
    );
    assert!(!format!("{cred:?}").contains("secret-hash"));

    assert!(
        s.set_userpass_status(APP, "Someone@Example.com", CredentialStatus::Confirmed, 7)
            .await
            .unwrap()
    );
    assert!(
        s.set_userpass_password(APP, "Someone@Example.com", "new-hash", 9)
            .await
            .unwrap()
    );
    let stored = s
        .find_userpass(APP, "Someone@Example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored,
        UserpassRecord {
            status: CredentialStatus::Confirmed,
            password_hash: Secret::new("new-hash"),
            updated_at: 9,
            ..cred
        }
    );
    assert!(!format!("{stored:?}").contains("new-hash"));
    assert!(
        !s.set_userpass_status(APP, "nobody@x", CredentialStatus::Confirmed, 1)
            .await
            .unwrap()
    );
    assert!(
        !s.set_userpass_password(APP, "nobody@x", "h", 1)
            .await
            .unwrap()
    );
}

/// An email (or credential id) that exists in the app is a [`StoreError::Conflict`];
/// other apps are separate.
pub async fn duplicate_email_is_a_conflict(s: Arc<dyn Store>) {
    s.create_userpass(&credentials("c1", "x@y.z"))
        .await
        .unwrap();
    let same_email = s.create_userpass(&credentials("c2", "x@y.z")).await;
    assert!(
        matches!(same_email, Err(StoreError::Conflict)),
        "{same_email:?}"
    );
    let same_id = s.create_userpass(&credentials("c1", "other@y.z")).await;
    assert!(matches!(same_id, Err(StoreError::Conflict)), "{same_id:?}");
    assert_eq!(s.find_userpass(APP, "other@y.z").await.unwrap(), None);
    let elsewhere = UserpassRecord {
        app_id: OTHER_APP.into(),
        ..credentials("c2", "x@y.z")
    };
    s.create_userpass(&elsewhere).await.unwrap();
    assert_eq!(
        s.find_userpass(APP, "x@y.z").await.unwrap().unwrap().id,
        "c1"
    );
}

/// `list_userpass_emails` pages through every app's credentials in `(app_id, id)`
/// order, each row once.
pub async fn userpass_emails_are_listed_in_pages(s: Arc<dyn Store>) {
    assert!(s.list_userpass_emails(None, 10).await.unwrap().is_empty());
    for (id, email) in [("c3", "c@y.z"), ("c1", "A@y.z"), ("c2", "b@y.z")] {
        s.create_userpass(&credentials(id, email)).await.unwrap();
    }
    s.create_userpass(&UserpassRecord {
        app_id: OTHER_APP.into(),
        ..credentials("c0", "A@y.z")
    })
    .await
    .unwrap();
    let row = |app: &str, id: &str, email: &str| UserpassEmail {
        app_id: app.into(),
        id: id.into(),
        email: email.into(),
    };
    let mut seen = Vec::new();
    let mut after: Option<(String, String)> = None;
    loop {
        let page = s
            .list_userpass_emails(after.as_ref().map(|(a, i)| (a.as_str(), i.as_str())), 2)
            .await
            .unwrap();
        assert!(page.len() <= 2, "{page:?}");
        let Some(last) = page.last() else { break };
        after = Some((last.app_id.clone(), last.id.clone()));
        seen.extend(page);
    }
    let mut expected = vec![
        row(APP, "c1", "A@y.z"),
        row(APP, "c2", "b@y.z"),
        row(APP, "c3", "c@y.z"),
        row(OTHER_APP, "c0", "A@y.z"),
    ];
    expected.sort_by(|a, b| (&a.app_id, &a.id).cmp(&(&b.app_id, &b.id)));
    assert_eq!(seen, expected);
}

/// `set_userpass_email` renames one row and moves its email's token pairs; it refuses
/// (changing nothing) a name other credentials of the app have, and a stale `old`.
pub async fn set_userpass_email_moves_tokens_and_refuses_a_taken_email(s: Arc<dyn Store>) {
    s.create_userpass(&credentials("c1", "X@Y.z"))
        .await
        .unwrap();
    s.create_userpass(&credentials("c2", "taken@y.z"))
        .await
        .unwrap();
    s.create_userpass(&credentials("c3", "Taken@y.z"))
        .await
        .unwrap();
    s.replace_userpass_token(&token("X@Y.z", TokenPurpose::Reset, "x", 100))
        .await
        .unwrap();
    s.replace_userpass_token(&token("Taken@y.z", TokenPurpose::Reset, "t", 100))
        .await
        .unwrap();

    assert!(
        s.set_userpass_email(APP, "c1", "X@Y.z", "x@y.z")
            .await
            .unwrap()
    );
    assert_eq!(s.find_userpass(APP, "X@Y.z").await.unwrap(), None);
    assert_eq!(
        s.find_userpass(APP, "x@y.z").await.unwrap().unwrap().id,
        "c1"
    );
    assert_eq!(
        take(&*s, TokenPurpose::Reset, "x")
            .await
            .unwrap()
            .as_deref(),
        Some("x@y.z")
    );
    // A stale old email, or another row's id: nothing changes.
    assert!(
        !s.set_userpass_email(APP, "c1", "X@Y.z", "z@y.z")
            .await
            .unwrap()
    );
    assert!(
        !s.set_userpass_email(APP, "c2", "x@y.z", "z@y.z")
            .await
            .unwrap()
    );
    assert_eq!(s.find_userpass(APP, "z@y.z").await.unwrap(), None);

    // The canonical spelling is taken: a conflict, and both rows and the token stay.
    let taken = s
        .set_userpass_email(APP, "c3", "Taken@y.z", "taken@y.z")
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict)), "{taken:?}");
    assert_eq!(
        s.find_userpass(APP, "Taken@y.z").await.unwrap().unwrap().id,
        "c3"
    );
    assert_eq!(
        s.find_userpass(APP, "taken@y.z").await.unwrap().unwrap().id,
        "c2"
    );
    assert_eq!(
        take(&*s, TokenPurpose::Reset, "t")
            .await
            .unwrap()
            .as_deref(),
        Some("Taken@y.z")
    );
}

/// `delete_userpass` takes the credentials and every token of the email (also when the
/// email has no credentials), and leaves the user and its identity.
pub async fn delete_userpass_takes_its_tokens(s: Arc<dyn Store>) {
    s.create_user_with_identity(&user("u1"), &identity("local-userpass", "c1", "u1"))
        .await
        .unwrap();
    s.create_userpass(&credentials("c1", "x@y.z"))
        .await
        .unwrap();
    s.create_userpass(&credentials("c2", "keep@y.z"))
        .await
        .unwrap();
    for (email, purpose, name) in [
        ("x@y.z", TokenPurpose::Confirm, "x-confirm"),
        ("x@y.z", TokenPurpose::Reset, "x-reset"),
        ("keep@y.z", TokenPurpose::Reset, "keep-reset"),
        ("orphan@y.z", TokenPurpose::Reset, "orphan-reset"),
    ] {
        s.replace_userpass_token(&token(email, purpose, name, 100))
            .await
            .unwrap();
    }
    assert!(!s.delete_userpass(OTHER_APP, "x@y.z").await.unwrap());
    assert!(s.delete_userpass(APP, "x@y.z").await.unwrap());
    assert_eq!(s.find_userpass(APP, "x@y.z").await.unwrap(), None);
    assert_eq!(
        take(&*s, TokenPurpose::Confirm, "x-confirm").await.unwrap(),
        None
    );
    assert_eq!(
        take(&*s, TokenPurpose::Reset, "x-reset").await.unwrap(),
        None
    );
    assert!(!s.delete_userpass(APP, "x@y.z").await.unwrap());
    assert!(s.get_user(APP, "u1").await.unwrap().is_some());
    assert!(
        s.find_identity(APP, "local-userpass", "c1")
            .await
            .unwrap()
            .is_some()
    );

    assert!(!s.delete_userpass(APP, "orphan@y.z").await.unwrap());
    assert_eq!(
        take(&*s, TokenPurpose::Reset, "orphan-reset")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        take(&*s, TokenPurpose::Reset, "keep-reset").await.unwrap(),
        Some("keep@y.z".into())
    );
    assert!(s.find_userpass(APP, "keep@y.z").await.unwrap().is_some());
}

/// `take_userpass_token` returns the email once; a wrong hash, purpose or app takes nothing.
pub async fn userpass_tokens_are_single_use(s: Arc<dyn Store>) {
    s.replace_userpass_token(&token("x@y.z", TokenPurpose::Confirm, "t", 100))
        .await
        .unwrap();
    let wrong_token = s
        .take_userpass_token(APP, TokenPurpose::Confirm, "t-id", "other-token", 1)
        .await
        .unwrap();
    assert_eq!(wrong_token, None);
    assert_eq!(take(&*s, TokenPurpose::Reset, "t").await.unwrap(), None);
    let other_app = s
        .take_userpass_token(OTHER_APP, TokenPurpose::Confirm, "t-id", "t-token", 1)
        .await
        .unwrap();
    assert_eq!(other_app, None);
    assert_eq!(
        take(&*s, TokenPurpose::Confirm, "t").await.unwrap(),
        Some("x@y.z".into())
    );
    assert_eq!(take(&*s, TokenPurpose::Confirm, "t").await.unwrap(), None);
}

/// A pair taken at or after its expiry returns nothing, and is used up all the same.
pub async fn userpass_tokens_expire(s: Arc<dyn Store>) {
    s.replace_userpass_token(&token("x@y.z", TokenPurpose::Reset, "late", 10))
        .await
        .unwrap();
    let at_expiry = s
        .take_userpass_token(APP, TokenPurpose::Reset, "late-id", "late-token", 10)
        .await
        .unwrap();
    assert_eq!(at_expiry, None);
    assert_eq!(take(&*s, TokenPurpose::Reset, "late").await.unwrap(), None);

    s.replace_userpass_token(&token("x@y.z", TokenPurpose::Reset, "in-time", 10))
        .await
        .unwrap();
    let just_in_time = s
        .take_userpass_token(APP, TokenPurpose::Reset, "in-time-id", "in-time-token", 9)
        .await
        .unwrap();
    assert_eq!(just_in_time, Some("x@y.z".into()));
}

/// `replace_userpass_token` invalidates the earlier pairs of the same email and purpose
/// only.
pub async fn replacing_a_token_invalidates_earlier_pairs(s: Arc<dyn Store>) {
    for (email, purpose, name) in [
        ("x@y.z", TokenPurpose::Confirm, "first"),
        ("x@y.z", TokenPurpose::Reset, "reset"),
        ("other@y.z", TokenPurpose::Confirm, "other"),
        ("x@y.z", TokenPurpose::Confirm, "second"),
    ] {
        s.replace_userpass_token(&token(email, purpose, name, 100))
            .await
            .unwrap();
    }
    assert_eq!(
        take(&*s, TokenPurpose::Confirm, "first").await.unwrap(),
        None
    );
    for (purpose, name, email) in [
        (TokenPurpose::Confirm, "second", "x@y.z"),
        (TokenPurpose::Reset, "reset", "x@y.z"),
        (TokenPurpose::Confirm, "other", "other@y.z"),
    ] {
        assert_eq!(
            take(&*s, purpose, name).await.unwrap(),
            Some(email.into()),
            "{name}"
        );
    }
}

/// `delete_userpass_tokens` deletes the pairs of one email and purpose.
pub async fn delete_userpass_tokens_by_purpose(s: Arc<dyn Store>) {
    for (email, purpose, name) in [
        ("x@y.z", TokenPurpose::Confirm, "confirm"),
        ("x@y.z", TokenPurpose::Reset, "reset"),
        ("other@y.z", TokenPurpose::Confirm, "other"),
    ] {
        s.replace_userpass_token(&token(email, purpose, name, 100))
            .await
            .unwrap();
    }
    s.delete_userpass_tokens(APP, "x@y.z", TokenPurpose::Confirm)
        .await
        .unwrap();
    s.delete_userpass_tokens(OTHER_APP, "x@y.z", TokenPurpose::Reset)
        .await
        .unwrap();
    assert_eq!(
        take(&*s, TokenPurpose::Confirm, "confirm").await.unwrap(),
        None
    );
    assert_eq!(
        take(&*s, TokenPurpose::Reset, "reset").await.unwrap(),
        Some("x@y.z".into())
    );
    assert_eq!(
        take(&*s, TokenPurpose::Confirm, "other").await.unwrap(),
        Some("other@y.z".into())
    );
}

/// `add_outbox` and `list_outbox` (in order of addition, per app, every field kept).
pub async fn outbox(s: Arc<dyn Store>) {
    let message = |app: &str, n: i64| OutboxRecord {
        app_id: app.into(),
        to: format!("to-{n}@y.z"),
        kind: "confirm".into(),
        subject: format!("subject {n}"),
        body: Secret::new(format!("body {n}\nhttps://x/confirm?token=t{n}")),
        token: Secret::new(format!("t{n}")),
        token_id: Secret::new(format!("id{n}")),
        created_at: 10 - n,
    };
    let sent = [message(APP, 1), message(APP, 2), message(APP, 3)];
    s.add_outbox(&sent[0]).await.unwrap();
    s.add_outbox(&message(OTHER_APP, 9)).await.unwrap();
    s.add_outbox(&sent[1]).await.unwrap();
    s.add_outbox(&sent[2]).await.unwrap();
    assert_eq!(s.list_outbox(APP).await.unwrap(), sent);
    assert_eq!(
        s.list_outbox(OTHER_APP).await.unwrap(),
        [message(OTHER_APP, 9)]
    );
    assert!(s.list_outbox("nobody").await.unwrap().is_empty());
}

/// `create_api_key` (with its identity; a server key with its user), `get_api_key`,
/// `list_api_keys` by kind, user and app; the hash never shows in `Debug`.
pub async fn api_keys(s: Arc<dyn Store>) {
    for u in ["u1", "u2"] {
        s.create_user_with_identity(&user(u), &identity("anon-user", u, u))
            .await
            .unwrap();
    }
    create_user_key(&*s, "k1", "u1", "laptop").await;
    create_user_key(&*s, "k2", "u2", "phone").await;
    create_user_key(&*s, "k3", "u1", "phone").await;
    create_server_key(&*s, "sk1", "su1", "backend")
        .await
        .unwrap();

    let k1 = s.get_api_key(APP, "k1").await.unwrap().unwrap();
    assert_eq!(k1, api_key("k1", "u1", ApiKeyKind::User, "laptop"));
    assert!(!format!("{k1:?}").contains("hash-of-k1"));
    assert_eq!(s.get_api_key(OTHER_APP, "k1").await.unwrap(), None);
    assert_eq!(s.get_api_key(APP, "nope").await.unwrap(), None);
    let key_identity = s.find_identity(APP, "api-key", "k1").await.unwrap();
    assert_eq!(key_identity.map(|i| i.user_id), Some("u1".to_owned()));

    let ids = |keys: Vec<ApiKeyRecord>| keys.into_iter().map(|k| k.id).collect::<Vec<_>>();
    let of_u1 = s
        .list_api_keys(APP, ApiKeyKind::User, Some("u1"))
        .await
        .unwrap();
    assert_eq!(ids(of_u1), ["k1", "k3"]);
    let all_user_keys = s.list_api_keys(APP, ApiKeyKind::User, None).await.unwrap();
    assert_eq!(ids(all_user_keys), ["k1", "k2", "k3"]);
    let server_keys = s
        .list_api_keys(APP, ApiKeyKind::Server, None)
        .await
        .unwrap();
    assert_eq!(
        server_keys,
        [api_key("sk1", "su1", ApiKeyKind::Server, "backend")]
    );
    let none = s
        .list_api_keys(APP, ApiKeyKind::Server, Some("u1"))
        .await
        .unwrap();
    assert!(none.is_empty());
    assert!(
        s.list_api_keys(OTHER_APP, ApiKeyKind::User, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.get_user(APP, "su1").await.unwrap(), Some(user("su1")));
    let server_identity = s.find_identity(APP, "api-key", "sk1").await.unwrap();
    assert_eq!(server_identity.map(|i| i.user_id), Some("su1".to_owned()));
}

/// Key names are unique per user (per app for server keys); a conflicting creation
/// leaves neither identity nor server user behind.
pub async fn api_key_names_are_unique(s: Arc<dyn Store>) {
    for u in ["u1", "u2"] {
        s.create_user_with_identity(&user(u), &identity("anon-user", u, u))
            .await
            .unwrap();
    }
    create_user_key(&*s, "k1", "u1", "laptop").await;
    let same_name = s
        .create_api_key(
            &api_key("k2", "u1", ApiKeyKind::User, "laptop"),
            &identity("api-key", "k2", "u1"),
            None,
        )
        .await;
    assert!(
        matches!(same_name, Err(StoreError::Conflict)),
        "{same_name:?}"
    );
    assert_eq!(s.get_api_key(APP, "k2").await.unwrap(), None);
    assert_eq!(s.find_identity(APP, "api-key", "k2").await.unwrap(), None);
    create_user_key(&*s, "k2", "u2", "laptop").await;

    create_server_key(&*s, "sk1", "su1", "backend")
        .await
        .unwrap();
    let server_dup = create_server_key(&*s, "sk2", "su2", "backend").await;
    assert!(
        matches!(server_dup, Err(StoreError::Conflict)),
        "{server_dup:?}"
    );
    assert_eq!(s.get_user(APP, "su2").await.unwrap(), None);
    assert_eq!(s.get_api_key(APP, "sk2").await.unwrap(), None);
    assert_eq!(s.find_identity(APP, "api-key", "sk2").await.unwrap(), None);
    // A user key may share a server key's name; another app has its own names.
    create_user_key(&*s, "k3", "u1", "backend").await;
    let elsewhere = s
        .create_api_key(
            &ApiKeyRecord {
                app_id: OTHER_APP.into(),
                ..api_key("sk2", "su2", ApiKeyKind::Server, "backend")
            },
            &IdentityRecord {
                app_id: OTHER_APP.into(),
                ..identity("api-key", "sk2", "su2")
            },
            Some(&UserRecord {
                app_id: OTHER_APP.into(),
                ..user("su2")
            }),
        )
        .await;
    assert!(elsewhere.is_ok(), "{elsewhere:?}");
    let same_id = s
        .create_api_key(
            &api_key("k1", "u2", ApiKeyKind::User, "other"),
            &identity("api-key", "k1-b", "u2"),
            None,
        )
        .await;
    assert!(matches!(same_id, Err(StoreError::Conflict)), "{same_id:?}");
}

/// Disabling a key deletes the sessions created with it (only those); enabling it
/// brings none back. Unknown keys: false.
pub async fn disabling_an_api_key_revokes_its_sessions(s: Arc<dyn Store>) {
    user_with_two_keys(&*s).await;

    assert!(s.set_api_key_disabled(APP, "k1", true).await.unwrap());
    assert!(s.get_api_key(APP, "k1").await.unwrap().unwrap().disabled);
    assert!(!session_exists(&*s, "s1").await);
    assert!(session_exists(&*s, "s2").await && session_exists(&*s, "s3").await);

    s.create_session(&session("s4", "u1", Some(("api-key", "k1"))))
        .await
        .unwrap();
    assert!(s.set_api_key_disabled(APP, "k1", true).await.unwrap());
    assert!(!session_exists(&*s, "s4").await, "disabling again revokes");

    s.create_session(&session("s5", "u1", Some(("api-key", "k1"))))
        .await
        .unwrap();
    assert!(s.set_api_key_disabled(APP, "k1", false).await.unwrap());
    assert!(!s.get_api_key(APP, "k1").await.unwrap().unwrap().disabled);
    assert!(session_exists(&*s, "s5").await, "enabling revokes nothing");
    assert!(!s.set_api_key_disabled(APP, "nope", true).await.unwrap());
    assert!(!s.set_api_key_disabled(OTHER_APP, "k2", true).await.unwrap());
    assert!(session_exists(&*s, "s2").await);
}

/// Deleting a user key takes its identity and its sessions; the user, its other keys
/// and sessions stay.
pub async fn deleting_a_user_key_takes_its_identity_and_sessions(s: Arc<dyn Store>) {
    user_with_two_keys(&*s).await;

    assert!(!s.delete_api_key(OTHER_APP, "k1").await.unwrap());
    assert!(s.delete_api_key(APP, "k1").await.unwrap());
    assert_eq!(s.get_api_key(APP, "k1").await.unwrap(), None);
    assert_eq!(s.find_identity(APP, "api-key", "k1").await.unwrap(), None);
    assert!(!session_exists(&*s, "s1").await);
    assert!(session_exists(&*s, "s2").await && session_exists(&*s, "s3").await);
    assert!(s.get_user(APP, "u1").await.unwrap().is_some());
    assert!(s.get_api_key(APP, "k2").await.unwrap().is_some());
    assert_eq!(s.list_identities(APP, "u1").await.unwrap().len(), 2);
    assert!(!s.delete_api_key(APP, "k1").await.unwrap());
}

/// Deleting a server key takes its server user with everything the user owns.
pub async fn deleting_a_server_key_takes_its_user(s: Arc<dyn Store>) {
    create_server_key(&*s, "sk1", "su1", "backend")
        .await
        .unwrap();
    create_server_key(&*s, "sk2", "su2", "other").await.unwrap();
    s.add_identity(&identity("custom-token", "t1", "su1"))
        .await
        .unwrap();
    create_user_key(&*s, "k1", "su1", "made-by-the-server-user").await;
    s.create_session(&session("s1", "su1", Some(("api-key", "sk1"))))
        .await
        .unwrap();
    s.create_session(&session("s2", "su1", Some(("custom-token", "t1"))))
        .await
        .unwrap();
    s.create_session(&session("s3", "su2", Some(("api-key", "sk2"))))
        .await
        .unwrap();

    assert!(s.delete_api_key(APP, "sk1").await.unwrap());
    assert_eq!(s.get_api_key(APP, "sk1").await.unwrap(), None);
    assert_eq!(s.get_user(APP, "su1").await.unwrap(), None);
    assert!(s.list_identities(APP, "su1").await.unwrap().is_empty());
    assert_eq!(s.get_api_key(APP, "k1").await.unwrap(), None);
    assert!(!session_exists(&*s, "s1").await && !session_exists(&*s, "s2").await);
    assert!(session_exists(&*s, "s3").await);
    assert!(s.get_user(APP, "su2").await.unwrap().is_some());
    assert!(s.get_api_key(APP, "sk2").await.unwrap().is_some());
    assert!(!s.delete_api_key(APP, "sk1").await.unwrap());
}

/// Deleting a user takes its identities, sessions, API keys, email/password credentials
/// and their tokens; other users, other emails and devices stay.
pub async fn deleting_a_user_takes_what_it_owns(s: Arc<dyn Store>) {
    s.create_user_with_identity(&user("u1"), &identity("anon-user", "i1", "u1"))
        .await
        .unwrap();
    s.add_identity(&identity("local-userpass", "c1", "u1"))
        .await
        .unwrap();
    s.create_userpass(&credentials("c1", "x@y.z"))
        .await
        .unwrap();
    create_user_key(&*s, "k1", "u1", "laptop").await;
    s.create_session(&session("s1", "u1", Some(("anon-user", "i1"))))
        .await
        .unwrap();
    s.create_session(&session("s2", "u1", Some(("api-key", "k1"))))
        .await
        .unwrap();
    s.create_session(&session("s3", "u1", None)).await.unwrap();
    for (purpose, name) in [
        (TokenPurpose::Confirm, "confirm"),
        (TokenPurpose::Reset, "reset"),
    ] {
        s.replace_userpass_token(&token("x@y.z", purpose, name, 100))
            .await
            .unwrap();
    }
    s.touch_device(APP, "d1", "u1", 1).await.unwrap();
    // Another user, with credentials of its own and a key of the same name.
    s.create_user_with_identity(&user("u2"), &identity("local-userpass", "c2", "u2"))
        .await
        .unwrap();
    s.create_userpass(&credentials("c2", "keep@y.z"))
        .await
        .unwrap();
    s.replace_userpass_token(&token("keep@y.z", TokenPurpose::Reset, "keep", 100))
        .await
        .unwrap();
    create_user_key(&*s, "k2", "u2", "laptop").await;
    s.create_session(&session("s4", "u2", None)).await.unwrap();
    // Credentials nobody has logged in with yet.
    s.create_userpass(&credentials("c3", "pending@y.z"))
        .await
        .unwrap();

    assert!(!s.delete_user(OTHER_APP, "u1").await.unwrap());
    assert!(s.delete_user(APP, "u1").await.unwrap());
    assert_eq!(s.get_user(APP, "u1").await.unwrap(), None);
    assert!(s.list_identities(APP, "u1").await.unwrap().is_empty());
    for (provider, id) in [
        ("anon-user", "i1"),
        ("local-userpass", "c1"),
        ("api-key", "k1"),
    ] {
        assert_eq!(s.find_identity(APP, provider, id).await.unwrap(), None);
    }
    for id in ["s1", "s2", "s3"] {
        assert!(!session_exists(&*s, id).await, "{id}");
    }
    assert_eq!(s.get_api_key(APP, "k1").await.unwrap(), None);
    assert!(
        s.list_api_keys(APP, ApiKeyKind::User, Some("u1"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.find_userpass(APP, "x@y.z").await.unwrap(), None);
    assert_eq!(
        take(&*s, TokenPurpose::Confirm, "confirm").await.unwrap(),
        None
    );
    assert_eq!(take(&*s, TokenPurpose::Reset, "reset").await.unwrap(), None);
    assert!(s.device_exists(APP, "d1").await.unwrap());
    assert!(!s.delete_user(APP, "u1").await.unwrap());

    assert!(s.get_user(APP, "u2").await.unwrap().is_some());
    assert!(s.find_userpass(APP, "keep@y.z").await.unwrap().is_some());
    assert!(s.find_userpass(APP, "pending@y.z").await.unwrap().is_some());
    assert!(s.get_api_key(APP, "k2").await.unwrap().is_some());
    assert!(session_exists(&*s, "s4").await);
    assert_eq!(
        take(&*s, TokenPurpose::Reset, "keep").await.unwrap(),
        Some("keep@y.z".into())
    );

    // A server user deleted as a user takes its server key.
    create_server_key(&*s, "sk1", "su1", "backend")
        .await
        .unwrap();
    assert!(s.delete_user(APP, "su1").await.unwrap());
    assert_eq!(s.get_api_key(APP, "sk1").await.unwrap(), None);
    assert_eq!(s.find_identity(APP, "api-key", "sk1").await.unwrap(), None);
}

/// 50 tasks log the same new identity in at once, each with its own new user id:
/// exactly one creates its user, the others get [`StoreError::Conflict`].
pub async fn concurrent_logins_create_one_user(s: Arc<dyn Store>) {
    let results = all_at_once(&s, |s, i| async move {
        let id = format!("u{i}");
        s.create_user_with_identity(&user(&id), &identity("anon-user", "device-1", &id))
            .await
    })
    .await;
    let winners: Vec<usize> = (0..TASKS).filter(|&i| results[i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for r in &results {
        assert!(matches!(r, Ok(()) | Err(StoreError::Conflict)), "{r:?}");
    }
    let users = s.list_users(APP).await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].id, format!("u{}", winners[0]));
    let found = s.find_identity(APP, "anon-user", "device-1").await.unwrap();
    assert_eq!(found.map(|i| i.user_id), Some(users[0].id.clone()));
}

/// 50 tasks look up a session that was just deleted (a revoked refresh token used from
/// many places at once): every one finds nothing.
pub async fn concurrent_reads_of_a_deleted_session(s: Arc<dyn Store>) {
    s.create_user_with_identity(&user("u1"), &identity("anon-user", "i1", "u1"))
        .await
        .unwrap();
    s.create_session(&session("s1", "u1", None)).await.unwrap();
    assert!(session_exists(&*s, "s1").await);
    assert!(s.delete_session(APP, "s1").await.unwrap());
    let results = all_at_once(&s, |s, _| async move { s.get_session(APP, "s1").await }).await;
    for r in results {
        assert_eq!(r.unwrap(), None);
    }
}

/// 50 tasks delete one session at once: exactly one of them deleted it.
pub async fn concurrent_session_deletes(s: Arc<dyn Store>) {
    s.create_user_with_identity(&user("u1"), &identity("anon-user", "i1", "u1"))
        .await
        .unwrap();
    s.create_session(&session("s1", "u1", None)).await.unwrap();
    let results = all_at_once(&s, |s, _| async move { s.delete_session(APP, "s1").await }).await;
    let deleted = results.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(deleted, 1);
    assert!(!session_exists(&*s, "s1").await);
}

/// 50 tasks take one confirmation token at once: exactly one gets the email.
pub async fn concurrent_token_takes(s: Arc<dyn Store>) {
    s.replace_userpass_token(&token("x@y.z", TokenPurpose::Confirm, "t", 100))
        .await
        .unwrap();
    let results = all_at_once(&s, |s, _| async move {
        take(&*s, TokenPurpose::Confirm, "t").await
    })
    .await;
    let taken: Vec<String> = results.into_iter().filter_map(|r| r.unwrap()).collect();
    assert_eq!(taken, ["x@y.z"]);
}

/// 50 tasks replace the confirmation pair of one email at once, each with its own pair:
/// exactly one pair is left, and it is one of theirs.
pub async fn concurrent_token_replacements_leave_one_pair(s: Arc<dyn Store>) {
    let results = all_at_once(&s, |s, i| async move {
        let pair = token("x@y.z", TokenPurpose::Confirm, &format!("t{i}"), 100);
        s.replace_userpass_token(&pair).await
    })
    .await;
    for r in results {
        r.unwrap();
    }
    let mut left = Vec::new();
    for i in 0..TASKS {
        if let Some(email) = take(&*s, TokenPurpose::Confirm, &format!("t{i}"))
            .await
            .unwrap()
        {
            left.push((i, email));
        }
    }
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].1, "x@y.z");
}

/// The hit a decision allowed (panics when it was refused).
fn allowed(decision: ThrottleDecision) -> crate::ThrottleHit {
    match decision {
        ThrottleDecision::Allowed(hit) => hit,
        other => panic!("expected an allowed hit, got {other:?}"),
    }
}

/// The `retry_after_secs` of a refused hit (panics when it was allowed).
fn refused(decision: ThrottleDecision) -> u64 {
    match decision {
        ThrottleDecision::Limited { retry_after_secs } => retry_after_secs,
        other => panic!("expected a refused hit, got {other:?}"),
    }
}

/// A window bucket allows `limit` hits in the window that opens at its first hit, then
/// refuses until the window ends (refused hits are not counted); buckets are separate.
pub async fn throttle_window(s: Arc<dyn Store>) {
    let rule = ThrottleRule::window(3, 10);
    let hit = |bucket: &'static str, now: i64| {
        let s = s.clone();
        async move { s.throttle_hit(bucket, rule, now).await.unwrap() }
    };
    for n in 1..=3 {
        let h = allowed(hit("ip:1", 100).await);
        assert_eq!((h.bucket(), h.count(), h.lockout_secs()), ("ip:1", n, None));
    }
    assert_eq!(refused(hit("ip:1", 100).await), 10);
    assert_eq!(refused(hit("ip:1", 109).await), 1);
    assert_eq!(allowed(hit("ip:2", 105).await).count(), 1, "another bucket");
    // The window ended: a new one opens at its first hit, with a full allowance.
    assert_eq!(allowed(hit("ip:1", 110).await).count(), 1);
    assert_eq!(allowed(hit("ip:1", 115).await).count(), 2);
    assert_eq!(allowed(hit("ip:1", 119).await).count(), 3);
    assert_eq!(refused(hit("ip:1", 119).await), 1);
    assert_eq!(allowed(hit("ip:1", 125).await).count(), 1);
    assert_eq!(allowed(hit("ip:2", 114).await).count(), 2);
    assert!(
        hit("ip:2", 115).await.is_allowed(),
        "ip:2's window opened at 105"
    );
}

/// `throttle_check` tells what a hit would decide, and counts nothing.
pub async fn throttle_check_counts_nothing(s: Arc<dyn Store>) {
    let window = ThrottleRule::window(2, 10);
    assert_eq!(s.throttle_check("w", window, 100).await.unwrap(), None);
    for _ in 0..5 {
        assert_eq!(s.throttle_check("w", window, 100).await.unwrap(), None);
    }
    allowed(s.throttle_hit("w", window, 100).await.unwrap());
    assert_eq!(s.throttle_check("w", window, 101).await.unwrap(), None);
    allowed(s.throttle_hit("w", window, 101).await.unwrap());
    assert_eq!(s.throttle_check("w", window, 104).await.unwrap(), Some(6));
    assert_eq!(s.throttle_check("w", window, 110).await.unwrap(), None);
    let lockout = ThrottleRule::lockout(2, 50, 500);
    allowed(s.throttle_hit("l", lockout, 100).await.unwrap());
    assert_eq!(s.throttle_check("l", lockout, 100).await.unwrap(), None);
    allowed(s.throttle_hit("l", lockout, 100).await.unwrap());
    assert_eq!(s.throttle_check("l", lockout, 120).await.unwrap(), Some(30));
    assert_eq!(s.throttle_check("l", lockout, 150).await.unwrap(), None);
}

/// A lockout bucket locks at its `limit`-th hit, for a lockout that doubles each time up
/// to the cap; after a lockout the count starts again; clearing forgets the lockouts, and
/// so does a bucket left alone longer than the cap.
pub async fn throttle_lockout_doubles(s: Arc<dyn Store>) {
    let rule = ThrottleRule::lockout(3, 100, 1000);
    let hit = |bucket: &'static str, now: i64| {
        let s = s.clone();
        async move { s.throttle_hit(bucket, rule, now).await.unwrap() }
    };
    // Three hits, the third locks; then locked until the lockout ends.
    let lock_at = |now: i64| async move {
        for n in 1..=2 {
            let h = allowed(hit("pair", now).await);
            assert_eq!((h.count(), h.lockout_secs()), (n, None), "at {now}");
        }
        let third = allowed(hit("pair", now).await);
        assert_eq!(third.count(), 3);
        third.lockout_secs().expect("the third hit locks")
    };
    assert_eq!(lock_at(0).await, 100);
    assert_eq!(refused(hit("pair", 0).await), 100);
    assert_eq!(refused(hit("pair", 99).await), 1);
    assert_eq!(lock_at(100).await, 200);
    assert_eq!(refused(hit("pair", 299).await), 1);
    assert_eq!(lock_at(300).await, 400);
    assert_eq!(lock_at(700).await, 800);
    assert_eq!(lock_at(1500).await, 1000, "capped");
    assert_eq!(
        lock_at(2500).await,
        1000,
        "remembered past the end of a lockout as long as the cap"
    );
    assert!(hit("other", 2500).await.is_allowed(), "another bucket");

    // A successful login clears the bucket: the next lockout is the first again.
    assert!(s.throttle_clear("pair").await.unwrap());
    assert_eq!(lock_at(3500).await, 100);

    // Left alone as long as the cap after its latest allowed hit (or lockout), a bucket
    // is forgotten.
    assert_eq!(lock_at(3600).await, 200);
    assert_eq!(allowed(hit("pair", 3800).await).count(), 1);
    assert_eq!(allowed(hit("pair", 4799).await).count(), 2);
    assert_eq!(
        lock_at(5799).await,
        100,
        "forgotten 1000 s after the hit at 4799"
    );

    // With a limit of 1, every allowed hit locks.
    let one = ThrottleRule::lockout(1, 50, 1000);
    let first = allowed(s.throttle_hit("strict", one, 0).await.unwrap());
    assert_eq!((first.count(), first.lockout_secs()), (1, Some(50)));
    assert_eq!(
        refused(s.throttle_hit("strict", one, 10).await.unwrap()),
        40
    );
    let second = allowed(s.throttle_hit("strict", one, 50).await.unwrap());
    assert_eq!(second.lockout_secs(), Some(100));
}

/// A released hit is given back to its window (once the window has ended, releasing
/// does nothing); clearing forgets a bucket.
pub async fn throttle_release_and_clear(s: Arc<dyn Store>) {
    let rule = ThrottleRule::window(2, 60);
    let hit = |now: i64| {
        let s = s.clone();
        async move { s.throttle_hit("email", rule, now).await.unwrap() }
    };
    let first = allowed(hit(0).await);
    let second = allowed(hit(0).await);
    refused(hit(0).await);
    assert!(s.throttle_release(&first).await.unwrap());
    assert_eq!(allowed(hit(1).await).count(), 2);
    refused(hit(1).await);

    assert_eq!(allowed(hit(60).await).count(), 1, "a new window");
    assert!(
        !s.throttle_release(&second).await.unwrap(),
        "a hit of an ended window is not given back"
    );
    assert_eq!(allowed(hit(61).await).count(), 2);
    refused(hit(61).await);

    assert!(s.throttle_clear("email").await.unwrap());
    assert!(!s.throttle_clear("email").await.unwrap());
    assert_eq!(allowed(hit(62).await).count(), 1);
    assert!(!s.throttle_clear("never-hit").await.unwrap());
}

/// `throttle_settle` forgets the cleared bucket and gives back every released hit, as
/// the separate calls would (a hit of an ended window stays counted); with nothing to
/// do, it does nothing.
pub async fn throttle_settle_clears_and_releases_at_once(s: Arc<dyn Store>) {
    let lockout = ThrottleRule::lockout(3, 60, 600);
    let window = ThrottleRule::window(2, 60);
    let pair = allowed(s.throttle_hit("pair", lockout, 0).await.unwrap());
    allowed(s.throttle_hit("pair", lockout, 0).await.unwrap());
    let id = allowed(s.throttle_hit("id", window, 0).await.unwrap());
    let ip = allowed(s.throttle_hit("ip", window, 0).await.unwrap());
    allowed(s.throttle_hit("ip", window, 0).await.unwrap());
    s.throttle_settle(Some(pair.bucket()), &[id, ip])
        .await
        .unwrap();
    assert!(
        !s.throttle_clear("pair").await.unwrap(),
        "the pair was cleared"
    );
    assert_eq!(
        allowed(s.throttle_hit("id", window, 1).await.unwrap()).count(),
        1,
        "the id hit was given back"
    );
    assert_eq!(
        allowed(s.throttle_hit("ip", window, 1).await.unwrap()).count(),
        2,
        "one ip hit was given back"
    );

    // A hit of an ended window is not given back; nothing to settle is a no-op.
    let old = allowed(s.throttle_hit("late", window, 0).await.unwrap());
    allowed(s.throttle_hit("late", window, 100).await.unwrap());
    s.throttle_settle(None, &[old]).await.unwrap();
    assert_eq!(
        allowed(s.throttle_hit("late", window, 100).await.unwrap()).count(),
        2,
        "the new window kept its hit"
    );
    refused(s.throttle_hit("late", window, 100).await.unwrap());
    s.throttle_settle(None, &[]).await.unwrap();
    s.throttle_settle(Some("never-hit"), &[]).await.unwrap();
}

/// `purge_throttle` deletes the buckets that have expired, and only those.
pub async fn throttle_purge(s: Arc<dyn Store>) {
    let window = ThrottleRule::window(1, 10);
    let lockout = ThrottleRule::lockout(1, 5, 100);
    allowed(s.throttle_hit("w", window, 0).await.unwrap());
    allowed(s.throttle_hit("l", lockout, 0).await.unwrap());
    assert_eq!(s.purge_throttle(9).await.unwrap(), 0);
    assert_eq!(refused(s.throttle_hit("w", window, 9).await.unwrap()), 1);
    assert_eq!(s.purge_throttle(10).await.unwrap(), 1, "the window ended");
    assert_eq!(refused(s.throttle_hit("l", lockout, 4).await.unwrap()), 1);
    // The lockout bucket is remembered 100 s past the end of its lockout (5 s).
    assert_eq!(s.purge_throttle(104).await.unwrap(), 0);
    assert_eq!(s.purge_throttle(105).await.unwrap(), 1);
    // Gone: a hit at an earlier time starts afresh.
    assert!(s.throttle_hit("l", lockout, 4).await.unwrap().is_allowed());
    assert_eq!(s.purge_throttle(105).await.unwrap(), 0);
}

/// 60 hits of one bucket at once, limit 5: exactly 5 are allowed (numbered 1 to 5), the
/// other 55 refused until the window or lockout ends.
pub async fn concurrent_throttle_hits_allow_exactly_the_limit(s: Arc<dyn Store>) {
    const HITS: usize = 60;
    for (bucket, rule) in [
        ("login-window", ThrottleRule::window(5, 60)),
        ("login-lockout", ThrottleRule::lockout(5, 60, 600)),
    ] {
        let results = n_at_once(HITS, &s, move |s, _| async move {
            s.throttle_hit(bucket, rule, 1000).await
        })
        .await;
        let mut counts = Vec::new();
        for r in results {
            match r.unwrap() {
                ThrottleDecision::Allowed(hit) => counts.push(hit.count()),
                ThrottleDecision::Limited { retry_after_secs } => {
                    assert_eq!(retry_after_secs, 60, "{bucket}")
                }
            }
        }
        counts.sort_unstable();
        assert_eq!(counts, [1, 2, 3, 4, 5], "{bucket}");
    }
}

/// `close` finishes (twice, too), and the store refuses work afterwards.
pub async fn close(s: Arc<dyn Store>) {
    s.create_user_with_identity(&user("u1"), &identity("anon-user", "i1", "u1"))
        .await
        .unwrap();
    s.close().await;
    s.close().await;
    assert!(s.get_user(APP, "u1").await.is_err());
}

/// Check that `migrator` holds exactly the `shipped` migrations: (version, description,
/// first 8 bytes of the checksum in hex). A shipped migration is never edited (databases
/// record its checksum and refuse a changed file); a change to the schema is a new file,
/// added to the list.
pub fn assert_shipped_migrations(
    migrator: &sqlx::migrate::Migrator,
    shipped: &[(i64, &str, &str)],
) {
    let found: Vec<(i64, String, String)> = migrator
        .iter()
        .map(|m| {
            let prefix: String = m.checksum[..8].iter().map(|b| format!("{b:02x}")).collect();
            (m.version, m.description.to_string(), prefix)
        })
        .collect();
    let expected: Vec<(i64, String, String)> = shipped
        .iter()
        .map(|&(v, d, c)| (v, d.to_owned(), c.to_owned()))
        .collect();
    assert_eq!(found, expected);
}

/// `purge_sessions` deletes the sessions expired at `now`, and only those.
pub async fn purge_sessions(s: Arc<dyn Store>) {
    s.create_user_with_identity(&user("u1"), &identity("anon-user", "d1", "u1"))
        .await
        .unwrap();
    for (id, expires_at) in [("old", 10), ("edge", 20), ("live", 30)] {
        let mut record = session(id, "u1", None);
        record.expires_at = expires_at;
        s.create_session(&record).await.unwrap();
    }
    assert_eq!(s.purge_sessions(20).await.unwrap(), 2);
    assert!(!session_exists(s.as_ref(), "old").await);
    assert!(!session_exists(s.as_ref(), "edge").await);
    assert!(session_exists(s.as_ref(), "live").await);
    assert_eq!(s.purge_sessions(20).await.unwrap(), 0);
}

/// `purge_anonymous_users` deletes anonymous users created before the cut-off without a
/// session since; users with another identity, newer users and active users stay.
pub async fn purge_anonymous_users(s: Arc<dyn Store>) {
    let at = |id: &str, created_at: i64| UserRecord {
        created_at,
        ..user(id)
    };
    // Stale: anonymous, old, an old session.
    s.create_user_with_identity(&at("stale", 10), &identity("anon-user", "d1", "stale"))
        .await
        .unwrap();
    let mut old = session("stale-session", "stale", None);
    old.created_at = 50;
    old.expires_at = 1_000;
    s.create_session(&old).await.unwrap();
    // Active: anonymous, old, a recent session.
    s.create_user_with_identity(&at("active", 10), &identity("anon-user", "d2", "active"))
        .await
        .unwrap();
    let mut recent = session("recent", "active", None);
    recent.created_at = 150;
    recent.expires_at = 1_000;
    s.create_session(&recent).await.unwrap();
    // New: anonymous, created after the cut-off.
    s.create_user_with_identity(&at("new", 150), &identity("anon-user", "d3", "new"))
        .await
        .unwrap();
    // Linked: anonymous and another identity.
    s.create_user_with_identity(&at("linked", 10), &identity("anon-user", "d4", "linked"))
        .await
        .unwrap();
    s.add_identity(&identity("local-userpass", "l1", "linked"))
        .await
        .unwrap();
    // Not anonymous at all.
    s.create_user_with_identity(&at("named", 10), &identity("custom-token", "c1", "named"))
        .await
        .unwrap();

    assert_eq!(s.purge_anonymous_users(100).await.unwrap(), 1);
    let mut left: Vec<String> = s
        .list_users(APP)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    left.sort();
    assert_eq!(left, ["active", "linked", "named", "new"]);
    assert!(!session_exists(s.as_ref(), "stale-session").await);
    assert!(
        s.find_identity(APP, "anon-user", "d1")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(s.purge_anonymous_users(100).await.unwrap(), 0);
}

/// Housekeeping run by many nodes at once deletes each row once, without errors.
pub async fn concurrent_purges(s: Arc<dyn Store>) {
    for i in 0..20 {
        let id = format!("u{i}");
        s.create_user_with_identity(&user(&id), &identity("anon-user", &id, &id))
            .await
            .unwrap();
        s.create_session(&session(&format!("s{i}"), &id, None))
            .await
            .unwrap();
    }
    let sessions = all_at_once(&s, |s, _| async move { s.purge_sessions(5).await.unwrap() }).await;
    assert_eq!(sessions.iter().sum::<u64>(), 20, "{sessions:?}");
    let users = all_at_once(&s, |s, _| async move {
        s.purge_anonymous_users(5).await.unwrap()
    })
    .await;
    assert_eq!(users.iter().sum::<u64>(), 20, "{users:?}");
    assert!(s.list_users(APP).await.unwrap().is_empty());
}

/// The environment variable that names the PostgreSQL server for tests: an admin URL such
/// as `postgres://postgres@127.0.0.1:5432/postgres` whose user may create databases.
pub const POSTGRES_URL_VAR: &str = "LATCHKEY_TEST_POSTGRES_URL";

/// Whether this runs in CI (the `CI` variable is set, and not to `false` or `0`).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The admin URL of [`POSTGRES_URL_VAR`]. Without it: a panic in CI, else `None` (the
/// skip is reported once per test binary, on stderr past the test harness's capture).
fn postgres_admin_url() -> Option<Secret> {
    static SKIP_NOTICE: Once = Once::new();
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(Secret::new(url.trim())),
        _ if in_ci() => panic!(
            "PostgreSQL is required in CI, but {POSTGRES_URL_VAR} is not set: the PostgreSQL \
             store tests cannot run. .ci/run starts a server with `.ci/postgres.sh start`; \
             see crates/latchkey-store/README.md"
        ),
        _ => {
            SKIP_NOTICE.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "\nNOTE: {POSTGRES_URL_VAR} is not set: the PostgreSQL store tests are \
                     SKIPPED (they pass without checking anything). Run them with \
                     `eval \"$(.ci/postgres.sh start)\"` first, or through `cargo xtask test`.\n"
                );
            });
            None
        }
    }
}

/// A throwaway database on the PostgreSQL test server ([`POSTGRES_URL_VAR`]), dropped
/// (with whatever is still connected to it) when this is dropped.
#[derive(Debug)]
pub struct PostgresTestDb {
    admin: Secret,
    name: String,
    url: Secret,
}

/// Tells the databases of one test process apart.
static NEXT_DATABASE: AtomicU64 = AtomicU64::new(0);

impl PostgresTestDb {
    /// A new, empty database. `None` when [`POSTGRES_URL_VAR`] is not set on a developer
    /// machine (reported once); panics when it is not set in CI, or when the server
    /// cannot be reached.
    pub async fn create() -> Option<PostgresTestDb> {
        use sqlx::Connection;

        let admin = postgres_admin_url()?;
        let name = format!(
            "latchkey_test_{}_{}",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = sqlx::PgConnection::connect(admin.expose())
            .await
            .unwrap_or_else(|e| {
                panic!("cannot connect to the PostgreSQL test server ({POSTGRES_URL_VAR}): {e}")
            });
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        let _ = conn.close().await;
        let mut url = url::Url::parse(admin.expose())
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is not a URL: {e}"));
        url.set_path(&name);
        Some(PostgresTestDb {
            admin,
            name,
            url: Secret::new(url.to_string()),
        })
    }

    /// The database's URL (the admin URL with this database).
    pub fn url(&self) -> &str {
        self.url.expose()
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PostgresTestDb {
    fn drop(&mut self) {
        use sqlx::Connection;

        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Dropping runs in the test's runtime, which cannot block on itself: use a
        // runtime of its own on another thread.
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(admin.expose())
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                let _ = conn.close().await;
                Ok(())
            })
        })
        .join();
        if let Ok(Err(e)) | Err(e) = dropped.map_err(|_| "panicked".to_owned()) {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

/// A [`PgStore`] on a new [`PostgresTestDb`], for
/// [`store_conformance_tests!`](crate::store_conformance_tests): `None` skips (no
/// PostgreSQL on a developer machine).
pub async fn postgres_test_store() -> Option<TestStore> {
    let db = PostgresTestDb::create().await?;
    let store = PgStore::connect(db.url())
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test database: {e}"));
    Some(TestStore::new(store).holding(db))
}

fn oauth_state(hash: &str, expires_at: i64) -> crate::OAuthStateRecord {
    crate::OAuthStateRecord {
        state_hash: hash.to_owned(),
        app_id: APP.to_owned(),
        provider_type: "oauth2-google".to_owned(),
        redirect_uri: "http://127.0.0.1:1/cb".to_owned(),
        client_state: "abcdefghijkl".to_owned(),
        device: Some(r#"{"platform":"chrome"}"#.to_owned()),
        link_user_id: Some("u1".to_owned()),
        link_session_id: Some("s1".to_owned()),
        code_verifier: Some("verifier".into()),
        created_at: 10,
        expires_at,
    }
}

/// An OAuth state round-trips, is taken once, is refused once expired, and the purge
/// deletes the expired ones only; a second state with the same hash is a conflict.
pub async fn oauth_states_are_single_use_and_expire(s: Arc<dyn Store>) {
    let first = oauth_state("h1", 100);
    s.create_oauth_state(&first).await.unwrap();
    assert!(matches!(
        s.create_oauth_state(&first).await,
        Err(StoreError::Conflict)
    ));
    let taken = s.take_oauth_state("h1", 50).await.unwrap().unwrap();
    assert_eq!(taken, first);
    assert_eq!(taken.code_verifier.as_ref().unwrap().expose(), "verifier");
    assert!(s.take_oauth_state("h1", 50).await.unwrap().is_none());
    let bare = crate::OAuthStateRecord {
        device: None,
        link_user_id: None,
        link_session_id: None,
        code_verifier: None,
        ..oauth_state("h2", 100)
    };
    s.create_oauth_state(&bare).await.unwrap();
    assert!(
        s.take_oauth_state("h2", 100).await.unwrap().is_none(),
        "expired at 100"
    );
    s.create_oauth_state(&oauth_state("h3", 100)).await.unwrap();
    s.create_oauth_state(&oauth_state("h4", 200)).await.unwrap();
    assert!(s.take_oauth_state("unknown", 0).await.unwrap().is_none());
    assert_eq!(s.purge_oauth_states(150).await.unwrap(), 1);
    assert!(s.take_oauth_state("h4", 150).await.unwrap().is_some());
}

/// 50 tasks take one OAuth state at once: exactly one gets it.
pub async fn concurrent_oauth_state_takes(s: Arc<dyn Store>) {
    s.create_oauth_state(&oauth_state("h", 100)).await.unwrap();
    let results = all_at_once(&s, |s, _| async move { s.take_oauth_state("h", 1).await }).await;
    let taken = results.into_iter().filter_map(|r| r.unwrap()).count();
    assert_eq!(taken, 1);
}

/// `check_ready` on a migrated store; `pool_status` is within its bounds; a closed
/// store is not ready.
pub async fn ready_and_pool_status(s: Arc<dyn Store>) {
    s.check_ready().await.expect("a migrated store is ready");
    let pool = s.pool_status();
    assert!(
        pool.max >= 1 && pool.size <= pool.max && pool.idle <= pool.size,
        "{pool:?}"
    );
    s.close().await;
    let err = s
        .check_ready()
        .await
        .expect_err("a closed store is not ready");
    assert!(err.is_unavailable(), "{err:?}");
}

/// `search_users`: by user id, identity id, part of an email (any case, `%` and `_`
/// literal), provider; pages in id order; other apps never show.
pub async fn search_users_filters_and_pages(s: Arc<dyn Store>) {
    for n in 0..25 {
        let id = format!("u{n:02}");
        s.create_user_with_identity(&user(&id), &identity("anon-user", &format!("i{n:02}"), &id))
            .await
            .unwrap();
    }
    let mut ana = identity("local-userpass", "c1", "u07");
    ana.data = object(json!({"email": "Ana_x%@Example.org"}));
    s.add_identity(&ana).await.unwrap();
    s.create_userpass(&credentials("c1", "Ana_x%@Example.org"))
        .await
        .unwrap();
    let mut other = user("u07");
    other.app_id = OTHER_APP.into();
    let mut other_identity = identity("local-userpass", "c1", "u07");
    other_identity.app_id = OTHER_APP.into();
    s.create_user_with_identity(&other, &other_identity)
        .await
        .unwrap();

    let ids = |users: Vec<UserRecord>| users.into_iter().map(|u| u.id).collect::<Vec<_>>();
    let all = UserSearch::default();
    let page1 = ids(s.search_users(APP, &all, None, 10).await.unwrap());
    let page2 = ids(s.search_users(APP, &all, Some("u09"), 10).await.unwrap());
    let page3 = ids(s.search_users(APP, &all, Some("u19"), 10).await.unwrap());
    assert_eq!(
        page1,
        (0..10).map(|n| format!("u{n:02}")).collect::<Vec<_>>()
    );
    assert_eq!(
        page2,
        (10..20).map(|n| format!("u{n:02}")).collect::<Vec<_>>()
    );
    assert_eq!(
        page3,
        (20..25).map(|n| format!("u{n:02}")).collect::<Vec<_>>()
    );

    let text = |t: &str| UserSearch {
        text: Some(t.into()),
        provider: None,
    };
    let find = |search: UserSearch| {
        let s = s.clone();
        async move { ids(s.search_users(APP, &search, None, 100).await.unwrap()) }
    };
    assert_eq!(find(text("u13")).await, ["u13"]);
    assert_eq!(find(text("i04")).await, ["u04"]);
    assert_eq!(find(text("c1")).await, ["u07"]);
    assert_eq!(find(text("ANA_X%@example")).await, ["u07"]);
    assert_eq!(find(text("example.org")).await, ["u07"]);
    assert!(
        find(text("anaxx")).await.is_empty(),
        "'_' matches only itself"
    );
    assert!(
        find(text("ana_x%%")).await.is_empty(),
        "'%' matches only itself"
    );
    assert!(find(text("u1")).await.is_empty(), "ids match exactly");
    let provider = |p: &str| UserSearch {
        text: None,
        provider: Some(p.into()),
    };
    assert_eq!(find(provider("local-userpass")).await, ["u07"]);
    assert_eq!(find(provider("anon-user")).await.len(), 25);
    assert!(find(provider("api-key")).await.is_empty());
    let both = UserSearch {
        text: Some("example".into()),
        provider: Some("anon-user".into()),
    };
    assert_eq!(find(both).await, ["u07"]);
    assert_eq!(find(text("  ")).await.len(), 25, "blank text matches all");
    assert!(
        s.search_users("nobody", &all, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// `list_user_sessions` (oldest first, this user's only); `app_counts` counts users,
/// live sessions and logins since a time by provider.
pub async fn user_sessions_and_app_counts(s: Arc<dyn Store>) {
    s.create_user_with_identity(&user("u1"), &identity("anon-user", "i1", "u1"))
        .await
        .unwrap();
    s.create_user_with_identity(&user("u2"), &identity("anon-user", "i2", "u2"))
        .await
        .unwrap();
    let at = |id: &str, user: &str, provider: Option<&str>, created: i64, expires: i64| {
        let mut r = session(id, user, provider.map(|p| (p, "x")));
        r.created_at = created;
        r.expires_at = expires;
        r
    };
    let sessions = [
        at("s1", "u1", Some("anon-user"), 100, 1000),
        at("s2", "u1", Some("local-userpass"), 200, 150),
        at("s3", "u1", None, 300, 1000),
        at("s4", "u2", Some("anon-user"), 400, 1000),
    ];
    for r in &sessions {
        s.create_session(r).await.unwrap();
    }
    assert_eq!(
        s.list_user_sessions(APP, "u1").await.unwrap(),
        sessions[..3]
    );
    assert!(
        s.list_user_sessions(OTHER_APP, "u1")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.app_counts(APP, 160, 150).await.unwrap(),
        AppCounts {
            users: 2,
            active_sessions: 3,
            logins_by_provider: vec![
                ("anon-user".into(), 1),
                ("local-userpass".into(), 1),
                ("unknown".into(), 1),
            ],
        }
    );
    assert_eq!(
        s.app_counts(OTHER_APP, 160, 0).await.unwrap(),
        AppCounts::default()
    );
}

/// `add_audit` / `list_audit`: newest first, paged by `seq`, per app.
pub async fn audit_log(s: Arc<dyn Store>) {
    let entry = |app: &str, n: i64| AuditRecord {
        app_id: app.into(),
        seq: 0,
        at: 100 + n,
        actor: "console 127.0.0.1".into(),
        action: format!("action_{n}"),
        target: format!("u{n}"),
        outcome: "ok".into(),
    };
    for n in 0..5 {
        s.add_audit(&entry(APP, n)).await.unwrap();
        s.add_audit(&entry(OTHER_APP, n)).await.unwrap();
    }
    let newest = s.list_audit(APP, None, 3).await.unwrap();
    let actions: Vec<_> = newest.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["action_4", "action_3", "action_2"]);
    assert!(newest.windows(2).all(|w| w[0].seq > w[1].seq));
    assert_eq!(
        AuditRecord {
            seq: 0,
            ..newest[0].clone()
        },
        entry(APP, 4)
    );
    let rest = s.list_audit(APP, Some(newest[2].seq), 10).await.unwrap();
    let actions: Vec<_> = rest.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["action_1", "action_0"]);
    assert_eq!(s.list_audit(OTHER_APP, None, 10).await.unwrap().len(), 5);
    assert!(s.list_audit("nobody", None, 10).await.unwrap().is_empty());
}
