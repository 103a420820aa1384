//! `oauth2-google`: a Google ID token (`id_token`, OpenID Connect) or a server auth
//! code (`authCode`) exchanged at Google's token endpoint for an ID token. Either way
//! the ID token is verified the same way: RS256 against Google's JWKS, `iss` one of
//! the configured issuers, `aud` one of the client ids, `exp`, `nbf`, `iat`.
//! The identity id is `sub`.

use async_trait::async_trait;
use latchkey_protocol::{LoginBody, ProviderType, Secret};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{Provider, ProviderContext, VerifiedIdentity};
use super::exchange::exchange_for_id_token;
use super::oidc::{self, DEFAULT_LEEWAY_SECS, Rules, check_leeway, default_leeway};
use super::redirect::{Exchange, RedirectFlow, check_redirect_uris};
use crate::error::Error;
use crate::settings::{
    ConfigError, check_non_empty, check_url, expose_optional_secret, invalid, yes,
};

/// Google's JSON Web Key Set.
pub const GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";
/// Google's OAuth2 token endpoint (authorization-code exchange).
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// Google's OAuth2 authorization endpoint (the browser redirect flow).
pub const GOOGLE_AUTHORIZATION_URL: &str = "https://accounts.google.com/o/oauth2/v2/auth";

const LABEL: &str = "Google";

/// `[apps.providers.oauth2-google]`: log in with a Google ID token or server auth code.
///
/// ```toml
/// [apps.providers.oauth2-google]
/// client_id = "1234-abc.apps.googleusercontent.com"
/// client_secret = "GOCSPX-..."      # needed only for authCode logins
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleConfig {
    /// Whether the provider accepts logins. True when the table is present and the key is not.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The OAuth client id: the expected `aud` of ID tokens and the client of code exchanges.
    #[serde(default)]
    pub client_id: String,
    /// More accepted `aud` values (e.g. the iOS and Android client ids).
    #[serde(default)]
    pub client_ids: Vec<String>,
    /// The client secret, needed only for `authCode` logins.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose_optional_secret"
    )]
    pub client_secret: Option<Secret>,
    /// `redirect_uri` sent in the code exchange (default `postmessage`).
    #[serde(default = "default_google_redirect")]
    pub redirect_uri: String,
    /// Google's JWK Set (default [`GOOGLE_JWKS_URL`]).
    #[serde(default = "default_google_jwks")]
    pub jwks_url: String,
    /// Google's token endpoint (default [`GOOGLE_TOKEN_URL`]).
    #[serde(default = "default_google_token")]
    pub token_url: String,
    /// Accepted `iss` values (default `https://accounts.google.com` and `accounts.google.com`).
    #[serde(default = "default_google_issuers")]
    pub issuers: Vec<String>,
    /// Clock-skew leeway for `exp`, `nbf` and `iat` in seconds (default 60, at most 300).
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// The browser redirect flow's allowed final redirect URIs (exact match); empty
    /// (the default) turns the flow off. The flow needs `client_secret`.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Google's authorization endpoint (default [`GOOGLE_AUTHORIZATION_URL`]).
    #[serde(default = "default_google_authorization")]
    pub authorization_url: String,
}

impl Default for GoogleConfig {
    fn default() -> Self {
        GoogleConfig {
            enabled: false,
            client_id: String::new(),
            client_ids: Vec::new(),
            client_secret: None,
            redirect_uri: default_google_redirect(),
            jwks_url: default_google_jwks(),
            token_url: default_google_token(),
            issuers: default_google_issuers(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
            redirect_uris: Vec::new(),
            authorization_url: default_google_authorization(),
        }
    }
}

fn default_google_authorization() -> String {
    GOOGLE_AUTHORIZATION_URL.to_owned()
}

fn default_google_redirect() -> String {
    "postmessage".to_owned()
}

fn default_google_jwks() -> String {
    GOOGLE_JWKS_URL.to_owned()
}

fn default_google_token() -> String {
    GOOGLE_TOKEN_URL.to_owned()
}

fn default_google_issuers() -> Vec<String> {
    vec![
        "https://accounts.google.com".to_owned(),
        "accounts.google.com".to_owned(),
    ]
}

impl GoogleConfig {
    /// Check the values (when enabled). `app` names the app in messages.
    pub fn validate(&self, app: &str) -> Result<(), ConfigError> {
        const P: &str = Google::NAME;
        if !self.enabled {
            return Ok(());
        }
        if self.client_id.trim().is_empty() {
            return invalid(app, P, "client_id is required");
        }
        check_non_empty(app, P, "client_ids", &self.client_ids)?;
        if self.client_secret.as_ref().is_some_and(Secret::is_empty) {
            return invalid(app, P, "client_secret must not be empty when set");
        }
        check_url(app, P, "jwks_url", &self.jwks_url)?;
        check_url(app, P, "token_url", &self.token_url)?;
        if self.issuers.is_empty() {
            return invalid(app, P, "issuers must not be empty");
        }
        check_non_empty(app, P, "issuers", &self.issuers)?;
        if self.redirect_uri.is_empty() {
            return invalid(app, P, "redirect_uri must not be empty");
        }
        check_url(app, P, "authorization_url", &self.authorization_url)?;
        let needs = self.client_secret.is_none().then_some("client_secret");
        check_redirect_uris(app, P, &self.redirect_uris, needs)?;
        check_leeway(app, P, self.leeway_secs)
    }

    /// Every accepted `aud`: `client_id` then `client_ids`.
    pub fn audiences(&self) -> Vec<String> {
        std::iter::once(self.client_id.clone())
            .chain(self.client_ids.iter().cloned())
            .filter(|a| !a.is_empty())
            .collect()
    }
}

/// The `oauth2-google` provider.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Google;

#[async_trait]
impl Provider for Google {
    const NAME: &'static str = ProviderType::Google.as_str();
    type Config = GoogleConfig;

    fn enabled(&self, config: &GoogleConfig) -> bool {
        config.enabled
    }

    fn validate(&self, config: &GoogleConfig, app_id: &str) -> Result<(), ConfigError> {
        config.validate(app_id)
    }

    /// Check a login body `{id_token}` or `{authCode}`.
    async fn authenticate(
        &self,
        ctx: &ProviderContext<'_>,
        config: &GoogleConfig,
        body: &LoginBody,
    ) -> Result<VerifiedIdentity, Error> {
        let id_token = match (body.get("id_token"), body.get("authCode")) {
            (Some(Value::String(t)), _) => t.clone(),
            (None, Some(Value::String(code))) => exchange_code(ctx, config, code).await?,
            (Some(_), _) => return Err(Error::bad_request("'id_token' must be a string")),
            (None, Some(_)) => return Err(Error::bad_request("'authCode' must be a string")),
            (None, None) => {
                return Err(Error::bad_request(
                    "missing required field 'id_token' or 'authCode'",
                ));
            }
        };
        let audiences = config.audiences();
        let rules = Rules::id_token(LABEL, &audiences, &config.issuers, config.leeway_secs);
        oidc::verify_id_token(ctx, Self::NAME, &id_token, &config.jwks_url, &rules).await
    }

    /// Authorization code with PKCE, `openid email profile`.
    fn redirect_flow<'c>(&self, config: &'c GoogleConfig) -> Option<RedirectFlow<'c>> {
        if config.redirect_uris.is_empty() {
            return None;
        }
        Some(RedirectFlow {
            label: LABEL,
            authorization_url: &config.authorization_url,
            client_id: &config.client_id,
            scope: "openid email profile",
            pkce: true,
            form_post: false,
            redirect_uris: &config.redirect_uris,
            exchange: Exchange::IdToken {
                token_url: &config.token_url,
                client_secret: config.client_secret.as_ref()?,
            },
        })
    }
}

/// Exchange a server auth code for an ID token at `token_url`. Neither the code nor
/// the client secret ever appears in a message or log.
async fn exchange_code(
    ctx: &ProviderContext<'_>,
    config: &GoogleConfig,
    code: &str,
) -> Result<String, Error> {
    let Some(secret) = config.client_secret.as_ref() else {
        return Err(Error::auth_failed(
            "Google: authCode login is not configured (client_secret missing)",
        ));
    };
    if code.is_empty() || code.len() > 4096 {
        return Err(Error::auth_failed("Google: authorization code rejected"));
    }
    exchange_for_id_token(
        ctx,
        LABEL,
        &config.token_url,
        &config.client_id,
        secret,
        &config.redirect_uri,
        code,
        None,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_and_validation() {
        let g = GoogleConfig {
            client_secret: Some("GOCSPX-secret".into()),
            ..GoogleConfig::default()
        };
        assert!(!format!("{g:?}").contains("GOCSPX"));
        let g = GoogleConfig {
            enabled: true,
            ..GoogleConfig::default()
        };
        assert!(
            g.validate("a")
                .unwrap_err()
                .to_string()
                .contains("client_id")
        );
        // Disabled tables are not checked.
        assert!(GoogleConfig::default().validate("a").is_ok());
    }
}
