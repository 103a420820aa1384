//! Authentication providers: each module verifies one kind of credential body and
//! says which identity it proves. Users, sessions and tokens are handled by the
//! caller (`http::client`), the same way for every provider.

use latchkey_protocol::{LoginBody, ProviderType};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::state::{AppRuntime, ServerState};

pub(crate) mod anonymous;
pub(crate) mod api_key;
pub(crate) mod custom_function;
pub(crate) mod local_userpass;
pub(crate) mod userpass_flows;
// custom-token, oauth2-google, oauth2-apple, oauth2-facebook and their shared parts.
pub(crate) mod apple;
pub(crate) mod custom_token;
pub(crate) mod facebook;
pub(crate) mod google;
pub(crate) mod jwks;
pub(crate) mod oidc;

/// The identity a credential proves.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VerifiedIdentity {
    /// The provider.
    pub(crate) provider: ProviderType,
    /// Provider-specific identity id, unique per (app, provider).
    pub(crate) id: String,
    /// Profile metadata to store with the identity (e.g. `email`).
    pub(crate) data: Map<String, Value>,
}

/// What a provider needs from the server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProviderContext<'a> {
    pub(crate) state: &'a ServerState,
    pub(crate) app: &'a AppRuntime,
}

/// Verify a login body (already converted from Extended JSON, without `provider`
/// and `options`) for `provider`, which the caller has checked is enabled.
pub(crate) async fn authenticate(
    ctx: ProviderContext<'_>,
    provider: ProviderType,
    body: &LoginBody,
) -> Result<VerifiedIdentity, ApiError> {
    match provider {
        ProviderType::Anonymous => Ok(anonymous::authenticate(ctx, body)),
        ProviderType::EmailPassword => local_userpass::authenticate(ctx, body).await,
        ProviderType::ApiKey => api_key::authenticate(ctx, body).await,
        ProviderType::CustomFunction => custom_function::authenticate(ctx, body).await,
        ProviderType::CustomJwt => custom_token::authenticate(ctx, body).await,
        ProviderType::Google => google::authenticate(ctx, body).await,
        ProviderType::Apple => apple::authenticate(ctx, body).await,
        ProviderType::Facebook => facebook::authenticate(ctx, body).await,
        other => Err(ApiError::provider_not_found(other.as_str())),
    }
}

/// A required string field of a credential body. The message never echoes the value.
pub(crate) fn required_str<'b>(body: &'b LoginBody, key: &str) -> Result<&'b str, ApiError> {
    match body.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::bad_request(format!("'{key}' must be a string"))),
        None => Err(ApiError::bad_request(format!(
            "missing required field '{key}'"
        ))),
    }
}
