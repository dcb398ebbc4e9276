//! Cheap stand-in for the fuzz targets in CI: every truncation and many byte flips of a valid
//! index and package must give Ok or a clear error, never a panic.

use repo_schema::validate::{validate_revision, RevisionFiles};
use repo_schema::{LooseVersion, RepoVersion, Repository};

const INDEX: &str = r#"{"packages":[{"packagingVersion":"4.0","name":"hello","version":"1.0","releaseVersion":2,
"minDcosReleaseVersion":"1.8","maintainer":"m","description":"d","tags":["a"],"upgradesFrom":["*"],
"marathon":{"v2AppMustacheTemplate":"eyJpZCI6Int7c2VydmljZS5uYW1lfX0ifQ=="},
"config":{"type":"object","properties":{"service":{"type":"object","properties":{"name":{"type":"string","default":"a\"b"}}}}},
"resource":{"assets":{"uris":{"x":"https://h/x.tgz"}}}}]}"#;

fn exercise(bytes: &[u8]) {
    if let Ok(repo) = Repository::from_slice(bytes, RepoVersion::V5) {
        for v in ["1.8", "1.9", "1.10", "2.0"] {
            let _ = repo.for_dcos(&LooseVersion::new(v));
        }
        let _ = repo.for_repo_version(RepoVersion::V3);
        let again = Repository::from_slice(&repo.to_python_json(), RepoVersion::V5).unwrap();
        assert_eq!(again, repo);
        for p in &repo.packages {
            let _ = p.metadata();
            let _ = p.resource_typed();
            let _ = p.marathon_template();
        }
    }
    let files = RevisionFiles {
        folder: "hello",
        dir: "H/hello/0",
        package_json: Some(bytes),
        config_json: Some(bytes),
        resource_json: Some(bytes),
        template: Some(bytes),
        ..Default::default()
    };
    let _ = validate_revision(&files, None);
}

#[test]
fn truncations_and_flips_never_panic() {
    let b = INDEX.as_bytes();
    for n in 0..b.len() {
        exercise(&b[..n]);
    }
    let specials = [
        b'"', b'{', b'}', b'[', b']', b',', b':', b'0', b'\\', 0xff, b' ',
    ];
    for i in (0..b.len()).step_by(3) {
        for s in specials {
            let mut m = b.to_vec();
            m[i] = s;
            exercise(&m);
        }
    }
}
