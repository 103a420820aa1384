//! An app's connection to its server: the location lookup (once, again after a connect
//! failure), per-request timeouts, retries of idempotent requests, one tracing span per
//! request.

use std::time::Duration;

use http::Method;
use latchkey_protocol::LocationResponse;
use latchkey_protocol::routes::{Routes, paths};
use latchkey_transport::{
    HttpResponse, RequestOptions, SharedTransport, TransportError, TransportErrorKind,
};
use tracing::Instrument;

use crate::clock::SharedClock;
use crate::config::AppConfig;
use crate::error::Error;
use crate::retry::{RetryPolicy, retry_after};
use crate::wire::{self, ApiRequest};

/// Sends an app's requests through its transport.
pub(crate) struct Client {
    transport: SharedTransport,
    /// Routes on the base URL, where the location is asked.
    base: Routes,
    timeout: Duration,
    retry: RetryPolicy,
    /// For `Retry-After` dates.
    clock: SharedClock,
    /// Routes on the host the location returned, once known.
    location: tokio::sync::Mutex<Option<Routes>>,
}

impl Client {
    /// A client for `config`'s app; nothing is sent yet.
    pub(crate) fn new(config: &AppConfig, transport: SharedTransport) -> Self {
        Client {
            transport,
            base: Routes::new(config.base_url(), config.app_id()),
            timeout: config.request_timeout(),
            retry: *config.retry_policy(),
            clock: config.clock(),
            location: tokio::sync::Mutex::new(None),
        }
    }

    /// The routes on the app's host, asking the location endpoint first if needed.
    pub(crate) async fn routes(&self) -> Result<Routes, Error> {
        let mut loc = self.location.lock().await;
        if let Some(r) = loc.as_ref() {
            return Ok(r.clone());
        }
        let req = wire::build(
            Method::GET,
            Some(paths::LOCATION),
            &self.base.location(),
            None,
            None,
        )?;
        let resp = self.execute_checked(req).await?;
        let location: LocationResponse = wire::parse_json(&resp, "location response")?;
        let host = if location.hostname.is_empty() {
            self.base.host().to_owned()
        } else {
            location.hostname
        };
        let routes = Routes::new(host, self.base.app_id());
        tracing::debug!(host = routes.host(), "location resolved");
        *loc = Some(routes.clone());
        Ok(routes)
    }

    /// [`execute`](Self::execute), then [`wire::check_status`].
    pub(crate) async fn execute_checked(&self, req: ApiRequest) -> Result<HttpResponse, Error> {
        wire::check_status(self.execute(req).await?)
    }

    /// Send through the transport with the configured timeout, retrying idempotent
    /// requests after transient failures, honouring `Retry-After` on 429 and 503 (see
    /// [`RetryPolicy`]). Any status is `Ok`.
    ///
    /// One `latchkey.request` span per call, with the method, the route template (never a
    /// token: tokens are only ever in headers), the final status and the attempt count.
    pub(crate) async fn execute(&self, req: ApiRequest) -> Result<HttpResponse, Error> {
        let span = tracing::debug_span!(
            "latchkey.request",
            method = %req.request.method(),
            route = %req.route.unwrap_or("other"),
            status = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        self.execute_with_retries(req).instrument(span).await
    }

    async fn execute_with_retries(&self, req: ApiRequest) -> Result<HttpResponse, Error> {
        let policy = self.retry;
        let idempotent = RetryPolicy::is_idempotent(req.request.method());
        let max_retries = if idempotent { policy.max_retries() } else { 0 };
        let mut attempt = 0u32;
        loop {
            let result = self.send_once(req.clone(), attempt, idempotent).await;
            let delay = match &result {
                _ if attempt >= max_retries => None,
                Ok(resp) => {
                    let wait = retry_after(resp.headers(), self.clock.now());
                    policy.delay_for(resp.status(), wait, attempt + 1)
                }
                Err(e) if e.is_transient() => Some(policy.backoff(attempt + 1)),
                Err(_) => None,
            };
            let Some(delay) = delay else {
                let span = tracing::Span::current();
                span.record("attempts", attempt + 1);
                match &result {
                    Ok(resp) => {
                        span.record("status", resp.status().as_u16());
                        tracing::debug!("response");
                    }
                    Err(e) => tracing::debug!(error = %e, "no response"),
                }
                return result;
            };
            attempt += 1;
            match &result {
                Ok(resp) => tracing::debug!(
                    status = resp.status().as_u16(),
                    ?delay,
                    attempt,
                    "transient status; retrying"
                ),
                Err(e) => {
                    tracing::debug!(error = %e, ?delay, attempt, "transient failure; retrying")
                }
            }
            tokio::time::sleep(delay).await;
        }
    }

    async fn send_once(
        &self,
        req: ApiRequest,
        attempt: u32,
        idempotent: bool,
    ) -> Result<HttpResponse, Error> {
        let timeout = self.timeout;
        let mut opts = RequestOptions::new()
            .with_timeout(timeout)
            .with_idempotent(idempotent)
            .with_attempt(attempt)
            .with_max_response_bytes(req.max_response_bytes());
        if let Some(route) = req.route {
            opts = opts.with_route(route);
        }
        let is_location = req.route == Some(paths::LOCATION);
        let fut = self.transport.send(req.request, &opts);
        let result = match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "transport error");
                Err(e)
            }
            Err(_) => {
                tracing::debug!("request timed out");
                Err(TransportError::new(
                    TransportErrorKind::Timeout,
                    format!("no response within {timeout:?}"),
                ))
            }
        };
        result.map_err(|e| {
            if e.is_connect() && !is_location {
                // The host may have moved: look the location up again next time.
                if let Ok(mut loc) = self.location.try_lock() {
                    *loc = None;
                }
            }
            Error::transport(e)
        })
    }
}
