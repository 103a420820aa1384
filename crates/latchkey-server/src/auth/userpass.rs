//! The `local-userpass` flows that are not login: registration, confirmation and
//! password reset (the `register`, `confirm`, `confirm/send`, `confirm/call`, `reset`,
//! `reset/send` and `reset/call` routes), with their message limits.
//!
//! Token pairs (`token`, `tokenId`) are 128 random bits each (32 hex digits), bound
//! to one email and one purpose, single use, valid for [`TOKEN_TTL_SECS`], and
//! stored as SHA-256 hashes. Messages go through [`super::mail::Mailer`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use latchkey_protocol::routes::EmailPasswordRoute;
use latchkey_protocol::{ProviderType, Secret};
use serde_json::{Map, Value, json};

use super::mail;
use super::state::{AppRuntime, ServerState};
use super::throttle::{Key, identifier_key};
use crate::error::Error;
use crate::ids::{new_object_id, new_random_id, sha256_hex};
use crate::providers::local_userpass::{canonical_email, find_credentials};
use crate::providers::required_str;
use crate::store::{
    CredentialStatus, OutboxRecord, Store, StoreError, TokenPurpose, UserpassRecord,
    UserpassTokenRecord,
};
use crate::webhooks::call_json;

/// Lifetime of confirmation and reset token pairs (30 minutes, as App Services).
pub(crate) const TOKEN_TTL_SECS: i64 = 30 * 60;
/// Timeout of the confirmation and reset webhooks.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Shortest accepted password, in characters (App Services).
pub(crate) const MIN_PASSWORD_CHARS: usize = 6;
/// Longest accepted password, in characters (App Services).
pub(crate) const MAX_PASSWORD_CHARS: usize = 128;

type Body = Map<String, Value>;

fn failed_to_confirm(email: &str) -> Error {
    Error::bad_request(format!("failed to confirm user \"{email}\""))
}

fn failed_to_reset(email: &str) -> Error {
    Error::bad_request(format!("failed to reset password for user \"{email}\""))
}

/// The app `app_id`, which must have `local-userpass` enabled.
pub(crate) fn app(state: &ServerState, app_id: &str) -> Result<Arc<AppRuntime>, Error> {
    let app = state.app(app_id)?;
    app.provider(ProviderType::EmailPassword.as_str())?;
    Ok(app)
}

/// How a route counts against the message limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// Not limited (token-based routes: `confirm`, `reset`).
    None,
    /// Every request counts as a message for its `email`.
    Message,
    /// Checked first, counted as a message only once one is sent (`register`).
    Checked,
}

impl Limit {
    fn of(route: EmailPasswordRoute) -> Limit {
        match route {
            EmailPasswordRoute::Confirm | EmailPasswordRoute::Reset => Limit::None,
            EmailPasswordRoute::Register => Limit::Checked,
            _ => Limit::Message,
        }
    }
}

/// Run the flow of `route` for `app` (from [`app`]) with a request `body` from
/// `client_ip`, after the message limits (see [`super::throttle`]).
pub(crate) async fn run(
    state: &ServerState,
    app: &AppRuntime,
    route: EmailPasswordRoute,
    body: &Body,
    client_ip: Option<IpAddr>,
) -> Result<(), Error> {
    limit(state, app, body, Limit::of(route), client_ip).await?;
    match route {
        EmailPasswordRoute::Register => register(state, app, body).await,
        EmailPasswordRoute::Confirm => confirm(state, app, body).await,
        EmailPasswordRoute::ConfirmSend => confirm_send(state, app, body).await,
        EmailPasswordRoute::ConfirmCall => confirm_call(state, app, body).await,
        EmailPasswordRoute::Reset => reset(state, app, body).await,
        EmailPasswordRoute::ResetSend => reset_send(state, app, body).await,
        EmailPasswordRoute::ResetCall => reset_call(state, app, body).await,
        other => Err(Error::internal(&format_args!(
            "email/password route {} is not served",
            other.suffix()
        ))),
    }
}

/// The message-throttling key of `email` in `app`: of its canonical form, so that every
/// spelling of an address shares one limit (as written when it has none; such a
/// request is then refused).
fn message_key(app: &AppRuntime, email: &str) -> Key {
    let canonical = canonical_email(email);
    let email = canonical.as_deref().unwrap_or(email);
    identifier_key(app.id(), "local-userpass messages", email)
}

/// Apply the message limits to a request.
async fn limit(
    state: &ServerState,
    app: &AppRuntime,
    body: &Body,
    limit: Limit,
    client_ip: Option<IpAddr>,
) -> Result<(), Error> {
    if limit == Limit::None {
        return Ok(());
    }
    let email = match body.get("email") {
        Some(Value::String(e)) => Some(message_key(app, e)),
        _ => None,
    };
    let attempt = state
        .throttle
        .message_attempt(
            state.store.as_ref(),
            email.as_ref(),
            client_ip,
            limit == Limit::Message,
            state.clock.now_secs(),
        )
        .await;
    if let Err(Error::TooManyRequests { .. }) = &attempt {
        tracing::info!(
            app = app.id(),
            "confirmation / reset request refused: throttled"
        );
    }
    attempt
}

/// Validate a password's length in characters.
fn check_password(password: &str) -> Result<(), Error> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(Error::bad_request(format!(
            "password must be between {MIN_PASSWORD_CHARS} and {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// `register` `{email, password}`: store the credentials under the email's canonical
/// form (see [`canonical_email`]; a spelling of a registered address is 409
/// `AccountNameInUse`), confirmed at once with `auto_confirm`; else run the
/// confirmation function, or send the confirmation message.
async fn register(state: &ServerState, app: &AppRuntime, body: &Body) -> Result<(), Error> {
    let email = canonical_email(required_str(body, "email")?)?;
    let email = email.as_str();
    let password = Secret::new(required_str(body, "password")?);
    check_password(password.expose())?;
    // Hash before looking for a duplicate so both outcomes cost the same.
    let password_hash = state
        .hasher
        .hash(&password)
        .await
        .map_err(|e| Error::internal(&e))?;
    let now = state.clock.now_secs();
    let status = if app.config.providers.local_userpass.auto_confirm {
        CredentialStatus::Confirmed
    } else {
        CredentialStatus::Pending
    };
    let record = UserpassRecord {
        app_id: app.id().to_owned(),
        id: new_object_id(&state.clock).to_string(),
        email: email.to_owned(),
        password_hash: password_hash.into(),
        status,
        created_at: now,
        updated_at: now,
    };
    match state.store.create_userpass(&record).await {
        Ok(()) => {
            tracing::info!(app = app.id(), credential = %record.id, status = status.as_str(), "registered email/password credentials");
        }
        Err(StoreError::Conflict) => {
            return Err(Error::account_name_in_use("name already in use"));
        }
        Err(e) => return Err(e.into()),
    }
    if status == CredentialStatus::Pending {
        after_register(state, app, email).await?;
    }
    Ok(())
}

/// A fresh token pair, stored hashed for `email` and `purpose` (replacing older pairs).
async fn new_token_pair(
    state: &ServerState,
    app: &AppRuntime,
    email: &str,
    purpose: TokenPurpose,
) -> Result<(String, String), Error> {
    let token = new_random_id();
    let token_id = new_random_id();
    let now = state.clock.now_secs();
    state
        .store
        .replace_userpass_token(&UserpassTokenRecord {
            app_id: app.id().to_owned(),
            purpose,
            email: email.to_owned(),
            token_hash: sha256_hex(&token),
            token_id_hash: sha256_hex(&token_id),
            created_at: now,
            expires_at: now + TOKEN_TTL_SECS,
        })
        .await?;
    Ok((token, token_id))
}

/// Consume a token pair from a `{token, tokenId}` body: the email it was issued for.
async fn take_token(
    state: &ServerState,
    app: &AppRuntime,
    body: &Body,
    purpose: TokenPurpose,
) -> Result<String, Error> {
    let token = required_str(body, "token")?;
    let token_id = required_str(body, "tokenId")?;
    let email = state
        .store
        .take_userpass_token(
            app.id(),
            purpose,
            &sha256_hex(token_id),
            &sha256_hex(token),
            state.clock.now_secs(),
        )
        .await?;
    email.ok_or_else(|| {
        tracing::info!(
            app = app.id(),
            purpose = purpose.as_str(),
            "invalid token pair"
        );
        Error::UserpassTokenInvalid
    })
}

/// The credentials an email names (see [`find_credentials`]), or
/// [`Error::UserNotFound`]. Later steps use the record's stored email.
async fn credentials(
    state: &ServerState,
    app: &AppRuntime,
    email: &str,
) -> Result<UserpassRecord, Error> {
    find_credentials(state.store.as_ref(), app.id(), email)
        .await?
        .ok_or(Error::UserNotFound)
}

/// Put a confirm / reset message into the outbox and SMTP.
async fn send_message(
    state: &ServerState,
    app: &AppRuntime,
    email: &str,
    purpose: TokenPurpose,
) -> Result<(), Error> {
    let (token, token_id) = new_token_pair(state, app, email, purpose).await?;
    let cfg = &app.config.providers.local_userpass;
    let (base, subject, intro) = match purpose {
        TokenPurpose::Confirm => (
            cfg.confirmation_url.as_deref(),
            "Confirm your email address",
            "Please confirm your email address.",
        ),
        _ => (
            cfg.reset_url.as_deref(),
            "Reset your password",
            "A password reset was requested for your account.",
        ),
    };
    let action = match base {
        Some(base) => format!(
            "Open this link:\n\n{}\n",
            mail::link(base, &token, &token_id)
        ),
        None => format!("token: {token}\ntokenId: {token_id}\n"),
    };
    let body = format!(
        "{intro}\n\n{action}\nThe link is valid for 30 minutes. If you did not ask for this, \
         ignore this message.\n"
    );
    let message = OutboxRecord {
        app_id: app.id().to_owned(),
        to: email.to_owned(),
        kind: purpose.as_str().to_owned(),
        subject: subject.to_owned(),
        body: body.into(),
        token: token.into(),
        token_id: token_id.into(),
        created_at: state.clock.now_secs(),
    };
    state
        .mailer
        .send(state.store.as_ref(), message, cfg.email_from.as_deref())
        .await?;
    tracing::info!(app = app.id(), kind = purpose.as_str(), "queued message");
    Ok(())
}

/// Outcome of a confirmation / reset function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Success,
    Pending,
    Fail,
}

/// Call a webhook and read its `{"status"}`. A failed call or an unknown status is `Err`.
async fn call_status(
    state: &ServerState,
    app: &AppRuntime,
    url: &str,
    payload: &Value,
) -> Result<Status, ()> {
    let secret = app.config.providers.local_userpass.webhook_secret.as_ref();
    let answer = call_json(
        &state.webhook_http,
        url,
        secret.map(|s| (s, state.clock.now_secs())),
        payload,
        WEBHOOK_TIMEOUT,
    )
    .await
    .map_err(|e| tracing::warn!(app = app.id(), error = %e, "userpass webhook failed"))?;
    let answer = latchkey_protocol::ejson::to_plain(answer);
    match answer.get("status").and_then(Value::as_str) {
        Some("success") => Ok(Status::Success),
        Some("pending") => Ok(Status::Pending),
        Some("fail") => Ok(Status::Fail),
        _ => {
            tracing::warn!(
                app = app.id(),
                "userpass webhook answered without a valid status"
            );
            Err(())
        }
    }
}

/// Run the confirmation function for pending credentials. `Err(())` when the call failed.
async fn run_confirmation(
    state: &ServerState,
    app: &AppRuntime,
    url: &str,
    email: &str,
) -> Result<Result<Status, ()>, Error> {
    let (token, token_id) = new_token_pair(state, app, email, TokenPurpose::Confirm).await?;
    let payload = json!({"token": token, "tokenId": token_id, "username": email});
    let status = call_status(state, app, url, &payload).await;
    if status == Ok(Status::Success) {
        confirm_email(state, app, email).await?;
    }
    Ok(status)
}

async fn confirm_email(state: &ServerState, app: &AppRuntime, email: &str) -> Result<(), Error> {
    let now = state.clock.now_secs();
    let store = &state.store;
    store
        .delete_userpass_tokens(app.id(), email, TokenPurpose::Confirm)
        .await?;
    if !store
        .set_userpass_status(app.id(), email, CredentialStatus::Confirmed, now)
        .await?
    {
        return Err(Error::UserpassTokenInvalid);
    }
    tracing::info!(app = app.id(), "confirmed email/password credentials");
    Ok(())
}

/// After registering pending credentials: run the confirmation function, or send
/// the confirmation email.
async fn after_register(state: &ServerState, app: &AppRuntime, email: &str) -> Result<(), Error> {
    state
        .throttle
        .message_sent(
            state.store.as_ref(),
            &message_key(app, email),
            state.clock.now_secs(),
        )
        .await?;
    let cfg = &app.config.providers.local_userpass;
    let Some(url) = cfg.confirmation_webhook_url.as_deref() else {
        return send_message(state, app, email, TokenPurpose::Confirm).await;
    };
    match run_confirmation(state, app, url, email).await? {
        Ok(Status::Success | Status::Pending) => Ok(()),
        // A rejection or a failed call: no account is created, the email can register again.
        Ok(Status::Fail) | Err(()) => {
            state.store.delete_userpass(app.id(), email).await?;
            Err(failed_to_confirm(email))
        }
    }
}

/// `confirm` `{token, tokenId}`.
async fn confirm(state: &ServerState, app: &AppRuntime, body: &Body) -> Result<(), Error> {
    let email = take_token(state, app, body, TokenPurpose::Confirm).await?;
    confirm_email(state, app, &email).await
}

/// `confirm/send` `{email}`.
async fn confirm_send(state: &ServerState, app: &AppRuntime, body: &Body) -> Result<(), Error> {
    let record = credentials(state, app, required_str(body, "email")?).await?;
    if record.status == CredentialStatus::Confirmed {
        return Err(Error::UserAlreadyConfirmed);
    }
    send_message(state, app, &record.email, TokenPurpose::Confirm).await
}

/// `confirm/call` `{email}`.
async fn confirm_call(state: &ServerState, app: &AppRuntime, body: &Body) -> Result<(), Error> {
    let given = required_str(body, "email")?;
    let Some(url) = app
        .config
        .providers
        .local_userpass
        .confirmation_webhook_url
        .as_deref()
    else {
        return Err(Error::bad_request(
            "confirmation is not handled by a function (no confirmation_webhook_url)",
        ));
    };
    let record = credentials(state, app, given).await?;
    if record.status == CredentialStatus::Confirmed {
        return Err(Error::UserAlreadyConfirmed);
    }
    let email = record.email.as_str();
    match run_confirmation(state, app, url, email).await? {
        Ok(Status::Success | Status::Pending) => Ok(()),
        Ok(Status::Fail) => {
            state.store.delete_userpass(app.id(), email).await?;
            Err(failed_to_confirm(email))
        }
        // A failed call leaves the credentials pending: the client may retry.
        Err(()) => Err(failed_to_confirm(email)),
    }
}

/// `reset/send` `{email}`.
async fn reset_send(state: &ServerState, app: &AppRuntime, body: &Body) -> Result<(), Error> {
    let given = required_str(body, "email")?;
    if app
        .config
        .providers
        .local_userpass
        .reset_webhook_url
        .is_some()
    {
        return Err(Error::bad_request("reset is handled by a function"));
    }
    let record = credentials(state, app, given).await?;
    send_message(state, app, &record.email, TokenPurpose::Reset).await
}

/// Set a new password and revoke every session of the user.
async fn set_password(
    state: &ServerState,
    app: &AppRuntime,
    email: &str,
    password: &Secret,
) -> Result<(), Error> {
    let hash = state
        .hasher
        .hash(password)
        .await
        .map_err(|e| Error::internal(&e))?;
    let store = &state.store;
    let now = state.clock.now_secs();
    if !store
        .set_userpass_password(app.id(), email, &hash, now)
        .await?
    {
        return Err(Error::UserpassTokenInvalid);
    }
    store
        .delete_userpass_tokens(app.id(), email, TokenPurpose::Reset)
        .await?;
    if let Some(record) = store.find_userpass(app.id(), email).await?
        && let Some(identity) = store
            .find_identity(app.id(), ProviderType::EmailPassword.as_str(), &record.id)
            .await?
    {
        let n = store
            .delete_user_sessions(app.id(), &identity.user_id)
            .await?;
        tracing::info!(app = app.id(), user = %identity.user_id, revoked = n, "password reset; sessions revoked");
    } else {
        tracing::info!(app = app.id(), "password reset");
    }
    Ok(())
}

/// `reset` `{password, token, tokenId}`.
async fn reset(state: &ServerState, app: &AppRuntime, body: &Body) -> Result<(), Error> {
    let password = Secret::new(required_str(body, "password")?);
    // Check the password first so that a bad one does not burn the token.
    check_password(password.expose())?;
    let email = take_token(state, app, body, TokenPurpose::Reset).await?;
    set_password(state, app, &email, &password).await
}

/// `reset/call` `{email, password, arguments}`.
async fn reset_call(state: &ServerState, app: &AppRuntime, body: &Body) -> Result<(), Error> {
    let given = required_str(body, "email")?;
    let password = Secret::new(required_str(body, "password")?);
    let arguments = match body.get("arguments") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(Error::bad_request("'arguments' must be an array")),
    };
    let Some(url) = app
        .config
        .providers
        .local_userpass
        .reset_webhook_url
        .as_deref()
    else {
        return Err(Error::bad_request(
            "reset is not handled by a function (no reset_webhook_url)",
        ));
    };
    check_password(password.expose())?;
    let record = credentials(state, app, given).await?;
    let email = record.email.as_str();
    let (token, token_id) = new_token_pair(state, app, email, TokenPurpose::Reset).await?;
    let payload = json!({
        "username": email,
        "password": password.expose(),
        "token": token,
        "tokenId": token_id,
        "currentPasswordValid": false,
        "arguments": arguments,
    });
    match call_status(state, app, url, &payload).await {
        Ok(Status::Success) => set_password(state, app, email, &password).await,
        Ok(Status::Pending) => Ok(()),
        Ok(Status::Fail) | Err(()) => {
            state
                .store
                .delete_userpass_tokens(app.id(), email, TokenPurpose::Reset)
                .await?;
            Err(failed_to_reset(email))
        }
    }
}

/// Rows read at a time by [`canonicalize_stored_emails`].
const CANONICALIZE_PAGE: u32 = 500;

/// What [`canonicalize_stored_emails`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct EmailReport {
    /// Rows whose email was rewritten to its canonical form.
    pub(crate) canonicalized: u64,
    /// `(app, credential id, the other credential id)`: rows left as they are because
    /// other credentials already have their canonical form.
    pub(crate) collisions: Vec<(String, String, String)>,
    /// `(app, credential id)`: rows left as they are because their email has no
    /// canonical form (an invisible or control character, an invalid domain).
    pub(crate) invalid: Vec<(String, String)>,
}

/// The user of credentials `id`, for messages ("-" when it has not logged in yet).
async fn credential_user(store: &dyn Store, app_id: &str, id: &str) -> String {
    match store
        .find_identity(app_id, ProviderType::EmailPassword.as_str(), id)
        .await
    {
        Ok(Some(identity)) => identity.user_id,
        _ => "-".to_owned(),
    }
}

/// Start-up step: bring the emails that earlier releases stored as written to their
/// canonical form ([`canonical_email`]), every app's, a page at a time; each row is
/// rewritten with its token pairs in one transaction, so a crash part-way is resumed at
/// the next start.
///
/// Nothing is merged: a row whose canonical form other credentials already have (two
/// accounts that are one address, e.g. `Victim@example.com` beside
/// `victim@example.com`) is left as it is and reported at error level with both
/// credential ids and their user ids, at every start until an operator resolves it (see
/// docs/security.md); each stays reachable by the spelling it was registered with (see
/// [`find_credentials`]). Rows whose email has no canonical form are reported too.
pub(crate) async fn canonicalize_stored_emails(
    store: &dyn Store,
) -> Result<EmailReport, StoreError> {
    let mut report = EmailReport::default();
    let mut after: Option<(String, String)> = None;
    loop {
        let page = store
            .list_userpass_emails(
                after.as_ref().map(|(a, i)| (a.as_str(), i.as_str())),
                CANONICALIZE_PAGE,
            )
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.app_id.clone(), last.id.clone()));
        for row in page {
            let canonical = match canonical_email(&row.email) {
                Ok(canonical) if canonical == row.email => continue,
                Ok(canonical) => canonical,
                Err(e) => {
                    let user = credential_user(store, &row.app_id, &row.id).await;
                    tracing::error!(
                        app = %row.app_id,
                        credential = %row.id,
                        user = %user,
                        reason = %e,
                        "stored email has no canonical form; left as it is (reachable by its exact spelling only): the operator decides (docs/security.md)"
                    );
                    report.invalid.push((row.app_id, row.id));
                    continue;
                }
            };
            match store
                .set_userpass_email(&row.app_id, &row.id, &row.email, &canonical)
                .await
            {
                Ok(true) => report.canonicalized += 1,
                Ok(false) => {}
                Err(StoreError::Conflict) => {
                    let other = store
                        .find_userpass(&row.app_id, &canonical)
                        .await?
                        .map_or_else(|| "-".to_owned(), |r| r.id);
                    let user = credential_user(store, &row.app_id, &row.id).await;
                    let other_user = credential_user(store, &row.app_id, &other).await;
                    tracing::error!(
                        app = %row.app_id,
                        credential = %row.id,
                        user = %user,
                        other_credential = %other,
                        other_user = %other_user,
                        "email collision: two credentials are one canonical address; both kept, each reachable by its own spelling, nothing merged: the operator decides (docs/security.md)"
                    );
                    report.collisions.push((row.app_id, row.id, other));
                }
                Err(e) => return Err(e),
            }
        }
    }
    if report.canonicalized > 0 {
        tracing::info!(
            rows = report.canonicalized,
            "stored emails brought to their canonical form"
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_rules() {
        assert!(canonical_email("a@b.c").is_ok());
        assert!(canonical_email("Some.One+tag@example.org").is_ok());
        assert!(canonical_email("nobody").is_err());
        assert!(canonical_email("@b.c").is_err());
        assert!(canonical_email("a@").is_err());
        assert!(canonical_email("a b@c.d").is_err());
        assert!(canonical_email(&format!("{}@b.c", "x".repeat(300))).is_err());
    }

    #[test]
    fn password_length_in_characters() {
        assert!(check_password("12345").is_err());
        assert!(check_password("123456").is_ok());
        assert!(check_password(&"x".repeat(128)).is_ok());
        assert!(check_password(&"x".repeat(129)).is_err());
        // Six multi-byte characters are six characters.
        assert!(check_password("éééééé").is_ok());
        let e = check_password("1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "password must be between 6 and 128 characters"
        );
    }
}
