//! The HTTP/2 SETTINGS sniffer (core/src/pool/h2.rs) over arbitrary bytes split into arbitrary
//! reads: never a panic, and it learns what a whole-buffer frame walk learns, however the bytes
//! are split.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The reference: walks whole frames; the last SETTINGS entry for id 3 wins; a partial entry or
/// a frame cut short by the end of the data sets nothing beyond its whole entries.
fn walk(data: &[u8]) -> (u32, bool) {
    let (mut max, mut seen, mut i) = (u32::MAX, false, 0usize);
    while data.len() - i >= 9 {
        let h = &data[i..i + 9];
        let len = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
        let end = (i + 9 + len).min(data.len());
        if h[3] == 0x4 && h[4] & 0x1 == 0 {
            for e in data[i + 9..end].chunks_exact(6) {
                if u16::from_be_bytes([e[0], e[1]]) == 3 {
                    max = u32::from_be_bytes([e[2], e[3], e[4], e[5]]);
                }
            }
            seen |= i + 9 + len <= data.len();
        }
        i += 9 + len;
        if i > data.len() {
            break;
        }
    }
    (max, seen)
}

fuzz_target!(|input: &[u8]| {
    // First byte: how many cut points follow (two bytes each); the rest is the stream.
    let Some((&n, rest)) = input.split_first() else {
        return;
    };
    let n = usize::from(n % 16).min(rest.len() / 2);
    let (cuts, data) = rest.split_at(n * 2);
    let cuts: Vec<usize> = cuts
        .chunks_exact(2)
        .map(|c| usize::from(u16::from_be_bytes([c[0], c[1]])))
        .collect();
    let split = wirecore::fuzz_support::sniff_settings(data, &cuts);
    let whole = wirecore::fuzz_support::sniff_settings(data, &[]);
    assert_eq!(split, whole, "the split of the reads changed the outcome");
    assert_eq!(whole, walk(data), "differs from a whole-frame walk");
});
