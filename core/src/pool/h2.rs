//! Learns the server's `SETTINGS_MAX_CONCURRENT_STREAMS`, which hyper does not expose, by
//! scanning HTTP/2 frame headers as they are read. The scan only skips payloads, except for
//! SETTINGS frames, so it costs a few comparisons per read.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// What the server announced, shared with the pool.
#[derive(Debug)]
pub(crate) struct PeerSettings {
    max_streams: AtomicU32,
    seen: AtomicBool,
    notify: Notify,
}

impl PeerSettings {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            max_streams: AtomicU32::new(u32::MAX),
            seen: AtomicBool::new(false),
            notify: Notify::new(),
        })
    }

    pub(crate) fn max_streams(&self) -> u32 {
        self.max_streams.load(Ordering::Relaxed)
    }

    /// Waits until the server's first SETTINGS frame has been read.
    pub(crate) async fn first(&self) {
        let notified = self.notify.notified();
        if self.seen.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }
}

#[derive(Default)]
struct Scan {
    header: [u8; 9],
    header_len: usize,
    remaining: usize,
    in_settings: bool,
    entry: [u8; 6],
    entry_len: usize,
}

impl Scan {
    fn feed(&mut self, mut data: &[u8], out: &PeerSettings) {
        while !data.is_empty() {
            if self.remaining == 0 && self.header_len == 0 && data.len() >= 9 {
                // A whole frame header in this read (the usual case): parse it in place.
                let h: &[u8; 9] = data[..9].try_into().expect("9 bytes");
                data = &data[9..];
                self.start_frame(h, out);
            } else if self.remaining == 0 {
                let take = (9 - self.header_len).min(data.len());
                self.header[self.header_len..self.header_len + take].copy_from_slice(&data[..take]);
                self.header_len += take;
                data = &data[take..];
                if self.header_len == 9 {
                    let h = self.header;
                    self.header_len = 0;
                    self.start_frame(&h, out);
                }
            } else {
                let take = self.remaining.min(data.len());
                if self.in_settings {
                    for &b in &data[..take] {
                        self.entry[self.entry_len] = b;
                        self.entry_len += 1;
                        if self.entry_len == 6 {
                            self.entry_len = 0;
                            let id = u16::from_be_bytes([self.entry[0], self.entry[1]]);
                            let v = u32::from_be_bytes([
                                self.entry[2],
                                self.entry[3],
                                self.entry[4],
                                self.entry[5],
                            ]);
                            if id == 0x3 {
                                out.max_streams.store(v, Ordering::Relaxed);
                            }
                        }
                    }
                }
                self.remaining -= take;
                data = &data[take..];
                if self.remaining == 0 && self.in_settings {
                    self.settings_done(out);
                }
            }
        }
    }

    /// A frame header read: skip its payload, or scan it when it is a SETTINGS frame.
    fn start_frame(&mut self, h: &[u8; 9], out: &PeerSettings) {
        self.remaining = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
        // type 0x4 SETTINGS without the ACK flag
        self.in_settings = h[3] == 0x4 && h[4] & 0x1 == 0;
        self.entry_len = 0;
        if self.in_settings && self.remaining == 0 {
            self.settings_done(out);
        }
    }

    fn settings_done(&mut self, out: &PeerSettings) {
        self.in_settings = false;
        if !out.seen.swap(true, Ordering::AcqRel) {
            out.notify.notify_waiters();
        }
    }
}

/// Feeds `chunks` to a fresh scanner as successive reads; returns the
/// `SETTINGS_MAX_CONCURRENT_STREAMS` learnt and whether a whole SETTINGS frame was seen
/// (`fuzz_support::sniff_settings`).
pub(crate) fn scan_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> (u32, bool) {
    let out = PeerSettings::new();
    let mut scan = Scan::default();
    for c in chunks {
        scan.feed(c, &out);
    }
    (out.max_streams(), out.seen.load(Ordering::Acquire))
}

/// An I/O wrapper that scans incoming frames for SETTINGS.
pub(crate) struct Sniff<S> {
    inner: S,
    scan: Scan,
    settings: Arc<PeerSettings>,
}

impl<S> Sniff<S> {
    pub(crate) fn new(inner: S, settings: Arc<PeerSettings>) -> Self {
        Self {
            inner,
            scan: Scan::default(),
            settings,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Sniff<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res {
            let fresh = &buf.filled()[before..];
            this.scan.feed(fresh, &this.settings);
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Sniff<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let n = payload.len();
        let mut v = vec![
            (n >> 16) as u8,
            (n >> 8) as u8,
            n as u8,
            kind,
            flags,
            0,
            0,
            0,
            0,
        ];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn finds_max_concurrent_streams_across_split_reads() {
        let mut settings = Vec::new();
        settings.extend_from_slice(&[0, 4, 0, 0, 0xff, 0xff]); // initial window
        settings.extend_from_slice(&[0, 3, 0, 0, 0, 10]); // max concurrent streams = 10
        let mut wire = frame(0x4, 0, &settings);
        wire.extend(frame(0x8, 0, &[0, 0, 1, 0])); // WINDOW_UPDATE
        wire.extend(frame(0x4, 1, &[])); // SETTINGS ACK
        wire.extend(frame(0x0, 0, &[0, 3, 0, 0, 0, 99])); // DATA that looks like a setting
        // Split anywhere (a header across reads: the copying path), or whole (in place).
        for size in 1..=wire.len() {
            let out = PeerSettings::new();
            let mut scan = Scan::default();
            for chunk in wire.chunks(size) {
                scan.feed(chunk, &out);
            }
            assert_eq!(out.max_streams(), 10, "reads of {size} bytes");
            assert!(out.seen.load(Ordering::Relaxed));
        }
    }

    #[test]
    fn an_empty_settings_frame_counts_as_seen_and_a_later_one_updates() {
        let mut wire = frame(0x4, 0, &[]);
        wire.extend(frame(0x0, 0, &[1; 20])); // DATA
        wire.extend(frame(0x4, 0, &[0, 3, 0, 0, 0, 7]));
        for size in [1, 4, 9, 10, wire.len()] {
            let (max, seen) = scan_chunks(wire.chunks(size));
            assert!(seen);
            assert_eq!(max, 7, "reads of {size} bytes");
            let (max, seen) = scan_chunks(wire[..9].chunks(size));
            assert!(seen, "the empty SETTINGS alone, reads of {size}");
            assert_eq!(max, u32::MAX);
        }
    }
}
