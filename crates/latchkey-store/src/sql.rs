//! The [`Store`](crate::Store) methods, written once in SQL that SQLite and PostgreSQL
//! both run: `$N` placeholders (sqlx binds them by number on SQLite too), `ON CONFLICT`,
//! `RETURNING`, `CASE` rather than engine functions. [`impl_store!`] expands them for one
//! engine's store type; what differs between the engines (connecting, migrations, the
//! schema's types) stays in `sqlite.rs` and `postgres.rs`.
//!
//! Cascades are the schema's (foreign keys, and the triggers of migration 5): the delete
//! methods delete one row. Deleting a user takes its identities, sessions and API keys; an
//! identity takes its sessions and, for `local-userpass`, its credentials; credentials take
//! their email's tokens; an API key takes its identity and, for a server key, its user;
//! disabling a key takes its sessions.

use std::sync::LazyLock;

use crate::throttle::MAX_DOUBLINGS;

/// Insert a user: `$1` app, `$2` id, `$3` created, `$4` disabled, `$5` custom data.
pub(crate) const INSERT_USER: &str =
    "INSERT INTO users (app_id, id, created_at, disabled, custom_data)
VALUES ($1, $2, $3, $4, $5)";

/// Insert an identity: `$1` app, `$2` provider, `$3` id, `$4` user, `$5` data, `$6` created.
pub(crate) const INSERT_IDENTITY: &str =
    "INSERT INTO identities (app_id, provider_type, id, user_id, data, created_at)
VALUES ($1, $2, $3, $4, $5, $6)";

/// Record a device (its first user, its last-seen time): `$1` app, `$2` id, `$3` user,
/// `$4` now.
pub(crate) const UPSERT_DEVICE: &str =
    "INSERT INTO devices (app_id, id, user_id, created_at, last_seen_at)
VALUES ($1, $2, $3, $4, $4)
ON CONFLICT (app_id, id) DO UPDATE SET last_seen_at = excluded.last_seen_at";

/// Insert a session: `$1` app, `$2` id, `$3` user, `$4` device, `$5` created, `$6`
/// expires, `$7` provider, `$8` identity.
pub(crate) const INSERT_SESSION: &str = "INSERT INTO sessions (app_id, id, user_id, device_id, created_at, expires_at, provider_type, identity_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// `sql` with each placeholder `$N` renumbered `$(N + by)`, to run several statements
/// with one list of arguments.
pub(crate) fn shift_placeholders(sql: &str, by: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '$' {
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        match digits.parse::<usize>() {
            Ok(n) => out.push_str(&(n + by).to_string()),
            Err(_) => out.push_str(&digits),
        }
    }
    out
}

/// Delete the anonymous users (every identity `anon-user`) created before `$1` that have
/// no session created since `$1`; their identities, sessions and devices go by the
/// schema's cascades. One statement: several nodes may run it at once.
pub(crate) const PURGE_ANONYMOUS_USERS: &str = "
DELETE FROM users AS u
WHERE u.created_at < $1
  AND EXISTS (SELECT 1 FROM identities AS i
              WHERE i.app_id = u.app_id AND i.user_id = u.id AND i.provider_type = 'anon-user')
  AND NOT EXISTS (SELECT 1 FROM identities AS i
                  WHERE i.app_id = u.app_id AND i.user_id = u.id AND i.provider_type <> 'anon-user')
  AND NOT EXISTS (SELECT 1 FROM sessions AS s
                  WHERE s.app_id = u.app_id AND s.user_id = u.id AND s.created_at >= $1)";

/// One page of [`Store::search_users`](crate::Store::search_users). `$1` app, `$2` the
/// search text (`NULL`: any), `$3` it as a `LIKE` pattern for emails, `$4` a provider type
/// (`NULL`: any), `$5` the last user id of the previous page (`NULL`: from the first),
/// `$6` the page size. Walks the users' primary key in order.
pub(crate) const SEARCH_USERS: &str = "
SELECT u.app_id, u.id, u.created_at, u.disabled, u.custom_data FROM users AS u
WHERE u.app_id = $1
  AND ($5 IS NULL OR u.id > $5)
  AND ($2 IS NULL
       OR u.id = $2
       OR EXISTS (SELECT 1 FROM identities AS i
                  WHERE i.app_id = u.app_id AND i.user_id = u.id AND i.id = $2)
       OR EXISTS (SELECT 1 FROM identities AS i
                  JOIN userpass_credentials AS c ON c.app_id = i.app_id AND c.id = i.id
                  WHERE i.app_id = u.app_id AND i.user_id = u.id
                    AND i.provider_type = 'local-userpass'
                    AND LOWER(c.email) LIKE $3 ESCAPE '!'))
  AND ($4 IS NULL
       OR EXISTS (SELECT 1 FROM identities AS i
                  WHERE i.app_id = u.app_id AND i.user_id = u.id AND i.provider_type = $4))
ORDER BY u.id
LIMIT $6";

/// `%text%` (lowercased) as a `LIKE` pattern with `!` as the escape character: the
/// text's own `%`, `_` and `!` match themselves.
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '!') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Why a readiness check failed, without the driver's details (which may name hosts).
pub(crate) fn not_ready(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(_) => "the schema is not migrated".to_owned(),
        sqlx::Error::PoolTimedOut => "no database connection free in time".to_owned(),
        sqlx::Error::PoolClosed => "the database is closed".to_owned(),
        _ => "the database cannot be reached".to_owned(),
    }
}

/// One hit of a [`ThrottleRule::window`](crate::ThrottleRule::window) bucket.
/// `$1` bucket, `$2` limit, `$3` window seconds, `$4` now.
pub(crate) const THROTTLE_WINDOW: &str = "
INSERT INTO throttle AS t (bucket, hits, window_start, expires_at, locked_until, lockouts, allowed)
VALUES ($1, 1, $4, $4 + $3, 0, 0, TRUE)
ON CONFLICT (bucket) DO UPDATE SET
    hits = CASE WHEN t.expires_at <= $4 THEN 1
                WHEN t.hits < $2 THEN t.hits + 1
                ELSE t.hits END,
    window_start = CASE WHEN t.expires_at <= $4 THEN $4 ELSE t.window_start END,
    expires_at = CASE WHEN t.expires_at <= $4 THEN $4 + $3 ELSE t.expires_at END,
    allowed = (t.expires_at <= $4 OR t.hits < $2)
RETURNING allowed, hits, window_start, expires_at, locked_until";

/// Give back one hit (`Store::throttle_release`): `$1` bucket, `$2` the hit's window start.
pub(crate) const THROTTLE_RELEASE: &str = "UPDATE throttle SET hits = hits - 1
     WHERE bucket = $1 AND window_start = $2 AND hits > 0";

/// Forget a bucket (`Store::throttle_clear`): `$1` bucket.
pub(crate) const THROTTLE_CLEAR: &str = "DELETE FROM throttle WHERE bucket = $1";

/// One hit of a [`ThrottleRule::lockout`](crate::ThrottleRule::lockout) bucket.
/// `$1` bucket, `$2` limit, `$3` first lockout seconds, `$4` longest lockout seconds (also
/// how long the bucket is remembered after its latest allowed hit or lockout), `$5` now.
///
/// Of the stored row `t`: a hit while `t.locked_until > now` is refused and changes
/// nothing. Otherwise it counts: from 1 again when the bucket was forgotten
/// (`t.expires_at <= now`) or a lockout has ended (`t.locked_until > 0`), else one more;
/// the hit that reaches the limit locks the bucket for `$3 << lockouts so far` (capped),
/// and the bucket is remembered until `$4` after the lockout ends.
pub(crate) static THROTTLE_LOCKOUT: LazyLock<String> = LazyLock::new(|| {
    let locked = "t.locked_until > $5";
    let forgotten = "t.expires_at <= $5";
    let hits = format!("(CASE WHEN {forgotten} OR t.locked_until > 0 THEN 1 ELSE t.hits + 1 END)");
    let lockouts = format!("(CASE WHEN {forgotten} THEN 0 ELSE t.lockouts END)");
    let doubled = format!(
        "($3 << CAST(CASE WHEN {lockouts} > {MAX_DOUBLINGS} THEN {MAX_DOUBLINGS} ELSE {lockouts} END AS INTEGER))"
    );
    let lockout = format!("(CASE WHEN {doubled} < $4 THEN {doubled} ELSE $4 END)");
    format!(
        "
INSERT INTO throttle AS t (bucket, hits, window_start, expires_at, locked_until, lockouts, allowed)
VALUES ($1, 1, $5, CASE WHEN $2 <= 1 THEN $5 + $3 + $4 ELSE $5 + $4 END,
        CASE WHEN $2 <= 1 THEN $5 + $3 ELSE 0 END,
        CASE WHEN $2 <= 1 THEN 1 ELSE 0 END,
        TRUE)
ON CONFLICT (bucket) DO UPDATE SET
    hits = CASE WHEN {locked} THEN t.hits ELSE {hits} END,
    window_start = CASE WHEN {locked} THEN t.window_start
                        WHEN {forgotten} OR t.locked_until > 0 THEN $5
                        ELSE t.window_start END,
    lockouts = CASE WHEN {locked} THEN t.lockouts
                    WHEN {hits} >= $2 THEN {lockouts} + 1
                    ELSE {lockouts} END,
    locked_until = CASE WHEN {locked} THEN t.locked_until
                        WHEN {hits} >= $2 THEN $5 + {lockout}
                        ELSE 0 END,
    expires_at = CASE WHEN {locked} THEN t.expires_at
                      WHEN {hits} >= $2 THEN $5 + {lockout} + $4
                      ELSE $5 + $4 END,
    allowed = NOT ({locked})
RETURNING allowed, hits, window_start, expires_at, locked_until"
    )
});

/// Implements [`Store`](crate::Store) for `$store`, a struct with a `pool` field (the
/// pool of `$db` that reads go to) and a `writer` field (the pool that every write goes
/// to: the same pool on PostgreSQL, one connection on a SQLite file) and an inherent `async fn run_migrations(&self) -> Result<(),
/// StoreError>`. Also defines the module's private helpers `bind_user`, `bind_identity`,
/// `bind_session` and `bind_device` (a row's values in its statement's order),
/// `insert_user`, `insert_identity`, `insert_session`, `upsert_device` and
/// `delete_tokens`.
macro_rules! impl_store {
    ($store:ty, $db:ty) => {
        /// A query of `$db` with its arguments, as the `bind_*` helpers take and return it.
        type BoundQuery<'q> = sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>;

        /// Bind a user row's values, in [`INSERT_USER`](crate::sql::INSERT_USER)'s order.
        fn bind_user<'q>(query: BoundQuery<'q>, user: &'q UserRecord) -> BoundQuery<'q> {
            query
                .bind(&user.app_id)
                .bind(&user.id)
                .bind(user.created_at)
                .bind(user.disabled)
                .bind(user.custom_data.as_ref().map(Json))
        }

        /// Bind an identity row's values, in
        /// [`INSERT_IDENTITY`](crate::sql::INSERT_IDENTITY)'s order.
        fn bind_identity<'q>(query: BoundQuery<'q>, identity: &'q IdentityRecord) -> BoundQuery<'q> {
            query
                .bind(&identity.app_id)
                .bind(&identity.provider_type)
                .bind(&identity.id)
                .bind(&identity.user_id)
                .bind(Json(&identity.data))
                .bind(identity.created_at)
        }

        /// Bind a session row's values, in
        /// [`INSERT_SESSION`](crate::sql::INSERT_SESSION)'s order.
        fn bind_session<'q>(query: BoundQuery<'q>, s: &'q SessionRecord) -> BoundQuery<'q> {
            query
                .bind(&s.app_id)
                .bind(&s.id)
                .bind(&s.user_id)
                .bind(&s.device_id)
                .bind(s.created_at)
                .bind(s.expires_at)
                .bind(&s.provider_type)
                .bind(&s.identity_id)
        }

        /// Bind a device's values, in [`UPSERT_DEVICE`](crate::sql::UPSERT_DEVICE)'s order.
        fn bind_device<'q>(
            query: BoundQuery<'q>,
            app_id: &'q str,
            device_id: &'q str,
            user_id: &'q str,
            now: i64,
        ) -> BoundQuery<'q> {
            query.bind(app_id).bind(device_id).bind(user_id).bind(now)
        }

        /// Insert one user row (in a transaction or on the pool).
        async fn insert_user<'e, E>(executor: E, user: &UserRecord) -> Result<(), StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            bind_user(sqlx::query(crate::sql::INSERT_USER), user)
                .execute(executor)
                .await?;
            Ok(())
        }

        /// Insert one identity row (in a transaction or on the pool).
        async fn insert_identity<'e, E>(
            executor: E,
            identity: &IdentityRecord,
        ) -> Result<(), StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            bind_identity(sqlx::query(crate::sql::INSERT_IDENTITY), identity)
                .execute(executor)
                .await?;
            Ok(())
        }

        /// Insert one session row (in a transaction or on the pool).
        async fn insert_session<'e, E>(executor: E, s: &SessionRecord) -> Result<(), StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            bind_session(sqlx::query(crate::sql::INSERT_SESSION), s)
                .execute(executor)
                .await?;
            Ok(())
        }

        /// Record a device (in a transaction or on the pool).
        async fn upsert_device<'e, E>(
            executor: E,
            app_id: &str,
            device_id: &str,
            user_id: &str,
            now: i64,
        ) -> Result<(), StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            bind_device(sqlx::query(crate::sql::UPSERT_DEVICE), app_id, device_id, user_id, now)
                .execute(executor)
                .await?;
            Ok(())
        }

        /// Delete every token pair of an email and purpose (in a transaction or on the pool).
        async fn delete_tokens<'e, E>(
            executor: E,
            app_id: &str,
            email: &str,
            purpose: TokenPurpose,
        ) -> Result<(), StoreError>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            sqlx::query(
                "DELETE FROM userpass_tokens WHERE app_id = $1 AND email = $2 AND purpose = $3",
            )
            .bind(app_id)
            .bind(email)
            .bind(purpose)
            .execute(executor)
            .await?;
            Ok(())
        }

        #[async_trait::async_trait]
        impl Store for $store {
            async fn migrate(&self) -> Result<(), StoreError> {
                self.run_migrations().await
            }

            async fn create_user_with_identity(
                &self,
                user: &UserRecord,
                identity: &IdentityRecord,
            ) -> Result<(), StoreError> {
                let mut tx = self.writer.begin().await?;
                insert_user(&mut *tx, user).await?;
                insert_identity(&mut *tx, identity).await?;
                Ok(tx.commit().await?)
            }

            async fn get_user(
                &self,
                app_id: &str,
                user_id: &str,
            ) -> Result<Option<UserRecord>, StoreError> {
                static QUERY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                    format!(
                        "SELECT {} FROM users WHERE app_id = $1 AND id = $2",
                        UserRecord::COLUMNS
                    )
                });
                if let Some(read) = self.user_in_place(&QUERY, app_id, user_id) {
                    return Ok(read);
                }
                Ok(sqlx::query_as(QUERY.as_str())
                    .bind(app_id)
                    .bind(user_id)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn delete_user(&self, app_id: &str, user_id: &str) -> Result<bool, StoreError> {
                let n = sqlx::query("DELETE FROM users WHERE app_id = $1 AND id = $2")
                    .bind(app_id)
                    .bind(user_id)
                    .execute(&self.writer)
                    .await?
                    .rows_affected();
                Ok(n > 0)
            }

            async fn set_user_disabled(
                &self,
                app_id: &str,
                user_id: &str,
                disabled: bool,
            ) -> Result<bool, StoreError> {
                let n = sqlx::query("UPDATE users SET disabled = $1 WHERE app_id = $2 AND id = $3")
                    .bind(disabled)
                    .bind(app_id)
                    .bind(user_id)
                    .execute(&self.writer)
                    .await?
                    .rows_affected();
                Ok(n > 0)
            }

            async fn set_custom_data(
                &self,
                app_id: &str,
                user_id: &str,
                data: Option<&Map<String, Value>>,
            ) -> Result<bool, StoreError> {
                let n =
                    sqlx::query("UPDATE users SET custom_data = $1 WHERE app_id = $2 AND id = $3")
                        .bind(data.map(Json))
                        .bind(app_id)
                        .bind(user_id)
                        .execute(&self.writer)
                        .await?
                        .rows_affected();
                Ok(n > 0)
            }

            async fn list_users(&self, app_id: &str) -> Result<Vec<UserRecord>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT * FROM users WHERE app_id = $1 ORDER BY created_at, rowid",
                )
                .bind(app_id)
                .fetch_all(&self.pool)
                .await?)
            }

            /// The one hand-written cascade: tokens are kept by email, and this also
            /// removes the tokens of an email that has no credentials (the schema's
            /// trigger fires only when a credentials row goes).
            async fn delete_userpass(&self, app_id: &str, email: &str) -> Result<bool, StoreError> {
                let mut tx = self.writer.begin().await?;
                sqlx::query("DELETE FROM userpass_tokens WHERE app_id = $1 AND email = $2")
                    .bind(app_id)
                    .bind(email)
                    .execute(&mut *tx)
                    .await?;
                let n = sqlx::query(
                    "DELETE FROM userpass_credentials WHERE app_id = $1 AND email = $2",
                )
                .bind(app_id)
                .bind(email)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(n > 0)
            }

            /// One upsert on the schema's one pair per (app, email, purpose) (migration 7).
            async fn replace_userpass_token(
                &self,
                t: &UserpassTokenRecord,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO userpass_tokens
                     (app_id, token_id_hash, token_hash, purpose, email, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (app_id, email, purpose) DO UPDATE SET
                         token_id_hash = excluded.token_id_hash,
                         token_hash = excluded.token_hash,
                         created_at = excluded.created_at,
                         expires_at = excluded.expires_at",
                )
                .bind(&t.app_id)
                .bind(&t.token_id_hash)
                .bind(&t.token_hash)
                .bind(t.purpose)
                .bind(&t.email)
                .bind(t.created_at)
                .bind(t.expires_at)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn take_userpass_token(
                &self,
                app_id: &str,
                purpose: TokenPurpose,
                token_id_hash: &str,
                token_hash: &str,
                now: i64,
            ) -> Result<Option<String>, StoreError> {
                let taken: Option<(String, i64)> = sqlx::query_as(
                    "DELETE FROM userpass_tokens
                     WHERE app_id = $1 AND token_id_hash = $2 AND token_hash = $3 AND purpose = $4
                     RETURNING email, expires_at",
                )
                .bind(app_id)
                .bind(token_id_hash)
                .bind(token_hash)
                .bind(purpose)
                .fetch_optional(&self.writer)
                .await?;
                Ok(taken
                    .filter(|(_, expires_at)| *expires_at > now)
                    .map(|(email, _)| email))
            }

            async fn delete_userpass_tokens(
                &self,
                app_id: &str,
                email: &str,
                purpose: TokenPurpose,
            ) -> Result<(), StoreError> {
                delete_tokens(&self.writer, app_id, email, purpose).await
            }

            async fn add_outbox(&self, m: &OutboxRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO outbox
                     (app_id, recipient, kind, subject, body, token, token_id, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&m.app_id)
                .bind(&m.to)
                .bind(&m.kind)
                .bind(&m.subject)
                .bind(m.body.expose())
                .bind(m.token.expose())
                .bind(m.token_id.expose())
                .bind(m.created_at)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn list_outbox(&self, app_id: &str) -> Result<Vec<OutboxRecord>, StoreError> {
                Ok(
                    sqlx::query_as("SELECT * FROM outbox WHERE app_id = $1 ORDER BY seq")
                        .bind(app_id)
                        .fetch_all(&self.pool)
                        .await?,
                )
            }

            async fn find_identity(
                &self,
                app_id: &str,
                provider_type: &str,
                id: &str,
            ) -> Result<Option<IdentityRecord>, StoreError> {
                static QUERY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                    format!(
                        "SELECT {} FROM identities
                         WHERE app_id = $1 AND provider_type = $2 AND id = $3",
                        IdentityRecord::COLUMNS
                    )
                });
                if let Some(read) = self.identity_in_place(&QUERY, app_id, provider_type, id) {
                    return Ok(read);
                }
                Ok(sqlx::query_as(QUERY.as_str())
                .bind(app_id)
                .bind(provider_type)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn add_identity(&self, identity: &IdentityRecord) -> Result<(), StoreError> {
                insert_identity(&self.writer, identity).await
            }

            async fn set_identity_data(
                &self,
                app_id: &str,
                provider_type: &str,
                id: &str,
                data: &Map<String, Value>,
            ) -> Result<bool, StoreError> {
                let n = sqlx::query(
                    "UPDATE identities SET data = $1
                     WHERE app_id = $2 AND provider_type = $3 AND id = $4",
                )
                .bind(Json(data))
                .bind(app_id)
                .bind(provider_type)
                .bind(id)
                .execute(&self.writer)
                .await?
                .rows_affected();
                Ok(n > 0)
            }

            async fn list_identities(
                &self,
                app_id: &str,
                user_id: &str,
            ) -> Result<Vec<IdentityRecord>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT * FROM identities WHERE app_id = $1 AND user_id = $2
                     ORDER BY created_at, rowid",
                )
                .bind(app_id)
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn create_session(&self, s: &SessionRecord) -> Result<(), StoreError> {
                insert_session(&self.writer, s).await
            }

            async fn start_session(
                &self,
                new_user: Option<(&UserRecord, &IdentityRecord)>,
                session: &SessionRecord,
            ) -> Result<(), StoreError> {
                self.write_login(new_user, session).await
            }

            async fn get_session(
                &self,
                app_id: &str,
                session_id: &str,
            ) -> Result<Option<SessionRecord>, StoreError> {
                Ok(
                    sqlx::query_as("SELECT * FROM sessions WHERE app_id = $1 AND id = $2")
                        .bind(app_id)
                        .bind(session_id)
                        .fetch_optional(&self.pool)
                        .await?,
                )
            }

            async fn get_session_with_user(
                &self,
                app_id: &str,
                session_id: &str,
            ) -> Result<Option<(SessionRecord, UserRecord)>, StoreError> {
                static QUERY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                    format!(
                        "SELECT {} FROM sessions AS s
                         JOIN users AS u ON u.app_id = s.app_id AND u.id = s.user_id
                         WHERE s.app_id = $1 AND s.id = $2",
                        crate::records::SessionUserRow::COLUMNS
                    )
                });
                if let Some(read) = self.session_with_user_in_place(&QUERY, app_id, session_id) {
                    return Ok(read);
                }
                let row: Option<crate::records::SessionUserRow> = sqlx::query_as(QUERY.as_str())
                    .bind(app_id)
                    .bind(session_id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(crate::records::SessionUserRow::split))
            }

            async fn get_session_profile(
                &self,
                app_id: &str,
                session_id: &str,
            ) -> Result<Option<(SessionRecord, UserRecord, Vec<IdentityRecord>)>, StoreError>
            {
                static QUERY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                    format!(
                        "SELECT {}, {} FROM sessions AS s
                         JOIN users AS u ON u.app_id = s.app_id AND u.id = s.user_id
                         LEFT JOIN identities AS i
                           ON i.app_id = s.app_id AND i.user_id = s.user_id
                         WHERE s.app_id = $1 AND s.id = $2
                         ORDER BY i.created_at, i.rowid",
                        crate::records::SessionUserRow::COLUMNS,
                        crate::records::SessionProfileRow::IDENTITY_COLUMNS,
                    )
                });
                if let Some(read) = self.session_profile_in_place(&QUERY, app_id, session_id) {
                    return Ok(read);
                }
                let rows: Vec<crate::records::SessionProfileRow> =
                    sqlx::query_as(QUERY.as_str())
                        .bind(app_id)
                        .bind(session_id)
                        .fetch_all(&self.pool)
                        .await?;
                Ok(crate::records::SessionProfileRow::collect(rows))
            }

            async fn delete_session(
                &self,
                app_id: &str,
                session_id: &str,
            ) -> Result<bool, StoreError> {
                let n = sqlx::query("DELETE FROM sessions WHERE app_id = $1 AND id = $2")
                    .bind(app_id)
                    .bind(session_id)
                    .execute(&self.writer)
                    .await?
                    .rows_affected();
                Ok(n > 0)
            }

            async fn delete_user_sessions(
                &self,
                app_id: &str,
                user_id: &str,
            ) -> Result<u64, StoreError> {
                Ok(
                    sqlx::query("DELETE FROM sessions WHERE app_id = $1 AND user_id = $2")
                        .bind(app_id)
                        .bind(user_id)
                        .execute(&self.writer)
                        .await?
                        .rows_affected(),
                )
            }

            async fn delete_identity_sessions(
                &self,
                app_id: &str,
                provider_type: &str,
                identity_id: &str,
            ) -> Result<u64, StoreError> {
                Ok(sqlx::query(
                    "DELETE FROM sessions
                     WHERE app_id = $1 AND provider_type = $2 AND identity_id = $3",
                )
                .bind(app_id)
                .bind(provider_type)
                .bind(identity_id)
                .execute(&self.writer)
                .await?
                .rows_affected())
            }

            async fn device_exists(
                &self,
                app_id: &str,
                device_id: &str,
            ) -> Result<bool, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM devices WHERE app_id = $1 AND id = $2)",
                )
                .bind(app_id)
                .bind(device_id)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn touch_device(
                &self,
                app_id: &str,
                device_id: &str,
                user_id: &str,
                now: i64,
            ) -> Result<(), StoreError> {
                upsert_device(&self.writer, app_id, device_id, user_id, now).await
            }

            async fn create_userpass(&self, r: &UserpassRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO userpass_credentials
                     (app_id, id, email, password_hash, status, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&r.app_id)
                .bind(&r.id)
                .bind(&r.email)
                .bind(r.password_hash.expose())
                .bind(r.status)
                .bind(r.created_at)
                .bind(r.updated_at)
                .execute(&self.writer)
                .await?;
                Ok(())
            }

            async fn find_userpass(
                &self,
                app_id: &str,
                email: &str,
            ) -> Result<Option<UserpassRecord>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT * FROM userpass_credentials WHERE app_id = $1 AND email = $2",
                )
                .bind(app_id)
                .bind(email)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn list_userpass_emails(
                &self,
                after: Option<(&str, &str)>,
                limit: u32,
            ) -> Result<Vec<UserpassEmail>, StoreError> {
                let (app_id, id) = after.unwrap_or(("", ""));
                Ok(sqlx::query_as(
                    "SELECT app_id, id, email FROM userpass_credentials
                     WHERE $1 = 0 OR app_id > $2 OR (app_id = $2 AND id > $3)
                     ORDER BY app_id, id
                     LIMIT $4",
                )
                .bind(i32::from(after.is_some()))
                .bind(app_id)
                .bind(id)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn set_userpass_email(
                &self,
                app_id: &str,
                id: &str,
                old: &str,
                new: &str,
            ) -> Result<bool, StoreError> {
                let mut tx = self.writer.begin().await?;
                let n = sqlx::query(
                    "UPDATE userpass_credentials SET email = $1
                     WHERE app_id = $2 AND id = $3 AND email = $4",
                )
                .bind(new)
                .bind(app_id)
                .bind(id)
                .bind(old)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE userpass_tokens SET email = $1 WHERE app_id = $2 AND email = $3",
                )
                .bind(new)
                .bind(app_id)
                .bind(old)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn set_userpass_status(
                &self,
                app_id: &str,
                email: &str,
                status: CredentialStatus,
                now: i64,
            ) -> Result<bool, StoreError> {
                let n = sqlx::query(
                    "UPDATE userpass_credentials SET status = $1, updated_at = $2
                     WHERE app_id = $3 AND email = $4",
                )
                .bind(status)
                .bind(now)
                .bind(app_id)
                .bind(email)
                .execute(&self.writer)
                .await?
                .rows_affected();
                Ok(n > 0)
            }

            async fn set_userpass_password(
                &self,
                app_id: &str,
                email: &str,
                password_hash: &str,
                now: i64,
            ) -> Result<bool, StoreError> {
                let n = sqlx::query(
                    "UPDATE userpass_credentials SET password_hash = $1, updated_at = $2
                     WHERE app_id = $3 AND email = $4",
                )
                .bind(password_hash)
                .bind(now)
                .bind(app_id)
                .bind(email)
                .execute(&self.writer)
                .await?
                .rows_affected();
                Ok(n > 0)
            }

            async fn create_api_key(
                &self,
                key: &ApiKeyRecord,
                identity: &IdentityRecord,
                server_user: Option<&UserRecord>,
            ) -> Result<(), StoreError> {
                let mut tx = self.writer.begin().await?;
                if let Some(user) = server_user {
                    insert_user(&mut *tx, user).await?;
                }
                sqlx::query(
                    "INSERT INTO api_keys
                     (app_id, id, user_id, kind, name, hash, disabled, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&key.app_id)
                .bind(&key.id)
                .bind(&key.user_id)
                .bind(key.kind)
                .bind(&key.name)
                .bind(key.hash.expose())
                .bind(key.disabled)
                .bind(key.created_at)
                .execute(&mut *tx)
                .await?;
                insert_identity(&mut *tx, identity).await?;
                Ok(tx.commit().await?)
            }

            async fn get_api_key(
                &self,
                app_id: &str,
                id: &str,
            ) -> Result<Option<ApiKeyRecord>, StoreError> {
                Ok(
                    sqlx::query_as("SELECT * FROM api_keys WHERE app_id = $1 AND id = $2")
                        .bind(app_id)
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?,
                )
            }

            async fn list_api_keys(
                &self,
                app_id: &str,
                kind: ApiKeyKind,
                user_id: Option<&str>,
            ) -> Result<Vec<ApiKeyRecord>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT * FROM api_keys
                     WHERE app_id = $1 AND kind = $2 AND ($3 IS NULL OR user_id = $3)
                     ORDER BY created_at, rowid",
                )
                .bind(app_id)
                .bind(kind)
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn set_api_key_disabled(
                &self,
                app_id: &str,
                id: &str,
                disabled: bool,
            ) -> Result<bool, StoreError> {
                let n =
                    sqlx::query("UPDATE api_keys SET disabled = $1 WHERE app_id = $2 AND id = $3")
                        .bind(disabled)
                        .bind(app_id)
                        .bind(id)
                        .execute(&self.writer)
                        .await?
                        .rows_affected();
                Ok(n > 0)
            }

            async fn delete_api_key(&self, app_id: &str, id: &str) -> Result<bool, StoreError> {
                let n = sqlx::query("DELETE FROM api_keys WHERE app_id = $1 AND id = $2")
                    .bind(app_id)
                    .bind(id)
                    .execute(&self.writer)
                    .await?
                    .rows_affected();
                Ok(n > 0)
            }

            async fn throttle_hit(
                &self,
                bucket: &str,
                rule: ThrottleRule,
                now: i64,
            ) -> Result<ThrottleDecision, StoreError> {
                let query = match rule.kind {
                    RuleKind::Window { window_secs } => {
                        sqlx::query_as(crate::sql::THROTTLE_WINDOW)
                            .bind(bucket)
                            .bind(rule.limit)
                            .bind(window_secs)
                            .bind(now)
                    }
                    RuleKind::Lockout {
                        lockout_secs,
                        max_lockout_secs,
                    } => sqlx::query_as(crate::sql::THROTTLE_LOCKOUT.as_str())
                        .bind(bucket)
                        .bind(rule.limit)
                        .bind(lockout_secs)
                        .bind(max_lockout_secs)
                        .bind(now),
                };
                let row: ThrottleRow = query.fetch_one(&self.writer).await?;
                Ok(row.decision(bucket, &rule, now))
            }

            async fn throttle_check(
                &self,
                bucket: &str,
                rule: ThrottleRule,
                now: i64,
            ) -> Result<Option<u64>, StoreError> {
                let row: Option<(i64, i64, i64)> = sqlx::query_as(
                    "SELECT hits, expires_at, locked_until FROM throttle WHERE bucket = $1",
                )
                .bind(bucket)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.and_then(|(hits, expires_at, locked_until)| {
                    crate::throttle::refused_for(&rule, hits, expires_at, locked_until, now)
                }))
            }

            async fn throttle_release(&self, hit: &ThrottleHit) -> Result<bool, StoreError> {
                let n = sqlx::query(crate::sql::THROTTLE_RELEASE)
                .bind(&hit.bucket)
                .bind(hit.window_start)
                .execute(&self.writer)
                .await?
                .rows_affected();
                Ok(n > 0)
            }

            async fn throttle_settle(
                &self,
                clear: Option<&str>,
                release: &[ThrottleHit],
            ) -> Result<(), StoreError> {
                match self.throttle_settle_in_one_call(clear, release).await {
                    Some(settled) => settled,
                    None => crate::store::settle_one_by_one(self, clear, release).await,
                }
            }

            async fn throttle_clear(&self, bucket: &str) -> Result<bool, StoreError> {
                let n = sqlx::query(crate::sql::THROTTLE_CLEAR)
                    .bind(bucket)
                    .execute(&self.writer)
                    .await?
                    .rows_affected();
                Ok(n > 0)
            }

            async fn purge_throttle(&self, now: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query("DELETE FROM throttle WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.writer)
                    .await?
                    .rows_affected())
            }

            async fn purge_sessions(&self, now: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.writer)
                    .await?
                    .rows_affected())
            }

            async fn purge_anonymous_users(&self, inactive_since: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query(crate::sql::PURGE_ANONYMOUS_USERS)
                    .bind(inactive_since)
                    .execute(&self.writer)
                    .await?
                    .rows_affected())
            }

            async fn create_oauth_state(&self, o: &OAuthStateRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO oauth_states
                     (state_hash, app_id, provider_type, redirect_uri, client_state, device,
                      link_user_id, link_session_id, code_verifier, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&o.state_hash)
                .bind(&o.app_id)
                .bind(&o.provider_type)
                .bind(&o.redirect_uri)
                .bind(&o.client_state)
                .bind(&o.device)
                .bind(&o.link_user_id)
                .bind(&o.link_session_id)
                .bind(o.code_verifier.as_ref().map(Secret::expose))
                .bind(o.created_at)
                .bind(o.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn take_oauth_state(
                &self,
                state_hash: &str,
                now: i64,
            ) -> Result<Option<OAuthStateRecord>, StoreError> {
                type Row = (
                    String,
                    String,
                    String,
                    String,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    i64,
                    i64,
                );
                let taken: Option<Row> = sqlx::query_as(
                    "DELETE FROM oauth_states WHERE state_hash = $1
                     RETURNING app_id, provider_type, redirect_uri, client_state, device,
                               link_user_id, link_session_id, code_verifier, created_at,
                               expires_at",
                )
                .bind(state_hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(taken.filter(|row| row.9 > now).map(
                    |(
                        app_id,
                        provider_type,
                        redirect_uri,
                        client_state,
                        device,
                        link_user_id,
                        link_session_id,
                        code_verifier,
                        created_at,
                        expires_at,
                    )| OAuthStateRecord {
                        state_hash: state_hash.to_owned(),
                        app_id,
                        provider_type,
                        redirect_uri,
                        client_state,
                        device,
                        link_user_id,
                        link_session_id,
                        code_verifier: code_verifier.map(Secret::from),
                        created_at,
                        expires_at,
                    },
                ))
            }

            async fn purge_oauth_states(&self, now: i64) -> Result<u64, StoreError> {
                Ok(sqlx::query("DELETE FROM oauth_states WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected())
            }

            async fn check_ready(&self) -> Result<(), StoreError> {
                let applied: Vec<i64> =
                    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                        .fetch_all(&self.pool)
                        .await
                        .map_err(|e| StoreError::Unavailable(crate::sql::not_ready(&e)))?;
                let missing = MIGRATOR
                    .iter()
                    .filter(|m| !applied.contains(&m.version))
                    .count();
                if missing > 0 {
                    return Err(StoreError::Unavailable(format!(
                        "{missing} migration(s) not applied"
                    )));
                }
                Ok(())
            }

            fn pool_status(&self) -> crate::PoolStatus {
                crate::PoolStatus {
                    size: self.pool.size(),
                    idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
                    max: self.pool.options().get_max_connections(),
                }
            }

            async fn search_users(
                &self,
                app_id: &str,
                search: &crate::UserSearch,
                after: Option<&str>,
                limit: u32,
            ) -> Result<Vec<UserRecord>, StoreError> {
                let text = search.text.as_deref().map(str::trim).filter(|t| !t.is_empty());
                let pattern = text.map(crate::sql::contains_pattern);
                Ok(sqlx::query_as(crate::sql::SEARCH_USERS)
                    .bind(app_id)
                    .bind(text)
                    .bind(pattern)
                    .bind(search.provider.as_deref().filter(|p| !p.is_empty()))
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?)
            }

            async fn list_user_sessions(
                &self,
                app_id: &str,
                user_id: &str,
            ) -> Result<Vec<SessionRecord>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT app_id, id, user_id, device_id, created_at, expires_at,
                            provider_type, identity_id
                     FROM sessions WHERE app_id = $1 AND user_id = $2
                     ORDER BY created_at, id",
                )
                .bind(app_id)
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn app_counts(
                &self,
                app_id: &str,
                now: i64,
                since: i64,
            ) -> Result<crate::AppCounts, StoreError> {
                let count = |n: i64| u64::try_from(n).unwrap_or(0);
                let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE app_id = $1")
                    .bind(app_id)
                    .fetch_one(&self.pool)
                    .await?;
                let active: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM sessions WHERE app_id = $1 AND expires_at > $2",
                )
                .bind(app_id)
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
                let logins: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT COALESCE(provider_type, 'unknown') AS p, COUNT(*) FROM sessions
                     WHERE app_id = $1 AND created_at >= $2 GROUP BY p ORDER BY p",
                )
                .bind(app_id)
                .bind(since)
                .fetch_all(&self.pool)
                .await?;
                Ok(crate::AppCounts {
                    users: count(users),
                    active_sessions: count(active),
                    logins_by_provider: logins.into_iter().map(|(p, n)| (p, count(n))).collect(),
                })
            }

            async fn add_audit(&self, r: &crate::AuditRecord) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO audit_log (app_id, at, actor, action, target, outcome)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&r.app_id)
                .bind(r.at)
                .bind(&r.actor)
                .bind(&r.action)
                .bind(&r.target)
                .bind(&r.outcome)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn list_audit(
                &self,
                app_id: &str,
                before: Option<i64>,
                limit: u32,
            ) -> Result<Vec<crate::AuditRecord>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT app_id, seq, at, actor, action, target, outcome FROM audit_log
                     WHERE app_id = $1 AND ($2 IS NULL OR seq < $2)
                     ORDER BY seq DESC LIMIT $3",
                )
                .bind(app_id)
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn close(&self) {
                if let Some(reads) = self.in_place() {
                    reads.close();
                }
                self.writer.close().await;
                self.pool.close().await;
            }
        }
    };
}

pub(crate) use impl_store;

#[cfg(test)]
mod tests {
    use super::shift_placeholders;

    #[test]
    fn placeholders_shift() {
        assert_eq!(
            shift_placeholders("VALUES ($1, $2, $10) -- $x", 5),
            "VALUES ($6, $7, $15) -- $x"
        );
        assert_eq!(shift_placeholders("no placeholders", 3), "no placeholders");
    }
}
