//! Key rotation in a configuration file (`latchkey-server keys rotate`).
//!
//! [`rotate`] edits the TOML text of a configuration, keeping its comments and
//! layout, and the result is validated as the server would load it. One rotation:
//!
//! 1. the app's active key becomes inactive with `verify_until` = now + the app's
//!    access-token lifetime + [`ROTATION_MARGIN_SECS`]: every token it signed expires
//!    before it stops verifying, so nobody is logged out (an app without
//!    `signing_keys` gets its `signing_secret` listed this way, as an HS256 key);
//! 2. a staged key (inactive, no `verify_until`, see [`RotateOptions::stage`]) becomes
//!    active; without one, a fresh key of [`RotateOptions::algorithm`] is made active;
//! 3. keys past their `verify_until` are removed.
//!
//! With several nodes, stage first (`keys rotate --stage`, roll the file out: every
//! node publishes the new key), then rotate (roll out again): a verifier never meets a
//! `kid` that some node does not publish yet.

use std::path::PathBuf;

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, value};

use crate::config::{Config, DEFAULT_ACCESS_TOKEN_TTL_SECS, SigningKeyConfig, TokenAlgorithm};
use crate::settings::ConfigError;
use crate::tokens::{generate_key, new_kid, secret_kid};

/// Seconds added to the access-token lifetime in a retired key's `verify_until`
/// (clock differences between nodes and verifiers).
pub const ROTATION_MARGIN_SECS: i64 = 300;

/// What to rotate.
#[derive(Debug, Clone)]
pub struct RotateOptions {
    /// The app (default: the first).
    pub app: Option<String>,
    /// The algorithm of a fresh key.
    pub algorithm: TokenAlgorithm,
    /// Only add a fresh inactive key (published, not signing yet).
    pub stage: bool,
    /// Write a fresh key to `<dir>/<app>-<kid>.pem` (mode 0600) and name it with
    /// `private_key_file`, instead of writing it inline.
    pub key_dir: Option<PathBuf>,
    /// The time of the rotation, Unix seconds.
    pub now: i64,
}

/// What [`rotate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The edited configuration text.
    pub text: String,
    /// One line per change, for the operator.
    pub changes: Vec<String>,
}

fn invalid(m: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(m.into())
}

/// Rotate (or stage) a signing key of one app in configuration `text`.
pub fn rotate(text: &str, options: &RotateOptions) -> Result<Rotation, ConfigError> {
    // The text must be a valid configuration before, and is checked again after.
    Config::from_toml_str(text)?;
    let mut doc: DocumentMut = text
        .parse()
        // Checked by `Config::from_toml_str` above: toml_edit's excerpt of a line (which
        // may hold a key) is not shown.
        .map_err(|e: toml_edit::TomlError| ConfigError::Parse(e.message().to_owned()))?;
    let apps = doc
        .get_mut("apps")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| invalid("no [[apps]] table"))?;
    let app = match &options.app {
        None => apps.iter_mut().next(),
        Some(id) => apps
            .iter_mut()
            .find(|t| t.get("id").and_then(Item::as_str) == Some(id)),
    }
    .ok_or_else(|| invalid(format!("no app {:?}", options.app.as_deref().unwrap_or(""))))?;
    let app_id = app
        .get("id")
        .and_then(Item::as_str)
        .unwrap_or("")
        .to_owned();
    let ttl = app
        .get("access_token_ttl_secs")
        .and_then(Item::as_integer)
        .unwrap_or(DEFAULT_ACCESS_TOKEN_TTL_SECS as i64);
    let secret = app
        .get("signing_secret")
        .and_then(Item::as_str)
        .unwrap_or("")
        .to_owned();
    let now = options.now;
    let until = now.saturating_add(ttl).saturating_add(ROTATION_MARGIN_SECS);
    let mut changes = Vec::new();

    if app.get("signing_keys").is_none() {
        app.insert("signing_keys", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    let keys = app
        .get_mut("signing_keys")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| invalid("signing_keys must be an array of tables"))?;

    // 3. Keys past their verify_until go.
    let past = |t: &Table| {
        t.get("verify_until")
            .and_then(Item::as_integer)
            .is_some_and(|u| u <= now)
    };
    let expired: Vec<String> = keys
        .iter()
        .filter(|t| past(t))
        .filter_map(|t| t.get("kid").and_then(Item::as_str).map(str::to_owned))
        .collect();
    keys.retain(|t| !past(t));
    for kid in &expired {
        changes.push(format!("removed key {kid:?} (past its verify_until)"));
    }

    let fresh = |kid: &str| -> Result<Table, ConfigError> {
        let material = generate_key(options.algorithm).map_err(invalid)?;
        let mut t = Table::new();
        t.insert("kid", value(kid));
        t.insert("algorithm", value(options.algorithm.as_str()));
        match &options.key_dir {
            None => {
                t.insert("private_key", value(material.expose()));
            }
            Some(dir) => {
                let path = dir.join(format!("{app_id}-{kid}.pem"));
                write_private(&path, material.expose())?;
                t.insert("private_key_file", value(path.display().to_string()));
            }
        }
        Ok(t)
    };

    if options.stage {
        if !keys
            .iter()
            .any(|t| t.get("active").and_then(Item::as_bool) == Some(true))
        {
            // The signing_secret keeps signing, now listed as the active key.
            let mut t = Table::new();
            t.insert("kid", value(secret_kid(secret.as_bytes()).as_str()));
            t.insert("algorithm", value("HS256"));
            t.insert("private_key", value(secret.as_str()));
            t.insert("active", value(true));
            keys.push(t);
        }
        let kid = new_kid(now);
        keys.push(fresh(&kid)?);
        changes.push(format!(
            "staged key {kid:?} ({}): published, not signing yet; roll the file out, then \
             run `keys rotate` again",
            options.algorithm
        ));
    } else {
        // 1. The active key (or the signing_secret) retires.
        let mut retired = None;
        for t in keys.iter_mut() {
            if t.get("active").and_then(Item::as_bool) == Some(true) {
                t.remove("active");
                t.insert("verify_until", value(until));
                retired = t.get("kid").and_then(Item::as_str).map(str::to_owned);
            }
        }
        if retired.is_none() {
            let kid = secret_kid(secret.as_bytes());
            let mut t = Table::new();
            t.insert("kid", value(kid.as_str()));
            t.insert("algorithm", value("HS256"));
            t.insert("private_key", value(secret.as_str()));
            t.insert("verify_until", value(until));
            keys.push(t);
            retired = Some(kid);
        }
        let retired = retired.unwrap_or_default();
        changes.push(format!(
            "key {retired:?} stops signing; it verifies until {until} (now + \
             access_token_ttl_secs + {ROTATION_MARGIN_SECS})"
        ));
        // 2. The staged key, else a fresh one, becomes active.
        let staged = keys.iter_mut().fold(None, |last, t| {
            let is_staged = t.get("active").is_none()
                && t.get("verify_until").is_none()
                && t.get("kid").and_then(Item::as_str) != Some(retired.as_str());
            if is_staged { Some(t) } else { last }
        });
        match staged {
            Some(t) => {
                t.insert("active", value(true));
                let kid = t.get("kid").and_then(Item::as_str).unwrap_or("").to_owned();
                changes.push(format!("staged key {kid:?} is now active"));
            }
            None => {
                let kid = new_kid(now);
                let mut t = fresh(&kid)?;
                t.insert("active", value(true));
                keys.push(t);
                changes.push(format!(
                    "new {} key {kid:?} is now active",
                    options.algorithm
                ));
            }
        }
    }
    let text = doc.to_string();
    Config::from_toml_str(&text)?;
    Ok(Rotation { text, changes })
}

/// [`rotate`] the configuration file at `path` in place ([`write_config`]). Used by
/// `keys rotate`; the admin route `POST /admin/v1/apps/{app}/keys/rotate` does the
/// same steps, loading the new keys before it writes.
pub fn rotate_file(
    path: &std::path::Path,
    options: &RotateOptions,
) -> Result<Rotation, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })?;
    let rotation = rotate(&text, options)?;
    write_config(path, &rotation.text)?;
    Ok(rotation)
}

/// Replace the configuration file at `path` with `text`: written beside it (mode 0600,
/// then the old file's permissions) and renamed over it, so that the file is never
/// half written and never more readable than before.
pub fn write_config(path: &std::path::Path, text: &str) -> Result<(), ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("toml.rotating");
    // A leftover of an interrupted rotation is replaced.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    write_private(&tmp, text.trim_end())?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(&tmp, meta.permissions()).map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

/// A `[[apps.signing_keys]]` entry with a fresh inline key (tests, tools).
///
/// ```
/// use latchkey_server::config::TokenAlgorithm;
/// let key = latchkey_server::keys::new_signing_key("k1", TokenAlgorithm::ES256, true).unwrap();
/// assert!(key.active && key.private_key.is_some());
/// ```
pub fn new_signing_key(
    kid: &str,
    algorithm: TokenAlgorithm,
    active: bool,
) -> Result<SigningKeyConfig, ConfigError> {
    Ok(SigningKeyConfig {
        kid: kid.to_owned(),
        algorithm,
        private_key: Some(generate_key(algorithm).map_err(invalid)?),
        private_key_file: None,
        active,
        verify_until: None,
    })
}

/// Write `text` to a new file readable by its owner only.
pub fn write_private(path: &std::path::Path, text: &str) -> Result<(), ConfigError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let io = |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = options.open(path).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.write_all(b"\n").map_err(io)?;
    f.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn base() -> String {
        format!(
            "# top comment\nlisten = \"127.0.0.1:0\"\ndatabase = \"sqlite::memory:\"\n\
             [[apps]]\nid = \"a\"\nsigning_secret = \"{SECRET}\" # keep me\n\
             access_token_ttl_secs = 600\n[apps.providers.anon-user]\n"
        )
    }

    fn opts(stage: bool, now: i64) -> RotateOptions {
        RotateOptions {
            app: None,
            algorithm: TokenAlgorithm::ES256,
            stage,
            key_dir: None,
            now,
        }
    }

    #[test]
    fn first_rotation_retires_the_secret_and_activates_a_new_key() {
        let r = rotate(&base(), &opts(false, 1000)).unwrap();
        assert!(r.text.contains("# top comment") && r.text.contains("# keep me"));
        let c = Config::from_toml_str(&r.text).unwrap();
        let keys = &c.apps[0].signing_keys;
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert_eq!(keys[0].kid, secret_kid(SECRET.as_bytes()));
        assert_eq!(
            keys[0].verify_until,
            Some(1000 + 600 + ROTATION_MARGIN_SECS)
        );
        assert!(!keys[0].active);
        assert!(keys[1].active && keys[1].algorithm == TokenAlgorithm::ES256);
        assert!(c.apps[0].providers.anon_user.enabled);
        // The result loads as the server would.
        crate::tokens::KeyRing::load(&c.apps[0]).unwrap();

        // Second rotation, after the first retired key's time: it is removed.
        let r2 = rotate(&r.text, &opts(false, 5000)).unwrap();
        let c2 = Config::from_toml_str(&r2.text).unwrap();
        let keys2 = &c2.apps[0].signing_keys;
        assert_eq!(keys2.len(), 2, "{keys2:?}");
        assert_eq!(keys2[0].kid, keys[1].kid);
        assert_eq!(
            keys2[0].verify_until,
            Some(5000 + 600 + ROTATION_MARGIN_SECS)
        );
        assert!(keys2[1].active);
        assert!(
            r2.changes.iter().any(|c| c.contains("removed key")),
            "{:?}",
            r2.changes
        );
    }

    #[test]
    fn stage_then_rotate_activates_the_staged_key() {
        let staged = rotate(&base(), &opts(true, 1000)).unwrap();
        let c = Config::from_toml_str(&staged.text).unwrap();
        let keys = &c.apps[0].signing_keys;
        assert_eq!(keys.len(), 2);
        assert!(keys[0].active, "the secret keeps signing");
        assert!(!keys[1].active && keys[1].verify_until.is_none());
        let ring = crate::tokens::KeyRing::load(&c.apps[0]).unwrap();
        assert_eq!(ring.jwks(1000).keys.len(), 1, "the staged key is published");
        assert_eq!(ring.active_algorithm(), TokenAlgorithm::HS256);

        let rotated = rotate(&staged.text, &opts(false, 2000)).unwrap();
        let c = Config::from_toml_str(&rotated.text).unwrap();
        let keys2 = &c.apps[0].signing_keys;
        assert_eq!(keys2.len(), 2);
        assert_eq!(keys2[1].kid, keys[1].kid);
        assert!(keys2[1].active);
        assert_eq!(
            keys2[0].verify_until,
            Some(2000 + 600 + ROTATION_MARGIN_SECS)
        );
    }

    #[test]
    fn key_dir_writes_a_private_file_and_bad_input_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(false, 1000);
        o.key_dir = Some(dir.path().to_owned());
        o.algorithm = TokenAlgorithm::EdDSA;
        let r = rotate(&base(), &o).unwrap();
        let c = Config::from_toml_str(&r.text).unwrap();
        let file = c.apps[0].signing_keys[1].private_key_file.clone().unwrap();
        assert!(file.starts_with(dir.path()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        crate::tokens::KeyRing::load(&c.apps[0]).unwrap();

        let mut o = opts(false, 1000);
        o.app = Some("nope".into());
        assert!(
            rotate(&base(), &o)
                .unwrap_err()
                .to_string()
                .contains("no app")
        );
        assert!(rotate("listen = 1", &opts(false, 1)).is_err());
    }
}
