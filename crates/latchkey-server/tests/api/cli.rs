//! The `init` and `admin` commands.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use latchkey_server::Config;
use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_latchkey-server"))
}

#[tokio::test]
async fn init_output_loads_and_serves_and_admin_ops_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latchkey.toml");
    let out = bin().args(["init", "--out"]).arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Refuses to overwrite.
    assert!(
        !bin()
            .args(["init", "--out"])
            .arg(&path)
            .output()
            .unwrap()
            .status
            .success()
    );
    // Fresh secrets each time.
    let a = String::from_utf8(bin().arg("init").output().unwrap().stdout).unwrap();
    let b = String::from_utf8(bin().arg("init").output().unwrap().stdout).unwrap();
    assert_ne!(a, b);

    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace(
            "sqlite://latchkey.db",
            &format!("sqlite://{}", dir.path().join("db.sqlite").display()),
        );
    std::fs::write(&path, &text).unwrap();
    let config = Config::load(&path).unwrap();
    assert!(config.admin_token.is_some());
    assert_eq!(config.apps[0].providers.custom_token.signing_keys.len(), 1);
    // Access tokens are signed with a fresh ES256 key (issue 14).
    let keys = &config.apps[0].signing_keys;
    assert_eq!(keys.len(), 1);
    assert!(keys[0].active);
    assert_eq!(
        keys[0].algorithm,
        latchkey_server::config::TokenAlgorithm::ES256
    );

    // serve starts with it.
    let mut child = bin()
        .args(["serve", "--config"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    let login = reqwest::Client::new()
        .post(format!(
            "{url}/api/client/v2.0/app/myapp/auth/providers/anon-user/login"
        ))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let login = login.json::<Value>().await.unwrap();
    let user_id = login["user_id"].as_str().unwrap().to_owned();
    let header = login["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .to_owned();
    let header: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], keys[0].kid.as_str());
    let _ = child.kill();
    let _ = child.wait();

    let admin = |args: &[&str]| -> Value {
        let out = bin()
            .args(["admin", "--config"])
            .arg(&path)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let users = admin(&["list-users"]);
    assert_eq!(users[0]["id"], user_id.as_str());
    assert_eq!(admin(&["get-user", &user_id])["id"], user_id.as_str());
    let v = admin(&["set-custom-data", &user_id, r#"{"plan":"pro"}"#]);
    assert_eq!(v["custom_data"]["plan"], "pro");
    assert_eq!(admin(&["disable-user", &user_id])["disabled"], true);
    assert_eq!(admin(&["enable-user", &user_id])["disabled"], false);
    assert_eq!(admin(&["revoke-sessions", &user_id])["revoked_sessions"], 0);
    assert_eq!(admin(&["outbox"]), Value::Array(vec![]));
    assert_eq!(admin(&["delete-user", &user_id])["deleted"], true);
    assert_eq!(admin(&["list-users"]), Value::Array(vec![]));
    let key = admin(&["create-server-key", "ci"]);
    assert_eq!(key["name"], "ci");
    assert!(key["key"].is_string() && key["_id"].is_string());
    let id = key["_id"].as_str().unwrap().to_owned();
    let listed = admin(&["list-server-keys"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["_id"], id.as_str());
    assert!(listed[0].get("key").is_none(), "no secret: {listed}");
    assert_eq!(admin(&["disable-server-key", &id])["disabled"], true);
    assert_eq!(admin(&["enable-server-key", &id])["disabled"], false);
    assert_eq!(admin(&["delete-server-key", &id])["deleted"], true);
    assert_eq!(admin(&["list-server-keys"]), Value::Array(vec![]));
    // `--app` picks the app; an unknown one fails.
    let out = bin()
        .args(["admin", "--config"])
        .arg(&path)
        .args(["--app", "nope", "list-users"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    // A failing op exits non-zero.
    let out = bin()
        .args(["admin", "--config"])
        .arg(&path)
        .args(["get-user", "000000000000000000000000"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// `keys generate` writes a private key file and prints its entry; `keys rotate`
/// rewrites a configuration in place, comments kept.
#[test]
fn keys_generate_and_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("k.pem");
    let out = succeeds(
        bin()
            .args([
                "keys",
                "generate",
                "--algorithm",
                "EdDSA",
                "--kid",
                "k1",
                "--out",
            ])
            .arg(&pem),
    );
    let entry = String::from_utf8(out.stdout).unwrap();
    assert!(
        entry.contains("[[apps.signing_keys]]") && entry.contains("kid = \"k1\""),
        "{entry}"
    );
    assert!(
        entry.contains("private_key_file") && !entry.contains("PRIVATE KEY"),
        "{entry}"
    );
    assert_owner_only(&pem);
    // Inline, the key is printed (a fresh one each time).
    let inline = bin().args(["keys", "generate"]).output().unwrap();
    assert!(String::from_utf8_lossy(&inline.stdout).contains("BEGIN PRIVATE KEY"));
    let bad = bin()
        .args(["keys", "generate", "--algorithm", "HS512"])
        .output()
        .unwrap();
    assert!(!bad.status.success());

    let config = dir.path().join("latchkey.toml");
    assert!(
        bin()
            .args(["init", "--out"])
            .arg(&config)
            .status()
            .unwrap()
            .success()
    );
    let before = Config::load(&config).unwrap();
    succeeds(bin().args(["keys", "rotate", "--config"]).arg(&config));
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("generated by `latchkey-server init`"));
    let after = Config::load(&config).unwrap();
    let keys = &after.apps[0].signing_keys;
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].kid, before.apps[0].signing_keys[0].kid);
    assert!(!keys[0].active && keys[0].verify_until.is_some());
    assert!(keys[1].active);
    assert_owner_only(&config);
}

/// Run `cmd`, which must succeed (its stderr otherwise).
fn succeeds(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// On Unix, `path` is readable by its owner only.
fn assert_owner_only(path: &std::path::Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
}
