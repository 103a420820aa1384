//! The `latchkey-server` binary prints its listening line and serves.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use crate::common::*;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serve_prints_listening_line_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("latchkey.toml");
    let db = dir.path().join("db.sqlite");
    let mut f = std::fs::File::create(&config_path).unwrap();
    write!(
        f,
        "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite://{}\"\n\n[[apps]]\nid = \"bin-app\"\n\
         signing_secret = \"{SECRET}\"\n[apps.providers.anon-user]\nenabled = true\n",
        db.display()
    )
    .unwrap();
    drop(f);

    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_latchkey-server"))
            .args(["serve", "--config"])
            .arg(&config_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn server"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (line, _reader) = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        (line, reader)
    })
    .await
    .unwrap();
    let url = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(line.ends_with('\n'));

    let resp = client()
        .post(format!(
            "{url}{PREFIX}/app/bin-app/auth/providers/anon-user/login"
        ))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let v = Reply::from(resp).await.assert_ok_json();
    assert!(v["access_token"].is_string());
    assert!(db.exists());
    drop(child);
}

#[tokio::test]
async fn dev_prints_listening_line_and_app_id() {
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_latchkey-server"))
            .arg("dev")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn server"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (first, second) = tokio::task::spawn_blocking(move || {
        let mut r = BufReader::new(stdout);
        let (mut a, mut b) = (String::new(), String::new());
        r.read_line(&mut a).unwrap();
        r.read_line(&mut b).unwrap();
        (a, b)
    })
    .await
    .unwrap();
    let url = first
        .trim_end()
        .strip_prefix("listening on ")
        .expect("listening line")
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(second.trim_end(), "app id: latchkey-dev");
    let resp = client()
        .get(format!("{url}{PREFIX}/app/latchkey-dev/location"))
        .send()
        .await
        .unwrap();
    Reply::from(resp).await.assert_ok_json();
}

#[test]
fn bad_config_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("bad.toml");
    std::fs::write(
        &config_path,
        "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite::memory:\"\n[[apps]]\nid = \"a\"\nsigning_secret = \"short\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_latchkey-server"))
        .args(["serve", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("signing_secret must be at least 32 bytes"),
        "{err}"
    );
}

/// `latchkey-server dev` with `env` added to its environment, its stdout's first line read (the
/// URL); stderr is piped and left to the caller.
async fn dev_with_env(env: &[(&str, &str)]) -> (Killed, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey-server"));
    cmd.arg("dev").stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = Killed(cmd.spawn().expect("spawn server"));
    let stdout = child.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let url = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, url)
}

/// With `LATCHKEY_LOG_FORMAT=json` and the access log at debug, every answer is one JSON
/// line whose span names the route template, and the app and user once known: from
/// the bearer token, or, for a login, the user who logged in. No token is in the logs.
#[tokio::test]
async fn json_access_log_names_the_route_app_and_user_and_never_a_token() {
    let (mut child, url) = dev_with_env(&[
        ("LATCHKEY_LOG_FORMAT", "json"),
        ("RUST_LOG", "info,latchkey_server::http::access=debug"),
    ])
    .await;
    let login = client()
        .post(format!(
            "{url}{PREFIX}/app/latchkey-dev/auth/providers/anon-user/login"
        ))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    let t = Tokens::from(&Reply::from(login).await.assert_ok_json());
    let profile = client()
        .get(format!("{url}{PREFIX}/auth/profile"))
        .bearer_auth(&t.access)
        .send()
        .await
        .unwrap();
    Reply::from(profile).await.assert_ok_json();

    // Read stderr until both answers are logged (the writer thread is asynchronous).
    let stderr = child.0.stderr.take().unwrap();
    let (lines, tail) = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stderr);
        let mut answered = Vec::new();
        let mut all = String::new();
        let mut line = String::new();
        while answered.len() < 2 && reader.read_line(&mut line).unwrap_or(0) > 0 {
            all.push_str(&line);
            let v: serde_json::Value = serde_json::from_str(line.trim_end())
                .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line:?}"));
            if v["message"] == "answered" {
                answered.push(v);
            }
            line.clear();
        }
        (answered, all)
    })
    .await
    .unwrap();
    drop(child);
    assert_eq!(lines.len(), 2, "{tail}");
    let (login, profile) = (&lines[0], &lines[1]);
    assert_eq!(login["status"], 200, "{login}");
    assert_eq!(
        login["span"]["route"],
        "/api/client/v2.0/app/{app_id}/auth/providers/{provider}/login"
    );
    assert_eq!(login["span"]["app"], "latchkey-dev", "{login}");
    assert_eq!(login["span"]["user"], t.user_id.as_str(), "{login}");
    assert_eq!(profile["span"]["route"], "/api/client/v2.0/auth/profile");
    assert_eq!(profile["span"]["user"], t.user_id.as_str(), "{profile}");
    assert!(profile["latency_us"].is_u64(), "{profile}");
    for token in [&t.access, &t.refresh] {
        assert!(!tail.contains(token.as_str()), "a token reached the log");
    }
}

/// A stderr nobody reads never stalls the server: with every line at TRACE and the
/// pipe full long before the end, the requests are all answered (the log writer drops
/// lines rather than making a request wait).
#[tokio::test]
async fn a_stalled_stderr_never_stalls_requests() {
    let (child, url) = dev_with_env(&[("RUST_LOG", "trace")]).await;
    let http = client();
    let location = format!("{url}{PREFIX}/app/latchkey-dev/location");
    let login = format!("{url}{PREFIX}/app/latchkey-dev/auth/providers/anon-user/login");
    // Far more than a 64 KiB pipe holds: each request logs several TRACE lines.
    let work = async {
        for _ in 0..100 {
            let mut batch = tokio::task::JoinSet::new();
            for _ in 0..20 {
                batch.spawn(http.get(&location).send());
            }
            while let Some(r) = batch.join_next().await {
                assert_eq!(r.unwrap().unwrap().status(), 200);
            }
            let r = http.post(&login).json(&serde_json::json!({})).send().await;
            assert_eq!(r.unwrap().status(), 200);
        }
    };
    // Generous: a blocked writer would hang here forever, not be a little slower.
    tokio::time::timeout(std::time::Duration::from_secs(120), work)
        .await
        .expect("requests stalled behind a stderr nobody reads");
    drop(child);
}
