//! The content-addressed bootstrap bundle and the `genconf/serve/` directory.
//!
//! The bundle is a gzipped ustar archive of the install tree. Every header is
//! fixed (mtime 0, uid/gid 0, owner `root`, entries sorted by path) and the
//! gzip header carries no name and mtime 0, so the same config and the same
//! binaries give the same bytes, and the bootstrap id — the sha256 of those
//! bytes — is stable.

use crate::genesis::{GenesisConfig, Store, SuperuserPassword};
use crate::node_config::{
    AgentSettings, InstallRole, NodeConfig, StoreConfig, Superuser, NODE_CONFIG_FORMAT,
};
use crate::script::{self, ScriptParams};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The installer version written into `etc/dcos-version.json`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Errors building a bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file could not be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A path does not fit a ustar header.
    #[error("path too long for the bundle archive: {0}")]
    PathTooLong(String),
    /// Password hashing failed.
    #[error(transparent)]
    Password(#[from] crate::password::PasswordError),
    /// A serve dir file is missing or wrong.
    #[error("{0}")]
    Invalid(String),
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BundleError {
    let path = path.display().to_string();
    move |source| BundleError::Io { what, path, source }
}

/// sha256 of bytes as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// One file of the install tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeFile {
    /// Path relative to the install dir, `/`-separated, e.g. `bin/dcosd`.
    pub path: String,
    /// Unix mode (0o755 or 0o644).
    pub mode: u32,
    /// Content.
    pub data: Vec<u8>,
}

fn octal(field: &mut [u8], value: u64) {
    // width-1 octal digits, NUL terminated.
    let w = field.len() - 1;
    let s = format!("{:0w$o}", value);
    let b = s.as_bytes();
    let start = b.len().saturating_sub(w);
    field[..w].copy_from_slice(&b[start..]);
    field[w] = 0;
}

fn ustar_header(path: &str, mode: u32, size: u64, typeflag: u8) -> Result<[u8; 512], BundleError> {
    let mut h = [0u8; 512];
    let name = path.as_bytes();
    if name.len() > 100 {
        return Err(BundleError::PathTooLong(path.to_string()));
    }
    h[..name.len()].copy_from_slice(name);
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], 0);
    h[148..156].fill(b' ');
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    Ok(h)
}

/// A deterministic uncompressed ustar archive of `files` (directories added, all sorted).
pub fn tar_bytes(files: &[TreeFile]) -> Result<Vec<u8>, BundleError> {
    let mut dirs = std::collections::BTreeSet::new();
    for f in files {
        let mut p = f.path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            dirs.insert(format!("{parent}/"));
            p = parent;
        }
    }
    enum E<'a> {
        Dir(&'a str),
        File(&'a TreeFile),
    }
    let mut entries: Vec<(String, E)> = dirs.iter().map(|d| (d.clone(), E::Dir(d))).collect();
    for f in files {
        entries.push((f.path.clone(), E::File(f)));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    for (_, e) in entries {
        match e {
            E::Dir(d) => out.extend_from_slice(&ustar_header(d, 0o755, 0, b'5')?),
            E::File(f) => {
                out.extend_from_slice(&ustar_header(&f.path, f.mode, f.data.len() as u64, b'0')?);
                out.extend_from_slice(&f.data);
                let pad = (512 - f.data.len() % 512) % 512;
                out.extend(std::iter::repeat_n(0u8, pad));
            }
        }
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    Ok(out)
}

/// gzip with a fixed header (no name, mtime 0, OS 255) at a fixed level.
pub fn gzip_bytes(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(
            Vec::with_capacity(data.len() / 2),
            flate2::Compression::new(1),
        );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// Inputs of `genconf`.
#[derive(Debug, Clone)]
pub struct GenconfOptions {
    /// The `dcosd` binary to ship.
    pub dcosd: PathBuf,
    /// Also write an upgrade script for nodes installed from this bootstrap id.
    pub upgrade_from: Option<String>,
    /// The cluster's internal credential, written into every node config (auth on). The
    /// `genconf` command keeps it in `genconf/state/internal-token`, so re-running genconf
    /// gives the same bundle.
    pub internal_token: Option<String>,
}

/// What `genconf` produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenconfOutput {
    /// The bootstrap id (sha256 of the bundle tarball).
    pub bootstrap_id: String,
    /// sha256 of the resolved config.
    pub config_id: String,
    /// The serve directory.
    pub serve_dir: PathBuf,
    /// Every file written under serve_dir (relative path, sha256).
    pub files: Vec<(String, String)>,
    /// Path (relative to serve_dir) of the node upgrade script, with `upgrade_from`.
    pub upgrade_script: Option<String>,
}

/// Canonical JSON of the resolved config (secrets already hashed); its sha256 is the config id.
pub fn resolved_config_json(
    cfg: &GenesisConfig,
    superuser: &Option<Superuser>,
) -> serde_json::Value {
    serde_json::json!({
        "bootstrap_url": cfg.bootstrap_url,
        "cluster_name": cfg.cluster_name,
        "master_list": cfg.master_list.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
        "agent_list": cfg.agent_list.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
        "public_agent_list": cfg.public_agent_list.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
        "resolvers": cfg.resolvers,
        "dns_search": cfg.dns_search,
        "oauth_enabled": cfg.oauth_enabled,
        "superuser": superuser,
        "store": match &cfg.store { Store::Embedded => "embedded".to_string(), Store::Zookeeper(u) => u.clone() },
        "ports": cfg.ports,
        "universe_repositories": cfg.universe_repositories,
        "install_dir": cfg.install_dir,
        "work_dir": cfg.work_dir,
        "min_free_disk_mb": cfg.min_free_disk_mb,
        "ip_detect_sha256": sha256_hex(cfg.ip_detect.as_bytes()),
    })
}

fn cluster_id(cfg: &GenesisConfig) -> String {
    let mut d = Sha256::new();
    d.update(b"dcos-rs cluster id\0");
    d.update(cfg.cluster_name.as_bytes());
    for m in &cfg.master_list {
        d.update([0]);
        d.update(m.to_string().as_bytes());
    }
    let h = hex::encode(&d.finalize()[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The [`NodeConfig`] template for `role` (`ip` is `null`; the install script fills it).
pub fn node_config(
    cfg: &GenesisConfig,
    superuser: &Option<Superuser>,
    config_id: &str,
    role: InstallRole,
    internal_token: Option<&str>,
) -> NodeConfig {
    let ips = |l: &[std::net::Ipv4Addr]| l.iter().map(|i| i.to_string()).collect::<Vec<_>>();
    NodeConfig {
        format: NODE_CONFIG_FORMAT,
        cluster_name: cfg.cluster_name.clone(),
        cluster_id: cluster_id(cfg),
        config_id: config_id.to_string(),
        role,
        dcosd_roles: role.dcosd_roles().iter().map(|s| s.to_string()).collect(),
        ip: None,
        ip_detect: format!("{}/bin/detect_ip", cfg.install_dir),
        masters: ips(&cfg.master_list),
        agents: ips(&cfg.agent_list),
        public_agents: ips(&cfg.public_agent_list),
        ports: cfg.ports.clone(),
        store: match &cfg.store {
            Store::Embedded => StoreConfig::Embedded {
                path: format!("{}/store", cfg.work_dir),
            },
            Store::Zookeeper(url) => StoreConfig::Zookeeper { url: url.clone() },
        },
        oauth_enabled: cfg.oauth_enabled,
        superuser: superuser.clone(),
        universe_repositories: cfg.universe_repositories.clone(),
        resolvers: cfg.resolvers.clone(),
        dns_search: cfg.dns_search.clone(),
        install_dir: cfg.install_dir.clone(),
        work_dir: cfg.work_dir.clone(),
        bootstrap_url: cfg.bootstrap_url.clone(),
        agent: match role {
            InstallRole::Master => None,
            InstallRole::Slave => Some(AgentSettings {
                resource_role: "*".into(),
                attributes: BTreeMap::new(),
            }),
            InstallRole::SlavePublic => Some(AgentSettings {
                resource_role: "slave_public".into(),
                attributes: [("public_ip".to_string(), "true".to_string())].into(),
            }),
        },
        internal_token: internal_token.map(str::to_string),
    }
}

/// The systemd unit name for an install role.
pub fn unit_name(role: InstallRole) -> &'static str {
    match role {
        InstallRole::Master => "dcos-rs-master.service",
        InstallRole::Slave => "dcos-rs-agent.service",
        InstallRole::SlavePublic => "dcos-rs-agent-public.service",
    }
}

/// The systemd unit for `role` with the install tree at `install_dir`.
pub fn systemd_unit(role: InstallRole, install_dir: &str, work_dir: &str) -> String {
    let roles = role.dcosd_roles().join(",");
    // Agents: stop only dcosd itself, so tasks it launched survive a restart
    // or an upgrade and are recovered from checkpoints.
    let kill_mode = match role {
        InstallRole::Master => "control-group",
        _ => "process",
    };
    format!(
        "[Unit]\n\
         Description=dcos-rs {role} node (dcosd --roles {roles})\n\
         Documentation=https://github.com/dcos/dcos\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         Environment=DCOS_RS_INSTALL_ROLE={role}\n\
         ExecStart={install_dir}/bin/dcosd --roles {roles} --config {install_dir}/etc/node.json\n\
         WorkingDirectory={work_dir}\n\
         Restart=always\n\
         RestartSec=2\n\
         KillMode={kill_mode}\n\
         TimeoutStopSec=30\n\
         LimitNOFILE=1048576\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

/// The supervisor used where systemd does not run (containers).
pub const SUPERVISE_SH: &str = include_str!("dcos-rs-supervise.sh");

/// The install tree for a config and a dcosd binary.
pub fn install_tree(
    cfg: &GenesisConfig,
    dcosd: Vec<u8>,
    internal_token: Option<&str>,
) -> Result<(Vec<TreeFile>, String), BundleError> {
    let superuser = match &cfg.superuser {
        None => None,
        Some((uid, SuperuserPassword::Hash(h))) => Some(Superuser {
            uid: uid.clone(),
            password_hash: h.clone(),
        }),
        Some((uid, SuperuserPassword::Plain(p))) => Some(Superuser {
            uid: uid.clone(),
            password_hash: crate::password::hash_password_deterministic(p, &cfg.cluster_name, uid)?,
        }),
    };
    let resolved = resolved_config_json(cfg, &superuser);
    let config_id = sha256_hex(resolved.to_string().as_bytes());
    let mut files = vec![
        TreeFile {
            path: "bin/dcosd".into(),
            mode: 0o755,
            data: dcosd,
        },
        TreeFile {
            path: "bin/detect_ip".into(),
            mode: 0o755,
            data: cfg.ip_detect.as_bytes().to_vec(),
        },
        TreeFile {
            path: "bin/dcos-rs-supervise".into(),
            mode: 0o755,
            data: SUPERVISE_SH.as_bytes().to_vec(),
        },
        TreeFile {
            path: "etc/dcos-version.json".into(),
            mode: 0o644,
            data: format!(
                "{}\n",
                serde_json::json!({"version": VERSION, "dcos-variant": "open", "config-id": config_id})
            )
            .into_bytes(),
        },
    ];
    for role in InstallRole::ALL {
        files.push(TreeFile {
            path: format!("etc/roles/{role}.json"),
            // It holds the internal credential when auth is on.
            mode: 0o600,
            data: node_config(cfg, &superuser, &config_id, role, internal_token)
                .to_json()
                .into_bytes(),
        });
        files.push(TreeFile {
            path: format!("lib/systemd/{}", unit_name(role)),
            mode: 0o644,
            data: systemd_unit(role, &cfg.install_dir, &cfg.work_dir).into_bytes(),
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((files, config_id))
}

/// `sha256sum`-format manifest: the tarball (`bootstrap/<id>.bootstrap.tar.gz`) then
/// every tree file as `tree/<path>`, sorted.
pub fn sha256sums(bootstrap_id: &str, files: &[TreeFile]) -> String {
    let mut s = format!("{bootstrap_id}  bootstrap/{bootstrap_id}.bootstrap.tar.gz\n");
    for f in files {
        s.push_str(&format!("{}  tree/{}\n", sha256_hex(&f.data), f.path));
    }
    s
}

fn write(path: &Path, data: &[u8], mode: u32) -> Result<(), BundleError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(io_err("cannot create directory", p))?;
    }
    let tmp = path.with_extension("tmp-genconf");
    std::fs::write(&tmp, data).map_err(io_err("cannot write", &tmp))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .map_err(io_err("cannot chmod", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err("cannot rename into", path))?;
    Ok(())
}

/// Run genconf: build the bundle for `cfg` and write `serve_dir`.
pub fn genconf(
    cfg: &GenesisConfig,
    serve_dir: &Path,
    opts: &GenconfOptions,
) -> Result<GenconfOutput, BundleError> {
    let dcosd =
        std::fs::read(&opts.dcosd).map_err(io_err("cannot read dcosd binary", &opts.dcosd))?;
    let (files, config_id) = install_tree(cfg, dcosd, opts.internal_token.as_deref())?;
    let tgz = gzip_bytes(&tar_bytes(&files)?);
    let bootstrap_id = sha256_hex(&tgz);
    let sums = sha256sums(&bootstrap_id, &files);
    let sums_sha = sha256_hex(sums.as_bytes());

    let mut written: Vec<(String, Vec<u8>, u32)> = Vec::new();
    written.push((
        format!("bootstrap/{bootstrap_id}.bootstrap.tar.gz"),
        tgz.clone(),
        0o644,
    ));
    written.push((
        format!("bootstrap/{bootstrap_id}.sha256sums"),
        sums.clone().into_bytes(),
        0o644,
    ));
    for f in &files {
        if let Some(role) = f.path.strip_prefix("etc/roles/") {
            written.push((format!("config/{role}"), f.data.clone(), 0o644));
        }
    }
    written.push((
        "bootstrap.latest".into(),
        format!("{bootstrap_id}\n").into_bytes(),
        0o644,
    ));

    let params = ScriptParams {
        bootstrap_url: cfg.bootstrap_url.clone(),
        bootstrap_id: bootstrap_id.clone(),
        sha256sums_sha256: sums_sha.clone(),
        config_id: config_id.clone(),
        cluster_name: cfg.cluster_name.clone(),
        install_dir: cfg.install_dir.clone(),
        work_dir: cfg.work_dir.clone(),
        master_ports: cfg.ports.required_free(InstallRole::Master),
        agent_ports: cfg.ports.required_free(InstallRole::Slave),
        masters: cfg.master_list.iter().map(|i| i.to_string()).collect(),
        agents: cfg.agent_list.iter().map(|i| i.to_string()).collect(),
        public_agents: cfg
            .public_agent_list
            .iter()
            .map(|i| i.to_string())
            .collect(),
        min_free_disk_mb: cfg.min_free_disk_mb,
        upgrade_from: None,
    };
    written.push((
        "dcos_install.sh".into(),
        script::render(&params).into_bytes(),
        0o755,
    ));
    let mut upgrade_script = None;
    if let Some(from) = &opts.upgrade_from {
        let rel = format!("upgrade/{from}/dcos_node_upgrade.sh");
        let p = ScriptParams {
            upgrade_from: Some(from.clone()),
            ..params.clone()
        };
        written.push((rel.clone(), script::render(&p).into_bytes(), 0o755));
        upgrade_script = Some(rel);
    }

    // The JSON manifest: every served file but itself, plus the tree.
    let manifest = serde_json::json!({
        "format": 1,
        "bootstrap_id": bootstrap_id,
        "config_id": config_id,
        "cluster_name": cfg.cluster_name,
        "bundle": {
            "path": format!("bootstrap/{bootstrap_id}.bootstrap.tar.gz"),
            "sha256": bootstrap_id,
            "size": tgz.len(),
        },
        "tree": files.iter().map(|f| serde_json::json!({
            "path": f.path, "sha256": sha256_hex(&f.data), "size": f.data.len(), "mode": format!("{:04o}", f.mode),
        })).collect::<Vec<_>>(),
        "served": written.iter().map(|(p, d, _)| serde_json::json!({
            "path": p, "sha256": sha256_hex(d), "size": d.len(),
        })).collect::<Vec<_>>(),
    });
    let mut mtext = serde_json::to_string_pretty(&manifest).unwrap_or_default();
    mtext.push('\n');
    written.push((
        format!("bootstrap/{bootstrap_id}.manifest.json"),
        mtext.into_bytes(),
        0o644,
    ));

    let mut out_files = Vec::new();
    for (rel, data, mode) in &written {
        write(&serve_dir.join(rel), data, *mode)?;
        out_files.push((rel.clone(), sha256_hex(data)));
    }
    out_files.sort();
    Ok(GenconfOutput {
        bootstrap_id,
        config_id,
        serve_dir: serve_dir.to_path_buf(),
        files: out_files,
        upgrade_script,
    })
}

/// Verify a serve directory: the latest bundle's tarball and every entry of its
/// JSON manifest against their sha256. Returns the bootstrap id.
pub fn verify_serve_dir(serve_dir: &Path) -> Result<String, BundleError> {
    let latest = serve_dir.join("bootstrap.latest");
    let id = std::fs::read_to_string(&latest).map_err(io_err("cannot read", &latest))?;
    let id = id.trim().to_string();
    let mpath = serve_dir.join(format!("bootstrap/{id}.manifest.json"));
    let text = std::fs::read_to_string(&mpath).map_err(io_err("cannot read", &mpath))?;
    let m: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| BundleError::Invalid(format!("{}: invalid JSON: {e}", mpath.display())))?;
    let served = m
        .get("served")
        .and_then(|s| s.as_array())
        .ok_or_else(|| BundleError::Invalid(format!("{}: no `served` list", mpath.display())))?;
    let mut problems = Vec::new();
    for e in served {
        let (Some(p), Some(want)) = (
            e.get("path").and_then(|v| v.as_str()),
            e.get("sha256").and_then(|v| v.as_str()),
        ) else {
            problems.push("manifest entry without path/sha256".to_string());
            continue;
        };
        if p.contains("..") || p.starts_with('/') {
            problems.push(format!("{p}: unsafe path in manifest"));
            continue;
        }
        match std::fs::read(serve_dir.join(p)) {
            Ok(d) if sha256_hex(&d) == want => {}
            Ok(d) => problems.push(format!("{p}: sha256 {} != manifest {want}", sha256_hex(&d))),
            Err(e) => problems.push(format!("{p}: {e}")),
        }
    }
    let tgz = serve_dir.join(format!("bootstrap/{id}.bootstrap.tar.gz"));
    match std::fs::read(&tgz) {
        Ok(d) if sha256_hex(&d) == id => {}
        Ok(_) => problems.push(format!(
            "{}: content does not match bootstrap id {id}",
            tgz.display()
        )),
        Err(e) => problems.push(format!("{}: {e}", tgz.display())),
    }
    if problems.is_empty() {
        Ok(id)
    } else {
        Err(BundleError::Invalid(format!(
            "serve dir {} failed verification:\n  - {}",
            serve_dir.display(),
            problems.join("\n  - ")
        )))
    }
}

/// The cluster's internal credential, kept in `<genconf>/state/internal-token` (see
/// [`crate::secret`]). Re-running genconf reuses it, so the bundle stays the same for the
/// same inputs.
pub fn internal_token(genconf_dir: &Path) -> Result<String, BundleError> {
    let path = genconf_dir.join("state").join("internal-token");
    crate::secret::read_or_create_token(&path).map_err(io_err("cannot read or create", &path))
}
