//! Credentials: [`Credentials`] (one constructor per enabled provider), the [`Credential`]
//! trait any credential implements, and the per-provider credential types.

pub use latchkey_protocol::{Credential, CredentialError, LoginBody};

#[cfg(feature = "anonymous")]
pub use latchkey_anonymous::AnonymousCredential;
#[cfg(feature = "api-key")]
pub use latchkey_api_key::ApiKeyCredential;
#[cfg(feature = "apple")]
pub use latchkey_apple::AppleCredential;
#[cfg(feature = "custom-function")]
pub use latchkey_custom_function::FunctionCredential;
#[cfg(feature = "custom-jwt")]
pub use latchkey_custom_jwt::JwtCredential;
#[cfg(feature = "email-password")]
pub use latchkey_email_password::EmailPasswordCredential;
#[cfg(feature = "facebook")]
pub use latchkey_facebook::FacebookCredential;
#[cfg(feature = "google")]
pub use latchkey_google::GoogleCredential;

/// Credentials to log in with. Constructors exist only for the providers whose features
/// are enabled; any third-party [`Credential`] works with [`Credentials::custom`] or
/// directly with [`App::log_in`](crate::App::log_in).
///
/// `Debug` never shows secrets.
///
/// ```
/// use latchkey::Credentials;
/// use latchkey::credentials::Credential;
/// # #[cfg(all(feature = "anonymous", feature = "email-password"))] {
/// let c = Credentials::email_password("someone@example.com", "Pa55w0rd!");
/// assert_eq!(c.provider_name(), "local-userpass");
/// assert!(!format!("{c:?}").contains("Pa55w0rd!"));
/// assert!(Credentials::anonymous().reuse_anonymous_user());
/// assert!(!Credentials::anonymous_no_reuse().reuse_anonymous_user());
/// # }
/// ```
#[derive(Debug)]
pub struct Credentials(Box<dyn Credential>);

impl Credentials {
    /// Anonymous login that reuses a logged-in anonymous user (`anon-user`).
    #[cfg(feature = "anonymous")]
    pub fn anonymous() -> Self {
        Credentials(Box::new(AnonymousCredential::new()))
    }

    /// Anonymous login that always creates a new anonymous user.
    #[cfg(feature = "anonymous")]
    pub fn anonymous_no_reuse() -> Self {
        Credentials(Box::new(AnonymousCredential::no_reuse()))
    }

    /// Email/password login (`local-userpass`).
    #[cfg(feature = "email-password")]
    pub fn email_password(email: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials(Box::new(EmailPasswordCredential::new(email, password)))
    }

    /// User or server API key login (`api-key`), with the secret shown when the key was
    /// created.
    ///
    /// ```
    /// let c = latchkey::Credentials::api_key("my-secret-key");
    /// # use latchkey::credentials::Credential;
    /// assert_eq!(c.provider_name(), "api-key");
    /// assert!(!format!("{c:?}").contains("my-secret-key"));
    /// ```
    #[cfg(feature = "api-key")]
    pub fn api_key(key: impl Into<String>) -> Self {
        Credentials(Box::new(ApiKeyCredential::new(key)))
    }

    /// Custom JWT login (`custom-token`) with a token signed by your own identity system.
    ///
    /// ```
    /// # use latchkey::credentials::Credential;
    /// let c = latchkey::Credentials::jwt("eyJhbGciOi...");
    /// assert_eq!(c.provider_name(), "custom-token");
    /// ```
    #[cfg(feature = "custom-jwt")]
    pub fn jwt(token: impl Into<String>) -> Self {
        Credentials(Box::new(JwtCredential::new(token)))
    }

    /// Custom function login (`custom-function`): `payload` is the login body your
    /// authentication function receives. It must serialize to a JSON object; otherwise
    /// [`App::log_in`](crate::App::log_in) fails with an [`ErrorKind::Credential`](crate::ErrorKind::Credential) error, before any request.
    ///
    /// ```
    /// # use latchkey::credentials::Credential;
    /// use serde_json::json;
    /// let c = latchkey::Credentials::function(json!({ "username": "ilovemongodb" }));
    /// assert_eq!(c.provider_name(), "custom-function");
    /// assert!(latchkey::Credentials::function(42).login_body().is_err());
    /// ```
    #[cfg(feature = "custom-function")]
    pub fn function(payload: impl serde::Serialize) -> Self {
        Credentials(Box::new(FunctionCredential::new(payload)))
    }

    /// Facebook login (`oauth2-facebook`) with a Facebook user access token.
    ///
    /// ```
    /// # use latchkey::credentials::Credential;
    /// let c = latchkey::Credentials::facebook("EAAB...");
    /// assert_eq!(c.provider_name(), "oauth2-facebook");
    /// ```
    #[cfg(feature = "facebook")]
    pub fn facebook(access_token: impl Into<String>) -> Self {
        Credentials(Box::new(FacebookCredential::new(access_token)))
    }

    /// Google login (`oauth2-google`) with a Google ID token.
    ///
    /// ```
    /// # use latchkey::credentials::Credential;
    /// let c = latchkey::Credentials::google_id_token("eyJhbGciOi...");
    /// assert_eq!(c.login_body().unwrap()["id_token"], "eyJhbGciOi...");
    /// ```
    #[cfg(feature = "google")]
    pub fn google_id_token(id_token: impl Into<String>) -> Self {
        Credentials(Box::new(GoogleCredential::id_token(id_token)))
    }

    /// Google login (`oauth2-google`) with a server auth code.
    ///
    /// ```
    /// # use latchkey::credentials::Credential;
    /// let c = latchkey::Credentials::google_auth_code("4/0Ad...");
    /// assert_eq!(c.login_body().unwrap()["authCode"], "4/0Ad...");
    /// ```
    #[cfg(feature = "google")]
    pub fn google_auth_code(code: impl Into<String>) -> Self {
        Credentials(Box::new(GoogleCredential::auth_code(code)))
    }

    /// Sign in with Apple (`oauth2-apple`) with the ID token Apple returned.
    ///
    /// ```
    /// # use latchkey::credentials::Credential;
    /// let c = latchkey::Credentials::apple("eyJraWQiOi...");
    /// assert_eq!(c.provider_name(), "oauth2-apple");
    /// ```
    #[cfg(feature = "apple")]
    pub fn apple(id_token: impl Into<String>) -> Self {
        Credentials(Box::new(AppleCredential::new(id_token)))
    }

    /// Wrap any credential.
    pub fn custom(credential: impl Credential + 'static) -> Self {
        Credentials(Box::new(credential))
    }
}

impl Credential for Credentials {
    fn provider_name(&self) -> &str {
        self.0.provider_name()
    }

    fn login_body(&self) -> Result<LoginBody, CredentialError> {
        self.0.login_body()
    }

    fn reuse_anonymous_user(&self) -> bool {
        self.0.reuse_anonymous_user()
    }
}
