//! Shared helpers for the installer integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A config.yaml that validates (oauth off, one master, file:// bootstrap URL).
pub fn base_config(bootstrap_url: &str) -> String {
    format!(
        "bootstrap_url: {bootstrap_url}\n\
         cluster_name: test-cluster\n\
         master_discovery: static\n\
         master_list: [127.0.0.1]\n\
         agent_list: [10.0.0.2]\n\
         public_agent_list: [10.0.0.3]\n\
         resolvers: [10.0.0.1]\n\
         oauth_enabled: false\n\
         min_free_disk_mb: 1\n"
    )
}

pub const IP_DETECT: &str = "#!/bin/sh\necho 127.0.0.1\n";

/// A fake dcosd: records its arguments, then sleeps (it is killed by the supervisor).
pub const FAKE_DCOSD: &str = "#!/usr/bin/env bash\necho \"fake dcosd $*\"\nexec sleep 300\n";

pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    /// A temp dir with genconf/config.yaml (given), genconf/ip-detect and a fake dcosd.
    pub fn new(config: impl FnOnce(&Path) -> String) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let genconf = dir.path().join("genconf");
        std::fs::create_dir_all(&genconf).unwrap();
        let serve = genconf.join("serve");
        std::fs::write(genconf.join("config.yaml"), config(&serve)).unwrap();
        std::fs::write(genconf.join("ip-detect"), IP_DETECT).unwrap();
        write_exec(&dir.path().join("dcosd"), FAKE_DCOSD);
        Workspace { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn genconf(&self) -> PathBuf {
        self.path().join("genconf")
    }
    pub fn serve(&self) -> PathBuf {
        self.genconf().join("serve")
    }
    pub fn root(&self) -> PathBuf {
        let r = self.path().join("root");
        std::fs::create_dir_all(&r).unwrap();
        r
    }
    pub fn dcosd(&self) -> PathBuf {
        self.path().join("dcosd")
    }

    /// Run genconf through the library.
    pub fn genconf_lib(
        &self,
        upgrade_from: Option<String>,
    ) -> dcos_installer::bundle::GenconfOutput {
        let cfg = dcos_installer::genesis::load_genconf(&self.genconf()).unwrap();
        dcos_installer::bundle::genconf(
            &cfg,
            &self.serve(),
            &dcos_installer::bundle::GenconfOptions {
                dcosd: self.dcosd(),
                upgrade_from,
                internal_token: None,
            },
        )
        .unwrap()
    }

    /// Run a script from the serve dir with bash, `--root <root>`, supervise mode.
    pub fn run_script(&self, script: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new("bash");
        cmd.arg(self.serve().join(script))
            .arg("--root")
            .arg(self.root())
            .arg("--supervisor")
            .arg("supervise")
            .args(args)
            .env("TMPDIR", self.path());
        cmd.output().unwrap()
    }

    pub fn install(&self, args: &[&str]) -> Output {
        self.run_script("dcos_install.sh", args)
    }

    /// Every path under the root, sorted (to check "node left as it was").
    pub fn root_listing(&self) -> Vec<String> {
        let mut v = Vec::new();
        walk(&self.root(), &self.root(), &mut v);
        v.sort();
        v
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        // Stop any supervisor a test left running.
        let _ = Command::new("bash")
            .arg(self.serve().join("dcos_install.sh"))
            .arg("--root")
            .arg(self.path().join("root"))
            .arg("--supervisor")
            .arg("supervise")
            .arg("--uninstall")
            .output();
    }
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if p.is_dir() && !p.is_symlink() {
                walk(base, &p, out);
            }
        }
    }
}

pub fn write_exec(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

pub fn text(o: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
