//! A TCP proxy between an agent and the server that can hold the server's
//! answer back *after* the server has committed a report.
//!
//! TLS hides the HTTP status from a proxy, so the proxy decides with the
//! server's own word: once armed, before forwarding each chunk from server
//! to client it asks the server (directly, not through itself) for
//! `trustwatch_reports_stored_total`. The server commits before it writes
//! its 202, so a chunk read after the counter rose is the answer (or later):
//! from then on nothing more reaches the client. The agent is left waiting
//! for an acknowledgement of a report the server already holds — exactly
//! where a kill hurts most.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::client::ApiClient;

struct Shared {
    upstream: Mutex<SocketAddr>,
    /// Some(baseline) while armed: hold once the counter exceeds it.
    armed: Mutex<Option<(ApiClient, u64)>>,
    holding: AtomicBool,
    held_bytes: AtomicU64,
    connections: AtomicU64,
}

pub struct HoldingProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl HoldingProxy {
    pub async fn start(upstream: SocketAddr) -> HoldingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            armed: Mutex::new(None),
            holding: AtomicBool::new(false),
            held_bytes: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                s.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(pipe(client, s.clone()));
            }
        });
        HoldingProxy { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn set_upstream(&self, a: SocketAddr) {
        *self.shared.upstream.lock().unwrap() = a;
    }

    /// From now on, hold every server→client byte once the server's
    /// stored-reports counter has risen above its present value.
    pub async fn arm(&self, server: ApiClient) {
        let base = server.metric("trustwatch_reports_stored_total").await;
        *self.shared.armed.lock().unwrap() = Some((server, base));
    }

    pub fn disarm(&self) {
        *self.shared.armed.lock().unwrap() = None;
        self.shared.holding.store(false, Ordering::SeqCst);
    }

    /// True once an answer is being held back.
    pub fn holding(&self) -> bool {
        self.shared.holding.load(Ordering::SeqCst)
    }

    pub fn held_bytes(&self) -> u64 {
        self.shared.held_bytes.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for HoldingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn should_hold(s: &Shared) -> bool {
    if s.holding.load(Ordering::SeqCst) {
        return true;
    }
    let armed = s.armed.lock().unwrap().clone();
    if let Some((client, base)) = armed {
        if client.metric("trustwatch_reports_stored_total").await > base {
            s.holding.store(true, Ordering::SeqCst);
            return true;
        }
    }
    false
}

async fn pipe(mut client: TcpStream, s: Arc<Shared>) {
    let up = *s.upstream.lock().unwrap();
    let Ok(mut server) = TcpStream::connect(up).await else {
        return; // the client sees its connection closed, as with a dead server
    };
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let c2s = async {
        let mut buf = vec![0u8; 16384];
        loop {
            match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = sw.shutdown().await;
    };
    let s2c = async {
        let mut buf = vec![0u8; 16384];
        loop {
            match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if should_hold(&s).await {
                        s.held_bytes.fetch_add(n as u64, Ordering::SeqCst);
                        continue;
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        if !s.holding.load(Ordering::SeqCst) {
            let _ = cw.shutdown().await;
        }
    };
    tokio::join!(c2s, s2c);
    if s.holding.load(Ordering::SeqCst) {
        // Keep the client's socket open: it must wait, not see an EOF.
        std::future::pending::<()>().await;
    }
}
