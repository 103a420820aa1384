//! Crash test: the server is a real child process (this test binary run again, starting
//! the real `latchkey_server::Server` on a SQLite file), killed with SIGKILL in the middle
//! of concurrent logins, then restarted on the same file. Every login the client got an
//! answer for must still refresh: 0 lost.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use latchkey_testkit::TestServer;
use latchkey_transport::{HttpTransport, RequestOptions};
use latchkey_transport_reqwest::ReqwestTransport;

const CHILD: &str = "LATCHKEY_CRASH_CHILD_DB";
const SECRET: &str = "LATCHKEY_CRASH_CHILD_SECRET";
const LISTENING: &str = "latchkey-crash-test listening on ";
/// Concurrent clients logging in.
const CLIENTS: usize = 12;
/// Each client stops after this many logins (bounded load).
const MAX_PER_CLIENT: usize = 200;
/// The server is killed once this many logins were answered.
const KILL_AFTER: usize = 300;

/// The child's side: the real server on the SQLite file `LATCHKEY_CRASH_CHILD_DB`, until
/// it is killed. Does nothing in a normal test run.
#[test]
fn server_child() {
    let Ok(db) = std::env::var(CHILD) else {
        return;
    };
    let secret = std::env::var(SECRET).expect("the signing secret");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut config = TestServer::config();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.database = format!("sqlite://{db}").into();
        config.apps[0].signing_secret = secret.into();
        let server = latchkey_server::Server::start(config).await.unwrap();
        println!("{LISTENING}{}", server.url());
        std::future::pending::<()>().await;
    });
}

/// A server child process, killed (SIGKILL) when dropped.
struct ServerProcess {
    child: Child,
    url: String,
}

impl ServerProcess {
    fn start(db: &std::path::Path, secret: &str) -> ServerProcess {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash::server_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, db)
            .env(SECRET, secret)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the server child");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("the child exited before listening")
                .unwrap();
            // libtest may print `test crash::server_child ... ` on the same line first.
            if let Some(at) = line.find(LISTENING) {
                break line[at + LISTENING.len()..].trim().to_owned();
            }
        };
        ServerProcess { child, url }
    }

    /// SIGKILL, and reap.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `POST url` with an optional bearer token and JSON body; `None` when no answer came.
async fn post(
    http: &ReqwestTransport,
    url: String,
    bearer: Option<&str>,
    body: &'static str,
) -> Option<(StatusCode, serde_json::Value)> {
    let mut req = http::Request::builder()
        .method(Method::POST)
        .uri(url)
        .header("content-type", "application/json");
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let opts = RequestOptions::new().with_timeout(Duration::from_secs(30));
    let resp = http
        .send(
            req.body(Bytes::from_static(body.as_bytes())).unwrap(),
            &opts,
        )
        .await
        .ok()?;
    let json = serde_json::from_slice(resp.body()).ok()?;
    Some((resp.status(), json))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_concurrent_logins_loses_no_answered_login() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("latchkey.db");
    let secret = "crash-test-signing-secret-0123456789abcdef".to_owned();
    let server = ServerProcess::start(&db, &secret);
    let login_url = format!(
        "{}/api/client/v2.0/app/{}/auth/providers/anon-user/login",
        server.url,
        latchkey_testkit::TEST_APP_ID
    );
    let http = ReqwestTransport::new();
    let answered = Arc::new(AtomicUsize::new(0));
    let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
    let kill_tx = Arc::new(std::sync::Mutex::new(Some(kill_tx)));

    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let (http, url, answered, kill_tx) = (
            http.clone(),
            login_url.clone(),
            answered.clone(),
            kill_tx.clone(),
        );
        clients.spawn(async move {
            let mut refresh_tokens = Vec::new();
            for _ in 0..MAX_PER_CLIENT {
                // No answer: the server is gone.
                let Some((status, json)) = post(&http, url.clone(), None, "{}").await else {
                    break;
                };
                assert_eq!(status, StatusCode::OK, "{json}");
                refresh_tokens.push(json["refresh_token"].as_str().unwrap().to_owned());
                if answered.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER
                    && let Some(tx) = kill_tx.lock().unwrap().take()
                {
                    let _ = tx.send(());
                }
            }
            refresh_tokens
        });
    }
    // Killed mid-load: the other clients have logins in flight.
    kill_rx.await.expect("the load reaches the kill point");
    server.kill();
    let mut tokens = Vec::new();
    while let Some(r) = clients.join_next().await {
        tokens.extend(r.unwrap());
    }
    assert!(tokens.len() >= KILL_AFTER, "{} answered", tokens.len());
    assert!(
        tokens.len() < CLIENTS * MAX_PER_CLIENT,
        "the kill interrupted the load"
    );

    // Restarted on the same file: every answered login refreshes.
    let server = ServerProcess::start(&db, &secret);
    let session_url = format!("{}/api/client/v2.0/auth/session", server.url);
    let mut lost = 0;
    for token in &tokens {
        match post(&http, session_url.clone(), Some(token), "").await {
            Some((StatusCode::CREATED | StatusCode::OK, json))
                if json["access_token"].is_string() => {}
            other => {
                lost += 1;
                eprintln!("lost: {other:?}");
            }
        }
    }
    eprintln!(
        "crash test: {} logins answered before kill -9, {lost} lost",
        tokens.len()
    );
    assert_eq!(lost, 0, "of {} answered logins", tokens.len());
}
