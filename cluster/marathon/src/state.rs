//! The scheduler's in-memory state (apps, tasks, deployments), its store layout, and the
//! transitions applied to it. Everything here is synchronous and runs under one lock; the
//! side effects (master calls, store writes, events) are collected and applied by the caller.
//!
//! Store layout (one key per object, no whole-tree blobs):
//! * `/marathon/framework-id` — the framework id (JSON string)
//! * `/marathon/apps/<key>` — the current app definition (`key`: id with `/` → `_`)
//! * `/marathon/versions/<key>/<version>` — the app at each version (newest `max_versions` kept)
//! * `/marathon/deployments/<uuid>` — running deployments
//! * `/marathon/tasks/<task-id>` — live tasks

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use dcos_store::Op;
use dcos_types::{AgentId, AttributeValue, SchedulerCall, TaskId, TaskState, TaskStatus};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::constraints::Constraint;
use crate::events::{Event, EventBus};
use crate::matcher::AppOfferStats;
use crate::model::{id_to_key, iso, App, VersionInfo};
use crate::planner::{self, AppView, TaskView};
use crate::readiness::Readiness;

pub const P_FRAMEWORK: &str = "/marathon/framework-id";
pub const P_APPS: &str = "/marathon/apps/";
pub const P_VERSIONS: &str = "/marathon/versions/";
pub const P_DEPLOYMENTS: &str = "/marathon/deployments/";
pub const P_TASKS: &str = "/marathon/tasks/";

/// Health-check results of one task, as the agent reports them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub consecutive_failures: u32,
    pub first_success: Option<f64>,
    pub last_success: Option<f64>,
    pub last_failure: Option<f64>,
    pub last_failure_cause: Option<String>,
}

/// A task of an app (Marathon 1.x `Task`), persisted as is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub app_id: String,
    pub agent_id: String,
    pub host: String,
    pub ports: Vec<u16>,
    pub state: TaskState,
    pub staged_at: f64,
    pub started_at: Option<f64>,
    /// The app version the task was launched with.
    pub version: String,
    /// The app's `lastConfigChangeAt` at launch: tasks with another one are "old".
    pub config_version: String,
    pub healthy: Option<bool>,
    #[serde(default)]
    pub health: Health,
    /// When we decided to kill it (scale down, upgrade, delete): it no longer counts.
    pub kill_requested: Option<f64>,
    pub unreachable_since: Option<f64>,
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeValue>,
    pub role: String,
    /// Readiness while a deployment needs it (`None`: not required). In memory only, as in
    /// Marathon.
    #[serde(skip)]
    pub readiness: Option<Readiness>,
    #[serde(skip)]
    pub json: Option<String>,
}

impl Task {
    pub fn is_running(&self) -> bool {
        self.state == TaskState::Running
    }
}

#[derive(Clone, Debug, Default)]
pub struct Backoff {
    pub delay: f64,
    pub until: f64,
    pub last_failure: f64,
}

pub struct AppEntry {
    pub app: Arc<App>,
    /// Versions, newest first.
    pub versions: Vec<String>,
    pub tasks: BTreeMap<String, Task>,
    pub constraints: Vec<Constraint>,
    pub backoff: Backoff,
    pub last_task_failure: Option<Value>,
    /// Being deleted: hidden from the API, its tasks are being killed.
    pub deleted: bool,
    /// Instances waiting for an offer (from the last plan).
    pub pending: usize,
    pub queued_since: Option<f64>,
    pub offer_stats: AppOfferStats,
    pub last_used_offer_at: Option<f64>,
    pub last_unused_offer_at: Option<f64>,
    /// The plan says the tasks match the definition.
    pub converged: bool,
    /// Cached JSON of the definition (an object).
    pub json: Option<String>,
}

impl AppEntry {
    pub fn new(app: App) -> AppEntry {
        let constraints = Constraint::parse_all(&app.constraints);
        AppEntry {
            app: Arc::new(app),
            versions: Vec::new(),
            tasks: BTreeMap::new(),
            constraints,
            backoff: Backoff::default(),
            last_task_failure: None,
            deleted: false,
            pending: 0,
            queued_since: None,
            offer_stats: AppOfferStats::default(),
            last_used_offer_at: None,
            last_unused_offer_at: None,
            converged: false,
            json: None,
        }
    }

    pub fn set_app(&mut self, app: App) {
        self.constraints = Constraint::parse_all(&app.constraints);
        // Serialized once here rather than by the first list request.
        self.json = Some(crate::render::app_json(&app));
        self.app = Arc::new(app);
        for t in self.tasks.values_mut() {
            t.json = None;
        }
    }

    pub fn config_version(&self) -> &str {
        self.app
            .version_info
            .as_ref()
            .map(|v| v.last_config_change_at.as_str())
            .unwrap_or("")
    }

    /// Tasks that count toward `instances`.
    pub fn live_task_views(&self, now: f64) -> Vec<TaskView> {
        let inactive_after = self.app.unreachable_after().map(|(i, _)| i);
        let cfg = self.config_version();
        self.tasks
            .values()
            .filter(|t| t.kill_requested.is_none() && !t.state.is_terminal())
            .filter(|t| match (t.unreachable_since, inactive_after) {
                (Some(since), Some(after)) => now - since < after,
                _ => true,
            })
            .map(|t| TaskView {
                id: t.id.clone(),
                current: t.config_version == cfg,
                running: t.is_running(),
                healthy: t.healthy,
                ready: t.readiness.as_ref().is_none_or(|r| r.ready),
                staged_at: t.staged_at,
                started_at: t.started_at,
            })
            .collect()
    }

    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let (mut staged, mut running, mut healthy, mut unhealthy) = (0, 0, 0, 0);
        let checks = !self.app.health_checks.is_empty();
        for t in self.tasks.values() {
            match t.state {
                TaskState::Staging | TaskState::Starting => staged += 1,
                TaskState::Running => {
                    running += 1;
                    if checks {
                        match t.healthy {
                            Some(true) => healthy += 1,
                            Some(false) => unhealthy += 1,
                            None => {}
                        }
                    }
                }
                _ => {}
            }
        }
        (staged, running, healthy, unhealthy)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub action: String,
    pub app: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: String,
    pub version: String,
    pub steps: Vec<Vec<Action>>,
    /// 1-based, as Marathon reports it.
    pub current_step: usize,
    /// The apps before the change (`None`: did not exist), for rollback.
    pub original: Vec<(String, Option<Value>)>,
    pub created: f64,
}

impl Deployment {
    pub fn affected_apps(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        let mut out: Vec<String> = Vec::new();
        for s in &self.steps {
            for a in s {
                if seen.insert(a.app.as_str()) {
                    out.push(a.app.clone());
                }
            }
        }
        out
    }

    pub fn touches(&self, app: &str) -> bool {
        self.steps.iter().flatten().any(|a| a.app == app)
    }

    /// DeploymentInfo; `readiness` gives an app's `readinessCheckResults`.
    pub fn to_json(&self, readiness: impl Fn(&str) -> Vec<Value>) -> Value {
        let cur = self
            .steps
            .get(self.current_step.saturating_sub(1))
            .cloned()
            .unwrap_or_default();
        json!({
            "id": self.id,
            "version": self.version,
            "affectedApps": self.affected_apps(),
            "affectedPods": [],
            "steps": self.steps.iter().map(|s| json!({
                "actions": s.iter().map(|a| json!({"action": a.action, "app": a.app})).collect::<Vec<_>>()
            })).collect::<Vec<_>>(),
            "currentActions": cur.iter().map(|a| json!({
                "action": a.action, "app": a.app, "readinessCheckResults": readiness(&a.app)
            })).collect::<Vec<_>>(),
            "currentStep": self.current_step,
            "totalSteps": self.steps.len(),
        })
    }
}

/// Side effects collected while the state lock is held. They take effect through
/// `Core::persist`: the ops are committed first; the events and calls only if that worked.
#[derive(Default)]
pub struct Effects {
    pub ops: Vec<Op>,
    pub calls: Vec<SchedulerCall>,
    /// Events reporting the change, published once it is stored.
    pub events: Vec<Arc<Event>>,
    /// New launch demand appeared: revive offers.
    pub revive: bool,
}

impl Effects {
    /// Queues the event `kind` (built only when someone listens) until the change is stored.
    pub fn publish(&mut self, bus: &EventBus, kind: &str, build: impl FnOnce() -> Value) {
        self.events.extend(bus.event(kind, build));
    }
    pub fn put<T: Serialize + ?Sized>(&mut self, key: String, v: &T) {
        match serde_json::to_vec(v) {
            Ok(bytes) => self.ops.push(Op::put(key, bytes)),
            Err(e) => tracing::error!("cannot serialize {key}: {e}"),
        }
    }
    pub fn delete(&mut self, key: String) {
        self.ops.push(Op::delete(key));
    }
}

#[derive(Default, Clone, Debug)]
pub struct Counters {
    pub tasks_launched: u64,
    pub status_updates: u64,
    pub tasks_failed: u64,
    pub tasks_killed: u64,
    pub offers_received: u64,
    pub offers_declined: u64,
    pub deployments_started: u64,
    pub deployments_succeeded: u64,
    pub deployments_cancelled: u64,
}

pub struct State {
    pub apps: BTreeMap<String, AppEntry>,
    pub deployments: IndexMap<String, Deployment>,
    pub framework_id: Option<String>,
    /// The framework id is not stored yet: the next commit writes it (no launch is sent
    /// under an id that a restart would not know).
    pub framework_id_unstored: bool,
    pub last_version_ms: i64,
    pub suppressed: bool,
    pub counters: Counters,
    pub service_ports: BTreeSet<i64>,
    pub dirty: BTreeSet<String>,
    pub started_at: f64,
    pub next_service_port: i64,
    /// Size of the last app list response (to size the next buffer).
    pub last_list_bytes: usize,
    /// When we last asked the master for the state of all our tasks.
    pub last_reconcile: f64,
}

impl Default for State {
    fn default() -> Self {
        State {
            apps: BTreeMap::new(),
            deployments: IndexMap::new(),
            framework_id: None,
            framework_id_unstored: false,
            last_version_ms: 0,
            suppressed: false,
            counters: Counters::default(),
            service_ports: BTreeSet::new(),
            dirty: BTreeSet::new(),
            started_at: dcos_types::now_secs(),
            next_service_port: 0,
            last_list_bytes: 0,
            last_reconcile: dcos_types::now_secs(),
        }
    }
}

pub fn app_key(id: &str) -> String {
    format!("{P_APPS}{}", id_to_key(id))
}
pub fn version_key(id: &str, v: &str) -> String {
    format!("{P_VERSIONS}{}/{}", id_to_key(id), v)
}
pub fn task_key(id: &str) -> String {
    format!("{P_TASKS}{id}")
}
pub fn deployment_key(id: &str) -> String {
    format!("{P_DEPLOYMENTS}{id}")
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeError {
    /// Locked by these deployments.
    Locked(Vec<String>),
    NotFound(String),
    Exists(String),
}

impl State {
    /// A new version timestamp, strictly after the previous one.
    pub fn next_version(&mut self, now: f64) -> String {
        let ms = ((now * 1000.0) as i64).max(self.last_version_ms + 1);
        self.last_version_ms = ms;
        iso(ms as f64 / 1000.0)
    }

    pub fn visible(&self, id: &str) -> Option<&AppEntry> {
        self.apps.get(id).filter(|e| !e.deleted)
    }

    pub fn locks(&self, app: &str) -> Vec<String> {
        self.deployments
            .values()
            .filter(|d| d.touches(app))
            .map(|d| d.id.clone())
            .collect()
    }

    /// Assigns cluster-unique service ports to `port: 0` definitions (keeping the ones the
    /// previous version had at the same index).
    fn assign_service_ports(&mut self, app: &mut App, prev: Option<&App>, range: (i64, i64)) {
        let prev_ports = prev.map(|p| p.service_ports()).unwrap_or_default();
        let span = (range.1 - range.0 + 1).max(1);
        let cursor = &mut self.next_service_port;
        let mut take = |used: &mut BTreeSet<i64>| -> i64 {
            for _ in 0..span {
                let p = range.0 + (*cursor - range.0).rem_euclid(span);
                *cursor = p + 1;
                if used.insert(p) {
                    return p;
                }
            }
            // Range exhausted: share the last port rather than fail the deployment.
            range.1
        };
        let bridge = app.uses_port_mappings();
        if bridge {
            if let Some(c) = &mut app.container {
                let pms = if c.port_mappings.is_some() {
                    c.port_mappings.as_mut()
                } else {
                    c.docker.as_mut().and_then(|d| d.port_mappings.as_mut())
                };
                if let Some(pms) = pms {
                    for (i, pm) in pms.iter_mut().enumerate() {
                        if pm.service_port == 0 {
                            pm.service_port = match prev_ports.get(i) {
                                Some(&p) if p != 0 => p,
                                _ => take(&mut self.service_ports),
                            };
                        } else {
                            self.service_ports.insert(pm.service_port);
                        }
                    }
                }
            }
        } else if let Some(pds) = &mut app.port_definitions {
            for (i, pd) in pds.iter_mut().enumerate() {
                if pd.port == 0 {
                    pd.port = match prev_ports.get(i) {
                        Some(&p) if p != 0 => p,
                        _ => take(&mut self.service_ports),
                    };
                } else {
                    self.service_ports.insert(pd.port);
                }
            }
        }
    }

    /// Starts one deployment changing `changes` (`None` target: delete). With `restart`, a
    /// same-config change still replaces every task. `force` cancels conflicting deployments.
    #[allow(clippy::too_many_arguments)]
    pub fn deploy(
        &mut self,
        changes: Vec<(String, Option<App>)>,
        force: bool,
        restart: bool,
        now: f64,
        port_range: (i64, i64),
        max_versions: usize,
        fx: &mut Effects,
        events: &EventBus,
    ) -> Result<Deployment, ChangeError> {
        // Locks first: nothing changes unless every app is free (or forced).
        let mut conflicting: Vec<String> = Vec::new();
        for (id, _) in &changes {
            for d in self.locks(id) {
                if !conflicting.contains(&d) {
                    conflicting.push(d);
                }
            }
        }
        if !conflicting.is_empty() && !force {
            return Err(ChangeError::Locked(conflicting));
        }
        for (id, target) in &changes {
            if target.is_none() && self.visible(id).is_none() {
                return Err(ChangeError::NotFound(id.clone()));
            }
        }
        for d in conflicting {
            self.cancel(&d, fx, events);
        }
        let version = self.next_version(now);
        let dep_id = uuid::Uuid::new_v4().to_string();
        let mut start = Vec::new();
        let mut main = Vec::new();
        let mut original = Vec::new();
        for (id, target) in changes {
            let prev = self.visible(&id).map(|e| e.app.clone());
            original.push((id.clone(), prev.as_ref().map(|a| a.to_value())));
            match target {
                None => {
                    if let Some(e) = self.apps.get_mut(&id) {
                        e.deleted = true;
                        e.pending = 0;
                        e.json = None;
                        for v in &e.versions {
                            fx.delete(version_key(&id, v));
                        }
                        e.versions.clear();
                    }
                    fx.delete(app_key(&id));
                    main.push(Action {
                        action: "StopApplication".into(),
                        app: id.clone(),
                    });
                    fx.publish(events, "app_terminated_event", || json!({"appId": id}));
                }
                Some(mut app) => {
                    app.id = id.clone();
                    self.assign_service_ports(&mut app, prev.as_deref(), port_range);
                    let config_change = match &prev {
                        None => true,
                        Some(p) => restart || !p.same_config(&app),
                    };
                    let last_config = if config_change {
                        version.clone()
                    } else {
                        prev.as_ref()
                            .and_then(|p| p.version_info.as_ref())
                            .map(|v| v.last_config_change_at.clone())
                            .unwrap_or_else(|| version.clone())
                    };
                    app.version = Some(version.clone());
                    app.version_info = Some(VersionInfo {
                        last_scaling_at: version.clone(),
                        last_config_change_at: last_config,
                    });
                    let action = match (&prev, config_change) {
                        (None, _) => {
                            start.push(Action {
                                action: "StartApplication".into(),
                                app: id.clone(),
                            });
                            "ScaleApplication"
                        }
                        (Some(_), true) => "RestartApplication",
                        (Some(_), false) => "ScaleApplication",
                    };
                    main.push(Action {
                        action: action.into(),
                        app: id.clone(),
                    });
                    fx.put(app_key(&id), &app.to_value());
                    fx.put(version_key(&id, &version), &app.to_value());
                    let entry = match self.apps.get_mut(&id) {
                        Some(e) if !e.deleted => e,
                        _ => {
                            // New app (or re-created while its old tasks still die).
                            let old_tasks =
                                self.apps.remove(&id).map(|e| e.tasks).unwrap_or_default();
                            let mut e = AppEntry::new(app.clone());
                            e.tasks = old_tasks;
                            self.apps.insert(id.clone(), e);
                            self.apps.get_mut(&id).expect("just inserted")
                        }
                    };
                    if config_change {
                        entry.backoff = Backoff::default();
                    }
                    entry.set_app(app);
                    entry.versions.insert(0, version.clone());
                    while entry.versions.len() > max_versions.max(1) {
                        if let Some(v) = entry.versions.pop() {
                            fx.delete(version_key(&id, &v));
                        }
                    }
                }
            }
            self.dirty.insert(id);
        }
        let mut steps = Vec::new();
        if !start.is_empty() {
            steps.push(start);
        }
        steps.extend(self.order_by_dependencies(main));
        let dep = Deployment {
            id: dep_id.clone(),
            version,
            steps,
            current_step: 1,
            original,
            created: now,
        };
        fx.put(deployment_key(&dep_id), &dep);
        self.deployments.insert(dep_id, dep.clone());
        self.counters.deployments_started += 1;
        fx.revive = true;
        fx.publish(events, "deployment_info", || {
            json!({"plan": deployment_plan_json(&dep), "currentStep": dep.steps.first().map(|s| step_json(s))})
        });
        Ok(dep)
    }

    /// Splits actions into sequential steps so that an app starts after the apps it depends on
    /// (`dependencies`, resolved against the app's group) that are part of the same deployment;
    /// stops run first, in reverse order. A cycle falls back to one step.
    fn order_by_dependencies(&self, actions: Vec<Action>) -> Vec<Vec<Action>> {
        let (stops, runs): (Vec<Action>, Vec<Action>) = actions
            .into_iter()
            .partition(|a| a.action == "StopApplication");
        let ids: BTreeSet<&str> = runs.iter().map(|a| a.app.as_str()).collect();
        let deps = |id: &str| -> Vec<String> {
            let parent = id
                .rsplit_once('/')
                .map(|(p, _)| p)
                .filter(|p| !p.is_empty())
                .unwrap_or("/");
            self.apps
                .get(id)
                .map(|e| {
                    e.app
                        .dependencies
                        .iter()
                        .map(|d| crate::model::canonical_id(d, parent))
                        .filter(|d| ids.contains(d.as_str()) && d != id)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut level: BTreeMap<String, usize> = runs.iter().map(|a| (a.app.clone(), 0)).collect();
        let mut changed = true;
        let mut rounds = 0;
        while changed && rounds <= runs.len() {
            changed = false;
            rounds += 1;
            for a in &runs {
                let want = deps(&a.app)
                    .iter()
                    .map(|d| level.get(d).copied().unwrap_or(0) + 1)
                    .max()
                    .unwrap_or(0);
                if level.get(&a.app).copied().unwrap_or(0) < want {
                    level.insert(a.app.clone(), want);
                    changed = true;
                }
            }
        }
        if changed {
            // Cyclic: no ordering.
            level.values_mut().for_each(|l| *l = 0);
        }
        let max = level.values().copied().max().unwrap_or(0);
        let mut steps: Vec<Vec<Action>> = Vec::new();
        if !stops.is_empty() {
            steps.push(stops);
        }
        for l in 0..=max {
            let step: Vec<Action> = runs
                .iter()
                .filter(|a| level.get(&a.app).copied() == Some(l))
                .cloned()
                .collect();
            if !step.is_empty() {
                steps.push(step);
            }
        }
        if steps.is_empty() {
            steps.push(Vec::new());
        }
        steps
    }

    /// Stops a deployment where it is (no rollback).
    pub fn cancel(&mut self, id: &str, fx: &mut Effects, events: &EventBus) -> Option<Deployment> {
        let d = self.deployments.shift_remove(id)?;
        fx.delete(deployment_key(id));
        self.counters.deployments_cancelled += 1;
        for a in d.affected_apps() {
            self.dirty.insert(a);
        }
        fx.publish(
            events,
            "deployment_failed",
            || json!({"id": d.id, "plan": deployment_plan_json(&d), "reason": "cancelled"}),
        );
        Some(d)
    }

    /// Re-plans the dirty apps: sets `pending`, requests kills, finishes deployments. When a
    /// deployment step completes, the apps of the next step are planned in the same call.
    pub fn reconcile(
        &mut self,
        now: f64,
        kill_retry: f64,
        launch_timeout: f64,
        fx: &mut Effects,
        events: &EventBus,
    ) {
        for _ in 0..16 {
            let next = self.reconcile_once(now, kill_retry, launch_timeout, fx, events);
            if next.is_empty() {
                break;
            }
            self.dirty.extend(next);
        }
    }

    fn reconcile_once(
        &mut self,
        now: f64,
        kill_retry: f64,
        launch_timeout: f64,
        fx: &mut Effects,
        events: &EventBus,
    ) -> Vec<String> {
        let dirty = std::mem::take(&mut self.dirty);
        let deploying: BTreeSet<String> = self
            .deployments
            .values()
            .flat_map(|d| d.affected_apps())
            .collect();
        // Apps whose step has not begun yet (waiting for their dependencies) stay as they are.
        let waiting: BTreeSet<String> = self
            .deployments
            .values()
            .flat_map(|d| d.steps.iter().skip(d.current_step).flatten())
            .map(|a| a.app.clone())
            .collect();
        let mut remove = Vec::new();
        for id in dirty {
            if waiting.contains(&id) {
                if let Some(e) = self.apps.get_mut(&id) {
                    e.pending = 0;
                    e.converged = false;
                }
                continue;
            }
            let Some(e) = self.apps.get_mut(&id) else {
                continue;
            };
            // Expunge unreachable tasks past expungeAfterSeconds.
            if let Some((_, expunge)) = e.app.unreachable_after() {
                let gone: Vec<String> = e
                    .tasks
                    .values()
                    .filter(|t| t.unreachable_since.is_some_and(|s| now - s >= expunge))
                    .map(|t| t.id.clone())
                    .collect();
                for tid in gone {
                    if let Some(t) = e.tasks.remove(&tid) {
                        fx.delete(task_key(&tid));
                        fx.calls.push(SchedulerCall::Kill {
                            task_id: TaskId(tid.clone()),
                            agent_id: Some(AgentId(t.agent_id.clone())),
                            grace_period_seconds: None,
                        });
                    }
                }
            }
            // Tasks that never got to RUNNING: kill, and replace (they no longer count).
            let grace = e.app.task_kill_grace_period_seconds;
            for t in e.tasks.values_mut() {
                if t.kill_requested.is_none()
                    && matches!(t.state, TaskState::Staging | TaskState::Starting)
                    && now - t.staged_at > launch_timeout
                {
                    tracing::warn!(
                        "marathon: task {} not running after {launch_timeout}s; killing it",
                        t.id
                    );
                    t.kill_requested = Some(now);
                    t.json = None;
                    fx.put(task_key(&t.id), &*t);
                    fx.calls.push(SchedulerCall::Kill {
                        task_id: TaskId(t.id.clone()),
                        agent_id: Some(AgentId(t.agent_id.clone())),
                        grace_period_seconds: grace,
                    });
                }
            }
            let view = AppView {
                instances: e.app.instances.max(0) as usize,
                minimum_health_capacity: e.app.upgrade_strategy.minimum_health_capacity,
                maximum_over_capacity: e.app.upgrade_strategy.maximum_over_capacity,
                has_health_checks: !e.app.health_checks.is_empty(),
                has_readiness_checks: !e.app.readiness_checks.is_empty(),
                kill_oldest_first: e.app.kill_selection == "OLDEST_FIRST",
                deploying: deploying.contains(&id),
                stopping: e.deleted,
            };
            let tasks = e.live_task_views(now);
            let p = planner::plan(&view, &tasks);
            for tid in &p.kill {
                if let Some(t) = e.tasks.get_mut(tid) {
                    t.kill_requested = Some(now);
                    t.json = None;
                    fx.put(task_key(tid), &*t);
                    fx.calls.push(SchedulerCall::Kill {
                        task_id: TaskId(tid.clone()),
                        agent_id: Some(AgentId(t.agent_id.clone())),
                        grace_period_seconds: grace,
                    });
                    self.counters.tasks_killed += 1;
                }
            }
            // Re-send kills that were not confirmed.
            for t in e.tasks.values_mut() {
                if let Some(at) = t.kill_requested {
                    if now - at >= kill_retry {
                        t.kill_requested = Some(now);
                        fx.calls.push(SchedulerCall::Kill {
                            task_id: TaskId(t.id.clone()),
                            agent_id: Some(AgentId(t.agent_id.clone())),
                            grace_period_seconds: grace,
                        });
                    }
                }
            }
            if p.launch > e.pending {
                fx.revive = true;
            }
            e.pending = p.launch;
            if e.pending > 0 {
                e.queued_since.get_or_insert(now);
            } else {
                e.queued_since = None;
                e.offer_stats = AppOfferStats::default();
            }
            e.converged = p.converged;
            if e.deleted && e.tasks.is_empty() {
                remove.push(id.clone());
            }
        }
        // Deployments: advance steps whose apps converged.
        let mut finished = Vec::new();
        let mut advanced = Vec::new();
        for d in self.deployments.values_mut() {
            while let Some(step) = d.steps.get(d.current_step.saturating_sub(1)) {
                let done = step.iter().all(|a| match a.action.as_str() {
                    "StartApplication" => true,
                    "StopApplication" => self
                        .apps
                        .get(&a.app)
                        .is_none_or(|e| !e.deleted || e.tasks.is_empty()),
                    _ => self
                        .apps
                        .get(&a.app)
                        .is_some_and(|e| e.converged && !e.deleted),
                });
                if !done {
                    break;
                }
                let step_json = step_json(step);
                let plan = deployment_plan_json(d);
                fx.publish(
                    events,
                    "deployment_step_success",
                    || json!({"plan": plan, "currentStep": step_json}),
                );
                if d.current_step >= d.steps.len() {
                    finished.push(d.id.clone());
                    break;
                }
                d.current_step += 1;
                if let Some(next) = d.steps.get(d.current_step - 1) {
                    advanced.extend(next.iter().map(|a| a.app.clone()));
                }
                fx.put(deployment_key(&d.id), &*d);
            }
        }
        for id in finished {
            if let Some(d) = self.deployments.shift_remove(&id) {
                fx.delete(deployment_key(&id));
                self.counters.deployments_succeeded += 1;
                fx.publish(
                    events,
                    "deployment_success",
                    || json!({"id": d.id, "plan": deployment_plan_json(&d)}),
                );
            }
        }
        for id in remove {
            if !self.deployments.values().any(|d| d.touches(&id)) {
                if let Some(e) = self.apps.remove(&id) {
                    for p in e.app.service_ports() {
                        self.service_ports.remove(&p);
                    }
                }
            }
        }
        advanced
    }

    /// Applies one status update. Returns whether it was for a known task.
    pub fn on_status(&mut self, st: &TaskStatus, now: f64, fx: &mut Effects, events: &EventBus) {
        self.counters.status_updates += 1;
        if !st.uuid.is_empty() {
            fx.calls.push(SchedulerCall::Acknowledge {
                agent_id: st.agent_id.clone(),
                task_id: st.task_id.clone(),
                uuid: st.uuid.clone(),
            });
        }
        let tid = st.task_id.as_str();
        // TASK_UNKNOWN (the master doesn't know the task) means it is gone for us.
        let terminal = st.state.is_terminal() || st.state == TaskState::Unknown;
        let app_id = crate::model::app_id_of_task(tid).unwrap_or_default();
        let Some(e) = self.apps.get_mut(&app_id) else {
            if !terminal {
                fx.calls.push(SchedulerCall::Kill {
                    task_id: st.task_id.clone(),
                    agent_id: Some(st.agent_id.clone()),
                    grace_period_seconds: None,
                });
            }
            return;
        };
        let Some(t) = e.tasks.get_mut(tid) else {
            if !terminal {
                fx.calls.push(SchedulerCall::Kill {
                    task_id: st.task_id.clone(),
                    agent_id: Some(st.agent_id.clone()),
                    grace_period_seconds: None,
                });
            }
            return;
        };
        let prev_state = t.state;
        let prev_healthy = t.healthy;
        t.state = st.state;
        t.json = None;
        match st.state {
            TaskState::Running => {
                t.started_at.get_or_insert(st.timestamp.max(t.staged_at));
                t.unreachable_since = None;
            }
            TaskState::Unreachable => {
                t.unreachable_since.get_or_insert(now);
            }
            _ => {}
        }
        if let Some(h) = st.healthy {
            t.healthy = Some(h);
            if h {
                t.health.consecutive_failures = 0;
                t.health.first_success.get_or_insert(now);
                t.health.last_success = Some(now);
            } else {
                t.health.consecutive_failures += 1;
                t.health.last_failure = Some(now);
                t.health.last_failure_cause = st.message.clone();
            }
        }
        let app_version = t.version.clone();
        let host = t.host.clone();
        let ports = t.ports.clone();
        let (aid, ver) = (app_id.clone(), app_version.clone());
        fx.publish(events, "status_update_event", || {
            json!({
                "slaveId": st.agent_id, "taskId": st.task_id, "taskStatus": st.state.as_str(),
                "message": st.message.clone().unwrap_or_default(), "appId": aid, "host": host,
                "ipAddresses": [{"ipAddress": host, "protocol": "IPv4"}], "ports": ports,
                "version": ver,
            })
        });
        if st.healthy.is_some() && st.healthy != prev_healthy {
            let alive = st.healthy.unwrap_or(false);
            fx.publish(events, "health_status_changed_event", || {
                json!({"appId": app_id, "instanceId": tid, "taskId": tid,
                       "version": app_version, "alive": alive})
            });
        }
        if st.healthy == Some(false) {
            fx.publish(events, "failed_health_check_event", || {
                json!({"appId": app_id, "taskId": tid, "instanceId": tid,
                       "healthCheck": e.app.health_checks.first()})
            });
        }
        if terminal {
            let t = e.tasks.remove(tid).expect("present above");
            fx.delete(task_key(tid));
            let requested = t.kill_requested.is_some();
            let health_kill = st.state == TaskState::Killed && t.healthy == Some(false);
            let failure = matches!(
                st.state,
                TaskState::Failed | TaskState::Finished | TaskState::Error
            ) || health_kill
                || (!requested
                    && matches!(
                        st.state,
                        TaskState::Lost | TaskState::Dropped | TaskState::Gone
                    ));
            if failure && !e.deleted {
                self.counters.tasks_failed += 1;
                let b = &mut e.backoff;
                let app = &e.app;
                if b.delay <= 0.0 || now - b.last_failure > b.delay + app.max_launch_delay_seconds {
                    b.delay = app.backoff_seconds;
                } else {
                    b.delay = (b.delay * app.backoff_factor).min(app.max_launch_delay_seconds);
                }
                b.until = now + b.delay;
                b.last_failure = now;
                e.last_task_failure = Some(json!({
                    "appId": app_id, "host": t.host, "message": st.message.clone().unwrap_or_default(),
                    "state": st.state.as_str(), "taskId": tid, "timestamp": iso(st.timestamp),
                    "version": t.version, "slaveId": t.agent_id,
                }));
            }
            if health_kill && !requested {
                fx.publish(events, "unhealthy_task_kill_event", || {
                    json!({"appId": app_id, "taskId": tid, "instanceId": tid, "version": t.version,
                           "reason": st.message.clone().unwrap_or_default(), "host": t.host,
                           "slaveId": t.agent_id})
                });
            }
        } else {
            if prev_state != st.state || st.healthy != prev_healthy {
                fx.put(task_key(tid), &*t);
            }
            // Rebuild the task's JSON now, off the request path: a list after a mass change
            // (10k tasks turning RUNNING) then costs no more than any other list.
            let _ = crate::render::task_json(t, &e.app);
        }
        self.dirty.insert(app_id);
    }

    /// Launches the master refused (e.g. the offer was rescinded): the tasks never existed.
    pub fn launch_failed(&mut self, task_ids: &[String], fx: &mut Effects) {
        for tid in task_ids {
            let Some(app) = crate::model::app_id_of_task(tid) else {
                continue;
            };
            if let Some(e) = self.apps.get_mut(&app) {
                if e.tasks.remove(tid).is_some() {
                    fx.delete(task_key(tid));
                    self.dirty.insert(app);
                }
            }
        }
    }

    /// The agent is gone: its tasks are lost.
    pub fn on_agent_lost(
        &mut self,
        agent: &AgentId,
        now: f64,
        fx: &mut Effects,
        events: &EventBus,
    ) {
        let lost: Vec<(String, String)> = self
            .apps
            .values()
            .flat_map(|e| e.tasks.values())
            .filter(|t| t.agent_id == agent.0)
            .map(|t| (t.id.clone(), t.agent_id.clone()))
            .collect();
        for (tid, aid) in lost {
            let st = TaskStatus {
                task_id: TaskId(tid),
                agent_id: AgentId(aid),
                framework_id: None,
                state: TaskState::Gone,
                message: Some("agent removed".into()),
                reason: Some("REASON_AGENT_REMOVED".into()),
                source: "SOURCE_MASTER".into(),
                healthy: None,
                timestamp: now,
                uuid: String::new(),
            };
            self.on_status(&st, now, fx, events);
        }
    }

    pub fn all_tasks(&self) -> impl Iterator<Item = &Task> {
        self.apps.values().flat_map(|e| e.tasks.values())
    }

    pub fn find_task(&self, tid: &str) -> Option<&Task> {
        let app = crate::model::app_id_of_task(tid)?;
        self.apps.get(&app)?.tasks.get(tid)
    }

    /// Placement counts per constraint for an app's live tasks.
    pub fn placed(e: &AppEntry) -> Vec<HashMap<String, usize>> {
        e.constraints
            .iter()
            .map(|c| {
                let mut m = HashMap::new();
                for t in e.tasks.values() {
                    if t.kill_requested.is_some() || t.state.is_terminal() {
                        continue;
                    }
                    if let Some(v) = c.field_value(&t.host, &t.attributes) {
                        *m.entry(v).or_insert(0) += 1;
                    }
                }
                m
            })
            .collect()
    }
}

fn step_json(s: &[Action]) -> Value {
    json!({"actions": s.iter().map(|a| json!({"action": a.action, "app": a.app})).collect::<Vec<_>>()})
}

/// The light plan format of deployment events.
pub fn deployment_plan_json(d: &Deployment) -> Value {
    json!({
        "id": d.id,
        "version": d.version,
        "steps": d.steps.iter().map(|s| step_json(s)).collect::<Vec<_>>(),
    })
}
