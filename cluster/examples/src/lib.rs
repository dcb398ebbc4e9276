//! The programs behind the bundled example packages.
//!
//! A fresh cluster has no network access, so its built-in Universe can only offer packages
//! whose programs are already on every node. These are those programs, shipped inside `dcosd`
//! and run as `dcosd example NAME ...` (agents put the directory of their own binary first on
//! a task's `PATH`, the way DC/OS puts `/opt/mesosphere/bin` there):
//!
//! * `hello`: an HTTP service on `--port` answering `/` with a greeting and `/health` with 200;
//! * `static`: a static file server for `--dir` on `--port`;
//! * `worker`: a background worker that appends a line to `--out` every `--interval` seconds.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use axum::{extract::State, routing::get, Json, Router};
use clap::{Args, Subcommand};
use tokio::io::AsyncWriteExt;

/// `dcosd example ...`
#[derive(Debug, Subcommand)]
pub enum Example {
    /// An HTTP hello-world service.
    Hello(HelloArgs),
    /// A static file server.
    Static(StaticArgs),
    /// A worker that writes to its sandbox.
    Worker(WorkerArgs),
}

#[derive(Debug, Args)]
pub struct HelloArgs {
    /// Port to listen on (Marathon passes `$PORT0`).
    #[arg(long, env = "PORT0")]
    pub port: u16,
    /// The greeting.
    #[arg(long, env = "HELLO_MESSAGE", default_value = "Hello from DC/OS!")]
    pub message: String,
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: String,
}

#[derive(Debug, Args)]
pub struct StaticArgs {
    #[arg(long, env = "PORT0")]
    pub port: u16,
    /// Directory to serve (default: the task's sandbox).
    #[arg(long, env = "STATIC_ROOT")]
    pub dir: Option<PathBuf>,
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: String,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// File to append to, relative to the working directory (the sandbox).
    #[arg(long, env = "WORKER_OUTPUT", default_value = "work.log")]
    pub out: PathBuf,
    /// Seconds between two lines.
    #[arg(long, env = "WORKER_INTERVAL", default_value_t = 1.0)]
    pub interval: f64,
    /// Stop after this many lines (0: run forever).
    #[arg(long, default_value_t = 0)]
    pub count: u64,
}

/// Runs an example to completion (the services run until killed).
pub async fn run(example: Example) -> anyhow::Result<()> {
    match example {
        Example::Hello(a) => {
            let addr = socket(&a.bind, a.port)?;
            serve(addr, hello_router(a.message)).await
        }
        Example::Static(a) => {
            let dir = match a.dir {
                Some(d) => d,
                None => std::env::var_os("MESOS_SANDBOX")
                    .map(PathBuf::from)
                    .unwrap_or(std::env::current_dir().context("no working directory")?),
            };
            let addr = socket(&a.bind, a.port)?;
            serve(addr, static_router(dir)).await
        }
        Example::Worker(a) => worker(a).await,
    }
}

fn socket(bind: &str, port: u16) -> anyhow::Result<SocketAddr> {
    format!("{bind}:{port}")
        .parse()
        .with_context(|| format!("invalid listen address {bind}:{port}"))
}

async fn serve(addr: SocketAddr, router: Router) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    eprintln!("listening on {addr}");
    axum::serve(listener, router).await.context("server failed")
}

#[derive(Clone)]
struct Hello {
    message: String,
    task: String,
}

/// The hello service: `/` greets, `/health` is the health check, `/info` tells who answered.
pub fn hello_router(message: String) -> Router {
    let task = std::env::var("MESOS_TASK_ID").unwrap_or_else(|_| "local".into());
    Router::new()
        .route(
            "/",
            get(|State(h): State<Hello>| async move { format!("{}\n", h.message) }),
        )
        .route("/health", get(|| async { "OK\n" }))
        .route(
            "/info",
            get(|State(h): State<Hello>| async move {
                Json(serde_json::json!({
                    "message": h.message,
                    "task": h.task,
                    "host": std::env::var("HOST").unwrap_or_default(),
                }))
            }),
        )
        .with_state(Hello { message, task })
}

/// The static file server, with directory-less paths answering 404.
pub fn static_router(dir: PathBuf) -> Router {
    Router::new()
        .route("/health", get(|| async { "OK\n" }))
        .fallback_service(tower_http::services::ServeDir::new(dir))
}

async fn worker(a: WorkerArgs) -> anyhow::Result<()> {
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&a.out)
        .await
        .with_context(|| format!("cannot open {}", a.out.display()))?;
    let interval = Duration::from_secs_f64(a.interval.max(0.01));
    let mut n = 0u64;
    loop {
        n += 1;
        let line = format!("work item {n} done\n");
        file.write_all(line.as_bytes()).await?;
        file.flush().await?;
        if a.count != 0 && n >= a.count {
            return Ok(());
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn start(router: Router) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, router).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn hello_answers_and_is_healthy() {
        let base = start(hello_router("hi there".into())).await;
        let body = reqwest::get(format!("{base}/")).await.unwrap().text().await;
        assert_eq!(body.unwrap(), "hi there\n");
        let h = reqwest::get(format!("{base}/health")).await.unwrap();
        assert_eq!(h.status(), 200);
    }

    #[tokio::test]
    async fn static_serves_files_and_404s() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<h1>site</h1>").unwrap();
        let base = start(static_router(dir.path().to_path_buf())).await;
        let body = reqwest::get(format!("{base}/index.html"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "<h1>site</h1>");
        let missing = reqwest::get(format!("{base}/nope")).await.unwrap();
        assert_eq!(missing.status(), 404);
        let escape = reqwest::get(format!("{base}/..%2f..%2fetc/passwd"))
            .await
            .unwrap();
        assert_eq!(escape.status(), 404);
    }

    #[tokio::test]
    async fn worker_writes_lines() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("w.log");
        worker(WorkerArgs {
            out: out.clone(),
            interval: 0.01,
            count: 3,
        })
        .await
        .unwrap();
        let text = std::fs::read_to_string(out).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.ends_with("work item 3 done\n"));
    }
}
