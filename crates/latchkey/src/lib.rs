//! User authentication for apps that speak the App Services client API (the API the Realm
//! SDKs speak), against `latchkey-server` or any compatible backend.
//!
//! `use latchkey::{App, Credentials};` is all you need:
//!
//! ```no_run
//! use latchkey::{App, Credentials};
//!
//! # #[cfg(feature = "anonymous")]
//! # async fn demo() -> Result<(), latchkey::Error> {
//! let app = App::builder("myapp-abcde").base_url("http://127.0.0.1:8080").build()?;
//! let user = app.log_in(Credentials::anonymous()).await?;
//! println!("logged in as {}", user.id());
//! let token = user.valid_access_token().await?;   // refreshed when about to expire
//! user.log_out().await?;
//! # let _ = token; Ok(()) }
//! ```
//!
//! Provider APIs hang off the app and the user, with nothing else to import:
//!
//! ```no_run
//! use latchkey::{App, Credentials};
//!
//! # #[cfg(all(feature = "anonymous", feature = "email-password", feature = "api-key"))]
//! # async fn demo(app: App) -> Result<(), latchkey::Error> {
//! let user = app.log_in(Credentials::anonymous()).await?;
//! app.email_password_auth().register_user("someone@example.com", "Pa55w0rd!").await?;
//! user.link_credentials(Credentials::email_password("someone@example.com", "Pa55w0rd!")).await?;
//! let key = user.api_keys().create("ci").await?;         // the secret is in key.key, once
//! let server = app.log_in(Credentials::api_key(key.key.unwrap().expose())).await?;
//! # let _ = server; Ok(()) }
//! ```
//!
//! # Cargo features
//!
//! | feature | default | what |
//! |---|---|---|
//! | `anonymous` | yes (via `all-providers`) | [`Credentials::anonymous`] |
//! | `email-password` | yes (via `all-providers`) | [`Credentials::email_password`], [`App::email_password_auth`] |
//! | `api-key` | yes (via `all-providers`) | [`Credentials::api_key`], [`User::api_keys`] |
//! | `custom-jwt` | yes (via `all-providers`) | [`Credentials::jwt`] |
//! | `custom-function` | yes (via `all-providers`) | [`Credentials::function`] |
//! | `facebook` | yes (via `all-providers`) | [`Credentials::facebook`] |
//! | `google` | yes (via `all-providers`) | [`Credentials::google_id_token`], [`Credentials::google_auth_code`] |
//! | `apple` | yes (via `all-providers`) | [`Credentials::apple`] |
//! | `all-providers` | yes | every provider |
//! | `reqwest` | yes | [`transport::ReqwestTransport`], the default transport |
//! | `hyper` | no | `transport::HyperTransport`, over hyper-util's client (used when `reqwest` is off) |
//! | `rustls` / `native-tls` | `rustls` | TLS for the built-in transports |
//! | `file-store` | yes | [`store::SqliteStore`], the default store, in the platform data directory (SQLite, bundled); and [`store::FileStore`] |
//!
//! With `default-features = false`, pass your own transport with [`AppBuilder::transport`].
//!
//! # Where things are
//!
//! The root has what most programs name: [`App`], [`AppBuilder`], [`User`], [`Credentials`],
//! [`Error`] with [`ErrorKind`] and [`ErrorCode`]. The rest is grouped:
//!
//! | module | what |
//! |---|---|
//! | [`credentials`] | the [`Credential`](credentials::Credential) trait, the login body, one credential type per provider |
//! | [`events`] | [`UserEvent`](events::UserEvent)s from [`App::subscribe`] |
//! | [`store`] | where users persist: [`UserStore`](store::UserStore), the memory and on-disk stores |
//! | [`transport`] | the HTTP layer: [`HttpTransport`](transport::HttpTransport), [`transport_fn`](transport::transport_fn), the built-in transports |
//! | `email_password` | [`EmailPasswordAuth`](email_password::EmailPasswordAuth), from [`App::email_password_auth`] (feature `email-password`) |
//! | `api_keys` | [`ApiKeys`](api_keys::ApiKeys) and [`ApiKey`](api_keys::ApiKey), from [`User::api_keys`] (feature `api-key`) |
//!
//! # Behaviour
//!
//! Location is fetched lazily once per [`App`]; idempotent requests (`GET`, `PUT`) are
//! retried after transient failures with exponential backoff ([`RetryPolicy`]); access
//! tokens are refreshed before they expire and after a 401 (replayed once); refresh is single-flight per user; a rejected
//! refresh token logs the user out with
//! [`UserEvent::SessionExpired`](events::UserEvent::SessionExpired) and an error for which
//! [`Error::is_session_expired`] is true; users persist through the
//! [`UserStore`](store::UserStore) after
//! every change (one write per change, never waiting on the async executor; a login that cannot be saved
//! fails with [`ErrorKind::Store`]); secrets never appear in `Debug`, `Display`, logs or
//! errors.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod app;
#[cfg(feature = "browser-sign-in")]
pub mod browser;
pub mod credentials;
mod user;

pub use app::{App, AppBuilder};
pub use credentials::Credentials;
pub use latchkey_session::{
    Error, ErrorBody, ErrorCode, ErrorKind, RetryPolicy, Secret, UserIdentity, UserProfile,
    UserState,
};
pub use user::User;

/// Re-exported so that a custom [`transport::HttpTransport`] or [`store::UserStore`] needs
/// no extra dependency: write `#[latchkey::async_trait]` on the `impl`.
pub use async_trait::async_trait;
pub use bytes;
pub use http;
/// Re-exported so that custom data types and function payloads need no extra dependency.
pub use serde_json;

pub mod events {
    //! What happens to the users of an app, from [`App::subscribe`](crate::App::subscribe).
    pub use latchkey_session::{EventReceiver, UserEvent};
}

pub mod store {
    //! Where an app keeps its users between runs: a [`UserStore`], the [`MemoryStore`] and,
    //! with the `file-store` feature, the `SqliteStore` (the default: one SQLite database per
    //! app id, safe for several processes) and the `FileStore` (one locked JSON file per app
    //! id, the previous default; the `SqliteStore` migrates its files).
    #[cfg(feature = "file-store")]
    pub use latchkey_session::{FileStore, SqliteStore};
    pub use latchkey_session::{
        MemoryStore, StoreChange, StoreError, StoredUser, StoredUsers, UserStore,
    };
}

pub mod transport {
    //! The HTTP layer: the [`HttpTransport`] trait every request goes through, its
    //! options and errors, [`transport_fn`] for a closure, and the built-in transports
    //! (`ReqwestTransport` with the `reqwest` feature, `HyperTransport` with `hyper`).
    pub use latchkey_transport::{
        DEFAULT_MAX_RESPONSE_BYTES, HttpRequest, HttpResponse, HttpTransport, RequestOptions,
        SharedTransport, TransportError, TransportErrorKind, transport_fn,
    };
    #[cfg(feature = "hyper")]
    pub use latchkey_transport_hyper::HyperTransport;
    #[cfg(feature = "reqwest")]
    pub use latchkey_transport_reqwest::ReqwestTransport;
}

#[cfg(feature = "email-password")]
pub mod email_password {
    //! The email/password client API: registration, confirmation and password resets,
    //! from [`App::email_password_auth`](crate::App::email_password_auth).
    pub use latchkey_email_password::EmailPasswordAuth;
}

#[cfg(feature = "api-key")]
pub mod api_keys {
    //! User API keys, from [`User::api_keys`](crate::User::api_keys).
    pub use latchkey_api_key::{ApiKey, ApiKeys};
}

/// The engine crate: an implementation detail of the facade, kept reachable for test
/// harnesses and provider crates' client APIs. Not part of the documented API.
#[doc(hidden)]
pub use latchkey_session as session;
