//! The [`Store`] trait: everything the server keeps.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::{
    ApiKeyKind, ApiKeyRecord, AppCounts, AuditRecord, CredentialStatus, IdentityRecord,
    OAuthStateRecord, OutboxRecord, PoolStatus, SessionRecord, StoreError, ThrottleDecision,
    ThrottleHit, ThrottleRule, TokenPurpose, UserRecord, UserSearch, UserpassEmail, UserpassRecord,
    UserpassTokenRecord,
};

/// Storage used by the server. Implementations must be safe for concurrent use, from one
/// process and, for an engine that several processes share (PostgreSQL, a SQLite file),
/// from several: each method is atomic on the database.
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

    /// What a login writes, in one transaction: with `new_user`, the user and its first
    /// identity (as [`Store::create_user_with_identity`]: [`StoreError::Conflict`], and
    /// nothing written, when the identity exists); the session's device (as
    /// [`Store::touch_device`] at the session's `created_at`); the session (as
    /// [`Store::create_session`]). All of it is committed when this returns `Ok`, none of
    /// it otherwise.
    async fn start_session(
        &self,
        new_user: Option<(&UserRecord, &IdentityRecord)>,
        session: &SessionRecord,
    ) -> Result<(), StoreError>;

    /// A session by id.
    async fn get_session(
        &self,
        app_id: &str,
        session_id: &str,
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// A session by id together with its user, in one query (what every authenticated
    /// request reads: nothing is cached, so a deleted session or user, or a disabled user,
    /// shows at the very next call). `None` when the session does not exist.
    async fn get_session_with_user(
        &self,
        app_id: &str,
        session_id: &str,
    ) -> Result<Option<(SessionRecord, UserRecord)>, StoreError>;

    /// [`Store::get_session_with_user`] and the user's identities (oldest first, as
    /// [`Store::list_identities`]), in one query: what the profile route reads.
    async fn get_session_profile(
        &self,
        app_id: &str,
        session_id: &str,
    ) -> Result<Option<(SessionRecord, UserRecord, Vec<IdentityRecord>)>, StoreError>;

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

    /// The emails of the credentials of every app, at most `limit` rows, in
    /// `(app_id, id)` order after the row `after` (`(app_id, id)`; `None`: from the
    /// first). For a start-up pass over every row, a page at a time.
    async fn list_userpass_emails(
        &self,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<UserpassEmail>, StoreError>;

    /// Change the email of the credentials `id` from `old` to `new`, and move the token
    /// pairs of `old` to `new`, in one transaction. `Ok(false)` when those credentials do
    /// not have the email `old` (any more); [`StoreError::Conflict`], and nothing changed,
    /// when other credentials of the app have `new`.
    async fn set_userpass_email(
        &self,
        app_id: &str,
        id: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError>;

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

    /// Count a hit of `bucket` (e.g. a failed-login key the server derives from the app,
    /// the email and the client) under `rule` at `now` (Unix seconds), and decide, in one
    /// atomic step: [`ThrottleDecision::Allowed`] when the hit is within the limit (it is
    /// counted), [`ThrottleDecision::Limited`] when the bucket is over it (the hit is
    /// refused and not counted). Concurrent hits, from any number of tasks or nodes, are
    /// counted one by one: with a limit of 5, exactly 5 of 60 simultaneous hits are
    /// allowed. A bucket is always hit with the same rule.
    ///
    /// The server hits the buckets of a login attempt before it checks the password (the
    /// attempt is reserved), so concurrent wrong passwords cannot all get through.
    async fn throttle_hit(
        &self,
        bucket: &str,
        rule: ThrottleRule,
        now: i64,
    ) -> Result<ThrottleDecision, StoreError>;

    /// Whether a hit of `bucket` with `rule` would be refused at `now`, without counting
    /// one: `Some(retry_after_secs)` when it would, `None` when it would be allowed. For
    /// a check that must not hold a place (a route that counts only when it goes on to
    /// send something); concurrent checks do not block each other.
    async fn throttle_check(
        &self,
        bucket: &str,
        rule: ThrottleRule,
        now: i64,
    ) -> Result<Option<u64>, StoreError>;

    /// Give back an allowed hit that turned out not to count (say, a login that succeeded,
    /// for the buckets that count failures only). Returns whether it was given back: not
    /// when the bucket's window (or count since its latest lockout) is no longer the
    /// hit's. A lockout the hit caused stays.
    async fn throttle_release(&self, hit: &ThrottleHit) -> Result<bool, StoreError>;

    /// Forget a bucket: its count and its lockouts (a successful login clears the bucket
    /// of its email and client). Returns whether it existed.
    async fn throttle_clear(&self, bucket: &str) -> Result<bool, StoreError>;

    /// Settle a login attempt in one call: forget the bucket `clear` (as
    /// [`Store::throttle_clear`]) and give back each hit of `release` (as
    /// [`Store::throttle_release`]). The default makes those calls one by one, stopping
    /// at the first error; an engine may make them in one transaction (the SQLite store
    /// does: one round trip to its writer instead of three).
    async fn throttle_settle(
        &self,
        clear: Option<&str>,
        release: &[ThrottleHit],
    ) -> Result<(), StoreError> {
        settle_one_by_one(self, clear, release).await
    }

    /// Delete the buckets that `now` has expired (a window that has ended, a lockout
    /// bucket past its memory). Returns how many. Safe to run on several nodes at once.
    async fn purge_throttle(&self, now: i64) -> Result<u64, StoreError>;

    /// Delete the sessions that expired at or before `now`. Returns how many. One
    /// statement: safe to run on several nodes at once.
    async fn purge_sessions(&self, now: i64) -> Result<u64, StoreError>;

    /// Delete the inactive anonymous users: users whose every identity is `anon-user`,
    /// created before `inactive_since` and with no session created since, with what they
    /// own. Returns how many. One statement: safe to run on several nodes at once.
    async fn purge_anonymous_users(&self, inactive_since: i64) -> Result<u64, StoreError>;

    /// Store the state of a browser OAuth sign-in. [`StoreError::Conflict`] when a
    /// state with the same hash exists.
    async fn create_oauth_state(&self, state: &OAuthStateRecord) -> Result<(), StoreError>;

    /// Consume the state with this hash: delete it and return it if it existed and had
    /// not expired at `now`. Single use: of concurrent takes (on any node), one gets it.
    async fn take_oauth_state(
        &self,
        state_hash: &str,
        now: i64,
    ) -> Result<Option<OAuthStateRecord>, StoreError>;

    /// Delete the OAuth states that expired at or before `now`. Returns how many.
    async fn purge_oauth_states(&self, now: i64) -> Result<u64, StoreError>;
    /// Ready to serve: the database answers and every migration of this build is
    /// applied. [`StoreError::Unavailable`] otherwise (for a readiness probe).
    async fn check_ready(&self) -> Result<(), StoreError>;

    /// How much of the connection pool is in use now (no database round trip).
    fn pool_status(&self) -> PoolStatus;

    /// Users of an app matching `search`, in id order, at most `limit`, after the user
    /// id `after` (`None`: from the first): one page of a listing of any length.
    async fn search_users(
        &self,
        app_id: &str,
        search: &UserSearch,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<UserRecord>, StoreError>;

    /// A user's sessions (expired ones not yet purged included), oldest first.
    async fn list_user_sessions(
        &self,
        app_id: &str,
        user_id: &str,
    ) -> Result<Vec<SessionRecord>, StoreError>;

    /// An app's users, sessions alive at `now`, and sessions started since `since` by
    /// provider type (sorted by name).
    async fn app_counts(&self, app_id: &str, now: i64, since: i64)
    -> Result<AppCounts, StoreError>;

    /// Append an administrative action to the audit log (its `seq` is the store's).
    async fn add_audit(&self, record: &AuditRecord) -> Result<(), StoreError>;

    /// An app's audit log, newest first, at most `limit` entries with a `seq` below
    /// `before` (`None`: from the newest).
    async fn list_audit(
        &self,
        app_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    /// Close connections (called at shutdown).
    async fn close(&self);
}

/// [`Store::throttle_settle`] as separate calls: the clear, then each release, stopping
/// at the first error (the trait's default, and an engine's way when it cannot do better).
pub(crate) async fn settle_one_by_one<S: Store + ?Sized>(
    store: &S,
    clear: Option<&str>,
    release: &[ThrottleHit],
) -> Result<(), StoreError> {
    if let Some(bucket) = clear {
        store.throttle_clear(bucket).await?;
    }
    for hit in release {
        store.throttle_release(hit).await?;
    }
    Ok(())
}
