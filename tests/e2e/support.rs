//! Shared helpers for the end-to-end tests.

use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, StatusCode};
use latchkey::App;
use latchkey_testkit::TestServer;
use latchkey_transport::{HttpTransport, RequestOptions};
use latchkey_transport_reqwest::ReqwestTransport;

/// An App for the test server with an in-memory user store.
pub(crate) fn app(server: &TestServer) -> App {
    App::builder(server.app_id())
        .base_url(server.url())
        .in_memory_store()
        .build()
        .expect("App::build")
}

/// A raw HTTP call (no SDK logic), returning status, content type and parsed JSON body.
pub(crate) async fn raw(
    method: Method,
    url: &str,
    bearer: Option<&str>,
    body: Option<serde_json::Value>,
) -> (StatusCode, Option<String>, serde_json::Value) {
    let mut req = http::Request::builder().method(method).uri(url);
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Bytes::from(v.to_string())
        }
        None => Bytes::new(),
    };
    let resp = ReqwestTransport::new()
        .send(req.body(body).unwrap(), &RequestOptions::new())
        .await
        .expect("raw request");
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let json = if resp.body().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(resp.body()).expect("JSON body")
    };
    (resp.status(), content_type, json)
}

/// A log sink for a `tracing_subscriber::fmt` writer: everything written, kept.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// What was written so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
