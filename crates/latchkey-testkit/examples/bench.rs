//! `cargo xtask bench`: latency of the server's routes and of the SDK's hot path,
//! each reported as a ratio against a baseline measured in the same run.
//!
//! - Server routes (in-process server, one HTTP/1.1 client on loopback, sequential
//!   requests): baseline = `GET location` (routing + JSON, no crypto, no database).
//! - Concurrency: anonymous logins by 1 and by 16 concurrent clients; the ratio is
//!   throughput(16) / throughput(1).
//! - SDK: `valid_access_token()` on a fresh token; baseline = `access_token()`.
//! - Dev start: `latchkey-server dev` until it prints `listening on`; baseline =
//!   `latchkey-server --version` (process start alone). Needs the release binary,
//!   which `cargo xtask bench` builds first.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use latchkey::{App, Credentials};
use latchkey_protocol::routes::Routes;
use latchkey_testkit::TestServer;
use serde_json::json;

/// Send a request and read its whole body (every timed request does exactly this).
trait SendAndRead {
    async fn send_and_read(self);
}

impl SendAndRead for reqwest::RequestBuilder {
    async fn send_and_read(self) {
        self.send()
            .await
            .expect("request")
            .bytes()
            .await
            .expect("body");
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn time_n<F, Fut>(n: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        f().await;
        samples.push(start.elapsed());
    }
    median(samples)
}

fn row(name: &str, d: Duration, base: Duration) {
    println!(
        "  {name:<44} {:>10.2} µs   {:>7.2}x baseline",
        d.as_secs_f64() * 1e6,
        d.as_secs_f64() / base.as_secs_f64()
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = TestServer::start().await;
    let routes = Routes::new(server.url(), server.app_id());
    let http = reqwest::Client::new();
    const N: usize = 200;

    // Warm up connections and the database.
    for _ in 0..20 {
        http.get(routes.location()).send().await?.bytes().await?;
    }
    http.post(routes.email_password(latchkey_protocol::routes::EmailPasswordRoute::Register))
        .json(&json!({"email": "bench@example.com", "password": "p4ssw0rd!"}))
        .send()
        .await?;
    let login: serde_json::Value = http
        .post(routes.login("anon-user", false))
        .json(&json!({}))
        .send()
        .await?
        .json()
        .await?;
    let access = login["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let refresh = login["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    println!("server routes, median of {N} sequential requests on loopback:");
    let base = time_n(N, || async {
        http.get(routes.location()).send_and_read().await;
    })
    .await;
    row("GET location (baseline)", base, base);
    let profile = time_n(N, || async {
        http.get(routes.profile())
            .bearer_auth(&access)
            .send_and_read()
            .await;
    })
    .await;
    row("GET /auth/profile (verify JWT + session)", profile, base);
    let refreshed = time_n(N, || async {
        http.post(routes.session())
            .bearer_auth(&refresh)
            .send_and_read()
            .await;
    })
    .await;
    row("POST /auth/session (refresh)", refreshed, base);
    let anon = time_n(N, || async {
        http.post(routes.login("anon-user", false))
            .json(&json!({}))
            .send_and_read()
            .await;
    })
    .await;
    row("POST login anon-user (new user + session)", anon, base);
    let userpass = time_n(20, || async {
        http.post(routes.login("local-userpass", false))
            .json(&json!({"username": "bench@example.com", "password": "p4ssw0rd!"}))
            .send_and_read()
            .await;
    })
    .await;
    row(
        "POST login local-userpass (argon2id verify)",
        userpass,
        base,
    );

    println!("\nconcurrency, anonymous logins:");
    let mut rates = Vec::new();
    for clients in [1usize, 16] {
        let per_client = 400 / clients;
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let http = http.clone();
            let url = routes.login("anon-user", false);
            tasks.push(tokio::spawn(async move {
                for _ in 0..per_client {
                    http.post(&url).json(&json!({})).send_and_read().await;
                }
            }));
        }
        for t in tasks {
            t.await?;
        }
        let rate = (clients * per_client) as f64 / start.elapsed().as_secs_f64();
        println!("  {clients:>2} client(s): {rate:>8.0} logins/s");
        rates.push(rate);
    }
    println!("  ratio 16 clients / 1 client: {:.2}x", rates[1] / rates[0]);

    println!("\nSDK hot path, median of 10000 calls:");
    let app = App::builder(server.app_id())
        .base_url(server.url())
        .in_memory_store()
        .build()?;
    let user = app.log_in(Credentials::anonymous()).await?;
    let sdk_base = time_n(10_000, || async {
        std::hint::black_box(user.access_token());
    })
    .await;
    row("user.access_token() (baseline)", sdk_base, sdk_base);
    let valid = time_n(10_000, || async {
        std::hint::black_box(user.valid_access_token().await.unwrap());
    })
    .await;
    row("user.valid_access_token() (fresh token)", valid, sdk_base);
    server.shutdown().await;

    if let Ok(bin) = std::env::var("LATCHKEY_SERVER_BIN") {
        println!("\ndev server start from the release binary, median of 10 runs:");
        let mut version = Vec::new();
        let mut dev = Vec::new();
        for _ in 0..10 {
            let start = Instant::now();
            Command::new(&bin).arg("--version").output()?;
            version.push(start.elapsed());

            let start = Instant::now();
            let mut child = Command::new(&bin)
                .arg("dev")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()?;
            let out = child.stdout.take().expect("piped stdout");
            let mut line = String::new();
            BufReader::new(out).read_line(&mut line)?;
            dev.push(start.elapsed());
            anyhow::ensure!(line.starts_with("listening on"), "unexpected: {line}");
            child.kill()?;
            child.wait()?;
        }
        let base = median(version);
        row("latchkey-server --version (baseline)", base, base);
        row("latchkey-server dev until listening", median(dev), base);
    }
    Ok(())
}
