//! The code exchange of the browser OAuth redirect flow: an authorization code becomes
//! the credential body the provider verifies (`{id_token}` for Google and Apple, a
//! user access token `{accessToken}` for Facebook). Codes, secrets and verifiers never
//! appear in a message or log.

use std::time::Duration;

use latchkey_protocol::{LoginBody, Secret};
use serde_json::Value;

use super::common::ProviderContext;
use super::oidc::unreachable;
use super::redirect::{Exchange, RedirectFlow};
use crate::error::Error;
use crate::outbound::read_json;

/// Per-request timeout of a code exchange.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest accepted token-endpoint answer.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Longest accepted authorization code.
const MAX_CODE_LEN: usize = 4096;

/// Exchange `code` (sent to `callback`) for the credential body of `flow`'s provider.
pub(crate) async fn exchange_code(
    flow: &RedirectFlow<'_>,
    ctx: &ProviderContext<'_>,
    callback: &str,
    code: &str,
    code_verifier: Option<&str>,
) -> Result<LoginBody, Error> {
    let label = flow.label;
    if code.is_empty() || code.len() > MAX_CODE_LEN {
        return Err(Error::auth_failed(format!(
            "{label}: authorization code rejected"
        )));
    }
    let mut body = LoginBody::new();
    match flow.exchange {
        Exchange::IdToken {
            token_url,
            client_secret,
        } => {
            let id_token = exchange_for_id_token(
                ctx,
                label,
                token_url,
                flow.client_id,
                client_secret,
                callback,
                code,
                code_verifier,
            )
            .await?;
            body.insert("id_token".to_owned(), Value::String(id_token));
        }
        Exchange::Facebook {
            graph_url,
            app_secret,
        } => {
            let mut query = vec![
                ("client_id", flow.client_id),
                ("client_secret", app_secret.expose()),
                ("redirect_uri", callback),
                ("code", code),
            ];
            if let Some(verifier) = code_verifier {
                query.push(("code_verifier", verifier));
            }
            let url = format!("{}/oauth/access_token", graph_url.trim_end_matches('/'));
            let request = ctx.http.get(url).query(&query);
            let token = token_call(ctx, label, request, "access_token").await?;
            body.insert("accessToken".to_owned(), Value::String(token));
        }
    }
    Ok(body)
}

/// `POST token_url` with an authorization code; the answer's `id_token`.
#[allow(clippy::too_many_arguments)] // one call per field of the token request
pub(crate) async fn exchange_for_id_token(
    ctx: &ProviderContext<'_>,
    label: &'static str,
    token_url: &str,
    client_id: &str,
    client_secret: &Secret,
    redirect_uri: &str,
    code: &str,
    code_verifier: Option<&str>,
) -> Result<String, Error> {
    let mut form = vec![
        ("code", code),
        ("client_id", client_id),
        ("client_secret", client_secret.expose()),
        ("redirect_uri", redirect_uri),
        ("grant_type", "authorization_code"),
    ];
    if let Some(verifier) = code_verifier {
        form.push(("code_verifier", verifier));
    }
    let request = ctx.http.post(token_url).form(&form);
    token_call(ctx, label, request, "id_token").await
}

/// Send a token request and read the string `field` of its JSON answer.
async fn token_call(
    ctx: &ProviderContext<'_>,
    label: &'static str,
    request: reqwest::RequestBuilder,
    field: &str,
) -> Result<String, Error> {
    let resp = request
        .timeout(EXCHANGE_TIMEOUT)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(app = ctx.app_id, provider = label, error = %e.without_url(), "token endpoint unreachable");
            unreachable(label, "authorization code")
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
        tracing::info!(app = ctx.app_id, provider = label, %status, "code exchange rejected");
        return Err(Error::auth_failed(format!(
            "{label}: authorization code rejected by the token endpoint{reason}"
        )));
    }
    answer
        .as_ref()
        .and_then(|a| a.get(field))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            Error::auth_failed(format!("{label}: the token endpoint returned no {field}"))
        })
}
