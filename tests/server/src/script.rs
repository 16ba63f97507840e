//! Scripted replies: the next requests to a path get these replies, in order.
//!
//! Once a path's queue is empty, normal routing resumes for it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::stats::lock;

/// One scripted reply. JSON: `{"status":503,"headers":{"retry-after":"1"},"action":"reset"}`;
/// every field is optional.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Reply {
    /// Status code. Default: 200.
    pub status: u16,
    /// Response headers.
    pub headers: BTreeMap<String, String>,
    /// Body text. Default: empty, unless `body_bytes` is set.
    pub body: Option<String>,
    /// A body of this many pattern bytes, used when `body` is `None`.
    pub body_bytes: Option<usize>,
    /// Wait this long before acting or responding. Default: 0.
    pub delay_ms: u64,
    /// A fault to inject instead of (or around) a normal response.
    pub action: Option<Action>,
}

impl Default for Reply {
    fn default() -> Self {
        Self {
            status: 200,
            headers: BTreeMap::new(),
            body: None,
            body_bytes: None,
            delay_ms: 0,
            action: None,
        }
    }
}

impl Reply {
    /// A reply with this status and an empty body.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::default()
        }
    }

    /// A reply that injects `action`.
    pub fn action(action: Action) -> Self {
        Self {
            action: Some(action),
            ..Self::default()
        }
    }

    /// Adds a response header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Sets the body text.
    #[must_use]
    pub fn body(mut self, body: &str) -> Self {
        self.body = Some(body.to_owned());
        self
    }

    /// Sets a body of `n` pattern bytes.
    #[must_use]
    pub fn body_bytes(mut self, n: usize) -> Self {
        self.body_bytes = Some(n);
        self
    }

    /// Delays the reply by `ms` milliseconds.
    #[must_use]
    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = ms;
        self
    }
}

/// A fault a scripted reply injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// No response: HTTP/1 connections are aborted with a TCP RST, HTTP/2 streams are reset.
    Reset,
    /// Headers and about half the body, then the same abort as `Reset`.
    ResetMidBody,
    /// Never respond (until the client gives up).
    Hang,
    /// Respond, then close the connection (`Connection: close`; HTTP/2 sends GOAWAY).
    Close,
}

/// Queues of scripted replies by path.
#[derive(Debug, Default)]
pub(crate) struct Scripts {
    /// Replies queued over all paths, so the hot path skips the lock when none are.
    pending: AtomicUsize,
    queues: Mutex<HashMap<String, VecDeque<Reply>>>,
}

impl Scripts {
    pub(crate) fn set(&self, path: &str, replies: Vec<Reply>) {
        let mut queues = lock(&self.queues);
        let new = replies.len();
        let old = match queues.insert(path.to_owned(), replies.into()) {
            Some(q) => q.len(),
            None => 0,
        };
        self.pending.fetch_add(new, Ordering::SeqCst);
        self.pending.fetch_sub(old, Ordering::SeqCst);
        queues.retain(|_, q| !q.is_empty());
    }

    /// Takes the next reply for a request to `path_and_query`; an exact match on path and
    /// query wins over a match on the path alone.
    pub(crate) fn take(&self, path: &str, path_and_query: &str) -> Option<Reply> {
        if self.pending.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let mut queues = lock(&self.queues);
        let key = if queues.contains_key(path_and_query) {
            path_and_query
        } else {
            path
        };
        let queue = queues.get_mut(key)?;
        let reply = queue.pop_front()?;
        if queue.is_empty() {
            queues.remove(key);
        }
        self.pending.fetch_sub(1, Ordering::SeqCst);
        Some(reply)
    }

    pub(crate) fn clear(&self) {
        let mut queues = lock(&self.queues);
        queues.clear();
        self.pending.store(0, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_json_defaults_and_actions() {
        let r: Reply = serde_json::from_str(r#"{"action":"reset_mid_body"}"#).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.action, Some(Action::ResetMidBody));
        assert!(serde_json::from_str::<Reply>(r#"{"stauts":200}"#).is_err());
    }

    #[test]
    fn scripts_run_in_order_then_resume_routing() {
        let s = Scripts::default();
        s.set("/x", vec![Reply::status(503), Reply::status(502)]);
        assert_eq!(s.take("/x", "/x?a=1").map(|r| r.status), Some(503));
        assert_eq!(s.take("/x", "/x").map(|r| r.status), Some(502));
        assert!(s.take("/x", "/x").is_none());
        s.set("/y?q=1", vec![Reply::status(418)]);
        assert!(s.take("/y", "/y").is_none());
        assert_eq!(s.take("/y", "/y?q=1").map(|r| r.status), Some(418));
    }
}
