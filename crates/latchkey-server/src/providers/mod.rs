//! Authentication providers, and their registry.
//!
//! Each module is one provider: its configuration table (`[apps.providers.<name>]`,
//! next to its code) and a [`Provider`] implementation that verifies one kind of
//! credential body and says which identity it proves. Users, sessions and tokens are
//! handled by the domain layer (`auth`), the same way for every provider.
//!
//! Everything that asks about providers in general (is it enabled, is its table
//! valid, verify this credential, which are there) goes through [`find`] and
//! [`all`]: a new provider is one new module plus, here, its `mod` and the `pub use`
//! of its table, its [`ProvidersConfig`] field and its [`REGISTRY`] entry (see
//! `docs/contributing.md`, "Adding a server provider").

use std::borrow::Cow;

use async_trait::async_trait;
use latchkey_protocol::LoginBody;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::settings::ConfigError;

mod common;
pub(crate) mod exchange;
pub(crate) mod jwks;
mod oidc;
pub(crate) mod redirect;

pub(crate) mod anonymous;
pub(crate) mod api_key;
pub(crate) mod apple;
pub(crate) mod custom_function;
pub(crate) mod custom_token;
pub(crate) mod facebook;
pub(crate) mod google;
pub(crate) mod local_userpass;

pub use anonymous::AnonUserConfig;
pub use api_key::ApiKeyConfig;
pub use apple::{
    APPLE_AUTHORIZATION_URL, APPLE_ISSUER, APPLE_JWKS_URL, APPLE_TOKEN_URL, AppleConfig,
};
pub use custom_function::{
    CustomFunction, CustomFunctionConfig, CustomFunctionFuture, FunctionIdentity,
};
pub use custom_token::{
    CustomTokenConfig, MAX_CUSTOM_TOKEN_KEYS, MAX_FIELD_NAME_LEN, MAX_HS256_KEY_LEN,
    MIN_HS256_KEY_LEN, MetadataField, SigningAlgorithm,
};
pub use facebook::{FACEBOOK_AUTHORIZATION_URL, FACEBOOK_GRAPH_URL, FacebookConfig};
pub use google::{GOOGLE_AUTHORIZATION_URL, GOOGLE_JWKS_URL, GOOGLE_TOKEN_URL, GoogleConfig};
pub use local_userpass::LocalUserpassConfig;
pub use oidc::{AudienceMatch, DEFAULT_LEEWAY_SECS, MAX_LEEWAY_SECS};

pub(crate) use common::{Provider, ProviderContext, VerifiedIdentity, required_str};
pub(crate) use redirect::RedirectFlow;

/// The `[apps.providers.*]` tables: one per provider, a provider whose table is absent
/// is disabled.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvidersConfig {
    /// `[apps.providers.anon-user]`.
    #[serde(default, rename = "anon-user")]
    pub anon_user: AnonUserConfig,
    /// `[apps.providers.local-userpass]`.
    #[serde(default, rename = "local-userpass")]
    pub local_userpass: LocalUserpassConfig,
    /// `[apps.providers.api-key]`.
    #[serde(default, rename = "api-key")]
    pub api_key: ApiKeyConfig,
    /// `[apps.providers.custom-function]`.
    #[serde(default, rename = "custom-function")]
    pub custom_function: CustomFunctionConfig,
    /// `[apps.providers.custom-token]`.
    #[serde(default, rename = "custom-token")]
    pub custom_token: CustomTokenConfig,
    /// `[apps.providers.oauth2-google]`.
    #[serde(default, rename = "oauth2-google")]
    pub google: GoogleConfig,
    /// `[apps.providers.oauth2-apple]`.
    #[serde(default, rename = "oauth2-apple")]
    pub apple: AppleConfig,
    /// `[apps.providers.oauth2-facebook]`.
    #[serde(default, rename = "oauth2-facebook")]
    pub facebook: FacebookConfig,
}

impl ProvidersConfig {
    /// Check every provider's table (`app_id` names the app in messages).
    pub(crate) fn validate(&self, app_id: &str) -> Result<(), ConfigError> {
        all().try_for_each(|p| p.validate(self, app_id))
    }

    /// Turn on every provider that needs no outside service (the development setup).
    pub(crate) fn enable_for_dev(&mut self) {
        for p in all() {
            p.enable_for_dev(self);
        }
    }
}

/// A registered provider, as the domain layer sees it.
pub(crate) type ProviderRef = &'static dyn Registered;

/// A [`Provider`] with its table located in [`ProvidersConfig`]: what the domain layer
/// calls, whatever the provider.
#[async_trait]
pub(crate) trait Registered: Send + Sync {
    /// [`Provider::NAME`].
    fn name(&self) -> &'static str;
    /// [`Provider::enabled`] on this provider's table.
    fn enabled(&self, config: &ProvidersConfig) -> bool;
    /// [`Provider::validate`] on this provider's table.
    fn validate(&self, config: &ProvidersConfig, app_id: &str) -> Result<(), ConfigError>;
    /// [`Provider::authenticate`] with this provider's table.
    async fn authenticate(
        &self,
        ctx: &ProviderContext<'_>,
        config: &ProvidersConfig,
        body: &LoginBody,
    ) -> Result<VerifiedIdentity, Error>;
    /// [`Provider::throttled`].
    fn throttled(&self) -> bool;
    /// [`Provider::login_identifier`].
    fn login_identifier<'b>(&self, body: &'b LoginBody) -> Result<Option<Cow<'b, str>>, Error>;
    /// [`Provider::link_refusal`].
    fn link_refusal(&self) -> Option<&'static str>;
    /// [`Provider::enable_for_dev`] on this provider's table.
    fn enable_for_dev(&self, config: &mut ProvidersConfig);
    /// [`Provider::redirect_flow`] on this provider's table.
    fn redirect_flow<'c>(&self, config: &'c ProvidersConfig) -> Option<RedirectFlow<'c>>;
}

/// A provider and the accessors of its [`ProvidersConfig`] field.
struct Entry<P: Provider> {
    provider: P,
    table: fn(&ProvidersConfig) -> &P::Config,
    table_mut: fn(&mut ProvidersConfig) -> &mut P::Config,
}

#[async_trait]
impl<P: Provider> Registered for Entry<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn enabled(&self, config: &ProvidersConfig) -> bool {
        self.provider.enabled((self.table)(config))
    }

    fn validate(&self, config: &ProvidersConfig, app_id: &str) -> Result<(), ConfigError> {
        self.provider.validate((self.table)(config), app_id)
    }

    async fn authenticate(
        &self,
        ctx: &ProviderContext<'_>,
        config: &ProvidersConfig,
        body: &LoginBody,
    ) -> Result<VerifiedIdentity, Error> {
        self.provider
            .authenticate(ctx, (self.table)(config), body)
            .await
    }

    fn throttled(&self) -> bool {
        self.provider.throttled()
    }

    fn login_identifier<'b>(&self, body: &'b LoginBody) -> Result<Option<Cow<'b, str>>, Error> {
        self.provider.login_identifier(body)
    }

    fn link_refusal(&self) -> Option<&'static str> {
        self.provider.link_refusal()
    }

    fn enable_for_dev(&self, config: &mut ProvidersConfig) {
        self.provider.enable_for_dev((self.table_mut)(config));
    }

    fn redirect_flow<'c>(&self, config: &'c ProvidersConfig) -> Option<RedirectFlow<'c>> {
        self.provider.redirect_flow((self.table)(config))
    }
}

/// Every server provider, in a stable order (configuration is validated in this order).
static REGISTRY: &[ProviderRef] = &[
    &Entry {
        provider: anonymous::Anonymous,
        table: |c| &c.anon_user,
        table_mut: |c| &mut c.anon_user,
    },
    &Entry {
        provider: local_userpass::LocalUserpass,
        table: |c| &c.local_userpass,
        table_mut: |c| &mut c.local_userpass,
    },
    &Entry {
        provider: api_key::ApiKey,
        table: |c| &c.api_key,
        table_mut: |c| &mut c.api_key,
    },
    &Entry {
        provider: custom_function::CustomFunctionProvider,
        table: |c| &c.custom_function,
        table_mut: |c| &mut c.custom_function,
    },
    &Entry {
        provider: custom_token::CustomToken,
        table: |c| &c.custom_token,
        table_mut: |c| &mut c.custom_token,
    },
    &Entry {
        provider: google::Google,
        table: |c| &c.google,
        table_mut: |c| &mut c.google,
    },
    &Entry {
        provider: apple::Apple,
        table: |c| &c.apple,
        table_mut: |c| &mut c.apple,
    },
    &Entry {
        provider: facebook::Facebook,
        table: |c| &c.facebook,
        table_mut: |c| &mut c.facebook,
    },
];

/// Every server provider.
pub(crate) fn all() -> impl Iterator<Item = ProviderRef> {
    REGISTRY.iter().copied()
}

/// The provider named `name` (exact wire name), enabled or not.
pub(crate) fn find(name: &str) -> Option<ProviderRef> {
    all().find(|p| p.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_the_config_sections() {
        let names: Vec<&str> = all().map(|p| p.name()).collect();
        let tables = serde_json::to_value(ProvidersConfig::default()).unwrap();
        let mut sections: Vec<&str> = tables
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        sections.sort_unstable();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, sections);
        for name in names {
            assert!(find(name).is_some_and(|p| p.name() == name));
        }
        assert!(find("Anon-User").is_none());
    }

    #[test]
    fn dev_setup_turns_on_the_self_contained_providers() {
        let mut c = ProvidersConfig::default();
        c.enable_for_dev();
        let on: Vec<&str> = all().filter(|p| p.enabled(&c)).map(|p| p.name()).collect();
        assert_eq!(
            on,
            ["anon-user", "local-userpass", "api-key", "custom-token"]
        );
        assert!(c.local_userpass.auto_confirm);
        assert!(c.validate("a").is_ok());
    }
}
