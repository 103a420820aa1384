//! `local-userpass` confirmation and password reset: the `confirm`, `confirm/send`,
//! `confirm/call`, `reset`, `reset/send` and `reset/call` routes, and the
//! confirmation step of registration.
//!
//! Token pairs (`token`, `tokenId`) are 128 random bits each (32 hex digits), bound
//! to one email and one purpose, single use, valid for [`TOKEN_TTL_SECS`], and
//! stored as SHA-256 hashes. Messages go through [`crate::mail::Mailer`].

use std::time::Duration;

use http::StatusCode;
use latchkey_protocol::{ErrorCode, ProviderType};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::local_userpass::check_password;
use super::{ProviderContext, required_str};
use crate::error::ApiError;
use crate::ids::new_random_id;
use crate::password::Secret;
use crate::store::{
    CredentialStatus, OutboxRecord, TokenPurpose, UserpassRecord, UserpassTokenRecord,
};
use crate::webhooks::call_json;

/// Lifetime of confirmation and reset token pairs (30 minutes, as App Services).
pub(crate) const TOKEN_TTL_SECS: i64 = 30 * 60;
/// Timeout of the confirmation and reset webhooks.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

type Body = Map<String, Value>;

/// Lowercase hex SHA-256.
pub(crate) fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn already_confirmed() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        ErrorCode::UserAlreadyConfirmed,
        "already confirmed",
    )
}

fn token_invalid() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::UserpassTokenInvalid,
        "invalid token data",
    )
}

fn failed_to_confirm(email: &str) -> ApiError {
    ApiError::bad_request(format!("failed to confirm user \"{email}\""))
}

fn failed_to_reset(email: &str) -> ApiError {
    ApiError::bad_request(format!("failed to reset password for user \"{email}\""))
}

/// A fresh token pair, stored hashed for `email` and `purpose` (replacing older pairs).
async fn new_token_pair(
    ctx: ProviderContext<'_>,
    email: &str,
    purpose: TokenPurpose,
) -> Result<(String, String), ApiError> {
    let token = new_random_id();
    let token_id = new_random_id();
    let now = ctx.state.clock.now_secs();
    ctx.state
        .store
        .replace_userpass_token(&UserpassTokenRecord {
            app_id: ctx.app.id().to_owned(),
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
    ctx: ProviderContext<'_>,
    body: &Body,
    purpose: TokenPurpose,
) -> Result<String, ApiError> {
    let token = required_str(body, "token")?;
    let token_id = required_str(body, "tokenId")?;
    let email = ctx
        .state
        .store
        .take_userpass_token(
            ctx.app.id(),
            purpose,
            &sha256_hex(token_id),
            &sha256_hex(token),
            ctx.state.clock.now_secs(),
        )
        .await?;
    email.ok_or_else(|| {
        tracing::info!(
            app = ctx.app.id(),
            purpose = purpose.as_str(),
            "invalid token pair"
        );
        token_invalid()
    })
}

async fn credentials(ctx: ProviderContext<'_>, email: &str) -> Result<UserpassRecord, ApiError> {
    ctx.state
        .store
        .find_userpass(ctx.app.id(), email)
        .await?
        .ok_or_else(ApiError::user_not_found)
}

/// Put a confirm / reset message into the outbox and SMTP.
async fn send_message(
    ctx: ProviderContext<'_>,
    email: &str,
    purpose: TokenPurpose,
) -> Result<(), ApiError> {
    let (token, token_id) = new_token_pair(ctx, email, purpose).await?;
    let cfg = &ctx.app.config.providers.local_userpass;
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
            crate::mail::link(base, &token, &token_id)
        ),
        None => format!("token: {token}\ntokenId: {token_id}\n"),
    };
    let body = format!(
        "{intro}\n\n{action}\nThe link is valid for 30 minutes. If you did not ask for this, \
         ignore this message.\n"
    );
    let message = OutboxRecord {
        app_id: ctx.app.id().to_owned(),
        to: email.to_owned(),
        kind: purpose.as_str().to_owned(),
        subject: subject.to_owned(),
        body: body.into(),
        token: token.into(),
        token_id: token_id.into(),
        created_at: ctx.state.clock.now_secs(),
    };
    ctx.state
        .mailer
        .send(ctx.state.store.as_ref(), message, cfg.email_from.as_deref())
        .await?;
    tracing::info!(
        app = ctx.app.id(),
        kind = purpose.as_str(),
        "queued message"
    );
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
async fn call_status(ctx: ProviderContext<'_>, url: &str, payload: &Value) -> Result<Status, ()> {
    let secret = ctx
        .app
        .config
        .providers
        .local_userpass
        .webhook_secret
        .as_deref();
    let answer = call_json(ctx.state, url, secret, payload, WEBHOOK_TIMEOUT)
        .await
        .map_err(|e| tracing::warn!(app = ctx.app.id(), error = %e, "userpass webhook failed"))?;
    let answer = latchkey_protocol::ejson::to_plain(answer);
    match answer.get("status").and_then(Value::as_str) {
        Some("success") => Ok(Status::Success),
        Some("pending") => Ok(Status::Pending),
        Some("fail") => Ok(Status::Fail),
        _ => {
            tracing::warn!(
                app = ctx.app.id(),
                "userpass webhook answered without a valid status"
            );
            Err(())
        }
    }
}

/// Run the confirmation function for pending credentials. `Err(())` when the call failed.
async fn run_confirmation(
    ctx: ProviderContext<'_>,
    url: &str,
    email: &str,
) -> Result<Result<Status, ()>, ApiError> {
    let (token, token_id) = new_token_pair(ctx, email, TokenPurpose::Confirm).await?;
    let payload = json!({"token": token, "tokenId": token_id, "username": email});
    let status = call_status(ctx, url, &payload).await;
    if status == Ok(Status::Success) {
        confirm_email(ctx, email).await?;
    }
    Ok(status)
}

async fn confirm_email(ctx: ProviderContext<'_>, email: &str) -> Result<(), ApiError> {
    let now = ctx.state.clock.now_secs();
    let store = &ctx.state.store;
    store
        .delete_userpass_tokens(ctx.app.id(), email, TokenPurpose::Confirm)
        .await?;
    if !store
        .set_userpass_status(ctx.app.id(), email, CredentialStatus::Confirmed, now)
        .await?
    {
        return Err(token_invalid());
    }
    tracing::info!(app = ctx.app.id(), "confirmed email/password credentials");
    Ok(())
}

/// The message-throttling key of `email` in `app`.
pub(crate) fn message_key(app: &crate::state::AppRuntime, email: &str) -> crate::throttle::Key {
    crate::throttle::identifier_key(app.id(), "local-userpass messages", email)
}

/// After registering pending credentials: run the confirmation function, or send
/// the confirmation email.
pub(crate) async fn after_register(ctx: ProviderContext<'_>, email: &str) -> Result<(), ApiError> {
    ctx.state
        .throttle
        .message_sent(&message_key(ctx.app, email), ctx.state.clock.now_secs());
    let cfg = &ctx.app.config.providers.local_userpass;
    let Some(url) = cfg.confirmation_webhook_url.as_deref() else {
        return send_message(ctx, email, TokenPurpose::Confirm).await;
    };
    match run_confirmation(ctx, url, email).await? {
        Ok(Status::Success | Status::Pending) => Ok(()),
        // A rejection or a failed call: no account is created, the email can register again.
        Ok(Status::Fail) | Err(()) => {
            ctx.state.store.delete_userpass(ctx.app.id(), email).await?;
            Err(failed_to_confirm(email))
        }
    }
}

/// `confirm` `{token, tokenId}`.
pub(crate) async fn confirm(ctx: ProviderContext<'_>, body: &Body) -> Result<(), ApiError> {
    let email = take_token(ctx, body, TokenPurpose::Confirm).await?;
    confirm_email(ctx, &email).await
}

/// `confirm/send` `{email}`.
pub(crate) async fn confirm_send(ctx: ProviderContext<'_>, body: &Body) -> Result<(), ApiError> {
    let email = required_str(body, "email")?;
    let record = credentials(ctx, email).await?;
    if record.status == CredentialStatus::Confirmed {
        return Err(already_confirmed());
    }
    send_message(ctx, email, TokenPurpose::Confirm).await
}

/// `confirm/call` `{email}`.
pub(crate) async fn confirm_call(ctx: ProviderContext<'_>, body: &Body) -> Result<(), ApiError> {
    let email = required_str(body, "email")?;
    let Some(url) = ctx
        .app
        .config
        .providers
        .local_userpass
        .confirmation_webhook_url
        .as_deref()
    else {
        return Err(ApiError::bad_request(
            "confirmation is not handled by a function (no confirmation_webhook_url)",
        ));
    };
    let record = credentials(ctx, email).await?;
    if record.status == CredentialStatus::Confirmed {
        return Err(already_confirmed());
    }
    match run_confirmation(ctx, url, email).await? {
        Ok(Status::Success | Status::Pending) => Ok(()),
        Ok(Status::Fail) => {
            ctx.state.store.delete_userpass(ctx.app.id(), email).await?;
            Err(failed_to_confirm(email))
        }
        // A failed call leaves the credentials pending: the client may retry.
        Err(()) => Err(failed_to_confirm(email)),
    }
}

/// `reset/send` `{email}`.
pub(crate) async fn reset_send(ctx: ProviderContext<'_>, body: &Body) -> Result<(), ApiError> {
    let email = required_str(body, "email")?;
    if ctx
        .app
        .config
        .providers
        .local_userpass
        .reset_webhook_url
        .is_some()
    {
        return Err(ApiError::bad_request("reset is handled by a function"));
    }
    credentials(ctx, email).await?;
    send_message(ctx, email, TokenPurpose::Reset).await
}

/// Set a new password and revoke every session of the user.
async fn set_password(
    ctx: ProviderContext<'_>,
    email: &str,
    password: &Secret,
) -> Result<(), ApiError> {
    let hash = ctx
        .state
        .hasher
        .hash(password)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let store = &ctx.state.store;
    let now = ctx.state.clock.now_secs();
    if !store
        .set_userpass_password(ctx.app.id(), email, &hash, now)
        .await?
    {
        return Err(token_invalid());
    }
    store
        .delete_userpass_tokens(ctx.app.id(), email, TokenPurpose::Reset)
        .await?;
    if let Some(record) = store.find_userpass(ctx.app.id(), email).await?
        && let Some(identity) = store
            .find_identity(
                ctx.app.id(),
                ProviderType::EmailPassword.as_str(),
                &record.id,
            )
            .await?
    {
        let n = store
            .delete_user_sessions(ctx.app.id(), &identity.user_id)
            .await?;
        tracing::info!(app = ctx.app.id(), user = %identity.user_id, revoked = n, "password reset; sessions revoked");
    } else {
        tracing::info!(app = ctx.app.id(), "password reset");
    }
    Ok(())
}

/// `reset` `{password, token, tokenId}`.
pub(crate) async fn reset(ctx: ProviderContext<'_>, body: &Body) -> Result<(), ApiError> {
    let password = Secret::new(required_str(body, "password")?);
    // Check the password first so that a bad one does not burn the token.
    check_password(password.expose())?;
    let email = take_token(ctx, body, TokenPurpose::Reset).await?;
    set_password(ctx, &email, &password).await
}

/// `reset/call` `{email, password, arguments}`.
pub(crate) async fn reset_call(ctx: ProviderContext<'_>, body: &Body) -> Result<(), ApiError> {
    let email = required_str(body, "email")?;
    let password = Secret::new(required_str(body, "password")?);
    let arguments = match body.get("arguments") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(ApiError::bad_request("'arguments' must be an array")),
    };
    let Some(url) = ctx
        .app
        .config
        .providers
        .local_userpass
        .reset_webhook_url
        .as_deref()
    else {
        return Err(ApiError::bad_request(
            "reset is not handled by a function (no reset_webhook_url)",
        ));
    };
    check_password(password.expose())?;
    credentials(ctx, email).await?;
    let (token, token_id) = new_token_pair(ctx, email, TokenPurpose::Reset).await?;
    let payload = json!({
        "username": email,
        "password": password.expose(),
        "token": token,
        "tokenId": token_id,
        "currentPasswordValid": false,
        "arguments": arguments,
    });
    match call_status(ctx, url, &payload).await {
        Ok(Status::Success) => set_password(ctx, email, &password).await,
        Ok(Status::Pending) => Ok(()),
        Ok(Status::Fail) | Err(()) => {
            ctx.state
                .store
                .delete_userpass_tokens(ctx.app.id(), email, TokenPurpose::Reset)
                .await?;
            Err(failed_to_reset(email))
        }
    }
}
