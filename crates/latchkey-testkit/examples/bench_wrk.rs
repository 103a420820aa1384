//! `cargo xtask bench` (route table): throughput and latency of the release
//! `latchkey-server` binary on a durable SQLite file, measured with `wrk` (1 thread,
//! 32 connections, loopback), each route as a ratio against `GET .../location` (routing
//! and JSON, no database) of the same run; email/password logins also against the raw
//! argon2id hash rate of the same parameters on the same cores; and, when it can be
//! started, the Firebase Auth Emulator as the peer (anonymous sign-ups, token refresh).
//!
//! With `LATCHKEY_TEST_POSTGRES_URL` (an admin URL; `cargo xtask bench` starts a
//! PostgreSQL for the bench) the same table is measured again on a fresh PostgreSQL
//! database.
//!
//! Needs `LATCHKEY_SERVER_BIN` (the release binary). `wrk` comes from Debian's package;
//! the emulator from `bench/firebase` (`npm ci` there). When either is missing the bench
//! says so and reports what it can. `LATCHKEY_BENCH_SECONDS` (default 5) sets the length
//! of each wrk run, `LATCHKEY_BENCH_ROUNDS` (default 3) how many times each route runs:
//! a route's ratio is the median over rounds of its rate against `location` measured in
//! the same round, and the password logins' share of the raw hash rate the median over
//! rounds of each round against the raw rate measured right before and after it.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use latchkey_testkit::{POSTGRES_URL_VAR, PostgresTestDb};
use serde_json::{Value, json};

mod common;

const APP: &str = "bench-wrk";
const SECRET: &str = "bench-wrk-signing-secret-0123456789abcdef";
const CONNECTIONS: u32 = 32;
const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "p4ssw0rd!";
/// The server's argon2id parameters (`latchkey-server/src/password.rs`, OWASP).
const ARGON2: (u32, u32, u32) = (19_456, 2, 1);
/// The emulator's port (bench/firebase/firebase.json).
const EMULATOR_PORT: u16 = 9099;

/// The emulator's process, the leader of its own process group, which is ended whole
/// (its node children) when dropped.
struct Emulator(Child);

impl Drop for Emulator {
    fn drop(&mut self) {
        #[cfg(unix)]
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One wrk run: requests/s and p50/p99 latency.
#[derive(Debug, Clone, Copy)]
struct Figures {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

fn wrk_available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// A wrk latency such as `1.23ms`, `845.00us`, `1.02s`.
fn parse_latency(s: &str) -> Option<Duration> {
    let (number, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = number.parse().ok()?;
    let secs = match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(secs))
}

/// Run wrk with a Lua script (method, headers, body) against `url`.
fn wrk(dir: &Path, name: &str, url: &str, script: &str, seconds: u32) -> anyhow::Result<Figures> {
    let path = dir.join(format!("{name}.lua"));
    std::fs::write(&path, script)?;
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{CONNECTIONS}"), &format!("-d{seconds}s")])
        .arg("--latency")
        .arg("-s")
        .arg(&path)
        .arg(url)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rate = None;
    let (mut p50, mut p99) = (None, None);
    let mut non_2xx = 0u64;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", r] => rate = r.parse::<f64>().ok(),
            ["50%", l] => p50 = parse_latency(l),
            ["99%", l] => p99 = parse_latency(l),
            ["Non-2xx", "or", "3xx", "responses:", n] => non_2xx = n.parse().unwrap_or(0),
            _ => {}
        }
    }
    if non_2xx > 0 {
        anyhow::bail!("{name}: {non_2xx} answers were not 2xx; wrk said:\n{text}");
    }
    match (rate, p50, p99) {
        (Some(rate), Some(p50), Some(p99)) => Ok(Figures { rate, p50, p99 }),
        _ => anyhow::bail!(
            "{name}: cannot read wrk's output:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// A wrk script sending `method` with `headers` and `body`.
fn script(method: &str, headers: &[(&str, &str)], body: Option<&str>) -> String {
    let mut s = format!("wrk.method = \"{method}\"\n");
    for (k, v) in headers {
        s.push_str(&format!("wrk.headers[\"{k}\"] = \"{v}\"\n"));
    }
    if let Some(body) = body {
        s.push_str(&format!("wrk.body = [[{body}]]\n"));
    }
    s
}

/// Raw argon2id hashes/s of the server's parameters on every core (one thread per
/// core, `seconds` long): the ceiling of password logins on this machine.
fn raw_argon2_rate(seconds: f64) -> (f64, usize) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            std::thread::spawn(move || {
                let (m, t, p) = ARGON2;
                let params = Params::new(m, t, p, None).expect("OWASP parameters");
                let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                let salt = SaltString::encode_b64(b"bench-salt-bytes").expect("salt");
                let mut n = 0u64;
                while Instant::now() < deadline {
                    argon2
                        .hash_password(PASSWORD.as_bytes(), &salt)
                        .expect("hash");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    (total as f64 / start.elapsed().as_secs_f64(), cores)
}

/// The Firebase Auth Emulator from `bench/firebase`, started on loopback; `Err` says
/// why it cannot run here.
fn start_emulator(root: &Path, dir: &Path) -> Result<Emulator, String> {
    let fb = root.join("bench/firebase");
    let cli = fb.join("node_modules/.bin/firebase");
    if !cli.exists() {
        return Err(format!(
            "{} is missing: run `npm ci` in bench/firebase",
            cli.display()
        ));
    }
    if TcpStream::connect(("127.0.0.1", EMULATOR_PORT)).is_ok() {
        return Err(format!("port {EMULATOR_PORT} is taken"));
    }
    let log = std::fs::File::create(dir.join("emulator.log")).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&cli);
    cmd.args([
        "emulators:start",
        "--only",
        "auth",
        "--project",
        "demo-latchkey-bench",
    ])
    .current_dir(&fb)
    .env("HOME", dir)
    .env("FIREBASE_CLI_DISABLE_UPDATE_CHECK", "1")
    .stdin(Stdio::null())
    .stdout(log.try_clone().map_err(|e| e.to_string())?)
    .stderr(log);
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let child = Emulator(cmd.spawn().map_err(|e| format!("cannot start it: {e}"))?);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", EMULATOR_PORT)).is_ok() {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = std::fs::read_to_string(dir.join("emulator.log")).unwrap_or_default();
    Err(format!("it did not listen within 60 s; its output:\n{log}"))
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// The figures of one engine's run.
struct Table {
    /// Route name, the run with the median rate, and the median over rounds of the
    /// rate's ratio against `location` in the same round; `location` first.
    routes: Vec<(&'static str, Figures, f64)>,
    /// Per round: email/password logins/s and the raw argon2id hashes/s around them
    /// (mean of the raw runs right before and right after).
    password: Vec<(f64, f64)>,
    cores: usize,
}

impl Table {
    fn rate(&self, name: &str) -> f64 {
        self.routes
            .iter()
            .find(|(n, _, _)| *n == name)
            .map_or(0.0, |(_, f, _)| f.rate)
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

const LOCATION: &str = "GET location (no database)";
const REFRESH: &str = "POST /auth/session (refresh)";
const PROFILE: &str = "GET /auth/profile";
const ANONYMOUS: &str = "anonymous login (new user)";
const PASSWORD_LOGIN: &str = "email/password login (argon2id)";

/// Start the server on `database` and measure every route with wrk.
async fn route_table(bin: &Path, database: &str, seconds: u32) -> anyhow::Result<Table> {
    let dir = tempfile::tempdir()?;
    let config_path = common::write_config(dir.path(), APP, SECRET, database)?;
    let server = common::start_node(bin, &config_path, "info")?;
    let base = server.url.clone();

    // Tokens and a confirmed email/password user.
    let http = reqwest::Client::new();
    let login = |provider: &str| {
        format!("{base}/api/client/v2.0/app/{APP}/auth/providers/{provider}/login")
    };
    let tokens: Value = http
        .post(login("anon-user"))
        .json(&json!({}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let access = tokens["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let refresh = tokens["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // One user per connection: concurrent logins of one email hold places in its
    // failed-login bucket (reserved before the password is checked), and more than
    // its limit at once would be throttled.
    for n in 0..CONNECTIONS {
        http.post(format!(
            "{base}/api/client/v2.0/app/{APP}/auth/providers/local-userpass/register"
        ))
        .json(&json!({"email": format!("{n}{EMAIL}"), "password": PASSWORD}))
        .send()
        .await?
        .error_for_status()?;
    }

    let json_ct = ("Content-Type", "application/json");
    let access_h = format!("Bearer {access}");
    let refresh_h = format!("Bearer {refresh}");
    let userpass_script = format!(
        "local i = 0\nrequest = function()\n  i = (i + 1) % {CONNECTIONS}\n  \
         return wrk.format(\"POST\", nil, {{[\"Content-Type\"] = \"application/json\"}}, \
         '{{\"username\":\"' .. i .. '{EMAIL}\",\"password\":\"{PASSWORD}\"}}')\nend\n"
    );
    let routes: Vec<(&'static str, String, String)> = vec![
        (
            LOCATION,
            format!("{base}/api/client/v2.0/app/{APP}/location"),
            script("GET", &[], None),
        ),
        (
            REFRESH,
            format!("{base}/api/client/v2.0/auth/session"),
            script("POST", &[("Authorization", &refresh_h)], None),
        ),
        (
            PROFILE,
            format!("{base}/api/client/v2.0/auth/profile"),
            script("GET", &[("Authorization", &access_h)], None),
        ),
        (
            ANONYMOUS,
            login("anon-user"),
            script("POST", &[json_ct], Some("{}")),
        ),
        (PASSWORD_LOGIN, login("local-userpass"), userpass_script),
    ];
    // Rounds of every route, one after the other, so that each route's ratio compares
    // runs made a few seconds apart (the machine's speed moves): the median round counts.
    let rounds: usize = std::env::var("LATCHKEY_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1);
    let (password_route, other_routes) = routes.split_last().expect("routes");
    let mut runs: Vec<Vec<Figures>> = vec![Vec::new(); other_routes.len()];
    for _ in 0..rounds {
        for (i, (name, url, lua)) in other_routes.iter().enumerate() {
            let file = name.replace(|c: char| !c.is_alphanumeric(), "_");
            runs[i].push(wrk(dir.path(), &file, url, lua, seconds)?);
        }
    }
    let mut results = Vec::new();
    for (i, (name, _, _)) in other_routes.iter().enumerate() {
        let ratios = (0..rounds)
            .map(|r| runs[i][r].rate / runs[0][r].rate.max(f64::MIN_POSITIVE))
            .collect();
        let mut by_rate = runs[i].clone();
        by_rate.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        results.push((*name, by_rate[by_rate.len() / 2], median(ratios)));
    }
    // Password logins: the raw hash rate right before and right after each round (the
    // machine's load moves); a round's ceiling is their mean.
    let (name, url, lua) = password_route;
    let raw_seconds = f64::from(seconds).min(4.0);
    let (mut raw_before, cores) = raw_argon2_rate(raw_seconds);
    let mut password = Vec::new();
    let mut password_runs = Vec::new();
    for _ in 0..rounds {
        let file = name.replace(|c: char| !c.is_alphanumeric(), "_");
        let figures = wrk(dir.path(), &file, url, lua, seconds)?;
        let (raw_after, _) = raw_argon2_rate(raw_seconds);
        password.push((figures.rate, (raw_before + raw_after) / 2.0));
        password_runs.push(figures);
        raw_before = raw_after;
    }
    password_runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let location = results[0].1.rate.max(f64::MIN_POSITIVE);
    let middle = password_runs[password_runs.len() / 2];
    results.push((*name, middle, middle.rate / location));
    Ok(Table {
        routes: results,
        password,
        cores,
    })
}

fn print_table(engine: &str, table: &Table) {
    println!("  {engine}:");
    println!(
        "  {:<34} {:>10} {:>8} {:>10} {:>10}",
        "route", "req/s", "ratio", "p50", "p99"
    );
    for (name, f, ratio) in &table.routes {
        println!(
            "  {name:<34} {:>10.0} {:>8.3} {:>10} {:>10}",
            f.rate,
            ratio,
            us(f.p50),
            us(f.p99)
        );
    }
    let shares: Vec<f64> = table
        .password
        .iter()
        .map(|(logins, raw)| logins / raw.max(f64::MIN_POSITIVE))
        .collect();
    let rounds: Vec<String> = table
        .password
        .iter()
        .zip(&shares)
        .map(|((logins, raw), share)| format!("{logins:.1}/{raw:.1} = {:.0}%", 100.0 * share))
        .collect();
    let logins = median(table.password.iter().map(|p| p.0).collect());
    println!(
        "  email/password logins against raw argon2id (m={} KiB, t={}, p={}) on {} threads, \
         per round (logins/s / hashes/s): {}; median {:.0}%, {:.1} logins/s per core",
        ARGON2.0,
        ARGON2.1,
        ARGON2.2,
        table.cores,
        rounds.join(", "),
        100.0 * median(shares),
        logins / table.cores as f64
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let seconds: u32 = std::env::var("LATCHKEY_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    println!(
        "\nroute table: wrk -t1 -c{CONNECTIONS} -d{seconds}s --latency, loopback, release \
         binary on a SQLite file (WAL, synchronous=NORMAL) and, when \
         {POSTGRES_URL_VAR} is set, on PostgreSQL; every route run once per round; ratio = \
         median over rounds of requests/s against GET location of the same round; \
         req/s, p50 and p99 of the median run"
    );
    if !wrk_available() {
        println!("  wrk is not installed (Debian: apt-get install wrk): route table skipped");
        return Ok(());
    }
    let bin = PathBuf::from(
        std::env::var("LATCHKEY_SERVER_BIN")
            .map_err(|_| anyhow::anyhow!("LATCHKEY_SERVER_BIN is not set"))?,
    );
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    let mut tables = vec![("SQLite file", route_table(&bin, &sqlite, seconds).await?)];
    print_table(tables[0].0, &tables[0].1);
    if std::env::var_os(POSTGRES_URL_VAR).is_some() {
        match PostgresTestDb::create().await {
            Some(db) => {
                let table = route_table(&bin, db.url(), seconds).await?;
                print_table("PostgreSQL (one node, same machine)", &table);
                tables.push(("PostgreSQL", table));
            }
            None => println!("  PostgreSQL: cannot create a database: SQLite only"),
        }
    } else {
        println!("  ({POSTGRES_URL_VAR} is unset: SQLite only)");
    }

    // The peer.
    let http = reqwest::Client::new();
    let json_ct = ("Content-Type", "application/json");
    match start_emulator(&root, dir.path()) {
        Err(why) => {
            println!("  Firebase Auth Emulator: not run ({why}); latchkey alone is reported above")
        }
        Ok(_emulator) => {
            let fb = format!("http://127.0.0.1:{EMULATOR_PORT}");
            let signup =
                format!("{fb}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=bench");
            let made: Value = http
                .post(&signup)
                .json(&json!({"returnSecureToken": true}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let fb_refresh = made["refreshToken"].as_str().unwrap_or_default();
            let anon = wrk(
                dir.path(),
                "firebase_signup",
                &signup,
                &script("POST", &[json_ct], Some(r#"{"returnSecureToken":true}"#)),
                seconds,
            )?;
            let token = wrk(
                dir.path(),
                "firebase_refresh",
                &format!("{fb}/securetoken.googleapis.com/v1/token?key=bench"),
                &script(
                    "POST",
                    &[("Content-Type", "application/x-www-form-urlencoded")],
                    Some(&format!(
                        "grant_type=refresh_token&refresh_token={fb_refresh}"
                    )),
                ),
                seconds,
            )?;
            println!(
                "  Firebase Auth Emulator anonymous sign-up: {:.0}/s (p50 {}, p99 {})",
                anon.rate,
                us(anon.p50),
                us(anon.p99),
            );
            println!(
                "  Firebase Auth Emulator token refresh: {:.0}/s (p50 {}, p99 {})",
                token.rate,
                us(token.p50),
                us(token.p99),
            );
            for (engine, table) in &tables {
                println!(
                    "  latchkey on {engine}: anonymous login / emulator sign-up = {:.2}x; \
                     refresh / emulator refresh = {:.2}x",
                    table.rate(ANONYMOUS) / anon.rate,
                    table.rate(REFRESH) / token.rate
                );
            }
        }
    }
    Ok(())
}
