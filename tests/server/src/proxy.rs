//! A forwarding HTTP proxy on loopback: `CONNECT` tunnels and absolute-form requests, with
//! optional Basic auth. One request head per client connection: an absolute-form request is
//! sent upstream in origin form with `Connection: close`, so the origin's answer closes both.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the proxy has done since it started (or was last reset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProxyCounters {
    /// `CONNECT` tunnels opened.
    pub tunnels: u64,
    /// Absolute-form requests forwarded.
    pub forwarded: u64,
    /// Requests answered 407.
    pub rejected: u64,
}

#[derive(Default)]
struct Counts {
    tunnels: AtomicU64,
    forwarded: AtomicU64,
    rejected: AtomicU64,
}

/// A running proxy; dropping it stops accepting.
#[derive(Debug)]
pub struct TestProxy {
    addr: SocketAddr,
    counts: Arc<Counts>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counts").finish_non_exhaustive()
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestProxy {
    /// Starts on 127.0.0.1. With `credentials` (`user:password`), requests without a matching
    /// `Proxy-Authorization: Basic` get 407.
    pub async fn start(credentials: Option<&str>) -> std::io::Result<TestProxy> {
        Self::start_to(credentials, None).await
    }

    /// As [`TestProxy::start`]; with `upstream`, every request and tunnel goes there whatever
    /// host it names (so a test can proxy a name nothing resolves).
    pub async fn start_to(
        credentials: Option<&str>,
        upstream: Option<SocketAddr>,
    ) -> std::io::Result<TestProxy> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(Counts::default());
        let want = credentials.map(|c| format!("basic {}", b64(c.as_bytes())));
        let c = counts.clone();
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let (c, want) = (c.clone(), want.clone());
                tokio::spawn(async move {
                    let _ = serve(s, &c, want.as_deref(), upstream).await;
                });
            }
        });
        Ok(TestProxy { addr, counts, task })
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, with `userinfo@` when given.
    pub fn url(&self, userinfo: Option<&str>) -> String {
        match userinfo {
            Some(u) => format!("http://{u}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    /// The counters.
    pub fn counters(&self) -> ProxyCounters {
        ProxyCounters {
            tunnels: self.counts.tunnels.load(Relaxed),
            forwarded: self.counts.forwarded.load(Relaxed),
            rejected: self.counts.rejected.load(Relaxed),
        }
    }

    /// Zeroes the counters.
    pub fn reset(&self) {
        for c in [
            &self.counts.tunnels,
            &self.counts.forwarded,
            &self.counts.rejected,
        ] {
            c.store(0, Relaxed);
        }
    }
}

async fn serve(
    mut client: TcpStream,
    c: &Counts,
    want: Option<&str>,
    upstream: Option<SocketAddr>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Ok(());
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let rest = buf[end..].to_vec();
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let headers: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    let auth = headers.iter().find_map(|h| {
        let (k, v) = h.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("proxy-authorization")
            .then(|| v.trim().to_ascii_lowercase())
    });
    if let Some(want) = want
        && auth.as_deref() != Some(&want.to_ascii_lowercase())
    {
        c.rejected.fetch_add(1, Relaxed);
        client
            .write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
        return Ok(());
    }
    if method == "CONNECT" {
        let up = match upstream {
            Some(a) => TcpStream::connect(a).await,
            None => TcpStream::connect(target).await,
        };
        let Ok(mut up) = up else {
            client
                .write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                .await?;
            return Ok(());
        };
        c.tunnels.fetch_add(1, Relaxed);
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        up.write_all(&rest).await?;
        tokio::io::copy_bidirectional(&mut client, &mut up).await?;
        return Ok(());
    }
    let Some(after) = target.strip_prefix("http://") else {
        client
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
        return Ok(());
    };
    let (authority, path) = after.split_at(after.find('/').unwrap_or(after.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut up = match upstream {
        Some(a) => TcpStream::connect(a).await?,
        None => TcpStream::connect(authority).await?,
    };
    c.forwarded.fetch_add(1, Relaxed);
    let version = parts.next().unwrap_or("HTTP/1.1");
    let mut out = format!("{method} {path} {version}\r\n");
    for h in headers {
        let name = h
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !matches!(
            name.as_str(),
            "proxy-authorization" | "proxy-connection" | "connection"
        ) {
            out.push_str(h);
            out.push_str("\r\n");
        }
    }
    out.push_str("Via: 1.1 wirecore-test-proxy\r\nConnection: close\r\n\r\n");
    up.write_all(out.as_bytes()).await?;
    up.write_all(&rest).await?;
    tokio::io::copy_bidirectional(&mut client, &mut up).await?;
    Ok(())
}

fn b64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(A[((n >> (18 - 6 * i)) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}
