//! Entry points for the fuzz targets in `fuzz/` only. Not a stable API: hidden from the docs.

use crate::error::Error;

/// Resolves a redirect's `Location` against the URL it answered, as the redirect loop does.
pub fn resolve_location(base: &str, location: &str) -> Result<String, Error> {
    let base = crate::request::parse_url(base)?;
    crate::client::resolve_location(&base, location).map(|u| u.to_string())
}

/// Feeds `data` to the HTTP/2 SETTINGS sniffer as reads ending at each of `cuts` (offsets,
/// any order, out-of-range ones ignored); returns the `SETTINGS_MAX_CONCURRENT_STREAMS` it
/// learnt (`u32::MAX` when none) and whether it saw a whole non-ACK SETTINGS frame.
pub fn sniff_settings(data: &[u8], cuts: &[usize]) -> (u32, bool) {
    let mut ends: Vec<usize> = cuts.iter().copied().filter(|&c| c < data.len()).collect();
    ends.sort_unstable();
    ends.dedup();
    ends.push(data.len());
    let mut start = 0;
    let chunks = ends.into_iter().map(|end| {
        let c = &data[start..end];
        start = end;
        c
    });
    crate::pool::scan_h2_chunks(chunks)
}

/// What [`decode_limited`] returns: the decoded length, or the error the body failed with.
pub type Decoded = Result<u64, Error>;

/// Decodes `wire` (sent in `chunk`-byte reads) as a response body with this
/// `Content-Encoding`, under `limits.max_response_body_bytes` = `max_bytes` and
/// `limits.max_decompression_ratio` = `max_ratio` (0: none), as a response body is; the
/// decoded bytes are counted, not kept. Without a coding it decodes, the body passes through
/// (under the same size limit).
pub fn decode_limited(
    content_encoding: &str,
    wire: &[u8],
    chunk: usize,
    max_bytes: u64,
    max_ratio: u32,
) -> Decoded {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    use futures_util::StreamExt as _;

    use crate::compress::Decoder;
    use crate::config::Encoding;

    let mut headers = http::HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_str(content_encoding) {
        headers.insert(http::header::CONTENT_ENCODING, value);
    }
    let all = [
        Encoding::Gzip,
        Encoding::Deflate,
        Encoding::Br,
        Encoding::Zstd,
    ];
    let layers = match crate::compress::decoder(&headers, &all) {
        None => Vec::new(),
        Some(Decoder::Refused(why)) => return Err(Error::new(crate::ErrorKind::Decode, why)),
        Some(Decoder::Layers(l)) => l,
    };
    let counted = Arc::new(AtomicU64::new(0));
    let chunks: Vec<bytes::Bytes> = wire
        .chunks(chunk.max(1))
        .map(bytes::Bytes::copy_from_slice)
        .collect();
    let seen = counted.clone();
    let stream = futures_util::stream::iter(chunks).map(move |b| {
        seen.fetch_add(b.len() as u64, Relaxed);
        Ok(b)
    });
    let decoded = crate::compress::decode_stream(stream, &layers);
    let mut body = crate::body::Body::decoded(decoded, counted, max_bytes, max_ratio);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| Error::new(crate::ErrorKind::Internal, e.to_string()))?;
    rt.block_on(async {
        let mut n = 0u64;
        while let Some(c) = body.next().await {
            n += c?.len() as u64;
        }
        Ok(n)
    })
}

/// Encodes `body` as a request body is with `compression.request` = zstd (`zstd`) or gzip.
pub fn encode(body: &[u8], zstd: bool) -> Result<Vec<u8>, Error> {
    let enc = if zstd {
        crate::config::Encoding::Zstd
    } else {
        crate::config::Encoding::Gzip
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| Error::new(crate::ErrorKind::Internal, e.to_string()))?;
    rt.block_on(crate::compress::encode(body, enc))
        .map(|b| b.to_vec())
}
