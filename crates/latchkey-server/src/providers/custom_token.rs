//! `custom-token`: a JWT signed by the app's own authentication system (HS256 with
//! shared secrets, or RS256 with PEM public keys or a JWKS), as App Services' Custom
//! JWT provider. Verification rules: [`super::oidc`]. The identity id is the
//! `user_id_claim` (default `sub`); `metadata_fields` are copied into the profile.

use std::collections::HashSet;

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey};
use latchkey_protocol::{LoginBody, ProviderType, Secret};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{Provider, ProviderContext, VerifiedIdentity, required_str};
use super::oidc::{
    self, AudienceMatch, DEFAULT_LEEWAY_SECS, Keys, Rules, check_leeway, default_leeway,
};
use crate::error::Error;
use crate::ids::random_secret;
use crate::settings::{ConfigError, check_non_empty, check_url, expose_secrets, invalid, yes};

/// Most `signing_keys` of `custom-token` (App Services allows up to 3).
pub const MAX_CUSTOM_TOKEN_KEYS: usize = 3;
/// Shortest accepted HS256 key of `custom-token`, in bytes (RFC 7518 §3.2; App Services).
pub const MIN_HS256_KEY_LEN: usize = 32;
/// Longest accepted HS256 key of `custom-token`, in bytes (App Services).
pub const MAX_HS256_KEY_LEN: usize = 512;
/// Longest accepted metadata `field_name` (App Services: shorter than 64).
pub const MAX_FIELD_NAME_LEN: usize = 63;
/// Message prefix of every rejection.
const LABEL: &str = "custom JWT";
/// Longest accepted metadata value, in characters (App Services).
pub(crate) const MAX_METADATA_CHARS: usize = 4096;

/// The signing algorithm of custom JWTs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    /// HMAC-SHA256 with shared secrets.
    #[default]
    HS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, with RSA public keys (PEM or JWKS).
    RS256,
}

/// One `metadata_fields` entry of `custom-token`: a claim copied into the profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomTokenConfig {
    /// Whether the provider accepts logins. True when the table is present and the key is not.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `"HS256"` (default) or `"RS256"`. Tokens signed with any other algorithm
    /// (including `none`) are rejected.
    #[serde(default)]
    pub signing_algorithm: SigningAlgorithm,
    /// 1-3 keys, every one tried (key rotation): HS256 secrets of 32-512 bytes, or RS256
    /// public keys in PEM (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`).
    #[serde(default, serialize_with = "expose_secrets")]
    pub signing_keys: Vec<Secret>,
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

fn default_user_id_claim() -> String {
    "sub".to_owned()
}

impl CustomTokenConfig {
    /// Check the values (when enabled). `app` names the app in messages.
    pub fn validate(&self, app: &str) -> Result<(), ConfigError> {
        const P: &str = CustomToken::NAME;
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
                        if let Err(e) = oidc::rsa_key_from_pem(key.expose()) {
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

/// The `custom-token` provider.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CustomToken;

#[async_trait]
impl Provider for CustomToken {
    const NAME: &'static str = ProviderType::CustomJwt.as_str();
    type Config = CustomTokenConfig;

    fn enabled(&self, config: &CustomTokenConfig) -> bool {
        config.enabled
    }

    fn validate(&self, config: &CustomTokenConfig, app_id: &str) -> Result<(), ConfigError> {
        config.validate(app_id)
    }

    /// Check a login body `{token}`.
    async fn authenticate(
        &self,
        ctx: &ProviderContext<'_>,
        config: &CustomTokenConfig,
        body: &LoginBody,
    ) -> Result<VerifiedIdentity, Error> {
        let token = required_str(body, "token")?;
        let default_audience;
        let audiences = if config.audience.is_empty() {
            default_audience = [ctx.app_id.to_owned()];
            &default_audience[..]
        } else {
            &config.audience[..]
        };
        let issuers: Vec<String> = config.issuer.iter().cloned().collect();
        let rules = Rules {
            label: LABEL,
            what: "token",
            algorithm: match config.signing_algorithm {
                SigningAlgorithm::HS256 => Algorithm::HS256,
                SigningAlgorithm::RS256 => Algorithm::RS256,
            },
            audiences,
            audience_match: config.audience_match,
            issuers: &issuers,
            leeway_secs: config.leeway_secs,
        };
        let static_keys;
        let keys = match (&config.jwks_url, config.signing_algorithm) {
            (Some(url), SigningAlgorithm::RS256) => Keys::Jwks(url),
            _ => {
                static_keys = decoding_keys(config)?;
                Keys::Static(&static_keys)
            }
        };
        let claims = oidc::verify(ctx, token, keys, &rules).await?;
        let id = oidc::subject(LABEL, &claims, &config.user_id_claim)?;
        let data = metadata(config, &claims)?;
        Ok(VerifiedIdentity {
            provider: Self::NAME,
            id,
            data,
        })
    }

    /// HS256 needs no outside service: a fresh random key, readable as
    /// `providers.custom_token.signing_keys[0]` so the dev command can print it.
    fn enable_for_dev(&self, config: &mut CustomTokenConfig) {
        config.enabled = true;
        if config.signing_keys.is_empty() && config.jwks_url.is_none() {
            config.signing_algorithm = SigningAlgorithm::HS256;
            config.signing_keys = vec![random_secret().into()];
        }
    }
}

/// The configured keys (validated when the configuration was loaded).
fn decoding_keys(config: &CustomTokenConfig) -> Result<Vec<DecodingKey>, Error> {
    config
        .signing_keys
        .iter()
        .map(|k| match config.signing_algorithm {
            SigningAlgorithm::HS256 => DecodingKey::from_secret(k.expose().as_bytes())
                .map_err(|_| Error::internal(&"custom-token: unusable HS256 key")),
            SigningAlgorithm::RS256 => oidc::rsa_key_from_pem(k.expose())
                .map_err(|_| Error::internal(&"custom-token: unusable RS256 key")),
        })
        .collect()
}

/// The `metadata_fields` of verified claims, as profile data (strings).
fn metadata(
    config: &CustomTokenConfig,
    claims: &Map<String, Value>,
) -> Result<Map<String, Value>, Error> {
    let mut data = Map::new();
    for field in &config.metadata_fields {
        let mut value = None;
        let mut current: Option<&Map<String, Value>> = Some(claims);
        let path = field.path();
        for (i, segment) in path.iter().enumerate() {
            let Some(v) = current.and_then(|m| m.get(segment)) else {
                break;
            };
            if i + 1 == path.len() {
                value = Some(v);
            } else {
                current = v.as_object();
            }
        }
        let text = match value {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        match text {
            Some(t) if t.chars().count() > MAX_METADATA_CHARS => {
                return Err(Error::auth_failed(format!(
                    "{LABEL}: metadata field '{}' exceeds {MAX_METADATA_CHARS} characters",
                    field.name
                )));
            }
            Some(t) => {
                data.insert(field.target(), Value::String(t));
            }
            None if field.required => {
                return Err(Error::auth_failed(format!(
                    "{LABEL}: required metadata field '{}' is missing",
                    field.name
                )));
            }
            None => {}
        }
    }
    Ok(data)
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
        c.signing_keys = vec!["k".repeat(32).into(); 4];
        assert!(
            c.validate("a")
                .unwrap_err()
                .to_string()
                .contains("at most 3")
        );
        c.signing_keys = vec!["k".repeat(32).into()];
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
    }
}
