//! What an app publishes about its access-token keys: the JWKS and a minimal OpenID
//! discovery document, with how long a verifier may cache them.

use jsonwebtoken::jwk::JwkSet;
use latchkey_protocol::routes::paths;
use serde_json::{Value, json};

use super::state::{AppRuntime, ServerState};
use crate::error::Error;

/// Longest `Cache-Control: max-age` of the key documents (10 minutes).
pub(crate) const MAX_KEYS_CACHE_SECS: u64 = 600;

/// An app's JWKS and its cache lifetime.
#[derive(Debug)]
pub(crate) struct Published {
    pub(crate) jwks: JwkSet,
    pub(crate) max_age_secs: u64,
}

/// How long verifiers may cache the key documents: the access-token lifetime (the
/// rotation overlap: a retired key stays published that long after it stops signing),
/// at most [`MAX_KEYS_CACHE_SECS`]. A cache therefore never outlives the overlap, so a
/// key removed after its `verify_until` leaves every cache within one overlap, and a
/// verifier that meets an unknown `kid` refetches at once anyway.
pub(crate) fn max_age_secs(app: &AppRuntime) -> u64 {
    app.config.access_token_ttl_secs.min(MAX_KEYS_CACHE_SECS)
}

/// The public keys of `app_id` that verify access tokens now.
pub(crate) fn published(state: &ServerState, app_id: &str) -> Result<Published, Error> {
    let app = state.app(app_id)?;
    Ok(Published {
        jwks: app.keys().jwks(state.clock.now_secs()),
        max_age_secs: max_age_secs(&app),
    })
}

/// The discovery document of `app_id`, whose URLs start with `base` (the location
/// route's `hostname`).
pub(crate) fn discovery(
    state: &ServerState,
    app_id: &str,
    base: &str,
) -> Result<(Value, u64), Error> {
    let app = state.app(app_id)?;
    let issuer = format!("{base}{}", paths::LOCATION.replace("{app_id}", app_id))
        .trim_end_matches("/location")
        .to_owned();
    let jwks_uri = format!("{base}{}", paths::JWKS.replace("{app_id}", app_id));
    let mut algs: Vec<String> = app
        .keys()
        .jwks(state.clock.now_secs())
        .keys
        .iter()
        .filter_map(|k| k.common.key_algorithm.map(|a| a.to_string()))
        .collect();
    algs.sort();
    algs.dedup();
    let doc = json!({
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": [],
        "claims_supported": ["sub", "exp", "iat", "baas_domain_id", "baas_device_id", "user_data"],
    });
    Ok((doc, max_age_secs(&app)))
}
