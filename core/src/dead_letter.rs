//! Dead letters: requests that failed after every retry the policy allowed (an error, or a
//! status `retry.retry_on_status` lists), handed to a callback ([`Client::on_dead_letter`]) and
//! to a Redis stream (`dead_letter.redis`), so another process can replay them.
//!
//! Invariant: the request path never waits on a sink. It offers the letter to a bounded queue
//! (a full queue drops it, counted) and one task per client delivers, a callback first, then the
//! stream (through a `redis_link::Link`, bounded by its timeout).
//!
//! [`Client::on_dead_letter`]: crate::Client::on_dead_letter

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderName};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::error::{Error, ErrorKind};
use crate::redis_link::Link;
use crate::request::Request;
use crate::response::Response;

/// A request that failed after every retry.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// `GET`, `POST` ...
    pub method: String,
    /// The request's URL, without userinfo.
    pub url: String,
    /// The request's own headers, without `Authorization`, `Proxy-Authorization` and `Cookie`.
    pub headers: Vec<(String, String)>,
    /// The request body when it was buffered and at most `dead_letter.max_body_bytes`.
    pub body: Option<Bytes>,
    /// The error's code ([`ErrorKind::code`]), or `"status"` when the last answer had a status
    /// the retry policy retries (`status` then holds it).
    pub error_code: String,
    /// The error's message, or the status line.
    pub message: String,
    /// The last answer's status, when there was one.
    pub status: Option<u16>,
    /// Attempts sent (1 when nothing was retried).
    pub attempts: u32,
    /// When it failed, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// A callback for dead letters.
pub type DeadLetterSink = Arc<dyn Fn(&DeadLetter) + Send + Sync>;

/// The callback as the client keeps it: false when it dropped the letter (counted).
pub(crate) type Sink = Arc<dyn Fn(&DeadLetter) -> bool + Send + Sync>;

/// Request headers a dead letter never carries.
const CREDENTIALS: [HeaderName; 3] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
];

/// Kinds that say the request was refused before it could fail: nothing to replay.
const NOT_DEAD: [ErrorKind; 7] = [
    ErrorKind::InvalidConfig,
    ErrorKind::InvalidUrl,
    ErrorKind::InvalidHeader,
    ErrorKind::InvalidRequest,
    ErrorKind::Closed,
    ErrorKind::Cancelled,
    ErrorKind::Internal,
];

tokio::task_local! {
    /// Attempts of the request running in this task, when someone listens for dead letters.
    static ATTEMPTS: Arc<AtomicU32>;
}

/// Counts one attempt of the request running in this task (a no-op when nobody listens).
pub(crate) fn count_attempt() {
    let _ = ATTEMPTS.try_with(|a| a.fetch_add(1, Relaxed));
}

/// Runs `fut` counting its attempts into `attempts`, when given.
pub(crate) async fn counting<F: Future>(attempts: Option<Arc<AtomicU32>>, fut: F) -> F::Output {
    match attempts {
        Some(a) => ATTEMPTS.scope(a, fut).await,
        None => fut.await,
    }
}

/// Counters of the dead-letter sinks, read into `Stats`.
#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    streamed: AtomicU64,
    dropped: AtomicU64,
}

/// A client's dead-letter queue and sinks.
pub(crate) struct DeadLetters {
    tx: mpsc::Sender<DeadLetter>,
    /// Taken by the delivery task when it starts (with the first sink).
    rx: Mutex<Option<mpsc::Receiver<DeadLetter>>>,
    sink: Arc<RwLock<Option<Sink>>>,
    listening: AtomicBool,
    max_body: u64,
    retry: crate::config::RetryConfig,
    stream: Option<Arc<Stream>>,
    counters: Arc<Counters>,
    /// Told when the client closes: the delivery task streams what is queued, then closes the
    /// stream's Redis connection.
    closing: Arc<tokio::sync::Notify>,
}

/// The Redis stream sink.
struct Stream {
    link: Arc<Link>,
    key: String,
    max_len: u64,
}

/// What a listened-to request keeps until it ends, to write its letter if it fails.
pub(crate) struct Pending {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Bytes>,
    pub(crate) attempts: Arc<AtomicU32>,
}

impl DeadLetters {
    pub(crate) fn new(cfg: &Config) -> Result<DeadLetters, Error> {
        let d = &cfg.dead_letter;
        let stream = if d.redis.url.is_empty() {
            None
        } else {
            Some(Arc::new(Stream {
                link: Link::new(
                    "dead_letter.redis.url",
                    &d.redis.url,
                    &cfg.tls,
                    Duration::from_millis(d.redis.timeout_ms),
                    Duration::from_millis(d.redis.retry_after_ms),
                )?,
                key: d.redis.stream.clone(),
                max_len: d.redis.max_len,
            }))
        };
        let (tx, rx) = mpsc::channel(usize::try_from(d.queue).unwrap_or(usize::MAX).max(1));
        let me = DeadLetters {
            tx,
            rx: Mutex::new(Some(rx)),
            sink: Arc::new(RwLock::new(None)),
            listening: AtomicBool::new(false),
            max_body: d.max_body_bytes,
            retry: cfg.retry.clone(),
            stream,
            counters: Arc::new(Counters::default()),
            closing: Arc::new(tokio::sync::Notify::new()),
        };
        if me.stream.is_some() {
            me.start();
        }
        Ok(me)
    }

    /// Sets the callback (replacing an earlier one) and starts delivering.
    pub(crate) fn set_sink(&self, sink: Sink) {
        *self.sink.write().unwrap_or_else(PoisonError::into_inner) = Some(sink);
        self.start();
    }

    /// Starts the delivery task once.
    fn start(&self) {
        let Some(mut rx) = self
            .rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        self.listening.store(true, Relaxed);
        let (sink, stream, counters, closing) = (
            self.sink.clone(),
            self.stream.clone(),
            self.counters.clone(),
            self.closing.clone(),
        );
        crate::runtime::handle().spawn(async move {
            let deliver = async |letter: DeadLetter| {
                let f = sink.read().unwrap_or_else(PoisonError::into_inner).clone();
                if let Some(f) = f {
                    let called =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&letter)));
                    let c = if called.unwrap_or(false) {
                        &counters.delivered
                    } else {
                        &counters.dropped
                    };
                    c.fetch_add(1, Relaxed);
                }
                if let Some(s) = &stream {
                    let c = if s.add(&letter).await {
                        &counters.streamed
                    } else {
                        &counters.dropped
                    };
                    c.fetch_add(1, Relaxed);
                }
            };
            // Ends when the client is gone (its sender dropped).
            loop {
                tokio::select! {
                    letter = rx.recv() => match letter {
                        Some(l) => deliver(l).await,
                        None => break,
                    },
                    () = closing.notified() => {
                        // The client closed: what is queued still goes out, then the stream's
                        // connection closes (a letter after that is dropped, counted).
                        while let Ok(l) = rx.try_recv() {
                            deliver(l).await;
                        }
                        if let Some(s) = &stream {
                            s.link.close();
                        }
                    }
                }
            }
        });
    }

    /// The client closed (its requests have ended or been given up on): see `closing`.
    pub(crate) fn close(&self) {
        self.closing.notify_one();
    }

    /// What `req` must keep to become a letter; `None` while nobody listens.
    pub(crate) fn pending(&self, req: &Request) -> Option<Pending> {
        if !self.listening.load(Relaxed) {
            return None;
        }
        let headers = req
            .headers
            .iter()
            .filter(|(k, _)| !CREDENTIALS.contains(k))
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = req
            .body
            .full_bytes()
            .filter(|b| !b.is_empty() && b.len() as u64 <= self.max_body);
        Some(Pending {
            method: req.method.as_str().to_owned(),
            url: without_userinfo(&req.uri),
            headers,
            body,
            attempts: Arc::new(AtomicU32::new(0)),
        })
    }

    /// Queues the letter of a request that ended with `res`, if it failed.
    pub(crate) fn offer(&self, p: Pending, res: &Result<Response, Error>) {
        let attempts = p.attempts.load(Relaxed);
        let (error_code, message, status) = match res {
            Err(e) if NOT_DEAD.contains(&e.kind()) => return,
            Err(e) => (e.kind().code().to_owned(), e.message().to_owned(), None),
            Ok(r) => {
                let s = r.status();
                let retried = s == http::StatusCode::TOO_MANY_REQUESTS && self.retry.retry_on_429
                    || self.retry.retry_on_status.contains(&s.as_u16());
                // A stored answer (attempts 0) was not a failure of this request.
                if !retried || attempts == 0 {
                    return;
                }
                ("status".to_owned(), s.to_string(), Some(s.as_u16()))
            }
        };
        let letter = DeadLetter {
            method: p.method,
            url: p.url,
            headers: p.headers,
            body: p.body,
            error_code,
            message,
            status,
            attempts,
            time_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        };
        if self.tx.try_send(letter).is_err() {
            self.counters.dropped.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn stats(&self) -> crate::metrics::DeadLetterStats {
        let c = &self.counters;
        crate::metrics::DeadLetterStats {
            delivered: c.delivered.load(Relaxed),
            streamed: c.streamed.load(Relaxed),
            dropped: c.dropped.load(Relaxed),
            redis_errors: self
                .stream
                .as_ref()
                .map_or(0, |s| s.link.errors.load(Relaxed)),
        }
    }
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters").finish_non_exhaustive()
    }
}

impl Stream {
    /// `XADD`s the letter; false when Redis was skipped or failed.
    async fn add(&self, l: &DeadLetter) -> bool {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.key);
        if self.max_len > 0 {
            cmd.arg("MAXLEN").arg("~").arg(self.max_len);
        }
        let headers = serde_json::to_string(&l.headers).unwrap_or_default();
        cmd.arg("*")
            .arg("method")
            .arg(&l.method)
            .arg("url")
            .arg(&l.url)
            .arg("headers")
            .arg(headers);
        if let Some(b) = &l.body {
            cmd.arg("body").arg(&b[..]);
        }
        cmd.arg("error_code")
            .arg(&l.error_code)
            .arg("message")
            .arg(&l.message);
        if let Some(s) = l.status {
            cmd.arg("status").arg(s);
        }
        cmd.arg("attempts")
            .arg(l.attempts)
            .arg("time_ms")
            .arg(l.time_ms);
        self.link
            .call(move |mut c| async move { cmd.query_async::<redis::Value>(&mut c).await })
            .await
            .is_some()
    }
}

fn without_userinfo(uri: &http::Uri) -> String {
    match uri.authority() {
        Some(a) if a.as_str().contains('@') => {
            let host = a.as_str().rsplit('@').next().unwrap_or("");
            let scheme = uri.scheme_str().unwrap_or("http");
            let path = uri.path_and_query().map_or("/", |p| p.as_str());
            format!("{scheme}://{host}{path}")
        }
        _ => uri.to_string(),
    }
}
