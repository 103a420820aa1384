//! Test helpers for latchkey.
//!
//! [`TestServer`] runs the real `latchkey-server` (real HTTP on a free loopback
//! port, a real SQLite database, real argon2id and real JWT signatures) inside the
//! test process, with every provider that needs no outside service turned on.
//!
//! ```no_run
//! # async fn demo() {
//! let server = latchkey_testkit::TestServer::start().await;
//! println!("server at {} for app {}", server.url(), server.app_id());
//! server.shutdown().await;
//! # }
//! ```
#![deny(missing_docs)]

pub mod full;
pub mod idp;
pub mod record;

use std::time::Duration;

pub use full::FullStack;
pub use latchkey_server::{AppConfig, Clock, Config, RunningServer};

/// The app id [`TestServer::start`] serves.
pub const TEST_APP_ID: &str = "latchkey-test";

/// The real server, running in this process on `127.0.0.1:<free port>`.
#[derive(Debug)]
pub struct TestServer {
    server: RunningServer,
    app_id: String,
}

impl TestServer {
    /// The default test configuration: one app [`TEST_APP_ID`] with a random signing
    /// secret, anonymous and email/password (auto-confirm) on, a fresh in-memory database.
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
        let server = latchkey_server::Server::start_with_clock(config, Clock::system())
            .await
            .expect("latchkey-server failed to start");
        TestServer { server, app_id }
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
