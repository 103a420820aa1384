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

use std::fmt;

use latchkey_protocol::{Credential, CredentialError, LoginBody, ProviderType};
use serde_json::Value;

/// Log in with an Apple ID token.
#[derive(Clone)]
pub struct AppleCredential {
    id_token: String,
}

impl AppleCredential {
    /// A credential for an Apple ID token (a JWT signed by Apple).
    pub fn new(id_token: impl Into<String>) -> Self {
        AppleCredential {
            id_token: id_token.into(),
        }
    }
}

impl fmt::Debug for AppleCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppleCredential")
            .field("id_token", &"<redacted>")
            .finish()
    }
}

impl Credential for AppleCredential {
    fn provider_name(&self) -> &str {
        ProviderType::Apple.as_str()
    }

    fn login_body(&self) -> Result<LoginBody, CredentialError> {
        let mut body = LoginBody::new();
        body.insert("id_token".into(), Value::String(self.id_token.clone()));
        Ok(body)
    }
}
