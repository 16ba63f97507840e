//! The heap a client holds: bindings with a garbage collector (Node, Python cycles) keep closed
//! clients until a collection, and the collector cannot see native memory, so a service that
//! creates clients often grows by this much per client in between (the soak saw Node at
//! 500 MiB; `bench/results/soak.md`).
#![expect(unsafe_code, reason = "a counting global allocator")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size().cast_signed(), Relaxed);
        // SAFETY: same layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size().cast_signed(), Relaxed);
        // SAFETY: same layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size().cast_signed(), Relaxed);
        // SAFETY: allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new.cast_signed() - layout.size().cast_signed(), Relaxed);
        // SAFETY: allocated by `System` with this layout.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

#[tokio::test(flavor = "current_thread")]
async fn an_idle_client_holds_little_heap() {
    // Warm up once-per-process state (TLS roots, DNS resolver config) outside the count.
    drop(wirecore::Client::builder().build().expect("client"));
    let before = LIVE.load(Relaxed);
    let clients: Vec<_> = (0..20)
        .map(|_| wirecore::Client::builder().build().expect("client"))
        .collect();
    let per_client = (LIVE.load(Relaxed) - before) / 20;
    drop(clients);
    // Was 1.5 MiB: eight latency histograms (1 µs .. 1 h, 3 digits) allocated up front.
    assert!(
        per_client < 256 * 1024,
        "an idle client holds {per_client} bytes of heap"
    );
}
