//! Administration: the operations behind both the admin HTTP API (`/admin/v1`) and
//! the `latchkey-server admin` command ([`crate::admin::Admin`]), written once here,
//! and the admin token check.

use std::fmt;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::state::ServerState;
use super::{api_keys, users};
use crate::error::Error;

/// One administrative operation on an app.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum AdminOp {
    /// Every user: id, identities, disabled, created_at, custom_data.
    ListUsers,
    /// One user.
    GetUser(String),
    /// Delete a user with its identities, sessions and credentials.
    DeleteUser(String),
    /// Disable a user and revoke all its sessions.
    DisableUser(String),
    /// Enable a user.
    EnableUser(String),
    /// Revoke all sessions of a user.
    RevokeSessions(String),
    /// Replace a user's custom data (a JSON object; placed in the access token's
    /// `user_data` claim at every issuance).
    SetCustomData(String, Value),
    /// Create a server API key with this name.
    CreateServerKey(String),
    /// Every server API key of the app, oldest first (no secrets).
    ListServerKeys,
    /// Delete a server API key with its server user and sessions.
    DeleteServerKey(String),
    /// Disable a server API key and revoke the sessions it created.
    DisableServerKey(String),
    /// Enable a server API key.
    EnableServerKey(String),
    /// The outbox: every confirmation / reset message, oldest first.
    Outbox,
}

impl fmt::Debug for AdminOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Custom data may be personal: not shown.
        match self {
            AdminOp::ListUsers => f.write_str("ListUsers"),
            // Ids come from URLs and command lines: shown escaped.
            AdminOp::GetUser(id) => write!(f, "GetUser({id:?})"),
            AdminOp::DeleteUser(id) => write!(f, "DeleteUser({id:?})"),
            AdminOp::DisableUser(id) => write!(f, "DisableUser({id:?})"),
            AdminOp::EnableUser(id) => write!(f, "EnableUser({id:?})"),
            AdminOp::RevokeSessions(id) => write!(f, "RevokeSessions({id:?})"),
            AdminOp::SetCustomData(id, _) => write!(f, "SetCustomData({id:?}, ..)"),
            AdminOp::CreateServerKey(name) => write!(f, "CreateServerKey({name:?})"),
            AdminOp::ListServerKeys => f.write_str("ListServerKeys"),
            AdminOp::DeleteServerKey(id) => write!(f, "DeleteServerKey({id:?})"),
            AdminOp::DisableServerKey(id) => write!(f, "DisableServerKey({id:?})"),
            AdminOp::EnableServerKey(id) => write!(f, "EnableServerKey({id:?})"),
            AdminOp::Outbox => f.write_str("Outbox"),
        }
    }
}

/// An answer as JSON.
fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, Error> {
    serde_json::to_value(value).map_err(|e| Error::internal(&e))
}

/// Check the admin bearer token of a request (or why it has none) in constant time
/// (hashes of equal length are compared). Without a configured admin token the admin
/// API is disabled, whatever the request carries.
pub(crate) fn authorize(state: &ServerState, token: Result<&str, Error>) -> Result<(), Error> {
    let Some(expected) = &state.admin_token else {
        return Err(Error::AdminDisabled);
    };
    let token = token?;
    let a = Sha256::digest(token.as_bytes());
    let b = Sha256::digest(expected.expose().as_bytes());
    if bool::from(a.ct_eq(&b)) {
        Ok(())
    } else {
        tracing::warn!("admin API call with a wrong token");
        Err(Error::invalid_session("invalid admin token"))
    }
}

/// Run `op` on the app `app_id`. The answer is the JSON the admin API returns.
pub(crate) async fn execute(
    state: &ServerState,
    app_id: &str,
    op: AdminOp,
) -> Result<Value, Error> {
    let app = state.app(app_id)?;
    let app_id = app.id();
    tracing::info!(app = app_id, op = ?op, "admin operation");
    match op {
        AdminOp::ListUsers => users::list(state, app_id).await,
        AdminOp::GetUser(id) => users::show(state, app_id, &id).await,
        AdminOp::DeleteUser(id) => users::delete(state, app_id, &id).await,
        AdminOp::DisableUser(id) => users::set_disabled(state, app_id, &id, true).await,
        AdminOp::EnableUser(id) => users::set_disabled(state, app_id, &id, false).await,
        AdminOp::RevokeSessions(id) => users::revoke_sessions(state, app_id, &id).await,
        AdminOp::SetCustomData(id, data) => users::set_custom_data(state, app_id, &id, data).await,
        AdminOp::CreateServerKey(name) => {
            to_json(&api_keys::create_server_key(state, &app, &name).await?)
        }
        AdminOp::ListServerKeys => to_json(&api_keys::list_server_keys(state, &app).await?),
        AdminOp::DeleteServerKey(id) => {
            api_keys::delete_server_key(state, &app, &id).await?;
            Ok(json!({"deleted": true}))
        }
        AdminOp::DisableServerKey(id) => {
            to_json(&api_keys::set_server_key_disabled(state, &app, &id, true).await?)
        }
        AdminOp::EnableServerKey(id) => {
            to_json(&api_keys::set_server_key_disabled(state, &app, &id, false).await?)
        }
        AdminOp::Outbox => to_json(&state.store.list_outbox(app_id).await?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_ids_are_logged_escaped() {
        let shown = format!("{:?}", AdminOp::DeleteServerKey("a\nb\u{1b}[31m".into()));
        assert!(
            !shown.contains('\n') && !shown.contains('\u{1b}'),
            "{shown}"
        );
        assert_eq!(
            format!("{:?}", AdminOp::GetUser("x\ry".into())),
            r#"GetUser("x\ry")"#
        );
    }
}
