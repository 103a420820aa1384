//! Wire-format cross-check: the Rust SDK's requests must match what the official
//! realm-web client sends for the same operations (method, path, token kind,
//! content type, accept, body keys).
//!
//! `cargo xtask compat` runs realm-web against the server and records its
//! requests (`tests/compat/run.js --record`), then runs this test with
//! `REALM_WEB_RECORD` pointing at that file. Without the variable the test
//! explains how to run it and does nothing else.

use std::collections::BTreeMap;

use latchkey::{App, Credentials};
use latchkey_testkit::TestServer;
use latchkey_testkit::record::{RecordedRequest, RecordingTransport};
use latchkey_transport_reqwest::ReqwestTransport;

/// Collapse ids and app ids so the same route compares equal across runs.
fn route(r: &RecordedRequest) -> String {
    let segments: Vec<&str> = r.path.split('/').collect();
    let parts: Vec<String> = segments
        .iter()
        .enumerate()
        .map(|(i, seg)| {
            if i > 0 && segments[i - 1] == "app" {
                "{app}".to_owned()
            } else if seg.len() == 24 && seg.chars().all(|c| c.is_ascii_hexdigit()) {
                "{id}".to_owned()
            } else {
                (*seg).to_owned()
            }
        })
        .collect();
    format!("{} {}{}", r.method, parts.join("/"), r.query)
}

/// Differences we make on purpose, each with its reason (docs/compatibility.md).
fn allowed_difference(route: &str, field: &str) -> bool {
    // realm-web adds the current user's access token to email/password routes
    // (protocol.md §1.2, a web quirk); latchkey, like realm-core, sends none.
    route.contains("/providers/local-userpass/")
        && !route.ends_with("/login")
        && field == "authorization"
}

#[tokio::test]
async fn sdk_requests_match_realm_web() {
    let Ok(path) = std::env::var("REALM_WEB_RECORD") else {
        eprintln!(
            "REALM_WEB_RECORD is not set: run `cargo xtask compat`, which records realm-web's \
             requests and then runs this cross-check against them"
        );
        return;
    };
    let web: Vec<RecordedRequest> =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("realm-web record"))
            .expect("realm-web record is JSON");
    assert!(
        web.len() > 20,
        "the realm-web record looks empty ({} requests)",
        web.len()
    );
    let mut web_by_route: BTreeMap<String, Vec<&RecordedRequest>> = BTreeMap::new();
    for r in &web {
        web_by_route.entry(route(r)).or_default().push(r);
    }

    // The same operations through the Rust SDK, recorded.
    let server = TestServer::start().await;
    let recorder = RecordingTransport::new(ReqwestTransport::new());
    let app = App::builder(server.app_id())
        .base_url(server.url())
        .in_memory_store()
        .transport(recorder.clone())
        .build()
        .unwrap();
    let anon = app.log_in(Credentials::anonymous()).await.unwrap();
    anon.refresh_access_token().await.unwrap();
    anon.refresh_profile().await.unwrap();
    let auth = app.email_password_auth();
    auth.register_user("cross@example.com", "p4ssw0rd!")
        .await
        .unwrap();
    let user = app
        .log_in(Credentials::email_password(
            "cross@example.com",
            "p4ssw0rd!",
        ))
        .await
        .unwrap();
    let second = app.log_in(Credentials::anonymous_no_reuse()).await.unwrap();
    user.log_out().await.unwrap();
    second.log_out().await.unwrap();
    server.shutdown().await;

    let ours = recorder.requests();
    let mut compared = 0;
    let mut problems = Vec::new();
    for r in &ours {
        let key = route(r);
        let Some(theirs) = web_by_route.get(&key) else {
            problems.push(format!("{key}: realm-web never sent this route"));
            continue;
        };
        // Any realm-web request of that route with the same shape is a match.
        let fields = |x: &RecordedRequest| {
            vec![
                ("authorization", format!("{:?}", x.authorization)),
                ("content_type", format!("{:?}", x.content_type)),
                ("accept", format!("{:?}", x.accept)),
                ("body_keys", format!("{:?}", x.body_keys)),
            ]
        };
        let mine = fields(r);
        let best = theirs
            .iter()
            .map(|t| {
                let diffs: Vec<String> = fields(t)
                    .into_iter()
                    .zip(mine.iter())
                    .filter(|((name, a), (_, b))| a != b && !allowed_difference(&key, name))
                    .map(|((name, a), (_, b))| format!("{name}: realm-web {a}, latchkey {b}"))
                    .collect();
                diffs
            })
            .min_by_key(Vec::len)
            .unwrap_or_default();
        if best.is_empty() {
            compared += 1;
        } else {
            problems.push(format!("{key}: {}", best.join("; ")));
        }
    }
    println!("cross-check: {compared} SDK requests match realm-web's");
    assert!(
        problems.is_empty(),
        "wire differences:\n{}",
        problems.join("\n")
    );
    assert!(compared >= 8, "too few requests compared ({compared})");
}
