//! Each app's access-token signing keys: the `[[apps.signing_keys]]` tables.
//!
//! Without any, an app signs its access tokens with its HS256 `signing_secret`, as
//! before. With some, exactly one is `active` (it signs new access tokens) and the
//! others only verify, each until its `verify_until` (Unix seconds) when set: that is
//! how a key is rotated without logging anyone out (see docs/tokens.md). Refresh
//! tokens are always signed with `signing_secret`: they never leave the server and
//! the client, and live for weeks, so rotating the public keys never touches them.
//!
//! The keys live in the configuration (inline or as files), not in the database:
//! every node already reads the same configuration (the `signing_secret` is there), a
//! database backup then holds no key that can forge tokens, and a rotation is an
//! ordinary, reviewable configuration change rolled out to every node.
//!
//! Reading the private key files (and their permission check) happens when the
//! server starts ([`crate::tokens::KeyRing::load`]); [`SigningKeyConfig::validate`]
//! checks what needs no file.

use std::fmt;
use std::path::PathBuf;

use latchkey_protocol::Secret;
use serde::{Deserialize, Serialize};

use crate::settings::{ConfigError, expose_optional_secret};

/// Most `[[apps.signing_keys]]` entries per app.
pub const MAX_SIGNING_KEYS: usize = 16;

/// A JWS algorithm an app may sign its access tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TokenAlgorithm {
    /// ECDSA on P-256 with SHA-256 (recommended; what `latchkey-server init` writes).
    ES256,
    /// Ed25519.
    EdDSA,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (2048-bit keys or larger).
    RS256,
    /// HMAC with SHA-256: a shared secret; nothing is published in the JWKS.
    HS256,
}

impl TokenAlgorithm {
    /// Every algorithm, in the order the docs list them.
    pub const ALL: [TokenAlgorithm; 4] = [
        TokenAlgorithm::ES256,
        TokenAlgorithm::EdDSA,
        TokenAlgorithm::RS256,
        TokenAlgorithm::HS256,
    ];

    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenAlgorithm::ES256 => "ES256",
            TokenAlgorithm::EdDSA => "EdDSA",
            TokenAlgorithm::RS256 => "RS256",
            TokenAlgorithm::HS256 => "HS256",
        }
    }

    /// Whether the algorithm has a public key (everything but HS256).
    pub fn is_asymmetric(self) -> bool {
        self != TokenAlgorithm::HS256
    }
}

impl fmt::Display for TokenAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for TokenAlgorithm {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        TokenAlgorithm::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "unknown signing algorithm {s:?}: use ES256, EdDSA, RS256 or HS256"
                ))
            })
    }
}

/// One `[[apps.signing_keys]]` entry.
///
/// ```
/// let config = latchkey_server::Config::from_toml_str(r#"
///     listen = "127.0.0.1:0"
///     database = "sqlite::memory:"
///     [[apps]]
///     id = "myapp"
///     signing_secret = "0123456789abcdef0123456789abcdef"
///     [[apps.signing_keys]]
///     kid = "2026-11"
///     algorithm = "ES256"
///     private_key_file = "/etc/latchkey/myapp-2026-11.pem"
///     active = true
///     [[apps.signing_keys]]
///     kid = "2026-10"
///     algorithm = "ES256"
///     private_key_file = "/etc/latchkey/myapp-2026-10.pem"
///     verify_until = 1764450000
/// "#).unwrap();
/// assert_eq!(config.apps[0].signing_keys.len(), 2);
/// ```
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyConfig {
    /// The key id, written in every token's `kid` header and in the JWKS: 1-64
    /// characters of `A-Z a-z 0-9 - _ .`, unique within the app.
    pub kid: String,
    /// `ES256`, `EdDSA`, `RS256` or `HS256`.
    pub algorithm: TokenAlgorithm,
    /// The private key in PEM (PKCS#8 `PRIVATE KEY`; RS256 also takes PKCS#1 `RSA
    /// PRIVATE KEY`), or the HS256 secret (at least 32 bytes). Give this or
    /// `private_key_file`, not both.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose_optional_secret"
    )]
    pub private_key: Option<Secret>,
    /// A file holding what `private_key` would; on Unix it must not be readable by
    /// group or others (`chmod 600`). A relative path is relative to the server's
    /// working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_file: Option<PathBuf>,
    /// Whether this key signs new access tokens. Exactly one key of an app is active.
    #[serde(default)]
    pub active: bool,
    /// An inactive key verifies tokens (and is published) until this Unix time, in
    /// seconds; absent: until it is removed from the configuration. `keys rotate` sets
    /// it to the rotation time plus the app's access-token lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_until: Option<i64>,
}

impl fmt::Debug for SigningKeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyConfig")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("private_key", &self.private_key)
            .field("private_key_file", &self.private_key_file)
            .field("active", &self.active)
            .field("verify_until", &self.verify_until)
            .finish()
    }
}

/// Whether `kid` is a valid key id.
pub(crate) fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 64
        && kid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Check an app's `signing_keys` (what needs no file).
pub(crate) fn validate_signing_keys(
    app: &str,
    keys: &[SigningKeyConfig],
) -> Result<(), ConfigError> {
    let invalid = |m: String| {
        Err(ConfigError::Invalid(format!(
            "app {app:?}: signing_keys: {m}"
        )))
    };
    if keys.len() > MAX_SIGNING_KEYS {
        return invalid(format!("at most {MAX_SIGNING_KEYS} keys"));
    }
    let mut seen = std::collections::HashSet::new();
    for key in keys {
        if !valid_kid(&key.kid) {
            return invalid(format!(
                "kid {:?} must be 1-64 characters of A-Z, a-z, 0-9, '-', '_' or '.'",
                key.kid
            ));
        }
        if !seen.insert(key.kid.as_str()) {
            return invalid(format!("duplicate kid {:?}", key.kid));
        }
        match (&key.private_key, &key.private_key_file) {
            (Some(_), Some(_)) => {
                return invalid(format!(
                    "key {:?}: give private_key or private_key_file, not both",
                    key.kid
                ));
            }
            (None, None) => {
                return invalid(format!(
                    "key {:?}: private_key or private_key_file is required",
                    key.kid
                ));
            }
            _ => {}
        }
        if key.active && key.verify_until.is_some() {
            return invalid(format!(
                "key {:?}: the active key cannot have verify_until",
                key.kid
            ));
        }
    }
    let active = keys.iter().filter(|k| k.active).count();
    if !keys.is_empty() && active != 1 {
        return invalid(format!(
            "exactly one key must be active (active = true), found {active}"
        ));
    }
    Ok(())
}
