//! The unit of pooling and of per-origin state: scheme, host and port.

use std::sync::Arc;

use crate::error::Error;

/// Scheme, host and port: the unit of pooling.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    pub(crate) https: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) key: Arc<str>,
}

impl Origin {
    pub(crate) fn from_uri(uri: &http::Uri) -> Result<Self, Error> {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            Some(s) => {
                return Err(crate::error::url(format!(
                    "unsupported URL scheme {s:?} (http and https only)"
                )));
            }
            None => return Err(crate::error::url("URL has no scheme")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| crate::error::url("URL has no host"))?
            .to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let key: Arc<str> = Arc::from(format!(
            "{}://{}:{}",
            if https { "https" } else { "http" },
            host,
            port
        ));
        Ok(Self {
            https,
            host,
            port,
            key,
        })
    }
}
