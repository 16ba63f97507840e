//! Config section of the dead-letter sink.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Requests that failed after every retry (an error, or a status `retry.retry_on_status` lists),
/// handed to a callback (each binding's `on_dead_letter`) and, with `redis.url`, to a Redis
/// stream. The request path only queues them; a full queue drops them (counted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// Largest request body kept with a dead letter; a larger or streamed body is left out.
    /// 0: never. At most 16 MiB. Default: 65_536.
    pub max_body_bytes: u64,
    /// Dead letters waiting for delivery; more are dropped. At least 1, at most 1_000_000.
    /// Default: 1_024.
    pub queue: u64,
    /// The Redis stream sink (off while `redis.url` is empty).
    pub redis: DeadLetterRedisConfig,
}

impl Default for DeadLetterConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 << 10,
            queue: 1_024,
            redis: DeadLetterRedisConfig::default(),
        }
    }
}

/// Dead letters appended (`XADD`) to a Redis stream, one entry each with the fields `method`,
/// `url`, `headers` (a JSON array of `[name, value]`, credentials left out), `body` (when kept),
/// `error_code`, `message`, `status` (when it ended with a status), `attempts` and `time_ms`;
/// readable with `XRANGE` / `XREAD` by any process, to replay them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DeadLetterRedisConfig {
    /// `redis://host:port/db`, or `rediss://` for TLS (verified with the same roots as `tls`);
    /// empty: no stream. Default: "".
    pub url: String,
    /// The stream's key. Default: "wirecore:dead-letters".
    pub stream: String,
    /// The stream is trimmed to about this many entries (`MAXLEN ~`); 0: never trimmed. At most
    /// 2^53-1. Default: 100_000.
    pub max_len: u64,
    /// Longest wait for one `XADD`; beyond it the letter is dropped (counted). At least 1, at
    /// most one year. Default: 200.
    pub timeout_ms: u64,
    /// After a Redis failure, letters are dropped (counted) for this long before Redis is tried
    /// again. At most one year. Default: 1_000.
    pub retry_after_ms: u64,
}

impl Default for DeadLetterRedisConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            stream: "wirecore:dead-letters".to_owned(),
            max_len: 100_000,
            timeout_ms: 200,
            retry_after_ms: 1_000,
        }
    }
}

/// The section's own rules beyond the upper bounds: (field, problem).
pub(super) fn validate(c: &DeadLetterConfig) -> Result<(), (&'static str, &'static str)> {
    let r = &c.redis;
    let redis_url = r.url.starts_with("redis://") || r.url.starts_with("rediss://");
    if !r.url.is_empty() && !redis_url {
        return Err((
            "dead_letter.redis.url",
            "must be empty or start with redis:// or rediss://",
        ));
    }
    if r.stream.is_empty() || r.stream.len() > 1024 {
        return Err(("dead_letter.redis.stream", "must be 1 to 1024 bytes"));
    }
    if r.timeout_ms == 0 {
        return Err(("dead_letter.redis.timeout_ms", "must be at least 1"));
    }
    if c.queue == 0 {
        return Err(("dead_letter.queue", "must be at least 1"));
    }
    Ok(())
}
