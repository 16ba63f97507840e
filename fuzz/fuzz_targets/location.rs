//! A redirect's `Location` against a few bases: never a panic; a resolved URL parses again.
#![no_main]

use libfuzzer_sys::fuzz_target;

const BASES: &[&str] = &[
    "http://example.com/a/b?c=d",
    "https://user:pw@example.com:8443/",
    "http://[::1]:8080/x/",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let base = BASES[usize::from(pick) % BASES.len()];
    let location = String::from_utf8_lossy(rest);
    if let Ok(next) = wirecore::fuzz_support::resolve_location(base, &location) {
        wirecore::parse_url(&next).expect("a resolved Location parses again");
    }
});
