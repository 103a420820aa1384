//! PostgreSQL for the tests, through `.ci/postgres.sh` (which installs Debian's package
//! when it can, and runs a throwaway cluster on a loopback port).
//!
//! `cargo xtask test` uses the server that `LATCHKEY_TEST_POSTGRES_URL` names; when it is
//! unset, it starts one for the run and stops it afterwards. When none can be started,
//! the PostgreSQL tests skip with a message (and fail in CI, where `.ci/run` starts one).

use std::env;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The variable the tests read: an admin URL of the server.
pub(crate) const URL_VAR: &str = "LATCHKEY_TEST_POSTGRES_URL";

/// The URL of the server this process started, for every cargo command it runs.
static STARTED: OnceLock<String> = OnceLock::new();

/// A server this process started: stopped when dropped.
#[derive(Debug)]
pub(crate) struct Started;

impl Drop for Started {
    fn drop(&mut self) {
        println!("==> PostgreSQL: stopping the server started for the tests");
        if let Err(e) = script().arg("stop").status() {
            eprintln!("xtask: .ci/postgres.sh stop: {e}");
        }
    }
}

/// Make PostgreSQL available to the tests: nothing to do when [`URL_VAR`] is set, else
/// start a server (kept until the returned value is dropped).
pub(crate) fn for_tests() -> Option<Started> {
    if env::var_os(URL_VAR).is_some_and(|v| !v.is_empty()) {
        println!("==> PostgreSQL: the tests use the server of {URL_VAR}");
        return None;
    }
    println!("==> PostgreSQL: {URL_VAR} is unset; starting a server (.ci/postgres.sh start)");
    let out = script().arg("start").stderr(Stdio::inherit()).output();
    let url = out.ok().filter(|o| o.status.success()).and_then(|o| {
        String::from_utf8_lossy(&o.stdout).lines().find_map(|l| {
            l.strip_prefix(&format!("export {URL_VAR}="))
                .map(str::to_owned)
        })
    });
    match url {
        Some(url) => {
            let _ = STARTED.set(url);
            Some(Started)
        }
        None => {
            eprintln!(
                "xtask: PostgreSQL could not be started (see above): the PostgreSQL tests \
                 will be SKIPPED here (in CI they fail). Install it (apt-get install \
                 postgresql) or set {URL_VAR}."
            );
            None
        }
    }
}

/// The URL of the server [`for_tests`] started, if it did.
pub(crate) fn started_url() -> Option<&'static str> {
    STARTED.get().map(String::as_str)
}

/// `cargo xtask postgres start|stop|env|status`: the script, as is.
pub(crate) fn command(args: &[String]) -> Result<(), String> {
    let status = script()
        .args(args)
        .status()
        .map_err(|e| format!(".ci/postgres.sh: could not start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            ".ci/postgres.sh {} failed ({status})",
            args.join(" ")
        ))
    }
}

fn script() -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(crate::root().join(".ci").join("postgres.sh"))
        .current_dir(crate::root());
    cmd
}

/// The variable that runs the server's test servers on PostgreSQL (latchkey-testkit).
const DATABASE_VAR: &str = "LATCHKEY_TEST_DATABASE";

/// The server's integration suite (`crates/latchkey-server/tests/api`) a second time,
/// every test server on a fresh PostgreSQL database. Without a server: fails in CI,
/// else skipped with a loud note.
pub(crate) fn server_suite() -> Result<(), String> {
    let available = started_url().is_some() || env::var_os(URL_VAR).is_some_and(|v| !v.is_empty());
    if !available {
        let ci = env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        let note = format!(
            "the server suite on PostgreSQL is SKIPPED: no PostgreSQL ({URL_VAR} unset and \
             none could be started). Run `eval \"$(.ci/postgres.sh start)\"` first."
        );
        if ci {
            return Err(note);
        }
        eprintln!("\n!!!! xtask: {note}\n");
        return Ok(());
    }
    let mut cmd = crate::cargo();
    cmd.args(["test", "-p", "latchkey-server", "--test", "api"])
        .env(DATABASE_VAR, "postgres");
    crate::run(
        "cargo test -p latchkey-server --test api (on PostgreSQL)",
        cmd,
    )
}
