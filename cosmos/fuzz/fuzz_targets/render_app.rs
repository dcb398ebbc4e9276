//! The whole pipeline with arbitrary template, config and options: never panics, and every
//! error maps to a Cosmos error type and status.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(3, '\u{0}');
    let template = parts.next().unwrap_or("");
    let config = parts.next().and_then(|c| serde_json::from_str::<Value>(c).ok());
    let options = parts.next().and_then(|o| serde_json::from_str::<Value>(o).ok());
    match cosmos_render::render_app(template, config.as_ref(), None, options.as_ref()) {
        Ok(app) => {
            if let Some(labels) = app.get("labels") {
                assert!(labels.as_object().is_some_and(|l| l.values().all(Value::is_string)));
            }
        }
        Err(e) => {
            assert!(!e.cosmos_type().is_empty());
            assert!(matches!(e.http_status(), 400 | 500));
        }
    }
});
