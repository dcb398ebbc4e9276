//! A whole node: the resource-manager roles ([`crate::roles`]) plus, on a master, Marathon,
//! Cosmos and the Admin Router ([`crate::services`]).

use std::net::SocketAddr;
use std::sync::Arc;

use dcos_adminrouter::UnitHealth;

use crate::config::{NodeConfig, Role};
use crate::installed::InstalledNode;
use crate::roles::{self, RunningNode};
use crate::services::{
    self, AdminRouterHandle, AdminRouterSettings, MasterServices, ServicesConfig, Upstreams,
};

/// What a node runs beyond the master and agent roles.
#[derive(Clone, Debug)]
pub struct Extras {
    /// Run Marathon and Cosmos next to the master (always, on a master).
    pub listen_marathon: SocketAddr,
    /// Metronome (jobs), also on every master.
    pub listen_metronome: SocketAddr,
    pub listen_cosmos: SocketAddr,
    /// Cosmos's initial repositories, in order (name, uri).
    pub repositories: Vec<(String, String)>,
    /// Prepend the built-in Universe of example packages to `repositories`.
    pub builtin_repository: bool,
    /// Run the Admin Router (on a master).
    pub adminrouter: Option<AdminRouterSettings>,
}

impl Extras {
    /// Extras for a node started from the command line (no installer config): Marathon and
    /// Cosmos where `--listen-marathon`/`--listen-cosmos` say (DC/OS ports on loopback by
    /// default), the built-in Universe, and an Admin Router (`--listen-adminrouter`, auth off)
    /// when `adminrouter` is among the roles.
    pub fn for_cli(cli: &crate::Cli, config: &NodeConfig, adminrouter: bool) -> Extras {
        Extras {
            listen_marathon: cli.listen_marathon,
            listen_metronome: cli.listen_metronome,
            listen_cosmos: cli.listen_cosmos,
            repositories: Vec::new(),
            builtin_repository: true,
            adminrouter: adminrouter.then(|| AdminRouterSettings {
                listen: cli.listen_adminrouter,
                host: config.advertised_host(&config.listen_master),
                role: "master".into(),
                cluster_name: config.cluster_name.clone(),
                auth: false,
                superuser: None,
                fast_password_hash: false,
                bootstrap_id: "none".into(),
                internal_token: None,
            }),
        }
    }
}

pub struct FullNode {
    pub node: RunningNode,
    pub services: Option<MasterServices>,
    pub adminrouter: Option<AdminRouterHandle>,
    /// The agent-side health endpoint of an installed agent node.
    pub agent_health: Option<services::Server>,
    /// Mesos-DNS on a master started with `--listen-dns` (its HTTP API:
    /// `dns.http_router()`).
    pub dns: Option<dcos_dns::DnsService>,
    /// Mesos-DNS's HTTP API on loopback, behind the Admin Router's `/mesos_dns/`.
    pub dns_http: Option<services::Server>,
}

impl FullNode {
    /// The Admin Router's URL, when this node runs one.
    pub fn url(&self) -> Option<String> {
        self.adminrouter.as_ref().map(|a| a.server.url.clone())
    }

    pub async fn stop(self) {
        if let Some(a) = self.adminrouter {
            a.stop().await;
        }
        if let Some(h) = self.agent_health {
            h.stop().await;
        }
        if let Some(h) = self.dns_http {
            h.stop().await;
        }
        if let Some(d) = self.dns {
            d.stop().await;
        }
        if let Some(s) = self.services {
            s.stop().await;
        }
        self.node.stop().await;
    }
}

/// Starts every role of `config` and the services of `extras`.
pub async fn start(config: NodeConfig, extras: Extras) -> anyhow::Result<FullNode> {
    let work_dir = config.work_dir.clone();
    let config_token = config.internal_token.clone();
    let dns_options = config.dns.clone();
    let node = roles::start(config).await?;
    let Some(master) = node.master.as_ref() else {
        return Ok(FullNode {
            node,
            services: None,
            adminrouter: None,
            agent_health: None,
            dns: None,
            dns_http: None,
        });
    };
    let host = master
        .url
        .trim_start_matches("http://")
        .rsplit_once(':')
        .map(|(h, _)| h.to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    let mut repositories = Vec::new();
    if extras.builtin_repository {
        let uri = services::write_builtin_repository(&work_dir.join("universe"))?;
        repositories.push(("Built-in".to_string(), uri));
    }
    repositories.extend(extras.repositories.iter().cloned());
    let svc = services::start_master_services(
        master,
        &ServicesConfig {
            host: host.clone(),
            listen_marathon: extras.listen_marathon,
            listen_metronome: extras.listen_metronome,
            listen_cosmos: extras.listen_cosmos,
            repositories,
            internal_token: config_token.clone(),
        },
    )
    .await?;
    let dns = match dns_options {
        Some(opts) => Some(services::start_dns(master, opts, &host).await?),
        None => None,
    };
    // The Mesos-DNS HTTP API, for the Admin Router's `/mesos_dns/` (loopback, internal port).
    let dns_http = match &dns {
        Some(d) => Some(
            services::Server::start(
                "mesos-dns http",
                std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                &host,
                crate::internal::protect(d.http_router(), config_token.as_deref()),
            )
            .await?,
        ),
        None => None,
    };
    let adminrouter = match &extras.adminrouter {
        Some(settings) => {
            let mut settings = settings.clone();
            settings.internal_token = config_token.clone();
            let settings = &settings;
            let marathon = svc.marathon.clone();
            let metronome = svc.metronome.clone();
            let local_agents: Vec<dcos_agent::Agent> =
                node.agents.iter().map(|a| a.agent.clone()).collect();
            let master_handle = master.master.clone();
            let store = master.store.clone();
            let health = Arc::new(move || {
                // A component whose store refuses writes is unhealthy: it can serve reads but
                // acknowledges no change until the store accepts writes again.
                let store_ok =
                    |r: Result<(), String>| r.map_err(|e| format!("its store refuses writes: {e}"));
                let registered = |fw: bool| {
                    if fw {
                        Ok(())
                    } else {
                        Err("not registered with the master yet".to_string())
                    }
                };
                let checks = [
                    (
                        "dcos-mesos-master.service",
                        "Mesos Master",
                        store_ok(master_handle.store_writable()),
                    ),
                    (
                        "dcos-marathon.service",
                        "Marathon",
                        registered(marathon.framework_id().is_some())
                            .and_then(|_| store_ok(marathon.store_writable())),
                    ),
                    (
                        "dcos-metronome.service",
                        "Jobs Service",
                        registered(metronome.framework_id().is_some())
                            .and_then(|_| store_ok(metronome.store_writable())),
                    ),
                    (
                        "dcos-cosmos.service",
                        "Package Service",
                        store_ok(store.writable().map_err(|e| e.to_string())),
                    ),
                    ("dcos-adminrouter.service", "Admin Router", Ok(())),
                ];
                let mut units: Vec<UnitHealth> = checks
                    .iter()
                    .map(|(id, name, r)| match r {
                        Ok(()) => unit(id, name, true, ""),
                        Err(why) => unit(id, name, false, why),
                    })
                    .collect();
                units.extend(local_agents.iter().map(agent_unit));
                units
            });
            let up = Upstreams {
                mesos: master.url.clone(),
                marathon: svc.marathon_server.url.clone(),
                metronome: svc.metronome_server.url.clone(),
                cosmos: svc.cosmos_server.url.clone(),
                mesos_dns: dns_http.as_ref().map(|h| h.url.clone()),
            };
            Some(
                services::start_adminrouter(
                    settings,
                    master.store.clone(),
                    up,
                    health,
                    Some(svc.marathon.clone()),
                )
                .await?,
            )
        }
        None => None,
    };
    Ok(FullNode {
        node,
        services: Some(svc),
        adminrouter,
        agent_health: None,
        dns,
        dns_http,
    })
}

/// Starts an installed node (`dcosd --config node.json`).
pub async fn start_installed(inst: InstalledNode) -> anyhow::Result<FullNode> {
    if inst.config.roles.contains(&Role::Master) && !inst.cluster_id.is_empty() {
        // The installer derives the cluster id from the genesis config; keep it.
        let dir = inst.config.work_dir.join("master").join("store");
        let store = dcos_store::EmbeddedStore::open(&dir)?;
        use dcos_store::Store as _;
        let _ = store.put(
            "/cluster/id",
            inst.cluster_id.clone().into_bytes(),
            dcos_store::Precondition::Absent,
        );
    }
    let mut node = start(inst.config, inst.extras).await?;
    if let Some(listen) = inst.agent_health {
        node.agent_health = Some(agent_health_server(&node, listen).await?);
    }
    Ok(node)
}

/// `/system/health/v1` of an agent node (DC/OS serves it from the agent's Admin Router).
async fn agent_health_server(
    node: &FullNode,
    listen: SocketAddr,
) -> anyhow::Result<services::Server> {
    let agents: Vec<dcos_agent::Agent> = node.node.agents.iter().map(|a| a.agent.clone()).collect();
    let host = agents
        .first()
        .map(|a| a.info().hostname.clone())
        .unwrap_or_else(|| "127.0.0.1".into());
    let role = if agents.iter().any(|a| a.config().public) {
        "agent_public"
    } else {
        "agent"
    };
    let mut cfg = dcos_adminrouter::AdminRouterConfig::new(
        agents
            .first()
            .map(|a| a.id().to_string())
            .unwrap_or_default(),
    );
    cfg.auth = dcos_adminrouter::auth::AuthConfig::disabled();
    cfg.node = dcos_adminrouter::NodeInfo {
        hostname: host.clone(),
        ip: host.clone(),
        role: role.into(),
        mesos_id: agents
            .first()
            .map(|a| a.id().to_string())
            .unwrap_or_default(),
    };
    cfg.health = Some(Arc::new(move || agents.iter().map(agent_unit).collect()));
    let router = dcos_adminrouter::AdminRouter::new(cfg)?;
    services::Server::start("agent health", listen, &host, router.router()).await
}

/// The health unit of an agent role running in this process.
fn agent_unit(a: &dcos_agent::Agent) -> UnitHealth {
    let ok = a.is_registered();
    let (id, name) = if a.config().public {
        ("dcos-mesos-slave-public.service", "Mesos Agent Public")
    } else {
        ("dcos-mesos-slave.service", "Mesos Agent")
    };
    let why = if ok {
        ""
    } else {
        "not registered with the master"
    };
    unit(id, name, ok, why)
}

fn unit(id: &str, name: &str, healthy: bool, why: &str) -> UnitHealth {
    UnitHealth {
        id: id.into(),
        name: name.into(),
        health: if healthy { 0 } else { 1 },
        output: why.into(),
        description: format!("{name} of this node"),
        help: if healthy {
            String::new()
        } else {
            format!("check the dcosd log for {name}")
        },
    }
}
