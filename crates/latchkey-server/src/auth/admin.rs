//! Administration: the operations behind both the admin HTTP API (`/admin/v1`) and
//! the `latchkey-server admin` command ([`crate::admin::Admin`]), written once here,
//! and the admin token check.

use std::fmt;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use std::sync::Arc;

use super::state::{AppRuntime, ServerState};
use super::{api_keys, users};
use crate::error::Error;
use crate::store::{AuditRecord, UserSearch};

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
    /// One page of the users matching a search, in id order: `{"users": [..], "next":
    /// id or null}` (`next` is the `after` of the following page).
    SearchUsers {
        /// A user id, an identity id, or part of an email address.
        text: Option<String>,
        /// Only users with an identity of this provider.
        provider: Option<String>,
        /// The `next` of the previous page.
        after: Option<String>,
        /// Page size (1 to [`MAX_PAGE`]).
        limit: u32,
    },
    /// A user's sessions: id, device, provider, created and expiry times.
    UserSessions(String),
    /// Counts at a glance: users, active sessions, logins in the last hour by provider.
    Counts,
    /// The audit log of administrative actions, newest first, `limit` entries (1 to
    /// [`MAX_PAGE`]) older than the entry `before`.
    Audit {
        /// The `seq` of the last entry of the previous page.
        before: Option<i64>,
        /// Page size.
        limit: u32,
    },
}

/// Largest page of [`AdminOp::SearchUsers`] and [`AdminOp::Audit`].
pub const MAX_PAGE: u32 = 500;

/// Who asks for an administrative operation, as the audit log names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Channel {
    /// The admin HTTP API (`/admin/v1`).
    AdminApi,
    /// The web console (`/console`).
    Console,
    /// The `latchkey-server admin` command.
    Cli,
}

impl Channel {
    fn name(self) -> &'static str {
        match self {
            Channel::AdminApi => "admin-api",
            Channel::Console => "console",
            Channel::Cli => "cli",
        }
    }
}

/// The caller of an operation: its channel and, over HTTP, the client address.
#[derive(Debug, Clone)]
pub(crate) struct Actor {
    channel: Channel,
    address: Option<std::net::IpAddr>,
}

impl Actor {
    /// An actor of `channel` at `address` (when known).
    pub(crate) fn new(channel: Channel, address: Option<std::net::IpAddr>) -> Actor {
        Actor { channel, address }
    }

    fn describe(&self) -> String {
        match self.address {
            Some(ip) => format!("{} {ip}", self.channel.name()),
            None => self.channel.name().to_owned(),
        }
    }
}

impl AdminOp {
    /// What the audit log records of a change (action name and target); `None` for
    /// the operations that only read.
    fn audited(&self) -> Option<(&'static str, &str)> {
        Some(match self {
            AdminOp::DeleteUser(id) => ("delete_user", id),
            AdminOp::DisableUser(id) => ("disable_user", id),
            AdminOp::EnableUser(id) => ("enable_user", id),
            AdminOp::RevokeSessions(id) => ("revoke_sessions", id),
            AdminOp::SetCustomData(id, _) => ("set_custom_data", id),
            AdminOp::CreateServerKey(name) => ("create_server_key", name),
            AdminOp::DeleteServerKey(id) => ("delete_server_key", id),
            AdminOp::DisableServerKey(id) => ("disable_server_key", id),
            AdminOp::EnableServerKey(id) => ("enable_server_key", id),
            AdminOp::ListUsers
            | AdminOp::GetUser(_)
            | AdminOp::ListServerKeys
            | AdminOp::Outbox
            | AdminOp::SearchUsers { .. }
            | AdminOp::UserSessions(_)
            | AdminOp::Counts
            | AdminOp::Audit { .. } => return None,
        })
    }
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
            // A search may hold an email address: not shown.
            AdminOp::SearchUsers { limit, .. } => write!(f, "SearchUsers(.., limit {limit})"),
            AdminOp::UserSessions(id) => write!(f, "UserSessions({id:?})"),
            AdminOp::Counts => f.write_str("Counts"),
            AdminOp::Audit { before, limit } => write!(f, "Audit({before:?}, {limit})"),
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

/// Run `op` on the app `app_id` for `actor`. The answer is the JSON the admin API
/// returns. Every change (not the reads) is appended to the audit log with its outcome.
pub(crate) async fn execute(
    state: &ServerState,
    actor: &Actor,
    app_id: &str,
    op: AdminOp,
) -> Result<Value, Error> {
    let app = state.app(app_id)?;
    let app_id = app.id();
    tracing::info!(app = app_id, op = ?op, "admin operation");
    let audited = op
        .audited()
        .map(|(action, target)| (action, printable_target(target)));
    let result = run(state, &app, op).await;
    if let Some((action, target)) = audited {
        let record = AuditRecord {
            app_id: app_id.to_owned(),
            seq: 0,
            at: state.clock.now_secs(),
            actor: actor.describe(),
            action: action.to_owned(),
            target,
            outcome: match &result {
                Ok(_) => "ok".to_owned(),
                Err(e) => e.to_string(),
            },
        };
        if let Err(e) = state.store.add_audit(&record).await {
            tracing::error!(error = %e, app = app_id, action, "cannot write the audit log");
        }
    }
    result
}

/// A target as the audit log keeps it: printable and at most 200 characters.
fn printable_target(target: &str) -> String {
    target
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect()
}

async fn run(state: &ServerState, app: &Arc<AppRuntime>, op: AdminOp) -> Result<Value, Error> {
    let app_id = app.id();
    match op {
        AdminOp::ListUsers => users::list(state, app_id).await,
        AdminOp::GetUser(id) => users::show(state, app_id, &id).await,
        AdminOp::DeleteUser(id) => users::delete(state, app_id, &id).await,
        AdminOp::DisableUser(id) => users::set_disabled(state, app_id, &id, true).await,
        AdminOp::EnableUser(id) => users::set_disabled(state, app_id, &id, false).await,
        AdminOp::RevokeSessions(id) => users::revoke_sessions(state, app_id, &id).await,
        AdminOp::SetCustomData(id, data) => users::set_custom_data(state, app_id, &id, data).await,
        AdminOp::CreateServerKey(name) => {
            to_json(&api_keys::create_server_key(state, app, &name).await?)
        }
        AdminOp::ListServerKeys => to_json(&api_keys::list_server_keys(state, app).await?),
        AdminOp::DeleteServerKey(id) => {
            api_keys::delete_server_key(state, app, &id).await?;
            Ok(json!({"deleted": true}))
        }
        AdminOp::DisableServerKey(id) => {
            to_json(&api_keys::set_server_key_disabled(state, app, &id, true).await?)
        }
        AdminOp::EnableServerKey(id) => {
            to_json(&api_keys::set_server_key_disabled(state, app, &id, false).await?)
        }
        AdminOp::Outbox => to_json(&state.store.list_outbox(app_id).await?),
        AdminOp::SearchUsers {
            text,
            provider,
            after,
            limit,
        } => {
            let search = UserSearch { text, provider };
            users::search(state, app_id, &search, after.as_deref(), page(limit)?).await
        }
        AdminOp::UserSessions(id) => users::sessions(state, app_id, &id).await,
        AdminOp::Counts => {
            let now = state.clock.now_secs();
            let c = state.store.app_counts(app_id, now, now - 3600).await?;
            let logins: serde_json::Map<String, Value> = c
                .logins_by_provider
                .into_iter()
                .map(|(p, n)| (p, json!(n)))
                .collect();
            Ok(json!({
                "users": c.users,
                "active_sessions": c.active_sessions,
                "logins_last_hour": logins,
            }))
        }
        AdminOp::Audit { before, limit } => {
            let entries = state.store.list_audit(app_id, before, page(limit)?).await?;
            Ok(Value::Array(
                entries
                    .into_iter()
                    .map(|r| {
                        json!({
                            "seq": r.seq,
                            "at": r.at,
                            "actor": r.actor,
                            "action": r.action,
                            "target": r.target,
                            "outcome": r.outcome,
                        })
                    })
                    .collect(),
            ))
        }
    }
}

/// A page size within 1..=[`MAX_PAGE`].
fn page(limit: u32) -> Result<u32, Error> {
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(Error::bad_request(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )))
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
