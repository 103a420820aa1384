//! `custom-token`: a JWT signed by the app's own authentication system (HS256 with
//! shared secrets, or RS256 with PEM public keys or a JWKS), as App Services' Custom
//! JWT provider. Verification rules: [`super::oidc`]. The identity id is the
//! `user_id_claim` (default `sub`); `metadata_fields` are copied into the profile.

use jsonwebtoken::{Algorithm, DecodingKey};
use latchkey_protocol::{LoginBody, ProviderType};
use serde_json::{Map, Value};

use super::oidc::{self, Keys, Rules};
use super::{ProviderContext, VerifiedIdentity, required_str};
use crate::config::{CustomTokenConfig, SigningAlgorithm};
use crate::error::ApiError;

/// Message prefix of every rejection.
const LABEL: &str = "custom JWT";
/// Longest accepted metadata value, in characters (App Services).
pub(crate) const MAX_METADATA_CHARS: usize = 4096;

/// Check a login body `{token}`.
pub(crate) async fn authenticate(
    ctx: ProviderContext<'_>,
    body: &LoginBody,
) -> Result<VerifiedIdentity, ApiError> {
    let token = required_str(body, "token")?;
    let config = &ctx.app.config.providers.custom_token;
    let default_audience;
    let audiences = if config.audience.is_empty() {
        default_audience = [ctx.app.id().to_owned()];
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
    let claims = oidc::verify(ctx.state, token, keys, &rules).await?;
    let id = oidc::subject(LABEL, &claims, &config.user_id_claim)?;
    let data = metadata(config, &claims)?;
    Ok(VerifiedIdentity {
        provider: ProviderType::CustomJwt,
        id,
        data,
    })
}

/// The configured keys (validated when the configuration was loaded).
fn decoding_keys(config: &CustomTokenConfig) -> Result<Vec<DecodingKey>, ApiError> {
    config
        .signing_keys
        .iter()
        .map(|k| match config.signing_algorithm {
            SigningAlgorithm::HS256 => DecodingKey::from_secret(k.as_bytes())
                .map_err(|_| ApiError::internal(&"custom-token: unusable HS256 key")),
            SigningAlgorithm::RS256 => oidc::rsa_key_from_pem(k)
                .map_err(|_| ApiError::internal(&"custom-token: unusable RS256 key")),
        })
        .collect()
}

/// The `metadata_fields` of verified claims, as profile data (strings).
fn metadata(
    config: &CustomTokenConfig,
    claims: &Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
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
                return Err(ApiError::auth_error(format!(
                    "{LABEL}: metadata field '{}' exceeds {MAX_METADATA_CHARS} characters",
                    field.name
                )));
            }
            Some(t) => {
                data.insert(field.target(), Value::String(t));
            }
            None if field.required => {
                return Err(ApiError::auth_error(format!(
                    "{LABEL}: required metadata field '{}' is missing",
                    field.name
                )));
            }
            None => {}
        }
    }
    Ok(data)
}
