//! Token and session management for latchkey: the engine behind `latchkey::App`.
//!
//! - [`AppCore`]: one app id; lazy location discovery, login (credential body plus
//!   `options.device`, then the profile), the user registry and the current user.
//! - [`User`]: a cheap-clone handle with state, tokens, profile and identities; proactive
//!   and reactive (401 → refresh → replay once) token refresh, single-flight per user.
//! - [`UserStore`]: persistence after every change, one write per change, off the async
//!   executor; [`MemoryStore`] and, with the `file-store` feature, `SqliteStore` (the
//!   default on disk: safe for several processes, crash-safe) and `FileStore` (one locked
//!   JSON file per app id).
//! - [`UserEvent`]: a broadcast of logins, refreshes, logouts, session expiries, removals
//!   and switches.
//! - [`Error`]: the one error type, with [`ErrorKind`] and predicates.
//! - The browser sign-in (OAuth redirect flow): [`AppCore::redirect_login_url`] and
//!   [`AppCore::complete_redirect_login`], which completes a login as [`AppCore::log_in`]
//!   does.
//!
//! Provider crates implement [`latchkey_protocol::Credential`]; those with client APIs
//! (email/password registration, ...) build on [`AppCore::routes`] and
//! [`AppCore::send_json`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use latchkey_session::{AppConfig, AppCore, MemoryStore};
//! # async fn demo(transport: latchkey_transport::SharedTransport,
//! #               credential: &dyn latchkey_protocol::Credential) -> Result<(), latchkey_session::Error> {
//! let app = AppCore::new(
//!     AppConfig::new("myapp-abcde", "http://127.0.0.1:8080"),
//!     transport,
//!     Arc::new(MemoryStore::new()),
//! )?;
//! let user = app.log_in(credential).await?;
//! let token = user.valid_access_token().await?;
//! user.log_out().await?;
//! # let _ = token; Ok(()) }
//! ```
#![deny(missing_docs)]

// Modules by concern. Each may use only the modules listed after it (never the crate
// root, never a module that uses it back), so there are no cycles:
//
//   profile, clock, events, retry  -> (none)          user state, identities, profile
//   store       -> profile                            UserStore, StoredUser(s), MemoryStore
//   disk        -> store                              names, permissions, setting data aside
//   file_store  -> disk, store                        FileStore
//   sqlite_store -> disk, file_store, store           SqliteStore (migrates FileStore's files)
//   error       -> store                              Error, ErrorKind
//   config      -> clock, error, retry                AppConfig, device info
//   wire        -> error, retry                       request building, bearer, decode, errors
//   tokens      -> error                              token cache, expiry, single-flight gate
//   client      -> clock, config, error, retry, wire  location, timeouts, retries, spans
//   record      -> error, profile, store, tokens      one user's record and shared cell
//   registry    -> error, events, profile, record, store       users, current user, persistence
//   context     -> client, config, error, events, registry, store, wire   what a user needs
//   refresh     -> context, error, events, profile, record, registry, tokens, wire   refresh
//   user        -> context, error, events, profile, record, refresh, registry, tokens, wire
//   redirect    -> error                              the browser sign-in's query and fragment
//   app         -> config, context, error, events, profile, record, redirect, store, tokens, user, wire
mod app;
mod client;
mod clock;
mod config;
mod context;
#[cfg(feature = "file-store")]
mod disk;
mod error;
mod events;
#[cfg(feature = "file-store")]
mod file_store;
#[doc(hidden)]
pub mod fuzzing;
mod profile;
mod record;
mod redirect;
mod refresh;
mod registry;
mod retry;
#[cfg(feature = "file-store")]
mod sqlite_store;
mod store;
mod tokens;
mod user;
mod wire;

pub use app::AppCore;
pub use clock::{Clock, SharedClock, SystemClock};
pub use config::{AppConfig, DEFAULT_REQUEST_TIMEOUT, SDK_NAME};
pub use error::{Error, ErrorKind};
pub use events::{EventReceiver, UserEvent};
#[cfg(feature = "file-store")]
pub use file_store::FileStore;
pub use latchkey_protocol::Secret;
pub use profile::{UserIdentity, UserProfile, UserState};
pub use redirect::RedirectProvider;
pub use retry::{RetryPolicy, retry_after};
#[cfg(feature = "file-store")]
pub use sqlite_store::SqliteStore;
pub use store::{MemoryStore, StoreChange, StoreError, StoredUser, StoredUsers, UserStore};
pub use tokens::{MAX_ACCESS_TOKEN_LIFETIME, refresh_buffer};
pub use user::User;
pub use wire::AUTH_MAX_RESPONSE_BYTES;

pub use latchkey_protocol::routes::Routes;
pub use latchkey_protocol::{Credential, CredentialError, ErrorBody, ErrorCode, LoginBody};
pub use latchkey_transport::{HttpTransport, SharedTransport};

#[cfg(test)]
mod tests;
