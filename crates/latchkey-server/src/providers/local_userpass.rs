//! `local-userpass`: email/password credentials.
//!
//! Registration stores credentials only (pending, or confirmed with `auto_confirm`);
//! the user and its identity come into being at the first login. The identity id
//! is the credential id.

use latchkey_protocol::{LoginBody, ProviderType};
use serde_json::{Map, Value};

use super::{ProviderContext, VerifiedIdentity, required_str};
use crate::error::ApiError;
use crate::ids::new_object_id;
use crate::password::Secret;
use crate::store::{CredentialStatus, StoreError, UserpassRecord};

/// Shortest accepted password, in characters (App Services).
pub(crate) const MIN_PASSWORD_CHARS: usize = 6;
/// Longest accepted password, in characters (App Services).
pub(crate) const MAX_PASSWORD_CHARS: usize = 128;
/// Longest accepted email address, in bytes.
pub(crate) const MAX_EMAIL_LEN: usize = 254;

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(&e)
}

/// 400 for a login `username` longer than [`MAX_EMAIL_LEN`].
pub(crate) fn username_too_long() -> ApiError {
    ApiError::bad_request(format!("username must be at most {MAX_EMAIL_LEN} bytes"))
}

/// Check a login body `{username, password}`.
///
/// A wrong password and an unknown email give the same answer after the same work
/// (a dummy hash is verified for unknown emails). Only after the password matches
/// are pending credentials reported.
pub(crate) async fn authenticate(
    ctx: ProviderContext<'_>,
    body: &LoginBody,
) -> Result<VerifiedIdentity, ApiError> {
    let email = required_str(body, "username")?;
    if email.len() > MAX_EMAIL_LEN {
        // Refused before any hashing.
        return Err(username_too_long());
    }
    let password = Secret::new(required_str(body, "password")?);
    let record = ctx.state.store.find_userpass(ctx.app.id(), email).await?;
    let Some(record) = record else {
        ctx.state
            .hasher
            .verify_dummy(&password)
            .await
            .map_err(internal)?;
        tracing::debug!(app = ctx.app.id(), "login with unknown email");
        return Err(ApiError::invalid_password());
    };
    let ok = ctx
        .state
        .hasher
        .verify(&password, record.password_hash.expose())
        .await
        .map_err(internal)?;
    if !ok {
        tracing::debug!(app = ctx.app.id(), credential = %record.id, "wrong password");
        return Err(ApiError::invalid_password());
    }
    if record.status != CredentialStatus::Confirmed {
        return Err(ApiError::confirmation_required());
    }
    let mut data = Map::new();
    data.insert("email".to_owned(), Value::String(record.email.clone()));
    Ok(VerifiedIdentity {
        provider: ProviderType::EmailPassword,
        id: record.id,
        data,
    })
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
pub(crate) fn check_password(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        return Err(ApiError::bad_request(format!(
            "password must be between {MIN_PASSWORD_CHARS} and {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// Register credentials `{email, password}`.
pub(crate) async fn register(
    ctx: ProviderContext<'_>,
    body: &LoginBody,
) -> Result<CredentialStatus, ApiError> {
    let email = required_str(body, "email")?;
    let password = Secret::new(required_str(body, "password")?);
    if !valid_email(email) {
        return Err(ApiError::bad_request("email invalid"));
    }
    check_password(password.expose())?;
    // Hash before looking for a duplicate so both outcomes cost the same.
    let password_hash = ctx.state.hasher.hash(&password).await.map_err(internal)?;
    let now = ctx.state.clock.now_secs();
    let status = if ctx.app.config.providers.local_userpass.auto_confirm {
        CredentialStatus::Confirmed
    } else {
        CredentialStatus::Pending
    };
    let record = UserpassRecord {
        app_id: ctx.app.id().to_owned(),
        id: new_object_id(&ctx.state.clock).to_string(),
        email: email.to_owned(),
        password_hash: password_hash.into(),
        status,
        created_at: now,
        updated_at: now,
    };
    match ctx.state.store.create_userpass(&record).await {
        Ok(()) => {
            tracing::info!(app = ctx.app.id(), credential = %record.id, status = status.as_str(), "registered email/password credentials");
            Ok(status)
        }
        Err(StoreError::Conflict) => Err(ApiError::account_name_in_use("name already in use")),
        Err(e) => Err(e.into()),
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
        assert_eq!(e.message(), "password must be between 6 and 128 characters");
    }
}
