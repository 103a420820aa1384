//! Example: an API of your own that trusts the access tokens latchkey-server issues.
//!
//! Every route takes a [`LatchkeyUser`]: the request's `Authorization: Bearer` access
//! token, verified offline by `latchkey-verify` against the app's published keys
//! (`.well-known/jwks.json`). A missing or invalid token is answered 401 with
//! `WWW-Authenticate`, which the latchkey SDK's `user.request(...)` answers by
//! refreshing the token once and replaying the request.

use std::net::SocketAddr;

use axum::routing::get;
use axum::{Json, Router};
use latchkey_verify::Verifier;
use latchkey_verify::axum::LatchkeyUser;
use serde_json::{Value, json};

/// The API: `GET /me` describes the caller from the verified token.
pub fn router(verifier: Verifier) -> Router {
    Router::new().route("/me", get(me)).with_state(verifier)
}

async fn me(LatchkeyUser(user): LatchkeyUser) -> Json<Value> {
    Json(json!({
        "user_id": user.user_id(),
        "device_id": user.device_id(),
        "app_id": user.app_id(),
        "token_age_secs": user.age().as_secs(),
        "user_data": user.user_data(),
    }))
}

/// Serve [`router`] on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, verifier: Verifier) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(verifier).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
