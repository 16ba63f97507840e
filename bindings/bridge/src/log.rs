//! The engine's `tracing` events for a binding's logger: one process-wide collector queues
//! them (bounded; more are dropped and counted) and the host takes them on its own thread
//! (a Python thread, the JS thread through a wake-up, a Go goroutine, a C caller), the way
//! dead letters go (`Letters`): no host code ever runs on an engine thread.
//!
//! Off until [`enable`]: the collector then tells `tracing` which levels it wants, so an event
//! below that level (or any event while off) costs what a disabled `tracing` call costs.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU8, AtomicU64};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record as SpanRecord};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use crate::Batch;

/// Records queued at most; more are dropped (see [`Logs::dropped`]).
pub const LOG_QUEUE: usize = 4_096;

/// One engine event.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRecord {
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: &'static str,
    /// Where it happened (`wirecore::pool::connect`).
    pub target: &'static str,
    /// What happened, in words.
    pub message: String,
    /// Its fields: `event` (`connection_opened`, `retry` ...), `origin`, `attempt` ...
    pub fields: Map<String, Value>,
    /// When, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

impl LogRecord {
    /// The fields as a JSON object (for the C ABI and Go).
    pub fn fields_json(&self) -> String {
        serde_json::to_string(&self.fields).unwrap_or_else(|_| "{}".to_owned())
    }
}

type Wake = Arc<dyn Fn() + Send + Sync>;

/// The process's queue of records; see the module docs.
pub struct Logs {
    queue: Batch<LogRecord>,
    /// 0 off, then 1 (error) .. 5 (trace): the most verbose level kept.
    level: AtomicU8,
    dropped: AtomicU64,
    wake: RwLock<Option<Wake>>,
}

impl std::fmt::Debug for Logs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logs")
            .field("level", &self.level)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

static LOGS: OnceLock<Logs> = OnceLock::new();
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// The process's records (empty while logging is off).
pub fn logs() -> &'static Logs {
    LOGS.get_or_init(|| Logs {
        queue: Batch::default(),
        level: AtomicU8::new(0),
        dropped: AtomicU64::new(0),
        wake: RwLock::new(None),
    })
}

/// Parses a level name (`error`, `warn`, `info`, `debug`, `trace`; `off` is 0).
///
/// # Errors
/// The message to show for any other name.
pub fn parse_level(name: &str) -> Result<u8, String> {
    match name.to_ascii_lowercase().as_str() {
        "off" => Ok(0),
        "error" => Ok(1),
        "warn" | "warning" => Ok(2),
        "info" => Ok(3),
        "debug" => Ok(4),
        "trace" => Ok(5),
        _ => Err(format!(
            "log level {name:?}: expected off, error, warn, info, debug or trace"
        )),
    }
}

fn rank(l: Level) -> u8 {
    match l {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

/// Starts queueing the engine's events up to `level` (see [`parse_level`]; 0 stops), calling
/// `wake` (on an engine thread) when a record starts a batch. Replaces an earlier level and
/// wake-up.
///
/// # Errors
/// When another `tracing` subscriber was installed process-wide first.
pub fn enable(level: u8, wake: Option<Wake>) -> Result<(), String> {
    let l = logs();
    *l.wake.write().unwrap_or_else(PoisonError::into_inner) = wake;
    l.level.store(level.min(5), Relaxed);
    let ok = *INSTALLED.get_or_init(|| {
        tracing::dispatcher::set_global_default(tracing::Dispatch::new(Collector)).is_ok()
    });
    // Callsites cached as never (or always) ask again.
    tracing::callsite::rebuild_interest_cache();
    if ok {
        Ok(())
    } else {
        Err("another tracing subscriber is installed in this process".to_owned())
    }
}

impl Logs {
    /// The queue the host takes records from.
    pub fn queue(&self) -> &Batch<LogRecord> {
        &self.queue
    }

    /// Records dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    fn wants(&self, meta: &Metadata<'_>) -> bool {
        meta.target().starts_with("wirecore") && rank(*meta.level()) <= self.level.load(Relaxed)
    }

    fn push(&self, r: LogRecord) {
        if self.queue.len() >= LOG_QUEUE {
            self.dropped.fetch_add(1, Relaxed);
            return;
        }
        if self.queue.push(r) {
            let wake = self
                .wake
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if let Some(w) = wake {
                w();
            }
        }
    }
}

/// The process-wide `tracing` subscriber: events of `wirecore*` targets into [`logs`]; spans
/// are not kept.
struct Collector;

impl Subscriber for Collector {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if logs().wants(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(match logs().level.load(Relaxed) {
            0 => LevelFilter::OFF,
            1 => LevelFilter::ERROR,
            2 => LevelFilter::WARN,
            3 => LevelFilter::INFO,
            4 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        })
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        logs().wants(meta)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &SpanRecord<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let mut v = Fields::default();
        event.record(&mut v);
        let time_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        logs().push(LogRecord {
            level: match *meta.level() {
                Level::ERROR => "error",
                Level::WARN => "warn",
                Level::INFO => "info",
                Level::DEBUG => "debug",
                Level::TRACE => "trace",
            },
            target: meta.target(),
            message: v.message,
            fields: v.fields,
            time_ms,
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: Map<String, Value>,
}

impl Fields {
    fn put(&mut self, f: &Field, v: Value) {
        if f.name() == "message" {
            self.message = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
        } else {
            self.fields.insert(f.name().to_owned(), v);
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        self.put(f, Value::String(format!("{v:?}")));
    }

    fn record_str(&mut self, f: &Field, v: &str) {
        self.put(f, Value::String(v.to_owned()));
    }

    fn record_u64(&mut self, f: &Field, v: u64) {
        self.put(f, Value::from(v));
    }

    fn record_i64(&mut self, f: &Field, v: i64) {
        self.put(f, Value::from(v));
    }

    fn record_f64(&mut self, f: &Field, v: f64) {
        self.put(f, Value::from(v));
    }

    fn record_bool(&mut self, f: &Field, v: bool) {
        self.put(f, Value::from(v));
    }
}
