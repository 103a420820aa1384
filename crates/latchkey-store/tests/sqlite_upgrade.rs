//! SQLite databases made before the migration files (by the hand-rolled migrator with its
//! `schema_migrations` table) upgrade with their data intact, and migrating is idempotent.

use latchkey_store::{
    ApiKeyKind, CredentialStatus, SessionRecord, SqliteStore, Store, TokenPurpose,
};
use sqlx::SqlitePool;
use sqlx::migrate::Migrator;

/// The migrator the store embeds (the same files, so the same checksums).
static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// The migrations as the earlier release shipped them (the first four files).
const LEGACY: [&str; 4] = [
    include_str!("../migrations/sqlite/0001_initial.sql"),
    include_str!("../migrations/sqlite/0002_api_keys.sql"),
    include_str!("../migrations/sqlite/0003_userpass_flows.sql"),
    include_str!("../migrations/sqlite/0004_session_identity.sql"),
];

/// A database file in a temporary directory.
struct Db {
    _dir: tempfile::TempDir,
    url: String,
}

fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("latchkey.db").display());
    Db { _dir: dir, url }
}

async fn pool(url: &str) -> SqlitePool {
    let options = url
        .parse::<sqlx::sqlite::SqliteConnectOptions>()
        .unwrap()
        .create_if_missing(true);
    SqlitePool::connect_with(options).await.unwrap()
}

/// What the earlier release's `migrate` left: migrations 1..=`version`, each split on
/// `;` and run in its own transaction, recorded in `schema_migrations`.
async fn legacy_migrate(pool: &SqlitePool, version: usize) {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            applied_at INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))
        )",
    )
    .execute(pool)
    .await
    .unwrap();
    for (i, sql) in LEGACY[..version].iter().enumerate() {
        let mut tx = pool.begin().await.unwrap();
        for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            sqlx::query(statement).execute(&mut *tx).await.unwrap();
        }
        sqlx::query("INSERT INTO schema_migrations (version) VALUES (?)")
            .bind(i as i64 + 1)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
}

/// Rows an earlier release wrote: a user with an anonymous and an email/password
/// identity, credentials with a reset token, an API key, a message and a session.
async fn legacy_rows(pool: &SqlitePool) {
    for statement in [
        "INSERT INTO users (app_id, id, created_at, disabled, custom_data)
         VALUES ('a', 'u1', 1, 0, '{\"plan\":\"pro\"}')",
        "INSERT INTO identities (app_id, provider_type, id, user_id, data, created_at)
         VALUES ('a', 'anon-user', 'i1', 'u1', '{}', 1)",
        "INSERT INTO identities (app_id, provider_type, id, user_id, data, created_at)
         VALUES ('a', 'local-userpass', 'c1', 'u1', '{\"email\":\"x@y.z\"}', 2)",
        "INSERT INTO userpass_credentials
         (app_id, id, email, password_hash, status, created_at, updated_at)
         VALUES ('a', 'c1', 'x@y.z', '$argon2id$h', 'confirmed', 1, 1)",
        "INSERT INTO userpass_tokens
         (app_id, token_id_hash, token_hash, purpose, email, created_at, expires_at)
         VALUES ('a', 'tid', 'tok', 'reset', 'x@y.z', 1, 100)",
        "INSERT INTO api_keys (app_id, id, user_id, kind, name, hash, disabled, created_at)
         VALUES ('a', 'k1', 'u1', 'user', 'laptop', 'abc', 0, 1)",
        "INSERT INTO identities (app_id, provider_type, id, user_id, data, created_at)
         VALUES ('a', 'api-key', 'k1', 'u1', '{}', 3)",
        "INSERT INTO outbox (app_id, recipient, kind, subject, body, token, token_id, created_at)
         VALUES ('a', 'x@y.z', 'reset', 'Reset', 'body', 't', 'ti', 1)",
        "INSERT INTO sessions (app_id, id, user_id, device_id, created_at, expires_at)
         VALUES ('a', 'old', 'u1', 'd', 1, 2)",
    ] {
        sqlx::query(statement).execute(pool).await.unwrap();
    }
}

/// The schema (tables, indexes, triggers) and the migration records, to compare.
async fn snapshot(pool: &SqlitePool) -> (Vec<(String, String)>, Vec<(i64, Vec<u8>, String)>) {
    let schema = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master
         WHERE sql IS NOT NULL AND name <> 'schema_migrations' ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let applied = sqlx::query_as(
        "SELECT version, checksum, installed_on FROM _sqlx_migrations ORDER BY version",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    (schema, applied)
}

/// Open `url` with the store, migrate, and check the earlier release's rows.
async fn upgrade_and_check(url: &str) -> SqliteStore {
    let s = SqliteStore::connect(url).await.unwrap();
    s.migrate().await.unwrap();
    let user = s.get_user("a", "u1").await.unwrap().unwrap();
    assert_eq!(user.custom_data.unwrap()["plan"], "pro");
    assert_eq!(s.list_identities("a", "u1").await.unwrap().len(), 3);
    let cred = s.find_userpass("a", "x@y.z").await.unwrap().unwrap();
    assert_eq!(
        (cred.status, cred.password_hash.expose()),
        (CredentialStatus::Confirmed, "$argon2id$h")
    );
    let key = s.get_api_key("a", "k1").await.unwrap().unwrap();
    assert_eq!((key.kind, key.hash.expose()), (ApiKeyKind::User, "abc"));
    let outbox = s.list_outbox("a").await.unwrap();
    assert_eq!(
        (outbox.len(), outbox[0].token.expose()),
        (1, "t"),
        "{outbox:?}"
    );
    s
}

/// `_sqlx_migrations` holds every migration with the migrator's own checksum.
async fn assert_all_recorded(url: &str) {
    let p = pool(url).await;
    let recorded: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&p)
            .await
            .unwrap();
    let expected: Vec<(i64, Vec<u8>)> = MIGRATOR
        .iter()
        .map(|m| (m.version, m.checksum.to_vec()))
        .collect();
    assert_eq!(recorded, expected);
    p.close().await;
}

#[tokio::test]
async fn version_3_databases_gain_session_identities() {
    let db = db();
    let p = pool(&db.url).await;
    // A database as version 3 left it, with a session.
    legacy_migrate(&p, 3).await;
    legacy_rows(&p).await;
    p.close().await;

    let s = upgrade_and_check(&db.url).await;
    let old = s.get_session("a", "old").await.unwrap().unwrap();
    assert_eq!((old.provider_type, old.identity_id), (None, None));
    // Version 4 applied: sessions record their identity now.
    let new = SessionRecord {
        id: "new".into(),
        provider_type: Some("api-key".into()),
        identity_id: Some("k1".into()),
        ..old
    };
    s.create_session(&new).await.unwrap();
    assert_eq!(s.get_session("a", "new").await.unwrap(), Some(new));
    s.close().await;
    assert_all_recorded(&db.url).await;
}

#[tokio::test]
async fn version_4_databases_upgrade_with_their_data_and_cascades() {
    let db = db();
    let p = pool(&db.url).await;
    legacy_migrate(&p, 4).await;
    legacy_rows(&p).await;
    sqlx::query(
        "INSERT INTO sessions
         (app_id, id, user_id, device_id, created_at, expires_at, provider_type, identity_id)
         VALUES ('a', 'by-key', 'u1', 'd', 1, 2, 'api-key', 'k1')",
    )
    .execute(&p)
    .await
    .unwrap();
    p.close().await;

    let s = upgrade_and_check(&db.url).await;
    let by_key = s.get_session("a", "by-key").await.unwrap().unwrap();
    assert_eq!(by_key.identity_id.as_deref(), Some("k1"));
    // Version 5 applied: the schema cascades.
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
    assert_all_recorded(&db.url).await;

    // The earlier release's table is left as it was.
    let p = pool(&db.url).await;
    let legacy: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&p)
        .await
        .unwrap();
    assert_eq!(legacy, [1, 2, 3, 4]);
}

#[tokio::test]
async fn upgraded_and_new_databases_have_one_schema_and_migrating_twice_is_a_no_op() {
    let (old, new) = (db(), db());
    let p = pool(&old.url).await;
    legacy_migrate(&p, 4).await;
    p.close().await;

    let mut snapshots = Vec::new();
    for url in [&old.url, &new.url] {
        let s = SqliteStore::connect(url).await.unwrap();
        s.migrate().await.unwrap();
        let p = pool(url).await;
        let first = snapshot(&p).await;
        s.migrate().await.unwrap();
        s.migrate().await.unwrap();
        assert_eq!(snapshot(&p).await, first, "migrating again changes nothing");
        s.close().await;
        p.close().await;
        snapshots.push(first.0);
    }
    assert_eq!(snapshots[0], snapshots[1]);

    // A database the store made has no `schema_migrations`: nothing to adopt.
    let p = pool(&new.url).await;
    let legacy: Option<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE name = 'schema_migrations'")
            .fetch_optional(&p)
            .await
            .unwrap();
    assert_eq!(legacy, None);
}

/// A shipped migration is never edited (databases record its checksum and refuse a
/// changed file): these are the shipped files. A change to the schema is a new file.
#[test]
fn shipped_migrations_are_unchanged() {
    let shipped = [
        (1, "initial", "f582e061ddced376"),
        (2, "api keys", "fdc4e9bdee085f3b"),
        (3, "userpass flows", "525040c2476a8d9e"),
        (4, "session identity", "35eb8bb03f20a6ab"),
        (5, "cascades", "6b4f935d071e1377"),
        (6, "throttle", "7ab628b117d6b4f8"),
        (7, "one token pair", "747b8f481bc98dea"),
        (8, "oauth states", "7edaaa78d66db63a"),
        (9, "audit log", "c0eac7c055010493"),
        (10, "identities in order", "85a7d8d65de71a92"),
    ];
    latchkey_store::testing::assert_shipped_migrations(&MIGRATOR, &shipped);
}
