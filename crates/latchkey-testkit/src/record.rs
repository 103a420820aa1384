//! A logging layer for the wire-format cross-check: wrap any transport in a
//! [`RecordingTransport`] and read back what the SDK sent, reduced to the parts
//! that matter for compatibility (method, path, token kind, content type, body keys).
//!
//! The compatibility suite records realm-web's requests in the same shape
//! (`tests/compat/run.js --record`), so the two can be compared field by field.

use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey_transport::{
    HttpRequest, HttpResponse, HttpTransport, RequestOptions, TransportError,
};
use serde::{Deserialize, Serialize};

/// One request, as the cross-check compares it. Never holds a secret: the bearer
/// token is reduced to its kind (`Bearer <access>` / `Bearer <refresh>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// The scenario the request belongs to (set with [`RecordingTransport::scenario`]).
    pub scenario: String,
    /// Upper-case method.
    pub method: String,
    /// URL path, without host and query.
    pub path: String,
    /// The query string with its leading `?`, or empty.
    pub query: String,
    /// `Bearer <typ>` from the token's `typ` claim, or `None` without an Authorization header.
    pub authorization: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The `Accept` header.
    pub accept: Option<String>,
    /// Sorted top-level keys of a JSON body, or `None` without a body.
    pub body_keys: Option<Vec<String>>,
}

/// Wraps a transport and records every request it sends.
///
/// ```
/// use latchkey_testkit::record::RecordingTransport;
/// use latchkey_transport::{transport_fn, HttpResponse, RequestOptions, HttpTransport};
/// use latchkey_transport::bytes::Bytes;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let inner = transport_fn(|_req, _opts: RequestOptions| async { Ok(HttpResponse::new(Bytes::new())) });
/// let recorder = RecordingTransport::new(inner);
/// recorder.scenario("login");
/// let req = http::Request::post("http://h/api/client/v2.0/app/a/auth/providers/anon-user/login")
///     .header("content-type", "application/json")
///     .body(Bytes::from_static(br#"{"options":{}}"#))
///     .unwrap();
/// recorder.send(req, &RequestOptions::new()).await.unwrap();
/// let seen = recorder.requests();
/// assert_eq!(seen[0].scenario, "login");
/// assert_eq!(seen[0].body_keys, Some(vec!["options".to_owned()]));
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct RecordingTransport<T> {
    inner: T,
    log: Arc<Mutex<Log>>,
}

#[derive(Debug, Default)]
struct Log {
    scenario: String,
    requests: Vec<RecordedRequest>,
}

impl<T> RecordingTransport<T> {
    /// Record requests sent through `inner`.
    pub fn new(inner: T) -> Self {
        RecordingTransport {
            inner,
            log: Arc::default(),
        }
    }

    /// Label the requests that follow with `name`.
    pub fn scenario(&self, name: &str) {
        self.log.lock().expect("recorder lock").scenario = name.to_owned();
    }

    /// Everything recorded so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log.lock().expect("recorder lock").requests.clone()
    }
}

fn token_kind(value: &str) -> String {
    let token = value.strip_prefix("Bearer ").unwrap_or(value);
    let typ = token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
        .and_then(|v| v.get("typ").and_then(|t| t.as_str()).map(str::to_owned));
    format!("Bearer <{}>", typ.unwrap_or_else(|| "opaque".to_owned()))
}

/// Reduce a request to what the cross-check compares.
pub fn summarize(scenario: &str, request: &HttpRequest) -> RecordedRequest {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let body_keys = if request.body().is_empty() {
        None
    } else {
        Some(
            match serde_json::from_slice::<serde_json::Value>(request.body()) {
                Ok(serde_json::Value::Object(map)) => {
                    let mut keys: Vec<String> = map.keys().cloned().collect();
                    keys.sort();
                    keys
                }
                _ => vec!["<non-json>".to_owned()],
            },
        )
    };
    RecordedRequest {
        scenario: scenario.to_owned(),
        method: request.method().as_str().to_owned(),
        path: request.uri().path().to_owned(),
        query: request
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default(),
        authorization: header("authorization").map(|v| token_kind(&v)),
        content_type: header("content-type"),
        accept: header("accept"),
        body_keys,
    }
}

#[async_trait::async_trait]
impl<T: HttpTransport> HttpTransport for RecordingTransport<T> {
    async fn send(
        &self,
        request: HttpRequest,
        options: &RequestOptions,
    ) -> Result<HttpResponse, TransportError> {
        {
            let mut log = self.log.lock().expect("recorder lock");
            let entry = summarize(&log.scenario, &request);
            log.requests.push(entry);
        }
        self.inner.send(request, options).await
    }
}
