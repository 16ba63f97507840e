//! A completion queue between engine threads (producers) and one binding's consumer.
//!
//! Completions are delivered in batches: [`Batch::push`] says when the queue was empty, and
//! only then does the producer wake the consumer (a byte on a socket, a call into JS), which
//! takes everything queued meanwhile in one crossing. Consumers that block (C threads) wait on
//! it directly; ones that poll arm a wake-up when they find it empty.

use std::collections::VecDeque;
use std::sync::PoisonError;
use std::time::Duration;

// `crate::sync` is std's here and loom's in the loom model (bindings/bridge/loom).
use crate::sync::{Condvar, Mutex, MutexGuard};

/// A completion queue; see the module docs.
#[derive(Debug)]
pub struct Batch<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    closed: bool,
    /// Threads blocked in [`Batch::wait_with`].
    waiters: usize,
    /// Set by [`Batch::kick`]: the next [`Batch::wait_with`] returns at once.
    kicked: bool,
}

impl<T> Default for Batch<T> {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                closed: false,
                waiters: 0,
                kicked: false,
            }),
            ready: Condvar::new(),
        }
    }
}

impl<T> Batch<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item`; true when the queue was empty, i.e. this item starts a batch and the
    /// consumer must be woken (a later push of the same batch is taken along).
    pub fn push(&self, item: T) -> bool {
        let mut g = self.lock();
        let first = g.items.is_empty();
        g.items.push_back(item);
        // A waiter already awake takes this one too: waking it again would be a syscall per
        // completion and would break batches into singles.
        let wake = g.waiters > 0;
        drop(g);
        if wake {
            self.ready.notify_one();
        }
        first
    }

    /// Queues `item`; true when a thread blocked in [`Batch::wait_with`] takes it (it is woken
    /// and drains the queue before it returns), so no other consumer needs a wake-up for it.
    pub fn push_to_waiter(&self, item: T) -> bool {
        let mut g = self.lock();
        g.items.push_back(item);
        let waiter = g.waiters > 0;
        drop(g);
        if waiter {
            self.ready.notify_one();
        }
        waiter
    }

    /// Moves up to `max` queued items, oldest first, into `f`; returns how many.
    pub fn take_with(&self, max: usize, f: impl FnMut(T)) -> usize {
        let mut g = self.lock();
        drain(&mut g.items, max, f)
    }

    /// Up to `max` queued items, oldest first.
    pub fn take(&self, max: usize) -> Vec<T> {
        let mut g = self.lock();
        if g.items.len() <= max {
            return Vec::from(std::mem::take(&mut g.items));
        }
        g.items.drain(..max).collect()
    }

    /// Like [`Batch::take_with`], but `None` once the queue is closed and empty, and
    /// `on_empty` runs (under the queue's lock, so no push can slip in between) when it leaves
    /// nothing queued: a poller arms its wake-up there. A take that emptied the queue arms it
    /// too, so a poller that took fewer than `max` can sleep at once, without a second take to
    /// find the queue empty.
    pub fn try_take_with(
        &self,
        max: usize,
        on_empty: impl FnOnce(),
        f: impl FnMut(T),
    ) -> Option<usize> {
        let mut g = self.lock();
        if g.items.is_empty() && g.closed {
            return None;
        }
        let n = drain(&mut g.items, max, f);
        if g.items.is_empty() {
            on_empty();
        }
        Some(n)
    }

    /// Blocks until at least one item is queued (then moves up to `max` into `f`), `timeout`
    /// passes (`Some(0)`; `None` waits forever) or the queue is closed and empty (`None`).
    #[expect(
        clippy::disallowed_types,
        reason = "a host thread waiting on a condvar has no tokio clock"
    )]
    pub fn wait_with(
        &self,
        max: usize,
        timeout: Option<Duration>,
        f: impl FnMut(T),
    ) -> Option<usize> {
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        let mut g = self.lock();
        while g.items.is_empty() {
            if g.closed {
                return None;
            }
            if g.kicked {
                g.kicked = false;
                return Some(0);
            }
            g.waiters += 1;
            match (timeout, deadline) {
                (Some(_), Some(d)) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        g.waiters -= 1;
                        return Some(0);
                    }
                    g = self
                        .ready
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                _ => g = self.ready.wait(g).unwrap_or_else(PoisonError::into_inner),
            }
            g.waiters -= 1;
        }
        // Whoever kicked wanted a waiter to look around: returning does that too.
        g.kicked = false;
        Some(drain(&mut g.items, max, f))
    }

    /// Wakes the threads blocked in [`Batch::wait_with`] with what is queued, possibly
    /// nothing (`Some(0)`); when none is blocked, the next call returns at once. For a consumer
    /// that learnt elsewhere (another consumer took its item) that its waiter should stop
    /// waiting.
    pub fn kick(&self) {
        let mut g = self.lock();
        g.kicked = true;
        let wake = g.waiters > 0;
        drop(g);
        if wake {
            self.ready.notify_all();
        }
    }

    /// Closes the queue: waiters wake, and takes report `None` once it is empty. Items pushed
    /// after close are still queued.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// How many items are queued.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn drain<T>(items: &mut VecDeque<T>, max: usize, f: impl FnMut(T)) -> usize {
    let n = items.len().min(max);
    items.drain(..n).for_each(f);
    n
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::Batch;

    #[test]
    fn only_the_first_push_of_a_batch_wakes() {
        let b = Batch::default();
        assert!(b.push(1), "the first item wakes the consumer");
        assert!(!b.push(2), "the second joins its batch");
        assert_eq!(b.take(usize::MAX), vec![1, 2]);
        assert!(b.push(3), "after a take the next item starts a batch");
        assert!(!b.push(4));
        assert_eq!(b.take(1), vec![3], "at most max, oldest first");
        assert!(
            !b.push(5),
            "items left behind: the consumer is still taking"
        );
        assert_eq!(b.take(9), vec![4, 5]);
    }

    #[test]
    fn polling_arms_when_it_leaves_the_queue_empty_and_reports_close() {
        let b = Batch::default();
        let mut armed = 0;
        assert_eq!(b.try_take_with(4, || armed += 1, |_: u8| {}), Some(0));
        assert_eq!(armed, 1);
        b.push(7);
        let mut got = Vec::new();
        assert_eq!(b.try_take_with(4, || armed += 1, |x| got.push(x)), Some(1));
        assert_eq!(
            (armed, got),
            (2, vec![7]),
            "a take that empties the queue arms"
        );
        for x in 0..3 {
            b.push(x);
        }
        assert_eq!(b.try_take_with(2, || armed += 1, drop), Some(2));
        assert_eq!(armed, 2, "a take that leaves items behind does not arm");
        assert_eq!(b.try_take_with(2, || armed += 1, drop), Some(1));
        assert_eq!(armed, 3);
        b.close();
        b.push(8);
        assert_eq!(
            b.try_take_with(4, || {}, drop),
            Some(1),
            "items after close still come"
        );
        assert_eq!(b.try_take_with(4, || {}, drop), None);
    }

    /// A thread blocked in `wait_with` (no timeout): what it returned and what it took.
    fn waiter(b: &Arc<Batch<u8>>) -> std::thread::JoinHandle<(Option<usize>, Vec<u8>)> {
        let b = b.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            (b.wait_with(8, None, |x| got.push(x)), got)
        })
    }

    /// Spins until a thread is blocked in `wait_with` (bounded: 30 s).
    fn until_blocked(b: &Batch<u8>) {
        for _ in 0..30_000 {
            if b.lock().waiters > 0 {
                return;
            }
            std::thread::park_timeout(Duration::from_millis(1));
        }
        panic!("the waiter never blocked");
    }

    #[test]
    fn a_push_says_when_a_blocked_waiter_takes_it() {
        let b = Arc::new(Batch::default());
        assert!(
            !b.push_to_waiter(1),
            "nobody waits: the poller needs its wake-up"
        );
        assert_eq!(b.take(9), vec![1]);
        let blocked = waiter(&b);
        until_blocked(&b);
        assert!(b.push_to_waiter(2), "a blocked waiter takes it");
        assert_eq!(blocked.join().expect("no panic"), (Some(1), vec![2]));
        assert!(b.is_empty());
    }

    #[test]
    fn a_kick_wakes_a_blocked_waiter_or_the_next_one_once() {
        let b = Arc::new(Batch::<u8>::default());
        let first = waiter(&b);
        until_blocked(&b);
        b.kick();
        assert_eq!(
            first.join().expect("no panic"),
            (Some(0), vec![]),
            "woken with nothing"
        );
        // Nobody waits: the next wait returns at once, and only that one.
        b.kick();
        assert_eq!(b.wait_with(8, None, |_| {}), Some(0));
        assert_eq!(
            b.wait_with(8, Some(Duration::from_millis(20)), |_| {}),
            Some(0),
            "timed out"
        );
        // A wait that finds items clears a kick too.
        b.kick();
        b.push(5);
        let mut got = Vec::new();
        assert_eq!(b.wait_with(8, None, |x| got.push(x)), Some(1));
        assert_eq!(got, vec![5]);
        let blocked = waiter(&b);
        until_blocked(&b);
        b.push(6);
        assert_eq!(blocked.join().expect("no panic"), (Some(1), vec![6]));
    }

    #[test]
    fn a_blocked_waiter_wakes_for_a_push_and_for_close() {
        let b = Arc::new(Batch::default());
        let first = waiter(&b);
        until_blocked(&b);
        b.push(1);
        assert_eq!(first.join().expect("no panic"), (Some(1), vec![1]));
        let second = waiter(&b);
        until_blocked(&b);
        b.close();
        assert_eq!(second.join().expect("no panic"), (None, vec![]));
        let open = Batch::<u8>::default();
        assert_eq!(
            open.wait_with(8, Some(Duration::from_millis(1)), drop),
            Some(0)
        );
    }
}
