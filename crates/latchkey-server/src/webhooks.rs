//! Outbound JSON webhooks (confirmation / reset functions, custom-function login).
//!
//! [`call_json`] POSTs a JSON body to an operator-configured URL and expects a JSON
//! answer. When a secret is configured the request carries
//! `X-Latchkey-Signature: sha256=<lowercase hex HMAC-SHA256(secret, raw body)>`
//! so the receiver can check that the call comes from this server.
//!
//! Errors never include payload values (they may hold passwords or tokens).

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the HMAC signature of the request body.
pub(crate) const SIGNATURE_HEADER: &str = "X-Latchkey-Signature";

/// A webhook call failed. The `Display` text never contains payload values.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebhookError {
    /// The webhook did not answer in time.
    #[error("webhook timed out")]
    Timeout,
    /// The webhook could not be reached (DNS, connection refused, TLS, ...).
    #[error("webhook unreachable")]
    Unreachable,
    /// The webhook answered with a non-2xx status.
    #[error("webhook answered HTTP {0}")]
    Status(u16),
    /// The webhook's answer was not JSON.
    #[error("webhook answer is not JSON")]
    NotJson,
    /// The request body could not be serialized (should not happen).
    #[error("webhook request could not be built")]
    Request,
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, the value of [`SIGNATURE_HEADER`].
pub(crate) fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// POST `body` as JSON to `url` and parse the JSON answer.
///
/// When `secret` is `Some`, the request is signed (see the module docs).
/// Non-2xx answers, non-JSON answers, timeouts and connection failures are
/// [`WebhookError`]s.
pub(crate) async fn call_json(
    http: &reqwest::Client,
    url: &str,
    secret: Option<&str>,
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<serde_json::Value, WebhookError> {
    let raw = serde_json::to_vec(body).map_err(|_| WebhookError::Request)?;
    let mut req = http
        .post(url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(secret) = secret {
        req = req.header(SIGNATURE_HEADER, signature(secret, &raw));
    }
    let res = req.body(raw).send().await.map_err(classify)?;
    let status = res.status();
    if !status.is_success() {
        tracing::warn!(
            status = status.as_u16(),
            "webhook answered with an error status"
        );
        return Err(WebhookError::Status(status.as_u16()));
    }
    let bytes = res.bytes().await.map_err(classify)?;
    serde_json::from_slice(&bytes).map_err(|_| WebhookError::NotJson)
}

fn classify(e: reqwest::Error) -> WebhookError {
    if e.is_timeout() {
        WebhookError::Timeout
    } else if e.is_builder() {
        WebhookError::Request
    } else {
        WebhookError::Unreachable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_known_vector() {
        // RFC 4231 test case 2.
        let sig = signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
