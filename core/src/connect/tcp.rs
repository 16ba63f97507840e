//! TCP connect with Happy Eyeballs (RFC 8305): addresses interleaved by family, a new attempt
//! started every `happy_eyeballs_delay_ms` or as soon as one fails; the first to connect wins.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

use crate::config::TcpConfig;

/// Orders addresses alternating families, starting with the family of the first.
fn interleave(addrs: &[IpAddr]) -> Vec<IpAddr> {
    let Some(first) = addrs.first() else {
        return Vec::new();
    };
    let (mut a, mut b): (Vec<IpAddr>, Vec<IpAddr>) =
        addrs.iter().partition(|ip| ip.is_ipv6() == first.is_ipv6());
    a.reverse();
    b.reverse();
    let mut out = Vec::with_capacity(addrs.len());
    while !a.is_empty() || !b.is_empty() {
        out.extend(a.pop());
        out.extend(b.pop());
    }
    out
}

pub(crate) async fn connect(addrs: &[IpAddr], port: u16, cfg: &TcpConfig) -> io::Result<TcpStream> {
    let order = interleave(addrs);
    let delay = Duration::from_millis(cfg.happy_eyeballs_delay_ms);
    let mut next = order.into_iter().map(|ip| SocketAddr::new(ip, port));
    let mut attempts = FuturesUnordered::new();
    let mut last_err: Option<io::Error> = None;
    if let Some(a) = next.next() {
        attempts.push(TcpStream::connect(a));
    }
    loop {
        if attempts.is_empty() {
            return Err(last_err.unwrap_or_else(|| io::Error::other("no addresses to connect to")));
        }
        tokio::select! {
            Some(res) = attempts.next() => match res {
                Ok(s) => return configure(s, cfg),
                Err(e) => {
                    last_err = Some(e);
                    if let Some(a) = next.next() {
                        attempts.push(TcpStream::connect(a));
                    }
                }
            },
            () = tokio::time::sleep(delay), if next.len() > 0 => {
                if let Some(a) = next.next() {
                    attempts.push(TcpStream::connect(a));
                }
            }
        }
    }
}

fn configure(s: TcpStream, cfg: &TcpConfig) -> io::Result<TcpStream> {
    s.set_nodelay(cfg.nodelay)?;
    if cfg.keepalive_ms > 0 {
        let ka = TcpKeepalive::new().with_time(Duration::from_millis(cfg.keepalive_ms));
        SockRef::from(&s).set_tcp_keepalive(&ka)?;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaves_families() {
        let v6a: IpAddr = "::1".parse().unwrap();
        let v6b: IpAddr = "::2".parse().unwrap();
        let v4a: IpAddr = "127.0.0.1".parse().unwrap();
        let v4b: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(interleave(&[v6a, v6b, v4a, v4b]), vec![v6a, v4a, v6b, v4b]);
        assert_eq!(interleave(&[v4a, v6a]), vec![v4a, v6a]);
        assert!(interleave(&[]).is_empty());
    }
}
