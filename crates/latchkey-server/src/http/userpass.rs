//! The `local-userpass` routes that are not login (register now; confirmation and
//! password reset come next).

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use latchkey_protocol::ProviderType;

use super::extract::json_object;
use super::response::no_content;
use crate::error::ApiError;
use crate::providers::{ProviderContext, local_userpass};
use crate::state::SharedState;

/// `POST .../app/{app_id}/auth/providers/local-userpass/register` `{email, password}`.
///
/// Any Authorization header is ignored (realm-web sends the current user's token).
pub(crate) async fn register(
    State(state): State<SharedState>,
    Path(app_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let app = state.app(&app_id)?;
    if !app.provider_enabled(ProviderType::EmailPassword) {
        return Err(ApiError::provider_not_found(
            ProviderType::EmailPassword.as_str(),
        ));
    }
    let body = json_object(body)?;
    let ctx = ProviderContext {
        state: &state,
        app: &app,
    };
    local_userpass::register(ctx, &body).await?;
    Ok(no_content())
}
