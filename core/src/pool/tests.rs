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
    p.acquire_at(
        h,
        None,
        &|| urgency,
        crate::request::PhaseTimeouts::default(),
    )
    .await
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
    let pl = pool(|_| {});
    let ho = host(&pl, peer().await);
    let first = lease(&pl, &ho, 3).await.unwrap();
    let second = lease(&pl, &ho, 3).await.unwrap();
    assert!(!first.reused && !second.reused);
    let st = origin(&pl, &ho).pool;
    assert_eq!(
        (st.connections, st.active, st.idle, st.connects),
        (2, 2, 0, 2)
    );
    assert_eq!(total(&pl), 2);

    first.release();
    let st = origin(&pl, &ho).pool;
    assert_eq!((st.connections, st.active, st.idle), (2, 1, 1));

    // Dropped without release (failed, cancelled or read in part): retired, never reused.
    let meta = match &second.conn {
        super::lease::LeaseConn::H1(Some(c)) => c.meta.clone(),
        _ => unreachable!("an http: origin without prior knowledge speaks HTTP/1.1"),
    };
    drop(second);
    let st = origin(&pl, &ho).pool;
    assert_eq!((st.connections, st.idle, st.evictions.error), (1, 1, 1));
    assert_eq!(total(&pl), 1);
    // A second retirement of the same connection (a racing peer close) changes nothing.
    ho.0.retire(&meta, Reason::ClosedByPeer);
    let st = origin(&pl, &ho).pool;
    assert_eq!((st.connections, st.evictions.closed_by_peer), (1, 0));
    assert_eq!(total(&pl), 1);

    // The idle one is reused, then closed with the rest.
    let third = lease(&pl, &ho, 3).await.unwrap();
    assert!(third.reused);
    third.release();
    pl.close_idle(false);
    let st = origin(&pl, &ho).pool;
    assert_eq!((st.connections, st.idle, st.evictions.idle), (0, 0, 1));
    assert_eq!(total(&pl), 0);
}

#[tokio::test]
async fn a_failed_connect_gives_back_its_slot() {
    let pl = pool(|c| c.pool.max_connections = 1);
    // A port nothing listens on: bind, read the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dead = host(&pl, port);
    for _ in 0..3 {
        let Err(e) = lease(&pl, &dead, 3).await else {
            panic!("nothing listens there")
        };
        assert_eq!(e.kind().code(), "connect", "{e}");
    }
    let st = origin(&pl, &dead).pool;
    assert_eq!((st.connections, st.connecting, st.pending), (0, 0, 0));
    assert_eq!(total(&pl), 0, "the only global slot is free again");
    // ... which another origin can now take.
    let live = host(&pl, peer().await);
    lease(&pl, &live, 3).await.unwrap().release();
    assert_eq!(total(&pl), 1);
}

#[tokio::test]
async fn waiters_are_served_most_urgent_first() {
    let pl = pool(|c| c.pool.max_connections_per_host = 1);
    let ho = host(&pl, peer().await);
    let held = lease(&pl, &ho, 3).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    for (n, urgency) in [5u8, 0, 7, 3].into_iter().enumerate() {
        let (p2, h2, tx) = (pl.clone(), HostRef(ho.0.clone()), tx.clone());
        tokio::spawn(async move {
            let l = lease(&p2, &h2, urgency).await.unwrap();
            tx.send(urgency).unwrap();
            l.release();
        });
        until("the waiter to queue", || {
            origin(&pl, &ho).pool.pending == n as u64 + 1
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
    let st = origin(&pl, &ho).pool;
    assert_eq!(
        (st.connections, st.connects, st.reuses, st.pending),
        (1, 1, 4, 0)
    );
}

#[tokio::test]
async fn a_grant_to_a_request_that_stopped_waiting_goes_back() {
    let pl = pool(|c| c.pool.max_connections_per_host = 1);
    let ho = host(&pl, peer().await);
    let held = lease(&pl, &ho, 3).await.unwrap();
    let (p2, h2) = (pl.clone(), HostRef(ho.0.clone()));
    let waiter = tokio::spawn(async move { lease(&p2, &h2, 3).await.map(drop) });
    until("the waiter to queue", || origin(&pl, &ho).pool.pending == 1).await;
    waiter.abort();
    assert!(waiter.await.unwrap_err().is_cancelled());
    held.release();
    let st = origin(&pl, &ho).pool;
    assert_eq!((st.connections, st.idle, st.pending), (1, 1, 0), "not lost");
    let again = lease(&pl, &ho, 3).await.unwrap();
    assert!(again.reused);
    assert_eq!(total(&pl), 1);
}

#[tokio::test]
async fn the_global_cap_holds_across_origins() {
    let pl = pool(|c| c.pool.max_connections = 1);
    let (a, b) = (host(&pl, peer().await), host(&pl, peer().await));
    let la = lease(&pl, &a, 3).await.unwrap();
    let (p2, b2) = (pl.clone(), HostRef(b.0.clone()));
    let waiting = tokio::spawn(async move { lease(&p2, &b2, 3).await });
    until("b to wait for the global cap", || {
        origin(&pl, &b).pool.pending == 1
    })
    .await;
    assert_eq!(total(&pl), 1);
    // Back in the pool, `a`'s idle connection is evicted to make room for `b`.
    la.release();
    let lb = tokio::time::timeout(WAIT, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!lb.reused);
    assert_eq!(total(&pl), 1, "never above the cap");
    assert_eq!(origin(&pl, &a).pool.connections, 0);
    assert_eq!(origin(&pl, &b).pool.connections, 1);
    lb.release();
}
