//! The SOCKS5 client handshake (RFC 1928), with user name and password (RFC 1929) when the
//! proxy URL carries them: after it, the TCP stream to the proxy is a tunnel to the origin,
//! and TLS (with ALPN, so h2) or plain HTTP runs inside it as on a direct connection.

use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::proxy::Proxy;
use crate::error::{Error, ErrorKind};

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0x00;
const USER_PASSWORD: u8 = 0x02;
const NO_ACCEPTABLE: u8 = 0xff;
const CONNECT: u8 = 0x01;

/// Where the tunnel goes: an address the client resolved (`socks5://`) or a name the proxy
/// resolves (`socks5h://`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    Addr(SocketAddr),
    Name(&'a str, u16),
}

impl std::fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Addr(a) => write!(f, "{a}"),
            Target::Name(n, p) => write!(f, "{n}:{p}"),
        }
    }
}

/// A failed handshake: the proxy's reply code when it answered the `CONNECT` with one.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) reply: Option<u8>,
    pub(crate) error: Error,
}

impl Failed {
    /// The proxy could not reach this address (network or host unreachable, refused): another
    /// address of the same name may work.
    pub(crate) fn unreachable(&self) -> bool {
        matches!(self.reply, Some(3..=5))
    }
}

fn reply_text(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned reply code",
    }
}

/// Runs the handshake on `tcp` (connected to `proxy`) for a tunnel to `target`.
pub(crate) async fn connect(
    tcp: &mut TcpStream,
    proxy: &Proxy,
    target: Target<'_>,
) -> Result<(), Failed> {
    let fail = |reply, error| Failed { reply, error };
    let plain = |msg: String| fail(None, Error::new(ErrorKind::Connect, msg));
    let io_err = |e: std::io::Error| {
        let msg = if e.kind() == std::io::ErrorKind::UnexpectedEof {
            format!(
                "SOCKS5 proxy {} closed the connection during the handshake for {target}",
                proxy.key
            )
        } else {
            format!(
                "SOCKS5 proxy {} failed during the handshake for {target}",
                proxy.key
            )
        };
        fail(None, Error::new(ErrorKind::Connect, msg).with_source(e))
    };

    // Greeting: offer user/password only when the URL has credentials.
    let greeting: &[u8] = if proxy.credentials.is_some() {
        &[VERSION, 2, NO_AUTH, USER_PASSWORD]
    } else {
        &[VERSION, 1, NO_AUTH]
    };
    tcp.write_all(greeting).await.map_err(io_err)?;
    let mut choice = [0u8; 2];
    tcp.read_exact(&mut choice).await.map_err(io_err)?;
    if choice[0] != VERSION {
        return Err(plain(format!(
            "proxy {} is not a SOCKS5 server (its first byte was {:#04x})",
            proxy.key, choice[0]
        )));
    }
    match (choice[1], &proxy.credentials) {
        (NO_AUTH, _) => {}
        (USER_PASSWORD, Some((user, pass))) => {
            let mut msg = Vec::with_capacity(3 + user.len() + pass.len());
            msg.push(1);
            // Lengths are checked (1..=255, 0..=255) when the URL is parsed.
            msg.push(u8::try_from(user.len()).unwrap_or(u8::MAX));
            msg.extend_from_slice(user.as_bytes());
            msg.push(u8::try_from(pass.len()).unwrap_or(u8::MAX));
            msg.extend_from_slice(pass.as_bytes());
            tcp.write_all(&msg).await.map_err(io_err)?;
            let mut status = [0u8; 2];
            tcp.read_exact(&mut status).await.map_err(io_err)?;
            if status[1] != 0 {
                // The same credentials would be refused again: not retried.
                return Err(fail(
                    None,
                    Error::new(
                        ErrorKind::Connect,
                        format!(
                            "SOCKS5 proxy {} refused the user name and password in the proxy URL",
                            proxy.key
                        ),
                    )
                    .definitive(),
                ));
            }
        }
        (NO_ACCEPTABLE, creds) => {
            return Err(fail(
                None,
                Error::new(
                    ErrorKind::Connect,
                    format!(
                        "SOCKS5 proxy {} accepts none of the offered authentication methods{}",
                        proxy.key,
                        if creds.is_some() {
                            " (none, user name and password)"
                        } else {
                            ": give user:password in the proxy URL"
                        }
                    ),
                )
                .definitive(),
            ));
        }
        (m, _) => {
            return Err(plain(format!(
                "SOCKS5 proxy {} chose authentication method {m:#04x}, which was not offered",
                proxy.key
            )));
        }
    }

    // CONNECT request.
    let mut req = vec![VERSION, CONNECT, 0];
    let port = match target {
        Target::Addr(SocketAddr::V4(a)) => {
            req.push(1);
            req.extend_from_slice(&a.ip().octets());
            a.port()
        }
        Target::Addr(SocketAddr::V6(a)) => {
            req.push(4);
            req.extend_from_slice(&a.ip().octets());
            a.port()
        }
        Target::Name(name, port) => {
            let Ok(len) = u8::try_from(name.len()) else {
                return Err(plain(format!(
                    "host name {name:?} is over 255 bytes, too long for SOCKS5"
                )));
            };
            req.push(3);
            req.push(len);
            req.extend_from_slice(name.as_bytes());
            port
        }
    };
    req.extend_from_slice(&port.to_be_bytes());
    tcp.write_all(&req).await.map_err(io_err)?;

    // Reply: VER REP RSV ATYP BND.ADDR BND.PORT, read byte-exact (TLS follows it).
    let mut head = [0u8; 4];
    tcp.read_exact(&mut head).await.map_err(io_err)?;
    if head[0] != VERSION {
        return Err(plain(format!(
            "proxy {} is not a SOCKS5 server (its reply began with {:#04x})",
            proxy.key, head[0]
        )));
    }
    if head[1] != 0 {
        // `connect` for every reply, a `socks5h` name the proxy could not resolve included:
        // RFC 1928 has no code for that, and proxies send 0x04 (host unreachable) or 0x01
        // (general failure) for it, as they do for an address they could not reach, so the
        // reply cannot tell a DNS failure from a connect failure.
        return Err(fail(
            Some(head[1]),
            Error::new(
                ErrorKind::Connect,
                format!(
                    "SOCKS5 proxy {} could not connect to {target}: {} (reply {})",
                    proxy.key,
                    reply_text(head[1]),
                    head[1]
                ),
            ),
        ));
    }
    let addr_len = match head[3] {
        1 => 4,
        4 => 16,
        3 => {
            let mut len = [0u8; 1];
            tcp.read_exact(&mut len).await.map_err(io_err)?;
            usize::from(len[0])
        }
        t => {
            return Err(plain(format!(
                "SOCKS5 proxy {} replied with unknown address type {t:#04x}",
                proxy.key
            )));
        }
    };
    let mut bound = vec![0u8; addr_len + 2];
    tcp.read_exact(&mut bound).await.map_err(io_err)?;
    Ok(())
}

/// The address of an IP-literal host (`[::1]` or `127.0.0.1`), if it is one.
pub(crate) fn ip_literal(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}
