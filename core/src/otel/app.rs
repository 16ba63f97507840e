//! The application's own OpenTelemetry `TracerProvider` ([`ClientBuilder::tracer_provider`]):
//! each request's client span is also started there, under the caller's parent, and it is that
//! span's ids that go on the wire in `traceparent` and into the engine's own record, so the
//! app's trace, the collector's and the server's agree. Ended with the same attributes and
//! status as the engine's span.
//!
//! [`ClientBuilder::tracer_provider`]: crate::ClientBuilder::tracer_provider

use std::sync::Arc;
use std::time::SystemTime;

use opentelemetry::global::{BoxedSpan, BoxedTracer};
use opentelemetry::trace::{
    self, Span as _, SpanBuilder, SpanKind, TraceContextExt as _, Tracer as _, TracerProvider,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};

use super::AttrValue;
use super::context::{MAX_TRACESTATE_BYTES, SpanContext};

/// The tracer `provider` gives the `wirecore` instrumentation scope, type-erased.
pub(crate) fn tracer_of<P>(provider: &P) -> Arc<BoxedTracer>
where
    P: TracerProvider,
    P::Tracer: Send + Sync + 'static,
    <P::Tracer as trace::Tracer>::Span: Send + Sync + 'static,
{
    let scope = InstrumentationScope::builder("wirecore")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    Arc::new(BoxedTracer::new(Box::new(
        provider.tracer_with_scope(scope),
    )))
}

/// Starts the app's span for a request named `name` under `parent`; with it, the span context
/// the request carries. `None` when the app's tracer gives no valid context.
pub(super) fn start(
    t: &BoxedTracer,
    name: &'static str,
    parent: Option<&SpanContext>,
    at: SystemTime,
) -> Option<(BoxedSpan, SpanContext)> {
    let cx = match parent {
        Some(p) => Context::new().with_remote_span_context(trace::SpanContext::new(
            trace::TraceId::from_bytes(p.trace_id),
            trace::SpanId::from_bytes(p.span_id),
            trace::TraceFlags::new(p.flags),
            true,
            p.state
                .as_deref()
                .and_then(|s| s.parse::<trace::TraceState>().ok())
                .unwrap_or_default(),
        )),
        None => Context::new(),
    };
    let builder = SpanBuilder::from_name(name)
        .with_kind(SpanKind::Client)
        .with_start_time(at);
    let span = t.build_with_context(builder, &cx);
    let sc = span.span_context();
    if !sc.is_valid() {
        return None;
    }
    let state = sc.trace_state().header();
    let ctx = SpanContext {
        trace_id: sc.trace_id().to_bytes(),
        span_id: sc.span_id().to_bytes(),
        flags: sc.trace_flags().to_u8(),
        state: if state.is_empty() || state.len() > MAX_TRACESTATE_BYTES {
            parent.and_then(|p| p.state.clone())
        } else {
            Some(state)
        },
    };
    Some((span, ctx))
}

/// Ends the app's span with the engine span's attributes and status.
pub(super) fn end(
    mut span: BoxedSpan,
    attrs: &[(&'static str, AttrValue)],
    error: Option<&str>,
    at: SystemTime,
) {
    span.set_attributes(attrs.iter().map(|(k, v)| match v {
        AttrValue::Str(s) => KeyValue::new(*k, s.clone()),
        AttrValue::Int(i) => KeyValue::new(*k, *i),
    }));
    if let Some(msg) = error {
        span.set_status(trace::Status::error(msg.to_owned()));
    }
    span.end_with_timestamp(at);
}
