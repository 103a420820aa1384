//! The SDK part of `cargo xtask bench` (docs/benchmarks.md):
//!
//! - the user stores' load and save times for 10, 1,000 and 10,000 users
//!   (`latchkey-testkit` example `sdk_bench store`);
//! - the client CPU time (user + system) per anonymous login + log-out cycle and the peak
//!   memory (max RSS) of the Rust SDK (`sdk_bench cycles`, with each store) and of
//!   realm-web 2.0.1 on Node (`tests/compat/bench_cycles.js`), the same cycles against the
//!   same release `latchkey-server dev`, each client in its own process. Both are measured
//!   the same way, from `/proc/<pid>/stat` and `/proc/<pid>/status`, between the client's
//!   `ready` (after its warm-up) and `done` lines.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use crate::{cargo_step, root};

/// Measured cycles per client run, after `WARMUP` cycles; `ROUNDS` runs per client.
const CYCLES: usize = 2000;
const WARMUP: usize = 200;
const ROUNDS: usize = 3;

pub(crate) fn run(target: &Path) -> Result<(), String> {
    cargo_step(
        "build the SDK benchmark client (release)",
        &[
            "build",
            "--release",
            "--quiet",
            "-p",
            "latchkey-testkit",
            "--example",
            "sdk_bench",
        ],
    )?;
    let sdk = target.join("release").join("examples").join("sdk_bench");
    machine();
    stores(&sdk)?;
    ensure_compat_node_modules()?;
    cycles(&sdk, &target.join("release").join("latchkey-server"))
}

/// `npm ci` in tests/compat unless realm-web is installed there.
pub(crate) fn ensure_compat_node_modules() -> Result<(), String> {
    ensure_node_modules(&["tests", "compat"], &["realm-web", "playwright-core"])
}

/// `npm ci` in the directory `dir` (below the repository root) unless every package of
/// `packages` is installed there already.
pub(crate) fn ensure_node_modules(dir: &[&str], packages: &[&str]) -> Result<(), String> {
    let dir = dir.iter().fold(root(), |path, part| path.join(part));
    let modules = dir.join("node_modules");
    if packages.iter().all(|p| modules.join(p).exists()) {
        return Ok(());
    }
    let mut npm = Command::new("npm");
    npm.args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir);
    crate::run(&format!("npm ci ({})", dir.display()), npm)
}

fn output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    println!("\nSDK benchmarks");
    println!(
        "  machine: {cpu}, {} cores, Linux {}; {}; node {}",
        output("nproc", &[]),
        output("uname", &["-r"]),
        output("rustc", &["--version"]),
        output("node", &["--version"]),
    );
    println!("  date: {}", output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]));
}

/// The value of `"key":` in a flat JSON object line (numbers and plain strings only).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &line[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim().trim_matches('"'))
}

fn stores(sdk: &Path) -> Result<(), String> {
    println!(
        "\nuser store, wall time, median: load = a new store opened and read in full (an app's \
         start); save = one changed user written (a login, a refresh)"
    );
    let out = Command::new(sdk)
        .arg("store")
        .output()
        .map_err(|e| format!("sdk_bench store: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "sdk_bench store failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().collect();
    let engines = [
        ("sqlite", "SqliteStore (default)"),
        ("sqlite-full", "SqliteStore, full sync"),
        ("json", "FileStore (locked JSON)"),
    ];
    println!("  | store | users | load | save | on disk |");
    println!("  |---|---:|---:|---:|---:|");
    let num = |line: &str, key: &str| -> f64 {
        field(line, key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    for (engine, name) in engines {
        for line in rows.iter().filter(|l| field(l, "engine") == Some(engine)) {
            println!(
                "  | {name} | {} | {:.2} ms | {:.2} ms | {:.0} KiB |",
                field(line, "users").unwrap_or("?"),
                num(line, "load_us") / 1000.0,
                num(line, "save_us") / 1000.0,
                num(line, "bytes") / 1024.0,
            );
        }
    }
    Ok(())
}

/// CPU ticks (user, system) and peak RSS (kB) of a live process.
fn sample(pid: u32) -> Result<(u64, u64, u64), String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // Fields after the command name, which is in parentheses: state is field 3, utime 14,
    // stime 15.
    let after = &stat[stat.rfind(')').ok_or("bad /proc stat")? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok((ticks(11), ticks(12), hwm))
}

struct Measured {
    name: &'static str,
    user_s: f64,
    sys_s: f64,
    max_rss_kb: u64,
}

impl Measured {
    fn cpu_us_per_cycle(&self) -> f64 {
        (self.user_s + self.sys_s) * 1e6 / CYCLES as f64
    }
}

fn expect_line(out: &mut BufReader<ChildStdout>, want: &str, who: &str) -> Result<(), String> {
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err(format!("{who} ended before printing {want:?}"));
        }
        if line.trim() == want {
            return Ok(());
        }
    }
}

/// Run one client through the ready / go / done protocol and measure it.
fn measure(name: &'static str, mut cmd: Command, hz: f64) -> Result<Measured, String> {
    let mut child: Child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{name}: {e}"))?;
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut stdin = child.stdin.take().expect("piped");
    expect_line(&mut out, "ready", name)?;
    let (u0, s0, _) = sample(pid)?;
    stdin.write_all(b"go\n").map_err(|e| e.to_string())?;
    expect_line(&mut out, "done", name)?;
    let (u1, s1, hwm) = sample(pid)?;
    drop(stdin);
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("{name} failed ({status})"));
    }
    Ok(Measured {
        name,
        user_s: (u1 - u0) as f64 / hz,
        sys_s: (s1 - s0) as f64 / hz,
        max_rss_kb: hwm,
    })
}

fn cycles(sdk: &Path, server_bin: &Path) -> Result<(), String> {
    let hz: f64 = output("getconf", &["CLK_TCK"]).parse().unwrap_or(100.0);
    let mut server = Command::new(server_bin)
        .arg("dev")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", server_bin.display()))?;
    let mut lines = BufReader::new(server.stdout.take().expect("piped"));
    let (mut url, mut app_id) = (String::new(), String::new());
    let mut line = String::new();
    while url.is_empty() || app_id.is_empty() {
        line.clear();
        if lines.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            let _ = server.kill();
            return Err("latchkey-server dev ended before it was ready".into());
        }
        if let Some(u) = line.trim().strip_prefix("listening on ") {
            url = u.to_owned();
        } else if let Some(a) = line.trim().strip_prefix("app id: ") {
            app_id = a.to_owned();
        }
    }
    // Keep reading the server's output so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.lines() {});

    let n = CYCLES.to_string();
    let w = WARMUP.to_string();
    let clients: [(&'static str, &str); 5] = [
        ("latchkey, SqliteStore (default)", "sqlite"),
        ("latchkey, SqliteStore, full sync", "sqlite-full"),
        ("latchkey, FileStore (locked JSON)", "json"),
        ("latchkey, MemoryStore", "memory"),
        ("realm-web 2.0.1 on Node", "node"),
    ];
    let command = |store: &str| {
        if store == "node" {
            let mut node = Command::new("node");
            node.arg("bench_cycles.js")
                .args([&url, &app_id, &n, &w])
                .current_dir(root().join("tests").join("compat"));
            node
        } else {
            let mut cmd = Command::new(sdk);
            cmd.args(["cycles", &url, &app_id, &n, &w, store]);
            cmd
        }
    };
    // Every client ROUNDS times, interleaved (so that a noisy moment hits them all); the
    // run with the median CPU time counts.
    let mut runs: Vec<Vec<Measured>> = clients.iter().map(|_| Vec::new()).collect();
    for _ in 0..ROUNDS {
        for (i, (name, store)) in clients.iter().enumerate() {
            match measure(name, command(store), hz) {
                Ok(m) => runs[i].push(m),
                Err(e) => {
                    let _ = server.kill();
                    let _ = server.wait();
                    return Err(e);
                }
            }
        }
    }
    let results: Vec<Measured> = runs
        .into_iter()
        .map(|mut r| {
            r.sort_by(|a, b| a.cpu_us_per_cycle().total_cmp(&b.cpu_us_per_cycle()));
            r.swap_remove(r.len() / 2)
        })
        .collect();
    let _ = server.kill();
    let _ = server.wait();

    let web = results.last().expect("realm-web ran");
    let (web_cpu, web_rss) = (web.cpu_us_per_cycle(), web.max_rss_kb as f64);
    println!(
        "\nclient CPU per anonymous login + log-out cycle ({CYCLES} cycles after {WARMUP} warm-up, \
         same release server, median of {ROUNDS} runs), and peak memory:"
    );
    println!(
        "  | client | user + system per cycle | user / system | max RSS | realm-web's CPU ÷ this | this memory ÷ realm-web's |"
    );
    println!("  |---|---:|---:|---:|---:|---:|");
    for m in &results {
        println!(
            "  | {} | {:.0} µs | {:.0} / {:.0} µs | {:.1} MiB | {:.1} | {:.2} |",
            m.name,
            m.cpu_us_per_cycle(),
            m.user_s * 1e6 / CYCLES as f64,
            m.sys_s * 1e6 / CYCLES as f64,
            m.max_rss_kb as f64 / 1024.0,
            web_cpu / m.cpu_us_per_cycle(),
            m.max_rss_kb as f64 / web_rss,
        );
    }
    Ok(())
}
