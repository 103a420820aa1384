//! API key credentials for latchkey: log in with a user API key or a server API key.
//!
//! Both kinds of key use the `api-key` provider.
//!
//! ```
//! use latchkey_api_key::ApiKeyCredential;
//! use latchkey_protocol::Credential;
//!
//! let cred = ApiKeyCredential::new("my-secret-key");
//! assert_eq!(cred.provider_name(), "api-key");
//! assert_eq!(cred.login_body().unwrap()["key"], "my-secret-key");
//! assert!(!format!("{cred:?}").contains("my-secret-key"));
//! ```
#![deny(missing_docs)]

use std::fmt;

use latchkey_protocol::{Credential, CredentialError, LoginBody, ProviderType};
use serde_json::Value;

/// Log in with a user or server API key.
#[derive(Clone)]
pub struct ApiKeyCredential {
    key: String,
}

impl ApiKeyCredential {
    /// A credential for `key`, the secret shown once when the key was created.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKeyCredential { key: key.into() }
    }
}

impl fmt::Debug for ApiKeyCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyCredential")
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Credential for ApiKeyCredential {
    fn provider_name(&self) -> &str {
        ProviderType::ApiKey.as_str()
    }

    fn login_body(&self) -> Result<LoginBody, CredentialError> {
        let mut body = LoginBody::new();
        body.insert("key".into(), Value::String(self.key.clone()));
        Ok(body)
    }
}
