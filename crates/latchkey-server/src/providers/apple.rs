//! `oauth2-apple`: a Sign in with Apple ID token (RS256, Apple's JWKS), checked for
//! `iss` (Apple), `aud` (one of the configured client ids), `exp`, `nbf` and `iat`.
//! The identity id is `sub`; `email` (and a name, when present) go to the profile.

use latchkey_protocol::{LoginBody, ProviderType};

use super::oidc::{self, Rules};
use super::{ProviderContext, VerifiedIdentity, required_str};
use crate::error::ApiError;

const LABEL: &str = "Apple";

/// Check a login body `{id_token}`.
pub(crate) async fn authenticate(
    ctx: ProviderContext<'_>,
    body: &LoginBody,
) -> Result<VerifiedIdentity, ApiError> {
    let token = required_str(body, "id_token")?;
    let config = &ctx.app.config.providers.apple;
    let audiences = config.audiences();
    let issuers = [config.issuer.clone()];
    let rules = Rules::id_token(LABEL, &audiences, &issuers, config.leeway_secs);
    oidc::verify_id_token(
        ctx.state,
        ProviderType::Apple,
        token,
        &config.jwks_url,
        &rules,
    )
    .await
}
