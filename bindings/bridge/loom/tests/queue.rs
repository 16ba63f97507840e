//! Loom models of the completion queue: engine threads complete (push) while a binding's host
//! thread polls, blocks or closes. Each model runs every interleaving loom finds of a few
//! threads; an assertion failing or every thread blocked (a lost wake-up) fails it.
//!
//! `make test-loom` (RUSTFLAGS="--cfg loom").
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;
use wirecore_bridge_loom::{Batch, Requests};

/// Two engine threads complete one item each; a push that starts a batch writes a wake-up
/// (Python's socket byte, Node's threadsafe-function call), counted in `wakes`.
fn two_completions(q: &Arc<Batch<u8>>, wakes: &Arc<AtomicUsize>) -> Vec<thread::JoinHandle<()>> {
    (0..2u8)
        .map(|i| {
            let (q, wakes) = (q.clone(), wakes.clone());
            thread::spawn(move || {
                if q.push(i) {
                    wakes.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect()
}

/// Python's drain (python/src/bridge.rs `Completer::drain`): runs when woken, reads the
/// wake-up bytes, then takes everything. Nothing may be left queued without a byte pending.
#[test]
fn a_drain_after_every_wake_up_takes_every_completion() {
    loom::model(|| {
        let q = Arc::new(Batch::default());
        let wakes = Arc::new(AtomicUsize::new(0));
        let producers = two_completions(&q, &wakes);
        let mut got = Vec::new();
        let drain = |got: &mut Vec<u8>| {
            if wakes.swap(0, Ordering::SeqCst) == 0 {
                return false;
            }
            got.extend(q.take(usize::MAX));
            true
        };
        // One drain while the engine threads run, then as many as the loop is woken for.
        drain(&mut got);
        for p in producers {
            p.join().expect("no panic");
        }
        while drain(&mut got) {}
        got.sort_unstable();
        assert_eq!(got, [0, 1], "a completion was left without a wake-up");
    });
}

/// The model above has teeth: a drain that takes before it reads its wake-ups loses a
/// completion pushed in between (its byte is read, the item stays).
#[test]
#[should_panic(expected = "a completion was left without a wake-up")]
fn a_drain_that_takes_before_reading_its_wake_ups_loses_one() {
    loom::model(|| {
        let q = Arc::new(Batch::default());
        let wakes = Arc::new(AtomicUsize::new(0));
        let producers = two_completions(&q, &wakes);
        let mut got = Vec::new();
        let drain = |got: &mut Vec<u8>| {
            if wakes.load(Ordering::SeqCst) == 0 {
                return false;
            }
            got.extend(q.take(usize::MAX));
            wakes.store(0, Ordering::SeqCst);
            true
        };
        drain(&mut got);
        for p in producers {
            p.join().expect("no panic");
        }
        while drain(&mut got) {}
        got.sort_unstable();
        assert_eq!(got, [0, 1], "a completion was left without a wake-up");
    });
}

/// Node's dispatcher (node/src/completion.rs): each wake-up is one call on the JS thread that
/// takes at most a batch, and takes again while a batch came back full.
#[test]
fn batches_of_one_after_every_wake_up_take_every_completion() {
    loom::model(|| {
        let q = Arc::new(Batch::default());
        let wakes = Arc::new(AtomicUsize::new(0));
        let producers = two_completions(&q, &wakes);
        let mut got = Vec::new();
        let call = |got: &mut Vec<u8>| {
            // One queued call runs (they queue up; each is handled on its own).
            if wakes
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_err()
            {
                return false;
            }
            loop {
                let batch = q.take(1);
                let full = batch.len() == 1;
                got.extend(batch);
                if !full {
                    return true;
                }
            }
        };
        call(&mut got);
        for p in producers {
            p.join().expect("no panic");
        }
        while call(&mut got) {}
        got.sort_unstable();
        assert_eq!(got, [0, 1], "a completion was left without a call");
    });
}

/// The C ABI's blocking consumer (`wirecore_queue_wait`): a thread blocked in `wait_with`
/// wakes for each push and for close, and never sleeps through one (loom fails a model where
/// every thread is blocked).
#[test]
fn a_blocked_waiter_takes_every_completion_then_sees_close() {
    loom::model(|| {
        let q = Arc::new(Batch::<u8>::default());
        let waiter = {
            let q = q.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                while q.wait_with(8, None, |x| got.push(x)).is_some() {}
                got
            })
        };
        let producer = {
            let q = q.clone();
            thread::spawn(move || {
                q.push(0);
                q.push(1);
            })
        };
        producer.join().expect("no panic");
        q.close();
        let mut got = waiter.join().expect("no panic");
        got.sort_unstable();
        assert_eq!(got, [0, 1]);
    });
}

/// The C ABI's polling consumer (`wirecore_queue_try_take` with `wirecore_queue_notify_fd`;
/// its protocol copied from bindings/c/src/task.rs): a poll that finds the queue empty arms
/// the fd under the queue's lock, and a push after it swaps the arming off and writes a byte.
/// A poller that went to sleep on the fd must find a byte for every completion it did not take.
///
/// Ignored: loom reports a false alarm here. In its failing run producer 0's swap reads the
/// initial `false`, then the poller arms (`true`), then producer 1 pushes (after the arming, by
/// the queue's lock) and its swap reads producer 0's `false`. In the C++ memory model an RMW
/// reading the initial value is next to it in the modification order, so the arming comes after
/// it and producer 1's swap must read `true`; loom keeps a partial modification order in which
/// producer 0's write and the arming are unordered and lets the swap read either.
#[test]
#[ignore = "loom false alarm: its partial modification order lets an RMW read a value a later store replaced (see the doc comment)"]
fn a_poller_that_armed_the_fd_is_woken_for_a_later_completion() {
    loom::model(|| {
        let q = Arc::new(Batch::<u8>::default());
        let armed = Arc::new(AtomicBool::new(false));
        let bytes = Arc::new(AtomicUsize::new(0));
        let producers: Vec<_> = (0..2u8)
            .map(|i| {
                let (q, armed, bytes) = (q.clone(), armed.clone(), bytes.clone());
                thread::spawn(move || {
                    q.push(i);
                    if armed.swap(false, Ordering::AcqRel) {
                        bytes.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        let mut got = Vec::new();
        let mut asleep = false;
        // Polls until the queue is empty and the fd armed: the poller then sleeps on it.
        loop {
            let arm = || armed.store(true, Ordering::Release);
            match q.try_take_with(8, arm, |x| got.push(x)) {
                Some(0) => {
                    asleep = true;
                    break;
                }
                Some(_) => {}
                None => break,
            }
        }
        for p in producers {
            p.join().expect("no panic");
        }
        assert!(asleep);
        if !q.is_empty() {
            assert!(
                bytes.load(Ordering::SeqCst) > 0,
                "the poller sleeps with a completion queued and no byte on its fd: got {got:?}, queued {}, armed {}",
                q.len(),
                armed.load(Ordering::SeqCst)
            );
        }
    });
}

/// Close accounting (bindings/bridge/src/tracker.rs through requests.rs): requests submitted
/// before a close complete on engine threads (sink, then uncount) while the host thread
/// closes and blocks until none is left; when it returns, every sink has run.
#[test]
fn a_close_returns_only_after_every_sink_ran() {
    loom::model(|| {
        let requests = Arc::new(Requests::default());
        let q = Arc::new(Batch::<u8>::default());
        let engine: Vec<_> = (0..2u8)
            .map(|i| {
                requests.enter();
                let (requests, q) = (requests.clone(), q.clone());
                thread::spawn(move || {
                    q.push(i);
                    requests.exit();
                })
            })
            .collect();
        requests.begin_close();
        requests.wait();
        assert_eq!(q.len(), 2, "close returned before every sink ran");
        assert_eq!(requests.count(), 0);
        for e in engine {
            e.join().expect("no panic");
        }
    });
}
