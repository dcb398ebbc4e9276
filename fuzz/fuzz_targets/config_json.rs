//! config.json: validation, the legacy escaping, and the template syntax check on the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use repo_schema::validate::{validate_revision, RevisionFiles};

fuzz_target!(|data: &[u8]| {
    let files = RevisionFiles {
        folder: "fuzz",
        dir: "F/fuzz/0",
        package_json: Some(br#"{"name":"fuzz"}"#),
        config_json: Some(data),
        template: Some(data),
        ..Default::default()
    };
    let _ = validate_revision(&files, None);
    if let Ok(serde_json::Value::Object(mut config)) = serde_json::from_slice(data) {
        if let Some(serde_json::Value::Object(props)) = config.get_mut("properties") {
            repo_schema::convert::json_escape_compatibility(props);
        }
        let _ = repo_schema::validate::compile_draft4(&serde_json::Value::Object(config));
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = repo_schema::mustache::check(s);
        let _ = repo_schema::convert::escape_json_string(s);
        let _ = repo_schema::LooseVersion::new(s) < repo_schema::LooseVersion::new("1.10");
    }
});
