//! The C ABI (bindings/c) driven by random call sequences: live handles, NULL handles, handles of
//! the wrong type, arbitrary bytes as method, URL, header, body, priority and key; sends to a
//! local one-shot HTTP server and to a refused port. Never a crash (ASan watches memory), and
//! every call keeps the contract: a failure fills `*err` with a known code, a success fills
//! `*out`. Handles are never used after they are freed (the ABI does not promise to catch that).
#![no_main]

use std::ffi::{CStr, c_char, c_void};
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::ptr::{null, null_mut};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

// Links the C ABI's exports (its lib is also named `wirecore`).
extern crate ffi as _;

type H = *mut c_void;

unsafe extern "C" {
    fn wirecore_client_new(config: *const c_char, out: *mut H, err: *mut H) -> i32;
    fn wirecore_client_free(c: H);
    fn wirecore_client_send(c: H, req: H, out: *mut H, err: *mut H) -> i32;
    fn wirecore_client_close(c: H, deadline_ms: u64) -> i32;
    fn wirecore_client_close_idle(c: H) -> i32;
    fn wirecore_client_stats_json(c: H, out: *mut *mut c_char, len: *mut usize) -> i32;
    fn wirecore_client_diagnostics_json(c: H, out: *mut *mut c_char, len: *mut usize) -> i32;
    fn wirecore_client_prometheus(c: H, out: *mut *mut c_char, len: *mut usize) -> i32;
    fn wirecore_string_free(s: *mut c_char);
    fn wirecore_error_kind(e: H) -> i32;
    fn wirecore_error_code(e: H) -> *const c_char;
    fn wirecore_error_message(e: H) -> *const c_char;
    fn wirecore_error_free(e: H);
    fn wirecore_code_str(code: i32) -> *const c_char;
    fn wirecore_code_from_str(code: *const c_char) -> i32;
    fn wirecore_request_new(
        m: *const c_char,
        ml: usize,
        u: *const c_char,
        ul: usize,
        out: *mut H,
        err: *mut H,
    ) -> i32;
    fn wirecore_request_add_header(
        r: H,
        n: *const c_char,
        nl: usize,
        v: *const c_char,
        vl: usize,
        err: *mut H,
    ) -> i32;
    fn wirecore_request_set_body(r: H, d: *const u8, l: usize, err: *mut H) -> i32;
    fn wirecore_request_set_timeout_ms(r: H, ms: u64, err: *mut H) -> i32;
    fn wirecore_request_set_idempotent(r: H, on: bool) -> i32;
    fn wirecore_request_set_rate_limit_key(r: H, k: *const c_char, l: usize, err: *mut H) -> i32;
    fn wirecore_request_set_priority(r: H, urgency: u8, incremental: bool, err: *mut H) -> i32;
    fn wirecore_priority_parse(
        s: *const c_char,
        l: usize,
        urgency: *mut u8,
        incremental: *mut bool,
        err: *mut H,
    ) -> i32;
    fn wirecore_request_free(r: H);
    fn wirecore_response_status(r: H) -> u16;
    fn wirecore_response_header_count(r: H) -> usize;
    fn wirecore_response_header_at(
        r: H,
        i: usize,
        n: *mut *const c_char,
        nl: *mut usize,
        v: *mut *const c_char,
        vl: *mut usize,
    ) -> i32;
    fn wirecore_response_body(r: H, d: *mut *const u8, l: *mut usize, err: *mut H) -> i32;
    fn wirecore_response_free(r: H);
}

/// A local server answering every connection with one small response, then closing.
fn server() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/x", l.local_addr().expect("addr"));
        std::thread::spawn(move || {
            for mut s in l.incoming().map_while(Result::ok) {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: b\r\nconnection: close\r\n\r\nhello",
                );
            }
        });
        url
    })
}

const CONFIGS: &[&[u8]] = &[
    b"{\"retry\":{\"max_attempts\":1},\"timeouts\":{\"total_ms\":2000}}\0",
    b"{\"retry\":{\"max_attempts\":1},\"timeouts\":{\"total_ms\":2000},\"http2\":{\"prior_knowledge\":true}}\0",
    b"{\"pool\":{\"nope\":1}}\0",
    b"not json\0",
    b"\0",
];

/// Reads fuzz input as a stream of small values.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn bytes(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte().unwrap_or(0)).min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        b
    }
    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |v, _| (v << 8) | u64::from(self.byte().unwrap_or(0)))
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> Option<(usize, T)> {
        if v.is_empty() {
            return None;
        }
        let i = usize::from(self.byte().unwrap_or(0)) % v.len();
        Some((i, v[i]))
    }
}

/// Checks a call's contract, frees the error and resets `err` for the next call.
fn check(code: i32, err: &mut H, what: &str) {
    let err = std::mem::replace(err, null_mut());
    // SAFETY: `err` is NULL or an error handle from the call just made.
    unsafe {
        if code == 0 {
            assert!(err.is_null(), "{what}: OK with an error");
            return;
        }
        assert!(!err.is_null(), "{what}: code {code} without an error");
        assert_eq!(wirecore_error_kind(err), code, "{what}: error kind vs code");
        let c = wirecore_error_code(err);
        assert!(
            !c.is_null() && !wirecore_error_message(err).is_null(),
            "{what}"
        );
        let c = CStr::from_ptr(c);
        assert_eq!(wirecore_code_from_str(c.as_ptr()), code, "{what}: {c:?}");
        wirecore_error_free(err);
    }
}

#[derive(Default)]
struct Handles {
    clients: Vec<H>,
    requests: Vec<H>,
    responses: Vec<H>,
}

fn take(v: &mut Vec<H>, inp: &mut Input) -> Option<H> {
    let (i, _) = inp.pick(v)?;
    Some(v.swap_remove(i))
}

fn step(op: u8, inp: &mut Input, h: &mut Handles) {
    let mut err: H = null_mut();
    let mut out: H = null_mut();
    // SAFETY: every handle passed is live (taken from `h`, removed when freed or consumed), NULL,
    // or a live handle of another type (which the ABI checks by its magic); pointers and lengths
    // describe the slices they come from.
    unsafe {
        match op % 16 {
            0 => {
                let (_, cfg) = inp.pick(CONFIGS).unwrap_or((0, CONFIGS[0]));
                let p = if cfg == b"\0" {
                    null()
                } else {
                    cfg.as_ptr().cast()
                };
                let code = wirecore_client_new(p, &mut out, &mut err);
                check(code, &mut err, "client_new");
                if code == 0 {
                    assert!(!out.is_null());
                    h.clients.push(out);
                }
            }
            1 | 2 => {
                let (m, u): (&[u8], &[u8]) = if op % 16 == 1 {
                    (inp.bytes(), inp.bytes())
                } else {
                    let m: &[u8] = if inp.byte().unwrap_or(0) & 1 == 0 {
                        b"GET"
                    } else {
                        b"POST"
                    };
                    let u = if inp.byte().unwrap_or(0) & 1 == 0 {
                        server().as_bytes()
                    } else {
                        b"http://127.0.0.1:9/refused"
                    };
                    (m, u)
                };
                let code = wirecore_request_new(
                    m.as_ptr().cast(),
                    m.len(),
                    u.as_ptr().cast(),
                    u.len(),
                    &mut out,
                    &mut err,
                );
                check(code, &mut err, "request_new");
                if code == 0 {
                    h.requests.push(out);
                }
            }
            3 => {
                let r = inp.pick(&h.requests).map_or(null_mut(), |p| p.1);
                let (n, v) = (inp.bytes(), inp.bytes());
                let code = wirecore_request_add_header(
                    r,
                    n.as_ptr().cast(),
                    n.len(),
                    v.as_ptr().cast(),
                    v.len(),
                    &mut err,
                );
                check(code, &mut err, "add_header");
            }
            4 => {
                let r = inp.pick(&h.requests).map_or(null_mut(), |p| p.1);
                let b = inp.bytes();
                check(
                    wirecore_request_set_body(r, b.as_ptr(), b.len(), &mut err),
                    &mut err,
                    "set_body",
                );
            }
            5 => {
                let r = inp.pick(&h.requests).map_or(null_mut(), |p| p.1);
                let ms = inp.u64();
                check(
                    wirecore_request_set_timeout_ms(r, ms, &mut err),
                    &mut err,
                    "set_timeout",
                );
                let _ = wirecore_request_set_idempotent(r, ms & 1 == 1);
            }
            6 => {
                let r = inp.pick(&h.requests).map_or(null_mut(), |p| p.1);
                let (u, i) = (inp.byte().unwrap_or(0), inp.byte().unwrap_or(0) & 1 == 1);
                check(
                    wirecore_request_set_priority(r, u, i, &mut err),
                    &mut err,
                    "set_priority",
                );
                let k = inp.bytes();
                let code =
                    wirecore_request_set_rate_limit_key(r, k.as_ptr().cast(), k.len(), &mut err);
                check(code, &mut err, "rate_limit_key");
            }
            7 => {
                let s = inp.bytes();
                let (mut u, mut i) = (0u8, false);
                let code =
                    wirecore_priority_parse(s.as_ptr().cast(), s.len(), &mut u, &mut i, &mut err);
                check(code, &mut err, "priority_parse");
                if code == 0 {
                    assert!(u <= 7, "urgency {u}");
                }
            }
            8 => {
                if let Some(r) = take(&mut h.requests, inp) {
                    wirecore_request_free(r);
                }
            }
            9 => {
                // The request is consumed whatever happens, even with a NULL client.
                let c = inp.pick(&h.clients).map_or(null_mut(), |p| p.1);
                let r = take(&mut h.requests, inp).unwrap_or(null_mut());
                let code = wirecore_client_send(c, r, &mut out, &mut err);
                check(code, &mut err, "send");
                if code == 0 {
                    assert!(!out.is_null());
                    h.responses.push(out);
                }
            }
            10 => {
                let Some((_, r)) = inp.pick(&h.responses) else {
                    return;
                };
                let status = wirecore_response_status(r);
                assert_eq!(status, 200);
                let n = wirecore_response_header_count(r);
                let i = usize::from(inp.byte().unwrap_or(0));
                let (mut np, mut nl, mut vp, mut vl) = (null(), 0, null(), 0);
                let code = wirecore_response_header_at(r, i, &mut np, &mut nl, &mut vp, &mut vl);
                assert_eq!(code == 0, i < n, "header_at({i}) of {n}");
                let (mut d, mut l) = (null(), 0usize);
                let code = wirecore_response_body(r, &mut d, &mut l, &mut err);
                check(code, &mut err, "body");
            }
            11 => {
                if let Some(r) = take(&mut h.responses, inp) {
                    wirecore_response_free(r);
                }
            }
            12 => {
                let c = inp.pick(&h.clients).map_or(null_mut(), |p| p.1);
                for f in [
                    wirecore_client_stats_json,
                    wirecore_client_diagnostics_json,
                    wirecore_client_prometheus,
                ] {
                    let (mut s, mut l) = (null_mut(), 0usize);
                    let code = f(c, &mut s, &mut l);
                    assert_eq!(code == 0, !c.is_null(), "stats of {c:?}");
                    if code == 0 {
                        assert_eq!(CStr::from_ptr(s).to_bytes().len(), l);
                        wirecore_string_free(s);
                    }
                }
                let _ = wirecore_client_close_idle(c);
            }
            13 => {
                if let Some(c) = take(&mut h.clients, inp) {
                    let _ = wirecore_client_close(c, u64::from(inp.byte().unwrap_or(0)));
                    wirecore_client_free(c);
                }
            }
            14 => {
                // Handles of the wrong type: refused by their magic, nothing consumed or freed.
                let c = inp.pick(&h.clients).map_or(null_mut(), |p| p.1);
                let r = inp.pick(&h.requests).map_or(null_mut(), |p| p.1);
                let code = wirecore_request_set_body(c, b"x".as_ptr(), 1, &mut err);
                check(code, &mut err, "set_body(client)");
                assert_ne!(code, 0);
                assert_eq!(wirecore_response_status(r), 0);
                assert_eq!(wirecore_response_header_count(c), 0);
                let (mut s, mut l) = (null_mut(), 0usize);
                assert_ne!(wirecore_client_stats_json(r, &mut s, &mut l), 0);
                wirecore_response_free(c);
                wirecore_request_free(c);
                wirecore_client_free(r);
                wirecore_error_free(c);
            }
            _ => {
                let code = i32::from(inp.byte().unwrap_or(0)) - 8;
                let s = wirecore_code_str(code);
                assert!(!s.is_null());
                let back = wirecore_code_from_str(s);
                assert!(
                    back == code || CStr::from_ptr(s) == c"internal",
                    "code {code}"
                );
                let mut name = inp.bytes().to_vec();
                name.retain(|&b| b != 0);
                name.push(0);
                let _ = wirecore_code_from_str(name.as_ptr().cast());
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let mut h = Handles::default();
    let mut steps = 0;
    while let Some(op) = inp.byte() {
        steps += 1;
        if steps > 64 {
            break;
        }
        step(op, &mut inp, &mut h);
    }
    // SAFETY: every handle left is live and freed once.
    unsafe {
        for r in h.responses {
            wirecore_response_free(r);
        }
        for r in h.requests {
            wirecore_request_free(r);
        }
        for c in h.clients {
            wirecore_client_free(c);
        }
    }
});
