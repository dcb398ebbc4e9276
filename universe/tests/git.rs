//! Git sources: build from a ref without a checkout, record the commit, diff two refs.

mod common;

use std::path::Path;

use serde_json::Value;
use universe::build::{build_tree, BuildInfo, BuildOptions};
use universe::git::{diff, GitTree};
use universe::source::{Layout, Tree};

fn commit_all(repo: &git2::Repository, message: &str) -> git2::Oid {
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.update_all(["*"], None).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("t", "t@example.com").unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .unwrap()
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn build_from_git_ref_and_diff() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    common::tree(&root);
    let repo = git2::Repository::init(&root).unwrap();
    let first = commit_all(&repo, "one");

    // Second commit: change hello/0, remove kube/0, add hello/2.
    let pkgs = root.join("repo/packages");
    let pj = pkgs.join("H/hello/0/package.json");
    let text = std::fs::read_to_string(&pj)
        .unwrap()
        .replace("\"d\"", "\"changed\"");
    std::fs::write(&pj, text).unwrap();
    std::fs::remove_dir_all(pkgs.join("K/kube/0")).unwrap();
    common::package(
        &root,
        "hello",
        2,
        serde_json::json!({"packagingVersion":"4.0","name":"hello","version":"3.0","maintainer":"m","description":"d","tags":[]}),
        None,
    );
    let second = commit_all(&repo, "two");

    // The working tree is now at `second`; build `first` from git without a checkout.
    let t = GitTree::open(&root.display().to_string(), &first.to_string()).unwrap();
    assert_eq!(t.commit().as_deref(), Some(first.to_string().as_str()));
    let layout = Layout::detect(&t);
    assert_eq!(layout.packages, "repo/packages");
    let out = tmp.path().join("out");
    let info = BuildInfo {
        commit: t.commit(),
        ..Default::default()
    };
    build_tree(&t, &layout.packages, &out, &BuildOptions::default(), info).unwrap();
    let u = read_json(&out.join("universe.json"));
    let names: Vec<(String, u64)> = u["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["releaseVersion"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [("hello".into(), 0), ("hello".into(), 1), ("kube".into(), 0)]
    );
    assert_eq!(
        read_json(&out.join("build-info.json"))["commit"],
        Value::String(first.to_string())
    );

    // Same bytes as a build of the same files from the folder.
    let fs_root = tmp.path().join("fs");
    common::tree(&fs_root);
    let fs_out = tmp.path().join("fs-out");
    common::build(&fs_root, &fs_out);
    assert!(
        std::fs::read(out.join("repo-up-to-1.9.json")).unwrap()
            == std::fs::read(fs_out.join("repo-up-to-1.9.json")).unwrap()
    );

    let d = diff(&root.display().to_string(), &first.to_string(), "HEAD").unwrap();
    assert!(d.to.contains(&second.to_string()));
    let show = |v: &[universe::git::VersionChange]| {
        v.iter()
            .map(|c| (c.name.clone(), c.release_version))
            .collect::<Vec<_>>()
    };
    assert_eq!(show(&d.added), [("hello".to_string(), 2)]);
    assert_eq!(show(&d.removed), [("kube".to_string(), 0)]);
    assert_eq!(show(&d.changed), [("hello".to_string(), 0)]);
    assert_eq!(d.changed[0].files, ["package.json"]);
    assert_eq!(d.added[0].version.as_deref(), Some("3.0"));

    assert!(GitTree::open(&root.display().to_string(), "no-such-ref").is_err());
    assert!(GitTree::open("https://example.invalid/u.git", "HEAD").is_err());
}
