//! Email/password credentials (provider `local-userpass`) and the email/password client
//! API (registration, confirmation, password resets) for latchkey.
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

use http::Method;
use latchkey_protocol::routes::EmailPasswordRoute;
use latchkey_protocol::{
    CallResetPasswordFunctionRequest, ConfirmRequest, Credential, CredentialError, EmailRequest,
    LoginBody, ProviderType, RegisterRequest, ResetPasswordRequest,
};
use latchkey_session::{AppCore, Error, Secret};
use serde::Serialize;
use serde_json::Value;

/// Log in with an email address and a password. Body:
/// `{"username": <email>, "password": <password>}`. The password never appears in `Debug`.
#[derive(Debug, Clone)]
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
/// Every call is one `POST` with a JSON body (exact keys of protocol.md §5), sent without an
/// `Authorization` header (realm-core's behaviour) to the app's host from the location
/// endpoint, and never retried. Success is any 2xx; a non-2xx answer is an
/// [`ErrorKind::Server`](latchkey_session::ErrorKind::Server) error with the server's
/// `error_code` (`AccountNameInUse`, `UserNotFound`, `UserAlreadyConfirmed`,
/// `UserpassTokenInvalid`, `BadRequest`, ...).
///
/// ```no_run
/// # async fn demo(core: &latchkey_session::AppCore) -> Result<(), latchkey_session::Error> {
/// use latchkey_email_password::EmailPasswordAuth;
/// let auth = EmailPasswordAuth::new(core);
/// auth.register_user("someone@example.com", "Pa55w0rd!").await?;
/// // Later, with the token pair from the confirmation link's query string:
/// auth.confirm_user("token-from-link", "token-id-from-link").await?;
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

    async fn post(&self, route: EmailPasswordRoute, body: impl Serialize) -> Result<(), Error> {
        let body = serde_json::to_value(&body)
            .map_err(|e| Error::invalid_argument(format!("cannot serialize the request: {e}")))?;
        let url = self.core.routes().await?.email_password(route);
        self.core
            .send_json(Method::POST, route.path(), &url, Some(body))
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
            password: Secret::new(password),
        };
        self.post(EmailPasswordRoute::Register, body).await
    }

    /// Confirm a registration (`POST .../local-userpass/confirm` with `{token, tokenId}`),
    /// using the `token` and `tokenId` query parameters of the confirmation link.
    /// A bad pair is a server error (`UserpassTokenInvalid`).
    ///
    /// ```no_run
    /// # async fn demo(auth: latchkey_email_password::EmailPasswordAuth) -> Result<(), latchkey_session::Error> {
    /// auth.confirm_user("token-from-link", "token-id-from-link").await?;
    /// # Ok(()) }
    /// ```
    pub async fn confirm_user(
        &self,
        token: impl Into<String>,
        token_id: impl Into<String>,
    ) -> Result<(), Error> {
        let body = ConfirmRequest {
            token: Secret::new(token),
            token_id: token_id.into(),
        };
        self.post(EmailPasswordRoute::Confirm, body).await
    }

    /// Send the confirmation email again (`POST .../local-userpass/confirm/send` with
    /// `{email}`).
    ///
    /// ```no_run
    /// # async fn demo(auth: latchkey_email_password::EmailPasswordAuth) -> Result<(), latchkey_session::Error> {
    /// auth.resend_confirmation_email("someone@example.com").await?;
    /// # Ok(()) }
    /// ```
    pub async fn resend_confirmation_email(&self, email: impl Into<String>) -> Result<(), Error> {
        let body = EmailRequest {
            email: email.into(),
        };
        self.post(EmailPasswordRoute::ConfirmSend, body).await
    }

    /// Run the app's custom confirmation function again (`POST
    /// .../local-userpass/confirm/call` with `{email}`).
    ///
    /// ```no_run
    /// # async fn demo(auth: latchkey_email_password::EmailPasswordAuth) -> Result<(), latchkey_session::Error> {
    /// auth.retry_custom_confirmation("someone@example.com").await?;
    /// # Ok(()) }
    /// ```
    pub async fn retry_custom_confirmation(&self, email: impl Into<String>) -> Result<(), Error> {
        let body = EmailRequest {
            email: email.into(),
        };
        self.post(EmailPasswordRoute::ConfirmCall, body).await
    }

    /// Send a password reset email (`POST .../local-userpass/reset/send` with `{email}`).
    ///
    /// ```no_run
    /// # async fn demo(auth: latchkey_email_password::EmailPasswordAuth) -> Result<(), latchkey_session::Error> {
    /// auth.send_reset_password_email("someone@example.com").await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_reset_password_email(&self, email: impl Into<String>) -> Result<(), Error> {
        let body = EmailRequest {
            email: email.into(),
        };
        self.post(EmailPasswordRoute::ResetSend, body).await
    }

    /// Set a new password with the token pair of a reset link (`POST
    /// .../local-userpass/reset` with `{password, token, tokenId}`).
    ///
    /// ```no_run
    /// # async fn demo(auth: latchkey_email_password::EmailPasswordAuth) -> Result<(), latchkey_session::Error> {
    /// auth.reset_password("token-from-link", "token-id-from-link", "N3wPa55w0rd!").await?;
    /// # Ok(()) }
    /// ```
    pub async fn reset_password(
        &self,
        token: impl Into<String>,
        token_id: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<(), Error> {
        let body = ResetPasswordRequest {
            password: Secret::new(password),
            token: Secret::new(token),
            token_id: token_id.into(),
        };
        self.post(EmailPasswordRoute::Reset, body).await
    }

    /// Run the app's password reset function (`POST .../local-userpass/reset/call` with
    /// `{email, password, arguments}`). `args` must serialize to a JSON **array** (its
    /// items follow the reset request as the function's arguments); it is sent as canonical
    /// Extended JSON, as the official clients do. Anything else is an
    /// [`ErrorKind::InvalidArgument`](latchkey_session::ErrorKind::InvalidArgument) error,
    /// before any request.
    ///
    /// ```no_run
    /// # async fn demo(auth: latchkey_email_password::EmailPasswordAuth) -> Result<(), latchkey_session::Error> {
    /// use serde_json::json;
    /// auth.call_reset_password_function("someone@example.com", "N3wPa55w0rd!", json!(["sms", {"code": 1234}]))
    ///     .await?;
    /// // No extra arguments:
    /// auth.call_reset_password_function("someone@example.com", "N3wPa55w0rd!", Vec::<String>::new())
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn call_reset_password_function(
        &self,
        email: impl Into<String>,
        password: impl Into<String>,
        args: impl Serialize,
    ) -> Result<(), Error> {
        let arguments = match serde_json::to_value(&args) {
            Ok(Value::Array(items)) => items
                .into_iter()
                .map(latchkey_protocol::ejson::to_canonical)
                .collect(),
            Ok(_) => {
                return Err(Error::invalid_argument(
                    "the reset function arguments must serialize to a JSON array",
                ));
            }
            Err(e) => {
                return Err(Error::invalid_argument(format!(
                    "the reset function arguments cannot be serialized: {e}"
                )));
            }
        };
        let body = CallResetPasswordFunctionRequest {
            email: email.into(),
            password: Secret::new(password),
            arguments,
        };
        self.post(EmailPasswordRoute::ResetCall, body).await
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
