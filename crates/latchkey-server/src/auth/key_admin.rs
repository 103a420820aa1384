//! Signing keys of a running server: list them, reload them from the configuration
//! file the server was started from, and rotate them there (docs/tokens.md).
//!
//! A reload re-reads **only** the `signing_secret` and `[[apps.signing_keys]]` of every
//! hosted app and checks them exactly as at start ([`KeyRing::load`]); any error leaves
//! every app's keys as they were. The new rings are then swapped in one by one (each
//! swap is atomic; a request reads its app's ring once). Every other setting still
//! needs a restart.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

use super::state::{AppRuntime, ServerState};
use crate::config::{Config, TokenAlgorithm};
use crate::error::Error;
use crate::keys::{RotateOptions, rotate as rotate_text, write_config};
use crate::settings::ConfigError;
use crate::tokens::KeyRing;

/// What a reload or rotation answer says about settings other than keys.
const KEYS_ONLY: &str = "only signing keys (signing_secret, signing_keys) were reloaded; \
                         other settings need a restart";

/// The keys of `app_id`: `signing_keys` as [`KeyRing::describe`] lists them, the active
/// kid and the `signing_secret`'s kid.
pub(crate) fn list(state: &ServerState, app_id: &str) -> Result<Value, Error> {
    let app = state.app(app_id)?;
    Ok(describe(state, &app))
}

fn describe(state: &ServerState, app: &AppRuntime) -> Value {
    let ring = app.keys();
    json!({
        "app": app.id(),
        "active_kid": ring.active_kid(),
        "active_algorithm": ring.active_algorithm(),
        "signing_secret_kid": ring.secret_kid(),
        "keys": ring.describe(state.clock.now_secs()),
    })
}

fn reload_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::bad_request(format!(
        "cannot reload signing keys from {}: {reason}; nothing was changed",
        path.display()
    ))
}

/// The configuration file, or why there is none.
fn config_file(state: &ServerState) -> Result<&Path, Error> {
    state.config_file.as_deref().ok_or_else(|| {
        Error::bad_request(
            "the server was not started from a configuration file (serve --config FILE): \
             its signing keys cannot be reloaded",
        )
    })
}

/// Load every hosted app's ring from `config` (read from `path`), checked as at start.
fn rings(
    apps: &[Arc<AppRuntime>],
    config: &Config,
    path: &Path,
) -> Result<Vec<(Arc<AppRuntime>, KeyRing)>, Error> {
    apps.iter()
        .map(|app| {
            let entry = config.app(app.id()).ok_or_else(|| {
                reload_error(
                    path,
                    format_args!(
                        "app {:?} is not in the file (adding or removing apps needs a restart)",
                        app.id()
                    ),
                )
            })?;
            let ring = KeyRing::load(entry).map_err(|e| reload_error(path, e))?;
            Ok((app.clone(), ring))
        })
        .collect()
}

/// Make the loaded rings current and answer what each app now signs with.
fn swap(state: &ServerState, loaded: Vec<(Arc<AppRuntime>, KeyRing)>) -> Vec<Value> {
    let mut answer = Vec::new();
    for (app, ring) in loaded {
        tracing::info!(
            app = app.id(),
            active_kid = ring.active_kid(),
            keys = ring.describe(0).len(),
            "signing keys reloaded"
        );
        app.set_keys(ring);
        answer.push(describe(state, &app));
    }
    answer
}

fn hosted(state: &ServerState) -> Vec<Arc<AppRuntime>> {
    let mut apps: Vec<Arc<AppRuntime>> = state.apps.values().cloned().collect();
    apps.sort_by(|a, b| a.id().cmp(b.id()));
    apps
}

/// Re-read the signing keys of every app from the configuration file (the admin route
/// `POST /admin/v1/keys/reload` and SIGHUP).
pub(crate) async fn reload(state: &ServerState) -> Result<Value, Error> {
    let path = config_file(state)?.to_owned();
    let _one_at_a_time = state.key_admin.lock().await;
    let apps = hosted(state);
    let loaded = tokio::task::spawn_blocking(move || {
        let config = Config::load(&path).map_err(|e| reload_error(&path, e))?;
        rings(&apps, &config, &path)
    })
    .await
    .map_err(|e| Error::internal(&e))?
    .inspect_err(|e| tracing::warn!(error = %e, "signing key reload refused"))?;
    Ok(json!({ "apps": swap(state, loaded), "note": KEYS_ONLY }))
}

/// Rotate (or, with `stage`, stage) a signing key of `app_id` in the configuration file
/// as `latchkey-server keys rotate` does ([`crate::keys::rotate`]), then reload. The
/// new keys are loaded and checked before the file is written: a failure changes
/// neither the file nor the running keys. A fresh key is written inline, or, when the
/// app's active key comes from a `private_key_file`, to a new file (mode 0600) in
/// that file's directory.
pub(crate) async fn rotate(
    state: &ServerState,
    app_id: &str,
    algorithm: TokenAlgorithm,
    stage: bool,
) -> Result<Value, Error> {
    let app = state.app(app_id)?;
    let path = config_file(state)?.to_owned();
    let _one_at_a_time = state.key_admin.lock().await;
    let apps = hosted(state);
    let now = state.clock.now_secs();
    let app_id = app.id().to_owned();
    let (loaded, changes) = tokio::task::spawn_blocking(move || {
        let fail = |e: &ConfigError| reload_error(&path, e);
        let text = std::fs::read_to_string(&path).map_err(|e| reload_error(&path, e))?;
        let current = Config::from_toml_str(&text).map_err(|e| fail(&e))?;
        let key_dir = current.app(&app_id).and_then(|a| {
            a.signing_keys
                .iter()
                .find(|k| k.active)
                .and_then(|k| k.private_key_file.as_deref())
                .and_then(Path::parent)
                .map(Path::to_owned)
        });
        let options = RotateOptions {
            app: Some(app_id),
            algorithm,
            stage,
            key_dir,
            now,
        };
        let rotation = rotate_text(&text, &options).map_err(|e| fail(&e))?;
        let config = Config::from_toml_str(&rotation.text).map_err(|e| fail(&e))?;
        let loaded = rings(&apps, &config, &path)?;
        write_config(&path, &rotation.text).map_err(|e| fail(&e))?;
        Ok::<_, Error>((loaded, rotation.changes))
    })
    .await
    .map_err(|e| Error::internal(&e))??;
    for change in &changes {
        tracing::info!(app = app.id(), "{change}");
    }
    swap(state, loaded);
    let mut answer = describe(state, &app);
    let retired: Vec<Value> = app
        .keys()
        .describe(now)
        .into_iter()
        .filter(|k| k.verify_until.is_some())
        .map(|k| json!({ "kid": k.kid, "verify_until": k.verify_until }))
        .collect();
    answer["retired"] = Value::from(retired);
    answer["staged"] = Value::from(stage);
    answer["changes"] = Value::from(changes);
    answer["note"] = Value::from(KEYS_ONLY);
    Ok(answer)
}
