//! Custom JWT credentials for latchkey: log in with a token your own identity
//! system signed (provider `custom-token`).
//!
//! ```
//! use latchkey_custom_jwt::JwtCredential;
//! use latchkey_protocol::Credential;
//!
//! let cred = JwtCredential::new("eyJhbGciOi...");
//! assert_eq!(cred.provider_name(), "custom-token");
//! assert_eq!(cred.login_body().unwrap()["token"], "eyJhbGciOi...");
//! assert!(!format!("{cred:?}").contains("eyJ"));
//! ```
#![deny(missing_docs)]

use latchkey_protocol::{Credential, CredentialError, LoginBody, ProviderType, Secret};
use serde_json::Value;

/// Log in with a JWT from your own authentication system.
#[derive(Debug, Clone)]
pub struct JwtCredential {
    token: Secret,
}

impl JwtCredential {
    /// A credential for the compact JWT `token`.
    pub fn new(token: impl Into<String>) -> Self {
        JwtCredential {
            token: Secret::new(token),
        }
    }
}

impl Credential for JwtCredential {
    fn provider_name(&self) -> &str {
        ProviderType::CustomJwt.as_str()
    }

    fn login_body(&self) -> Result<LoginBody, CredentialError> {
        let mut body = LoginBody::new();
        body.insert(
            "token".into(),
            Value::String(self.token.expose().to_owned()),
        );
        Ok(body)
    }
}
