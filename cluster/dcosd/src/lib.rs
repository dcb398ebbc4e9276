//! The node daemon: runs any set of roles (master, agent, agent_public) in one process.
//!
//! `main.rs` only parses [`Cli`] and calls [`run`]; role startup lives in [`roles`] so other
//! roles (Marathon, Cosmos, Admin Router) can be added next to them, and a node config written
//! by the installer can be turned into a [`NodeConfig`] without the CLI.

pub mod allinone;
pub mod config;
pub mod installed;
pub mod internal;
pub mod node;
pub mod roles;
pub mod services;

use std::future::Future;

pub use config::{Cli, NodeConfig, Role};
pub use roles::{start, RunningNode};

/// Starts every role of `config`, waits for `shutdown`, then stops them cleanly. Tasks on
/// agents keep running (they are checkpointed and re-attached on the next start).
pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let node = start(config).await?;
    shutdown.await;
    tracing::info!("shutting down");
    node.stop().await;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called, not when
/// the future is first polled: call it before starting the node, so that a signal that
/// arrives while the node starts is not the default action (death without cleanup).
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut t), Ok(mut i)) => {
                tokio::select! {
                    _ = t.recv() => {}
                    _ = i.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
