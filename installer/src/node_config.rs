//! The per-node configuration `dcosd --config FILE` reads.
//!
//! `dcos-installer genconf` writes one template per install role
//! (`etc/roles/{master,slave,slave_public}.json` inside the bootstrap bundle,
//! also served as `genconf/serve/config/<role>.json`); `dcos_install.sh` copies
//! the one for the node's role to `<prefix>/etc/node.json` and fills in `ip`
//! from `detect_ip`. The format is JSON; see docs/installer.md.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Version of the [`NodeConfig`] document format.
pub const NODE_CONFIG_FORMAT: u32 = 1;

/// The install role a node was installed with (`dcos_install.sh <role>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum InstallRole {
    /// `master`: runs dcosd roles `master,adminrouter`.
    #[serde(rename = "master")]
    Master,
    /// `slave`: runs dcosd role `agent`.
    #[serde(rename = "slave")]
    Slave,
    /// `slave_public`: runs dcosd role `agent_public`.
    #[serde(rename = "slave_public")]
    SlavePublic,
}

impl InstallRole {
    /// All install roles, in a fixed order.
    pub const ALL: [InstallRole; 3] = [Self::Master, Self::Slave, Self::SlavePublic];

    /// The name used on the command line and in file names (`master`, `slave`, `slave_public`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Master => "master",
            Self::Slave => "slave",
            Self::SlavePublic => "slave_public",
        }
    }

    /// The `dcosd --roles` this install role runs.
    pub fn dcosd_roles(self) -> &'static [&'static str] {
        match self {
            Self::Master => &["master", "adminrouter"],
            Self::Slave => &["agent"],
            Self::SlavePublic => &["agent_public"],
        }
    }

    /// Parse `master`, `slave`/`agent`, `slave_public`/`agent_public`/`public_agent`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "master" => Some(Self::Master),
            "slave" | "agent" => Some(Self::Slave),
            "slave_public" | "agent_public" | "public_agent" => Some(Self::SlavePublic),
            _ => None,
        }
    }
}

impl std::fmt::Display for InstallRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where cluster state lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StoreConfig {
    /// Embedded, fsynced store in the master's work dir (single master only).
    Embedded {
        /// Directory of the store (absolute).
        path: String,
    },
    /// ZooKeeper ensemble, `zk://host:port[,host:port…]/path`.
    Zookeeper {
        /// The `zk://` URL.
        url: String,
    },
}

/// TCP ports (DC/OS defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ports {
    /// Admin Router on masters (80).
    pub adminrouter: u16,
    /// Admin Router TLS on masters (443). Reserved.
    pub adminrouter_tls: u16,
    /// Mesos-style master API (5050).
    pub master: u16,
    /// Marathon API (8080).
    pub marathon: u16,
    /// Metronome API (9000).
    pub metronome: u16,
    /// Cosmos (7070).
    pub cosmos: u16,
    /// Mesos-DNS style HTTP API (8123).
    pub mesos_dns: u16,
    /// Agent API (5051).
    pub agent: u16,
    /// Agent Admin Router: serves `/system/health/v1` on agents (61001).
    pub agent_adminrouter: u16,
    /// Node health API on masters behind Admin Router (1050).
    pub diagnostics: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports {
            adminrouter: 80,
            adminrouter_tls: 443,
            master: 5050,
            marathon: 8080,
            metronome: 9000,
            cosmos: 7070,
            mesos_dns: 8123,
            agent: 5051,
            agent_adminrouter: 61001,
            diagnostics: 1050,
        }
    }
}

impl Ports {
    /// Port names accepted under `ports:` in config.yaml.
    pub const NAMES: [&'static str; 10] = [
        "adminrouter",
        "adminrouter_tls",
        "master",
        "marathon",
        "metronome",
        "cosmos",
        "mesos_dns",
        "agent",
        "agent_adminrouter",
        "diagnostics",
    ];

    /// Set a port by its config name; `false` if the name is unknown.
    pub fn set(&mut self, name: &str, port: u16) -> bool {
        let slot = match name {
            "adminrouter" => &mut self.adminrouter,
            "adminrouter_tls" => &mut self.adminrouter_tls,
            "master" => &mut self.master,
            "marathon" => &mut self.marathon,
            "metronome" => &mut self.metronome,
            "cosmos" => &mut self.cosmos,
            "mesos_dns" => &mut self.mesos_dns,
            "agent" => &mut self.agent,
            "agent_adminrouter" => &mut self.agent_adminrouter,
            "diagnostics" => &mut self.diagnostics,
            _ => return false,
        };
        *slot = port;
        true
    }

    /// TCP ports that must be free before installing `role` (checked by preflight).
    pub fn required_free(&self, role: InstallRole) -> Vec<u16> {
        let mut v = match role {
            InstallRole::Master => vec![
                self.adminrouter,
                self.master,
                self.marathon,
                self.metronome,
                self.cosmos,
                self.mesos_dns,
                self.diagnostics,
            ],
            InstallRole::Slave | InstallRole::SlavePublic => {
                vec![self.agent, self.agent_adminrouter]
            }
        };
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// The super user created on first start of the masters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Superuser {
    /// Login name (`uid` in `POST /acs/api/v1/auth/login`).
    pub uid: String,
    /// PHC string, argon2id: `$argon2id$v=19$m=19456,t=2,p=1$<salt b64>$<hash b64>`.
    pub password_hash: String,
}

/// A Universe repository Cosmos starts with (order = priority).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repository {
    /// Repository name, e.g. `Universe`.
    pub name: String,
    /// Repository URL (http, https or file).
    pub uri: String,
}

/// Agent-only settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    /// The role whose resources this agent offers: `*` (private) or `slave_public`.
    pub resource_role: String,
    /// Attributes the agent advertises (`public_ip: "true"` on public agents).
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// Configuration of one node, read by `dcosd --config FILE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Format version, currently [`NODE_CONFIG_FORMAT`].
    pub format: u32,
    /// `cluster_name` from config.yaml.
    pub cluster_name: String,
    /// Deterministic cluster id (UUID form) derived from the genesis config.
    pub cluster_id: String,
    /// sha256 of the resolved genesis config (changes whenever any value changes).
    pub config_id: String,
    /// The install role of this node.
    pub role: InstallRole,
    /// The `dcosd --roles` to run (e.g. `["master","adminrouter"]`).
    pub dcosd_roles: Vec<String>,
    /// This node's IPv4 address, from `detect_ip` at install time; `null` in templates.
    pub ip: Option<String>,
    /// Absolute path of the ip-detect script on the node.
    pub ip_detect: String,
    /// The masters' IPv4 addresses (static discovery).
    pub masters: Vec<String>,
    /// Private agents from config.yaml `agent_list` (may be empty: informational).
    pub agents: Vec<String>,
    /// Public agents from config.yaml `public_agent_list` (may be empty: informational).
    pub public_agents: Vec<String>,
    /// Listening ports.
    pub ports: Ports,
    /// Where cluster state lives.
    pub store: StoreConfig,
    /// Whether Admin Router requires authentication.
    pub oauth_enabled: bool,
    /// The super user (present when oauth is enabled).
    pub superuser: Option<Superuser>,
    /// Default Universe repositories, in priority order.
    pub universe_repositories: Vec<Repository>,
    /// Upstream DNS resolvers (`ip` or `ip:port`).
    pub resolvers: Vec<String>,
    /// DNS search domains.
    pub dns_search: Vec<String>,
    /// Install tree (read-only at run time), e.g. `/opt/dcos-rs`.
    pub install_dir: String,
    /// State directory (store, sandboxes, checkpoints), e.g. `/var/lib/dcos-rs`.
    pub work_dir: String,
    /// Base URL of the bootstrap serve directory.
    pub bootstrap_url: String,
    /// Agent settings (`None` on masters).
    pub agent: Option<AgentSettings>,
    /// The cluster's internal credential (auth on): every internal port requires it and every
    /// component sends it (docs/security.md). Installed as a 0600 file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_token: Option<String>,
}

/// Errors reading a [`NodeConfig`].
#[derive(Debug, thiserror::Error)]
pub enum NodeConfigError {
    /// The file could not be read.
    #[error("cannot read node config {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The document is not a valid node config.
    #[error("invalid node config {path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// The document has an unsupported `format`.
    #[error("node config {path}: unsupported format {found} (this build reads format {NODE_CONFIG_FORMAT})")]
    Format {
        /// The file.
        path: String,
        /// The format found.
        found: u32,
    },
}

impl NodeConfig {
    /// Parse a node config from JSON text; `origin` names the source in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Self, NodeConfigError> {
        let cfg: NodeConfig =
            serde_json::from_str(text).map_err(|source| NodeConfigError::Parse {
                path: origin.to_string(),
                source,
            })?;
        if cfg.format != NODE_CONFIG_FORMAT {
            return Err(NodeConfigError::Format {
                path: origin.to_string(),
                found: cfg.format,
            });
        }
        Ok(cfg)
    }

    /// Read and parse a node config file.
    pub fn load(path: &Path) -> Result<Self, NodeConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| NodeConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// Pretty JSON with a trailing newline (the exact bytes genconf writes).
    pub fn to_json(&self) -> String {
        // Serializing plain structs of strings/numbers cannot fail.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Whether this node is a master.
    pub fn is_master(&self) -> bool {
        self.role == InstallRole::Master
    }
}
