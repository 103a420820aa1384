//! The domain layer: every rule of the server, written once, whatever the way in (the
//! client API, the admin API, the `admin` command).
//!
//! - [`login`]: login and linking, through the provider registry.
//! - [`sessions`]: token minting, authenticating access and refresh tokens, refresh
//!   and revocation.
//! - [`users`]: profile, self-deletion and the administrative user operations.
//! - [`api_keys`]: user and server API keys.
//! - [`userpass`]: email/password registration, confirmation and reset.
//! - [`admin`]: the administrative operations and the admin token.
//! - [`throttle`] and [`mail`]: failed-login and message limits, the outbox and SMTP.
//! - [`ops`]: readiness and metric label names for operators' probes.
//! - [`housekeeping`]: the background purge of expired and stale rows.
//!
//! Every function returns [`crate::error::Error`]; nothing here knows about HTTP.

pub(crate) mod admin;
pub(crate) mod api_keys;
pub(crate) mod console;
pub(crate) mod housekeeping;
pub(crate) mod key_admin;
pub(crate) mod login;
pub(crate) mod mail;
pub(crate) mod oauth;
pub(crate) mod ops;
pub(crate) mod sessions;
pub(crate) mod state;
pub(crate) mod throttle;
pub(crate) mod token_keys;
pub(crate) mod userpass;
pub(crate) mod users;
