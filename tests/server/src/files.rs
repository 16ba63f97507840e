//! Static files under one directory (`wirecore serve --dir`): ETag / Last-Modified with 304,
//! `Cache-Control`, single byte ranges (206 / 416), content types by extension, index files,
//! gzip / br / zstd by `Accept-Encoding`.
//!
//! A request path never leaves the directory: `..` segments, NUL and malformed escapes are
//! refused before the file system is touched, and a symlink resolving outside it is missing.

use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::stream;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use http_body::Frame;

use crate::body::Body;
use crate::compress::{self, Coding};
use crate::routes::{Reject, with_type};
use crate::stats::lock;

/// Files up to this size are kept in memory (and may be compressed); larger ones stream.
const IN_MEMORY_MAX: u64 = 1 << 20;
/// Memory the cache may hold; past it the cache starts over (files are re-read on demand).
const CACHE_BYTES_MAX: usize = 64 << 20;
/// Smaller bodies are not worth compressing.
const COMPRESS_MIN: usize = 256;
/// Read size when streaming a large file.
const CHUNK: usize = 64 * 1024;
/// Codings offered, in the server's order of preference among equal q-values.
const CODINGS: [Coding; 3] = [Coding::Zstd, Coding::Br, Coding::Gzip];

/// The served directory and its cache.
pub(crate) struct Files {
    root: PathBuf,
    index: Vec<String>,
    cache_control: Option<HeaderValue>,
    compress: bool,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<PathBuf, Arc<Entry>>,
    bytes: usize,
}

/// One file as last seen on disk.
struct Entry {
    path: PathBuf,
    len: u64,
    mtime: SystemTime,
    /// The identity representation's tag, without quotes; variants append `-gzip` etc.
    tag: String,
    last_modified: HeaderValue,
    content_type: &'static str,
    /// The content, for files up to [`IN_MEMORY_MAX`].
    body: Option<Bytes>,
    /// Compressed forms, built on first request.
    variants: Mutex<[Option<Variant>; 3]>,
}

/// A compressed form of an entry.
#[derive(Clone)]
enum Variant {
    Smaller(Bytes),
    /// Compressing did not help: send identity.
    NotSmaller,
}

/// What a `Range` header asks for.
enum Ranged {
    /// Bytes `start..=end`.
    Bytes(u64, u64),
    /// 416.
    Unsatisfiable,
}

impl Files {
    /// Serves `root`, which must be a directory.
    pub(crate) fn new(
        root: &Path,
        index: Vec<String>,
        cache_control: Option<&str>,
        compress: bool,
    ) -> io::Result<Self> {
        let root = std::fs::canonicalize(root)?;
        if !root.is_dir() {
            return Err(io::Error::other(format!(
                "{} is not a directory",
                root.display()
            )));
        }
        let cache_control = cache_control
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|_| io::Error::other("Cache-Control value is not a valid header value"))?;
        Ok(Self {
            root,
            index,
            cache_control,
            compress,
            cache: Mutex::default(),
        })
    }

    /// Bytes of file content held in memory now.
    pub(crate) fn cached_bytes(&self) -> usize {
        lock(&self.cache).bytes
    }

    /// The response for a GET or HEAD of `parts`, or `None` when no file is there.
    pub(crate) async fn serve(&self, parts: &Parts) -> Option<Response<Body>> {
        if parts.method != Method::GET && parts.method != Method::HEAD {
            return None;
        }
        let rel = match relative_path(parts.uri.path()) {
            Ok(rel) => rel,
            Err(reject) => return Some(reject.into_response()),
        };
        let mut path = self.root.join(&rel);
        // A stat is microseconds on a local disk; not worth a blocking-pool hop per request.
        let meta = std::fs::metadata(&path).ok()?;
        if meta.is_dir() {
            if !parts.uri.path().ends_with('/') {
                let mut location = format!("{}/", parts.uri.path());
                if let Some(q) = parts.uri.query() {
                    location.push('?');
                    location.push_str(q);
                }
                let mut resp = Response::new(Body::empty());
                *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
                resp.headers_mut()
                    .insert(header::LOCATION, HeaderValue::from_str(&location).ok()?);
                return Some(resp);
            }
            path = self
                .index
                .iter()
                .map(|name| path.join(name))
                .find(|p| p.is_file())?;
        }
        let entry = match self.entry(&path, meta).await {
            Ok(Some(e)) => e,
            Ok(None) => return None,
            Err(e) => {
                return Some(
                    Reject::new(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()).into_response(),
                );
            }
        };
        Some(self.respond(parts, &entry).await)
    }

    /// The cached entry for `path`, refreshed when its size or mtime changed; `None` when it
    /// is not a regular file inside the root.
    async fn entry(&self, path: &Path, meta: std::fs::Metadata) -> io::Result<Option<Arc<Entry>>> {
        let meta = if meta.is_dir() {
            // An index file: stat it.
            let Ok(m) = std::fs::metadata(path) else {
                return Ok(None);
            };
            m
        } else {
            meta
        };
        if !meta.is_file() {
            return Ok(None);
        }
        let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
        if let Some(e) = lock(&self.cache).entries.get(path)
            && e.len == meta.len()
            && e.mtime == mtime
        {
            return Ok(Some(e.clone()));
        }
        // Only new or changed files pay for the symlink check.
        let real = std::fs::canonicalize(path)?;
        if !real.starts_with(&self.root) {
            return Ok(None);
        }
        let len = meta.len();
        let body = if len <= IN_MEMORY_MAX {
            let real = real.clone();
            let data = tokio::task::spawn_blocking(move || std::fs::read(real))
                .await
                .map_err(io::Error::other)??;
            Some(Bytes::from(data))
        } else {
            None
        };
        let since_epoch = mtime.duration_since(UNIX_EPOCH).unwrap_or_default();
        let entry = Arc::new(Entry {
            tag: format!("{len:x}-{:x}", since_epoch.as_nanos()),
            last_modified: HeaderValue::from_str(&httpdate::fmt_http_date(mtime))
                .map_err(io::Error::other)?,
            content_type: content_type(&real),
            path: real,
            len,
            mtime,
            body,
            variants: Mutex::default(),
        });
        let mut cache = lock(&self.cache);
        let size = entry.body.as_ref().map_or(0, Bytes::len);
        if cache.bytes + size > CACHE_BYTES_MAX {
            cache.entries.clear();
            cache.bytes = 0;
        }
        cache.bytes += size;
        if let Some(old) = cache.entries.insert(path.to_owned(), entry.clone()) {
            cache.bytes -= old.body.as_ref().map_or(0, Bytes::len);
        }
        Ok(Some(entry))
    }

    async fn respond(&self, parts: &Parts, entry: &Arc<Entry>) -> Response<Body> {
        let headers = &parts.headers;
        let compressible = self.compress && entry.body.is_some() && is_compressible(entry);
        let mut resp = if not_modified(headers, entry) {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r.headers_mut()
                .insert(header::ETAG, quoted(&entry.tag, None));
            r
        } else if let Some(range) = requested_range(headers, entry) {
            if let Ranged::Bytes(start, end) = range {
                partial(entry, start, end)
            } else {
                let mut r = Reject::new(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable")
                    .into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", entry.len)) {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                r
            }
        } else {
            let coding = if compressible {
                preferred_coding(headers)
            } else {
                None
            };
            let encoded = match coding {
                Some(c) => variant(entry, c).await.map(|b| (c, b)),
                None => None,
            };
            if let Some((coding, bytes)) = encoded {
                let mut r = with_type(entry.content_type, Body::full(bytes));
                r.headers_mut().insert(
                    header::CONTENT_ENCODING,
                    HeaderValue::from_static(coding.as_str()),
                );
                r.headers_mut()
                    .insert(header::ETAG, quoted(&entry.tag, Some(coding)));
                r
            } else {
                let mut r = with_type(entry.content_type, whole(entry));
                r.headers_mut()
                    .insert(header::ETAG, quoted(&entry.tag, None));
                r
            }
        };
        let h = resp.headers_mut();
        h.insert(header::LAST_MODIFIED, entry.last_modified.clone());
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if let Some(cc) = &self.cache_control {
            h.insert(header::CACHE_CONTROL, cc.clone());
        }
        if compressible {
            h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        if parts.method == Method::HEAD {
            // Keep the headers of the GET, including its length, without the body.
            let len = http_body::Body::size_hint(resp.body()).exact();
            let (mut head, _) = resp.into_parts();
            if let Some(len) = len {
                head.headers
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            }
            return Response::from_parts(head, Body::empty());
        }
        resp
    }
}

/// The request path as segments below the root: percent-decoded, `.` dropped; `..`, NUL,
/// backslashes and malformed escapes refused (400).
fn relative_path(raw: &str) -> Result<PathBuf, Reject> {
    let bad = |why: &str| Reject::new(StatusCode::BAD_REQUEST, why);
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad("malformed percent-escape in path"))?;
            decoded.push(hex);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    let decoded = String::from_utf8(decoded).map_err(|_| bad("path is not UTF-8"))?;
    if decoded.contains(['\0', '\\']) {
        return Err(bad("path contains NUL or a backslash"));
    }
    let mut rel = PathBuf::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Err(bad("path escapes the served directory")),
            s => rel.push(s),
        }
    }
    Ok(rel)
}

fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("txt" | "log") => "text/plain; charset=utf-8",
        Some("md") => "text/markdown; charset=utf-8",
        Some("csv") => "text/csv; charset=utf-8",
        Some("xml") => "application/xml",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("ico") => "image/x-icon",
        Some("wasm") => "application/wasm",
        Some("pdf") => "application/pdf",
        Some("woff") => "font/woff",
        Some("woff2") => "font/woff2",
        Some("mp4") => "video/mp4",
        Some("webm") => "video/webm",
        Some("mp3") => "audio/mpeg",
        Some("zip") => "application/zip",
        Some("gz") => "application/gzip",
        Some("tar") => "application/x-tar",
        _ => "application/octet-stream",
    }
}

fn is_compressible(entry: &Entry) -> bool {
    let t = entry.content_type;
    entry.len >= COMPRESS_MIN as u64
        && (t.starts_with("text/")
            || t.starts_with("application/json")
            || t.starts_with("application/xml")
            || t.starts_with("application/wasm")
            || t.starts_with("image/svg+xml"))
}

/// The coding to send for this `Accept-Encoding`: the highest q-value, ties broken by
/// [`CODINGS`]' order; `None` for identity.
pub(crate) fn preferred_coding(headers: &http::HeaderMap) -> Option<Coding> {
    let mut best: Option<(Coding, u16, usize)> = None;
    let mut star: Option<u16> = None;
    let mut listed = [false; 3];
    for item in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .map_or(1000, |q| (q.clamp(0.0, 1.0) * 1000.0) as u16);
        if name == "*" {
            star = Some(q);
            continue;
        }
        let Some(rank) = CODINGS
            .iter()
            .position(|c| Coding::parse(&name) == Some(*c))
        else {
            continue;
        };
        listed[rank] = true;
        consider(&mut best, CODINGS[rank], q, rank);
    }
    if let Some(q) = star {
        for (rank, c) in CODINGS.iter().enumerate() {
            if !listed[rank] {
                consider(&mut best, *c, q, rank);
            }
        }
    }
    best.map(|(c, _, _)| c)
}

fn consider(best: &mut Option<(Coding, u16, usize)>, c: Coding, q: u16, rank: usize) {
    if q == 0 {
        return;
    }
    if best.is_none_or(|(_, bq, br)| q > bq || (q == bq && rank < br)) {
        *best = Some((c, q, rank));
    }
}

/// The compressed form of an in-memory entry, or `None` when it is not smaller.
async fn variant(entry: &Entry, coding: Coding) -> Option<Bytes> {
    let slot = CODINGS.iter().position(|c| *c == coding)?;
    if let Some(v) = &lock(&entry.variants)[slot] {
        return match v {
            Variant::Smaller(b) => Some(b.clone()),
            Variant::NotSmaller => None,
        };
    }
    let body = entry.body.as_ref()?;
    let encoded = compress::encode(coding, body)
        .await
        .ok()
        .filter(|e| e.len() < body.len())
        .map(Bytes::from);
    lock(&entry.variants)[slot] = Some(
        encoded
            .clone()
            .map_or(Variant::NotSmaller, Variant::Smaller),
    );
    encoded
}

fn quoted(tag: &str, coding: Option<Coding>) -> HeaderValue {
    let text = match coding {
        Some(c) => format!("\"{tag}-{}\"", c.as_str()),
        None => format!("\"{tag}\""),
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// Whether a conditional GET may get 304: `If-None-Match` (weak comparison, any of the
/// file's representations), else `If-Modified-Since`.
fn not_modified(headers: &http::HeaderMap, entry: &Entry) -> bool {
    let mut inm = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
        .peekable();
    if inm.peek().is_some() {
        return inm.any(|t| {
            t == "*"
                || t == entry.tag
                || t.strip_prefix(entry.tag.as_str())
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|c| Coding::parse(c).is_some())
        });
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .is_some_and(|since| {
            let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            secs(entry.mtime) <= secs(since)
        })
}

/// `None`: no (usable) Range header, send the whole file. Several ranges get the whole file.
fn requested_range(headers: &http::HeaderMap, entry: &Entry) -> Option<Ranged> {
    let spec = headers.get(header::RANGE)?.to_str().ok()?;
    if let Some(if_range) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) {
        let fresh = if if_range.starts_with('"') {
            if_range.trim_matches('"') == entry.tag
        } else {
            entry.last_modified.to_str().ok() == Some(if_range.trim())
        };
        if !fresh {
            return None;
        }
    }
    let set = spec.trim().strip_prefix("bytes=")?;
    if set.contains(',') {
        return None;
    }
    let (first, last) = set.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let len = entry.len;
    let range = if first.is_empty() {
        let suffix: u64 = last.parse().ok()?;
        (suffix > 0 && len > 0).then(|| (len.saturating_sub(suffix), len - 1))
    } else {
        let start: u64 = first.parse().ok()?;
        let end = if last.is_empty() {
            len.saturating_sub(1)
        } else {
            let end: u64 = last.parse().ok()?;
            if end < start {
                return None;
            }
            end.min(len.saturating_sub(1))
        };
        (start < len).then_some((start, end))
    };
    Some(range.map_or(Ranged::Unsatisfiable, |(a, b)| Ranged::Bytes(a, b)))
}

fn partial(entry: &Entry, start: u64, end: u64) -> Response<Body> {
    let body = match &entry.body {
        Some(b) => Body::full(b.slice(start as usize..=end as usize)),
        None => file_stream(entry.path.clone(), start, end - start + 1),
    };
    let mut r = with_type(entry.content_type, body);
    *r.status_mut() = StatusCode::PARTIAL_CONTENT;
    if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{}", entry.len)) {
        r.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    r.headers_mut()
        .insert(header::ETAG, quoted(&entry.tag, None));
    r
}

fn whole(entry: &Entry) -> Body {
    match &entry.body {
        Some(b) if b.is_empty() => Body::empty(),
        Some(b) => Body::full(b.clone()),
        None => file_stream(entry.path.clone(), 0, entry.len),
    }
}

/// `len` bytes of the file from `start`, read on the blocking pool a chunk at a time.
fn file_stream(path: PathBuf, start: u64, len: u64) -> Body {
    let state = (None::<std::fs::File>, path, start, len);
    let frames = stream::unfold(state, |(file, path, pos, left)| async move {
        if left == 0 {
            return None;
        }
        let read = tokio::task::spawn_blocking(move || {
            let mut file = if let Some(f) = file {
                f
            } else {
                let mut f = std::fs::File::open(&path)?;
                f.seek(SeekFrom::Start(pos))?;
                f
            };
            let mut buf = vec![0; CHUNK.min(usize::try_from(left).unwrap_or(CHUNK))];
            let n = file.read(&mut buf)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while being sent",
                ));
            }
            buf.truncate(n);
            Ok((file, path, buf))
        })
        .await
        .map_err(io::Error::other)
        .and_then(|r| r);
        match read {
            Ok((file, path, buf)) => {
                let n = buf.len() as u64;
                let next = (Some(file), path, pos + n, left - n);
                Some((Ok(Frame::data(Bytes::from(buf))), next))
            }
            // An error ends the body (hyper then drops the connection or resets the stream).
            Err(e) => Some((Err(e), (None, PathBuf::new(), pos, 0))),
        }
    });
    Body::stream(Box::pin(frames), Some(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_bad_escapes_are_refused() {
        assert_eq!(relative_path("/a/./b/").ok(), Some(PathBuf::from("a/b")));
        assert_eq!(relative_path("/a%20b").ok(), Some(PathBuf::from("a b")));
        for bad in [
            "/../x",
            "/a/../../x",
            "/%2e%2e/x",
            "/a/..%2f..%2fx",
            "/a%00b",
            "/a%5c..",
            "/%zz",
        ] {
            assert!(relative_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn accept_encoding_picks_highest_q_then_server_order() {
        let pick = |v: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            preferred_coding(&h).map(Coding::as_str)
        };
        assert_eq!(pick("gzip, br"), Some("br"));
        assert_eq!(pick("gzip;q=1, br;q=0.5"), Some("gzip"));
        assert_eq!(pick("identity"), None);
        assert_eq!(pick("*;q=0.1, zstd;q=0"), Some("br"));
        assert_eq!(pick("br;q=0, gzip;q=0"), None);
        assert_eq!(pick("gzip, deflate, br, zstd"), Some("zstd"));
    }
}
