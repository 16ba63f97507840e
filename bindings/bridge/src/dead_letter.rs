//! Dead letters for a binding's callback: the core's delivery task queues them here, never
//! calling into the host from an engine thread, and the host takes them on its own thread (a
//! Python thread, the JS main thread through a wake-up, a Go goroutine, a C caller).

use std::sync::Arc;

use wirecore::DeadLetter;

use crate::Batch;

/// Letters waiting for the host; see the module docs.
#[derive(Debug)]
pub struct Letters {
    queue: Batch<DeadLetter>,
    /// Letters queued at most; more are dropped (counted by the core).
    cap: usize,
}

impl Letters {
    /// A queue of at most `client`'s `dead_letter.queue` letters.
    pub fn new(client: &wirecore::Client) -> Arc<Letters> {
        let cap = usize::try_from(client.config().dead_letter.queue).unwrap_or(usize::MAX);
        Arc::new(Letters {
            queue: Batch::default(),
            cap: cap.max(1),
        })
    }

    /// Makes `client` queue its dead letters here; `wake` runs (on an engine thread) when a
    /// letter starts a batch, to tell a host that polls.
    pub fn listen(
        self: &Arc<Self>,
        client: &wirecore::Client,
        wake: impl Fn() + Send + Sync + 'static,
    ) {
        let me = self.clone();
        client.on_dead_letter_or_drop(move |l| {
            if me.queue.len() >= me.cap {
                return false;
            }
            if me.queue.push(l.clone()) {
                wake();
            }
            true
        });
    }

    /// The queue the host takes letters from.
    pub fn queue(&self) -> &Batch<DeadLetter> {
        &self.queue
    }
}
