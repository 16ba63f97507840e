//! HTTP/2 cases (prior knowledge): frames written by hand, so each case can break exactly one
//! rule of RFC 9113 that a server library would never let through.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

use crate::hpack::{put_field, put_int, put_status, put_string};
use crate::{DRAIN, Shared, read_some};

/// Every HTTP/2 case: its path (without the leading `/`) and what it writes.
pub const CASES: &[(&str, &str)] = &[
    ("ok", "HEADERS 200 and DATA `ok`"),
    (
        "h2-goaway-unprocessed",
        "first request: GOAWAY with last-stream-id 0 (not processed), then close; later: 200",
    ),
    (
        "h2-goaway-graceful-mid-stream",
        "HEADERS, half the DATA, GOAWAY naming this stream, the rest of the DATA, close",
    ),
    (
        "h2-goaway-close-mid-body",
        "HEADERS, half the DATA, GOAWAY naming this stream, close",
    ),
    (
        "h2-refused-stream",
        "first request: RST_STREAM(REFUSED_STREAM); later: 200",
    ),
    ("h2-rst-internal-error", "RST_STREAM(INTERNAL_ERROR)"),
    (
        "h2-max-concurrent-1",
        "SETTINGS max_concurrent_streams 1, then each answer after 20 ms; a stream beyond the limit is reset with PROTOCOL_ERROR",
    ),
    (
        "h2-window-update-zero-stream",
        "WINDOW_UPDATE of 0 on the stream",
    ),
    (
        "h2-window-update-zero-conn",
        "WINDOW_UPDATE of 0 on the connection",
    ),
    (
        "h2-window-overflow",
        "WINDOW_UPDATE of 2^31-1 on the connection (window beyond 2^31-1)",
    ),
    (
        "h2-settings-bad-window",
        "SETTINGS_INITIAL_WINDOW_SIZE of 2^31",
    ),
    ("h2-ping-flood", "10,000 PINGs, then 200"),
    (
        "h2-continuation-flood",
        "HEADERS without END_HEADERS, then CONTINUATION frames without end",
    ),
    (
        "h2-hpack-bomb",
        "a 4 KiB field put in the dynamic table, then referenced 15,000 times (60 MB decoded)",
    ),
    (
        "h2-frame-too-large",
        "a DATA frame header announcing 16 MiB, above the client's max frame size",
    ),
    ("h2-status-invalid", "`:status abc`"),
    ("h2-status-missing", "a response HEADERS without `:status`"),
    (
        "h2-uppercase-header",
        "a field name with upper-case letters",
    ),
    (
        "h2-connection-header",
        "`connection: close` (connection-specific fields are malformed in HTTP/2)",
    ),
    (
        "h2-data-before-headers",
        "DATA on the stream before any HEADERS",
    ),
    (
        "h2-content-length-mismatch",
        "`content-length: 10` with 5 bytes of DATA",
    ),
    (
        "h2-headers-on-stream-zero",
        "a HEADERS frame on stream 0 (connection error)",
    ),
    (
        "h2-push-promise",
        "PUSH_PROMISE although the client disabled push",
    ),
    ("h2-close-mid-body", "HEADERS, half the DATA, then close"),
    ("h2-close-before-response", "the request read, then close"),
    (
        "h2-unknown-frame",
        "a frame of unknown type 0xfa, then 200 (must be ignored)",
    ),
    ("h2-padded-data", "DATA with padding (valid)"),
    (
        "h2-trailers",
        "HEADERS, DATA, trailing HEADERS with END_STREAM (valid)",
    ),
    (
        "h2-informational-many",
        "50 HEADERS `:status 103`, then 200 (valid)",
    ),
];

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;

const NO_ERROR: u32 = 0x0;
const PROTOCOL_ERROR: u32 = 0x1;
const INTERNAL_ERROR: u32 = 0x2;
const REFUSED_STREAM: u32 = 0x7;

const MAX_CONCURRENT_STREAMS: u16 = 0x3;
const INITIAL_WINDOW_SIZE: u16 = 0x4;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn settings(entries: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in entries {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &p)
}

fn goaway(last: u32, code: u32) -> Vec<u8> {
    let mut p = last.to_be_bytes().to_vec();
    p.extend_from_slice(&code.to_be_bytes());
    frame(GOAWAY, 0, 0, &p)
}

fn rst(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

fn window_update(stream: u32, inc: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &inc.to_be_bytes())
}

/// A response HEADERS frame: `:status 200` (static index 8) and the given fields.
fn headers(stream: u32, fields: &[(&[u8], &[u8])], flags: u8) -> Vec<u8> {
    let mut block = vec![0x88];
    for (n, v) in fields {
        put_field(&mut block, n, v);
    }
    frame(HEADERS, flags | END_HEADERS, stream, &block)
}

fn ok(stream: u32) -> Vec<u8> {
    let mut out = headers(stream, &[(b"content-length", b"2")], 0);
    out.extend(frame(DATA, END_STREAM, stream, b"ok"));
    out
}

enum Out {
    Bytes(Vec<u8>),
    /// CONTINUATION frames on this stream until the client goes (bounded).
    ContinuationFlood(u32),
    /// FIN; the reader then drains.
    Close,
}

async fn writer(mut w: OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<Out>) {
    while let Some(out) = rx.recv().await {
        let ok = match out {
            Out::Bytes(b) => w.write_all(&b).await.is_ok(),
            Out::ContinuationFlood(stream) => {
                // One small field per frame; the client must give up long before the cap.
                let mut one = Vec::new();
                put_field(&mut one, b"x-flood", b"1");
                let block = frame(CONTINUATION, 0, stream, &one).repeat(512);
                let _ = tokio::time::timeout(Duration::from_secs(30), async {
                    for _ in 0..20_000 {
                        if w.write_all(&block).await.is_err() {
                            break;
                        }
                    }
                })
                .await;
                false
            }
            Out::Close => {
                let _ = w.shutdown().await;
                false
            }
        };
        if !ok {
            // Later writes would fail too; the reader notices the close and drains.
            let _ = w.shutdown().await;
            return;
        }
    }
}

/// Per-connection state of the `h2-max-concurrent-1` case.
#[derive(Default)]
struct Limit {
    /// Our SETTINGS with the limit was sent and not yet acknowledged.
    sent: bool,
    /// The client acknowledged it: from now on it must keep to one stream.
    acked: bool,
    open: Arc<AtomicUsize>,
}

pub(crate) async fn serve(
    stream: TcpStream,
    mut buf: Vec<u8>,
    shared: &Shared,
) -> std::io::Result<()> {
    let (mut r, w) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(writer(w, rx));
    let send = |b: Vec<u8>| {
        let _ = tx.send(Out::Bytes(b));
    };
    send(settings(&[]));
    let mut limit = Limit::default();
    // A header block split over HEADERS and CONTINUATION frames: (stream, block so far).
    let mut partial: Option<(u32, Vec<u8>)> = None;
    let mut closing = false;
    let deadline = tokio::time::Instant::now() + DRAIN * 6;
    loop {
        // Frame header, then payload.
        while buf.len() < 9 || buf.len() < 9 + frame_len(&buf) {
            let read = tokio::time::timeout_at(deadline, read_some(&mut r, &mut buf)).await;
            if !matches!(read, Ok(Ok(n)) if n > 0) {
                drop(tx);
                let _ = writer.await;
                return Ok(());
            }
        }
        let len = frame_len(&buf);
        let (kind, flags) = (buf[3], buf[4]);
        let sid = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
        let payload: Vec<u8> = buf[9..9 + len].to_vec();
        buf.drain(..9 + len);
        if closing {
            continue;
        }
        let block = match kind {
            SETTINGS if flags & ACK == 0 => {
                send(frame(SETTINGS, ACK, 0, &[]));
                continue;
            }
            SETTINGS => {
                if limit.sent {
                    limit.acked = true;
                }
                continue;
            }
            PING if flags & ACK == 0 => {
                send(frame(PING, ACK, 0, &payload));
                continue;
            }
            HEADERS => {
                let mut p = &payload[..];
                if flags & PADDED != 0 {
                    let pad = usize::from(*p.first().unwrap_or(&0));
                    p = p.get(1..p.len().saturating_sub(pad)).unwrap_or_default();
                }
                if flags & 0x20 != 0 {
                    // PRIORITY fields.
                    p = p.get(5..).unwrap_or_default();
                }
                if flags & END_HEADERS == 0 {
                    partial = Some((sid, p.to_vec()));
                    continue;
                }
                p.to_vec()
            }
            CONTINUATION => {
                let Some((_, mut b)) = partial.take() else {
                    continue;
                };
                b.extend_from_slice(&payload);
                if flags & END_HEADERS == 0 {
                    partial = Some((sid, b));
                    continue;
                }
                b
            }
            // DATA, WINDOW_UPDATE, RST_STREAM, GOAWAY, PRIORITY: nothing to answer.
            _ => continue,
        };
        let path = crate::hpack::path(&block).unwrap_or_default();
        let case = path.trim_start_matches('/').to_owned();
        let n = shared.hit(&case);
        closing = answer(&case, n, sid, &tx, &mut limit);
        if closing {
            let _ = tx.send(Out::Close);
        }
    }
}

fn frame_len(buf: &[u8]) -> usize {
    if buf.len() < 3 {
        return 0;
    }
    usize::from(buf[0]) << 16 | usize::from(buf[1]) << 8 | usize::from(buf[2])
}

/// Writes the case's frames for a request on `sid`; true when the connection is to close.
#[expect(
    clippy::too_many_lines,
    reason = "one arm per case: the table reads best whole"
)]
fn answer(
    case: &str,
    n: u64,
    sid: u32,
    tx: &mpsc::UnboundedSender<Out>,
    limit: &mut Limit,
) -> bool {
    let send = |b: Vec<u8>| {
        let _ = tx.send(Out::Bytes(b));
    };
    let cl10: &[(&[u8], &[u8])] = &[(b"content-length", b"10")];
    match case {
        "h2-goaway-unprocessed" if n == 1 => {
            send(goaway(0, NO_ERROR));
            return true;
        }
        "h2-refused-stream" if n == 1 => send(rst(sid, REFUSED_STREAM)),
        "ok" | "h2-goaway-unprocessed" | "h2-refused-stream" => send(ok(sid)),
        "h2-goaway-graceful-mid-stream" => {
            let mut out = headers(sid, cl10, 0);
            out.extend(frame(DATA, 0, sid, b"hello"));
            out.extend(goaway(sid, NO_ERROR));
            out.extend(frame(DATA, END_STREAM, sid, b"world"));
            send(out);
            return true;
        }
        "h2-goaway-close-mid-body" => {
            let mut out = headers(sid, cl10, 0);
            out.extend(frame(DATA, 0, sid, b"hello"));
            out.extend(goaway(sid, NO_ERROR));
            send(out);
            return true;
        }
        "h2-close-mid-body" => {
            let mut out = headers(sid, cl10, 0);
            out.extend(frame(DATA, 0, sid, b"hello"));
            send(out);
            return true;
        }
        "h2-close-before-response" => return true,
        "h2-rst-internal-error" => send(rst(sid, INTERNAL_ERROR)),
        "h2-max-concurrent-1" => {
            if !limit.sent {
                limit.sent = true;
                send(settings(&[(MAX_CONCURRENT_STREAMS, 1)]));
            }
            if limit.acked && limit.open.load(SeqCst) >= 1 {
                send(rst(sid, PROTOCOL_ERROR));
            } else {
                limit.open.fetch_add(1, SeqCst);
                let (tx, open) = (tx.clone(), limit.open.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    // Counted closed before the client can see END_STREAM and open another.
                    open.fetch_sub(1, SeqCst);
                    let _ = tx.send(Out::Bytes(ok(sid)));
                });
            }
        }
        "h2-window-update-zero-stream" => send(window_update(sid, 0)),
        "h2-window-update-zero-conn" => send(window_update(0, 0)),
        "h2-window-overflow" => send(window_update(0, 0x7fff_ffff)),
        "h2-settings-bad-window" => send(settings(&[(INITIAL_WINDOW_SIZE, 0x8000_0000)])),
        "h2-ping-flood" => {
            let mut out = Vec::new();
            for i in 0..10_000u64 {
                out.extend(frame(PING, 0, 0, &i.to_be_bytes()));
            }
            out.extend(ok(sid));
            send(out);
        }
        "h2-continuation-flood" => {
            send(frame(HEADERS, 0, sid, &[0x88]));
            let _ = tx.send(Out::ContinuationFlood(sid));
            return true;
        }
        "h2-hpack-bomb" => {
            let mut block = vec![0x88, 0x40];
            put_string(&mut block, b"x-bomb");
            put_string(&mut block, &[b'a'; 4096]);
            // Index 62: the entry just added to the dynamic table.
            block.extend(std::iter::repeat_n(0xbe, 15_000));
            let (first, rest) = block.split_at(12_000);
            let mut out = frame(HEADERS, 0, sid, first);
            out.extend(frame(CONTINUATION, END_HEADERS, sid, rest));
            send(out);
        }
        "h2-frame-too-large" => {
            let mut out = headers(sid, &[], 0);
            // A header announcing 16 MiB - 1 bytes; the client must stop at the header.
            out.extend_from_slice(&[0xff, 0xff, 0xff, DATA, 0]);
            out.extend_from_slice(&sid.to_be_bytes());
            out.extend_from_slice(&[0u8; 1024]);
            send(out);
        }
        "h2-status-invalid" => {
            let mut block = Vec::new();
            put_status(&mut block, b"abc");
            send(frame(HEADERS, END_HEADERS | END_STREAM, sid, &block));
        }
        "h2-status-missing" => {
            let mut block = Vec::new();
            put_field(&mut block, b"x-a", b"1");
            send(frame(HEADERS, END_HEADERS | END_STREAM, sid, &block));
        }
        "h2-uppercase-header" => send(headers(sid, &[(b"X-Upper", b"1")], END_STREAM)),
        "h2-connection-header" => send(headers(sid, &[(b"connection", b"close")], END_STREAM)),
        "h2-data-before-headers" => send(frame(DATA, END_STREAM, sid, b"hello")),
        "h2-content-length-mismatch" => {
            let mut out = headers(sid, cl10, 0);
            out.extend(frame(DATA, END_STREAM, sid, b"hello"));
            send(out);
        }
        "h2-headers-on-stream-zero" => send(headers(0, &[], END_STREAM)),
        "h2-push-promise" => {
            let mut p = 2u32.to_be_bytes().to_vec();
            p.extend_from_slice(&[0x82, 0x86, 0x84]); // GET http /
            put_int(&mut p, 0x00, 4, 1); // :authority, literal without indexing
            put_string(&mut p, b"localhost");
            let mut out = frame(PUSH_PROMISE, END_HEADERS, sid, &p);
            out.extend(ok(sid));
            send(out);
        }
        "h2-unknown-frame" => {
            let mut out = frame(0xfa, 0xff, sid, b"ignore me");
            out.extend(ok(sid));
            send(out);
        }
        "h2-padded-data" => {
            let mut p = vec![8u8];
            p.extend_from_slice(b"ok");
            p.extend_from_slice(&[0u8; 8]);
            let mut out = headers(sid, &[(b"content-length", b"2")], 0);
            out.extend(frame(DATA, END_STREAM | PADDED, sid, &p));
            send(out);
        }
        "h2-trailers" => {
            let mut out = headers(sid, &[], 0);
            out.extend(frame(DATA, 0, sid, b"ok"));
            let mut t = Vec::new();
            put_field(&mut t, b"x-trailer", b"1");
            out.extend(frame(HEADERS, END_HEADERS | END_STREAM, sid, &t));
            send(out);
        }
        "h2-informational-many" => {
            let mut out = Vec::new();
            for _ in 0..50 {
                let mut b = Vec::new();
                put_status(&mut b, b"103");
                put_field(&mut b, b"link", b"</s.css>; rel=preload");
                out.extend(frame(HEADERS, END_HEADERS, sid, &b));
            }
            out.extend(ok(sid));
            send(out);
        }
        _ => {
            let mut b = Vec::new();
            put_status(&mut b, b"404");
            send(frame(HEADERS, END_HEADERS | END_STREAM, sid, &b));
        }
    }
    false
}
