//! What operators' probes ask of the domain: readiness, and the names that metrics may
//! use as label values.

use super::state::ServerState;
use crate::providers;

/// Ready to serve: the database answers and its schema is up to date. The reason it
/// is not otherwise (the probe answers it with 503).
pub(crate) async fn ready(state: &ServerState) -> Result<(), String> {
    state.store.check_ready().await.map_err(|e| match e {
        crate::store::StoreError::Unavailable(why) => why,
        other => other.to_string(),
    })
}

/// The wire names of every provider (enabled or not): the only `provider` label values.
pub(crate) fn provider_names() -> impl Iterator<Item = &'static str> {
    providers::all().map(|p| p.name())
}

/// The database pool's use now.
pub(crate) fn pool_status(state: &ServerState) -> crate::store::PoolStatus {
    state.store.pool_status()
}

/// The failed database statements of this process so far.
pub(crate) fn query_errors() -> crate::store::QueryErrors {
    crate::store::query_errors()
}
