//! Anonymous credentials for latchkey (provider `anon-user`).
//!
//! ```
//! use latchkey_anonymous::AnonymousCredential;
//! use latchkey_protocol::Credential;
//!
//! let c = AnonymousCredential::new();
//! assert_eq!(c.provider_name(), "anon-user");
//! assert!(c.reuse_anonymous_user());
//! assert!(c.login_body().unwrap().is_empty());
//! assert!(!AnonymousCredential::no_reuse().reuse_anonymous_user());
//! ```
#![deny(missing_docs)]

use latchkey_protocol::{Credential, CredentialError, LoginBody, ProviderType};

/// Log in anonymously. The body is `{}` (realm-web's form).
///
/// By default a logged-in anonymous user is reused (no network call, realm-core's and
/// realm-web's default); [`AnonymousCredential::no_reuse`] always creates a new user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnonymousCredential {
    reuse: bool,
}

impl AnonymousCredential {
    /// The provider name, `anon-user`.
    pub const PROVIDER: &'static str = ProviderType::Anonymous.as_str();

    /// An anonymous credential that reuses a logged-in anonymous user.
    pub fn new() -> Self {
        AnonymousCredential { reuse: true }
    }

    /// An anonymous credential that always creates a new anonymous user.
    pub fn no_reuse() -> Self {
        AnonymousCredential { reuse: false }
    }
}

impl Default for AnonymousCredential {
    fn default() -> Self {
        Self::new()
    }
}

impl Credential for AnonymousCredential {
    fn provider_name(&self) -> &str {
        Self::PROVIDER
    }

    fn login_body(&self) -> Result<LoginBody, CredentialError> {
        Ok(LoginBody::new())
    }

    fn reuse_anonymous_user(&self) -> bool {
        self.reuse
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_empty_object_and_reuse_flags() {
        let body = AnonymousCredential::default().login_body().unwrap();
        assert_eq!(serde_json::Value::Object(body), serde_json::json!({}));
        assert!(AnonymousCredential::default().reuse_anonymous_user());
        assert!(!AnonymousCredential::no_reuse().reuse_anonymous_user());
        assert_eq!(AnonymousCredential::no_reuse().provider_name(), "anon-user");
    }
}
