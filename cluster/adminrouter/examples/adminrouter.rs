//! A standalone Admin Router in front of services that already run elsewhere — handy to try the
//! `dcos` CLI (ours or the published DC/OS CLI) before `dcosd` wires everything in one process.
//!
//! ```sh
//! cargo run -p dcos-adminrouter --example adminrouter -- --listen 127.0.0.1:8000 \
//!     --cosmos http://127.0.0.1:7070 --marathon http://127.0.0.1:8080 --mesos http://127.0.0.1:5050 \
//!     --auth-store /tmp/ar-auth.json --superuser admin:secret
//! ```
//! Without `--auth-store`, auth is off.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use dcos_adminrouter::auth::{AuthConfig, Credential, Superuser};
use dcos_adminrouter::discovery::{AgentCache, ServiceCache};
use dcos_adminrouter::store::FileAuthStore;
use dcos_adminrouter::{AdminRouter, AdminRouterConfig};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: String,
    #[arg(long, default_value = "00000000-0000-4000-8000-000000000001")]
    cluster_id: String,
    #[arg(long)]
    cosmos: Option<String>,
    #[arg(long)]
    marathon: Option<String>,
    #[arg(long)]
    metronome: Option<String>,
    #[arg(long)]
    mesos: Option<String>,
    #[arg(long)]
    mesos_dns: Option<String>,
    /// Turns auth on, keeping users and the token secret in this JSON file.
    #[arg(long)]
    auth_store: Option<std::path::PathBuf>,
    /// `uid:password` of the superuser (with --auth-store).
    #[arg(long)]
    superuser: Option<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let mut cfg = AdminRouterConfig::new(args.cluster_id);
    cfg.cosmos = args.cosmos;
    cfg.marathon = args.marathon.clone();
    cfg.metronome = args.metronome;
    cfg.mesos = args.mesos.clone();
    cfg.mesos_dns = args.mesos_dns;
    if let Some(m) = &args.marathon {
        let services = ServiceCache::new();
        services.spawn_refresh(m, Duration::from_secs(2), None);
        cfg.services = Some(services);
    }
    if let Some(m) = &args.mesos {
        let agents = AgentCache::new();
        agents.spawn_refresh(m, Duration::from_secs(2), None);
        cfg.agents = Some(agents);
    }
    cfg.auth = match args.auth_store {
        Some(path) => {
            let mut a = AuthConfig::enabled(Arc::new(FileAuthStore::open(path)?));
            if let Some(su) = args.superuser {
                let (uid, pw) = su.split_once(':').ok_or("--superuser is uid:password")?;
                a.superuser = Some(Superuser {
                    uid: uid.into(),
                    credential: Credential::Plain(pw.into()),
                });
            }
            a
        }
        None => AuthConfig::disabled(),
    };
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("admin router on http://{}", listener.local_addr()?);
    AdminRouter::new(cfg)?.serve(listener).await?;
    Ok(())
}
