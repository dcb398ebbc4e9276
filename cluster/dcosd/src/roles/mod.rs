//! Starting and stopping roles.

pub mod agent;
pub mod master;

use crate::config::{NodeConfig, Role};

/// The roles running in this process.
pub struct RunningNode {
    pub master: Option<master::MasterHandle>,
    pub agents: Vec<agent::AgentHandle>,
}

/// Starts the roles of `config` (master first, so local agents can register with it).
pub async fn start(config: NodeConfig) -> anyhow::Result<RunningNode> {
    let mut node = RunningNode {
        master: None,
        agents: Vec::new(),
    };
    if config.roles.contains(&Role::Master) {
        node.master = Some(master::start(&config).await?);
    }
    let master_url = match (&config.master_url, &node.master) {
        (Some(u), _) => u.clone(),
        (None, Some(m)) => m.url.clone(),
        (None, None) => format!(
            "http://{}:5050",
            config.advertised_host(&config.listen_master)
        ),
    };
    let both = config.roles.contains(&Role::Agent) && config.roles.contains(&Role::AgentPublic);
    if config.roles.contains(&Role::Agent) {
        node.agents
            .push(agent::start(&config, &master_url, false, config.listen_agent, "agent").await?);
    }
    if config.roles.contains(&Role::AgentPublic) {
        let (listen, dir) = if both {
            (config.listen_agent_public, "agent_public")
        } else {
            (config.listen_agent, "agent")
        };
        node.agents
            .push(agent::start(&config, &master_url, true, listen, dir).await?);
    }
    Ok(node)
}

impl RunningNode {
    /// Stops every role: servers close, loops end; agents leave their tasks running.
    pub async fn stop(self) {
        for a in self.agents {
            a.stop().await;
        }
        if let Some(m) = self.master {
            m.stop().await;
        }
    }
}
