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
    // Boxed: an encoder's state is ~11 KiB, which would otherwise size every request's
    // future (a route that may compress is one state machine with a /delay that sleeps).
    Box::pin(encode_reader(coding, data, level)).await
}

/// Decompresses `data`.
pub(crate) async fn decode(coding: Coding, data: &[u8]) -> io::Result<Vec<u8>> {
    // Boxed, as in `encode`.
    Box::pin(decode_inner(coding, data)).await
}

async fn decode_inner(coding: Coding, data: &[u8]) -> io::Result<Vec<u8>> {
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
        // Even spliced, a bomb takes CPU time: keep it off the workers.
        tokio::task::spawn_blocking(move || match coding {
            Coding::Gzip => spliced_gzip(size),
            Coding::Deflate => spliced_zlib(size),
            Coding::Br => match spliced_brotli(size)? {
                Some(out) => Ok(out),
                None => tokio::runtime::Handle::current().block_on(encode_zeros(coding, size)),
            },
            Coding::Zstd => Ok(rle_zstd(size)),
        })
        .await
        .map_err(io::Error::other)?
        .map(Bytes::from)
    })
    .await
}

/// A bomb of zeros whose compressed form is about `wire` bytes (at least one MiB of zeros).
pub(crate) async fn bomb_of_wire_size(coding: Coding, wire: u64) -> io::Result<Bytes> {
    const MIB: u64 = SPLICE as u64;
    // Spliced bombs grow by the same block per MiB of zeros: measure it once.
    let per_mib = match coding {
        Coding::Zstd => rle_zstd(2 * MIB).len() - rle_zstd(MIB).len(),
        _ => bomb(coding, 3 * MIB).await?.len() - bomb(coding, 2 * MIB).await?.len(),
    };
    let mibs = (wire / per_mib.max(1) as u64).max(1);
    bomb(coding, mibs * MIB).await
}

/// Streams `size` zeros through the encoder, a buffer at a time.
async fn encode_zeros(coding: Coding, size: u64) -> io::Result<Vec<u8>> {
    let zeros = BufReader::with_capacity(1 << 20, tokio::io::repeat(0).take(size));
    encode_reader(coding, zeros, Level::Fastest).await
}

/// A zstd frame of `size` zeros made of RLE blocks (RFC 8878 3.1.1.2), 4 bytes per 128 KiB.
fn rle_zstd(size: u64) -> Vec<u8> {
    const BLOCK: u64 = 128 * 1024;
    // Magic; a descriptor with no content size, checksum or dictionary; a 128 KiB window.
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, (17 - 10) << 3];
    if size == 0 {
        // One empty, last, raw block.
        out.extend_from_slice(&[1, 0, 0]);
        return out;
    }
    let mut left = size;
    while left > 0 {
        let n = left.min(BLOCK);
        left -= n;
        let header = (n << 3) | (1 << 1) | u64::from(left == 0);
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.push(0);
    }
    out
}

/// Zeros are spliced in units of this many bytes.
const SPLICE: usize = 1 << 20;

/// A raw deflate stream of `size` zeros, built from a few compressed blocks.
///
/// Each block is ended with a sync flush, so it is byte-aligned and decodes the same
/// anywhere after at least 32 KiB of zeros: the block for the second MiB is repeated.
fn spliced_deflate(size: u64) -> io::Result<Vec<u8>> {
    use flate2::{Compress, Compression, FlushCompress};
    let zeros = vec![0u8; SPLICE];
    let mut c = Compress::new(Compression::best(), false);
    let first = (size as usize).min(SPLICE);
    let mut out = deflate_run(&mut c, &zeros[..first], FlushCompress::Sync)?;
    let rest = size - first as u64;
    let (repeats, remainder) = (rest / SPLICE as u64, (rest % SPLICE as u64) as usize);
    if repeats > 0 {
        let block = deflate_run(&mut c, &zeros, FlushCompress::Sync)?;
        out.reserve(block.len() * repeats as usize);
        for _ in 0..repeats {
            out.extend_from_slice(&block);
        }
    }
    out.extend(deflate_run(
        &mut c,
        &zeros[..remainder],
        FlushCompress::Sync,
    )?);
    out.extend(deflate_run(&mut c, &[], FlushCompress::Finish)?);
    Ok(out)
}

/// Compresses all of `input`, then completes `flush`.
fn deflate_run(
    c: &mut flate2::Compress,
    mut input: &[u8],
    flush: flate2::FlushCompress,
) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(16 * 1024);
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity());
        }
        let before = c.total_in();
        let status = c
            .compress_vec(input, &mut out, flush)
            .map_err(io::Error::other)?;
        input = &input[usize::try_from(c.total_in() - before).map_err(io::Error::other)?..];
        let room_left = out.len() < out.capacity();
        if status == flate2::Status::StreamEnd
            || (input.is_empty() && room_left && flush != flate2::FlushCompress::Finish)
        {
            return Ok(out);
        }
    }
}

/// CRC-32 of `size` zeros, by doubling, without reading them.
fn crc_of_zeros(size: u64) -> u32 {
    let zeros = vec![0u8; SPLICE];
    let mut total = crc32fast::Hasher::new();
    let mut power = crc32fast::Hasher::new();
    power.update(&zeros);
    let mut units = size / SPLICE as u64;
    while units > 0 {
        if units & 1 == 1 {
            total.combine(&power);
        }
        let same = power.clone();
        power.combine(&same);
        units >>= 1;
    }
    let mut tail = crc32fast::Hasher::new();
    tail.update(&zeros[..(size % SPLICE as u64) as usize]);
    total.combine(&tail);
    total.finalize()
}

/// A brotli stream of `size` zeros, spliced like [`spliced_deflate`] from flushed
/// meta-blocks; `None` if the encoder's output for successive MiBs differs (no steady state).
fn spliced_brotli(size: u64) -> io::Result<Option<Vec<u8>>> {
    use std::io::Write;
    let zeros = vec![0u8; SPLICE];
    let mut w = brotli::CompressorWriter::new(Vec::new(), 64 * 1024, 5, 22);
    let first = (size as usize).min(SPLICE);
    w.write_all(&zeros[..first])?;
    w.flush()?;
    let mut out = w.get_ref().clone();
    let rest = size - first as u64;
    let (repeats, remainder) = (rest / SPLICE as u64, (rest % SPLICE as u64) as usize);
    if repeats > 0 {
        let mut blocks = Vec::new();
        for _ in 0..2 {
            let start = w.get_ref().len();
            w.write_all(&zeros)?;
            w.flush()?;
            blocks.push(w.get_ref()[start..].to_vec());
        }
        if blocks[0] != blocks[1] {
            return Ok(None);
        }
        out.reserve(blocks[0].len() * repeats as usize);
        for _ in 0..repeats {
            out.extend_from_slice(&blocks[0]);
        }
    }
    let start = w.get_ref().len();
    w.write_all(&zeros[..remainder])?;
    let end = w.into_inner();
    out.extend_from_slice(&end[start..]);
    Ok(Some(out))
}

fn spliced_gzip(size: u64) -> io::Result<Vec<u8>> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 0xff];
    out.extend(spliced_deflate(size)?);
    out.extend_from_slice(&crc_of_zeros(size).to_le_bytes());
    out.extend_from_slice(&(size as u32).to_le_bytes());
    Ok(out)
}

fn spliced_zlib(size: u64) -> io::Result<Vec<u8>> {
    let mut out = vec![0x78, 0xda];
    out.extend(spliced_deflate(size)?);
    // Adler-32 of zeros: the low sum stays 1, the high sum grows by 1 per byte.
    let high = (size % 65521) as u32;
    out.extend_from_slice(&((high << 16) | 1).to_be_bytes());
    Ok(out)
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

    #[tokio::test]
    async fn spliced_bombs_inflate_exactly() {
        for size in [0, 1, 1000, SPLICE as u64, 3 * SPLICE as u64 + 12_345] {
            let gz = spliced_gzip(size).unwrap();
            let out = decode(Coding::Gzip, &gz).await.unwrap();
            assert!(
                out.len() as u64 == size && out.iter().all(|b| *b == 0),
                "gzip {size}"
            );
            let z = spliced_zlib(size).unwrap();
            let mut d = codec::ZlibDecoder::new(&z[..]);
            let mut out = Vec::new();
            d.read_to_end(&mut out).await.unwrap();
            assert!(
                out.len() as u64 == size && out.iter().all(|b| *b == 0),
                "zlib {size}"
            );
        }
        for size in [0, 1000, 3 * SPLICE as u64 + 12_345] {
            let br = spliced_brotli(size).unwrap().expect("steady state");
            let out = decode(Coding::Br, &br).await.unwrap();
            assert!(
                out.len() as u64 == size && out.iter().all(|b| *b == 0),
                "br {size}"
            );
        }
        for size in [0, 1, 128 * 1024, 3 * SPLICE as u64 + 12_345] {
            let out = decode(Coding::Zstd, &rle_zstd(size)).await.unwrap();
            assert!(
                out.len() as u64 == size && out.iter().all(|b| *b == 0),
                "zstd {size}"
            );
        }
        let crc = crc32fast::hash(&vec![0u8; 5 * SPLICE + 7]);
        assert_eq!(crc_of_zeros(5 * SPLICE as u64 + 7), crc);
    }

    #[test]
    fn tiny_sizes_give_the_bare_document() {
        assert_eq!(json_of_size("gzip", 1), br#"{"coding":"gzip","pad":""}"#);
    }
}
