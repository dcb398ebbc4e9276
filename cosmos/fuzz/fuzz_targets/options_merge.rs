//! Arbitrary JSON pairs: defaults extraction, deep merge and validation never panic, and merge
//! obeys its laws (merging with {} is identity, the right side's scalars win).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (a, b) = text.split_once('\u{0}').unwrap_or((text, "{}"));
    let (Ok(schema), Ok(user)) = (serde_json::from_str::<Value>(a), serde_json::from_str::<Value>(b)) else {
        return;
    };
    let defaults = cosmos_render::options::defaults(&schema);
    assert!(defaults.is_object());
    let merged = cosmos_render::options::merge(&defaults, &user);
    if user.is_object() {
        assert_eq!(cosmos_render::options::merge(&merged, &json!({})), merged);
        for (k, v) in user.as_object().into_iter().flatten() {
            if !v.is_object() {
                assert_eq!(merged.get(k), Some(v));
            }
        }
    }
    let _ = cosmos_render::options::validate(&schema, &merged);
});
