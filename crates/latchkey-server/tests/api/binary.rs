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
