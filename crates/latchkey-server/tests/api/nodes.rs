//! Several nodes on one PostgreSQL database: 2–3 real `latchkey-server serve` processes
//! (the binary) sharing a fresh database of the server that LATCHKEY_TEST_POSTGRES_URL
//! names. Skipped with a note on a developer machine without it; failing in CI.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use latchkey_server::Config;
use latchkey_testkit::PostgresTestDb;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

const ADMIN_TOKEN: &str = "nodes-admin-token-0123456789";
const JWT_KEY: &str = "nodes-custom-token-key-0123456789abcdef";

/// A server process, killed when dropped.
pub(crate) struct Node {
    pub(crate) child: Child,
    pub(crate) url: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    /// Start `latchkey-server serve --config <path>` and wait for its listening line.
    pub(crate) async fn start(config_path: &std::path::Path) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey-server"))
            .args(["serve", "--config"])
            .arg(config_path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn latchkey-server");
        let stdout = child.stdout.take().unwrap();
        let line = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line).unwrap();
                line
            }),
        )
        .await
        .expect("the node starts within 60 s")
        .unwrap();
        let url = line
            .trim_end()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Node { child, url }
    }
}

/// Nodes on one database, and a client.
struct Cluster {
    nodes: Vec<Node>,
    http: reqwest::Client,
    // Dropped last: the nodes are killed first.
    _dir: tempfile::TempDir,
    _db: PostgresTestDb,
}

/// The configuration every node of a test shares (custom-token on, a known admin
/// token), on `database`.
fn node_config(database: &str) -> Config {
    let mut c = config();
    c.database = database.into();
    c.admin_token = Some(ADMIN_TOKEN.into());
    let custom = &mut c.apps[0].providers.custom_token;
    custom.enabled = true;
    custom.signing_keys = vec![JWT_KEY.into()];
    c
}

/// Write `config` to `dir/latchkey.toml`.
fn write_config(dir: &std::path::Path, config: &Config) -> std::path::PathBuf {
    let path = dir.join("latchkey.toml");
    std::fs::write(&path, toml::to_string(config).unwrap()).unwrap();
    path
}

impl Cluster {
    /// `n` nodes on a fresh database; `None` (skipped) without PostgreSQL on a
    /// developer machine.
    async fn start(n: usize, tweak: impl FnOnce(&mut Config)) -> Option<Cluster> {
        if latchkey_testkit::postgres_requested() {
            return None; // These always use PostgreSQL: they ran in the SQLite pass.
        }
        let db = PostgresTestDb::create().await?;
        let mut c = node_config(db.url());
        tweak(&mut c);
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(dir.path(), &c);
        // Started together: they migrate one after the other (advisory lock).
        let mut starts = tokio::task::JoinSet::new();
        for _ in 0..n {
            let path = path.clone();
            starts.spawn(async move { Node::start(&path).await });
        }
        let mut nodes = Vec::new();
        while let Some(node) = starts.join_next().await {
            nodes.push(node.unwrap());
        }
        Some(Cluster {
            nodes,
            http: client(),
            _dir: dir,
            _db: db,
        })
    }

    fn node(&self, i: usize) -> &str {
        &self.nodes[i % self.nodes.len()].url
    }

    async fn send(
        &self,
        node: usize,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.node(node)));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        Reply::from(req.send().await.expect("request sent")).await
    }

    async fn login(&self, node: usize, provider: &str, body: Value) -> Reply {
        let path = format!("{PREFIX}/app/{APP}/auth/providers/{provider}/login");
        self.send(node, Method::POST, &path, None, Some(body)).await
    }

    async fn refresh(&self, node: usize, refresh: &str) -> Reply {
        let path = format!("{PREFIX}/auth/session");
        self.send(node, Method::POST, &path, Some(refresh), None)
            .await
    }

    async fn profile(&self, node: usize, access: &str) -> Reply {
        let path = format!("{PREFIX}/auth/profile");
        self.send(node, Method::GET, &path, Some(access), None)
            .await
    }

    async fn admin(&self, node: usize, method: Method, rest: &str) -> Reply {
        let path = format!("/admin/v1/apps/{APP}{rest}");
        self.send(node, method, &path, Some(ADMIN_TOKEN), None)
            .await
    }

    async fn register(&self, node: usize, email: &str) -> Reply {
        let path = format!("{PREFIX}/app/{APP}/auth/providers/local-userpass/register");
        let body = json!({"email": email, "password": "secret123"});
        self.send(node, Method::POST, &path, None, Some(body)).await
    }

    async fn userpass(&self, node: usize, email: &str, password: &str) -> Reply {
        let body = json!({"username": email, "password": password});
        self.login(node, "local-userpass", body).await
    }

    async fn users(&self, node: usize) -> Vec<Value> {
        let r = self.admin(node, Method::GET, "/users").await;
        r.assert_ok_json().as_array().unwrap().clone()
    }
}

fn custom_jwt(sub: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": sub, "aud": APP, "iat": now, "exp": now + 600}),
        &EncodingKey::from_secret(JWT_KEY.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// Revocation through node A is refused by node B at its very next request.
#[tokio::test]
async fn revocations_through_one_node_hold_on_the_others() {
    let Some(c) = Cluster::start(2, |_| {}).await else {
        return;
    };
    c.register(0, "a@example.com").await.assert_no_content();
    let t = Tokens::from(
        &c.userpass(0, "a@example.com", "secret123")
            .await
            .assert_ok_json(),
    );
    c.refresh(1, &t.refresh).await.assert_ok_json();
    c.profile(1, &t.access).await.assert_ok_json();

    // A session revoked (logout) through A.
    let path = format!("{PREFIX}/auth/session");
    c.send(0, Method::DELETE, &path, Some(&t.refresh), None)
        .await
        .assert_no_content();
    c.refresh(1, &t.refresh)
        .await
        .assert_refresh_token_not_found();
    c.profile(1, &t.access)
        .await
        .assert_error(401, "InvalidSession");

    // A user disabled through A.
    let t = Tokens::from(
        &c.userpass(1, "a@example.com", "secret123")
            .await
            .assert_ok_json(),
    );
    c.admin(0, Method::PUT, &format!("/users/{}/disable", t.user_id))
        .await
        .assert_ok_json();
    c.refresh(1, &t.refresh)
        .await
        .assert_refresh_token_not_found();
    c.profile(1, &t.access)
        .await
        .assert_error(401, "InvalidSession");
    c.userpass(1, "a@example.com", "secret123")
        .await
        .assert_error(403, "UserDisabled");
    c.admin(0, Method::PUT, &format!("/users/{}/enable", t.user_id))
        .await
        .assert_ok_json();

    // An API key disabled through A (with its owner's refresh token).
    let t = Tokens::from(
        &c.userpass(1, "a@example.com", "secret123")
            .await
            .assert_ok_json(),
    );
    let keys = format!("{PREFIX}/auth/api_keys");
    let key = c
        .send(
            0,
            Method::POST,
            &keys,
            Some(&t.refresh),
            Some(json!({"name": "k"})),
        )
        .await;
    assert_eq!(key.status.as_u16(), 201, "{}", key.text);
    let key = key.json();
    let by_key = c.login(1, "api-key", json!({"key": key["key"]})).await;
    let by_key = Tokens::from(&by_key.assert_ok_json());
    let disable = format!("{keys}/{}/disable", key["_id"].as_str().unwrap());
    c.send(0, Method::PUT, &disable, Some(&t.refresh), None)
        .await
        .assert_no_content();
    c.login(1, "api-key", json!({"key": key["key"]}))
        .await
        .assert_error(401, "AuthError");
    c.refresh(1, &by_key.refresh)
        .await
        .assert_refresh_token_not_found();

    // A user deleted through A.
    c.admin(0, Method::DELETE, &format!("/users/{}", t.user_id))
        .await
        .assert_ok_json();
    c.refresh(1, &t.refresh)
        .await
        .assert_refresh_token_not_found();
    c.profile(1, &t.access)
        .await
        .assert_error(401, "InvalidSession");
}

/// 60 wrong passwords sent at once, spread over 3 nodes, let exactly the limit through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_login_limits_are_cluster_wide() {
    const LIMIT: u32 = 5;
    let Some(c) = Cluster::start(3, |c| c.throttle.max_failures_per_identifier = LIMIT).await
    else {
        return;
    };
    let c = Arc::new(c);
    c.register(0, "target@example.com")
        .await
        .assert_no_content();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..60 {
        let c = c.clone();
        tasks.spawn(async move { c.userpass(i, "target@example.com", "wrong").await });
    }
    let (mut unauthorized, mut throttled) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let r = r.unwrap();
        match r.status.as_u16() {
            401 => unauthorized += 1,
            429 => {
                r.assert_error(429, "TooManyRequests");
                assert!(r.headers.contains_key("retry-after"));
                throttled += 1;
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert_eq!((unauthorized, throttled), (LIMIT, 60 - LIMIT));
    for node in 0..3 {
        c.userpass(node, "target@example.com", "secret123")
            .await
            .assert_error(429, "TooManyRequests");
    }
}

/// One new identity logging in through every node at once makes one user; one email
/// registered through every node at once makes one account.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_logins_and_registrations_make_one_account() {
    let Some(c) = Cluster::start(3, |_| {}).await else {
        return;
    };
    let c = Arc::new(c);
    let token = custom_jwt("one-person");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..30 {
        let (c, token) = (c.clone(), token.clone());
        tasks.spawn(async move { c.login(i, "custom-token", json!({"token": token})).await });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(r) = tasks.join_next().await {
        ids.insert(Tokens::from(&r.unwrap().assert_ok_json()).user_id);
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(c.users(1).await.len(), 1);

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..30 {
        let c = c.clone();
        tasks.spawn(async move { c.register(i, "twice@example.com").await });
    }
    let (mut created, mut taken) = (0, 0);
    while let Some(r) = tasks.join_next().await {
        let r = r.unwrap();
        if r.status.as_u16() == 204 {
            created += 1;
        } else {
            r.assert_error(409, "AccountNameInUse");
            taken += 1;
        }
    }
    assert_eq!((created, taken), (1, 29));
    c.userpass(2, "twice@example.com", "secret123")
        .await
        .assert_ok_json();
    assert_eq!(c.users(0).await.len(), 2);
}

/// A few seconds of concurrent logins over all nodes: every login answered 200 is in
/// the database, and its refresh token works on another node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_under_load_over_all_nodes_are_all_kept() {
    let Some(c) = Cluster::start(3, |_| {}).await else {
        return;
    };
    let c = Arc::new(c);
    let until = Instant::now() + Duration::from_secs(3);
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..12 {
        let c = c.clone();
        workers.spawn(async move {
            let mut done = Vec::new();
            let mut i = w;
            while Instant::now() < until {
                let r = c.login(i, "anon-user", json!({})).await;
                done.push((i, Tokens::from(&r.assert_ok_json())));
                i += 1;
            }
            done
        });
    }
    let mut logins = Vec::new();
    while let Some(done) = workers.join_next().await {
        logins.extend(done.unwrap());
    }
    assert!(logins.len() >= 30, "only {} logins", logins.len());
    let users: std::collections::HashSet<String> = c
        .users(0)
        .await
        .into_iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(users.len(), logins.len());
    for (i, t) in &logins {
        assert!(users.contains(&t.user_id), "{} missing", t.user_id);
        c.refresh(i + 1, &t.refresh).await.assert_ok_json();
    }
    eprintln!(
        "{} anonymous logins in 3 s over 3 nodes, every one stored and refreshable",
        logins.len()
    );
}
