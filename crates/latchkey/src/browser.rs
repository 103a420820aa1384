//! Sign in with Google, Facebook or Apple from a desktop or CLI app: the server's OAuth
//! redirect flow (route 1c) with a loopback redirect (RFC 8252), from
//! [`App::browser_sign_in`](crate::App::browser_sign_in). Needs the `browser-sign-in`
//! feature.
//!
//! 1. [`App::browser_sign_in`](crate::App::browser_sign_in) listens on `127.0.0.1` on a
//!    port the OS picks and builds the login URL (a random `state`, `redirect =
//!    http://127.0.0.1:{port}`[`CALLBACK_PATH`], the device information).
//! 2. Your app opens [`BrowserSignIn::url`] in the person's browser (this crate launches
//!    nothing).
//! 3. [`BrowserSignIn::finish`] waits: the server sends the browser back to the loopback
//!    listener with the result in the URL fragment, which browsers never send to a
//!    server; the listener serves a small relay page whose script posts the fragment back
//!    to it (same origin). The state is checked, `_baas_error` becomes
//!    [`ErrorKind::SignInFailed`](crate::ErrorKind::SignInFailed), and the login is
//!    completed as [`App::log_in`](crate::App::log_in) completes one.
//!
//! On the server, the provider's `redirect_uris` must allow the redirect: the entry
//! `http://127.0.0.1/latchkey/callback` (no port) allows it on any port.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use latchkey_session::{Error, Secret};
use rand::RngCore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub use latchkey_session::RedirectProvider;

use crate::{App, User};

/// The path of the loopback redirect URI: `http://127.0.0.1:{port}/latchkey/callback`.
pub const CALLBACK_PATH: &str = "/latchkey/callback";
/// Largest request head the listener reads.
const MAX_HEAD: usize = 8 * 1024;
/// Largest posted fragment (the tokens and ids of a login are about 1.5 KiB).
const MAX_BODY: usize = 16 * 1024;
/// How long one connection to the listener may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once (a browser opens a few).
const MAX_CONNECTIONS: usize = 16;

/// A browser sign-in in progress: the URL to open and the loopback listener the browser
/// comes back to. Dropping it (or the [`finish`](Self::finish) future) closes the
/// listener and ends the sign-in.
///
/// ```no_run
/// # async fn demo(app: latchkey::App) -> Result<(), latchkey::Error> {
/// use std::time::Duration;
/// use latchkey::browser::RedirectProvider;
///
/// let sign_in = app.browser_sign_in(RedirectProvider::Google).await?;
/// println!("Open this page to sign in: {}", sign_in.url());
/// let user = sign_in.finish(Duration::from_secs(300)).await?;
/// println!("signed in as {}", user.id());
/// # Ok(()) }
/// ```
pub struct BrowserSignIn {
    app: App,
    provider: RedirectProvider,
    listener: TcpListener,
    redirect: String,
    state: Secret,
    url: String,
    relay: Arc<Relay>,
}

impl fmt::Debug for BrowserSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowserSignIn")
            .field("provider", &self.provider)
            .field("redirect", &self.redirect)
            .finish_non_exhaustive()
    }
}

/// What the listener's connections share.
struct Relay {
    /// `http://127.0.0.1:{port}`: the only origin allowed to post the fragment.
    origin: String,
    /// The relay page's script nonce (Content-Security-Policy).
    nonce: String,
}

impl App {
    /// Start a browser sign-in with `provider`: listen on `127.0.0.1` (a port the OS
    /// picks) and build the login URL. Open [`BrowserSignIn::url`] in the person's
    /// browser, then wait with [`BrowserSignIn::finish`]. See [`crate::browser`].
    ///
    /// Fetches the location first if needed; fails with
    /// [`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig) when no loopback port
    /// can be opened.
    pub async fn browser_sign_in(
        &self,
        provider: RedirectProvider,
    ) -> Result<BrowserSignIn, Error> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| Error::invalid_config(format!("cannot listen on a loopback port: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::invalid_config(format!("cannot listen on a loopback port: {e}")))?
            .port();
        let origin = format!("http://127.0.0.1:{port}");
        let redirect = format!("{origin}{CALLBACK_PATH}");
        let state = random_token();
        let url = self
            .core()
            .redirect_login_url(provider, &redirect, &state)
            .await?;
        Ok(BrowserSignIn {
            app: self.clone(),
            provider,
            listener,
            redirect,
            state: Secret::from(state),
            url,
            relay: Arc::new(Relay {
                origin,
                nonce: random_token(),
            }),
        })
    }
}

impl BrowserSignIn {
    /// The URL to open in the person's browser (the server's login route; it holds the
    /// state, so keep it out of logs).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The loopback redirect URI the browser comes back to
    /// (`http://127.0.0.1:{port}/latchkey/callback`).
    pub fn redirect_uri(&self) -> &str {
        &self.redirect
    }

    /// Wait for the browser to come back (at most `timeout`), then complete the login:
    /// the user is saved and made current, as [`App::log_in`] does.
    ///
    /// Errors: [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) when nothing came back
    /// in time (the listener is closed); [`ErrorKind::StateMismatch`](crate::ErrorKind::StateMismatch)
    /// when the result is not this sign-in's; [`ErrorKind::SignInFailed`](crate::ErrorKind::SignInFailed)
    /// with the server's message when the person denied consent or the server refused the
    /// sign-in; any error of [`App::log_in`] after that.
    pub async fn finish(self, timeout: Duration) -> Result<User, Error> {
        let BrowserSignIn {
            app,
            provider,
            listener,
            state,
            relay,
            ..
        } = self;
        let fragment = tokio::time::timeout(timeout, receive(listener, relay))
            .await
            .map_err(|_| {
                Error::timeout(format!(
                    "no browser sign-in came back within {} s",
                    timeout.as_secs()
                ))
            })?;
        app.core()
            .complete_redirect_login(provider, fragment.expose(), state.expose())
            .await
            .map(User::from)
    }
}

/// 32 random bytes, hex.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Serve the listener until a fragment is posted; the listener and every connection are
/// dropped when this returns or is dropped.
async fn receive(listener: TcpListener, relay: Arc<Relay>) -> Secret {
    let (tx, mut rx) = mpsc::channel::<Secret>(1);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            Some(fragment) = rx.recv() => return fragment,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) if connections.len() < MAX_CONNECTIONS => {
                    let (relay, tx) = (relay.clone(), tx.clone());
                    connections.spawn(async move {
                        let _ = tokio::time::timeout(CONNECTION_TIMEOUT, serve(stream, &relay, &tx))
                            .await;
                    });
                }
                Ok(_) => {} // too many at once: this one is closed unanswered
                // Out of file descriptors or the like: try again a little later.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// One request on one connection: the relay page (`GET`), the posted fragment (`POST`
/// from the relay page's origin), or 404.
async fn serve(mut stream: TcpStream, relay: &Relay, tx: &mpsc::Sender<Secret>) {
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() > MAX_HEAD {
            return respond(&mut stream, "431 Request Header Fields Too Large", "").await;
        }
        let mut chunk = [0u8; 2048];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let Ok(head) = std::str::from_utf8(&buf[..head_end]) else {
        return respond(&mut stream, "400 Bad Request", "").await;
    };
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (request_line.next(), request_line.next().unwrap_or_default());
    let path = target.split('?').next().unwrap_or_default();
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    };
    if path != CALLBACK_PATH {
        return respond(&mut stream, "404 Not Found", "").await;
    }
    match method {
        Some("GET") => {
            let page = relay_page(&relay.nonce);
            let csp = format!(
                "default-src 'none'; script-src 'nonce-{}'; connect-src 'self'; \
                 base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
                relay.nonce
            );
            respond_with(
                &mut stream,
                "200 OK",
                "text/html; charset=utf-8",
                Some(&csp),
                &page,
            )
            .await
        }
        Some("POST") => {
            // Only the relay page (same origin) may post: a page elsewhere in the browser
            // cannot end the sign-in.
            if header("origin") != Some(relay.origin.as_str()) {
                return respond(&mut stream, "403 Forbidden", "").await;
            }
            let length = header("content-length").and_then(|v| v.parse::<usize>().ok());
            let Some(length) = length.filter(|l| *l <= MAX_BODY) else {
                return respond(&mut stream, "413 Content Too Large", "").await;
            };
            let mut body = buf[head_end..].to_vec();
            while body.len() < length {
                let mut chunk = [0u8; 4096];
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => body.extend_from_slice(&chunk[..n]),
                }
            }
            body.truncate(length);
            let Ok(fragment) = String::from_utf8(body) else {
                return respond(&mut stream, "400 Bad Request", "").await;
            };
            if !fragment.contains("_baas_state=") {
                return respond(&mut stream, "400 Bad Request", "No sign-in result here.").await;
            }
            let _ = tx.try_send(Secret::from(fragment));
            respond(
                &mut stream,
                "200 OK",
                "Received. You can close this window and return to the app.",
            )
            .await
        }
        _ => respond(&mut stream, "405 Method Not Allowed", "").await,
    }
}

/// The relay page: posts `location.hash` back to the listener, then clears it from the
/// address bar and history.
fn relay_page(nonce: &str) -> String {
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Signing in</title></head><body><p id="m">Signing in…</p>
<script nonce="{nonce}">
var result = location.hash.slice(1);
history.replaceState(null, "", location.pathname);
fetch(location.pathname, {{ method: "POST", headers: {{ "Content-Type": "text/plain" }}, body: result }})
  .then(function (r) {{ return r.text(); }})
  .then(function (t) {{ document.getElementById("m").textContent = t; }})
  .catch(function () {{ document.getElementById("m").textContent = "The app is no longer waiting for this sign-in."; }});
</script></body></html>"#
    )
}

async fn respond(stream: &mut TcpStream, status: &str, text: &str) {
    respond_with(stream, status, "text/plain; charset=utf-8", None, text).await;
}

async fn respond_with(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    csp: Option<&str>,
    body: &str,
) {
    let csp = csp
        .map(|c| format!("Content-Security-Policy: {c}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
         X-Content-Type-Options: nosniff\r\n{csp}Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}
