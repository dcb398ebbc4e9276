use clap::{Parser, Subcommand};
use dcosd::allinone::AllInOneArgs;
use dcosd::{Cli, NodeConfig};

/// `dcosd`: the node daemon. Without a subcommand it runs the roles given by `--roles` (or by
/// the installer's `--config`); `dcosd all-in-one` runs a whole single-node cluster.
#[derive(Debug, Parser)]
#[command(name = "dcosd", version, args_conflicts_with_subcommands = true)]
struct Top {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    node: Cli,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every role in one process on the embedded store: the single-node default.
    AllInOne(AllInOneArgs),
    /// The programs behind the bundled example packages (run by their tasks).
    #[command(subcommand)]
    Example(dcos_examples::Example),
}

fn init_logs(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Tasks find `dcosd` (and so the example programs) on their `PATH`, the way DC/OS puts
/// `/opt/mesosphere/bin` there. Done before any thread starts.
fn put_own_dir_on_path() {
    let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()))
    else {
        return;
    };
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<_> = std::env::split_paths(&path).collect();
    if dirs.first() != Some(&dir) {
        dirs.insert(0, dir);
        if let Ok(joined) = std::env::join_paths(dirs) {
            std::env::set_var("PATH", joined);
        }
    }
}

fn main() -> std::process::ExitCode {
    let top = Top::parse();
    if !matches!(top.command, Some(Command::Example(_))) {
        put_own_dir_on_path();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(top)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(top: Top) -> anyhow::Result<()> {
    match top.command {
        Some(Command::Example(example)) => dcos_examples::run(example).await,
        Some(Command::AllInOne(args)) => {
            init_logs(&args.log);
            let (config, extras) = args.resolve()?;
            let started = std::time::Instant::now();
            let stop = dcosd::shutdown_signal();
            let node = dcosd::node::start(config, extras).await?;
            if let Some(url) = node.url() {
                tracing::info!(
                    "single-node cluster ready at {url} in {:.2?} (dcos cluster setup {url})",
                    started.elapsed()
                );
                eprintln!("dcosd all-in-one: ready at {url}");
            }
            stop.await;
            tracing::info!("shutting down");
            node.stop().await;
            Ok(())
        }
        None => {
            let cli = top.node;
            init_logs(&cli.log);
            let stop = dcosd::shutdown_signal();
            if let Some(path) = &cli.config {
                let inst = dcosd::installed::load(path, &cli)?;
                let node = dcosd::node::start_installed(inst).await?;
                stop.await;
                tracing::info!("shutting down");
                node.stop().await;
                return Ok(());
            }
            let config = NodeConfig::from_cli(&cli)?;
            let adminrouter = config.roles.contains(&dcosd::Role::AdminRouter);
            if adminrouter || config.roles.contains(&dcosd::Role::Master) {
                let extras = dcosd::node::Extras::for_cli(&cli, &config, adminrouter);
                let node = dcosd::node::start(config, extras).await?;
                stop.await;
                node.stop().await;
                return Ok(());
            }
            dcosd::run(config, stop).await
        }
    }
}

// Rendering and the JSON APIs allocate many small values; mimalloc makes them markedly
// cheaper (cosmos-render's corpus bench: 41.6 → 35.0 ms).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
