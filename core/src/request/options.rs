//! [`RequestOptions`]: everything a request carries besides method, URL, headers and body, and
//! the one place its values are checked (so every binding reports the same message).

use std::time::Duration;

use http::HeaderValue;

use crate::config::MAX_DURATION_MS;
use crate::error::{Error, ErrorKind};

/// Per-request engine options: the knobs a request may set that are not part of HTTP itself.
/// Every binding maps its idiom onto these fields (Python and Node keyword options, Go
/// `wirecore.Options`, C `wirecore_request_set_*`) and passes the values through unchecked;
/// [`RequestOptions::validate`] checks them, before any I/O, with a message naming the field.
///
/// This is also the home of the next per-request knobs: add a field here, not a setter on
/// [`Request`](crate::Request).
///
/// # Timeouts
/// Each timeout is above zero and at most one year ([`MAX_DURATION_MS`]). Zero is refused
/// (`invalid_request`, naming the option), in every language: a zero deadline would fail the
/// request before it starts, and "no deadline" is a config matter (`timeouts.total_ms: 0`,
/// `timeouts.read_idle_ms: 0`). `None` keeps the config's value. Where a binding's type has no
/// "unset" of its own, 0 is that unset: the C setters `wirecore_request_set_*_timeout_ms(req, 0)`
/// clear the override and Go's zero `Options` changes nothing; Python (`timeout=0`,
/// `Timeout(connect=0)`) and Node (`timeoutMs: 0`, `connectTimeoutMs: 0`) raise.
///
/// # Priority precedence
/// An explicit [`priority`](Self::priority) replaces any `Priority` header the caller set: it is
/// what goes on the wire and what orders the request among those waiting for a connection.
/// Without it, a caller's own `Priority` header is sent unchanged and its `u=` member decides the
/// queue order (see [`urgency`](crate::urgency)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestOptions {
    /// Whole request, overriding `timeouts.total_ms`. Above zero, at most one year.
    pub timeout: Option<Duration>,
    /// TCP connect of a connection this request opens, overriding `timeouts.connect_ms`.
    /// Above zero, at most one year.
    pub connect_timeout: Option<Duration>,
    /// Longest silence while waiting for response bytes, head or body, overriding
    /// `timeouts.read_idle_ms`. Above zero, at most one year.
    pub read_timeout: Option<Duration>,
    /// Longest wait for a pooled connection, overriding `timeouts.pool_acquire_ms`.
    /// Above zero, at most one year.
    pub pool_timeout: Option<Duration>,
    /// Declares the request safe (`Some(true)`) or unsafe to repeat, for retries and hedging;
    /// `None` decides by method and an `Idempotency-Key` header.
    pub idempotent: Option<bool>,
    /// The key this request is rate limited under when `rate_limit.scope` is `"key"` (a user, a
    /// tenant, an API key). Non-empty, at most [`MAX_RATE_LIMIT_KEY_BYTES`] bytes.
    pub rate_limit_key: Option<String>,
    /// The RFC 9218 priority; see the precedence rule above.
    pub priority: Option<Priority>,
    /// The key a `consistent_hash` service (`Config.services`) places this request by, ahead of
    /// the service's header or cookie key (a user, a session, a shard). Non-empty, at most
    /// [`MAX_RATE_LIMIT_KEY_BYTES`] bytes.
    pub balance_key: Option<String>,
    /// What a redirect does to this request; `None` follows, as [`RedirectPolicy::Follow`].
    pub redirect: Option<RedirectPolicy>,
    /// Most redirects followed under [`RedirectPolicy::Follow`], overriding `redirect.max`
    /// (0 returns the 3xx as it is). At most [`MAX_REDIRECTS`].
    pub max_redirects: Option<u32>,
    /// How this request uses the client's response cache (`Config.cache`), as fetch's `cache`
    /// option; see [`CacheMode`].
    pub cache: CacheMode,
    /// The caller's W3C trace context (`00-<trace id>-<span id>-<flags>`), the parent of this
    /// request's span when `otel.enabled`, and sent unchanged when it is not. Bindings fill it
    /// from their language's current context where there is one.
    pub traceparent: Option<String>,
    /// The `tracestate` that goes with [`traceparent`](Self::traceparent) (which it needs):
    /// at most 32 `key=value` members, at most 512 bytes.
    pub tracestate: Option<String>,
}

/// The most redirects a request may follow (`redirect.max`, `max_redirects`).
pub const MAX_REDIRECTS: u32 = 1_000;

/// What a request does with a redirect (a 301, 302, 303, 307 or 308 answer), as fetch's
/// `redirect` option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RedirectPolicy {
    /// Follows `Location`, up to `max_redirects` (or `redirect.max`) hops, then fails with
    /// `too_many_redirects`.
    Follow,
    /// Returns the 3xx response as it is.
    Manual,
    /// Fails with `too_many_redirects`: this request allows no redirect at all.
    Error,
}

impl RedirectPolicy {
    /// Parses `"follow"`, `"manual"` or `"error"` (any case), the names every binding takes.
    ///
    /// # Errors
    /// `invalid_request` naming the value and the accepted ones.
    pub fn parse(s: &str) -> Result<Self, Error> {
        [Self::Follow, Self::Manual, Self::Error]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                invalid(format!(
                    "request option redirect must be \"follow\", \"manual\" or \"error\", got {s:?}"
                ))
            })
    }

    /// The name: `"follow"`, `"manual"` or `"error"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Follow => "follow",
            Self::Manual => "manual",
            Self::Error => "error",
        }
    }
}

/// The longest rate-limit key, in bytes: keys name tenants or users, and each one is kept in
/// memory (or in Redis) while in use.
pub const MAX_RATE_LIMIT_KEY_BYTES: usize = 1024;

impl RequestOptions {
    /// Checks every field: durations above zero and at most [`MAX_DURATION_MS`] (one year), a priority's
    /// urgency 0 to 7, a rate-limit key non-empty and at most [`MAX_RATE_LIMIT_KEY_BYTES`].
    /// [`Client::execute`](crate::Client::execute) calls it before any I/O; bindings call it to
    /// report a bad value where it was given.
    ///
    /// # Errors
    /// `invalid_request`, naming the field.
    pub fn validate(&self) -> Result<(), Error> {
        for (name, d) in [
            ("timeout", self.timeout),
            ("connect_timeout", self.connect_timeout),
            ("read_timeout", self.read_timeout),
            ("pool_timeout", self.pool_timeout),
        ] {
            if d == Some(Duration::ZERO) {
                return Err(invalid(format!(
                    "request option {name} must be above 0 (leave it unset for the config's), got 0 ms"
                )));
            }
            if let Some(d) = d
                && d > Duration::from_millis(MAX_DURATION_MS)
            {
                return Err(invalid(format!(
                    "request option {name} must be at most {MAX_DURATION_MS} ms (one year), got {} ms",
                    d.as_millis()
                )));
            }
        }
        for (name, key) in [
            ("rate_limit_key", &self.rate_limit_key),
            ("balance_key", &self.balance_key),
        ] {
            let Some(k) = key else { continue };
            if k.is_empty() {
                return Err(invalid(format!("request option {name} must not be empty")));
            }
            if k.len() > MAX_RATE_LIMIT_KEY_BYTES {
                return Err(invalid(format!(
                    "request option {name} must be at most {MAX_RATE_LIMIT_KEY_BYTES} bytes, got {}",
                    k.len()
                )));
            }
        }
        if let Some(p) = self.priority
            && p.urgency > 7
        {
            return Err(urgency_error(p.urgency));
        }
        if let Some(n) = self.max_redirects {
            Self::checked_max_redirects(n.into())?;
        }
        if let Some(tp) = &self.traceparent
            && crate::otel::SpanContext::parse(tp).is_none()
        {
            return Err(invalid(format!(
                "request option traceparent must be a W3C traceparent like \"00-<32 hex>-<16 hex>-01\" (lower-case hex, ids not all zero), got {:?}",
                tp.chars().take(80).collect::<String>()
            )));
        }
        if let Some(ts) = &self.tracestate {
            if self.traceparent.is_none() {
                return Err(invalid(
                    "request option tracestate needs a traceparent".to_owned(),
                ));
            }
            if !crate::otel::valid_tracestate(ts) {
                return Err(invalid(
                    "request option tracestate must be at most 32 comma-separated key=value members of printable ASCII, at most 512 bytes".to_owned(),
                ));
            }
        }
        Ok(())
    }

    /// A `max_redirects` as a binding receives it (any integer): 0 to [`MAX_REDIRECTS`].
    ///
    /// # Errors
    /// `invalid_request` naming the option and the value.
    pub fn checked_max_redirects(n: i64) -> Result<u32, Error> {
        match u32::try_from(n) {
            Ok(m) if m <= MAX_REDIRECTS => Ok(m),
            _ => Err(invalid(format!(
                "request option max_redirects must be 0 to {MAX_REDIRECTS}, got {n}"
            ))),
        }
    }
}

/// How a request uses the response cache: the meanings of fetch's `cache` option (WHATWG Fetch,
/// "HTTP-network-or-cache fetch"). Methods the cache does not store (anything but GET and HEAD)
/// and conditional or range requests are sent as usual in every mode but
/// [`OnlyIfCached`](Self::OnlyIfCached).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CacheMode {
    /// RFC 9111: a fresh stored response answers; a stale one is revalidated (or served stale
    /// within its `stale-while-revalidate` / `stale-if-error` windows); answers are stored.
    #[default]
    Default,
    /// The cache takes no part: no lookup, nothing stored, no coalescing (the response's cache
    /// status is none); `Cache-Control: no-cache` goes out unless the request has its own.
    NoStore,
    /// No lookup, but the answer is stored; `Cache-Control: no-cache` goes out unless the
    /// request has its own.
    Reload,
    /// A stored response, fresh or not, is used only after the server confirms it (a
    /// conditional request); `Cache-Control: max-age=0` goes out unless the request has its
    /// own.
    NoCache,
    /// Any stored response is used, however stale (status stale when it is); without one the
    /// request goes out and its answer is stored.
    ForceCache,
    /// Any stored response is used, however stale; without one the server is not asked and the
    /// answer is a `504 Gateway Timeout` with an empty body (cache status miss), as RFC 9111
    /// §5.2.1.7 says for the `only-if-cached` directive. Fetch reports a network error here; a
    /// status keeps this out of the error kinds and lets a caller tell "not cached" from a
    /// failure.
    OnlyIfCached,
}

impl CacheMode {
    /// Every mode, in the order of fetch's list.
    pub const ALL: [CacheMode; 6] = [
        Self::Default,
        Self::NoStore,
        Self::Reload,
        Self::NoCache,
        Self::ForceCache,
        Self::OnlyIfCached,
    ];

    /// Fetch's word for the mode: `default`, `no-store`, `reload`, `no-cache`, `force-cache`
    /// or `only-if-cached`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::NoStore => "no-store",
            Self::Reload => "reload",
            Self::NoCache => "no-cache",
            Self::ForceCache => "force-cache",
            Self::OnlyIfCached => "only-if-cached",
        }
    }

    /// Parses fetch's word for a mode (any case); every binding passes its caller's string here.
    ///
    /// # Errors
    /// `invalid_request` naming the value and the accepted words.
    pub fn parse(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let words: Vec<&str> = Self::ALL.iter().map(|m| m.as_str()).collect();
                invalid(format!(
                    "request option cache must be one of {}; got {s:?}",
                    words.join(", ")
                ))
            })
    }
}

impl std::fmt::Display for CacheMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An RFC 9218 priority: urgency 0 (most urgent) to 7 (least; [`DEFAULT_URGENCY`] 3 is the
/// default), and whether the response is useful in pieces (`incremental`).
///
/// [`DEFAULT_URGENCY`]: crate::DEFAULT_URGENCY
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Priority {
    /// 0 (most urgent) to 7 (least).
    pub urgency: u8,
    /// Sent as the `i` member.
    pub incremental: bool,
}

/// The priority words every binding accepts, and their urgencies.
pub const PRIORITY_WORDS: [(&str, u8); 5] = [
    ("highest", 0),
    ("high", 1),
    ("normal", 3),
    ("low", 5),
    ("lowest", 7),
];

impl Priority {
    /// A priority with the given urgency.
    ///
    /// # Errors
    /// `invalid_request` when `urgency` is over 7.
    pub fn new(urgency: u8, incremental: bool) -> Result<Self, Error> {
        if urgency > 7 {
            return Err(urgency_error(urgency));
        }
        Ok(Self {
            urgency,
            incremental,
        })
    }

    /// Parses the forms every binding accepts: an urgency `"0"` to `"7"`, a word (`highest` 0,
    /// `high` 1, `normal` 3, `low` 5, `lowest` 7; any case), or an RFC 9218 value (`"u=1"`,
    /// `"u=1, i"`, `"i"`).
    ///
    /// # Errors
    /// `invalid_request` naming the value and the accepted forms.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let t = s.trim();
        if let Some(&(_, u)) = PRIORITY_WORDS
            .iter()
            .find(|(w, _)| w.eq_ignore_ascii_case(t))
        {
            return Ok(Self {
                urgency: u,
                incremental: false,
            });
        }
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return match t.parse::<u8>() {
                Ok(u) => Self::new(u, false),
                Err(_) => Err(urgency_error(t)),
            };
        }
        Self::parse_rfc(t).ok_or_else(|| {
            let words: Vec<&str> = PRIORITY_WORDS.iter().map(|(w, _)| *w).collect();
            invalid(format!(
                "request option priority must be an urgency 0 (most urgent) to 7 (least), one of {}, or an RFC 9218 value like \"u=1, i\"; got {s:?}",
                words.join(", ")
            ))
        })
    }

    /// `u=N` and `i` members (strictly: unknown members or bad values are refused, since the
    /// caller wrote this value for us, unlike a header from elsewhere).
    fn parse_rfc(t: &str) -> Option<Self> {
        let mut p = Self {
            urgency: crate::request::DEFAULT_URGENCY,
            incremental: false,
        };
        for member in t.split(',') {
            match member.trim() {
                "i" | "i=?1" => p.incremental = true,
                "i=?0" => p.incremental = false,
                m => {
                    let u = m.strip_prefix("u=")?.parse::<u8>().ok()?;
                    (u <= 7).then_some(())?;
                    p.urgency = u;
                }
            }
        }
        Some(p)
    }

    /// The `Priority` header value: `u=1`, or `u=1, i`.
    #[must_use]
    pub fn header_value(self) -> HeaderValue {
        let v = if self.incremental {
            format!("u={}, i", self.urgency)
        } else {
            format!("u={}", self.urgency)
        };
        HeaderValue::try_from(v).unwrap_or(HeaderValue::from_static("u=3"))
    }
}

fn urgency_error(got: impl std::fmt::Display) -> Error {
    invalid(format!(
        "request option priority urgency must be 0 (most urgent) to 7 (least), got {got}"
    ))
}

fn invalid(msg: String) -> Error {
    Error::new(ErrorKind::InvalidRequest, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked_naming_the_field() {
        let year = Duration::from_millis(MAX_DURATION_MS);
        let mut o = RequestOptions {
            timeout: Some(year),
            connect_timeout: Some(year),
            read_timeout: Some(Duration::from_micros(1)),
            pool_timeout: Some(year),
            idempotent: Some(true),
            rate_limit_key: Some("k".repeat(MAX_RATE_LIMIT_KEY_BYTES)),
            priority: Some(Priority {
                urgency: 7,
                incremental: true,
            }),
            balance_key: Some("b".repeat(MAX_RATE_LIMIT_KEY_BYTES)),
            redirect: Some(RedirectPolicy::Error),
            max_redirects: Some(MAX_REDIRECTS),
            cache: CacheMode::OnlyIfCached,
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            tracestate: Some("congo=t61rcWkgMzE".into()),
        };
        o.validate().unwrap();
        let err = |o: &RequestOptions| {
            let e = o.validate().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidRequest);
            e.to_string()
        };
        for (name, f) in [
            (
                "timeout",
                (|o, d| o.timeout = d) as fn(&mut RequestOptions, _),
            ),
            ("connect_timeout", |o, d| o.connect_timeout = d),
            ("read_timeout", |o, d| o.read_timeout = d),
            ("pool_timeout", |o, d| o.pool_timeout = d),
        ] {
            let mut bad = o.clone();
            f(&mut bad, Some(year + Duration::from_millis(1)));
            let m = err(&bad);
            assert!(m.contains(name) && m.contains("31536000001 ms"), "{m}");
            f(&mut bad, Some(Duration::MAX));
            assert!(err(&bad).contains(name));
            // Zero is refused in every language (a binding without "unset" reads 0 as unset).
            f(&mut bad, Some(Duration::ZERO));
            let m = err(&bad);
            assert!(m.contains(&format!("{name} must be above 0")), "{m}");
        }
        o.rate_limit_key = Some(String::new());
        assert!(err(&o).contains("rate_limit_key must not be empty"));
        o.rate_limit_key = Some("k".repeat(MAX_RATE_LIMIT_KEY_BYTES + 1));
        assert!(err(&o).contains("rate_limit_key must be at most 1024 bytes, got 1025"));
        o.rate_limit_key = None;
        o.balance_key = Some(String::new());
        assert!(err(&o).contains("balance_key must not be empty"));
        o.balance_key = Some("b".repeat(MAX_RATE_LIMIT_KEY_BYTES + 1));
        assert!(err(&o).contains("balance_key must be at most 1024 bytes, got 1025"));
        o.balance_key = None;
        o.priority = Some(Priority {
            urgency: 8,
            incremental: false,
        });
        assert!(err(&o).contains("priority urgency must be 0 (most urgent) to 7 (least), got 8"));
        o.priority = None;
        o.max_redirects = Some(MAX_REDIRECTS + 1);
        assert!(err(&o).contains("max_redirects must be 0 to 1000, got 1001"));
        let m = RequestOptions::checked_max_redirects(-1).unwrap_err();
        assert!(
            m.to_string()
                .contains("max_redirects must be 0 to 1000, got -1")
        );
        assert_eq!(RequestOptions::checked_max_redirects(0).unwrap(), 0);
        o.max_redirects = None;
        o.tracestate = Some("Bad=1".into());
        assert!(err(&o).contains("request option tracestate must be"));
        o.tracestate = None;
        o.traceparent = Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01".into());
        assert!(err(&o).contains("request option traceparent must be a W3C traceparent"));
        o.traceparent = None;
        o.tracestate = Some("a=1".into());
        assert!(err(&o).contains("tracestate needs a traceparent"));
    }

    #[test]
    fn redirect_policy_names() {
        for p in [
            RedirectPolicy::Follow,
            RedirectPolicy::Manual,
            RedirectPolicy::Error,
        ] {
            assert_eq!(RedirectPolicy::parse(p.as_str()).unwrap(), p);
        }
        assert_eq!(
            RedirectPolicy::parse(" Manual ").unwrap(),
            RedirectPolicy::Manual
        );
        for bad in ["", "follows", "none", "0"] {
            let e = RedirectPolicy::parse(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidRequest);
            assert!(
                e.to_string()
                    .contains("redirect must be \"follow\", \"manual\" or \"error\""),
                "{e}"
            );
        }
    }

    #[test]
    fn cache_mode_words() {
        for m in CacheMode::ALL {
            assert_eq!(CacheMode::parse(m.as_str()).unwrap(), m);
            assert_eq!(m.to_string(), m.as_str());
        }
        assert_eq!(
            CacheMode::parse(" Only-If-Cached ").unwrap(),
            CacheMode::OnlyIfCached
        );
        assert_eq!(CacheMode::default(), CacheMode::Default);
        for bad in ["", "nostore", "no_store", "cache", "force"] {
            let e = CacheMode::parse(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{bad:?}");
            let m = e.to_string();
            assert!(
                m.contains("request option cache must be one of default, no-store, reload, no-cache, force-cache, only-if-cached"),
                "{m}"
            );
        }
    }

    #[test]
    fn priority_forms() {
        let p = |s: &str| Priority::parse(s).map(|p| (p.urgency, p.incremental));
        assert_eq!(p("0").unwrap(), (0, false));
        assert_eq!(p("7").unwrap(), (7, false));
        assert_eq!(p("highest").unwrap(), (0, false));
        assert_eq!(p("High").unwrap(), (1, false));
        assert_eq!(p("normal").unwrap(), (3, false));
        assert_eq!(p("LOW").unwrap(), (5, false));
        assert_eq!(p("lowest").unwrap(), (7, false));
        assert_eq!(p("u=2").unwrap(), (2, false));
        assert_eq!(p("u=6, i").unwrap(), (6, true));
        assert_eq!(p("i").unwrap(), (3, true));
        let m = p("8").unwrap_err().to_string();
        assert!(m.contains("got 8"), "{m}");
        let m = p("99999999999999999999999").unwrap_err().to_string();
        assert!(m.contains("urgency must be 0"), "{m}");
        for bad in ["", "u=8", "u=high", "auto", "1.5", "-1", "u=1, x", "urgent"] {
            let e = Priority::parse(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{bad:?}");
            assert!(e.to_string().contains("request option priority"), "{e}");
        }
        assert_eq!(
            Priority::new(8, false).unwrap_err().kind(),
            ErrorKind::InvalidRequest
        );
        assert_eq!(Priority::new(1, true).unwrap().header_value(), "u=1, i");
        assert_eq!(Priority::new(4, false).unwrap().header_value(), "u=4");
    }
}
