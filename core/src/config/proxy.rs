//! Config section of HTTP proxies.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Longest proxy URL or `no_proxy` entry accepted.
pub(crate) const MAX_PROXY_TEXT: usize = 2048;

/// Proxies. An HTTP proxy (`http://`) gets absolute-form requests for `http://` URLs and
/// `CONNECT` tunnels for `https://`; a SOCKS5 proxy (`socks5://`: this client resolves the
/// origin's name; `socks5h://`: the proxy does) tunnels both. Credentials in a proxy URL's
/// userinfo go to the proxy alone (`Proxy-Authorization: Basic`, or SOCKS5 user name and
/// password, RFC 1929), never to the origin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Proxy for `http://` URLs, as `http://[user:password@]host[:port]` (port 80 when absent),
    /// `socks5://…` or `socks5h://…` (port 1080 when absent). Overrides `HTTP_PROXY`. At most
    /// 2048 bytes. Default: none.
    pub http: Option<String>,
    /// Proxy for `https://` URLs (a `CONNECT` or SOCKS5 tunnel; TLS to the origin inside it),
    /// same forms. Overrides `HTTPS_PROXY`. At most 2048 bytes. Default: none.
    pub https: Option<String>,
    /// Hosts reached directly, as `NO_PROXY`: `*` (every host), a domain (`example.com` or
    /// `.example.com`: it and its subdomains), an IP address, any of these with `:port`.
    /// Added to `NO_PROXY`. At most 1_000 entries of 2048 bytes. Default: none.
    pub no_proxy: Vec<String>,
    /// Read `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` (for a scheme without its own variable)
    /// and `NO_PROXY` (lowercase first, as curl does) when the client is built, for the schemes
    /// not set here; a proxy from the environment is never used for loopback (`localhost`,
    /// `*.localhost`, 127.0.0.0/8, `::1`), as Go does. Default: true.
    pub from_env: bool,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            http: None,
            https: None,
            no_proxy: Vec::new(),
            from_env: true,
        }
    }
}

/// The proxy URLs parse and the lists are bounded: `Err((field, why))`.
pub(super) fn validate(c: &ProxyConfig) -> Result<(), (String, String)> {
    for (field, url) in [("proxy.http", &c.http), ("proxy.https", &c.https)] {
        if let Some(url) = url {
            if url.len() > MAX_PROXY_TEXT {
                return Err((field.to_owned(), "must be at most 2048 bytes".to_owned()));
            }
            crate::connect::check_proxy_url(url).map_err(|why| (field.to_owned(), why))?;
        }
    }
    if c.no_proxy.len() > 1_000 {
        return Err((
            "proxy.no_proxy".to_owned(),
            "must have at most 1000 entries".to_owned(),
        ));
    }
    if let Some(i) = c.no_proxy.iter().position(|e| e.len() > MAX_PROXY_TEXT) {
        return Err((
            format!("proxy.no_proxy[{i}]"),
            "must be at most 2048 bytes".to_owned(),
        ));
    }
    Ok(())
}
