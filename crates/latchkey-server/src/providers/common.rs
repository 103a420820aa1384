//! What every provider implements ([`Provider`]) and what it is given
//! ([`ProviderContext`]), and the identity it proves ([`VerifiedIdentity`]).

use std::borrow::Cow;

use async_trait::async_trait;
use latchkey_protocol::LoginBody;
use serde_json::{Map, Value};

use super::jwks::JwksCache;
use super::redirect::RedirectFlow;
use crate::clock::Clock;
use crate::error::Error;
use crate::password::PasswordHasher;
use crate::settings::ConfigError;
use crate::store::Store;

/// The identity a credential proves.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VerifiedIdentity {
    /// The provider's name ([`Provider::NAME`]).
    pub(crate) provider: &'static str,
    /// Provider-specific identity id, unique per (app, provider).
    pub(crate) id: String,
    /// Profile metadata to store with the identity (e.g. `email`).
    pub(crate) data: Map<String, Value>,
}

impl VerifiedIdentity {
    /// Refuses an identity that no store can keep: an id or profile value holding
    /// U+0000 (PostgreSQL stores no NUL in text or JSON), whatever the provider vouched.
    pub(crate) fn storable(self) -> Result<Self, Error> {
        if self.id.contains('\0') || crate::error::holds_nul(&self.data) {
            return Err(Error::auth_failed(
                "the identity's id or profile data holds a NUL (U+0000) character",
            ));
        }
        Ok(self)
    }
}

/// What a provider may use while verifying a credential of one app.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProviderContext<'a> {
    /// The client app id.
    pub(crate) app_id: &'a str,
    /// The server's storage.
    pub(crate) store: &'a dyn Store,
    /// Password hashing off the async executor.
    pub(crate) hasher: &'a PasswordHasher,
    /// The server clock.
    pub(crate) clock: &'a Clock,
    /// Client for identity providers (JWKS, token endpoints, Graph API).
    pub(crate) http: &'a reqwest::Client,
    /// Client for webhooks (follows no redirects).
    pub(crate) webhook_http: &'a reqwest::Client,
    /// Cached JSON Web Key Sets.
    pub(crate) jwks: &'a JwksCache,
}

/// One server-side authentication provider: its name, its configuration section, how
/// that section is validated, and how a credential is verified.
///
/// Users, sessions and tokens are handled by the domain layer the same way for every
/// provider. A provider is registered in `providers/mod.rs` (see
/// `docs/contributing.md`, "Adding a server provider").
#[async_trait]
pub(crate) trait Provider: Send + Sync + 'static {
    /// The wire name: the `{provider}` of the login route, the `provider_type` of the
    /// identities it proves, and the `[apps.providers.<NAME>]` configuration section.
    const NAME: &'static str;

    /// The `[apps.providers.<NAME>]` table.
    type Config: Send + Sync;

    /// Whether the app's table turns the provider on.
    fn enabled(&self, config: &Self::Config) -> bool;

    /// Check the app's table (`app_id` names the app in messages).
    fn validate(&self, config: &Self::Config, app_id: &str) -> Result<(), ConfigError>;

    /// Verify a credential body (plain JSON, without `provider` and `options`) of a
    /// provider the caller has checked is enabled.
    async fn authenticate(
        &self,
        ctx: &ProviderContext<'_>,
        config: &Self::Config,
        body: &LoginBody,
    ) -> Result<VerifiedIdentity, Error>;

    /// Whether failed logins count against the login throttle (default: yes).
    fn throttled(&self) -> bool {
        true
    }

    /// The identifier (e.g. an email) that failed logins are counted for, besides the
    /// client address; checked before any credential is.
    fn login_identifier<'b>(&self, _body: &'b LoginBody) -> Result<Option<Cow<'b, str>>, Error> {
        Ok(None)
    }

    /// Why this provider's credentials cannot be linked to an existing user, if they
    /// cannot.
    fn link_refusal(&self) -> Option<&'static str> {
        None
    }

    /// The browser redirect flow (protocol.md §3.7) as the app's table configures it;
    /// `None` when the provider has none or the app did not set it up (no
    /// `redirect_uris`).
    fn redirect_flow<'c>(&self, _config: &'c Self::Config) -> Option<RedirectFlow<'c>> {
        None
    }

    /// Turn the provider on in the development configuration, when it needs no outside
    /// service (default: leave it off).
    fn enable_for_dev(&self, _config: &mut Self::Config) {}
}

/// A required string field of a credential body. The message never echoes the value.
pub(crate) fn required_str<'b>(body: &'b LoginBody, key: &str) -> Result<&'b str, Error> {
    match body.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Error::bad_request(format!("'{key}' must be a string"))),
        None => Err(Error::bad_request(format!(
            "missing required field '{key}'"
        ))),
    }
}
