//! `local-userpass`: email/password credentials.
//!
//! Registration, confirmation and password reset are domain flows (`auth::userpass`);
//! this module verifies a login. Registration stores credentials only (pending, or
//! confirmed with `auto_confirm`); the user and its identity come into being at the
//! first login. The identity id is the credential id.

use async_trait::async_trait;
use latchkey_protocol::{LoginBody, ProviderType, Secret};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{Provider, ProviderContext, VerifiedIdentity, required_str};
use crate::error::Error;
use crate::settings::{ConfigError, expose_optional_secret, yes};
use crate::store::CredentialStatus;

/// Longest accepted email address, in bytes.
pub(crate) const MAX_EMAIL_LEN: usize = 254;

/// Email/password provider settings (`[apps.providers.local-userpass]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalUserpassConfig {
    /// Whether email/password login and registration are allowed. True when the table is
    /// present and the key is not.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Registered credentials are confirmed at once (development setups).
    #[serde(default)]
    pub auto_confirm: bool,
    /// Confirmation by function: POSTed `{"token","tokenId","username"}` at registration
    /// (and by `confirm/call`); answers `{"status":"success"|"pending"|"fail"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_webhook_url: Option<String>,
    /// Reset by function: POSTed by `reset/call`; `reset/send` is then refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_webhook_url: Option<String>,
    /// HMAC-SHA256 secret signing the two webhooks' requests
    /// (`X-Latchkey-Timestamp: <secs>`, `X-Latchkey-Signature: sha256=<hex HMAC of
    /// "<secs>.<body>">`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose_optional_secret"
    )]
    pub webhook_secret: Option<Secret>,
    /// Page the confirmation email links to (`?token=..&tokenId=..` is appended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_url: Option<String>,
    /// Page the password-reset email links to (`?token=..&tokenId=..` is appended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_url: Option<String>,
    /// `From` address of this app's emails (default: `[smtp] from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_from: Option<String>,
}

impl LocalUserpassConfig {
    /// Check the URLs and the webhook secret.
    pub fn validate(&self, app_id: &str) -> Result<(), ConfigError> {
        for (name, url) in [
            ("confirmation_webhook_url", &self.confirmation_webhook_url),
            ("reset_webhook_url", &self.reset_webhook_url),
            ("confirmation_url", &self.confirmation_url),
            ("reset_url", &self.reset_url),
        ] {
            if let Some(url) = url
                && !((url.starts_with("http://") || url.starts_with("https://"))
                    && url.len() > "https://".len()
                    && !url.contains([' ', '#']))
            {
                return Err(ConfigError::Invalid(format!(
                    "app {app_id:?}: local-userpass {name} must be an absolute http(s) URL"
                )));
            }
        }
        if self.webhook_secret.as_ref().is_some_and(Secret::is_empty) {
            return Err(ConfigError::Invalid(format!(
                "app {app_id:?}: local-userpass webhook_secret must not be empty"
            )));
        }
        if let Some(from) = &self.email_from
            && !from.contains('@')
        {
            return Err(ConfigError::Invalid(format!(
                "app {app_id:?}: local-userpass email_from must be an email address"
            )));
        }
        Ok(())
    }
}

/// 400 for a login `username` longer than [`MAX_EMAIL_LEN`].
fn username_too_long() -> Error {
    Error::bad_request(format!("username must be at most {MAX_EMAIL_LEN} bytes"))
}

/// The `local-userpass` provider.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalUserpass;

#[async_trait]
impl Provider for LocalUserpass {
    const NAME: &'static str = ProviderType::EmailPassword.as_str();
    type Config = LocalUserpassConfig;

    fn enabled(&self, config: &LocalUserpassConfig) -> bool {
        config.enabled
    }

    fn validate(&self, config: &LocalUserpassConfig, app_id: &str) -> Result<(), ConfigError> {
        config.validate(app_id)
    }

    /// Check a login body `{username, password}`.
    ///
    /// A wrong password and an unknown email give the same answer after the same work
    /// (a dummy hash is verified for unknown emails). Only after the password matches
    /// are pending credentials reported.
    async fn authenticate(
        &self,
        ctx: &ProviderContext<'_>,
        _config: &LocalUserpassConfig,
        body: &LoginBody,
    ) -> Result<VerifiedIdentity, Error> {
        let email = required_str(body, "username")?;
        if email.len() > MAX_EMAIL_LEN {
            // Refused before any hashing.
            return Err(username_too_long());
        }
        let password = Secret::new(required_str(body, "password")?);
        let record = ctx.store.find_userpass(ctx.app_id, email).await?;
        let Some(record) = record else {
            ctx.hasher
                .verify_dummy(&password)
                .await
                .map_err(|e| Error::internal(&e))?;
            tracing::debug!(app = ctx.app_id, "login with unknown email");
            return Err(Error::InvalidPassword);
        };
        let ok = ctx
            .hasher
            .verify(&password, record.password_hash.expose())
            .await
            .map_err(|e| Error::internal(&e))?;
        if !ok {
            tracing::debug!(app = ctx.app_id, credential = %record.id, "wrong password");
            return Err(Error::InvalidPassword);
        }
        if record.status != CredentialStatus::Confirmed {
            return Err(Error::confirmation_required());
        }
        let mut data = Map::new();
        data.insert("email".to_owned(), Value::String(record.email.clone()));
        Ok(VerifiedIdentity {
            provider: Self::NAME,
            id: record.id,
            data,
        })
    }

    /// Failed logins are counted per email (whether it exists or not).
    fn login_identifier<'b>(&self, body: &'b LoginBody) -> Result<Option<&'b str>, Error> {
        match body.get("username") {
            Some(Value::String(u)) if u.len() > MAX_EMAIL_LEN => Err(username_too_long()),
            Some(Value::String(u)) => Ok(Some(u)),
            _ => Ok(None),
        }
    }

    fn enable_for_dev(&self, config: &mut LocalUserpassConfig) {
        config.enabled = true;
        config.auto_confirm = true;
    }
}
