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
use crate::providers::local_userpass::MAX_EMAIL_LEN;
use crate::providers::required_str;
use crate::store::{
    CredentialStatus, OutboxRecord, StoreError, TokenPurpose, UserpassRecord, UserpassTokenRecord,
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

/// The message-throttling key of `email` in `app`.
fn message_key(app: &AppRuntime, email: &str) -> Key {
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

/// Validate an email address the way App Services does loosely: something@something,
/// no whitespace, bounded length.
fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && email.len() <= MAX_EMAIL_LEN
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
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

/// `register` `{email, password}`: store the credentials (confirmed at once with
/// `auto_confirm`); else run the confirmation function, or send the confirmation
/// message.
async fn register(state: &ServerState, app: &AppRuntime, body: &Body) -> Result<(), Error> {
    let email = required_str(body, "email")?;
    let password = Secret::new(required_str(body, "password")?);
    if !valid_email(email) {
        return Err(Error::bad_request("email invalid"));
    }
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

async fn credentials(
    state: &ServerState,
    app: &AppRuntime,
    email: &str,
) -> Result<UserpassRecord, Error> {
    state
        .store
        .find_userpass(app.id(), email)
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
    let email = required_str(body, "email")?;
    let record = credentials(state, app, email).await?;
    if record.status == CredentialStatus::Confirmed {
        return Err(Error::UserAlreadyConfirmed);
    }
    send_message(state, app, email, TokenPurpose::Confirm).await
}

/// `confirm/call` `{email}`.
async fn confirm_call(state: &ServerState, app: &AppRuntime, body: &Body) -> Result<(), Error> {
    let email = required_str(body, "email")?;
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
    let record = credentials(state, app, email).await?;
    if record.status == CredentialStatus::Confirmed {
        return Err(Error::UserAlreadyConfirmed);
    }
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
    let email = required_str(body, "email")?;
    if app
        .config
        .providers
        .local_userpass
        .reset_webhook_url
        .is_some()
    {
        return Err(Error::bad_request("reset is handled by a function"));
    }
    credentials(state, app, email).await?;
    send_message(state, app, email, TokenPurpose::Reset).await
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
    let email = required_str(body, "email")?;
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
    credentials(state, app, email).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_rules() {
        assert!(valid_email("a@b.c"));
        assert!(valid_email("Some.One+tag@example.org"));
        assert!(!valid_email("nobody"));
        assert!(!valid_email("@b.c"));
        assert!(!valid_email("a@"));
        assert!(!valid_email("a b@c.d"));
        assert!(!valid_email(&format!("{}@b.c", "x".repeat(300))));
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
