//! An axum extractor (feature `axum`).
//!
//! ```
//! use axum::{Json, Router, routing::get};
//! use latchkey_verify::{Verifier, axum::LatchkeyUser};
//!
//! async fn me(LatchkeyUser(user): LatchkeyUser) -> Json<serde_json::Value> {
//!     Json(serde_json::json!({ "user": user.user_id() }))
//! }
//!
//! let verifier = Verifier::builder("https://auth.example.org", "myapp-abcde").build();
//! // The router's state is the verifier (or any state a `Verifier` is `FromRef` of).
//! let app: Router = Router::new().route("/me", get(me)).with_state(verifier);
//! # let _ = app;
//! ```

use axum::extract::{FromRef, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, header};

use crate::{VerifiedToken, Verifier, VerifyError, bearer_token};

/// The verified access token of the request's `Authorization: Bearer` header.
///
/// Rejects with [`Rejection`]: 401 with `WWW-Authenticate` for a missing or invalid
/// token, 503 when the keys (or the revocation check) are unavailable.
#[derive(Debug, Clone)]
pub struct LatchkeyUser(pub VerifiedToken);

/// Why [`LatchkeyUser`] refused a request; answers with [`VerifyError::status`], its
/// `WWW-Authenticate` and a JSON body `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection(pub VerifyError);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.0.to_string() }).to_string();
        let mut resp = (self.0.status(), body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(v) = self
            .0
            .www_authenticate()
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}

impl<S> FromRequestParts<S> for LatchkeyUser
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Verifier::from_ref(state);
        let token = bearer_token(&parts.headers).ok_or(Rejection(VerifyError::Missing))?;
        verifier
            .verify(token)
            .await
            .map(LatchkeyUser)
            .map_err(Rejection)
    }
}
