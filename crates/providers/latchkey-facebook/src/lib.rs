//! Facebook credentials for latchkey: log in with a Facebook user access token
//! obtained by your app's Facebook Login flow (provider `oauth2-facebook`).
//!
//! ```
//! use latchkey_facebook::FacebookCredential;
//! use latchkey_protocol::Credential;
//!
//! let cred = FacebookCredential::new("EAAB...");
//! assert_eq!(cred.provider_name(), "oauth2-facebook");
//! assert_eq!(cred.login_body().unwrap()["accessToken"], "EAAB...");
//! assert!(!format!("{cred:?}").contains("EAAB"));
//! ```
#![deny(missing_docs)]

use latchkey_protocol::{Credential, CredentialError, LoginBody, ProviderType, Secret};
use serde_json::Value;

/// Log in with a Facebook user access token.
#[derive(Debug, Clone)]
pub struct FacebookCredential {
    access_token: Secret,
}

impl FacebookCredential {
    /// A credential for a Facebook user access token.
    pub fn new(access_token: impl Into<String>) -> Self {
        FacebookCredential {
            access_token: Secret::new(access_token),
        }
    }
}

impl Credential for FacebookCredential {
    fn provider_name(&self) -> &str {
        ProviderType::Facebook.as_str()
    }

    fn login_body(&self) -> Result<LoginBody, CredentialError> {
        let mut body = LoginBody::new();
        body.insert(
            "accessToken".into(),
            Value::String(self.access_token.expose().to_owned()),
        );
        Ok(body)
    }
}
