//! HTTP/1.1 cases: each writes its bytes exactly, then keeps, closes or resets the connection.

use std::io::Write as _;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::{Shared, close, hold, read_some, reset};

/// Every HTTP/1.1 case: its path (without the leading `/`) and what it writes.
pub const CASES: &[(&str, &str)] = &[
    ("ok", "a valid 200 with Content-Length, connection kept"),
    ("status-bad-code", "status code `2x0`"),
    ("status-four-digits", "status code `2000`"),
    ("status-below-100", "status code `099`"),
    (
        "status-bad-version",
        "`HTTP/2.5 200 OK` on an HTTP/1.1 connection",
    ),
    ("status-garbage", "a first line that is not a status line"),
    (
        "status-no-reason",
        "`HTTP/1.1 200` without a reason phrase (valid)",
    ),
    ("status-lf-only", "lines ended by LF alone (tolerated)"),
    (
        "status-http10-close-delimited",
        "HTTP/1.0 200 without a length, body until close",
    ),
    ("status-999", "status 999 (valid: three digits)"),
    (
        "cl-duplicate-equal",
        "two equal Content-Length headers (tolerated)",
    ),
    ("cl-conflicting", "Content-Length 5 and Content-Length 6"),
    ("cl-list-conflicting", "`Content-Length: 5, 6`"),
    ("cl-negative", "`Content-Length: -1`"),
    ("cl-plus-sign", "`Content-Length: +5`"),
    ("cl-overflow", "a Content-Length beyond 2^64"),
    (
        "cl-and-te",
        "Content-Length 3 with Transfer-Encoding: chunked",
    ),
    (
        "cl-body-longer",
        "Content-Length 2 followed by extra bytes, connection kept",
    ),
    ("te-unknown", "`Transfer-Encoding: foo` on a response"),
    ("chunk-bad-size", "chunk size `zz`"),
    ("chunk-size-overflow", "a chunk size beyond 2^64"),
    ("chunk-missing-crlf", "chunk data not followed by CRLF"),
    ("chunk-truncated", "a chunk cut short, then close"),
    (
        "chunk-no-last-chunk",
        "chunks without the final 0 chunk, then close",
    ),
    ("chunk-extension", "chunk extensions `;a=b` (valid)"),
    (
        "chunk-trailers",
        "trailer fields after the last chunk (valid)",
    ),
    (
        "gzip-truncated",
        "a gzip body cut short, its Content-Length matching the cut",
    ),
    (
        "gzip-corrupt",
        "`Content-Encoding: gzip` over bytes that are not gzip",
    ),
    (
        "gzip-chunked-truncated",
        "a complete chunked body holding a truncated gzip stream",
    ),
    ("header-no-colon", "a header line without a colon"),
    (
        "header-obs-fold",
        "a header value continued on the next line (obs-fold)",
    ),
    ("header-nul", "a NUL byte in a header value"),
    ("header-cr", "a bare CR in a header value"),
    ("header-space-before-colon", "`X-A : 1`"),
    ("header-empty-name", "`: value`"),
    (
        "header-non-utf8",
        "a header value with bytes 0xff 0xfe (obs-text, valid)",
    ),
    ("header-1mb", "one header of 1 MiB"),
    ("headers-10000", "10,000 header lines"),
    (
        "informational-many",
        "100 `103 Early Hints` responses, then 200",
    ),
    ("informational-flood", "`100 Continue` without end"),
    (
        "switching-protocols-unasked",
        "`101 Switching Protocols` to a request without Upgrade",
    ),
    (
        "response-before-body-read",
        "200 before the request body is read, then the body drained",
    ),
    ("close-before-response", "the request read, then FIN"),
    ("reset-before-response", "the request read, then RST"),
    ("close-mid-status", "`HTTP/1.` then FIN"),
    (
        "close-mid-headers",
        "a status line and half a header, then FIN",
    ),
    (
        "close-mid-body",
        "Content-Length 100 with 50 bytes, then FIN",
    ),
    (
        "no-content-with-body",
        "204 with Content-Length 5 and 5 bytes, connection kept",
    ),
];

enum Then {
    /// Read the next request.
    Keep,
    /// FIN, then drain.
    Close,
    /// RST.
    Reset,
    /// Write nothing more; wait for the client to close.
    Hold,
}

struct Head {
    path: String,
    content_length: usize,
    chunked: bool,
}

/// The end of the head in `buf`, if it is all there.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn parse_head(raw: &[u8]) -> Head {
    let text = String::from_utf8_lossy(raw);
    let mut lines = text.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("/")
        .to_owned();
    let (mut content_length, mut chunked) = (0, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().unwrap_or(0);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    Head {
        path,
        content_length,
        chunked,
    }
}

/// Reads the request body out of `stream` (after `buf`, which holds what was read already),
/// leaving in `buf` whatever follows it.
async fn read_body(stream: &mut TcpStream, buf: &mut Vec<u8>, head: &Head) -> std::io::Result<()> {
    if head.chunked {
        // The engine sends chunked bodies only when streaming; the terminator is enough here.
        loop {
            if let Some(i) = buf.windows(5).position(|w| w == b"0\r\n\r\n") {
                buf.drain(..i + 5);
                return Ok(());
            }
            if read_some(stream, buf).await? == 0 {
                return Ok(());
            }
        }
    }
    while buf.len() < head.content_length {
        if read_some(stream, buf).await? == 0 {
            return Ok(());
        }
    }
    buf.drain(..head.content_length);
    Ok(())
}

pub(crate) async fn serve(
    mut stream: TcpStream,
    mut buf: Vec<u8>,
    shared: &Shared,
) -> std::io::Result<()> {
    loop {
        let end = loop {
            if let Some(end) = head_end(&buf) {
                break end;
            }
            if buf.len() > 1 << 20 || read_some(&mut stream, &mut buf).await? == 0 {
                return Ok(());
            }
        };
        let head = parse_head(&buf[..end]);
        buf.drain(..end);
        let case = head.path.trim_start_matches('/').to_owned();
        shared.hit(&case);
        if case == "response-before-body-read" {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly")
                .await?;
            read_body(&mut stream, &mut buf, &head).await?;
            continue;
        }
        read_body(&mut stream, &mut buf, &head).await?;
        let then = match case.as_str() {
            "informational-flood" => {
                flood(&mut stream).await;
                Then::Close
            }
            "close-mid-body" => {
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
                    .await?;
                stream.flush().await?;
                // Headers first, so the client returns a response and fails reading the body.
                tokio::time::sleep(Duration::from_millis(20)).await;
                stream.write_all(&[b'x'; 50]).await?;
                Then::Close
            }
            _ => {
                let (bytes, then) = reply(&case);
                stream.write_all(&bytes).await?;
                then
            }
        };
        match then {
            Then::Keep => {}
            Then::Close => {
                close(stream).await;
                return Ok(());
            }
            Then::Reset => {
                reset(stream);
                return Ok(());
            }
            Then::Hold => {
                hold(stream).await;
                return Ok(());
            }
        }
    }
}

/// Writes `100 Continue` until the client goes (bounded in time).
async fn flood(stream: &mut TcpStream) {
    let block = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(2048);
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while stream.write_all(&block).await.is_ok() {}
    })
    .await;
}

fn response(status_line: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(status_line.as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in headers {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fn ok_with(headers: &[&str], body: &[u8]) -> Vec<u8> {
    response("HTTP/1.1 200 OK", headers, body)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

fn chunked(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n0\r\n\r\n");
    out
}

/// A body that gzip shrinks well but not to nothing.
fn text() -> Vec<u8> {
    (0..4000u32)
        .map(|i| b"wirecore torture "[(i % 17) as usize])
        .collect()
}

#[expect(
    clippy::too_many_lines,
    reason = "one arm per case: the table reads best whole"
)]
fn reply(case: &str) -> (Vec<u8>, Then) {
    use Then::{Close, Hold, Keep, Reset};
    let cl2 = ["Content-Length: 2"];
    match case {
        "ok" => (ok_with(&cl2, b"ok"), Keep),
        "status-bad-code" => (response("HTTP/1.1 2x0 OK", &cl2, b"ok"), Close),
        "status-four-digits" => (response("HTTP/1.1 2000 OK", &cl2, b"ok"), Close),
        "status-below-100" => (response("HTTP/1.1 099 Low", &cl2, b"ok"), Close),
        "status-bad-version" => (response("HTTP/2.5 200 OK", &cl2, b"ok"), Close),
        "status-garbage" => (b"this is not http\r\n\r\n".to_vec(), Close),
        "status-no-reason" => (response("HTTP/1.1 200", &cl2, b"ok"), Keep),
        "status-lf-only" => (b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok".to_vec(), Keep),
        "status-http10-close-delimited" => (b"HTTP/1.0 200 OK\r\n\r\nuntil close".to_vec(), Close),
        "status-999" => (response("HTTP/1.1 999 Odd", &cl2, b"ok"), Keep),
        "cl-duplicate-equal" => (
            ok_with(&["Content-Length: 5", "Content-Length: 5"], b"hello"),
            Keep,
        ),
        "cl-conflicting" => (
            ok_with(&["Content-Length: 5", "Content-Length: 6"], b"hello!"),
            Close,
        ),
        "cl-list-conflicting" => (ok_with(&["Content-Length: 5, 6"], b"hello!"), Close),
        "cl-negative" => (ok_with(&["Content-Length: -1"], b"x"), Close),
        "cl-plus-sign" => (ok_with(&["Content-Length: +5"], b"hello"), Close),
        "cl-overflow" => (
            ok_with(&["Content-Length: 99999999999999999999999"], b"x"),
            Close,
        ),
        "cl-and-te" => (
            ok_with(
                &["Content-Length: 3", "Transfer-Encoding: chunked"],
                &chunked(b"hello"),
            ),
            Close,
        ),
        "cl-body-longer" => (ok_with(&cl2, b"okEXTRA BYTES"), Hold),
        "te-unknown" => (ok_with(&["Transfer-Encoding: foo"], b"raw body"), Close),
        "chunk-bad-size" => (
            ok_with(&["Transfer-Encoding: chunked"], b"zz\r\nhello\r\n0\r\n\r\n"),
            Close,
        ),
        "chunk-size-overflow" => (
            ok_with(
                &["Transfer-Encoding: chunked"],
                b"fffffffffffffffffff1\r\nhello\r\n0\r\n\r\n",
            ),
            Close,
        ),
        "chunk-missing-crlf" => (
            ok_with(&["Transfer-Encoding: chunked"], b"5\r\nhelloXX0\r\n\r\n"),
            Close,
        ),
        "chunk-truncated" => (
            ok_with(&["Transfer-Encoding: chunked"], b"a\r\nhello"),
            Close,
        ),
        "chunk-no-last-chunk" => (
            ok_with(&["Transfer-Encoding: chunked"], b"5\r\nhello\r\n"),
            Close,
        ),
        "chunk-extension" => (
            ok_with(
                &["Transfer-Encoding: chunked"],
                b"5;a=b\r\nhello\r\n0;c=d\r\n\r\n",
            ),
            Keep,
        ),
        "chunk-trailers" => (
            ok_with(
                &["Transfer-Encoding: chunked", "Trailer: X-Sum"],
                b"5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n",
            ),
            Keep,
        ),
        "gzip-truncated" => {
            let z = gzip(&text());
            let cut = &z[..z.len() / 2];
            let len = format!("Content-Length: {}", cut.len());
            (ok_with(&["Content-Encoding: gzip", &len], cut), Keep)
        }
        "gzip-corrupt" => (
            ok_with(
                &["Content-Encoding: gzip", "Content-Length: 16"],
                b"this is not gzip",
            ),
            Keep,
        ),
        "gzip-chunked-truncated" => {
            let z = gzip(&text());
            (
                ok_with(
                    &["Content-Encoding: gzip", "Transfer-Encoding: chunked"],
                    &chunked(&z[..z.len() - 8]),
                ),
                Keep,
            )
        }
        "header-no-colon" => (
            ok_with(&["X-Bad header", "Content-Length: 2"], b"ok"),
            Close,
        ),
        "header-obs-fold" => (
            ok_with(&["X-Folded: one", "  two", "Content-Length: 2"], b"ok"),
            Keep,
        ),
        "header-nul" => (ok_with(&["X-A: a\0b", "Content-Length: 2"], b"ok"), Close),
        "header-cr" => (ok_with(&["X-A: a\rb", "Content-Length: 2"], b"ok"), Close),
        "header-space-before-colon" => (ok_with(&["X-A : 1", "Content-Length: 2"], b"ok"), Close),
        "header-empty-name" => (ok_with(&[": value", "Content-Length: 2"], b"ok"), Close),
        "header-non-utf8" => (
            b"HTTP/1.1 200 OK\r\nX-Bytes: a\xff\xfeb\r\nContent-Length: 2\r\n\r\nok".to_vec(),
            Keep,
        ),
        "header-1mb" => {
            let big = format!("X-Big: {}", "a".repeat(1 << 20));
            (ok_with(&[&big, "Content-Length: 2"], b"ok"), Close)
        }
        "headers-10000" => {
            let lines: Vec<String> = (0..10_000).map(|i| format!("X-H{i}: {i}")).collect();
            let mut refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            refs.push("Content-Length: 2");
            (ok_with(&refs, b"ok"), Close)
        }
        "informational-many" => {
            let mut r =
                b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n".repeat(100);
            r.extend_from_slice(&ok_with(&cl2, b"ok"));
            (r, Keep)
        }
        "switching-protocols-unasked" => (
            response(
                "HTTP/1.1 101 Switching Protocols",
                &["Upgrade: torture", "Connection: upgrade"],
                b"",
            ),
            Close,
        ),
        "close-before-response" => (Vec::new(), Close),
        "reset-before-response" => (Vec::new(), Reset),
        "close-mid-status" => (b"HTTP/1.".to_vec(), Close),
        "close-mid-headers" => (b"HTTP/1.1 200 OK\r\nContent-Le".to_vec(), Close),
        "no-content-with-body" => (
            response("HTTP/1.1 204 No Content", &["Content-Length: 5"], b"hello"),
            Hold,
        ),
        _ => (
            response(
                "HTTP/1.1 404 Not Found",
                &["Content-Length: 12"],
                b"no such case",
            ),
            Keep,
        ),
    }
}
