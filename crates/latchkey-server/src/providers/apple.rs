//! `oauth2-apple`: a Sign in with Apple ID token (RS256, Apple's JWKS), checked for
//! `iss` (Apple), `aud` (one of the configured client ids), `exp`, `nbf` and `iat`.
//! The identity id is `sub`; `email` (and a name, when present) go to the profile.

use async_trait::async_trait;
use latchkey_protocol::{LoginBody, ProviderType, Secret};
use serde::{Deserialize, Serialize};

use super::common::{Provider, ProviderContext, VerifiedIdentity, required_str};
use super::oidc::{self, DEFAULT_LEEWAY_SECS, Rules, check_leeway, default_leeway};
use super::redirect::{Exchange, RedirectFlow, check_redirect_uris};
use crate::error::Error;
use crate::settings::{
    ConfigError, check_non_empty, check_url, expose_optional_secret, invalid, yes,
};

/// Apple's JSON Web Key Set.
pub const APPLE_JWKS_URL: &str = "https://appleid.apple.com/auth/keys";
/// Apple's ID token issuer.
pub const APPLE_ISSUER: &str = "https://appleid.apple.com";
/// Apple's authorization endpoint (the browser redirect flow).
pub const APPLE_AUTHORIZATION_URL: &str = "https://appleid.apple.com/auth/authorize";
/// Apple's token endpoint (authorization-code exchange).
pub const APPLE_TOKEN_URL: &str = "https://appleid.apple.com/auth/token";

const LABEL: &str = "Apple";

/// `[apps.providers.oauth2-apple]`: log in with a Sign in with Apple ID token.
///
/// ```toml
/// [apps.providers.oauth2-apple]
/// client_id = "com.example.app"     # bundle id (mobile) or services id (web)
/// client_ids = ["com.example.web"]  # optional, more accepted audiences
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppleConfig {
    /// Whether the provider accepts logins. True when the table is present and the key is not.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The expected `aud`: the bundle id or services id.
    #[serde(default)]
    pub client_id: String,
    /// More accepted `aud` values (so one server serves both mobile and web).
    #[serde(default)]
    pub client_ids: Vec<String>,
    /// Apple's JWK Set (default [`APPLE_JWKS_URL`]).
    #[serde(default = "default_apple_jwks")]
    pub jwks_url: String,
    /// The required `iss` (default [`APPLE_ISSUER`]).
    #[serde(default = "default_apple_issuer")]
    pub issuer: String,
    /// Clock-skew leeway for `exp`, `nbf` and `iat` in seconds (default 60, at most 300).
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// The browser redirect flow's allowed final redirect URIs (exact match); empty
    /// (the default) turns the flow off. The flow needs `client_secret`, and
    /// `client_id` must be the Services ID.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The client secret of the code exchange: the ES256 client-secret JWT made with
    /// the Sign in with Apple key (at most six months valid).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose_optional_secret"
    )]
    pub client_secret: Option<Secret>,
    /// Apple's authorization endpoint (default [`APPLE_AUTHORIZATION_URL`]).
    #[serde(default = "default_apple_authorization")]
    pub authorization_url: String,
    /// Apple's token endpoint (default [`APPLE_TOKEN_URL`]).
    #[serde(default = "default_apple_token")]
    pub token_url: String,
}

impl Default for AppleConfig {
    fn default() -> Self {
        AppleConfig {
            enabled: false,
            client_id: String::new(),
            client_ids: Vec::new(),
            jwks_url: default_apple_jwks(),
            issuer: default_apple_issuer(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
            redirect_uris: Vec::new(),
            client_secret: None,
            authorization_url: default_apple_authorization(),
            token_url: default_apple_token(),
        }
    }
}

fn default_apple_authorization() -> String {
    APPLE_AUTHORIZATION_URL.to_owned()
}

fn default_apple_token() -> String {
    APPLE_TOKEN_URL.to_owned()
}

fn default_apple_jwks() -> String {
    APPLE_JWKS_URL.to_owned()
}

fn default_apple_issuer() -> String {
    APPLE_ISSUER.to_owned()
}

impl AppleConfig {
    /// Check the values (when enabled). `app` names the app in messages.
    pub fn validate(&self, app: &str) -> Result<(), ConfigError> {
        const P: &str = Apple::NAME;
        if !self.enabled {
            return Ok(());
        }
        if self.audiences().is_empty() {
            return invalid(app, P, "client_id (or client_ids) is required");
        }
        check_non_empty(app, P, "client_ids", &self.client_ids)?;
        check_url(app, P, "jwks_url", &self.jwks_url)?;
        if self.issuer.trim().is_empty() {
            return invalid(app, P, "issuer must not be empty");
        }
        if self.client_secret.as_ref().is_some_and(Secret::is_empty) {
            return invalid(app, P, "client_secret must not be empty when set");
        }
        check_url(app, P, "authorization_url", &self.authorization_url)?;
        check_url(app, P, "token_url", &self.token_url)?;
        let needs = self.client_secret.is_none().then_some("client_secret");
        check_redirect_uris(app, P, &self.redirect_uris, needs)?;
        check_leeway(app, P, self.leeway_secs)
    }

    /// Every accepted `aud`: `client_id` then `client_ids`.
    pub fn audiences(&self) -> Vec<String> {
        std::iter::once(self.client_id.clone())
            .chain(self.client_ids.iter().cloned())
            .filter(|a| !a.trim().is_empty())
            .collect()
    }
}

/// The `oauth2-apple` provider.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Apple;

#[async_trait]
impl Provider for Apple {
    const NAME: &'static str = ProviderType::Apple.as_str();
    type Config = AppleConfig;

    fn enabled(&self, config: &AppleConfig) -> bool {
        config.enabled
    }

    fn validate(&self, config: &AppleConfig, app_id: &str) -> Result<(), ConfigError> {
        config.validate(app_id)
    }

    /// Authorization code (no PKCE: Apple does not document it), `name email`, which
    /// Apple answers with a form POST to the callback.
    fn redirect_flow<'c>(&self, config: &'c AppleConfig) -> Option<RedirectFlow<'c>> {
        if config.redirect_uris.is_empty() {
            return None;
        }
        Some(RedirectFlow {
            label: LABEL,
            authorization_url: &config.authorization_url,
            client_id: &config.client_id,
            scope: "name email",
            pkce: false,
            form_post: true,
            redirect_uris: &config.redirect_uris,
            exchange: Exchange::IdToken {
                token_url: &config.token_url,
                client_secret: config.client_secret.as_ref()?,
            },
        })
    }

    /// Check a login body `{id_token}`.
    async fn authenticate(
        &self,
        ctx: &ProviderContext<'_>,
        config: &AppleConfig,
        body: &LoginBody,
    ) -> Result<VerifiedIdentity, Error> {
        let token = required_str(body, "id_token")?;
        let audiences = config.audiences();
        let issuers = [config.issuer.clone()];
        let rules = Rules::id_token(LABEL, &audiences, &issuers, config.leeway_secs);
        oidc::verify_id_token(ctx, Self::NAME, token, &config.jwks_url, &rules).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let a = AppleConfig {
            enabled: true,
            ..AppleConfig::default()
        };
        assert!(
            a.validate("a")
                .unwrap_err()
                .to_string()
                .contains("client_id")
        );
    }
}
