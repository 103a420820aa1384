//! Test helpers for latchkey.
//!
//! [`TestServer`] runs the real `latchkey-server` (real HTTP on a free loopback
//! port, a real SQLite database, real argon2id and real JWT signatures) inside the
//! test process, with every provider that needs no outside service turned on.
//!
//! # Engines
//!
//! Servers run on a fresh in-memory SQLite database, or, with
//! `LATCHKEY_TEST_DATABASE=postgres`, on a fresh PostgreSQL database of the server that
//! `LATCHKEY_TEST_POSTGRES_URL` names (see [`test_database`]): the same tests check
//! both engines.
//!
//! ```no_run
//! # async fn demo() {
//! let server = latchkey_testkit::TestServer::start().await;
//! println!("server at {} for app {}", server.url(), server.app_id());
//! server.shutdown().await;
//! # }
//! ```
#![deny(missing_docs)]

pub mod faults;
pub mod full;
pub mod idp;
pub mod record;

use std::time::Duration;

pub use full::FullStack;
pub use latchkey_server::{AppConfig, Clock, Config, RunningServer};
pub use latchkey_store::testing::{POSTGRES_URL_VAR, PostgresTestDb};

/// The environment variable that picks the engine of test servers: `postgres` (or
/// `postgresql`) for PostgreSQL, unset or `sqlite` for SQLite.
pub const DATABASE_VAR: &str = "LATCHKEY_TEST_DATABASE";

/// Whether test servers run on PostgreSQL ([`DATABASE_VAR`] is `postgres`).
///
/// # Panics
/// When [`DATABASE_VAR`] names no engine this kit knows.
pub fn postgres_requested() -> bool {
    match std::env::var(DATABASE_VAR).as_deref().map(str::trim) {
        Err(_) | Ok("" | "sqlite") => false,
        Ok("postgres" | "postgresql") => true,
        Ok(other) => panic!("{DATABASE_VAR}={other:?}: expected \"sqlite\" or \"postgres\""),
    }
}

/// Point `config` at a fresh PostgreSQL database when [`postgres_requested`] and the
/// configuration uses the default in-memory SQLite database (a test that chose a file
/// keeps it). Keep the returned database as long as the server: dropping it drops the
/// database.
///
/// # Panics
/// When PostgreSQL is requested but [`POSTGRES_URL_VAR`] is not set, or its server
/// cannot be reached: a run that asked for PostgreSQL never falls back to SQLite.
pub async fn test_database(config: &mut Config) -> Option<PostgresTestDb> {
    if !postgres_requested() || config.database.expose() != "sqlite::memory:" {
        return None;
    }
    if std::env::var(POSTGRES_URL_VAR).is_err() {
        panic!("{DATABASE_VAR}=postgres but {POSTGRES_URL_VAR} is not set");
    }
    let db = PostgresTestDb::create()
        .await
        .unwrap_or_else(|| panic!("{POSTGRES_URL_VAR} is not usable"));
    config.database = db.url().into();
    Some(db)
}

/// The app id [`TestServer::start`] serves.
pub const TEST_APP_ID: &str = "latchkey-test";

/// The real server, running in this process on `127.0.0.1:<free port>`.
#[derive(Debug)]
pub struct TestServer {
    server: RunningServer,
    app_id: String,
    /// The PostgreSQL database of a run on PostgreSQL (dropped after the server).
    _database: Option<PostgresTestDb>,
}

impl TestServer {
    /// The default test configuration: one app [`TEST_APP_ID`] with a random signing
    /// secret, anonymous and email/password (auto-confirm) on, a fresh in-memory database
    /// (or PostgreSQL database, see [`test_database`]).
    pub fn config() -> Config {
        let mut config = Config::dev();
        for app in &mut config.apps {
            app.id = TEST_APP_ID.to_owned();
        }
        config
    }

    /// Start a server with [`TestServer::config`].
    ///
    /// # Panics
    /// If the server cannot start: this is a test helper, and a test cannot go on without it.
    pub async fn start() -> TestServer {
        Self::start_with(Self::config()).await
    }

    /// Start a server with the given configuration (its first app is the one
    /// [`TestServer::app_id`] names). The listen address is forced to `127.0.0.1:0`.
    ///
    /// # Panics
    /// If the configuration has no app or the server cannot start.
    pub async fn start_with(mut config: Config) -> TestServer {
        config.listen = "127.0.0.1:0".parse().expect("loopback address");
        let app_id = config
            .apps
            .first()
            .expect("a test configuration needs at least one app")
            .id
            .clone();
        let database = test_database(&mut config).await;
        let server = latchkey_server::Server::start_with_clock(config, Clock::system())
            .await
            .expect("latchkey-server failed to start");
        TestServer {
            server,
            app_id,
            _database: database,
        }
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The app id tests should use.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The server's clock: [`Clock::advance`] expires tokens without sleeping.
    pub fn clock(&self) -> &Clock {
        self.server.clock()
    }

    /// Move the server's clock forward.
    pub fn advance_clock(&self, by: Duration) {
        self.server.clock().advance(by);
    }

    /// Stop the server gracefully.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}
