//! The redirect loop: each hop is sent through the policies (`send.rs`); the rules for what a
//! hop keeps (method, body, credentials, default headers) live in [`crate::redirect`].

use std::sync::atomic::Ordering::Relaxed;

use http::header::{self, HeaderMap};
use http::{Method, StatusCode, Uri};
use tokio::time::Instant;

use super::Client;
use super::send::Opts;
use crate::body::RequestBody;
use crate::error::{self, Error, ErrorKind};
use crate::redirect::{self, Hop};
use crate::request::{CacheMode, RedirectPolicy, Request, RequestOptions};
use crate::response::Response;

impl Client {
    /// Follows redirects from `req`, each hop through the cache; `l2_read`: `Client::l2_read`
    /// asked Redis for the first hop already.
    pub(super) async fn run(
        &self,
        req: Request,
        start: Instant,
        deadline: Option<Instant>,
        l2_read: bool,
    ) -> Result<Response, Error> {
        let Request {
            mut method,
            mut uri,
            mut headers,
            mut body,
            options,
            default_headers: send_defaults,
        } = req;
        let phases = crate::request::PhaseTimeouts::from(&options);
        let inner = &*self.inner;
        // Userinfo is a credential: it goes out as `Authorization`, never in `Host`.
        if has_userinfo(&uri) {
            take_userinfo(&mut uri, &mut headers)?;
        }
        let policy = options.redirect.unwrap_or(RedirectPolicy::Follow);
        let max = options.max_redirects.unwrap_or(inner.cfg.redirect.max);
        // Whether a redirect is followed at all (so whether the body must be kept to replay).
        let follow = policy == RedirectPolicy::Follow && max > 0;
        let mut hops = 0u32;
        // Set at the first cross-origin hop: from then on credentials and default headers stay
        // behind (see `redirect`).
        let mut stripped: Option<redirect::Stripped> = (!send_defaults).then(|| {
            redirect::Stripped::entered(&mut headers, &inner.redirect, &inner.default_headers, &uri)
        });
        loop {
            let replay = if follow { body.try_clone() } else { None };
            let opts = Opts {
                idempotent: options.idempotent,
                rate_limit_key: options.rate_limit_key.as_deref(),
                balance_key: options.balance_key.as_deref(),
                deadline,
                start,
                phases,
                defaults: if stripped.is_some() {
                    &inner.engine_headers
                } else {
                    &inner.default_headers
                },
            };
            // The jar's cookies are this hop's own: they never join `headers`, which the
            // next hop (perhaps another host) starts from.
            let with_cookies = inner
                .jar
                .as_ref()
                .and_then(|j| j.headers_for(&uri, &headers));
            let sent = with_cookies.as_ref().unwrap_or(&headers);
            let asked = l2_read && hops == 0;
            let resp = if self.passes_cache(options.cache) {
                self.send_resilient(&method, &uri, sent, body, &opts)
                    .await?
            } else {
                let hop = self.send_cached(&method, &uri, sent, body, &opts, options.cache, asked);
                Box::pin(hop).await?
            };
            if let Some(j) = &inner.jar {
                j.store(&uri, &resp.headers);
            }
            let Some(rule) = redirect::hop(resp.status, &method) else {
                // Only here: an event stream is a 200.
                return Ok(self.resumable(
                    resp,
                    &method,
                    &uri,
                    &headers,
                    &options,
                    stripped.is_none(),
                ));
            };
            if policy == RedirectPolicy::Error {
                // As fetch's `redirect: "error"`: a redirect status fails, Location or not.
                let status = resp.status;
                Box::pin(resp.drain()).await; // boxed: only a redirect drains
                return Err(Error::new(
                    ErrorKind::TooManyRedirects,
                    format!(
                        "{} answered {status}: the request's redirect policy is \"error\"",
                        error::redact(&uri)
                    ),
                ));
            }
            if !follow {
                return Ok(resp);
            }
            let Some(location) = resp
                .headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                return Ok(resp);
            };
            let Ok(mut next) = resolve_location(&uri, location) else {
                return Ok(resp);
            };
            let next_body = match (rule, replay) {
                (Hop::Keep, Some(b)) => b,
                // A streamed body cannot be sent again: hand back the redirect.
                (Hop::Keep, None) => return Ok(resp),
                (Hop::Get | Hop::DropBody, _) => RequestBody::empty(),
            };
            if !inner.redirect.allow_downgrade && redirect::is_downgrade(&uri, &next) {
                return Err(Error::new(
                    ErrorKind::RedirectDowngrade,
                    format!(
                        "refused the redirect from {} to {}: redirect.allow_downgrade is false",
                        error::redact(&uri),
                        error::redact(&next)
                    ),
                ));
            }
            if hops >= max {
                return Err(Error::new(
                    ErrorKind::TooManyRedirects,
                    format!(
                        "more than {max} redirects (last to {})",
                        error::redact(&next)
                    ),
                ));
            }
            hops += 1;
            inner.metrics.redirects.fetch_add(1, Relaxed);
            tracing::debug!(
                event = "redirect",
                from = %error::redact(&uri),
                to = %error::redact(&next),
                status = resp.status.as_u16(),
                hop = hops,
                "following a redirect"
            );
            Box::pin(resp.drain()).await;
            match rule {
                Hop::Keep => {}
                Hop::Get => {
                    method = Method::GET;
                    redirect::drop_body_headers(&mut headers);
                }
                Hop::DropBody => redirect::drop_body_headers(&mut headers),
            }
            let mut next_headers = HeaderMap::new();
            if has_userinfo(&next) {
                take_userinfo(&mut next, &mut next_headers)?;
            }
            if stripped.is_some() || !redirect::same_origin(&uri, &next) {
                // A `Host` the caller set names the first origin.
                headers.remove(header::HOST);
                stripped.get_or_insert_with(Default::default).apply(
                    &mut headers,
                    &inner.redirect,
                    &inner.default_headers,
                    &next,
                );
            }
            // Userinfo in the Location is that hop's own credential.
            if let Some(auth) = next_headers.remove(header::AUTHORIZATION) {
                headers.entry(header::AUTHORIZATION).or_insert(auth);
            }
            uri = next;
            body = next_body;
        }
    }
}

impl Client {
    /// Whether a hop in `mode` goes straight to the policies: without a cache `send_cached`
    /// only hands the request on, so its future (the cache's states) is neither built nor moved
    /// (and, boxed when there is a cache, the redirect loop carries no room for it).
    fn passes_cache(&self, mode: CacheMode) -> bool {
        self.inner.cache.is_none() && matches!(mode, CacheMode::Default | CacheMode::ForceCache)
    }

    /// An event stream answering a `GET` keeps what a reconnection sends (see `sse`).
    pub(super) fn resumable(
        &self,
        mut resp: Response,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        options: &RequestOptions,
        default_headers: bool,
    ) -> Response {
        if *method == Method::GET
            && resp.status == StatusCode::OK
            && crate::sse::is_event_stream(&resp.headers)
        {
            resp.body.set_resume(crate::sse::Resume {
                client: self.clone(),
                uri: uri.clone(),
                headers: headers.clone(),
                options: options.clone(),
                default_headers,
            });
        }
        resp
    }
}

pub(super) fn has_userinfo(uri: &Uri) -> bool {
    uri.authority().is_some_and(|a| a.as_str().contains('@'))
}

/// Moves `uri`'s userinfo into `Authorization: Basic`, unless `headers` has one already.
fn take_userinfo(uri: &mut Uri, headers: &mut HeaderMap) -> Result<(), Error> {
    if let Some((clean, auth)) = redirect::take_userinfo(uri)? {
        *uri = clean;
        headers.entry(header::AUTHORIZATION).or_insert(auth);
    }
    Ok(())
}

pub(crate) fn resolve_location(base: &Uri, location: &str) -> Result<Uri, Error> {
    let base = url::Url::parse(&base.to_string()).map_err(|e| error::url(e.to_string()))?;
    let next = base
        .join(location)
        .map_err(|e| error::url(format!("bad Location {location:?}: {e}")))?;
    crate::request::parse_url(next.as_str())
}
