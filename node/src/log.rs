//! The engine's log records for a JS callback: the bridge queues them process-wide and wakes
//! one weak threadsafe function, which hands the queued records to JS on its own thread (never
//! an engine thread) and never keeps the process alive.
#![expect(
    clippy::needless_pass_by_value,
    reason = "napi hands arguments over by value"
)]

use std::sync::Arc;

use napi::Status;
use napi::bindgen_prelude::Function;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

/// One engine event.
#[napi(object)]
#[derive(Debug)]
pub struct LogRecord {
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: String,
    /// Where it happened (`wirecore::pool::connect`).
    pub target: String,
    pub message: String,
    /// `event` (`connection_opened`, `retry` ...), `origin`, `attempt`, `error_code` ...
    pub fields: serde_json::Value,
    /// When, milliseconds since the Unix epoch.
    pub time_ms: f64,
}

type Tsfn = ThreadsafeFunction<(), (), Vec<LogRecord>, Status, false, true>;

/// Hands the engine's events up to `level` (`off` stops), in batches, to `callback` on the JS
/// thread, for every client of the process; replaces an earlier callback.
#[napi(catch_unwind)]
pub fn set_log_callback(
    level: String,
    callback: Option<Function<'_, Vec<LogRecord>, ()>>,
) -> napi::Result<()> {
    let level = wirecore_bridge::log::parse_level(&level)
        .map_err(|e| napi::Error::new(Status::InvalidArg, e))?;
    let wake = match callback {
        Some(cb) if level > 0 => {
            let tsfn: Tsfn = cb
                .build_threadsafe_function::<()>()
                .weak::<true>()
                .callee_handled::<false>()
                // Runs on the JS thread outside any `#[napi(catch_unwind)]` entry.
                .build_callback(move |_ctx| {
                    std::panic::catch_unwind(|| {
                        wirecore_bridge::log::logs()
                            .queue()
                            .take(usize::MAX)
                            .into_iter()
                            .map(|r| LogRecord {
                                level: r.level.to_owned(),
                                target: r.target.to_owned(),
                                message: r.message,
                                fields: serde_json::Value::Object(r.fields),
                                time_ms: r.time_ms as f64,
                            })
                            .collect()
                    })
                    .map_err(napi::bindgen_prelude::panic_to_error)
                })?;
            let tsfn = Arc::new(tsfn);
            let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
                // Fails only while the JS environment shuts down: nobody is left to tell.
                let _ = tsfn.call((), ThreadsafeFunctionCallMode::NonBlocking);
            });
            Some(wake)
        }
        _ => None,
    };
    let on = wake.is_some();
    wirecore_bridge::log::enable(if on { level } else { 0 }, wake)
        .map_err(|e| napi::Error::new(Status::GenericFailure, e))?;
    if !on {
        // Records queued before the callback went are not for the next one.
        let _ = wirecore_bridge::log::logs().queue().take(usize::MAX);
    }
    Ok(())
}
