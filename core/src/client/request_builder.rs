//! [`RequestBuilder`]: a request being built against a client (in the client module, so that
//! `request` need not know the client).

use std::time::Duration;

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use serde::Serialize;

use super::Client;
use crate::body::RequestBody;
use crate::error::{self, Error, ErrorKind};
use crate::request::{Priority, RedirectPolicy, Request, RequestOptions, parse_header, parse_url};
use crate::response::Response;

/// Builds a request; the first error is kept and returned by [`send`](RequestBuilder::send).
#[derive(Debug)]
#[must_use = "a RequestBuilder does nothing until sent"]
pub struct RequestBuilder {
    client: Client,
    req: Result<Request, Error>,
}

impl RequestBuilder {
    pub(crate) fn new(client: Client, req: Result<Request, Error>) -> Self {
        Self { client, req }
    }

    fn map(mut self, f: impl FnOnce(&mut Request) -> Result<(), Error>) -> Self {
        if let Ok(r) = &mut self.req
            && let Err(e) = f(r)
        {
            self.req = Err(e);
        }
        self
    }

    /// Adds a header (appending to any of the same name).
    pub fn header(self, name: &str, value: &str) -> Self {
        self.map(|r| {
            let (n, v) = parse_header(name, value)?;
            r.headers.append(n, v);
            Ok(())
        })
    }

    /// Adds headers.
    pub fn headers(self, headers: HeaderMap) -> Self {
        self.map(|r| {
            // `None` repeats the previous name (HeaderMap's multi-value encoding).
            let mut last: Option<HeaderName> = None;
            for (n, v) in headers {
                if n.is_some() {
                    last = n;
                }
                if let Some(n) = &last {
                    r.headers.append(n.clone(), v);
                }
            }
            Ok(())
        })
    }

    /// Adds query parameters, percent-encoded.
    pub fn query<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self {
        self.map(|r| {
            let mut u = url::Url::parse(&r.uri.to_string())
                .map_err(|e| error::url(format!("invalid URL: {e}")))?;
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k.as_ref(), v.as_ref());
                }
            }
            r.uri = parse_url(u.as_str())?;
            Ok(())
        })
    }

    /// Sets the body.
    pub fn body(self, body: impl Into<RequestBody>) -> Self {
        self.map(|r| {
            r.body = body.into();
            Ok(())
        })
    }

    /// Sets a JSON body and `Content-Type: application/json`.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        self.map(|r| {
            let v = serde_json::to_vec(value).map_err(|e| {
                Error::new(ErrorKind::InvalidRequest, "cannot serialize the JSON body")
                    .with_source(e)
            })?;
            r.headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r.body = v.into();
            Ok(())
        })
    }

    /// Sets `Authorization: Basic base64(user:password)` (no password: `user:`).
    pub fn basic_auth(self, user: &str, password: Option<&str>) -> Self {
        self.map(|r| {
            let v = crate::request::basic_auth(user, password)?;
            r.headers.insert(http::header::AUTHORIZATION, v);
            Ok(())
        })
    }

    /// Sets `Authorization: Bearer <token>`.
    pub fn bearer_auth(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Overrides the total timeout for this request. This and the phase timeouts below are at
    /// most one year (`config::MAX_DURATION_MS`); a longer one fails the request with
    /// `invalid_request` before any I/O.
    pub fn timeout(self, d: Duration) -> Self {
        self.map(|r| {
            r.options.timeout = Some(d);
            Ok(())
        })
    }

    /// Overrides `timeouts.connect_ms` for a connection this request opens.
    pub fn connect_timeout(self, d: Duration) -> Self {
        self.map(|r| {
            r.options.connect_timeout = Some(d);
            Ok(())
        })
    }

    /// Overrides `timeouts.read_idle_ms`: the longest silence while waiting for response bytes.
    pub fn read_timeout(self, d: Duration) -> Self {
        self.map(|r| {
            r.options.read_timeout = Some(d);
            Ok(())
        })
    }

    /// Overrides `timeouts.pool_acquire_ms`: the longest wait for a pooled connection.
    pub fn pool_timeout(self, d: Duration) -> Self {
        self.map(|r| {
            r.options.pool_timeout = Some(d);
            Ok(())
        })
    }

    /// Declares the request safe (or unsafe) to repeat, overriding the method's default: a POST
    /// marked idempotent is retried and hedged like a GET.
    pub fn idempotent(self, yes: bool) -> Self {
        self.map(|r| {
            r.options.idempotent = Some(yes);
            Ok(())
        })
    }

    /// Sets the request's RFC 9218 priority: urgency 0 (most urgent) to 7 (least), sent as the
    /// `Priority` header (replacing one set by hand) and ordering this request among those
    /// waiting for a connection to its origin. See [`RequestOptions`] for the precedence rule.
    pub fn priority(self, urgency: u8, incremental: bool) -> Self {
        self.map(|r| {
            r.options.priority = Some(Priority::new(urgency, incremental)?);
            Ok(())
        })
    }

    /// Replaces all per-request options at once.
    pub fn options(self, options: RequestOptions) -> Self {
        self.map(|r| {
            r.options = options;
            Ok(())
        })
    }

    /// The key this request is rate limited under when `rate_limit.scope` is `"key"` (a user,
    /// a tenant, an API key).
    pub fn rate_limit_key(self, key: &str) -> Self {
        self.map(|r| {
            r.options.rate_limit_key = Some(key.to_owned());
            Ok(())
        })
    }

    /// The key a `consistent_hash` service places this request by (a user, a session), ahead of
    /// the service's header or cookie key.
    pub fn balance_key(self, key: &str) -> Self {
        self.map(|r| {
            r.options.balance_key = Some(key.to_owned());
            Ok(())
        })
    }

    /// What a redirect does to this request: follow it (the default), return the 3xx as it is
    /// ([`RedirectPolicy::Manual`]), or fail with `too_many_redirects` ([`RedirectPolicy::Error`]).
    pub fn redirect(self, policy: RedirectPolicy) -> Self {
        self.map(|r| {
            r.options.redirect = Some(policy);
            Ok(())
        })
    }

    /// The most redirects this request follows, overriding `redirect.max` (at most 1_000).
    pub fn max_redirects(self, max: u32) -> Self {
        self.map(|r| {
            r.options.max_redirects = Some(max);
            Ok(())
        })
    }

    /// How this request uses the client's response cache (fetch's `cache` option); see
    /// [`CacheMode`](crate::CacheMode).
    pub fn cache(self, mode: crate::CacheMode) -> Self {
        self.map(|r| {
            r.options.cache = mode;
            Ok(())
        })
    }

    /// The caller's W3C trace context, the parent of this request's span (see
    /// [`RequestOptions::traceparent`](crate::RequestOptions::traceparent)); `tracestate` may
    /// be empty.
    pub fn trace_context(self, traceparent: &str, tracestate: &str) -> Self {
        self.map(|r| {
            r.options.traceparent = Some(traceparent.to_owned());
            r.options.tracestate = (!tracestate.is_empty()).then(|| tracestate.to_owned());
            Ok(())
        })
    }

    /// The request, or the first error met while building it.
    pub fn build(self) -> Result<Request, Error> {
        self.req
    }

    /// Sends the request.
    ///
    /// # Errors
    /// Any [`ErrorKind`]; input errors are reported before any I/O.
    pub async fn send(self) -> Result<Response, Error> {
        let req = self.req?;
        self.client.execute(req).await
    }
}
