//! The SQLite store's group commit of logins (`Store::start_session` on a file):
//! concurrent logins are committed together, each login still gets its own answer (a
//! conflicting one fails alone), and every login answered `Ok` is on disk.

use std::sync::Arc;

use latchkey_store::{IdentityRecord, SessionRecord, SqliteStore, Store, StoreError, UserRecord};

const APP: &str = "app";

fn user(id: &str) -> UserRecord {
    UserRecord {
        app_id: APP.into(),
        id: id.into(),
        created_at: 1_700_000_000,
        disabled: false,
        custom_data: None,
    }
}

fn identity(id: &str, user_id: &str) -> IdentityRecord {
    IdentityRecord {
        app_id: APP.into(),
        provider_type: "custom-token".into(),
        id: id.into(),
        user_id: user_id.into(),
        data: Default::default(),
        created_at: 1_700_000_000,
    }
}

fn session(id: &str, user_id: &str, identity_id: &str) -> SessionRecord {
    SessionRecord {
        app_id: APP.into(),
        id: id.into(),
        user_id: user_id.into(),
        device_id: format!("{:0>24}", user_id.len()),
        created_at: 1_700_000_000,
        expires_at: 1_800_000_000,
        provider_type: Some("custom-token".into()),
        identity_id: Some(identity_id.into()),
    }
}

async fn open(dir: &tempfile::TempDir) -> SqliteStore {
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// 200 concurrent logins at once: 150 first logins of distinct users, 40 logins of
/// known users, and 10 first logins that all claim one identity. Every distinct login
/// succeeds, exactly one of the ten claims wins and nine fail with `Conflict`, and a
/// new store on the same file finds every session answered `Ok`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_logins_commit_together_and_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir).await);
    for n in 0..40 {
        let (u, i) = (
            user(&format!("known{n}")),
            identity(&format!("k{n}"), &format!("known{n}")),
        );
        store.create_user_with_identity(&u, &i).await.unwrap();
    }

    let mut logins = tokio::task::JoinSet::new();
    for n in 0..200 {
        let store = Arc::clone(&store);
        logins.spawn(async move {
            let sid = format!("session{n}");
            let result = match n {
                0..150 => {
                    let uid = format!("new{n}");
                    let (u, i) = (user(&uid), identity(&format!("i{n}"), &uid));
                    let s = session(&sid, &uid, &i.id);
                    store.start_session(Some((&u, &i)), &s).await
                }
                150..190 => {
                    let uid = format!("known{}", n - 150);
                    let s = session(&sid, &uid, &format!("k{}", n - 150));
                    store.start_session(None, &s).await
                }
                _ => {
                    let uid = format!("claimant{n}");
                    let (u, i) = (user(&uid), identity("contested", &uid));
                    let s = session(&sid, &uid, "contested");
                    store.start_session(Some((&u, &i)), &s).await
                }
            };
            (n, result)
        });
    }
    let mut ok = Vec::new();
    let mut conflicts = 0;
    while let Some(done) = logins.join_next().await {
        match done.unwrap() {
            (n, Ok(())) => ok.push(n),
            (n, Err(StoreError::Conflict)) if n >= 190 => conflicts += 1,
            (n, Err(e)) => panic!("login {n} failed: {e}"),
        }
    }
    assert_eq!(conflicts, 9, "one claim of the contested identity wins");
    assert_eq!(ok.len(), 191);
    let winner = ok.iter().copied().find(|n| *n >= 190).unwrap();
    let owner = store
        .find_identity(APP, "custom-token", "contested")
        .await
        .unwrap()
        .unwrap()
        .user_id;
    assert_eq!(owner, format!("claimant{winner}"));

    // Everything answered `Ok` is committed: another store on the file reads it.
    let other = open(&dir).await;
    for n in ok {
        let found = other
            .get_session_with_user(APP, &format!("session{n}"))
            .await
            .unwrap();
        assert!(found.is_some(), "session{n} is on disk");
    }
    for n in 190..200 {
        let lost = format!("claimant{n}");
        if lost != owner {
            assert_eq!(
                other.get_user(APP, &lost).await.unwrap(),
                None,
                "rolled back"
            );
            assert_eq!(
                other
                    .get_session(APP, &format!("session{n}"))
                    .await
                    .unwrap(),
                None
            );
        }
    }
    other.close().await;
    store.close().await;
}

/// A login after the store is closed fails with an error; it never hangs.
#[tokio::test]
async fn a_login_on_a_closed_store_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    store.close().await;
    let (u, i) = (user("u"), identity("i", "u"));
    let result = store
        .start_session(Some((&u, &i)), &session("s", "u", "i"))
        .await;
    assert!(result.is_err());
}
