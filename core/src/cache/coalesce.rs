//! Request coalescing: identical concurrent GETs that miss the cache share one upstream request.
//!
//! A flight is a shared future that every caller of the same request polls; whichever caller
//! drops, the others keep driving it, so a cancelled caller never cancels the request for the
//! rest. Only when every caller is gone is the upstream request dropped. The answer is read whole
//! (up to `cache.max_entry_bytes`) so each caller gets its own body; a larger answer cannot be
//! shared: one caller gets it, streaming, and the others send their own requests.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt, Shared, WeakShared};
use http::{HeaderMap, StatusCode, Uri, Version};

use crate::body::Body;
use crate::error::{Error, ErrorKind};
use crate::response::{Headers, Response, Timings, TlsInfo};

use super::CacheStatus;

/// What a flight ends with, cloned to every caller.
#[derive(Clone)]
pub(crate) enum Landing {
    /// The whole answer.
    Whole(Arc<Whole>),
    /// The body exceeds `cache.max_entry_bytes`: the first caller to look takes the response
    /// (its body streams on, the part read ahead first); the others ask on their own.
    TooLarge(Arc<Mutex<Option<Response>>>),
    /// The request failed: every caller gets the same error.
    Failed(Arc<(ErrorKind, String, bool)>),
}

/// A complete response, shared by the callers of one flight.
pub(crate) struct Whole {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: Arc<HeaderMap>,
    pub(crate) body: Bytes,
    pub(crate) timings: Timings,
    pub(crate) reused: bool,
    pub(crate) tls: Option<Arc<TlsInfo>>,
    /// Miss for an upstream answer; revalidated or stale for a stored one.
    pub(crate) cache: CacheStatus,
}

impl Whole {
    /// A stored response as every caller of a flight gets it, `Age` as of `now`.
    pub(crate) fn stored(
        entry: &super::Entry,
        now: std::time::SystemTime,
        cache: CacheStatus,
    ) -> Self {
        Whole {
            status: entry.status,
            version: entry.version,
            headers: entry.served_headers(now),
            body: entry.body.clone(),
            timings: Timings::default(),
            reused: false,
            tls: None,
            cache,
        }
    }
}

impl Landing {
    pub(crate) fn too_large(resp: Response) -> Landing {
        Landing::TooLarge(Arc::new(Mutex::new(Some(resp))))
    }

    pub(crate) fn failed(e: &Error) -> Landing {
        Landing::Failed(Arc::new((e.kind(), e.message().to_owned(), e.is_unsent())))
    }

    /// This caller's copy: its own body over the shared bytes, or its own error.
    pub(crate) fn to_response(&self, url: &Uri) -> Option<Result<Response, Error>> {
        match self {
            Landing::Whole(w) => Some(Ok(Response {
                status: w.status,
                version: w.version,
                headers: Headers::Shared(w.headers.clone()),
                url: url.clone(),
                body: Body::buffered(w.body.clone(), None),
                timings: w.timings,
                reused: w.reused,
                tls: w.tls.clone(),
                cache: Some(w.cache),
            })),
            Landing::TooLarge(one) => one
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .map(Ok),
            Landing::Failed(f) => {
                let (kind, message, unsent) = &**f;
                let e = Error::new(*kind, message.clone());
                Some(Err(if *unsent { e.unsent() } else { e }))
            }
        }
    }
}

type Flight = Shared<BoxFuture<'static, Landing>>;

/// Flights in the air, by request.
#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<String, WeakShared<BoxFuture<'static, Landing>>>>,
}

impl std::fmt::Debug for Flights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flights").finish_non_exhaustive()
    }
}

/// Flights kept before dead ones (every caller cancelled) are swept.
const SWEEP_AT: usize = 1024;

impl Flights {
    /// The flight for `key`: an existing one (`true`: joined) or `start()`, now in the air.
    pub(crate) fn join(
        &self,
        key: &str,
        start: impl FnOnce() -> BoxFuture<'static, Landing>,
    ) -> (Flight, bool) {
        match self.join_unless(key, || None::<std::convert::Infallible>, start) {
            Ok(flight) => flight,
            Err(never) => match never {},
        }
    }

    /// As [`join`](Self::join), but when no flight is in the air, `unless()` is asked first
    /// (under the same lock): its answer, when it has one, is returned instead of a new flight.
    /// A flight stores its answer before it lands, so a caller whose cache lookup ran before
    /// the store and whose join comes after the landing finds the answer here rather than
    /// sending the request a second time.
    pub(crate) fn join_unless<T>(
        &self,
        key: &str,
        unless: impl FnOnce() -> Option<T>,
        start: impl FnOnce() -> BoxFuture<'static, Landing>,
    ) -> Result<(Flight, bool), T> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = map.get(key).and_then(WeakShared::upgrade) {
            return Ok((f, true));
        }
        if let Some(found) = unless() {
            return Err(found);
        }
        if map.len() >= SWEEP_AT {
            map.retain(|_, f| f.upgrade().is_some());
        }
        let flight = start().shared();
        if let Some(weak) = flight.downgrade() {
            map.insert(key.to_owned(), weak);
        }
        Ok((flight, false))
    }

    /// Forgets `key`'s flight once it has landed, so later requests start afresh.
    pub(crate) fn land(&self, key: &str) {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

/// What makes two requests identical: method, URL and every header, in order.
pub(crate) fn key(req: &http::request::Parts) -> String {
    let mut k = format!("{} {}\n", req.method, req.uri);
    for (name, value) in &req.headers {
        let _ = write!(k, "{name}:");
        k.push_str(&String::from_utf8_lossy(value.as_bytes()));
        k.push('\n');
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_without_a_flight_in_the_air_takes_what_unless_finds() {
        let f = Flights::default();
        let landed =
            || async { Landing::Failed(Arc::new((ErrorKind::Io, "x".into(), false))) }.boxed();
        assert_eq!(f.join_unless("k", || Some(7), landed).err(), Some(7));
        // Nothing started: the next caller starts the flight.
        let (first, joined) = f.join_unless("k", || None::<u8>, landed).ok().unwrap();
        assert!(!joined);
        // While it is in the air, callers join it and `unless` is not asked.
        let (_second, joined) = f
            .join_unless("k", || -> Option<u8> { panic!("asked") }, landed)
            .ok()
            .unwrap();
        assert!(joined);
        drop(first);
    }
}
