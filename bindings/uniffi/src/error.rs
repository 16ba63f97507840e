//! The engine's errors as one uniffi error: Kotlin's sealed `WirecoreException`, one subclass
//! per error family, each carrying the stable `code` (`ErrorKind::code`) and the message.

use std::fmt;

use wirecore::ErrorKind;

/// A wirecore failure. `code` is the engine's stable error code; `detail` the message, which
/// is not stable. Every `timeout.*` code is a [`WirecoreError::Timeout`].
#[derive(Debug, uniffi::Error)]
pub enum WirecoreError {
    /// `invalid_config`: a config key is unknown, of the wrong type or out of range.
    Config { code: String, detail: String },
    /// `invalid_url`: the URL cannot be parsed or is not http/https.
    InvalidUrl { code: String, detail: String },
    /// `invalid_header`: a header name or value is malformed.
    InvalidHeader { code: String, detail: String },
    /// `invalid_request`: a method, body or option is malformed.
    InvalidRequest { code: String, detail: String },
    /// `dns`: the name did not resolve.
    Dns { code: String, detail: String },
    /// `connect`: TCP connect failed.
    Connect { code: String, detail: String },
    /// `tls`: the TLS handshake or certificate verification failed.
    Tls { code: String, detail: String },
    /// `io`: the connection failed after it was established.
    Io { code: String, detail: String },
    /// `protocol`: the peer violated HTTP.
    Protocol { code: String, detail: String },
    /// `timeout.total`, `timeout.connect`, `timeout.tls`, `timeout.read`, `timeout.pool`.
    Timeout { code: String, detail: String },
    /// `decode`: the body could not be decoded.
    Decode { code: String, detail: String },
    /// `body_too_large`: the body exceeded `limits.max_response_body_bytes`.
    BodyTooLarge { code: String, detail: String },
    /// `too_many_redirects`.
    TooManyRedirects { code: String, detail: String },
    /// `redirect_downgrade`: https to http while `redirect.allow_downgrade` is false.
    RedirectDowngrade { code: String, detail: String },
    /// `closed`: the client was closed.
    Closed { code: String, detail: String },
    /// `cancelled`: the request or read was cancelled.
    Cancelled { code: String, detail: String },
    /// `circuit_open`: the origin's circuit breaker is open.
    CircuitOpen { code: String, detail: String },
    /// `rate_limited`: a rate limit refused the request.
    RateLimited { code: String, detail: String },
    /// `overloaded`: the concurrency limit refused the request.
    Overloaded { code: String, detail: String },
    /// `internal`: a bug in wirecore (a caught panic).
    Internal { code: String, detail: String },
}

#[uniffi::export]
impl WirecoreError {
    /// The stable error code (`timeout.total`, `connect`, ...), on every subclass.
    pub fn code(&self) -> String {
        self.parts().0.to_owned()
    }

    /// The message (not stable: match on the code or the class).
    pub fn detail(&self) -> String {
        self.parts().1.to_owned()
    }
}

impl WirecoreError {
    fn parts(&self) -> (&str, &str) {
        use WirecoreError as W;
        match self {
            W::Config { code, detail }
            | W::InvalidUrl { code, detail }
            | W::InvalidHeader { code, detail }
            | W::InvalidRequest { code, detail }
            | W::Dns { code, detail }
            | W::Connect { code, detail }
            | W::Tls { code, detail }
            | W::Io { code, detail }
            | W::Protocol { code, detail }
            | W::Timeout { code, detail }
            | W::Decode { code, detail }
            | W::BodyTooLarge { code, detail }
            | W::TooManyRedirects { code, detail }
            | W::RedirectDowngrade { code, detail }
            | W::Closed { code, detail }
            | W::Cancelled { code, detail }
            | W::CircuitOpen { code, detail }
            | W::RateLimited { code, detail }
            | W::Overloaded { code, detail }
            | W::Internal { code, detail } => (code, detail),
        }
    }

    #[expect(
        clippy::match_same_arms,
        reason = "Internal's own row, so the table names every kind (scripts/parity.py reads it)"
    )]
    pub(crate) fn new(kind: ErrorKind, message: String) -> Self {
        use WirecoreError as W;
        let code = kind.code().to_owned();
        let detail = message;
        match kind {
            ErrorKind::InvalidConfig => W::Config { code, detail },
            ErrorKind::InvalidUrl => W::InvalidUrl { code, detail },
            ErrorKind::InvalidHeader => W::InvalidHeader { code, detail },
            ErrorKind::InvalidRequest => W::InvalidRequest { code, detail },
            ErrorKind::Dns => W::Dns { code, detail },
            ErrorKind::Connect => W::Connect { code, detail },
            ErrorKind::Tls => W::Tls { code, detail },
            ErrorKind::Io => W::Io { code, detail },
            ErrorKind::Protocol => W::Protocol { code, detail },
            ErrorKind::TimeoutTotal
            | ErrorKind::TimeoutConnect
            | ErrorKind::TimeoutTls
            | ErrorKind::TimeoutRead
            | ErrorKind::TimeoutPool => W::Timeout { code, detail },
            ErrorKind::Decode => W::Decode { code, detail },
            ErrorKind::BodyTooLarge => W::BodyTooLarge { code, detail },
            ErrorKind::TooManyRedirects => W::TooManyRedirects { code, detail },
            ErrorKind::RedirectDowngrade => W::RedirectDowngrade { code, detail },
            ErrorKind::Closed => W::Closed { code, detail },
            ErrorKind::Cancelled => W::Cancelled { code, detail },
            ErrorKind::CircuitOpen => W::CircuitOpen { code, detail },
            ErrorKind::RateLimited => W::RateLimited { code, detail },
            ErrorKind::Overloaded => W::Overloaded { code, detail },
            ErrorKind::Internal => W::Internal { code, detail },
            // A kind added to the core before it gets a row here (the mapping test below
            // fails until it does).
            _ => W::Internal { code, detail },
        }
    }
}

impl From<wirecore::Error> for WirecoreError {
    fn from(e: wirecore::Error) -> Self {
        Self::new(e.kind(), e.full_message())
    }
}

impl From<&wirecore::Error> for WirecoreError {
    fn from(e: &wirecore::Error) -> Self {
        Self::new(e.kind(), e.full_message())
    }
}

impl fmt::Display for WirecoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (code, detail) = self.parts();
        write!(f, "{detail} ({code})")
    }
}

impl std::error::Error for WirecoreError {}

#[cfg(test)]
mod tests {
    use wirecore::ErrorKind;

    use super::WirecoreError;

    #[test]
    fn every_error_kind_maps_to_its_own_family_with_its_code() {
        for &kind in ErrorKind::ALL {
            let e = WirecoreError::new(kind, "m".to_owned());
            assert_eq!(e.code(), kind.code());
            let internal = matches!(e, WirecoreError::Internal { .. });
            assert_eq!(
                internal,
                kind == ErrorKind::Internal,
                "{} falls through to Internal",
                kind.code()
            );
            let timeout = matches!(e, WirecoreError::Timeout { .. });
            assert_eq!(timeout, kind.code().starts_with("timeout."), "{kind:?}");
        }
    }
}
