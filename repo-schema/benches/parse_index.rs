//! Prints how long `Repository::from_slice` takes on the reference universe.json (28 MB).
//! Run: `cargo bench -p repo-schema --bench parse_index`.

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use repo_schema::{RepoVersion, Repository};

fn main() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/universe-build/universe.json.gz");
    let Ok(gz) = std::fs::read(&p) else {
        eprintln!("SKIPPED: {} not found", p.display());
        return;
    };
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut bytes)
        .expect("gunzip");
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let repo = Repository::from_slice(&bytes, RepoVersion::V5).expect("parse");
        let secs = t.elapsed().as_secs_f64();
        best = best.min(secs);
        assert_eq!(repo.packages.len(), 1086);
    }
    println!(
        "parse_index: universe.json {} bytes, best of 5: {:.1} ms",
        bytes.len(),
        best * 1000.0
    );
}
