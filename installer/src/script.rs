//! `dcos_install.sh` and `dcos_node_upgrade.sh`: one bash template, rendered
//! with the values of a genconf run. Every value is shell-quoted.

/// The template (placeholders `@@NAME@@`).
pub const TEMPLATE: &str = include_str!("dcos_install.sh.in");

/// Values baked into the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptParams {
    /// Base URL of the serve dir.
    pub bootstrap_url: String,
    /// Bootstrap id (sha256 of the bundle tarball).
    pub bootstrap_id: String,
    /// sha256 of `bootstrap/<id>.sha256sums`: the root of trust of the download.
    pub sha256sums_sha256: String,
    /// Config id.
    pub config_id: String,
    /// Cluster name (messages only).
    pub cluster_name: String,
    /// Install tree on the node.
    pub install_dir: String,
    /// State dir on the node.
    pub work_dir: String,
    /// TCP ports that must be free on masters.
    pub master_ports: Vec<u16>,
    /// TCP ports that must be free on agents.
    pub agent_ports: Vec<u16>,
    /// Master IPs.
    pub masters: Vec<String>,
    /// Private agent IPs (may be empty).
    pub agents: Vec<String>,
    /// Public agent IPs (may be empty).
    pub public_agents: Vec<String>,
    /// Minimum free disk, MiB.
    pub min_free_disk_mb: u64,
    /// `Some(id)`: render the node upgrade script for nodes at bootstrap `id`.
    pub upgrade_from: Option<String>,
}

/// Quote a string for bash (single quotes; `'` becomes `'\''`).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn words<T: ToString>(v: &[T]) -> String {
    v.iter()
        .map(|x| shell_quote(&x.to_string()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Render the install (or, with `upgrade_from`, the upgrade) script.
pub fn render(p: &ScriptParams) -> String {
    let pairs: [(&str, String); 14] = [
        ("BOOTSTRAP_URL", shell_quote(&p.bootstrap_url)),
        ("BOOTSTRAP_ID", shell_quote(&p.bootstrap_id)),
        ("SHA256SUMS_SHA256", shell_quote(&p.sha256sums_sha256)),
        ("CONFIG_ID", shell_quote(&p.config_id)),
        ("CLUSTER_NAME", shell_quote(&p.cluster_name)),
        ("INSTALL_DIR", shell_quote(&p.install_dir)),
        ("WORK_DIR", shell_quote(&p.work_dir)),
        ("MASTER_PORTS", words(&p.master_ports)),
        ("AGENT_PORTS", words(&p.agent_ports)),
        ("MASTER_LIST", words(&p.masters)),
        ("AGENT_LIST", words(&p.agents)),
        ("PUBLIC_AGENT_LIST", words(&p.public_agents)),
        ("MIN_FREE_DISK_MB", p.min_free_disk_mb.to_string()),
        (
            "UPGRADE_FROM",
            shell_quote(p.upgrade_from.as_deref().unwrap_or("")),
        ),
    ];
    let mut s = TEMPLATE.to_string();
    for (k, v) in pairs {
        s = s.replace(&format!("@@{k}@@"), &v);
    }
    s
}
