//! Node.js addon for wirecore: a thin napi-rs skin over the core engine.
//!
//! JS calls hand a whole request over in one call; the engine runs it on
//! `wirecore::runtime::global()` and the result comes back through the `completion` module. The
//! hand-written `index.js` turns those completions into Promises, `Response`s and errors.

mod client;
mod completion;
mod config;
mod dead_letter;
pub mod log;

use napi_derive::napi;

/// `Basic base64(user:password)` for an `Authorization` header, encoded by the core
/// (`wirecore::basic_auth`, as `RequestBuilder::basic_auth` and the C ABI).
#[napi(catch_unwind)]
#[allow(
    clippy::needless_pass_by_value,
    reason = "napi hands JS strings over as owned Strings"
)]
pub fn basic_auth(user: String, password: Option<String>) -> napi::Result<String> {
    let v = wirecore::basic_auth(&user, password.as_deref()).map_err(|e| client::core_error(&e))?;
    Ok(String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// Every error code of the core, so JS can check that each maps to an error class.
#[napi(catch_unwind)]
pub fn error_codes() -> Vec<&'static str> {
    wirecore::ErrorKind::ALL.iter().map(|k| k.code()).collect()
}

/// Renames a camelCase config object to the core's snake_case keys (exposed for tests).
#[napi(catch_unwind)]
pub fn config_to_core(config: serde_json::Value) -> serde_json::Value {
    config::config_from_js(config).value
}

/// How many completions one batch (one JS call) holds at most.
#[napi(catch_unwind)]
pub fn max_batch() -> u32 {
    completion::MAX_BATCH as u32
}

/// The longest per-request timeout in milliseconds (one year, the core's bound on durations).
#[napi(catch_unwind)]
pub fn max_timeout_ms() -> f64 {
    client::MAX_TIMEOUT_MS
}

/// The events of a body read whole (no reconnection), through the engine's one parser.
#[napi(catch_unwind)]
pub fn parse_events(
    body: napi::bindgen_prelude::Uint8Array,
) -> napi::Result<Vec<completion::SseEvent>> {
    let mut p = wirecore::sse::Parser::default();
    let fed = p.feed(&body);
    drop(body);
    fed.map_err(|e| client::core_error(&e))?;
    Ok(std::iter::from_fn(|| p.next_event())
        .map(completion::SseEvent::from)
        .collect())
}

/// Live native objects, for the soak and the leak tests (not part of the API).
#[napi(object)]
#[derive(Debug)]
pub struct NativeCounts {
    /// Clients whose engine side is alive: not yet collected by V8, or with work in flight.
    pub clients: u32,
    /// Tasks alive on the engine runtime (connections, requests, timers), every client's.
    pub engine_tasks: u32,
}

/// Counts of live native objects: a client dropped and collected, with nothing in flight, is
/// no longer counted. Not part of the API.
#[napi(catch_unwind, js_name = "__nativeCounts")]
pub fn native_counts() -> NativeCounts {
    let tasks = wirecore::runtime::global().metrics().num_alive_tasks();
    NativeCounts {
        clients: u32::try_from(client::live_clients()).unwrap_or(u32::MAX),
        engine_tasks: u32::try_from(tasks).unwrap_or(u32::MAX),
    }
}

/// The crate version.
#[napi(catch_unwind)]
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
