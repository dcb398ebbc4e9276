//! The services a master runs next to the resource manager, as on a DC/OS master: Marathon
//! (the built-in framework, in-process against the master's `MasterApi`), Cosmos (the package
//! manager, talking to Marathon and the master over HTTP like the real one) and the Admin
//! Router (the node's single entry point).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use dcos_adminrouter::auth::{AuthConfig, Credential, Superuser};
use dcos_adminrouter::cluster_store::ClusterAuthStore;
use dcos_adminrouter::discovery::{AgentCache, ServiceCache};
use dcos_adminrouter::{AdminRouter, AdminRouterConfig, DcosVersion, NodeInfo, UnitHealth};
use dcos_store::{Precondition, SharedStore, Store};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::roles::master::MasterHandle;

/// The DC/OS release this cluster presents itself as (`dcos-version.json`, Cosmos's
/// `User-Agent: dcos/<version>` that repository servers filter by).
pub const DCOS_VERSION: &str = "2.2.0";

/// An HTTP server running an axum router, stoppable.
pub struct Server {
    pub addr: SocketAddr,
    /// `http://advertised-host:port`.
    pub url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Server {
    /// Binds `listen` and serves `app` on it.
    pub async fn start(
        name: &'static str,
        listen: SocketAddr,
        host: &str,
        app: axum::Router,
    ) -> anyhow::Result<Server> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {name} to {listen}"))?;
        Self::serve(name, listener, host, app)
    }

    /// Serves `app` on an already bound listener.
    pub fn serve(
        name: &'static str,
        listener: tokio::net::TcpListener,
        host: &str,
        app: axum::Router,
    ) -> anyhow::Result<Server> {
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(async move {
            let r = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "{name} HTTP server failed");
            }
        });
        tracing::info!(%addr, "{name} listening");
        // A service bound to loopback is reached on loopback, whatever the node advertises.
        let host = if addr.ip().is_loopback() {
            addr.ip().to_string()
        } else {
            host.to_string()
        };
        Ok(Server {
            addr,
            url: format!("http://{host}:{}", addr.port()),
            stop: tx,
            task,
        })
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(3), self.task).await;
    }
}

/// Marathon, Metronome and Cosmos on a master.
pub struct MasterServices {
    pub marathon: dcos_marathon::Marathon,
    pub marathon_server: Server,
    pub metronome: dcos_metronome::Metronome,
    pub metronome_server: Server,
    pub cosmos_server: Server,
}

/// Settings of the master's services.
#[derive(Clone, Debug)]
pub struct ServicesConfig {
    pub host: String,
    pub listen_marathon: SocketAddr,
    pub listen_metronome: SocketAddr,
    pub listen_cosmos: SocketAddr,
    /// Repositories Cosmos starts with (the first use writes them to the store).
    pub repositories: Vec<(String, String)>,
    /// The internal credential (auth on): required by Marathon, Metronome and Cosmos, sent by
    /// Cosmos to Marathon and the master.
    pub internal_token: Option<String>,
}

pub async fn start_master_services(
    master: &MasterHandle,
    cfg: &ServicesConfig,
) -> anyhow::Result<MasterServices> {
    let marathon_listener = tokio::net::TcpListener::bind(cfg.listen_marathon)
        .await
        .with_context(|| format!("binding Marathon to {}", cfg.listen_marathon))?;
    let marathon_addr = marathon_listener.local_addr()?;
    let mconf = dcos_marathon::MarathonConfig {
        hostname: cfg.host.clone(),
        http_port: marathon_addr.port(),
        master: master.url.clone(),
        ..Default::default()
    };
    let marathon = dcos_marathon::Marathon::start(
        Arc::new(master.master.clone()),
        master.store.clone(),
        mconf,
    )
    .map_err(|e| anyhow::anyhow!("starting Marathon: {e}"))?;
    let token = cfg.internal_token.as_deref();
    let marathon_server = Server::serve(
        "marathon",
        marathon_listener,
        &cfg.host,
        crate::internal::protect(marathon.router(), token),
    )?;

    let metronome_listener = tokio::net::TcpListener::bind(cfg.listen_metronome)
        .await
        .with_context(|| format!("binding Metronome to {}", cfg.listen_metronome))?;
    let jconf = dcos_metronome::MetronomeConfig {
        hostname: cfg.host.clone(),
        http_port: metronome_listener.local_addr()?.port(),
        ..Default::default()
    };
    let metronome = dcos_metronome::Metronome::start(
        Arc::new(master.master.clone()),
        master.store.clone(),
        jconf,
    )
    .map_err(|e| anyhow::anyhow!("starting Metronome: {e}"))?;
    let metronome_server = Server::serve(
        "metronome",
        metronome_listener,
        &cfg.host,
        crate::internal::protect(metronome.router(), token),
    )?;

    let mut cc = cosmos::CosmosConfig::new(
        marathon_server.url.clone(),
        master.url.clone(),
        master.store.clone(),
    );
    cc.default_repositories = cfg
        .repositories
        .iter()
        .map(|(n, u)| cosmos::Repository::new(n.clone(), u.clone()))
        .collect();
    cc.fetch.user_agent = format!("cosmos/0.6.3 dcos/{DCOS_VERSION}");
    // A repository that cannot be reached (an offline cluster still listing an internet
    // Universe) should fail a request in seconds with its name, not hold it for minutes.
    cc.fetch.timeout = Duration::from_secs(10);
    cc.fetch.retries = 1;
    // A repository that is down should fail fast in a small cluster, not hold a request 15 s.
    cc.fetch.retry_delay = Duration::from_millis(500);
    cc.internal_token = cfg.internal_token.clone();
    let cosmos = cosmos::Cosmos::new(cc);
    // Fetch every repository now, in the background: the first request of an offline cluster
    // then does not wait on an internet repository it cannot reach.
    cosmos.warm_up();
    let cosmos_server = Server::start(
        "cosmos",
        cfg.listen_cosmos,
        &cfg.host,
        crate::internal::protect(cosmos.router(), token),
    )
    .await?;
    Ok(MasterServices {
        marathon,
        marathon_server,
        metronome,
        metronome_server,
        cosmos_server,
    })
}

impl MasterServices {
    pub async fn stop(self) {
        self.cosmos_server.stop().await;
        self.metronome_server.stop().await;
        self.marathon_server.stop().await;
    }
}

/// Settings of the Admin Router role.
#[derive(Clone, Debug)]
pub struct AdminRouterSettings {
    pub listen: SocketAddr,
    pub host: String,
    pub role: String,
    pub cluster_name: String,
    /// Auth on (`oauth_enabled`).
    pub auth: bool,
    /// The superuser: uid and a password or an argon2 PHC hash.
    pub superuser: Option<(String, SuperuserSecret)>,
    /// `dcos_adminrouter::auth::PasswordCost::Fast` in tests.
    pub fast_password_hash: bool,
    pub bootstrap_id: String,
    /// The internal credential the Admin Router adds to what it forwards (auth on).
    pub internal_token: Option<String>,
}

#[derive(Clone)]
pub enum SuperuserSecret {
    Password(String),
    Hash(String),
}

impl std::fmt::Debug for SuperuserSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SuperuserSecret::Password(_) => f.write_str("Password(<redacted>)"),
            SuperuserSecret::Hash(h) => write!(f, "Hash({h})"),
        }
    }
}

/// Upstreams of the Admin Router on a master.
pub struct Upstreams {
    pub mesos: String,
    pub marathon: String,
    pub metronome: String,
    pub cosmos: String,
    /// Mesos-DNS's HTTP API, when this master serves DNS.
    pub mesos_dns: Option<String>,
}

/// A stable cluster id: created once (UUID v4), kept in the store.
pub fn cluster_id(store: &dyn Store) -> anyhow::Result<String> {
    const KEY: &str = "/cluster/id";
    if let Some(e) = store.get(KEY)? {
        return Ok(String::from_utf8_lossy(&e.value).into_owned());
    }
    let id = uuid::Uuid::new_v4().to_string();
    match store.put(KEY, id.clone().into_bytes(), Precondition::Absent) {
        Ok(_) => Ok(id),
        Err(e) if e.is_conflict() => cluster_id(store),
        Err(e) => Err(e.into()),
    }
}

pub struct AdminRouterHandle {
    pub router: AdminRouter,
    pub server: Server,
    refreshers: Vec<JoinHandle<()>>,
}

impl AdminRouterHandle {
    pub async fn stop(self) {
        for r in self.refreshers {
            r.abort();
        }
        self.server.stop().await;
    }
}

/// Starts the Admin Router in front of a master's services.
pub async fn start_adminrouter(
    settings: &AdminRouterSettings,
    store: SharedStore,
    up: Upstreams,
    health: Arc<dyn Fn() -> Vec<UnitHealth> + Send + Sync>,
    marathon: Option<dcos_marathon::Marathon>,
) -> anyhow::Result<AdminRouterHandle> {
    let id = cluster_id(store.as_ref())?;
    let mut cfg = AdminRouterConfig::new(id);
    cfg.cosmos = Some(up.cosmos);
    cfg.marathon = Some(up.marathon.clone());
    cfg.metronome = Some(up.metronome);
    cfg.mesos = Some(up.mesos.clone());
    cfg.mesos_dns = up.mesos_dns.clone();
    let agents = AgentCache::new();
    let mut refreshers = vec![agents.spawn_refresh(
        &up.mesos,
        Duration::from_millis(500),
        settings.internal_token.clone(),
    )];
    cfg.agents = Some(agents);
    // `/service/<name>/`: straight from Marathon's state when it runs in this process (current
    // the moment a task turns healthy), else from a cache of its API refreshed twice a second.
    cfg.services = Some(match marathon {
        Some(m) => Arc::new(move |name: &str| m.service_endpoint(name)),
        None => {
            let services = ServiceCache::new();
            refreshers.push(services.spawn_refresh(
                &up.marathon,
                Duration::from_millis(500),
                settings.internal_token.clone(),
            ));
            services
        }
    });
    cfg.version = DcosVersion {
        version: DCOS_VERSION.into(),
        dcos_image_commit: env!("CARGO_PKG_VERSION").into(),
        bootstrap_id: settings.bootstrap_id.clone(),
        dcos_variant: "open".into(),
    };
    cfg.buildinfo = serde_json::json!({
        "dcos-rs": {"version": env!("CARGO_PKG_VERSION"), "bootstrap_id": settings.bootstrap_id},
    });
    cfg.node = NodeInfo {
        hostname: settings.host.clone(),
        ip: settings.host.clone(),
        role: settings.role.clone(),
        mesos_id: String::new(),
    };
    cfg.health = Some(Arc::new(move || health()));
    cfg.internal_token = settings.internal_token.clone();
    cfg.auth = if settings.auth {
        let mut a = AuthConfig::enabled(Arc::new(ClusterAuthStore::new(store.clone())));
        if settings.fast_password_hash {
            a.password_cost = dcos_adminrouter::auth::PasswordCost::Fast;
        }
        a.superuser = settings.superuser.as_ref().map(|(uid, s)| Superuser {
            uid: uid.clone(),
            credential: match s {
                SuperuserSecret::Password(p) => Credential::Plain(p.clone()),
                SuperuserSecret::Hash(h) => Credential::Hash(h.clone()),
            },
        });
        a
    } else {
        AuthConfig::disabled()
    };
    let router = AdminRouter::new(cfg).context("configuring the Admin Router")?;
    // The Admin Router faces clients: header read timeout and connection limit
    // (`dcos_adminrouter::ServeLimits`), client address for login throttling.
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding adminrouter to {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let (stop, stop_rx) = oneshot::channel::<()>();
    let app = router.router();
    let task = tokio::spawn(async move {
        let shutdown = async {
            let _ = stop_rx.await;
        };
        let limits = dcos_adminrouter::ServeLimits::default();
        if let Err(e) = dcos_adminrouter::serve_with_shutdown(listener, app, limits, shutdown).await
        {
            tracing::error!(error = %e, "adminrouter HTTP server failed");
        }
    });
    tracing::info!(%addr, "adminrouter listening");
    // Reached on loopback when bound there, whatever the node advertises (as `Server::serve`).
    let host = if addr.ip().is_loopback() {
        addr.ip().to_string()
    } else {
        settings.host.clone()
    };
    let server = Server {
        addr,
        url: format!("http://{host}:{}", addr.port()),
        stop,
        task,
    };
    Ok(AdminRouterHandle {
        router,
        server,
        refreshers,
    })
}

/// Starts Mesos-DNS on a master: records from the master's own `/master/state`, called
/// in-process every 250 ms (skipped when unchanged).
pub async fn start_dns(
    master: &MasterHandle,
    mut opts: dcos_dns::DnsOptions,
    host: &str,
) -> anyhow::Result<dcos_dns::DnsService> {
    if opts.listen.ip().is_unspecified() && opts.naming.ns_ips.is_empty() {
        if let Ok(ip) = host.parse() {
            opts.naming.ns_ips = vec![ip];
        }
    }
    let source = dcos_dns::RouterSource(dcos_master::router(master.master.clone()));
    dcos_dns::DnsService::start(opts, Arc::new(source))
        .await
        .context("starting Mesos-DNS")
}

/// Writes the built-in Universe repository (our example packages) into `dir` and returns its
/// `file://` URI. The index is built from `packages/` at development time; a test keeps the
/// two equal.
pub fn write_builtin_repository(dir: &Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("builtin-repo.json");
    let tmp = dir.join("builtin-repo.json.tmp");
    std::fs::write(&tmp, BUILTIN_REPOSITORY)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    let abs = path.canonicalize().unwrap_or(path);
    Ok(format!("file://{}", abs.display()))
}

/// The built-in repository index (Universe v5 `universe.json` of `packages/repo`).
pub const BUILTIN_REPOSITORY: &str = include_str!("../../../packages/builtin-repo.json");
