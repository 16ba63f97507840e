//! `NativeClient`: the JS-facing handle of one `wirecore::Client`.
//!
//! Every method returns at once: work is spawned on the core's global runtime (never a second
//! runtime) and its result is delivered as a [`Completion`] under the id JS chose.
#![expect(
    clippy::needless_pass_by_value,
    reason = "napi hands arguments over by value"
)]
#![expect(
    clippy::too_many_arguments,
    reason = "one crossing carries the whole request"
)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use napi::Status;
use napi::bindgen_prelude::{Buffer, Either, Uint8Array};
use napi_derive::napi;
use tokio::sync::mpsc;
use wirecore_bridge::{BodySlot, EventSlot, Kind, Prefetch, Prefetched, Registry, Tracker};

use crate::completion::{Completer, Completion, Dispatcher, Head, Item, SseEvent};
use crate::config;

/// Request-body chunks buffered between JS and the engine.
const UPLOAD_QUEUE: usize = 8;

type UploadItem = Result<Bytes, std::io::Error>;

/// A JS error carrying a core code; `index.js` turns it into the matching `WirecoreError`.
pub(crate) fn js_error(code: &str, message: &str) -> napi::Error {
    napi::Error::new(
        Status::GenericFailure,
        format!("[wirecore:{code}] {message}"),
    )
}

pub(crate) fn core_error(e: &wirecore::Error) -> napi::Error {
    js_error(e.code(), &e.full_message())
}

fn error_completion(id: u32, e: &wirecore::Error) -> Completion {
    Completion {
        id,
        code: Some(e.code().to_owned()),
        message: Some(e.full_message()),
        ..Completion::default()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Shared {
    client: wirecore::Client,
    completer: Arc<Completer>,
    /// Operations JS can cancel, by id.
    aborts: Registry,
    /// Requests and body reads in flight, so `close` waits for them.
    tracker: Arc<Tracker>,
    /// Streamed bodies by the id of their request. Small bodies (`wirecore::SMALL_BODY_BYTES`)
    /// come with the head instead, so status, headers and body cross into JS together.
    bodies: Mutex<HashMap<u32, Arc<BodySlot>>>,
    /// Bodies read as Server-Sent Events (`openEvents`), by the same ids.
    events: Mutex<HashMap<u32, Arc<EventSlot>>>,
    uploads: Mutex<HashMap<u32, mpsc::Sender<UploadItem>>>,
    upload_rx: Mutex<HashMap<u32, mpsc::Receiver<UploadItem>>>,
}

/// Clients whose engine side is alive: built and not yet dropped (a `NativeClient` holds its
/// `Shared` until V8 collects it; an operation in flight holds it until it completes).
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// How many clients' engine sides are alive in this process (every JS environment together).
pub(crate) fn live_clients() -> usize {
    LIVE.load(Relaxed)
}

impl Drop for Shared {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Relaxed);
    }
}

impl Shared {
    /// Runs `fut` on the engine runtime as one operation of `kind`; a cancellable one can be
    /// stopped with `cancel(id)`, which drops it (and so cancels the engine work under it).
    /// Exactly one completion comes for an operation not cancelled, with code `internal` if
    /// the work panicked.
    fn spawn<F, T>(self: &Arc<Self>, id: u32, kind: Kind, cancellable: bool, fut: F)
    where
        F: Future<Output = Result<T, wirecore::Error>> + Send + 'static,
        T: Into<Item> + Send + 'static,
    {
        let abort = cancellable.then(|| self.aborts.register(u64::from(id)));
        let shared = self.clone();
        self.tracker.spawn(kind, abort, fut, move |r| {
            if cancellable && !shared.aborts.finish(u64::from(id)) {
                // Cancelled: JS no longer waits for this completion, so a streaming body the
                // request opened would hold its connection forever.
                shared.forget_body(id);
                return;
            }
            shared.completer.push(match r {
                Ok(v) => v.into(),
                Err(e) => error_completion(id, &e).into(),
            });
        });
    }

    /// Drops the engine side of a streaming body (a read in progress stops).
    fn forget_body(&self, body_id: u32) {
        if let Some(slot) = lock(&self.bodies).remove(&body_id) {
            slot.close("the response body was dropped");
        }
        if let Some(events) = lock(&self.events).remove(&body_id) {
            events.close();
        }
    }
}

/// The native half of `Client` (see `index.js`).
#[napi(custom_finalize)]
pub struct NativeClient {
    shared: Arc<Shared>,
}

impl napi::bindgen_prelude::ObjectFinalize for NativeClient {
    /// Runs when V8 collects the client: dropping the last handle closes its idle connections,
    /// and a panic there must not unwind into the garbage collector.
    fn finalize(self, _env: napi::Env) -> napi::Result<()> {
        if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            drop(self);
        })) {
            // Its own `Drop` could panic again: nobody is left to report it to.
            std::mem::forget(payload);
        }
        Ok(())
    }
}

impl std::fmt::Debug for NativeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeClient")
            .field("client", &self.shared.client)
            .finish_non_exhaustive()
    }
}

#[napi]
impl NativeClient {
    /// Builds a client from a camelCase (or snake_case) config; its completions go to
    /// `dispatcher`.
    ///
    /// # Errors
    /// `invalid_config` naming the field as the caller spelled it.
    #[napi(constructor, catch_unwind)]
    pub fn new(config: Option<serde_json::Value>, dispatcher: &Dispatcher) -> napi::Result<Self> {
        let renamed = config::config_from_js(config.unwrap_or(serde_json::Value::Null));
        let value = match renamed.value {
            serde_json::Value::Null => serde_json::Value::Object(serde_json::Map::new()),
            ref v => v.clone(),
        };
        let cfg = wirecore::Config::from_value(value)
            .map_err(|e| js_error(e.code(), &renamed.explain(&e.full_message())))?;
        let rt = wirecore::runtime::global();
        let client = {
            let _enter = rt.enter();
            wirecore::Client::from_config(cfg)
                .map_err(|e| js_error(e.code(), &renamed.explain(&e.full_message())))?
        };
        let completer = dispatcher.completer.clone();
        LIVE.fetch_add(1, Relaxed);
        Ok(Self {
            shared: Arc::new(Shared {
                client,
                completer,
                aborts: Registry::default(),
                tracker: Tracker::new(),
                bodies: Mutex::default(),
                events: Mutex::default(),
                uploads: Mutex::default(),
                upload_rx: Mutex::default(),
            }),
        })
    }

    /// Validates and starts a request. Input errors throw here, before any I/O.
    ///
    /// `phases` overrides the config's connect / read-idle / pool timeouts for this request.
    ///
    /// `headers` is a flat `[name, value, ...]` list; `upload` names a stream opened with
    /// `openUpload`.
    #[napi(catch_unwind)]
    pub fn request(
        &self,
        id: u32,
        method: String,
        url: String,
        headers: Option<Vec<String>>,
        body: Option<Either<String, Uint8Array>>,
        upload: Option<u32>,
        timeout_ms: Option<f64>,
        cancellable: bool,
        idempotent: Option<bool>,
        rate_limit_key: Option<String>,
        phases: Option<PhaseTimeoutsMs>,
        priority: Option<String>,
        redirect: Option<String>,
        max_redirects: Option<i64>,
        cache: Option<String>,
        balance_key: Option<String>,
        traceparent: Option<String>,
        tracestate: Option<String>,
    ) -> napi::Result<()> {
        let method = wirecore::parse_method(&method).map_err(|e| core_error(&e))?;
        let mut req = wirecore::Request::new(method, &url).map_err(|e| core_error(&e))?;
        let headers = headers.unwrap_or_default();
        if !headers.len().is_multiple_of(2) {
            return Err(js_error(
                "invalid_header",
                "headers must be name/value pairs",
            ));
        }
        let map = req.headers_mut();
        for pair in headers.chunks_exact(2) {
            let (n, v) = wirecore::parse_header(&pair[0], &pair[1]).map_err(|e| core_error(&e))?;
            map.append(n, v);
        }
        match body {
            Some(Either::A(s)) => *req.body_mut() = wirecore::RequestBody::from(s),
            Some(Either::B(b)) => {
                *req.body_mut() = wirecore::RequestBody::from(Bytes::copy_from_slice(&b));
            }
            None => {}
        }
        if let Some(up) = upload {
            let Some(rx) = lock(&self.shared.upload_rx).remove(&up) else {
                return Err(js_error("invalid_request", "unknown upload stream"));
            };
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            });
            *req.body_mut() = wirecore::RequestBody::wrap_stream(stream);
        }
        let o = req.options_mut();
        if let Some(t) = timeout_ms {
            o.timeout = Some(duration_ms("timeoutMs", t, f64::MIN_POSITIVE)?);
        }
        o.idempotent = idempotent;
        o.rate_limit_key = rate_limit_key;
        o.balance_key = balance_key;
        o.traceparent = traceparent;
        o.tracestate = tracestate;
        if let Some(p) = phases {
            o.connect_timeout = millis("connectTimeoutMs", p.connect)?;
            o.read_timeout = millis("readTimeoutMs", p.read)?;
            o.pool_timeout = millis("poolTimeoutMs", p.pool)?;
        }
        if let Some(p) = priority {
            o.priority = Some(wirecore::Priority::parse(&p).map_err(|e| core_error(&e))?);
        }
        if let Some(p) = redirect {
            o.redirect = Some(wirecore::RedirectPolicy::parse(&p).map_err(|e| core_error(&e))?);
        }
        if let Some(n) = max_redirects {
            o.max_redirects = Some(
                wirecore::RequestOptions::checked_max_redirects(n).map_err(|e| core_error(&e))?,
            );
        }
        if let Some(m) = cache {
            o.cache = wirecore::CacheMode::parse(&m).map_err(|e| core_error(&e))?;
        }
        // Here, not when sent: a bad value throws where it was given, before any I/O.
        o.validate().map_err(|e| core_error(&e))?;
        let shared = self.shared.clone();
        let work = async move {
            let fetched = wirecore_bridge::fetch(shared.client.clone(), req, Prefetch::Small);
            let (head, body) = fetched.await?;
            respond(&shared, id, head, body)
        };
        self.shared.spawn(id, Kind::Request, cancellable, work);
        Ok(())
    }

    /// Stops the operation `id` (request or body read); its completion never comes. A
    /// request whose head already arrived (completion queued, not yet delivered) also has its
    /// streaming body dropped, since nobody will ever read it.
    #[napi(catch_unwind)]
    pub fn cancel(&self, id: u32) {
        if !self.shared.aborts.cancel(u64::from(id)) {
            self.shared.forget_body(id);
        }
    }

    /// Reads the next chunk of a streaming body into completion `id` (`body` absent at the end).
    #[napi(catch_unwind)]
    pub fn read_body(&self, body_id: u32, id: u32) {
        let slot = lock(&self.shared.bodies).get(&body_id).cloned();
        let shared = self.shared.clone();
        self.shared.spawn(id, Kind::Read, true, async move {
            let chunk = match slot {
                Some(slot) => slot.next().await,
                None => Ok(None),
            };
            if !matches!(chunk, Ok(Some(_))) {
                lock(&shared.bodies).remove(&body_id);
            }
            Ok(Completion {
                id,
                body: chunk?.map(|c| Buffer::from(Vec::from(c))),
                ..Completion::default()
            })
        });
    }

    /// Reads the rest of streaming body `body_id` as Server-Sent Events (`readEvent`); a `GET`'s
    /// stream reconnects with `Last-Event-ID`. `dropBody` closes it.
    #[napi(catch_unwind)]
    pub fn open_events(&self, body_id: u32) -> napi::Result<()> {
        let Some(slot) = lock(&self.shared.bodies).remove(&body_id) else {
            return Err(js_error("invalid_request", "unknown response body"));
        };
        let events = EventSlot::from_body(&slot).map_err(|e| core_error(&e))?;
        lock(&self.shared.events).insert(body_id, events);
        Ok(())
    }

    /// Reads the next event of `body_id` into completion `id` (`event` absent at the end).
    #[napi(catch_unwind)]
    pub fn read_event(&self, body_id: u32, id: u32) {
        let slot = lock(&self.shared.events).get(&body_id).cloned();
        self.shared.spawn(id, Kind::Read, true, async move {
            let ev = match slot {
                Some(slot) => slot.next().await?,
                None => None,
            };
            Ok(Completion {
                id,
                event: ev.map(SseEvent::from),
                ..Completion::default()
            })
        });
    }

    /// Drops a streaming body unread (an HTTP/1.1 connection is discarded, an h2 stream reset).
    #[napi(catch_unwind)]
    pub fn drop_body(&self, body_id: u32) {
        self.shared.forget_body(body_id);
    }

    /// Opens a request-body stream; pass its id as `upload` to `request`.
    #[napi(catch_unwind)]
    pub fn open_upload(&self, upload_id: u32) {
        let (tx, rx) = mpsc::channel(UPLOAD_QUEUE);
        lock(&self.shared.uploads).insert(upload_id, tx);
        lock(&self.shared.upload_rx).insert(upload_id, rx);
    }

    /// Queues one chunk; completion `id` comes once the engine has room for more.
    #[napi(catch_unwind)]
    pub fn write_upload(&self, upload_id: u32, id: u32, chunk: Uint8Array) {
        let tx = lock(&self.shared.uploads).get(&upload_id).cloned();
        let bytes = Bytes::copy_from_slice(&chunk);
        self.shared.spawn(id, Kind::Other, false, async move {
            let sent = match tx {
                Some(tx) => tx.send(Ok(bytes)).await.is_ok(),
                None => false,
            };
            if sent {
                Ok(Completion {
                    id,
                    ..Completion::default()
                })
            } else {
                Err(wirecore::Error::new(
                    wirecore::ErrorKind::Io,
                    "the request no longer reads its body",
                ))
            }
        });
    }

    /// Ends a request-body stream, with an error message if the JS source failed.
    #[napi(catch_unwind)]
    pub fn end_upload(&self, upload_id: u32, error: Option<String>) {
        lock(&self.shared.upload_rx).remove(&upload_id);
        if let Some(tx) = lock(&self.shared.uploads).remove(&upload_id)
            && let Some(msg) = error
        {
            wirecore_bridge::fork::runtime().spawn(async move {
                let _ = tx.send(Err(std::io::Error::other(msg))).await;
            });
        }
    }

    /// Panics on purpose, for the tests that check a panic never strands a caller: here at
    /// once (`id` absent: the call throws) or in the engine task of completion `id` (it
    /// completes with code `internal`). Not part of the API.
    #[napi(catch_unwind, js_name = "__panicForTests")]
    pub fn panic_for_tests(&self, id: Option<u32>) {
        match id {
            None => panic!("wirecore: panic requested by a test"),
            Some(id) => self.shared.spawn(id, Kind::Other, false, panic_in_engine()),
        }
    }

    /// Hands every request that fails after every retry to `callback`, in batches, on the JS
    /// thread (replacing an earlier callback).
    #[napi(catch_unwind)]
    pub fn on_dead_letter(
        &self,
        callback: napi::bindgen_prelude::Function<'_, Vec<crate::dead_letter::DeadLetter>, ()>,
    ) -> napi::Result<()> {
        crate::dead_letter::listen(&self.shared.client, callback)
    }

    /// Hands every finished request's span to `callback`, in batches, on the JS thread
    /// (replacing an earlier callback); `invalid_config` while `otel.enabled` is false.
    #[napi(catch_unwind)]
    pub fn on_span(
        &self,
        callback: napi::bindgen_prelude::Function<'_, Vec<crate::dead_letter::Span>, ()>,
    ) -> napi::Result<()> {
        crate::dead_letter::listen_spans(&self.shared.client, callback)
    }

    /// A snapshot of every counter, keys in camelCase.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> napi::Result<serde_json::Value> {
        let v = serde_json::to_value(self.shared.client.stats())
            .map_err(|e| js_error("internal", &e.to_string()))?;
        Ok(config::stats_to_js(v))
    }

    /// The cookie jar's unexpired cookies, keys in camelCase.
    #[napi(catch_unwind)]
    pub fn cookies(&self) -> napi::Result<serde_json::Value> {
        let v = serde_json::to_value(self.shared.client.cookies())
            .map_err(|e| js_error("internal", &e.to_string()))?;
        Ok(config::stats_to_js(v))
    }

    /// Empties the cookie jar.
    #[napi(catch_unwind)]
    pub fn clear_cookies(&self) {
        self.shared.client.clear_cookies();
    }

    /// The stats in Prometheus text format.
    #[napi(catch_unwind)]
    pub fn prometheus(&self) -> String {
        self.shared.client.prometheus()
    }

    /// A health report, keys in camelCase.
    #[napi(catch_unwind)]
    pub fn diagnostics(&self) -> napi::Result<serde_json::Value> {
        let v = serde_json::to_value(self.shared.client.diagnostics())
            .map_err(|e| js_error("internal", &e.to_string()))?;
        Ok(config::stats_to_js(v))
    }

    /// The health report as text.
    #[napi(catch_unwind)]
    pub fn diagnostics_text(&self) -> String {
        self.shared.client.diagnostics().to_string()
    }

    /// Exports the finished spans and the duration metric now (`otel.endpoint`); completion
    /// `id` follows once the collector answered or the export failed.
    #[napi(catch_unwind)]
    pub fn flush_telemetry(&self, id: u32) {
        let client = self.shared.client.clone();
        self.shared.spawn(id, Kind::Other, false, async move {
            client.flush_telemetry().await;
            Ok(Completion {
                id,
                ..Completion::default()
            })
        });
    }

    /// Refuses new requests, drains in-flight ones for up to `timeout_ms`, closes idle
    /// connections; completion `id` follows.
    #[napi(catch_unwind)]
    pub fn close(&self, id: u32, timeout_ms: f64) {
        let shared = self.shared.clone();
        // NaN and negatives mean 0; anything past the bound means the bound.
        let ms = if timeout_ms >= 0.0 {
            timeout_ms.min(MAX_TIMEOUT_MS)
        } else {
            0.0
        };
        let d = Duration::from_secs_f64(ms / 1000.0);
        shared.tracker.begin_close();
        self.shared.spawn(id, Kind::Other, false, async move {
            shared.tracker.close(&shared.client, d, false).await;
            Ok(Completion {
                id,
                ..Completion::default()
            })
        });
    }
}

/// The response head, plus the body when it is small: one crossing for the common case.
fn respond(
    shared: &Shared,
    id: u32,
    head: wirecore_bridge::Head,
    body: Prefetched,
) -> Result<Head, wirecore::Error> {
    use std::fmt::Write as _;
    let t = head.timings;
    let mut headers = String::with_capacity(head.headers.len() * 32);
    for (n, v) in &head.headers {
        headers.push_str(n.as_str());
        headers.push('\n');
        headers.push_str(&String::from_utf8_lossy(v.as_bytes()));
        headers.push('\n');
    }
    let url = head.url.to_string();
    let mut meta = String::with_capacity(64 + url.len());
    let _ = write!(
        meta,
        "{:?}\n{}\n{}\n{} {} {} {} {}\n{url}",
        head.version,
        u8::from(head.reused),
        head.cache.map_or("", wirecore::CacheStatus::as_str),
        ms(t.dns),
        ms(t.connect),
        ms(t.tls),
        ms(t.ttfb),
        ms(t.total),
    );
    let body = match body {
        Prefetched::Whole(b) => Some(b),
        Prefetched::Cut(_, e) => return Err(e),
        Prefetched::Stream(body) => {
            let slot = BodySlot::new(Prefetched::Stream(body));
            lock(&shared.bodies).insert(id, slot);
            None
        }
    };
    Ok(Head {
        id,
        status: u32::from(head.status.as_u16()),
        headers,
        body,
        meta,
    })
}

/// Per-request overrides of the config's phase timeouts, each in milliseconds.
#[napi(object)]
#[derive(Debug)]
pub struct PhaseTimeoutsMs {
    pub connect: Option<f64>,
    pub read: Option<f64>,
    pub pool: Option<f64>,
}

fn millis(what: &str, ms: Option<f64>) -> napi::Result<Option<Duration>> {
    ms.map(|t| duration_ms(what, t, f64::MIN_POSITIVE))
        .transpose()
}

/// The longest timeout a request takes, in milliseconds: the core's bound on every duration
/// (one year); `index.js` checks the same bound first (`maxTimeoutMs`).
#[expect(
    clippy::cast_precision_loss,
    reason = "3.15e10 is far below 2^53: exact as f64"
)]
pub(crate) const MAX_TIMEOUT_MS: f64 = wirecore::config::MAX_DURATION_MS as f64;

/// A timeout from JS milliseconds: finite, at least `min` and at most [`MAX_TIMEOUT_MS`], so
/// no deadline computed from it can overflow.
fn duration_ms(what: &str, ms: f64, min: f64) -> napi::Result<Duration> {
    if ms.is_finite() && ms >= min && ms <= MAX_TIMEOUT_MS {
        Ok(Duration::from_secs_f64(ms / 1000.0))
    } else {
        let least = if min > 0.0 { "above 0" } else { "at least 0" };
        Err(js_error(
            "invalid_request",
            &format!(
                "{what} must be a number of milliseconds {least} and at most {MAX_TIMEOUT_MS}, got {ms}"
            ),
        ))
    }
}

/// Panics on purpose: a test's way to check that no panic strands a caller.
#[expect(
    clippy::unused_async,
    reason = "it must panic when the engine polls it, not when it is built"
)]
async fn panic_in_engine() -> Result<Completion, wirecore::Error> {
    panic!("wirecore: panic requested by a test (in the engine)")
}
