//! Opening a connection for a granted connect slot: the connector, then the HTTP/1.1 or
//! HTTP/2 handshake, then the task that drives the connection.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::time::Instant;

use super::grant::ConnectGuard;
use super::host::{H1, Host, Meta, Session};
use super::lease::{Lease, LeaseConn};
use super::{Pool, h2};
use crate::config::ms;
use crate::connect::Connected;
use crate::error::Error;

/// Runs hyper's HTTP/2 tasks on the current runtime, each boxed first. hyper spawns one task per
/// request (it waits for the response head) and that task's future is an enum whose largest
/// variant is the connection task itself (the whole `h2` connection, several KB); spawned as is,
/// every request's task cell is that large and the future is copied into it and its stage
/// rewritten at that size (≈ 2,500 instructions of `memcpy` per request). Boxed, the task holds
/// a pointer and the future is copied once, as hyper-util's own client does.
#[derive(Clone, Copy)]
struct BoxExec;

impl<F> hyper::rt::Executor<F> for BoxExec
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, fut: F) {
        let fut: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(fut);
        tokio::spawn(fut);
    }
}

impl Pool {
    pub(super) async fn connect(
        &self,
        mut guard: ConnectGuard,
        timeout: Option<Duration>,
    ) -> Result<Lease, Error> {
        let host = guard.host.clone();
        let sh = &self.shared;
        let connected = match sh.connector.connect(&host.origin, timeout).await {
            Ok(c) => c,
            Err(e) => {
                guard.armed = false;
                host.connect_failed(&e);
                return Err(e);
            }
        };
        let Connected {
            stream,
            h2,
            timings,
            tls,
        } = connected;
        let meta = Arc::new(Meta {
            id: sh.next_id.fetch_add(1, Relaxed),
            created: Instant::now(),
            retired: AtomicBool::new(false),
            tls,
        });
        let handshake = if h2 {
            self.handshake_h2(stream, &host, &meta)
                .await
                .map(LeaseConn::H2)
        } else {
            self.handshake_h1(stream, &host, &meta)
                .await
                .map(LeaseConn::H1)
        };
        guard.armed = false;
        match handshake {
            Err(e) => {
                host.connect_failed(&e);
                Err(e)
            }
            Ok(conn) => {
                host.c.connects.fetch_add(1, Relaxed);
                tracing::debug!(
                    event = "connection_opened",
                    origin = &*host.origin.key,
                    protocol = if h2 { "h2" } else { "h1" },
                    connection = meta.id,
                    "connection opened"
                );
                host.connected(&conn);
                Ok(Lease {
                    host,
                    conn,
                    upload: None,
                    reused: false,
                    timings: Some(Box::new(timings)),
                })
            }
        }
    }

    /// Drives a connection on the runtime. The task holds its host weakly: the host's idle list
    /// holds the connection's sender, so a strong reference would keep both alive forever once
    /// the client is gone.
    pub(super) fn spawn_conn<F>(&self, conn: F, host: &Arc<Host>, meta: &Arc<Meta>)
    where
        F: Future + Send + 'static,
    {
        let (h, m) = (Arc::downgrade(host), meta.clone());
        self.shared.handle.spawn(async move {
            let _ = conn.await;
            if let Some(h) = h.upgrade() {
                h.conn_ended(&m);
            }
        });
    }

    pub(super) async fn handshake_h1(
        &self,
        stream: crate::connect::Stream,
        host: &Arc<Host>,
        meta: &Arc<Meta>,
    ) -> Result<Option<H1>, Error> {
        let mut b = http1::Builder::new();
        b.max_buf_size(self.shared.s.max_header_bytes.max(8192));
        // RFC 9112 §5.2: a user agent replaces an obs-fold in a response with spaces.
        b.allow_obsolete_multiline_headers_in_responses(true);
        let (tx, conn) = b
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| crate::error::from_hyper(e, &host.origin.key))?;
        self.spawn_conn(conn, host, meta);
        Ok(Some(H1 {
            tx,
            meta: meta.clone(),
        }))
    }

    pub(super) async fn handshake_h2(
        &self,
        stream: crate::connect::Stream,
        host: &Arc<Host>,
        meta: &Arc<Meta>,
    ) -> Result<Option<Arc<Session>>, Error> {
        let c = &self.shared.s.h2;
        let peer = h2::PeerSettings::new();
        let io = TokioIo::new(h2::Sniff::new(stream, peer.clone()));
        let mut b = http2::Builder::new(BoxExec);
        b.timer(TokioTimer::new())
            .initial_stream_window_size(c.initial_stream_window_bytes)
            .initial_connection_window_size(c.initial_connection_window_bytes)
            .max_frame_size(c.max_frame_bytes)
            .max_header_list_size(
                u32::try_from(self.shared.s.max_header_bytes).unwrap_or(u32::MAX),
            );
        if let Some(iv) = ms(c.keep_alive_interval_ms) {
            b.keep_alive_interval(iv)
                .keep_alive_timeout(Duration::from_millis(c.keep_alive_timeout_ms.max(1)))
                .keep_alive_while_idle(true);
        }
        let (tx, conn) = b
            .handshake(io)
            .await
            .map_err(|e| crate::error::from_hyper(e, &host.origin.key))?;
        self.spawn_conn(conn, host, meta);
        // The server's first SETTINGS tells how many streams it takes; it arrives with the
        // handshake, so this rarely waits. Don't wait forever for a silent server.
        let _ = tokio::time::timeout(Duration::from_secs(1), peer.first()).await;
        Ok(Some(Arc::new(Session {
            tx,
            meta: meta.clone(),
            peer,
        })))
    }
}
