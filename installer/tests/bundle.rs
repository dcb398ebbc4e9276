//! Bootstrap bundle: deterministic ids, manifest, archive format, node configs.

mod common;

use common::{base_config, text, Workspace};
use dcos_installer::bundle::{self, sha256_hex};
use dcos_installer::{InstallRole, NodeConfig, StoreConfig};
use std::process::Command;

fn ws() -> Workspace {
    Workspace::new(|serve| base_config(&format!("file://{}", serve.display())))
}

fn serve_files(ws: &Workspace) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    fn walk(base: &std::path::Path, d: &std::path::Path, v: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, v);
            } else {
                v.push((
                    p.strip_prefix(base).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    walk(&ws.serve(), &ws.serve(), &mut v);
    v.sort();
    v
}

#[test]
fn same_config_and_binaries_give_the_same_bundle_byte_for_byte() {
    // Two workspaces: same config text (same bootstrap URL), different directories and times.
    let make = || {
        let w = Workspace::new(|_| base_config("http://10.0.0.2:8080"));
        let out = w.genconf_lib(None);
        (w, out)
    };
    let (w1, o1) = make();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (w2, o2) = make();
    assert_eq!(o1.bootstrap_id, o2.bootstrap_id);
    assert_eq!(o1.config_id, o2.config_id);
    assert_eq!(
        serve_files(&w1),
        serve_files(&w2),
        "every served file identical"
    );
    // Re-running genconf in place changes nothing either.
    let o3 = w1.genconf_lib(None);
    assert_eq!(o3.bootstrap_id, o1.bootstrap_id);
}

#[test]
fn the_bootstrap_id_is_the_sha256_of_the_bundle() {
    let w = ws();
    let out = w.genconf_lib(None);
    let tgz = std::fs::read(
        w.serve()
            .join(format!("bootstrap/{}.bootstrap.tar.gz", out.bootstrap_id)),
    )
    .unwrap();
    assert_eq!(sha256_hex(&tgz), out.bootstrap_id);
    assert_eq!(
        std::fs::read_to_string(w.serve().join("bootstrap.latest"))
            .unwrap()
            .trim(),
        out.bootstrap_id
    );
    // gzip header: magic, deflate, no flags (no file name), mtime 0, OS 255.
    assert_eq!(&tgz[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
    assert_eq!(tgz[9], 255);
}

#[test]
fn config_or_binary_changes_change_the_id() {
    let w = ws();
    let a = w.genconf_lib(None);
    std::fs::write(
        w.genconf().join("config.yaml"),
        base_config("http://10.0.0.9:8080"),
    )
    .unwrap();
    let b = w.genconf_lib(None);
    assert_ne!(a.bootstrap_id, b.bootstrap_id);
    assert_ne!(a.config_id, b.config_id);
    common::write_exec(&w.dcosd(), "#!/bin/sh\necho v2\n");
    let c = w.genconf_lib(None);
    assert_ne!(b.bootstrap_id, c.bootstrap_id);
    assert_eq!(
        b.config_id, c.config_id,
        "the config id depends on the config only"
    );
    std::fs::write(w.genconf().join("ip-detect"), "#!/bin/sh\necho 10.1.1.1\n").unwrap();
    let d = w.genconf_lib(None);
    assert_ne!(
        c.bootstrap_id, d.bootstrap_id,
        "ip-detect is part of the config"
    );
}

#[test]
fn the_archive_is_a_plain_tar_gz_with_fixed_metadata() {
    let w = ws();
    let out = w.genconf_lib(None);
    let tgz = w
        .serve()
        .join(format!("bootstrap/{}.bootstrap.tar.gz", out.bootstrap_id));
    let o = Command::new("tar")
        .args(["--numeric-owner", "-tvzf"])
        .arg(&tgz)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let listing = String::from_utf8_lossy(&o.stdout);
    let names: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries in sorted order");
    assert!(names.contains(&"bin/dcosd") && names.contains(&"etc/roles/slave_public.json"));
    for l in listing.lines() {
        assert!(l.contains(" 0/0 "), "uid/gid 0: {l}");
        assert!(l.contains("1970-01-01"), "mtime 0: {l}");
    }
    assert!(listing
        .lines()
        .any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with("bin/dcosd")));
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("-rw-------") && l.ends_with("etc/roles/master.json")),
        "role configs hold the internal credential: root only"
    );
}

#[test]
fn the_manifests_list_every_file_with_its_sha256() {
    let w = ws();
    let out = w.genconf_lib(None);
    let id = &out.bootstrap_id;
    // sha256sums: verifiable with coreutils against an unpacked tree.
    let stage = w.path().join("stage");
    std::fs::create_dir_all(stage.join("tree")).unwrap();
    std::fs::create_dir_all(stage.join("bootstrap")).unwrap();
    let tgz = w.serve().join(format!("bootstrap/{id}.bootstrap.tar.gz"));
    std::fs::copy(&tgz, stage.join(format!("bootstrap/{id}.bootstrap.tar.gz"))).unwrap();
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(&tgz)
        .arg("-C")
        .arg(stage.join("tree"))
        .status()
        .unwrap();
    assert!(st.success());
    let o = Command::new("sha256sum")
        .args(["-c", "--strict"])
        .arg(w.serve().join(format!("bootstrap/{id}.sha256sums")))
        .current_dir(&stage)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let sums =
        std::fs::read_to_string(w.serve().join(format!("bootstrap/{id}.sha256sums"))).unwrap();
    assert_eq!(
        sums.lines().count(),
        1 + 10,
        "the bundle + 10 tree files:\n{sums}"
    );

    // JSON manifest: every served file but itself.
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(w.serve().join(format!("bootstrap/{id}.manifest.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(m["bootstrap_id"], id.as_str());
    let served = m["served"].as_array().unwrap();
    let files = serve_files(&w);
    assert_eq!(served.len(), files.len() - 1);
    for e in served {
        let p = e["path"].as_str().unwrap();
        let data = std::fs::read(w.serve().join(p)).unwrap();
        assert_eq!(e["sha256"].as_str().unwrap(), sha256_hex(&data), "{p}");
    }
    assert_eq!(m["tree"].as_array().unwrap().len(), 10);
    assert_eq!(bundle::verify_serve_dir(&w.serve()).unwrap(), *id);
}

#[test]
fn verify_serve_dir_detects_tampering_and_truncation() {
    let w = ws();
    let out = w.genconf_lib(None);
    let cfg = w.serve().join("config/slave.json");
    std::fs::write(&cfg, "{}").unwrap();
    let e = bundle::verify_serve_dir(&w.serve())
        .unwrap_err()
        .to_string();
    assert!(e.contains("config/slave.json"), "{e}");
    w.genconf_lib(None);
    let tgz = w
        .serve()
        .join(format!("bootstrap/{}.bootstrap.tar.gz", out.bootstrap_id));
    let data = std::fs::read(&tgz).unwrap();
    std::fs::write(&tgz, &data[..data.len() / 2]).unwrap();
    let e = bundle::verify_serve_dir(&w.serve())
        .unwrap_err()
        .to_string();
    assert!(e.contains("bootstrap id"), "{e}");
}

#[test]
fn per_role_node_configs_parse_as_node_config() {
    let w = ws();
    let out = w.genconf_lib(None);
    for role in InstallRole::ALL {
        let p = w.serve().join(format!("config/{role}.json"));
        let c = NodeConfig::load(&p).unwrap();
        assert_eq!(c.role, role);
        assert_eq!(c.config_id, out.config_id);
        assert_eq!(c.ip, None, "templates carry no IP");
        assert_eq!(c.masters, vec!["127.0.0.1"]);
        assert_eq!(c.cluster_name, "test-cluster");
        assert_eq!(c.dcosd_roles, role.dcosd_roles());
        assert_eq!(
            c.store,
            StoreConfig::Embedded {
                path: "/var/lib/dcos-rs/store".into()
            }
        );
        assert!(!c.oauth_enabled);
        match role {
            InstallRole::Master => assert!(c.agent.is_none()),
            InstallRole::Slave => assert_eq!(c.agent.as_ref().unwrap().resource_role, "*"),
            InstallRole::SlavePublic => {
                let a = c.agent.as_ref().unwrap();
                assert_eq!(a.resource_role, "slave_public");
                assert_eq!(
                    a.attributes.get("public_ip").map(String::as_str),
                    Some("true")
                );
            }
        }
        // Round trip is byte-exact.
        assert_eq!(c.to_json(), std::fs::read_to_string(&p).unwrap());
    }
}

#[test]
fn node_config_rejects_bad_documents() {
    assert!(NodeConfig::from_json("{", "x").is_err());
    let w = ws();
    w.genconf_lib(None);
    let good = std::fs::read_to_string(w.serve().join("config/master.json")).unwrap();
    let e =
        NodeConfig::from_json(&good.replace("\"format\": 1", "\"format\": 99"), "x").unwrap_err();
    assert!(e.to_string().contains("unsupported format 99"));
    let e = NodeConfig::from_json(&good.replacen('{', "{\"surprise\": 1,", 1), "x").unwrap_err();
    assert!(e.to_string().contains("surprise"), "{e}");
}

#[test]
fn a_plaintext_superuser_password_is_hashed_deterministically_and_never_stored() {
    let cfg = |_: &std::path::Path| {
        base_config("http://10.0.0.2:8080").replace(
            "oauth_enabled: false",
            "superuser_username: admin\nsuperuser_password: correct-horse-battery",
        )
    };
    let w1 = Workspace::new(cfg);
    let w2 = Workspace::new(cfg);
    let a = w1.genconf_lib(None);
    let b = w2.genconf_lib(None);
    assert_eq!(a.bootstrap_id, b.bootstrap_id);
    let c = NodeConfig::load(&w1.serve().join("config/master.json")).unwrap();
    let su = c.superuser.unwrap();
    assert_eq!(su.uid, "admin");
    assert!(
        su.password_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        su.password_hash
    );
    assert!(dcos_installer::password::verify_password(
        "correct-horse-battery",
        &su.password_hash
    ));
    assert!(!dcos_installer::password::verify_password(
        "wrong",
        &su.password_hash
    ));
    for (p, data) in serve_files(&w1) {
        if p.ends_with(".json") || p.ends_with(".sh") || p.ends_with("sums") {
            assert!(
                !String::from_utf8_lossy(&data).contains("correct-horse-battery"),
                "{p} leaks the password"
            );
        }
    }
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let Ok(o) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("SKIP: systemd-analyze not installed (apt-get install systemd)");
        return;
    };
    assert!(o.status.success());
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("opt");
    let work = dir.path().join("work");
    std::fs::create_dir_all(prefix.join("bin")).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    common::write_exec(&prefix.join("bin/dcosd"), "#!/bin/sh\n");
    for role in InstallRole::ALL {
        let unit = bundle::systemd_unit(role, prefix.to_str().unwrap(), work.to_str().unwrap());
        let path = dir.path().join(bundle::unit_name(role));
        std::fs::write(&path, &unit).unwrap();
        let o = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        // Only warnings about this unit count (the host's own units may be noisy).
        let ours: Vec<&str> = err
            .lines()
            .filter(|l| l.contains(bundle::unit_name(role)))
            .collect();
        assert!(
            o.status.success() && ours.is_empty(),
            "{role}: {}\n{unit}",
            text(&o)
        );
    }
}
