//! The agent: task lifecycle, status updates, checkpointing, registration.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use dcos_types::protocol::{
    AgentTask, Heartbeat, HeartbeatResponse, LaunchTasks, RegisterAgent, Registered, StatusUpdate,
    PATH_HEARTBEAT, PATH_REGISTER, PATH_STATUS,
};
use dcos_types::{
    now_secs, AgentId, AgentInfo, AttributeValue, FrameworkId, PortRange, Resources, TaskId,
    TaskInfo, TaskState, TaskStatus, ROLE_ANY, ROLE_PUBLIC,
};
use serde::{Deserialize, Serialize};

use crate::cgroups::{Cgroups, TaskCgroup};
use crate::orphans::{self, ENV_RUN_ID, ENV_WORK_DIR};
use crate::{fetcher, health};

/// DC/OS's default agent port resources.
pub const DEFAULT_PORTS: &str = "[1025-2180,2182-3887,3889-5049,5052-8079,8082-8180,8182-32000]";
/// DC/OS's default public agent port resources.
pub const DEFAULT_PUBLIC_PORTS: &str = "[1-21,23-5050,5052-32000]";
const COMPLETED_LIMIT: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// cgroups when the host allows, else a warning.
    Auto,
    /// No isolation.
    None,
}

/// How often a health check probes a task that has not been healthy yet, within its grace
/// period: from the first to the last value, doubling after each failed probe (a service that
/// is up in 60 ms is seen healthy then; one that takes seconds costs 5 probes a second).
const STARTUP_PROBE_FIRST: Duration = Duration::from_millis(25);
const STARTUP_PROBE_INTERVAL: Duration = Duration::from_millis(200);

/// Orphans found at start get SIGTERM, then SIGKILL after this.
const ORPHAN_GRACE: Duration = Duration::from_secs(2);
/// Docker labels on every container the agent runs.
pub const LABEL_WORK_DIR: &str = "dcos.agent.work_dir";
pub const LABEL_AGENT_ID: &str = "dcos.agent.id";
pub const LABEL_RUN_ID: &str = "dcos.agent.run_id";
/// Striped locks that order the checkpoint writes of a task.
const CHECKPOINT_STRIPES: usize = 64;

#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub work_dir: PathBuf,
    /// The master's base URL, `http://host:5050`.
    pub master_url: String,
    /// Advertised host name or IP (the master and the CLI reach the agent there).
    pub hostname: String,
    /// Advertised HTTP port.
    pub port: u16,
    /// Resources to offer; `None` detects cpus, mem and disk and uses the DC/OS port ranges.
    pub resources: Option<Resources>,
    pub attributes: BTreeMap<String, AttributeValue>,
    /// A public agent: every resource is reserved for `slave_public`.
    pub public: bool,
    pub isolation: Isolation,
    /// pids limit per task (cgroups).
    pub pids_max: Option<u64>,
    /// Unacknowledged status updates are resent this often.
    pub status_retry_interval: Duration,
    /// Registration is retried this often while the master is unreachable.
    pub register_retry_interval: Duration,
    /// The docker CLI.
    pub docker: String,
    /// Sent as [`dcos_types::INTERNAL_TOKEN_HEADER`] on every request to the master (and only
    /// there: never to fetched URIs or health-checked tasks).
    pub internal_token: Option<String>,
    /// fsync checkpoints (file and directory). `false` only for throwaway work dirs.
    pub fsync: bool,
}

impl AgentConfig {
    pub fn new(work_dir: impl Into<PathBuf>, master_url: impl Into<String>) -> AgentConfig {
        AgentConfig {
            work_dir: work_dir.into(),
            master_url: master_url.into(),
            hostname: "127.0.0.1".into(),
            port: 5051,
            resources: None,
            attributes: BTreeMap::new(),
            public: false,
            isolation: Isolation::Auto,
            pids_max: Some(4096),
            status_retry_interval: Duration::from_secs(3),
            register_retry_interval: Duration::from_secs(1),
            docker: "docker".into(),
            internal_token: None,
            fsync: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("agent work dir {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid agent configuration: {0}")]
    Config(String),
}

fn io_err(path: &Path, source: std::io::Error) -> AgentError {
    AgentError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What is checkpointed per task in `meta/tasks/<id>.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    pub info: TaskInfo,
    pub framework_id: FrameworkId,
    #[serde(default)]
    pub framework_name: String,
    pub sandbox: PathBuf,
    #[serde(default)]
    pub pid: Option<i32>,
    /// Start time of the process (`/proc/<pid>/stat` field 22), against pid reuse.
    #[serde(default)]
    pub start_ticks: Option<u64>,
    pub state: TaskState,
    pub latest: TaskStatus,
    /// Updates not yet acknowledged, oldest first.
    #[serde(default)]
    pub pending: VecDeque<TaskStatus>,
    #[serde(default)]
    pub killing: bool,
    #[serde(default)]
    pub docker_name: Option<String>,
    #[serde(default)]
    pub started: f64,
    /// The last health check result.
    #[serde(default)]
    pub healthy: Option<bool>,
}

pub(crate) struct AgentState {
    pub tasks: HashMap<TaskId, Checkpoint>,
    pub completed: VecDeque<Checkpoint>,
    pub cgroups: HashMap<TaskId, TaskCgroup>,
    pub master_id: Option<String>,
    pub registered: bool,
    /// Tasks whose last checkpoint write failed (retried with the status updates).
    pub dirty: HashSet<TaskId>,
}

pub(crate) struct Inner {
    pub config: AgentConfig,
    pub id: AgentId,
    pub info: AgentInfo,
    /// For fetching and health checks: carries no credential.
    pub client: reqwest::Client,
    /// For the master: carries the internal token.
    pub master_client: reqwest::Client,
    /// The canonical work dir: the value of [`ENV_WORK_DIR`] on task processes.
    pub marker_dir: PathBuf,
    /// Prefix of this agent's task cgroup names (a hash of `marker_dir`).
    pub cgroup_prefix: String,
    pub checkpoint_locks: Vec<Mutex<()>>,
    pub cgroups: Option<Cgroups>,
    pub state: Mutex<AgentState>,
    pub stopped: AtomicBool,
    pub start_time: f64,
    /// Bounds concurrent fork/execs (hundreds at once only contend on the kernel).
    pub spawn_gate: tokio::sync::Semaphore,
}

/// An agent. Cheap to clone. Dropping every clone (or [`Agent::shutdown`]) stops its loops;
/// tasks keep running (they are checkpointed and re-attached by the next agent).
#[derive(Clone)]
pub struct Agent {
    pub(crate) inner: Arc<Inner>,
}

fn key_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() || out == "." || out == ".." {
        out = format!("%2E{out}");
    }
    out
}

/// Replaces `path` atomically and durably: a tmp file beside it ([`tmp_name`]) is written (mode 0600), fsynced and
/// renamed over `path`, then the directory is fsynced. On any error the tmp file is removed
/// and `path` is as it was (or, if only the directory fsync failed, not known durable).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], fsync: bool) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other(format!("{} has no parent", path.display())))?;
    let tmp = dir.join(tmp_name(path));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if fsync {
            f.sync_all()?;
        }
        drop(f);
        fs::rename(&tmp, path)?;
        if fsync {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `x.json` → `x.tmp` (no longer than the checkpoint's name, which `dcos_types::ids` sizes
/// task ids for); any other name gets `.tmp` appended.
fn tmp_name(path: &Path) -> std::ffi::OsString {
    let name = path.file_name().unwrap_or_default();
    match name.to_str().and_then(|n| n.strip_suffix(".json")) {
        Some(stem) => format!("{stem}.tmp").into(),
        None => {
            let mut n = name.to_os_string();
            n.push(".tmp");
            n
        }
    }
}

/// Removes `*.tmp` leftovers (writes cut short by a crash) in `dir`; returns how many.
fn clean_tmp(dir: &Path) -> usize {
    let Ok(rd) = fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".tmp")))
        .filter(|e| fs::remove_file(e.path()).is_ok())
        .count()
}

/// The id of a task's run: the last segment of its sandbox (a uuid).
pub(crate) fn run_id(cp: &Checkpoint) -> String {
    cp.sandbox
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Field 22 of `/proc/<pid>/stat` and whether the process is a zombie.
fn proc_start(pid: i32) -> Option<(u64, bool)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, *state == "Z"))
}

fn detect_resources(work_dir: &Path) -> Resources {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get() as f64)
        .unwrap_or(1.0);
    let mem_total_mb = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(1024.0);
    // Mesos leaves 1 GB (or half when small) to the system.
    let mem = if mem_total_mb > 2048.0 {
        mem_total_mb - 1024.0
    } else {
        mem_total_mb / 2.0
    };
    let disk = disk_free_mb(work_dir).unwrap_or(10_000.0);
    Resources::new(cpus, mem.floor(), disk.floor())
}

fn disk_free_mb(dir: &Path) -> Option<f64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs writes into a zeroed struct we own; `c` is a valid C string.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut s) != 0 {
            return None;
        }
        Some((s.f_bavail as f64) * (s.f_frsize as f64) / 1024.0 / 1024.0)
    }
}

impl Agent {
    /// Starts the agent: recovers checkpointed tasks (re-attaching to live processes), then
    /// registers with the master and heartbeats. Call inside a tokio runtime.
    pub fn start(config: AgentConfig) -> Result<Agent, AgentError> {
        let meta = config.work_dir.join("meta");
        fs::create_dir_all(meta.join("tasks")).map_err(|e| io_err(&meta, e))?;
        let marker_dir =
            fs::canonicalize(&config.work_dir).map_err(|e| io_err(&config.work_dir, e))?;
        let cleaned = clean_tmp(&meta) + clean_tmp(&meta.join("tasks"));
        if cleaned > 0 {
            tracing::warn!(
                cleaned,
                dir = %meta.display(),
                "removed leftover *.tmp checkpoint files (writes cut short by a crash or a full disk)"
            );
        }
        let id_path = meta.join("agent_id");
        let id = match fs::read_to_string(&id_path) {
            Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
            _ => {
                let id = format!("{}-S0", uuid::Uuid::new_v4());
                write_atomic(&id_path, id.as_bytes(), config.fsync)
                    .map_err(|e| io_err(&id_path, e))?;
                id
            }
        };
        let cgroup_prefix = {
            use sha2::Digest;
            let h = sha2::Sha256::digest(marker_dir.as_os_str().as_encoded_bytes());
            let hex = hex::encode(h);
            format!("{}-", hex.get(..12).unwrap_or(&hex))
        };
        let id = AgentId(id);
        let mut res = match &config.resources {
            Some(r) => r.clone(),
            None => detect_resources(&config.work_dir),
        };
        if res.ports.is_empty() && config.resources.is_none() {
            let ports = if config.public {
                DEFAULT_PUBLIC_PORTS
            } else {
                DEFAULT_PORTS
            };
            res.ports = dcos_types::resources::parse_ranges(ports).unwrap_or_default();
        }
        let mut resources = BTreeMap::new();
        let mut attributes = config.attributes.clone();
        if config.public {
            resources.insert(ROLE_PUBLIC.to_string(), res);
            attributes
                .entry("public_ip".into())
                .or_insert(AttributeValue::Text("true".into()));
        } else {
            resources.insert(ROLE_ANY.to_string(), res);
        }
        let info = AgentInfo {
            id: id.clone(),
            hostname: config.hostname.clone(),
            port: config.port,
            resources,
            attributes,
        };
        let cgroups = match config.isolation {
            Isolation::None => None,
            Isolation::Auto => match Cgroups::detect() {
                Ok(c) => {
                    tracing::info!(?c, "cgroups isolation enabled");
                    Some(c)
                }
                Err(why) => {
                    tracing::warn!(
                        "cgroups isolation is OFF: {why}; tasks run without cpu/memory/pids limits"
                    );
                    None
                }
            },
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| AgentError::Config(e.to_string()))?;
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = &config.internal_token {
            let mut v = reqwest::header::HeaderValue::from_str(token).map_err(|_| {
                AgentError::Config("the internal token is not a valid HTTP header value".into())
            })?;
            v.set_sensitive(true);
            headers.insert(dcos_types::INTERNAL_TOKEN_HEADER, v);
        }
        let master_client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .default_headers(headers)
            .build()
            .map_err(|e| AgentError::Config(e.to_string()))?;
        let mut state = AgentState {
            tasks: HashMap::new(),
            completed: VecDeque::new(),
            cgroups: HashMap::new(),
            master_id: None,
            registered: false,
            dirty: HashSet::new(),
        };
        // Recover checkpoints.
        let dir = meta.join("tasks");
        if let Ok(entries) = fs::read_dir(&dir) {
            for e in entries.flatten() {
                let path = e.path();
                if path.extension().and_then(|x| x.to_str()) != Some("json") {
                    continue;
                }
                match fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Checkpoint>(&b).ok())
                {
                    Some(cp) => {
                        state.tasks.insert(cp.info.task_id.clone(), cp);
                    }
                    None => {
                        tracing::warn!(path = %path.display(), "unreadable task checkpoint skipped")
                    }
                }
            }
        }
        let agent = Agent {
            inner: Arc::new(Inner {
                config,
                id,
                info,
                client,
                master_client,
                marker_dir,
                cgroup_prefix,
                checkpoint_locks: (0..CHECKPOINT_STRIPES).map(|_| Mutex::new(())).collect(),
                cgroups,
                state: Mutex::new(state),
                stopped: AtomicBool::new(false),
                start_time: now_secs(),
                spawn_gate: tokio::sync::Semaphore::new(16),
            }),
        };
        agent.recover();
        agent.reattach_cgroups();
        agent.start_reaper();
        agent.spawn_loops();
        Ok(agent)
    }

    pub fn id(&self) -> &AgentId {
        &self.inner.id
    }

    pub fn info(&self) -> &AgentInfo {
        &self.inner.info
    }

    pub fn config(&self) -> &AgentConfig {
        &self.inner.config
    }

    /// Whether the agent is registered with a master right now.
    pub fn is_registered(&self) -> bool {
        self.lock().registered
    }

    /// Stops the loops. Running tasks are left running (checkpointed).
    pub fn shutdown(&self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, AgentState> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::SeqCst)
    }

    fn checkpoint_path(&self, id: &TaskId) -> PathBuf {
        self.inner
            .config
            .work_dir
            .join("meta")
            .join("tasks")
            .join(format!("{}.json", key_segment(id.as_str())))
    }

    /// The lock that orders the checkpoint writes (and the removal) of a task.
    fn checkpoint_lock(&self, id: &TaskId) -> MutexGuard<'_, ()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        // CHECKPOINT_STRIPES locks exist.
        self.inner.checkpoint_locks[(h.finish() as usize) % CHECKPOINT_STRIPES]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the task's current state durably (see [`write_atomic`]). A task that is gone
    /// (acknowledged terminal) is not written. On failure the task is marked dirty and the
    /// write is retried with the status updates; the caller decides whether it may act.
    pub(crate) fn persist(&self, id: &TaskId) -> std::io::Result<()> {
        if self.stopped() {
            // The next agent owns the work dir.
            return Err(std::io::Error::other("the agent is stopped"));
        }
        let _order = self.checkpoint_lock(id);
        let Some(cp) = self.lock().tasks.get(id).cloned() else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(&cp).map_err(std::io::Error::other)?;
        let path = self.checkpoint_path(id);
        let fsync = self.inner.config.fsync;
        let result = match write_atomic(&path, &bytes, fsync) {
            // `meta/tasks` was removed under a running agent: make it again.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && self.inner.config.work_dir.is_dir() =>
            {
                let dir = self.inner.config.work_dir.join("meta").join("tasks");
                fs::create_dir_all(&dir).and_then(|_| write_atomic(&path, &bytes, fsync))
            }
            r => r,
        };
        let mut st = self.lock();
        match &result {
            Ok(()) => {
                st.dirty.remove(id);
            }
            Err(_) if st.tasks.contains_key(id) => {
                st.dirty.insert(id.clone());
            }
            Err(_) => {}
        }
        result
    }

    /// [`Agent::persist`] off the async workers.
    async fn persist_blocking(&self, id: &TaskId) -> std::io::Result<()> {
        let agent = self.clone();
        let id = id.clone();
        tokio::task::spawn_blocking(move || agent.persist(&id))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }

    /// Retries the checkpoints that failed.
    fn persist_dirty(&self) {
        let ids: Vec<TaskId> = self.lock().dirty.iter().cloned().collect();
        for id in ids {
            match self.persist(&id) {
                Ok(()) => tracing::info!(task = %id, "task checkpoint written after a failure"),
                Err(e) => tracing::debug!(task = %id, error = %e, "task checkpoint still failing"),
            }
        }
    }

    /// Run ids of the tasks that may have processes (not terminal).
    fn live_runs(&self) -> HashSet<String> {
        self.lock()
            .tasks
            .values()
            .filter(|c| !c.state.is_terminal())
            .map(run_id)
            .collect()
    }

    /// Task cgroup names of this agent whose run is not in `keep`.
    fn orphan_cgroups(&self, keep: &HashSet<String>) -> Vec<String> {
        let Some(cg) = &self.inner.cgroups else {
            return Vec::new();
        };
        let prefix = &self.inner.cgroup_prefix;
        cg.names(prefix)
            .into_iter()
            .filter(|n| {
                n.strip_prefix(prefix.as_str())
                    .is_some_and(|r| !keep.contains(r))
            })
            .collect()
    }

    fn find_orphans(
        &self,
        keep: &HashSet<String>,
        leaders: &mut HashSet<i32>,
    ) -> Vec<orphans::Proc> {
        let cg_pids: Vec<i32> = match &self.inner.cgroups {
            Some(cg) => self
                .orphan_cgroups(keep)
                .iter()
                .filter_map(|n| cg.open(n))
                .flat_map(|t| t.pids())
                .collect(),
            None => Vec::new(),
        };
        orphans::find(&self.inner.marker_dir, keep, &cg_pids, leaders)
    }

    fn remove_orphan_cgroups(&self, keep: &HashSet<String>) {
        if let Some(cg) = &self.inner.cgroups {
            for n in self.orphan_cgroups(keep) {
                if let Some(t) = cg.open(&n) {
                    t.remove();
                }
            }
        }
    }

    /// Re-attached tasks get their cgroups back (removed when they end).
    fn reattach_cgroups(&self) {
        let Some(cg) = &self.inner.cgroups else {
            return;
        };
        let mut st = self.lock();
        let live: Vec<(TaskId, String)> = st
            .tasks
            .values()
            .filter(|c| !c.state.is_terminal())
            .map(|c| (c.info.task_id.clone(), run_id(c)))
            .collect();
        for (id, run) in live {
            if let Some(t) = cg.open(&format!("{}{run}", self.inner.cgroup_prefix)) {
                st.cgroups.insert(id, t);
            }
        }
    }

    /// Ends every process (and Docker container) of this agent that no live task owns:
    /// SIGTERM now, SIGKILL after [`ORPHAN_GRACE`]. See [`crate::orphans`].
    fn start_reaper(&self) {
        self.spawn_docker_reaper();
        let keep = self.live_runs();
        let mut leaders = HashSet::new();
        let found = self.find_orphans(&keep, &mut leaders);
        if found.is_empty() {
            self.remove_orphan_cgroups(&keep);
            return;
        }
        let pids: Vec<i32> = found.iter().map(|p| p.pid).collect();
        let runs: HashSet<&str> = found.iter().filter_map(|p| p.run_id.as_deref()).collect();
        tracing::warn!(
            work_dir = %self.inner.marker_dir.display(),
            count = found.len(),
            ?pids,
            ?runs,
            "killing processes of this agent that no task owns (left by an earlier run of the agent)"
        );
        orphans::signal(&found, libc::SIGTERM);
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move { reap_orphans(weak, leaders).await });
    }

    /// Removes the Docker containers labelled with this agent's work dir that no live task
    /// owns (in the background: the docker CLI may be slow or absent).
    fn spawn_docker_reaper(&self) {
        let weak = Arc::downgrade(&self.inner);
        let bin = self.inner.config.docker.clone();
        let label = format!("label={LABEL_WORK_DIR}={}", self.inner.marker_dir.display());
        tokio::spawn(async move {
            let ps = tokio::process::Command::new(&bin)
                .args(["ps", "-a", "--filter", &label, "--format", "{{.Names}}"])
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output();
            let out = match tokio::time::timeout(Duration::from_secs(30), ps).await {
                Ok(Ok(out)) if out.status.success() => out,
                Ok(Ok(out)) => {
                    tracing::debug!(stderr = %String::from_utf8_lossy(&out.stderr), "docker ps failed; containers not checked");
                    return;
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "no docker CLI; containers not checked");
                    return;
                }
                Err(_) => {
                    tracing::warn!("docker ps timed out; containers not checked for orphans");
                    return;
                }
            };
            let Some(inner) = weak.upgrade() else { return };
            let live: HashSet<String> = inner
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .tasks
                .values()
                .filter(|c| !c.state.is_terminal())
                .filter_map(|c| c.docker_name.clone())
                .collect();
            drop(inner);
            for name in String::from_utf8_lossy(&out.stdout).lines() {
                let name = name.trim();
                if name.is_empty() || live.contains(name) {
                    continue;
                }
                tracing::warn!(
                    container = name,
                    "removing a Docker container of this agent that no task owns"
                );
                docker_remove(&bin, name).await;
            }
        });
    }

    /// Re-attaches to checkpointed processes that are still alive.
    fn recover(&self) {
        let ids: Vec<TaskId> = self.lock().tasks.keys().cloned().collect();
        for id in ids {
            let (pid, ticks, terminal) = {
                let st = self.lock();
                let Some(cp) = st.tasks.get(&id) else {
                    continue;
                };
                (cp.pid, cp.start_ticks, cp.state.is_terminal())
            };
            if terminal {
                continue;
            }
            let alive = match pid {
                Some(pid) => match proc_start(pid) {
                    Some((start, zombie)) => !zombie && ticks.is_none_or(|t| t == start),
                    None => false,
                },
                None => false,
            };
            if alive {
                tracing::info!(task = %id, pid = ?pid, "re-attached to running task");
                let agent = self.clone();
                let pid = pid.unwrap_or(0);
                tokio::spawn(async move { agent.watch_reattached(id, pid).await });
            } else if pid.is_none() {
                // Its process (or container) may have been started before the agent could
                // checkpoint it: the reaper ends it (it belongs to no live task).
                self.finish(
                    &id,
                    TaskState::Failed,
                    "REASON_AGENT_RESTARTED",
                    "The agent restarted before the task was started".into(),
                );
            } else {
                let (state, reason, msg) = if self.lock().tasks.get(&id).is_some_and(|c| c.killing)
                {
                    (
                        TaskState::Killed,
                        "REASON_TASK_KILLED",
                        "Task was killed".to_string(),
                    )
                } else {
                    (
                        TaskState::Failed,
                        "REASON_EXECUTOR_TERMINATED",
                        "The task's process ended while the agent was down (exit status unknown)"
                            .to_string(),
                    )
                };
                self.finish(&id, state, reason, msg);
            }
        }
    }

    async fn watch_reattached(self, id: TaskId, pid: i32) {
        let started = self.lock().tasks.get(&id).map(|c| c.info.clone());
        if let Some(info) = started {
            if let Some(hc) = info.health_check.clone() {
                let agent = self.clone();
                let id2 = id.clone();
                tokio::spawn(async move { agent.run_health(id2, hc).await });
            }
        }
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            // Reap it if it is our child (same process after an in-process restart).
            let mut status: libc::c_int = 0;
            // SAFETY: plain waitpid on a pid with WNOHANG.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            let exit = if r == pid {
                Some(Some(std::process::ExitStatus::from_raw(status)))
            } else {
                match proc_start(pid) {
                    Some((_, false)) => None,
                    _ => Some(None),
                }
            };
            if let Some(exit) = exit {
                self.process_exited(&id, exit, String::new());
                return;
            }
            if self.stopped() {
                return;
            }
        }
    }

    fn spawn_loops(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move { registration_loop(weak).await });
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move { retry_loop(weak).await });
    }

    fn registration(&self) -> RegisterAgent {
        let st = self.lock();
        let tasks = st
            .tasks
            .values()
            .map(|cp| AgentTask {
                info: cp.info.clone(),
                status: cp.latest.clone(),
            })
            .collect();
        RegisterAgent {
            agent: self.inner.info.clone(),
            tasks,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    async fn register(&self) -> Result<Registered, String> {
        let url = format!(
            "{}{}",
            self.inner.config.master_url.trim_end_matches('/'),
            PATH_REGISTER
        );
        let msg = self.registration();
        let resp = self
            .inner
            .master_client
            .post(&url)
            .json(&msg)
            .send()
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        if !resp.status().is_success() {
            let s = resp.status();
            return Err(format!(
                "POST {url}: {s}: {}",
                resp.text().await.unwrap_or_default()
            ));
        }
        let r: Registered = resp.json().await.map_err(|e| e.to_string())?;
        {
            let mut st = self.lock();
            st.master_id = Some(r.master_id.clone());
            st.registered = true;
        }
        // Resend what is pending right away.
        self.resend_pending();
        Ok(r)
    }

    async fn heartbeat(&self) -> Result<HeartbeatResponse, String> {
        let url = format!(
            "{}{}",
            self.inner.config.master_url.trim_end_matches('/'),
            PATH_HEARTBEAT
        );
        let resp = self
            .inner
            .master_client
            .post(&url)
            .json(&Heartbeat {
                agent_id: self.inner.id.clone(),
            })
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("heartbeat: {}", resp.status()));
        }
        resp.json().await.map_err(|e| e.to_string())
    }

    fn resend_pending(&self) {
        let heads: Vec<TaskStatus> = {
            let st = self.lock();
            st.tasks
                .values()
                .filter_map(|c| c.pending.front().cloned())
                .collect()
        };
        for s in heads {
            self.send_update(s);
        }
    }

    fn send_update(&self, status: TaskStatus) {
        if !self.lock().registered {
            return;
        }
        let url = format!(
            "{}{}",
            self.inner.config.master_url.trim_end_matches('/'),
            PATH_STATUS
        );
        let client = self.inner.master_client.clone();
        tokio::spawn(async move {
            let r = client
                .post(&url)
                .json(&StatusUpdate { status })
                .send()
                .await;
            if let Err(e) = r {
                tracing::debug!(error = %e, "status update not delivered; will retry");
            }
        });
    }

    /// Records a new status for a task, checkpoints it and sends it (if it is the oldest
    /// unacknowledged one).
    pub(crate) fn update(
        &self,
        id: &TaskId,
        state: TaskState,
        reason: Option<&str>,
        message: Option<String>,
        healthy: Option<bool>,
    ) {
        if self.stopped() {
            // A stopped agent owns nothing any more: the next agent re-attaches and reports.
            return;
        }
        let Some((status, first)) = self.record(id, state, reason, message, healthy) else {
            return;
        };
        // Durable, then sent (off the async workers: fsync may take milliseconds).
        let agent = self.clone();
        let id = id.clone();
        tokio::spawn(async move {
            agent.persist_then_send(&id, first.then_some(status)).await;
        });
    }

    /// Writes the task's checkpoint, then sends `status`. A failed checkpoint is logged and
    /// retried, and the status is sent anyway: the master must learn what happened.
    async fn persist_then_send(&self, id: &TaskId, status: Option<TaskStatus>) {
        if let Err(e) = self.persist_blocking(id).await {
            if self.stopped() {
                return;
            }
            tracing::error!(task = %id, error = %e, "cannot checkpoint the task's status; will retry");
        }
        if let Some(s) = status {
            self.send_update(s);
        }
    }

    /// Records a new status in memory (neither durable nor sent yet); returns it and whether
    /// it is the oldest unacknowledged one (to be sent now).
    fn record(
        &self,
        id: &TaskId,
        state: TaskState,
        reason: Option<&str>,
        message: Option<String>,
        healthy: Option<bool>,
    ) -> Option<(TaskStatus, bool)> {
        {
            let mut st = self.lock();
            let cp = st.tasks.get_mut(id)?;
            if healthy.is_some() {
                cp.healthy = healthy;
            }
            let healthy = cp.healthy;
            let status = TaskStatus {
                task_id: id.clone(),
                agent_id: self.inner.id.clone(),
                framework_id: Some(cp.framework_id.clone()),
                state,
                message,
                reason: reason.map(String::from),
                source: "SOURCE_EXECUTOR".into(),
                healthy,
                timestamp: now_secs(),
                uuid: uuid::Uuid::new_v4().to_string(),
            };
            cp.state = state;
            cp.latest = status.clone();
            cp.pending.push_back(status.clone());
            let first = cp.pending.len() == 1;
            Some((status, first))
        }
    }

    /// An acknowledgement from the master: drop the update, send the next one.
    pub fn acknowledge(&self, id: &TaskId, uuid: &str) {
        let next;
        let done;
        {
            // Ordered with the task's checkpoint writes: none lands after the removal.
            let _order = self.checkpoint_lock(id);
            let mut st = self.lock();
            let Some(cp) = st.tasks.get_mut(id) else {
                return;
            };
            if cp.pending.front().is_some_and(|s| s.uuid == uuid) {
                cp.pending.pop_front();
            } else if let Some(pos) = cp.pending.iter().position(|s| s.uuid == uuid) {
                cp.pending.remove(pos);
            } else {
                return;
            }
            next = cp.pending.front().cloned();
            done = if cp.pending.is_empty() && cp.state.is_terminal() {
                st.dirty.remove(id);
                st.tasks.remove(id)
            } else {
                None
            };
            drop(st);
            if done.is_some() {
                let _ = fs::remove_file(self.checkpoint_path(id));
            }
        }
        if done.is_none() {
            // The next update is sent once the acknowledgement (and so the next update,
            // recorded before) is durable.
            let agent = self.clone();
            let id = id.clone();
            tokio::spawn(async move { agent.persist_then_send(&id, next).await });
        } else if let Some(s) = next {
            self.send_update(s);
        }
        if let Some(cp) = done {
            let mut st = self.lock();
            st.completed.push_back(cp);
            while st.completed.len() > COMPLETED_LIMIT {
                st.completed.pop_front();
            }
        }
    }

    /// A terminal state: sends it and releases the task's cgroups.
    fn finish(&self, id: &TaskId, state: TaskState, reason: &str, message: String) {
        let already = self
            .lock()
            .tasks
            .get(id)
            .is_none_or(|c| c.state.is_terminal());
        if already {
            return;
        }
        self.update(id, state, Some(reason), Some(message), None);
        if let Some(cg) = self.lock().cgroups.remove(id) {
            cg.remove();
        }
    }

    // ---- launching -------------------------------------------------------------------------

    /// Starts the tasks of a launch message.
    pub fn launch(&self, msg: LaunchTasks) {
        if self.stopped() {
            // Nothing may start that no agent tracks; the master learns of these tasks at
            // the next registration.
            tracing::warn!(
                tasks = msg.tasks.len(),
                "launch ignored: the agent is stopped"
            );
            return;
        }
        for info in msg.tasks {
            let id = info.task_id.clone();
            let sandbox = self
                .inner
                .config
                .work_dir
                .join("slaves")
                .join(key_segment(self.inner.id.as_str()))
                .join("frameworks")
                .join(key_segment(msg.framework_id.as_str()))
                .join("executors")
                .join(key_segment(id.as_str()))
                .join("runs")
                .join(uuid::Uuid::new_v4().to_string());
            {
                let mut st = self.lock();
                if st.tasks.contains_key(&id) {
                    continue;
                }
                let latest = TaskStatus {
                    task_id: id.clone(),
                    agent_id: self.inner.id.clone(),
                    framework_id: Some(msg.framework_id.clone()),
                    state: TaskState::Staging,
                    message: None,
                    reason: None,
                    source: "SOURCE_AGENT".into(),
                    healthy: None,
                    timestamp: now_secs(),
                    uuid: String::new(),
                };
                let cp = Checkpoint {
                    info,
                    framework_id: msg.framework_id.clone(),
                    framework_name: msg.framework_name.clone(),
                    sandbox: sandbox.clone(),
                    pid: None,
                    start_ticks: None,
                    state: TaskState::Staging,
                    latest,
                    pending: VecDeque::new(),
                    killing: false,
                    docker_name: None,
                    started: now_secs(),
                    healthy: None,
                };
                // A Docker task's container name is known (and checkpointed) before it runs.
                let docker_name = docker_of(&cp.info).map(|_| {
                    format!(
                        "mesos-{}-{}",
                        key_segment(self.inner.id.as_str()),
                        key_segment(cp.info.task_id.as_str())
                    )
                });
                let cp = Checkpoint { docker_name, ..cp };
                st.tasks.insert(id.clone(), cp);
            }
            // The task is checkpointed (durably) by run_task before anything runs.
            let agent = self.clone();
            tokio::spawn(async move { agent.run_task(id).await });
        }
    }

    /// A task whose checkpoint could not be written ends TASK_FAILED, naming the cause.
    fn fail_uncheckpointed(&self, id: &TaskId, e: &dyn std::fmt::Display) {
        self.finish(
            id,
            TaskState::Failed,
            "REASON_CONTAINER_LAUNCH_FAILED",
            format!("cannot checkpoint the task: {e}"),
        );
    }

    async fn run_task(self, id: TaskId) {
        // Nothing runs before the task is durable: a task the agent cannot checkpoint
        // would be forgotten by the next agent while its process runs on.
        if let Err(e) = self.persist_blocking(&id).await {
            tracing::error!(task = %id, error = %e, "cannot checkpoint the task; not starting it");
            self.fail_uncheckpointed(&id, &e);
            return;
        }
        let Some(cp) = self.lock().tasks.get(&id).cloned() else {
            return;
        };
        if let Err(e) = fs::create_dir_all(&cp.sandbox) {
            self.finish(
                &id,
                TaskState::Failed,
                "REASON_CONTAINER_LAUNCH_FAILED",
                format!("Failed to create the sandbox {}: {e}", cp.sandbox.display()),
            );
            return;
        }
        let cache = self.inner.config.work_dir.join("cache");
        if let Err(e) = fetcher::fetch_all(
            &self.inner.client,
            &cp.info.command.uris,
            &cp.sandbox,
            &cache,
        )
        .await
        {
            self.finish(
                &id,
                TaskState::Failed,
                "REASON_CONTAINER_LAUNCH_FAILED",
                e.to_string(),
            );
            return;
        }
        if self.lock().tasks.get(&id).is_none_or(|c| c.killing) {
            self.finish(
                &id,
                TaskState::Killed,
                "REASON_TASK_KILLED",
                "Task was killed before it started".into(),
            );
            return;
        }
        let docker = docker_of(&cp.info);
        let env = self.task_env(&cp);
        let result = match docker {
            Some(d) => self.spawn_docker(&cp, &d, &env).await,
            None => {
                // fork/exec blocks; keep it off the async workers.
                let agent = self.clone();
                let cp2 = cp.clone();
                let env2 = env.clone();
                let _permit = self.inner.spawn_gate.acquire().await;
                match tokio::task::spawn_blocking(move || agent.spawn_process(&cp2, &env2)).await {
                    Ok(r) => r,
                    Err(e) => Err(format!("Failed to launch the command: {e}")),
                }
            }
        };
        let child = match result {
            Ok(c) => c,
            Err(msg) => {
                self.finish(
                    &id,
                    TaskState::Failed,
                    "REASON_CONTAINER_LAUNCH_FAILED",
                    msg,
                );
                return;
            }
        };
        let pid = child.id().map(|p| p as i32);
        {
            let mut st = self.lock();
            if let Some(c) = st.tasks.get_mut(&id) {
                c.pid = pid;
                c.start_ticks = pid.and_then(proc_start).map(|(s, _)| s);
            }
        }
        // The pid and TASK_RUNNING in one write. What was started must be durable before it
        // is reported; if it cannot be, it is ended now rather than left for a later agent
        // to find untracked.
        let running = self.record(
            &id,
            TaskState::Running,
            Some("REASON_TASK_STARTED"),
            None,
            None,
        );
        if let Err(e) = self.persist_blocking(&id).await {
            // TASK_RUNNING was never true for anyone: take it back.
            if let Some((status, _)) = &running {
                let mut st = self.lock();
                if let Some(c) = st.tasks.get_mut(&id) {
                    c.pending.retain(|s| s.uuid != status.uuid);
                    c.state = TaskState::Staging;
                }
            }
            tracing::error!(task = %id, ?pid, error = %e, "cannot checkpoint the started task; killing it");
            if let Some(pid) = pid {
                signal_group(pid, libc::SIGKILL);
            }
            if let Some(name) = &cp.docker_name {
                docker_remove(&self.inner.config.docker, name).await;
            }
            let mut child = child;
            let _ = child.wait().await;
            if let Some(pid) = pid {
                end_group(pid).await;
            }
            self.fail_uncheckpointed(&id, &e);
            return;
        }
        if let Some((status, true)) = running {
            self.send_update(status);
        }
        if self.lock().tasks.get(&id).is_some_and(|c| c.killing) {
            // A kill arrived while the process was being started.
            if let Some(pid) = pid {
                signal_group(pid, libc::SIGKILL);
            }
        }
        if let Some(hc) = cp.info.health_check.clone() {
            let agent = self.clone();
            let id2 = id.clone();
            tokio::spawn(async move { agent.run_health(id2, hc).await });
        }
        let mut child = child;
        let exit = child.wait().await.ok();
        // The task is over when its whole process group is, as when Mesos destroys a
        // container: a child the command started (a shell's, say) may still hold the task's
        // ports, and the terminal status frees them for the next launch.
        if let Some(pid) = pid {
            end_group(pid).await;
        }
        let stderr_tail = tail(&cp.sandbox.join("stderr"), 400);
        self.process_exited(&id, exit, stderr_tail);
    }

    fn process_exited(
        &self,
        id: &TaskId,
        exit: Option<std::process::ExitStatus>,
        stderr_tail: String,
    ) {
        let (killing, health_killed) = match self.lock().tasks.get(id) {
            Some(c) => (c.killing, c.healthy == Some(false) && c.killing),
            None => return,
        };
        let detail = if stderr_tail.trim().is_empty() {
            String::new()
        } else {
            format!("; stderr: {}", stderr_tail.trim())
        };
        if killing {
            let msg = if health_killed {
                "Task was killed after failing its health check".to_string()
            } else {
                "Task was killed".to_string()
            };
            let reason = if health_killed {
                "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"
            } else {
                "REASON_TASK_KILLED"
            };
            self.finish(id, TaskState::Killed, reason, msg);
            return;
        }
        match exit {
            Some(s) if s.success() => self.finish(
                id,
                TaskState::Finished,
                "REASON_COMMAND_EXECUTOR_FAILED",
                "Command exited with status 0".into(),
            ),
            Some(s) => {
                let msg = match (s.code(), s.signal()) {
                    (Some(127), _) => format!("Command not found (exit status 127){detail}"),
                    (Some(c), _) => format!("Command exited with status {c}{detail}"),
                    (None, Some(sig)) => format!("Command terminated by signal {sig}{detail}"),
                    _ => format!("Command ended abnormally{detail}"),
                };
                self.finish(id, TaskState::Failed, "REASON_COMMAND_EXECUTOR_FAILED", msg)
            }
            None => self.finish(
                id,
                TaskState::Failed,
                "REASON_EXECUTOR_TERMINATED",
                "The task's process ended (exit status unknown)".into(),
            ),
        }
    }

    fn task_env(&self, cp: &Checkpoint) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert(
            "PATH".to_string(),
            std::env::var("PATH").unwrap_or_else(|_| {
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
            }),
        );
        for k in ["LANG", "LC_ALL", "TZ"] {
            if let Ok(v) = std::env::var(k) {
                env.insert(k.to_string(), v);
            }
        }
        env.insert("HOME".into(), cp.sandbox.display().to_string());
        let ports: Vec<u16> = cp
            .info
            .resources
            .ports
            .iter()
            .flat_map(|r: &PortRange| r.begin..=r.end)
            .collect();
        if !ports.is_empty() {
            env.insert(
                "PORTS".into(),
                ports
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            );
            for (i, p) in ports.iter().enumerate() {
                env.insert(format!("PORT{i}"), p.to_string());
            }
            if let Some(p) = ports.first() {
                env.insert("PORT".into(), p.to_string());
            }
        }
        env.insert("HOST".into(), self.inner.config.hostname.clone());
        env.insert("LIBPROCESS_IP".into(), self.inner.config.hostname.clone());
        env.insert("MESOS_TASK_ID".into(), cp.info.task_id.to_string());
        env.insert("MESOS_EXECUTOR_ID".into(), cp.info.task_id.to_string());
        env.insert("MESOS_FRAMEWORK_ID".into(), cp.framework_id.to_string());
        env.insert("MESOS_AGENT_ID".into(), self.inner.id.to_string());
        env.insert("MESOS_SLAVE_ID".into(), self.inner.id.to_string());
        env.insert("MESOS_SANDBOX".into(), cp.sandbox.display().to_string());
        env.insert("MESOS_DIRECTORY".into(), cp.sandbox.display().to_string());
        // What the framework set (Marathon: MARATHON_APP_ID, app env, PORT_<NAME>…) wins.
        for (k, v) in &cp.info.command.environment {
            env.insert(k.clone(), v.clone());
        }
        env
    }

    fn open_logs(&self, cp: &Checkpoint) -> Result<(fs::File, fs::File), String> {
        let open = |name: &str| {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(cp.sandbox.join(name))
                .map_err(|e| format!("Failed to open {name} in the sandbox: {e}"))
        };
        Ok((open("stdout")?, open("stderr")?))
    }

    fn spawn_process(
        &self,
        cp: &Checkpoint,
        env: &BTreeMap<String, String>,
    ) -> Result<tokio::process::Child, String> {
        let cmd_info = &cp.info.command;
        let value = cmd_info.value.clone().unwrap_or_default();
        let mut cmd = if cmd_info.shell {
            if value.trim().is_empty() {
                return Err("Task has no command".into());
            }
            let mut c = tokio::process::Command::new("/bin/sh");
            c.arg("-c").arg(&value);
            c
        } else {
            let program = if value.is_empty() {
                cmd_info.arguments.first().cloned().unwrap_or_default()
            } else {
                value.clone()
            };
            if program.is_empty() {
                return Err("Task has no command".into());
            }
            let mut c = tokio::process::Command::new(&program);
            let args = if value.is_empty() {
                cmd_info
                    .arguments
                    .iter()
                    .skip(1)
                    .cloned()
                    .collect::<Vec<_>>()
            } else {
                cmd_info.arguments.clone()
            };
            c.args(args);
            c
        };
        let (out, err) = self.open_logs(cp)?;
        cmd.env_clear()
            .envs(env)
            // After the framework's variables: the markers cannot be overridden.
            .env(ENV_WORK_DIR, &self.inner.marker_dir)
            .env(ENV_RUN_ID, run_id(cp))
            .current_dir(&cp.sandbox)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(false);
        let cgroup = match &self.inner.cgroups {
            // Named after the agent's work dir and the run: found again by the next agent.
            Some(cg) => match cg.create(
                &format!("{}{}", self.inner.cgroup_prefix, run_id(cp)),
                &cp.info.resources,
                self.inner.config.pids_max,
            ) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(task = %cp.info.task_id, error = %e, "cannot create the task's cgroups; running it without limits");
                    None
                }
            },
            None => None,
        };
        let procs = cgroup
            .as_ref()
            .map(|c| c.procs_cstrings())
            .unwrap_or_default();
        // SAFETY: the hook only calls async-signal-safe functions (setsid, open, write, close).
        unsafe {
            cmd.pre_exec(move || {
                libc::setsid();
                crate::cgroups::join_in_child(&procs);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!("Failed to launch the command: '{value}' not found")
            } else {
                format!("Failed to launch the command '{value}': {e}")
            }
        })?;
        if let Some(cg) = cgroup {
            self.lock().cgroups.insert(cp.info.task_id.clone(), cg);
        }
        Ok(child)
    }

    async fn spawn_docker(
        &self,
        cp: &Checkpoint,
        docker: &dcos_types::DockerInfo,
        env: &BTreeMap<String, String>,
    ) -> Result<tokio::process::Child, String> {
        let bin = &self.inner.config.docker;
        let image = docker.image.trim();
        if image.is_empty() {
            return Err("Docker image is empty".into());
        }
        let present = !docker.force_pull_image
            && tokio::process::Command::new(bin)
                .args(["image", "inspect", image])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await
                .map(|s| s.success())
                .unwrap_or(false);
        if !present {
            let out = tokio::process::Command::new(bin)
                .args(["pull", image])
                .stdin(Stdio::null())
                .output()
                .await
                .map_err(|e| format!("Failed to pull image '{image}': cannot run {bin}: {e}"))?;
            if !out.status.success() {
                let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
                return Err(format!("Failed to pull image '{image}': {msg}"));
            }
        }
        let name = cp.docker_name.clone().unwrap_or_else(|| {
            format!(
                "mesos-{}-{}",
                key_segment(self.inner.id.as_str()),
                key_segment(cp.info.task_id.as_str())
            )
        });
        let mut args: Vec<String> = vec!["run".into(), "--rm".into(), "--name".into(), name];
        // Labels find the container again when no checkpoint names it.
        for (k, v) in [
            (LABEL_WORK_DIR, self.inner.marker_dir.display().to_string()),
            (LABEL_AGENT_ID, self.inner.id.to_string()),
            (LABEL_RUN_ID, run_id(cp)),
        ] {
            args.push("--label".into());
            args.push(format!("{k}={v}"));
        }
        let net = docker.network.to_ascii_uppercase();
        match net.as_str() {
            "BRIDGE" => {
                args.push("--net=bridge".into());
                for pm in &docker.port_mappings {
                    args.push("-p".into());
                    args.push(format!(
                        "{}:{}/{}",
                        pm.host_port, pm.container_port, pm.protocol
                    ));
                }
            }
            "NONE" => args.push("--net=none".into()),
            _ => args.push("--net=host".into()),
        }
        if docker.privileged {
            args.push("--privileged".into());
        }
        if cp.info.resources.cpus > 0.0 {
            args.push(format!(
                "--cpu-shares={}",
                ((cp.info.resources.cpus * 1024.0) as u64).max(2)
            ));
        }
        if cp.info.resources.mem > 0.0 {
            args.push(format!(
                "--memory={}m",
                cp.info.resources.mem.max(6.0) as u64
            ));
        }
        for (k, v) in env {
            if k == "PATH" || k == "HOME" || k.starts_with("DCOS_AGENT_") {
                continue;
            }
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        args.push("-e".into());
        args.push("MESOS_SANDBOX=/mnt/mesos/sandbox".into());
        args.push("-v".into());
        args.push(format!("{}:/mnt/mesos/sandbox", cp.sandbox.display()));
        if let Some(c) = &cp.info.container {
            for v in &c.volumes {
                if let Some(h) = &v.host_path {
                    let mode = if v.mode.eq_ignore_ascii_case("RO") {
                        ":ro"
                    } else {
                        ""
                    };
                    args.push("-v".into());
                    args.push(format!("{h}:{}{mode}", v.container_path));
                }
            }
        }
        for (k, v) in &docker.parameters {
            args.push(format!("--{k}={v}"));
        }
        args.push(image.to_string());
        let value = cp.info.command.value.clone().unwrap_or_default();
        if cp.info.command.shell && !value.trim().is_empty() {
            args.extend(["/bin/sh".into(), "-c".into(), value]);
        } else {
            if !value.is_empty() {
                args.push(value);
            }
            args.extend(cp.info.command.arguments.iter().cloned());
        }
        let (out, err) = self.open_logs(cp)?;
        let mut cmd = tokio::process::Command::new(bin);
        cmd.args(&args)
            .env(ENV_WORK_DIR, &self.inner.marker_dir)
            .env(ENV_RUN_ID, run_id(cp))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(false);
        // SAFETY: setsid is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        cmd.spawn().map_err(|e| format!("Failed to run {bin}: {e}"))
    }

    // ---- killing ---------------------------------------------------------------------------

    /// SIGTERM to the task's process group, SIGKILL after the grace period.
    pub fn kill(&self, id: &TaskId, grace: Option<f64>) {
        let (pid, grace, docker, already) = {
            let mut st = self.lock();
            let Some(c) = st.tasks.get_mut(id) else {
                return;
            };
            if c.state.is_terminal() {
                return;
            }
            let already = c.killing;
            c.killing = true;
            let grace = grace
                .or(Some(c.info.kill_grace_period_seconds))
                .filter(|g| g.is_finite() && *g >= 0.0)
                .unwrap_or(3.0)
                .min(3600.0);
            (c.pid, grace, c.docker_name.clone(), already)
        };
        if already {
            // Escalate a repeated kill.
            if let Some(pid) = pid {
                signal_group(pid, libc::SIGKILL);
            }
            return;
        }
        let Some(pid) = pid else {
            // Not started yet: run_task sees `killing` and reports TASK_KILLED.
            return;
        };
        self.update(
            id,
            TaskState::Killing,
            Some("REASON_TASK_KILLED"),
            None,
            None,
        );
        if let Some(name) = docker {
            let bin = self.inner.config.docker.clone();
            tokio::spawn(async move {
                let _ = tokio::process::Command::new(&bin)
                    .args(["stop", "--time", &format!("{}", grace.ceil() as u64), &name])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .await;
                signal_group(pid, libc::SIGKILL);
            });
            return;
        }
        signal_group(pid, libc::SIGTERM);
        let agent = self.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs_f64(grace);
            while Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if agent
                    .lock()
                    .tasks
                    .get(&id)
                    .is_none_or(|c| c.state.is_terminal())
                {
                    return;
                }
            }
            signal_group(pid, libc::SIGKILL);
        });
    }

    /// Kills every task of a framework.
    pub fn shutdown_framework(&self, fw: &FrameworkId) {
        let ids: Vec<TaskId> = self
            .lock()
            .tasks
            .values()
            .filter(|c| &c.framework_id == fw)
            .map(|c| c.info.task_id.clone())
            .collect();
        for id in ids {
            self.kill(&id, None);
        }
    }

    // ---- health ----------------------------------------------------------------------------

    async fn run_health(self, id: TaskId, hc: dcos_types::HealthCheck) {
        let secs = |s: f64, d: f64| {
            if s.is_finite() && s >= 0.0 {
                Duration::from_secs_f64(s.min(86400.0))
            } else {
                Duration::from_secs_f64(d)
            }
        };
        let started = Instant::now();
        let grace = secs(hc.grace_period_seconds, 300.0);
        let interval = secs(hc.interval_seconds, 60.0).max(Duration::from_millis(100));
        let timeout = secs(hc.timeout_seconds, 20.0);
        tokio::time::sleep(secs(hc.delay_seconds, 0.0)).await;
        let mut failures = 0u32;
        let mut ever_healthy = false;
        let mut last: Option<bool> = None;
        let mut startup_pause = STARTUP_PROBE_FIRST;
        loop {
            let Some(cp) = self.lock().tasks.get(&id).cloned() else {
                return;
            };
            if cp.state.is_terminal() || cp.killing || self.stopped() {
                return;
            }
            let env = self.task_env(&cp);
            let ok =
                health::check_once(&self.inner.client, &hc.kind, timeout, &env, &cp.sandbox).await;
            if ok {
                failures = 0;
                ever_healthy = true;
                if last != Some(true) {
                    self.update(
                        &id,
                        TaskState::Running,
                        Some("REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"),
                        None,
                        Some(true),
                    );
                }
                last = Some(true);
            } else if ever_healthy || started.elapsed() >= grace {
                failures += 1;
                if last != Some(false) {
                    self.update(
                        &id,
                        TaskState::Running,
                        Some("REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"),
                        Some("Health check failed".into()),
                        Some(false),
                    );
                }
                last = Some(false);
                if hc.max_consecutive_failures > 0 && failures >= hc.max_consecutive_failures {
                    tracing::info!(task = %id, failures, "killing unhealthy task");
                    self.kill(&id, None);
                    return;
                }
            }
            // Until the first success within the grace period, failures count for nothing, so
            // probe more often than `interval`: a service that comes up 50 ms after its first
            // probe is reported healthy then, not a whole interval later. After that (or once
            // the grace period is over) checks run every `interval`, as in Mesos.
            let pause = if !ever_healthy && started.elapsed() < grace {
                let p = interval.min(startup_pause);
                startup_pause = (startup_pause * 2).min(STARTUP_PROBE_INTERVAL);
                p
            } else {
                interval
            };
            tokio::time::sleep(pause).await;
        }
    }

    /// The sandbox of a task (running or recently completed).
    pub fn sandbox_of(&self, task_id: &str) -> Option<PathBuf> {
        let st = self.lock();
        st.tasks
            .get(&TaskId::from(task_id))
            .map(|c| c.sandbox.clone())
            .or_else(|| {
                st.completed
                    .iter()
                    .rev()
                    .find(|c| c.info.task_id.as_str() == task_id)
                    .map(|c| c.sandbox.clone())
            })
    }

    /// The agent's task views for the state endpoint.
    pub(crate) fn snapshot(&self) -> (Vec<Checkpoint>, Vec<Checkpoint>) {
        let st = self.lock();
        (
            st.tasks.values().cloned().collect(),
            st.completed.iter().cloned().collect(),
        )
    }

    pub fn start_time(&self) -> f64 {
        self.inner.start_time
    }
}

/// A task's Docker image: DOCKER, and MESOS with an image (DC/OS's Universal Container
/// Runtime), both run through the Docker Engine here.
fn docker_of(info: &TaskInfo) -> Option<dcos_types::DockerInfo> {
    info.container
        .as_ref()
        .filter(|c| c.kind.eq_ignore_ascii_case("DOCKER") || c.kind.eq_ignore_ascii_case("MESOS"))
        .and_then(|c| c.docker.clone())
        .filter(|d| !d.image.trim().is_empty())
}

/// `docker rm -f <name>` (bounded in time; errors are logged).
async fn docker_remove(bin: &str, name: &str) {
    let rm = tokio::process::Command::new(bin)
        .args(["rm", "-f", name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .status();
    match tokio::time::timeout(Duration::from_secs(30), rm).await {
        Ok(Ok(s)) if s.success() => {}
        Ok(Ok(s)) => tracing::debug!(container = name, status = %s, "docker rm -f failed"),
        Ok(Err(e)) => tracing::warn!(container = name, error = %e, "cannot run docker rm -f"),
        Err(_) => tracing::warn!(container = name, "docker rm -f timed out"),
    }
}

/// Waits for the orphans found at start to end after SIGTERM; SIGKILLs what is left after
/// [`ORPHAN_GRACE`]. Tasks launched meanwhile are live runs, never orphans.
async fn reap_orphans(weak: Weak<Inner>, mut leaders: HashSet<i32>) {
    let term_deadline = Instant::now() + ORPHAN_GRACE;
    let give_up = term_deadline + Duration::from_secs(10);
    let mut killed = false;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Some(inner) = weak.upgrade() else { return };
        let agent = Agent { inner };
        if agent.stopped() {
            return;
        }
        let keep = agent.live_runs();
        let left = agent.find_orphans(&keep, &mut leaders);
        if left.is_empty() {
            agent.remove_orphan_cgroups(&keep);
            tracing::info!(
                work_dir = %agent.inner.marker_dir.display(),
                sigkill = killed,
                "orphan processes of this agent are gone"
            );
            return;
        }
        let now = Instant::now();
        if now >= give_up {
            let pids: Vec<i32> = left.iter().map(|p| p.pid).collect();
            tracing::error!(?pids, "orphan processes of this agent outlived SIGKILL");
            return;
        }
        if now >= term_deadline {
            if !killed {
                let pids: Vec<i32> = left.iter().map(|p| p.pid).collect();
                tracing::warn!(?pids, "orphan processes outlived SIGTERM; sending SIGKILL");
            }
            killed = true;
            orphans::signal(&left, libc::SIGKILL);
        }
    }
}

/// SIGKILLs what is left of a task's process group once its leader has exited, and waits (up
/// to 2 s) until no member is left that is not a zombie.
async fn end_group(pgid: i32) {
    if pgid <= 1 {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let live = group_members(pgid);
        if live == 0 {
            return;
        }
        // SAFETY: kill(2) on the process group we created with setsid.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        if Instant::now() >= deadline {
            tracing::warn!(pgid, live, "processes of an ended task outlived SIGKILL");
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Live (not zombie) processes in a process group, from /proc.
fn group_members(pgid: i32) -> usize {
    let Ok(dir) = fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter(|e| {
            let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
                return false;
            };
            // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                return false;
            };
            let mut f = rest.split_whitespace();
            let state = f.next().unwrap_or("");
            let pgrp = f.nth(1).and_then(|p| p.parse::<i32>().ok());
            pgrp == Some(pgid) && state != "Z" && state != "X"
        })
        .count()
}

fn signal_group(pid: i32, sig: libc::c_int) {
    if pid <= 1 {
        return;
    }
    // SAFETY: kill(2) with a negative pid signals the process group we created with setsid.
    unsafe {
        if libc::kill(-pid, sig) != 0 {
            libc::kill(pid, sig);
        }
    }
}

fn tail(path: &Path, max: usize) -> String {
    let Ok(bytes) = fs::read(path) else {
        return String::new();
    };
    let start = bytes.len().saturating_sub(max);
    String::from_utf8_lossy(bytes.get(start..).unwrap_or(&[])).to_string()
}

async fn registration_loop(weak: Weak<Inner>) {
    let mut registered_with: Option<String> = None;
    let mut hb = Duration::from_secs(1);
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let agent = Agent { inner };
        if agent.stopped() {
            return;
        }
        let retry = agent.inner.config.register_retry_interval;
        if registered_with.is_none() {
            match agent.register().await {
                Ok(r) => {
                    tracing::info!(agent = %agent.inner.id, master = %r.master_id, "registered with the master");
                    registered_with = Some(r.master_id.clone());
                    hb = Duration::from_secs_f64(r.heartbeat_interval_seconds.clamp(0.05, 60.0));
                    drop(agent);
                    tokio::time::sleep(hb).await;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "registration failed; retrying");
                    drop(agent);
                    tokio::time::sleep(retry).await;
                }
            }
            continue;
        }
        match agent.heartbeat().await {
            Ok(r) if !r.reregister && Some(&r.master_id) == registered_with.as_ref() => {}
            Ok(_) => {
                tracing::info!("master asks to re-register");
                registered_with = None;
                agent.lock().registered = false;
                continue;
            }
            Err(e) => {
                tracing::debug!(error = %e, "heartbeat failed");
            }
        }
        drop(agent);
        tokio::time::sleep(hb).await;
    }
}

async fn retry_loop(weak: Weak<Inner>) {
    loop {
        let interval = match weak.upgrade() {
            Some(inner) => inner.config.status_retry_interval,
            None => return,
        };
        tokio::time::sleep(interval).await;
        let Some(inner) = weak.upgrade() else { return };
        let agent = Agent { inner };
        if agent.stopped() {
            return;
        }
        agent.persist_dirty();
        agent.resend_pending();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmp_file_names_are_no_longer_than_the_checkpoint() {
        let id = "a".repeat(dcos_types::ids::MAX_TASK_ID_LEN);
        let path = Path::new("/w/meta/tasks").join(format!("{id}.json"));
        let tmp = tmp_name(&path);
        assert!(tmp.len() <= dcos_types::ids::MAX_FILE_NAME);
        assert_eq!(tmp, std::ffi::OsString::from(format!("{id}.tmp")));
        assert_eq!(tmp_name(Path::new("/w/meta/agent_id")), "agent_id.tmp");
    }

    #[test]
    fn atomic_write_replaces_or_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.json");
        write_atomic(&path, b"one", true).unwrap();
        write_atomic(&path, b"two", true).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        // The tmp file cannot be made (a directory is in the way): the old file stays.
        fs::create_dir(dir.path().join("t.tmp")).unwrap();
        assert!(write_atomic(&path, b"three", true).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"two");
        fs::remove_dir(dir.path().join("t.tmp")).unwrap();
        fs::write(dir.path().join("u.tmp"), b"partial").unwrap();
        assert_eq!(clean_tmp(dir.path()), 1);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("t.json")]);
    }
}
