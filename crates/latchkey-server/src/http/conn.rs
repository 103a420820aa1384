//! The connection edge: the accept loop, the connection cap and the per-connection
//! timeouts that keep slow or idle clients (slowloris) from holding the server.
//!
//! - **Connection cap** ([`HttpConfig::max_connections`]): the accept loop takes a
//!   permit before it accepts, so past the cap new connections wait in the kernel's
//!   listen queue (holding no file descriptor of the server) until one closes.
//! - **Header-read timeout**: a connection must deliver a whole request head within
//!   `header_read_timeout` of its opening, or of the first byte of a later request on
//!   a kept-alive connection; trickling bytes does not extend it.
//! - **Idle timeout**: a kept-alive connection on which nothing arrives for
//!   `idle_timeout` after its last response is closed. The same clock runs while the
//!   server waits for a client to read a response it does not read.
//! - **Body-read timeout**: enforced where bodies are read ([`super::extract`]): the
//!   whole body must arrive within `body_read_timeout` (408, connection closed).
//!
//! hyper answers some malformed requests itself (400, 414, 431) with an empty body;
//! [`rewrite_bare_error`] turns those answers into the JSON error shape on their way
//! to the socket, so that every error a client sees has it.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{Request, StatusCode};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use super::error::ApiError;
use crate::config::HttpConfig;
use crate::config::edge::DEFAULT_BODY_READ_TIMEOUT_SECS;

/// Most header lines in a request; more are answered 431.
const MAX_HEADERS: usize = 100;
/// Largest request head hyper buffers (request line and headers); a larger one is
/// answered 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The body-read timeout of the connection a request came on, a request extension
/// read by the body extractors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyReadTimeout(pub(crate) Duration);

impl Default for BodyReadTimeout {
    fn default() -> Self {
        BodyReadTimeout(Duration::from_secs(DEFAULT_BODY_READ_TIMEOUT_SECS))
    }
}

/// Length of the listen queue (capped by the kernel's `somaxconn`): connections past
/// [`HttpConfig::max_connections`] wait there.
const LISTEN_BACKLOG: u32 = 1024;

/// Listen on `addr` with a [`LISTEN_BACKLOG`]-long queue.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serve `router` on `listener` until `stop` fires (or its sender is dropped); then
/// stop accepting, ask every connection to finish its request and close, and return
/// when all are closed.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpConfig,
    mut stop: oneshot::Receiver<()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (closing_tx, closing) = watch::channel(false);
    let limits = Arc::new(limits);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // never closed
            },
            _ = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        tokio::spawn(serve_connection(
            stream,
            peer,
            router.clone(),
            limits.clone(),
            closing.clone(),
            permit,
        ));
    }
    drop(listener);
    closing_tx.send_replace(true);
    // Every connection holds a permit until it is closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = permits.acquire_many(all).await;
}

/// Log a failed accept; wait a little when the process is out of resources (e.g.
/// open files), so that the loop does not spin.
async fn accept_error(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept error");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Serve one connection until it ends, its deadline passes or the server stops.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Arc<HttpConfig>,
    mut closing: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let (clock, mut deadline) = ConnClock::new(&limits);
    let io = TokioIo::new(GuardedIo {
        inner: stream,
        clock: clock.clone(),
        pending: Vec::new(),
    });
    let body_timeout = BodyReadTimeout(limits.body_read_timeout());
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let in_flight = InFlight::start(clock.clone());
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(body_timeout);
        let router = router.clone();
        async move {
            let Ok(resp) = router.oneshot(req.map(Body::new)).await;
            Ok::<_, Infallible>(resp.map(|body| GuardedBody {
                inner: body,
                _in_flight: in_flight,
            }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            () = expired(&mut deadline) => {
                tracing::debug!(%peer, "connection timed out; closing it");
                return;
            }
            _ = closing.wait_for(|closing| *closing), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Resolves once the connection's deadline has passed (never while a request is
/// being handled, when there is none).
async fn expired(deadline: &mut watch::Receiver<Option<Instant>>) {
    loop {
        let current = *deadline.borrow_and_update();
        match current {
            None => {
                if deadline.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {
                        if *deadline.borrow() == Some(at) {
                            return;
                        }
                    }
                    changed = deadline.changed() => {
                        if changed.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                }
            }
        }
    }
}

/// What a connection is doing, which decides its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Receiving a request head (deadline: header-read timeout).
    Head,
    /// Handling this many requests (no deadline; the body timeout is the extractors').
    Busy(usize),
    /// Between requests, or sending a response (deadline: idle timeout).
    Idle,
}

/// The phase and deadline of one connection.
struct ConnClock {
    phase: Mutex<Phase>,
    deadline: watch::Sender<Option<Instant>>,
    header_read: Duration,
    idle: Duration,
}

impl ConnClock {
    /// A connection just accepted: its head is due within the header-read timeout.
    fn new(limits: &HttpConfig) -> (Arc<ConnClock>, watch::Receiver<Option<Instant>>) {
        let header_read = limits.header_read_timeout();
        let (deadline, rx) = watch::channel(Some(Instant::now() + header_read));
        let clock = ConnClock {
            phase: Mutex::new(Phase::Head),
            deadline,
            header_read,
            idle: limits.idle_timeout(),
        };
        (Arc::new(clock), rx)
    }

    fn update(&self, f: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        let before = *phase;
        *phase = f(before);
        if *phase == before {
            return;
        }
        let deadline = match *phase {
            Phase::Head => Some(Instant::now() + self.header_read),
            Phase::Busy(_) => None,
            Phase::Idle => Some(Instant::now() + self.idle),
        };
        self.deadline.send_replace(deadline);
    }

    /// Bytes arrived: on an idle connection they start a request head.
    fn bytes_read(&self) {
        self.update(|p| if p == Phase::Idle { Phase::Head } else { p });
    }

    fn request_started(&self) {
        self.update(|p| match p {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        });
    }

    fn request_finished(&self) {
        self.update(|p| match p {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle,
        });
    }
}

/// A request in progress, from its head until its response body is sent (or
/// dropped).
struct InFlight(Arc<ConnClock>);

impl InFlight {
    fn start(clock: Arc<ConnClock>) -> InFlight {
        clock.request_started();
        InFlight(clock)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A response body that keeps its request [`InFlight`] until hyper has taken it all.
struct GuardedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for GuardedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, telling the connection's clock when bytes arrive and giving hyper's
/// own error answers a JSON body.
struct GuardedIo {
    inner: TcpStream,
    clock: Arc<ConnClock>,
    /// A rewritten answer not yet fully written.
    pending: Vec<u8>,
}

impl GuardedIo {
    /// Write what is pending; ready when nothing is.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for GuardedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.clock.bytes_read();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for GuardedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(rewritten) = rewrite_bare_error(buf) {
            this.pending = rewritten;
            // Written by later calls (hyper flushes right after) if not now.
            if let Poll::Ready(Err(e)) = this.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// If `buf` is exactly one of hyper's own error answers to a request it could not
/// parse (a 400, 414 or 431 head with `content-length: 0` and no content type: every
/// error answer of the application has a JSON body), the same answer with the JSON
/// error body; otherwise `None`.
fn rewrite_bare_error(buf: &[u8]) -> Option<Vec<u8>> {
    // Every write of every answer passes here: look at the status code before anything
    // that reads the whole buffer.
    let code = buf
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| buf.strip_prefix(b"HTTP/1.0 "))?
        .get(..3)?;
    if !matches!(code, b"400" | b"414" | b"431") {
        return None;
    }
    let status_line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(buf).ok()?;
    if !head.ends_with("\r\n\r\n") || head.find("\r\n\r\n")? != head.len() - 4 {
        return None;
    }
    let status_line = &head[..status_line_end];
    let status = StatusCode::from_bytes(code).ok()?;
    let fields: Vec<&str> = head[status_line_end + 2..head.len() - 4]
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .collect();
    let name_is = |line: &str, name: &str| {
        line.split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
    };
    let empty = fields.iter().any(|l| {
        name_is(l, "content-length") && l.split_once(':').is_some_and(|(_, v)| v.trim() == "0")
    });
    if !empty || fields.iter().any(|l| name_is(l, "content-type")) {
        return None;
    }
    let body = serde_json::to_vec(&ApiError::from_status(status).body()).ok()?;
    let mut out = format!(
        "{status_line}\r\ncontent-type: {}\r\ncontent-length: {}\r\n",
        super::response::APPLICATION_JSON,
        body.len()
    );
    for line in fields.iter().filter(|l| {
        !name_is(l, "content-length") && !name_is(l, "connection") && !name_is(l, "content-type")
    }) {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("connection: close\r\n\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::edge::*;

    #[test]
    fn bare_parse_errors_get_a_json_body() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Sun, 29 Nov 2026 10:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite_bare_error(bare).unwrap()).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(
            head.contains("\r\ncontent-type: application/json\r\n"),
            "{head}"
        );
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
        assert!(head.contains("\r\ndate: Sun"), "{head}");
        assert!(!head.contains("content-length: 0"), "{head}");
        let parsed: latchkey_protocol::ErrorBody = serde_json::from_str(body).unwrap();
        assert_eq!(parsed.error_code.as_deref(), Some("BadRequest"));
        for status in ["400 Bad Request", "414 URI Too Long"] {
            let bare = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
            assert!(rewrite_bare_error(bare.as_bytes()).is_some(), "{status}");
        }
    }

    #[test]
    fn application_answers_are_left_alone() {
        for untouched in [
            // A JSON error of the application.
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n"[..],
            // Any other status.
            b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            // A head followed by a body, or two heads.
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nHTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
            // Not a response head.
            b"{\"error\":\"x\"}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        ] {
            assert!(
                rewrite_bare_error(untouched).is_none(),
                "{}",
                String::from_utf8_lossy(untouched)
            );
        }
    }

    #[test]
    fn http_config_bounds() {
        assert!(HttpConfig::default().validate().is_ok());
        for bad in [
            HttpConfig {
                header_read_timeout_secs: 0,
                ..HttpConfig::default()
            },
            HttpConfig {
                body_read_timeout_secs: MAX_HTTP_TIMEOUT_SECS + 1,
                ..HttpConfig::default()
            },
            HttpConfig {
                idle_timeout_secs: 0,
                ..HttpConfig::default()
            },
            HttpConfig {
                max_connections: 0,
                ..HttpConfig::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
