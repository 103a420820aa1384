//! PostgreSQL beyond the conformance suite: migrations (several nodes at once, upgrades,
//! idempotence, the shipped files), several stores ("nodes") on one database, and
//! `StoreOptions` reaching the server. Each test takes a new database on the server that
//! LATCHKEY_TEST_POSTGRES_URL names (skipped without it on a developer machine, failing
//! in CI), except `shipped_migrations_are_unchanged`, which needs no server.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey_store::testing::{POSTGRES_URL_VAR, PostgresTestDb};
use latchkey_store::{
    PgStore, SessionRecord, Store, StoreOptions, ThrottleDecision, ThrottleRule, TokenPurpose,
    UserRecord,
};
use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection};

/// The migrator the store embeds (the same files, so the same checksums).
static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

async fn admin(db: &PostgresTestDb) -> PgConnection {
    PgConnection::connect(db.url()).await.unwrap()
}

/// The schema as the catalog describes it (columns, indexes, constraints, triggers,
/// types) and the migration records, to compare.
async fn snapshot(db: &PostgresTestDb) -> (Vec<String>, Vec<(i64, Vec<u8>, bool)>) {
    let mut conn = admin(db).await;
    let schema: Vec<String> = sqlx::query_scalar(
        "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' '
                || is_nullable || ' ' || coalesce(column_default, '')
           FROM information_schema.columns WHERE table_schema = 'public'
         UNION ALL
         SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
         UNION ALL
         SELECT 'constraint ' || conrelid::regclass || ' ' || pg_get_constraintdef(oid)
           FROM pg_constraint WHERE connamespace = 'public'::regnamespace
         UNION ALL
         SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
         UNION ALL
         SELECT 'type ' || typname || ' ' || array_to_string(enum_range(NULL::credential_status)::text[], ',')
           FROM pg_type WHERE typname = 'credential_status'
         ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let applied =
        sqlx::query_as("SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    (schema, applied)
}

fn all_recorded() -> Vec<(i64, Vec<u8>, bool)> {
    MIGRATOR
        .iter()
        .map(|m| (m.version, m.checksum.to_vec(), true))
        .collect()
}

/// Six nodes start at once on a new database and each runs `migrate`: the advisory lock
/// makes them take turns, every one succeeds, and each migration is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrations_from_several_nodes() {
    let Some(db) = PostgresTestDb::create().await else {
        return;
    };
    let mut nodes = Vec::new();
    for _ in 0..6 {
        nodes.push(Arc::new(PgStore::connect(db.url()).await.unwrap()));
    }
    let start = Arc::new(tokio::sync::Barrier::new(nodes.len()));
    let runs: Vec<_> = nodes
        .iter()
        .map(|node| {
            let (node, start) = (node.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                node.migrate().await
            })
        })
        .collect();
    for run in runs {
        run.await.unwrap().expect("every node migrates");
    }
    let (schema, applied) = snapshot(&db).await;
    assert_eq!(applied, all_recorded());
    assert!(
        schema.iter().any(|s| s.starts_with("trigger ")),
        "{schema:?}"
    );
    // Every node works on the one schema.
    for (i, node) in nodes.iter().enumerate() {
        assert!(
            node.list_users(&format!("app{i}"))
                .await
                .unwrap()
                .is_empty()
        );
        node.close().await;
    }
}

/// `migrate` on an up-to-date database changes nothing (schema and records), and a
/// database migrated by the store records every shipped migration with its checksum.
#[tokio::test]
async fn migrating_twice_changes_nothing() {
    let Some(db) = PostgresTestDb::create().await else {
        return;
    };
    let store = PgStore::connect(db.url()).await.unwrap();
    store.migrate().await.unwrap();
    let first = snapshot(&db).await;
    assert_eq!(first.1, all_recorded());
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(snapshot(&db).await, first);
    store.close().await;
}

/// A database at version 5 (before throttling and the one-pair rule) upgrades with its
/// rows, cascades and all, and gains versions 6 and 7.
#[tokio::test]
async fn version_5_databases_upgrade_with_their_data() {
    let Some(db) = PostgresTestDb::create().await else {
        return;
    };
    let up_to_5 = Migrator {
        migrations: Cow::Owned(MIGRATOR.migrations[..5].to_vec()),
        ..Migrator::DEFAULT
    };
    let mut conn = admin(&db).await;
    up_to_5.run(&mut conn).await.unwrap();
    for statement in [
        "INSERT INTO users (app_id, id, created_at, disabled, custom_data)
         VALUES ('a', 'u1', 1, FALSE, '{\"plan\": \"pro\"}')",
        "INSERT INTO identities (app_id, provider_type, id, user_id, data, created_at)
         VALUES ('a', 'local-userpass', 'c1', 'u1', '{\"email\": \"x@y.z\"}', 2)",
        "INSERT INTO userpass_credentials
         (app_id, id, email, password_hash, status, created_at, updated_at)
         VALUES ('a', 'c1', 'x@y.z', '$argon2id$h', 'confirmed', 1, 1)",
        "INSERT INTO userpass_tokens
         (app_id, token_id_hash, token_hash, purpose, email, created_at, expires_at)
         VALUES ('a', 'tid', 'tok', 'reset', 'x@y.z', 1, 100)",
        "INSERT INTO api_keys (app_id, id, user_id, kind, name, hash, disabled, created_at)
         VALUES ('a', 'k1', 'u1', 'user', 'laptop', 'abc', FALSE, 1)",
        "INSERT INTO identities (app_id, provider_type, id, user_id, data, created_at)
         VALUES ('a', 'api-key', 'k1', 'u1', '{}', 3)",
        "INSERT INTO sessions
         (app_id, id, user_id, device_id, created_at, expires_at, provider_type, identity_id)
         VALUES ('a', 'by-key', 'u1', 'd', 1, 2, 'api-key', 'k1')",
    ] {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();

    let s = PgStore::connect(db.url()).await.unwrap();
    s.migrate().await.unwrap();
    assert_eq!(snapshot(&db).await.1, all_recorded());
    let user = s.get_user("a", "u1").await.unwrap().unwrap();
    assert_eq!(user.custom_data.unwrap()["plan"], "pro");
    let cred = s.find_userpass("a", "x@y.z").await.unwrap().unwrap();
    assert_eq!(cred.password_hash.expose(), "$argon2id$h");
    // Version 6: throttling.
    let rule = ThrottleRule::window(1, 60);
    assert!(s.throttle_hit("b", rule, 0).await.unwrap().is_allowed());
    assert!(!s.throttle_hit("b", rule, 0).await.unwrap().is_allowed());
    // Version 5's cascades on the old rows.
    assert!(s.delete_api_key("a", "k1").await.unwrap());
    assert_eq!(s.get_session("a", "by-key").await.unwrap(), None);
    assert!(s.delete_user("a", "u1").await.unwrap());
    assert_eq!(s.find_userpass("a", "x@y.z").await.unwrap(), None);
    let token = s
        .take_userpass_token("a", TokenPurpose::Reset, "tid", "tok", 1)
        .await
        .unwrap();
    assert_eq!(token, None);
    s.close().await;
}

/// Two stores on one database are two server nodes: what one deletes, the other no
/// longer finds, and 60 failed logins spread over both let exactly the limit through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_sessions_and_throttle_counts() {
    let Some(db) = PostgresTestDb::create().await else {
        return;
    };
    let a: Arc<dyn Store> = latchkey_store::open(db.url()).await.unwrap();
    let b: Arc<dyn Store> = latchkey_store::open(db.url()).await.unwrap();
    let user = UserRecord {
        app_id: "app".into(),
        id: "u1".into(),
        created_at: 1,
        disabled: false,
        custom_data: None,
    };
    let identity = latchkey_store::IdentityRecord {
        app_id: "app".into(),
        provider_type: "anon-user".into(),
        id: "i1".into(),
        user_id: "u1".into(),
        data: Default::default(),
        created_at: 1,
    };
    a.create_user_with_identity(&user, &identity).await.unwrap();
    let session = SessionRecord {
        app_id: "app".into(),
        id: "s1".into(),
        user_id: "u1".into(),
        device_id: "d".into(),
        created_at: 1,
        expires_at: 2,
        provider_type: None,
        identity_id: None,
    };
    a.create_session(&session).await.unwrap();
    assert_eq!(b.get_session("app", "s1").await.unwrap(), Some(session));
    assert!(a.delete_session("app", "s1").await.unwrap());
    assert_eq!(b.get_session("app", "s1").await.unwrap(), None);

    let rule = ThrottleRule::window(5, 900);
    let start = Arc::new(tokio::sync::Barrier::new(60));
    let hits: Vec<_> = (0..60)
        .map(|i| {
            let node = if i % 2 == 0 { a.clone() } else { b.clone() };
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                node.throttle_hit("app/victim@example.com", rule, 1000)
                    .await
            })
        })
        .collect();
    let mut allowed = 0;
    for hit in hits {
        match hit.await.unwrap().unwrap() {
            ThrottleDecision::Allowed(_) => allowed += 1,
            ThrottleDecision::Limited { retry_after_secs } => assert_eq!(retry_after_secs, 900),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(allowed, 5);
    a.close().await;
    b.close().await;
}

/// `StoreOptions` reach the server: statements are cancelled after `statement_timeout`,
/// and the pool never opens more than `max_connections`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statement_timeout_and_pool_size_apply() {
    let Some(db) = PostgresTestDb::create().await else {
        return;
    };
    let options = StoreOptions::default()
        .max_connections(3)
        .statement_timeout(Duration::from_millis(300));
    let store = Arc::new(PgStore::connect_with(db.url(), &options).await.unwrap());
    store.migrate().await.unwrap();

    // Another session holds the users table: the store's statements wait on its lock
    // until the statement timeout cancels them.
    let mut holder = admin(&db).await;
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    let started = Instant::now();
    let waiting: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.get_user("a", &format!("u{i}")).await })
        })
        .collect();
    // While they wait, count the store's connections (named `latchkey`).
    tokio::time::sleep(Duration::from_millis(150)).await;
    let connections: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'latchkey'",
    )
    .fetch_one(&mut admin(&db).await)
    .await
    .unwrap();
    assert!((1..=3).contains(&connections), "{connections} connections");
    for wait in waiting {
        let err = wait.await.unwrap().unwrap_err();
        // A cancelled statement means "the database is too busy now": 503 upstream.
        assert!(err.is_unavailable(), "{err:?}");
        assert!(err.to_string().contains("statement timeout"), "{err}");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    assert_eq!(store.get_user("a", "u1").await.unwrap(), None);
    store.close().await;
}

/// A server that accepts the connection and never answers: connecting gives up after
/// `connect_timeout`, and the error names the server, not the password.
#[tokio::test]
async fn connecting_gives_up_after_the_connect_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let options = StoreOptions::default().connect_timeout(Duration::from_millis(300));
    let url = format!("postgres://latchkey:hunter2@127.0.0.1:{port}/latchkey?sslmode=disable");
    let started = Instant::now();
    let err = latchkey_store::open_with(&url, &options).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let shown = format!("{err} {err:?}");
    assert!(
        shown.contains(&format!("postgres://latchkey@127.0.0.1:{port}/latchkey")),
        "{shown}"
    );
    assert!(!shown.contains("hunter2"), "{shown}");
    silent.abort();
}

/// A shipped migration is never edited (databases record its checksum and refuse a
/// changed file): these are the shipped files, the same versions as SQLite's.
#[test]
fn shipped_migrations_are_unchanged() {
    let shipped = [
        (1, "initial", "526998240afe7c16"),
        (2, "api keys", "607e99e7cc78c315"),
        (3, "userpass flows", "aeb81802a078de15"),
        (4, "session identity", "35eb8bb03f20a6ab"),
        (5, "cascades", "b0f2dfe71bff6df3"),
        (6, "throttle", "cc608050b00d45e5"),
        (7, "one token pair", "e1e755ffcd58bc1d"),
        (8, "oauth states", "29198170d090eb27"),
        (9, "audit log", "09edbb77aa1800dc"),
        (10, "identities in order", "85a7d8d65de71a92"),
    ];
    latchkey_store::testing::assert_shipped_migrations(&MIGRATOR, &shipped);
}

/// Holds the password for `with_passwords_in_the_environment`.
const GOOD_VAR: &str = "LATCHKEY_TEST_PG_PASSWORD_GOOD";
/// Holds a wrong password for it.
const BAD_VAR: &str = "LATCHKEY_TEST_PG_PASSWORD_BAD";

/// The password: from the URL, or from the environment variable that
/// `StoreOptions::password_env` names; never in a `Debug`, an error or a message.
///
/// The variables are set for a child process that runs `with_passwords_in_the_environment`
/// (this process cannot set them safely while other threads run). Password authentication
/// is checked for real on a server that asks members of the role `latchkey_password_users`
/// for a password (`.ci/postgres.sh` sets that up); elsewhere only the rest is checked.
#[test]
fn passwords_come_from_the_url_or_the_environment() {
    let password = format!("pw-{}-{:?}", std::process::id(), Instant::now());
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "with_passwords_in_the_environment"])
        .args(["--nocapture", "--test-threads=1"])
        .env(GOOD_VAR, &password)
        .env(BAD_VAR, "not-the-password-0451")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(out.status.success(), "the child test failed");
    assert!(stdout.contains("1 passed"), "{stdout}");
}

#[tokio::test]
#[ignore = "run by passwords_come_from_the_url_or_the_environment, which sets its variables"]
async fn with_passwords_in_the_environment() {
    let password = &std::env::var(GOOD_VAR).expect("run by the test that sets it");
    let wrong = &std::env::var(BAD_VAR).expect("run by the test that sets it");
    let Some(db) = PostgresTestDb::create().await else {
        return;
    };
    let role = format!("latchkey_pw_{}", std::process::id());
    // On the server's own database: the test database goes before the role.
    let admin_url = std::env::var(POSTGRES_URL_VAR).unwrap();
    let mut admin = PgConnection::connect(&admin_url).await.unwrap();
    for statement in [
        format!("DROP ROLE IF EXISTS {role}"),
        format!("CREATE ROLE {role} LOGIN PASSWORD '{password}'"),
        format!("ALTER DATABASE \"{}\" OWNER TO {role}", db.name()),
    ] {
        sqlx::query(&statement).execute(&mut admin).await.unwrap();
    }
    let asks_passwords = sqlx::query(&format!("GRANT latchkey_password_users TO {role}"))
        .execute(&mut admin)
        .await
        .is_ok();

    let mut url = url::Url::parse(db.url()).unwrap();
    url.set_username(&role).unwrap();
    url.set_password(None).unwrap();
    let bare = url.to_string();

    // From the environment, the URL holding none.
    let from_env = StoreOptions::default().password_env(GOOD_VAR);
    let store = PgStore::connect_with(&bare, &from_env).await.unwrap();
    store.migrate().await.unwrap();
    assert!(store.list_users("a").await.unwrap().is_empty());
    let shown = format!("{store:?} {}", store.target());
    assert!(!shown.contains(password), "{shown}");
    assert!(shown.contains(&role), "{shown}");
    store.close().await;

    // In the URL: the store's Debug does not show it.
    url.set_password(Some(password)).unwrap();
    let store = PgStore::connect(url.as_str()).await.unwrap();
    assert!(store.list_users("a").await.unwrap().is_empty());
    let shown = format!("{store:?}");
    assert!(!shown.contains(password), "{shown}");
    store.close().await;

    // A wrong password is refused, and the error shows neither password.
    if asks_passwords {
        let from_bad = StoreOptions::default().password_env(BAD_VAR);
        let err = PgStore::connect_with(&bare, &from_bad).await.unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("password authentication failed"), "{shown}");
        assert!(
            !shown.contains(wrong) && !shown.contains(password),
            "{shown}"
        );
        let err = latchkey_store::open(&bare.replace('@', &format!(":{wrong}@")))
            .await
            .unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(wrong), "{shown}");
    } else {
        eprintln!(
            "NOTE: this PostgreSQL server does not ask role latchkey_password_users for a \
             password: wrong passwords were not checked (.ci/postgres.sh's server does)"
        );
    }

    drop(db);
    sqlx::query(&format!("DROP ROLE IF EXISTS {role}"))
        .execute(&mut admin)
        .await
        .unwrap();
}
