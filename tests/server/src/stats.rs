//! Exact counters and the request log.
//!
//! Every counter is an atomic updated at the event itself, so a snapshot taken after the
//! client is done is exact. Control-port traffic never reaches these counters.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use http::{HeaderMap, Method, Uri, Version};
use serde::{Deserialize, Serialize};

/// A snapshot of the server's counters since start or the last reset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    /// TCP connections accepted on the plain, TLS and bad-TLS ports.
    pub connections_accepted: u64,
    /// Those connections still open now (not zeroed by a reset).
    pub connections_active: u64,
    /// The most connections open at once.
    pub max_connections_active: u64,
    /// Connections closed.
    pub connections_closed: u64,
    /// Completed TLS handshakes (full and resumed).
    pub tls_handshakes: u64,
    /// Handshakes that resumed an earlier session.
    pub tls_resumed: u64,
    /// Handshakes that failed (for example a client rejecting the bad-TLS certificate).
    pub tls_handshake_failures: u64,
    /// Connections that spoke HTTP/1.x.
    pub h1_connections: u64,
    /// Connections that spoke HTTP/2.
    pub h2_connections: u64,
    /// Requests received (scripted ones included).
    pub requests: u64,
    /// Requests whose response was abandoned by the client before it completed.
    pub requests_cancelled: u64,
    /// Requests in progress now (not zeroed by a reset).
    pub requests_in_flight: u64,
    /// The most requests in progress at once, over all connections.
    pub max_requests_in_flight: u64,
    /// The most requests in progress at once on one connection.
    pub max_concurrent_requests_per_connection: u64,
    /// Requests served per connection id, for connections used since the last reset.
    pub per_connection_requests: BTreeMap<u64, u64>,
    /// The most requests served by one connection since the last reset (the largest value
    /// of `per_connection_requests`): how a scenario sees which connection the pool reuses.
    pub max_requests_per_connection: u64,
    /// Connections accepted by the silent port.
    pub silent_connections: u64,
    /// Requests received per path (without query), since the last reset; not counted with
    /// `--no-request-log`.
    pub per_path_requests: BTreeMap<String, u64>,
    /// Connections accepted by the torture port.
    pub torture_connections: u64,
    /// Request heads the torture port read (HTTP/1.1 heads and HTTP/2 HEADERS).
    pub torture_requests: u64,
}

/// One logged request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Lower-cased names; repeated headers are joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// Bytes of request body received (before any content decoding).
    pub body_len: u64,
    /// Id of the connection it arrived on (the same ids as `per_connection_requests`).
    pub connection_id: u64,
    /// Whether it arrived over TLS.
    pub tls: bool,
}

const PROTO_UNKNOWN: u8 = 0;
const PROTO_H1: u8 = 1;
const PROTO_H2: u8 = 2;

/// Counters of one connection.
#[derive(Debug)]
pub(crate) struct ConnStats {
    pub(crate) id: u64,
    requests: AtomicU64,
    in_flight: AtomicU64,
    proto: AtomicU8,
    closed: AtomicBool,
    /// Accepted before the last reset: listed only if it serves a request after it.
    pre_reset: AtomicBool,
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    next_conn_id: AtomicU64,
    connections_accepted: AtomicU64,
    connections_active: AtomicU64,
    max_connections_active: AtomicU64,
    connections_closed: AtomicU64,
    tls_handshakes: AtomicU64,
    tls_resumed: AtomicU64,
    tls_handshake_failures: AtomicU64,
    h1_connections: AtomicU64,
    h2_connections: AtomicU64,
    requests: AtomicU64,
    requests_cancelled: AtomicU64,
    requests_in_flight: AtomicU64,
    max_requests_in_flight: AtomicU64,
    max_concurrent_requests_per_connection: AtomicU64,
    silent_connections: AtomicU64,
    conns: Mutex<Vec<Arc<ConnStats>>>,
    per_path: Mutex<BTreeMap<String, u64>>,
    /// No per-connection list (a long-running site would grow it without bound).
    untracked: bool,
}

impl ConnStats {
    /// Requests in progress on this connection now.
    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight.load(Relaxed)
    }
}

impl Stats {
    /// Counters without `per_connection_requests`.
    pub(crate) fn untracked() -> Self {
        Self {
            untracked: true,
            ..Self::default()
        }
    }

    pub(crate) fn connection_opened(&self) -> Arc<ConnStats> {
        let conn = Arc::new(ConnStats {
            id: self.next_conn_id.fetch_add(1, Relaxed) + 1,
            requests: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            proto: AtomicU8::new(PROTO_UNKNOWN),
            closed: AtomicBool::new(false),
            pre_reset: AtomicBool::new(false),
        });
        if !self.untracked {
            lock(&self.conns).push(conn.clone());
        }
        self.connections_accepted.fetch_add(1, Relaxed);
        let active = self.connections_active.fetch_add(1, Relaxed) + 1;
        self.max_connections_active.fetch_max(active, Relaxed);
        conn
    }

    pub(crate) fn connection_closed(&self, conn: &ConnStats) {
        conn.closed.store(true, Relaxed);
        self.connections_active.fetch_sub(1, Relaxed);
        self.connections_closed.fetch_add(1, Relaxed);
    }

    pub(crate) fn tls_handshake(&self, resumed: bool) {
        self.tls_handshakes.fetch_add(1, Relaxed);
        if resumed {
            self.tls_resumed.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn tls_handshake_failed(&self) {
        self.tls_handshake_failures.fetch_add(1, Relaxed);
    }

    pub(crate) fn silent_connection(&self) {
        self.silent_connections.fetch_add(1, Relaxed);
    }

    /// Records the protocol of a connection the first time it is known.
    pub(crate) fn set_proto(&self, conn: &ConnStats, h2: bool) {
        let proto = if h2 { PROTO_H2 } else { PROTO_H1 };
        if conn
            .proto
            .compare_exchange(PROTO_UNKNOWN, proto, Relaxed, Relaxed)
            .is_ok()
        {
            let counter = if h2 {
                &self.h2_connections
            } else {
                &self.h1_connections
            };
            counter.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn request_started(&self, conn: &ConnStats, h2: bool) {
        if conn.proto.load(Relaxed) == PROTO_UNKNOWN {
            self.set_proto(conn, h2);
        }
        self.requests.fetch_add(1, Relaxed);
        conn.requests.fetch_add(1, Relaxed);
        let all = self.requests_in_flight.fetch_add(1, Relaxed) + 1;
        self.max_requests_in_flight.fetch_max(all, Relaxed);
        let here = conn.in_flight.fetch_add(1, Relaxed) + 1;
        self.max_concurrent_requests_per_connection
            .fetch_max(here, Relaxed);
    }

    /// Counts a request to `path`; returns how many it has had, this one included.
    pub(crate) fn path_requested(&self, path: &str) -> u64 {
        let mut map = lock(&self.per_path);
        let n = map.entry(path.to_owned()).or_insert(0);
        *n += 1;
        *n
    }

    pub(crate) fn request_ended(&self, conn: &ConnStats, cancelled: bool) {
        self.requests_in_flight.fetch_sub(1, Relaxed);
        conn.in_flight.fetch_sub(1, Relaxed);
        if cancelled {
            self.requests_cancelled.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> Counters {
        let per_connection_requests: BTreeMap<u64, u64> = lock(&self.conns)
            .iter()
            .filter_map(|c| {
                let n = c.requests.load(Relaxed);
                (n > 0 || !c.pre_reset.load(Relaxed)).then_some((c.id, n))
            })
            .collect();
        let max_requests_per_connection =
            per_connection_requests.values().copied().max().unwrap_or(0);
        Counters {
            connections_accepted: self.connections_accepted.load(Relaxed),
            connections_active: self.connections_active.load(Relaxed),
            max_connections_active: self.max_connections_active.load(Relaxed),
            connections_closed: self.connections_closed.load(Relaxed),
            tls_handshakes: self.tls_handshakes.load(Relaxed),
            tls_resumed: self.tls_resumed.load(Relaxed),
            tls_handshake_failures: self.tls_handshake_failures.load(Relaxed),
            h1_connections: self.h1_connections.load(Relaxed),
            h2_connections: self.h2_connections.load(Relaxed),
            requests: self.requests.load(Relaxed),
            requests_cancelled: self.requests_cancelled.load(Relaxed),
            requests_in_flight: self.requests_in_flight.load(Relaxed),
            max_requests_in_flight: self.max_requests_in_flight.load(Relaxed),
            max_concurrent_requests_per_connection: self
                .max_concurrent_requests_per_connection
                .load(Relaxed),
            per_connection_requests,
            max_requests_per_connection,
            silent_connections: self.silent_connections.load(Relaxed),
            per_path_requests: lock(&self.per_path).clone(),
            // Filled in by `Shared::counters`.
            torture_connections: 0,
            torture_requests: 0,
        }
    }

    /// Zeroes the counters; gauges (active connections, requests in flight) keep their value.
    pub(crate) fn reset(&self) {
        lock(&self.per_path).clear();
        let mut conns = lock(&self.conns);
        conns.retain(|c| !c.closed.load(Relaxed));
        let mut max_here = 0;
        for c in conns.iter() {
            c.requests.store(0, Relaxed);
            c.pre_reset.store(true, Relaxed);
            max_here = max_here.max(c.in_flight.load(Relaxed));
        }
        for counter in [
            &self.connections_accepted,
            &self.connections_closed,
            &self.tls_handshakes,
            &self.tls_resumed,
            &self.tls_handshake_failures,
            &self.h1_connections,
            &self.h2_connections,
            &self.requests,
            &self.requests_cancelled,
            &self.silent_connections,
        ] {
            counter.store(0, Relaxed);
        }
        self.max_connections_active
            .store(self.connections_active.load(Relaxed), Relaxed);
        self.max_requests_in_flight
            .store(self.requests_in_flight.load(Relaxed), Relaxed);
        self.max_concurrent_requests_per_connection
            .store(max_here, Relaxed);
    }
}

/// One request as stored; turned into a [`RecordedRequest`] only when the log is read.
#[derive(Debug)]
pub(crate) struct LogEntry {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) body_len: u64,
    pub(crate) connection_id: u64,
    pub(crate) tls: bool,
}

impl From<&LogEntry> for RecordedRequest {
    fn from(e: &LogEntry) -> Self {
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &e.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert_with(|| value.into_owned());
        }
        Self {
            method: e.method.to_string(),
            path: e
                .uri
                .path_and_query()
                .map_or_else(|| e.uri.path().to_owned(), ToString::to_string),
            version: format!("{:?}", e.version),
            headers,
            body_len: e.body_len,
            connection_id: e.connection_id,
            tls: e.tls,
        }
    }
}

/// The last `capacity` requests.
#[derive(Debug)]
pub(crate) struct RequestLog {
    capacity: usize,
    entries: Mutex<VecDeque<LogEntry>>,
}

impl RequestLog {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.capacity > 0
    }

    pub(crate) fn push(&self, entry: LogEntry) {
        let mut entries = lock(&self.entries);
        if entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    pub(crate) fn snapshot(&self) -> Vec<RecordedRequest> {
        lock(&self.entries)
            .iter()
            .map(RecordedRequest::from)
            .collect()
    }

    pub(crate) fn clear(&self) {
        lock(&self.entries).clear();
    }
}

/// Locks, ignoring poisoning: every critical section here leaves the data consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
