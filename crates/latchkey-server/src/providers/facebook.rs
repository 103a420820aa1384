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

use async_trait::async_trait;
use latchkey_protocol::{LoginBody, ProviderType, Secret};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{Provider, ProviderContext, VerifiedIdentity, required_str};
use super::oidc::unreachable;
use super::redirect::{Exchange, RedirectFlow, check_redirect_uris};
use crate::error::Error;
use crate::outbound::read_json;
use crate::settings::{ConfigError, check_url, expose_secret, invalid, yes};

/// Facebook's Graph API base URL.
pub const FACEBOOK_GRAPH_URL: &str = "https://graph.facebook.com";
/// Facebook Login's authorization dialog (the browser redirect flow).
pub const FACEBOOK_AUTHORIZATION_URL: &str = "https://www.facebook.com/dialog/oauth";

const LABEL: &str = "Facebook";
/// Per-request timeout of each Graph API call.
const GRAPH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest accepted Graph API answer.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Longest accepted access token.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// `[apps.providers.oauth2-facebook]`: log in with a Facebook user access token.
///
/// ```toml
/// [apps.providers.oauth2-facebook]
/// app_id = "1234567890"
/// app_secret = "..."
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacebookConfig {
    /// Whether the provider accepts logins. True when the table is present and the key is not.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The Facebook App ID; tokens issued to any other app are rejected.
    #[serde(default)]
    pub app_id: String,
    /// The App Secret (for the `debug_token` app token).
    #[serde(default, serialize_with = "expose_secret")]
    pub app_secret: Secret,
    /// Graph API base URL, optionally with a version (default [`FACEBOOK_GRAPH_URL`]).
    #[serde(default = "default_graph_url")]
    pub graph_url: String,
    /// User fields read from `/me` (default id, name, email, first_name, last_name, picture).
    #[serde(default = "default_facebook_fields")]
    pub fields: Vec<String>,
    /// The browser redirect flow's allowed final redirect URIs (exact match); empty
    /// (the default) turns the flow off.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Facebook's authorization dialog (default [`FACEBOOK_AUTHORIZATION_URL`]).
    #[serde(default = "default_facebook_authorization")]
    pub authorization_url: String,
}

impl Default for FacebookConfig {
    fn default() -> Self {
        FacebookConfig {
            enabled: false,
            app_id: String::new(),
            app_secret: Secret::default(),
            graph_url: default_graph_url(),
            fields: default_facebook_fields(),
            redirect_uris: Vec::new(),
            authorization_url: default_facebook_authorization(),
        }
    }
}

fn default_facebook_authorization() -> String {
    FACEBOOK_AUTHORIZATION_URL.to_owned()
}

fn default_graph_url() -> String {
    FACEBOOK_GRAPH_URL.to_owned()
}

fn default_facebook_fields() -> Vec<String> {
    ["id", "name", "email", "first_name", "last_name", "picture"]
        .map(str::to_owned)
        .to_vec()
}

impl FacebookConfig {
    /// Check the values (when enabled). `app` names the app in messages.
    pub fn validate(&self, app: &str) -> Result<(), ConfigError> {
        const P: &str = Facebook::NAME;
        if !self.enabled {
            return Ok(());
        }
        if self.app_id.trim().is_empty() || !self.app_id.chars().all(|c| c.is_ascii_digit()) {
            return invalid(
                app,
                P,
                "app_id is required and must be the numeric Facebook App ID",
            );
        }
        if self.app_secret.is_empty() {
            return invalid(app, P, "app_secret is required");
        }
        check_url(app, P, "graph_url", &self.graph_url)?;
        if self.graph_url.contains(['?', '#']) {
            return invalid(app, P, "graph_url must not contain a query or fragment");
        }
        for field in &self.fields {
            let ok = !field.is_empty()
                && field
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '(' | ')'));
            if !ok {
                return invalid(app, P, format!("invalid Graph API field {field:?}"));
            }
        }
        check_url(app, P, "authorization_url", &self.authorization_url)?;
        check_redirect_uris(app, P, &self.redirect_uris, None)
    }
}

/// The `oauth2-facebook` provider.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facebook;

#[async_trait]
impl Provider for Facebook {
    const NAME: &'static str = ProviderType::Facebook.as_str();
    type Config = FacebookConfig;

    fn enabled(&self, config: &FacebookConfig) -> bool {
        config.enabled
    }

    fn validate(&self, config: &FacebookConfig, app_id: &str) -> Result<(), ConfigError> {
        config.validate(app_id)
    }

    /// Authorization code with PKCE, `email public_profile`; the code becomes a user
    /// access token, checked as a login body's `accessToken` is.
    fn redirect_flow<'c>(&self, config: &'c FacebookConfig) -> Option<RedirectFlow<'c>> {
        if config.redirect_uris.is_empty() {
            return None;
        }
        Some(RedirectFlow {
            label: LABEL,
            authorization_url: &config.authorization_url,
            client_id: &config.app_id,
            scope: "email public_profile",
            pkce: true,
            form_post: false,
            redirect_uris: &config.redirect_uris,
            exchange: Exchange::Facebook {
                graph_url: &config.graph_url,
                app_secret: &config.app_secret,
            },
        })
    }

    /// Check a login body `{accessToken}`.
    async fn authenticate(
        &self,
        ctx: &ProviderContext<'_>,
        config: &FacebookConfig,
        body: &LoginBody,
    ) -> Result<VerifiedIdentity, Error> {
        let token = required_str(body, "accessToken")?;
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(Error::auth_failed("Facebook: access token is not valid"));
        }
        let base = config.graph_url.trim_end_matches('/');

        let app_token = format!("{}|{}", config.app_id, config.app_secret.expose());
        let debug = graph_get(
            ctx,
            "debug_token",
            &format!("{base}/debug_token"),
            &[("input_token", token), ("access_token", &app_token)],
        )
        .await?;
        let Some(data) = debug.get("data").and_then(Value::as_object) else {
            tracing::warn!(
                app = ctx.app_id,
                "Facebook debug_token answer has no data (check app_id/app_secret)"
            );
            return Err(Error::auth_failed(
                "Facebook: access token could not be verified",
            ));
        };
        let now = ctx.clock.now_secs();
        let expires_at = data.get("expires_at").and_then(Value::as_i64).unwrap_or(0);
        if expires_at != 0 && expires_at <= now {
            return Err(Error::auth_failed("Facebook: access token expired"));
        }
        if data.get("is_valid").and_then(Value::as_bool) != Some(true) {
            let expired = data
                .get("error")
                .and_then(|e| e.get("subcode"))
                .and_then(Value::as_i64)
                == Some(463);
            return Err(Error::auth_failed(if expired {
                "Facebook: access token expired"
            } else {
                "Facebook: access token is not valid"
            }));
        }
        if id_string(data.get("app_id")).as_deref() != Some(config.app_id.as_str()) {
            return Err(Error::auth_failed(
                "Facebook: access token was issued to another app",
            ));
        }
        if let Some(kind) = data.get("type").and_then(Value::as_str)
            && kind != "USER"
        {
            return Err(Error::auth_failed("Facebook: not a user access token"));
        }
        let Some(user_id) = id_string(data.get("user_id")) else {
            return Err(Error::auth_failed("Facebook: access token has no user"));
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
            return Err(Error::auth_failed("Facebook: invalid profile answer"));
        };
        if id_string(me.get("id")).as_deref() != Some(user_id.as_str()) {
            return Err(Error::auth_failed(
                "Facebook: profile does not match the access token's user",
            ));
        }
        Ok(VerifiedIdentity {
            provider: Self::NAME,
            id: user_id,
            data: profile(me),
        })
    }
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
    ctx: &ProviderContext<'_>,
    endpoint: &str,
    url: &str,
    query: &[(&str, &str)],
) -> Result<Value, Error> {
    let resp = ctx
        .http
        .get(url)
        .query(query)
        .timeout(GRAPH_TIMEOUT)
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(app = ctx.app_id, error = %e.without_url(), "Facebook Graph API unreachable");
            unreachable(LABEL, "access token")
        })?;
    let status = resp.status();
    let body = read_json(resp, MAX_ANSWER_BYTES).await;
    if status.is_server_error() {
        tracing::warn!(app = ctx.app_id, %status, "Facebook Graph API error");
        return Err(unreachable(LABEL, "access token"));
    }
    if !status.is_success() {
        if endpoint == "debug_token" {
            // debug_token answers 200 for bad user tokens; a 4xx means our app token
            // (app_id|app_secret) was refused.
            tracing::warn!(
                app = ctx.app_id,
                %status,
                "Facebook refused the app token: check app_id and app_secret"
            );
            return Err(Error::auth_failed(
                "Facebook: access token could not be verified",
            ));
        }
        tracing::info!(app = ctx.app_id, %status, endpoint, "Facebook Graph API rejected a call");
        return Err(Error::auth_failed("Facebook: access token is not valid"));
    }
    body.ok_or_else(|| {
        tracing::warn!(app = ctx.app_id, "Facebook Graph API answer is not JSON");
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
    fn debug_redacts_and_validation() {
        let fb = FacebookConfig {
            app_secret: "fbsecret".into(),
            ..FacebookConfig::default()
        };
        assert!(!format!("{fb:?}").contains("fbsecret"));
        let fb = FacebookConfig {
            enabled: true,
            app_id: "12".into(),
            ..FacebookConfig::default()
        };
        assert!(
            fb.validate("a")
                .unwrap_err()
                .to_string()
                .contains("app_secret")
        );
    }

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
