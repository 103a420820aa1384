//! Misbehaving servers on raw TCP, for fault classification.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A server task that stops when dropped.
pub(crate) struct RawServer {
    pub(crate) addr: SocketAddr,
    task: JoinHandle<()>,
}

impl RawServer {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts every connection and drops the socket at once, before reading.
pub(crate) async fn accept_then_close() -> RawServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    RawServer { addr, task }
}

/// Reads the request head, then writes `reply` and closes the connection.
pub(crate) async fn reply_then_close(reply: &'static [u8]) -> RawServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket.write_all(reply).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    RawServer { addr, task }
}

/// Answers the first bytes it reads, whatever they are (a TLS ClientHello
/// too), with `reply`, then closes the connection.
pub(crate) async fn answer_first_read(reply: &'static [u8]) -> RawServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                if let Ok(1..) = socket.read(&mut buf).await {
                    let _ = socket.write_all(reply).await;
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    RawServer { addr, task }
}

/// Reads the request head, writes `reply`, then holds the connection open
/// without another byte.
pub(crate) async fn reply_then_stall(reply: &'static [u8]) -> RawServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = socket.write_all(reply).await;
            held.push(socket);
        }
    });
    RawServer { addr, task }
}

/// A port on 127.0.0.1 that nothing listens on: bound, then released.
pub(crate) fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
