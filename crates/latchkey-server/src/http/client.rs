//! The client API routes: location, login (and link), session refresh and logout,
//! profile, and user self-deletion.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::HeaderMap;
use latchkey_protocol::LocationResponse;

use super::error::ApiError;
use super::extract::{
    AccessProfile, AccessSession, ClientIp, EJson, KnownApp, LoginRoute, RefreshSession, bearer,
};
use super::response::{no_content, ok_json};
use crate::auth::login::{self, LoginRequest};
use crate::auth::state::{ServerState, SharedState};
use crate::auth::{sessions, users};

/// `GET .../app/{app_id}/location`.
pub(crate) async fn location(
    State(state): State<SharedState>,
    _: KnownApp,
    headers: HeaderMap,
) -> Response {
    let hostname = hostname(&state, &headers);
    ok_json(&LocationResponse {
        deployment_model: "LOCAL".to_owned(),
        location: "local".to_owned(),
        ws_hostname: ws_url(&hostname),
        hostname,
        sync_route: None,
    })
}

/// The `hostname` of the location response: `public_url`, else the address the
/// server listens on. When that is a wildcard address (0.0.0.0 or ::), the
/// request's `Host` header names the interface the client actually reached.
pub(super) fn hostname(state: &ServerState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.public_url {
        return url.clone();
    }
    if state.local_addr.ip().is_unspecified() {
        let host = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| valid_host(h));
        if let Some(host) = host {
            return format!("http://{host}");
        }
    }
    format!("http://{}", state.local_addr)
}

/// A `Host` header value that is safe to echo into a URL: host[:port] characters only.
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

/// The websocket base for an HTTP base URL.
fn ws_url(http_url: &str) -> String {
    if let Some(rest) = http_url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = http_url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        http_url.to_owned()
    }
}

/// Whether the query string asks to link (`link=true`).
fn wants_link(query: Option<&str>) -> bool {
    query
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == "link").then_some(v)
        })
        .any(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// `POST .../app/{app_id}/auth/providers/{provider}/login[?link=true]`.
pub(crate) async fn login(
    State(state): State<SharedState>,
    LoginRoute(target): LoginRoute,
    RawQuery(query): RawQuery,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    EJson(body): EJson,
) -> Result<Response, ApiError> {
    // Only a link reads the Authorization header (realm-web sends one on every login).
    let link = wants_link(query.as_deref()).then(|| bearer(&headers).map(str::to_owned));
    let request = LoginRequest {
        body,
        link,
        client_ip,
    };
    let response = login::login(&state, &target, request).await?;
    // The access log's line for this answer names the user who logged in.
    super::access::record_caller(target.app.id(), &response.user_id);
    Ok(ok_json(&response))
}

/// `POST /auth/session` (refresh bearer): a new access token for the same session.
pub(crate) async fn refresh(
    State(state): State<SharedState>,
    RefreshSession(auth): RefreshSession,
) -> Result<Response, ApiError> {
    Ok(ok_json(&sessions::refresh(&state, &auth)?))
}

/// `DELETE /auth/session` (refresh bearer): end the session.
pub(crate) async fn logout(
    State(state): State<SharedState>,
    RefreshSession(auth): RefreshSession,
) -> Result<Response, ApiError> {
    sessions::revoke(&state, &auth).await?;
    Ok(no_content())
}

/// `GET /auth/profile` (access bearer).
pub(crate) async fn profile(
    AccessProfile(auth, identities): AccessProfile,
) -> Result<Response, ApiError> {
    Ok(ok_json(&users::profile(&auth, identities)))
}

/// `DELETE /auth/delete` (access bearer): delete the user, its identities and sessions.
pub(crate) async fn delete_user(
    State(state): State<SharedState>,
    AccessSession(auth): AccessSession,
) -> Result<Response, ApiError> {
    users::delete_self(&state, &auth).await?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_query() {
        assert!(wants_link(Some("link=true")));
        assert!(wants_link(Some("a=b&link=TRUE")));
        assert!(!wants_link(Some("link=false")));
        assert!(!wants_link(Some("linked=true")));
        assert!(!wants_link(None));
    }

    #[test]
    fn ws_urls() {
        assert_eq!(ws_url("http://127.0.0.1:1"), "ws://127.0.0.1:1");
        assert_eq!(ws_url("https://a.b/p"), "wss://a.b/p");
    }

    #[test]
    fn host_filter() {
        assert!(valid_host("example.org:8080"));
        assert!(valid_host("[::1]:80"));
        assert!(!valid_host("evil.org/path"));
        assert!(!valid_host("a b"));
    }
}
