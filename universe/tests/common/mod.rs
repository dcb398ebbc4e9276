//! A small package tree for tests.

#![allow(dead_code)]

use std::path::Path;

use serde_json::{json, Value};

pub fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

pub fn package(root: &Path, name: &str, rev: u32, package_json: Value, resource: Option<Value>) {
    let dir = root
        .join("repo/packages")
        .join(name[..1].to_ascii_uppercase())
        .join(name)
        .join(rev.to_string());
    write(
        &dir.join("package.json"),
        serde_json::to_vec_pretty(&package_json).unwrap(),
    );
    if let Some(r) = resource {
        write(
            &dir.join("resource.json"),
            serde_json::to_vec_pretty(&r).unwrap(),
        );
    }
    write(
        &dir.join("config.json"),
        serde_json::to_vec_pretty(
            &json!({"type":"object","properties":{"service":{"type":"object","properties":{
            "name":{"type":"string","default":name},
            "cmd":{"type":"string","default":"[[\"hostname\",\"UNIQUE\"]]"}}}}}),
        )
        .unwrap(),
    );
    write(
        &dir.join("marathon.json.mustache"),
        r#"{"id": "{{service.name}}", "cpus": 0.1, "mem": 32, "cmd": "sleep 1000", "env": {"C": "{{service.cmd}}"}}"#,
    );
}

/// hello 0 (3.0, min 1.8), hello 1 (4.0, min 1.10, upgradesFrom), kube 0 (5.0, min 1.12).
pub fn tree(root: &Path) {
    let meta = |pv: &str, name: &str, version: &str, min: &str| {
        json!({"packagingVersion": pv, "name": name, "version": version, "minDcosReleaseVersion": min,
               "maintainer": "m@example.com", "description": "d", "tags": ["t"]})
    };
    package(
        root,
        "hello",
        0,
        meta("3.0", "hello", "1.0", "1.8"),
        Some(json!({"images": {"icon-small": "http://x/s.png"}})),
    );
    let mut h1 = meta("4.0", "hello", "2.0", "1.10");
    h1["upgradesFrom"] = json!(["1.0"]);
    package(root, "hello", 1, h1, None);
    let mut k = meta("5.0", "kube", "1.0", "1.12");
    k["manager"] = json!({"packageName": "hello"});
    package(root, "kube", 0, k, None);
}

pub fn build(root: &Path, out: &Path) {
    use universe::build::{build_tree, BuildInfo, BuildOptions};
    use universe::source::{FsTree, Layout};
    let t = FsTree::new(root).unwrap();
    let layout = Layout::detect(&t);
    build_tree(
        &t,
        &layout.packages,
        out,
        &BuildOptions::default(),
        BuildInfo::default(),
    )
    .unwrap();
}
