//! `cargo xtask <command>`: the project's scripted workflows.
//!
//! - `demo`  — start the embedded server and log users in through the SDK;
//! - `test`  — every test: unit, integration, end-to-end, conformance, doc tests,
//!   and the realm-web compatibility suite with the wire cross-check;
//! - `lint`  — rustfmt check, clippy `-D warnings`, rustdoc `-D warnings`, feature builds;
//! - `compat` — the official realm-web client against latchkey-server (Node);
//! - `console` — the web console's browser tests (headless Chromium, tests/compat/console.js);
//! - `bench` — latencies as ratios against same-run baselines (release build), then the
//!   SDK's store, CPU and memory next to realm-web (`bench_sdk`, docs/benchmarks.md);
//!   `bench sdk` runs the SDK part alone;
//! - `ci`    — `lint` then `test` (what `.ci/run` runs);
//! - `layering` — crate dependencies point one way, then `modules`;
//! - `modules` — no module cycles inside any crate, and the module rules of
//!   `xtask/src/modules/rules.rs` hold (prints every crate's module graph);
//! - `postgres start|stop|env|status` — the PostgreSQL server for the tests;
//! - `fuzz [--time SECS] [--replay] [TARGET...]` — the fuzz targets of `fuzz/` for a
//!   bounded time each (cargo-fuzz), or their committed inputs as plain tests (`--replay`).

mod bench_sdk;
mod fuzz;
mod modules;
mod postgres;
mod workspace;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    if let Some(url) = postgres::started_url() {
        cmd.env(postgres::URL_VAR, url);
    }
    cmd
}

/// Run one step; print what runs and how long it took.
fn run(title: &str, mut cmd: Command) -> Result<(), String> {
    println!("==> {title}");
    let started = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("{title}: could not start: {e}"))?;
    println!("    ({title}: {:.1}s)", started.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("{title} failed ({status})"))
    }
}

fn cargo_step(title: &str, args: &[&str]) -> Result<(), String> {
    let mut cmd = cargo();
    cmd.args(args);
    run(title, cmd)
}

fn demo() -> Result<(), String> {
    cargo_step(
        "demo",
        &[
            "run",
            "--quiet",
            "-p",
            "latchkey-testkit",
            "--example",
            "demo",
        ],
    )
}

/// Benchmarks (release build): route latencies and the SDK hot path as ratios
/// against baselines measured in the same run, and the dev server's start time.
fn bench() -> Result<(), String> {
    let target = release_server()?;
    // A release example of latchkey-testkit, given the release server binary.
    let example = |name: &str| {
        let mut cmd = cargo();
        cmd.args([
            "run",
            "--release",
            "--quiet",
            "-p",
            "latchkey-testkit",
            "--example",
            name,
        ])
        .env(
            "LATCHKEY_SERVER_BIN",
            target.join("release").join("latchkey-server"),
        );
        cmd
    };
    run("bench", example("bench"))?;
    // A PostgreSQL for the route table's second engine and the engines table (the
    // route table runs on SQLite alone when none can be started).
    let _postgres = postgres::for_tests();
    // The route table: wrk against the release binary, with the Firebase Auth Emulator
    // (bench/firebase, installed here by `npm ci`) as the peer when it can start.
    if let Err(e) = bench_sdk::ensure_node_modules(&["bench", "firebase"], &["firebase-tools"]) {
        // The route table then reports latchkey alone, and says why.
        eprintln!("the Firebase Auth Emulator cannot be installed: {e}");
    }
    run("bench (route table, wrk)", example("bench_wrk"))?;
    // Storage engines: SQLite next to PostgreSQL (one and two nodes) in one run.
    run("bench (storage engines)", example("bench_engines"))?;
    bench_sdk::run(&target)
}

/// The SDK part of `bench` alone: the release server, then `bench_sdk`.
fn bench_sdk_only() -> Result<(), String> {
    bench_sdk::run(&release_server()?)
}

/// Build the release server; returns the target directory.
fn release_server() -> Result<PathBuf, String> {
    cargo_step(
        "build latchkey-server (release)",
        &[
            "build",
            "--release",
            "--quiet",
            "-p",
            "latchkey-server",
            "--bin",
            "latchkey-server",
        ],
    )?;
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    Ok(target)
}

/// Build the server binary and the Node packages of tests/compat; the binary's path.
fn build_server_for_node() -> Result<PathBuf, String> {
    cargo_step(
        "build latchkey-server",
        &[
            "build",
            "--quiet",
            "-p",
            "latchkey-server",
            "--bin",
            "latchkey-server",
        ],
    )?;
    bench_sdk::ensure_compat_node_modules()?;
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    Ok(target.join("debug").join("latchkey-server"))
}

/// Run the realm-web compatibility suite (tests/compat) against a freshly built server.
fn compat() -> Result<(), String> {
    let server = build_server_for_node()?;
    let dir = root().join("tests").join("compat");
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let record = target.join("realm-web-requests.json");
    let mut node = Command::new("node");
    node.arg("run.js")
        .arg("--server")
        .arg(&server)
        .arg("--record")
        .arg(&record)
        .current_dir(&dir);
    run("realm-web compatibility suite", node)?;
    browser_oauth(&dir, &target)?;
    browser_native(&dir, &target)?;
    let mut cross = cargo();
    cross
        .args([
            "test",
            "-p",
            "latchkey-tests",
            "--test",
            "wire_crosscheck",
            "--",
            "--nocapture",
        ])
        .env("REALM_WEB_RECORD", &record);
    run("wire-format cross-check (latchkey vs realm-web)", cross)
}

/// The browser sign-in suite (tests/compat/browser_oauth.js): realm-web in headless
/// Chromium through the OAuth redirect flow, against the server and the test kit's
/// fake Google, Facebook and Apple (the `oauth_stack` example).
fn browser_oauth(dir: &Path, target: &Path) -> Result<(), String> {
    cargo_step(
        "build the OAuth stack (server + fake providers)",
        &[
            "build",
            "--quiet",
            "-p",
            "latchkey-testkit",
            "--example",
            "oauth_stack",
        ],
    )?;
    let mut node = Command::new("node");
    node.arg("browser_oauth.js")
        .arg("--stack")
        .arg(target.join("debug").join("examples").join("oauth_stack"))
        .current_dir(dir);
    run(
        "browser sign-in suite (realm-web in Chromium, OAuth redirect flow)",
        node,
    )
}

/// Run the web console's browser tests (tests/compat/console.js: headless Chromium and
/// realm-web against `latchkey-server dev`).
fn console() -> Result<(), String> {
    let server = build_server_for_node()?;
    let mut node = Command::new("node");
    node.arg("console.js")
        .arg("--server")
        .arg(server)
        .current_dir(root().join("tests").join("compat"));
    run("web console browser tests", node)
}

/// The desktop/CLI browser sign-in in Chromium (tests/compat/browser_native.js): the
/// `browser_sign_in` example's loopback listener and relay page, with the fake Google.
fn browser_native(dir: &Path, target: &Path) -> Result<(), String> {
    cargo_step(
        "build the browser_sign_in example (SDK loopback sign-in)",
        &[
            "build",
            "--quiet",
            "-p",
            "latchkey",
            "--features",
            "browser-sign-in",
            "--example",
            "browser_sign_in",
        ],
    )?;
    let mut node = Command::new("node");
    node.arg("browser_native.js")
        .arg("--example")
        .arg(
            target
                .join("debug")
                .join("examples")
                .join("browser_sign_in"),
        )
        .current_dir(dir);
    run(
        "native-app browser sign-in (SDK loopback listener in Chromium)",
        node,
    )
}

fn test() -> Result<(), String> {
    let _postgres = postgres::for_tests();
    cargo_step(
        "cargo test (workspace)",
        &["test", "--workspace", "--all-targets"],
    )?;
    cargo_step("cargo test --doc", &["test", "--workspace", "--doc"])?;
    postgres::server_suite()?;
    compat()?;
    console()
}

/// Feature combinations of the facade that must build on their own.
const FEATURE_BUILDS: &[&str] = &[
    "",
    "anonymous,reqwest",
    "email-password,reqwest",
    "api-key,reqwest",
    "custom-jwt,reqwest",
    "custom-function,reqwest",
    "facebook,reqwest",
    "google,reqwest",
    "apple,reqwest",
    "all-providers,hyper",
    "browser-sign-in",
];

fn lint() -> Result<(), String> {
    cargo_step("rustfmt", &["fmt", "--all", "--", "--check"])?;
    cargo_step(
        "clippy",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    let mut doc = cargo();
    doc.args(["doc", "--workspace", "--no-deps", "--quiet"])
        .env("RUSTDOCFLAGS", "-D warnings");
    run("rustdoc", doc)?;
    for features in FEATURE_BUILDS {
        let mut args = vec!["check", "-p", "latchkey", "--no-default-features"];
        if !features.is_empty() {
            args.extend(["--features", features]);
        }
        cargo_step(&format!("cargo {}", args.join(" ")), &args)?;
    }
    // The verifier without and with its axum extractor.
    for features in ["", "axum"] {
        let mut args = vec!["check", "-p", "latchkey-verify", "--no-default-features"];
        if !features.is_empty() {
            args.extend(["--features", features]);
        }
        cargo_step(&format!("cargo {}", args.join(" ")), &args)?;
    }
    layering()?;
    Ok(())
}

/// Dependencies point one way: protocol <- transport <- session <- providers <- facade;
/// protocol <- store <- server; protocol <- verify. Fail if a crate depends on a layer above it; then
/// check the modules inside each crate (`modules`). Crates of the table that are
/// not in the workspace (yet) are skipped.
fn layering() -> Result<(), String> {
    println!("==> layering (cargo tree)");
    let forbidden: &[(&str, &[&str])] = &[
        (
            "latchkey-protocol",
            &[
                "latchkey-transport",
                "latchkey-session",
                "latchkey",
                "latchkey-store",
                "latchkey-server",
            ],
        ),
        (
            "latchkey-transport",
            &["latchkey-session", "latchkey", "latchkey-server"],
        ),
        (
            "latchkey-session",
            &[
                "latchkey",
                "latchkey-server",
                "latchkey-anonymous",
                "latchkey-email-password",
                "latchkey-api-key",
                "latchkey-custom-jwt",
                "latchkey-custom-function",
                "latchkey-facebook",
                "latchkey-google",
                "latchkey-apple",
            ],
        ),
        (
            "latchkey-server",
            &["latchkey-transport", "latchkey-session", "latchkey"],
        ),
        (
            "latchkey-store",
            &[
                "latchkey-server",
                "latchkey-session",
                "latchkey-transport",
                "latchkey",
            ],
        ),
        ("latchkey", &["latchkey-server"]),
        // protocol <- verify: a resource server's verifier needs neither the SDK nor
        // the server.
        (
            "latchkey-verify",
            &[
                "latchkey-transport",
                "latchkey-session",
                "latchkey",
                "latchkey-store",
                "latchkey-server",
            ],
        ),
        ("latchkey-anonymous", &["latchkey", "latchkey-server"]),
        ("latchkey-email-password", &["latchkey", "latchkey-server"]),
        ("latchkey-api-key", &["latchkey", "latchkey-server"]),
        ("latchkey-custom-jwt", &["latchkey", "latchkey-server"]),
        ("latchkey-custom-function", &["latchkey", "latchkey-server"]),
        ("latchkey-facebook", &["latchkey", "latchkey-server"]),
        ("latchkey-google", &["latchkey", "latchkey-server"]),
        ("latchkey-apple", &["latchkey", "latchkey-server"]),
    ];
    let members: Vec<String> = workspace::members(&root())?
        .into_iter()
        .map(|m| m.name)
        .collect();
    for (krate, not_below) in forbidden {
        if !members.iter().any(|m| m == krate) {
            println!("    (skipped {krate}: not in the workspace)");
            continue;
        }
        let out = cargo()
            .args([
                "tree", "-e", "normal", "--prefix", "none", "--format", "{p}", "-p", krate,
            ])
            .output()
            .map_err(|e| format!("cargo tree: {e}"))?;
        if !out.status.success() {
            return Err(format!("cargo tree -p {krate} failed"));
        }
        let tree = String::from_utf8_lossy(&out.stdout);
        for line in tree.lines().skip(1) {
            let name = line.split_whitespace().next().unwrap_or("");
            if not_below.contains(&name) {
                return Err(format!("layering: {krate} depends on {name}"));
            }
        }
    }
    println!("    ok: no dependency points against the layering");
    modules::check(&root(), false)
}

fn main() -> ExitCode {
    let cmd = env::args().nth(1).unwrap_or_default();
    let result = match cmd.as_str() {
        "demo" => demo(),
        "test" => test(),
        "compat" => compat(),
        "bench" if env::args().nth(2).as_deref() == Some("sdk") => bench_sdk_only(),
        "console" => console(),
        "bench" => bench(),
        "lint" => lint(),
        "layering" => layering(),
        "modules" => modules::check(&root(), true),
        "ci" => lint().and_then(|()| test()),
        "postgres" => postgres::command(&env::args().skip(2).collect::<Vec<_>>()),
        "fuzz" => fuzz::command(&env::args().skip(2).collect::<Vec<_>>()),
        _ => {
            eprintln!(
                "usage: cargo xtask <demo|test|compat|console|bench|lint|ci|layering|modules|postgres|fuzz>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}
