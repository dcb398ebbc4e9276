//! `cosmos`: the package manager service, standalone.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;

/// Cosmos, the DC/OS package manager service.
#[derive(Parser, Debug)]
#[command(name = "cosmos", version)]
struct Args {
    /// Marathon API base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "COSMOS_MARATHON")]
    marathon: String,
    /// Mesos master base URL (framework teardown on uninstall).
    #[arg(long, default_value = "http://127.0.0.1:5050", env = "COSMOS_MESOS")]
    mesos: String,
    /// Admin Router base URL: enables custom package managers (v5 `manager`), reached at
    /// `{url}/service/<managerId>/…`.
    #[arg(long)]
    admin_router: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7070")]
    listen: String,
    /// Directory of the embedded state store (repository list). In memory when absent.
    #[arg(long)]
    store: Option<std::path::PathBuf>,
    /// Default repositories written on first start, as NAME=URI (repeatable; file:// allowed).
    /// Without any, the Cosmos default (Universe at universe.mesosphere.com) is used.
    #[arg(long = "repository", value_name = "NAME=URI")]
    repositories: Vec<String>,
    /// Let /package/repository/add accept file:// URIs.
    #[arg(long)]
    allow_file_repositories: bool,
    /// DC/OS version announced to repositories in the User-Agent.
    #[arg(long, default_value = "2.1.0")]
    dcos_version: String,
    /// Retries after a failed repository fetch.
    #[arg(long, default_value_t = 3)]
    fetch_retries: u32,
    /// Seconds between fetch retries.
    #[arg(long, default_value_t = 5)]
    fetch_retry_delay: u64,
    /// Milliseconds a request waits for a repository that has not answered yet before it
    /// answers without it (naming it in a `Warning` header); the fetch goes on in the background.
    #[arg(long, default_value_t = 3000)]
    repository_answer_wait_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let store: Arc<dyn dcos_store::Store> = match &args.store {
        Some(dir) => Arc::new(
            dcos_store::EmbeddedStore::open(dir)
                .with_context(|| format!("opening the state store at {}", dir.display()))?,
        ),
        None => Arc::new(dcos_store::EmbeddedStore::in_memory()),
    };
    let mut config = cosmos::CosmosConfig::new(&args.marathon, &args.mesos, store);
    if !args.repositories.is_empty() {
        config.default_repositories = args
            .repositories
            .iter()
            .map(|r| {
                r.split_once('=')
                    .map(|(n, u)| cosmos::Repository::new(n, u))
                    .with_context(|| format!("--repository {r}: expected NAME=URI"))
            })
            .collect::<anyhow::Result<_>>()?;
    }
    config.allow_file_repositories = args.allow_file_repositories;
    config.admin_router_url = args.admin_router.clone();
    config.fetch.user_agent = format!("cosmos/0.6.3 dcos/{}", args.dcos_version);
    config.fetch.retries = args.fetch_retries;
    config.fetch.retry_delay = Duration::from_secs(args.fetch_retry_delay);
    config.fetch.answer_wait = Duration::from_millis(args.repository_answer_wait_ms);
    let cosmos = cosmos::Cosmos::new(config);
    cosmos.warm_up();
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, marathon = %args.marathon, "cosmos listening");
    axum::serve(listener, cosmos.router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")?;
    Ok(())
}

// Rendering and the JSON APIs allocate many small values; mimalloc makes them markedly
// cheaper (cosmos-render's corpus bench: 41.6 → 35.0 ms).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
