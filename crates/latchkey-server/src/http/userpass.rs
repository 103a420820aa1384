//! The `local-userpass` routes that are not login: registration, confirmation and
//! password reset. Any Authorization header is ignored (realm-web sends the current
//! user's access token on these routes).

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use latchkey_protocol::ProviderType;
use serde_json::{Map, Value};

use super::extract::json_object;
use super::response::no_content;
use crate::error::ApiError;
use crate::providers::{ProviderContext, local_userpass, userpass_flows};
use crate::state::{AppRuntime, SharedState};
use crate::store::CredentialStatus;

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

/// `POST .../app/{app_id}/auth/providers/local-userpass/register` `{email, password}`.
///
/// With `auto_confirm` the credentials are confirmed at once; else the confirmation
/// function runs, or a confirmation message is sent.
pub(crate) async fn register(
    State(state): State<SharedState>,
    Path(app_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (app, body) = prepare(&state, &app_id, body)?;
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
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub(crate) async fn $name(
            State(state): State<SharedState>,
            Path(app_id): Path<String>,
            body: Result<Bytes, BytesRejection>,
        ) -> Result<Response, ApiError> {
            let (app, body) = prepare(&state, &app_id, body)?;
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
    confirm
);
flow_route!(
    /// `POST .../local-userpass/confirm/send` `{email}`.
    confirm_send
);
flow_route!(
    /// `POST .../local-userpass/confirm/call` `{email}`.
    confirm_call
);
flow_route!(
    /// `POST .../local-userpass/reset` `{password, token, tokenId}`.
    reset
);
flow_route!(
    /// `POST .../local-userpass/reset/send` `{email}`.
    reset_send
);
flow_route!(
    /// `POST .../local-userpass/reset/call` `{email, password, arguments}`.
    reset_call
);
