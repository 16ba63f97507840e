//! The request as hyper sends it: headers merged in one pass, the URI in origin form (h1) or
//! absolute form (h2), connection-specific headers dropped on h2.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Uri, Version};

use crate::error::{self, Error};

/// What the outgoing request is made of: the user's headers win over the client's defaults.
pub(super) struct Head<'a> {
    pub(super) method: &'a Method,
    pub(super) uri: &'a Uri,
    pub(super) user: &'a HeaderMap,
    pub(super) defaults: &'a HeaderMap,
    pub(super) accept_encoding: Option<&'a HeaderValue>,
    pub(super) content_encoding: Option<&'a HeaderValue>,
    /// The `Host` header of this URL's authority, when valid (h1 only).
    pub(super) host: Option<&'a HeaderValue>,
}

/// Connection-specific headers, illegal in HTTP/2 (RFC 9113 §8.2.2), and `Host`, which h2
/// carries as `:authority`.
fn h2_illegal(name: &header::HeaderName) -> bool {
    *name == header::CONNECTION
        || *name == header::TRANSFER_ENCODING
        || *name == header::UPGRADE
        || *name == header::HOST
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

fn with_authority(uri: &Uri, host: &HeaderValue) -> Result<Uri, Error> {
    let bad = || error::url(format!("the Host header {host:?} is not a valid authority"));
    let authority = http::uri::Authority::try_from(host.as_bytes()).map_err(|_| bad())?;
    let mut parts = uri.clone().into_parts();
    parts.authority = Some(authority);
    Uri::from_parts(parts).map_err(|_| bad())
}

/// The request as hyper sends it, its headers merged in one pass (user headers, then defaults
/// the user did not set, then `Accept-Encoding` and `Content-Encoding`, then `Host` on h1).
pub(super) fn build_http<B>(head: &Head<'_>, body: B, h2: bool) -> Result<http::Request<B>, Error> {
    let (uri, user) = (head.uri, head.user);
    let mut req = http::Request::new(body);
    *req.method_mut() = head.method.clone();
    if h2 {
        *req.uri_mut() = match user.get(header::HOST) {
            // A `Host` the caller set is h2's `:authority` (RFC 9113 §8.3.1), as Go's and
            // curl's clients send it; the connection still goes to the URL's origin.
            Some(host) => with_authority(uri, host)?,
            None => uri.clone(),
        };
        *req.version_mut() = Version::HTTP_2;
    } else {
        // Origin form: the path and query, shared with the URL (no copy, no re-parse).
        match uri.path_and_query() {
            Some(pq) if pq.as_str().starts_with('/') => {
                let mut parts = http::uri::Parts::default();
                parts.path_and_query = Some(pq.clone());
                *req.uri_mut() =
                    Uri::from_parts(parts).map_err(|e| error::url(format!("invalid path: {e}")))?;
            }
            pq => {
                let pq = pq.map_or("/", http::uri::PathAndQuery::as_str);
                *req.uri_mut() = pq
                    .parse()
                    .map_err(|_| error::url(format!("invalid path {pq:?}")))?;
            }
        }
    }
    let h = req.headers_mut();
    h.reserve(user.len() + head.defaults.len() + 3);
    let skip = |k: &header::HeaderName| h2 && h2_illegal(k);
    for (k, v) in user {
        if !skip(k) {
            h.append(k.clone(), v.clone());
        }
    }
    // Each default, `Accept-Encoding` and `Host` is looked up once (an entry), not once to
    // test and once more to insert.
    for (k, v) in head.defaults {
        // The first value of a default the user did not set.
        if !skip(k)
            && let header::Entry::Vacant(e) = h.entry(k)
        {
            e.insert(v.clone());
        }
    }
    if let Some(ae) = head.accept_encoding
        && let header::Entry::Vacant(e) = h.entry(header::ACCEPT_ENCODING)
    {
        e.insert(ae.clone());
    }
    if let Some(ce) = head.content_encoding {
        h.insert(header::CONTENT_ENCODING, ce.clone());
    }
    if !h2 && let header::Entry::Vacant(e) = h.entry(header::HOST) {
        let v = if let Some(v) = head.host {
            v.clone()
        } else {
            let host = uri.authority().map_or("", http::uri::Authority::as_str);
            let host = host.rsplit('@').next().unwrap_or(host);
            HeaderValue::from_str(host).map_err(|_| error::url(format!("invalid host {host:?}")))?
        };
        e.insert(v);
    }
    Ok(req)
}
