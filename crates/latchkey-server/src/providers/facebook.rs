//! `oauth2-facebook`: a Facebook user access token (opaque), checked online.
//!
//! 1. `GET {graph_url}/debug_token?input_token=T&access_token={app_id}|{app_secret}`:
//!    `data.is_valid` must be true, `data.app_id` must be our app (tokens issued to
//!    other apps are rejected), `data.type` (when present) `USER`, and `expires_at`
//!    (when not 0) in the future.
//! 2. `GET {graph_url}/me?fields=...&access_token=T`: the user's fields; `id` must be
//!    `debug_token`'s `user_id` and becomes the identity id. String fields go to the
//!    profile; `picture.data.url` as `picture` and `picture_url`; `age_range.min`/`max`
//!    as `min_age`/`max_age`.

use std::time::Duration;

use latchkey_protocol::{LoginBody, ProviderType};
use serde_json::{Map, Value};

use super::oidc::unreachable;
use super::{ProviderContext, VerifiedIdentity, required_str};
use crate::config::FacebookConfig;
use crate::error::ApiError;
use crate::outbound::read_json;

const LABEL: &str = "Facebook";
/// Per-request timeout of each Graph API call.
const GRAPH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest accepted Graph API answer.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Longest accepted access token.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Check a login body `{accessToken}`.
pub(crate) async fn authenticate(
    ctx: ProviderContext<'_>,
    body: &LoginBody,
) -> Result<VerifiedIdentity, ApiError> {
    let token = required_str(body, "accessToken")?;
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(ApiError::auth_error("Facebook: access token is not valid"));
    }
    let config = &ctx.app.config.providers.facebook;
    let base = config.graph_url.trim_end_matches('/');

    let app_token = format!("{}|{}", config.app_id, config.app_secret);
    let debug = graph_get(
        ctx,
        "debug_token",
        &format!("{base}/debug_token"),
        &[("input_token", token), ("access_token", &app_token)],
    )
    .await?;
    let Some(data) = debug.get("data").and_then(Value::as_object) else {
        tracing::warn!(
            app = ctx.app.id(),
            "Facebook debug_token answer has no data (check app_id/app_secret)"
        );
        return Err(ApiError::auth_error(
            "Facebook: access token could not be verified",
        ));
    };
    let now = ctx.state.clock.now_secs();
    let expires_at = data.get("expires_at").and_then(Value::as_i64).unwrap_or(0);
    if expires_at != 0 && expires_at <= now {
        return Err(ApiError::auth_error("Facebook: access token expired"));
    }
    if data.get("is_valid").and_then(Value::as_bool) != Some(true) {
        let expired = data
            .get("error")
            .and_then(|e| e.get("subcode"))
            .and_then(Value::as_i64)
            == Some(463);
        return Err(ApiError::auth_error(if expired {
            "Facebook: access token expired"
        } else {
            "Facebook: access token is not valid"
        }));
    }
    if id_string(data.get("app_id")).as_deref() != Some(config.app_id.as_str()) {
        return Err(ApiError::auth_error(
            "Facebook: access token was issued to another app",
        ));
    }
    if let Some(kind) = data.get("type").and_then(Value::as_str)
        && kind != "USER"
    {
        return Err(ApiError::auth_error("Facebook: not a user access token"));
    }
    let Some(user_id) = id_string(data.get("user_id")) else {
        return Err(ApiError::auth_error("Facebook: access token has no user"));
    };

    let fields = fields(config);
    let me = graph_get(
        ctx,
        "me",
        &format!("{base}/me"),
        &[("fields", &fields), ("access_token", token)],
    )
    .await?;
    let Some(me) = me.as_object() else {
        return Err(ApiError::auth_error("Facebook: invalid profile answer"));
    };
    if id_string(me.get("id")).as_deref() != Some(user_id.as_str()) {
        return Err(ApiError::auth_error(
            "Facebook: profile does not match the access token's user",
        ));
    }
    Ok(VerifiedIdentity {
        provider: ProviderType::Facebook,
        id: user_id,
        data: profile(me),
    })
}

/// The `fields` parameter: the configured fields, with `id` always included.
fn fields(config: &FacebookConfig) -> String {
    let mut fields: Vec<&str> = config.fields.iter().map(String::as_str).collect();
    if !fields.contains(&"id") {
        fields.insert(0, "id");
    }
    fields.join(",")
}

/// A Graph id: a string, or a number rendered as one.
fn id_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() && s.len() <= 128 => Some(s.clone()),
        Value::Number(n) if n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// A Graph API GET. The URL (it carries tokens) is never logged.
async fn graph_get(
    ctx: ProviderContext<'_>,
    endpoint: &str,
    url: &str,
    query: &[(&str, &str)],
) -> Result<Value, ApiError> {
    let resp = ctx
        .state
        .http
        .get(url)
        .query(query)
        .timeout(GRAPH_TIMEOUT)
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(app = ctx.app.id(), error = %e.without_url(), "Facebook Graph API unreachable");
            unreachable(LABEL, "access token")
        })?;
    let status = resp.status();
    let body = read_json(resp, MAX_ANSWER_BYTES).await;
    if status.is_server_error() {
        tracing::warn!(app = ctx.app.id(), %status, "Facebook Graph API error");
        return Err(unreachable(LABEL, "access token"));
    }
    if !status.is_success() {
        if endpoint == "debug_token" {
            // debug_token answers 200 for bad user tokens; a 4xx means our app token
            // (app_id|app_secret) was refused.
            tracing::warn!(
                app = ctx.app.id(),
                %status,
                "Facebook refused the app token: check app_id and app_secret"
            );
            return Err(ApiError::auth_error(
                "Facebook: access token could not be verified",
            ));
        }
        tracing::info!(app = ctx.app.id(), %status, endpoint, "Facebook Graph API rejected a call");
        return Err(ApiError::auth_error("Facebook: access token is not valid"));
    }
    body.ok_or_else(|| {
        tracing::warn!(app = ctx.app.id(), "Facebook Graph API answer is not JSON");
        unreachable(LABEL, "access token")
    })
}

/// Profile data of a `/me` answer (all values strings).
fn profile(me: &Map<String, Value>) -> Map<String, Value> {
    let mut data = Map::new();
    for (key, value) in me {
        match (key.as_str(), value) {
            ("id", _) => {}
            ("picture", v) => {
                if let Some(url) = v
                    .get("data")
                    .and_then(|d| d.get("url"))
                    .and_then(Value::as_str)
                {
                    data.insert("picture".into(), Value::from(url));
                    data.insert("picture_url".into(), Value::from(url));
                }
            }
            ("age_range", v) => {
                for (from, to) in [("min", "min_age"), ("max", "max_age")] {
                    if let Some(n) = v.get(from).filter(|n| n.is_number()) {
                        data.insert(to.into(), Value::String(n.to_string()));
                    }
                }
            }
            (_, Value::String(s)) => {
                data.insert(key.clone(), Value::String(s.clone()));
            }
            _ => {}
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_mapping() {
        let me = serde_json::json!({
            "id": "1", "name": "Ann Lee", "email": "a@b.c",
            "picture": {"data": {"url": "https://p", "width": 50}},
            "age_range": {"min": 21}, "verified": true
        });
        let d = profile(me.as_object().unwrap());
        assert_eq!(d["name"], "Ann Lee");
        assert_eq!(d["picture"], "https://p");
        assert_eq!(d["picture_url"], "https://p");
        assert_eq!(d["min_age"], "21");
        assert!(!d.contains_key("id") && !d.contains_key("verified"));
    }
}
