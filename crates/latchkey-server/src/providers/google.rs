//! `oauth2-google`: a Google ID token (`id_token`, OpenID Connect) or a server auth
//! code (`authCode`) exchanged at Google's token endpoint for an ID token. Either way
//! the ID token is verified the same way: RS256 against Google's JWKS, `iss` one of
//! the configured issuers, `aud` one of the client ids, `exp`, `nbf`, `iat`.
//! The identity id is `sub`.

use std::time::Duration;

use latchkey_protocol::{LoginBody, ProviderType};
use serde_json::Value;

use super::oidc::{self, Rules, unreachable};
use super::{ProviderContext, VerifiedIdentity};
use crate::config::GoogleConfig;
use crate::error::ApiError;
use crate::outbound::read_json;

const LABEL: &str = "Google";
/// Per-request timeout of the code exchange.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest accepted token-endpoint answer.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Check a login body `{id_token}` or `{authCode}`.
pub(crate) async fn authenticate(
    ctx: ProviderContext<'_>,
    body: &LoginBody,
) -> Result<VerifiedIdentity, ApiError> {
    let config = &ctx.app.config.providers.google;
    let id_token = match (body.get("id_token"), body.get("authCode")) {
        (Some(Value::String(t)), _) => t.clone(),
        (None, Some(Value::String(code))) => exchange_code(ctx, config, code).await?,
        (Some(_), _) => return Err(ApiError::bad_request("'id_token' must be a string")),
        (None, Some(_)) => return Err(ApiError::bad_request("'authCode' must be a string")),
        (None, None) => {
            return Err(ApiError::bad_request(
                "missing required field 'id_token' or 'authCode'",
            ));
        }
    };
    let audiences = config.audiences();
    let rules = Rules::id_token(LABEL, &audiences, &config.issuers, config.leeway_secs);
    oidc::verify_id_token(
        ctx.state,
        ProviderType::Google,
        &id_token,
        &config.jwks_url,
        &rules,
    )
    .await
}

/// Exchange a server auth code for an ID token at `token_url`. Neither the code nor
/// the client secret ever appears in a message or log.
async fn exchange_code(
    ctx: ProviderContext<'_>,
    config: &GoogleConfig,
    code: &str,
) -> Result<String, ApiError> {
    let Some(secret) = config.client_secret.as_deref() else {
        return Err(ApiError::auth_error(
            "Google: authCode login is not configured (client_secret missing)",
        ));
    };
    if code.is_empty() || code.len() > 4096 {
        return Err(ApiError::auth_error("Google: authorization code rejected"));
    }
    let form = [
        ("code", code),
        ("client_id", config.client_id.as_str()),
        ("client_secret", secret),
        ("redirect_uri", config.redirect_uri.as_str()),
        ("grant_type", "authorization_code"),
    ];
    let resp = ctx
        .state
        .http
        .post(&config.token_url)
        .timeout(EXCHANGE_TIMEOUT)
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(app = ctx.app.id(), error = %e.without_url(), "Google token endpoint unreachable");
            unreachable(LABEL, "authorization code")
        })?;
    let status = resp.status();
    let answer = read_json(resp, MAX_ANSWER_BYTES).await;
    if !status.is_success() {
        // The OAuth error code (e.g. invalid_grant) is safe to show; descriptions are not echoed.
        let reason = answer
            .as_ref()
            .and_then(|a| a.get("error"))
            .and_then(Value::as_str)
            .filter(|e| e.len() <= 64 && e.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        tracing::info!(app = ctx.app.id(), %status, "Google code exchange rejected");
        return Err(ApiError::auth_error(format!(
            "Google: authorization code rejected by the token endpoint{reason}"
        )));
    }
    answer
        .as_ref()
        .and_then(|a| a.get("id_token"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::auth_error(
                "Google: the token endpoint returned no ID token (is the openid scope granted?)",
            )
        })
}
