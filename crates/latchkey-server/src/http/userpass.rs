//! The `local-userpass` routes that are not login: registration, confirmation and
//! password reset. Any Authorization header is ignored (realm-web sends the current
//! user's access token on these routes).

use axum::extract::State;
use axum::response::Response;

use super::error::ApiError;
use super::extract::{ClientIp, EJson, UserpassApp};
use super::response::no_content;
use crate::auth::state::SharedState;
use crate::auth::userpass;
use latchkey_protocol::routes::EmailPasswordRoute;

macro_rules! flow_route {
    ($(#[$doc:meta])* $name:ident, $route:expr) => {
        $(#[$doc])*
        pub(crate) async fn $name(
            State(state): State<SharedState>,
            UserpassApp(app): UserpassApp,
            ClientIp(client_ip): ClientIp,
            EJson(body): EJson,
        ) -> Result<Response, ApiError> {
            userpass::run(&state, &app, $route, &body, client_ip).await?;
            Ok(no_content())
        }
    };
}

flow_route!(
    /// `POST .../app/{app_id}/auth/providers/local-userpass/register` `{email, password}`.
    register,
    EmailPasswordRoute::Register
);
flow_route!(
    /// `POST .../local-userpass/confirm` `{token, tokenId}`.
    confirm,
    EmailPasswordRoute::Confirm
);
flow_route!(
    /// `POST .../local-userpass/confirm/send` `{email}`.
    confirm_send,
    EmailPasswordRoute::ConfirmSend
);
flow_route!(
    /// `POST .../local-userpass/confirm/call` `{email}`.
    confirm_call,
    EmailPasswordRoute::ConfirmCall
);
flow_route!(
    /// `POST .../local-userpass/reset` `{password, token, tokenId}`.
    reset,
    EmailPasswordRoute::Reset
);
flow_route!(
    /// `POST .../local-userpass/reset/send` `{email}`.
    reset_send,
    EmailPasswordRoute::ResetSend
);
flow_route!(
    /// `POST .../local-userpass/reset/call` `{email, password, arguments}`.
    reset_call,
    EmailPasswordRoute::ResetCall
);
