//! One error type with a stable code per kind.
//!
//! The kind is decided where the error is created, so no predicate walks a `source()` chain.
//! Codes are a contract with every binding: never rename one.

use std::fmt;

/// A boxed error cause.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The result type of wirecore.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from wirecore. `Display` prints this level only; causes are in `source()`.
/// The message text is not stable: match on [`Error::kind`].
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<BoxError>,
    /// The request provably never reached the server (safe to retry whatever the method).
    unsent: bool,
    /// A definitive refusal (a proxy's 407): retrying at once would only repeat it.
    definitive: bool,
}

macro_rules! kinds {
    ($( $(#[$doc:meta])* $variant:ident => $code:literal, )*) => {
        /// What went wrong, with a stable string [`code`](ErrorKind::code).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorKind {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorKind {
            /// Every kind, so bindings can test that each maps to their idiom.
            pub const ALL: &'static [ErrorKind] = &[ $( ErrorKind::$variant, )* ];

            /// The stable code (`"timeout.connect"`, `"circuit_open"`, ...).
            pub const fn code(self) -> &'static str {
                match self { $( ErrorKind::$variant => $code, )* }
            }

            /// The kind with this code, if any.
            pub fn from_code(code: &str) -> Option<ErrorKind> {
                match code { $( $code => Some(ErrorKind::$variant), )* _ => None }
            }
        }
    };
}

kinds! {
    /// A config field is unknown, of the wrong type, or out of range.
    InvalidConfig => "invalid_config",
    /// The URL cannot be parsed or is not http/https.
    InvalidUrl => "invalid_url",
    /// A header name or value is malformed.
    InvalidHeader => "invalid_header",
    /// A request argument other than URL and headers is malformed (method, body).
    InvalidRequest => "invalid_request",
    /// The name did not resolve.
    Dns => "dns",
    /// TCP connect failed (refused, unreachable).
    Connect => "connect",
    /// TLS handshake or certificate verification failed.
    Tls => "tls",
    /// The connection failed after it was established (reset, closed mid-message).
    Io => "io",
    /// The peer violated HTTP (malformed response, h2 protocol error).
    Protocol => "protocol",
    /// The whole request exceeded `timeouts.total_ms`.
    TimeoutTotal => "timeout.total",
    /// TCP connect exceeded `timeouts.connect_ms`.
    TimeoutConnect => "timeout.connect",
    /// TLS handshake exceeded `timeouts.tls_handshake_ms`.
    TimeoutTls => "timeout.tls",
    /// No byte of the response arrived within `timeouts.read_idle_ms`.
    TimeoutRead => "timeout.read",
    /// No connection became available within `timeouts.pool_acquire_ms`.
    TimeoutPool => "timeout.pool",
    /// The response body could not be decoded (corrupt compression, invalid UTF-8 or JSON).
    Decode => "decode",
    /// The response body exceeded `limits.max_response_body_bytes`.
    BodyTooLarge => "body_too_large",
    /// More than `redirect.max` (or `max_redirects`) redirects, or any redirect under the
    /// request's `redirect` policy `"error"`.
    TooManyRedirects => "too_many_redirects",
    /// The client was closed.
    Closed => "closed",
    /// The caller cancelled the request.
    Cancelled => "cancelled",
    /// The origin's circuit breaker is open.
    CircuitOpen => "circuit_open",
    /// A rate limit refused the request.
    RateLimited => "rate_limited",
    /// The concurrency limit refused the request.
    Overloaded => "overloaded",
    /// A redirect from https to http while `redirect.allow_downgrade` is false.
    RedirectDowngrade => "redirect_downgrade",
    /// A bug in wirecore (a caught panic, a broken invariant).
    Internal => "internal",
}

impl ErrorKind {
    /// The exchange with the peer failed: no usable answer came (name, connect, TLS, I/O,
    /// protocol, or a connect, TLS or read timeout). What balancing counts against an endpoint
    /// and what a breaker counts as a failure (the breaker adds `timeout.total`).
    pub fn is_transport(self) -> bool {
        matches!(
            self,
            ErrorKind::Dns
                | ErrorKind::Connect
                | ErrorKind::Tls
                | ErrorKind::Io
                | ErrorKind::Protocol
                | ErrorKind::TimeoutConnect
                | ErrorKind::TimeoutTls
                | ErrorKind::TimeoutRead
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Error {
    /// Creates an error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                source: None,
                unsent: false,
                definitive: false,
            }),
        }
    }

    /// Marks a refusal that a retry would only repeat (see `policy::retry::classify_error`).
    pub(crate) fn definitive(mut self) -> Error {
        self.inner.definitive = true;
        self
    }

    pub(crate) fn is_definitive(&self) -> bool {
        self.inner.definitive
    }

    pub(crate) fn unsent(mut self) -> Error {
        self.inner.unsent = true;
        self
    }

    /// The request provably never reached the server: connect, DNS or TLS failed, or the
    /// server refused the stream. Such a failure is safe to retry whatever the method.
    pub fn is_unsent(&self) -> bool {
        self.inner.unsent
            || matches!(
                self.kind(),
                ErrorKind::Dns
                    | ErrorKind::Connect
                    | ErrorKind::TimeoutConnect
                    | ErrorKind::TimeoutTls
                    | ErrorKind::Tls
                    | ErrorKind::TimeoutPool
                    | ErrorKind::CircuitOpen
                    | ErrorKind::RateLimited
                    | ErrorKind::Overloaded
            )
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Error {
        self.inner.source = Some(source.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The stable code of the kind.
    pub fn code(&self) -> &'static str {
        self.inner.kind.code()
    }

    /// The message of this level, without causes.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The message with every cause appended (`a: b: c`), for bindings that show one string.
    pub fn full_message(&self) -> String {
        let mut s = self.inner.message.clone();
        let mut cur = std::error::Error::source(self);
        while let Some(e) = cur {
            let t = e.to_string();
            if !s.contains(&t) {
                s.push_str(": ");
                s.push_str(&t);
            }
            cur = e.source();
        }
        s
    }

    /// Any timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::TimeoutTotal
                | ErrorKind::TimeoutConnect
                | ErrorKind::TimeoutTls
                | ErrorKind::TimeoutRead
                | ErrorKind::TimeoutPool
        )
    }

    /// A failure before the request left this process (DNS, connect, pool), so it is safe to
    /// retry whatever the method.
    pub fn is_connect(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::Dns | ErrorKind::Connect | ErrorKind::TimeoutConnect
        )
    }

    /// Rejected input, never worth retrying.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::InvalidConfig
                | ErrorKind::InvalidUrl
                | ErrorKind::InvalidHeader
                | ErrorKind::InvalidRequest
        )
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("wirecore::Error");
        d.field("kind", &self.inner.kind.code());
        d.field("message", &self.inner.message);
        if let Some(s) = &self.inner.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.inner.message, self.inner.kind.code())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|e| &**e as &(dyn std::error::Error + 'static))
    }
}

pub(crate) fn config(msg: impl Into<String>) -> Error {
    Error::new(
        ErrorKind::InvalidConfig,
        format!("invalid config: {}", msg.into()),
    )
}

pub(crate) fn url(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidUrl, msg)
}

pub(crate) fn header(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidHeader, msg)
}

pub(crate) fn timeout(kind: ErrorKind, what: &str, ms: u64) -> Error {
    Error::new(kind, format!("{what} timed out after {ms} ms"))
}

/// Removes userinfo from a URL before it is kept in an error message.
pub(crate) fn redact(uri: &http::Uri) -> String {
    match uri.authority() {
        Some(a) if a.as_str().contains('@') => {
            // The host follows the last `@`: a password may contain raw `@`s.
            let host = a.as_str().rsplit('@').next().unwrap_or_default();
            format!(
                "{}://{}{}",
                uri.scheme_str().unwrap_or("http"),
                host,
                uri.path_and_query()
                    .map_or("/", http::uri::PathAndQuery::as_str)
            )
        }
        _ => uri.to_string(),
    }
}

/// Removes userinfo from URL text that may not parse, before it is kept in an error message.
/// What cannot be parsed loses everything between `://` and the last `@` before any `?` or `#`.
pub(crate) fn redact_str(url: &str) -> String {
    if let Ok(mut u) = url::Url::parse(url) {
        if u.username().is_empty() && u.password().is_none() {
            return url.to_owned();
        }
        if u.set_username("").is_ok() && u.set_password(None).is_ok() {
            return u.into();
        }
    }
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let end = url[start..]
        .find(['?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..end].rfind('@') {
        Some(at) => format!("{}{}", &url[..start], &url[start + at + 1..]),
        None => url.to_owned(),
    }
}

/// Classifies a hyper error on an established connection.
pub(crate) fn from_hyper(e: hyper::Error, origin: &str) -> Error {
    let kind = if e.is_parse() || e.is_parse_status() || e.is_user() || is_h2_violation(&e) {
        ErrorKind::Protocol
    } else if e.is_timeout() {
        ErrorKind::TimeoutRead
    } else {
        ErrorKind::Io
    };
    let msg = match kind {
        ErrorKind::Protocol => format!("protocol error talking to {origin}"),
        _ => format!("connection to {origin} failed"),
    };
    Error::new(kind, msg).with_source(e)
}

/// The kind of a hyper error met while reading a response body: a malformed chunk or an
/// HTTP/2 protocol violation is `protocol`, a connection cut short is `io`.
pub(crate) fn body_kind(e: &hyper::Error) -> ErrorKind {
    // hyper's HTTP/1.1 body decoder reports bad framing (chunk sizes, missing CRLF) as these
    // I/O kinds; a socket never does.
    let bad_framing = find_source::<std::io::Error>(e).is_some_and(|io| {
        matches!(
            io.kind(),
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
        )
    });
    if e.is_timeout() {
        ErrorKind::TimeoutRead
    } else if bad_framing || is_h2_violation(e) {
        ErrorKind::Protocol
    } else {
        ErrorKind::Io
    }
}

/// Whether an HTTP/2 error says the peer broke the protocol (malformed frames or headers,
/// flow control, a flood answered with ENHANCE_YOUR_CALM).
fn is_h2_violation(e: &(dyn std::error::Error + 'static)) -> bool {
    find_source::<h2::Error>(e).is_some_and(|h2| {
        matches!(
            h2.reason(),
            Some(
                h2::Reason::PROTOCOL_ERROR
                    | h2::Reason::FRAME_SIZE_ERROR
                    | h2::Reason::COMPRESSION_ERROR
                    | h2::Reason::FLOW_CONTROL_ERROR
                    | h2::Reason::ENHANCE_YOUR_CALM
            )
        )
    })
}

/// Whether the server provably did not process an h2 stream, so it is safe to retry any
/// method: it refused the stream (RST_STREAM REFUSED_STREAM), or sent GOAWAY with a last
/// stream id below it (h2 fails only those streams with the peer's GOAWAY; RFC 9113 §6.8).
pub(crate) fn is_refused_stream(e: &(dyn std::error::Error + 'static)) -> bool {
    find_source::<h2::Error>(e).is_some_and(|h| {
        h.is_remote() && (h.is_go_away() || h.reason() == Some(h2::Reason::REFUSED_STREAM))
    })
}

fn find_source<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
        }
        cur = err.source();
    }
    None
}

/// Whether an I/O error chain says the peer reset or closed the connection.
pub(crate) fn is_reset(e: &(dyn std::error::Error + 'static)) -> bool {
    find_source::<std::io::Error>(e).is_some_and(|io| {
        matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_pointer_sized_send_sync() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
        assert_send_sync::<Error>();
    }

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for k in ErrorKind::ALL {
            assert!(seen.insert(k.code()), "duplicate code {}", k.code());
            assert_eq!(ErrorKind::from_code(k.code()), Some(*k));
        }
        assert!(ErrorKind::ALL.len() >= 20);
    }

    #[test]
    fn transport_kinds_are_the_peer_failures() {
        let t: Vec<&str> = ErrorKind::ALL
            .iter()
            .filter(|k| k.is_transport())
            .map(|k| k.code())
            .collect();
        assert_eq!(
            t,
            [
                "dns",
                "connect",
                "tls",
                "io",
                "protocol",
                "timeout.connect",
                "timeout.tls",
                "timeout.read"
            ]
        );
    }

    #[test]
    fn redact_strips_userinfo() {
        let u: http::Uri = "http://user:secret@example.com/x?y=1".parse().unwrap();
        assert_eq!(redact(&u), "http://example.com/x?y=1");
        let u: http::Uri = "http://user:p%40ss@example.com/".parse().unwrap();
        assert_eq!(redact(&u), "http://example.com/");
        let u: http::Uri = "https://example.com:8443/a@b".parse().unwrap();
        assert_eq!(redact(&u), "https://example.com:8443/a@b");
    }

    #[test]
    fn redact_str_strips_passwords_with_at_signs() {
        for (url, want) in [
            ("http://u:p@ss@host/x", "http://host/x"),
            ("http://u:p%40ss@host:81/", "http://host:81/"),
            ("http://u:p@ss@@host/", "http://host/"),
            ("ftp://user:pw@host/", "ftp://host/"),
            ("http://host/users/@me", "http://host/users/@me"),
            // Unparsable: everything up to the last `@` goes.
            ("http://u:p@ss@host:99999/", "http://host:99999/"),
            ("http://u:p/ss@host:x/?a=@b", "http://host:x/?a=@b"),
        ] {
            let got = redact_str(url);
            assert_eq!(got, want, "{url}");
            assert!(!got.contains("ss@") && !got.contains("pw"), "{got}");
        }
    }

    #[test]
    fn timeout_predicate() {
        assert!(Error::new(ErrorKind::TimeoutPool, "x").is_timeout());
        assert!(!Error::new(ErrorKind::Io, "x").is_timeout());
    }
}
