//! Signing keys of a running server: the admin routes that list, rotate and reload
//! them, and SIGHUP, on a server started from a real configuration file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use latchkey_server::Config;
use latchkey_server::config::{SigningKeyConfig, TokenAlgorithm};
use latchkey_server::keys::{ROTATION_MARGIN_SECS, new_signing_key};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;
use crate::userpass_flows::ADMIN;

fn es256(kid: &str, active: bool) -> SigningKeyConfig {
    new_signing_key(kid, TokenAlgorithm::ES256, active).unwrap()
}

/// A configuration with one active ES256 key "first", the admin token and a 600 s
/// access-token lifetime.
fn keyed_config() -> Config {
    let mut c = config();
    c.admin_token = Some(ADMIN.into());
    c.apps[0].access_token_ttl_secs = 600;
    c.apps[0].signing_keys = vec![es256("first", true)];
    c
}

/// Write `c` to `path`, readable by its owner only.
fn write_file(path: &Path, c: &Config) {
    write_text(path, &toml::to_string(c).unwrap());
}

fn write_text(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// A server started from a configuration file, as `serve --config FILE` does.
async fn start_from_file(c: &Config) -> (Harness, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latchkey.toml");
    write_file(&path, c);
    let loaded = Config::load(&path).unwrap();
    assert_eq!(loaded.source_file.as_deref(), Some(path.as_path()));
    (start_with(loaded).await, dir, path)
}

fn keys_url(h: &Harness) -> String {
    h.url(&format!("/admin/v1/apps/{APP}/keys"))
}

async fn keys(h: &Harness) -> Value {
    h.send(Method::GET, &keys_url(h), Some(ADMIN), None)
        .await
        .assert_ok_json()
}

/// The base64 lines of a PEM private key: none may appear in an answer.
fn pem_lines(key: &SigningKeyConfig) -> Vec<String> {
    key.private_key
        .as_ref()
        .unwrap()
        .expose()
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .map(str::to_owned)
        .collect()
}

fn assert_no_private_material(text: &str, key: &SigningKeyConfig) {
    for line in pem_lines(key) {
        assert!(!text.contains(&line), "private key bytes in {text}");
    }
    assert!(!text.contains("\"d\""), "a private JWK member in {text}");
}

fn kid(token: &str) -> String {
    segment(token, 0)["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn list_rotate_by_route_and_old_tokens_keep_working_until_they_expire() {
    let c = keyed_config();
    let first = c.apps[0].signing_keys[0].clone();
    let (h, _dir, path) = start_from_file(&c).await;

    // No admin token, a wrong one: 401; the list and the rotation alike.
    let rotate_url = h.url(&format!("/admin/v1/apps/{APP}/keys/rotate"));
    for url in [keys_url(&h), rotate_url.clone()] {
        let method = if url == rotate_url {
            Method::POST
        } else {
            Method::GET
        };
        h.send(method.clone(), &url, None, None)
            .await
            .assert_error(401, "MissingAuthReq");
        h.send(method, &url, Some("wrong-token-wrong-token"), None)
            .await
            .assert_error(401, "InvalidSession");
    }
    h.send(Method::POST, &h.url("/admin/v1/keys/reload"), None, None)
        .await
        .assert_error(401, "MissingAuthReq");
    // Unknown app.
    h.send(
        Method::GET,
        &h.url("/admin/v1/apps/nope/keys"),
        Some(ADMIN),
        None,
    )
    .await
    .assert_error(404, "InvalidParameter");

    let listed = h.send(Method::GET, &keys_url(&h), Some(ADMIN), None).await;
    assert_no_private_material(&listed.text, &first);
    let listed = listed.assert_ok_json();
    assert_eq!(listed["app"], APP);
    assert_eq!(listed["active_kid"], "first");
    assert_eq!(listed["active_algorithm"], "ES256");
    let k = &listed["keys"][0];
    assert_eq!(
        (&k["kid"], &k["algorithm"], &k["active"], &k["verifies"]),
        (&json!("first"), &json!("ES256"), &json!(true), &json!(true))
    );
    assert_eq!(k["verify_until"], Value::Null);
    assert_eq!(k["public_jwk"]["kty"], "EC");
    assert_eq!(k["public_jwk"]["kid"], "first");

    let before = h.anon().await;
    assert_eq!(kid(&before.access), "first");

    // Bad bodies change nothing.
    for body in [
        r#"{"algorithm": "none"}"#,
        r#"{"algorithm": 1}"#,
        r#"{"stage": "yes"}"#,
        r#"{"private_key": "x"}"#,
    ] {
        h.send(Method::POST, &rotate_url, Some(ADMIN), Some(body))
            .await
            .assert_error(400, "BadRequest");
    }
    assert_eq!(keys(&h).await["active_kid"], "first");

    // Rotate through the route, with no restart.
    let now = h.server.clock().now_secs();
    let rotated = h
        .send(
            Method::POST,
            &rotate_url,
            Some(ADMIN),
            Some(r#"{"algorithm": "EdDSA"}"#),
        )
        .await;
    assert_no_private_material(&rotated.text, &first);
    let rotated = rotated.assert_ok_json();
    let new_kid = rotated["active_kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, "first");
    assert_eq!(rotated["active_algorithm"], "EdDSA");
    assert_eq!(rotated["retired"][0]["kid"], "first");
    let until = rotated["retired"][0]["verify_until"].as_i64().unwrap();
    // now + access_token_ttl_secs + margin (the clock may tick once in between).
    assert!(
        (now + 600 + ROTATION_MARGIN_SECS..=now + 601 + ROTATION_MARGIN_SECS).contains(&until),
        "{until}"
    );
    // The file holds the rotation (kept for the next start, and for the other nodes).
    let on_disk = Config::load(&path).unwrap();
    let disk_keys = &on_disk.apps[0].signing_keys;
    assert_eq!(disk_keys.len(), 2);
    assert_eq!(disk_keys[0].verify_until, Some(until));
    assert!(disk_keys[1].active && disk_keys[1].kid == new_kid);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the file keeps its permissions");
    }

    // New tokens carry the new kid; the old token still works; so does its session.
    let after = h.anon().await;
    assert_eq!(kid(&after.access), new_kid);
    assert_eq!(segment(&after.access, 0)["alg"], "EdDSA");
    h.profile(&before.access).await.assert_ok_json();
    h.profile(&after.access).await.assert_ok_json();
    let refreshed = h.refresh(&before.refresh).await.assert_ok_json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(kid(&refreshed), new_kid);
    h.profile(&refreshed).await.assert_ok_json();
    let published: Vec<Value> = h
        .send(
            Method::GET,
            &h.app_url(APP, "/.well-known/jwks.json"),
            None,
            None,
        )
        .await
        .assert_ok_json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(published, vec![json!("first"), json!(new_kid.clone())]);

    // Once expired, the old token is refused; the session goes on.
    h.server.clock().advance(Duration::from_secs(601));
    h.profile(&before.access)
        .await
        .assert_error(401, "InvalidSession");
    let later = h.refresh(&before.refresh).await.assert_ok_json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    h.profile(&later).await.assert_ok_json();

    // A staged rotation adds a published key that does not sign yet.
    let staged = h
        .send(
            Method::POST,
            &rotate_url,
            Some(ADMIN),
            Some(r#"{"stage": true}"#),
        )
        .await
        .assert_ok_json();
    assert_eq!(staged["active_kid"], new_kid.as_str());
    assert_eq!(staged["staged"], true);
    let staged_key = staged["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["active"] == false && k["verify_until"].is_null())
        .expect("a staged key")
        .clone();
    assert_eq!(staged_key["algorithm"], "ES256");
    assert_eq!(kid(&h.anon().await.access), new_kid);
    // Rotating again activates it.
    let second = h
        .send(Method::POST, &rotate_url, Some(ADMIN), None)
        .await
        .assert_ok_json();
    assert_eq!(second["active_kid"], staged_key["kid"]);
    assert_eq!(
        kid(&h.anon().await.access),
        staged_key["kid"].as_str().unwrap()
    );
    h.profile(&later).await.assert_ok_json();
    h.server.shutdown().await;
}

#[tokio::test]
async fn reload_of_a_broken_file_changes_nothing_and_says_why() {
    let c = keyed_config();
    let first = c.apps[0].signing_keys[0].clone();
    let (h, _dir, path) = start_from_file(&c).await;
    let reload_url = h.url("/admin/v1/keys/reload");
    let before = h.anon().await;

    // A key that does not parse.
    let mut bad = c.clone();
    let mut broken = es256("broken", false);
    broken.private_key = Some(
        "-----BEGIN PRIVATE KEY-----\nQUFBQUFBQUFBQUFBQUFBQUFBQUFB\n-----END PRIVATE KEY-----"
            .into(),
    );
    bad.apps[0].signing_keys.push(broken);
    write_file(&path, &bad);
    let r = h.send(Method::POST, &reload_url, Some(ADMIN), None).await;
    let message = r.assert_error(400, "BadRequest");
    assert!(
        message.contains(APP) && message.contains("\"broken\""),
        "{message}"
    );
    assert!(message.contains("nothing was changed"), "{message}");
    assert!(!r.text.contains("QUFBQUFB"), "{}", r.text);
    assert_no_private_material(&r.text, &first);

    // Not TOML, on the line of a private key: toml's excerpt of the line is left out.
    let text = toml::to_string(&c).unwrap();
    let secret_line = pem_lines(&first)[0].clone();
    write_text(
        &path,
        &text.replacen(&secret_line, &format!("{secret_line}\"\"\" = ="), 1),
    );
    let r = h.send(Method::POST, &reload_url, Some(ADMIN), None).await;
    let message = r.assert_error(400, "BadRequest");
    assert!(message.contains("invalid config"), "{message}");
    assert_no_private_material(&r.text, &first);

    // Two active keys (the configuration check), and an app missing from the file.
    let mut two = c.clone();
    two.apps[0].signing_keys.push(es256("second", true));
    write_file(&path, &two);
    h.send(Method::POST, &reload_url, Some(ADMIN), None)
        .await
        .assert_error(400, "BadRequest");
    let mut other = c.clone();
    other.apps[0].id = "other-app".into();
    write_file(&path, &other);
    let message = h
        .send(Method::POST, &reload_url, Some(ADMIN), None)
        .await
        .assert_error(400, "BadRequest");
    assert!(
        message.contains(APP) && message.contains("restart"),
        "{message}"
    );

    // Nothing changed.
    let listed = keys(&h).await;
    assert_eq!(listed["active_kid"], "first");
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1);
    h.profile(&before.access).await.assert_ok_json();
    assert_eq!(kid(&h.anon().await.access), "first");

    // A good file: a new active key, the old one verifying for a while.
    let mut good = c.clone();
    good.apps[0].signing_keys[0].active = false;
    let until = h.server.clock().now_secs() + 1000;
    good.apps[0].signing_keys[0].verify_until = Some(until);
    good.apps[0].signing_keys.push(es256("second", true));
    write_file(&path, &good);
    let reloaded = h
        .send(Method::POST, &reload_url, Some(ADMIN), None)
        .await
        .assert_ok_json();
    assert_eq!(reloaded["apps"][0]["active_kid"], "second");
    assert!(reloaded["note"].as_str().unwrap().contains("restart"));
    assert_eq!(kid(&h.anon().await.access), "second");
    h.profile(&before.access).await.assert_ok_json();
    h.refresh(&before.refresh).await.assert_ok_json();
    assert_eq!(keys(&h).await["keys"][0]["verify_until"], until);
    h.server.shutdown().await;

    // A server not started from a file has nothing to reload.
    let mut c = keyed_config();
    c.source_file = None;
    let h = start_with(c).await;
    let message = h
        .send(
            Method::POST,
            &h.url("/admin/v1/keys/reload"),
            Some(ADMIN),
            None,
        )
        .await
        .assert_error(400, "BadRequest");
    assert!(message.contains("--config"), "{message}");
    h.server.shutdown().await;
}

/// `kill -HUP` to a real `latchkey-server serve` makes it re-read its keys: after
/// `keys rotate` on its file, new tokens carry the new kid; old ones still work.
#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_the_keys_of_a_serving_binary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latchkey.toml");
    let mut c = keyed_config();
    c.database = format!("sqlite://{}", dir.path().join("db.sqlite").display()).into();
    write_file(&path, &c);
    let bin = env!("CARGO_BIN_EXE_latchkey-server");
    let mut node = crate::nodes::Node::start(&path).await;
    let url = node.url.clone();
    let http = client();
    let login = |http: reqwest::Client, url: String| async move {
        let r = http
            .post(format!(
                "{url}{PREFIX}/app/{APP}/auth/providers/anon-user/login"
            ))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let active_kid = |http: reqwest::Client, url: String| async move {
        let r = http
            .get(format!("{url}/admin/v1/apps/{APP}/keys"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["active_kid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let before = login(http.clone(), url.clone()).await;
    assert_eq!(kid(&before), "first");

    // `keys rotate` edits the file; the server goes on with its loaded keys.
    let out = Command::new(bin)
        .args(["keys", "rotate", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_kid = Config::load(&path).unwrap().apps[0]
        .signing_keys
        .iter()
        .find(|k| k.active)
        .unwrap()
        .kid
        .clone();
    assert_ne!(new_kid, "first");
    assert_eq!(active_kid(http.clone(), url.clone()).await, "first");

    let hup = Command::new("kill")
        .args(["-HUP", &node.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    // The signal is handled asynchronously: wait for the swap (bounded).
    let mut seen = String::new();
    for _ in 0..200 {
        seen = active_kid(http.clone(), url.clone()).await;
        if seen == new_kid {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(seen, new_kid, "SIGHUP did not reload the keys");
    assert!(
        node.child.try_wait().unwrap().is_none(),
        "SIGHUP stopped the server"
    );
    assert_eq!(kid(&login(http.clone(), url.clone()).await), new_kid);
    let profile = http
        .get(format!("{url}{PREFIX}/auth/profile"))
        .bearer_auth(&before)
        .send()
        .await
        .unwrap();
    assert_eq!(profile.status(), 200, "a token minted before the rotation");
}
