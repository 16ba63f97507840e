//! The bridge against the project's test server: cancellation, close accounting, the prefetch
//! threshold and the one-reader body.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use wirecore::{Client, Config, ErrorKind, SMALL_BODY_BYTES};
use wirecore_bridge::{
    Begin, BodySlot, Kind, Prefetch, Prefetched, Registry, Tracker, fetch, fork,
};
use wirecore_testserver::{Options, TestServer};

const WAIT: Duration = Duration::from_secs(30);

fn server() -> TestServer {
    TestServer::start_blocking(Options {
        tls: false,
        ..Options::default()
    })
    .expect("test server")
}

fn client() -> Client {
    let rt = fork::runtime();
    let _enter = rt.enter();
    Client::from_config(Config::default()).expect("client")
}

type Fetched = Result<(wirecore_bridge::Head, Prefetched), wirecore::Error>;

/// Spawns a request through `t`; its outcome arrives on the returned channel.
fn submit(
    t: &Arc<Tracker>,
    c: &Client,
    url: &str,
    how: Prefetch,
    abort: Option<wirecore_bridge::AbortRegistration>,
) -> Receiver<Fetched> {
    let (tx, rx) = channel();
    let req = wirecore::Request::new(wirecore::Method::GET, url).expect("request");
    t.spawn(Kind::Request, abort, fetch(c.clone(), req, how), move |r| {
        let _ = tx.send(r);
    });
    rx
}

/// Polls `cond` every 2 ms until it holds; panics naming `what` after 30 s.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..15_000 {
        if cond() {
            return;
        }
        std::thread::park_timeout(Duration::from_millis(2));
    }
    panic!("timed out: {what}");
}

/// The client has the head of `n` requests (the core counts a request until its head).
fn heads(c: &Client, n: u64) {
    wait_until("the response heads arrived", || {
        let s = c.stats();
        s.requests_total == n && s.requests_in_flight == 0
    });
}

#[test]
fn the_prefetch_threshold_is_the_declared_length() {
    let srv = server();
    let c = client();
    let t = Tracker::new();
    for (n, small) in [
        (0, true),
        (SMALL_BODY_BYTES, true),
        (SMALL_BODY_BYTES + 1, false),
    ] {
        let rx = submit(
            &t,
            &c,
            &srv.url(&format!("/bytes/{n}")),
            Prefetch::Small,
            None,
        );
        let (head, body) = rx.recv_timeout(WAIT).expect("one outcome").expect("ok");
        assert_eq!(head.status, 200);
        match body {
            Prefetched::Whole(b) => {
                assert!(small, "{n} bytes were prefetched");
                assert_eq!(b.len() as u64, n);
            }
            Prefetched::Stream(body) => {
                assert!(!small, "{n} bytes streamed");
                let slot = BodySlot::new(Prefetched::Stream(body));
                let all = fork::runtime().block_on(slot.rest()).expect("body");
                assert_eq!(all.len() as u64, n);
                assert!(!slot.is_open());
            }
            Prefetched::Cut(_, e) => panic!("{e}"),
        }
    }
    // A body without a declared length streams, however small.
    let rx = submit(
        &t,
        &c,
        &srv.url("/stream?chunks=2&size=10"),
        Prefetch::Small,
        None,
    );
    let (_, body) = rx.recv_timeout(WAIT).expect("one outcome").expect("ok");
    assert!(matches!(body, Prefetched::Stream(_)), "{body:?}");
}

#[test]
fn cancelling_by_id_delivers_cancelled_and_finish_tells_who_still_waits() {
    let srv = server();
    let c = client();
    let t = Tracker::new();
    let reg = Registry::default();
    let rx = submit(
        &t,
        &c,
        &srv.url("/hang"),
        Prefetch::Small,
        Some(reg.register(1)),
    );
    let done = submit(
        &t,
        &c,
        &srv.url("/json"),
        Prefetch::Small,
        Some(reg.register(2)),
    );
    assert!(done.recv_timeout(WAIT).expect("one outcome").is_ok());
    assert!(reg.finish(2), "nobody cancelled 2");
    assert!(!reg.cancel(2), "2 finished already");
    assert!(reg.cancel(1));
    let e = rx
        .recv_timeout(WAIT)
        .expect("one outcome")
        .expect_err("cancelled");
    assert_eq!(e.kind(), ErrorKind::Cancelled);
    assert!(
        !reg.finish(1),
        "1 was cancelled: its completion is nobody's"
    );
    assert!(reg.is_empty());
    wait_until("the cancelled request is uncounted", || {
        t.counts() == (0, 0)
    });
    assert!(
        matches!(rx.recv_timeout(WAIT), Err(RecvTimeoutError::Disconnected)),
        "exactly one outcome"
    );
}

#[test]
fn close_waits_for_a_body_read_with_the_head_and_for_a_streamed_read() {
    let srv = server();
    let c = client();
    let t = Tracker::new();
    // A small body dripping in after its head, and a large one read in chunks.
    let small = submit(
        &t,
        &c,
        &srv.url("/drip?bytes=1000&chunks=4&delay_ms=150"),
        Prefetch::Small,
        None,
    );
    let large = submit(
        &t,
        &c,
        &srv.url("/drip?bytes=200000&chunks=2&delay_ms=300"),
        Prefetch::Small,
        None,
    );
    heads(&c, 2);
    let Ok((_, Prefetched::Stream(body))) = large.recv_timeout(WAIT).expect("head") else {
        panic!("the large body streams");
    };
    let slot = BodySlot::new(Prefetched::Stream(body));
    let Begin::Read(reader) = slot.begin() else {
        panic!("nothing buffered yet");
    };
    let (tx, read) = channel();
    t.spawn(Kind::Read, None, reader.fill(), move |r| {
        let _ = tx.send(r);
    });
    assert_eq!(
        t.counts(),
        (1, 1),
        "the small body and the chunk read are in flight"
    );
    fork::runtime().block_on(t.close(&c, WAIT, false));
    // Both finished before close returned: their outcomes are there without waiting.
    let (_, body) = small
        .try_recv()
        .expect("close waited for the small body")
        .expect("ok");
    assert!(
        matches!(body, Prefetched::Whole(ref b) if b.len() == 1000),
        "{body:?}"
    );
    read.try_recv()
        .expect("close waited for the read")
        .expect("a chunk");
    assert!(slot.buffered().0 > 0);
    // Closed: a new request is refused.
    let refused = submit(&t, &c, &srv.url("/json"), Prefetch::Small, None);
    let e = refused
        .recv_timeout(WAIT)
        .expect("one outcome")
        .expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::Closed);
}

#[test]
fn a_close_that_drops_the_rest_cancels_requests_past_its_deadline() {
    let srv = server();
    let c = client();
    let t = Tracker::new();
    let hung = submit(&t, &c, &srv.url("/hang"), Prefetch::Small, None);
    wait_until("the request reached the server", || {
        srv.counters().requests >= 1
    });
    fork::runtime().block_on(t.close(&c, Duration::from_millis(50), true));
    t.wait_requests();
    let e = hung
        .try_recv()
        .expect("delivered before wait_requests returned")
        .expect_err("dropped");
    assert_eq!(e.kind(), ErrorKind::Cancelled);
    assert!(e.message().contains("closed"), "{e}");
}

#[test]
fn a_read_cut_short_leaves_the_body_failed_and_close_stops_a_read() {
    let srv = server();
    let c = client();
    let t = Tracker::new();
    let rt = fork::runtime();
    let open = |path: &str| {
        let rx = submit(&t, &c, &srv.url(path), Prefetch::Stream, None);
        let Ok((_, p)) = rx.recv_timeout(WAIT).expect("head") else {
            panic!("head");
        };
        BodySlot::new(p)
    };
    // A read dropped mid-way (its engine future cancelled): every later read reports it.
    let slot = open("/drip?bytes=10&chunks=2&delay_ms=60000");
    let Begin::Read(reader) = slot.begin() else {
        panic!("a read");
    };
    assert!(matches!(slot.begin(), Begin::Busy), "one reader at a time");
    drop(reader);
    let e = slot.take_next().expect_err("interrupted");
    assert_eq!(e.kind(), ErrorKind::Cancelled);
    assert_eq!(e.message(), wirecore_bridge::INTERRUPTED);
    assert!(!slot.is_open());
    // Close while a read waits: the read ends at once with the close's reason.
    let slot = open("/drip?bytes=10&chunks=2&delay_ms=60000");
    let Begin::Read(reader) = slot.begin() else {
        panic!("a read");
    };
    let (tx, rx) = channel();
    t.spawn(Kind::Read, None, reader.fill(), move |r| {
        let _ = tx.send(r);
    });
    slot.close("the response was freed");
    let e = rx
        .recv_timeout(WAIT)
        .expect("the read ended")
        .expect_err("stopped");
    assert_eq!(e.message(), "the response was freed");
    assert!(matches!(slot.begin(), Begin::Ready));
    assert_eq!(
        slot.take_next().expect_err("closed").message(),
        "the response was freed"
    );
    // Chunks come in order, then the end, and the end again.
    let slot = open("/drip?bytes=6&chunks=3&delay_ms=1");
    let mut got = Vec::new();
    while let Some(c) = rt.block_on(slot.next()).expect("chunk") {
        got.extend_from_slice(&c);
    }
    assert_eq!(got.len(), 6);
    assert_eq!(rt.block_on(slot.next()).expect("end"), None);
}

#[test]
fn a_prefetched_body_cut_short_gives_its_bytes_then_the_error() {
    let srv = server();
    let c = client();
    let t = Tracker::new();
    let cut = || {
        let rx = submit(&t, &c, &srv.url("/reset?bytes=1000"), Prefetch::Small, None);
        let (_, p) = rx
            .recv_timeout(WAIT)
            .expect("one outcome")
            .expect("the head");
        assert!(matches!(p, Prefetched::Cut(..)), "{p:?}");
        BodySlot::new(p)
    };
    // Read whole: the error, on every call.
    let slot = cut();
    let rt = fork::runtime();
    for _ in 0..2 {
        let e = rt.block_on(slot.rest()).expect_err("cut short");
        assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    }
    // Read in pieces: the bytes before the error, then the error, again and again.
    let slot = cut();
    let mut buf = [0u8; 4096];
    let mut got = 0;
    loop {
        match slot.copy_into(&mut buf) {
            wirecore_bridge::Copied::Bytes { n, end } => {
                assert!(!end);
                got += n;
            }
            wirecore_bridge::Copied::Failed(e) => {
                assert_eq!(e.kind(), ErrorKind::Io);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(got < 1000, "{got} bytes before the reset");
    assert!(matches!(
        slot.copy_into(&mut buf),
        wirecore_bridge::Copied::Failed(_)
    ));
}

/// An event stream is never prefetched (whatever the prefetch asked), its events cross the
/// reconnection, and a close stops a read waiting on the server.
#[test]
fn event_slot_reads_across_reconnections_and_closes() {
    use wirecore_bridge::EventSlot;
    let srv = server();
    let c = client();
    let t = Tracker::new();
    let rt = fork::runtime();
    let url = srv.url("/sse?events=2&total=4&retry=5");
    let (_, body) = submit(&t, &c, &url, Prefetch::Whole, None)
        .recv_timeout(WAIT)
        .unwrap()
        .unwrap();
    assert!(matches!(body, Prefetched::Stream(_)), "{body:?}");
    let slot = BodySlot::new(body);
    let events = EventSlot::from_body(&slot).unwrap();
    // The body slot gave its body away.
    assert_eq!(
        rt.block_on(slot.next()).unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
    let mut ids = Vec::new();
    while let Some(ev) = rt
        .block_on(async { tokio::time::timeout(WAIT, events.next()).await })
        .unwrap()
        .unwrap()
    {
        ids.push(ev.id);
    }
    assert_eq!(ids, ["0", "1", "2", "3"]);
    assert!(rt.block_on(events.next()).unwrap().is_none());

    // A stream whose next event is far away: close() ends the read in flight.
    let (_, body) = submit(
        &t,
        &c,
        &srv.url("/sse?events=1&delay_ms=60000"),
        Prefetch::Small,
        None,
    )
    .recv_timeout(WAIT)
    .unwrap()
    .unwrap();
    let events = EventSlot::from_body(&BodySlot::new(body)).unwrap();
    let reader = events.clone();
    let read = rt.spawn(async move { reader.next().await });
    wait_until("the read holds the stream", || events.is_busy());
    events.close();
    let r = rt
        .block_on(async { tokio::time::timeout(WAIT, read).await })
        .unwrap()
        .unwrap();
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Cancelled);
    assert_eq!(
        rt.block_on(events.next()).unwrap_err().kind(),
        ErrorKind::Cancelled
    );
}
