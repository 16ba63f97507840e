//! Content codings: streaming response decoding and request-body encoding.
//!
//! Decoding streams chunk by chunk (async-compression), so a decompression bomb is stopped by the
//! body's size limit after at most one chunk beyond it, never allocated whole.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use async_compression::tokio::bufread::{
    BrotliDecoder, GzipDecoder, GzipEncoder, ZlibDecoder, ZstdDecoder, ZstdEncoder,
};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use http::HeaderValue;
use http_body_util::BodyExt;
use tokio::io::AsyncReadExt;
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

/// The coding named by a `Content-Encoding` value, if it is one we decode.
pub(crate) fn parse_encoding(v: &HeaderValue, accepted: &[Encoding]) -> Option<Encoding> {
    let s = v.to_str().ok()?.trim();
    let enc = if s.eq_ignore_ascii_case("gzip") || s.eq_ignore_ascii_case("x-gzip") {
        Encoding::Gzip
    } else if s.eq_ignore_ascii_case("deflate") {
        Encoding::Deflate
    } else if s.eq_ignore_ascii_case("br") {
        Encoding::Br
    } else if s.eq_ignore_ascii_case("zstd") {
        Encoding::Zstd
    } else {
        return None;
    };
    accepted.contains(&enc).then_some(enc)
}

/// A stream of decoded chunks from an encoded body; wire bytes are counted as they arrive.
pub(crate) fn decode(
    incoming: hyper::body::Incoming,
    enc: Encoding,
    metrics: Arc<Metrics>,
) -> std::pin::Pin<Box<dyn futures_util::Stream<Item = std::io::Result<Bytes>> + Send>> {
    let wire = incoming
        .into_data_stream()
        .inspect_ok(move |b| {
            metrics.bytes_received.fetch_add(b.len() as u64, Relaxed);
        })
        .map_err(|e| std::io::Error::other(Transport(e)));
    let reader = StreamReader::new(wire);
    let reader = tokio::io::BufReader::with_capacity(CHUNK, reader);
    match enc {
        Encoding::Gzip => {
            let mut d = GzipDecoder::new(reader);
            d.multiple_members(true);
            ReaderStream::with_capacity(d, CHUNK).boxed()
        }
        Encoding::Deflate => ReaderStream::with_capacity(ZlibDecoder::new(reader), CHUNK).boxed(),
        Encoding::Br => ReaderStream::with_capacity(BrotliDecoder::new(reader), CHUNK).boxed(),
        Encoding::Zstd => ReaderStream::with_capacity(ZstdDecoder::new(reader), CHUNK).boxed(),
    }
}

/// Sorts a decoding-stream error into transport failure or corrupt data.
pub(crate) fn classify(e: std::io::Error) -> Error {
    let transport = e
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<Transport>().is_some());
    if transport {
        Error::new(ErrorKind::Io, "response body failed").with_source(e)
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
