//! The browser OAuth redirect flow (protocol.md §3.7, route 1c) for `oauth2-google`,
//! `oauth2-facebook` and `oauth2-apple`:
//!
//! 1. [`start`]: `GET .../auth/providers/{provider}/login?state&redirect&device`
//!    (or `link=true&providerRedirectHeader=true` with an access token). `redirect`
//!    must be one of the provider's `redirect_uris` (exact match), never anything else.
//!    A server-side state (random, stored hashed, single use, [`STATE_TTL_SECS`]) and a
//!    PKCE verifier (where the provider takes PKCE) are stored; the answer is the
//!    provider's authorization URL.
//! 2. [`finish`]: the provider calls back `/auth/callback` with `code` and `state`. The
//!    state is taken (once), the code exchanged, the credential verified as a login
//!    body of the provider is, and the user logged in (or the identity linked). The
//!    browser goes to `redirect` with the fragment keys `_baas_client_app_id`,
//!    `_baas_ua` (`access$refresh$user_id$device_id`), `_baas_link`, `_baas_state` or
//!    `_baas_error`.
//!
//! Errors before `redirect` is known to be allowed (and for an unknown, used or
//! expired state) are answered as JSON errors: the server never redirects to a URI the
//! app did not list.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use latchkey_protocol::ProviderType;
use rand::RngCore;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::login::{self, LoginRequest, LoginTarget};
use super::sessions;
use super::state::ServerState;
use crate::error::Error;
use crate::ids::sha256_hex;
use crate::providers::RedirectFlow;
use crate::providers::exchange::exchange_code;
use crate::providers::redirect::form_encode;
use crate::store::OAuthStateRecord;

/// How long a started sign-in may take (the person at the provider's consent page).
pub(crate) const STATE_TTL_SECS: i64 = 600;
/// Longest accepted client `state`.
const MAX_CLIENT_STATE: usize = 256;
/// Largest accepted `device` parameter (base64).
const MAX_DEVICE_LEN: usize = 4096;

/// A started sign-in: the query of route 1c.
#[derive(Debug, Default)]
pub(crate) struct StartRequest {
    /// `redirect`: the final redirect URI.
    pub(crate) redirect: Option<String>,
    /// `state`: the client's state, echoed as `_baas_state`.
    pub(crate) client_state: Option<String>,
    /// `device`: base64 of the device information JSON.
    pub(crate) device: Option<String>,
    /// `Some` for a link: the bearer access token, or why there is none.
    pub(crate) link: Option<Result<String, Error>>,
    /// This server's callback URL (`{base}/api/client/v2.0/auth/callback`).
    pub(crate) callback: String,
}

/// A failed step of the flow: the error, and where the browser may be sent with it
/// (`None`: answer it, as JSON; never redirect).
#[derive(Debug)]
pub(crate) struct FlowError {
    pub(crate) error: Error,
    pub(crate) back_to: Option<String>,
}

impl From<Error> for FlowError {
    fn from(error: Error) -> Self {
        FlowError {
            error,
            back_to: None,
        }
    }
}

/// Whether `target`'s provider is one of the OAuth providers, which have the flow
/// (when their table sets `redirect_uris`); the login route of any other takes `POST`
/// only.
pub(crate) fn has_redirect_flow(target: &LoginTarget) -> bool {
    [
        ProviderType::Google,
        ProviderType::Facebook,
        ProviderType::Apple,
    ]
    .iter()
    .any(|p| p.as_str() == target.provider.name())
}

/// The flow of `target`'s provider, if the app set it up.
fn flow_of(target: &LoginTarget) -> Result<RedirectFlow<'_>, Error> {
    target
        .provider
        .redirect_flow(&target.app.config.providers)
        .ok_or_else(|| {
            Error::bad_request(format!(
                "the browser sign-in flow of '{}' is not configured (no redirect_uris)",
                target.provider.name()
            ))
        })
}

/// `redirect` with the fragment keys `pairs`.
fn with_fragment(redirect: &str, pairs: &[(&str, &str)]) -> String {
    format!("{redirect}#{}", form_encode(pairs))
}

/// `redirect#_baas_error=...&_baas_state=...`.
fn error_redirect(redirect: &str, client_state: &str, error: &Error) -> String {
    with_fragment(
        redirect,
        &[
            ("_baas_error", &error.to_string()),
            ("_baas_state", client_state),
        ],
    )
}

/// 32 random bytes, base64url.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Step 1: check the request, store the state, and return the provider's
/// authorization URL.
pub(crate) async fn start(
    state: &ServerState,
    target: &LoginTarget,
    request: StartRequest,
) -> Result<String, FlowError> {
    let flow = flow_of(target)?;
    let redirect = request
        .redirect
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Error::bad_request("missing required query parameter 'redirect'"))?;
    if !flow.allows_redirect(&redirect) {
        tracing::info!(
            app = target.app.id(),
            provider = target.provider.name(),
            "OAuth redirect URI refused: not in redirect_uris"
        );
        return Err(
            Error::bad_request("the redirect URI is not one of the app's redirect_uris").into(),
        );
    }
    let client_state = request
        .client_state
        .filter(|s| !s.is_empty() && s.len() <= MAX_CLIENT_STATE)
        .ok_or_else(|| {
            Error::bad_request("query parameter 'state' is required (1-256 characters)")
        })?;
    // From here on, the browser may be sent back with the error (a link answers it).
    let back = |error: Error| FlowError {
        back_to: Some(error_redirect(&redirect, &client_state, &error)),
        error,
    };

    let device = match request.device.as_deref() {
        None | Some("") => None,
        Some(b64) => Some(decode_device(b64).map_err(back)?),
    };
    let (link_user_id, link_session_id) = match request.link {
        None => (None, None),
        Some(token) => {
            // A link's errors are answered (the client fetched this URL).
            let auth = sessions::authenticate_access(state, &token?).await?;
            if auth.app.id() != target.app.id() {
                return Err(Error::AppDomainMismatch.into());
            }
            (Some(auth.user.id), Some(auth.session.id))
        }
    };

    let state_token = random_token();
    let verifier = flow.pkce.then(random_token);
    let challenge = verifier
        .as_deref()
        .map(|v| URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes())));
    let now = state.clock.now_secs();
    let record = OAuthStateRecord {
        state_hash: sha256_hex(&state_token),
        app_id: target.app.id().to_owned(),
        provider_type: target.provider.name().to_owned(),
        redirect_uri: redirect.clone(),
        client_state: client_state.clone(),
        device,
        link_user_id,
        link_session_id,
        code_verifier: verifier.map(Into::into),
        created_at: now,
        expires_at: now + STATE_TTL_SECS,
    };
    state
        .store
        .create_oauth_state(&record)
        .await
        .map_err(|e| back(e.into()))?;
    Ok(flow.authorization_request(&request.callback, &state_token, challenge.as_deref()))
}

/// The `device` parameter: standard base64 (padding optional) of a JSON object.
fn decode_device(b64: &str) -> Result<String, Error> {
    let invalid = || Error::bad_request("'device' must be base64 of a JSON object");
    if b64.len() > MAX_DEVICE_LEN {
        return Err(invalid());
    }
    let trimmed = b64.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| STANDARD.decode(b64))
        .map_err(|_| invalid())?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v @ Value::Object(_)) => Ok(v.to_string()),
        _ => Err(invalid()),
    }
}

/// What the provider sent to the callback (query or form).
#[derive(Debug, Default)]
pub(crate) struct CallbackRequest {
    /// `state`: the server-side state of [`start`].
    pub(crate) state: Option<String>,
    /// `code`: the authorization code.
    pub(crate) code: Option<String>,
    /// `error`: the provider's OAuth error (e.g. `access_denied`).
    pub(crate) error: Option<String>,
    /// The client's address, for the login throttle.
    pub(crate) client_ip: Option<std::net::IpAddr>,
    /// This server's callback URL (as sent to the provider).
    pub(crate) callback: String,
}

/// Step 2: finish the sign-in and return where the browser goes (the app's redirect
/// URI with the result in its fragment). `Err` only when the state is missing,
/// unknown, used or expired, or its redirect URI is no longer allowed.
pub(crate) async fn finish(state: &ServerState, request: CallbackRequest) -> Result<String, Error> {
    let refused = || Error::bad_request("unknown, expired or already used OAuth state");
    let token = request
        .state
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= 256);
    let Some(token) = token else {
        return Err(refused());
    };
    let now = state.clock.now_secs();
    let Some(record) = state
        .store
        .take_oauth_state(&sha256_hex(token), now)
        .await?
    else {
        tracing::info!("OAuth callback refused: unknown, expired or used state");
        return Err(refused());
    };
    // The app's configuration is read again: a provider turned off or a redirect URI
    // removed since the start ends the flow here.
    let target = login::target(state, &record.app_id, &record.provider_type)?;
    let flow = flow_of(&target)?;
    if !flow.allows_redirect(&record.redirect_uri) {
        return Err(Error::bad_request(
            "the redirect URI is not one of the app's redirect_uris",
        ));
    }
    let redirect = &record.redirect_uri;
    Ok(
        match complete(state, &target, &flow, &record, &request, now).await {
            Ok(pairs) => {
                let mut pairs: Vec<(&str, &str)> =
                    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
                pairs.push(("_baas_state", &record.client_state));
                with_fragment(redirect, &pairs)
            }
            Err(error) => {
                tracing::info!(
                    app = target.app.id(),
                    provider = target.provider.name(),
                    error = %error,
                    "OAuth sign-in failed"
                );
                error_redirect(redirect, &record.client_state, &error)
            }
        },
    )
}

/// Exchange the code, then log in or link: the fragment keys of a success.
async fn complete(
    state: &ServerState,
    target: &LoginTarget,
    flow: &RedirectFlow<'_>,
    record: &OAuthStateRecord,
    request: &CallbackRequest,
    now: i64,
) -> Result<Vec<(&'static str, String)>, Error> {
    let label = flow.label;
    if let Some(error) = request.error.as_deref() {
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return Err(Error::auth_failed(format!(
            "{label}: sign-in was not completed ({code})"
        )));
    }
    let code = request
        .code
        .as_deref()
        .ok_or_else(|| Error::auth_failed(format!("{label}: no authorization code")))?;
    let ctx = state.provider_context(&target.app);
    let verifier = record.code_verifier.as_ref().map(|v| v.expose());
    let mut body = exchange_code(flow, &ctx, &request.callback, code, verifier).await?;
    let link = match (&record.link_user_id, &record.link_session_id) {
        (Some(user_id), Some(session_id)) => {
            // The session that asked must still be live: a fresh access token of it.
            let Some((session, user)) =
                sessions::live_session(state, &target.app, session_id, user_id, now).await?
            else {
                return Err(Error::invalid_session(
                    "invalid session: session not found or revoked",
                ));
            };
            let access = sessions::login_response(&target.app, &session, &user, now)?.access_token;
            Some(Ok(access.expose().to_owned()))
        }
        _ => None,
    };
    if let Some(device) = record.device.as_deref()
        && let Ok(device @ Value::Object(_)) = serde_json::from_str::<Value>(device)
    {
        let mut options = Map::new();
        options.insert("device".to_owned(), device);
        body.insert("options".to_owned(), Value::Object(options));
    }
    let linking = link.is_some();
    let response = login::login(
        state,
        target,
        LoginRequest {
            body,
            link,
            client_ip: request.client_ip,
        },
    )
    .await?;
    let refresh = response
        .refresh_token
        .as_ref()
        .map(|t| t.expose().to_owned())
        .unwrap_or_default();
    let user_auth = format!(
        "{}${}${}${}",
        response.access_token.expose(),
        refresh,
        response.user_id,
        response.device_id
    );
    let mut pairs = vec![
        ("_baas_client_app_id", target.app.id().to_owned()),
        ("_baas_ua", user_auth),
    ];
    if linking {
        pairs.push(("_baas_link", "ok".to_owned()));
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_fragments() {
        let json = r#"{"appId":"a","deviceId":"0123"}"#;
        let padded = STANDARD.encode(json);
        assert_eq!(
            decode_device(&padded).unwrap(),
            r#"{"appId":"a","deviceId":"0123"}"#
        );
        assert_eq!(
            decode_device(padded.trim_end_matches('=')).unwrap().len(),
            json.len()
        );
        assert!(decode_device("!!").is_err());
        assert!(decode_device(&STANDARD.encode("[1]")).is_err());
        assert_eq!(
            error_redirect("http://a/cb", "st", &Error::bad_request("x y&z")),
            "http://a/cb#_baas_error=x%20y%26z&_baas_state=st"
        );
        assert_ne!(random_token(), random_token());
        assert_eq!(random_token().len(), 43);
    }
}
