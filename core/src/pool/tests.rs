//! The pool's bookkeeping, checked from inside: every connection counted once in its origin and
//! in the global total, slots given back whatever ends a request, waiters served by urgency.
//! The peer is a plain TCP listener: an HTTP/1.1 handshake needs no bytes from the server.

use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::host::Reason;
use super::{HostRef, Lease, Pool};
use crate::config::Config;
use crate::connect::Connector;
use crate::metrics::Metrics;
use crate::metrics::OriginStats;
use crate::origin::Origin;

const WAIT: Duration = Duration::from_secs(10);

fn pool(edit: impl FnOnce(&mut Config)) -> Pool {
    let mut cfg = Config::default();
    edit(&mut cfg);
    let connector = Connector::new(&cfg, Arc::new(Metrics::new())).unwrap();
    Pool::new(&cfg, connector, &Handle::current())
}

/// A listener that accepts and holds every connection until the test ends.
async fn peer() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    port
}

fn host(p: &Pool, port: u16) -> HostRef {
    let uri: http::Uri = format!("http://127.0.0.1:{port}").parse().unwrap();
    p.host_ref(&Origin::from_uri(&uri).unwrap())
}

async fn lease(p: &Pool, h: &HostRef, urgency: u8) -> Result<Lease, crate::Error> {
    p.acquire_at(h, None, urgency, Default::default()).await
}

fn origin(p: &Pool, h: &HostRef) -> OriginStats {
    p.stats().1.remove(&*h.0.origin.key).unwrap()
}

fn total(p: &Pool) -> usize {
    p.shared.total.load(SeqCst)
}

/// Polls `f` until it holds; fails after `WAIT`.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + WAIT;
    while !f() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn every_connection_is_counted_once_whatever_ends_it() {
    let p = pool(|_| {});
    let h = host(&p, peer().await);
    let a = lease(&p, &h, 3).await.unwrap();
    let b = lease(&p, &h, 3).await.unwrap();
    assert!(!a.reused && !b.reused);
    let s = origin(&p, &h).pool;
    assert_eq!((s.connections, s.active, s.idle, s.connects), (2, 2, 0, 2));
    assert_eq!(total(&p), 2);

    a.release();
    let s = origin(&p, &h).pool;
    assert_eq!((s.connections, s.active, s.idle), (2, 1, 1));

    // Dropped without release (failed, cancelled or read in part): retired, never reused.
    let meta = match &b.conn {
        super::lease::LeaseConn::H1(Some(c)) => c.meta.clone(),
        _ => unreachable!("an http: origin without prior knowledge speaks HTTP/1.1"),
    };
    drop(b);
    let s = origin(&p, &h).pool;
    assert_eq!((s.connections, s.idle, s.evictions.error), (1, 1, 1));
    assert_eq!(total(&p), 1);
    // A second retirement of the same connection (a racing peer close) changes nothing.
    h.0.retire(&meta, Reason::ClosedByPeer);
    let s = origin(&p, &h).pool;
    assert_eq!((s.connections, s.evictions.closed_by_peer), (1, 0));
    assert_eq!(total(&p), 1);

    // The idle one is reused, then closed with the rest.
    let c = lease(&p, &h, 3).await.unwrap();
    assert!(c.reused);
    c.release();
    p.close_idle(false);
    let s = origin(&p, &h).pool;
    assert_eq!((s.connections, s.idle, s.evictions.idle), (0, 0, 1));
    assert_eq!(total(&p), 0);
}

#[tokio::test]
async fn a_failed_connect_gives_back_its_slot() {
    let p = pool(|c| c.pool.max_connections = 1);
    // A port nothing listens on: bind, read the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = host(&p, port);
    for _ in 0..3 {
        let Err(e) = lease(&p, &dead, 3).await else {
            panic!("nothing listens there")
        };
        assert_eq!(e.kind().code(), "connect", "{e}");
    }
    let s = origin(&p, &dead).pool;
    assert_eq!((s.connections, s.connecting, s.pending), (0, 0, 0));
    assert_eq!(total(&p), 0, "the only global slot is free again");
    // ... which another origin can now take.
    let live = host(&p, peer().await);
    lease(&p, &live, 3).await.unwrap().release();
    assert_eq!(total(&p), 1);
}

#[tokio::test]
async fn waiters_are_served_most_urgent_first() {
    let p = pool(|c| c.pool.max_connections_per_host = 1);
    let h = host(&p, peer().await);
    let held = lease(&p, &h, 3).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    for (n, urgency) in [5u8, 0, 7, 3].into_iter().enumerate() {
        let (p2, h2, tx) = (p.clone(), HostRef(h.0.clone()), tx.clone());
        tokio::spawn(async move {
            let l = lease(&p2, &h2, urgency).await.unwrap();
            tx.send(urgency).unwrap();
            l.release();
        });
        until("the waiter to queue", || {
            origin(&p, &h).pool.pending == n as u64 + 1
        })
        .await;
    }
    held.release();
    let mut order = Vec::new();
    for _ in 0..4 {
        order.push(
            tokio::time::timeout(WAIT, rx.recv())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(order, [0, 3, 5, 7]);
    let s = origin(&p, &h).pool;
    assert_eq!(
        (s.connections, s.connects, s.reuses, s.pending),
        (1, 1, 4, 0)
    );
}

#[tokio::test]
async fn a_grant_to_a_request_that_stopped_waiting_goes_back() {
    let p = pool(|c| c.pool.max_connections_per_host = 1);
    let h = host(&p, peer().await);
    let held = lease(&p, &h, 3).await.unwrap();
    let (p2, h2) = (p.clone(), HostRef(h.0.clone()));
    let waiter = tokio::spawn(async move { lease(&p2, &h2, 3).await.map(drop) });
    until("the waiter to queue", || origin(&p, &h).pool.pending == 1).await;
    waiter.abort();
    assert!(waiter.await.unwrap_err().is_cancelled());
    held.release();
    let s = origin(&p, &h).pool;
    assert_eq!((s.connections, s.idle, s.pending), (1, 1, 0), "not lost");
    let again = lease(&p, &h, 3).await.unwrap();
    assert!(again.reused);
    assert_eq!(total(&p), 1);
}

#[tokio::test]
async fn the_global_cap_holds_across_origins() {
    let p = pool(|c| c.pool.max_connections = 1);
    let (a, b) = (host(&p, peer().await), host(&p, peer().await));
    let la = lease(&p, &a, 3).await.unwrap();
    let (p2, b2) = (p.clone(), HostRef(b.0.clone()));
    let waiting = tokio::spawn(async move { lease(&p2, &b2, 3).await });
    until("b to wait for the global cap", || {
        origin(&p, &b).pool.pending == 1
    })
    .await;
    assert_eq!(total(&p), 1);
    // Back in the pool, `a`'s idle connection is evicted to make room for `b`.
    la.release();
    let lb = tokio::time::timeout(WAIT, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!lb.reused);
    assert_eq!(total(&p), 1, "never above the cap");
    assert_eq!(origin(&p, &a).pool.connections, 0);
    assert_eq!(origin(&p, &b).pool.connections, 1);
    lb.release();
}
