//! The admin API under `/admin/v1`: `Authorization: Bearer <admin_token>`
//! ([`AdminCaller`]), JSON in and out. The operations live in the domain
//! (`auth::admin`), shared with the `admin` command.
//!
//! Without `admin_token` in the configuration every admin route answers 404
//! "admin API disabled".

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post, put};
use serde_json::Value;

use super::error::ApiError;
use super::extract::{AdminCaller, CustomDataBody, EJson};
use super::response::ok_json;
use crate::auth::admin::{AdminOp, execute};
use crate::auth::state::SharedState;
use crate::error::Error;

/// The admin routes.
pub(crate) fn routes() -> Router<SharedState> {
    Router::new()
        .route(
            "/admin/v1/apps/{app}/api_keys",
            post(create_server_key).get(list_server_keys),
        )
        .route(
            "/admin/v1/apps/{app}/api_keys/{id}",
            axum::routing::delete(delete_server_key),
        )
        .route(
            "/admin/v1/apps/{app}/api_keys/{id}/disable",
            put(disable_server_key),
        )
        .route(
            "/admin/v1/apps/{app}/api_keys/{id}/enable",
            put(enable_server_key),
        )
        .route("/admin/v1/apps/{app}/users", get(list_users))
        .route(
            "/admin/v1/apps/{app}/users/{id}",
            get(get_user).delete(delete_user),
        )
        .route(
            "/admin/v1/apps/{app}/users/{id}/custom_data",
            put(set_custom_data),
        )
        .route("/admin/v1/apps/{app}/users/{id}/disable", put(disable_user))
        .route("/admin/v1/apps/{app}/users/{id}/enable", put(enable_user))
        .route(
            "/admin/v1/apps/{app}/users/{id}/sessions",
            axum::routing::delete(revoke_sessions).get(user_sessions),
        )
        .route("/admin/v1/apps/{app}/outbox", get(outbox))
        .route("/admin/v1/apps/{app}/audit", get(audit))
        .route("/admin/v1/apps/{app}/counts", get(counts))
}

/// Run `op` on `app` for an authorized caller and answer its JSON.
async fn run(
    state: &SharedState,
    caller: AdminCaller,
    app: &str,
    op: AdminOp,
) -> Result<Response, ApiError> {
    Ok(ok_json(&execute(state, &caller.0, app, op).await?))
}

/// A route of `/admin/v1/apps/{app}` whose operation needs nothing but the app.
macro_rules! app_route {
    ($name:ident, $op:expr) => {
        async fn $name(
            State(state): State<SharedState>,
            Path(app): Path<String>,
            caller: AdminCaller,
        ) -> Result<Response, ApiError> {
            run(&state, caller, &app, $op).await
        }
    };
}

/// A route of `/admin/v1/apps/{app}/.../{id}` whose operation takes the id.
macro_rules! id_route {
    ($name:ident, $op:expr) => {
        async fn $name(
            State(state): State<SharedState>,
            Path((app, id)): Path<(String, String)>,
            caller: AdminCaller,
        ) -> Result<Response, ApiError> {
            run(&state, caller, &app, $op(id)).await
        }
    };
}

app_route!(list_server_keys, AdminOp::ListServerKeys);
app_route!(list_users, AdminOp::ListUsers);
app_route!(outbox, AdminOp::Outbox);
app_route!(counts, AdminOp::Counts);
id_route!(user_sessions, AdminOp::UserSessions);
id_route!(delete_server_key, AdminOp::DeleteServerKey);
id_route!(disable_server_key, AdminOp::DisableServerKey);
id_route!(enable_server_key, AdminOp::EnableServerKey);
id_route!(get_user, AdminOp::GetUser);
id_route!(delete_user, AdminOp::DeleteUser);
id_route!(disable_user, AdminOp::DisableUser);
id_route!(enable_user, AdminOp::EnableUser);
id_route!(revoke_sessions, AdminOp::RevokeSessions);

async fn create_server_key(
    State(state): State<SharedState>,
    Path(app): Path<String>,
    caller: AdminCaller,
    EJson(body): EJson,
) -> Result<Response, ApiError> {
    let name = match body.get("name") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(Error::bad_request("'name' must be a string").into()),
    };
    run(&state, caller, &app, AdminOp::CreateServerKey(name)).await
}

async fn set_custom_data(
    State(state): State<SharedState>,
    Path((app, id)): Path<(String, String)>,
    caller: AdminCaller,
    CustomDataBody(data): CustomDataBody,
) -> Result<Response, ApiError> {
    run(&state, caller, &app, AdminOp::SetCustomData(id, data)).await
}

/// `?before=SEQ&limit=N` of the audit route.
#[derive(serde::Deserialize)]
struct AuditPage {
    before: Option<i64>,
    limit: Option<u32>,
}

async fn audit(
    State(state): State<SharedState>,
    Path(app): Path<String>,
    caller: AdminCaller,
    query: Result<Query<AuditPage>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(page) =
        query.map_err(|_| Error::bad_request("'before' and 'limit' must be whole numbers"))?;
    let op = AdminOp::Audit {
        before: page.before,
        limit: page.limit.unwrap_or(100),
    };
    run(&state, caller, &app, op).await
}
