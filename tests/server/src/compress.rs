//! Content codings: gzip, deflate (zlib-wrapped, as HTTP means it), br and zstd.
//!
//! Compressed bodies and bombs are built once per (coding, size) and cached for the process;
//! a bomb is built by streaming zeros through the encoder, never holding them in memory.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, LazyLock, Mutex};

use async_compression::Level;
use async_compression::tokio::bufread as codec;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::OnceCell;

use crate::stats::lock;

/// A content coding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Coding {
    Gzip,
    Deflate,
    Br,
    Zstd,
}

impl Coding {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Some(Self::Gzip),
            "deflate" => Some(Self::Deflate),
            "br" => Some(Self::Br),
            "zstd" => Some(Self::Zstd),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
            Self::Br => "br",
            Self::Zstd => "zstd",
        }
    }
}

async fn read_all(mut r: impl AsyncRead + Unpin) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).await?;
    Ok(out)
}

/// Compresses `input`, read from an async buffered reader.
async fn encode_reader(
    coding: Coding,
    input: impl tokio::io::AsyncBufRead + Unpin,
    level: Level,
) -> io::Result<Vec<u8>> {
    match coding {
        Coding::Gzip => read_all(codec::GzipEncoder::with_quality(input, level)).await,
        Coding::Deflate => read_all(codec::ZlibEncoder::with_quality(input, level)).await,
        Coding::Br => read_all(codec::BrotliEncoder::with_quality(input, level)).await,
        Coding::Zstd => read_all(codec::ZstdEncoder::with_quality(input, level)).await,
    }
}

/// Compresses `data`.
pub(crate) async fn encode(coding: Coding, data: &[u8]) -> io::Result<Vec<u8>> {
    // Brotli's default (quality 11) is far too slow for multi-megabyte test bodies.
    let level = match coding {
        Coding::Br => Level::Precise(5),
        _ => Level::Default,
    };
    encode_reader(coding, data, level).await
}

/// Decompresses `data`.
pub(crate) async fn decode(coding: Coding, data: &[u8]) -> io::Result<Vec<u8>> {
    match coding {
        Coding::Gzip => {
            let mut d = codec::GzipDecoder::new(data);
            d.multiple_members(true);
            read_all(d).await
        }
        // Some clients send raw deflate for "deflate"; accept both.
        Coding::Deflate => match read_all(codec::ZlibDecoder::new(data)).await {
            Ok(out) => Ok(out),
            Err(_) => read_all(codec::DeflateDecoder::new(data)).await,
        },
        Coding::Br => read_all(codec::BrotliDecoder::new(data)).await,
        Coding::Zstd => read_all(codec::ZstdDecoder::new(data)).await,
    }
}

type Cache = Mutex<HashMap<(Coding, u64, bool), Arc<OnceCell<Bytes>>>>;

/// Cached compressed bodies, keyed by (coding, size, is-bomb).
static CACHE: LazyLock<Cache> = LazyLock::new(Cache::default);

/// Entries beyond this many are built on each request instead of cached.
const CACHE_MAX: usize = 256;

async fn cached<F, Fut>(key: (Coding, u64, bool), build: F) -> io::Result<Bytes>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = io::Result<Bytes>>,
{
    let cell = {
        let mut cache = lock(&CACHE);
        if cache.len() >= CACHE_MAX && !cache.contains_key(&key) {
            None
        } else {
            Some(cache.entry(key).or_default().clone())
        }
    };
    match cell {
        Some(cell) => cell.get_or_try_init(build).await.cloned(),
        None => build().await,
    }
}

/// The JSON document of exactly `size` bytes (at least the bare document) that the
/// compression endpoints serve before compressing.
pub(crate) fn json_of_size(coding: &str, size: u64) -> Vec<u8> {
    let head = format!("{{\"coding\":\"{coding}\",\"pad\":\"");
    let tail = "\"}";
    let pad = usize::try_from(size)
        .unwrap_or(usize::MAX)
        .saturating_sub(head.len() + tail.len());
    let mut out = Vec::with_capacity(head.len() + pad + tail.len());
    out.extend_from_slice(head.as_bytes());
    out.extend(b"wirecore ".iter().copied().cycle().take(pad));
    out.extend_from_slice(tail.as_bytes());
    out
}

/// The compressed form of [`json_of_size`].
pub(crate) async fn compressed_json(coding: Coding, size: u64) -> io::Result<Bytes> {
    cached((coding, size, false), || async move {
        let doc = json_of_size(coding.as_str(), size);
        encode(coding, &doc).await.map(Bytes::from)
    })
    .await
}

/// A small body that decompresses to `size` zero bytes.
pub(crate) async fn bomb(coding: Coding, size: u64) -> io::Result<Bytes> {
    cached((coding, size, true), || async move {
        let handle = tokio::runtime::Handle::current();
        // Gigabytes through an encoder take seconds of CPU: keep them off the workers.
        tokio::task::spawn_blocking(move || {
            handle.block_on(async {
                let zeros = BufReader::with_capacity(256 * 1024, tokio::io::repeat(0).take(size));
                let level = match coding {
                    Coding::Br => Level::Precise(1),
                    Coding::Zstd => Level::Precise(3),
                    Coding::Gzip | Coding::Deflate => Level::Best,
                };
                encode_reader(coding, zeros, level).await
            })
        })
        .await
        .map_err(io::Error::other)?
        .map(Bytes::from)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_coding_round_trips() {
        for coding in [Coding::Gzip, Coding::Deflate, Coding::Br, Coding::Zstd] {
            let doc = json_of_size(coding.as_str(), 5000);
            assert_eq!(doc.len(), 5000);
            let packed = encode(coding, &doc).await.unwrap();
            assert!(packed.len() < 1000, "{coding:?}");
            assert_eq!(decode(coding, &packed).await.unwrap(), doc);
        }
    }

    #[test]
    fn tiny_sizes_give_the_bare_document() {
        assert_eq!(json_of_size("gzip", 1), br#"{"coding":"gzip","pad":""}"#);
    }
}
