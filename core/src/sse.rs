//! Server-Sent Events: the one parser every binding reads events through ([`Parser`], the
//! WHATWG HTML event-stream rules), and [`EventStream`], which reads events from a response
//! body and, for a `GET`, reconnects when the body ends or breaks, with `Last-Event-ID` and after
//! the server's `retry:` delay, as `EventSource` does.
//!
//! Lines and events are bounded (`decode` beyond [`Options::max_event_bytes`]), and so are
//! reconnections in a row without an event ([`Options::max_reconnects`]).

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::StreamExt;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Uri};

use crate::body::Body;
use crate::client::Client;
use crate::error::{Error, ErrorKind};
use crate::request::{Request, RequestOptions};

/// One event, as dispatched at a blank line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// The `event:` field, `"message"` when none was given.
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The last event ID at dispatch (the latest `id:` of the stream, not only of this event);
    /// empty when none.
    pub id: String,
    /// A `retry:` (milliseconds) given in this event's block, if any.
    pub retry: Option<u64>,
}

/// Bounds and delays of an [`EventStream`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Wait before reconnecting while the server sent no `retry:`. Default: 3 s.
    pub retry: Duration,
    /// The longest wait a server's `retry:` may ask for. Default: 60 s.
    pub max_retry: Duration,
    /// Reconnections in a row without an event between them before the stream ends (with
    /// the last failure, if any); 0 never reconnects. Default: 5.
    pub max_reconnects: u32,
    /// The longest line, and the longest data of one event, in bytes (`decode` beyond).
    /// Default: 1 MiB.
    pub max_event_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            retry: Duration::from_secs(3),
            max_retry: Duration::from_mins(1),
            max_reconnects: 5,
            max_event_bytes: 1 << 20,
        }
    }
}

/// An incremental event-stream parser: [`feed`](Parser::feed) bytes as they arrive, take
/// events with [`next_event`](Parser::next_event). Lines end in CRLF, LF or CR (a CRLF split
/// across two chunks is one line end); a leading byte-order mark is skipped; comments and
/// unknown fields are ignored; invalid UTF-8 becomes U+FFFD.
#[derive(Debug)]
pub struct Parser {
    line: Vec<u8>,
    /// The last byte fed was a CR: an LF first in the next chunk ends nothing.
    after_cr: bool,
    /// No line completed yet on this connection (the place of a byte-order mark).
    first_line: bool,
    data: String,
    event: String,
    has_data: bool,
    block_retry: Option<u64>,
    last_id: String,
    retry: Option<u64>,
    ready: VecDeque<Event>,
    max: usize,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new(Options::default().max_event_bytes)
    }
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl Parser {
    /// A parser refusing lines and event data longer than `max_bytes`.
    #[must_use]
    pub fn new(max_bytes: usize) -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            first_line: true,
            data: String::new(),
            event: String::new(),
            has_data: false,
            block_retry: None,
            last_id: String::new(),
            retry: None,
            ready: VecDeque::new(),
            max: max_bytes,
        }
    }

    /// Parses `chunk`; complete events queue up for [`next_event`](Self::next_event).
    ///
    /// # Errors
    /// `decode` when a line or an event's data exceeds the bound.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<(), Error> {
        if self.after_cr && chunk.first() == Some(&b'\n') {
            chunk = &chunk[1..];
        }
        self.after_cr = false;
        while let Some(i) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (head, rest) = chunk.split_at(i);
            self.push_line_bytes(head)?;
            let line = std::mem::take(&mut self.line);
            self.line_done(&line)?;
            self.line = line;
            self.line.clear();
            chunk = &rest[1..];
            if rest[0] == b'\r' {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
        }
        self.push_line_bytes(chunk)
    }

    fn push_line_bytes(&mut self, b: &[u8]) -> Result<(), Error> {
        if self.line.len() + b.len() > self.max {
            return Err(too_long("line", self.max));
        }
        self.line.extend_from_slice(b);
        Ok(())
    }

    /// The next complete event, if any.
    pub fn next_event(&mut self) -> Option<Event> {
        self.ready.pop_front()
    }

    /// The last event ID so far (empty when none): what a reconnection sends as
    /// `Last-Event-ID`.
    #[must_use]
    pub fn last_event_id(&self) -> &str {
        &self.last_id
    }

    /// The latest `retry:` of the stream, in milliseconds.
    #[must_use]
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// The end of one connection's stream: an unfinished line or event is dropped (never
    /// dispatched); the last event ID and `retry:` carry over to the next connection.
    pub fn end_of_stream(&mut self) {
        self.line.clear();
        self.after_cr = false;
        self.first_line = true;
        self.data.clear();
        self.event.clear();
        self.has_data = false;
        self.block_retry = None;
    }

    fn line_done(&mut self, mut line: &[u8]) -> Result<(), Error> {
        if std::mem::take(&mut self.first_line) && line.starts_with(BOM) {
            line = &line[BOM.len()..];
        }
        if line.is_empty() {
            self.dispatch();
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"data" => {
                if self.data.len() + value.len() + 1 > self.max {
                    return Err(too_long("event's data", self.max));
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(value));
                self.has_data = true;
            }
            b"id" if !value.contains(&0) => {
                self.last_id = String::from_utf8_lossy(value).into_owned();
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                let ms = std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .unwrap_or(u64::MAX);
                self.retry = Some(ms);
                self.block_retry = Some(ms);
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self) {
        let retry = self.block_retry.take();
        if !std::mem::take(&mut self.has_data) {
            self.event.clear();
            return;
        }
        let event = std::mem::take(&mut self.event);
        self.ready.push_back(Event {
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data: std::mem::take(&mut self.data),
            id: self.last_id.clone(),
            retry,
        });
    }
}

fn too_long(what: &str, max: usize) -> Error {
    Error::new(
        ErrorKind::Decode,
        format!("an event-stream {what} is longer than {max} bytes"),
    )
}

/// What a reconnection sends: the `GET` as it went out last (after redirects), by the same
/// client. Kept in the response body of an event stream only.
#[derive(Debug)]
pub(crate) struct Resume {
    pub(crate) client: Client,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) options: RequestOptions,
    pub(crate) default_headers: bool,
}

/// Whether a response's `Content-Type` is `text/event-stream` (parameters after `;` aside, the
/// whole value visible ASCII). Every GET answered 200 asks, so it compares the value's first
/// bytes and checks its characters only when the type matches (the `to_str`, `split` and
/// Unicode `trim` it used were ≈ 600 instructions per request).
pub fn is_event_stream(headers: &HeaderMap) -> bool {
    const TYPE: &[u8] = b"text/event-stream";
    let Some(v) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    // A visible-ASCII value holds no whitespace but spaces and tabs, which the `trim_ascii`
    // calls trim as `str::trim` did.
    let Some((media, rest)) = v.as_bytes().trim_ascii_start().split_at_checked(TYPE.len()) else {
        return false;
    };
    media.eq_ignore_ascii_case(TYPE)
        && rest
            .iter()
            .position(|&c| c == b';')
            .map_or(rest, |i| &rest[..i])
            .trim_ascii()
            .is_empty()
        && v.to_str().is_ok()
}

/// Failures after which a reconnection may succeed: the peer ([`ErrorKind::is_transport`]; a
/// TLS failure aside, which would only repeat), a deadline, a full pool.
fn reconnectable(kind: ErrorKind) -> bool {
    kind != ErrorKind::Tls
        && (kind.is_transport() || matches!(kind, ErrorKind::TimeoutTotal | ErrorKind::TimeoutPool))
}

/// The events of a response body, reconnecting as `EventSource` does when the response answered
/// a `GET`: when the body ends or breaks (the network, the peer, a deadline) it waits the
/// server's `retry:` (else [`Options::retry`]) and sends the request again with
/// `Last-Event-ID`. A `204` answer ends the stream; another non-`200` answer, or one that is
/// not `text/event-stream`, fails it with `protocol`.
#[derive(Debug)]
pub struct EventStream {
    parser: Parser,
    body: Option<Body>,
    resume: Option<Box<Resume>>,
    options: Options,
    /// Reconnections since the last event.
    reconnects: u32,
    /// The failure that ended the last connection or reconnection.
    failure: Option<Error>,
    done: bool,
}

impl EventStream {
    /// The events of `body` after `prefix` (bytes of it already read).
    pub fn new(prefix: &[u8], mut body: Body) -> Self {
        let resume = body.take_resume();
        let mut s = Self {
            parser: Parser::default(),
            body: Some(body),
            resume,
            options: Options::default(),
            reconnects: 0,
            failure: None,
            done: false,
        };
        if let Err(e) = s.parser.feed(prefix) {
            s.fail(e);
        }
        s
    }

    /// The events of a body already read whole (no reconnection).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut s = Self {
            parser: Parser::default(),
            body: None,
            resume: None,
            options: Options::default(),
            reconnects: 0,
            failure: None,
            done: true,
        };
        if let Err(e) = s.parser.feed(bytes) {
            s.parser.ready.clear();
            s.failure = Some(e);
        }
        s
    }

    /// Replaces the bounds and delays (see [`Options`]).
    #[must_use]
    pub fn options(mut self, options: Options) -> Self {
        self.parser.max = options.max_event_bytes;
        self.options = options;
        self
    }

    /// The last event ID so far (empty when none).
    #[must_use]
    pub fn last_event_id(&self) -> &str {
        self.parser.last_event_id()
    }

    /// Whether the stream reconnects (the response answered a `GET`).
    #[must_use]
    pub fn reconnects(&self) -> bool {
        self.resume.is_some()
    }

    /// The next event; `None` once the stream has ended (and will not reconnect).
    ///
    /// # Errors
    /// `decode` for a line or event over the bound; the failure that ended the stream when
    /// no reconnection is left; `protocol` when a reconnection was answered with something
    /// else than an event stream. After an error the stream has ended.
    pub async fn next(&mut self) -> Result<Option<Event>, Error> {
        loop {
            if let Some(ev) = self.parser.next_event() {
                self.reconnects = 0;
                self.failure = None;
                return Ok(Some(ev));
            }
            if self.done {
                return match self.failure.take() {
                    Some(e) => Err(e),
                    None => Ok(None),
                };
            }
            if let Some(body) = self.body.as_mut() {
                match body.next().await {
                    Some(Ok(chunk)) => {
                        if let Err(e) = self.parser.feed(&chunk) {
                            self.fail(e);
                        }
                    }
                    Some(Err(e)) => {
                        self.body = None;
                        self.parser.end_of_stream();
                        if reconnectable(e.kind()) && self.resume.is_some() {
                            self.failure = Some(e);
                        } else {
                            self.fail(e);
                        }
                    }
                    None => {
                        self.body = None;
                        self.parser.end_of_stream();
                        if self.resume.is_none() {
                            self.done = true;
                        }
                    }
                }
                continue;
            }
            self.reconnect().await;
        }
    }

    fn fail(&mut self, e: Error) {
        self.body = None;
        self.failure = Some(e);
        self.done = true;
    }

    /// One reconnection attempt (after the wait); sets the body, or the failure.
    async fn reconnect(&mut self) {
        let Some(resume) = self.resume.as_deref() else {
            self.done = true;
            return;
        };
        if self.reconnects >= self.options.max_reconnects {
            self.done = true;
            return;
        }
        let wait = self.parser.retry().map_or(self.options.retry, |ms| {
            Duration::from_millis(ms).min(self.options.max_retry)
        });
        tokio::time::sleep(wait).await;
        self.reconnects += 1;
        let mut req = match Request::new(Method::GET, &resume.uri.to_string()) {
            Ok(r) => r,
            Err(e) => return self.fail(e),
        };
        *req.headers_mut() = resume.headers.clone();
        *req.options_mut() = resume.options.clone();
        *req.default_headers_mut() = resume.default_headers;
        let id = self.parser.last_event_id();
        req.headers_mut().remove("last-event-id");
        if !id.is_empty()
            && let Ok(v) = HeaderValue::from_str(id)
        {
            req.headers_mut().insert("last-event-id", v);
        }
        match resume.client.execute(req).await {
            Ok(resp) if resp.status == StatusCode::NO_CONTENT => {
                self.failure = None;
                self.done = true;
            }
            Ok(resp) if resp.status == StatusCode::OK && is_event_stream(&resp.headers) => {
                let mut body = resp.body;
                // Keep the first response's resume: the new body carries its own copy.
                drop(body.take_resume());
                self.body = Some(body);
            }
            Ok(resp) => {
                let ct = resp
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_owned();
                self.fail(Error::new(
                    ErrorKind::Protocol,
                    format!(
                        "reconnecting the event stream got status {} and content-type {ct}, not 200 text/event-stream",
                        resp.status.as_u16()
                    ),
                ));
            }
            Err(e) if reconnectable(e.kind()) => self.failure = Some(e),
            Err(e) => self.fail(e),
        }
    }

    /// The events as a `Stream`.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = Result<Event, Error>> + Send {
        futures_util::stream::unfold(Some(self), |s| async move {
            let mut s = s?;
            match s.next().await {
                Ok(Some(ev)) => Some((Ok(ev), Some(s))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
    }
}

#[cfg(test)]
mod tests;
