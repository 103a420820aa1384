//! Housekeeping: a background task on every node that deletes what a long-running
//! server no longer needs: expired sessions, stale throttling buckets, inactive
//! anonymous users and expired OAuth sign-in states (`[housekeeping]`).
//!
//! Each purge is one `DELETE` statement on the store, so any number of nodes may run it
//! at the same moment: a row is deleted once, the others find nothing left. A failed
//! run (the database is down) is logged and retried at the next interval.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::state::ServerState;
use crate::config::HousekeepingConfig;
use crate::store::StoreError;

/// How many rows one run deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Purged {
    pub(crate) sessions: u64,
    pub(crate) throttle_buckets: u64,
    pub(crate) anonymous_users: u64,
    pub(crate) oauth_states: u64,
}

/// One run at the server clock's `now`.
pub(crate) async fn run_once(
    state: &ServerState,
    config: &HousekeepingConfig,
) -> Result<Purged, StoreError> {
    let now = state.clock.now_secs();
    let store = &state.store;
    let grace = i64::try_from(config.expired_session_grace_secs).unwrap_or(i64::MAX);
    let sessions = store.purge_sessions(now.saturating_sub(grace)).await?;
    let throttle_buckets = store.purge_throttle(now).await?;
    let oauth_states = store.purge_oauth_states(now).await?;
    let anonymous_users = match config.anonymous_user_max_idle_secs {
        0 => 0,
        idle => {
            let idle = i64::try_from(idle).unwrap_or(i64::MAX);
            store
                .purge_anonymous_users(now.saturating_sub(idle))
                .await?
        }
    };
    Ok(Purged {
        sessions,
        throttle_buckets,
        anonymous_users,
        oauth_states,
    })
}

/// Start the task (none when `interval_secs` is 0); it stops when `stop` changes or
/// its sender is dropped.
pub(crate) fn spawn(
    state: Arc<ServerState>,
    config: HousekeepingConfig,
    mut stop: watch::Receiver<()>,
) -> Option<JoinHandle<()>> {
    if config.interval_secs == 0 {
        return None;
    }
    let every = Duration::from_secs(config.interval_secs);
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.changed() => return,
            }
            match run_once(&state, &config).await {
                Ok(purged) if purged != Purged::default() => tracing::info!(
                    sessions = purged.sessions,
                    throttle_buckets = purged.throttle_buckets,
                    anonymous_users = purged.anonymous_users,
                    oauth_states = purged.oauth_states,
                    "housekeeping"
                ),
                Ok(_) => tracing::debug!("housekeeping: nothing to purge"),
                Err(e) => tracing::warn!(error = %e, "housekeeping failed; retrying later"),
            }
        }
    }))
}
