//! Routes: what every attempt to one URL authority shares (origin, policy state, pool state,
//! `Host` header), looked up once and cached, and dropped when the pool forgets the origin.

use std::collections::HashMap;
use std::sync::Arc;

use http::Uri;
use http::header::HeaderValue;

use super::Client;
use crate::error::Error;
use crate::origin::Origin;
use crate::policy::OriginPolicy;
use crate::pool::{HostRef, Using};

impl Client {
    /// The route of `uri`'s origin, marked in use until the guard drops (so the origin's
    /// state is not forgotten meanwhile).
    pub(super) fn route_in_use(&self, uri: &Uri) -> Result<(Arc<Route>, Option<Using>), Error> {
        // A route found just as the pool forgot its origin is dropped and looked up again;
        // past a few races the request goes on unmarked (the pool still counts it).
        for _ in 0..3 {
            let r = self.route(uri)?;
            if let Some(u) = r.host.enter() {
                return Ok((r, Some(u)));
            }
            self.inner.routes.remove(uri, &r);
        }
        Ok((self.route(uri)?, None))
    }

    /// The route of `uri`'s origin, cached by scheme and authority.
    fn route(&self, uri: &Uri) -> Result<Arc<Route>, Error> {
        let Some((slot, auth)) = Routes::key(uri) else {
            return self.new_route(uri).map(Arc::new);
        };
        let routes = &self.inner.routes;
        if let Some(r) = read(&routes.maps[slot]).by_authority.get(auth) {
            return Ok(r.clone());
        }
        let r = Arc::new(self.new_route(uri)?);
        Ok(routes.insert(slot, auth, r))
    }

    fn new_route(&self, uri: &Uri) -> Result<Route, Error> {
        let origin = Origin::from_uri(uri)?;
        // The pool's state first: policy state forgotten after this is forgotten with it, and
        // a forgotten host is refused by `HostRef::enter`.
        let host = self.inner.pool.host_ref(&origin);
        let policy = self.inner.policies.origin(&origin.key);
        let host_header = uri.authority().and_then(|a| {
            let host = a.as_str();
            HeaderValue::from_str(host.rsplit('@').next().unwrap_or(host)).ok()
        });
        Ok(Route {
            origin,
            policy,
            host,
            host_header,
        })
    }
}

/// What every attempt to one URL authority shares, looked up once: the parsed origin, its
/// policy state, its pool state and the `Host` header HTTP/1.1 sends.
pub(super) struct Route {
    pub(super) origin: Origin,
    pub(super) policy: Arc<OriginPolicy>,
    pub(super) host: HostRef,
    pub(super) host_header: Option<HeaderValue>,
}

/// Cached routes of one scheme, by URL authority, and the authorities of each origin (so the
/// routes of a forgotten origin go without a scan).
#[derive(Default)]
struct RouteTable {
    /// Looked up on every request: foldhash, several times faster than SipHash on a short
    /// authority (at most `pool.max_origins` keys, and seeded per process all the same).
    by_authority: HashMap<Box<str>, Arc<Route>, foldhash::fast::RandomState>,
    by_origin: HashMap<Arc<str>, Vec<Box<str>>>,
}

impl RouteTable {
    fn remove(&mut self, auth: &str) {
        if let Some(r) = self.by_authority.remove(auth)
            && let Some(list) = self.by_origin.get_mut(&r.origin.key)
        {
            list.retain(|a| &**a != auth);
            if list.is_empty() {
                self.by_origin.remove(&r.origin.key);
            }
        }
    }
}

type RouteMap = std::sync::RwLock<RouteTable>;

fn read(m: &RouteMap) -> std::sync::RwLockReadGuard<'_, RouteTable> {
    m.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write(m: &RouteMap) -> std::sync::RwLockWriteGuard<'_, RouteTable> {
    m.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Routes by URL authority, for `http` (0) and `https` (1), at most `cap` per scheme (URLs to
/// more authorities are resolved per request). Entries go when the pool forgets their origin.
pub(super) struct Routes {
    maps: [RouteMap; 2],
    cap: usize,
}

impl Routes {
    pub(super) fn new(cap: usize) -> Self {
        Self {
            maps: Default::default(),
            cap,
        }
    }

    /// The map and key of a URL, if it is cached at all.
    fn key(uri: &Uri) -> Option<(usize, &str)> {
        let slot = match uri.scheme_str() {
            Some("http") => 0,
            Some("https") => 1,
            _ => return None,
        };
        Some((slot, uri.authority()?.as_str()))
    }

    pub(super) fn len(&self) -> usize {
        self.maps.iter().map(|m| read(m).by_authority.len()).sum()
    }

    /// Caches `r` for `auth` unless full; returns the cached route.
    fn insert(&self, slot: usize, auth: &str, r: Arc<Route>) -> Arc<Route> {
        let mut t = write(&self.maps[slot]);
        if let Some(old) = t.by_authority.get(auth) {
            return old.clone();
        }
        if t.by_authority.len() >= self.cap {
            return r;
        }
        let auth: Box<str> = auth.into();
        t.by_origin
            .entry(r.origin.key.clone())
            .or_default()
            .push(auth.clone());
        t.by_authority.insert(auth, r.clone());
        r
    }

    /// Drops `uri`'s cached route if it is still `r`.
    fn remove(&self, uri: &Uri, r: &Arc<Route>) {
        if let Some((slot, auth)) = Self::key(uri) {
            let mut t = write(&self.maps[slot]);
            if t.by_authority.get(auth).is_some_and(|x| Arc::ptr_eq(x, r)) {
                t.remove(auth);
            }
        }
    }

    /// Drops the routes of forgotten origins.
    pub(super) fn forget(&self, keys: &[Arc<str>]) {
        for m in &self.maps {
            let mut t = write(m);
            for k in keys {
                for a in t.by_origin.remove(k).unwrap_or_default() {
                    t.by_authority.remove(&a);
                }
            }
        }
    }
}
