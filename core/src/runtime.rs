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
            .on_thread_start(ignore_sigpipe)
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

/// Blocks SIGPIPE on an engine thread. A write to a socket the peer has closed raises SIGPIPE on
/// the writing thread, and a C or Go host that does not ignore it (Python, Node and Rust
/// programs do) would be killed; blocked, the write fails with EPIPE and the request with an
/// error instead.
fn ignore_sigpipe() {
    #[cfg(unix)]
    {
        use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
        let mut set = SigSet::empty();
        set.add(Signal::SIGPIPE);
        let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
    }
}

/// The caller's runtime if there is one, else the shared runtime's handle.
pub fn handle() -> Handle {
    Handle::try_current().unwrap_or_else(|_| global().handle().clone())
}

/// Runs `fut`, turning a panic inside it into an `internal` error, so a task spawned on behalf
/// of a binding always completes its caller exactly once (a panic would otherwise drop the
/// completion and strand the caller).
pub async fn catch_panic<T, F>(fut: F) -> Result<T, crate::Error>
where
    F: std::future::Future<Output = Result<T, crate::Error>>,
{
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(crate::Error::new(
                crate::ErrorKind::Internal,
                format!("the engine panicked: {what}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_panicking_future_completes_with_internal() {
        let r: Result<(), crate::Error> = super::catch_panic(async { panic!("boom") }).await;
        let e = r.expect_err("a panic is an error");
        assert_eq!(e.kind(), crate::ErrorKind::Internal);
        assert!(e.message().contains("boom"), "{e}");
        let ok = super::catch_panic(async { Ok::<_, crate::Error>(7) }).await;
        assert_eq!(ok.ok(), Some(7));
    }
}
