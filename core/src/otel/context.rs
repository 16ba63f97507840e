//! W3C Trace Context (`traceparent`, `tracestate`): parsing what a caller hands over and
//! formatting what goes on the wire.

use std::fmt::Write as _;

/// A parsed `traceparent` (version 00 fields; a later version's extra fields are ignored, as
/// the spec asks) with the `tracestate` that travels with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SpanContext {
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    pub(crate) flags: u8,
    pub(crate) state: Option<String>,
}

/// Most bytes of a `tracestate` taken from a caller (32 members of at most 256 bytes each
/// are allowed, but 512 is what the spec asks every vendor to propagate).
pub(crate) const MAX_TRACESTATE_BYTES: usize = 512;

impl SpanContext {
    /// Whether the sampled flag is set.
    pub(crate) fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// Parses a `traceparent` value; `None` when it breaks the W3C rules.
    pub(crate) fn parse(tp: &str) -> Option<Self> {
        let tp = tp.trim();
        let b = tp.as_bytes();
        if b.len() < 55 {
            return None;
        }
        let version = hex::<1>(&tp[..2])?[0];
        // Version ff is invalid; 00 has exactly four fields; later versions may add more.
        if version == 0xff || (version == 0 && b.len() != 55) || (b.len() > 55 && b[55] != b'-') {
            return None;
        }
        if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let trace_id = hex::<16>(&tp[3..35])?;
        let span_id = hex::<8>(&tp[36..52])?;
        let flags = hex::<1>(&tp[53..55])?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            flags,
            state: None,
        })
    }

    /// The `traceparent` header value (version 00).
    pub(crate) fn traceparent(&self) -> String {
        let mut s = String::with_capacity(55);
        s.push_str("00-");
        push_hex(&mut s, &self.trace_id);
        s.push('-');
        push_hex(&mut s, &self.span_id);
        let _ = write!(s, "-{:02x}", self.flags);
        s
    }
}

/// Checks a `tracestate` a caller gave: at most 512 bytes, at most 32 `key=value` members of
/// printable ASCII, values without `,` or `=`.
pub(crate) fn valid_tracestate(s: &str) -> bool {
    if s.len() > MAX_TRACESTATE_BYTES {
        return false;
    }
    let members: Vec<&str> = s
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect();
    members.len() <= 32
        && members.iter().all(|m| {
            let Some((k, v)) = m.split_once('=') else {
                return false;
            };
            let key_ok = !k.is_empty()
                && k.len() <= 256
                && k.bytes().all(|c| {
                    c.is_ascii_lowercase()
                        || c.is_ascii_digit()
                        || matches!(c, b'_' | b'-' | b'*' | b'/' | b'@')
                });
            let value_ok = !v.is_empty()
                && v.len() <= 256
                && v.bytes()
                    .all(|c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
                && !v.ends_with(' ');
            key_ok && value_ok
        })
}

/// Lower-case hex only, as the spec requires.
fn hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = digit(b[2 * i])? << 4 | digit(b[2 * i + 1])?;
    }
    Some(out)
}

pub(crate) fn push_hex(s: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_round_trips_and_refuses_what_w3c_refuses() {
        let c = SpanContext::parse(TP).unwrap();
        assert!(c.sampled());
        assert_eq!(c.traceparent(), TP);
        assert_eq!(to_hex(&c.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        // A later version may carry more fields.
        assert!(SpanContext::parse(&format!("01{}-what-next", &TP[2..])).is_some());
        for bad in [
            "",
            &TP[..54],
            &format!("{TP}-x"),
            &TP.replace("00-4b", "ff-4b"),
            &TP.to_uppercase(),
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert!(SpanContext::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn tracestate_members_are_checked() {
        assert!(valid_tracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
        assert!(valid_tracestate("vendor@tenant=v 1"));
        for bad in [
            "Upper=1",
            "k",
            "k=",
            "k=a=b",
            &"k=v,".repeat(33),
            &format!("k={}", "v".repeat(600)),
            "k=caf\u{e9}",
        ] {
            assert!(!valid_tracestate(bad), "{bad:?}");
        }
    }
}
