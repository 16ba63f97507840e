//! A raw-TCP server that writes byte-exact broken HTTP, one case per path.
//!
//! `GET /<case>` over HTTP/1.1 or over HTTP/2 with prior knowledge (told apart by the client
//! preface) gets the bytes that case names in [`H1_CASES`] or [`H2_CASES`]; `/ok` is a valid
//! response on both. Nothing here goes through an HTTP library: a case writes exactly what it
//! says, so a client's parser meets what real broken servers send.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod h1;
mod h2;
mod hpack;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub use crate::h1::CASES as H1_CASES;
pub use crate::h2::CASES as H2_CASES;

/// How long a closing connection waits for the client to close its side.
const DRAIN: Duration = Duration::from_secs(10);

/// What the server saw since start or the last [`Torture::reset`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// TCP connections accepted.
    pub connections: u64,
    /// Requests whose head was read (HTTP/1.1 request heads, HTTP/2 request HEADERS).
    pub requests: u64,
}

#[derive(Default)]
struct Shared {
    connections: AtomicU64,
    requests: AtomicU64,
    /// Requests per case since the last reset: some cases answer only their first request
    /// badly (a refused stream, then a good answer to the retry).
    hits: Mutex<HashMap<String, u64>>,
}

impl Shared {
    /// Counts a request for `case` and returns how many that case has had, this one included.
    fn hit(&self, case: &str) -> u64 {
        self.requests.fetch_add(1, Relaxed);
        let mut hits = self.hits.lock().unwrap_or_else(PoisonError::into_inner);
        let n = hits.entry(case.to_owned()).or_default();
        *n += 1;
        *n
    }
}

/// A running torture server on 127.0.0.1. Dropping it stops accepting and ends every
/// connection task.
pub struct Torture {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Torture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Torture")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Torture {
    /// Binds an ephemeral port on 127.0.0.1 and serves on the current runtime.
    pub async fn start() -> std::io::Result<Torture> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(Torture { addr, shared, task })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The counters now.
    pub fn counters(&self) -> Counters {
        Counters {
            connections: self.shared.connections.load(Relaxed),
            requests: self.shared.requests.load(Relaxed),
        }
    }

    /// Zeroes the counters and forgets which cases were already hit.
    pub fn reset(&self) {
        self.shared.connections.store(0, Relaxed);
        self.shared.requests.store(0, Relaxed);
        self.shared
            .hits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl Drop for Torture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Connection tasks end with the runtime or when their client goes; each is bounded by
    // DRAIN or by the client's own timeouts.
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        shared.connections.fetch_add(1, Relaxed);
        let shared = shared.clone();
        tokio::spawn(async move {
            let _ = serve(stream, &shared).await;
        });
    }
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

async fn serve(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(4096);
    // Enough bytes to tell the HTTP/2 preface from a request line.
    while buf.len() < PREFACE.len() && PREFACE.starts_with(&buf) {
        if read_some(&mut stream, &mut buf).await? == 0 {
            return Ok(());
        }
    }
    if buf.starts_with(PREFACE) {
        buf.drain(..PREFACE.len());
        h2::serve(stream, buf, shared).await
    } else {
        h1::serve(stream, buf, shared).await
    }
}

/// Reads what is available, appending to `buf`; 0 at EOF.
async fn read_some<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    buf.reserve(16 * 1024);
    r.read_buf(buf).await
}

/// Closes gracefully: FIN, then reads until the client closes too (bounded by [`DRAIN`]), so
/// unread client bytes never turn the close into a reset that could discard what was written.
async fn close<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let _ = stream.shutdown().await;
    hold(stream).await;
}

/// Closes with a TCP reset (linger 0).
fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Waits until the client closes (or [`DRAIN`] passes), writing nothing more.
async fn hold<S: AsyncRead + Unpin>(mut stream: S) {
    let mut sink = vec![0u8; 16 * 1024];
    let _ = tokio::time::timeout(DRAIN, async {
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every case is replayed by the five scenario runners: each has a scenario file.
    #[test]
    fn every_case_has_a_scenario() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios");
        let mut all = String::new();
        for entry in std::fs::read_dir(dir).expect("tests/scenarios") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|x| x == "json") {
                all.push_str(&std::fs::read_to_string(path).expect("scenario"));
            }
        }
        let missing: Vec<&str> = H1_CASES
            .iter()
            .chain(H2_CASES)
            .map(|c| c.0)
            .filter(|c| *c != "ok" && !all.contains(&format!("{{torture}}/{c}\"")))
            .collect();
        assert!(missing.is_empty(), "cases without a scenario: {missing:?}");
        assert!(H1_CASES.len() + H2_CASES.len() - 2 >= 40);
    }
}
