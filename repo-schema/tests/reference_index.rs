//! Loads the reference indexes of ../shared/reference/universe-build (skipped with a message
//! when ../shared is absent): every package decodes, templates decode, JSON round-trips.

use std::io::Read;
use std::path::Path;

use repo_schema::{LooseVersion, PackagingVersion, RepoVersion, Repository};

fn load(name: &str) -> Option<Vec<u8>> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/universe-build")
        .join(name);
    if !p.exists() {
        eprintln!(
            "SKIPPED: {} not found (no ../shared beside the checkout)",
            p.display()
        );
        return None;
    }
    let gz = std::fs::read(p).unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .unwrap();
    Some(out)
}

#[test]
fn reference_universe_loads_and_round_trips() {
    let Some(bytes) = load("universe.json.gz") else {
        return;
    };
    let repo = Repository::from_slice(&bytes, RepoVersion::V5).unwrap();
    assert_eq!(repo.packages.len(), 1086);
    assert_eq!(
        Repository::from_slice_strict(&bytes, RepoVersion::V5).unwrap(),
        repo
    );
    repo.check_media_type().unwrap();
    let mut templates = 0;
    for p in &repo.packages {
        assert!(!p.name().is_empty() && !p.version().is_empty());
        if let Some(t) = p.marathon_template() {
            assert!(!t.is_empty());
            templates += 1;
        }
        p.metadata().unwrap();
        p.resource_typed().unwrap();
    }
    assert!(templates > 1000);
    let original: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(repo.to_json(), original);
    // Byte-compatible with the upstream (Python) output.
    assert!(repo.to_python_json() == bytes);

    // The conversions reproduce the reference per-version files.
    for (file, dcos, version) in [
        ("repo-up-to-1.8.json.gz", "1.8", RepoVersion::V3),
        ("repo-up-to-1.10.json.gz", "1.10", RepoVersion::V4),
    ] {
        let Some(want) = load(file) else { return };
        let want = Repository::from_slice(&want, version).unwrap();
        let got = repo.for_dcos(&LooseVersion::new(dcos)).unwrap();
        assert_eq!(got.version, version);
        want.check_media_type().unwrap();
        assert_eq!(got, want, "{file}");
    }
    assert!(repo
        .packages
        .iter()
        .any(|p| p.packaging_version() == PackagingVersion::V5));
}
