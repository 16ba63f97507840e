//! The engine's log records for Kotlin and Java: the bridge's one process-wide queue
//! (`wirecore_bridge::log`), drained on a thread the caller chooses, as C's
//! `wirecore_log_poll` and Go's `SetLogger` do, so no JVM code runs on an engine thread.

use std::time::Duration;

use crate::error::WirecoreError;

/// Records [`log_poll`] returns at most per call.
const MAX_POLL: u32 = 256;

/// One engine event.
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct LogRecord {
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: String,
    /// Where it happened (`wirecore::pool::connect`).
    pub target: String,
    /// What happened, in words.
    pub message: String,
    /// Its fields as a JSON object: `event` (`connection_opened`, `retry` ...), `origin`,
    /// `attempt`, `error_code` ...
    pub fields_json: String,
    /// When, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// Keeps the engine's events up to `level` (`error`, `warn`, `info`, `debug`, `trace`; `off`
/// stops) for [`log_poll`], for every client of the process. Off by default; at most 4096
/// records wait, more are dropped.
///
/// # Errors
/// [`WirecoreError::Config`] (`invalid_config`) for an unknown level.
#[uniffi::export]
pub fn log_enable(level: &str) -> Result<(), WirecoreError> {
    let invalid = |why: String| WirecoreError::Config {
        code: wirecore::ErrorKind::InvalidConfig.code().to_owned(),
        detail: why,
    };
    let level = wirecore_bridge::log::parse_level(level).map_err(invalid)?;
    wirecore_bridge::log::enable(level, None).map_err(invalid)
}

/// Waits up to `timeout_ms` for records on the calling thread and returns those queued (at
/// most `max`, at most 256); empty when none came in time. Call it from a thread of your own
/// (or `Dispatchers.IO`): it blocks.
#[uniffi::export]
pub fn log_poll(timeout_ms: u64, max: u32) -> Vec<LogRecord> {
    let mut got = Vec::new();
    wirecore_bridge::log::logs().queue().wait_with(
        max.clamp(1, MAX_POLL) as usize,
        Some(Duration::from_millis(timeout_ms)),
        |r| {
            got.push(LogRecord {
                level: r.level.to_owned(),
                target: r.target.to_owned(),
                fields_json: r.fields_json(),
                message: r.message,
                time_ms: r.time_ms,
            });
        },
    );
    got
}
