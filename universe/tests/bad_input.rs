//! Bad input: malformed JSON, wrong types, missing files, unknown packaging versions,
//! non-integer revision folders, symlinks leaving the tree, huge files, non-UTF-8 templates.
//! Each gives a clear error naming the package file; nothing panics; good packages still pass.

mod common;

use std::path::Path;
use std::process::Command;

use repo_schema::validate::{Issue, Severity};
use serde_json::{json, Value};
use universe::build::{self, BuildError, BuildInfo, BuildOptions};
use universe::source::{FsTree, Layout};
use universe::validate::{validate_tree, ValidateOptions};

fn pkg_dir(root: &Path, name: &str, rev: &str) -> std::path::PathBuf {
    root.join("repo/packages")
        .join(name[..1].to_ascii_uppercase())
        .join(name)
        .join(rev)
}

fn meta(name: &str) -> Value {
    json!({"packagingVersion": "3.0", "name": name, "version": "1.0", "maintainer": "m", "description": "d", "tags": []})
}

fn bad_tree(root: &Path) {
    common::package(root, "good", 0, meta("good"), Some(json!({})));
    // Malformed JSON.
    common::package(root, "malformed", 0, meta("malformed"), None);
    common::write(
        &pkg_dir(root, "malformed", "0").join("package.json"),
        b"{\"name\": \"malformed\",",
    );
    // Wrong types.
    common::package(
        root,
        "wrongtypes",
        0,
        json!({"packagingVersion": "3.0", "name": 5, "version": "1", "tags": "x"}),
        None,
    );
    // Missing package.json.
    common::write(&pkg_dir(root, "nopackage", "0").join("config.json"), b"{}");
    // Unknown packaging version.
    let mut m = meta("future");
    m["packagingVersion"] = json!("9.0");
    common::package(root, "future", 0, m, None);
    // Non-integer revision folder.
    common::package(root, "revs", 0, meta("revs"), None);
    common::write(
        &pkg_dir(root, "revs", "latest").join("package.json"),
        serde_json::to_vec(&meta("revs")).unwrap(),
    );
    // Symlink leaving the tree.
    common::package(root, "escape", 0, meta("escape"), None);
    let outside = root.parent().unwrap().join("outside.json");
    std::fs::write(&outside, b"{}").unwrap();
    let cfg = pkg_dir(root, "escape", "0").join("config.json");
    std::fs::remove_file(&cfg).unwrap();
    std::os::unix::fs::symlink(&outside, &cfg).unwrap();
    // Huge file (sparse, so the test stays cheap).
    common::package(root, "huge", 0, meta("huge"), None);
    let f = std::fs::File::create(pkg_dir(root, "huge", "0").join("resource.json")).unwrap();
    f.set_len(universe::source::MAX_FILE_BYTES + 1).unwrap();
    // Non-UTF-8 template.
    common::package(root, "binary", 0, meta("binary"), None);
    common::write(
        &pkg_dir(root, "binary", "0").join("marathon.json.mustache"),
        b"{\"id\": \"\xff\xfe\"}",
    );
    // A stray file where a letter folder belongs.
    common::write(&root.join("repo/packages/README"), b"hi");
}

fn issues_for<'a>(issues: &'a [Issue], needle: &str) -> Vec<&'a Issue> {
    issues.iter().filter(|i| i.file.contains(needle)).collect()
}

#[test]
fn validate_reports_each_problem_per_package() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("src");
    bad_tree(&root);
    let tree = FsTree::new(&root).unwrap();
    let layout = Layout::detect(&tree);
    let report = validate_tree(&tree, &layout.packages, None, &ValidateOptions::default());
    assert!(!report.valid);
    let errs: Vec<&Issue> = report
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .collect();
    let errs: Vec<Issue> = errs.into_iter().cloned().collect();
    let has = |needle: &str, rule: &str| issues_for(&errs, needle).iter().any(|i| i.rule == rule);
    assert!(
        issues_for(&errs, "/good/").is_empty(),
        "{:?}",
        issues_for(&errs, "/good/")
    );
    assert!(has("malformed/0/package.json", "json-syntax"));
    assert!(has("wrongtypes/0/package.json", "name-matches-folder"));
    assert!(has("nopackage/0/package.json", "package-json-required"));
    assert!(has("future/0/package.json", "packaging-version"));
    assert!(has("revs/latest", "revision-folder"));
    assert!(has("escape/0/config.json", "read-error"));
    assert!(issues_for(&errs, "escape/0/config.json")[0]
        .message
        .contains("outside the repository"));
    assert!(has("huge/0/resource.json", "read-error"));
    assert!(issues_for(&errs, "huge/0/resource.json")[0]
        .message
        .contains("limit"));
    assert!(has("binary/0/marathon.json.mustache", "template-syntax"));
    assert!(has("packages/README", "letter-folder"));
    // The revision of `revs` that is well named is still validated.
    assert!(issues_for(&errs, "revs/0").is_empty());
}

#[test]
fn build_fails_with_every_problem_or_skips_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("src");
    bad_tree(&root);
    let tree = FsTree::new(&root).unwrap();
    let layout = Layout::detect(&tree);
    let out = tmp.path().join("out");
    match build::build_tree(
        &tree,
        &layout.packages,
        &out,
        &BuildOptions::default(),
        BuildInfo::default(),
    ) {
        Err(BuildError::Invalid(issues)) => {
            for needle in [
                "malformed/0",
                "wrongtypes/0",
                "nopackage/0",
                "revs/latest",
                "escape/0",
                "huge/0",
            ] {
                assert!(
                    !issues_for(&issues, needle).is_empty(),
                    "no issue for {needle}: {issues:?}"
                );
            }
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(
        !out.join("universe.json").exists(),
        "nothing is written on failure"
    );
    let opts = BuildOptions {
        skip_invalid: true,
        ..Default::default()
    };
    let summary =
        build::build_tree(&tree, &layout.packages, &out, &opts, BuildInfo::default()).unwrap();
    assert!(!summary.warnings.is_empty());
    let universe: Value =
        serde_json::from_slice(&std::fs::read(out.join("universe.json")).unwrap()).unwrap();
    let names: Vec<&str> = universe["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"good") && names.contains(&"revs"));
    assert!(!names.contains(&"malformed"));
}

#[test]
fn cli_exit_codes_and_json_report() {
    let exe = env!("CARGO_BIN_EXE_universe");
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    common::tree(&good);
    let st = Command::new(exe)
        .args(["validate", "--no-render"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        st.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );

    let bad = tmp.path().join("bad");
    bad_tree(&bad);
    let st = Command::new(exe)
        .args(["validate", "--json"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(report["valid"], json!(false));
    let first = &report["issues"][0];
    for k in ["severity", "file", "pointer", "rule", "message"] {
        assert!(first.get(k).is_some(), "issue lacks {k}: {first}");
    }
    let st = Command::new(exe)
        .args(["build"])
        .arg(&bad)
        .arg("--out")
        .arg(tmp.path().join("o"))
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(2));
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(
        err.contains("malformed/0/package.json") && err.contains("--skip-invalid"),
        "{err}"
    );
    let st = Command::new(exe)
        .args(["validate"])
        .arg(tmp.path().join("missing"))
        .output()
        .unwrap();
    assert_eq!(st.status.code(), Some(2));
}
