//! `cargo xtask bench` (engines part): anonymous-login, password-login and refresh
//! throughput of the release `latchkey-server` binary on a SQLite file, on PostgreSQL
//! with one node, and on PostgreSQL with two nodes sharing the database, in one run.
//! Reported as ratios against the SQLite figure of the same run.
//!
//! Needs `LATCHKEY_SERVER_BIN` (the release binary) and, for the PostgreSQL rows,
//! `LATCHKEY_TEST_POSTGRES_URL` (an admin URL; a fresh database is made per scenario).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use latchkey_testkit::PostgresTestDb;
use serde_json::{Value, json};

mod common;

const APP: &str = "bench-engines";
const SECRET: &str = "bench-engines-signing-secret-0123456789abcdef";
const CLIENTS: usize = 16;
const SECONDS: f64 = 2.0;

/// Requests per second of `CLIENTS` concurrent clients for `SECONDS`, spread over
/// `urls` round robin; `make` builds one request from a base URL.
async fn throughput<F>(http: &reqwest::Client, urls: &[String], make: F) -> f64
where
    F: Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(SECONDS);
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let (http, make, done) = (http.clone(), make.clone(), done.clone());
        let url = urls[i % urls.len()].clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if let Ok(resp) = make(&http, &url).send().await
                    && resp.status().is_success()
                    && resp.bytes().await.is_ok()
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn login_url(base: &str, provider: &str) -> String {
    format!("{base}/api/client/v2.0/app/{APP}/auth/providers/{provider}/login")
}

/// One scenario: `nodes` processes on `database`; returns route -> requests/s.
async fn scenario(
    bin: &Path,
    database: &str,
    nodes: usize,
) -> anyhow::Result<HashMap<&'static str, f64>> {
    let dir = tempfile::tempdir()?;
    let path = common::write_config(dir.path(), APP, SECRET, database)?;
    let mut running = Vec::new();
    for _ in 0..nodes {
        running.push(common::start_node(bin, &path, "warn")?);
    }
    let urls: Vec<String> = running.iter().map(|n| n.url.clone()).collect();
    let http = reqwest::Client::new();
    let register = format!(
        "{}/api/client/v2.0/app/{APP}/auth/providers/local-userpass/register",
        urls[0]
    );
    http.post(&register)
        .json(&json!({"email": "bench@example.com", "password": "p4ssw0rd!"}))
        .send()
        .await?;
    let login: Value = http
        .post(login_url(&urls[0], "anon-user"))
        .json(&json!({}))
        .send()
        .await?
        .json()
        .await?;
    let refresh = login["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let mut out = HashMap::new();
    out.insert(
        "anonymous login",
        throughput(&http, &urls, |http, base| {
            http.post(login_url(base, "anon-user")).json(&json!({}))
        })
        .await,
    );
    out.insert(
        "password login",
        throughput(&http, &urls, |http, base| {
            http.post(login_url(base, "local-userpass"))
                .json(&json!({"username": "bench@example.com", "password": "p4ssw0rd!"}))
        })
        .await,
    );
    out.insert(
        "refresh",
        throughput(&http, &urls, move |http, base| {
            http.post(format!("{base}/api/client/v2.0/auth/session"))
                .bearer_auth(&refresh)
        })
        .await,
    );
    drop(running);
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bin = std::env::var("LATCHKEY_SERVER_BIN")
        .map_err(|_| anyhow::anyhow!("LATCHKEY_SERVER_BIN is not set"))?;
    let bin = Path::new(&bin);
    println!(
        "\nstorage engines: {CLIENTS} concurrent clients for {SECONDS} s per route, \
         release binary, loopback; ratio = requests/s against SQLite (1 node)"
    );
    let sqlite_dir = tempfile::tempdir()?;
    let sqlite_url = format!("sqlite://{}", sqlite_dir.path().join("bench.db").display());
    let mut columns = vec![("SQLite file, 1 node", scenario(bin, &sqlite_url, 1).await?)];
    if std::env::var_os("LATCHKEY_TEST_POSTGRES_URL").is_some() {
        for nodes in [1, 2] {
            let Some(db) = PostgresTestDb::create().await else {
                break;
            };
            let label = if nodes == 1 {
                "PostgreSQL, 1 node"
            } else {
                "PostgreSQL, 2 nodes"
            };
            columns.push((label, scenario(bin, db.url(), nodes).await?));
        }
    } else {
        println!("  (LATCHKEY_TEST_POSTGRES_URL is unset: SQLite only)");
    }
    let base = &columns[0].1;
    for route in ["anonymous login", "password login", "refresh"] {
        print!("  {route:<16}");
        for (label, figures) in &columns {
            let rate = figures[route];
            print!(
                "  {label}: {rate:>7.0}/s ({:.2}x)",
                rate / base[route].max(f64::MIN_POSITIVE)
            );
        }
        println!();
    }
    println!(
        "  (two nodes on one 2-core machine share the cores with the database and the \
         load generator: node scaling cannot show here)"
    );
    Ok(())
}
