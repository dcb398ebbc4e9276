//! Arbitrary template text against a fixed context: parsing and rendering never panic, and a
//! template that parses renders deterministically.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let context = json!({
        "s": "a\"b\\c\n", "n": 1.5, "i": 0, "big": 10737418240u64, "t": true, "f": false,
        "z": null, "l": ["x", 1, [2, 3], {"k": "v"}], "e": [], "o": {"p": {"q": "r"}},
        "j": "{{#asJson}}j{{/asJson}}", "resource": {"assets": {"uris": {"u": "http://x"}}}
    });
    if let Ok(t) = cosmos_render::mustache::Template::parse(text) {
        let a = t.render(&context);
        let b = t.render(&context);
        assert_eq!(a, b);
        let _ = cosmos_render::parse_rendered(a);
    }
});
