//! Response helpers: JSON with `Content-Type: application/json` exactly, and
//! body-less 204s without a content type.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

/// The only Content-Type value realm-core accepts for JSON (no charset parameter).
pub(crate) const APPLICATION_JSON: &str = "application/json";

/// A JSON response.
pub(crate) fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut resp = Response::new(Body::from(bytes));
            *resp.status_mut() = status;
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(APPLICATION_JSON),
            );
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize response body");
            let mut resp = Response::new(Body::from(
                r#"{"error":"internal server error","error_code":"InternalServerError"}"#,
            ));
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(APPLICATION_JSON),
            );
            resp
        }
    }
}

/// 200 with a JSON body.
pub(crate) fn ok_json<T: Serialize>(body: &T) -> Response {
    json_response(StatusCode::OK, body)
}

/// 204 with no body and no Content-Type.
pub(crate) fn no_content() -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}
