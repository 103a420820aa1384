//! The SDK's default user store under real conditions: several processes logging in at
//! once against one directory, `kill -9` in the middle of writes, a directory that cannot
//! be written, a corrupt store, a directory other users can write, and today's JSON files.
//!
//! The processes are this test binary run again: the `child` test does the child's work
//! when `LATCHKEY_STORE_CHILD` says which, and nothing otherwise.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use latchkey::events::UserEvent;
use latchkey::transport::{
    HttpRequest, HttpResponse, HttpTransport, RequestOptions, TransportError, TransportErrorKind,
    transport_fn,
};
use latchkey::{App, Credentials, ErrorKind, UserState};
use latchkey_testkit::TestServer;
use serde_json::{Value, json};

const CHILD: &str = "LATCHKEY_STORE_CHILD";
const APP: &str = "store-test";
/// What a child prints before the id of each user whose login returned `Ok`.
const LOGGED_IN: &str = "latchkey-store-test logged in: ";

// ---------------------------------------------------------------- the child processes

/// The child's side: `login-server` logs in `LATCHKEY_LOGINS` new anonymous users against
/// `LATCHKEY_URL`; `login-fake` logs in new users against an in-process fake server until
/// it is killed. Each login that returned `Ok` is printed (see [`LOGGED_IN`]).
#[test]
fn child() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let builder = App::builder(var("LATCHKEY_APP")).storage_dir(var("LATCHKEY_DIR"));
        let (app, logins) = match mode.as_str() {
            "login-server" => (
                builder.base_url(var("LATCHKEY_URL")).build().unwrap(),
                var("LATCHKEY_LOGINS").parse().unwrap(),
            ),
            "login-fake" => (
                builder
                    .base_url("http://fake.test")
                    .transport(fake_server())
                    .build()
                    .unwrap(),
                usize::MAX,
            ),
            other => panic!("unknown child mode {other}"),
        };
        for _ in 0..logins {
            let user = app.log_in(Credentials::anonymous_no_reuse()).await.unwrap();
            println!("{LOGGED_IN}{}", user.id());
        }
    });
}

/// Run this binary as a child doing `mode`.
fn spawn_child(mode: &str, dir: &Path, env: &[(&str, String)]) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, mode)
        .env("LATCHKEY_APP", APP)
        .env("LATCHKEY_DIR", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// The user ids a child printed, sent one by one as they come.
fn logins_of(
    child: &mut std::process::Child,
) -> (mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            // libtest may print `test child ... ` on the same line first.
            if let Some(at) = line.find(LOGGED_IN) {
                let _ = tx.send(line[at + LOGGED_IN.len()..].trim().to_owned());
            }
        }
    });
    (rx, reader)
}

fn jwt(claims: Value) -> String {
    let e = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.sig", e(json!({"alg": "HS256"})), e(claims))
}

/// A fake server: every anonymous login makes a new user (a random id per process).
fn fake_server() -> impl HttpTransport + 'static {
    let prefix = format!("{:08x}", std::process::id());
    let counter = Arc::new(Mutex::new(0u64));
    transport_fn(move |req: HttpRequest, _o: RequestOptions| {
        let path = req.uri().path().to_owned();
        let id = {
            let mut n = counter.lock().unwrap();
            *n += 1;
            format!("{prefix}{:016x}", *n)
        };
        async move {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let (status, body) = if path.ends_with("/location") {
                (200, json!({"hostname": "http://fake.test"}))
            } else if path.ends_with("/login") {
                let claims = json!({"sub": id, "iat": now, "exp": now + 1800});
                (
                    200,
                    json!({"access_token": jwt(claims.clone()), "refresh_token": jwt(claims),
                           "user_id": id, "device_id": "65f0c0ffee0000000000abcd"}),
                )
            } else if path.ends_with("/profile") {
                (
                    200,
                    json!({"identities": [{"id": "anon", "provider_type": "anon-user"}],
                           "data": {}, "type": "normal"}),
                )
            } else {
                (204, Value::Null)
            };
            let mut b = http::Response::builder().status(status);
            let body = if body.is_null() {
                bytes::Bytes::new()
            } else {
                b = b.header("content-type", "application/json");
                bytes::Bytes::from(body.to_string())
            };
            Ok::<HttpResponse, TransportError>(b.body(body).unwrap())
        }
    })
}

fn offline() -> impl HttpTransport + 'static {
    transport_fn(|_req, _opts| async {
        Err(TransportError::new(TransportErrorKind::Connect, "offline"))
    })
}

/// The app on `dir` with no network, as a restarted program finds it.
fn reopen(dir: &Path) -> App {
    App::builder(APP)
        .base_url("http://127.0.0.1:9")
        .storage_dir(dir)
        .transport(offline())
        .build()
        .unwrap_or_else(|e| panic!("the store does not open: {e:?}"))
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

// ---------------------------------------------------------------- several processes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_processes_log_in_at_once_and_every_user_persists() {
    const PROCESSES: usize = 4;
    const LOGINS: usize = 25;
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("LATCHKEY_URL", server.url()),
        ("LATCHKEY_LOGINS", LOGINS.to_string()),
    ];
    // The server's app id, not APP: the children log in for real.
    let env_app = ("LATCHKEY_APP", server.app_id().to_owned());
    let handles: Vec<_> = (0..PROCESSES)
        .map(|_| {
            let dir = dir.path().to_owned();
            let env = env.clone();
            let env_app = env_app.clone();
            tokio::task::spawn_blocking(move || {
                let mut all = env.to_vec();
                all.push(env_app);
                let mut child = spawn_child("login-server", &dir, &all);
                let (rx, reader) = logins_of(&mut child);
                assert!(child.wait().unwrap().success());
                reader.join().unwrap();
                rx.into_iter().collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ok = HashSet::new();
    for h in handles {
        let ids = h.await.unwrap();
        assert_eq!(ids.len(), LOGINS);
        ok.extend(ids);
    }
    assert_eq!(ok.len(), PROCESSES * LOGINS);

    let app = App::builder(server.app_id())
        .base_url("http://127.0.0.1:9")
        .storage_dir(dir.path())
        .transport(offline())
        .build()
        .unwrap();
    let users = app.all_users();
    let stored: HashSet<String> = users.iter().map(|u| u.id().to_owned()).collect();
    assert_eq!(stored, ok, "every login of every process is persisted");
    for user in &users {
        assert_eq!(user.state(), UserState::LoggedIn);
        assert!(user.access_token().is_some() && user.refresh_token().is_some());
        assert!(user.is_anonymous());
    }
    let current = app.current_user().expect("a current user");
    assert!(ok.contains(current.id()));
    server.shutdown().await;
}

// ---------------------------------------------------------------- kill -9

/// xorshift64*: deterministic from a seed printed on failure.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn kill_9_during_writes_never_loses_a_login_or_leaves_a_file() {
    const KILLS: usize = 500;
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = format!("{APP}.users.sqlite3");
    let allowed: HashSet<String> = ["", "-wal", "-shm"]
        .iter()
        .map(|s| format!("{db}{s}"))
        .collect();
    let mut acknowledged = HashSet::new();
    let mut after_first_login = 0;
    for round in 0..KILLS {
        let mut child = spawn_child("login-fake", dir.path(), &[]);
        let (rx, reader) = logins_of(&mut child);
        // Wait until the child is in its login loop, then kill it at a random point
        // (up to a few logins later: each login is one store write).
        let first = rx.recv_timeout(Duration::from_secs(60));
        let pause = rng.next() % 4000;
        std::thread::sleep(Duration::from_micros(pause));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        if let Ok(id) = first {
            after_first_login += 1;
            acknowledged.insert(id);
        }
        acknowledged.extend(rx.try_iter());

        let app = reopen(dir.path());
        let mut events = app.subscribe();
        assert!(
            events.try_recv().is_err(),
            "round {round} (seed {seed}): the store was not intact"
        );
        let stored: HashSet<String> = app.all_users().iter().map(|u| u.id().to_owned()).collect();
        let lost: Vec<_> = acknowledged.difference(&stored).collect();
        assert!(
            lost.is_empty(),
            "round {round} (seed {seed}): logins that returned Ok are gone: {lost:?}"
        );
        drop(app);
        for name in names(dir.path()) {
            assert!(
                allowed.contains(&name),
                "round {round} (seed {seed}): stray file {name}"
            );
        }
    }
    assert_eq!(
        after_first_login, KILLS,
        "every child reached its login loop"
    );
    // Closed by its last user, the store is one file again.
    assert_eq!(names(dir.path()), [db]);
    println!(
        "{KILLS} kills (seed {seed}), {} logins acknowledged, all persisted",
        acknowledged.len()
    );
}

// ---------------------------------------------------------------- failures

#[tokio::test]
async fn a_login_that_cannot_be_saved_is_a_store_error_and_leaves_nothing() {
    let server = TestServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut dirs = Vec::new();
    // A directory that cannot be created (its parent is a file): refused even to root.
    let file = tmp.path().join("file");
    std::fs::write(&file, b"").unwrap();
    dirs.push(file.join("users"));
    // An existing directory this process cannot write: read-only (0500) for a normal
    // user; for root, which ignores modes, immutable (`chattr +i`) where the file system
    // allows it.
    let mut _immutable = None;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let ro = tmp.path().join("read-only");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
        if std::fs::write(ro.join("probe"), b"").is_err() {
            dirs.push(ro);
        } else {
            let imm = tmp.path().join("immutable");
            std::fs::create_dir(&imm).unwrap();
            _immutable = Immutable::try_new(&imm);
            if std::fs::write(imm.join("probe"), b"").is_err() {
                dirs.push(imm);
            }
        }
    }
    for dir in dirs {
        let app = App::builder(server.app_id())
            .base_url(server.url())
            .storage_dir(&dir)
            .build()
            .unwrap();
        let mut events = app.subscribe();
        let err = app.log_in(Credentials::anonymous()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Store, "{err:?}");
        assert!(err.to_string().contains("undone"), "{err}");
        assert!(app.current_user().is_none() && app.all_users().is_empty());
        assert!(
            events.try_recv().is_err(),
            "no event for a login that failed"
        );
        if dir.exists() {
            assert!(names(&dir).is_empty(), "nothing half-written in {dir:?}");
        }
    }
    server.shutdown().await;
}

/// `chattr +i` on a directory for as long as it lives (`None` when that is not possible).
struct Immutable(std::path::PathBuf);

impl Immutable {
    fn try_new(dir: &Path) -> Option<Self> {
        let done = Command::new("chattr").arg("+i").arg(dir).status();
        done.ok()?.success().then(|| Immutable(dir.to_owned()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[cfg(unix)]
#[test]
fn a_store_directory_other_users_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = App::builder(APP)
        .base_url("http://127.0.0.1:9")
        .storage_dir(dir.path())
        .transport(offline())
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Store);
    let text = err.to_string();
    assert!(text.contains("other users can write"), "{text}");
    assert!(text.contains(&dir.path().display().to_string()), "{text}");
    assert!(names(dir.path()).is_empty());
}

/// Log lines, for the warning of a recovered store.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_corrupt_store_is_moved_aside_and_the_app_starts_empty() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("only this test sets it");

    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir
        .path()
        .join(format!("{}.users.sqlite3", server.app_id()));
    std::fs::write(&db, vec![0xA5u8; 8192]).unwrap();
    let build = || {
        App::builder(server.app_id())
            .base_url(server.url())
            .storage_dir(dir.path())
            .build()
    };
    let app = build().expect("a corrupt store does not stop the app");
    assert!(app.all_users().is_empty());
    let mut events = app.subscribe();
    let Ok(UserEvent::StoreRecovered { moved_to, error }) = events.try_recv() else {
        panic!("no StoreRecovered event");
    };
    let moved_to = moved_to.expect("kept on disk");
    assert!(error.contains("users.sqlite3"), "{error}");
    assert_eq!(std::fs::read(&moved_to).unwrap(), vec![0xA5u8; 8192]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&moved_to).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("WARN") && text.contains("moved aside"),
        "no warning: {text}"
    );

    // The app works as usual, and the next start finds the new user.
    let user = app.log_in(Credentials::anonymous()).await.unwrap();
    drop(app);
    let again = build().unwrap();
    assert_eq!(
        again.current_user().map(|u| u.id().to_owned()),
        Some(user.id().to_owned())
    );
    assert!(again.subscribe().try_recv().is_err());
    server.shutdown().await;
}

/// A store file exactly as the JSON store of the previous release wrote it.
fn todays_file(app_id: &str, user_id: &str, token: &str) -> String {
    format!(
        r#"{{
  "app_id": "{app_id}",
  "users": [
    {{
      "id": "{user_id}",
      "state": "LoggedIn",
      "access_token": "{token}",
      "refresh_token": "{token}",
      "access_token_expires_at_ms": 4102444800000,
      "access_token_lifetime_secs": 1800,
      "profile": {{
        "email": "ada@example.com"
      }},
      "identities": [
        {{
          "id": "ada@example.com",
          "provider_type": "local-userpass"
        }}
      ],
      "user_type": "normal",
      "device_id": "65f0c0ffee0000000000abcd",
      "provider_type": "local-userpass"
    }}
  ],
  "current_user_id": "{user_id}"
}}"#
    )
}

#[test]
fn todays_json_store_is_migrated_on_first_open() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = jwt(json!({"sub": "ada", "iat": now, "exp": now + 1800}));
    let user_id = "65f0c0ffee0000000000aaaa";
    std::fs::write(
        dir.path().join(format!("{APP}.users.json")),
        todays_file(APP, user_id, &token),
    )
    .unwrap();
    // A temporary file that a killed writer of the old store left, holding tokens.
    std::fs::write(
        dir.path().join(format!(".{APP}.users.json.1.0.tmp")),
        todays_file(APP, user_id, &token),
    )
    .unwrap();

    let app = reopen(dir.path());
    let current = app.current_user().expect("the user was migrated");
    assert_eq!(current.id(), user_id);
    assert_eq!(current.access_token().as_deref(), Some(token.as_str()));
    assert_eq!(
        current.profile().email().as_deref(),
        Some("ada@example.com")
    );
    assert_eq!(
        current.device_id().as_deref(),
        Some("65f0c0ffee0000000000abcd")
    );
    drop((current, app));
    // The JSON file and its leftovers are gone; the users live in the database.
    assert_eq!(names(dir.path()), [format!("{APP}.users.sqlite3")]);
    let again = reopen(dir.path());
    assert_eq!(again.all_users().len(), 1);
}
