//! Dead letters and finished spans for a JS callback: the engine queues them in the bridge's
//! `Letters` / `Spans` and wakes one weak threadsafe function, which hands the queued records
//! to JS on its own thread (never an engine thread) and never keeps the process alive.
#![expect(
    clippy::needless_pass_by_value,
    reason = "napi hands arguments over by value"
)]

use std::collections::HashMap;
use std::sync::Arc;

use napi::Status;
use napi::bindgen_prelude::{BigInt, Buffer, Either, Function, ToNapiValue};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use wirecore_bridge::{HostQueue, Letters, Spans};

/// A request that failed after every retry the policy allowed.
#[napi(object)]
pub struct DeadLetter {
    pub method: String,
    /// Without userinfo.
    pub url: String,
    /// `[name, value]` pairs, without Authorization, Proxy-Authorization and Cookie.
    pub headers: Vec<Vec<String>>,
    /// The body when it was buffered and at most `deadLetter.maxBodyBytes`.
    pub body: Option<Buffer>,
    /// The error's code, or `status` when the last answer had a status the policy retries.
    pub error_code: String,
    pub message: String,
    pub status: Option<u32>,
    pub attempts: u32,
    /// When it failed, milliseconds since the Unix epoch.
    pub time_ms: f64,
}

impl std::fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetter")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("error_code", &self.error_code)
            .finish_non_exhaustive()
    }
}

fn to_js(l: wirecore::DeadLetter) -> DeadLetter {
    DeadLetter {
        method: l.method,
        url: l.url,
        headers: l.headers.into_iter().map(|(k, v)| vec![k, v]).collect(),
        body: l.body.map(|b| Buffer::from(b.to_vec())),
        error_code: l.error_code,
        message: l.message,
        status: l.status.map(u32::from),
        attempts: l.attempts,
        time_ms: l.time_ms as f64,
    }
}

/// A finished client span (`Client.onSpan`), the core's `SpanRecord`.
#[napi(object)]
#[expect(
    clippy::struct_field_names,
    reason = "the record's field names, the same in every binding"
)]
pub struct Span {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// The caller's span (a `traceparent` option or the active OpenTelemetry context).
    pub parent_span_id: Option<String>,
    pub trace_state: Option<String>,
    /// The method (`GET`), or `HTTP` for one the conventions do not know.
    pub name: String,
    /// Always `client`.
    pub kind: String,
    pub start_unix_nanos: BigInt,
    pub end_unix_nanos: BigInt,
    /// `unset`, or `error` for a failure or a 4xx/5xx answer.
    pub status: String,
    pub status_message: String,
    /// The HTTP client semantic conventions' attributes, by name.
    pub attributes: HashMap<String, Either<String, i64>>,
}

impl std::fmt::Debug for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Span")
            .field("trace_id", &self.trace_id)
            .field("span_id", &self.span_id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn span_to_js(s: wirecore::SpanRecord) -> Span {
    Span {
        trace_id: s.trace_id,
        span_id: s.span_id,
        parent_span_id: s.parent_span_id,
        trace_state: s.trace_state,
        name: s.name,
        kind: s.kind.to_owned(),
        start_unix_nanos: BigInt::from(s.start_unix_nanos),
        end_unix_nanos: BigInt::from(s.end_unix_nanos),
        status: s.status.to_owned(),
        status_message: s.status_message,
        attributes: s
            .attributes
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    wirecore::SpanValue::Int(i) => Either::B(i),
                    wirecore::SpanValue::String(x) => Either::A(x),
                    other => Either::A(format!("{other:?}")),
                };
                (k, v)
            })
            .collect(),
    }
}

/// A weak threadsafe function that hands what `queue` holds, converted by `to_js`, to
/// `callback` on the JS thread; the returned wake-up tells it a batch started.
fn deliver<T: Send + 'static, J: ToNapiValue + 'static>(
    queue: Arc<HostQueue<T>>,
    callback: Function<'_, Vec<J>, ()>,
    to_js: fn(T) -> J,
) -> napi::Result<impl Fn() + Send + Sync + 'static> {
    let tsfn: ThreadsafeFunction<(), (), Vec<J>, Status, false, true> = callback
        .build_threadsafe_function::<()>()
        .weak::<true>()
        .callee_handled::<false>()
        // Runs on the JS thread outside any `#[napi(catch_unwind)]` entry.
        .build_callback(move |_ctx| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                queue
                    .queue()
                    .take(usize::MAX)
                    .into_iter()
                    .map(to_js)
                    .collect()
            }))
            .map_err(napi::bindgen_prelude::panic_to_error)
        })?;
    let tsfn = Arc::new(tsfn);
    Ok(move || {
        // Fails only while the JS environment shuts down: nobody is left to tell.
        let _ = tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking);
    })
}

/// Makes `client` hand its dead letters, in batches, to `callback` on the JS thread.
pub(crate) fn listen(
    client: &wirecore::Client,
    callback: Function<'_, Vec<DeadLetter>, ()>,
) -> napi::Result<()> {
    let letters = Letters::new(client);
    let wake = deliver(letters.clone(), callback, to_js)?;
    letters.listen(client, wake);
    Ok(())
}

/// Makes `client` hand its finished spans, in batches, to `callback` on the JS thread.
pub(crate) fn listen_spans(
    client: &wirecore::Client,
    callback: Function<'_, Vec<Span>, ()>,
) -> napi::Result<()> {
    let spans = Spans::new(client);
    let wake = deliver(spans.clone(), callback, span_to_js)?;
    spans
        .listen(client, wake)
        .map_err(|e| crate::client::core_error(&e))
}
