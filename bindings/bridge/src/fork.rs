//! Fork detection for the bindings, in one place.
//!
//! A forked child has none of its parent's threads: the engine runtime, and every client's
//! connections and in-flight work, must be rebuilt there. A `pthread_atfork` child handler
//! counts forks, so asking "did this process fork?" costs an atomic load, not a `getpid`
//! system call per request. (The core's runtime checks the pid on its own slow path.)
#![expect(
    unsafe_code,
    reason = "registering a pthread_atfork handler is a call into libc"
)]

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio::runtime::Runtime;

/// Forks of this process image, counted in each child.
static FORKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn forked_child() {
    FORKS.fetch_add(1, Relaxed);
}

unsafe extern "C" {
    fn pthread_atfork(
        prepare: Option<extern "C" fn()>,
        parent: Option<extern "C" fn()>,
        child: Option<extern "C" fn()>,
    ) -> std::ffi::c_int;
}

/// A number that changes in a forked child (and never otherwise).
pub fn generation() -> u64 {
    static ATFORK: OnceLock<bool> = OnceLock::new();
    // SAFETY: the handler only bumps an atomic (async-signal-safe).
    let counted =
        *ATFORK.get_or_init(|| unsafe { pthread_atfork(None, None, Some(forked_child)) } == 0);
    if counted {
        FORKS.load(Relaxed)
    } else {
        // Registration refused: fall back to the pid (high bit set, so it never equals a count).
        u64::from(std::process::id()) | 1 << 63
    }
}

/// The engine runtime (`wirecore::runtime::global()`), cached per thread: the core's lookup
/// takes a process-wide lock, which thousands of submitting threads would contend on. A fork
/// invalidates every cache, so a forked child gets its own runtime.
pub fn runtime() -> Arc<Runtime> {
    thread_local! {
        static RT: RefCell<Option<(u64, Arc<Runtime>)>> = const { RefCell::new(None) };
    }
    let g = generation();
    RT.with_borrow_mut(|slot| match slot {
        Some((at, rt)) if *at == g => rt.clone(),
        _ => {
            let rt = wirecore::runtime::global();
            *slot = Some((g, rt.clone()));
            rt
        }
    })
}

/// A value that belongs to one process: [`PerProcess::get`] rebuilds it in a forked child (a
/// client and its tracker: the parent's connections and in-flight work do not exist there).
#[derive(Debug)]
pub struct PerProcess<T> {
    state: Mutex<(u64, T)>,
}

impl<T: Clone> PerProcess<T> {
    pub fn new(v: T) -> Self {
        Self {
            state: Mutex::new((generation(), v)),
        }
    }

    /// The value, rebuilt by `make` first when this process forked since it was made.
    pub fn get<E>(&self, make: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let g = generation();
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if s.0 != g {
            *s = (g, make()?);
        }
        Ok(s.1.clone())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_generation_is_stable_without_a_fork() {
        let a = super::generation();
        assert_eq!(a, super::generation());
        let p = super::PerProcess::new(1);
        assert_eq!(
            p.get(|| Err::<i32, ()>(())),
            Ok(1),
            "no rebuild without a fork"
        );
        let rt = super::runtime();
        assert!(std::sync::Arc::ptr_eq(&rt, &super::runtime()));
    }
}
