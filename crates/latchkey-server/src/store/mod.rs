//! Persistence: the [`Store`] trait and its SQLite implementation.
//!
//! Every record is scoped by app id, so one database serves several apps.

use async_trait::async_trait;
use serde_json::{Map, Value};

mod sqlite;

pub use sqlite::SqliteStore;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness constraint failed (duplicate email, identity already linked, ...).
    #[error("record already exists")]
    Conflict,
    /// The database failed.
    #[error("database error: {0}")]
    Database(String),
    /// A stored value could not be decoded.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// A user.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    /// App id.
    pub app_id: String,
    /// User id (24-hex ObjectId).
    pub id: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// A disabled user cannot log in and its tokens stop working.
    pub disabled: bool,
    /// Custom user data, copied into the access token's `user_data` claim.
    pub custom_data: Option<Map<String, Value>>,
}

/// One identity (provider account) of a user.
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityRecord {
    /// App id.
    pub app_id: String,
    /// Provider name, e.g. `local-userpass`.
    pub provider_type: String,
    /// Provider-specific id, unique per (app, provider).
    pub id: String,
    /// The owning user.
    pub user_id: String,
    /// Provider metadata (e.g. `{"email": ..}`), merged into the profile's `data`.
    pub data: Map<String, Value>,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// A login session: what a refresh token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// App id.
    pub app_id: String,
    /// Session id (the refresh token's `baas_id`, the access token's `iss`).
    pub id: String,
    /// The user.
    pub user_id: String,
    /// The device id given to the client at login.
    pub device_id: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Expiry, Unix seconds (the refresh token's `exp`).
    pub expires_at: i64,
}

/// Confirmation state of email/password credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialStatus {
    /// Registered, waiting for confirmation; cannot log in.
    Pending,
    /// Confirmed; can log in.
    Confirmed,
}

impl CredentialStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialStatus::Pending => "pending",
            CredentialStatus::Confirmed => "confirmed",
        }
    }

    /// Parse a stored name.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(CredentialStatus::Pending),
            "confirmed" => Some(CredentialStatus::Confirmed),
            _ => None,
        }
    }
}

/// Registered email/password credentials. The user comes into being at the first
/// login with them (the identity id is the credential id).
#[derive(Clone, PartialEq, Eq)]
pub struct UserpassRecord {
    /// App id.
    pub app_id: String,
    /// Credential id (24-hex ObjectId), also the `local-userpass` identity id.
    pub id: String,
    /// Email address, case-sensitive as in App Services.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Pending or confirmed.
    pub status: CredentialStatus,
    /// Registration time, Unix seconds.
    pub created_at: i64,
    /// Last change, Unix seconds.
    pub updated_at: i64,
}

impl std::fmt::Debug for UserpassRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserpassRecord")
            .field("app_id", &self.app_id)
            .field("id", &self.id)
            .field("email", &self.email)
            .field("password_hash", &"<redacted>")
            .field("status", &self.status)
            .finish()
    }
}

/// Storage used by the server. Implementations must be safe for concurrent use.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Create the schema or bring it up to date.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Create a user together with its first identity, atomically. [`StoreError::Conflict`]
    /// when the identity already exists.
    async fn create_user_with_identity(
        &self,
        user: &UserRecord,
        identity: &IdentityRecord,
    ) -> Result<(), StoreError>;

    /// A user by id.
    async fn get_user(&self, app_id: &str, user_id: &str)
    -> Result<Option<UserRecord>, StoreError>;

    /// Delete a user with its identities, sessions and email/password credentials.
    /// Returns whether the user existed.
    async fn delete_user(&self, app_id: &str, user_id: &str) -> Result<bool, StoreError>;

    /// Enable or disable a user. Returns whether the user exists.
    async fn set_user_disabled(
        &self,
        app_id: &str,
        user_id: &str,
        disabled: bool,
    ) -> Result<bool, StoreError>;

    /// Replace a user's custom data. Returns whether the user exists.
    async fn set_custom_data(
        &self,
        app_id: &str,
        user_id: &str,
        data: Option<&Map<String, Value>>,
    ) -> Result<bool, StoreError>;

    /// An identity by provider and provider-specific id.
    async fn find_identity(
        &self,
        app_id: &str,
        provider_type: &str,
        id: &str,
    ) -> Result<Option<IdentityRecord>, StoreError>;

    /// Attach an identity to an existing user. [`StoreError::Conflict`] when it exists.
    async fn add_identity(&self, identity: &IdentityRecord) -> Result<(), StoreError>;

    /// A user's identities, oldest first.
    async fn list_identities(
        &self,
        app_id: &str,
        user_id: &str,
    ) -> Result<Vec<IdentityRecord>, StoreError>;

    /// Store a new session.
    async fn create_session(&self, session: &SessionRecord) -> Result<(), StoreError>;

    /// A session by id.
    async fn get_session(
        &self,
        app_id: &str,
        session_id: &str,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// Delete a session. Returns whether it existed.
    async fn delete_session(&self, app_id: &str, session_id: &str) -> Result<bool, StoreError>;

    /// Delete every session of a user. Returns how many there were.
    async fn delete_user_sessions(&self, app_id: &str, user_id: &str) -> Result<u64, StoreError>;

    /// Whether the device id was issued by (or registered with) this app.
    async fn device_exists(&self, app_id: &str, device_id: &str) -> Result<bool, StoreError>;

    /// Record a device id (first user that used it, last-seen time).
    async fn touch_device(
        &self,
        app_id: &str,
        device_id: &str,
        user_id: &str,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Store new email/password credentials. [`StoreError::Conflict`] when the email exists.
    async fn create_userpass(&self, record: &UserpassRecord) -> Result<(), StoreError>;

    /// Credentials by email (exact, case-sensitive).
    async fn find_userpass(
        &self,
        app_id: &str,
        email: &str,
    ) -> Result<Option<UserpassRecord>, StoreError>;

    /// Change the status of credentials. Returns whether they exist.
    async fn set_userpass_status(
        &self,
        app_id: &str,
        email: &str,
        status: CredentialStatus,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Change the password hash of credentials. Returns whether they exist.
    async fn set_userpass_password(
        &self,
        app_id: &str,
        email: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Close connections (called at shutdown).
    async fn close(&self);
}
