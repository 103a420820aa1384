//! What the benchmark examples share (`mod common;`): a configuration file for one
//! app with every provider, and release `latchkey-server serve` processes on it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use latchkey_server::{AppConfig, Config};

/// A server process, killed when dropped.
pub(crate) struct Node {
    child: Child,
    /// Its base URL, from its `listening on` line.
    pub(crate) url: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Write `dir/latchkey.toml`: the dev configuration on `database` with one app `app`
/// (every provider on, email/password accounts confirmed at registration).
pub(crate) fn write_config(
    dir: &Path,
    app: &str,
    secret: &str,
    database: &str,
) -> anyhow::Result<PathBuf> {
    let mut config = Config::dev();
    config.database = database.into();
    config.apps = vec![AppConfig::new(app, secret).with_all_providers()];
    config.apps[0].providers.local_userpass.auto_confirm = true;
    let path = dir.join("latchkey.toml");
    std::fs::write(&path, toml::to_string(&config)?)?;
    Ok(path)
}

/// Start `bin serve --config config` with `RUST_LOG=rust_log` and wait for its
/// `listening on` line.
pub(crate) fn start_node(bin: &Path, config: &Path, rust_log: &str) -> anyhow::Result<Node> {
    let mut child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", rust_log)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    let url = line
        .trim_end()
        .strip_prefix("listening on ")
        .ok_or_else(|| anyhow::anyhow!("unexpected first line {line:?}"))?
        .to_owned();
    Ok(Node { child, url })
}
