//! package.json (and the other revision files) through the validator and the typed model.
#![no_main]

use libfuzzer_sys::fuzz_target;
use repo_schema::validate::{validate_revision, RevisionFiles};

fuzz_target!(|data: &[u8]| {
    let files = RevisionFiles {
        folder: "fuzz",
        dir: "F/fuzz/0",
        package_json: Some(data),
        resource_json: Some(data),
        command_json: Some(data),
        ..Default::default()
    };
    let _ = validate_revision(&files, None);
    if let Ok(p) = repo_schema::PackageDefinition::from_slice(data) {
        let _ = p.metadata();
        let _ = p.resource_typed();
        let _ = p.marathon_template();
        let _ = repo_schema::pyjson::to_vec(&p.to_json());
    }
});
