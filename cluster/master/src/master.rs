//! The master: agent registry, frameworks, offers, tasks; applies allocation plans.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use dcos_store::{Op, Precondition, SharedStore};
use dcos_types::protocol::{
    AckUpdate, HeartbeatResponse, KillTask, LaunchTasks, RegisterAgent, Registered,
    ShutdownFramework,
};
use dcos_types::{
    now_secs, AgentId, AgentInfo, FrameworkId, FrameworkInfo, MasterApi, MasterError, Offer,
    OfferId, Resources, SchedulerCall, SchedulerEvent, Subscription, TaskId, TaskInfo, TaskState,
    TaskStatus, ROLE_ANY,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Notify};

use crate::allocator::{self, AgentSnapshot, FrameworkSnapshot, RolePolicy, Snapshot};
use crate::transport::{AgentTransport, ToAgent};

const KEY_AGENTS: &str = "/mesos/agents/";
const KEY_FRAMEWORKS: &str = "/mesos/frameworks/";
const KEY_TASKS: &str = "/mesos/tasks/";
/// Written only to find out whether the store takes writes again after a failed commit.
const KEY_PROBE: &str = "/mesos/probe";
/// Statuses kept per task (the latest last).
const STATUS_HISTORY: usize = 8;
/// A staging task younger than this is not declared lost when its agent re-registers without
/// it (the launch may still be in flight).
const LAUNCH_IN_FLIGHT: Duration = Duration::from_secs(10);

/// Master settings.
#[derive(Clone)]
pub struct MasterConfig {
    /// Advertised host name or IP (state endpoints, `pid`).
    pub hostname: String,
    /// Advertised HTTP port.
    pub port: u16,
    pub cluster_name: String,
    /// Allocation runs at least this often (and soon after any change).
    pub allocation_interval: Duration,
    /// What agents are told to heartbeat at.
    pub heartbeat_interval: Duration,
    /// Silence after which an agent is unreachable (its tasks TASK_UNREACHABLE).
    pub agent_unreachable_timeout: Duration,
    /// Time unreachable after which an agent is removed (tasks TASK_GONE, AgentLost).
    pub agent_removal_timeout: Duration,
    /// Outstanding offers are rescinded after this long.
    pub offer_timeout: Option<Duration>,
    pub roles: BTreeMap<String, RolePolicy>,
    pub max_completed_tasks: usize,
    pub max_completed_frameworks: usize,
    /// The cluster's internal credential. When set, the master's own HTTP calls (the task log
    /// proxy) send it in [`dcos_types::INTERNAL_TOKEN_HEADER`]; build the agent transport with
    /// [`crate::HttpTransport::with_internal_token`] from the same value.
    pub internal_token: Option<String>,
}

impl std::fmt::Debug for MasterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterConfig")
            .field("hostname", &self.hostname)
            .field("port", &self.port)
            .field("cluster_name", &self.cluster_name)
            .field("allocation_interval", &self.allocation_interval)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("agent_unreachable_timeout", &self.agent_unreachable_timeout)
            .field("agent_removal_timeout", &self.agent_removal_timeout)
            .field("offer_timeout", &self.offer_timeout)
            .field("roles", &self.roles)
            .field("max_completed_tasks", &self.max_completed_tasks)
            .field("max_completed_frameworks", &self.max_completed_frameworks)
            .field(
                "internal_token",
                &self.internal_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            hostname: "127.0.0.1".into(),
            port: 5050,
            cluster_name: "dcos".into(),
            allocation_interval: Duration::from_millis(1000),
            heartbeat_interval: Duration::from_secs(2),
            agent_unreachable_timeout: Duration::from_secs(30),
            agent_removal_timeout: Duration::from_secs(600),
            offer_timeout: Some(Duration::from_secs(60)),
            roles: BTreeMap::new(),
            max_completed_tasks: 1000,
            max_completed_frameworks: 50,
            internal_token: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AgentMode {
    Active,
    /// Known from the store after a master restart; waiting for re-registration.
    Recovered,
    Unreachable {
        since: Instant,
    },
}

#[derive(Clone)]
pub(crate) struct AgentEntry {
    pub info: AgentInfo,
    pub version: String,
    pub registered_time: f64,
    pub reregistered_time: Option<f64>,
    pub last_seen: Instant,
    pub mode: AgentMode,
    pub used: BTreeMap<String, Resources>,
    pub offered: BTreeMap<String, Resources>,
    pub tasks: HashSet<TaskId>,
}

impl AgentEntry {
    pub fn base_url(&self) -> String {
        format!("http://{}:{}", self.info.hostname, self.info.port)
    }

    fn available(&self) -> BTreeMap<String, Resources> {
        let mut out = BTreeMap::new();
        for (role, total) in &self.info.resources {
            let mut left = total.clone();
            if let Some(u) = self.used.get(role) {
                left = left.minus(u);
            }
            if let Some(o) = self.offered.get(role) {
                left = left.minus(o);
            }
            if !left.is_empty() {
                out.insert(role.clone(), left);
            }
        }
        out
    }
}

#[derive(Clone)]
pub(crate) struct FrameworkEntry {
    pub info: FrameworkInfo,
    pub id: FrameworkId,
    pub tx: Option<mpsc::UnboundedSender<SchedulerEvent>>,
    pub registered_time: f64,
    pub reregistered_time: Option<f64>,
    pub unregistered_time: Option<f64>,
    pub suppressed: bool,
    pub filters: HashMap<AgentId, (Resources, Instant)>,
    pub tasks: HashSet<TaskId>,
    pub offers: HashSet<OfferId>,
}

impl FrameworkEntry {
    pub fn active(&self) -> bool {
        self.tx.is_some()
    }
}

#[derive(Clone)]
pub(crate) struct TaskEntry {
    pub info: TaskInfo,
    pub framework_id: FrameworkId,
    pub state: TaskState,
    pub statuses: Vec<TaskStatus>,
    pub launched: Instant,
}

pub(crate) struct OfferEntry {
    pub offer: Offer,
    pub created: Instant,
}

#[derive(Serialize, Deserialize)]
struct PersistedAgent {
    info: AgentInfo,
    registered_time: f64,
    #[serde(default)]
    version: String,
}

#[derive(Serialize, Deserialize)]
struct PersistedFramework {
    info: FrameworkInfo,
    registered_time: f64,
}

#[derive(Serialize, Deserialize)]
struct PersistedTask {
    info: TaskInfo,
    framework_id: FrameworkId,
    state: TaskState,
    #[serde(default)]
    statuses: Vec<TaskStatus>,
}

pub(crate) struct State {
    pub agents: BTreeMap<AgentId, AgentEntry>,
    pub frameworks: BTreeMap<FrameworkId, FrameworkEntry>,
    pub tasks: HashMap<TaskId, TaskEntry>,
    pub completed_tasks: VecDeque<TaskEntry>,
    pub completed_frameworks: VecDeque<FrameworkEntry>,
    pub offers: HashMap<OfferId, OfferEntry>,
}

pub(crate) struct Inner {
    pub config: MasterConfig,
    pub master_id: String,
    pub start_time: f64,
    pub store: SharedStore,
    pub transport: Arc<dyn AgentTransport>,
    pub state: Mutex<State>,
    pub wake: Notify,
    pub stopped: std::sync::atomic::AtomicBool,
    /// The last commit failed and no later one succeeded (health reports it).
    pub commit_failed: AtomicBool,
    /// Why the last failed commit failed.
    pub commit_error: Mutex<String>,
}

/// The master. Cheap to clone; every clone is the same master. Dropping every clone (or
/// [`Master::shutdown`]) stops its background loops.
#[derive(Clone)]
pub struct Master {
    pub(crate) inner: Arc<Inner>,
}

/// Every decodable entry under `prefix`; undecodable ones are skipped with an error log.
fn decode_all<T: serde::de::DeserializeOwned>(
    store: &SharedStore,
    prefix: &str,
) -> Result<Vec<(String, T)>, dcos_store::StoreError> {
    let mut out = Vec::new();
    for e in store.list(prefix)? {
        match e.json::<T>() {
            Ok(v) => out.push((e.key.clone(), v)),
            Err(err) => {
                tracing::error!(key = %e.key, error = %err, "skipping undecodable master record")
            }
        }
    }
    Ok(out)
}

/// Store key segment for an id: ids may contain `/`, `.` or other characters.
/// Acknowledges `status` to the agent that sent it (an update no framework will acknowledge).
fn ack_to_agent(st: &State, status: &TaskStatus, out: &mut Outbox) {
    if let Some(agent) = st.agents.get(&status.agent_id) {
        if !status.uuid.is_empty() {
            out.to_agents.push((
                agent.info.id.clone(),
                agent.base_url(),
                ToAgent::Ack(AckUpdate {
                    task_id: status.task_id.clone(),
                    uuid: status.uuid.clone(),
                }),
            ));
        }
    }
}

fn key_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

fn master_status(
    task: &TaskEntry,
    state: TaskState,
    reason: &str,
    message: impl Into<String>,
) -> TaskStatus {
    TaskStatus {
        task_id: task.info.task_id.clone(),
        agent_id: task.info.agent_id.clone(),
        framework_id: Some(task.framework_id.clone()),
        state,
        message: Some(message.into()),
        reason: Some(reason.into()),
        source: "SOURCE_MASTER".into(),
        healthy: None,
        timestamp: now_secs(),
        uuid: String::new(),
    }
}

fn status_for(
    task_id: &TaskId,
    agent_id: &AgentId,
    fw: &FrameworkId,
    state: TaskState,
    reason: &str,
    message: impl Into<String>,
) -> TaskStatus {
    TaskStatus {
        task_id: task_id.clone(),
        agent_id: agent_id.clone(),
        framework_id: Some(fw.clone()),
        state,
        message: Some(message.into()),
        reason: Some(reason.into()),
        source: "SOURCE_MASTER".into(),
        healthy: None,
        timestamp: now_secs(),
        uuid: String::new(),
    }
}

/// What to tell a framework about a store error: the OS error when there is one ("No space
/// left on device (os error 28)"), else the whole error.
fn store_cause(e: &dcos_store::StoreError) -> String {
    match e {
        dcos_store::StoreError::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

fn sum_roles(m: &BTreeMap<String, Resources>) -> Resources {
    m.values().fold(Resources::default(), |a, r| a.plus(r))
}

fn add_role(m: &mut BTreeMap<String, Resources>, role: &str, r: &Resources) {
    let e = m.entry(role.to_string()).or_default();
    *e = e.plus(r);
}

fn sub_role(m: &mut BTreeMap<String, Resources>, role: &str, r: &Resources) {
    if let Some(e) = m.get_mut(role) {
        *e = e.minus(r);
        if e.is_empty() {
            m.remove(role);
        }
    }
}

fn valid_resources(r: &Resources) -> bool {
    [r.cpus, r.mem, r.disk, r.gpus]
        .iter()
        .all(|v| v.is_finite() && *v >= 0.0)
}

/// What an operation produced: the store ops that make it durable, what to send once the
/// state lock is released, and how to take its in-memory changes back.
///
/// Nothing acts on a change that is not durable: [`Master::commit`] writes `store_ops`; if the
/// store refuses them, the operation's in-memory changes are undone, `to_agents`, `events`
/// and `launches` are not sent (each launched task becomes a TASK_DROPPED notice instead) and
/// only `notices` go out.
#[derive(Default)]
struct Outbox {
    /// Messages to agents that act on this operation's changes.
    to_agents: Vec<(AgentId, String, ToAgent)>,
    /// Framework events that report this operation's changes.
    events: Vec<(FrameworkId, SchedulerEvent)>,
    /// Framework events that report nothing stored (offers, rescinds, invalid tasks,
    /// unreachable tasks): sent whatever the commit's outcome.
    notices: Vec<(FrameworkId, SchedulerEvent)>,
    store_ops: Vec<Op>,
    /// Launches whose failure must turn into TASK_DROPPED.
    launches: Vec<(AgentId, String, LaunchTasks)>,
    /// The inverse of each in-memory change, in the order the changes were made.
    undo: Vec<Undo>,
}

/// How to take back one in-memory change.
enum Undo {
    /// The task's entry was added or replaced: drop the current one, put this one back.
    Task(TaskId, Option<TaskEntry>),
    /// The task was detached (moved to the completed tasks): put it back as it was.
    Detached(TaskEntry),
    /// The agent's entry was added, replaced or removed: put this one back.
    Agent(AgentId, Option<AgentEntry>),
    /// The framework's entry was added or replaced: put this one back.
    Framework(FrameworkId, Option<FrameworkEntry>),
    /// The framework was removed (moved to the completed frameworks): put it back.
    FrameworkRemoved(FrameworkEntry),
}

impl Master {
    /// Starts a master over `store` (recovering agents, frameworks and tasks from it) and
    /// spawns its allocation and timeout loops on the current tokio runtime.
    pub fn start(
        config: MasterConfig,
        store: SharedStore,
        transport: Arc<dyn AgentTransport>,
    ) -> Result<Master, MasterError> {
        let mut state = State {
            agents: BTreeMap::new(),
            frameworks: BTreeMap::new(),
            tasks: HashMap::new(),
            completed_tasks: VecDeque::new(),
            completed_frameworks: VecDeque::new(),
            offers: HashMap::new(),
        };
        let unavailable = |e: dcos_store::StoreError| MasterError::Unavailable(e.to_string());
        let now = Instant::now();
        for (key, a) in decode_all::<PersistedAgent>(&store, KEY_AGENTS).map_err(unavailable)? {
            tracing::debug!(%key, "recovered agent");
            state.agents.insert(
                a.info.id.clone(),
                AgentEntry {
                    info: a.info,
                    version: a.version,
                    registered_time: a.registered_time,
                    reregistered_time: None,
                    last_seen: now,
                    mode: AgentMode::Recovered,
                    used: BTreeMap::new(),
                    offered: BTreeMap::new(),
                    tasks: HashSet::new(),
                },
            );
        }
        for (_, f) in
            decode_all::<PersistedFramework>(&store, KEY_FRAMEWORKS).map_err(unavailable)?
        {
            let Some(id) = f.info.id.clone() else {
                continue;
            };
            state.frameworks.insert(
                id.clone(),
                FrameworkEntry {
                    info: f.info,
                    id,
                    tx: None,
                    registered_time: f.registered_time,
                    reregistered_time: None,
                    unregistered_time: None,
                    suppressed: false,
                    filters: HashMap::new(),
                    tasks: HashSet::new(),
                    offers: HashSet::new(),
                },
            );
        }
        for (_, t) in decode_all::<PersistedTask>(&store, KEY_TASKS).map_err(unavailable)? {
            let entry = TaskEntry {
                info: t.info,
                framework_id: t.framework_id,
                state: t.state,
                statuses: t.statuses,
                launched: now,
            };
            Self::attach_task(&mut state, entry);
        }
        let inner = Arc::new(Inner {
            config,
            master_id: uuid::Uuid::new_v4().to_string(),
            start_time: now_secs(),
            store,
            transport,
            state: Mutex::new(state),
            wake: Notify::new(),
            stopped: std::sync::atomic::AtomicBool::new(false),
            commit_failed: AtomicBool::new(false),
            commit_error: Mutex::new(String::new()),
        });
        let master = Master { inner };
        master.spawn_loops();
        tracing::info!(
            master_id = %master.inner.master_id,
            "master started"
        );
        Ok(master)
    }

    /// Adds a task to the indexes and charges its resources.
    fn attach_task(state: &mut State, entry: TaskEntry) {
        let id = entry.info.task_id.clone();
        if let Some(agent) = state.agents.get_mut(&entry.info.agent_id) {
            add_role(&mut agent.used, &entry.info.role, &entry.info.resources);
            agent.tasks.insert(id.clone());
        }
        if let Some(fw) = state.frameworks.get_mut(&entry.framework_id) {
            fw.tasks.insert(id.clone());
        }
        state.tasks.insert(id, entry);
    }

    /// Removes a task from the indexes of its agent and framework and releases its resources
    /// (the inverse of [`Master::attach_task`]; the entry itself is left to the caller).
    fn unindex_task(state: &mut State, entry: &TaskEntry) {
        let id = &entry.info.task_id;
        if let Some(agent) = state.agents.get_mut(&entry.info.agent_id) {
            sub_role(&mut agent.used, &entry.info.role, &entry.info.resources);
            agent.tasks.remove(id);
        }
        if let Some(fw) = state.frameworks.get_mut(&entry.framework_id) {
            fw.tasks.remove(id);
        }
    }

    /// Removes a task from the indexes, releases its resources, keeps it as completed and
    /// deletes its record; records how to undo that.
    fn detach_task(&self, state: &mut State, id: &TaskId, out: &mut Outbox) {
        if let Some(entry) = state.tasks.get(id) {
            out.undo.push(Undo::Detached(entry.clone()));
        }
        self.detach_task_unrecorded(state, id, out);
    }

    /// [`Master::detach_task`] for a caller that recorded the task's prior entry itself.
    fn detach_task_unrecorded(&self, state: &mut State, id: &TaskId, out: &mut Outbox) {
        let Some(entry) = state.tasks.remove(id) else {
            return;
        };
        Self::unindex_task(state, &entry);
        out.store_ops.push(Op::delete(format!(
            "{KEY_TASKS}{}",
            key_segment(id.as_str())
        )));
        state.completed_tasks.push_back(entry);
        while state.completed_tasks.len() > self.inner.config.max_completed_tasks {
            state.completed_tasks.pop_front();
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn config(&self) -> &MasterConfig {
        &self.inner.config
    }

    /// This master incarnation's id (new on every start).
    pub fn id(&self) -> &str {
        &self.inner.master_id
    }

    pub fn start_time(&self) -> f64 {
        self.inner.start_time
    }

    /// `http://host:port` of a registered agent (for the Admin Router's `/agent/{id}/*`).
    pub fn agent_base_url(&self, agent_id: &str) -> Option<String> {
        let st = self.lock();
        st.agents
            .get(&AgentId::from(agent_id))
            .map(|a| a.base_url())
    }

    /// `http://host:port` of the agent that runs (or ran) `task_id`.
    pub fn task_agent_url(&self, task_id: &str) -> Option<String> {
        let st = self.lock();
        let id = TaskId::from(task_id);
        let agent = st
            .tasks
            .get(&id)
            .map(|t| t.info.agent_id.clone())
            .or_else(|| {
                st.completed_tasks
                    .iter()
                    .rev()
                    .find(|t| t.info.task_id == id)
                    .map(|t| t.info.agent_id.clone())
            })?;
        st.agents.get(&agent).map(|a| a.base_url())
    }

    /// Stops the background loops and disconnects every framework.
    pub fn shutdown(&self) {
        self.inner
            .stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.inner.wake.notify_one();
        let mut st = self.lock();
        for fw in st.frameworks.values_mut() {
            fw.tx = None;
        }
    }

    /// Asks for an allocation cycle soon.
    pub fn trigger_allocation(&self) {
        self.inner.wake.notify_one();
    }

    fn spawn_loops(&self) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut last_timers = Instant::now();
            loop {
                let (interval, notify_wait) = {
                    let Some(inner) = weak.upgrade() else { return };
                    if inner.stopped.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    let interval = inner.config.allocation_interval;
                    (interval, inner)
                };
                {
                    let notified = notify_wait.wake.notified();
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep(interval) => {}
                    }
                }
                drop(notify_wait);
                let Some(inner) = weak.upgrade() else { return };
                if inner.stopped.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let master = Master { inner };
                if last_timers.elapsed() >= Duration::from_millis(250) {
                    master.check_timeouts();
                    last_timers = Instant::now();
                }
                master.allocate_now();
                drop(master);
                // Batch bursts of triggers.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
    }

    /// Runs one allocation cycle now and sends the offers.
    pub fn allocate_now(&self) {
        let mut out = Outbox::default();
        {
            let mut st = self.lock();
            let now = Instant::now();
            let mut snapshot = Snapshot {
                agents: Vec::with_capacity(st.agents.len()),
                frameworks: Vec::with_capacity(st.frameworks.len()),
                roles: self.inner.config.roles.clone(),
            };
            for a in st.agents.values() {
                if a.mode != AgentMode::Active {
                    continue;
                }
                snapshot.agents.push(AgentSnapshot {
                    id: a.info.id.clone(),
                    total: a.info.resources.clone(),
                    available: a.available(),
                });
            }
            // A framework's weight applies to its role unless the role is configured.
            for f in st.frameworks.values() {
                if let Some(role) = f.info.roles.first() {
                    let w = f.info.weight;
                    if w.is_finite() && w > 0.0 && (w - 1.0).abs() > f64::EPSILON {
                        let p = snapshot.roles.entry(role.clone()).or_default();
                        if p.weight.is_none() {
                            p.weight = Some(w);
                        }
                    }
                }
            }
            let stm = &mut *st;
            let tasks = &stm.tasks;
            let offers = &stm.offers;
            for f in stm.frameworks.values_mut() {
                f.filters.retain(|_, (_, until)| *until > now);
                let mut allocated = Resources::default();
                for t in &f.tasks {
                    if let Some(t) = tasks.get(t) {
                        allocated = allocated.plus(&t.info.resources);
                    }
                }
                for o in &f.offers {
                    if let Some(o) = offers.get(o) {
                        allocated = allocated.plus(&o.offer.total());
                    }
                }
                snapshot.frameworks.push(FrameworkSnapshot {
                    id: f.id.clone(),
                    roles: f.info.roles.clone(),
                    allocated,
                    suppressed: f.suppressed || !f.active(),
                    filters: f
                        .filters
                        .iter()
                        .map(|(a, (r, _))| (a.clone(), r.clone()))
                        .collect(),
                });
            }
            if snapshot.agents.is_empty() || snapshot.frameworks.is_empty() {
                return;
            }
            let plan = allocator::allocate(&snapshot);
            let mut by_fw: BTreeMap<FrameworkId, Vec<Offer>> = BTreeMap::new();
            for p in plan.offers {
                let Some(agent) = st.agents.get_mut(&p.agent_id) else {
                    continue;
                };
                for (role, r) in &p.resources {
                    add_role(&mut agent.offered, role, r);
                }
                let offer = Offer {
                    id: OfferId(uuid::Uuid::new_v4().to_string()),
                    framework_id: p.framework_id.clone(),
                    agent_id: p.agent_id.clone(),
                    hostname: agent.info.hostname.clone(),
                    resources: p.resources,
                    attributes: agent.info.attributes.clone(),
                };
                if let Some(fw) = st.frameworks.get_mut(&p.framework_id) {
                    fw.offers.insert(offer.id.clone());
                }
                st.offers.insert(
                    offer.id.clone(),
                    OfferEntry {
                        offer: offer.clone(),
                        created: now,
                    },
                );
                by_fw.entry(p.framework_id).or_default().push(offer);
            }
            for (fw, offers) in by_fw {
                out.notices.push((fw, SchedulerEvent::Offers(offers)));
            }
            let _ = self.commit(&mut st, &mut out);
        }
        self.flush(out);
    }

    /// The one commit path. Writes an operation's store ops while its caller still holds the
    /// state lock (so that writes reach the store in the order the state changed). If the
    /// store refuses them, turns the outbox into its failure version: the operation's
    /// in-memory changes are undone (last first), nothing that reports or acts on them is
    /// sent, and each launched task is reported TASK_DROPPED. Returns the store's error.
    fn commit(&self, st: &mut State, out: &mut Outbox) -> Result<(), String> {
        if out.store_ops.is_empty() {
            out.undo.clear();
            return Ok(());
        }
        let ops = std::mem::take(&mut out.store_ops);
        match self.inner.store.commit(ops) {
            Ok(_) => {
                out.undo.clear();
                self.commit_succeeded();
                Ok(())
            }
            Err(e) => {
                let cause = store_cause(&e);
                tracing::error!(error = %e, "could not persist master state; the change is undone");
                self.inner.commit_failed.store(true, Ordering::SeqCst);
                *self
                    .inner
                    .commit_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = cause.clone();
                Self::fail(st, out, &cause);
                Err(cause)
            }
        }
    }

    fn commit_succeeded(&self) {
        if self.inner.commit_failed.swap(false, Ordering::SeqCst) {
            tracing::info!("the master's store takes writes again");
        }
    }

    /// Turns an outbox whose commit failed into its failure version (see [`Master::commit`]).
    fn fail(st: &mut State, out: &mut Outbox, cause: &str) {
        while let Some(u) = out.undo.pop() {
            match u {
                Undo::Task(id, prior) => {
                    if let Some(cur) = st.tasks.remove(&id) {
                        Self::unindex_task(st, &cur);
                    }
                    if let Some(p) = prior {
                        Self::attach_task(st, p);
                    }
                }
                Undo::Detached(entry) => {
                    let id = &entry.info.task_id;
                    if !st.tasks.contains_key(id)
                        && st
                            .completed_tasks
                            .back()
                            .is_some_and(|c| &c.info.task_id == id)
                    {
                        st.completed_tasks.pop_back();
                    }
                    if let Some(cur) = st.tasks.remove(id) {
                        Self::unindex_task(st, &cur);
                    }
                    Self::attach_task(st, entry);
                }
                Undo::Agent(id, prior) => match prior {
                    Some(a) => {
                        st.agents.insert(id, a);
                    }
                    None => {
                        st.agents.remove(&id);
                    }
                },
                Undo::Framework(id, prior) => match prior {
                    Some(f) => {
                        st.frameworks.insert(id, f);
                    }
                    None => {
                        st.frameworks.remove(&id);
                    }
                },
                Undo::FrameworkRemoved(f) => {
                    if st.completed_frameworks.back().is_some_and(|c| c.id == f.id) {
                        st.completed_frameworks.pop_back();
                    }
                    st.frameworks.insert(f.id.clone(), f);
                }
            }
        }
        out.to_agents.clear();
        out.events.clear();
        for (agent_id, _, launch) in out.launches.drain(..) {
            for t in launch.tasks {
                out.notices.push((
                    launch.framework_id.clone(),
                    SchedulerEvent::Update(status_for(
                        &t.task_id,
                        &agent_id,
                        &launch.framework_id,
                        TaskState::Dropped,
                        "REASON_MASTER_DISCONNECTED",
                        format!("the master could not store the launch: {cause}"),
                    )),
                ));
            }
        }
    }

    /// Whether the master's changes can be made durable now (for `/system/health/v1`): the
    /// store takes writes and the last commit did not fail (or a later one succeeded).
    pub fn store_writable(&self) -> Result<(), String> {
        if let Err(e) = self.inner.store.writable() {
            return Err(format!(
                "the master's store refuses writes: {}",
                store_cause(&e)
            ));
        }
        if self.inner.commit_failed.load(Ordering::SeqCst) {
            let cause = self
                .inner
                .commit_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            return Err(format!("the master's last store commit failed: {cause}"));
        }
        Ok(())
    }

    /// After a failed commit, and once the store says it takes writes again, writes a probe
    /// so that health recovers even when nothing else changes.
    fn probe_store(&self) {
        if !self.inner.commit_failed.load(Ordering::SeqCst) || self.inner.store.writable().is_err()
        {
            return;
        }
        let _st = self.lock();
        let probe = Op::put(KEY_PROBE, self.inner.master_id.clone().into_bytes());
        match self.inner.store.commit(vec![probe]) {
            Ok(_) => self.commit_succeeded(),
            Err(e) => tracing::debug!(error = %e, "the master's store still refuses writes"),
        }
    }

    /// Delivers what an operation produced: framework events, agent messages. The store ops
    /// were committed (see [`Master::commit`]) while the state lock was held.
    fn flush(&self, mut out: Outbox) {
        if !out.store_ops.is_empty() {
            let mut st = self.lock();
            let _ = self.commit(&mut st, &mut out);
        }
        if !out.events.is_empty() || !out.notices.is_empty() {
            let mut dead = Vec::new();
            {
                let st = self.lock();
                let mut events = std::mem::take(&mut out.notices);
                events.append(&mut out.events);
                for (fw, ev) in events {
                    if let Some(f) = st.frameworks.get(&fw) {
                        if let Some(tx) = &f.tx {
                            if tx.send(ev).is_err() {
                                dead.push(fw);
                            }
                        }
                    }
                }
            }
            for fw in dead {
                self.disconnect_framework(&fw);
            }
        }
        for (agent_id, url, msg) in out.to_agents {
            let fut = self.inner.transport.send(&agent_id, &url, msg);
            tokio::spawn(async move {
                if let Err(e) = fut.await {
                    tracing::warn!(agent = %agent_id, error = %e, "message to agent failed");
                }
            });
        }
        for (agent_id, url, launch) in out.launches {
            let ids: Vec<TaskId> = launch.tasks.iter().map(|t| t.task_id.clone()).collect();
            let fut = self
                .inner
                .transport
                .send(&agent_id, &url, ToAgent::Launch(launch));
            let weak = Arc::downgrade(&self.inner);
            tokio::spawn(async move {
                if let Err(e) = fut.await {
                    tracing::warn!(agent = %agent_id, error = %e, "launch failed");
                    if let Some(inner) = weak.upgrade() {
                        Master { inner }.launch_failed(&ids, &e);
                    }
                }
            });
        }
    }

    fn launch_failed(&self, ids: &[TaskId], error: &str) {
        let mut out = Outbox::default();
        {
            let mut st = self.lock();
            for id in ids {
                let Some(t) = st.tasks.get(id) else { continue };
                if t.state != TaskState::Staging {
                    continue;
                }
                let status = master_status(
                    t,
                    TaskState::Dropped,
                    "REASON_AGENT_DISCONNECTED",
                    format!("Could not send the task to its agent: {error}"),
                );
                let fw = t.framework_id.clone();
                self.detach_task(&mut st, id, &mut out);
                if let Some(c) = st.completed_tasks.back_mut() {
                    c.state = TaskState::Dropped;
                    c.statuses.push(status.clone());
                }
                out.events.push((fw, SchedulerEvent::Update(status)));
            }
            let _ = self.commit(&mut st, &mut out);
        }
        self.flush(out);
        self.trigger_allocation();
    }

    fn disconnect_framework(&self, fw: &FrameworkId) {
        let mut out = Outbox::default();
        {
            let mut st = self.lock();
            let offers: Vec<OfferId> = match st.frameworks.get_mut(fw) {
                Some(f) => {
                    f.tx = None;
                    f.offers.drain().collect()
                }
                None => return,
            };
            for o in offers {
                Self::release_offer(&mut st, &o);
            }
            tracing::info!(framework = %fw, "framework disconnected");
        }
        out.events.clear();
        self.flush(out);
        self.trigger_allocation();
    }

    /// Removes an offer and returns its resources to the agent. Returns the offer.
    fn release_offer(st: &mut State, id: &OfferId) -> Option<Offer> {
        let entry = st.offers.remove(id)?;
        if let Some(agent) = st.agents.get_mut(&entry.offer.agent_id) {
            for (role, r) in &entry.offer.resources {
                sub_role(&mut agent.offered, role, r);
            }
        }
        if let Some(fw) = st.frameworks.get_mut(&entry.offer.framework_id) {
            fw.offers.remove(id);
        }
        Some(entry.offer)
    }

    /// Rescinds every offer on `agent` (the agent left or became unreachable).
    fn rescind_agent_offers(st: &mut State, agent: &AgentId, out: &mut Outbox) {
        let ids: Vec<OfferId> = st
            .offers
            .iter()
            .filter(|(_, o)| &o.offer.agent_id == agent)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            if let Some(o) = Self::release_offer(st, &id) {
                out.notices
                    .push((o.framework_id, SchedulerEvent::Rescind(o.id)));
            }
        }
    }

    /// Agent silence and offer timeouts.
    pub fn check_timeouts(&self) {
        let mut out = Outbox::default();
        let mut changed = false;
        {
            let mut st = self.lock();
            let now = Instant::now();
            let cfg = &self.inner.config;
            let mut newly_unreachable = Vec::new();
            let mut removed = Vec::new();
            for (id, a) in st.agents.iter_mut() {
                match a.mode {
                    AgentMode::Active | AgentMode::Recovered => {
                        if now.duration_since(a.last_seen) > cfg.agent_unreachable_timeout {
                            a.mode = AgentMode::Unreachable { since: now };
                            newly_unreachable.push(id.clone());
                        }
                    }
                    AgentMode::Unreachable { since } => {
                        if now.duration_since(since) > cfg.agent_removal_timeout {
                            removed.push(id.clone());
                        }
                    }
                }
            }
            for id in newly_unreachable {
                tracing::warn!(agent = %id, "agent unreachable");
                changed = true;
                Self::rescind_agent_offers(&mut st, &id, &mut out);
                let tasks: Vec<TaskId> = st
                    .agents
                    .get(&id)
                    .map(|a| a.tasks.iter().cloned().collect())
                    .unwrap_or_default();
                for t in tasks {
                    if let Some(task) = st.tasks.get_mut(&t) {
                        if task.state.is_terminal() {
                            continue;
                        }
                        let status = master_status(
                            task,
                            TaskState::Unreachable,
                            "REASON_AGENT_UNREACHABLE",
                            "Agent is unreachable",
                        );
                        task.state = TaskState::Unreachable;
                        task.statuses.push(status.clone());
                        out.notices
                            .push((task.framework_id.clone(), SchedulerEvent::Update(status)));
                    }
                }
            }
            for id in removed {
                tracing::warn!(agent = %id, "agent removed after being unreachable");
                changed = true;
                self.remove_agent(&mut st, &id, &mut out);
            }
            let _ = self.commit(&mut st, &mut out);
        }
        self.expire_offers(&mut out);
        self.flush(out);
        self.probe_store();
        if changed {
            self.trigger_allocation();
        }
    }

    fn expire_offers(&self, out: &mut Outbox) {
        let Some(timeout) = self.inner.config.offer_timeout else {
            return;
        };
        let mut st = self.lock();
        let expired: Vec<OfferId> = st
            .offers
            .iter()
            .filter(|(_, o)| o.created.elapsed() > timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some(o) = Self::release_offer(&mut st, &id) {
                out.notices
                    .push((o.framework_id, SchedulerEvent::Rescind(o.id)));
            }
        }
    }

    fn remove_agent(&self, st: &mut State, id: &AgentId, out: &mut Outbox) {
        Self::rescind_agent_offers(st, id, out);
        let tasks: Vec<TaskId> = st
            .agents
            .get(id)
            .map(|a| a.tasks.iter().cloned().collect())
            .unwrap_or_default();
        for t in tasks {
            let Some(task) = st.tasks.get(&t) else {
                continue;
            };
            let status = master_status(
                task,
                TaskState::Gone,
                "REASON_AGENT_REMOVED",
                "Agent was removed after being unreachable",
            );
            let fw = task.framework_id.clone();
            self.detach_task(st, &t, out);
            if let Some(c) = st.completed_tasks.back_mut() {
                c.state = TaskState::Gone;
                c.statuses.push(status.clone());
            }
            out.events.push((fw, SchedulerEvent::Update(status)));
        }
        if let Some(agent) = st.agents.remove(id) {
            out.undo.push(Undo::Agent(id.clone(), Some(agent)));
        }
        out.store_ops.push(Op::delete(format!(
            "{KEY_AGENTS}{}",
            key_segment(id.as_str())
        )));
        let fws: Vec<FrameworkId> = st.frameworks.keys().cloned().collect();
        for fw in fws {
            out.events.push((fw, SchedulerEvent::AgentLost(id.clone())));
        }
    }

    // ---- agent protocol ---------------------------------------------------------------------

    /// An agent (re-)registers with the tasks it has.
    pub fn register_agent(&self, msg: RegisterAgent) -> Result<Registered, MasterError> {
        let info = msg.agent;
        if info.id.as_str().is_empty() || info.id.as_str().len() > 256 {
            return Err(MasterError::Invalid(
                "agent.id must be 1 to 256 characters".into(),
            ));
        }
        if info.hostname.is_empty() {
            return Err(MasterError::Invalid("agent.hostname is empty".into()));
        }
        if let Some((role, _)) = info.resources.iter().find(|(_, r)| !valid_resources(r)) {
            return Err(MasterError::Invalid(format!(
                "agent.resources[{role}] has negative or non-finite values"
            )));
        }
        for t in &msg.tasks {
            if t.info.agent_id != info.id || t.status.task_id != t.info.task_id {
                return Err(MasterError::Invalid(format!(
                    "task {} does not belong to agent {}",
                    t.info.task_id, info.id
                )));
            }
        }
        let mut out = Outbox::default();
        let base_url = format!("http://{}:{}", info.hostname, info.port);
        let stored;
        {
            let mut st = self.lock();
            let now = Instant::now();
            let id = info.id.clone();
            let existing = st.agents.contains_key(&id);
            if existing {
                Self::rescind_agent_offers(&mut st, &id, &mut out);
            }
            let registered_time = st
                .agents
                .get(&id)
                .map(|a| a.registered_time)
                .unwrap_or_else(now_secs);
            let known: Vec<TaskId> = st
                .agents
                .get(&id)
                .map(|a| a.tasks.iter().cloned().collect())
                .unwrap_or_default();
            let prior = st.agents.insert(
                id.clone(),
                AgentEntry {
                    info: info.clone(),
                    version: msg.version.clone(),
                    registered_time,
                    reregistered_time: existing.then(now_secs),
                    last_seen: now,
                    mode: AgentMode::Active,
                    used: BTreeMap::new(),
                    offered: BTreeMap::new(),
                    tasks: HashSet::new(),
                },
            );
            out.undo.push(Undo::Agent(id.clone(), prior));
            let reported: HashMap<TaskId, &dcos_types::protocol::AgentTask> = msg
                .tasks
                .iter()
                .map(|t| (t.info.task_id.clone(), t))
                .collect();
            // Tasks the master knows on this agent that the agent does not report.
            for tid in known {
                if reported.contains_key(&tid) {
                    continue;
                }
                let Some(task) = st.tasks.get(&tid) else {
                    continue;
                };
                if task.state == TaskState::Staging && task.launched.elapsed() < LAUNCH_IN_FLIGHT {
                    let entry = task.clone();
                    st.tasks.remove(&tid);
                    Self::attach_task(&mut st, entry);
                    continue;
                }
                let status = master_status(
                    task,
                    TaskState::Lost,
                    "REASON_RECONCILIATION",
                    "Task is unknown to the agent",
                );
                let fw = task.framework_id.clone();
                // Re-attach first so detach releases nothing twice.
                let entry = task.clone();
                st.tasks.remove(&tid);
                Self::attach_task(&mut st, entry);
                self.detach_task(&mut st, &tid, &mut out);
                if let Some(c) = st.completed_tasks.back_mut() {
                    c.state = TaskState::Lost;
                    c.statuses.push(status.clone());
                }
                out.events.push((fw, SchedulerEvent::Update(status)));
            }
            // Tasks the agent reports.
            for (tid, t) in &reported {
                let fw = t
                    .info
                    .framework_id
                    .clone()
                    .or_else(|| t.status.framework_id.clone())
                    .unwrap_or_else(|| FrameworkId::from(""));
                let gone = !st.tasks.contains_key(tid)
                    && st.completed_tasks.iter().any(|c| {
                        &c.info.task_id == tid
                            && matches!(c.state, TaskState::Gone | TaskState::Lost)
                    });
                if gone
                    || (!fw.as_str().is_empty()
                        && st.completed_frameworks.iter().any(|f| f.id == fw))
                {
                    // The master gave up on this task (agent removed, framework torn down).
                    if !t.status.state.is_terminal() {
                        out.to_agents.push((
                            id.clone(),
                            base_url.clone(),
                            ToAgent::Kill(KillTask {
                                task_id: (*tid).clone(),
                                grace_period_seconds: None,
                            }),
                        ));
                    }
                    continue;
                }
                let previous = st.tasks.remove(tid);
                out.undo.push(Undo::Task((*tid).clone(), previous.clone()));
                let changed = previous
                    .as_ref()
                    .map(|p| p.state != t.status.state)
                    .unwrap_or(true);
                let mut statuses = previous.map(|p| p.statuses).unwrap_or_default();
                if changed {
                    statuses.push(t.status.clone());
                }
                let entry = TaskEntry {
                    info: t.info.clone(),
                    framework_id: fw.clone(),
                    state: t.status.state,
                    statuses,
                    launched: now,
                };
                if t.status.state.is_terminal() {
                    // Kept until its update is acknowledged; the agent resends that update.
                    Self::attach_task(&mut st, entry);
                    continue;
                }
                let persisted = PersistedTask {
                    info: entry.info.clone(),
                    framework_id: entry.framework_id.clone(),
                    state: entry.state,
                    statuses: Vec::new(),
                };
                if let Ok(op) = Op::put_json(
                    format!("{KEY_TASKS}{}", key_segment(tid.as_str())),
                    &persisted,
                    Precondition::Any,
                ) {
                    out.store_ops.push(op);
                }
                Self::attach_task(&mut st, entry);
                if changed {
                    let mut s = t.status.clone();
                    s.uuid = String::new();
                    s.source = "SOURCE_MASTER".into();
                    s.reason = Some("REASON_RECONCILIATION".into());
                    out.events.push((fw, SchedulerEvent::Update(s)));
                }
            }
            let persisted = PersistedAgent {
                info: info.clone(),
                registered_time,
                version: msg.version.clone(),
            };
            if let Ok(op) = Op::put_json(
                format!("{KEY_AGENTS}{}", key_segment(id.as_str())),
                &persisted,
                Precondition::Any,
            ) {
                out.store_ops.push(op);
            }
            // A registration that is not stored is not acknowledged: its changes are undone and
            // the agent registers again (its registration loop retries).
            stored = self.commit(&mut st, &mut out);
            if stored.is_ok() {
                tracing::info!(agent = %id, hostname = %info.hostname, reregistered = existing, "agent registered");
            }
        }
        self.flush(out);
        if let Err(cause) = stored {
            return Err(MasterError::Unavailable(format!(
                "the master could not store the agent's registration: {cause}"
            )));
        }
        self.trigger_allocation();
        Ok(Registered {
            agent_id: info.id,
            master_id: self.inner.master_id.clone(),
            heartbeat_interval_seconds: self.inner.config.heartbeat_interval.as_secs_f64(),
        })
    }

    pub fn heartbeat(&self, agent_id: &AgentId) -> HeartbeatResponse {
        let mut st = self.lock();
        let reregister = match st.agents.get_mut(agent_id) {
            Some(a) if a.mode == AgentMode::Active => {
                a.last_seen = Instant::now();
                false
            }
            _ => true,
        };
        HeartbeatResponse {
            master_id: self.inner.master_id.clone(),
            reregister,
        }
    }

    /// A status update from an agent.
    pub fn status_update(&self, status: TaskStatus) -> Result<(), MasterError> {
        if status.task_id.as_str().is_empty() {
            return Err(MasterError::Invalid("status.task_id is empty".into()));
        }
        let mut out = Outbox::default();
        let mut freed = false;
        let stored;
        {
            let mut st = self.lock();
            if let Some(a) = st.agents.get_mut(&status.agent_id) {
                if a.mode == AgentMode::Active {
                    a.last_seen = Instant::now();
                }
            }
            // A late duplicate of an update that a newer one already followed is stale: the
            // agent only sends the next update after the previous one was acknowledged.
            let stale = |statuses: &[TaskStatus]| {
                !status.uuid.is_empty()
                    && statuses
                        .iter()
                        .position(|s| s.uuid == status.uuid)
                        .is_some_and(|p| p + 1 < statuses.len())
            };
            let known_stale = st.tasks.get(&status.task_id).is_some_and(|t| {
                stale(&t.statuses) || (t.state.is_terminal() && !status.state.is_terminal())
            });
            let completed_stale = !st.tasks.contains_key(&status.task_id)
                && st.completed_tasks.iter().rev().any(|c| {
                    c.info.task_id == status.task_id
                        && (stale(&c.statuses) || !status.state.is_terminal())
                });
            if known_stale || completed_stale {
                tracing::debug!(task = %status.task_id, state = status.state.as_str(), "stale status update dropped");
                // Acknowledge it, or the agent would resend it forever and hold back the
                // task's later updates behind it (its queue is ordered).
                ack_to_agent(&st, &status, &mut out);
                drop(st);
                self.flush(out);
                return Ok(());
            }
            // A terminal update deletes the task's record: keep what to put back if that fails.
            if status.state.is_terminal() {
                if let Some(task) = st.tasks.get(&status.task_id) {
                    out.undo.push(Undo::Detached(task.clone()));
                }
            }
            let fw_id = match st.tasks.get_mut(&status.task_id) {
                Some(task) => {
                    if !task.state.is_terminal() || status.state.is_terminal() {
                        task.state = status.state;
                    }
                    task.statuses.push(status.clone());
                    if task.statuses.len() > STATUS_HISTORY {
                        task.statuses.remove(0);
                    }
                    Some(task.framework_id.clone())
                }
                None => status.framework_id.clone(),
            };
            if status.state.is_terminal() && st.tasks.contains_key(&status.task_id) {
                self.detach_task_unrecorded(&mut st, &status.task_id, &mut out);
                freed = true;
            }
            match fw_id {
                Some(fw) if st.frameworks.contains_key(&fw) => {
                    out.events.push((fw, SchedulerEvent::Update(status)));
                }
                _ => {
                    // Nobody will acknowledge this update: acknowledge it ourselves.
                    ack_to_agent(&st, &status, &mut out);
                }
            }
            // An update whose change is not stored is refused: not forwarded, not
            // acknowledged; the agent sends it again.
            stored = self.commit(&mut st, &mut out);
        }
        self.flush(out);
        if let Err(cause) = stored {
            return Err(MasterError::Unavailable(format!(
                "the master could not store the task's state: {cause}"
            )));
        }
        if freed {
            self.trigger_allocation();
        }
        Ok(())
    }

    // ---- framework calls --------------------------------------------------------------------

    fn accept(
        &self,
        fw_id: &FrameworkId,
        offer_ids: Vec<OfferId>,
        tasks: Vec<TaskInfo>,
        refuse_seconds: f64,
    ) -> Result<(), MasterError> {
        let mut out = Outbox::default();
        let mut result = Ok(());
        {
            let mut st = self.lock();
            // Validate the offers.
            let mut agent_id: Option<AgentId> = None;
            let mut bad: Option<OfferId> = None;
            if offer_ids.is_empty() {
                result = Err(MasterError::Invalid("accept without offer ids".into()));
            }
            for o in &offer_ids {
                match st.offers.get(o) {
                    Some(e) if &e.offer.framework_id == fw_id => {
                        if agent_id.get_or_insert_with(|| e.offer.agent_id.clone())
                            != &e.offer.agent_id
                        {
                            bad = Some(o.clone());
                        }
                    }
                    _ => bad = Some(o.clone()),
                }
            }
            if result.is_ok() {
                if let Some(o) = bad.clone() {
                    result = Err(MasterError::InvalidOffer(o));
                }
            }
            if result.is_err() {
                let msg = match &result {
                    Err(e) => e.to_string(),
                    Ok(()) => String::new(),
                };
                for t in &tasks {
                    out.notices.push((
                        fw_id.clone(),
                        SchedulerEvent::Update(status_for(
                            &t.task_id,
                            &t.agent_id,
                            fw_id,
                            TaskState::Dropped,
                            "REASON_INVALID_OFFERS",
                            format!("Task launched with invalid offers: {msg}"),
                        )),
                    ));
                }
                drop(st);
                self.flush(out);
                return result;
            }
            let Some(agent_id) = agent_id else {
                return Err(MasterError::Invalid("accept without offers".into()));
            };
            let mut pool: BTreeMap<String, Resources> = BTreeMap::new();
            for o in &offer_ids {
                if let Some(offer) = Self::release_offer(&mut st, o) {
                    for (role, r) in &offer.resources {
                        add_role(&mut pool, role, r);
                    }
                }
            }
            let (agent_url, agent_active) = match st.agents.get(&agent_id) {
                Some(a) => (a.base_url(), a.mode == AgentMode::Active),
                None => (String::new(), false),
            };
            let mut launch = Vec::new();
            let framework_name = st
                .frameworks
                .get(fw_id)
                .map(|f| f.info.name.clone())
                .unwrap_or_default();
            for mut t in tasks {
                let error = |msg: String| {
                    SchedulerEvent::Update(status_for(
                        &t.task_id,
                        &t.agent_id,
                        fw_id,
                        TaskState::Error,
                        "REASON_TASK_INVALID",
                        msg,
                    ))
                };
                if t.task_id.as_str().is_empty() {
                    out.notices
                        .push((fw_id.clone(), error("Task ID is empty".into())));
                    continue;
                }
                if st.tasks.contains_key(&t.task_id)
                    || launch.iter().any(|l: &TaskInfo| l.task_id == t.task_id)
                {
                    out.notices.push((
                        fw_id.clone(),
                        error(format!("Task ID '{}' is already in use", t.task_id)),
                    ));
                    continue;
                }
                if t.agent_id != agent_id {
                    out.notices.push((
                        fw_id.clone(),
                        error(format!(
                            "Task uses agent {} but the offers are for agent {agent_id}",
                            t.agent_id
                        )),
                    ));
                    continue;
                }
                if !valid_resources(&t.resources) {
                    out.notices.push((
                        fw_id.clone(),
                        error("Task resources are negative or not finite".into()),
                    ));
                    continue;
                }
                if !agent_active {
                    out.notices.push((
                        fw_id.clone(),
                        SchedulerEvent::Update(status_for(
                            &t.task_id,
                            &t.agent_id,
                            fw_id,
                            TaskState::Dropped,
                            "REASON_AGENT_DISCONNECTED",
                            "Agent is not reachable",
                        )),
                    ));
                    continue;
                }
                // Take the resources from the task's role, else any role of the offer
                // (reservations first).
                let mut roles: Vec<String> = vec![t.role.clone()];
                roles.extend(pool.keys().filter(|r| *r != ROLE_ANY).cloned());
                roles.push(ROLE_ANY.to_string());
                let chosen = roles
                    .into_iter()
                    .find(|r| pool.get(r).is_some_and(|p| p.contains(&t.resources)));
                let Some(role) = chosen else {
                    let have = sum_roles(&pool);
                    out.notices.push((
                        fw_id.clone(),
                        error(format!(
                            "Task uses more resources (cpus {}, mem {}, disk {}, ports {}) than available in the offers (cpus {}, mem {}, disk {}, ports {})",
                            t.resources.cpus, t.resources.mem, t.resources.disk,
                            dcos_types::resources::format_ranges(&t.resources.ports),
                            have.cpus, have.mem, have.disk,
                            dcos_types::resources::format_ranges(&have.ports),
                        )),
                    ));
                    continue;
                };
                sub_role(&mut pool, &role, &t.resources);
                t.role = role;
                t.framework_id = Some(fw_id.clone());
                launch.push(t);
            }
            for t in &launch {
                let status = status_for(
                    &t.task_id,
                    &t.agent_id,
                    fw_id,
                    TaskState::Staging,
                    "REASON_TASK_LAUNCHED",
                    "",
                );
                let entry = TaskEntry {
                    info: t.clone(),
                    framework_id: fw_id.clone(),
                    state: TaskState::Staging,
                    statuses: vec![status],
                    launched: Instant::now(),
                };
                let persisted = PersistedTask {
                    info: t.clone(),
                    framework_id: fw_id.clone(),
                    state: TaskState::Staging,
                    statuses: Vec::new(),
                };
                if let Ok(op) = Op::put_json(
                    format!("{KEY_TASKS}{}", key_segment(t.task_id.as_str())),
                    &persisted,
                    Precondition::Any,
                ) {
                    out.store_ops.push(op);
                }
                out.undo.push(Undo::Task(t.task_id.clone(), None));
                Self::attach_task(&mut st, entry);
            }
            let left = sum_roles(&pool);
            if refuse_seconds > 0.0 && refuse_seconds.is_finite() && !left.is_empty() {
                if let Some(f) = st.frameworks.get_mut(fw_id) {
                    let until = Instant::now()
                        + Duration::from_secs_f64(refuse_seconds.min(365.0 * 86400.0));
                    f.filters.insert(agent_id.clone(), (left, until));
                }
            }
            if !launch.is_empty() {
                out.launches.push((
                    agent_id.clone(),
                    agent_url,
                    LaunchTasks {
                        framework_id: fw_id.clone(),
                        framework_name,
                        tasks: launch,
                    },
                ));
            }
            // A launch that is not stored is not sent: its tasks are taken back (their
            // resources are offered again) and reported TASK_DROPPED.
            let _ = self.commit(&mut st, &mut out);
        }
        self.flush(out);
        self.trigger_allocation();
        result
    }

    fn decline(&self, fw_id: &FrameworkId, offer_ids: Vec<OfferId>, refuse_seconds: f64) {
        {
            let mut st = self.lock();
            for o in offer_ids {
                let owned = st
                    .offers
                    .get(&o)
                    .is_some_and(|e| &e.offer.framework_id == fw_id);
                if !owned {
                    continue;
                }
                if let Some(offer) = Self::release_offer(&mut st, &o) {
                    if refuse_seconds > 0.0 && refuse_seconds.is_finite() {
                        if let Some(f) = st.frameworks.get_mut(fw_id) {
                            let until = Instant::now()
                                + Duration::from_secs_f64(refuse_seconds.min(365.0 * 86400.0));
                            let refused = offer.total();
                            f.filters.insert(offer.agent_id.clone(), (refused, until));
                        }
                    }
                }
            }
        }
        self.trigger_allocation();
    }

    fn kill(&self, fw_id: &FrameworkId, task_id: TaskId, grace: Option<f64>) {
        let mut out = Outbox::default();
        {
            let st = self.lock();
            match st.tasks.get(&task_id) {
                Some(t) if &t.framework_id == fw_id => {
                    if let Some(a) = st.agents.get(&t.info.agent_id) {
                        out.to_agents.push((
                            a.info.id.clone(),
                            a.base_url(),
                            ToAgent::Kill(KillTask {
                                task_id: task_id.clone(),
                                grace_period_seconds: grace,
                            }),
                        ));
                    }
                }
                _ => {
                    let agent = AgentId::from("");
                    out.notices.push((
                        fw_id.clone(),
                        SchedulerEvent::Update(status_for(
                            &task_id,
                            &agent,
                            fw_id,
                            TaskState::Lost,
                            "REASON_RECONCILIATION",
                            "Attempted to kill an unknown task",
                        )),
                    ));
                }
            }
        }
        self.flush(out);
    }

    fn acknowledge(
        &self,
        agent_id: AgentId,
        task_id: TaskId,
        uuid: String,
    ) -> Result<(), MasterError> {
        if uuid.is_empty() {
            return Ok(());
        }
        let mut out = Outbox::default();
        let stored;
        {
            let mut st = self.lock();
            let agent = st
                .tasks
                .get(&task_id)
                .map(|t| t.info.agent_id.clone())
                .unwrap_or(agent_id);
            // A terminal task kept for its acknowledgement can go now.
            let terminal = st
                .tasks
                .get(&task_id)
                .is_some_and(|t| t.state.is_terminal());
            if terminal {
                self.detach_task(&mut st, &task_id, &mut out);
            }
            if let Some(a) = st.agents.get(&agent) {
                out.to_agents.push((
                    a.info.id.clone(),
                    a.base_url(),
                    ToAgent::Ack(AckUpdate { task_id, uuid }),
                ));
            }
            // If the terminal task's removal is not stored, the task stays and the
            // acknowledgement is not forwarded: the agent resends the update.
            stored = self.commit(&mut st, &mut out);
        }
        self.flush(out);
        stored.map_err(|cause| {
            MasterError::Unavailable(format!(
                "the master could not store the acknowledgement: {cause}"
            ))
        })
    }

    fn reconcile(&self, fw_id: &FrameworkId, tasks: Vec<(TaskId, Option<AgentId>)>) {
        let mut out = Outbox::default();
        {
            let st = self.lock();
            let latest = |t: &TaskEntry| {
                let mut s = t
                    .statuses
                    .last()
                    .cloned()
                    .unwrap_or_else(|| master_status(t, t.state, "REASON_RECONCILIATION", ""));
                s.state = t.state;
                s.uuid = String::new();
                s.source = "SOURCE_MASTER".into();
                s.reason = Some("REASON_RECONCILIATION".into());
                s
            };
            // Tasks on agents recovered from the store are not reported until their agent
            // re-registers (then changes are sent) or times out (then TASK_UNREACHABLE).
            let recovering = |t: &TaskEntry| {
                st.agents
                    .get(&t.info.agent_id)
                    .is_some_and(|a| a.mode == AgentMode::Recovered)
            };
            if tasks.is_empty() {
                if let Some(f) = st.frameworks.get(fw_id) {
                    for t in &f.tasks {
                        if let Some(t) = st.tasks.get(t).filter(|t| !recovering(t)) {
                            out.notices
                                .push((fw_id.clone(), SchedulerEvent::Update(latest(t))));
                        }
                    }
                }
            } else {
                for (tid, agent) in tasks {
                    let ev = match st.tasks.get(&tid) {
                        Some(t) if &t.framework_id == fw_id && recovering(t) => continue,
                        Some(t) if &t.framework_id == fw_id => latest(t),
                        _ => {
                            let done = st
                                .completed_tasks
                                .iter()
                                .rev()
                                .find(|c| c.info.task_id == tid && &c.framework_id == fw_id);
                            match done {
                                Some(c) => latest(c),
                                None => {
                                    let agent = agent.unwrap_or_else(|| AgentId::from(""));
                                    let recovering = st
                                        .agents
                                        .get(&agent)
                                        .is_some_and(|a| a.mode == AgentMode::Recovered);
                                    if recovering {
                                        // The agent may still report it when it re-registers.
                                        continue;
                                    }
                                    status_for(
                                        &tid,
                                        &agent,
                                        fw_id,
                                        TaskState::Unknown,
                                        "REASON_RECONCILIATION",
                                        "Task is unknown to the master",
                                    )
                                }
                            }
                        }
                    };
                    out.notices
                        .push((fw_id.clone(), SchedulerEvent::Update(ev)));
                }
            }
        }
        self.flush(out);
    }

    /// Removes a framework: kills its tasks, drops its offers, forgets it.
    pub fn teardown(&self, fw_id: &FrameworkId) -> Result<(), MasterError> {
        let mut out = Outbox::default();
        let stored;
        {
            let mut st = self.lock();
            if !st.frameworks.contains_key(fw_id) {
                return Err(MasterError::UnknownFramework(fw_id.clone()));
            }
            let (tasks, offers) = match st.frameworks.get_mut(fw_id) {
                Some(f) => (
                    f.tasks.iter().cloned().collect::<Vec<_>>(),
                    f.offers.drain().collect::<Vec<_>>(),
                ),
                None => (Vec::new(), Vec::new()),
            };
            for o in offers {
                // Only seen if the teardown is undone (the framework is gone otherwise).
                if let Some(o) = Self::release_offer(&mut st, &o) {
                    out.notices
                        .push((o.framework_id, SchedulerEvent::Rescind(o.id)));
                }
            }
            let mut agents: BTreeMap<AgentId, String> = BTreeMap::new();
            for t in tasks {
                if let Some(task) = st.tasks.get(&t) {
                    if let Some(a) = st.agents.get(&task.info.agent_id) {
                        agents.insert(a.info.id.clone(), a.base_url());
                    }
                    let status = master_status(
                        task,
                        TaskState::Killed,
                        "REASON_FRAMEWORK_REMOVED",
                        "Framework was torn down",
                    );
                    self.detach_task(&mut st, &t, &mut out);
                    if let Some(c) = st.completed_tasks.back_mut() {
                        c.state = TaskState::Killed;
                        c.statuses.push(status);
                    }
                }
            }
            for (id, url) in agents {
                out.to_agents.push((
                    id,
                    url,
                    ToAgent::ShutdownFramework(ShutdownFramework {
                        framework_id: fw_id.clone(),
                    }),
                ));
            }
            if let Some(mut f) = st.frameworks.remove(fw_id) {
                out.undo.push(Undo::FrameworkRemoved(f.clone()));
                f.tx = None;
                f.unregistered_time = Some(now_secs());
                st.completed_frameworks.push_back(f);
                while st.completed_frameworks.len() > self.inner.config.max_completed_frameworks {
                    st.completed_frameworks.pop_front();
                }
            }
            out.store_ops.push(Op::delete(format!(
                "{KEY_FRAMEWORKS}{}",
                key_segment(fw_id.as_str())
            )));
            // A teardown that is not stored is undone and refused: the framework and its
            // tasks stay (its offers are rescinded), nothing is shut down.
            stored = self.commit(&mut st, &mut out);
            if stored.is_ok() {
                tracing::info!(framework = %fw_id, "framework torn down");
            }
        }
        self.flush(out);
        self.trigger_allocation();
        stored.map_err(|cause| {
            MasterError::Unavailable(format!("the master could not store the teardown: {cause}"))
        })
    }
}

impl MasterApi for Master {
    fn subscribe(&self, mut info: FrameworkInfo) -> Result<Subscription, MasterError> {
        if info.name.trim().is_empty() {
            return Err(MasterError::Invalid("framework name is empty".into()));
        }
        if info.roles.is_empty() {
            info.roles = vec![ROLE_ANY.to_string()];
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let id = info
            .id
            .clone()
            .filter(|i| !i.as_str().is_empty())
            .unwrap_or_else(|| FrameworkId(format!("{}-0000", uuid::Uuid::new_v4())));
        info.id = Some(id.clone());
        let mut out = Outbox::default();
        let stored;
        {
            let mut st = self.lock();
            let tasks: HashSet<TaskId> = st
                .tasks
                .values()
                .filter(|t| t.framework_id == id)
                .map(|t| t.info.task_id.clone())
                .collect();
            let (registered_time, reregistered) = match st.frameworks.get(&id) {
                Some(f) => (f.registered_time, true),
                None => (now_secs(), false),
            };
            let old_offers: Vec<OfferId> = st
                .frameworks
                .get_mut(&id)
                .map(|f| f.offers.drain().collect())
                .unwrap_or_default();
            for o in old_offers {
                Self::release_offer(&mut st, &o);
            }
            let prior = st.frameworks.insert(
                id.clone(),
                FrameworkEntry {
                    info: info.clone(),
                    id: id.clone(),
                    tx: Some(tx.clone()),
                    registered_time,
                    reregistered_time: reregistered.then(now_secs),
                    unregistered_time: None,
                    suppressed: false,
                    filters: HashMap::new(),
                    tasks,
                    offers: HashSet::new(),
                },
            );
            out.undo.push(Undo::Framework(id.clone(), prior));
            if let Ok(op) = Op::put_json(
                format!("{KEY_FRAMEWORKS}{}", key_segment(id.as_str())),
                &PersistedFramework {
                    info: info.clone(),
                    registered_time,
                },
                Precondition::Any,
            ) {
                out.store_ops.push(op);
            }
            // A subscription that is not stored is undone and refused (the framework retries).
            stored = self.commit(&mut st, &mut out);
            if stored.is_ok() {
                // Sent under the lock: `Subscribed` comes before any offer.
                let _ = tx.send(SchedulerEvent::Subscribed {
                    framework_id: id.clone(),
                });
                tracing::info!(framework = %id, name = %info.name, reregistered, "framework subscribed");
            }
        }
        self.flush(out);
        if let Err(cause) = stored {
            return Err(MasterError::Unavailable(format!(
                "the master could not store the framework: {cause}"
            )));
        }
        self.trigger_allocation();
        Ok(Subscription {
            framework_id: id,
            events: rx,
        })
    }

    fn call(&self, framework: &FrameworkId, call: SchedulerCall) -> Result<(), MasterError> {
        {
            let st = self.lock();
            match st.frameworks.get(framework) {
                Some(f) if f.active() => {}
                _ => return Err(MasterError::UnknownFramework(framework.clone())),
            }
        }
        match call {
            SchedulerCall::Accept {
                offer_ids,
                tasks,
                filters,
            } => self.accept(framework, offer_ids, tasks, filters.refuse_seconds),
            SchedulerCall::Decline { offer_ids, filters } => {
                self.decline(framework, offer_ids, filters.refuse_seconds);
                Ok(())
            }
            SchedulerCall::Revive => {
                let mut st = self.lock();
                if let Some(f) = st.frameworks.get_mut(framework) {
                    f.suppressed = false;
                    f.filters.clear();
                }
                drop(st);
                self.trigger_allocation();
                Ok(())
            }
            SchedulerCall::Suppress => {
                let mut st = self.lock();
                if let Some(f) = st.frameworks.get_mut(framework) {
                    f.suppressed = true;
                }
                Ok(())
            }
            SchedulerCall::Kill {
                task_id,
                grace_period_seconds,
                ..
            } => {
                self.kill(framework, task_id, grace_period_seconds);
                Ok(())
            }
            SchedulerCall::Acknowledge {
                agent_id,
                task_id,
                uuid,
            } => self.acknowledge(agent_id, task_id, uuid),
            SchedulerCall::Reconcile { tasks } => {
                self.reconcile(framework, tasks);
                Ok(())
            }
            SchedulerCall::Teardown => self.teardown(framework),
        }
    }
}
