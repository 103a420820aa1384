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
    /// Provider type of the identity the session logged in with (e.g. `api-key`);
    /// `None` for sessions created before it was recorded.
    pub provider_type: Option<String>,
    /// Id of that identity (for `api-key`: the key id).
    pub identity_id: Option<String>,
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

/// Who an API key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiKeyKind {
    /// A user API key: logs in as the user that created it.
    User,
    /// A server API key: logs in as its own server user, created with the key.
    Server,
}

impl ApiKeyKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiKeyKind::User => "user",
            ApiKeyKind::Server => "server",
        }
    }

    /// Parse a stored name.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "user" => Some(ApiKeyKind::User),
            "server" => Some(ApiKeyKind::Server),
            _ => None,
        }
    }
}

/// An API key (`api-key` provider). The secret itself is never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// App id.
    pub app_id: String,
    /// Key id (24-hex ObjectId), also the `api-key` identity id.
    pub id: String,
    /// The user the key logs in as (the creating user, or the key's server user).
    pub user_id: String,
    /// User or server key.
    pub kind: ApiKeyKind,
    /// Name, unique per user (per app for server keys).
    pub name: String,
    /// Lowercase hex SHA-256 of the key.
    pub hash: String,
    /// A disabled key cannot log in.
    pub disabled: bool,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

impl std::fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("app_id", &self.app_id)
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("hash", &"<redacted>")
            .field("disabled", &self.disabled)
            .finish()
    }
}

/// What a confirmation / reset token pair is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenPurpose {
    /// Confirms pending email/password credentials.
    Confirm,
    /// Resets a password.
    Reset,
}

impl TokenPurpose {
    /// The stored name (also the outbox `kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::Confirm => "confirm",
            TokenPurpose::Reset => "reset",
        }
    }
}

/// A confirmation / reset token pair. Only SHA-256 hashes of both values are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserpassTokenRecord {
    /// App id.
    pub app_id: String,
    /// What the pair is for.
    pub purpose: TokenPurpose,
    /// The credentials' email.
    pub email: String,
    /// Lowercase hex SHA-256 of the `token`.
    pub token_hash: String,
    /// Lowercase hex SHA-256 of the `tokenId`.
    pub token_id_hash: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
}

/// A confirmation / reset message, exactly as sent.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxRecord {
    /// App id.
    pub app_id: String,
    /// Recipient address.
    pub to: String,
    /// `confirm` or `reset`.
    pub kind: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body (with the link).
    pub body: String,
    /// The `token` of the message (plaintext; the outbox is for operators and tests).
    pub token: String,
    /// The `tokenId` of the message.
    pub token_id: String,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

impl std::fmt::Debug for OutboxRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRecord")
            .field("app_id", &self.app_id)
            .field("kind", &self.kind)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
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

    /// Every user of an app, oldest first.
    async fn list_users(&self, app_id: &str) -> Result<Vec<UserRecord>, StoreError>;

    /// Delete email/password credentials (and their tokens). Returns whether they existed.
    async fn delete_userpass(&self, app_id: &str, email: &str) -> Result<bool, StoreError>;

    /// Store a token pair, replacing (invalidating) every earlier pair of the same
    /// email and purpose.
    async fn replace_userpass_token(&self, token: &UserpassTokenRecord) -> Result<(), StoreError>;

    /// Consume the pair with these hashes and purpose: delete it and return its email
    /// if it existed and had not expired at `now`. Single use.
    async fn take_userpass_token(
        &self,
        app_id: &str,
        purpose: TokenPurpose,
        token_id_hash: &str,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError>;

    /// Delete every token pair of an email and purpose.
    async fn delete_userpass_tokens(
        &self,
        app_id: &str,
        email: &str,
        purpose: TokenPurpose,
    ) -> Result<(), StoreError>;

    /// Append a message to the outbox.
    async fn add_outbox(&self, message: &OutboxRecord) -> Result<(), StoreError>;

    /// An app's outbox, oldest first.
    async fn list_outbox(&self, app_id: &str) -> Result<Vec<OutboxRecord>, StoreError>;

    /// An identity by provider and provider-specific id.
    async fn find_identity(
        &self,
        app_id: &str,
        provider_type: &str,
        id: &str,
    ) -> Result<Option<IdentityRecord>, StoreError>;

    /// Attach an identity to an existing user. [`StoreError::Conflict`] when it exists.
    async fn add_identity(&self, identity: &IdentityRecord) -> Result<(), StoreError>;

    /// Replace an identity's provider metadata (the profile data the provider vouched
    /// for at the latest login). Returns false when the identity does not exist.
    async fn set_identity_data(
        &self,
        app_id: &str,
        provider_type: &str,
        id: &str,
        data: &Map<String, Value>,
    ) -> Result<bool, StoreError>;

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

    /// Delete every session created by logging in with this identity. Returns how
    /// many there were.
    async fn delete_identity_sessions(
        &self,
        app_id: &str,
        provider_type: &str,
        identity_id: &str,
    ) -> Result<u64, StoreError>;

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

    /// Store a new API key with its `api-key` identity (whose id is the key id) and,
    /// for a server key, its new server user, atomically. [`StoreError::Conflict`]
    /// when the name is taken.
    async fn create_api_key(
        &self,
        key: &ApiKeyRecord,
        identity: &IdentityRecord,
        server_user: Option<&UserRecord>,
    ) -> Result<(), StoreError>;

    /// An API key by id.
    async fn get_api_key(&self, app_id: &str, id: &str)
    -> Result<Option<ApiKeyRecord>, StoreError>;

    /// API keys of one kind, oldest first: of `user_id` when given, else of the whole app.
    async fn list_api_keys(
        &self,
        app_id: &str,
        kind: ApiKeyKind,
        user_id: Option<&str>,
    ) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// Enable or disable an API key. Disabling also deletes the sessions created by
    /// logging in with the key. Returns whether it exists.
    async fn set_api_key_disabled(
        &self,
        app_id: &str,
        id: &str,
        disabled: bool,
    ) -> Result<bool, StoreError>;

    /// Delete an API key, its identity and the sessions created by logging in with
    /// it; a server key's user goes with it. Returns whether the key existed.
    async fn delete_api_key(&self, app_id: &str, id: &str) -> Result<bool, StoreError>;

    /// Close connections (called at shutdown).
    async fn close(&self);
}
