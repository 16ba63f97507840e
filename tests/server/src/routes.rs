//! The endpoints of the plain, TLS and bad-TLS ports.
//!
//! Every request is counted and logged first, then answered by a scripted reply if one is
//! queued for its path, else by the route table. `GET /bytes/N` is the benchmark path: it
//! allocates nothing beyond the log entry.

use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::stream;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body::{Body as _, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Map, Value, json};

use crate::body::{Body, RequestGuard, pattern, pattern_bytes};
use crate::compress::{self, Coding};
use crate::conn::ConnCtx;
use crate::script::{Action, Reply};
use crate::stats::LogEntry;

/// An error hyper turns into a dropped connection (HTTP/1) or a reset stream (HTTP/2).
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A route's answer; `Err` carries an error response (bad parameters and the like).
type Handled = Result<Response<Body>, Reject>;

/// An error response: `{"error": message}` with `status`.
pub(crate) struct Reject {
    status: StatusCode,
    message: String,
}

impl Reject {
    pub(crate) fn new(status: StatusCode, message: &str) -> Self {
        Self {
            status,
            message: message.to_owned(),
        }
    }

    pub(crate) fn into_response(self) -> Response<Body> {
        json_response(self.status, &json!({ "error": self.message }))
    }
}

/// Bodies the reset endpoints claim when the caller gives no size.
const DEFAULT_RESET_BYTES: u64 = 1000;

/// A request whose body has been read.
struct Req {
    parts: http::request::Parts,
    body: Bytes,
    h2: bool,
    /// For `/upload`: the body's length and CRC-32, counted as it streamed by.
    upload: Option<(u64, u32)>,
    /// Requests to this path so far, this one included (0 without a request log).
    served: u64,
}

impl Req {
    fn query(&self) -> &str {
        self.parts.uri.query().unwrap_or("")
    }

    fn num<T: FromStr>(&self, key: &str, default: T) -> Result<T, Reject> {
        match param(self.query(), key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| bad_request(&format!("query parameter {key}={v} is not a number"))),
        }
    }
}

pub(crate) async fn handle(
    ctx: Arc<ConnCtx>,
    req: Request<Incoming>,
) -> Result<Response<Body>, BoxError> {
    let h2 = req.version() == Version::HTTP_2;
    let mut guard = RequestGuard::new(ctx.clone(), h2);
    if req.method() == Method::HEAD {
        // Nobody reads a HEAD response's body, so its end says nothing about cancellation.
        guard.finish();
    }
    if ctx.shared.site.is_some() {
        return crate::site::handle(ctx, guard, req).await;
    }
    let (parts, body) = req.into_parts();
    endpoints(ctx, guard, parts, body).await
}

/// The endpoints (and scripted replies) for a request whose accounting has begun.
pub(crate) async fn endpoints(
    ctx: Arc<ConnCtx>,
    guard: RequestGuard,
    parts: http::request::Parts,
    body: Incoming,
) -> Result<Response<Body>, BoxError> {
    let h2 = parts.version == Version::HTTP_2;
    if parts.uri.path() == "/early" {
        return Ok(early(&parts, body).map(|b| b.with_guard(guard)));
    }
    let mut upload = None;
    let read_timeout = ctx.shared.site.as_ref().and_then(|s| s.read_timeout);
    let body = if body.is_end_stream() {
        Bytes::new()
    } else if parts.uri.path() == "/upload" {
        match within(read_timeout, consume(body)).await {
            Some(r) => upload = Some(r?),
            None => return Ok(request_timeout().map(|b| b.with_guard(guard))),
        }
        Bytes::new()
    } else {
        match within(read_timeout, body.collect()).await {
            Some(r) => r?.to_bytes(),
            None => return Ok(request_timeout().map(|b| b.with_guard(guard))),
        }
    };
    let shared = &ctx.shared;
    let mut served = 0;
    if shared.log.enabled() {
        served = shared.stats.path_requested(parts.uri.path());
        shared.log.push(LogEntry {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            headers: parts.headers.clone(),
            body_len: upload.map_or(body.len() as u64, |(n, _)| n),
            connection_id: ctx.stats.id,
            tls: ctx.tls,
        });
    }
    let path_and_query = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    if let Some(reply) = shared.scripts.take(parts.uri.path(), path_and_query) {
        return scripted(&ctx, guard, reply, h2).await;
    }
    let req = Req {
        parts,
        body,
        h2,
        upload,
        served,
    };
    let resp = route(&ctx, &req)
        .await
        .unwrap_or_else(Reject::into_response);
    Ok(resp.map(|b| b.with_guard(guard)))
}

/// Runs `fut` to its end, or until `limit` passes (`None`).
async fn within<F: Future>(limit: Option<Duration>, fut: F) -> Option<F::Output> {
    match limit {
        Some(d) => tokio::time::timeout(d, fut).await.ok(),
        None => Some(fut.await),
    }
}

/// 408, closing the connection: the rest of a slow body would be read as the next request.
fn request_timeout() -> Response<Body> {
    let mut resp = json_response(
        StatusCode::REQUEST_TIMEOUT,
        &json!({ "error": "request body not received within the read timeout" }),
    );
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Requests held at `/gate`, by key: how many have arrived.
#[derive(Default)]
pub(crate) struct Gates(
    std::sync::Mutex<std::collections::HashMap<String, tokio::sync::watch::Sender<u64>>>,
);

impl Gates {
    /// Forgets every key; requests held at a gate are answered at once.
    pub(crate) fn clear(&self) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// `/gate?key=K&n=N`: holds every request with key K until N of them have arrived (over any
/// connections), then answers them all `{"key":K,"n":N}`: N requests provably in flight at
/// once, whatever the machine's speed (the scale tests). A key counts until the server is reset.
async fn gate(ctx: &Arc<ConnCtx>, req: &Req) -> Handled {
    let key = param(req.query(), "key").unwrap_or_default().into_owned();
    let n: u64 = req.num("n", 1)?;
    let mut arrived = {
        let mut gates = ctx
            .shared
            .gates
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = gates
            .entry(key.clone())
            .or_insert_with(|| tokio::sync::watch::Sender::new(0));
        tx.send_modify(|c| *c += 1);
        tx.subscribe()
    };
    let _ = arrived.wait_for(|c| *c >= n).await;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "key": key, "n": n }),
    ))
}

/// `/early?status=200&drain=0`: answers before reading the request body (a server refusing an
/// upload with 413, or answering at once). With `drain=1` the body is read afterwards, so an
/// HTTP/1.1 connection stays open; otherwise it is dropped unread.
fn early(parts: &http::request::Parts, body: Incoming) -> Response<Body> {
    let query = parts.uri.query().unwrap_or("");
    let code = param(query, "status")
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::OK);
    if param(query, "drain").is_some_and(|d| d == "1") {
        tokio::spawn(async move {
            let _ = body.collect().await;
        });
    } else {
        drop(body);
    }
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = code;
    resp
}

async fn route(ctx: &Arc<ConnCtx>, req: &Req) -> Handled {
    let path = req.parts.uri.path();
    if let Some(n) = path.strip_prefix("/bytes/") {
        return bytes(n);
    }
    if let Some(n) = path.strip_prefix("/status/") {
        return status(n);
    }
    if let Some(ms) = path.strip_prefix("/delay/") {
        let ms: u64 = ms
            .parse()
            .map_err(|_| bad_request("/delay/MS needs a number of milliseconds"))?;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        return Ok(json_response(StatusCode::OK, &json!({ "delay_ms": ms })));
    }
    if let Some(n) = path.strip_prefix("/redirect/") {
        return redirect(n);
    }
    if let Some(coding) = path.strip_prefix('/').and_then(Coding::parse) {
        return compressed(req, coding).await;
    }
    match path {
        "/" => Ok(with_type("text/plain", Body::full("wirecore-testserver\n"))),
        "/json" => Ok(with_type(
            "application/json",
            Body::full(Bytes::from_static(JSON_DOC.as_bytes())),
        )),
        "/echo" => echo(ctx, req).await,
        "/v1/traces" | "/v1/metrics" if req.parts.method == Method::POST => otlp(ctx, req),
        "/upload" => {
            let (len, crc) = req.upload.unwrap_or((0, 0));
            Ok(json_response(
                StatusCode::OK,
                &json!({ "body_len": len, "crc32": crc }),
            ))
        }
        "/headers" => Ok(json_response(
            StatusCode::OK,
            &json!({ "headers": headers_json(&req.parts.headers) }),
        )),
        "/drip" => drip(req),
        "/stream" => chunked_stream(req),
        "/sse" => sse(req),
        "/reset" => {
            let len = req.num("bytes", DEFAULT_RESET_BYTES)?;
            let whole_conn = req.num("conn", 0u8)? != 0;
            let body = pattern_bytes(len.try_into().unwrap_or(usize::MAX))
                .ok_or_else(|| bad_request("bytes must be at most 1 MiB"))?;
            Ok(with_type(
                "application/octet-stream",
                reset_mid_body(ctx.clone(), &body, req.h2, whole_conn),
            ))
        }
        "/etag" => Ok(etag(req)),
        _ if path.starts_with("/cache/") => cached(req).await,
        "/redirect-to" => redirect_to(req),
        "/set-cookie" => set_cookie(req),
        "/retry-after" => retry_after(req),
        "/bomb" => bomb(req).await,
        "/layers" => layers(req).await,
        "/hang" => std::future::pending().await,
        "/gate" => gate(ctx, req).await,
        _ if path.starts_with("/_control/") => Err(Reject::new(
            StatusCode::NOT_FOUND,
            "control endpoints are served on the control port only",
        )),
        _ => Err(Reject::new(StatusCode::NOT_FOUND, "no such endpoint")),
    }
}

const JSON_DOC: &str = r#"{"name":"wirecore","kind":"test document","ok":true,"n":42,"items":[1,2,3],"nested":{"a":"b","pi":3.14159}}"#;

/// Reads a request body without keeping it: (length, CRC-32).
async fn consume(mut body: Incoming) -> Result<(u64, u32), hyper::Error> {
    let mut len = 0;
    let mut crc = crc32fast::Hasher::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            len += data.len() as u64;
            crc.update(&data);
        }
    }
    Ok((len, crc.finalize()))
}

fn bytes(n: &str) -> Handled {
    let n: u64 = n
        .parse()
        .map_err(|_| bad_request("/bytes/N needs a number of bytes"))?;
    let body = match usize::try_from(n).ok().and_then(pattern_bytes) {
        Some(b) => Body::full(b),
        None => Body::pattern(n),
    };
    let mut resp = with_type("application/octet-stream", body);
    if n == 0 {
        // hyper's HTTP/2 side omits the length of an empty body; say it anyway, as HTTP/1 does.
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    }
    Ok(resp)
}

fn status(n: &str) -> Handled {
    let code = n
        .parse::<u16>()
        .ok()
        .filter(|c| *c >= 200)
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| bad_request("/status/N needs a status code from 200 to 999"))?;
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = code;
    Ok(resp)
}

fn redirect(n: &str) -> Handled {
    let n: u64 = n
        .parse()
        .map_err(|_| bad_request("/redirect/N needs a number"))?;
    if n == 0 {
        return Ok(json_response(
            StatusCode::OK,
            &json!({ "redirected": true }),
        ));
    }
    let location = format!("/redirect/{}", n - 1);
    Ok(redirect_response(StatusCode::FOUND, &location))
}

fn redirect_to(req: &Req) -> Handled {
    let url = param(req.query(), "url").ok_or_else(|| bad_request("url is required"))?;
    let code = req.num("status", 302u16)?;
    let code = StatusCode::from_u16(code)
        .ok()
        .filter(StatusCode::is_redirection)
        .ok_or_else(|| bad_request("status must be a 3xx code"))?;
    Ok(redirect_response(code, &url))
}

/// One `Set-Cookie` per `c` parameter; a 302 to `redirect` when given, else the request's
/// headers as `/headers` answers them (so one request shows the `Cookie` it carried).
fn set_cookie(req: &Req) -> Handled {
    let query = req.query();
    let mut resp = match param(query, "redirect") {
        Some(url) => redirect_response(StatusCode::FOUND, &url),
        None => json_response(
            StatusCode::OK,
            &json!({ "headers": headers_json(&req.parts.headers) }),
        ),
    };
    let values = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .filter(|(k, _)| decode_component(k) == "c")
        .map(|(_, v)| decode_component(v));
    for v in values {
        let v = HeaderValue::from_str(&v).map_err(|_| bad_request("c is not a header value"))?;
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

fn redirect_response(code: StatusCode, location: &str) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = code;
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn retry_after(req: &Req) -> Handled {
    let seconds: u64 = req.num("seconds", 1)?;
    let code = req.num("status", 503u16)?;
    let code = StatusCode::from_u16(code).map_err(|_| bad_request("bad status"))?;
    let value = if req.num("date", 0u8)? == 0 {
        seconds.to_string()
    } else {
        httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(seconds))
    };
    let mut resp = json_response(code, &json!({ "retry_after": value }));
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(&value).map_err(|_| bad_request("bad value"))?,
    );
    Ok(resp)
}

fn etag(req: &Req) -> Response<Body> {
    let tag = param(req.query(), "etag").unwrap_or(Cow::Borrowed("wirecore-v1"));
    let quoted = format!("\"{tag}\"");
    let matches = req
        .parts
        .headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == quoted);
    let mut resp = if matches {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        json_response(StatusCode::OK, &json!({ "etag": tag }))
    };
    if let Ok(v) = HeaderValue::from_str(&quoted) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    let cache_control = param(req.query(), "cache_control");
    let cache_control = cache_control.as_deref().unwrap_or("no-cache");
    if let Ok(v) = HeaderValue::from_str(cache_control) {
        resp.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    resp
}

/// `/cache/NAME`: a response with the caching headers the query asks for. `cache_control`,
/// `vary`, `age` and `set_cookie` (as `Set-Cookie`) are sent as given; `etag=T` sends
/// `ETag: "T"` and answers 304 to a matching `If-None-Match`; `last_modified=S` sends the HTTP
/// date S seconds after the epoch and answers 304 to an `If-Modified-Since` at or after it;
/// `expires=S` sends a date S seconds from now (negative: past); `delay_ms` waits first. Every
/// answer carries `x-served: N` (the Nth request to this path); the body is
/// `{"path", "served", "vary": {header: value}}`.
async fn cached(req: &Req) -> Handled {
    let q = req.query();
    let delay = req.num("delay_ms", 0u64)?;
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let headers = &req.parts.headers;
    let etag = param(q, "etag").map(|t| format!("\"{t}\""));
    let last_modified = match param(q, "last_modified") {
        None => None,
        Some(s) => Some(
            s.parse::<u64>()
                .map_err(|_| bad_request("last_modified must be seconds since the epoch"))?,
        ),
    };
    let etag_matches = etag.as_ref().is_some_and(|tag| {
        headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == tag)
    });
    let unmodified = !headers.contains_key(header::IF_NONE_MATCH)
        && last_modified.is_some_and(|lm| {
            headers
                .get(header::IF_MODIFIED_SINCE)
                .and_then(|v| httpdate::parse_http_date(v.to_str().ok()?).ok())
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .is_some_and(|since| since.as_secs() >= lm)
        });
    let vary = param(q, "vary");
    let mut resp = if etag_matches || unmodified {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut seen = Map::new();
        for name in vary.as_deref().unwrap_or("").split(',') {
            let name = name.trim().to_ascii_lowercase();
            if name.is_empty() || name == "*" {
                continue;
            }
            let v = headers.get(&name).and_then(|v| v.to_str().ok());
            seen.insert(name, v.map_or(Value::Null, |v| Value::String(v.to_owned())));
        }
        let doc = json!({ "path": req.parts.uri.path(), "served": req.served, "vary": seen });
        json_response(StatusCode::OK, &doc)
    };
    let h = resp.headers_mut();
    let mut set = |name: HeaderName, value: &str| -> Result<(), Reject> {
        let v = HeaderValue::from_str(value).map_err(|_| bad_request("bad header value"))?;
        h.insert(name, v);
        Ok(())
    };
    set(HeaderName::from_static("x-served"), &req.served.to_string())?;
    if let Some(cc) = param(q, "cache_control") {
        set(header::CACHE_CONTROL, &cc)?;
    }
    if let Some(v) = &vary {
        set(header::VARY, v)?;
    }
    if let Some(age) = param(q, "age") {
        set(header::AGE, &age)?;
    }
    if let Some(cookie) = param(q, "set_cookie") {
        set(header::SET_COOKIE, &cookie)?;
    }
    if let Some(tag) = &etag {
        set(header::ETAG, tag)?;
    }
    if let Some(lm) = last_modified {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(lm);
        set(header::LAST_MODIFIED, &httpdate::fmt_http_date(at))?;
    }
    if param(q, "expires").is_some() {
        let secs = req.num("expires", 0i64)?;
        let now = SystemTime::now();
        let at = if secs >= 0 {
            now + Duration::from_secs(secs.unsigned_abs())
        } else {
            now - Duration::from_secs(secs.unsigned_abs())
        };
        set(header::EXPIRES, &httpdate::fmt_http_date(at))?;
    }
    Ok(resp)
}

async fn compressed(req: &Req, coding: Coding) -> Handled {
    let size = req.num("size", 256u64)?;
    let body = compress::compressed_json(coding, size)
        .await
        .map_err(|e| Reject::new(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
    let mut resp = with_type("application/json", Body::full(body));
    resp.headers_mut().insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(coding.as_str()),
    );
    Ok(resp)
}

async fn bomb(req: &Req) -> Handled {
    let coding = param(req.query(), "encoding");
    let coding = Coding::parse(coding.as_deref().unwrap_or("gzip"))
        .ok_or_else(|| bad_request("encoding must be gzip, deflate, br or zstd"))?;
    let internal =
        |e: std::io::Error| Reject::new(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
    let body = if param(req.query(), "wire").is_some() {
        let wire = req.num("wire", 0u64)?;
        if wire > 64 << 20 {
            return Err(bad_request("wire must be at most 64 MiB"));
        }
        compress::bomb_of_wire_size(coding, wire)
            .await
            .map_err(internal)?
    } else {
        let size = req.num("size", 1u64 << 30)?;
        compress::bomb(coding, size).await.map_err(internal)?
    };
    let mut resp = with_type("application/octet-stream", Body::full(body));
    resp.headers_mut().insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(coding.as_str()),
    );
    Ok(resp)
}

/// The JSON document of `size` bytes, encoded with each coding of `codings` in turn (so
/// `Content-Encoding` lists them in that order).
async fn layers(req: &Req) -> Handled {
    let size = req.num("size", 256u64)?;
    if size > 16 << 20 {
        return Err(bad_request("size must be at most 16 MiB"));
    }
    let list = param(req.query(), "codings").unwrap_or(Cow::Borrowed("gzip"));
    let mut names = Vec::new();
    let mut body = compress::json_of_size("layers", size);
    for name in list.split(',') {
        let coding = Coding::parse(name)
            .ok_or_else(|| bad_request("codings must list gzip, deflate, br or zstd"))?;
        body = compress::encode(coding, &body)
            .await
            .map_err(|e| Reject::new(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
        names.push(coding.as_str());
    }
    let mut resp = with_type("application/json", Body::full(Bytes::from(body)));
    let value = HeaderValue::from_str(&names.join(", ")).map_err(|_| bad_request("codings"))?;
    resp.headers_mut().insert(header::CONTENT_ENCODING, value);
    Ok(resp)
}

/// An OTLP/HTTP receiver (JSON encoding): the export is kept for `GET /_control/otlp` and
/// answered as a collector does, with an empty `Export*ServiceResponse`.
fn otlp(ctx: &ConnCtx, req: &Req) -> Handled {
    let json = req
        .parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !json {
        return Err(Reject::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "this OTLP receiver takes application/json only",
        ));
    }
    let body: Value = serde_json::from_slice(&req.body)
        .map_err(|e| bad_request(&format!("the OTLP export is not JSON: {e}")))?;
    ctx.shared
        .otlp
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(json!({ "path": req.parts.uri.path(), "body": body }));
    Ok(json_response(StatusCode::OK, &json!({})))
}

async fn echo(ctx: &ConnCtx, req: &Req) -> Handled {
    let codings = req
        .parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = req.body.to_vec();
    if let Some(list) = &codings {
        // Codings are listed in the order applied, so undo them last to first.
        for name in list.split(',').rev().filter(|s| !s.trim().is_empty()) {
            if name.trim().eq_ignore_ascii_case("identity") {
                continue;
            }
            let coding = Coding::parse(name).ok_or_else(|| {
                Reject::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    &format!("unknown content-encoding {name}"),
                )
            })?;
            body = compress::decode(coding, &body).await.map_err(|e| {
                bad_request(&format!(
                    "request body is not valid {}: {e}",
                    coding.as_str()
                ))
            })?;
        }
    }
    let doc = json!({
        "method": req.parts.method.as_str(),
        "path": req.parts.uri.path(),
        "query": req.query(),
        "args": args_json(req.query()),
        "version": format!("{:?}", req.parts.version),
        // HTTP/2 carries the host in :authority, not in a header.
        "host": req.parts.headers.get(header::HOST).and_then(|h| h.to_str().ok())
            .or_else(|| req.parts.uri.authority().map(http::uri::Authority::as_str)),
        "headers": headers_json(&req.parts.headers),
        "body": String::from_utf8_lossy(&body),
        "body_len": body.len(),
        "raw_body_len": req.body.len(),
        "content_encoding": codings,
        "connection_id": ctx.stats.id,
        "tls": ctx.tls,
    });
    let mut resp = json_response(StatusCode::OK, &doc);
    // The same facts in headers, so a HEAD request (no response body) can be checked too.
    let h = resp.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    set("x-echo-method", req.parts.method.to_string());
    set("x-echo-body-len", req.body.len().to_string());
    set("x-echo-body-crc32", crc32fast::hash(&req.body).to_string());
    for (name, echo) in [
        (header::CONTENT_LENGTH, "x-echo-content-length"),
        (header::CONTENT_TYPE, "x-echo-content-type"),
        (header::TRANSFER_ENCODING, "x-echo-transfer-encoding"),
    ] {
        if let Some(v) = req.parts.headers.get(name).and_then(|v| v.to_str().ok()) {
            set(echo, v.to_owned());
        }
    }
    Ok(resp)
}

/// Adds `value` under `key`, turning the entry into an array on the second value.
fn push_multi(map: &mut Map<String, Value>, key: String, value: String) {
    match map.get_mut(&key) {
        None => {
            map.insert(key, Value::String(value));
        }
        Some(Value::Array(values)) => values.push(Value::String(value)),
        Some(first) => {
            let first = first.take();
            map.insert(key, Value::Array(vec![first, Value::String(value)]));
        }
    }
}

fn headers_json(headers: &HeaderMap) -> Value {
    let mut map = Map::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        push_multi(&mut map, name.as_str().to_owned(), value);
    }
    Value::Object(map)
}

fn args_json(query: &str) -> Value {
    let mut map = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        push_multi(
            &mut map,
            decode_component(k).into_owned(),
            decode_component(v).into_owned(),
        );
    }
    Value::Object(map)
}

fn drip(req: &Req) -> Handled {
    let total: u64 = req.num("bytes", 10)?;
    let chunks: u64 = req.num("chunks", 10u64)?.clamp(1, total.max(1));
    let delay = Duration::from_millis(req.num("delay_ms", 100)?);
    let base = total / chunks;
    let extra = total % chunks;
    let sizes = (0..chunks).map(move |i| base + u64::from(i < extra));
    let frames = stream::unfold(sizes, move |mut sizes| async move {
        let n = sizes.next()?;
        tokio::time::sleep(delay).await;
        Some((Ok(Frame::data(pattern_slice(n))), sizes))
    });
    let body = if total == 0 {
        Body::empty()
    } else {
        Body::stream(Box::pin(frames), Some(total))
    };
    Ok(with_type("application/octet-stream", body))
}

fn chunked_stream(req: &Req) -> Handled {
    let chunks: u64 = req.num("chunks", 10)?;
    let size: u64 = req.num("size", 1024)?;
    let delay = Duration::from_millis(req.num("delay_ms", 0)?);
    let frames = stream::unfold(0, move |i| async move {
        if i == chunks {
            return None;
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Some((Ok(Frame::data(pattern_slice(size))), i + 1))
    });
    Ok(with_type(
        "application/octet-stream",
        Body::stream(Box::pin(frames), None),
    ))
}

/// `/sse`: `events` events per connection (ids from 0, or after the request's `Last-Event-ID`),
/// `delay_ms` before each; `retry=MS` sends a `retry:` first; `total=N` ends the whole stream at
/// id N (then answers 204, as a server tells `EventSource` to stop); `cut=1` breaks the
/// connection after the events instead of ending the body.
fn sse(req: &Req) -> Handled {
    let events: u64 = req.num("events", 5)?;
    let delay = Duration::from_millis(req.num("delay_ms", 0)?);
    let retry: Option<u64> = param(req.query(), "retry")
        .map(|_| req.num("retry", 0))
        .transpose()?;
    let total: Option<u64> = param(req.query(), "total")
        .map(|_| req.num("total", 0))
        .transpose()?;
    let cut = req.num("cut", 0u8)? != 0;
    let last = req
        .parts
        .headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let start = last
        .as_deref()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |n| n + 1);
    let end = total.map_or(start + events, |t| t.min(start + events));
    if total.is_some_and(|t| start >= t) {
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        return Ok(resp);
    }
    let resumed = last.map_or(String::new(), |l| {
        format!(",\"last_event_id\":{}", json!(l))
    });
    let first = retry.map(|ms| Bytes::from(format!("retry: {ms}\n\n")));
    let frames = stream::unfold((start, first), move |(i, first)| {
        let resumed = resumed.clone();
        async move {
            if let Some(f) = first {
                return Some((Ok(Frame::data(f)), (i, None)));
            }
            if i >= end {
                if cut && i != u64::MAX {
                    // Pending once, so hyper writes out the events before the cut.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let e = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut");
                    return Some((Err(e), (u64::MAX, None)));
                }
                return None;
            }
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let event = format!("id: {i}\nevent: message\ndata: {{\"n\":{i}{resumed}}}\n\n");
            Some((Ok(Frame::data(Bytes::from(event))), (i + 1, None)))
        }
    });
    let mut resp = with_type("text/event-stream", Body::stream(Box::pin(frames), None));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

/// `n` pattern bytes, at most 1 MiB.
fn pattern_slice(n: u64) -> Bytes {
    let n = usize::try_from(n)
        .unwrap_or(usize::MAX)
        .min(pattern().len());
    pattern().slice(..n)
}

/// Sends the first half of `body` (with the full Content-Length), then aborts: the HTTP/1
/// connection with a RST, or on HTTP/2 the stream (or the whole connection if `whole_conn`).
fn reset_mid_body(ctx: Arc<ConnCtx>, body: &Bytes, h2: bool, whole_conn: bool) -> Body {
    let len = body.len() as u64;
    let first = body.slice(..body.len() / 2);
    let frames = stream::unfold(Some(first), move |first| {
        let ctx = ctx.clone();
        async move {
            if let Some(first) = first {
                return Some((Ok(Frame::data(first)), None));
            }
            // Let hyper flush the first half before the abort discards its buffers.
            tokio::time::sleep(Duration::from_millis(20)).await;
            if !h2 || whole_conn {
                ctx.abort();
            }
            Some((Err(std::io::Error::other("reset_mid_body")), None))
        }
    });
    Body::stream(Box::pin(frames), Some(len))
}

async fn scripted(
    ctx: &Arc<ConnCtx>,
    mut guard: RequestGuard,
    reply: Reply,
    h2: bool,
) -> Result<Response<Body>, BoxError> {
    if reply.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(reply.delay_ms)).await;
    }
    match reply.action {
        Some(Action::Reset) => {
            guard.finish();
            if !h2 {
                ctx.abort();
            }
            return Err("scripted reset".into());
        }
        Some(Action::Hang) => std::future::pending().await,
        _ => {}
    }
    let body = match (&reply.body, reply.body_bytes) {
        (Some(text), _) => Bytes::from(text.clone()),
        (None, Some(n)) => pattern_slice(n as u64),
        (None, None) if reply.action == Some(Action::ResetMidBody) => {
            pattern_slice(DEFAULT_RESET_BYTES)
        }
        (None, None) => Bytes::new(),
    };
    let body = if reply.action == Some(Action::ResetMidBody) {
        reset_mid_body(ctx.clone(), &body, h2, false)
    } else {
        Body::full(body)
    };
    let mut resp = Response::new(body.with_guard(guard));
    *resp.status_mut() = StatusCode::from_u16(reply.status)?;
    for (name, value) in &reply.headers {
        resp.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes())?,
            HeaderValue::from_str(value)?,
        );
    }
    if reply.action == Some(Action::Close) {
        if h2 {
            ctx.close();
        } else {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    Ok(resp)
}

pub(crate) fn with_type(content_type: &'static str, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut resp = with_type("application/json", Body::full(value.to_string()));
    *resp.status_mut() = status;
    resp
}

pub(crate) fn bad_request(message: &str) -> Reject {
    Reject::new(StatusCode::BAD_REQUEST, message)
}

/// The first value of `key` in a query string, percent-decoded.
pub(crate) fn param<'a>(query: &'a str, key: &str) -> Option<Cow<'a, str>> {
    query
        .split('&')
        .filter_map(|p| p.split_once('=').or(Some((p, ""))))
        .find(|(k, _)| decode_component(k) == key)
        .map(|(_, v)| decode_component(v))
}

/// Decodes `%XX` escapes and `+` (as space); malformed escapes are kept as they are.
fn decode_component(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_percent_decoded() {
        let q = "url=http%3A%2F%2Fx%2Fa%20b&flag&n=5&bad=%zz+1";
        assert_eq!(param(q, "url").as_deref(), Some("http://x/a b"));
        assert_eq!(param(q, "flag").as_deref(), Some(""));
        assert_eq!(param(q, "n").as_deref(), Some("5"));
        assert_eq!(param(q, "bad").as_deref(), Some("%zz 1"));
        assert_eq!(param(q, "missing"), None);
    }
}
