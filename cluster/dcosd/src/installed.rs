//! An installed node: `dcosd --roles R --config /opt/dcos-rs/etc/node.json`, the node config
//! written by `dcos-installer genconf` and completed by `dcos_install.sh` (see
//! docs/installer.md).
//!
//! Listening: the master API listens on all interfaces (agents on other hosts register with
//! it); Marathon and Cosmos listen on loopback only, so the Admin Router (with auth) is the
//! one way in — unlike DC/OS, whose Marathon port was open to the whole network.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use anyhow::{bail, Context};
use dcos_installer::{InstallRole, NodeConfig as Installed, StoreConfig};
use dcos_types::AttributeValue;

use crate::config::{Cli, NodeConfig, Role};
use crate::node::Extras;
use crate::services::{AdminRouterSettings, SuperuserSecret};

/// What an installed node runs.
pub struct InstalledNode {
    pub config: NodeConfig,
    pub extras: Extras,
    /// Where an agent node serves `/system/health/v1` (the agent Admin Router port).
    pub agent_health: Option<SocketAddr>,
    pub cluster_id: String,
}

/// Reads `path` and resolves it against the command line (`--roles` must agree).
pub fn load(path: &Path, cli: &Cli) -> anyhow::Result<InstalledNode> {
    let inst = Installed::load(path).map_err(anyhow::Error::msg)?;
    resolve(&inst, cli)
}

pub fn resolve(inst: &Installed, cli: &Cli) -> anyhow::Result<InstalledNode> {
    let origin = "node config";
    let expected: Vec<Role> = match inst.role {
        InstallRole::Master => vec![Role::Master, Role::AdminRouter],
        InstallRole::Slave => vec![Role::Agent],
        InstallRole::SlavePublic => vec![Role::AgentPublic],
    };
    let mut given = cli.roles.clone();
    given.sort();
    given.dedup();
    // `--roles` defaults to master,agent; only an explicit disagreement is an error.
    let default_roles = given == vec![Role::Master, Role::Agent];
    if !default_roles && given != expected {
        bail!(
            "--roles {:?} does not match the node config, which installs this node as {} \
             (roles {:?}); re-run dcos_install.sh with the right role",
            given,
            inst.role,
            expected
        );
    }
    let Some(ip) = inst.ip.clone() else {
        bail!("{origin}: `ip` is not set (dcos_install.sh fills it in from ip-detect)");
    };
    ip.parse::<IpAddr>()
        .with_context(|| format!("{origin}: `ip` {ip:?} is not an IP address"))?;
    if let StoreConfig::Zookeeper { url } = &inst.store {
        bail!(
            "{origin}: the ZooKeeper store ({url}) is not supported by this build yet; \
             use the embedded store with one master"
        );
    }
    let Some(first_master) = inst.masters.first() else {
        bail!("{origin}: `masters` is empty");
    };
    let any = |port: u16| SocketAddr::new(IpAddr::from([0, 0, 0, 0]), port);
    let local = |port: u16| SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port);
    let mut config = NodeConfig::from_cli(cli)?;
    config.roles = expected.clone();
    config.work_dir = inst.work_dir.clone().into();
    config.cluster_name = inst.cluster_name.clone();
    // Marathon and Cosmos listen on loopback (below) and are reached there (see
    // `services::Server`); everything else advertises the node's IP.
    config.hostname = Some(ip.clone());
    config.listen_master = any(inst.ports.master);
    config.listen_agent = any(inst.ports.agent);
    config.master_url = Some(format!("http://{first_master}:{}", inst.ports.master));
    config.internal_token = match (&inst.internal_token, inst.oauth_enabled) {
        (Some(t), true) => Some(t.clone()),
        (None, true) => {
            tracing::warn!(
                "{origin}: auth is on but the node config has no internal_token (a bundle from an \
                 earlier genconf): internal ports accept calls without a credential; re-run \
                 genconf and upgrade the nodes"
            );
            None
        }
        _ => None,
    };
    if let Some(agent) = &inst.agent {
        for (k, v) in &agent.attributes {
            config
                .attributes
                .insert(k.clone(), AttributeValue::Text(v.clone()));
        }
    }
    let adminrouter = if inst.role == InstallRole::Master {
        let superuser = inst.superuser.as_ref().map(|s| {
            (
                s.uid.clone(),
                SuperuserSecret::Hash(s.password_hash.clone()),
            )
        });
        if inst.oauth_enabled && superuser.is_none() {
            bail!("{origin}: oauth_enabled is true but no superuser is configured");
        }
        Some(AdminRouterSettings {
            listen: any(inst.ports.adminrouter),
            host: ip.clone(),
            role: "master".into(),
            cluster_name: inst.cluster_name.clone(),
            auth: inst.oauth_enabled,
            superuser,
            fast_password_hash: false,
            bootstrap_id: inst.config_id.clone(),
            internal_token: None,
        })
    } else {
        None
    };
    let extras = Extras {
        listen_marathon: local(inst.ports.marathon),
        listen_metronome: local(inst.ports.metronome),
        listen_cosmos: local(inst.ports.cosmos),
        repositories: inst
            .universe_repositories
            .iter()
            .map(|r| (r.name.clone(), r.uri.clone()))
            .collect(),
        builtin_repository: true,
        adminrouter,
    };
    let agent_health = match inst.role {
        InstallRole::Master => None,
        _ => Some(any(inst.ports.agent_adminrouter)),
    };
    Ok(InstalledNode {
        config,
        extras,
        agent_health,
        cluster_id: inst.cluster_id.clone(),
    })
}
