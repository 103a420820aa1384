//! Storage for `latchkey-server`: the [`Store`] trait, its records and errors, the SQLite
//! and PostgreSQL implementations with their migrations, and the conformance suite every
//! implementation runs.
//!
//! Open a store by URL with [`open`] (it picks the engine from the scheme and brings the
//! schema up to date), or [`open_with`] and [`StoreOptions`], or build one yourself
//! ([`SqliteStore::connect`], [`PgStore::connect`], then [`Store::migrate`]):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), latchkey_store::StoreError> {
//! use latchkey_store::{IdentityRecord, UserRecord};
//!
//! let store = latchkey_store::open("sqlite::memory:").await?;
//! let user = UserRecord {
//!     app_id: "myapp".into(),
//!     id: "5f0000000000000000000001".into(),
//!     created_at: 1_700_000_000,
//!     disabled: false,
//!     custom_data: None,
//! };
//! let identity = IdentityRecord {
//!     app_id: "myapp".into(),
//!     provider_type: "anon-user".into(),
//!     id: "device-1".into(),
//!     user_id: user.id.clone(),
//!     data: Default::default(),
//!     created_at: user.created_at,
//! };
//! store.create_user_with_identity(&user, &identity).await?;
//! assert_eq!(store.get_user("myapp", &user.id).await?, Some(user));
//! store.close().await;
//! # Ok(()) }
//! ```
//!
//! # Engines and URLs
//!
//! | URL | engine |
//! | --- | --- |
//! | `sqlite://PATH` (file and directory created when missing), `sqlite::memory:` | [`SqliteStore`]: one server process |
//! | `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=...]`, or `postgresql://` | [`PgStore`]: one server or several nodes on one database |
//!
//! [`StoreOptions`] set the pool size, the connect timeout, the statement timeout and,
//! for PostgreSQL, an environment variable holding the password when the URL has none.
//! A password shows in no `Debug`, log line or error of this crate.
//!
//! # Migrations
//!
//! Each engine has its migrations as `.sql` files (`migrations/<engine>/NNNN_name.sql`),
//! embedded with `sqlx::migrate!` and applied in order, each once; a version number means
//! the same schema change on both engines. A shipped migration is never edited: a change
//! is a new file. SQLite databases made before the migration files (with a
//! `schema_migrations` table) are adopted on the first [`Store::migrate`]. On PostgreSQL,
//! `migrate` holds an advisory lock, so several nodes starting at once migrate one at a
//! time.
//!
//! # Cascades
//!
//! The schema owns the cascades: foreign keys take a user's identities, sessions and API
//! keys with it, and triggers (migration 5) take an identity's sessions, a
//! `local-userpass` identity's credentials, credentials' tokens, an API key's identity
//! (and a server key's user), and a disabled key's sessions. The one delete the schema
//! cannot express is written in [`Store::delete_userpass`]: it also removes the tokens of
//! an email that has no credentials.
//!
//! # Throttling
//!
//! Failed-login and message limits live in the store ([`Store::throttle_hit`]), so that
//! several nodes share them: each hit is one atomic upsert that counts and decides at
//! once, and the server reserves an attempt before checking the password.
//!
//! # Adding an engine
//!
//! Implement [`Store`] (the shared SQL of `sql.rs` serves any engine that speaks it),
//! put its migrations under `migrations/<engine>/`, run the suite with
//! `store_conformance_tests!` (feature `testing`) from its tests, and give [`open`] its
//! URL scheme.
#![deny(missing_docs)]

use std::sync::Arc;

mod error;
mod options;
mod postgres;
mod records;
mod sql;
mod sqlite;
mod sqlite_reads;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod throttle;

pub use error::{QueryErrors, StoreError, query_errors};
pub use options::StoreOptions;
pub use postgres::PgStore;
pub use records::{
    ApiKeyKind, ApiKeyRecord, AppCounts, AuditRecord, CredentialStatus, IdentityRecord,
    OAuthStateRecord, OutboxRecord, PoolStatus, SessionRecord, TokenPurpose, UserRecord,
    UserSearch, UserpassEmail, UserpassRecord, UserpassTokenRecord,
};
pub use sqlite::SqliteStore;
pub use store::Store;
pub use throttle::{ThrottleDecision, ThrottleHit, ThrottleRule};

/// The database URLs [`open`] understands, for messages.
pub const SUPPORTED_URLS: &str = "\"sqlite://PATH\", \"sqlite::memory:\" and \
     \"postgres://USER@HOST:PORT/DATABASE\" (or \"postgresql://\")";

/// A storage engine, picked from a URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    fn of(url: &str) -> Result<Engine, StoreError> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme {
            "sqlite" => Ok(Engine::Sqlite),
            "postgres" | "postgresql" => Ok(Engine::Postgres),
            _ => Err(StoreError::UnsupportedUrl {
                scheme: scheme.to_owned(),
            }),
        }
    }
}

/// Check that `url` names a supported engine, without opening anything: the scheme, and
/// for PostgreSQL that the URL parses and names its database. [`StoreError::UnsupportedUrl`]
/// or [`StoreError::Config`] otherwise (neither shows a password).
///
/// ```
/// assert!(latchkey_store::check_url("sqlite://data/latchkey.db").is_ok());
/// assert!(latchkey_store::check_url("postgres://latchkey@db:5432/latchkey").is_ok());
/// assert!(latchkey_store::check_url("postgres://latchkey@db:5432").is_err());
/// assert!(latchkey_store::check_url("mysql://db/latchkey").is_err());
/// ```
pub fn check_url(url: &str) -> Result<(), StoreError> {
    match Engine::of(url)? {
        Engine::Sqlite => Ok(()),
        Engine::Postgres => postgres::check_url(url),
    }
}

/// Open the store that `url` names and bring its schema up to date: `sqlite://PATH` (the
/// file and its directory are created when missing), `sqlite::memory:`, or
/// `postgres://USER@HOST:PORT/DATABASE`. Any other scheme is
/// [`StoreError::UnsupportedUrl`]. The same as [`open_with`] and the default
/// [`StoreOptions`].
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with(url, &StoreOptions::default()).await
}

/// [`open`] with [`StoreOptions`] (pool size, timeouts, the PostgreSQL password's
/// environment variable).
pub async fn open_with(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> = match Engine::of(url)? {
        Engine::Sqlite => Arc::new(SqliteStore::connect_with(url, options).await?),
        Engine::Postgres => Arc::new(PgStore::connect_with(url, options).await?),
    };
    store.migrate().await?;
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_by_scheme() {
        assert_eq!(Engine::of("sqlite::memory:").unwrap(), Engine::Sqlite);
        assert_eq!(Engine::of("sqlite:///tmp/x.db").unwrap(), Engine::Sqlite);
        assert_eq!(Engine::of("postgres://u@db/x").unwrap(), Engine::Postgres);
        assert_eq!(Engine::of("postgresql://u@db/x").unwrap(), Engine::Postgres);
        for (url, scheme) in [
            ("mysql://u:hunter2@db/x", "mysql"),
            ("latchkey.db", ""),
            ("SQLITE::memory:", "SQLITE"),
        ] {
            let err = Engine::of(url).unwrap_err();
            assert!(
                matches!(&err, StoreError::UnsupportedUrl { scheme: s } if s == scheme),
                "{err:?}"
            );
            let shown = err.to_string();
            assert!(shown.contains("sqlite://PATH"), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }

    #[tokio::test]
    async fn open_migrates_and_rejects_unknown_schemes() {
        let store = open("sqlite::memory:").await.unwrap();
        assert!(store.list_users("a").await.unwrap().is_empty());
        assert!(matches!(
            open("mysql://db").await,
            Err(StoreError::UnsupportedUrl { .. })
        ));
    }
}
