//! The `api-key` provider: logging in with a user API key (created by a user through
//! the client API, logs in as that user) or a server API key (created by an admin,
//! each with its own server user). Creating and managing keys is a domain flow
//! (`auth::api_keys`); this module owns the key format and verifies a login.
//!
//! A key is 64 characters: its 24-hex id followed by 40 random alphanumeric
//! characters (about 238 bits). Only the SHA-256 of the whole key is stored; a login
//! looks the record up by the id prefix (not secret) and compares the hashes in
//! constant time. Keys are high-entropy, so no slow password hash is needed.
//!
//! Every key has an `api-key` identity whose id is the key id: on the creating user
//! for a user key, on the server user for a server key. Logging in with a key proves
//! that identity, so the usual login path finds the right user.

use async_trait::async_trait;
use latchkey_protocol::{LoginBody, ObjectId, ProviderType};
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde::{Deserialize, Serialize};
use serde_json::Map;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::common::{Provider, ProviderContext, VerifiedIdentity, required_str};
use crate::error::Error;
use crate::ids::sha256_hex;
use crate::settings::{ConfigError, yes};

/// Length of a key: 24-hex id + random part.
pub(crate) const KEY_LEN: usize = 64;
const ID_LEN: usize = 24;

/// API key provider settings (`[apps.providers.api-key]`: user keys through the client
/// API, server keys through the admin API).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Whether API keys can log in and users can manage their keys. True when the table
    /// is present and the key is not.
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// The stored form of a key: lowercase hex SHA-256.
pub(crate) fn hash_key(key: &str) -> String {
    sha256_hex(key)
}

/// A new key for `id`: the id then 40 random alphanumeric characters.
pub(crate) fn new_key(id: &str) -> String {
    let secret: String = rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(KEY_LEN - ID_LEN)
        .map(char::from)
        .collect();
    format!("{id}{secret}")
}

/// The canonical (lowercase) form of a key id from a URL, or `None` when malformed.
pub(crate) fn parse_key_id(raw: &str) -> Option<String> {
    raw.parse::<ObjectId>().ok().map(|id| id.to_string())
}

/// 401 `AuthError` "invalid API key": unknown, wrong, disabled or deleted key.
fn invalid_key() -> Error {
    Error::auth_failed("invalid API key")
}

/// The `api-key` provider.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApiKey;

#[async_trait]
impl Provider for ApiKey {
    const NAME: &'static str = ProviderType::ApiKey.as_str();
    type Config = ApiKeyConfig;

    fn enabled(&self, config: &ApiKeyConfig) -> bool {
        config.enabled
    }

    fn validate(&self, _config: &ApiKeyConfig, _app_id: &str) -> Result<(), ConfigError> {
        Ok(())
    }

    /// Verify `{"key": K}`: the identity is the key's `api-key` identity. Unknown,
    /// wrong, disabled and deleted keys are all 401 `AuthError` "invalid API key".
    async fn authenticate(
        &self,
        ctx: &ProviderContext<'_>,
        _config: &ApiKeyConfig,
        body: &LoginBody,
    ) -> Result<VerifiedIdentity, Error> {
        let key = required_str(body, "key")?;
        let presented = Sha256::digest(key.as_bytes());
        let record = match key.get(..ID_LEN).and_then(parse_key_id) {
            Some(id) if key.len() == KEY_LEN => ctx.store.get_api_key(ctx.app_id, &id).await?,
            _ => None,
        };
        let Some(record) = record else {
            return Err(invalid_key());
        };
        let stored = hex::decode(record.hash.expose()).unwrap_or_default();
        let matches: bool = presented.as_slice().ct_eq(stored.as_slice()).into();
        if !matches {
            return Err(invalid_key());
        }
        if record.disabled {
            tracing::debug!(app = ctx.app_id, key = %record.id, "disabled API key refused");
            return Err(invalid_key());
        }
        Ok(VerifiedIdentity {
            provider: Self::NAME,
            id: record.id,
            data: Map::new(),
        })
    }

    fn link_refusal(&self) -> Option<&'static str> {
        Some("cannot link an API key: API keys always log in as their own user")
    }

    fn enable_for_dev(&self, config: &mut ApiKeyConfig) {
        config.enabled = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_embed_their_id() {
        let id = "0123456789abcdef01234567";
        let k = new_key(id);
        assert_eq!(k.len(), KEY_LEN);
        assert!(k.starts_with(id));
        assert!(k.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(new_key(id), k);
        assert_eq!(hash_key(&k).len(), 64);
    }

    #[test]
    fn key_ids() {
        assert_eq!(
            parse_key_id("0123456789ABCDEF01234567").as_deref(),
            Some("0123456789abcdef01234567")
        );
        assert!(parse_key_id("nope").is_none());
        assert!(parse_key_id("0123456789abcdef0123456z").is_none());
    }
}
