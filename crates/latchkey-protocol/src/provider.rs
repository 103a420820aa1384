//! Provider names used in login routes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One of the eight authentication providers of the App Services client API.
///
/// The wire name (`anon-user`, `local-userpass`, ...) is what appears in the
/// login route and in a profile identity's `provider_type`.
///
/// ```
/// use latchkey_protocol::ProviderType;
/// let p: ProviderType = "oauth2-google".parse().unwrap();
/// assert_eq!(p, ProviderType::Google);
/// assert_eq!(p.to_string(), "oauth2-google");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ProviderType {
    /// `anon-user`
    #[serde(rename = "anon-user")]
    Anonymous,
    /// `local-userpass`
    #[serde(rename = "local-userpass")]
    EmailPassword,
    /// `api-key` (user and server API keys share this name)
    #[serde(rename = "api-key")]
    ApiKey,
    /// `custom-token`
    #[serde(rename = "custom-token")]
    CustomJwt,
    /// `custom-function`
    #[serde(rename = "custom-function")]
    CustomFunction,
    /// `oauth2-facebook`
    #[serde(rename = "oauth2-facebook")]
    Facebook,
    /// `oauth2-google`
    #[serde(rename = "oauth2-google")]
    Google,
    /// `oauth2-apple`
    #[serde(rename = "oauth2-apple")]
    Apple,
}

impl ProviderType {
    /// Every provider, in a stable order.
    pub const ALL: [ProviderType; 8] = [
        ProviderType::Anonymous,
        ProviderType::EmailPassword,
        ProviderType::ApiKey,
        ProviderType::CustomJwt,
        ProviderType::CustomFunction,
        ProviderType::Facebook,
        ProviderType::Google,
        ProviderType::Apple,
    ];

    /// The wire name, e.g. `"anon-user"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProviderType::Anonymous => "anon-user",
            ProviderType::EmailPassword => "local-userpass",
            ProviderType::ApiKey => "api-key",
            ProviderType::CustomJwt => "custom-token",
            ProviderType::CustomFunction => "custom-function",
            ProviderType::Facebook => "oauth2-facebook",
            ProviderType::Google => "oauth2-google",
            ProviderType::Apple => "oauth2-apple",
        }
    }
}

impl fmt::Display for ProviderType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The string was not one of the eight provider names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown authentication provider {0:?}")]
pub struct UnknownProvider(pub String);

impl FromStr for ProviderType {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderType::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownProvider(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in ProviderType::ALL {
            assert_eq!(p.as_str().parse::<ProviderType>().unwrap(), p);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.as_str()));
        }
        assert!("local-userpass2".parse::<ProviderType>().is_err());
    }
}
