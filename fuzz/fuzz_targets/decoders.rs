//! Response-body decoding (gzip, deflate, br, zstd and stacks of them) under the body limits:
//! never a panic; never more decoded bytes handed out than `max_response_body_bytes`; a failure
//! is `decode` or `body_too_large`, nothing else; and what wirecore encodes, it decodes back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirecore::fuzz_support::{decode_limited, encode};

const CODINGS: &[&str] = &[
    "gzip",
    "deflate",
    "br",
    "zstd",
    "gzip, br",
    "br, gzip",
    "zstd, gzip",
    "x-gzip",
    "gzip, gzip, gzip, gzip, gzip, gzip",
    "identity, deflate",
    "compress",
];

fuzz_target!(|input: &[u8]| {
    // Header: coding, chunk size, body limit (KiB), ratio limit, mode; the rest is the body.
    let [coding, chunk, limit, ratio, mode, body @ ..] = input else {
        return;
    };
    let max_bytes = u64::from(*limit) * 1024 + 1;
    let max_ratio = u32::from(*ratio % 8) * 10; // 0 (off), 10, …, 70
    let chunk = usize::from(*chunk) + 1;
    if mode & 1 == 1 {
        // Round trip: wirecore's own request encoding decodes back to the same length.
        let zstd = mode & 2 == 2;
        let wire = encode(body, zstd).expect("encoding never fails in memory");
        let got = decode_limited(if zstd { "zstd" } else { "gzip" }, &wire, chunk, 0, 0);
        assert_eq!(got.ok(), Some(body.len() as u64), "round trip lost bytes");
        return;
    }
    let coding = CODINGS[usize::from(*coding) % CODINGS.len()];
    match decode_limited(coding, body, chunk, max_bytes, max_ratio) {
        Ok(n) => assert!(
            n <= max_bytes,
            "{n} decoded bytes passed a limit of {max_bytes}"
        ),
        Err(e) => assert!(
            matches!(e.code(), "decode" | "body_too_large"),
            "unexpected error {}: {e}",
            e.code()
        ),
    }
});
