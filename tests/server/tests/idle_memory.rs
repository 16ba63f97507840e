//! Heap held per keep-alive connection by a [`Site`] (`wirecore serve`), idle or with a
//! request in flight, counted by this binary's allocator: issue 15's budget is 10,000
//! connections in under 300 MB. Its own test binary, and its tests take turns, so no other
//! test allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

use wirecore_testserver::{Site, SiteOptions};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

#[expect(
    unsafe_code,
    reason = "a global allocator is unsafe to implement; it only forwards to System"
)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size().cast_signed(), Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size().cast_signed(), Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size.cast_signed() - layout.size().cast_signed(),
            Relaxed,
        );
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const CONNECTIONS: usize = 300;

/// One test at a time: the counter is global.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A site on a free loopback port with the default options.
async fn start_site() -> Site {
    Site::start(SiteOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        ..SiteOptions::default()
    })
    .await
    .unwrap()
}

/// One GET on a fresh connection, read to the end of its 1 KiB body; the socket stays open.
fn fetch_once(addr: std::net::SocketAddr, buf: &mut [u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(s, "GET /bytes/1024 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = 0;
    loop {
        let n = s.read(&mut buf[got..]).unwrap();
        assert!(n > 0, "closed early");
        got += n;
        let text = &buf[..got];
        if let Some(end) = text.windows(4).position(|w| w == b"\r\n\r\n") {
            assert!(text.starts_with(b"HTTP/1.1 200"));
            if got >= end + 4 + 1024 {
                return s;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_holds_under_24_kib() {
    let _turn = SERIAL.lock().await;
    let site = start_site().await;
    let addr = site.addr();
    // Warm up what is allocated once (caches, runtime structures).
    let (warm, before) = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0; 8192];
        let warm: Vec<_> = (0..20).map(|_| fetch_once(addr, &mut buf)).collect();
        (warm, LIVE.load(Relaxed))
    })
    .await
    .unwrap();
    let (conns, after) = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0; 8192];
        let conns: Vec<_> = (0..CONNECTIONS)
            .map(|_| fetch_once(addr, &mut buf))
            .collect();
        (conns, LIVE.load(Relaxed))
    })
    .await
    .unwrap();
    let per = (after - before) / CONNECTIONS.cast_signed();
    eprintln!("heap per idle keep-alive connection: {per} bytes");
    // hyper's own floor is 16 KiB (8 KiB read buffer, 8 KiB header write buffer).
    assert!(
        per < 24 * 1024,
        "{per} bytes of heap per idle connection (budget: 10,000 in under 300 MB)"
    );
    drop((warm, conns));
}

/// Sends `GET /gate?key=KEY&n=N` on a fresh connection without reading the answer.
fn held(addr: std::net::SocketAddr, key: &str, n: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        s,
        "GET /gate?key={key}&n={n} HTTP/1.1\r\nHost: x\r\nUser-Agent: memory-test\r\n\r\n"
    )
    .unwrap();
    s
}

/// Reads one answer to the end of its head and checks it is a 200.
fn answered(s: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    let mut got = 0;
    while !buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf[got..]).unwrap();
        assert!(n > 0, "closed early");
        got += n;
    }
    assert!(buf.starts_with(b"HTTP/1.1 200"));
}

/// Waits (bounded) until the site has `n` requests in flight.
async fn until_in_flight(site: &Site, n: u64) {
    for _ in 0..3000 {
        if site.counters().requests_in_flight == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!(
        "{} requests in flight, {n} expected",
        site.counters().requests_in_flight
    );
}

/// A connection whose request the server is still answering (held at `/gate`, as a
/// `/delay/MS` or a slow backend holds it): the request's future and whatever its head keeps
/// alive come on top of the idle connection's buffers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_with_a_request_in_flight_holds_under_24_kib() {
    let _turn = SERIAL.lock().await;
    let site = start_site().await;
    let addr = site.addr();
    // Warm up: a round of held requests, answered, their connections kept.
    let mut warm: Vec<_> = (0..20).map(|_| held(addr, "warm", 21)).collect();
    until_in_flight(&site, 20).await;
    warm.push(held(addr, "warm", 21));
    let warm = tokio::task::spawn_blocking(move || {
        for s in &mut warm {
            answered(s);
        }
        warm
    })
    .await
    .unwrap();
    until_in_flight(&site, 0).await;
    let before = LIVE.load(Relaxed);
    let mut conns: Vec<_> = (0..CONNECTIONS)
        .map(|_| held(addr, "held", CONNECTIONS + 1))
        .collect();
    until_in_flight(&site, CONNECTIONS as u64).await;
    let after = LIVE.load(Relaxed);
    let per = (after - before) / CONNECTIONS.cast_signed();
    eprintln!("heap per connection with a request in flight: {per} bytes");
    conns.push(held(addr, "held", CONNECTIONS + 1));
    tokio::task::spawn_blocking(move || {
        for s in &mut conns {
            answered(s);
        }
        drop((warm, conns));
    })
    .await
    .unwrap();
    // An idle connection's floor (16 KiB of hyper buffers) plus a small request future.
    assert!(
        per < 24 * 1024,
        "{per} bytes of heap per connection with a request in flight (budget: 10,000 in under 300 MB)"
    );
}
