//! The long-running loop: follows Marathon's `/v2/events`, re-reads `/v2/apps?embed=apps.tasks`
//! after a debounced burst of events (or every `resync` without events), regenerates the
//! configuration and applies it to HAProxy.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::config::{self, Options};
use crate::haproxy::{Applied, Haproxy};
use crate::model;
use crate::Error;

/// Event types that can change what the balancer serves (marathon-lb's three, plus the
/// end of an app).
pub const EVENT_TYPES: &[&str] = &[
    "api_post_event",
    "status_update_event",
    "health_status_changed_event",
    "app_terminated_event",
];

/// Settings of a running balancer.
#[derive(Debug, Clone)]
pub struct EdgeLbConfig {
    /// Marathon base URLs (e.g. `http://master.mesos:8080`); tried in order, the one that
    /// worked is kept.
    pub marathon: Vec<String>,
    pub options: Options,
    pub haproxy_binary: PathBuf,
    /// Where `haproxy.cfg`, the master and admin sockets live.
    pub run_dir: PathBuf,
    /// Quiet time after an event before regenerating (coalesces a deployment's burst).
    pub debounce: Duration,
    /// Regenerate at least this often even without events.
    pub resync: Duration,
    /// Reconnect the event stream when no byte came for this long.
    pub idle_timeout: Duration,
    /// Longest wait between reconnection attempts.
    pub max_backoff: Duration,
}

impl EdgeLbConfig {
    pub fn new(marathon: Vec<String>, haproxy_binary: PathBuf, run_dir: PathBuf) -> Self {
        EdgeLbConfig {
            marathon,
            options: Options::default(),
            haproxy_binary,
            run_dir,
            debounce: Duration::from_millis(150),
            resync: Duration::from_secs(300),
            idle_timeout: Duration::from_secs(300),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// What the balancer did last, published after every regeneration.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// Regenerations done (successful fetches).
    pub generations: u64,
    /// Reloads of HAProxy that completed.
    pub reloads: u64,
    /// Configurations rejected by `haproxy -c` or whose reload failed.
    pub rejected: u64,
    /// The last error (fetch, validation or reload), cleared by the next success.
    pub last_error: Option<String>,
    /// Warnings of the last generation (skipped apps/ports and why).
    pub warnings: Vec<String>,
    pub backends: usize,
    pub servers: usize,
    /// Events received on the stream.
    pub events: u64,
    /// The configuration HAProxy runs.
    pub running_config: String,
}

/// A running balancer.
pub struct EdgeLb {
    status: watch::Receiver<Status>,
    resync: Arc<Notify>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: JoinHandle<Result<(), Error>>,
}

impl EdgeLb {
    /// Starts HAProxy with an empty configuration (stats listener only) and the loop.
    pub async fn start(cfg: EdgeLbConfig) -> Result<EdgeLb, Error> {
        if cfg.marathon.is_empty() {
            return Err(Error::Marathon("no Marathon URL given".into()));
        }
        let mut opts = cfg.options.clone();
        if opts.admin_socket.is_none() {
            opts.admin_socket = Some(cfg.run_dir.join("admin.sock").display().to_string());
        }
        let empty = config::generate(&[], &opts, &|_| None, &|_| false);
        let haproxy = Haproxy::start(&cfg.haproxy_binary, &cfg.run_dir, &empty.text).await?;
        let (tx, rx) = watch::channel(Status {
            running_config: empty.text,
            ..Status::default()
        });
        let resync = Arc::new(Notify::new());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(run(cfg, opts, haproxy, tx, resync.clone(), stop_rx));
        Ok(EdgeLb {
            status: rx,
            resync,
            stop: Some(stop_tx),
            task,
        })
    }

    /// A receiver of the status (use `wait_for` to wait for a condition).
    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Asks for a regeneration now (SIGHUP in marathon-lb).
    pub fn resync(&self) {
        self.resync.notify_one();
    }

    /// Stops the loop and HAProxy.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(Error::Haproxy(format!("balancer task failed: {e}"))),
        }
    }
}

/// Caches host name → IP lookups (host-network tasks are addressed by their agent's name).
#[derive(Default)]
struct Resolver {
    cache: HashMap<String, (Option<IpAddr>, Instant)>,
}

impl Resolver {
    const TTL: Duration = Duration::from_secs(60);

    async fn refresh(&mut self, hosts: HashSet<String>) {
        let now = Instant::now();
        self.cache.retain(|h, _| hosts.contains(h));
        for h in hosts {
            if let Ok(ip) = h.parse::<IpAddr>() {
                self.cache.insert(h, (Some(ip), now));
                continue;
            }
            if self
                .cache
                .get(&h)
                .is_some_and(|(_, at)| now.duration_since(*at) < Self::TTL)
            {
                continue;
            }
            let lookup = tokio::net::lookup_host((h.as_str(), 0));
            let ip = match tokio::time::timeout(Duration::from_secs(2), lookup).await {
                Ok(Ok(mut addrs)) => addrs.next().map(|a| a.ip()),
                _ => None,
            };
            if ip.is_none() {
                tracing::warn!("cannot resolve task host {h:?}; its tasks are left out");
            }
            self.cache.insert(h, (ip, now));
        }
    }

    fn get(&self, host: &str) -> Option<IpAddr> {
        self.cache.get(host).and_then(|(ip, _)| *ip)
    }
}

struct Marathon {
    client: reqwest::Client,
    urls: Vec<String>,
    current: usize,
}

impl Marathon {
    fn url(&self, i: usize) -> &str {
        let n = self.urls.len().max(1);
        self.urls
            .get((self.current + i) % n)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// `GET /v2/apps?embed=apps.tasks` on the first Marathon that answers.
    async fn apps(&mut self) -> Result<(Vec<model::App>, Vec<String>), Error> {
        let mut errors = Vec::new();
        for i in 0..self.urls.len() {
            let base = self.url(i).trim_end_matches('/').to_string();
            let res = self
                .client
                .get(format!("{base}/v2/apps?embed=apps.tasks"))
                .header("Accept", "application/json")
                .timeout(Duration::from_secs(46))
                .send()
                .await;
            let body = match res {
                Ok(r) if r.status().is_success() => r.bytes().await,
                Ok(r) => {
                    errors.push(format!("{base}: HTTP {}", r.status()));
                    continue;
                }
                Err(e) => {
                    errors.push(format!("{base}: {e}"));
                    continue;
                }
            };
            match body {
                Ok(b) => {
                    self.current = (self.current + i) % self.urls.len().max(1);
                    return model::parse_apps(&b)
                        .map_err(|e| Error::Marathon(format!("{base}: {e}")));
                }
                Err(e) => errors.push(format!("{base}: {e}")),
            }
        }
        Err(Error::Marathon(format!(
            "no Marathon answered /v2/apps: {}",
            errors.join("; ")
        )))
    }
}

/// Follows `/v2/events` forever, notifying `trigger` on every event and on every (re)connect.
async fn follow_events(
    client: reqwest::Client,
    urls: Vec<String>,
    idle: Duration,
    max_backoff: Duration,
    trigger: Arc<Notify>,
    events: Arc<std::sync::atomic::AtomicU64>,
) {
    let query: String = EVENT_TYPES
        .iter()
        .map(|t| format!("&event_type={t}"))
        .collect();
    let mut backoff = Duration::from_millis(500);
    let mut idx = 0usize;
    loop {
        let base = urls
            .get(idx % urls.len().max(1))
            .cloned()
            .unwrap_or_default();
        let url = format!(
            "{}/v2/events?plan-format=light{query}",
            base.trim_end_matches('/')
        );
        let started = Instant::now();
        match client
            .get(&url)
            .header("Accept", "text/event-stream")
            .send()
            .await
        {
            Ok(resp) if resp.status().is_success() => {
                tracing::info!("following {url}");
                trigger.notify_one();
                let mut stream = resp.bytes_stream();
                let mut line = Vec::new();
                loop {
                    match tokio::time::timeout(idle, stream.next()).await {
                        Err(_) => {
                            tracing::warn!(
                                "no byte on the event stream for {idle:?}; reconnecting"
                            );
                            break;
                        }
                        Ok(None) => {
                            tracing::warn!("the event stream ended; reconnecting");
                            break;
                        }
                        Ok(Some(Err(e))) => {
                            tracing::warn!("event stream error: {e}; reconnecting");
                            break;
                        }
                        Ok(Some(Ok(chunk))) => {
                            for b in chunk.iter() {
                                if *b == b'\n' {
                                    if line.starts_with(b"data:") {
                                        events.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                        trigger.notify_one();
                                    }
                                    line.clear();
                                } else if line.len() < 64 {
                                    // Only the line's start matters.
                                    line.push(*b);
                                }
                            }
                        }
                    }
                }
                if started.elapsed() > Duration::from_secs(600) {
                    backoff = Duration::from_millis(500);
                }
            }
            Ok(resp) => {
                tracing::warn!("{url}: HTTP {}", resp.status());
                idx += 1;
            }
            Err(e) => {
                tracing::warn!("{url}: {e}");
                idx += 1;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff.mul_f64(1.5)).min(max_backoff);
    }
}

async fn run(
    cfg: EdgeLbConfig,
    opts: Options,
    mut haproxy: Haproxy,
    status: watch::Sender<Status>,
    trigger: Arc<Notify>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Result<(), Error> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(3050))
        .user_agent("dcos-edgelb")
        .build()
        .map_err(|e| Error::Marathon(format!("HTTP client: {e}")))?;
    let events = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let follower = tokio::spawn(follow_events(
        client.clone(),
        cfg.marathon.clone(),
        cfg.idle_timeout,
        cfg.max_backoff,
        trigger.clone(),
        events.clone(),
    ));
    let mut marathon = Marathon {
        client,
        urls: cfg.marathon.clone(),
        current: 0,
    };
    let mut resolver = Resolver::default();
    let mut alive: HashSet<String> = HashSet::new();
    let mut last_warnings: Vec<String> = Vec::new();
    let result = loop {
        tokio::select! {
            _ = &mut stop => break Ok(()),
            _ = trigger.notified() => {}
            _ = tokio::time::sleep(cfg.resync) => {}
        }
        // Debounce: let the rest of a burst arrive, then regenerate once.
        let quiet = tokio::select! {
            _ = &mut stop => break Ok(()),
            _ = tokio::time::sleep(cfg.debounce) => true,
        };
        debug_assert!(quiet);
        let fetched = marathon.apps().await;
        let mut st = status.borrow().clone();
        st.events = events.load(std::sync::atomic::Ordering::Relaxed);
        match fetched {
            Err(e) => {
                tracing::warn!("{e}; keeping the running configuration");
                st.last_error = Some(e.to_string());
                // Try again after the debounce/backoff rather than waiting for an event.
                trigger.notify_one();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Ok((apps, parse_warnings)) => {
                let hosts: HashSet<String> = apps
                    .iter()
                    .flat_map(|a| a.tasks.iter().map(|t| t.host.clone()))
                    .filter(|h| !h.is_empty())
                    .collect();
                resolver.refresh(hosts).await;
                let generated =
                    config::generate(&apps, &opts, &|h| resolver.get(h), &|id| alive.contains(id));
                // Remember alive tasks (still present) for Marathon restarts with no results.
                let present: HashSet<&str> = apps
                    .iter()
                    .flat_map(|a| a.tasks.iter())
                    .filter(|t| t.health.is_empty())
                    .map(|t| t.id.as_str())
                    .collect();
                alive.retain(|id| present.contains(id.as_str()));
                alive.extend(config::alive_task_ids(&apps));
                let mut warnings = parse_warnings;
                warnings.extend(generated.warnings.iter().map(|w| w.to_string()));
                if warnings != last_warnings {
                    for w in &warnings {
                        tracing::warn!("{w}");
                    }
                    last_warnings = warnings.clone();
                }
                st.generations += 1;
                st.warnings = warnings;
                match haproxy.apply(&generated.text).await {
                    Ok(Applied::Unchanged) => st.last_error = None,
                    Ok(Applied::Reloaded) => {
                        tracing::info!(
                            "haproxy reloaded: {} backends, {} servers",
                            generated.backends,
                            generated.servers
                        );
                        st.reloads += 1;
                        st.backends = generated.backends;
                        st.servers = generated.servers;
                        st.last_error = None;
                    }
                    Err(e) => {
                        tracing::error!(
                            "new configuration not applied, the last good one keeps running: {e}"
                        );
                        st.rejected += 1;
                        st.last_error = Some(e.to_string());
                    }
                }
                st.running_config = haproxy.running_config().to_string();
            }
        }
        status.send_replace(st);
    };
    follower.abort();
    haproxy.stop().await;
    result
}
