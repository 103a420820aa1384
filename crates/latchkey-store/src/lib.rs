//! Storage for `latchkey-server`: the [`Store`] trait, its records and errors, the SQLite
//! implementation with its migrations, and the conformance suite every implementation
//! runs.
//!
//! Open a store by URL with [`open`] (it picks the engine from the scheme and brings the
//! schema up to date), or build one yourself ([`SqliteStore::connect`], then
//! [`Store::migrate`]):
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
//! # Migrations
//!
//! Each engine has its migrations as `.sql` files (`migrations/sqlite/NNNN_name.sql`),
//! embedded with `sqlx::migrate!` and applied in order, each once. A shipped migration is
//! never edited: a change is a new file. SQLite databases made before the migration files
//! (with a `schema_migrations` table) are adopted on the first [`Store::migrate`].
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
//! # Adding an engine
//!
//! Implement [`Store`], put its migrations under `migrations/<engine>/`, run the suite
//! with `store_conformance_tests!` (feature `testing`) from its tests, and give [`open`]
//! its URL scheme.
#![deny(missing_docs)]

use std::sync::Arc;

mod error;
mod records;
mod sqlite;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::StoreError;
pub use records::{
    ApiKeyKind, ApiKeyRecord, CredentialStatus, IdentityRecord, OutboxRecord, SessionRecord,
    TokenPurpose, UserRecord, UserpassRecord, UserpassTokenRecord,
};
pub use sqlite::SqliteStore;
pub use store::Store;

/// The database URLs [`open`] understands, for messages.
pub const SUPPORTED_URLS: &str = "\"sqlite://PATH\" and \"sqlite::memory:\"";

/// A storage engine, picked from a URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Sqlite,
}

impl Engine {
    fn of(url: &str) -> Result<Engine, StoreError> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme {
            "sqlite" => Ok(Engine::Sqlite),
            _ => Err(StoreError::UnsupportedUrl {
                scheme: scheme.to_owned(),
            }),
        }
    }
}

/// Check that `url` names a supported engine, without opening anything.
/// [`StoreError::UnsupportedUrl`] otherwise.
///
/// ```
/// assert!(latchkey_store::check_url("sqlite://data/latchkey.db").is_ok());
/// assert!(latchkey_store::check_url("postgres://db/latchkey").is_err());
/// ```
pub fn check_url(url: &str) -> Result<(), StoreError> {
    Engine::of(url).map(|_| ())
}

/// Open the store that `url` names and bring its schema up to date: `sqlite://PATH` (the
/// file and its directory are created when missing) or `sqlite::memory:`. Any other
/// scheme is [`StoreError::UnsupportedUrl`].
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    let store = match Engine::of(url)? {
        Engine::Sqlite => SqliteStore::connect(url).await?,
    };
    store.migrate().await?;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_by_scheme() {
        assert_eq!(Engine::of("sqlite::memory:").unwrap(), Engine::Sqlite);
        assert_eq!(Engine::of("sqlite:///tmp/x.db").unwrap(), Engine::Sqlite);
        for (url, scheme) in [
            ("postgres://u:hunter2@db/x", "postgres"),
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
