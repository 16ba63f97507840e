//! Config JSON as every binding passes it: never a panic; an accepted config survives a
//! round trip through its own JSON unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = wirecore::Config::from_json(text) {
        let json = serde_json::to_string(&cfg).expect("a config serializes");
        let again = wirecore::Config::from_json(&json).expect("its own JSON is accepted");
        assert_eq!(again, cfg);
    }
});
