//! Running an axum router on a free loopback port for the lifetime of a handle.

use std::net::SocketAddr;

use tokio::sync::oneshot;

/// A router being served on `127.0.0.1:<port>`; dropping this stops it (graceful
/// shutdown: the listener closes at once, idle keep-alive connections too).
#[derive(Debug)]
pub(crate) struct Served {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Served {
    /// Bind `127.0.0.1:0` and serve `router` on a spawned task of the current runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime, or if no loopback port can be bound.
    pub(crate) async fn start(router: axum::Router) -> Served {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind a loopback port for a fake identity provider");
        let addr = listener
            .local_addr()
            .expect("local address of the listener");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            // An error here means the runtime is going away; nothing to report to.
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Served {
            addr,
            stop: Some(stop),
        }
    }

    /// `http://127.0.0.1:<port>` (no trailing slash).
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A random string of `len` ASCII letters and digits.
pub(crate) fn random_alnum(len: usize) -> String {
    use rand::Rng as _;
    rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
