//! Repository indexes: parse, convert for every DC/OS version and media type, serialize.
#![no_main]

use libfuzzer_sys::fuzz_target;
use repo_schema::{LooseVersion, RepoVersion, Repository};

fuzz_target!(|data: &[u8]| {
    if let Ok(repo) = Repository::from_slice(data, RepoVersion::V5) {
        let _ = repo.check_media_type();
        for v in repo_schema::convert::UPSTREAM_DCOS_VERSIONS {
            let _ = repo.for_dcos(&LooseVersion::new(v));
        }
        for v in RepoVersion::ALL {
            let _ = repo.for_repo_version(v);
        }
        let out = repo.to_python_json();
        let again = Repository::from_slice(&out, RepoVersion::V5).expect("own output parses");
        assert_eq!(again.packages.len(), repo.packages.len());
    }
});
