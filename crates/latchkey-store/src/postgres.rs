//! [`Store`] on PostgreSQL through sqlx: connecting (URL, [`StoreOptions`], a password
//! from the environment) and migrations; the methods are the shared SQL of `sql.rs`.
//!
//! Several server nodes can share one database: every method is one statement or one
//! transaction, uniqueness is the schema's (unique constraints, `ON CONFLICT`), consuming
//! is `DELETE ... RETURNING`, and `migrate` holds PostgreSQL's advisory lock (sqlx's
//! migrator takes it), so nodes starting at once migrate one after the other.

use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{ConnectOptions, PgPool, Postgres};
use url::Url;

use crate::sqlite_reads::ReadInPlace;
use crate::throttle::{RuleKind, ThrottleRow};
use latchkey_protocol::Secret;

use crate::{
    ApiKeyKind, ApiKeyRecord, CredentialStatus, IdentityRecord, OAuthStateRecord, OutboxRecord,
    SessionRecord, Store, StoreError, StoreOptions, ThrottleDecision, ThrottleHit, ThrottleRule,
    TokenPurpose, UserRecord, UserpassEmail, UserpassRecord, UserpassTokenRecord,
};

/// The PostgreSQL migrations (`migrations/postgres/*.sql`), embedded at compile time.
static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Default pool size.
const DEFAULT_MAX_CONNECTIONS: u32 = 10;
/// Default wait for a connection.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// PostgreSQL storage, for one server or several nodes on one database.
///
/// Its `Debug` shows the server and database it connects to, never a password.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Where writes go: the same pool (PostgreSQL runs concurrent writers itself).
    writer: PgPool,
    /// `postgres://USER@HOST:PORT/DB`, for messages.
    target: String,
}

impl PgStore {
    /// Connect to `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?PARAMS]` (or
    /// `postgresql://`) with the default [`StoreOptions`]. Does not migrate: call
    /// [`Store::migrate`].
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        PgStore::connect_with(url, &StoreOptions::default()).await
    }

    /// Connect with [`StoreOptions`]: pool size, connect timeout, `statement_timeout`,
    /// and the password from the environment variable `password_env` when the URL has
    /// none. The URL's parameters are libpq's (`sslmode`, `sslrootcert`,
    /// `application_name`, ...). Errors name the server and database, never the password.
    pub async fn connect_with(url: &str, options: &StoreOptions) -> Result<PgStore, StoreError> {
        let connect = connect_options(url, options)?;
        let target = target(&connect);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS))
            .acquire_timeout(options.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Database(format!("cannot connect to {target}: {e}")))?;
        Ok(PgStore {
            writer: pool.clone(),
            pool,
            target,
        })
    }

    /// The server and database, as `postgres://USER@HOST:PORT/DB` (no password).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Run the migrations. Errors name the server and database (never the password).
    async fn run_migrations(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::from(e).context(&format!("cannot migrate {}", self.target)))?;
        Ok(())
    }
}

/// No in-place reads on PostgreSQL (a query is a network round trip): the pool reads.
impl ReadInPlace for PgStore {}

impl PgStore {
    /// No one-call settlement on PostgreSQL (a statement is a round trip whatever the
    /// grouping): the statements run one by one.
    #[allow(clippy::unused_async, clippy::unused_self)]
    async fn throttle_settle_in_one_call(
        &self,
        _clear: Option<&str>,
        _release: &[ThrottleHit],
    ) -> Option<Result<(), StoreError>> {
        None
    }

    /// [`Store::start_session`]: one transaction of the login's statements.
    async fn write_login(
        &self,
        new_user: Option<(&UserRecord, &IdentityRecord)>,
        session: &SessionRecord,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        if let Some((user, identity)) = new_user {
            insert_user(&mut *tx, user).await?;
            insert_identity(&mut *tx, identity).await?;
        }
        upsert_device(
            &mut *tx,
            &session.app_id,
            &session.device_id,
            &session.user_id,
            session.created_at,
        )
        .await?;
        insert_session(&mut *tx, session).await?;
        Ok(tx.commit().await?)
    }
}

/// Check a PostgreSQL URL: it parses, and names its database. [`StoreError::Config`]
/// otherwise (the message never shows the URL, which may hold a password).
pub(crate) fn check_url(url: &str) -> Result<(), StoreError> {
    parse(url).map(|_| ())
}

/// The URL, parsed, and whether it holds a password.
fn parse(url: &str) -> Result<(PgConnectOptions, bool), StoreError> {
    let parsed = Url::parse(url)
        .map_err(|e| StoreError::Config(format!("the PostgreSQL URL is malformed: {e}")))?;
    let database = parsed.path().trim_start_matches('/');
    let named_in_query = parsed.query_pairs().any(|(k, _)| k == "dbname");
    if database.is_empty() && !named_in_query {
        return Err(StoreError::Config(
            "the PostgreSQL URL names no database: postgres://USER@HOST:PORT/DATABASE".into(),
        ));
    }
    let has_password =
        parsed.password().is_some() || parsed.query_pairs().any(|(k, _)| k == "password");
    let options = PgConnectOptions::from_url(&parsed).map_err(|e| {
        StoreError::Config(format!(
            "the PostgreSQL URL's parameters are invalid: {}",
            redact_driver_error(&e)
        ))
    })?;
    Ok((options, has_password))
}

/// The connect options of `url` with `options` applied.
fn connect_options(url: &str, options: &StoreOptions) -> Result<PgConnectOptions, StoreError> {
    let (mut connect, has_password) = parse(url)?;
    if !has_password && let Some(password) = options.env_password()? {
        connect = connect.password(password.expose());
    }
    if let Some(timeout) = options.statement_timeout {
        connect = connect.options([(
            "statement_timeout",
            format!("{}ms", timeout.as_millis().max(1)),
        )]);
    }
    if connect.get_application_name().is_none() {
        connect = connect.application_name("latchkey");
    }
    Ok(connect)
}

/// `postgres://USER@HOST:PORT/DB` of connect options.
fn target(connect: &PgConnectOptions) -> String {
    let host = match connect.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => connect.get_host().to_owned(),
    };
    format!(
        "postgres://{}@{}:{}/{}",
        connect.get_username(),
        host,
        connect.get_port(),
        connect.get_database().unwrap_or_default()
    )
}

/// A driver error's kind, for the URL errors: the driver's configuration errors may quote
/// a parameter's value, which the message must not carry.
fn redact_driver_error(e: &sqlx::Error) -> &'static str {
    match e {
        sqlx::Error::Configuration(_) => "a parameter has an invalid value",
        _ => "unreadable",
    }
}

crate::sql::impl_store!(PgStore, Postgres);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_database_and_errors_hide_passwords() {
        assert!(check_url("postgres://u:pw@db:5432/latchkey").is_ok());
        assert!(check_url("postgresql://u@db/latchkey?sslmode=require").is_ok());
        assert!(check_url("postgres://u@db/?dbname=latchkey").is_ok());
        for url in [
            "postgres://u:hunter2@db",
            "postgres://u:hunter2@db/",
            "postgres://u:hunter2@db:notaport/x",
            "postgres://u:hunter2@db/x?sslmode=hunter2",
        ] {
            let err = check_url(url).unwrap_err();
            assert!(matches!(err, StoreError::Config(_)), "{err:?}");
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }

    #[test]
    fn options_apply_and_the_target_has_no_password() {
        let options = StoreOptions::default().statement_timeout(Duration::from_millis(1500));
        let connect = connect_options("postgres://me:hunter2@db.example:6543/auth", &options)
            .expect("options");
        assert_eq!(target(&connect), "postgres://me@db.example:6543/auth");
        assert_eq!(connect.get_options(), Some("-c statement_timeout=1500ms"));
        assert_eq!(connect.get_application_name(), Some("latchkey"));
    }

    #[test]
    fn a_missing_password_variable_is_named_without_a_value() {
        let options = StoreOptions::default().password_env("LATCHKEY_TEST_NO_SUCH_VARIABLE");
        let err = connect_options("postgres://me@db/auth", &options).unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains("LATCHKEY_TEST_NO_SUCH_VARIABLE") && shown.contains("not set"),
            "{shown}"
        );
        // A password in the URL wins: the variable is not read.
        assert!(connect_options("postgres://me:pw@db/auth", &options).is_ok());
    }
}
