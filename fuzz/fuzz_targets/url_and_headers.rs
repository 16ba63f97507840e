//! Method, URL and one header, as a binding hands them over: never a panic; whatever is
//! accepted parses again to the same request line.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(4, '\n');
    let (method, url) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (name, value) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let _ = wirecore::parse_header(name, value);
    let Ok(m) = wirecore::parse_method(method) else {
        return;
    };
    if let Ok(req) = wirecore::Request::new(m.clone(), url) {
        let again = wirecore::Request::new(m, &req.uri().to_string())
            .expect("an accepted URL parses again");
        assert_eq!(again.uri(), req.uri());
    }
});
