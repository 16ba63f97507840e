//! A Redis connection that never holds a request up: every command is bounded by a timeout,
//! a failure skips Redis for a while (counted), and connecting runs in a task of its own that
//! a caller's timeout never cancels. Used by the cache's second level and the dead-letter stream.
//!
//! One timer per command: the link's own (`call`), cut short by the caller's deadline when that
//! comes first (`call_until`). The Redis connection manager arms none of its own (its response
//! timeout is off): a command it still waits for when the link gives up is answered later on
//! the same connection, in order, and its answer dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::config::TlsConfig;
use crate::error::Error;

/// A connection attempt may take this long (at least the command timeout): it runs in the
/// background.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// See the module docs.
pub(crate) struct Link {
    client: redis::Client,
    /// The connection, made on first use; `None` once closed (dropping the manager closes its
    /// socket: a closed client must not hold it until it is dropped, which a garbage-collected
    /// binding does late).
    conn: std::sync::Mutex<Option<Arc<OnceCell<ConnectionManager>>>>,
    timeout: Duration,
    retry_after: Duration,
    born: Instant,
    /// Milliseconds after `born` until which Redis is skipped.
    down_until_ms: AtomicU64,
    /// Commands that failed or timed out.
    pub(crate) errors: AtomicU64,
    /// Commands skipped because Redis failed less than `retry_after` ago.
    pub(crate) bypassed: AtomicU64,
}

impl Link {
    /// A link to `url` (the config field `field`, named in errors); nothing connects yet.
    pub(crate) fn new(
        field: &str,
        url: &str,
        tls: &TlsConfig,
        timeout: Duration,
        retry_after: Duration,
    ) -> Result<Arc<Link>, Error> {
        Ok(Arc::new(Link {
            client: crate::policy::ratelimit::redis_client(url, tls, field)?,
            conn: std::sync::Mutex::new(Some(Arc::new(OnceCell::new()))),
            timeout,
            retry_after,
            born: Instant::now(),
            down_until_ms: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            bypassed: AtomicU64::new(0),
        }))
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether Redis is being skipped after a failure.
    pub(crate) fn is_down(&self) -> bool {
        self.now_ms() < self.down_until_ms.load(Relaxed)
    }

    fn failed(&self) {
        self.errors.fetch_add(1, Relaxed);
        let until = self
            .now_ms()
            .saturating_add(u64::try_from(self.retry_after.as_millis()).unwrap_or(u64::MAX));
        self.down_until_ms.store(until, Relaxed);
    }

    /// Closes the connection: commands running finish on it, later ones are skipped (counted
    /// in `bypassed`), and nothing connects again.
    pub(crate) fn close(&self) {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }

    fn cell(&self) -> Option<Arc<OnceCell<ConnectionManager>>> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The connection, opened in a task of its own: a caller that stops waiting leaves it to
    /// finish for the next one.
    async fn connection(
        self: &Arc<Self>,
        cell: Arc<OnceCell<ConnectionManager>>,
    ) -> Result<ConnectionManager, String> {
        if let Some(c) = cell.get() {
            return Ok(c.clone());
        }
        let me = self.clone();
        let task = tokio::spawn(async move {
            cell.get_or_try_init(|| async {
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT.max(me.timeout)))
                    .set_response_timeout(None)
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(200));
                me.client.get_connection_manager_with_config(cfg).await
            })
            .await
            .cloned()
            .map_err(|e| e.to_string())
        });
        task.await.map_err(|e| e.to_string())?
    }

    /// Runs one command within the timeout; `None` (counted) when Redis is skipped or fails.
    pub(crate) async fn call<T, F, Fut>(self: &Arc<Self>, cmd: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        match self.call_until(None, cmd).await {
            Called::Done(v) => Some(v),
            Called::Skipped | Called::Failed | Called::Late => None,
        }
    }

    /// Runs one command within the timeout or until `cut`, whichever comes first, under one
    /// timer. Redis failing or the timeout passing is counted (and skips Redis for
    /// `retry_after`); `cut` passing first is the caller's deadline, not Redis's fault:
    /// nothing is counted (`Late`).
    pub(crate) async fn call_until<T, F, Fut>(
        self: &Arc<Self>,
        cut: Option<Instant>,
        cmd: F,
    ) -> Called<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let cell = self.cell().filter(|_| !self.is_down());
        let Some(cell) = cell else {
            self.bypassed.fetch_add(1, Relaxed);
            return Called::Skipped;
        };
        let own = Instant::now() + self.timeout;
        let at = cut.map_or(own, |c| c.min(own));
        let run = async {
            let c = self.connection(cell).await?;
            cmd(c).await.map_err(|e| e.to_string())
        };
        match tokio::time::timeout_at(at, run).await {
            Ok(Ok(v)) => Called::Done(v),
            Err(_) if at < own => Called::Late,
            Ok(Err(_)) | Err(_) => {
                self.failed();
                Called::Failed
            }
        }
    }
}

/// How a command through the link ended.
pub(crate) enum Called<T> {
    Done(T),
    /// Redis is being skipped after a failure, or the link is closed (counted in `bypassed`).
    Skipped,
    /// Redis failed or did not answer within the timeout (counted in `errors`).
    Failed,
    /// The caller's deadline passed first (nothing counted).
    Late,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
