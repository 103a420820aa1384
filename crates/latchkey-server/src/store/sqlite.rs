//! [`Store`] on SQLite through sqlx (runtime queries only, no compile-time macros).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

use super::{ApiKeyKind, ApiKeyRecord};
use super::{
    CredentialStatus, IdentityRecord, SessionRecord, Store, StoreError, UserRecord, UserpassRecord,
};
use super::{OutboxRecord, TokenPurpose, UserpassTokenRecord};

/// Schema migrations, applied in order, each once. Append; never edit a shipped entry.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE users (
    app_id      TEXT NOT NULL,
    id          TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    disabled    INTEGER NOT NULL DEFAULT 0,
    custom_data TEXT,
    PRIMARY KEY (app_id, id)
);
CREATE TABLE identities (
    app_id        TEXT NOT NULL,
    provider_type TEXT NOT NULL,
    id            TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    data          TEXT NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (app_id, provider_type, id),
    FOREIGN KEY (app_id, user_id) REFERENCES users (app_id, id) ON DELETE CASCADE
);
CREATE INDEX identities_by_user ON identities (app_id, user_id);
CREATE TABLE sessions (
    app_id     TEXT NOT NULL,
    id         TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, id),
    FOREIGN KEY (app_id, user_id) REFERENCES users (app_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_by_user ON sessions (app_id, user_id);
CREATE TABLE devices (
    app_id       TEXT NOT NULL,
    id           TEXT NOT NULL,
    user_id      TEXT,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, id)
);
CREATE TABLE userpass_credentials (
    app_id        TEXT NOT NULL,
    id            TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'confirmed')),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (app_id, id),
    UNIQUE (app_id, email)
);
"#,
    ),
    (2, API_KEYS_MIGRATION),
    (3, USERPASS_FLOWS_MIGRATION),
    (4, SESSION_IDENTITY_MIGRATION),
];

/// Version 2: API keys (user and server keys of the `api-key` provider).
const API_KEYS_MIGRATION: &str = r#"
CREATE TABLE api_keys (
    app_id     TEXT NOT NULL,
    id         TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('user', 'server')),
    name       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    disabled   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, id),
    UNIQUE (app_id, user_id, name),
    FOREIGN KEY (app_id, user_id) REFERENCES users (app_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX api_keys_server_names ON api_keys (app_id, name) WHERE kind = 'server';
CREATE INDEX api_keys_by_kind ON api_keys (app_id, kind)
"#;

/// Version 3: confirmation / reset token pairs (hashed) and the outbox.
const USERPASS_FLOWS_MIGRATION: &str = r#"
CREATE TABLE userpass_tokens (
    app_id        TEXT NOT NULL,
    token_id_hash TEXT NOT NULL,
    token_hash    TEXT NOT NULL,
    purpose       TEXT NOT NULL CHECK (purpose IN ('confirm', 'reset')),
    email         TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (app_id, token_id_hash)
);
CREATE INDEX userpass_tokens_by_email ON userpass_tokens (app_id, email, purpose);
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id     TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    token      TEXT NOT NULL,
    token_id   TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX outbox_by_app ON outbox (app_id, seq)
"#;

/// Version 4: the identity each session logged in with (to revoke the sessions of
/// a disabled or deleted API key).
const SESSION_IDENTITY_MIGRATION: &str = r#"
ALTER TABLE sessions ADD COLUMN provider_type TEXT;
ALTER TABLE sessions ADD COLUMN identity_id TEXT;
CREATE INDEX sessions_by_identity ON sessions (app_id, provider_type, identity_id)
"#;

/// Insert one user row (in a transaction or on the pool).
async fn insert_user<'e, E>(executor: E, user: &UserRecord) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    sqlx::query(
        "INSERT INTO users (app_id, id, created_at, disabled, custom_data) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&user.app_id)
    .bind(&user.id)
    .bind(user.created_at)
    .bind(i64::from(user.disabled))
    .bind(user.custom_data.as_ref().map(map_to_text))
    .execute(executor)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Insert one identity row (in a transaction or on the pool).
async fn insert_identity<'e, E>(executor: E, identity: &IdentityRecord) -> Result<(), StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    sqlx::query(
        "INSERT INTO identities (app_id, provider_type, id, user_id, data, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&identity.app_id)
    .bind(&identity.provider_type)
    .bind(&identity.id)
    .bind(&identity.user_id)
    .bind(map_to_text(&identity.data))
    .bind(identity.created_at)
    .execute(executor)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Delete the sessions created by logging in with one identity (in a transaction or
/// on the pool). Returns how many there were.
async fn delete_sessions_of_identity<'e, E>(
    executor: E,
    app_id: &str,
    provider_type: &str,
    identity_id: &str,
) -> Result<u64, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    Ok(sqlx::query(
        "DELETE FROM sessions WHERE app_id = ? AND provider_type = ? AND identity_id = ?",
    )
    .bind(app_id)
    .bind(provider_type)
    .bind(identity_id)
    .execute(executor)
    .await
    .map_err(db_err)?
    .rows_affected())
}

/// Delete the sessions created by logging in with API key `id`.
async fn delete_key_sessions(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    app_id: &str,
    id: &str,
) -> Result<(), StoreError> {
    delete_sessions_of_identity(&mut **tx, app_id, "api-key", id).await?;
    Ok(())
}

/// SQLite storage.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

fn db_err(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e
        && d.is_unique_violation()
    {
        return StoreError::Conflict;
    }
    StoreError::Database(e.to_string())
}

fn map_to_text(m: &Map<String, Value>) -> String {
    Value::Object(m.clone()).to_string()
}

fn text_to_map(s: &str) -> Result<Map<String, Value>, StoreError> {
    match serde_json::from_str(s) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(StoreError::Corrupt("expected a JSON object".into())),
        Err(e) => Err(StoreError::Corrupt(e.to_string())),
    }
}

fn user_from_row(row: &SqliteRow) -> Result<UserRecord, StoreError> {
    let custom: Option<String> = row.try_get("custom_data").map_err(db_err)?;
    Ok(UserRecord {
        app_id: row.try_get("app_id").map_err(db_err)?,
        id: row.try_get("id").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        disabled: row.try_get::<i64, _>("disabled").map_err(db_err)? != 0,
        custom_data: custom.as_deref().map(text_to_map).transpose()?,
    })
}

fn identity_from_row(row: &SqliteRow) -> Result<IdentityRecord, StoreError> {
    let data: String = row.try_get("data").map_err(db_err)?;
    Ok(IdentityRecord {
        app_id: row.try_get("app_id").map_err(db_err)?,
        provider_type: row.try_get("provider_type").map_err(db_err)?,
        id: row.try_get("id").map_err(db_err)?,
        user_id: row.try_get("user_id").map_err(db_err)?,
        data: text_to_map(&data)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
    })
}

fn session_from_row(row: &SqliteRow) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        app_id: row.try_get("app_id").map_err(db_err)?,
        id: row.try_get("id").map_err(db_err)?,
        user_id: row.try_get("user_id").map_err(db_err)?,
        device_id: row.try_get("device_id").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        expires_at: row.try_get("expires_at").map_err(db_err)?,
        provider_type: row.try_get("provider_type").map_err(db_err)?,
        identity_id: row.try_get("identity_id").map_err(db_err)?,
    })
}

fn api_key_from_row(row: &SqliteRow) -> Result<ApiKeyRecord, StoreError> {
    let kind: String = row.try_get("kind").map_err(db_err)?;
    Ok(ApiKeyRecord {
        app_id: row.try_get("app_id").map_err(db_err)?,
        id: row.try_get("id").map_err(db_err)?,
        user_id: row.try_get("user_id").map_err(db_err)?,
        kind: ApiKeyKind::from_name(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown API key kind {kind:?}")))?,
        name: row.try_get("name").map_err(db_err)?,
        hash: row.try_get("hash").map_err(db_err)?,
        disabled: row.try_get::<i64, _>("disabled").map_err(db_err)? != 0,
        created_at: row.try_get("created_at").map_err(db_err)?,
    })
}

fn userpass_from_row(row: &SqliteRow) -> Result<UserpassRecord, StoreError> {
    let status: String = row.try_get("status").map_err(db_err)?;
    Ok(UserpassRecord {
        app_id: row.try_get("app_id").map_err(db_err)?,
        id: row.try_get("id").map_err(db_err)?,
        email: row.try_get("email").map_err(db_err)?,
        password_hash: row.try_get("password_hash").map_err(db_err)?,
        status: CredentialStatus::from_name(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown credential status {status:?}")))?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
    })
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
        let options = SqliteConnectOptions::from_str(url)
            .map_err(db_err)?
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
        let pool = pool.connect_with(options).await.map_err(db_err)?;
        Ok(SqliteStore { pool })
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

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY,
                applied_at INTEGER NOT NULL DEFAULT (strftime('%s', 'now'))
            )",
        )
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        for (version, sql) in MIGRATIONS {
            let mut tx = self.pool.begin().await.map_err(db_err)?;
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
            if done.is_some() {
                continue;
            }
            // Statements one by one (the migrations contain no `;` inside literals).
            for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                sqlx::query(statement)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            sqlx::query("INSERT INTO schema_migrations (version) VALUES (?)")
                .bind(version)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            tracing::info!(version, "applied database migration");
        }
        Ok(())
    }

    async fn create_user_with_identity(
        &self,
        user: &UserRecord,
        identity: &IdentityRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        insert_user(&mut *tx, user).await?;
        insert_identity(&mut *tx, identity).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn get_user(
        &self,
        app_id: &str,
        user_id: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        sqlx::query("SELECT * FROM users WHERE app_id = ? AND id = ?")
            .bind(app_id)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn delete_user(&self, app_id: &str, user_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // Outstanding confirmation / reset tokens of the user's email go too, so they
        // cannot act on a later registration of the same email.
        sqlx::query(
            "DELETE FROM userpass_tokens WHERE app_id = ? AND email IN (
                SELECT email FROM userpass_credentials WHERE app_id = ? AND id IN (
                    SELECT id FROM identities
                    WHERE app_id = ? AND user_id = ? AND provider_type = 'local-userpass'))",
        )
        .bind(app_id)
        .bind(app_id)
        .bind(app_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "DELETE FROM userpass_credentials WHERE app_id = ? AND id IN (
                SELECT id FROM identities
                WHERE app_id = ? AND user_id = ? AND provider_type = 'local-userpass')",
        )
        .bind(app_id)
        .bind(app_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        for table in ["sessions", "identities"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE app_id = ? AND user_id = ?"
            ))
            .bind(app_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        let deleted = sqlx::query("DELETE FROM users WHERE app_id = ? AND id = ?")
            .bind(app_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        tx.commit().await.map_err(db_err)?;
        Ok(deleted > 0)
    }

    async fn set_user_disabled(
        &self,
        app_id: &str,
        user_id: &str,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE users SET disabled = ? WHERE app_id = ? AND id = ?")
            .bind(i64::from(disabled))
            .bind(app_id)
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?
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
            .bind(data.map(map_to_text))
            .bind(app_id)
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?
            .rows_affected();
        Ok(n > 0)
    }

    async fn list_users(&self, app_id: &str) -> Result<Vec<UserRecord>, StoreError> {
        sqlx::query("SELECT * FROM users WHERE app_id = ? ORDER BY created_at, rowid")
            .bind(app_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn delete_userpass(&self, app_id: &str, email: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query("DELETE FROM userpass_tokens WHERE app_id = ? AND email = ?")
            .bind(app_id)
            .bind(email)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let n = sqlx::query("DELETE FROM userpass_credentials WHERE app_id = ? AND email = ?")
            .bind(app_id)
            .bind(email)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        tx.commit().await.map_err(db_err)?;
        Ok(n > 0)
    }

    async fn replace_userpass_token(&self, t: &UserpassTokenRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query("DELETE FROM userpass_tokens WHERE app_id = ? AND email = ? AND purpose = ?")
            .bind(&t.app_id)
            .bind(&t.email)
            .bind(t.purpose.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO userpass_tokens
             (app_id, token_id_hash, token_hash, purpose, email, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.app_id)
        .bind(&t.token_id_hash)
        .bind(&t.token_hash)
        .bind(t.purpose.as_str())
        .bind(&t.email)
        .bind(t.created_at)
        .bind(t.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }

    async fn take_userpass_token(
        &self,
        app_id: &str,
        purpose: TokenPurpose,
        token_id_hash: &str,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM userpass_tokens
             WHERE app_id = ? AND token_id_hash = ? AND token_hash = ? AND purpose = ?
             RETURNING email, expires_at",
        )
        .bind(app_id)
        .bind(token_id_hash)
        .bind(token_hash)
        .bind(purpose.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let expires_at: i64 = row.try_get("expires_at").map_err(db_err)?;
        if expires_at <= now {
            return Ok(None);
        }
        Ok(Some(row.try_get("email").map_err(db_err)?))
    }

    async fn delete_userpass_tokens(
        &self,
        app_id: &str,
        email: &str,
        purpose: TokenPurpose,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM userpass_tokens WHERE app_id = ? AND email = ? AND purpose = ?")
            .bind(app_id)
            .bind(email)
            .bind(purpose.as_str())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
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
        .bind(&m.body)
        .bind(&m.token)
        .bind(&m.token_id)
        .bind(m.created_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn list_outbox(&self, app_id: &str) -> Result<Vec<OutboxRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM outbox WHERE app_id = ? ORDER BY seq")
            .bind(app_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|row| {
                Ok(OutboxRecord {
                    app_id: row.try_get("app_id").map_err(db_err)?,
                    to: row.try_get("recipient").map_err(db_err)?,
                    kind: row.try_get("kind").map_err(db_err)?,
                    subject: row.try_get("subject").map_err(db_err)?,
                    body: row.try_get("body").map_err(db_err)?,
                    token: row.try_get("token").map_err(db_err)?,
                    token_id: row.try_get("token_id").map_err(db_err)?,
                    created_at: row.try_get("created_at").map_err(db_err)?,
                })
            })
            .collect()
    }

    async fn find_identity(
        &self,
        app_id: &str,
        provider_type: &str,
        id: &str,
    ) -> Result<Option<IdentityRecord>, StoreError> {
        sqlx::query("SELECT * FROM identities WHERE app_id = ? AND provider_type = ? AND id = ?")
            .bind(app_id)
            .bind(provider_type)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(identity_from_row)
            .transpose()
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
        let done = sqlx::query(
            "UPDATE identities SET data = ? WHERE app_id = ? AND provider_type = ? AND id = ?",
        )
        .bind(map_to_text(data))
        .bind(app_id)
        .bind(provider_type)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn list_identities(
        &self,
        app_id: &str,
        user_id: &str,
    ) -> Result<Vec<IdentityRecord>, StoreError> {
        sqlx::query(
            "SELECT * FROM identities WHERE app_id = ? AND user_id = ? ORDER BY created_at, rowid",
        )
        .bind(app_id)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(identity_from_row)
        .collect()
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
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn get_session(
        &self,
        app_id: &str,
        session_id: &str,
    ) -> Result<Option<SessionRecord>, StoreError> {
        sqlx::query("SELECT * FROM sessions WHERE app_id = ? AND id = ?")
            .bind(app_id)
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(session_from_row)
            .transpose()
    }

    async fn delete_session(&self, app_id: &str, session_id: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM sessions WHERE app_id = ? AND id = ?")
            .bind(app_id)
            .bind(session_id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?
            .rows_affected();
        Ok(n > 0)
    }

    async fn delete_user_sessions(&self, app_id: &str, user_id: &str) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM sessions WHERE app_id = ? AND user_id = ?")
                .bind(app_id)
                .bind(user_id)
                .execute(&self.pool)
                .await
                .map_err(db_err)?
                .rows_affected(),
        )
    }

    async fn delete_identity_sessions(
        &self,
        app_id: &str,
        provider_type: &str,
        identity_id: &str,
    ) -> Result<u64, StoreError> {
        delete_sessions_of_identity(&self.pool, app_id, provider_type, identity_id).await
    }

    async fn device_exists(&self, app_id: &str, device_id: &str) -> Result<bool, StoreError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM devices WHERE app_id = ? AND id = ?")
                .bind(app_id)
                .bind(device_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
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
        .await
        .map_err(db_err)?;
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
        .bind(&r.password_hash)
        .bind(r.status.as_str())
        .bind(r.created_at)
        .bind(r.updated_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn find_userpass(
        &self,
        app_id: &str,
        email: &str,
    ) -> Result<Option<UserpassRecord>, StoreError> {
        sqlx::query("SELECT * FROM userpass_credentials WHERE app_id = ? AND email = ?")
            .bind(app_id)
            .bind(email)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(userpass_from_row)
            .transpose()
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
        .bind(status.as_str())
        .bind(now)
        .bind(app_id)
        .bind(email)
        .execute(&self.pool)
        .await
        .map_err(db_err)?
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
        .await
        .map_err(db_err)?
        .rows_affected();
        Ok(n > 0)
    }

    async fn create_api_key(
        &self,
        key: &ApiKeyRecord,
        identity: &IdentityRecord,
        server_user: Option<&UserRecord>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
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
        .bind(key.kind.as_str())
        .bind(&key.name)
        .bind(&key.hash)
        .bind(i64::from(key.disabled))
        .bind(key.created_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        insert_identity(&mut *tx, identity).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn get_api_key(
        &self,
        app_id: &str,
        id: &str,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        sqlx::query("SELECT * FROM api_keys WHERE app_id = ? AND id = ?")
            .bind(app_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(api_key_from_row)
            .transpose()
    }

    async fn list_api_keys(
        &self,
        app_id: &str,
        kind: ApiKeyKind,
        user_id: Option<&str>,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        sqlx::query(
            "SELECT * FROM api_keys WHERE app_id = ? AND kind = ? AND (? IS NULL OR user_id = ?)
             ORDER BY created_at, rowid",
        )
        .bind(app_id)
        .bind(kind.as_str())
        .bind(user_id)
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(api_key_from_row)
        .collect()
    }

    async fn set_api_key_disabled(
        &self,
        app_id: &str,
        id: &str,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let n = sqlx::query("UPDATE api_keys SET disabled = ? WHERE app_id = ? AND id = ?")
            .bind(i64::from(disabled))
            .bind(app_id)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        if n > 0 && disabled {
            delete_key_sessions(&mut tx, app_id, id).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(n > 0)
    }

    async fn delete_api_key(&self, app_id: &str, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let Some(key) = sqlx::query("SELECT * FROM api_keys WHERE app_id = ? AND id = ?")
            .bind(app_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .as_ref()
            .map(api_key_from_row)
            .transpose()?
        else {
            return Ok(false);
        };
        sqlx::query("DELETE FROM api_keys WHERE app_id = ? AND id = ?")
            .bind(app_id)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        delete_key_sessions(&mut tx, app_id, id).await?;
        sqlx::query(
            "DELETE FROM identities WHERE app_id = ? AND provider_type = 'api-key' AND id = ?",
        )
        .bind(app_id)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if key.kind == ApiKeyKind::Server {
            for table in ["sessions", "identities", "api_keys"] {
                sqlx::query(&format!(
                    "DELETE FROM {table} WHERE app_id = ? AND user_id = ?"
                ))
                .bind(app_id)
                .bind(&key.user_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            }
            sqlx::query("DELETE FROM users WHERE app_id = ? AND id = ?")
                .bind(app_id)
                .bind(&key.user_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> UserRecord {
        UserRecord {
            app_id: "a".into(),
            id: id.into(),
            created_at: 1,
            disabled: false,
            custom_data: None,
        }
    }

    fn identity(provider: &str, id: &str, user_id: &str) -> IdentityRecord {
        IdentityRecord {
            app_id: "a".into(),
            provider_type: provider.into(),
            id: id.into(),
            user_id: user_id.into(),
            data: Map::new(),
            created_at: 1,
        }
    }

    #[tokio::test]
    async fn memory_store_round_trip() {
        let s = SqliteStore::connect("sqlite::memory:").await.unwrap();
        s.migrate().await.unwrap();
        s.migrate().await.unwrap(); // idempotent
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
            (stored.password_hash.as_str(), stored.updated_at),
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

    #[tokio::test]
    async fn version_3_databases_gain_session_identities() {
        let s = SqliteStore::connect("sqlite::memory:").await.unwrap();
        // A database as version 3 left it, with a session.
        for (_, sql) in &MIGRATIONS[..3] {
            for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                sqlx::query(statement).execute(&s.pool).await.unwrap();
            }
        }
        sqlx::query(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER)",
        )
        .execute(&s.pool)
        .await
        .unwrap();
        for v in 1..=3 {
            sqlx::query("INSERT INTO schema_migrations (version) VALUES (?)")
                .bind(v)
                .execute(&s.pool)
                .await
                .unwrap();
        }
        s.create_user_with_identity(&user("u1"), &identity("anon-user", "i1", "u1"))
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO sessions (app_id, id, user_id, device_id, created_at, expires_at)
             VALUES ('a', 'old', 'u1', 'd', 1, 2)",
        )
        .execute(&s.pool)
        .await
        .unwrap();
        s.migrate().await.unwrap();
        let old = s.get_session("a", "old").await.unwrap().unwrap();
        assert_eq!((old.provider_type, old.identity_id), (None, None));
    }

    #[tokio::test]
    async fn devices() {
        let s = SqliteStore::connect("sqlite::memory:").await.unwrap();
        s.migrate().await.unwrap();
        assert!(!s.device_exists("a", "d1").await.unwrap());
        s.touch_device("a", "d1", "u", 1).await.unwrap();
        s.touch_device("a", "d1", "u", 2).await.unwrap();
        assert!(s.device_exists("a", "d1").await.unwrap());
        assert!(!s.device_exists("b", "d1").await.unwrap());
    }
}
