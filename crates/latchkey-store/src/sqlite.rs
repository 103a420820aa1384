//! [`Store`] on SQLite through sqlx (runtime queries; rows mapped by `FromRow`).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::types::Json;
use sqlx::{Sqlite, SqlitePool};

use crate::{
    ApiKeyKind, ApiKeyRecord, CredentialStatus, IdentityRecord, OutboxRecord, SessionRecord, Store,
    StoreError, TokenPurpose, UserRecord, UserpassRecord, UserpassTokenRecord,
};

/// The SQLite migrations (`migrations/sqlite/*.sql`), embedded at compile time.
static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// SQLite storage.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// Insert one user row (in a transaction or on the pool).
async fn insert_user<'e, E>(executor: E, user: &UserRecord) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    sqlx::query(
        "INSERT INTO users (app_id, id, created_at, disabled, custom_data) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&user.app_id)
    .bind(&user.id)
    .bind(user.created_at)
    .bind(user.disabled)
    .bind(user.custom_data.as_ref().map(Json))
    .execute(executor)
    .await?;
    Ok(())
}

/// Insert one identity row (in a transaction or on the pool).
async fn insert_identity<'e, E>(executor: E, identity: &IdentityRecord) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    sqlx::query(
        "INSERT INTO identities (app_id, provider_type, id, user_id, data, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&identity.app_id)
    .bind(&identity.provider_type)
    .bind(&identity.id)
    .bind(&identity.user_id)
    .bind(Json(&identity.data))
    .bind(identity.created_at)
    .execute(executor)
    .await?;
    Ok(())
}

impl SqliteStore {
    /// Open (and create when missing) `sqlite://PATH`, or a private in-memory database
    /// for `sqlite::memory:`. Does not migrate: call [`Store::migrate`].
    pub async fn connect(url: &str) -> Result<SqliteStore, StoreError> {
        let memory =
            url == "sqlite::memory:" || url.contains(":memory:") || url.contains("mode=memory");
        if !memory {
            create_parent_dir(url)?;
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let (options, pool) = if memory {
            // Each connection to an in-memory database sees its own empty database:
            // keep exactly one connection, forever.
            (
                options,
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None),
            )
        } else {
            (
                options
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal),
                SqlitePoolOptions::new().max_connections(8),
            )
        };
        let pool = pool.connect_with(options).await?;
        Ok(SqliteStore { pool })
    }

    /// Adopt a database made before the migration files: its applied versions are in a
    /// `schema_migrations(version, applied_at)` table and it has no `_sqlx_migrations`.
    /// Record those versions in `_sqlx_migrations` with the migrator's own checksums, in
    /// one transaction, so that they are not run again and later migrations apply.
    /// `schema_migrations` is left as it was, so the earlier release still opens the
    /// database.
    async fn adopt_legacy_migrations(&self) -> Result<(), StoreError> {
        // IMMEDIATE: two servers starting on one file adopt once, one after the other.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master
             WHERE type = 'table' AND name IN ('schema_migrations', '_sqlx_migrations')",
        )
        .fetch_all(&mut *tx)
        .await?;
        if tables != ["schema_migrations"] {
            return Ok(());
        }
        tx.ensure_migrations_table().await?;
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
                .fetch_all(&mut *tx)
                .await?;
        for migration in MIGRATOR.iter().filter(|m| applied.contains(&m.version)) {
            sqlx::query(
                "INSERT INTO _sqlx_migrations
                 (version, description, success, checksum, execution_time)
                 VALUES (?, ?, TRUE, ?, -1)",
            )
            .bind(migration.version)
            .bind(&*migration.description)
            .bind(&*migration.checksum)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        tracing::info!(?applied, "adopted the migrations of an earlier release");
        Ok(())
    }
}

/// Create the directory of a `sqlite://PATH` database file when it is missing.
fn create_parent_dir(url: &str) -> Result<(), StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split('?').next().unwrap_or(rest);
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            StoreError::Database(format!(
                "cannot create database directory {}: {e}",
                parent.display()
            ))
        })?;
    }
    Ok(())
}

/// Cascades are the schema's (foreign keys, and the triggers of migration 5): the
/// delete methods below delete one row. Deleting a user takes its identities, sessions
/// and API keys; an identity takes its sessions and, for `local-userpass`, its
/// credentials; credentials take their email's tokens; an API key takes its identity and,
/// for a server key, its user; disabling a key takes its sessions.
#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        self.adopt_legacy_migrations().await?;
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn create_user_with_identity(
        &self,
        user: &UserRecord,
        identity: &IdentityRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_user(&mut *tx, user).await?;
        insert_identity(&mut *tx, identity).await?;
        Ok(tx.commit().await?)
    }

    async fn get_user(
        &self,
        app_id: &str,
        user_id: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM users WHERE app_id = ? AND id = ?")
                .bind(app_id)
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn delete_user(&self, app_id: &str, user_id: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM users WHERE app_id = ? AND id = ?")
            .bind(app_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn set_user_disabled(
        &self,
        app_id: &str,
        user_id: &str,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE users SET disabled = ? WHERE app_id = ? AND id = ?")
            .bind(disabled)
            .bind(app_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn set_custom_data(
        &self,
        app_id: &str,
        user_id: &str,
        data: Option<&Map<String, Value>>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE users SET custom_data = ? WHERE app_id = ? AND id = ?")
            .bind(data.map(Json))
            .bind(app_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn list_users(&self, app_id: &str) -> Result<Vec<UserRecord>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM users WHERE app_id = ? ORDER BY created_at, rowid")
                .bind(app_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// The one hand-written cascade: tokens are kept by email, and this also removes the
    /// tokens of an email that has no credentials (the schema's trigger fires only when
    /// a credentials row goes).
    async fn delete_userpass(&self, app_id: &str, email: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM userpass_tokens WHERE app_id = ? AND email = ?")
            .bind(app_id)
            .bind(email)
            .execute(&mut *tx)
            .await?;
        let n = sqlx::query("DELETE FROM userpass_credentials WHERE app_id = ? AND email = ?")
            .bind(app_id)
            .bind(email)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn replace_userpass_token(&self, t: &UserpassTokenRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        delete_tokens(&mut *tx, &t.app_id, &t.email, t.purpose).await?;
        sqlx::query(
            "INSERT INTO userpass_tokens
             (app_id, token_id_hash, token_hash, purpose, email, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.app_id)
        .bind(&t.token_id_hash)
        .bind(&t.token_hash)
        .bind(t.purpose)
        .bind(&t.email)
        .bind(t.created_at)
        .bind(t.expires_at)
        .execute(&mut *tx)
        .await?;
        Ok(tx.commit().await?)
    }

    async fn take_userpass_token(
        &self,
        app_id: &str,
        purpose: TokenPurpose,
        token_id_hash: &str,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let taken: Option<(String, i64)> = sqlx::query_as(
            "DELETE FROM userpass_tokens
             WHERE app_id = ? AND token_id_hash = ? AND token_hash = ? AND purpose = ?
             RETURNING email, expires_at",
        )
        .bind(app_id)
        .bind(token_id_hash)
        .bind(token_hash)
        .bind(purpose)
        .fetch_optional(&self.pool)
        .await?;
        Ok(taken
            .filter(|(_, expires_at)| *expires_at > now)
            .map(|(email, _)| email))
    }

    async fn delete_userpass_tokens(
        &self,
        app_id: &str,
        email: &str,
        purpose: TokenPurpose,
    ) -> Result<(), StoreError> {
        delete_tokens(&self.pool, app_id, email, purpose).await
    }

    async fn add_outbox(&self, m: &OutboxRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO outbox
             (app_id, recipient, kind, subject, body, token, token_id, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&m.app_id)
        .bind(&m.to)
        .bind(&m.kind)
        .bind(&m.subject)
        .bind(m.body.expose())
        .bind(m.token.expose())
        .bind(m.token_id.expose())
        .bind(m.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_outbox(&self, app_id: &str) -> Result<Vec<OutboxRecord>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM outbox WHERE app_id = ? ORDER BY seq")
                .bind(app_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn find_identity(
        &self,
        app_id: &str,
        provider_type: &str,
        id: &str,
    ) -> Result<Option<IdentityRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM identities WHERE app_id = ? AND provider_type = ? AND id = ?",
        )
        .bind(app_id)
        .bind(provider_type)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn add_identity(&self, identity: &IdentityRecord) -> Result<(), StoreError> {
        insert_identity(&self.pool, identity).await
    }

    async fn set_identity_data(
        &self,
        app_id: &str,
        provider_type: &str,
        id: &str,
        data: &Map<String, Value>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE identities SET data = ? WHERE app_id = ? AND provider_type = ? AND id = ?",
        )
        .bind(Json(data))
        .bind(app_id)
        .bind(provider_type)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn list_identities(
        &self,
        app_id: &str,
        user_id: &str,
    ) -> Result<Vec<IdentityRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM identities WHERE app_id = ? AND user_id = ? ORDER BY created_at, rowid",
        )
        .bind(app_id)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn create_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions
             (app_id, id, user_id, device_id, created_at, expires_at, provider_type, identity_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.app_id)
        .bind(&s.id)
        .bind(&s.user_id)
        .bind(&s.device_id)
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(&s.provider_type)
        .bind(&s.identity_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_session(
        &self,
        app_id: &str,
        session_id: &str,
    ) -> Result<Option<SessionRecord>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM sessions WHERE app_id = ? AND id = ?")
                .bind(app_id)
                .bind(session_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn delete_session(&self, app_id: &str, session_id: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM sessions WHERE app_id = ? AND id = ?")
            .bind(app_id)
            .bind(session_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn delete_user_sessions(&self, app_id: &str, user_id: &str) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM sessions WHERE app_id = ? AND user_id = ?")
                .bind(app_id)
                .bind(user_id)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn delete_identity_sessions(
        &self,
        app_id: &str,
        provider_type: &str,
        identity_id: &str,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM sessions WHERE app_id = ? AND provider_type = ? AND identity_id = ?",
        )
        .bind(app_id)
        .bind(provider_type)
        .bind(identity_id)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    async fn device_exists(&self, app_id: &str, device_id: &str) -> Result<bool, StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM devices WHERE app_id = ? AND id = ?")
                .bind(app_id)
                .bind(device_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    async fn touch_device(
        &self,
        app_id: &str,
        device_id: &str,
        user_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO devices (app_id, id, user_id, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (app_id, id) DO UPDATE SET last_seen_at = excluded.last_seen_at",
        )
        .bind(app_id)
        .bind(device_id)
        .bind(user_id)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn create_userpass(&self, r: &UserpassRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO userpass_credentials
             (app_id, id, email, password_hash, status, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&r.app_id)
        .bind(&r.id)
        .bind(&r.email)
        .bind(r.password_hash.expose())
        .bind(r.status)
        .bind(r.created_at)
        .bind(r.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_userpass(
        &self,
        app_id: &str,
        email: &str,
    ) -> Result<Option<UserpassRecord>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM userpass_credentials WHERE app_id = ? AND email = ?")
                .bind(app_id)
                .bind(email)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn set_userpass_status(
        &self,
        app_id: &str,
        email: &str,
        status: CredentialStatus,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE userpass_credentials SET status = ?, updated_at = ? WHERE app_id = ? AND email = ?",
        )
        .bind(status)
        .bind(now)
        .bind(app_id)
        .bind(email)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn set_userpass_password(
        &self,
        app_id: &str,
        email: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE userpass_credentials SET password_hash = ?, updated_at = ?
             WHERE app_id = ? AND email = ?",
        )
        .bind(password_hash)
        .bind(now)
        .bind(app_id)
        .bind(email)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn create_api_key(
        &self,
        key: &ApiKeyRecord,
        identity: &IdentityRecord,
        server_user: Option<&UserRecord>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(user) = server_user {
            insert_user(&mut *tx, user).await?;
        }
        sqlx::query(
            "INSERT INTO api_keys (app_id, id, user_id, kind, name, hash, disabled, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.app_id)
        .bind(&key.id)
        .bind(&key.user_id)
        .bind(key.kind)
        .bind(&key.name)
        .bind(key.hash.expose())
        .bind(key.disabled)
        .bind(key.created_at)
        .execute(&mut *tx)
        .await?;
        insert_identity(&mut *tx, identity).await?;
        Ok(tx.commit().await?)
    }

    async fn get_api_key(
        &self,
        app_id: &str,
        id: &str,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(
            sqlx::query_as("SELECT * FROM api_keys WHERE app_id = ? AND id = ?")
                .bind(app_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn list_api_keys(
        &self,
        app_id: &str,
        kind: ApiKeyKind,
        user_id: Option<&str>,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT * FROM api_keys WHERE app_id = ? AND kind = ? AND (? IS NULL OR user_id = ?)
             ORDER BY created_at, rowid",
        )
        .bind(app_id)
        .bind(kind)
        .bind(user_id)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn set_api_key_disabled(
        &self,
        app_id: &str,
        id: &str,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE api_keys SET disabled = ? WHERE app_id = ? AND id = ?")
            .bind(disabled)
            .bind(app_id)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn delete_api_key(&self, app_id: &str, id: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM api_keys WHERE app_id = ? AND id = ?")
            .bind(app_id)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// Delete every token pair of an email and purpose (in a transaction or on the pool).
async fn delete_tokens<'e, E>(
    executor: E,
    app_id: &str,
    email: &str,
    purpose: TokenPurpose,
) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    sqlx::query("DELETE FROM userpass_tokens WHERE app_id = ? AND email = ? AND purpose = ?")
        .bind(app_id)
        .bind(email)
        .bind(purpose)
        .execute(executor)
        .await?;
    Ok(())
}
