//! `dcosd all-in-one`: every role in one process on the embedded store — the single-node
//! default. Only the Admin Router listens where users can reach it; the master, Marathon,
//! Cosmos and the agent listen on free loopback ports behind it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

use crate::config::{NodeConfig, Role};
use crate::node::Extras;
use crate::services::{AdminRouterSettings, SuperuserSecret};

#[derive(Clone, Debug, Args)]
pub struct AllInOneArgs {
    /// State directory: the store, agent sandboxes, the built-in Universe.
    #[arg(long, env = "DCOSD_WORK_DIR", default_value = "/var/lib/dcosd")]
    pub work_dir: PathBuf,
    /// Where the Admin Router (the cluster's one entry point) listens.
    #[arg(long, env = "DCOSD_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Turn authentication on: every route but the whitelist needs a token from
    /// `/acs/api/v1/auth/login`. Off by default for this local sandbox.
    #[arg(long)]
    pub auth: bool,
    /// The superuser created when auth is on. Its password comes from
    /// `$DCOS_SUPERUSER_PASSWORD` (or an argon2 PHC hash in `$DCOS_SUPERUSER_PASSWORD_HASH`).
    #[arg(long, default_value = "admin")]
    pub superuser: String,
    #[arg(long, env = "DCOSD_CLUSTER_NAME", default_value = "dcos-local")]
    pub cluster_name: String,
    /// Agent resources, Mesos style: `cpus:4;mem:8192;disk:10000;ports:[31000-32000]`
    /// (default: detected).
    #[arg(long, env = "DCOSD_RESOURCES")]
    pub resources: Option<String>,
    /// Extra Universe repositories after the built-in one: `NAME=URI`, in order.
    #[arg(long = "repository", value_name = "NAME=URI")]
    pub repositories: Vec<String>,
    /// Leave out the built-in Universe of example packages.
    #[arg(long)]
    pub no_builtin_repository: bool,
    /// cgroups isolation: auto (when the host allows) or none.
    #[arg(long, default_value = "auto")]
    pub isolation: String,
    /// Log filter when RUST_LOG is unset.
    #[arg(long, default_value = "info")]
    pub log: String,
    /// Serve Mesos-DNS (`.mesos`, UDP and TCP) on this address. Off unless given.
    #[arg(long, env = "DCOSD_LISTEN_DNS")]
    pub listen_dns: Option<SocketAddr>,
    /// Upstream resolvers (`IP` or `IP:PORT`, comma-separated) for other names.
    #[arg(long, env = "DCOSD_DNS_RESOLVERS", value_delimiter = ',')]
    pub dns_resolvers: Vec<String>,
}

impl AllInOneArgs {
    /// The node config and extras this command runs.
    pub fn resolve(&self) -> anyhow::Result<(NodeConfig, Extras)> {
        let mut config = NodeConfig::local(&[Role::Master, Role::Agent], &self.work_dir);
        config.cluster_name = self.cluster_name.clone();
        config.hostname = Some(self.listen.ip().to_string()).filter(|h| h != "0.0.0.0");
        if config.hostname.is_none() {
            config.hostname = Some("127.0.0.1".into());
        }
        config.resources = match &self.resources {
            Some(r) => Some(
                dcos_types::Resources::parse(r)
                    .map_err(anyhow::Error::msg)
                    .context("--resources")?,
            ),
            None => None,
        };
        config.isolation = match self.isolation.as_str() {
            "auto" | "cgroups" => dcos_agent::Isolation::Auto,
            "none" => dcos_agent::Isolation::None,
            other => bail!("--isolation must be auto or none, not {other:?}"),
        };
        config.dns = crate::config::dns_options(self.listen_dns, &self.dns_resolvers)?;
        // A single node: react fast.
        config.allocation_interval = Duration::from_millis(100);
        let mut repositories = Vec::new();
        for r in &self.repositories {
            let Some((name, uri)) = r.split_once('=') else {
                bail!("--repository {r:?} is not NAME=URI");
            };
            repositories.push((name.trim().to_string(), uri.trim().to_string()));
        }
        if self.auth {
            // With auth on, internal ports require the cluster's credential (docs/security.md).
            config.internal_token = Some(crate::internal::load_or_create_token(&self.work_dir)?);
        }
        let superuser = if self.auth {
            let secret = if let Ok(h) = std::env::var("DCOS_SUPERUSER_PASSWORD_HASH") {
                SuperuserSecret::Hash(h)
            } else if let Ok(p) = std::env::var("DCOS_SUPERUSER_PASSWORD") {
                if p.is_empty() {
                    bail!("DCOS_SUPERUSER_PASSWORD is empty");
                }
                SuperuserSecret::Password(p)
            } else {
                bail!(
                    "--auth needs the superuser's password: set DCOS_SUPERUSER_PASSWORD \
                     (or an argon2 hash in DCOS_SUPERUSER_PASSWORD_HASH)"
                );
            };
            Some((self.superuser.clone(), secret))
        } else {
            None
        };
        let any: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
        let extras = Extras {
            listen_marathon: any,
            listen_metronome: any,
            listen_cosmos: any,
            repositories,
            builtin_repository: !self.no_builtin_repository,
            adminrouter: Some(AdminRouterSettings {
                listen: self.listen,
                host: config
                    .hostname
                    .clone()
                    .unwrap_or_else(|| "127.0.0.1".into()),
                role: "master".into(),
                cluster_name: self.cluster_name.clone(),
                auth: self.auth,
                superuser,
                fast_password_hash: false,
                bootstrap_id: "all-in-one".into(),
                internal_token: None,
            }),
        };
        Ok((config, extras))
    }
}
