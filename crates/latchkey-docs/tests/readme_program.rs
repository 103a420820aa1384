//! The SDK program of README.md, run: a server configured as `latchkey-server dev` is
//! started (in process, [`Config::dev`] on a free port), and this binary runs the program
//! in two child processes one after the other, with the user store in a temporary data
//! directory. The second run meets the 409 of the already registered `ada@example.com`, and
//! logs in as the anonymous user the first run stored.
//!
//! The program is the README's block marked `<!-- test: rust-program -->`, copied by
//! build.rs with its `main` renamed `readme_main` and its base URL read from
//! `LATCHKEY_DOCS_URL`.

use std::process::{Command, ExitCode};

use latchkey_server::{Config, Server};

include!(concat!(env!("OUT_DIR"), "/readme_program.rs"));

/// The child's variable: the URL of the server (its presence makes this process a child).
const URL_VAR: &str = "LATCHKEY_DOCS_URL";

fn readme_base_url() -> String {
    std::env::var(URL_VAR).expect("LATCHKEY_DOCS_URL")
}

/// One run of the program in a child process; its stdout.
fn run_child(url: &str, data_home: &std::path::Path) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(URL_VAR, url)
        .env("XDG_DATA_HOME", data_home)
        .env("HOME", data_home)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "the README's SDK program failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `logged in as ID` and `bearer token of N bytes`, as the program prints them; the id.
fn check_output(stdout: &str) -> String {
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let id = lines[0]
        .strip_prefix("logged in as ")
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(id.len(), 24, "a user id: {stdout}");
    let bytes: usize = lines[1]
        .strip_prefix("bearer token of ")
        .and_then(|r| r.strip_suffix(" bytes"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(bytes > 100, "a JWT: {stdout}");
    id.to_owned()
}

fn main() -> ExitCode {
    if std::env::var_os(URL_VAR).is_some() {
        return match readme_main() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(Server::start(Config::dev())).unwrap();
    let url = format!("http://{}", server.local_addr());
    let data_home = tempfile::tempdir().unwrap();

    let first = check_output(&run_child(&url, data_home.path()));
    let second = check_output(&run_child(&url, data_home.path()));
    assert_eq!(
        first, second,
        "the second run finds the first run's anonymous user in the store and reuses it"
    );
    assert!(
        data_home.path().join("latchkey").exists(),
        "the program's users are stored in the data directory"
    );
    println!("README SDK program: ran twice (anonymous users {first}, {second}): ok");
    runtime.block_on(server.shutdown());
    ExitCode::SUCCESS
}
