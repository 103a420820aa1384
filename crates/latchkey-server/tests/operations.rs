//! docs/operations.md, run: its nginx configuration in front of a real server with a
//! real nginx on loopback, a backup of a live SQLite database restored into a new
//! server, the upgrade steps on a database of an earlier release, and the systemd unit
//! (verified by `systemd-analyze`, its commands run as systemd would run them).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use latchkey_server::{Config, Server};
use serde_json::{Value, json};

const PREFIX: &str = "/api/client/v2.0";
const OPERATIONS_MD: &str = include_str!("../../../docs/operations.md");

/// The first ```` ```lang ```` block of docs/operations.md.
fn block(lang: &str) -> String {
    let start = OPERATIONS_MD
        .find(&format!("```{lang}\n"))
        .unwrap_or_else(|| panic!("no {lang} block in docs/operations.md"))
        + lang.len()
        + 4;
    let len = OPERATIONS_MD[start..].find("```").unwrap();
    OPERATIONS_MD[start..start + len].to_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills nginx when the test ends, however it ends.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_configuration_of_operations_md_proxies_with_tls_and_strips_the_prefix() {
    if !have("nginx") || !have("openssl") {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "nginx and openssl are required in CI (.ci/run installs nginx-light)"
        );
        eprintln!(
            "\n!!!!! SKIPPED: nginx or openssl is not installed; docs/operations.md's nginx \
             configuration was NOT tested (apt-get install nginx-light) !!!!!\n"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // The server, configured as the page says.
    let mut config: Config = Config::dev();
    config.public_url = Some("https://auth.example.org/latchkey".into());
    config.trust_forwarded_for = true;
    let server = Server::start(config).await.unwrap();

    // A throwaway certificate for auth.example.org.
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=auth.example.org"])
        .arg("-keyout")
        .arg(d.join("privkey.pem"))
        .arg("-out")
        .arg(d.join("fullchain.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());

    // The page's configuration, with this run's ports and files.
    let port = free_port();
    let path = |name: &str| d.join(name).display().to_string();
    let conf = block("nginx")
        .replace("127.0.0.1:8080", &server.local_addr().to_string())
        .replace("127.0.0.1:8443", &format!("127.0.0.1:{port}"))
        .replace("/etc/latchkey/tls/fullchain.pem", &path("fullchain.pem"))
        .replace("/etc/latchkey/tls/privkey.pem", &path("privkey.pem"))
        .replacen(
            "http {",
            &format!(
                "http {{\n    access_log off;\n    client_body_temp_path {};\n    proxy_temp_path {};\n",
                path("body"),
                path("proxy")
            ),
            1,
        );
    assert!(conf.contains(&format!("127.0.0.1:{port} ssl")), "{conf}");
    std::fs::write(d.join("nginx.conf"), &conf).unwrap();
    let nginx = Nginx(
        Command::new("nginx")
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .arg("-g")
            .arg(format!(
                "daemon off; pid {}; error_log {} warn;",
                path("nginx.pid"),
                path("error.log")
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, &d.join("error.log"));

    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .resolve(
            "auth.example.org",
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )
        .build()
        .unwrap();
    let base = format!("https://auth.example.org:{port}/latchkey{PREFIX}");

    // The location route through the proxy names public_url.
    let location: Value = client
        .get(format!("{base}/app/latchkey-dev/location"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(location["hostname"], "https://auth.example.org/latchkey");

    // A login through the proxy (the prefix stripped on the way).
    let login = client
        .post(format!(
            "{base}/app/latchkey-dev/auth/providers/anon-user/login"
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let tokens: Value = login.json().await.unwrap();
    assert!(
        tokens["access_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );

    // Outside the client API (the admin API included) the proxy answers 404 itself.
    let admin = client
        .get(format!(
            "https://auth.example.org:{port}/admin/v1/apps/latchkey-dev/users"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 404);
    assert!(
        !admin.headers().contains_key("content-type") || {
            let ct = admin.headers()["content-type"].to_str().unwrap();
            ct != "application/json"
        }
    );

    drop(nginx);
    server.shutdown().await;
}

/// Waits until something accepts connections on `port` (or fails with `error_log`).
fn wait_for_port(port: u16, error_log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            panic!(
                "nothing listens on port {port}: {}",
                std::fs::read_to_string(error_log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn online_backup_restores_users_and_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("latchkey.db");
    let backup = dir.path().join("backup.db");
    let mut config = Config::dev();
    config.database = format!("sqlite://{}", live.display()).into();
    let server = Server::start(config.clone()).await.unwrap();
    let client = reqwest::Client::new();
    let app = format!("{}{PREFIX}/app/latchkey-dev", server.url());
    let creds = json!({ "email": "ada@example.com", "password": "correct horse" });
    let registered = client
        .post(format!("{app}/auth/providers/local-userpass/register"))
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert!(registered.status().is_success(), "{}", registered.status());
    let login = |base: String| {
        let client = client.clone();
        async move {
            client
                .post(format!("{base}/auth/providers/local-userpass/login"))
                .json(&json!({ "username": "ada@example.com", "password": "correct horse" }))
                .send()
                .await
                .unwrap()
        }
    };
    let before: Value = login(app.clone()).await.json().await.unwrap();
    let refresh = before["refresh_token"].as_str().unwrap().to_owned();

    // The page's online backup, taken while the server runs.
    let sql = format!("VACUUM INTO '{}'", backup.display());
    let status = Command::new("sqlite3").arg(&live).arg(&sql).status();
    if !status.is_ok_and(|s| s.success()) {
        // Without the sqlite3 tool: the same statement from a SQLite client.
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", live.display()))
            .await
            .unwrap();
        sqlx::query(&sql).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }
    server.shutdown().await;

    // Restore: a server on the copy knows the user and the session of the backup.
    let mut restored = config;
    restored.database = format!("sqlite://{}", backup.display()).into();
    let server = Server::start(restored).await.unwrap();
    let app = format!("{}{PREFIX}/app/latchkey-dev", server.url());
    let after = login(app).await;
    assert_eq!(after.status(), 200);
    let after: Value = after.json().await.unwrap();
    assert_eq!(after["user_id"], before["user_id"]);
    let session = client
        .post(format!("{}{PREFIX}/auth/session", server.url()))
        .bearer_auth(&refresh)
        .send()
        .await
        .unwrap();
    assert!(session.status().is_success(), "{}", session.status());
    server.shutdown().await;
}

/// A relative `sqlite://` path is resolved against the working directory of the
/// server process, not against the configuration file (docs/server.md, operations.md).
#[test]
fn relative_sqlite_path_is_resolved_against_the_working_directory() {
    let etc = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut config = Config::dev();
    config.database = "sqlite://state/latchkey.db".into();
    let file = etc.path().join("latchkey.toml");
    std::fs::write(&file, toml::to_string(&config).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey-server"))
        .arg("migrate")
        .arg("--config")
        .arg(&file)
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(work.path().join("state/latchkey.db").is_file());
    assert!(!etc.path().join("state").exists());
}

/// The `key=value` lines of a unit's `[Service]` section, in order.
fn service_entries(unit: &str) -> Vec<(String, String)> {
    let mut in_service = false;
    let mut entries = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if in_service && !line.starts_with('#') && !line.is_empty() {
            let (key, value) = line.split_once('=').expect("key=value");
            entries.push((key.to_owned(), value.to_owned()));
        }
    }
    entries
}

/// docs/operations.md's systemd unit, as systemd would run it: `systemd-analyze verify`
/// accepts it (when the tool is there), and its `ExecStartPre`, `ExecStart`,
/// `ExecReload`, `Environment`, `WorkingDirectory`, `KillSignal` and `TimeoutStopSec` do
/// what the page says with the real binary: migrate, serve, reload on SIGHUP, stop cleanly
/// on SIGTERM in time.
#[test]
fn systemd_unit_of_operations_md_migrates_serves_and_stops_on_sigterm() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("var/lib/latchkey");
    std::fs::create_dir_all(&state).unwrap();
    let config_file = root.path().join("latchkey.toml");
    let port = free_port();
    let mut config = Config::dev();
    config.listen = format!("127.0.0.1:{port}").parse().unwrap();
    config.database = format!("sqlite://{}/latchkey.db", state.display()).into();
    std::fs::write(&config_file, toml::to_string(&config).unwrap()).unwrap();
    let bin = env!("CARGO_BIN_EXE_latchkey-server");
    let unit = block("ini")
        .replace("/usr/local/bin/latchkey-server", bin)
        .replace(
            "/etc/latchkey/latchkey.toml",
            &config_file.display().to_string(),
        )
        .replace("/var/lib/latchkey", &state.display().to_string());

    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        let path = root.path().join("latchkey.service");
        std::fs::write(&path, &unit).unwrap();
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "systemd-analyze verify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze is missing: CI must verify the unit"
        );
        eprintln!("systemd-analyze not found: the unit's commands run unverified");
    }

    let entries = service_entries(&unit);
    let get = |key: &str| -> Vec<String> {
        entries
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let command = |line: &str| {
        let mut words = line.split_whitespace();
        let mut cmd = Command::new(words.next().unwrap());
        cmd.args(words).current_dir(&get("WorkingDirectory")[0]);
        for env in get("Environment") {
            let (k, v) = env.split_once('=').unwrap();
            cmd.env(k, v);
        }
        cmd
    };

    // ExecStartPre: migrate, then exit 0.
    let pre = get("ExecStartPre");
    assert_eq!(pre.len(), 1);
    let out = command(&pre[0]).output().unwrap();
    assert!(
        out.status.success(),
        "ExecStartPre: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(state.join("latchkey.db").is_file());

    // ExecStart: serves.
    let start = get("ExecStart");
    assert_eq!(start.len(), 1);
    let mut child = command(&start[0])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let log = root.path().join("none.log");
    wait_for_port(port, &log);
    let answer = http_get(port, &format!("{PREFIX}/app/latchkey-dev/location"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // ExecReload (`systemctl reload`): SIGHUP re-reads the keys; the server goes on.
    let reload = get("ExecReload");
    assert_eq!(reload.len(), 1);
    let reload = reload[0].replace("$MAINPID", &child.id().to_string());
    assert!(command(&reload).status().unwrap().success());
    let answer = http_get(port, &format!("{PREFIX}/app/latchkey-dev/location"));
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "after ExecReload: {answer}"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP stopped the server"
    );

    // KillSignal within TimeoutStopSec: a clean exit, as `systemctl stop` expects.
    assert_eq!(get("KillSignal"), ["SIGTERM"]);
    let timeout: u64 = get("TimeoutStopSec")[0].parse().unwrap();
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running after TimeoutStopSec"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit after SIGTERM: {status}");
}

/// One `GET` over a plain TCP connection; the whole answer as text.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// docs/operations.md's "Upgrading": a database an earlier release left (the schema
/// before the newest migration, with a user in it) is brought up to date by
/// `latchkey-server migrate --config`, a second `migrate` changes nothing, and `serve`
/// on it still knows the user and its custom data.
#[tokio::test(flavor = "multi_thread")]
async fn upgrading_migrates_an_earlier_database_and_keeps_its_users() {
    use sqlx::Connection;
    use sqlx::migrate::Migrator;
    let page = &OPERATIONS_MD[OPERATIONS_MD.find("## Upgrading").unwrap()..];
    assert!(page.contains("latchkey-server migrate --config"));

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("latchkey.db");
    let url = format!("sqlite://{}", db.display());
    // The earlier release: every migration but the last one.
    let current = sqlx::migrate!("../latchkey-store/migrations/sqlite");
    let mut earlier: Migrator = sqlx::migrate!("../latchkey-store/migrations/sqlite");
    assert!(current.migrations.len() >= 2);
    let newest = current.migrations.last().unwrap().version;
    earlier.migrations = current.migrations[..current.migrations.len() - 1]
        .to_vec()
        .into();
    let options = url
        .parse::<sqlx::sqlite::SqliteConnectOptions>()
        .unwrap()
        .create_if_missing(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    earlier.run(&mut conn).await.unwrap();
    for statement in [
        "INSERT INTO users (app_id, id, created_at, disabled, custom_data)
         VALUES ('latchkey-dev', '65f1a2b3c4d5e6f708192a3b', 1, 0, '{\"plan\":\"pro\"}')",
        "INSERT INTO identities (app_id, provider_type, id, user_id, data, created_at)
         VALUES ('latchkey-dev', 'anon-user', 'i1', '65f1a2b3c4d5e6f708192a3b', '{}', 1)",
    ] {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();

    let port = free_port();
    let mut config = Config::dev();
    config.listen = format!("127.0.0.1:{port}").parse().unwrap();
    config.database = url.clone().into();
    let admin = config.admin_token.clone().unwrap();
    let file = dir.path().join("latchkey.toml");
    std::fs::write(&file, toml::to_string(&config).unwrap()).unwrap();
    let bin = env!("CARGO_BIN_EXE_latchkey-server");
    let applied = || async {
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        conn.close().await.unwrap();
        versions
    };
    assert!(!applied().await.contains(&newest));
    for _ in 0..2 {
        let out = Command::new(bin)
            .args(["migrate", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let versions = applied().await;
        assert_eq!(versions.len(), current.migrations.len());
        assert_eq!(versions.last(), Some(&newest));
    }

    let server = Server::start(config).await.unwrap();
    let user: Value = reqwest::Client::new()
        .get(format!(
            "{}/admin/v1/apps/latchkey-dev/users/65f1a2b3c4d5e6f708192a3b",
            server.url()
        ))
        .bearer_auth(admin.expose())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(user["custom_data"]["plan"], "pro", "{user}");
    server.shutdown().await;
}
