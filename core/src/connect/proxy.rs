//! Proxies: which origin goes through which proxy (config, then `HTTP_PROXY`, `HTTPS_PROXY`,
//! `ALL_PROXY`, `NO_PROXY`), and the `CONNECT` tunnel for `https://` origins through an HTTP
//! proxy. A SOCKS5 proxy (`socks5://`, `socks5h://`) tunnels every origin (see `socks`).
//!
//! The choice depends on the origin only, fixed when the client is built, so one pooled origin
//! is always reached the same way: proxied and direct connections never share a pool entry.
//!
//! A proxy taken from the environment is never used for a loopback destination (`localhost`,
//! `*.localhost`, 127.0.0.0/8, `::1`), as Go's net/http does: a machine-wide `HTTP_PROXY` set for
//! package downloads must not send a service's calls to its own sidecar or a test server through
//! that proxy. A proxy set in the config applies to every origin it is not bypassed for.

use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::ProxyConfig;
use crate::error::{self, Error, ErrorKind};
use crate::origin::Origin;

/// Largest `CONNECT` response head read from a proxy.
const MAX_CONNECT_HEAD: usize = 16 * 1024;

/// What a proxy speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// HTTP: absolute-form requests for `http://`, `CONNECT` for `https://`.
    Http,
    /// SOCKS5 (RFC 1928): a tunnel for every origin. `remote_dns` (`socks5h://`): the proxy
    /// resolves the origin's name; else (`socks5://`) the client does and sends an address.
    Socks5 {
        /// The proxy resolves names.
        remote_dns: bool,
    },
}

/// One proxy server.
#[derive(Debug)]
pub(crate) struct Proxy {
    pub(crate) kind: Kind,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `scheme://host:port`, without credentials (for messages).
    pub(crate) key: String,
    /// `Proxy-Authorization` from the URL's userinfo (HTTP proxies).
    pub(crate) auth: Option<HeaderValue>,
    /// User name and password from the URL's userinfo, percent-decoded (SOCKS5, RFC 1929).
    pub(crate) credentials: Option<(String, String)>,
}

#[derive(Debug, PartialEq, Eq)]
enum Rule {
    All,
    Domain(String, Option<u16>),
    Ip(IpAddr, Option<u16>),
}

/// The proxies of one client.
#[derive(Debug, Default)]
pub(crate) struct Proxies {
    http: Option<Arc<Proxy>>,
    https: Option<Arc<Proxy>>,
    bypass: Vec<Rule>,
    /// Which of `http`, `https` came from the environment (then loopback goes direct).
    from_env: (bool, bool),
}

impl Proxies {
    /// From the config, and from `env` (a variable lookup) for what the config leaves unset.
    pub(crate) fn new(
        cfg: &ProxyConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        // Lowercase first, as curl; an empty variable counts as unset.
        let var = |name: &str| {
            [name.to_ascii_lowercase(), name.to_owned()]
                .into_iter()
                .find_map(|n| env(&n).filter(|v| !v.trim().is_empty()).map(|v| (n, v)))
        };
        let pick = |field: &str, set: &Option<String>, name: &str| -> Result<_, Error> {
            if let Some(url) = set {
                return parse_proxy(url)
                    .map(|p| Some(Arc::new(p)))
                    .map_err(|why| error::config(format!("proxy.{field}: {why}")));
            }
            if !cfg.from_env {
                return Ok(None);
            }
            // `ALL_PROXY` serves the schemes without a variable of their own, as curl.
            match var(name).or_else(|| var("ALL_PROXY")) {
                Some((n, url)) => parse_proxy(&url)
                    .map(|p| Some(Arc::new(p)))
                    .map_err(|why| error::config(format!("environment variable {n}: {why}"))),
                None => Ok(None),
            }
        };
        let http = pick("http", &cfg.http, "HTTP_PROXY")?;
        let https = pick("https", &cfg.https, "HTTPS_PROXY")?;
        let from_env = (
            http.is_some() && cfg.http.is_none(),
            https.is_some() && cfg.https.is_none(),
        );
        let mut bypass: Vec<Rule> = cfg.no_proxy.iter().filter_map(|e| parse_rule(e)).collect();
        if cfg.from_env
            && let Some((_, list)) = var("NO_PROXY")
        {
            bypass.extend(list.split(',').filter_map(parse_rule));
        }
        Ok(Self {
            http,
            https,
            bypass,
            from_env,
        })
    }

    /// The proxy `origin` goes through, if any.
    pub(crate) fn for_origin(&self, origin: &Origin) -> Option<&Arc<Proxy>> {
        let p = if origin.https {
            self.https.as_ref()
        } else {
            self.http.as_ref()
        }?;
        let host = origin.host.trim_start_matches('[').trim_end_matches(']');
        let ip = host.parse::<IpAddr>().ok();
        let env = if origin.https {
            self.from_env.1
        } else {
            self.from_env.0
        };
        let loopback = ip.map_or_else(
            || {
                host.eq_ignore_ascii_case("localhost")
                    || host.to_ascii_lowercase().ends_with(".localhost")
            },
            |a| a.is_loopback(),
        );
        if env && loopback {
            return None;
        }
        let port_ok = |want: &Option<u16>| want.is_none_or(|w| w == origin.port);
        let bypassed = self.bypass.iter().any(|r| match r {
            Rule::All => true,
            Rule::Ip(a, port) => ip == Some(*a) && port_ok(port),
            Rule::Domain(d, port) => {
                port_ok(port)
                    && (host == d
                        || (host.len() > d.len()
                            && host.ends_with(d.as_str())
                            && host.as_bytes()[host.len() - d.len() - 1] == b'.'))
            }
        });
        (!bypassed).then_some(p)
    }
}

/// Checks a proxy URL of the config (used by `Config::validate`).
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    parse_proxy(url).map(|_| ())
}

fn parse_proxy(url: &str) -> Result<Proxy, String> {
    let url = url.trim();
    // A bare `host:port`, as curl accepts, is an HTTP proxy.
    let full = if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    };
    let uri: http::Uri = full
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let (kind, default_port) = match uri.scheme_str() {
        Some("http") => (Kind::Http, 80),
        Some("socks5") => (Kind::Socks5 { remote_dns: false }, 1080),
        Some("socks5h") => (Kind::Socks5 { remote_dns: true }, 1080),
        Some(s) => {
            return Err(format!(
                "unsupported proxy scheme {s:?} (http, socks5 or socks5h)"
            ));
        }
        None => return Err(format!("{url:?} has no scheme")),
    };
    if uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
        return Err(format!("{url:?} must not have a path or query"));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{url:?} has no host"))?;
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    let port = authority.port_u16().unwrap_or(default_port);
    let credentials = match authority.as_str().rsplit_once('@') {
        None => None,
        Some((userinfo, _)) => {
            let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            Some((percent_decode(user)?, percent_decode(pass)?))
        }
    };
    let auth = match (&credentials, kind) {
        (Some((user, pass)), Kind::Http) => Some(
            HeaderValue::try_from(format!(
                "Basic {}",
                base64(format!("{user}:{pass}").as_bytes())
            ))
            .map_err(|_| "invalid credentials".to_owned())?,
        ),
        (Some((user, pass)), Kind::Socks5 { .. }) => {
            // RFC 1929: one length byte each; the user name may not be empty.
            if user.is_empty() || user.len() > 255 || pass.len() > 255 {
                return Err(
                    "a SOCKS5 user name must be 1 to 255 bytes and its password at most 255"
                        .to_owned(),
                );
            }
            None
        }
        (None, _) => None,
    };
    let scheme = match kind {
        Kind::Http => "http",
        Kind::Socks5 { remote_dns: false } => "socks5",
        Kind::Socks5 { remote_dns: true } => "socks5h",
    };
    Ok(Proxy {
        kind,
        key: format!("{scheme}://{host}:{port}"),
        host,
        port,
        auth,
        credentials,
    })
}

fn parse_rule(entry: &str) -> Option<Rule> {
    let e = entry.trim().to_ascii_lowercase();
    if e.is_empty() {
        return None;
    }
    if e == "*" {
        return Some(Rule::All);
    }
    if let Ok(sa) = e.parse::<std::net::SocketAddr>() {
        return Some(Rule::Ip(sa.ip(), Some(sa.port())));
    }
    let bare = e.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Some(Rule::Ip(ip, None));
    }
    let (host, port) = match e.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), Some(p.parse::<u16>().ok()?)),
        None => (e.clone(), None),
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(Rule::Ip(ip, port));
    }
    let host = host.trim_start_matches("*.").trim_start_matches('.');
    (!host.is_empty()).then(|| Rule::Domain(host.trim_end_matches('.').to_owned(), port))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "bad percent-encoding in the credentials".to_owned())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "credentials are not UTF-8".to_owned())
}

fn base64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Opens a `CONNECT` tunnel to `origin` through the proxy at the other end of `tcp`.
pub(crate) async fn tunnel(
    mut tcp: TcpStream,
    proxy: &Proxy,
    origin: &Origin,
) -> Result<TcpStream, Error> {
    let target = format!("{}:{}", origin.host, origin.port);
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = &proxy.auth {
        head.push_str("Proxy-Authorization: ");
        head.push_str(auth.to_str().unwrap_or_default());
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let io_err = |e: std::io::Error| {
        Error::new(
            ErrorKind::Connect,
            format!("proxy {} failed during CONNECT to {target}", proxy.key),
        )
        .with_source(e)
    };
    tcp.write_all(head.as_bytes()).await.map_err(io_err)?;
    // Read the response head byte-exact: anything after it belongs to the tunnel (TLS).
    let mut buf = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if buf.len() >= MAX_CONNECT_HEAD {
            return Err(Error::new(
                ErrorKind::Connect,
                format!(
                    "proxy {} sent a CONNECT response head over 16 KiB",
                    proxy.key
                ),
            ));
        }
        if tcp.read(&mut byte).await.map_err(io_err)? == 0 {
            return Err(Error::new(
                ErrorKind::Connect,
                format!(
                    "proxy {} closed the connection during CONNECT to {target}",
                    proxy.key
                ),
            ));
        }
        buf.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&buf);
    let line = line.lines().next().unwrap_or_default();
    let status = line
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(200..=299) => Ok(tcp),
        Some(407) => Err(Error::new(
            ErrorKind::Connect,
            format!(
                "proxy {} requires authentication (407 Proxy Authentication Required){}",
                proxy.key,
                if proxy.auth.is_some() {
                    ": the credentials in the proxy URL were refused"
                } else {
                    ": give user:password in the proxy URL"
                }
            ),
        )
        // The same credentials would be refused again: not retried.
        .definitive()),
        _ => Err(Error::new(
            ErrorKind::Connect,
            format!("proxy {} refused CONNECT to {target}: {line:?}", proxy.key),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn origin(url: &str) -> Origin {
        Origin::from_uri(&url.parse().unwrap()).unwrap()
    }

    fn proxies(cfg: &ProxyConfig, env: &[(&str, &str)]) -> Proxies {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Proxies::new(cfg, &|k| env.get(k).cloned()).unwrap()
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn parses_urls_and_credentials() {
        let p = parse_proxy("http://us%40r:p%3Ass@Proxy.test:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy.test", 3128));
        assert_eq!(p.key, "http://proxy.test:3128");
        assert_eq!(
            p.auth.unwrap(),
            format!("Basic {}", base64(b"us@r:p:ss")).as_str()
        );
        assert_eq!(parse_proxy("proxy.test").unwrap().port, 80);
        assert!(
            parse_proxy("socks4://proxy.test:1080")
                .unwrap_err()
                .contains("socks4")
        );
        assert!(
            parse_proxy("http://proxy.test/x")
                .unwrap_err()
                .contains("path")
        );
        assert!(parse_proxy("http://").is_err());
    }

    #[test]
    fn parses_socks5_urls() {
        let p = parse_proxy("socks5://us%40r:pw@Socks.test").unwrap();
        assert_eq!(p.kind, Kind::Socks5 { remote_dns: false });
        assert_eq!((p.host.as_str(), p.port), ("socks.test", 1080));
        assert_eq!(p.key, "socks5://socks.test:1080");
        assert_eq!(p.credentials, Some(("us@r".to_owned(), "pw".to_owned())));
        assert!(p.auth.is_none(), "no Proxy-Authorization for SOCKS");
        let p = parse_proxy("socks5h://127.0.0.1:9050").unwrap();
        assert_eq!(p.kind, Kind::Socks5 { remote_dns: true });
        assert_eq!(p.key, "socks5h://127.0.0.1:9050");
        assert!(p.credentials.is_none());
        let long = "u".repeat(256);
        for bad in [
            format!("socks5://{long}:pw@h:1"),
            format!("socks5://u:{long}@h:1"),
            "socks5://:pw@h:1".to_owned(),
        ] {
            assert!(
                parse_proxy(&bad).unwrap_err().contains("255"),
                "{bad} refused"
            );
        }
        // An HTTP proxy's credentials have no such limit.
        assert!(parse_proxy(&format!("http://{long}:pw@h:1")).is_ok());
    }

    #[test]
    fn all_proxy_serves_the_schemes_without_their_own_variable() {
        let env = [
            ("all_proxy", "socks5h://all:1"),
            ("HTTPS_PROXY", "http://s:2"),
        ];
        let p = proxies(&ProxyConfig::default(), &env);
        assert_eq!(
            p.for_origin(&origin("http://a.test/")).unwrap().key,
            "socks5h://all:1"
        );
        assert_eq!(
            p.for_origin(&origin("https://a.test/")).unwrap().key,
            "http://s:2"
        );
        assert!(
            p.for_origin(&origin("http://127.0.0.1/")).is_none(),
            "loopback goes direct"
        );
        let upper = [("ALL_PROXY", "socks5://all:3")];
        assert_eq!(
            proxies(&ProxyConfig::default(), &upper)
                .for_origin(&origin("https://a.test/"))
                .unwrap()
                .key,
            "socks5://all:3"
        );
        let off = ProxyConfig {
            from_env: false,
            ..ProxyConfig::default()
        };
        assert!(
            proxies(&off, &upper)
                .for_origin(&origin("http://a.test/"))
                .is_none()
        );
        let bad = HashMap::from([("ALL_PROXY".to_owned(), "socks4://x:1".to_owned())]);
        let e = Proxies::new(&ProxyConfig::default(), &|k| bad.get(k).cloned()).unwrap_err();
        assert!(e.to_string().contains("ALL_PROXY"), "{e}");
    }

    #[test]
    fn a_proxy_from_the_environment_is_never_used_for_loopback() {
        let env = [
            ("HTTP_PROXY", "http://env:1"),
            ("HTTPS_PROXY", "http://env:2"),
        ];
        let p = proxies(&ProxyConfig::default(), &env);
        for url in [
            "http://localhost:8080/",
            "http://LOCALHOST/",
            "http://api.localhost/",
            "http://127.0.0.1/",
            "http://127.3.2.1:81/",
            "https://[::1]:8443/",
        ] {
            assert!(p.for_origin(&origin(url)).is_none(), "{url} goes direct");
        }
        for url in [
            "http://a.test/",
            "http://10.0.0.1/",
            "https://localhost.a.test/",
        ] {
            assert!(p.for_origin(&origin(url)).is_some(), "{url} is proxied");
        }
        // A proxy the config names applies to loopback too (a local debugging proxy).
        let cfg = ProxyConfig {
            http: Some("http://cfg:3".into()),
            ..ProxyConfig::default()
        };
        let p = proxies(&cfg, &env);
        assert_eq!(
            p.for_origin(&origin("http://127.0.0.1/")).unwrap().key,
            "http://cfg:3"
        );
        assert!(
            p.for_origin(&origin("https://127.0.0.1/")).is_none(),
            "https: from env"
        );
    }

    #[test]
    fn env_lowercase_wins_and_config_overrides_env() {
        let env = [
            ("HTTP_PROXY", "http://upper:1"),
            ("http_proxy", "http://lower:2"),
            ("HTTPS_PROXY", "upper:3"),
        ];
        let p = proxies(&ProxyConfig::default(), &env);
        assert_eq!(
            p.for_origin(&origin("http://a.test/")).unwrap().key,
            "http://lower:2"
        );
        assert_eq!(
            p.for_origin(&origin("https://a.test/")).unwrap().key,
            "http://upper:3"
        );
        let cfg = ProxyConfig {
            https: Some("http://cfg:4".into()),
            ..ProxyConfig::default()
        };
        let p = proxies(&cfg, &env);
        assert_eq!(
            p.for_origin(&origin("https://a.test/")).unwrap().key,
            "http://cfg:4"
        );
        let off = ProxyConfig {
            from_env: false,
            ..ProxyConfig::default()
        };
        assert!(
            proxies(&off, &env)
                .for_origin(&origin("http://a.test/"))
                .is_none()
        );
        let bad = HashMap::from([("HTTPS_PROXY".to_owned(), "ftp://x:1".to_owned())]);
        let e = Proxies::new(&ProxyConfig::default(), &|k| bad.get(k).cloned()).unwrap_err();
        assert!(e.to_string().contains("HTTPS_PROXY"), "{e}");
    }

    #[test]
    fn no_proxy_suffixes_wildcard_ips_and_ports() {
        let env = [
            ("HTTP_PROXY", "http://p:1"),
            (
                "NO_PROXY",
                " .internal.test, exact.test,10.0.0.1, [2001:db8::1]:8080,ported.test:81",
            ),
        ];
        let p = proxies(&ProxyConfig::default(), &env);
        let via = |u: &str| p.for_origin(&origin(u)).is_some();
        assert!(!via("http://a.internal.test/"));
        assert!(!via("http://internal.test/"));
        assert!(via("http://xinternal.test/"));
        assert!(!via("http://exact.test/"));
        assert!(!via("http://sub.exact.test/"));
        assert!(via("http://exact.test.evil/"));
        assert!(!via("http://10.0.0.1/"));
        assert!(via("http://10.0.0.2/"));
        assert!(!via("http://[2001:db8::1]:8080/"));
        assert!(via("http://[2001:db8::1]:8081/"));
        assert!(!via("http://ported.test:81/"));
        assert!(via("http://ported.test/"));
        let all = [("HTTP_PROXY", "p:1"), ("no_proxy", "*")];
        assert!(
            proxies(&ProxyConfig::default(), &all)
                .for_origin(&origin("http://a.test/"))
                .is_none()
        );
    }
}
