//! Node configuration: the command line and the resolved [`NodeConfig`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use dcos_types::{AttributeValue, Resources};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Master,
    Agent,
    AgentPublic,
    /// The Admin Router in front of this master's services (with `master`).
    AdminRouter,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s.trim() {
            "master" => Ok(Role::Master),
            "agent" | "slave" => Ok(Role::Agent),
            "agent_public" | "slave_public" => Ok(Role::AgentPublic),
            "adminrouter" => Ok(Role::AdminRouter),
            other => Err(format!(
                "unknown role {other:?} (master, agent, agent_public, adminrouter)"
            )),
        }
    }
}

/// `dcosd`: the DC/OS-style node daemon.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "dcosd",
    version,
    about = "Runs the master and agent roles of a node"
)]
pub struct Cli {
    /// The node config written by `dcos-installer genconf` (`/opt/dcos-rs/etc/node.json`).
    /// When given, it decides the roles, ports, store, auth and repositories; `--roles` must
    /// agree with it.
    #[arg(long, env = "DCOSD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Roles to run, comma-separated: master, agent, agent_public, adminrouter.
    #[arg(
        long,
        env = "DCOSD_ROLES",
        default_value = "master,agent",
        value_delimiter = ','
    )]
    pub roles: Vec<Role>,
    /// State directory (master store under master/, agent sandboxes under agent/).
    #[arg(long, env = "DCOSD_WORK_DIR", default_value = "/var/lib/dcosd")]
    pub work_dir: PathBuf,
    /// The master agents register with (default: this node's master when it runs one).
    #[arg(long, env = "DCOSD_MASTER")]
    pub master: Option<String>,
    #[arg(long, env = "DCOSD_LISTEN_MASTER", default_value = "0.0.0.0:5050")]
    pub listen_master: SocketAddr,
    #[arg(long, env = "DCOSD_LISTEN_AGENT", default_value = "0.0.0.0:5051")]
    pub listen_agent: SocketAddr,
    /// Port of the public agent when a node runs both agent and agent_public.
    #[arg(
        long,
        env = "DCOSD_LISTEN_AGENT_PUBLIC",
        default_value = "0.0.0.0:5052"
    )]
    pub listen_agent_public: SocketAddr,
    /// Marathon's API on a master (loopback: the Admin Router is the way in).
    #[arg(long, env = "DCOSD_LISTEN_MARATHON", default_value = "127.0.0.1:8080")]
    pub listen_marathon: SocketAddr,
    /// Metronome (jobs) on a master (loopback: the Admin Router is the way in).
    #[arg(long, env = "DCOSD_LISTEN_METRONOME", default_value = "127.0.0.1:9000")]
    pub listen_metronome: SocketAddr,
    /// Cosmos on a master (loopback: the Admin Router is the way in).
    #[arg(long, env = "DCOSD_LISTEN_COSMOS", default_value = "127.0.0.1:7070")]
    pub listen_cosmos: SocketAddr,
    /// The Admin Router, with the `adminrouter` role.
    #[arg(long, env = "DCOSD_LISTEN_ADMINROUTER", default_value = "0.0.0.0:80")]
    pub listen_adminrouter: SocketAddr,
    /// The address other nodes and clients reach this node at (default: the listen IP, or
    /// 127.0.0.1 when listening on all interfaces).
    #[arg(long, env = "DCOSD_HOSTNAME")]
    pub hostname: Option<String>,
    #[arg(long, env = "DCOSD_CLUSTER_NAME", default_value = "dcos")]
    pub cluster_name: String,
    /// Agent resources, Mesos style: `cpus:4;mem:8192;disk:10000;ports:[31000-32000]`
    /// (default: detected, with the DC/OS port ranges).
    #[arg(long, env = "DCOSD_RESOURCES")]
    pub resources: Option<String>,
    /// Agent attributes: `rack:r1;zone:a`.
    #[arg(long, env = "DCOSD_ATTRIBUTES")]
    pub attributes: Option<String>,
    /// cgroups isolation: auto (when the host allows) or none.
    #[arg(long, default_value = "auto")]
    pub isolation: String,
    /// Do not fsync the master store (simulations only).
    #[arg(long)]
    pub no_fsync: bool,
    #[arg(long, default_value_t = 1000)]
    pub allocation_interval_ms: u64,
    #[arg(long, default_value_t = 2.0)]
    pub heartbeat_interval_secs: f64,
    #[arg(long, default_value_t = 30.0)]
    pub agent_unreachable_timeout_secs: f64,
    #[arg(long, default_value_t = 600.0)]
    pub agent_removal_timeout_secs: f64,
    /// Log filter when RUST_LOG is unset.
    #[arg(long, default_value = "info")]
    pub log: String,
    /// Serve Mesos-DNS (the `.mesos` zone, UDP and TCP) on this address on a master
    /// (installed masters: port 53). Off unless given. See docs/dns.md.
    #[arg(long, env = "DCOSD_LISTEN_DNS")]
    pub listen_dns: Option<SocketAddr>,
    /// Upstream resolvers (`IP` or `IP:PORT`, comma-separated) for names outside `.mesos`;
    /// none: such queries are REFUSED.
    #[arg(long, env = "DCOSD_DNS_RESOLVERS", value_delimiter = ',')]
    pub dns_resolvers: Vec<String>,
}

/// The Mesos-DNS options for `--listen-dns` / `--dns-resolvers` (None without `--listen-dns`).
pub fn dns_options(
    listen: Option<SocketAddr>,
    resolvers: &[String],
) -> anyhow::Result<Option<dcos_dns::DnsOptions>> {
    let Some(listen) = listen else {
        if !resolvers.is_empty() {
            bail!("--dns-resolvers needs --listen-dns");
        }
        return Ok(None);
    };
    let mut opts = dcos_dns::DnsOptions::new(listen);
    for r in resolvers.iter().filter(|r| !r.trim().is_empty()) {
        opts.resolvers.push(
            dcos_dns::parse_resolver(r)
                .map_err(anyhow::Error::msg)
                .context("--dns-resolvers")?,
        );
    }
    Ok(Some(opts))
}

/// Everything a node needs to start its roles.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub roles: Vec<Role>,
    pub work_dir: PathBuf,
    pub master_url: Option<String>,
    pub listen_master: SocketAddr,
    pub listen_agent: SocketAddr,
    pub listen_agent_public: SocketAddr,
    pub hostname: Option<String>,
    pub cluster_name: String,
    pub resources: Option<Resources>,
    pub attributes: BTreeMap<String, AttributeValue>,
    pub isolation: dcos_agent::Isolation,
    pub fsync: bool,
    pub allocation_interval: Duration,
    pub heartbeat_interval: Duration,
    pub agent_unreachable_timeout: Duration,
    pub agent_removal_timeout: Duration,
    /// The cluster's internal credential: required on every internal port and sent on every
    /// call between components when set (auth on). See `crate::internal`.
    pub internal_token: Option<String>,
    /// Mesos-DNS on a master (`--listen-dns`); None: off.
    pub dns: Option<dcos_dns::DnsOptions>,
}

fn secs(name: &str, v: f64) -> anyhow::Result<Duration> {
    if !v.is_finite() || v <= 0.0 || v > 1e7 {
        bail!("--{name} must be a positive number of seconds, not {v}");
    }
    Ok(Duration::from_secs_f64(v))
}

/// Parses `k:v;k2:v2`; numbers become scalars.
pub fn parse_attributes(text: &str) -> anyhow::Result<BTreeMap<String, AttributeValue>> {
    let mut out = BTreeMap::new();
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once(':') else {
            bail!("attribute {part:?} is not NAME:VALUE");
        };
        let v = v.trim();
        let value = match v.parse::<f64>() {
            Ok(f) if f.is_finite() => AttributeValue::Scalar(f),
            _ => AttributeValue::Text(v.to_string()),
        };
        out.insert(k.trim().to_string(), value);
    }
    Ok(out)
}

impl NodeConfig {
    pub fn from_cli(cli: &Cli) -> anyhow::Result<NodeConfig> {
        if cli.roles.is_empty() {
            bail!("--roles is empty");
        }
        let resources = match &cli.resources {
            Some(r) => Some(
                Resources::parse(r)
                    .map_err(anyhow::Error::msg)
                    .context("--resources")?,
            ),
            None => None,
        };
        let attributes = match &cli.attributes {
            Some(a) => parse_attributes(a).context("--attributes")?,
            None => BTreeMap::new(),
        };
        let isolation = match cli.isolation.as_str() {
            "auto" | "cgroups" => dcos_agent::Isolation::Auto,
            "none" => dcos_agent::Isolation::None,
            other => bail!("--isolation must be auto or none, not {other:?}"),
        };
        let mut roles = cli.roles.clone();
        roles.sort();
        roles.dedup();
        Ok(NodeConfig {
            roles,
            work_dir: cli.work_dir.clone(),
            master_url: cli.master.clone(),
            listen_master: cli.listen_master,
            listen_agent: cli.listen_agent,
            listen_agent_public: cli.listen_agent_public,
            hostname: cli.hostname.clone(),
            cluster_name: cli.cluster_name.clone(),
            resources,
            attributes,
            isolation,
            fsync: !cli.no_fsync,
            allocation_interval: Duration::from_millis(cli.allocation_interval_ms.clamp(1, 60_000)),
            heartbeat_interval: secs("heartbeat-interval-secs", cli.heartbeat_interval_secs)?,
            agent_unreachable_timeout: secs(
                "agent-unreachable-timeout-secs",
                cli.agent_unreachable_timeout_secs,
            )?,
            agent_removal_timeout: secs(
                "agent-removal-timeout-secs",
                cli.agent_removal_timeout_secs,
            )?,
            internal_token: None,
            dns: dns_options(cli.listen_dns, &cli.dns_resolvers)?,
        })
    }

    /// A config for tests and embedding: the given roles, free ports on loopback.
    pub fn local(roles: &[Role], work_dir: impl Into<PathBuf>) -> NodeConfig {
        let any = "127.0.0.1:0"
            .parse()
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
        NodeConfig {
            roles: roles.to_vec(),
            work_dir: work_dir.into(),
            master_url: None,
            listen_master: any,
            listen_agent: any,
            listen_agent_public: any,
            hostname: Some("127.0.0.1".into()),
            cluster_name: "dcos".into(),
            resources: None,
            attributes: BTreeMap::new(),
            isolation: dcos_agent::Isolation::Auto,
            fsync: true,
            allocation_interval: Duration::from_millis(200),
            heartbeat_interval: Duration::from_secs(1),
            agent_unreachable_timeout: Duration::from_secs(30),
            agent_removal_timeout: Duration::from_secs(600),
            internal_token: None,
            dns: None,
        }
    }

    /// The advertised host for a listen address.
    pub fn advertised_host(&self, listen: &SocketAddr) -> String {
        match &self.hostname {
            Some(h) => h.clone(),
            None if listen.ip().is_unspecified() => "127.0.0.1".into(),
            None => listen.ip().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_parses_and_validates() {
        let cli = Cli::parse_from([
            "dcosd",
            "--roles",
            "master,agent,agent_public",
            "--work-dir",
            "/tmp/x",
            "--resources",
            "cpus:2;mem:512;ports:[31000-31010]",
            "--attributes",
            "rack:r1;level:3",
        ]);
        let c = NodeConfig::from_cli(&cli).unwrap();
        assert_eq!(c.roles, vec![Role::Master, Role::Agent, Role::AgentPublic]);
        assert_eq!(c.resources.unwrap().port_count(), 11);
        assert_eq!(c.attributes["level"], AttributeValue::Scalar(3.0));
        assert_eq!(c.listen_master.port(), 5050);
        assert_eq!(c.listen_agent.port(), 5051);
        assert!(Cli::try_parse_from(["dcosd", "--roles", "bogus"]).is_err());
        let bad = Cli::parse_from(["dcosd", "--resources", "cpus:x"]);
        assert!(NodeConfig::from_cli(&bad).is_err());
        let bad = Cli::parse_from(["dcosd", "--heartbeat-interval-secs=-1"]);
        assert!(NodeConfig::from_cli(&bad).is_err());
        assert!(parse_attributes("novalue").is_err());
        assert!(c.dns.is_none(), "DNS is off by default");
        let cli = Cli::parse_from([
            "dcosd",
            "--listen-dns",
            "127.0.0.1:0",
            "--dns-resolvers",
            "10.0.0.2,10.0.0.3:5353",
        ]);
        let dns = NodeConfig::from_cli(&cli).unwrap().dns.unwrap();
        assert_eq!(dns.resolvers.len(), 2);
        assert_eq!(dns.resolvers[0].port(), 53);
        let bad = Cli::parse_from([
            "dcosd",
            "--listen-dns",
            "127.0.0.1:0",
            "--dns-resolvers",
            "x",
        ]);
        assert!(NodeConfig::from_cli(&bad).is_err());
        let bad = Cli::parse_from(["dcosd", "--dns-resolvers", "10.0.0.2"]);
        assert!(NodeConfig::from_cli(&bad).is_err());
    }
}
