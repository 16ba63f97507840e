//! `Client`: the engine client and its tracker, with every call as a Kotlin `suspend fun`
//! and a blocking twin for Java.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use wirecore_bridge::{AbortHandle, Kind, Prefetch, Tracker};

use crate::error::WirecoreError;
use crate::request::{Header, RequestOptions, request};
use crate::response::Response;

/// Aborts the engine work when dropped: the Kotlin coroutine awaiting it was cancelled (uniffi
/// drops the Rust future), or the blocking caller went away.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn cancelled() -> WirecoreError {
    WirecoreError::from(wirecore::Error::new(
        wirecore::ErrorKind::Cancelled,
        "the engine task ended without a result",
    ))
}

/// Runs `work` as one operation of `kind` on the engine and awaits its outcome (from any
/// executor: uniffi polls this future from Kotlin).
pub(crate) async fn run<T, W>(
    tracker: &Arc<Tracker>,
    kind: Kind,
    work: W,
) -> Result<T, WirecoreError>
where
    T: Send + 'static,
    W: Future<Output = Result<T, wirecore::Error>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (abort, reg) = AbortHandle::new_pair();
    let _guard = AbortOnDrop(abort);
    tracker.spawn(kind, Some(reg), work, move |r| {
        let _ = tx.send(r);
    });
    rx.await
        .map_err(|_| cancelled())?
        .map_err(WirecoreError::from)
}

/// [`run`], blocking the calling (JVM) thread; never an engine thread.
pub(crate) fn block<T, W>(tracker: &Arc<Tracker>, kind: Kind, work: W) -> Result<T, WirecoreError>
where
    T: Send + 'static,
    W: Future<Output = Result<T, wirecore::Error>> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let (abort, reg) = AbortHandle::new_pair();
    let _guard = AbortOnDrop(abort);
    tracker.spawn(kind, Some(reg), work, move |r| {
        let _ = tx.send(r);
    });
    rx.recv()
        .map_err(|_| cancelled())?
        .map_err(WirecoreError::from)
}

/// One engine client: its pool, DNS cache, policies and metrics. Cheap to share between
/// threads and coroutines; `close` it when done.
#[derive(Debug, uniffi::Object)]
#[expect(
    clippy::struct_field_names,
    reason = "`client` is the engine client this object wraps"
)]
pub struct Client {
    client: wirecore::Client,
    tracker: Arc<Tracker>,
    /// Dead letters kept for `poll_dead_letters`, once `listen_dead_letters` asked for them.
    letters: std::sync::OnceLock<Arc<wirecore_bridge::Letters>>,
}

/// A request that failed after every retry (an error, or a status `retry.retry_on_status`
/// lists), as the core's `DeadLetter`.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct DeadLetter {
    /// The request method.
    pub method: String,
    /// The request URL, userinfo removed.
    pub url: String,
    /// The request's own headers, without `Authorization`, `Proxy-Authorization` and `Cookie`.
    pub headers: Vec<Header>,
    /// The request body when it was replayable (`null` for a stream).
    pub body: Option<Vec<u8>>,
    /// The last failure's stable code (`connect`, `timeout.total` ...; `status` for a status).
    pub error_code: String,
    /// The last failure in words.
    pub message: String,
    /// The last status, when the last attempt got a response.
    pub status: Option<i32>,
    /// Attempts made, the first included.
    pub attempts: u32,
    /// When it was given up, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// Dead letters `poll_dead_letters` returns at most per call.
const MAX_LETTERS: u32 = 64;

impl Client {
    /// Ends a `poll_dead_letters` loop once the queue is empty (after `close`).
    fn close_letters(&self) {
        if let Some(l) = self.letters.get() {
            l.queue().close();
        }
    }

    fn start(
        &self,
        method: &str,
        url: &str,
        headers: Vec<Header>,
        body: Option<Vec<u8>>,
        options: Option<RequestOptions>,
    ) -> Result<impl Future<Output = Result<Response, wirecore::Error>> + use<>, WirecoreError>
    {
        let req = request(method, url, headers, body, options)?;
        let client = self.client.clone();
        let tracker = self.tracker.clone();
        Ok(async move {
            let (head, body) = wirecore_bridge::fetch(client, req, Prefetch::Small).await?;
            Response::new(head, body, tracker)
        })
    }
}

/// Freed by Kotlin (`close()`, `destroy()`, `use {}` or the cleaner) once no call holds it:
/// refuse what might still come through a clone and close the pool without waiting.
impl Drop for Client {
    fn drop(&mut self) {
        if self.tracker.is_closing() {
            return;
        }
        self.tracker.begin_close();
        let (client, tracker) = (self.client.clone(), self.tracker.clone());
        wirecore_bridge::spawn(
            async move {
                tracker.close(&client, Duration::ZERO, false).await;
                Ok(())
            },
            |_: Result<(), wirecore::Error>| {},
        );
    }
}

fn deadline(timeout_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0))
}

#[uniffi::export]
impl Client {
    /// A client from the core's config as JSON (`"{}"` for every default).
    ///
    /// # Errors
    /// `Config` (`invalid_config`) naming the offending field.
    #[uniffi::constructor]
    pub fn new(config_json: &str) -> Result<Arc<Self>, WirecoreError> {
        let config = wirecore::Config::from_json(config_json)?;
        let rt = wirecore_bridge::fork::runtime();
        let _enter = rt.enter();
        let client = wirecore::Client::from_config(config)?;
        Ok(Arc::new(Self {
            client,
            tracker: Tracker::new(),
            letters: std::sync::OnceLock::new(),
        }))
    }

    /// Sends a request; returns once the head arrived (and the body, when small).
    #[uniffi::method(default(headers = [], body = None, options = None))]
    pub async fn request(
        &self,
        method: &str,
        url: &str,
        headers: Vec<Header>,
        body: Option<Vec<u8>>,
        options: Option<RequestOptions>,
    ) -> Result<Arc<Response>, WirecoreError> {
        let work = self.start(method, url, headers, body, options)?;
        run(&self.tracker, Kind::Request, work).await.map(Arc::new)
    }

    /// [`Client::request`], blocking the calling thread.
    #[uniffi::method(default(headers = [], body = None, options = None))]
    pub fn request_blocking(
        &self,
        method: &str,
        url: &str,
        headers: Vec<Header>,
        body: Option<Vec<u8>>,
        options: Option<RequestOptions>,
    ) -> Result<Arc<Response>, WirecoreError> {
        let work = self.start(method, url, headers, body, options)?;
        block(&self.tracker, Kind::Request, work).map(Arc::new)
    }

    /// Refuses new requests (`Closed`), waits up to `timeout_ms` for requests and body reads in
    /// flight, and closes the pool. (`close()` without an argument is `AutoCloseable`'s: it
    /// frees the object, closing at once once no call holds it; see [`Drop`] below.)
    pub async fn close(&self, timeout_ms: i64) {
        let (client, tracker) = (self.client.clone(), self.tracker.clone());
        tracker.begin_close();
        let work = async move {
            tracker.close(&client, deadline(timeout_ms), false).await;
            Ok(())
        };
        let _ = run(&self.tracker, Kind::Other, work).await;
        self.close_letters();
    }

    /// [`Client::close`], blocking the calling thread.
    pub fn close_blocking(&self, timeout_ms: i64) {
        let (client, tracker) = (self.client.clone(), self.tracker.clone());
        tracker.begin_close();
        let work = async move {
            tracker.close(&client, deadline(timeout_ms), false).await;
            Ok(())
        };
        let _ = block(&self.tracker, Kind::Other, work);
        self.close_letters();
    }

    /// Exports the finished OpenTelemetry spans and the `http.client.request.duration` metric
    /// to `otel.endpoint` now; returns once the collector answered or the export failed (the
    /// spans lost count in the stats' `otel.dropped`). `close` does this too.
    pub async fn flush_telemetry(&self) {
        let client = self.client.clone();
        let work = async move {
            client.flush_telemetry().await;
            Ok(())
        };
        let _ = run(&self.tracker, Kind::Other, work).await;
    }

    /// [`Client::flush_telemetry`], blocking the calling thread.
    pub fn flush_telemetry_blocking(&self) {
        let client = self.client.clone();
        let work = async move {
            client.flush_telemetry().await;
            Ok(())
        };
        let _ = block(&self.tracker, Kind::Other, work);
    }

    /// Starts keeping this client's dead letters for [`Client::poll_dead_letters`] (in a
    /// queue of `dead_letter.queue`; more are dropped, counted in the stats). Calling it again
    /// does nothing.
    pub fn listen_dead_letters(&self) {
        self.letters.get_or_init(|| {
            let l = wirecore_bridge::Letters::new(&self.client);
            // The caller's thread blocks in `poll_dead_letters`: nothing to wake.
            l.listen(&self.client, || {});
            l
        });
    }

    /// Waits up to `timeout_ms` for dead letters on the calling thread and returns those
    /// queued (at most `max`, at most 64); empty when none came in time. It blocks: call it
    /// from a thread of your own (or `Dispatchers.IO`).
    ///
    /// # Errors
    /// `InvalidRequest` before `listen_dead_letters`; `Closed` once the client is closed and
    /// every letter was taken (the end of a polling loop).
    pub fn poll_dead_letters(
        &self,
        timeout_ms: u64,
        max: u32,
    ) -> Result<Vec<DeadLetter>, WirecoreError> {
        let Some(letters) = self.letters.get() else {
            return Err(WirecoreError::from(wirecore::Error::new(
                wirecore::ErrorKind::InvalidRequest,
                "poll_dead_letters before listen_dead_letters",
            )));
        };
        let mut got = Vec::new();
        let taken = letters.queue().wait_with(
            max.clamp(1, MAX_LETTERS) as usize,
            Some(Duration::from_millis(timeout_ms)),
            |l| {
                got.push(DeadLetter {
                    headers: l
                        .headers
                        .into_iter()
                        .map(|(name, value)| Header { name, value })
                        .collect(),
                    body: l.body.map(|b| b.to_vec()),
                    status: l.status.map(i32::from),
                    method: l.method,
                    url: l.url,
                    error_code: l.error_code,
                    message: l.message,
                    attempts: l.attempts,
                    time_ms: l.time_ms,
                });
            },
        );
        if taken.is_none() {
            return Err(WirecoreError::from(wirecore::Error::new(
                wirecore::ErrorKind::Closed,
                "the client is closed and every dead letter was taken",
            )));
        }
        Ok(got)
    }

    /// Every counter as the core's JSON (`Stats`; field names in `tests/stats-fields.json`).
    pub fn stats(&self) -> String {
        self.client.stats().to_json()
    }

    /// The stats in Prometheus text format.
    pub fn prometheus(&self) -> String {
        self.client.prometheus()
    }

    /// The health report as JSON.
    pub fn diagnostics(&self) -> String {
        serde_json::to_string(&self.client.diagnostics()).unwrap_or_default()
    }

    /// The health report as text.
    pub fn diagnostics_text(&self) -> String {
        self.client.diagnostics().to_string()
    }

    /// The cookie jar's unexpired cookies as the core's JSON (`[]` when `cookies.enabled` is off).
    pub fn cookies(&self) -> String {
        self.client.cookies_json()
    }

    /// Empties the cookie jar.
    pub fn clear_cookies(&self) {
        self.client.clear_cookies();
    }

    /// Closes every idle pooled connection now; requests in flight and the client go on.
    pub fn close_idle_connections(&self) {
        self.client.close_idle_connections();
    }
}
