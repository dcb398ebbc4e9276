//! Builds ../shared/universe-corpus and compares every file of
//! ../shared/reference/universe-build with the output, as JSON (same packages, same fields,
//! same values). Skipped with a message when ../shared is absent.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;
use universe::build::{self, BuildInfo, BuildOptions};
use universe::source::{FsTree, Layout};

fn shared() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    if p.join("universe-corpus").is_dir() && p.join("reference/universe-build").is_dir() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} not found (no ../shared beside the checkout)",
            p.display()
        );
        None
    }
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap();
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        bytes
    };
    serde_json::from_slice(&bytes).unwrap()
}

fn by_key(index: &Value) -> BTreeMap<(String, u64), &Value> {
    let packages = index["packages"].as_array().expect("packages array");
    let map: BTreeMap<_, _> = packages
        .iter()
        .map(|p| {
            (
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["releaseVersion"].as_u64().unwrap(),
                ),
                p,
            )
        })
        .collect();
    assert_eq!(
        map.len(),
        packages.len(),
        "duplicate (name, releaseVersion)"
    );
    map
}

fn build_corpus(shared: &Path, out: &Path) {
    let tree = FsTree::new(&shared.join("universe-corpus")).unwrap();
    let layout = Layout::detect(&tree);
    assert_eq!(layout.packages, "repo/packages");
    build::build_tree(
        &tree,
        &layout.packages,
        out,
        &BuildOptions::default(),
        BuildInfo::default(),
    )
    .unwrap();
}

#[test]
fn build_matches_reference_and_is_deterministic() {
    let Some(shared) = shared() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    build_corpus(&shared, &out);

    let reference = shared.join("reference/universe-build");
    let mut compared = 0;
    for entry in std::fs::read_dir(&reference).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".content_type") {
            let want = std::fs::read_to_string(&path).unwrap();
            let got = std::fs::read_to_string(out.join(format!("{stem}.content_type"))).unwrap();
            assert_eq!(got, want, "{name}");
            compared += 1;
            continue;
        }
        let stem = name.trim_end_matches(".gz");
        let want = read_json(&path);
        let got = read_json(&out.join(stem));
        let (w, g) = (by_key(&want), by_key(&got));
        let missing: Vec<_> = w.keys().filter(|k| !g.contains_key(*k)).collect();
        let extra: Vec<_> = g.keys().filter(|k| !w.contains_key(*k)).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{stem}: missing {missing:?}, extra {extra:?}"
        );
        for (k, v) in &w {
            assert!(
                g[k] == *v,
                "{stem}: package {k:?} differs from the reference"
            );
        }
        compared += 1;
    }
    assert!(compared >= 10, "compared only {compared} reference files");

    // Per-version package files hold exactly the versions of one package.
    let kafka = read_json(&out.join("2.0/package/kafka.json"));
    let repo20 = read_json(&out.join("repo-up-to-2.0.json"));
    let n = repo20["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "kafka")
        .count();
    assert_eq!(kafka["packages"].as_array().unwrap().len(), n);

    // Same input, same bytes (files whose bytes would change are rewritten, so a difference
    // shows); re-running into the existing output works (upstream crashes).
    let universe1 = std::fs::read(out.join("universe.json")).unwrap();
    let r18 = std::fs::read(out.join("repo-up-to-1.8.json")).unwrap();
    std::fs::remove_file(out.join("repo-up-to-1.8.json")).unwrap();
    build_corpus(&shared, &out);
    assert!(universe1 == std::fs::read(out.join("universe.json")).unwrap());
    assert!(r18 == std::fs::read(out.join("repo-up-to-1.8.json")).unwrap());
}

#[test]
fn validate_corpus_matches_reference_renders() {
    let Some(shared) = shared() else { return };
    use repo_schema::validate::Severity;
    use std::collections::BTreeSet;
    let tree = FsTree::new(&shared.join("universe-corpus")).unwrap();
    let layout = Layout::detect(&tree);
    let schemas =
        universe::validate::load_schemas(&tree, layout.schemas.as_deref().unwrap()).unwrap();
    let report = universe::validate::validate_tree(
        &tree,
        &layout.packages,
        Some(&schemas),
        &universe::validate::ValidateOptions::default(),
    );
    let errors: Vec<_> = report
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .collect();
    assert!(
        errors.is_empty(),
        "the corpus passes upstream validation: {errors:?}"
    );
    assert_eq!((report.packages, report.revisions), (155, 1086));

    // Revisions flagged, as (package, revision), from the issue file paths.
    let flagged = |rule: &str| -> BTreeSet<(String, String)> {
        report
            .issues
            .iter()
            .filter(|i| i.rule == rule)
            .map(|i| {
                let parts: Vec<&str> = i.file.split('/').collect();
                (parts[3].to_string(), parts[4].to_string())
            })
            .collect()
    };
    let text = std::fs::read_to_string(shared.join("reference/expected-renders.jsonl")).unwrap();
    let mut options_invalid = BTreeSet::new();
    let mut not_rendered = BTreeSet::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let key = (
            v["package"].as_str().unwrap().to_string(),
            v["revision"].to_string().trim_matches('"').to_string(),
        );
        if v["options_valid"] == Value::Bool(false) {
            options_invalid.insert(key.clone());
        }
        if v["status"] != "ok" {
            not_rendered.insert(key);
        }
    }
    assert_eq!(flagged("defaults-valid"), options_invalid);
    if report.renderer == "cosmos-render" {
        assert_eq!(flagged("renders-to-object"), not_rendered);
        assert_eq!(report.rendered, text.lines().count() - not_rendered.len());
    }
}
