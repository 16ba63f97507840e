//! Content codings: streaming response decoding and request-body encoding.
//!
//! Decoding streams chunk by chunk (async-compression), so a decompression bomb is stopped by the
//! body's size or ratio limit after at most one chunk beyond it, never allocated whole. Several
//! codings (`Content-Encoding: gzip, br`) are undone last to first, all of them or none.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use async_compression::tokio::bufread::{
    BrotliDecoder, GzipDecoder, GzipEncoder, ZlibDecoder, ZstdDecoder, ZstdEncoder,
};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http::{HeaderMap, HeaderValue, header};
use http_body_util::BodyExt;
use tokio::io::{AsyncBufRead, AsyncRead, AsyncReadExt};
use tokio_util::io::{ReaderStream, StreamReader};

use crate::config::{CompressionConfig, Encoding};
use crate::error::{Error, ErrorKind};
use crate::metrics::Metrics;

const CHUNK: usize = 64 * 1024;

/// Marks an I/O error raised by the transport (not the decoder) as it passes through the decoder.
#[derive(Debug)]
struct Transport(hyper::Error);

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Transport {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The `Accept-Encoding` value for these codings, if any.
pub(crate) fn accept_header(cfg: &CompressionConfig) -> Option<HeaderValue> {
    if cfg.accept.is_empty() {
        return None;
    }
    let v: Vec<&str> = cfg.accept.iter().map(|e| e.token()).collect();
    HeaderValue::from_str(&v.join(", ")).ok()
}

/// Most codings undone on one body; a longer list is refused (real servers apply one, rarely two).
const MAX_LAYERS: usize = 4;

/// How a response body with these headers is decoded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoder {
    /// Undo these codings, listed in the order the server applied them.
    Layers(Vec<Encoding>),
    /// Fail the body with a `decode` error saying why.
    Refused(String),
}

/// How to decode a body with these headers: `None` when it has no `Content-Encoding` (or only
/// `identity`), or names a coding not in `accepted` (the body is then handed over as it came,
/// header included, never half-decoded).
pub(crate) fn decoder(headers: &HeaderMap, accepted: &[Encoding]) -> Option<Decoder> {
    let mut layers = Vec::new();
    for v in headers.get_all(header::CONTENT_ENCODING) {
        for token in v.to_str().ok()?.split(',').map(str::trim) {
            if token.is_empty() || token.eq_ignore_ascii_case("identity") {
                continue;
            }
            let enc = parse_token(token).filter(|e| accepted.contains(e))?;
            layers.push(enc);
        }
    }
    if layers.len() > MAX_LAYERS {
        return Some(Decoder::Refused(format!(
            "the response body has {} content codings (Content-Encoding); at most {MAX_LAYERS} are decoded",
            layers.len()
        )));
    }
    (!layers.is_empty()).then_some(Decoder::Layers(layers))
}

/// The coding a `Content-Encoding` token names, if it is one we decode.
fn parse_token(s: &str) -> Option<Encoding> {
    if s.eq_ignore_ascii_case("gzip") || s.eq_ignore_ascii_case("x-gzip") {
        Some(Encoding::Gzip)
    } else if s.eq_ignore_ascii_case("deflate") {
        Some(Encoding::Deflate)
    } else if s.eq_ignore_ascii_case("br") {
        Some(Encoding::Br)
    } else if s.eq_ignore_ascii_case("zstd") {
        Some(Encoding::Zstd)
    } else {
        None
    }
}

type Reader = Pin<Box<dyn AsyncBufRead + Send>>;

/// A decoder of one coding reading from `r`.
fn layer(enc: Encoding, r: Reader) -> Pin<Box<dyn AsyncRead + Send>> {
    match enc {
        Encoding::Gzip => {
            let mut d = GzipDecoder::new(r);
            d.multiple_members(true);
            Box::pin(d)
        }
        Encoding::Deflate => Box::pin(ZlibDecoder::new(r)),
        Encoding::Br => Box::pin(BrotliDecoder::new(r)),
        Encoding::Zstd => Box::pin(ZstdDecoder::new(r)),
    }
}

/// A stream of decoded chunks from a body encoded with `layers` (in the order applied); wire
/// bytes are counted into the metrics and into `wire` as they arrive.
pub(crate) fn decode(
    incoming: hyper::body::Incoming,
    layers: &[Encoding],
    metrics: Arc<Metrics>,
    wire: Arc<AtomicU64>,
) -> Pin<Box<dyn futures_util::Stream<Item = std::io::Result<Bytes>> + Send>> {
    let stream = incoming
        .into_data_stream()
        .inspect_ok(move |b| {
            metrics.bytes_received.fetch_add(b.len() as u64, Relaxed);
            wire.fetch_add(b.len() as u64, Relaxed);
        })
        .map_err(|e| std::io::Error::other(Transport(e)));
    decode_stream(stream, layers)
}

/// Undoes `layers` (in the order applied) over a stream of wire chunks.
pub(crate) fn decode_stream(
    stream: impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    layers: &[Encoding],
) -> Pin<Box<dyn futures_util::Stream<Item = std::io::Result<Bytes>> + Send>> {
    let mut reader: Reader = Box::pin(tokio::io::BufReader::with_capacity(
        CHUNK,
        StreamReader::new(stream),
    ));
    // The last coding applied is the first undone.
    let mut rest = layers.iter().rev().peekable();
    while let Some(&enc) = rest.next() {
        let d = layer(enc, reader);
        if rest.peek().is_none() {
            return ReaderStream::with_capacity(d, CHUNK).boxed();
        }
        reader = Box::pin(tokio::io::BufReader::with_capacity(CHUNK, d));
    }
    ReaderStream::with_capacity(reader, CHUNK).boxed()
}

/// Sorts a decoding-stream error into transport failure or corrupt data.
pub(crate) fn classify(e: std::io::Error) -> Error {
    let transport = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Transport>())
        .map(|t| crate::error::body_kind(&t.0));
    if let Some(kind) = transport {
        Error::new(kind, "response body failed").with_source(e)
    } else {
        Error::new(ErrorKind::Decode, "cannot decode the response body").with_source(e)
    }
}

/// Encodes a request body in memory.
pub(crate) async fn encode(body: &[u8], enc: Encoding) -> Result<Bytes, Error> {
    let mut out = Vec::with_capacity(body.len() / 2 + 64);
    let res = match enc {
        Encoding::Zstd => ZstdEncoder::new(body).read_to_end(&mut out).await,
        _ => GzipEncoder::new(body).read_to_end(&mut out).await,
    };
    res.map_err(|e| {
        Error::new(ErrorKind::InvalidRequest, "cannot encode the request body").with_source(e)
    })?;
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoder_of(values: &[&str], accepted: &[Encoding]) -> Option<Decoder> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::CONTENT_ENCODING, HeaderValue::from_str(v).unwrap());
        }
        decoder(&h, accepted)
    }

    #[test]
    fn codings_are_listed_in_the_order_applied() {
        use Encoding::{Br, Deflate, Gzip, Zstd};
        let all = [Gzip, Deflate, Br, Zstd];
        assert_eq!(decoder_of(&[], &all), None);
        assert_eq!(decoder_of(&["identity"], &all), None);
        assert_eq!(
            decoder_of(&["GZIP"], &all),
            Some(Decoder::Layers(vec![Gzip]))
        );
        assert_eq!(
            decoder_of(&["gzip, identity,br"], &all),
            Some(Decoder::Layers(vec![Gzip, Br]))
        );
        // Several header lines are one list.
        assert_eq!(
            decoder_of(&["x-gzip", "zstd"], &all),
            Some(Decoder::Layers(vec![Gzip, Zstd]))
        );
        // Unknown or not accepted: nothing is decoded.
        assert_eq!(decoder_of(&["gzip, compress"], &all), None);
        assert_eq!(decoder_of(&["gzip, br"], &[Gzip]), None);
        assert!(matches!(
            decoder_of(&["gzip, gzip, gzip, gzip, gzip"], &all),
            Some(Decoder::Refused(_))
        ));
    }
}
