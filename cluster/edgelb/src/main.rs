//! `dcos-edgelb`: runs the edge load balancer (like marathon-lb in `sse` mode).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use dcos_edgelb::{EdgeLb, EdgeLbConfig};

#[derive(Parser, Debug)]
#[command(
    name = "dcos-edgelb",
    about = "Edge load balancer driving HAProxy from Marathon (marathon-lb labels)"
)]
struct Cli {
    /// Marathon URL; repeat for several (the first that answers is used).
    #[arg(short, long = "marathon", default_value = "http://marathon.mesos:8080")]
    marathon: Vec<String>,
    /// HAProxy group to expose (`HAPROXY_GROUP`); `*` exposes every app.
    #[arg(long, default_value = "external")]
    group: String,
    /// Only expose ports with `HAPROXY_{n}_ENABLED=true`.
    #[arg(long)]
    strict_mode: bool,
    /// Ignore Marathon health results and add no HAProxy server checks.
    #[arg(long)]
    no_health_check: bool,
    /// Address every frontend binds (`*` = all).
    #[arg(long, default_value = "*")]
    bind_addr: String,
    /// Port of the vhost (Host header) frontend; 0 disables it.
    #[arg(long, default_value_t = 80)]
    http_port: u16,
    /// Port of the stats/health listener; 0 disables it.
    #[arg(long, default_value_t = 9090)]
    stats_port: u16,
    /// App id of this balancer (never exposed).
    #[arg(long, env = "MARATHON_APP_ID")]
    self_app_id: Option<String>,
    /// Directory for haproxy.cfg and the sockets.
    #[arg(long, default_value = "/var/run/dcos-edgelb")]
    run_dir: PathBuf,
    /// The haproxy binary (default: $HAPROXY_BIN or haproxy on PATH).
    #[arg(long)]
    haproxy: Option<PathBuf>,
    /// Quiet time after an event before regenerating, in milliseconds.
    #[arg(long, default_value_t = 150)]
    debounce_ms: u64,
    /// Regenerate at least this often, in seconds.
    #[arg(long, default_value_t = 300)]
    resync_seconds: u64,
    /// How long old HAProxy workers may keep connections after a reload (HAProxy time, e.g. 15m); "none" = forever.
    #[arg(long, default_value = "15m")]
    hard_stop_after: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let binary = match cli.haproxy {
        Some(p) => p,
        None => dcos_edgelb::haproxy::find_binary()
            .context("haproxy not found (install Debian's haproxy or pass --haproxy)")?,
    };
    let mut cfg = EdgeLbConfig::new(cli.marathon, binary, cli.run_dir);
    cfg.options.group = cli.group;
    cfg.options.strict = cli.strict_mode;
    cfg.options.health_check = !cli.no_health_check;
    cfg.options.bind_addr = cli.bind_addr;
    cfg.options.http_port = (cli.http_port != 0).then_some(cli.http_port);
    cfg.options.stats_port = (cli.stats_port != 0).then_some(cli.stats_port);
    cfg.options.self_app_id = cli.self_app_id;
    cfg.options.hard_stop_after = (cli.hard_stop_after != "none").then_some(cli.hard_stop_after);
    cfg.debounce = Duration::from_millis(cli.debounce_ms);
    cfg.resync = Duration::from_secs(cli.resync_seconds.max(1));
    let lb = EdgeLb::start(cfg).await.context("starting the balancer")?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = hup.recv() => lb.resync(),
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    lb.shutdown().await.context("stopping")?;
    Ok(())
}
