//! Records the engine hands a binding's callback: dead letters ([`Letters`]) and finished
//! spans ([`Spans`]). The core's delivery task (or thread) queues them here, never calling
//! into the host from an engine thread, and the host takes them on its own thread (a Python
//! thread, the JS main thread through a wake-up, a Go goroutine, a C caller).

use std::sync::Arc;

use wirecore::{DeadLetter, SpanRecord};

use crate::Batch;

/// Records waiting for the host; see the module docs.
#[derive(Debug)]
pub struct HostQueue<T> {
    queue: Batch<T>,
    /// Records queued at most; more are dropped (counted by the core).
    cap: usize,
}

/// Dead letters waiting for the host.
pub type Letters = HostQueue<DeadLetter>;

/// Finished spans waiting for the host.
pub type Spans = HostQueue<SpanRecord>;

impl<T> HostQueue<T> {
    fn with_cap(cap: u64) -> Arc<Self> {
        Arc::new(HostQueue {
            queue: Batch::default(),
            cap: usize::try_from(cap).unwrap_or(usize::MAX).max(1),
        })
    }

    /// Queues `item` unless the queue is full (false: the core counts it dropped); `wake`
    /// runs when it starts a batch.
    fn offer(&self, item: T, wake: &(impl Fn() + ?Sized)) -> bool {
        if self.queue.len() >= self.cap {
            return false;
        }
        if self.queue.push(item) {
            wake();
        }
        true
    }

    /// The queue the host takes records from.
    pub fn queue(&self) -> &Batch<T> {
        &self.queue
    }
}

impl HostQueue<DeadLetter> {
    /// A queue of at most `client`'s `dead_letter.queue` letters.
    pub fn new(client: &wirecore::Client) -> Arc<Letters> {
        Self::with_cap(client.config().dead_letter.queue)
    }

    /// Makes `client` queue its dead letters here; `wake` runs (on an engine thread) when a
    /// letter starts a batch, to tell a host that polls.
    pub fn listen(
        self: &Arc<Self>,
        client: &wirecore::Client,
        wake: impl Fn() + Send + Sync + 'static,
    ) {
        let me = self.clone();
        client.on_dead_letter_or_drop(move |l| me.offer(l.clone(), &wake));
    }
}

impl HostQueue<SpanRecord> {
    /// A queue of at most `client`'s `otel.callback_queue` spans.
    pub fn new(client: &wirecore::Client) -> Arc<Spans> {
        Self::with_cap(client.config().otel.callback_queue)
    }

    /// Makes `client` queue its finished spans here; `wake` runs (on the core's span thread)
    /// when a span starts a batch, to tell a host that polls.
    ///
    /// # Errors
    /// `invalid_config` naming `otel.enabled` when tracing is off.
    pub fn listen(
        self: &Arc<Self>,
        client: &wirecore::Client,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> Result<(), wirecore::Error> {
        let me = self.clone();
        client.on_span_or_drop(move |s| me.offer(s.clone(), &wake))
    }
}
