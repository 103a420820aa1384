//! Wire types of the App Services client authentication API, as spoken by the
//! Realm SDKs and by `latchkey-server`.
//!
//! This crate performs no I/O and has no async code. It is shared by the client
//! SDK crates and the server, so both sides agree on one definition of every
//! route, body, error code and token claim.
//!
//! ```
//! use latchkey_protocol::{routes::Routes, ProviderType};
//!
//! let routes = Routes::new("http://127.0.0.1:8080", "myapp-abcde");
//! assert_eq!(
//!     routes.login(ProviderType::Anonymous.as_str(), false),
//!     "http://127.0.0.1:8080/api/client/v2.0/app/myapp-abcde/auth/providers/anon-user/login"
//! );
//! ```
#![deny(missing_docs)]

pub mod claims;
pub mod credential;
pub mod ejson;
pub mod error;
pub mod object_id;
pub mod provider;
pub mod routes;
pub mod secret;
pub mod types;

pub use claims::{
    AccessTokenClaims, ClaimsError, CustomDataError, MAX_ACCESS_TOKEN_LIFETIME_SECS,
    MAX_CUSTOM_DATA_BYTES, MAX_CUSTOM_DATA_DEPTH, MAX_REFRESH_TOKEN_LIFETIME_SECS,
    MIN_REFRESH_TOKEN_LIFETIME_SECS, RefreshTokenClaims, TokenType, check_custom_data,
};
pub use credential::{Credential, CredentialError, LoginBody};
pub use error::{ErrorBody, ErrorCode};
pub use object_id::ObjectId;
pub use provider::ProviderType;
pub use secret::Secret;
pub use types::*;
