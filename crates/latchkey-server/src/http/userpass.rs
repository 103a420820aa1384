//! The `local-userpass` routes that are not login: registration, confirmation and
//! password reset. Any Authorization header is ignored (realm-web sends the current
//! user's access token on these routes).

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use http::{Extensions, HeaderMap};
use latchkey_protocol::ProviderType;
use serde_json::{Map, Value};

use super::extract::json_object;
use super::response::no_content;
use crate::error::ApiError;
use crate::providers::{ProviderContext, local_userpass, userpass_flows};
use crate::state::{AppRuntime, ServerState, SharedState};
use crate::store::CredentialStatus;
use crate::throttle::too_many_messages;

/// The app (with `local-userpass` enabled) and the parsed body.
fn prepare(
    state: &SharedState,
    app_id: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<(std::sync::Arc<AppRuntime>, Map<String, Value>), ApiError> {
    let app = state.app(app_id)?;
    if !app.provider_enabled(ProviderType::EmailPassword) {
        return Err(ApiError::provider_not_found(
            ProviderType::EmailPassword.as_str(),
        ));
    }
    Ok((app, json_object(body)?))
}

/// How a route counts against the message limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// Not limited (token-based routes: `confirm`, `reset`).
    None,
    /// Every request counts as a message for its `email`.
    Message,
    /// Checked here, counted as a message only once one is sent (`register`).
    Checked,
}

/// Apply the message limits (see [`crate::throttle`]) to a request.
fn limit(
    state: &ServerState,
    app: &AppRuntime,
    headers: &HeaderMap,
    extensions: &Extensions,
    body: &Map<String, Value>,
    limit: Limit,
) -> Result<(), ApiError> {
    if limit == Limit::None {
        return Ok(());
    }
    let email = match body.get("email") {
        Some(Value::String(e)) => Some(userpass_flows::message_key(app, e)),
        _ => None,
    };
    let throttle = &state.throttle;
    let ip = throttle.client_ip(headers, extensions);
    throttle
        .message_attempt(
            email.as_ref(),
            ip,
            limit == Limit::Message,
            state.clock.now_secs(),
        )
        .map_err(|retry_after| {
            tracing::info!(
                app = app.id(),
                "confirmation / reset request refused: throttled"
            );
            too_many_messages(retry_after)
        })
}

/// `POST .../app/{app_id}/auth/providers/local-userpass/register` `{email, password}`.
///
/// With `auto_confirm` the credentials are confirmed at once; else the confirmation
/// function runs, or a confirmation message is sent.
pub(crate) async fn register(
    State(state): State<SharedState>,
    Path(app_id): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (app, body) = prepare(&state, &app_id, body)?;
    limit(&state, &app, &headers, &extensions, &body, Limit::Checked)?;
    let ctx = ProviderContext {
        state: &state,
        app: &app,
    };
    if local_userpass::register(ctx, &body).await? == CredentialStatus::Pending
        && let Some(Value::String(email)) = body.get("email")
    {
        userpass_flows::after_register(ctx, email).await?;
    }
    Ok(no_content())
}

macro_rules! flow_route {
    ($(#[$doc:meta])* $name:ident, $limit:expr) => {
        $(#[$doc])*
        pub(crate) async fn $name(
            State(state): State<SharedState>,
            Path(app_id): Path<String>,
            headers: HeaderMap,
            extensions: Extensions,
            body: Result<Bytes, BytesRejection>,
        ) -> Result<Response, ApiError> {
            let (app, body) = prepare(&state, &app_id, body)?;
            limit(&state, &app, &headers, &extensions, &body, $limit)?;
            let ctx = ProviderContext {
                state: &state,
                app: &app,
            };
            userpass_flows::$name(ctx, &body).await?;
            Ok(no_content())
        }
    };
}

flow_route!(
    /// `POST .../local-userpass/confirm` `{token, tokenId}`.
    confirm,
    Limit::None
);
flow_route!(
    /// `POST .../local-userpass/confirm/send` `{email}`.
    confirm_send,
    Limit::Message
);
flow_route!(
    /// `POST .../local-userpass/confirm/call` `{email}`.
    confirm_call,
    Limit::Message
);
flow_route!(
    /// `POST .../local-userpass/reset` `{password, token, tokenId}`.
    reset,
    Limit::None
);
flow_route!(
    /// `POST .../local-userpass/reset/send` `{email}`.
    reset_send,
    Limit::Message
);
flow_route!(
    /// `POST .../local-userpass/reset/call` `{email, password, arguments}`.
    reset_call,
    Limit::Message
);
