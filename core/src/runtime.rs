//! The process-wide tokio runtime that bindings run the engine on.
//!
//! Built on first use with threads named `wirecore-rt`. After `fork()` the parent's runtime
//! threads do not exist in the child, so a pid change builds a fresh runtime (the old one is
//! leaked on purpose: dropping it would join threads that are gone).

use std::cell::RefCell;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::runtime::{Builder, Handle, Runtime};

static GLOBAL: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

thread_local! {
    /// This thread's copy of (pid, runtime), so the hot path takes no process-wide lock.
    static CACHED: RefCell<Option<(u32, Arc<Runtime>)>> = const { RefCell::new(None) };
}

/// The shared runtime, created on first use (and again in a forked child).
///
/// # Panics
/// If the OS refuses to start threads.
pub fn global() -> Arc<Runtime> {
    let pid = std::process::id();
    let hit = CACHED.with_borrow(|c| {
        c.as_ref()
            .filter(|(p, _)| *p == pid)
            .map(|(_, rt)| rt.clone())
    });
    if let Some(rt) = hit {
        return rt;
    }
    let rt = global_slow(pid);
    CACHED.with_borrow_mut(|c| *c = Some((pid, rt.clone())));
    rt
}

fn global_slow(pid: u32) -> Arc<Runtime> {
    let mut g = GLOBAL.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((p, rt)) = g.as_ref()
        && *p == pid
    {
        return rt.clone();
    }
    let threads = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    #[expect(clippy::expect_used, reason = "no engine can run without threads")]
    let rt = Arc::new(
        Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("wirecore-rt")
            .enable_all()
            .build()
            .expect("wirecore: cannot start the runtime"),
    );
    if let Some(old) = g.replace((pid, rt.clone())) {
        // Forked child: the old runtime's threads are gone; never run its destructor.
        std::mem::forget(old);
    }
    rt
}

/// The caller's runtime if there is one, else the shared runtime's handle.
pub fn handle() -> Handle {
    Handle::try_current().unwrap_or_else(|_| global().handle().clone())
}
