//! Extractors: what a handler gets already parsed and authenticated. Each one parses
//! its part of the request and asks the domain layer; a failure is answered as the
//! domain error says.
//!
//! - [`KnownApp`]: the route's `{app_id}` names a hosted app.
//! - [`LoginRoute`]: the `{app_id}` and an enabled `{provider}`.
//! - [`UserpassApp`]: the `{app_id}`, with `local-userpass` enabled.
//! - [`AccessSession`]: `Authorization: Bearer <access token>`, a live session and user.
//! - [`RefreshSession`]: `Authorization: Bearer <refresh token>`, likewise.
//! - [`ApiKeyCaller`]: a refresh session of an app with the `api-key` provider on.
//! - [`AdminCaller`]: `Authorization: Bearer <admin token>`.
//! - [`ClientIp`]: the client address used for throttling.
//! - [`EJson`]: an Extended JSON object body; [`CustomDataBody`]: the admin API's
//!   custom data body.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, StatusCode, header};
use latchkey_protocol::ejson;
use serde_json::{Map, Value};

use super::conn::BodyReadTimeout;
use super::error::ApiError;
use crate::auth::login::{self, LoginTarget};
use crate::auth::sessions::{self, SessionAuth};
use crate::auth::state::{AppRuntime, SharedState};
use crate::auth::{admin, api_keys, userpass};
use crate::error::Error;
use crate::store::IdentityRecord;

/// Largest accepted request body.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

/// The token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, Error> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Error::MissingAuth);
    };
    let value = value
        .to_str()
        .map_err(|_| Error::invalid_session("invalid session: malformed Authorization header"))?
        .trim();
    if value.is_empty() {
        return Err(Error::MissingAuth);
    }
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Error::invalid_session(
            "invalid session: expected a Bearer token",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(Error::MissingAuth);
    }
    Ok(token)
}

/// The decoded route parameters (`{app_id}`, `{provider}`, ...).
async fn path_params(
    parts: &mut Parts,
    state: &SharedState,
) -> Result<HashMap<String, String>, ApiError> {
    Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map(|Path(params)| params)
        // As the framework would answer (see `json_errors`).
        .map_err(|rejection| ApiError::from_status(rejection.status()))
}

/// The route parameter `name`.
fn param<'p>(params: &'p HashMap<String, String>, name: &str) -> Result<&'p str, ApiError> {
    params
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| Error::internal(&format_args!("route has no {{{name}}}")).into())
}

/// The route's `{app_id}` names a hosted app.
#[derive(Debug)]
pub(crate) struct KnownApp;

impl FromRequestParts<SharedState> for KnownApp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let params = path_params(parts, state).await?;
        state.app(param(&params, "app_id")?)?;
        Ok(KnownApp)
    }
}

/// The route's `{app_id}` and its enabled `{provider}`.
#[derive(Debug)]
pub(crate) struct LoginRoute(pub(crate) LoginTarget);

impl FromRequestParts<SharedState> for LoginRoute {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let params = path_params(parts, state).await?;
        let target = login::target(
            state,
            param(&params, "app_id")?,
            param(&params, "provider")?,
        )?;
        Ok(LoginRoute(target))
    }
}

/// The route's `{app_id}`, which must have `local-userpass` enabled.
#[derive(Debug)]
pub(crate) struct UserpassApp(pub(crate) Arc<AppRuntime>);

impl FromRequestParts<SharedState> for UserpassApp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let params = path_params(parts, state).await?;
        Ok(UserpassApp(userpass::app(
            state,
            param(&params, "app_id")?,
        )?))
    }
}

/// An extractor of `Authorization: Bearer <token>` authenticated by a domain function
/// into a [`SessionAuth`].
macro_rules! bearer_session {
    ($(#[$doc:meta])* $name:ident, $authenticate:path) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub(crate) struct $name(pub(crate) SessionAuth);

        impl FromRequestParts<SharedState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &SharedState,
            ) -> Result<Self, Self::Rejection> {
                let token = bearer(&parts.headers)?;
                let auth = $authenticate(state, token).await?;
                super::access::record_caller(auth.app.id(), &auth.user.id);
                Ok($name(auth))
            }
        }
    };
}

bearer_session!(
    /// A request authenticated with an access token.
    AccessSession,
    sessions::authenticate_access
);
/// A request authenticated with an access token, with the caller's identities read in
/// the same query as the session (the profile route).
#[derive(Debug)]
pub(crate) struct AccessProfile(pub(crate) SessionAuth, pub(crate) Vec<IdentityRecord>);

impl FromRequestParts<SharedState> for AccessProfile {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers)?;
        let (auth, identities) = sessions::authenticate_profile(state, token).await?;
        super::access::record_caller(auth.app.id(), &auth.user.id);
        Ok(AccessProfile(auth, identities))
    }
}

bearer_session!(
    /// A request authenticated with a refresh token.
    RefreshSession,
    sessions::authenticate_refresh
);
bearer_session!(
    /// A refresh-token caller of the user API key routes (the `api-key` provider enabled).
    ApiKeyCaller,
    api_keys::caller
);

/// A caller holding the admin token.
#[derive(Debug)]
pub(crate) struct AdminCaller(pub(crate) admin::Actor);

impl FromRequestParts<SharedState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        admin::authorize(state, bearer(&parts.headers))?;
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        Ok(AdminCaller(admin::Actor::new(admin::Channel::AdminApi, ip)))
    }
}

/// The client IP: the socket peer, or the last `X-Forwarded-For` entry when
/// `trust_forwarded_for` is set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub(crate) Option<IpAddr>);

impl FromRequestParts<SharedState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        if state.throttle.trusts_forwarded_for()
            && let Some(ip) = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .next_back()
        {
            return Ok(ClientIp(Some(ip)));
        }
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// Whether a `Content-Type` value is JSON (`application/json`, any parameters).
fn is_json(value: &http::HeaderValue) -> bool {
    value.to_str().is_ok_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
    })
}

/// The JSON request body, within [`MAX_BODY_BYTES`] and the connection's body-read
/// timeout ([`BodyReadTimeout`]).
///
/// The body must be labelled JSON: a `Content-Type` other than `application/json`
/// (realm-core adds `;charset=utf-8`) is 415, and so is a non-blank body without
/// one. A blank body may come without a `Content-Type` (realm-web sends none on
/// body-less calls). Requiring JSON means a browser cannot send a body to these
/// routes cross-origin without a CORS preflight.
async fn json_body(req: Request, state: &SharedState) -> Result<Bytes, ApiError> {
    let labelled = match req.headers().get(header::CONTENT_TYPE) {
        Some(v) if is_json(v) => true,
        Some(_) => return Err(ApiError::unsupported_media_type()),
        None => false,
    };
    let timeout = req
        .extensions()
        .get::<BodyReadTimeout>()
        .copied()
        .unwrap_or_default();
    let read = tokio::time::timeout(timeout.0, Bytes::from_request(req, state));
    let bytes = match read.await {
        Err(_elapsed) => return Err(ApiError::request_timeout()),
        Ok(Err(rejection)) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(ApiError::payload_too_large());
        }
        Ok(Err(_)) => return Err(Error::bad_request("cannot read request body").into()),
        Ok(Ok(bytes)) => bytes,
    };
    if !labelled && !bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::unsupported_media_type());
    }
    Ok(bytes)
}

/// A request body parsed as (canonical or relaxed) Extended JSON into a plain JSON
/// object. An empty body is an empty object: realm-core sends `""` with a JSON content
/// type on body-less requests.
#[derive(Debug)]
pub(crate) struct EJson(pub(crate) Map<String, Value>);

impl FromRequest<SharedState> for EJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &SharedState) -> Result<Self, Self::Rejection> {
        let bytes = json_body(req, state).await?;
        Ok(EJson(json_object(&bytes)?))
    }
}

/// [`EJson`]'s parsing.
pub(crate) fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, Error> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_slice(bytes)
        // serde_json's syntax errors name a position, never the content.
        .map_err(|e| Error::bad_request(format!("invalid JSON body: {e}")))?;
    match ejson::to_plain(value) {
        Value::Object(map) if !crate::error::holds_nul(&map) => Ok(map),
        Value::Object(_) => Err(Error::bad_request(
            "request body must not hold NUL (U+0000) characters",
        )),
        _ => Err(Error::bad_request("request body must be a JSON object")),
    }
}

/// The body of the admin API's custom data route: one (Extended) JSON object, never
/// empty.
#[derive(Debug)]
pub(crate) struct CustomDataBody(pub(crate) Value);

impl FromRequest<SharedState> for CustomDataBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &SharedState) -> Result<Self, Self::Rejection> {
        let bytes = json_body(req, state).await?;
        match serde_json::from_slice::<Value>(&bytes).map(ejson::to_plain) {
            Ok(Value::Object(map)) if crate::error::holds_nul(&map) => {
                Err(Error::bad_request("custom data must not hold NUL (U+0000) characters").into())
            }
            Ok(v @ Value::Object(_)) => Ok(CustomDataBody(v)),
            _ => Err(Error::bad_request("custom data must be a JSON object").into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert!(json_object(b"").unwrap().is_empty());
        assert!(json_object(b" \n").unwrap().is_empty());
        let m = json_object(br#"{"a":{"$numberInt":"7"}}"#).unwrap();
        assert_eq!(m["a"], 7);
        let e = json_object(b"{nope").unwrap_err();
        assert!(matches!(e, Error::BadRequest(_)), "400 BadRequest: {e:?}");
        assert!(json_object(b"[1]").is_err());
        for nul in [
            &br#"{"a":"x\u0000"}"#[..],
            br#"{"a\u0000":1}"#,
            br#"{"a":[{"b":"\u0000"}]}"#,
        ] {
            let e = json_object(nul).unwrap_err();
            assert!(e.to_string().contains("NUL"), "{e}");
        }
    }

    #[test]
    fn bearer_tokens() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h).unwrap_err(), Error::MissingAuth);
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&h).unwrap(), "abc");
        h.insert(header::AUTHORIZATION, "bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&h).unwrap(), "abc");
        h.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert!(matches!(bearer(&h).unwrap_err(), Error::InvalidSession(_)));
        h.insert(header::AUTHORIZATION, "Bearer".parse().unwrap());
        assert_eq!(bearer(&h).unwrap_err(), Error::MissingAuth);
    }
}
