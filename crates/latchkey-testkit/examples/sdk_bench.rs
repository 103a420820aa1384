//! `cargo xtask bench` (SDK part), run as a separate process so that its CPU time and
//! memory are the client's alone.
//!
//! - `sdk_bench store`: load and save times of the on-disk user stores (`SqliteStore`, the
//!   default, also with full sync, and the locked JSON `FileStore`) holding 10, 1,000 and
//!   10,000 users, and the CPU time of a save; prints one JSON object per line.
//! - `sdk_bench cycles <base url> <app id> <cycles> <warm-up cycles> <sqlite|sqlite-full|json|memory>`:
//!   anonymous login + log-out cycles through the `latchkey` facade (a current-thread tokio
//!   runtime, as a CLI would use), with the given store in a temporary directory. It runs
//!   the warm-up cycles, prints `ready`, waits for a line on stdin, runs the measured
//!   cycles, prints `done`, and waits for stdin to close: the parent (xtask) reads the
//!   process's CPU time and peak memory from `/proc` at `ready` and at `done`, exactly as
//!   it does for realm-web's script (`tests/compat/bench_cycles.js`).

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use latchkey::store::{FileStore, SqliteStore, StoreChange, StoredUser, UserStore};
use latchkey::{App, Credentials};
use serde_json::json;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("store") => store(),
        Some("cycles") if args.len() == 6 => cycles(
            &args[1],
            &args[2],
            args[3].parse()?,
            args[4].parse()?,
            &args[5],
        ),
        _ => anyhow::bail!(
            "usage: sdk_bench store | sdk_bench cycles <base url> <app id> <cycles> <warm-up> <sqlite|sqlite-full|json|memory>"
        ),
    }
}

// ---------------------------------------------------------------- cycles

fn cycles(
    base_url: &str,
    app_id: &str,
    n: usize,
    warmup: usize,
    store: &str,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let builder = App::builder(app_id).base_url(base_url);
    let builder = match store {
        "sqlite" => builder.storage_dir(dir.path()),
        "sqlite-full" => builder.user_store(SqliteStore::new(dir.path()).with_full_sync()),
        "json" => builder.user_store(FileStore::new(dir.path())),
        "memory" => builder.in_memory_store(),
        other => anyhow::bail!("unknown store {other}"),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let app = rt.block_on(async { builder.build() })?;
    let run = |count: usize| -> anyhow::Result<()> {
        rt.block_on(async {
            for _ in 0..count {
                let user = app.log_in(Credentials::anonymous()).await?;
                user.log_out().await?;
            }
            Ok::<(), latchkey::Error>(())
        })?;
        Ok(())
    };
    let stdin = std::io::stdin();
    let mut line = String::new();
    run(warmup)?;
    println!("ready");
    std::io::stdout().flush()?;
    stdin.lock().read_line(&mut line)?;
    run(n)?;
    println!("done");
    std::io::stdout().flush()?;
    while stdin.lock().read_line(&mut line)? > 0 {}
    Ok(())
}

// ---------------------------------------------------------------- store

/// A user as a real login leaves it: two signed tokens, a profile, one identity.
fn user(i: usize) -> StoredUser {
    let token = |kind: &str| {
        format!(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{}.{}",
            "x".repeat(380),
            kind
        )
    };
    serde_json::from_value(json!({
        "id": format!("{i:024x}"),
        "state": "LoggedIn",
        "access_token": token("access"),
        "refresh_token": token("refresh"),
        "access_token_expires_at_ms": 1_900_000_000_000i64 + i as i64,
        "access_token_lifetime_secs": 1800,
        "profile": {"email": format!("user{i}@example.com"), "name": "Bench User"},
        "identities": [{"id": format!("{i:024x}"), "provider_type": "local-userpass"}],
        "user_type": "normal",
        "device_id": "65f0c0ffee0000000000abcd",
        "provider_type": "local-userpass"
    }))
    .expect("a valid stored user")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn store() -> anyhow::Result<()> {
    const APP: &str = "bench-app";
    type Open = fn(&Path) -> Box<dyn UserStore>;
    let engines: [(&str, Open); 3] = [
        ("sqlite", |d| Box::new(SqliteStore::new(d))),
        ("sqlite-full", |d| {
            Box::new(SqliteStore::new(d).with_full_sync())
        }),
        ("json", |d| Box::new(FileStore::new(d))),
    ];
    for users in [10usize, 1_000, 10_000] {
        for (engine, open) in engines {
            let dir = tempfile::tempdir()?;
            let store = open(dir.path());
            let all: Vec<StoreChange> =
                (0..users).map(|i| StoreChange::SaveUser(user(i))).collect();
            store.apply(APP, &all)?;
            store.apply(
                APP,
                &[StoreChange::SetCurrentUser(Some(format!("{:024x}", 0)))],
            )?;
            drop(store);
            // Load: a new store (as at an app's start), opened and read in full.
            let runs = if users >= 10_000 { 5 } else { 21 };
            let mut loads = Vec::with_capacity(runs);
            for _ in 0..runs {
                let store = open(dir.path());
                let start = Instant::now();
                let loaded = store.load(APP)?;
                loads.push(start.elapsed());
                anyhow::ensure!(loaded.users.len() == users, "{engine}: lost users");
            }
            // Save: one changed user (a refreshed token), durable, on an open store.
            let store = open(dir.path());
            store.load(APP)?;
            let saves = if users >= 10_000 { 11 } else { 51 };
            let mut times = Vec::with_capacity(saves);
            for k in 0..saves {
                let mut u = user(k % users);
                u.access_token_expires_at_ms = Some(2_000_000_000_000 + k as i64);
                let start = Instant::now();
                store.apply(APP, &[StoreChange::SaveUser(u)])?;
                times.push(start.elapsed());
            }
            drop(store);
            println!(
                "{}",
                json!({
                    "engine": engine,
                    "users": users,
                    "load_us": median(loads).as_micros() as u64,
                    "save_us": median(times).as_micros() as u64,
                    "bytes": dir_bytes(dir.path()),
                })
            );
        }
    }
    Ok(())
}
