//! The `Credential` plugin trait: one implementation per provider crate.

use std::fmt;

use serde_json::{Map, Value};

/// The credential part of a login body (everything but `options`).
pub type LoginBody = Map<String, Value>;

/// A way to log in: a provider name plus the credential fields of the login body.
///
/// Each provider crate implements it (`latchkey-anonymous`, `latchkey-email-password`, ...),
/// and so can a third party: the session layer needs nothing else.
/// Implementations must keep secrets out of `Debug`.
///
/// ```
/// use latchkey_protocol::{Credential, CredentialError, LoginBody};
/// use serde_json::json;
///
/// /// A credential for a provider latchkey does not ship.
/// struct Magic(String);
/// impl std::fmt::Debug for Magic {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("Magic(<redacted>)")
///     }
/// }
/// impl Credential for Magic {
///     fn provider_name(&self) -> &str { "custom-token" }
///     fn login_body(&self) -> Result<LoginBody, CredentialError> {
///         let mut body = LoginBody::new();
///         body.insert("token".into(), json!(self.0));
///         Ok(body)
///     }
/// }
/// let body = Magic("t".into()).login_body().unwrap();
/// assert_eq!(body["token"], "t");
/// ```
pub trait Credential: fmt::Debug + Send + Sync {
    /// The provider name used in the login route, e.g. `"local-userpass"`.
    fn provider_name(&self) -> &str;

    /// The credential fields of the login body (the session layer adds `options`).
    fn login_body(&self) -> Result<LoginBody, CredentialError>;

    /// For anonymous credentials: return an already logged-in anonymous user instead of
    /// creating a new one (realm-core's and realm-web's default). False for every other provider.
    fn reuse_anonymous_user(&self) -> bool {
        false
    }
}

impl<C: Credential + ?Sized> Credential for Box<C> {
    fn provider_name(&self) -> &str {
        (**self).provider_name()
    }
    fn login_body(&self) -> Result<LoginBody, CredentialError> {
        (**self).login_body()
    }
    fn reuse_anonymous_user(&self) -> bool {
        (**self).reuse_anonymous_user()
    }
}

/// A credential could not produce its login body.
#[derive(Debug, thiserror::Error)]
#[error("invalid credential: {message}")]
pub struct CredentialError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl CredentialError {
    /// An error with a message (which must not contain secrets).
    pub fn new(message: impl Into<String>) -> Self {
        CredentialError {
            message: message.into(),
            source: None,
        }
    }

    /// An error with a message and an underlying cause.
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        CredentialError {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}
