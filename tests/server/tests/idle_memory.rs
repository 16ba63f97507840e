//! Heap held per idle keep-alive connection by a [`Site`] (`wirecore serve`), counted by this
//! binary's allocator: issue 15's budget is 10,000 idle connections in under 300 MB.
//! Its own test binary, so no other test allocates meanwhile.

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
    let site = Site::start(SiteOptions {
        listen: ([127, 0, 0, 1], 0).into(),
        ..SiteOptions::default()
    })
    .await
    .unwrap();
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
