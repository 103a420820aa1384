//! The `custom-function` provider: the login payload is judged by code the operator
//! supplies, either a webhook (configuration) or an in-process Rust function
//! ([`CustomFunction`], library use).
//!
//! Webhook contract (see `docs/providers-server.md`): the payload (Extended JSON
//! already converted to plain JSON, without `provider` and `options`) is POSTed as
//! the JSON request body. With `webhook_secret` set, the request carries
//! `X-Latchkey-Timestamp: <unix seconds>` and
//! `X-Latchkey-Signature: sha256=<lowercase hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`.
//! The webhook answers 2xx with `{"id": "<non-empty string>", "name": "<optional>"}`.
//! Anything else is a 401 `AuthError`, never a 500.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use latchkey_protocol::{LoginBody, ProviderType, Secret};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{Provider, ProviderContext, VerifiedIdentity};
use crate::error::{Error, printable};
use crate::settings::{ConfigError, expose_optional_secret, yes};
use crate::webhooks;

/// Default webhook / function timeout in milliseconds.
pub(crate) const DEFAULT_TIMEOUT_MS: u64 = 5000;
/// Largest accepted `timeout_ms`.
const MAX_TIMEOUT_MS: u64 = 300_000;
/// Longest accepted external id, in bytes.
const MAX_ID_LEN: usize = 1024;

/// The identity a custom function vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionIdentity {
    /// External id, non-empty. The same id always logs in the same user.
    pub id: String,
    /// Optional display name, exposed as the profile's `data.name`.
    pub name: Option<String>,
}

impl FunctionIdentity {
    /// An identity with an id and no name.
    pub fn new(id: impl Into<String>) -> Self {
        FunctionIdentity {
            id: id.into(),
            name: None,
        }
    }

    /// Set the display name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// The future a [`CustomFunction`] returns.
pub type CustomFunctionFuture =
    Pin<Box<dyn Future<Output = Result<FunctionIdentity, String>> + Send + 'static>>;

/// An in-process custom function: receives the login payload (plain JSON object) and
/// returns the identity, or an error message that is sent to the client as a 401
/// `AuthError` (so it must not contain secrets). It replaces the webhook when set in
/// [`CustomFunctionConfig::function`]; the configured `timeout_ms` applies.
///
/// ```
/// use latchkey_server::{AppConfig, CustomFunction, FunctionIdentity};
///
/// let mut app = AppConfig::new("myapp", "0123456789abcdef0123456789abcdef");
/// app.providers.custom_function.enabled = true;
/// app.providers.custom_function.function = Some(CustomFunction::new(|payload| async move {
///     match payload.get("user").and_then(|u| u.as_str()) {
///         Some(user) if !user.is_empty() => Ok(FunctionIdentity::new(user).with_name(user)),
///         _ => Err("unknown user".to_owned()),
///     }
/// }));
/// assert!(app.validate().is_ok());
/// ```
#[derive(Clone)]
pub struct CustomFunction(Arc<dyn Fn(Value) -> CustomFunctionFuture + Send + Sync>);

impl CustomFunction {
    /// Wrap an async function.
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<FunctionIdentity, String>> + Send + 'static,
    {
        CustomFunction(Arc::new(move |payload| Box::pin(f(payload))))
    }

    /// Run the function.
    pub fn call(&self, payload: Value) -> CustomFunctionFuture {
        (self.0)(payload)
    }
}

impl fmt::Debug for CustomFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CustomFunction(<fn>)")
    }
}

/// Custom function provider settings (`[apps.providers.custom-function]`): the login
/// payload is verified by a webhook (configuration) or an in-process Rust function
/// ([`CustomFunctionConfig::function`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomFunctionConfig {
    /// Whether custom-function login is allowed. True when the table is present and the
    /// key is not.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// URL the login payload is POSTed to (see `docs/providers-server.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// When set, requests carry `X-Latchkey-Timestamp: <secs>` and
    /// `X-Latchkey-Signature: sha256=<hex HMAC-SHA256>` of `"<secs>.<body>"` with this
    /// secret.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose_optional_secret"
    )]
    pub webhook_secret: Option<Secret>,
    /// Webhook timeout in milliseconds (default 5000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// An in-process function, used instead of the webhook when set (library use only).
    #[serde(skip)]
    pub function: Option<CustomFunction>,
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

impl Default for CustomFunctionConfig {
    fn default() -> Self {
        CustomFunctionConfig {
            enabled: false,
            webhook_url: None,
            webhook_secret: None,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            function: None,
        }
    }
}

impl CustomFunctionConfig {
    /// Check the values of app `app_id`'s table. An enabled provider needs a
    /// `webhook_url` (http or https) or an in-process [`CustomFunction`].
    pub fn validate(&self, app_id: &str) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if let Some(url) = &self.webhook_url {
            let ok = (url.starts_with("http://") || url.starts_with("https://"))
                && reqwest::Url::parse(url).is_ok();
            if !ok {
                return invalid(format!(
                    "app {app_id:?}: custom-function webhook_url must be an absolute http:// or https:// URL"
                ));
            }
        }
        if self.webhook_secret.as_ref().is_some_and(Secret::is_empty) {
            return invalid(format!(
                "app {app_id:?}: custom-function webhook_secret must not be empty (omit it instead)"
            ));
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            return invalid(format!(
                "app {app_id:?}: custom-function timeout_ms must be between 1 and {MAX_TIMEOUT_MS}"
            ));
        }
        if self.enabled && self.webhook_url.is_none() && self.function.is_none() {
            return invalid(format!(
                "app {app_id:?}: the custom-function provider is enabled but has no webhook_url"
            ));
        }
        Ok(())
    }
}

/// A webhook answer as an identity.
fn parse_answer(answer: &Value) -> Result<FunctionIdentity, Error> {
    let Some(obj) = answer.as_object() else {
        return Err(Error::auth_failed(
            "custom function answer must be a JSON object",
        ));
    };
    if obj.get("error").is_some_and(|e| !e.is_null()) {
        return Err(Error::auth_failed("custom function rejected the login"));
    }
    let id = match obj.get("id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => {
            return Err(Error::auth_failed(
                "custom function answer has no non-empty 'id' string",
            ));
        }
    };
    let name = match obj.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(_) => {
            return Err(Error::auth_failed(
                "custom function answer 'name' must be a string",
            ));
        }
    };
    Ok(FunctionIdentity { id, name })
}

/// An in-process function's error message as sent to the client: printable, bounded.
fn function_message(message: &str) -> String {
    let shown = printable(message, 256);
    if shown.is_empty() {
        "custom function rejected the login".to_owned()
    } else {
        shown
    }
}

/// The `custom-function` provider.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CustomFunctionProvider;

#[async_trait]
impl Provider for CustomFunctionProvider {
    const NAME: &'static str = ProviderType::CustomFunction.as_str();
    type Config = CustomFunctionConfig;

    fn enabled(&self, config: &CustomFunctionConfig) -> bool {
        config.enabled
    }

    fn validate(&self, config: &CustomFunctionConfig, app_id: &str) -> Result<(), ConfigError> {
        config.validate(app_id)
    }

    /// Verify a custom-function payload through the in-process function or the webhook.
    async fn authenticate(
        &self,
        ctx: &ProviderContext<'_>,
        config: &CustomFunctionConfig,
        body: &LoginBody,
    ) -> Result<VerifiedIdentity, Error> {
        let timeout = Duration::from_millis(config.timeout_ms);
        let payload = Value::Object(body.clone());
        let identity = if let Some(function) = &config.function {
            match tokio::time::timeout(timeout, function.call(payload)).await {
                Err(_) => return Err(Error::auth_failed("custom function timed out")),
                Ok(Err(message)) => return Err(Error::auth_failed(function_message(&message))),
                Ok(Ok(identity)) => identity,
            }
        } else if let Some(url) = &config.webhook_url {
            let signing = config
                .webhook_secret
                .as_ref()
                .map(|secret| (secret, ctx.clock.now_secs()));
            let answer = webhooks::call_json(ctx.webhook_http, url, signing, &payload, timeout)
                .await
                .map_err(|e| {
                    tracing::info!(app = ctx.app_id, error = %e, "custom function webhook failed");
                    Error::auth_failed(format!("custom function failed: {e}"))
                })?;
            parse_answer(&answer)?
        } else {
            return Err(Error::auth_failed("custom function is not configured"));
        };
        if identity.id.is_empty() || identity.id.len() > MAX_ID_LEN {
            return Err(Error::auth_failed(format!(
                "custom function id must be 1-{MAX_ID_LEN} bytes long"
            )));
        }
        let mut data = Map::new();
        if let Some(name) = identity.name {
            data.insert("name".to_owned(), Value::String(name));
        }
        Ok(VerifiedIdentity {
            provider: Self::NAME,
            id: identity.id,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers() {
        let ok = parse_answer(&json!({"id": "u1", "name": "Ann"})).unwrap();
        assert_eq!(ok, FunctionIdentity::new("u1").with_name("Ann"));
        assert_eq!(
            parse_answer(&json!({"id": "u1"})).unwrap().name,
            None::<String>
        );
        for bad in [
            json!("u1"),
            json!({}),
            json!({"id": ""}),
            json!({"id": 5}),
            json!({"id": "u1", "error": "no"}),
            json!({"id": "u1", "name": 3}),
        ] {
            let e = parse_answer(&bad).unwrap_err();
            // 401 AuthError (see `http::error`).
            assert!(matches!(e, Error::AuthFailed(_)), "{bad}");
        }
    }

    #[test]
    fn config_validation() {
        let mut c = CustomFunctionConfig::default();
        assert!(c.validate("a").is_ok());
        c.enabled = true;
        assert!(c.validate("a").is_err(), "needs a webhook or a function");
        c.webhook_url = Some("ftp://x".into());
        assert!(c.validate("a").is_err());
        c.webhook_url = Some("http://127.0.0.1:9/hook".into());
        assert!(c.validate("a").is_ok());
        c.timeout_ms = 0;
        assert!(c.validate("a").is_err());
        c.timeout_ms = 10;
        c.webhook_secret = Some("s3cret-value".into());
        assert!(c.validate("a").is_ok());
        assert!(!format!("{c:?}").contains("s3cret-value"));
        c.webhook_secret = Some(String::new().into());
        assert!(c.validate("a").is_err());
    }

    #[test]
    fn messages_are_bounded() {
        assert_eq!(function_message(""), "custom function rejected the login");
        assert_eq!(function_message("a\nb"), "ab");
        assert_eq!(function_message(&"x".repeat(1000)).len(), 256);
    }
}
