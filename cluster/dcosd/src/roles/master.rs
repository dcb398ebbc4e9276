//! The master role: store, master, HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use dcos_master::{HttpTransport, Master, MasterConfig};
use dcos_store::{EmbeddedStore, Options, SharedStore};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::NodeConfig;

pub struct MasterHandle {
    pub master: Master,
    pub store: SharedStore,
    /// The bound address.
    pub addr: SocketAddr,
    /// `http://advertised-host:port`.
    pub url: String,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

pub async fn start(config: &NodeConfig) -> anyhow::Result<MasterHandle> {
    let dir = config.work_dir.join("master").join("store");
    let store = EmbeddedStore::open_with(
        &dir,
        Options {
            fsync: config.fsync,
            ..Options::default()
        },
    )
    .with_context(|| format!("opening the master store in {}", dir.display()))?;
    let store: SharedStore = Arc::new(store);
    let listener = tokio::net::TcpListener::bind(config.listen_master)
        .await
        .with_context(|| format!("binding the master to {}", config.listen_master))?;
    let addr = listener.local_addr()?;
    let host = config.advertised_host(&addr);
    let master_config = MasterConfig {
        hostname: host.clone(),
        port: addr.port(),
        cluster_name: config.cluster_name.clone(),
        allocation_interval: config.allocation_interval,
        heartbeat_interval: config.heartbeat_interval,
        agent_unreachable_timeout: config.agent_unreachable_timeout,
        agent_removal_timeout: config.agent_removal_timeout,
        internal_token: config.internal_token.clone(),
        ..MasterConfig::default()
    };
    let transport = HttpTransport::with_internal_token(config.internal_token.as_deref())
        .map_err(|e| anyhow::anyhow!("the master's HTTP client: {e}"))?;
    let master = Master::start(master_config, store.clone(), Arc::new(transport))
        .map_err(|e| anyhow::anyhow!("starting the master: {e}"))?;
    let app = crate::internal::protect(
        dcos_master::router(master.clone()),
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
            tracing::error!(error = %e, "master HTTP server failed");
        }
    });
    tracing::info!(%addr, "master listening");
    Ok(MasterHandle {
        master,
        store,
        addr,
        url: format!("http://{host}:{}", addr.port()),
        stop: tx,
        server,
    })
}

impl MasterHandle {
    pub async fn stop(self) {
        self.master.shutdown();
        let _ = self.stop.send(());
        // Open keep-alive connections may hold graceful shutdown; do not wait forever.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.server).await;
    }
}
