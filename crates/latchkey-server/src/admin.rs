//! Administration without a server: [`Admin`] opens the configured database and runs
//! the same operations as the admin HTTP API (`/admin/v1`), for the
//! `latchkey-server admin` command and tools. The operations themselves are the
//! domain's (`auth::admin`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use latchkey_server::admin::{Admin, AdminOp};
//!
//! let config = latchkey_server::Config::load("latchkey.toml".as_ref())?;
//! let admin = Admin::open(config).await?;
//! let users = admin.run(None, AdminOp::ListUsers).await?;
//! println!("{users}");
//! admin.close().await;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;

use crate::auth::admin::execute;
use crate::auth::state::ServerState;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::Error;
use crate::{ServerError, open_apps_and_store};

use crate::auth::admin::{Actor, Channel};
pub use crate::auth::admin::{AdminOp, MAX_PAGE};

/// Direct access to a configured database, for the `admin` command and tools.
#[derive(Debug)]
pub struct Admin {
    state: Arc<ServerState>,
    default_app: String,
}

impl Admin {
    /// Validate `config`, open and migrate its database. No port is bound.
    pub async fn open(config: Config) -> Result<Admin, ServerError> {
        let (apps, store) = open_apps_and_store(&config).await?;
        let state = ServerState::new(
            &config,
            apps,
            store,
            Clock::system(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        );
        Ok(Admin {
            state: Arc::new(state),
            default_app: config.apps[0].id.clone(),
        })
    }

    /// Run `op` on the app `app` (default: the first configured app).
    pub async fn run(&self, app: Option<&str>, op: AdminOp) -> Result<Value, Error> {
        let actor = Actor::new(Channel::Cli, None);
        execute(&self.state, &actor, app.unwrap_or(&self.default_app), op).await
    }

    /// Close the database.
    pub async fn close(self) {
        self.state.store.close().await;
    }
}
