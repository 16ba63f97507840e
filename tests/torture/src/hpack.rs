//! Just enough HPACK (RFC 7541): find `:path` in a client's header block, and write
//! response header blocks without Huffman coding or indexing.
//!
//! Clients Huffman-code every string, so `:path` is decoded with the 5-, 6- and 7-bit codes
//! only (RFC 7541 Appendix B; the code is canonical, so each length's codes are consecutive in
//! symbol order). That covers lower-case letters, digits and `-./_`, which is every case path.

/// Symbols of the 5-, 6- and 7-bit codes, in code order, and each length's first code.
const CODES: [(u32, u32, &[u8]); 3] = [
    (5, 0, b"012aceiost"),
    (6, 0b01_0100, b" %-./3456789=A_bdfghlmnpru"),
    (7, 0b101_1100, b":BCDEFGHIJKLMNOPQRSTUVWYjkqvwxyz"),
];

/// Reads an HPACK integer with an `n`-bit prefix at `buf[*at]`.
fn int(buf: &[u8], at: &mut usize, n: u32) -> Option<usize> {
    let mask = (1usize << n) - 1;
    let mut v = usize::from(*buf.get(*at)?) & mask;
    *at += 1;
    if v < mask {
        return Some(v);
    }
    let mut shift = 0;
    loop {
        let b = *buf.get(*at)?;
        *at += 1;
        v += usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 || shift > 28 {
            return Some(v);
        }
    }
}

/// Reads a string literal; `None` when it is cut short or uses codes beyond 7 bits.
fn string(buf: &[u8], at: &mut usize) -> Option<Vec<u8>> {
    let huffman = buf.get(*at)? & 0x80 != 0;
    let len = int(buf, at, 7)?;
    let raw = buf.get(*at..*at + len)?;
    *at += len;
    if huffman {
        decode(raw)
    } else {
        Some(raw.to_vec())
    }
}

fn decode(raw: &[u8]) -> Option<Vec<u8>> {
    let total = raw.len() * 8;
    let bit = |i: usize| u32::from(raw[i / 8] >> (7 - i % 8) & 1);
    let (mut out, mut pos) = (Vec::new(), 0);
    'symbols: while pos < total {
        let mut code = 0;
        for len in 1..=7u32 {
            if pos + len as usize > total {
                break;
            }
            code = code << 1 | bit(pos + len as usize - 1);
            if let Some(&(_, first, syms)) = CODES.iter().find(|c| c.0 == len)
                && code >= first
                && ((code - first) as usize) < syms.len()
            {
                out.push(syms[(code - first) as usize]);
                pos += len as usize;
                continue 'symbols;
            }
        }
        // What is left must be padding: fewer than 8 one bits.
        return (total - pos < 8 && (pos..total).all(|i| bit(i) == 1)).then_some(out);
    }
    Some(out)
}

/// The `:path` of a request header block, when it is there and readable.
pub(crate) fn path(block: &[u8]) -> Option<String> {
    let mut at = 0;
    while at < block.len() {
        let b = block[at];
        let (name_index, prefix) = if b & 0x80 != 0 {
            // Indexed field: static entries 4 and 5 are `:path` `/` and `/index.html`.
            match int(block, &mut at, 7)? {
                4 => return Some("/".into()),
                5 => return Some("/index.html".into()),
                _ => continue,
            }
        } else if b & 0xc0 == 0x40 {
            (b & 0x3f, 6)
        } else if b & 0xe0 == 0x20 {
            int(block, &mut at, 5)?;
            continue;
        } else {
            (b & 0x0f, 4)
        };
        let index = if name_index == 0 {
            at += 1;
            let name = string(block, &mut at)?;
            (name == b":path").then_some(4)
        } else {
            Some(int(block, &mut at, prefix)?)
        };
        let value = string(block, &mut at);
        if matches!(index, Some(4 | 5)) {
            return String::from_utf8(value?).ok();
        }
        // Values of other fields may use codes this decoder lacks: skip them by length.
        value.or(Some(Vec::new()))?;
    }
    None
}

/// Appends a string literal without Huffman coding.
pub(crate) fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_int(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

/// Appends an integer with an `n`-bit prefix, the first byte's high bits set to `flags`.
pub(crate) fn put_int(out: &mut Vec<u8>, flags: u8, n: u32, v: usize) {
    let mask = (1usize << n) - 1;
    if v < mask {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | mask as u8);
    let mut rest = v - mask;
    while rest >= 0x80 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Appends a field as a literal without indexing, with a literal name.
pub(crate) fn put_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    put_string(out, name);
    put_string(out, value);
}

/// `:status` as a literal without indexing (static name index 8).
pub(crate) fn put_status(out: &mut Vec<u8>, status: &[u8]) {
    out.push(0x08);
    put_string(out, status);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes with the same table, to check the decoder against known codes.
    fn encode(s: &[u8]) -> Vec<u8> {
        let (mut bits, mut n, mut out) = (0u64, 0u32, Vec::new());
        for &c in s {
            let (len, first, syms) = CODES
                .iter()
                .find(|t| t.2.contains(&c))
                .copied()
                .expect("symbol in table");
            let i = syms.iter().position(|&x| x == c).expect("symbol") as u32;
            bits = bits << len | u64::from(first + i);
            n += len;
            while n >= 8 {
                out.push((bits >> (n - 8)) as u8);
                n -= 8;
            }
        }
        if n > 0 {
            out.push(((bits << (8 - n)) | ((1 << (8 - n)) - 1)) as u8);
        }
        out
    }

    #[test]
    fn known_codes_match_rfc_7541() {
        // Appendix C.4.1: "www.example.com" Huffman-coded.
        let want = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        assert_eq!(decode(&want).as_deref(), Some(&b"www.example.com"[..]));
        assert_eq!(encode(b"www.example.com"), want);
        // Appendix C.4.2: "no-cache".
        let want = [0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf];
        assert_eq!(decode(&want).as_deref(), Some(&b"no-cache"[..]));
    }

    #[test]
    fn finds_a_huffman_coded_path_among_other_fields() {
        let mut block = vec![0x82, 0x86]; // :method GET, :scheme http
        block.push(0x04); // literal without indexing, name :path
        let p = encode(b"/h2-refused-stream");
        put_int(&mut block, 0x80, 7, p.len());
        block.extend_from_slice(&p);
        assert_eq!(path(&block).as_deref(), Some("/h2-refused-stream"));
        // After a field whose value uses longer codes, by length.
        let mut block = vec![0x40, 0x01, b'x', 0x83, 0xff, 0xff, 0xff, 0x44, 0x02];
        block.extend_from_slice(b"/a");
        assert_eq!(path(&block).as_deref(), Some("/a"));
    }
}
