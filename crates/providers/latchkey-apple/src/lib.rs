//! Sign in with Apple credentials for latchkey: log in with the ID token Apple
//! returned to your app (provider `oauth2-apple`).
//!
//! ```
//! use latchkey_apple::AppleCredential;
//! use latchkey_protocol::Credential;
//!
//! let cred = AppleCredential::new("eyJraWQiOi...");
//! assert_eq!(cred.provider_name(), "oauth2-apple");
//! assert_eq!(cred.login_body().unwrap()["id_token"], "eyJraWQiOi...");
//! assert!(!format!("{cred:?}").contains("eyJ"));
//! ```
#![deny(missing_docs)]

use latchkey_protocol::{Credential, CredentialError, LoginBody, ProviderType, Secret};
use serde_json::Value;

/// Log in with an Apple ID token.
#[derive(Debug, Clone)]
pub struct AppleCredential {
    id_token: Secret,
}

impl AppleCredential {
    /// A credential for an Apple ID token (a JWT signed by Apple).
    pub fn new(id_token: impl Into<String>) -> Self {
        AppleCredential {
            id_token: Secret::new(id_token),
        }
    }
}

impl Credential for AppleCredential {
    fn provider_name(&self) -> &str {
        ProviderType::Apple.as_str()
    }

    fn login_body(&self) -> Result<LoginBody, CredentialError> {
        let mut body = LoginBody::new();
        body.insert(
            "id_token".into(),
            Value::String(self.id_token.expose().to_owned()),
        );
        Ok(body)
    }
}
