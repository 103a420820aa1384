//! Helpers for the full-coverage end-to-end tests: admin API calls, the outbox,
//! and events.

use http::{Method, StatusCode};
use latchkey::events::UserEvent;
use latchkey_testkit::TestServer;
use serde_json::Value;

use crate::support::raw;

/// A call to the admin API of `server`'s app: `path` is relative to
/// `/admin/v1/apps/{app}` (e.g. `/outbox`).
pub(crate) async fn admin(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let url = format!("{}/admin/v1/apps/{}{}", server.url(), server.app_id(), path);
    let (status, _, json) = raw(method, &url, Some(token), body).await;
    (status, json)
}

/// An admin call that must succeed (2xx); returns the JSON body.
pub(crate) async fn admin_ok(
    server: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let (status, json) = admin(server, token, method.clone(), path, body).await;
    assert!(
        status.is_success(),
        "admin {method} {path} answered {status}: {json}"
    );
    json
}

/// One outbox message.
#[derive(Debug, Clone)]
pub(crate) struct Mail {
    pub(crate) to: String,
    pub(crate) kind: String,
    pub(crate) token: String,
    pub(crate) token_id: String,
}

/// Every outbox message, oldest first.
pub(crate) async fn outbox(server: &TestServer, token: &str) -> Vec<Mail> {
    let json = admin_ok(server, token, Method::GET, "/outbox", None).await;
    json.as_array()
        .expect("the outbox is an array")
        .iter()
        .map(|m| Mail {
            to: m["to"].as_str().expect("to").to_owned(),
            kind: m["kind"].as_str().expect("kind").to_owned(),
            token: m["token"].as_str().expect("token").to_owned(),
            token_id: m["token_id"].as_str().expect("token_id").to_owned(),
        })
        .collect()
}

/// The outbox messages of `kind` to `to`, oldest first.
pub(crate) async fn mails(server: &TestServer, token: &str, to: &str, kind: &str) -> Vec<Mail> {
    outbox(server, token)
        .await
        .into_iter()
        .filter(|m| m.to == to && m.kind == kind)
        .collect()
}

/// Everything received so far on an event channel.
pub(crate) fn drain(events: &mut latchkey::events::EventReceiver) -> Vec<UserEvent> {
    let mut out = Vec::new();
    while let Ok(e) = events.try_recv() {
        out.push(e);
    }
    out
}

/// The provider types of a user's identities, sorted.
pub(crate) fn provider_types(user: &latchkey::User) -> Vec<String> {
    let mut v: Vec<String> = user
        .identities()
        .into_iter()
        .map(|i| i.provider_type)
        .collect();
    v.sort();
    v
}
