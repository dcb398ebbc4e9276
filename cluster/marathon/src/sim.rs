//! A simulated master for tests and benchmarks: agents with resources, offers of their free
//! resources (honouring decline filters and suppress/revive), launches that turn RUNNING at
//! once, kills, reconciliation, and knobs to fail tasks, flip health, or lose agents. It
//! implements [`MasterApi`] in process; no processes are run.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use dcos_types::{
    now_secs, AgentId, AgentInfo, AttributeValue, FrameworkId, FrameworkInfo, MasterApi,
    MasterError, Offer, OfferId, Resources, SchedulerCall, SchedulerEvent, Subscription, TaskId,
    TaskInfo, TaskState, TaskStatus,
};
use parking_lot::Mutex;
use tokio::sync::mpsc;

struct SimAgent {
    info: AgentInfo,
    used: BTreeMap<String, Resources>,
    filter_until: f64,
    offered: Option<OfferId>,
    reachable: bool,
}

impl SimAgent {
    fn free(&self) -> BTreeMap<String, Resources> {
        self.info
            .resources
            .iter()
            .map(|(role, total)| {
                let used = self.used.get(role).cloned().unwrap_or_default();
                (role.clone(), total.minus(&used))
            })
            .filter(|(_, r)| r.cpus > 1e-6 || r.mem > 1e-6)
            .collect()
    }
}

#[derive(Clone, Debug)]
pub struct SimTask {
    pub info: TaskInfo,
    pub state: TaskState,
    pub healthy: Option<bool>,
}

#[derive(Default)]
struct Inner {
    agents: BTreeMap<String, SimAgent>,
    tx: Option<mpsc::UnboundedSender<SchedulerEvent>>,
    framework: Option<FrameworkId>,
    suppressed: bool,
    tasks: HashMap<String, SimTask>,
    offer_seq: u64,
    outstanding: HashMap<OfferId, String>,
    acks: u64,
    launches: u64,
    kills: Vec<TaskId>,
    revives: u64,
    suppresses: u64,
    subscriptions: u64,
    reject_accepts: u32,
}

/// Options of the simulation.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Launched tasks report TASK_RUNNING at once.
    pub auto_run: bool,
    /// Tasks with a health check report `healthy: true` with TASK_RUNNING.
    pub healthy: bool,
    /// Keep only what the simulation needs of each TaskInfo (no command, env, labels), so
    /// that memory figures of large benchmarks are Marathon's, not the simulator's.
    pub light: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            auto_run: true,
            healthy: true,
            light: false,
        }
    }
}

/// The simulated master.
pub struct SimMaster {
    inner: Mutex<Inner>,
    opts: Mutex<SimOptions>,
}

fn status(
    task: &str,
    agent: &str,
    state: TaskState,
    healthy: Option<bool>,
    msg: Option<&str>,
    ack: bool,
) -> TaskStatus {
    TaskStatus {
        task_id: TaskId(task.to_string()),
        agent_id: AgentId(agent.to_string()),
        framework_id: None,
        state,
        message: msg.map(String::from),
        reason: None,
        source: "SOURCE_EXECUTOR".into(),
        healthy,
        timestamp: now_secs(),
        uuid: if ack {
            uuid::Uuid::new_v4().to_string()
        } else {
            String::new()
        },
    }
}

impl SimMaster {
    pub fn new(opts: SimOptions) -> Arc<SimMaster> {
        Arc::new(SimMaster {
            inner: Mutex::new(Inner::default()),
            opts: Mutex::new(opts),
        })
    }

    pub fn set_options(&self, opts: SimOptions) {
        *self.opts.lock() = opts;
    }

    /// Adds an agent with `resources` by role.
    pub fn add_agent(
        &self,
        id: &str,
        hostname: &str,
        resources: BTreeMap<String, Resources>,
        attributes: BTreeMap<String, AttributeValue>,
    ) {
        let mut g = self.inner.lock();
        g.agents.insert(
            id.to_string(),
            SimAgent {
                info: AgentInfo {
                    id: AgentId(id.to_string()),
                    hostname: hostname.to_string(),
                    port: 5051,
                    resources,
                    attributes,
                },
                used: BTreeMap::new(),
                filter_until: 0.0,
                offered: None,
                reachable: true,
            },
        );
        Self::allocate(&mut g);
    }

    /// Adds an unreserved agent with `cpus`, `mem` and ports 31000–31999.
    pub fn add_simple_agent(&self, id: &str, cpus: f64, mem: f64) {
        let mut r = BTreeMap::new();
        r.insert(
            "*".to_string(),
            Resources::new(cpus, mem, 100_000.0).with_ports([(31000, 31999)]),
        );
        self.add_agent(id, &format!("{id}.example"), r, BTreeMap::new());
    }

    fn send(g: &Inner, ev: SchedulerEvent) {
        if let Some(tx) = &g.tx {
            let _ = tx.send(ev);
        }
    }

    /// Offers every agent's free resources that are not filtered or already offered.
    fn allocate(g: &mut Inner) {
        if g.suppressed || g.tx.is_none() {
            return;
        }
        let Some(fw) = g.framework.clone() else {
            return;
        };
        let now = now_secs();
        let mut offers = Vec::new();
        let mut seq = g.offer_seq;
        for (id, a) in g.agents.iter_mut() {
            if !a.reachable || a.offered.is_some() || a.filter_until > now {
                continue;
            }
            let free = a.free();
            if free.is_empty() {
                continue;
            }
            seq += 1;
            let oid = OfferId(format!("offer-{seq}"));
            a.offered = Some(oid.clone());
            offers.push((
                oid.clone(),
                id.clone(),
                Offer {
                    id: oid,
                    framework_id: fw.clone(),
                    agent_id: a.info.id.clone(),
                    hostname: a.info.hostname.clone(),
                    resources: free,
                    attributes: a.info.attributes.clone(),
                },
            ));
        }
        g.offer_seq = seq;
        if offers.is_empty() {
            return;
        }
        let mut list = Vec::with_capacity(offers.len());
        for (oid, agent, o) in offers {
            g.outstanding.insert(oid, agent);
            list.push(o);
        }
        Self::send(g, SchedulerEvent::Offers(list));
    }

    /// Re-offers resources whose filters expired.
    pub fn tick(&self) {
        let mut g = self.inner.lock();
        Self::allocate(&mut g);
    }

    /// Calls [`SimMaster::tick`] every `every` on the current runtime.
    pub fn spawn_ticker(self: &Arc<Self>, every: Duration) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                match me.upgrade() {
                    Some(m) => m.tick(),
                    None => break,
                }
            }
        });
    }

    fn release(g: &mut Inner, task: &str) -> Option<SimTask> {
        let t = g.tasks.remove(task)?;
        if let Some(a) = g.agents.get_mut(&t.info.agent_id.0) {
            if let Some(u) = a.used.get_mut(&t.info.role) {
                *u = u.minus(&t.info.resources);
            }
            a.filter_until = 0.0;
        }
        Some(t)
    }

    /// Ends a task with `state` (e.g. TASK_FAILED) and `message`.
    pub fn finish_task(&self, task: &str, state: TaskState, message: &str) {
        let mut g = self.inner.lock();
        if let Some(t) = Self::release(&mut g, task) {
            let st = status(
                task,
                &t.info.agent_id.0,
                state,
                t.healthy,
                Some(message),
                true,
            );
            Self::send(&g, SchedulerEvent::Update(st));
        }
    }

    /// Reports a health result for a running task (as the agent's checker would).
    pub fn set_health(&self, task: &str, healthy: bool) {
        let mut g = self.inner.lock();
        let Some(t) = g.tasks.get_mut(task) else {
            return;
        };
        t.healthy = Some(healthy);
        let st = status(
            task,
            &t.info.agent_id.0,
            t.state,
            Some(healthy),
            Some("health check"),
            true,
        );
        Self::send(&g, SchedulerEvent::Update(st));
    }

    /// Marks a task RUNNING (when `auto_run` is off).
    pub fn run_task(&self, task: &str) {
        let mut g = self.inner.lock();
        let healthy = self.opts.lock().healthy;
        let Some(t) = g.tasks.get_mut(task) else {
            return;
        };
        t.state = TaskState::Running;
        if t.info.health_check.is_some() && healthy {
            t.healthy = Some(true);
        }
        let st = status(
            task,
            &t.info.agent_id.0,
            TaskState::Running,
            t.healthy,
            None,
            true,
        );
        Self::send(&g, SchedulerEvent::Update(st));
    }

    /// The agent stops answering: its tasks become TASK_UNREACHABLE.
    pub fn set_unreachable(&self, agent: &str) {
        let mut g = self.inner.lock();
        if let Some(a) = g.agents.get_mut(agent) {
            a.reachable = false;
        }
        let ids: Vec<String> = g
            .tasks
            .values()
            .filter(|t| t.info.agent_id.0 == agent)
            .map(|t| t.info.task_id.0.clone())
            .collect();
        for id in ids {
            let st = status(
                &id,
                agent,
                TaskState::Unreachable,
                None,
                Some("agent unreachable"),
                false,
            );
            Self::send(&g, SchedulerEvent::Update(st));
        }
    }

    /// The agent is removed: its tasks are gone.
    pub fn remove_agent(&self, agent: &str) {
        let mut g = self.inner.lock();
        g.agents.remove(agent);
        g.tasks.retain(|_, t| t.info.agent_id.0 != agent);
        Self::send(&g, SchedulerEvent::AgentLost(AgentId(agent.to_string())));
    }

    /// The event stream ends (as when the master restarts).
    pub fn disconnect(&self) {
        self.inner.lock().tx = None;
    }

    pub fn tasks(&self) -> Vec<SimTask> {
        self.inner.lock().tasks.values().cloned().collect()
    }

    pub fn running(&self) -> usize {
        self.inner
            .lock()
            .tasks
            .values()
            .filter(|t| t.state == TaskState::Running)
            .count()
    }

    pub fn launches(&self) -> u64 {
        self.inner.lock().launches
    }

    pub fn acks(&self) -> u64 {
        self.inner.lock().acks
    }

    pub fn kills(&self) -> Vec<TaskId> {
        self.inner.lock().kills.clone()
    }

    pub fn suppressed(&self) -> bool {
        self.inner.lock().suppressed
    }

    /// The next `n` Accept calls fail as if their offers had been rescinded.
    pub fn reject_next_accepts(&self, n: u32) {
        self.inner.lock().reject_accepts = n;
    }

    pub fn subscriptions(&self) -> u64 {
        self.inner.lock().subscriptions
    }
}

impl MasterApi for SimMaster {
    fn subscribe(&self, info: FrameworkInfo) -> Result<Subscription, MasterError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut g = self.inner.lock();
        let id = info
            .id
            .unwrap_or_else(|| FrameworkId("sim-framework-0001".into()));
        g.framework = Some(id.clone());
        g.tx = Some(tx);
        g.suppressed = false;
        g.subscriptions += 1;
        for a in g.agents.values_mut() {
            a.offered = None;
            a.filter_until = 0.0;
        }
        g.outstanding.clear();
        Self::send(
            &g,
            SchedulerEvent::Subscribed {
                framework_id: id.clone(),
            },
        );
        Self::allocate(&mut g);
        Ok(Subscription {
            framework_id: id,
            events: rx,
        })
    }

    fn call(&self, framework: &FrameworkId, call: SchedulerCall) -> Result<(), MasterError> {
        let mut g = self.inner.lock();
        if g.framework.as_ref() != Some(framework) {
            return Err(MasterError::UnknownFramework(framework.clone()));
        }
        let now = now_secs();
        match call {
            SchedulerCall::Accept {
                offer_ids,
                tasks,
                filters,
            } => {
                let opts = self.opts.lock().clone();
                if g.reject_accepts > 0 {
                    g.reject_accepts -= 1;
                    for oid in &offer_ids {
                        if let Some(agent) = g.outstanding.remove(oid) {
                            if let Some(a) = g.agents.get_mut(&agent) {
                                a.offered = None;
                            }
                        }
                    }
                    return Err(MasterError::InvalidOffer(
                        offer_ids.first().cloned().unwrap_or(OfferId(String::new())),
                    ));
                }
                for oid in &offer_ids {
                    let Some(agent) = g.outstanding.remove(oid) else {
                        return Err(MasterError::InvalidOffer(oid.clone()));
                    };
                    if let Some(a) = g.agents.get_mut(&agent) {
                        a.offered = None;
                        a.filter_until = now + filters.refuse_seconds;
                    }
                }
                for mut t in tasks {
                    if opts.light {
                        t.command = Default::default();
                        t.labels.clear();
                        t.name.clear();
                    }
                    let agent = t.agent_id.0.clone();
                    let fits = g.agents.get(&agent).is_some_and(|a| {
                        a.free()
                            .get(&t.role)
                            .is_some_and(|free| free.contains(&t.resources))
                    });
                    if !fits {
                        let st = status(
                            &t.task_id.0,
                            &agent,
                            TaskState::Error,
                            None,
                            Some("resources not available on the agent"),
                            true,
                        );
                        Self::send(&g, SchedulerEvent::Update(st));
                        continue;
                    }
                    if let Some(a) = g.agents.get_mut(&agent) {
                        let u = a.used.entry(t.role.clone()).or_default();
                        *u = u.plus(&t.resources);
                    }
                    g.launches += 1;
                    let healthy =
                        (opts.auto_run && opts.healthy && t.health_check.is_some()).then_some(true);
                    let state = if opts.auto_run {
                        TaskState::Running
                    } else {
                        TaskState::Staging
                    };
                    let st = status(&t.task_id.0, &agent, state, healthy, None, true);
                    g.tasks.insert(
                        t.task_id.0.clone(),
                        SimTask {
                            info: t,
                            state,
                            healthy,
                        },
                    );
                    Self::send(&g, SchedulerEvent::Update(st));
                }
                Self::allocate(&mut g);
            }
            SchedulerCall::Decline { offer_ids, filters } => {
                for oid in &offer_ids {
                    if let Some(agent) = g.outstanding.remove(oid) {
                        if let Some(a) = g.agents.get_mut(&agent) {
                            a.offered = None;
                            a.filter_until = now + filters.refuse_seconds;
                        }
                    }
                }
            }
            SchedulerCall::Revive => {
                g.suppressed = false;
                g.revives += 1;
                for a in g.agents.values_mut() {
                    a.filter_until = 0.0;
                }
                Self::allocate(&mut g);
            }
            SchedulerCall::Suppress => {
                g.suppressed = true;
                g.suppresses += 1;
            }
            SchedulerCall::Kill { task_id, .. } => {
                g.kills.push(task_id.clone());
                if let Some(t) = Self::release(&mut g, &task_id.0) {
                    let reachable = g
                        .agents
                        .get(&t.info.agent_id.0)
                        .is_some_and(|a| a.reachable);
                    if reachable {
                        let st = status(
                            &task_id.0,
                            &t.info.agent_id.0,
                            TaskState::Killed,
                            None,
                            Some("killed"),
                            true,
                        );
                        Self::send(&g, SchedulerEvent::Update(st));
                    } else {
                        // Can't reach the agent: keep the task until it comes back.
                        g.tasks.insert(task_id.0.clone(), t);
                    }
                }
                Self::allocate(&mut g);
            }
            SchedulerCall::Acknowledge { .. } => g.acks += 1,
            SchedulerCall::Reconcile { tasks } => {
                let list: Vec<(String, String, TaskState, Option<bool>)> = if tasks.is_empty() {
                    g.tasks
                        .values()
                        .map(|t| {
                            (
                                t.info.task_id.0.clone(),
                                t.info.agent_id.0.clone(),
                                t.state,
                                t.healthy,
                            )
                        })
                        .collect()
                } else {
                    tasks
                        .iter()
                        .map(|(id, agent)| match g.tasks.get(&id.0) {
                            Some(t) => {
                                (id.0.clone(), t.info.agent_id.0.clone(), t.state, t.healthy)
                            }
                            None => (
                                id.0.clone(),
                                agent.as_ref().map(|a| a.0.clone()).unwrap_or_default(),
                                TaskState::Gone,
                                None,
                            ),
                        })
                        .collect()
                };
                for (id, agent, state, healthy) in list {
                    let st = status(&id, &agent, state, healthy, Some("reconciliation"), false);
                    Self::send(&g, SchedulerEvent::Update(st));
                }
            }
            SchedulerCall::Teardown => {
                g.tasks.clear();
                for a in g.agents.values_mut() {
                    a.used.clear();
                }
                g.framework = None;
                g.tx = None;
            }
        }
        Ok(())
    }
}
