//! The records a [`Store`](crate::Store) keeps. Every record is scoped by app id, so one
//! database serves several apps.
//!
//! Rows map onto records with `#[derive(sqlx::FromRow)]`; enums are stored as their
//! lowercase names (`sqlx::Type`: text on SQLite, an enum type on PostgreSQL), JSON objects
//! with `#[sqlx(json)]` (text on SQLite, JSONB on PostgreSQL), and secrets and hashes as
//! [`Secret`]s, so every `Debug` is derived and none shows them.

use latchkey_protocol::Secret;
use serde_json::{Map, Value};

/// A user.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
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
    #[sqlx(json(nullable))]
    pub custom_data: Option<Map<String, Value>>,
}

/// One identity (provider account) of a user.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
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
    #[sqlx(json)]
    pub data: Map<String, Value>,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// A login session: what a refresh token names.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
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

impl UserRecord {
    /// The columns of a user row, in the order [`UserRecord::from_sqlite`] reads.
    pub(crate) const COLUMNS: &'static str = "app_id, id, created_at, disabled, custom_data";

    /// A user from an in-place read (`sqlite_reads`) of [`Self::COLUMNS`].
    pub(crate) fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(UserRecord {
            app_id: row.get(0)?,
            id: row.get(1)?,
            created_at: row.get(2)?,
            disabled: row.get(3)?,
            custom_data: json_column(row, 4)?,
        })
    }
}

impl IdentityRecord {
    /// The columns of an identity row, in the order [`IdentityRecord::from_sqlite`] reads.
    pub(crate) const COLUMNS: &'static str = "app_id, provider_type, id, user_id, data, created_at";

    /// An identity from an in-place read (`sqlite_reads`) of [`Self::COLUMNS`].
    pub(crate) fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(IdentityRecord {
            app_id: row.get(0)?,
            provider_type: row.get(1)?,
            id: row.get(2)?,
            user_id: row.get(3)?,
            data: json_column(row, 4)?.unwrap_or_default(),
            created_at: row.get(5)?,
        })
    }
}

/// A row of the session-and-user join (`Store::get_session_with_user`): the session's
/// columns under their own names, the user's under `user_`.
#[derive(sqlx::FromRow)]
pub(crate) struct SessionUserRow {
    #[sqlx(flatten)]
    session: SessionRecord,
    user_created_at: i64,
    user_disabled: bool,
    #[sqlx(json(nullable))]
    user_custom_data: Option<Map<String, Value>>,
}

impl SessionUserRow {
    /// The columns of the join, for `SELECT {COLUMNS} FROM sessions AS s JOIN users AS u`.
    pub(crate) const COLUMNS: &'static str = "s.app_id, s.id, s.user_id, s.device_id, \
        s.created_at, s.expires_at, s.provider_type, s.identity_id, \
        u.created_at AS user_created_at, u.disabled AS user_disabled, \
        u.custom_data AS user_custom_data";

    /// The row from an in-place read (`sqlite_reads`), whose columns are [`Self::COLUMNS`]
    /// from index `at`.
    pub(crate) fn from_sqlite(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Self> {
        Ok(SessionUserRow {
            session: SessionRecord {
                app_id: row.get(at)?,
                id: row.get(at + 1)?,
                user_id: row.get(at + 2)?,
                device_id: row.get(at + 3)?,
                created_at: row.get(at + 4)?,
                expires_at: row.get(at + 5)?,
                provider_type: row.get(at + 6)?,
                identity_id: row.get(at + 7)?,
            },
            user_created_at: row.get(at + 8)?,
            user_disabled: row.get(at + 9)?,
            user_custom_data: json_column(row, at + 10)?,
        })
    }

    /// The session and its user, copied.
    fn clone_split(&self) -> (SessionRecord, UserRecord) {
        let user = UserRecord {
            app_id: self.session.app_id.clone(),
            id: self.session.user_id.clone(),
            created_at: self.user_created_at,
            disabled: self.user_disabled,
            custom_data: self.user_custom_data.clone(),
        };
        (self.session.clone(), user)
    }

    /// The session and its user.
    pub(crate) fn split(self) -> (SessionRecord, UserRecord) {
        let user = UserRecord {
            app_id: self.session.app_id.clone(),
            id: self.session.user_id.clone(),
            created_at: self.user_created_at,
            disabled: self.user_disabled,
            custom_data: self.user_custom_data,
        };
        (self.session, user)
    }
}

/// A row of the session-user-identities join (`Store::get_session_profile`): a
/// [`SessionUserRow`] and one identity of the user (none: a user without identities).
#[derive(sqlx::FromRow)]
pub(crate) struct SessionProfileRow {
    #[sqlx(flatten)]
    head: SessionUserRow,
    identity_provider_type: Option<String>,
    identity_key: Option<String>,
    #[sqlx(json(nullable))]
    identity_data: Option<Map<String, Value>>,
    identity_created_at: Option<i64>,
}

impl SessionProfileRow {
    /// The identity columns of the join, after [`SessionUserRow::COLUMNS`].
    pub(crate) const IDENTITY_COLUMNS: &'static str = "i.provider_type AS \
        identity_provider_type, i.id AS identity_key, i.data AS identity_data, \
        i.created_at AS identity_created_at";

    /// The row from an in-place read (`sqlite_reads`): [`SessionUserRow::COLUMNS`], then
    /// [`Self::IDENTITY_COLUMNS`].
    pub(crate) fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(SessionProfileRow {
            head: SessionUserRow::from_sqlite(row, 0)?,
            identity_provider_type: row.get(11)?,
            identity_key: row.get(12)?,
            identity_data: json_column(row, 13)?,
            identity_created_at: row.get(14)?,
        })
    }

    /// The session, its user and the user's identities, from the join's rows (in the
    /// identities' order); `None` for no rows.
    pub(crate) fn collect(
        rows: Vec<SessionProfileRow>,
    ) -> Option<(SessionRecord, UserRecord, Vec<IdentityRecord>)> {
        let mut rows = rows.into_iter().peekable();
        let (session, user) = rows.peek()?.head.clone_split();
        let identities = rows
            .filter_map(|r| {
                Some(IdentityRecord {
                    app_id: user.app_id.clone(),
                    provider_type: r.identity_provider_type?,
                    id: r.identity_key?,
                    user_id: user.id.clone(),
                    data: r.identity_data.unwrap_or_default(),
                    created_at: r.identity_created_at?,
                })
            })
            .collect();
        Some((session, user, identities))
    }
}

/// A nullable JSON-object column (text, as sqlx writes `Json` on SQLite), read in place.
fn json_column(row: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<Map<String, Value>>> {
    let Some(text) = row.get_ref(i)?.as_str_or_null()? else {
        return Ok(None);
    };
    serde_json::from_str(text).map(Some).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Confirmation state of email/password credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(rename_all = "lowercase", type_name = "credential_status")]
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
        [CredentialStatus::Pending, CredentialStatus::Confirmed]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// Registered email/password credentials. The user comes into being at the first
/// login with them (the identity id is the credential id).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserpassRecord {
    /// App id.
    pub app_id: String,
    /// Credential id (24-hex ObjectId), also the `local-userpass` identity id.
    pub id: String,
    /// Email address, compared exactly by the store. The server stores the canonical
    /// form (lowercased, NFKC, the domain in IDNA ASCII form; see docs/security.md);
    /// databases of earlier releases may hold other spellings.
    pub email: String,
    /// argon2id PHC string.
    #[sqlx(try_from = "String")]
    pub password_hash: Secret,
    /// Pending or confirmed.
    pub status: CredentialStatus,
    /// Registration time, Unix seconds.
    pub created_at: i64,
    /// Last change, Unix seconds.
    pub updated_at: i64,
}

/// The email of one row of email/password credentials (see
/// [`Store::list_userpass_emails`](crate::Store::list_userpass_emails)).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserpassEmail {
    /// App id.
    pub app_id: String,
    /// Credential id.
    pub id: String,
    /// Email address as stored.
    pub email: String,
}

/// Who an API key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(rename_all = "lowercase", type_name = "api_key_kind")]
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
        [ApiKeyKind::User, ApiKeyKind::Server]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// An API key (`api-key` provider). The secret itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
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
    #[sqlx(try_from = "String")]
    pub hash: Secret,
    /// A disabled key cannot log in.
    pub disabled: bool,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// What a confirmation / reset token pair is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(rename_all = "lowercase", type_name = "token_purpose")]
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

/// A confirmation / reset message, exactly as sent. Serializes (for the admin API's
/// outbox) with every field in plain text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct OutboxRecord {
    /// App id.
    pub app_id: String,
    /// Recipient address.
    #[sqlx(rename = "recipient")]
    pub to: String,
    /// `confirm` or `reset`.
    pub kind: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body (with the link, so it holds the token too).
    #[serde(serialize_with = "exposed")]
    #[sqlx(try_from = "String")]
    pub body: Secret,
    /// The `token` of the message (plaintext; the outbox is for operators and tests).
    #[serde(serialize_with = "exposed")]
    #[sqlx(try_from = "String")]
    pub token: Secret,
    /// The `tokenId` of the message.
    #[serde(serialize_with = "exposed")]
    #[sqlx(try_from = "String")]
    pub token_id: Secret,
    /// Creation time, Unix seconds.
    pub created_at: i64,
}

/// The server-side state of one browser OAuth sign-in (the redirect flow): what the
/// callback needs to finish it. Found by the hash of the `state` sent to the provider;
/// single use and expiring.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthStateRecord {
    /// SHA-256 (hex) of the state sent to the provider; the state itself is never stored.
    pub state_hash: String,
    /// App id.
    pub app_id: String,
    /// The provider (`oauth2-google`, ...).
    pub provider_type: String,
    /// Where the browser goes at the end (an allowed redirect URI of the app).
    pub redirect_uri: String,
    /// The client's own `state`, echoed back as `_baas_state`.
    pub client_state: String,
    /// The client's device information (a JSON object as text), when it sent one.
    pub device: Option<String>,
    /// For a link: the user the new identity is linked to.
    pub link_user_id: Option<String>,
    /// For a link: the session that asked for it (it must still exist at the callback).
    pub link_session_id: Option<String>,
    /// The PKCE code verifier, when the provider takes PKCE.
    pub code_verifier: Option<Secret>,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
}

/// Serialize a secret as its plain value: the outbox exists to be read by operators.
fn exposed<S: serde::Serializer>(secret: &Secret, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_round_trip() {
        for s in [CredentialStatus::Pending, CredentialStatus::Confirmed] {
            assert_eq!(CredentialStatus::from_name(s.as_str()), Some(s));
        }
        for k in [ApiKeyKind::User, ApiKeyKind::Server] {
            assert_eq!(ApiKeyKind::from_name(k.as_str()), Some(k));
        }
        assert_eq!(CredentialStatus::from_name("Pending"), None);
        assert_eq!(ApiKeyKind::from_name(""), None);
    }

    #[test]
    fn outbox_serializes_plainly_and_debugs_redacted() {
        let m = OutboxRecord {
            app_id: "a".into(),
            to: "x@y.z".into(),
            kind: "confirm".into(),
            subject: "s".into(),
            body: "link?token=tok-123".into(),
            token: "tok-123".into(),
            token_id: "tid-456".into(),
            created_at: 7,
        };
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"app_id": "a", "to": "x@y.z", "kind": "confirm", "subject": "s",
                "body": "link?token=tok-123", "token": "tok-123", "token_id": "tid-456",
                "created_at": 7})
        );
        let shown = format!("{m:?}");
        assert!(
            !shown.contains("tok-123") && !shown.contains("tid-456"),
            "{shown}"
        );
    }
}

/// One administrative action in the audit log: who did what to which user or key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRecord {
    /// App id.
    pub app_id: String,
    /// Position in the log, given by the store (ignored by
    /// [`Store::add_audit`](crate::Store::add_audit)); later actions have larger ones.
    pub seq: i64,
    /// When, Unix seconds.
    pub at: i64,
    /// Who: the channel (`console`, `admin-api`, `cli`) and, when known, the client
    /// address, e.g. `console 127.0.0.1`.
    pub actor: String,
    /// What, e.g. `disable_user`, `create_server_key`.
    pub action: String,
    /// On which user or key (its id, or a new key's name); empty for an app-wide action.
    pub target: String,
    /// `ok`, or the error code of the refusal.
    pub outcome: String,
}

/// What [`Store::search_users`](crate::Store::search_users) looks for. Empty fields
/// match every user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserSearch {
    /// A user id, an identity id (exactly), or part of an email address (any case).
    pub text: Option<String>,
    /// Users with an identity of this provider type, e.g. `local-userpass`.
    pub provider: Option<String>,
}

/// Counts of an app, for an at-a-glance view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppCounts {
    /// Users (server API key users included).
    pub users: u64,
    /// Sessions that have not expired.
    pub active_sessions: u64,
    /// Sessions started since the asked time, by the provider type they logged in
    /// with (`unknown` for sessions that did not record it), by provider name.
    pub logins_by_provider: Vec<(String, u64)>,
}

/// How much of its connection pool a store uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// Open connections.
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// Most connections the pool opens.
    pub max: u32,
}
