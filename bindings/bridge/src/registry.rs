//! Cancellation by id, for bindings that name their operations with numbers (Node's ids).
//! Bindings that hand out an object per operation (a C `wirecore_task`, a Python `Pending`)
//! keep its [`AbortHandle`](futures_util::future::AbortHandle) there instead.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use futures_util::future::{AbortHandle, AbortRegistration};

/// Operation ids → abort handles. An operation registers when it starts and finishes once;
/// [`Registry::cancel`] stops it and [`Registry::finish`] tells its sink that nobody cancelled
/// it (so the binding delivers its completion).
#[derive(Debug, Default)]
pub struct Registry {
    map: Mutex<HashMap<u64, AbortHandle>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, AbortHandle>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers operation `id`; pass the registration to [`Tracker::spawn`](crate::Tracker::spawn).
    /// An id still registered is replaced (its old operation can no longer be cancelled by id).
    pub fn register(&self, id: u64) -> AbortRegistration {
        let (handle, reg) = AbortHandle::new_pair();
        self.lock().insert(id, handle);
        reg
    }

    /// Called by the operation's sink: true when `id` was still registered (deliver the
    /// outcome), false when it was cancelled (nobody waits for it any more).
    pub fn finish(&self, id: u64) -> bool {
        self.lock().remove(&id).is_some()
    }

    /// Stops operation `id` (its sink then gets a `cancelled` error); false when it is unknown
    /// or finished already.
    pub fn cancel(&self, id: u64) -> bool {
        let h = self.lock().remove(&id);
        h.inspect(AbortHandle::abort).is_some()
    }

    /// Stops every registered operation.
    pub fn cancel_all(&self) {
        let all = std::mem::take(&mut *self.lock());
        all.values().for_each(AbortHandle::abort);
    }

    /// How many operations are registered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no operation is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
