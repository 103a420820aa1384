//! Configuration of the token-verifying providers: `custom-token`, `oauth2-google`,
//! `oauth2-apple` and `oauth2-facebook`.
//!
//! Each table follows the rule of the other providers: absent means disabled; when
//! present, `enabled` defaults to `true`. Values are validated only for enabled
//! providers. Secrets (`signing_keys`, `client_secret`, `app_secret`) are redacted in
//! `Debug`.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ConfigError, yes};

/// Fewest and most `signing_keys` of `custom-token` (App Services allows up to 3).
pub const MAX_CUSTOM_TOKEN_KEYS: usize = 3;
/// Shortest accepted HS256 key of `custom-token`, in bytes (RFC 7518 §3.2; App Services).
pub const MIN_HS256_KEY_LEN: usize = 32;
/// Longest accepted HS256 key of `custom-token`, in bytes (App Services).
pub const MAX_HS256_KEY_LEN: usize = 512;
/// Default clock-skew leeway for `exp`, `nbf` and `iat`, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 60;
/// Largest accepted `leeway_secs`.
pub const MAX_LEEWAY_SECS: u64 = 300;
/// Longest accepted metadata `field_name` (App Services: shorter than 64).
pub const MAX_FIELD_NAME_LEN: usize = 63;
/// Google's JSON Web Key Set.
pub const GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";
/// Google's OAuth2 token endpoint (authorization-code exchange).
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// Apple's JSON Web Key Set.
pub const APPLE_JWKS_URL: &str = "https://appleid.apple.com/auth/keys";
/// Apple's ID token issuer.
pub const APPLE_ISSUER: &str = "https://appleid.apple.com";
/// Facebook's Graph API base URL.
pub const FACEBOOK_GRAPH_URL: &str = "https://graph.facebook.com";

/// The signing algorithm of custom JWTs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    /// HMAC-SHA256 with shared secrets.
    #[default]
    HS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, with RSA public keys (PEM or JWKS).
    RS256,
}

/// How a token's `aud` is matched against the configured `audience` list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudienceMatch {
    /// At least one configured audience must be in the token's `aud` (default).
    #[default]
    Any,
    /// Every configured audience must be in the token's `aud`.
    All,
}

/// One `metadata_fields` entry of `custom-token`: a claim copied into the profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataField {
    /// Dotted path into the token's claims, e.g. `user_data.name`; a literal dot in a
    /// claim name is written `\.` (e.g. `http://example\.com/id`).
    pub name: String,
    /// The key in the profile `data`; defaults to the last path segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_name: Option<String>,
    /// A token without this path is rejected (401 `AuthError`).
    #[serde(default)]
    pub required: bool,
}

impl MetadataField {
    /// The path segments of [`MetadataField::name`], with `\.` unescaped.
    pub fn path(&self) -> Vec<String> {
        let mut segments = Vec::new();
        let mut current = String::new();
        let mut chars = self.name.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(next) => current.push(next),
                    None => current.push('\\'),
                },
                '.' => segments.push(std::mem::take(&mut current)),
                c => current.push(c),
            }
        }
        segments.push(current);
        segments
    }

    /// The profile key: `field_name`, else the last path segment.
    pub fn target(&self) -> String {
        match &self.field_name {
            Some(f) => f.clone(),
            None => self.path().pop().unwrap_or_default(),
        }
    }
}

/// `[apps.providers.custom-token]`: log in with a JWT signed by your own auth system.
///
/// ```toml
/// [apps.providers.custom-token]
/// signing_algorithm = "HS256"          # or "RS256"
/// signing_keys = ["a-random-secret-of-at-least-32-bytes"]
/// audience = ["myapp"]                 # default: the app id
/// audience_match = "any"               # or "all"
/// issuer = "https://auth.example.org"  # optional
/// leeway_secs = 60
/// user_id_claim = "sub"
/// metadata_fields = [{ name = "user_data.name", field_name = "name", required = true }]
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomTokenConfig {
    /// Whether the provider accepts logins. True when the table is present and the key is not.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `"HS256"` (default) or `"RS256"`. Tokens signed with any other algorithm
    /// (including `none`) are rejected.
    #[serde(default)]
    pub signing_algorithm: SigningAlgorithm,
    /// 1-3 keys, every one tried (key rotation): HS256 secrets of 32-512 bytes, or RS256
    /// public keys in PEM (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`). Redacted in `Debug`.
    #[serde(default)]
    pub signing_keys: Vec<String>,
    /// RS256 only, instead of `signing_keys`: a URL serving a JWK Set (or one JWK);
    /// tokens must name their key with `kid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// Accepted audiences; empty (the default) means `[<app id>]`.
    #[serde(default)]
    pub audience: Vec<String>,
    /// Whether the token's `aud` must contain any (default) or all of `audience`.
    #[serde(default)]
    pub audience_match: AudienceMatch,
    /// When set, the token's `iss` must equal it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Clock-skew leeway for `exp`, `nbf` and `iat` in seconds (default 60, at most 300).
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// The claim holding the external user id (default `sub`); string or integer.
    #[serde(default = "default_user_id_claim")]
    pub user_id_claim: String,
    /// Claims copied into the profile `data` at login.
    #[serde(default)]
    pub metadata_fields: Vec<MetadataField>,
}

impl Default for CustomTokenConfig {
    fn default() -> Self {
        CustomTokenConfig {
            enabled: false,
            signing_algorithm: SigningAlgorithm::HS256,
            signing_keys: Vec::new(),
            jwks_url: None,
            audience: Vec::new(),
            audience_match: AudienceMatch::Any,
            issuer: None,
            leeway_secs: DEFAULT_LEEWAY_SECS,
            user_id_claim: default_user_id_claim(),
            metadata_fields: Vec::new(),
        }
    }
}

/// `[apps.providers.oauth2-google]`: log in with a Google ID token or server auth code.
///
/// ```toml
/// [apps.providers.oauth2-google]
/// client_id = "1234-abc.apps.googleusercontent.com"
/// client_secret = "GOCSPX-..."      # needed only for authCode logins
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The client secret, needed only for `authCode` logins. Redacted in `Debug`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
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
        }
    }
}

/// `[apps.providers.oauth2-apple]`: log in with a Sign in with Apple ID token.
///
/// ```toml
/// [apps.providers.oauth2-apple]
/// client_id = "com.example.app"     # bundle id (mobile) or services id (web)
/// client_ids = ["com.example.web"]  # optional, more accepted audiences
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        }
    }
}

/// `[apps.providers.oauth2-facebook]`: log in with a Facebook user access token.
///
/// ```toml
/// [apps.providers.oauth2-facebook]
/// app_id = "1234567890"
/// app_secret = "..."
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FacebookConfig {
    /// Whether the provider accepts logins. True when the table is present and the key is not.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The Facebook App ID; tokens issued to any other app are rejected.
    #[serde(default)]
    pub app_id: String,
    /// The App Secret (for the `debug_token` app token). Redacted in `Debug`.
    #[serde(default)]
    pub app_secret: String,
    /// Graph API base URL, optionally with a version (default [`FACEBOOK_GRAPH_URL`]).
    #[serde(default = "default_graph_url")]
    pub graph_url: String,
    /// User fields read from `/me` (default id, name, email, first_name, last_name, picture).
    #[serde(default = "default_facebook_fields")]
    pub fields: Vec<String>,
}

impl Default for FacebookConfig {
    fn default() -> Self {
        FacebookConfig {
            enabled: false,
            app_id: String::new(),
            app_secret: String::new(),
            graph_url: default_graph_url(),
            fields: default_facebook_fields(),
        }
    }
}

fn default_leeway() -> u64 {
    DEFAULT_LEEWAY_SECS
}
fn default_user_id_claim() -> String {
    "sub".to_owned()
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
fn default_apple_jwks() -> String {
    APPLE_JWKS_URL.to_owned()
}
fn default_apple_issuer() -> String {
    APPLE_ISSUER.to_owned()
}
fn default_graph_url() -> String {
    FACEBOOK_GRAPH_URL.to_owned()
}
fn default_facebook_fields() -> Vec<String> {
    ["id", "name", "email", "first_name", "last_name", "picture"]
        .map(str::to_owned)
        .to_vec()
}

fn invalid<T>(app: &str, provider: &str, message: impl fmt::Display) -> Result<T, ConfigError> {
    Err(ConfigError::Invalid(format!(
        "app {app:?}: [apps.providers.{provider}] {message}"
    )))
}

/// An absolute `http://` or `https://` URL without spaces.
fn check_url(app: &str, provider: &str, key: &str, url: &str) -> Result<(), ConfigError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') && !url.contains(char::is_whitespace) => {
            Ok(())
        }
        _ => invalid(
            app,
            provider,
            format!("{key} must be an absolute http:// or https:// URL, got {url:?}"),
        ),
    }
}

fn check_leeway(app: &str, provider: &str, leeway: u64) -> Result<(), ConfigError> {
    if leeway > MAX_LEEWAY_SECS {
        return invalid(
            app,
            provider,
            format!("leeway_secs must be at most {MAX_LEEWAY_SECS}, got {leeway}"),
        );
    }
    Ok(())
}

fn check_non_empty(
    app: &str,
    provider: &str,
    key: &str,
    values: &[String],
) -> Result<(), ConfigError> {
    if values.iter().any(|v| v.trim().is_empty()) {
        return invalid(
            app,
            provider,
            format!("{key} must not contain empty strings"),
        );
    }
    Ok(())
}

impl CustomTokenConfig {
    /// Check the values (when enabled). `app` names the app in messages.
    pub fn validate(&self, app: &str) -> Result<(), ConfigError> {
        const P: &str = "custom-token";
        if !self.enabled {
            return Ok(());
        }
        let keys = self.signing_keys.len();
        if keys > MAX_CUSTOM_TOKEN_KEYS {
            return invalid(
                app,
                P,
                format!("at most {MAX_CUSTOM_TOKEN_KEYS} signing_keys are allowed, got {keys}"),
            );
        }
        match self.signing_algorithm {
            SigningAlgorithm::HS256 => {
                if self.jwks_url.is_some() {
                    return invalid(app, P, "jwks_url requires signing_algorithm = \"RS256\"");
                }
                if keys == 0 {
                    return invalid(app, P, "HS256 needs 1-3 signing_keys");
                }
                for (i, key) in self.signing_keys.iter().enumerate() {
                    if !(MIN_HS256_KEY_LEN..=MAX_HS256_KEY_LEN).contains(&key.len()) {
                        return invalid(
                            app,
                            P,
                            format!(
                                "signing_keys[{i}] must be {MIN_HS256_KEY_LEN}-{MAX_HS256_KEY_LEN} \
                                 bytes long (got {}); generate one with e.g. `openssl rand -hex 32`",
                                key.len()
                            ),
                        );
                    }
                }
            }
            SigningAlgorithm::RS256 => match (&self.jwks_url, keys) {
                (Some(_), 1..) => {
                    return invalid(app, P, "set either signing_keys or jwks_url, not both");
                }
                (Some(url), 0) => check_url(app, P, "jwks_url", url)?,
                (None, 0) => {
                    return invalid(
                        app,
                        P,
                        "RS256 needs 1-3 signing_keys (PEM public keys) or a jwks_url",
                    );
                }
                (None, _) => {
                    for (i, key) in self.signing_keys.iter().enumerate() {
                        if let Err(e) = crate::providers::oidc::rsa_key_from_pem(key) {
                            return invalid(app, P, format!("signing_keys[{i}]: {e}"));
                        }
                    }
                }
            },
        }
        check_non_empty(app, P, "audience", &self.audience)?;
        if let Some(iss) = &self.issuer
            && iss.trim().is_empty()
        {
            return invalid(app, P, "issuer must not be empty");
        }
        check_leeway(app, P, self.leeway_secs)?;
        if self.user_id_claim.trim().is_empty() {
            return invalid(app, P, "user_id_claim must not be empty");
        }
        let mut targets = HashSet::new();
        for field in &self.metadata_fields {
            if field.name.is_empty() || field.path().iter().any(String::is_empty) {
                return invalid(
                    app,
                    P,
                    format!(
                        "metadata field name {:?} is not a valid dotted path",
                        field.name
                    ),
                );
            }
            let target = field.target();
            if target.is_empty() || target.chars().count() > MAX_FIELD_NAME_LEN {
                return invalid(
                    app,
                    P,
                    format!(
                        "metadata field_name {target:?} must be 1-{MAX_FIELD_NAME_LEN} characters"
                    ),
                );
            }
            if !targets.insert(target.clone()) {
                return invalid(app, P, format!("duplicate metadata field_name {target:?}"));
            }
        }
        Ok(())
    }
}

impl GoogleConfig {
    /// Check the values (when enabled). `app` names the app in messages.
    pub fn validate(&self, app: &str) -> Result<(), ConfigError> {
        const P: &str = "oauth2-google";
        if !self.enabled {
            return Ok(());
        }
        if self.client_id.trim().is_empty() {
            return invalid(app, P, "client_id is required");
        }
        check_non_empty(app, P, "client_ids", &self.client_ids)?;
        if let Some(secret) = &self.client_secret
            && secret.is_empty()
        {
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

impl AppleConfig {
    /// Check the values (when enabled). `app` names the app in messages.
    pub fn validate(&self, app: &str) -> Result<(), ConfigError> {
        const P: &str = "oauth2-apple";
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

impl FacebookConfig {
    /// Check the values (when enabled). `app` names the app in messages.
    pub fn validate(&self, app: &str) -> Result<(), ConfigError> {
        const P: &str = "oauth2-facebook";
        if !self.enabled {
            return Ok(());
        }
        if self.app_id.trim().is_empty() || !self.app_id.chars().all(|c| c.is_ascii_digit()) {
            return invalid(
                app,
                P,
                "app_id is required and must be the numeric Facebook App ID",
            );
        }
        if self.app_secret.is_empty() {
            return invalid(app, P, "app_secret is required");
        }
        check_url(app, P, "graph_url", &self.graph_url)?;
        if self.graph_url.contains(['?', '#']) {
            return invalid(app, P, "graph_url must not contain a query or fragment");
        }
        for field in &self.fields {
            let ok = !field.is_empty()
                && field
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '(' | ')'));
            if !ok {
                return invalid(app, P, format!("invalid Graph API field {field:?}"));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for CustomTokenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomTokenConfig")
            .field("enabled", &self.enabled)
            .field("signing_algorithm", &self.signing_algorithm)
            .field(
                "signing_keys",
                &format_args!("<{} redacted>", self.signing_keys.len()),
            )
            .field("jwks_url", &self.jwks_url)
            .field("audience", &self.audience)
            .field("audience_match", &self.audience_match)
            .field("issuer", &self.issuer)
            .field("leeway_secs", &self.leeway_secs)
            .field("user_id_claim", &self.user_id_claim)
            .field("metadata_fields", &self.metadata_fields)
            .finish()
    }
}

impl fmt::Debug for GoogleConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoogleConfig")
            .field("enabled", &self.enabled)
            .field("client_id", &self.client_id)
            .field("client_ids", &self.client_ids)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("redirect_uri", &self.redirect_uri)
            .field("jwks_url", &self.jwks_url)
            .field("token_url", &self.token_url)
            .field("issuers", &self.issuers)
            .field("leeway_secs", &self.leeway_secs)
            .finish()
    }
}

impl fmt::Debug for FacebookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FacebookConfig")
            .field("enabled", &self.enabled)
            .field("app_id", &self.app_id)
            .field("app_secret", &"<redacted>")
            .field("graph_url", &self.graph_url)
            .field("fields", &self.fields)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_paths() {
        let f = |name: &str| MetadataField {
            name: name.to_owned(),
            field_name: None,
            required: false,
        };
        assert_eq!(f("user_data.name").path(), ["user_data", "name"]);
        assert_eq!(f("user_data.name").target(), "name");
        assert_eq!(
            f(r"http://example\.com/id").path(),
            ["http://example.com/id"]
        );
        assert_eq!(f(r"a\.b.c").path(), ["a.b", "c"]);
    }

    #[test]
    fn debug_redacts() {
        let c = CustomTokenConfig {
            signing_keys: vec!["super-secret-key-super-secret-key".into()],
            ..CustomTokenConfig::default()
        };
        assert!(!format!("{c:?}").contains("super-secret"));
        let g = GoogleConfig {
            client_secret: Some("GOCSPX-secret".into()),
            ..GoogleConfig::default()
        };
        assert!(!format!("{g:?}").contains("GOCSPX"));
        let fb = FacebookConfig {
            app_secret: "fbsecret".into(),
            ..FacebookConfig::default()
        };
        assert!(!format!("{fb:?}").contains("fbsecret"));
    }

    #[test]
    fn validation_errors_are_clear() {
        let mut c = CustomTokenConfig {
            enabled: true,
            signing_keys: vec!["short".into()],
            ..CustomTokenConfig::default()
        };
        let e = c.validate("a").unwrap_err().to_string();
        assert!(e.contains("signing_keys[0] must be 32-512 bytes"), "{e}");
        c.signing_keys = vec!["k".repeat(32); 4];
        assert!(
            c.validate("a")
                .unwrap_err()
                .to_string()
                .contains("at most 3")
        );
        c.signing_keys = vec!["k".repeat(32)];
        c.leeway_secs = 301;
        assert!(
            c.validate("a")
                .unwrap_err()
                .to_string()
                .contains("leeway_secs")
        );
        c.leeway_secs = 60;
        assert!(c.validate("a").is_ok());
        c.signing_algorithm = SigningAlgorithm::RS256;
        let e = c.validate("a").unwrap_err().to_string();
        assert!(e.contains("signing_keys[0]"), "{e}");
        c.signing_keys.clear();
        c.jwks_url = Some("ftp://x".into());
        assert!(
            c.validate("a")
                .unwrap_err()
                .to_string()
                .contains("jwks_url")
        );
        c.jwks_url = Some("https://idp.example/jwks".into());
        assert!(c.validate("a").is_ok());
        c.metadata_fields = vec![
            MetadataField {
                name: "a.name".into(),
                field_name: None,
                required: false,
            },
            MetadataField {
                name: "b.name".into(),
                field_name: None,
                required: false,
            },
        ];
        assert!(
            c.validate("a")
                .unwrap_err()
                .to_string()
                .contains("duplicate")
        );

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
        let fb = FacebookConfig {
            enabled: true,
            app_id: "12".into(),
            ..FacebookConfig::default()
        };
        assert!(
            fb.validate("a")
                .unwrap_err()
                .to_string()
                .contains("app_secret")
        );
        // Disabled tables are not checked.
        assert!(GoogleConfig::default().validate("a").is_ok());
    }
}
