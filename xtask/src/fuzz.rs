//! `cargo xtask fuzz [--time SECS] [--replay] [TARGET...]`: the fuzz targets of `fuzz/`.
//!
//! - without `--replay`: builds the targets with cargo-fuzz (libFuzzer; on a stable
//!   toolchain with `RUSTC_BOOTSTRAP=1`, no sanitizer: the workspace forbids `unsafe`), then
//!   runs each for `SECS` seconds (default 60) from its committed seeds
//!   (`fuzz/seeds/<target>/`) and regressions (`fuzz/regressions/<target>/`), with a
//!   scratch corpus under the target directory, and prints the executions and crashes
//!   per target. Fails when any target crashed; the crashing inputs are in
//!   `<target dir>/fuzz/artifacts/<target>/`.
//! - with `--replay`: runs the committed inputs through the same code as plain tests
//!   (`cargo test -p latchkey-tests --test fuzz_corpora`), which needs no cargo-fuzz.
//!
//! The target directory is `$CARGO_TARGET_DIR/fuzz` (else `target/fuzz`).

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{cargo, cargo_step, root};

/// The targets, as `fuzz/Cargo.toml` names them.
const TARGETS: &[&str] = &[
    "ejson",
    "request_body",
    "client_token",
    "server_token",
    "error_body",
    "server_config",
    "user_file",
];

/// One target's run.
struct Outcome {
    target: String,
    /// Wall time, build check and start included.
    secs: f64,
    executions: u64,
    /// libFuzzer's own average.
    exec_per_sec: u64,
    crashes: usize,
}

pub(crate) fn command(args: &[String]) -> Result<(), String> {
    let mut secs: u64 = 60;
    let mut replay = false;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--time" => {
                secs = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--time takes a number of seconds")?;
            }
            "--replay" => replay = true,
            t if TARGETS.contains(&t) => targets.push(t.to_owned()),
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: cargo xtask fuzz [--time SECS] [--replay] [{}]",
                    TARGETS.join("|")
                ));
            }
        }
    }
    if replay {
        return cargo_step(
            "fuzz corpora replayed as tests",
            &["test", "-p", "latchkey-tests", "--test", "fuzz_corpora"],
        );
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    let fuzz_dir = root().join("fuzz");
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("fuzz");

    let have_cargo_fuzz = cargo()
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_cargo_fuzz {
        return Err("cargo-fuzz is not installed: `cargo install cargo-fuzz` \
                    (or `cargo xtask fuzz --replay` to run the committed inputs as tests)"
            .into());
    }
    let mut build = fuzz_cmd("build", &target_dir);
    build
        .args(["--sanitizer", "none", "--fuzz-dir"])
        .arg(&fuzz_dir);
    crate::run("cargo fuzz build", build)?;

    let mut outcomes = Vec::new();
    for target in &targets {
        outcomes.push(run_target(target, secs, &fuzz_dir, &target_dir)?);
    }
    println!();
    println!(
        "{:<14} {:>8} {:>14} {:>10} {:>8}",
        "target", "seconds", "executions", "exec/s", "crashes"
    );
    for o in &outcomes {
        println!(
            "{:<14} {:>8.0} {:>14} {:>10} {:>8}",
            o.target, o.secs, o.executions, o.exec_per_sec, o.crashes
        );
    }
    let crashed: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.crashes > 0)
        .map(|o| o.target.as_str())
        .collect();
    if crashed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "crashes in {}: inputs in {}; after the fix, add each to fuzz/regressions/<target>/",
            crashed.join(", "),
            target_dir.join("artifacts").display()
        ))
    }
}

/// `cargo fuzz <sub>` with the fuzz target directory, on any toolchain.
fn fuzz_cmd(sub: &str, target_dir: &Path) -> Command {
    let mut cmd = cargo();
    cmd.args(["fuzz", sub, "--target-dir"]).arg(target_dir);
    // cargo-fuzz passes nightly-only flags; a stable toolchain accepts them with this.
    cmd.env("RUSTC_BOOTSTRAP", "1");
    cmd
}

fn run_target(
    target: &str,
    secs: u64,
    fuzz_dir: &Path,
    target_dir: &Path,
) -> Result<Outcome, String> {
    let corpus = target_dir.join("corpus").join(target);
    let artifacts = target_dir.join("artifacts").join(target);
    for dir in [&corpus, &artifacts] {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let before = count_files(&artifacts);
    let mut cmd = fuzz_cmd("run", target_dir);
    cmd.args(["--sanitizer", "none", "--fuzz-dir"])
        .arg(fuzz_dir)
        .arg(target)
        .arg(&corpus)
        .arg(fuzz_dir.join("seeds").join(target));
    let regressions = fuzz_dir.join("regressions").join(target);
    if regressions.is_dir() {
        cmd.arg(&regressions);
    }
    cmd.arg("--")
        .arg(format!("-max_total_time={secs}"))
        .arg("-print_final_stats=1")
        .arg("-timeout=10")
        .arg("-max_len=16384")
        .arg("-rss_limit_mb=2048")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    println!("==> fuzz {target} ({secs} s)");
    let started = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("cargo fuzz run {target}: {e}"))?;
    let secs = started.elapsed().as_secs_f64();
    let log = String::from_utf8_lossy(&out.stderr);
    let stat = |name: &str| {
        log.lines()
            .filter_map(|l| l.strip_prefix(name))
            .filter_map(|n| n.trim().parse::<u64>().ok())
            .next_back()
            .unwrap_or(0)
    };
    let executions = stat("stat::number_of_executed_units:");
    let exec_per_sec = stat("stat::average_exec_per_sec:");
    let crashes = count_files(&artifacts).saturating_sub(before);
    if !out.status.success() || crashes > 0 {
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    if !out.status.success() && crashes == 0 {
        return Err(format!("cargo fuzz run {target} failed ({})", out.status));
    }
    Ok(Outcome {
        target: target.to_owned(),
        secs,
        executions,
        exec_per_sec,
        crashes,
    })
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| entries.flatten().count())
}
