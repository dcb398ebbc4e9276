//! dcos_install.sh: generated script, preflight, verification before install,
//! re-run safety, uninstall, upgrade. Runs the real script with bash under
//! `--root` (a temp dir), supervising a fake dcosd.

mod common;

use common::{base_config, text, Workspace};
use std::process::Command;

fn ws() -> Workspace {
    Workspace::new(|serve| base_config(&format!("file://{}", serve.display())))
}

fn installed(w: &Workspace) -> bool {
    w.root().join("opt/dcos-rs/etc/bootstrap-id").exists()
}

fn wait_for_log(w: &Workspace, needle: &str) -> String {
    let log = w.root().join("var/lib/dcos-rs/log/dcosd.log");
    for _ in 0..100 {
        if let Ok(s) = std::fs::read_to_string(&log) {
            if s.contains(needle) {
                return s;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{} never contained {needle:?}", log.display());
}

fn pid_alive(pid: &str) -> bool {
    std::path::Path::new(&format!("/proc/{}", pid.trim())).exists()
}

#[test]
fn the_generated_script_is_valid_bash_with_quoted_values() {
    let w = Workspace::new(|serve| {
        base_config(&format!("file://{}", serve.display())).replace(
            "cluster_name: test-cluster",
            "cluster_name: \"it's $(rm -rf /)\"",
        )
    });
    let out = w.genconf_lib(None);
    let script = std::fs::read_to_string(w.serve().join("dcos_install.sh")).unwrap();
    assert!(!script.contains("@@"), "every placeholder is filled");
    assert!(script.contains(&format!("BOOTSTRAP_ID='{}'", out.bootstrap_id)));
    assert!(
        script.contains("CLUSTER_NAME='it'\\''s $(rm -rf /)'"),
        "single-quoted"
    );
    let o = Command::new("bash")
        .arg("-n")
        .arg(w.serve().join("dcos_install.sh"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = Command::new("bash")
        .arg(w.serve().join("dcos_install.sh"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("slave_public"),
        "{}",
        text(&o)
    );
}

#[test]
fn install_rerun_wrong_role_and_uninstall() {
    let w = ws();
    let out = w.genconf_lib(None);
    let before = w.root_listing();

    let o = w.install(&["--ip", "10.0.0.2", "slave"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(installed(&w));
    let root = w.root();
    assert_eq!(
        std::fs::read_to_string(root.join("opt/dcos-rs/etc/bootstrap-id"))
            .unwrap()
            .trim(),
        out.bootstrap_id
    );
    assert!(root.join("etc/dcos-rs/roles/slave").exists());
    let node = dcos_installer::NodeConfig::load(&root.join("opt/dcos-rs/etc/node.json")).unwrap();
    assert_eq!(node.ip.as_deref(), Some("10.0.0.2"));
    assert_eq!(node.role, dcos_installer::InstallRole::Slave);
    let log = wait_for_log(&w, "fake dcosd");
    assert!(log.contains("--roles agent --config"), "{log}");
    let pid =
        std::fs::read_to_string(root.join("var/lib/dcos-rs/run/dcos-rs-supervise.pid")).unwrap();
    assert!(pid_alive(&pid));

    // Re-running is safe: same install, same supervisor.
    let o = w.install(&["--ip", "10.0.0.2", "slave"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already installed"));
    let pid2 =
        std::fs::read_to_string(root.join("var/lib/dcos-rs/run/dcos-rs-supervise.pid")).unwrap();
    assert_eq!(pid, pid2);

    // The wrong role on an installed node: refused, node unchanged.
    let listing = w.root_listing();
    let o = w.install(&["--ip", "10.0.0.2", "master"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already installed as 'slave'"),
        "{}",
        text(&o)
    );
    assert_eq!(w.root_listing(), listing);

    // The supervisor restarts dcosd when it dies.
    let child =
        std::fs::read_to_string(root.join("var/lib/dcos-rs/run/dcos-rs-supervise.pid.child"))
            .unwrap();
    Command::new("kill").arg(child.trim()).status().unwrap();
    wait_for_log(&w, "restarting in");

    // Uninstall removes everything it laid down and stops the supervisor.
    let o = w.install(&["--uninstall"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(w.root_listing(), before, "the node is back as it was");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(!pid_alive(&pid), "supervisor stopped");
    // Uninstall twice is fine.
    assert!(w.install(&["--uninstall"]).status.success());
}

#[test]
fn unknown_role_and_missing_role_are_clear_errors() {
    let w = ws();
    w.genconf_lib(None);
    let o = w.install(&["agent-thing"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unknown role 'agent-thing'"),
        "{}",
        text(&o)
    );
    let o = w.install(&[]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("a role is required"),
        "{}",
        text(&o)
    );
    assert!(w.root_listing().is_empty());
}

#[test]
fn the_ip_must_match_the_role() {
    let w = ws();
    w.genconf_lib(None);
    for (ip, role, want) in [
        ("10.0.0.2", "master", "not in master_list"),
        ("127.0.0.1", "slave", "install it with role master"),
        ("10.0.0.3", "slave", "install it with role slave_public"),
        ("10.0.0.2", "slave_public", "install it with role slave"),
        ("999.1.1.1", "slave", "not an IPv4 address"),
    ] {
        let o = w.install(&["--ip", ip, role]);
        assert!(!o.status.success(), "{ip} {role}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(want),
            "{ip} {role}: {}",
            text(&o)
        );
        assert!(
            w.root_listing().is_empty(),
            "nothing installed for {ip} {role}"
        );
    }
    // ip-detect from the bundle is used when --ip is absent (it prints 127.0.0.1).
    let o = w.install(&["master"]);
    assert!(o.status.success(), "{}", text(&o));
    let node =
        dcos_installer::NodeConfig::load(&w.root().join("opt/dcos-rs/etc/node.json")).unwrap();
    assert_eq!(node.ip.as_deref(), Some("127.0.0.1"));
    wait_for_log(&w, "--roles master,adminrouter");
}

#[test]
fn a_tampered_bundle_is_refused_before_anything_is_installed() {
    let w = ws();
    let out = w.genconf_lib(None);
    let tgz = w
        .serve()
        .join(format!("bootstrap/{}.bootstrap.tar.gz", out.bootstrap_id));
    let good = std::fs::read(&tgz).unwrap();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n / 2] ^= 0xff;
    std::fs::write(&tgz, &bad).unwrap();
    let o = w.install(&["--ip", "10.0.0.2", "slave"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("tampered with or truncated") && err.contains("nothing was changed"),
        "{}",
        text(&o)
    );
    assert!(
        w.root_listing().is_empty(),
        "nothing installed: {:?}",
        w.root_listing()
    );

    // Truncated.
    std::fs::write(&tgz, &good[..good.len() - 100]).unwrap();
    let o = w.install(&["--ip", "10.0.0.2", "slave"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("tampered with or truncated"),
        "{}",
        text(&o)
    );
    assert!(w.root_listing().is_empty());

    // A consistent but forged bundle + manifest pair does not match the script's root of trust.
    std::fs::write(&tgz, &good).unwrap();
    let sums = w
        .serve()
        .join(format!("bootstrap/{}.sha256sums", out.bootstrap_id));
    let s = std::fs::read_to_string(&sums).unwrap();
    std::fs::write(&sums, s.replacen('a', "b", 1)).unwrap();
    let o = w.install(&["--ip", "10.0.0.2", "slave"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("manifest"),
        "{}",
        text(&o)
    );
    assert!(w.root_listing().is_empty());
    // No staging directory is left behind in TMPDIR.
    let leftovers: Vec<_> = std::fs::read_dir(w.path())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("dcos-rs-install")
        })
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn a_port_in_use_fails_preflight_and_leaves_the_node_alone() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let w = Workspace::new(|serve| {
        format!(
            "{}ports:\n  agent: {port}\n",
            base_config(&format!("file://{}", serve.display()))
        )
    });
    w.genconf_lib(None);
    let o = w.install(&["--ip", "10.0.0.2", "slave"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("port {port} is already in use")),
        "{}",
        text(&o)
    );
    assert!(err.contains("nothing was changed"));
    assert!(w.root_listing().is_empty());
    // --preflight-only reports the same and installs nothing; a master does not need that port.
    let o = w.install(&["--preflight-only", "--ip", "10.0.0.2", "slave"]);
    assert!(!o.status.success());
    let o = w.install(&["--preflight-only", "master"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(w.root_listing().is_empty());
    drop(l);
}

#[test]
fn not_enough_disk_fails_preflight() {
    let w = Workspace::new(|serve| {
        base_config(&format!("file://{}", serve.display()))
            .replace("min_free_disk_mb: 1", "min_free_disk_mb: 999999999")
    });
    w.genconf_lib(None);
    let o = w.install(&["--ip", "10.0.0.2", "slave"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not enough disk space"),
        "{}",
        text(&o)
    );
    assert!(w.root_listing().is_empty());
}

#[test]
fn an_unreachable_bootstrap_url_is_a_clear_error() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let w = Workspace::new(|_| base_config(&format!("http://127.0.0.1:{port}")));
    w.genconf_lib(None);
    let o = w.install(&["--ip", "10.0.0.2", "slave"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "cannot download http://127.0.0.1:{port}/bootstrap/"
        )),
        "{}",
        text(&o)
    );
    assert!(err.contains("reachable"));
    assert!(w.root_listing().is_empty());
}

#[test]
fn a_non_dcos_directory_at_the_prefix_is_not_overwritten() {
    let w = ws();
    w.genconf_lib(None);
    let prefix = w.root().join("opt/dcos-rs");
    std::fs::create_dir_all(&prefix).unwrap();
    std::fs::write(prefix.join("precious"), "x").unwrap();
    let o = w.install(&["--ip", "10.0.0.2", "slave"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not a dcos-rs install"),
        "{}",
        text(&o)
    );
    assert!(prefix.join("precious").exists());
    // Uninstall does not touch it either.
    assert!(w.install(&["--uninstall"]).status.success());
    assert!(prefix.join("precious").exists());
}

#[test]
fn upgrade_swaps_the_tree_keeps_state_and_refuses_other_versions() {
    let w = ws();
    let v1 = w.genconf_lib(None);
    let o = w.install(&["--ip", "10.0.0.2", "slave"]);
    assert!(o.status.success(), "{}", text(&o));
    wait_for_log(&w, "fake dcosd");
    let root = w.root();
    std::fs::write(root.join("var/lib/dcos-rs/checkpoint"), "task state").unwrap();

    // A new dcosd build, then genconf --upgrade-from v1.
    common::write_exec(
        &w.dcosd(),
        "#!/usr/bin/env bash\necho \"fake dcosd v2 $*\"\nexec sleep 300\n",
    );
    let v2 = w.genconf_lib(Some(v1.bootstrap_id.clone()));
    assert_ne!(v1.bootstrap_id, v2.bootstrap_id);
    let rel = v2.upgrade_script.clone().unwrap();
    assert_eq!(
        rel,
        format!("upgrade/{}/dcos_node_upgrade.sh", v1.bootstrap_id)
    );

    // The old install script now refuses (different bootstrap on the node).
    let o = w.install(&["--ip", "10.0.0.2", "slave"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("upgrade"),
        "{}",
        text(&o)
    );

    let o = w.run_script(&rel, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(root.join("opt/dcos-rs/etc/bootstrap-id"))
            .unwrap()
            .trim(),
        v2.bootstrap_id
    );
    assert_eq!(
        std::fs::read_to_string(root.join("var/lib/dcos-rs/checkpoint")).unwrap(),
        "task state"
    );
    let node = dcos_installer::NodeConfig::load(&root.join("opt/dcos-rs/etc/node.json")).unwrap();
    assert_eq!(node.ip.as_deref(), Some("10.0.0.2"), "the IP is kept");
    wait_for_log(&w, "fake dcosd v2");
    assert!(!root
        .join("opt")
        .read_dir()
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().contains(".old")));

    // Re-running the upgrade is a no-op; an upgrade script for another version refuses.
    let o = w.run_script(&rel, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already at bootstrap"));
    let other = "0".repeat(64);
    common::write_exec(&w.dcosd(), "#!/usr/bin/env bash\necho v3\nexec sleep 300\n");
    let v3 = w.genconf_lib(Some(other.clone()));
    let o = w.run_script(v3.upgrade_script.as_deref().unwrap(), &[]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("upgrades from {other}")),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read_to_string(root.join("opt/dcos-rs/etc/bootstrap-id"))
            .unwrap()
            .trim(),
        v2.bootstrap_id
    );
    assert!(w.install(&["--uninstall"]).status.success());
}
