//! [`User`]: the facade's user handle.

use std::fmt;
use std::ops::Deref;

#[cfg(feature = "api-key")]
use crate::api_keys::ApiKeys;
use crate::credentials::Credential;
use latchkey_session::Error;

/// A user of an [`App`](crate::App): a cheap-clone handle; clones see the same state.
///
/// It dereferences to the engine's user handle (`latchkey_session::User`), so every method
/// listed under "Methods from `Deref`" below
/// (`id()`, `state()`, `profile()`, `identities()`, `device_id()`, `access_token()`,
/// `valid_access_token()`, `custom_data()`, `refresh_custom_data()`, `refresh_profile()`,
/// `log_out()`, `request()`, ...) works directly on it; this type adds the provider
/// features' APIs, such as [`api_keys`](Self::api_keys), with nothing to import.
/// Secrets never appear in its `Debug` output.
///
/// ```no_run
/// # async fn demo(app: latchkey::App) -> Result<(), latchkey::Error> {
/// let user = app.current_user().expect("someone is logged in");
/// println!("{} ({:?}), {} identities", user.id(), user.state(), user.identities().len());
/// if let Some(email) = user.profile().email() {
///     println!("email: {email}");
/// }
/// let token = user.valid_access_token().await?;
/// # let _ = token; Ok(()) }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct User(latchkey_session::User);

impl User {
    /// Link another identity to this user (`POST .../login?link=true` with this user's
    /// access token). The refresh token is kept, the profile re-read and the user becomes
    /// current. Anonymous credentials are refused with an [`ErrorKind::Credential`](crate::ErrorKind::Credential) error,
    /// before any request.
    ///
    /// ```no_run
    /// # #[cfg(all(feature = "anonymous", feature = "email-password"))]
    /// # async fn demo(app: latchkey::App) -> Result<(), latchkey::Error> {
    /// use latchkey::Credentials;
    /// let user = app.log_in(Credentials::anonymous()).await?;
    /// app.email_password_auth().register_user("someone@example.com", "Pa55w0rd!").await?;
    /// user.link_credentials(Credentials::email_password("someone@example.com", "Pa55w0rd!")).await?;
    /// assert_eq!(user.identities().len(), 2);
    /// # Ok(()) }
    /// ```
    pub async fn link_credentials(&self, credential: impl Credential) -> Result<(), Error> {
        self.0.link_credentials(&credential).await
    }

    /// This user's API keys: create, fetch, list, enable, disable and delete (all with the
    /// refresh token; a `401` logs the user out).
    ///
    /// ```no_run
    /// # async fn demo(user: latchkey::User) -> Result<(), latchkey::Error> {
    /// let created = user.api_keys().create("ci").await?;
    /// let secret = created.key.as_ref().expect("shown once, on create").expose().to_owned();
    /// let all = user.api_keys().fetch_all().await?;
    /// user.api_keys().disable(&created.id).await?;
    /// user.api_keys().delete(&created.id).await?;
    /// # let _ = (secret, all); Ok(()) }
    /// ```
    #[cfg(feature = "api-key")]
    pub fn api_keys(&self) -> ApiKeys {
        ApiKeys::new(&self.0)
    }

    /// The engine's user handle.
    pub fn into_inner(self) -> latchkey_session::User {
        self.0
    }
}

impl Deref for User {
    type Target = latchkey_session::User;

    fn deref(&self) -> &latchkey_session::User {
        &self.0
    }
}

impl AsRef<latchkey_session::User> for User {
    fn as_ref(&self) -> &latchkey_session::User {
        &self.0
    }
}

impl From<latchkey_session::User> for User {
    fn from(user: latchkey_session::User) -> Self {
        User(user)
    }
}

impl From<User> for latchkey_session::User {
    fn from(user: User) -> Self {
        user.0
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}
