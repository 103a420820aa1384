//! `anon-user`: no credential; every login is a new user with one anonymous identity.

use async_trait::async_trait;
use latchkey_protocol::{LoginBody, ProviderType};
use serde::{Deserialize, Serialize};
use serde_json::Map;

use super::common::{Provider, ProviderContext, VerifiedIdentity};
use crate::error::Error;
use crate::ids::new_random_id;
use crate::settings::{ConfigError, yes};

/// Anonymous provider settings (`[apps.providers.anon-user]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnonUserConfig {
    /// Whether anonymous login is allowed. True when the table is present and the key is not.
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// The `anon-user` provider.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Anonymous;

#[async_trait]
impl Provider for Anonymous {
    const NAME: &'static str = ProviderType::Anonymous.as_str();
    type Config = AnonUserConfig;

    fn enabled(&self, config: &AnonUserConfig) -> bool {
        config.enabled
    }

    fn validate(&self, _config: &AnonUserConfig, _app_id: &str) -> Result<(), ConfigError> {
        Ok(())
    }

    /// Any body is accepted (realm-core sends `{}` after removing `provider` and `options`).
    async fn authenticate(
        &self,
        _ctx: &ProviderContext<'_>,
        _config: &AnonUserConfig,
        _body: &LoginBody,
    ) -> Result<VerifiedIdentity, Error> {
        Ok(VerifiedIdentity {
            provider: Self::NAME,
            id: new_random_id(),
            data: Map::new(),
        })
    }

    /// Anonymous logins prove nothing to guess: not throttled.
    fn throttled(&self) -> bool {
        false
    }

    fn link_refusal(&self) -> Option<&'static str> {
        Some("cannot link anonymous credentials to an existing user")
    }

    fn enable_for_dev(&self, config: &mut AnonUserConfig) {
        config.enabled = true;
    }
}
