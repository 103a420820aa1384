//! Google credentials for latchkey (provider `oauth2-google`): log in with a
//! Google ID token (from Google Sign-In on the device) or a server auth code
//! (which the server exchanges at Google's token endpoint).
//!
//! ```
//! use latchkey_google::GoogleCredential;
//! use latchkey_protocol::Credential;
//!
//! let by_token = GoogleCredential::id_token("eyJhbGciOi...");
//! assert_eq!(by_token.provider_name(), "oauth2-google");
//! assert_eq!(by_token.login_body().unwrap()["id_token"], "eyJhbGciOi...");
//!
//! let by_code = GoogleCredential::auth_code("4/0Ad...");
//! assert_eq!(by_code.login_body().unwrap()["authCode"], "4/0Ad...");
//! assert!(!format!("{by_code:?}").contains("4/0Ad"));
//! ```
#![deny(missing_docs)]

use latchkey_protocol::{Credential, CredentialError, LoginBody, ProviderType, Secret};
use serde_json::Value;

/// Log in with Google: an ID token or a server auth code.
#[derive(Debug, Clone)]
pub struct GoogleCredential {
    kind: Kind,
    secret: Secret,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    IdToken,
    AuthCode,
}

impl GoogleCredential {
    /// A Google ID token (a JWT signed by Google).
    pub fn id_token(id_token: impl Into<String>) -> Self {
        GoogleCredential {
            kind: Kind::IdToken,
            secret: Secret::new(id_token),
        }
    }

    /// A server auth code, exchanged by the server for tokens.
    pub fn auth_code(code: impl Into<String>) -> Self {
        GoogleCredential {
            kind: Kind::AuthCode,
            secret: Secret::new(code),
        }
    }
}

impl Credential for GoogleCredential {
    fn provider_name(&self) -> &str {
        ProviderType::Google.as_str()
    }

    fn login_body(&self) -> Result<LoginBody, CredentialError> {
        // Wire keys as both official clients send them: `id_token` and `authCode`.
        let key = match self.kind {
            Kind::IdToken => "id_token",
            Kind::AuthCode => "authCode",
        };
        let mut body = LoginBody::new();
        body.insert(key.into(), Value::String(self.secret.expose().to_owned()));
        Ok(body)
    }
}
