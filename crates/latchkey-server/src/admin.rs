//! Administration: the operations behind both the admin HTTP API (`/admin/v1`) and
//! the `latchkey-server admin` command, written once here.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use latchkey_server::admin::{Admin, AdminOp};
//!
//! let config = latchkey_server::Config::load("latchkey.toml".as_ref())?;
//! let admin = Admin::open(config).await?;
//! let users = admin.run(None, AdminOp::ListUsers).await?;
//! println!("{users}");
//! admin.close().await;
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::clock::Clock;
use crate::config::Config;
use crate::error::ApiError;
use crate::state::{AppRuntime, ServerState};
use crate::store::UserRecord;
use crate::{ServerError, providers};

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

async fn user_json(state: &ServerState, user: &UserRecord) -> Result<Value, ApiError> {
    let identities: Vec<Value> = state
        .store
        .list_identities(&user.app_id, &user.id)
        .await?
        .into_iter()
        .map(|i| {
            json!({
                "id": i.id,
                "provider_type": i.provider_type,
                "data": i.data,
                "created_at": i.created_at,
            })
        })
        .collect();
    Ok(json!({
        "id": user.id,
        "identities": identities,
        "disabled": user.disabled,
        "created_at": user.created_at,
        "custom_data": user.custom_data,
    }))
}

async fn get_user(state: &ServerState, app: &str, id: &str) -> Result<UserRecord, ApiError> {
    state
        .store
        .get_user(app, id)
        .await?
        .ok_or_else(ApiError::user_not_found)
}

/// [`user_json`] of the user `id` as stored now, or 404.
async fn stored_user_json(state: &ServerState, app: &str, id: &str) -> Result<Value, ApiError> {
    user_json(state, &get_user(state, app, id).await?).await
}

/// An answer as JSON.
fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::internal(&e))
}

/// Run `op` on `app`. The answer is the JSON the admin API returns.
pub(crate) async fn execute(
    state: &ServerState,
    app: &AppRuntime,
    op: AdminOp,
) -> Result<Value, ApiError> {
    let app_id = app.id();
    let store = &state.store;
    tracing::info!(app = app_id, op = ?op, "admin operation");
    match op {
        AdminOp::ListUsers => {
            let mut out = Vec::new();
            for user in store.list_users(app_id).await? {
                out.push(user_json(state, &user).await?);
            }
            Ok(Value::Array(out))
        }
        AdminOp::GetUser(id) => stored_user_json(state, app_id, &id).await,
        AdminOp::DeleteUser(id) => {
            if !store.delete_user(app_id, &id).await? {
                return Err(ApiError::user_not_found());
            }
            Ok(json!({"deleted": true}))
        }
        AdminOp::DisableUser(id) => {
            if !store.set_user_disabled(app_id, &id, true).await? {
                return Err(ApiError::user_not_found());
            }
            let revoked = store.delete_user_sessions(app_id, &id).await?;
            let mut v = stored_user_json(state, app_id, &id).await?;
            v["revoked_sessions"] = json!(revoked);
            Ok(v)
        }
        AdminOp::EnableUser(id) => {
            if !store.set_user_disabled(app_id, &id, false).await? {
                return Err(ApiError::user_not_found());
            }
            stored_user_json(state, app_id, &id).await
        }
        AdminOp::RevokeSessions(id) => {
            get_user(state, app_id, &id).await?;
            let revoked = store.delete_user_sessions(app_id, &id).await?;
            Ok(json!({"revoked_sessions": revoked}))
        }
        AdminOp::SetCustomData(id, data) => {
            let Value::Object(data) = data else {
                return Err(ApiError::bad_request("custom data must be a JSON object"));
            };
            if !store.set_custom_data(app_id, &id, Some(&data)).await? {
                return Err(ApiError::user_not_found());
            }
            stored_user_json(state, app_id, &id).await
        }
        AdminOp::CreateServerKey(name) => {
            let key = providers::api_key::create_server_key(state, app, &name).await?;
            to_json(&key)
        }
        AdminOp::ListServerKeys => {
            let keys = providers::api_key::list_server_keys(state, app).await?;
            to_json(&keys)
        }
        AdminOp::DeleteServerKey(id) => {
            providers::api_key::delete_server_key(state, app, &id).await?;
            Ok(json!({"deleted": true}))
        }
        AdminOp::DisableServerKey(id) => {
            let key = providers::api_key::set_server_key_disabled(state, app, &id, true).await?;
            to_json(&key)
        }
        AdminOp::EnableServerKey(id) => {
            let key = providers::api_key::set_server_key_disabled(state, app, &id, false).await?;
            to_json(&key)
        }
        AdminOp::Outbox => {
            let messages = store.list_outbox(app_id).await?;
            to_json(&messages)
        }
    }
}

/// Direct access to a configured database, for the `admin` command and tools.
#[derive(Debug)]
pub struct Admin {
    state: Arc<ServerState>,
    default_app: String,
}

impl Admin {
    /// Validate `config`, open and migrate its database. No port is bound.
    pub async fn open(config: Config) -> Result<Admin, ServerError> {
        let (apps, store) = crate::open_apps_and_store(&config).await?;
        let state = ServerState::new(
            &config,
            apps,
            store,
            Clock::system(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        );
        Ok(Admin {
            state: Arc::new(state),
            default_app: config.apps[0].id.clone(),
        })
    }

    /// Run `op` on the app `app` (default: the first configured app).
    pub async fn run(&self, app: Option<&str>, op: AdminOp) -> Result<Value, ApiError> {
        let app = self.state.app(app.unwrap_or(&self.default_app))?;
        execute(&self.state, &app, op).await
    }

    /// Close the database.
    pub async fn close(self) {
        self.state.store.close().await;
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
