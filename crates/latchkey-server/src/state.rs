//! Shared state of a running server.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderMap;
use latchkey_protocol::ProviderType;

use crate::clock::Clock;
use crate::config::{AppConfig, Config};
use crate::error::ApiError;
use crate::ids::derived_object_id;
use crate::password::PasswordHasher;
use crate::store::Store;
use crate::tokens::{TokenError, TokenKeys};

/// One hosted app, ready to serve.
#[derive(Debug)]
pub(crate) struct AppRuntime {
    pub(crate) config: AppConfig,
    pub(crate) keys: TokenKeys,
}

impl AppRuntime {
    pub(crate) fn new(config: AppConfig) -> Result<Self, TokenError> {
        let keys = TokenKeys::new(config.signing_secret.as_bytes())?;
        Ok(AppRuntime { config, keys })
    }

    pub(crate) fn id(&self) -> &str {
        &self.config.id
    }

    /// Whether a provider is implemented and enabled for this app.
    pub(crate) fn provider_enabled(&self, provider: ProviderType) -> bool {
        let p = &self.config.providers;
        match provider {
            ProviderType::Anonymous => p.anon_user.enabled,
            ProviderType::EmailPassword => p.local_userpass.enabled,
            ProviderType::ApiKey => p.api_key.enabled,
            ProviderType::CustomFunction => p.custom_function.enabled,
            ProviderType::CustomJwt => p.custom_token.enabled,
            ProviderType::Google => p.google.enabled,
            ProviderType::Apple => p.apple.enabled,
            ProviderType::Facebook => p.facebook.enabled,
            _ => false,
        }
    }

    /// A stable id for this app's configuration of `provider` (a profile's `provider_id`).
    pub(crate) fn provider_config_id(&self, provider_type: &str) -> String {
        derived_object_id(&[&self.config.id, provider_type])
    }
}

/// Everything a request handler needs.
#[derive(Debug)]
pub(crate) struct ServerState {
    pub(crate) apps: HashMap<String, Arc<AppRuntime>>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) hasher: PasswordHasher,
    pub(crate) clock: Clock,
    pub(crate) public_url: Option<String>,
    pub(crate) local_addr: SocketAddr,
    /// Client for calls to identity providers (JWKS, token endpoints, Facebook
    /// Graph). Every call must also set its own per-request timeout.
    pub(crate) http: reqwest::Client,
    /// Client for webhooks: no redirects (see [`crate::webhooks`]).
    pub(crate) webhook_http: reqwest::Client,
    /// Bearer token of the admin API (`None`: the admin API is disabled).
    pub(crate) admin_token: Option<crate::password::Secret>,
    /// Failed-login limiter.
    pub(crate) throttle: crate::throttle::Throttle,
    /// Outbox and SMTP.
    pub(crate) mailer: crate::mail::Mailer,
    /// Cached JSON Web Key Sets of identity providers, by URL.
    pub(crate) jwks: crate::providers::jwks::JwksCache,
}

pub(crate) type SharedState = Arc<ServerState>;

impl ServerState {
    pub(crate) fn new(
        config: &Config,
        apps: HashMap<String, Arc<AppRuntime>>,
        store: Arc<dyn Store>,
        clock: Clock,
        local_addr: SocketAddr,
    ) -> Self {
        ServerState {
            apps,
            store,
            hasher: PasswordHasher::for_this_machine(),
            clock,
            public_url: config.public_url_trimmed().map(str::to_owned),
            local_addr,
            http: crate::outbound::client(),
            webhook_http: crate::outbound::webhook_client(),
            admin_token: config.admin_token.clone().map(crate::password::Secret::new),
            throttle: crate::throttle::Throttle::new(config),
            mailer: crate::mail::Mailer::new(config),
            jwks: crate::providers::jwks::JwksCache::default(),
        }
    }

    /// The app with this client app id, or a 404 JSON error.
    pub(crate) fn app(&self, app_id: &str) -> Result<Arc<AppRuntime>, ApiError> {
        self.apps
            .get(app_id)
            .cloned()
            .ok_or_else(|| ApiError::app_not_found(app_id))
    }

    /// The `hostname` of the location response: `public_url`, else the address the
    /// server listens on. When that is a wildcard address (0.0.0.0 or ::), the
    /// request's `Host` header names the interface the client actually reached.
    pub(crate) fn hostname(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        if self.local_addr.ip().is_unspecified() {
            let host = headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| valid_host(h));
            if let Some(host) = host {
                return format!("http://{host}");
            }
        }
        format!("http://{}", self.local_addr)
    }
}

/// A `Host` header value that is safe to echo into a URL: host[:port] characters only.
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

/// The websocket base for an HTTP base URL.
pub(crate) fn ws_url(http_url: &str) -> String {
    if let Some(rest) = http_url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = http_url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        http_url.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
