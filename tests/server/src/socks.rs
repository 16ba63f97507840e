//! A SOCKS5 proxy on loopback (RFC 1928 `CONNECT` only), with optional user name and
//! password (RFC 1929). It records every target a client asked for, so a test can tell a name
//! (`socks5h://`) from an address the client resolved (`socks5://`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the SOCKS5 proxy has done since it started (or was last reset).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SocksCounters {
    /// Tunnels opened (the `CONNECT` succeeded).
    pub tunnels: u64,
    /// Clients refused for authentication (no acceptable method, wrong user name or password).
    pub rejected: u64,
    /// `CONNECT`s that failed to reach their target (answered with a failure reply).
    pub failed: u64,
    /// Every target asked for, in order: `name:HOST:PORT` for a name, `ip:ADDR` for an
    /// address (`ip:127.0.0.1:80`, `ip:[::1]:443`).
    pub targets: Vec<String>,
}

#[derive(Default)]
struct Counts {
    tunnels: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    targets: Mutex<Vec<String>>,
}

/// A running SOCKS5 proxy; dropping it stops accepting.
pub struct TestSocks {
    addr: SocketAddr,
    counts: Arc<Counts>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for TestSocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestSocks")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for TestSocks {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestSocks {
    /// Starts on 127.0.0.1. With `credentials` (`user:password`), only clients that offer
    /// user name and password and send these get a tunnel.
    pub async fn start(credentials: Option<&str>) -> std::io::Result<TestSocks> {
        Self::start_to(credentials, None).await
    }

    /// As [`TestSocks::start`]; with `upstream`, every tunnel goes there whatever target it
    /// names (so a test can ask for a name nothing resolves).
    pub async fn start_to(
        credentials: Option<&str>,
        upstream: Option<SocketAddr>,
    ) -> std::io::Result<TestSocks> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(Counts::default());
        let want = credentials.map(|c| {
            let (u, p) = c.split_once(':').unwrap_or((c, ""));
            (u.as_bytes().to_vec(), p.as_bytes().to_vec())
        });
        let c = counts.clone();
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let (c, want) = (c.clone(), want.clone());
                tokio::spawn(async move {
                    let _ = serve(s, &c, want.as_ref(), upstream).await;
                });
            }
        });
        Ok(TestSocks { addr, counts, task })
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `SCHEME://127.0.0.1:PORT` (`socks5` or `socks5h`), with `userinfo@` when given.
    pub fn url(&self, scheme: &str, userinfo: Option<&str>) -> String {
        match userinfo {
            Some(u) => format!("{scheme}://{u}@{}", self.addr),
            None => format!("{scheme}://{}", self.addr),
        }
    }

    /// The counters.
    pub fn counters(&self) -> SocksCounters {
        SocksCounters {
            tunnels: self.counts.tunnels.load(Relaxed),
            rejected: self.counts.rejected.load(Relaxed),
            failed: self.counts.failed.load(Relaxed),
            targets: self
                .counts
                .targets
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    /// Zeroes the counters and forgets the targets.
    pub fn reset(&self) {
        self.counts.tunnels.store(0, Relaxed);
        self.counts.rejected.store(0, Relaxed);
        self.counts.failed.store(0, Relaxed);
        self.counts
            .targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// A reply with an all-zero IPv4 bound address.
fn reply(code: u8) -> [u8; 10] {
    [5, code, 0, 1, 0, 0, 0, 0, 0, 0]
}

async fn serve(
    mut client: TcpStream,
    c: &Counts,
    want: Option<&(Vec<u8>, Vec<u8>)>,
    upstream: Option<SocketAddr>,
) -> std::io::Result<()> {
    let mut two = [0u8; 2];
    client.read_exact(&mut two).await?;
    if two[0] != 5 {
        return Ok(());
    }
    let mut methods = vec![0u8; usize::from(two[1])];
    client.read_exact(&mut methods).await?;
    let method = if want.is_some() { 2 } else { 0 };
    if !methods.contains(&method) {
        c.rejected.fetch_add(1, Relaxed);
        client.write_all(&[5, 0xff]).await?;
        return Ok(());
    }
    client.write_all(&[5, method]).await?;
    if let Some((user, pass)) = want {
        let mut ver_len = [0u8; 2];
        client.read_exact(&mut ver_len).await?;
        let mut u = vec![0u8; usize::from(ver_len[1])];
        client.read_exact(&mut u).await?;
        let mut plen = [0u8; 1];
        client.read_exact(&mut plen).await?;
        let mut p = vec![0u8; usize::from(plen[0])];
        client.read_exact(&mut p).await?;
        if ver_len[0] != 1 || &u != user || &p != pass {
            c.rejected.fetch_add(1, Relaxed);
            client.write_all(&[1, 1]).await?;
            return Ok(());
        }
        client.write_all(&[1, 0]).await?;
    }
    let mut head = [0u8; 4];
    client.read_exact(&mut head).await?;
    let (target, addrs): (String, Vec<SocketAddr>) = match head[3] {
        1 => {
            let mut b = [0u8; 6];
            client.read_exact(&mut b).await?;
            let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            let a = SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([b[4], b[5]]));
            (format!("ip:{a}"), vec![a])
        }
        4 => {
            let mut b = [0u8; 18];
            client.read_exact(&mut b).await?;
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[..16]);
            let a = SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(o)),
                u16::from_be_bytes([b[16], b[17]]),
            );
            (format!("ip:{a}"), vec![a])
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0]) + 2];
            client.read_exact(&mut name).await?;
            let port = u16::from_be_bytes([name[name.len() - 2], name[name.len() - 1]]);
            let name = String::from_utf8_lossy(&name[..name.len() - 2]).into_owned();
            let addrs = match upstream {
                Some(_) => Vec::new(),
                None => tokio::net::lookup_host((name.as_str(), port))
                    .await
                    .map(Iterator::collect)
                    .unwrap_or_default(),
            };
            (format!("name:{name}:{port}"), addrs)
        }
        _ => {
            client.write_all(&reply(8)).await?;
            return Ok(());
        }
    };
    c.targets
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(target);
    if head[0] != 5 || head[1] != 1 {
        client.write_all(&reply(7)).await?;
        return Ok(());
    }
    let addrs = upstream.map_or(addrs, |a| vec![a]);
    if addrs.is_empty() {
        c.failed.fetch_add(1, Relaxed);
        client.write_all(&reply(4)).await?;
        return Ok(());
    }
    let Ok(mut up) = TcpStream::connect(&addrs[..]).await else {
        c.failed.fetch_add(1, Relaxed);
        client.write_all(&reply(5)).await?;
        return Ok(());
    };
    c.tunnels.fetch_add(1, Relaxed);
    client.write_all(&reply(0)).await?;
    tokio::io::copy_bidirectional(&mut client, &mut up).await?;
    Ok(())
}
