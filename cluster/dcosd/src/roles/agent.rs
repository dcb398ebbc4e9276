//! The agent roles (agent, agent_public): agent + HTTP server.

use std::net::SocketAddr;

use anyhow::Context;
use dcos_agent::{Agent, AgentConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::NodeConfig;

pub struct AgentHandle {
    pub agent: Agent,
    pub addr: SocketAddr,
    pub url: String,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

pub async fn start(
    config: &NodeConfig,
    master_url: &str,
    public: bool,
    listen: SocketAddr,
    dir: &str,
) -> anyhow::Result<AgentHandle> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the agent to {listen}"))?;
    let addr = listener.local_addr()?;
    let host = config.advertised_host(&addr);
    let mut ac = AgentConfig::new(config.work_dir.join(dir), master_url);
    ac.hostname = host.clone();
    ac.port = addr.port();
    ac.resources = config.resources.clone();
    ac.attributes = config.attributes.clone();
    ac.public = public;
    ac.isolation = config.isolation;
    ac.internal_token = config.internal_token.clone();
    ac.fsync = config.fsync;
    let agent = Agent::start(ac).map_err(|e| anyhow::anyhow!("starting the agent: {e}"))?;
    let app = crate::internal::protect(
        dcos_agent::router(agent.clone()),
        config.internal_token.as_deref(),
    );
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "agent HTTP server failed");
        }
    });
    tracing::info!(%addr, public, "agent listening");
    Ok(AgentHandle {
        agent,
        addr,
        url: format!("http://{host}:{}", addr.port()),
        stop: tx,
        server,
    })
}

impl AgentHandle {
    pub async fn stop(self) {
        self.agent.shutdown();
        let _ = self.stop.send(());
        // Open keep-alive connections may hold graceful shutdown; do not wait forever.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.server).await;
    }
}
