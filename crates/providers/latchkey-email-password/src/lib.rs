//! Email/password credentials (provider `local-userpass`) and the email/password client
//! API (registration) for latchkey.
//!
//! ```
//! use latchkey_email_password::EmailPasswordCredential;
//! use latchkey_protocol::Credential;
//!
//! let c = EmailPasswordCredential::new("someone@example.com", "Pa55w0rd!");
//! assert_eq!(c.provider_name(), "local-userpass");
//! let body = c.login_body().unwrap();
//! assert_eq!(body["username"], "someone@example.com");
//! assert!(!format!("{c:?}").contains("Pa55w0rd!"));
//! ```
#![deny(missing_docs)]

use std::fmt;

use http::Method;
use latchkey_protocol::routes::EmailPasswordRoute;
use latchkey_protocol::{Credential, CredentialError, LoginBody, ProviderType, RegisterRequest};
use latchkey_session::{AppCore, Error, Secret};
use serde_json::Value;

/// Log in with an email address and a password. Body:
/// `{"username": <email>, "password": <password>}`. The password never appears in `Debug`.
#[derive(Clone)]
pub struct EmailPasswordCredential {
    email: String,
    password: Secret,
}

impl EmailPasswordCredential {
    /// The provider name, `local-userpass`.
    pub const PROVIDER: &'static str = ProviderType::EmailPassword.as_str();

    /// A credential for `email` and `password`.
    pub fn new(email: impl Into<String>, password: impl Into<String>) -> Self {
        EmailPasswordCredential {
            email: email.into(),
            password: Secret::new(password.into()),
        }
    }

    /// The email address.
    pub fn email(&self) -> &str {
        &self.email
    }
}

impl fmt::Debug for EmailPasswordCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailPasswordCredential")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credential for EmailPasswordCredential {
    fn provider_name(&self) -> &str {
        Self::PROVIDER
    }

    fn login_body(&self) -> Result<LoginBody, CredentialError> {
        let mut body = LoginBody::new();
        body.insert("username".into(), Value::String(self.email.clone()));
        body.insert(
            "password".into(),
            Value::String(self.password.expose().to_owned()),
        );
        Ok(body)
    }
}

/// The email/password client API of an app (`.../providers/local-userpass/...`).
///
/// Requests are unauthenticated (realm-core's behaviour) and go to the app's host from
/// the location endpoint.
///
/// ```no_run
/// # async fn demo(core: &latchkey_session::AppCore) -> Result<(), latchkey_session::Error> {
/// use latchkey_email_password::EmailPasswordAuth;
/// EmailPasswordAuth::new(core).register_user("someone@example.com", "Pa55w0rd!").await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct EmailPasswordAuth {
    core: AppCore,
}

impl EmailPasswordAuth {
    /// The email/password API of `core`'s app.
    pub fn new(core: &AppCore) -> Self {
        EmailPasswordAuth { core: core.clone() }
    }

    async fn post(&self, route: EmailPasswordRoute, body: Value) -> Result<(), Error> {
        let routes = self.core.routes().await?;
        self.core
            .send_json(Method::POST, &routes.email_password(route), Some(body))
            .await
            .map(|_| ())
    }

    /// Register a new user (`POST .../local-userpass/register` with `{email, password}`).
    /// A duplicate email is a server error with code `AccountNameInUse`.
    pub async fn register_user(
        &self,
        email: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<(), Error> {
        let body = RegisterRequest {
            email: email.into(),
            password: password.into(),
        };
        let body = serde_json::to_value(&body)
            .map_err(|e| Error::invalid_config(format!("cannot serialize the request: {e}")))?;
        self.post(EmailPasswordRoute::Register, body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use latchkey_session::{AppConfig, MemoryStore};
    use latchkey_transport::{HttpRequest, RequestOptions, SharedTransport, transport_fn};
    use std::sync::{Arc, Mutex};

    #[test]
    fn login_body_and_redaction() {
        let c = EmailPasswordCredential::new("a@b.c", "hunter22");
        let body = c.login_body().unwrap();
        assert_eq!(
            Value::Object(body),
            serde_json::json!({"username": "a@b.c", "password": "hunter22"})
        );
        let dbg = format!("{c:?}");
        assert!(dbg.contains("a@b.c") && !dbg.contains("hunter22"));
        assert!(!c.reuse_anonymous_user());
    }

    #[tokio::test]
    async fn register_posts_email_and_password_after_location() {
        type Log = Arc<Mutex<Vec<(String, String, Option<String>)>>>;
        let seen: Log = Arc::default();
        let log = seen.clone();
        let t = SharedTransport::new(transport_fn(move |req: HttpRequest, _o: RequestOptions| {
            let log = log.clone();
            async move {
                let path = req.uri().path().to_owned();
                let ct = req
                    .headers()
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_owned());
                log.lock().unwrap().push((
                    path.clone(),
                    String::from_utf8(req.body().to_vec()).unwrap(),
                    ct,
                ));
                let body = if path.ends_with("/location") {
                    Bytes::from_static(br#"{"hostname":"http://moved.example"}"#)
                } else {
                    Bytes::new()
                };
                Ok(http::Response::builder()
                    .status(if path.ends_with("/location") {
                        200
                    } else {
                        201
                    })
                    .body(body)
                    .unwrap())
            }
        }));
        let core = AppCore::new(
            AppConfig::new("app-1", "http://base.example"),
            t,
            Arc::new(MemoryStore::new()),
        )
        .unwrap();
        EmailPasswordAuth::new(&core)
            .register_user("a@b.c", "pw123456")
            .await
            .unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(
            seen[1].0,
            "/api/client/v2.0/app/app-1/auth/providers/local-userpass/register"
        );
        let body: Value = serde_json::from_str(&seen[1].1).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"email": "a@b.c", "password": "pw123456"})
        );
        assert_eq!(seen[1].2.as_deref(), Some("application/json"));
    }
}
