//! Outbound JSON webhooks (confirmation / reset functions, custom-function login).
//!
//! [`call_json`] POSTs a JSON body to an operator-configured URL and expects a JSON
//! answer of at most [`MAX_ANSWER_BYTES`]. Redirects are never followed (a 3xx is a
//! failure): a 307 / 308 would re-POST the payload, which may hold a new password, to
//! another host. When a secret is configured the request carries
//! `X-Latchkey-Timestamp: <unix seconds>` and
//! `X-Latchkey-Signature: sha256=<lowercase hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`
//! so the receiver can check that the call comes from this server, and is recent.
//!
//! Errors never include payload values (they may hold passwords or tokens).

use std::time::Duration;

use hmac::{Hmac, Mac};
use latchkey_protocol::Secret;
use sha2::Sha256;

use crate::outbound::{ReadError, read_body};

/// Header carrying the HMAC signature of the timestamp and the request body.
pub(crate) const SIGNATURE_HEADER: &str = "X-Latchkey-Signature";
/// Header carrying the signed timestamp (Unix seconds).
pub(crate) const TIMESTAMP_HEADER: &str = "X-Latchkey-Timestamp";
/// Largest accepted webhook answer.
pub(crate) const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A webhook call failed. The `Display` text never contains payload values.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebhookError {
    /// The webhook did not answer in time.
    #[error("webhook timed out")]
    Timeout,
    /// The webhook could not be reached (DNS, connection refused, TLS, ...).
    #[error("webhook unreachable")]
    Unreachable,
    /// The webhook answered with a non-2xx status (3xx included: no redirects).
    #[error("webhook answered HTTP {0}")]
    Status(u16),
    /// The webhook's answer is larger than [`MAX_ANSWER_BYTES`].
    #[error("webhook answer too large")]
    TooLarge,
    /// The webhook's answer was not JSON.
    #[error("webhook answer is not JSON")]
    NotJson,
    /// The request body could not be serialized (should not happen).
    #[error("webhook request could not be built")]
    Request,
}

/// `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, the value of
/// [`SIGNATURE_HEADER`].
pub(crate) fn signature(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// POST `body` as JSON to `url` with `client` (the server's webhook client, which
/// follows no redirects) and parse the JSON answer.
///
/// When `signing` is `Some((secret, now))`, the request is signed with `secret` and
/// the timestamp `now` (see the module docs).
/// Non-2xx answers, answers over [`MAX_ANSWER_BYTES`], non-JSON answers, timeouts and
/// connection failures are [`WebhookError`]s.
pub(crate) async fn call_json(
    client: &reqwest::Client,
    url: &str,
    signing: Option<(&Secret, i64)>,
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<serde_json::Value, WebhookError> {
    let raw = serde_json::to_vec(body).map_err(|_| WebhookError::Request)?;
    let mut req = client
        .post(url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some((secret, timestamp)) = signing {
        req = req
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature(secret, timestamp, &raw));
    }
    let res = req.body(raw).send().await.map_err(classify)?;
    let status = res.status();
    if !status.is_success() {
        if status.is_redirection() {
            tracing::warn!(
                status = status.as_u16(),
                "webhook answered with a redirect; redirects are not followed"
            );
        } else {
            tracing::warn!(
                status = status.as_u16(),
                "webhook answered with an error status"
            );
        }
        return Err(WebhookError::Status(status.as_u16()));
    }
    let bytes = read_body(res, MAX_ANSWER_BYTES)
        .await
        .map_err(|e| match e {
            ReadError::TooLarge => {
                tracing::warn!(limit = MAX_ANSWER_BYTES, "webhook answer too large");
                WebhookError::TooLarge
            }
            ReadError::Read(e) => classify(e),
        })?;
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
    fn signature_covers_timestamp_and_body() {
        // RFC 4231 test case 2 is HMAC("Jefe", "what do ya want for nothing?"):
        // timestamp "what do ya want for nothing" is not a number, so check the
        // construction with the same bytes split at the dot instead.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"1700000000.{\"a\":1}");
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(
            signature(&Secret::new("Jefe"), 1_700_000_000, br#"{"a":1}"#),
            expected
        );
    }
}
