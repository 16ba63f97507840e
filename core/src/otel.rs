//! OpenTelemetry (`Config.otel`): one client span per request following the HTTP client semantic
//! conventions, its W3C `traceparent` on the wire, and the `http.client.request.duration`
//! histogram, both exported as OTLP/HTTP JSON by a background task (`otel/export.rs`); finished
//! spans also go to a callback as [`SpanRecord`]s (`otel/callback.rs`), and each span is
//! started in the application's own `TracerProvider` too when it handed one over (`otel/app.rs`).
//!
//! One span covers the whole request, retries and redirects included
//! (`http.request.resend_count`). Off, `Client::execute` pays one branch, and a caller's
//! `traceparent` option is sent unchanged so the trace still joins up downstream.

mod app;
mod callback;
mod context;
mod export;
mod metric;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::{Duration, SystemTime};

use http::header::{HeaderName, HeaderValue};
use http::{Method, Uri, Version};
use serde_json::{Value, json};

pub(crate) use self::app::tracer_of;
use self::callback::{Callback, Sink};
pub use self::callback::{SpanRecord, SpanSink, SpanValue};
use self::context::to_hex;
pub(crate) use self::context::{SpanContext, valid_tracestate};
use self::export::Exporter;
use self::metric::Durations;
use crate::config::Config;
use crate::error::Error;
use crate::request::Request;
use crate::response::Response;

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The tracing state of a client whose `otel.enabled` is true.
#[derive(Debug)]
pub(crate) struct Otel {
    exporter: Option<Exporter>,
    durations: Option<Arc<Durations>>,
    callback: Callback,
    counts: Arc<Counts>,
    /// The application's `TracerProvider`'s tracer, when it handed one over.
    tracer: arc_swap::ArcSwapOption<opentelemetry::global::BoxedTracer>,
}

/// Spans by what became of them (the collector's and the callback's together).
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) exported: AtomicU64,
    pub(crate) dropped: AtomicU64,
}

/// A request's span while it runs.
#[derive(Debug)]
pub(crate) struct Active {
    ctx: SpanContext,
    parent: Option<[u8; 8]>,
    start: SystemTime,
    base: Attrs,
    method_original: Option<String>,
    url_full: String,
    /// Attempts of the request (`crate::dead_letter::counting`), for `resend_count`.
    pub(crate) attempts: Arc<AtomicU32>,
    /// The same span in the application's `TracerProvider`, when it handed one over.
    app: Option<opentelemetry::global::BoxedSpan>,
}

/// A finished span, as the exporter encodes it.
#[derive(Debug)]
pub(crate) struct SpanData {
    ctx: SpanContext,
    parent: Option<[u8; 8]>,
    name: &'static str,
    start_ns: u64,
    end_ns: u64,
    attrs: Vec<(&'static str, AttrValue)>,
    /// The status message of a failed span (`None`: status unset).
    error: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum AttrValue {
    Str(String),
    Int(i64),
}

/// The attributes of the duration metric (and the span's own that it shares).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Attrs {
    method: &'static str,
    address: Box<str>,
    port: u16,
    scheme: &'static str,
    status: Option<u16>,
    error_type: Option<Box<str>>,
    version: Option<&'static str>,
}

impl Attrs {
    fn list(&self) -> Vec<(&'static str, AttrValue)> {
        let mut v = vec![
            ("http.request.method", AttrValue::Str(self.method.into())),
            ("server.address", AttrValue::Str(self.address.to_string())),
            ("server.port", AttrValue::Int(self.port.into())),
            ("url.scheme", AttrValue::Str(self.scheme.into())),
        ];
        if let Some(s) = self.status {
            v.push(("http.response.status_code", AttrValue::Int(s.into())));
        }
        if let Some(e) = &self.error_type {
            v.push(("error.type", AttrValue::Str(e.to_string())));
        }
        if let Some(p) = self.version {
            v.push(("network.protocol.version", AttrValue::Str(p.into())));
        }
        v
    }

    #[cfg(test)]
    fn for_test() -> Self {
        Self {
            method: "GET",
            address: "example.com".into(),
            port: 443,
            scheme: "https",
            status: Some(200),
            error_type: None,
            version: Some("2"),
        }
    }
}

/// OTLP JSON `KeyValue`s.
pub(crate) fn attr_json(attrs: &[(&'static str, AttrValue)]) -> Value {
    Value::Array(
        attrs
            .iter()
            .map(|(k, v)| match v {
                AttrValue::Str(s) => json!({ "key": k, "value": { "stringValue": s } }),
                // OTLP JSON writes 64-bit integers as strings.
                AttrValue::Int(i) => json!({ "key": k, "value": { "intValue": i.to_string() } }),
            })
            .collect(),
    )
}

pub(crate) fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The methods the semantic conventions know; anything else is `_OTHER`.
fn known_method(m: &Method) -> Option<&'static str> {
    Some(match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => return None,
    })
}

fn protocol_version(v: Version) -> Option<&'static str> {
    Some(match v {
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => return None,
    })
}

/// Query parameters whose values the semantic conventions ask to redact in `url.full`
/// (signed-URL credentials).
const SECRET_PARAMS: [&str; 4] = ["AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature"];

/// `url.full`: the URL without userinfo, and with signed-URL credentials replaced by
/// `REDACTED`, as the semantic conventions ask.
pub(crate) fn url_full(uri: &Uri) -> String {
    let s = crate::error::redact(uri);
    let Some((head, query)) = s.split_once('?') else {
        return s;
    };
    let mut out = String::with_capacity(s.len());
    out.push_str(head);
    out.push('?');
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.contains(&k) => {
                out.push_str(k);
                out.push_str("=REDACTED");
            }
            _ => out.push_str(pair),
        }
    }
    out
}

/// The parent a caller handed over: the `traceparent` option (with `tracestate`), else the
/// current `opentelemetry::Context` (a Rust caller's), else the request's own `traceparent`
/// header (as an instrumentation wrapped around this client set it).
fn parent_of(req: &Request) -> Option<SpanContext> {
    if let Some(tp) = &req.options.traceparent {
        let mut c = SpanContext::parse(tp)?;
        c.state.clone_from(&req.options.tracestate);
        return Some(c);
    }
    if let Some(c) = current_context() {
        return Some(c);
    }
    let tp = req.headers.get(TRACEPARENT)?.to_str().ok()?;
    let mut c = SpanContext::parse(tp)?;
    c.state = req
        .headers
        .get(TRACESTATE)
        .and_then(|v| v.to_str().ok())
        .filter(|s| valid_tracestate(s))
        .map(str::to_owned);
    Some(c)
}

/// The span context of `opentelemetry::Context::current()`, when it holds a valid one.
fn current_context() -> Option<SpanContext> {
    use opentelemetry::trace::TraceContextExt as _;
    let cx = opentelemetry::Context::current();
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return None;
    }
    let state = sc.trace_state().header();
    Some(SpanContext {
        trace_id: sc.trace_id().to_bytes(),
        span_id: sc.span_id().to_bytes(),
        flags: sc.trace_flags().to_u8(),
        state: (!state.is_empty() && state.len() <= context::MAX_TRACESTATE_BYTES).then_some(state),
    })
}

/// Puts `ctx` on the request as `traceparent` (and `tracestate`).
fn inject(req: &mut Request, ctx: &SpanContext) {
    if let Ok(v) = HeaderValue::try_from(ctx.traceparent()) {
        req.headers.insert(TRACEPARENT, v);
    }
    if let Some(s) = &ctx.state
        && let Ok(v) = HeaderValue::from_str(s)
    {
        req.headers.insert(TRACESTATE, v);
    }
}

/// Tracing off: a caller's `traceparent` option still goes out, unchanged.
pub(crate) fn pass_through(req: &mut Request) {
    if req.options.traceparent.is_some()
        && let Some(ctx) = parent_of(req)
    {
        inject(req, &ctx);
    }
}

impl Otel {
    /// The tracing state for `cfg`, or `None` when `otel.enabled` is false. Starts the export
    /// task on `rt` when an endpoint is set.
    pub(crate) fn new(cfg: &Config, rt: &tokio::runtime::Handle) -> Result<Option<Self>, Error> {
        let c = &cfg.otel;
        if !c.enabled {
            return Ok(None);
        }
        let durations = (!c.endpoint.is_empty() && c.metrics).then(|| Arc::new(Durations::new()));
        let counts = Arc::new(Counts::default());
        let exporter = if c.endpoint.is_empty() {
            None
        } else {
            Some(Exporter::spawn(c, durations.clone(), counts.clone(), rt)?)
        };
        Ok(Some(Self {
            exporter,
            durations,
            callback: Callback::new(c.callback_queue, counts.clone()),
            counts,
            tracer: arc_swap::ArcSwapOption::empty(),
        }))
    }

    /// Starts every later request's span in the application's tracer too.
    pub(crate) fn set_tracer(&self, t: Arc<opentelemetry::global::BoxedTracer>) {
        self.tracer.store(Some(t));
    }

    /// Sets the span callback (replacing an earlier one).
    pub(crate) fn set_callback(&self, sink: Sink) {
        self.callback.set_sink(sink);
    }

    /// Starts the request's span and puts its `traceparent` on the request; `None` when the
    /// caller's parent is not sampled (its context is then sent unchanged).
    pub(crate) fn start(&self, req: &mut Request) -> Option<Active> {
        let parent = parent_of(req);
        if let Some(p) = &parent
            && !p.sampled()
        {
            if req.options.traceparent.is_some() {
                inject(req, p);
            }
            return None;
        }
        let method = known_method(&req.method);
        let start = SystemTime::now();
        let app = self
            .tracer
            .load()
            .as_ref()
            .and_then(|t| app::start(t, method.unwrap_or("HTTP"), parent.as_ref(), start));
        let (app, ctx) = match app {
            Some((span, ctx)) => (Some(span), ctx),
            None => (
                None,
                SpanContext {
                    trace_id: parent
                        .as_ref()
                        .map_or_else(|| fastrand::u128(1..).to_be_bytes(), |p| p.trace_id),
                    span_id: fastrand::u64(1..).to_be_bytes(),
                    flags: 1,
                    state: parent.as_ref().and_then(|p| p.state.clone()),
                },
            ),
        };
        inject(req, &ctx);
        let uri = &req.uri;
        let https = uri.scheme_str() == Some("https");
        Some(Active {
            ctx,
            parent: parent.map(|p| p.span_id),
            start,
            base: Attrs {
                method: method.unwrap_or("_OTHER"),
                address: uri.host().unwrap_or_default().into(),
                port: uri.port_u16().unwrap_or(if https { 443 } else { 80 }),
                scheme: if https { "https" } else { "http" },
                status: None,
                error_type: None,
                version: None,
            },
            method_original: method.is_none().then(|| req.method.as_str().to_owned()),
            url_full: url_full(uri),
            attempts: Arc::new(AtomicU32::new(0)),
            app,
        })
    }

    /// Ends the span of a request that took `elapsed`: records the metric and queues the span.
    pub(crate) fn finish(&self, a: Active, res: &Result<Response, Error>, elapsed: Duration) {
        let mut attrs = a.base;
        let mut error = None;
        match res {
            Ok(r) => {
                let code = r.status.as_u16();
                attrs.status = Some(code);
                attrs.version = protocol_version(r.version);
                // Client spans: 4xx and 5xx are errors, typed by the status code.
                if code >= 400 {
                    attrs.error_type = Some(code.to_string().into());
                    error = Some(String::new());
                }
            }
            Err(e) => {
                attrs.error_type = Some(e.kind().code().into());
                error = Some(e.to_string());
            }
        }
        if let Some(d) = &self.durations {
            d.record(attrs.clone(), elapsed.as_secs_f64());
        }
        let listening = self.callback.is_listening();
        if self.exporter.is_none() && !listening && a.app.is_none() {
            return;
        }
        let mut list = attrs.list();
        // `url.scheme` belongs to the metric; `url.full` carries it on the span.
        list.retain(|(k, _)| *k != "url.scheme");
        list.push(("url.full", AttrValue::Str(a.url_full)));
        if let Some(m) = a.method_original {
            list.push(("http.request.method_original", AttrValue::Str(m)));
        }
        let resends = a.attempts.load(Relaxed).saturating_sub(1);
        if resends > 0 {
            list.push(("http.request.resend_count", AttrValue::Int(resends.into())));
        }
        if let Some(span) = a.app {
            app::end(span, &list, error.as_deref(), a.start + elapsed);
        }
        if self.exporter.is_none() && !listening {
            return;
        }
        let start_ns = unix_nanos(a.start);
        let span = SpanData {
            ctx: a.ctx,
            parent: a.parent,
            name: if attrs.method == "_OTHER" {
                "HTTP"
            } else {
                attrs.method
            },
            start_ns,
            end_ns: start_ns.saturating_add(u64::try_from(elapsed.as_nanos()).unwrap_or(0)),
            attrs: list,
            error,
        };
        if listening {
            self.callback.offer(span.record());
        }
        if let Some(exporter) = &self.exporter {
            exporter.offer(span);
        }
    }

    /// Exports what is queued now (spans and the metric); returns once the collector answered
    /// or the export failed.
    pub(crate) async fn flush(&self) {
        let export = async {
            if let Some(e) = &self.exporter {
                e.flush().await;
            }
        };
        tokio::join!(export, self.callback.flush());
    }

    /// Exports what is queued now and ends the exporter (at the client's close).
    pub(crate) async fn close(&self) {
        let export = async {
            if let Some(e) = &self.exporter {
                e.close().await;
            }
        };
        tokio::join!(export, self.callback.close());
    }

    /// Spans exported (or delivered to the callback) and dropped so far.
    pub(crate) fn stats(&self) -> crate::metrics::OtelStats {
        crate::metrics::OtelStats {
            exported: self.counts.exported.load(Relaxed),
            dropped: self.counts.dropped.load(Relaxed),
        }
    }
}

impl SpanData {
    /// The record the span callback gets.
    fn record(&self) -> SpanRecord {
        SpanRecord {
            trace_id: to_hex(&self.ctx.trace_id),
            span_id: to_hex(&self.ctx.span_id),
            parent_span_id: self.parent.as_ref().map(|p| to_hex(p)),
            trace_state: self.ctx.state.clone(),
            name: self.name.to_owned(),
            kind: "client",
            start_unix_nanos: self.start_ns,
            end_unix_nanos: self.end_ns,
            status: if self.error.is_some() {
                "error"
            } else {
                "unset"
            },
            status_message: self.error.clone().unwrap_or_default(),
            attributes: self
                .attrs
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        AttrValue::Str(s) => SpanValue::String(s.clone()),
                        AttrValue::Int(i) => SpanValue::Int(*i),
                    };
                    ((*k).to_owned(), v)
                })
                .collect(),
        }
    }

    /// The OTLP JSON `Span`.
    fn otlp(&self) -> Value {
        let mut s = json!({
            "traceId": to_hex(&self.ctx.trace_id),
            "spanId": to_hex(&self.ctx.span_id),
            "name": self.name,
            // SPAN_KIND_CLIENT
            "kind": 3,
            "startTimeUnixNano": self.start_ns.to_string(),
            "endTimeUnixNano": self.end_ns.to_string(),
            "attributes": attr_json(&self.attrs),
            "flags": u32::from(self.ctx.flags),
        });
        if let Some(p) = self.parent {
            s["parentSpanId"] = to_hex(&p).into();
        }
        if let Some(st) = &self.ctx.state {
            s["traceState"] = st.clone().into();
        }
        if let Some(msg) = &self.error {
            // STATUS_CODE_ERROR
            s["status"] = json!({ "code": 2, "message": msg });
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_full_drops_userinfo_and_signatures() {
        let u: Uri = "https://u:pw@h.example:8443/p?a=1&Signature=abc&sig=x&b=2"
            .parse()
            .unwrap();
        assert_eq!(
            url_full(&u),
            "https://h.example:8443/p?a=1&Signature=REDACTED&sig=REDACTED&b=2"
        );
        let u: Uri = "http://h/x".parse().unwrap();
        assert_eq!(url_full(&u), "http://h/x");
    }
}
