//! Heap allocations per request in the core (issue 18): a counting global allocator counts the
//! allocations, and their bytes, made by one GET of 1 KiB read whole (`send` then `bytes`),
//! over HTTP/1.1 (plain) and HTTP/2 (TLS, ALPN), one request at a time after a warm-up.
//!
//! Only the client's thread counts: the client runs on this thread's current-thread runtime
//! (connection tasks included), the test server on its own runtime's threads.
//!
//! `cargo bench -p wirecore --bench allocs`; with `WIRECORE_BENCH_REPORT=<file>` it also writes
//! the table there. The counts do not depend on the machine's speed or load.
#![expect(unsafe_code, reason = "a counting global allocator")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use wirecore::{Client, Config};
use wirecore_testserver::{Options, TestServer};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count(size: usize) {
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(size as u64, Relaxed);
    }
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        // A realloc is an allocation (it may move); its bytes are the new size.
        count(new);
        // SAFETY: allocated by `System` with this layout.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const WARM: u64 = 500;
const N: u64 = 5_000;

/// Allocations and bytes per request of `N` sequential GETs of `url`, after a warm-up.
async fn per_request(client: &Client, url: &str) -> (f64, f64) {
    let one = || async {
        let r = client.get(url).send().await.expect("request");
        assert_eq!(r.status(), 200);
        let body = r.bytes().await.expect("body");
        assert_eq!(body.len(), 1024);
    };
    for _ in 0..WARM {
        one().await;
    }
    COUNTED.set(true);
    let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    for _ in 0..N {
        one().await;
    }
    let (a1, b1) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    COUNTED.set(false);
    ((a1 - a0) as f64 / N as f64, (b1 - b0) as f64 / N as f64)
}

fn main() {
    // Its own runtime, on its own threads: never counted.
    let srv = TestServer::start_blocking(Options {
        request_log_capacity: 0,
        ..Options::default()
    })
    .expect("test server");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut cfg = Config::default();
    cfg.tls.extra_ca_pem.push(srv.ca_pem().to_owned());
    let mut table = String::from(
        "| GET 1 KiB, read whole | allocations per request | bytes allocated per request |\n\
         |---|---:|---:|\n",
    );
    rt.block_on(async {
        let client = Client::from_config(cfg).expect("client");
        for (name, url) in [
            ("HTTP/1.1", srv.url("/bytes/1024")),
            ("HTTP/2 (TLS)", srv.tls_url("/bytes/1024")),
        ] {
            let (allocs, bytes) = per_request(&client, &url).await;
            println!("{name}: {allocs:.1} allocations, {bytes:.0} bytes per request");
            let _ = writeln!(table, "| {name} | {allocs:.1} | {bytes:.0} |");
        }
    });
    if let Ok(path) = std::env::var("WIRECORE_BENCH_REPORT") {
        let doc = format!(
            "# Allocations per request in the core\n\n`cargo bench -p wirecore --bench allocs` \
             (core/benches/allocs.rs): {N} sequential requests after {WARM} of warm-up, on the \
             client's thread only (the test server runs on other threads).\n\n{table}"
        );
        std::fs::write(&path, doc).expect("report");
        println!("wrote {path}");
    }
}
