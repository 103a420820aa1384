//! Outbound HTTP: the shared clients and bounded reads of answers.

use std::time::Duration;

/// The client for calls to identity providers (JWKS, token endpoints, Facebook
/// Graph): bounded timeouts, at most 3 redirects. Every call must also set its own
/// per-request timeout.
pub(crate) fn client() -> reqwest::Client {
    builder()
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// The client for webhooks: never follows redirects (a 307 / 308 would re-POST the
/// payload, which may hold a new password, to another host); a 3xx is a failure.
pub(crate) fn webhook_client() -> reqwest::Client {
    builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|_| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default()
        })
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("latchkey-server/", env!("CARGO_PKG_VERSION")))
}

/// A response body could not be read within its limit.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The body is larger than the limit (announced or actual).
    TooLarge,
    /// Reading failed (connection closed, timeout, ...).
    Read(reqwest::Error),
}

/// Read a response body of at most `limit` bytes, stopping as soon as it is exceeded.
pub(crate) async fn read_body(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, ReadError> {
    if resp.content_length().is_some_and(|l| l > limit as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Read)? {
        if body.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A JSON response body of at most `limit` bytes; `None` when it is too large,
/// unreadable or not JSON.
pub(crate) async fn read_json(resp: reqwest::Response, limit: usize) -> Option<serde_json::Value> {
    let body = read_body(resp, limit).await.ok()?;
    serde_json::from_slice(&body).ok()
}
