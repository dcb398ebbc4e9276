//! The framework around the pure parts: subscribes to the master, feeds status updates and
//! offers into the state, runs the planner and the matcher, writes the store and sends the
//! resulting calls.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use dcos_store::Store;
use dcos_types::{
    CommandInfo, ContainerInfo, DockerInfo, Filters, FrameworkId, FrameworkInfo, HealthCheck,
    HealthCheckKind, MasterApi, Offer, PortMapping, SchedulerCall, SchedulerEvent, TaskId,
    TaskInfo, TaskState, UriInfo, ROLE_ANY,
};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::Notify;

use crate::events::EventBus;
use crate::matcher::{self, Launch, QueuedApp};
use crate::model::{id_to_key, App};
use crate::state::{AppEntry, Effects, State, Task};
use crate::MarathonConfig;

/// Shared by the scheduler loop and the HTTP handlers.
pub struct Core {
    pub state: Mutex<State>,
    pub store: Arc<dyn Store>,
    pub master: Arc<dyn MasterApi>,
    pub events: EventBus,
    pub wake: Notify,
    pub config: MarathonConfig,
    /// Why the last commit failed, while none has succeeded since (Marathon is degraded).
    pub(crate) failure: Mutex<Option<String>>,
    /// A refused change could not be undone because the store could not be read.
    pub(crate) rebuild_pending: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot read Marathon state from the store: {0}")]
    Store(#[from] dcos_store::StoreError),
    #[error("cannot subscribe to the master: {0}")]
    Master(#[from] dcos_types::MasterError),
}

impl Core {
    pub fn new(master: Arc<dyn MasterApi>, store: Arc<dyn Store>, config: MarathonConfig) -> Core {
        Core {
            state: Mutex::new(State::default()),
            store,
            master,
            events: EventBus::new(),
            wake: Notify::new(),
            config,
            failure: Mutex::new(None),
            rebuild_pending: AtomicBool::new(false),
        }
    }

    /// Sends master calls (after [`Core::persist`] stored what they depend on). Call without
    /// holding the state lock.
    pub fn send(&self, calls: Vec<SchedulerCall>) {
        let fw = self.state.lock().framework_id.clone();
        let Some(fw) = fw else { return };
        let not_launched = self.master.send_all(&FrameworkId(fw), calls, "marathon");
        if !not_launched.is_empty() {
            // The offer was gone: forget those tasks (no backoff) and plan again.
            let mut fx = Effects::default();
            {
                let mut st = self.state.lock();
                st.launch_failed(&not_launched, &mut fx);
                // On failure the tasks stay as stored; reconciliation after the store
                // recovers reports them gone.
                let _ = self.persist(&mut st, &mut fx);
            }
            self.wake.notify_one();
        }
    }

    /// Loads apps, versions, deployments and tasks from the store.
    pub fn recover(&self) -> Result<(), StartError> {
        let mut st = self.state.lock();
        crate::durable::load(&*self.store, &mut st)?;
        tracing::info!(
            "marathon: recovered {} apps, {} tasks, {} deployments",
            st.apps.len(),
            st.all_tasks().count(),
            st.deployments.len()
        );
        Ok(())
    }

    fn framework_info(&self, id: Option<String>) -> FrameworkInfo {
        FrameworkInfo {
            id: id.map(FrameworkId),
            name: self.config.framework_name.clone(),
            user: "root".into(),
            roles: self.config.roles.clone(),
            principal: None,
            webui_url: Some(format!(
                "http://{}:{}",
                self.config.hostname, self.config.http_port
            )),
            hostname: Some(self.config.hostname.clone()),
            checkpoint: true,
            failover_timeout: self.config.failover_timeout_seconds,
            weight: 1.0,
        }
    }

    /// Subscribes (re-subscribes with the stored id) and reconciles every known task.
    pub fn subscribe(
        &self,
    ) -> Result<tokio::sync::mpsc::UnboundedReceiver<SchedulerEvent>, StartError> {
        let prev = self.state.lock().framework_id.clone();
        let sub = self.master.subscribe(self.framework_info(prev.clone()))?;
        let fid = sub.framework_id.0.clone();
        let tasks = {
            let mut st = self.state.lock();
            if prev.as_deref() != Some(fid.as_str()) {
                // Stored now, or with the next commit that works (before any launch).
                st.framework_id = Some(fid);
                st.framework_id_unstored = true;
                let _ = self.persist(&mut st, &mut Effects::default());
            }
            st.suppressed = false;
            st.all_tasks()
                .map(|t| {
                    (
                        TaskId(t.id.clone()),
                        Some(dcos_types::AgentId(t.agent_id.clone())),
                    )
                })
                .collect::<Vec<_>>()
        };
        // Reconcile what we know (explicit), then ask for everything (implicit).
        let mut calls = Vec::new();
        if !tasks.is_empty() {
            calls.push(SchedulerCall::Reconcile { tasks });
        }
        calls.push(SchedulerCall::Reconcile { tasks: Vec::new() });
        calls.push(SchedulerCall::Revive);
        self.send(calls);
        Ok(sub.events)
    }

    /// The scheduler loop: runs until the process ends.
    pub async fn run(
        self: Arc<Self>,
        mut events: tokio::sync::mpsc::UnboundedReceiver<SchedulerEvent>,
    ) {
        let probe_client = crate::readiness::client();
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let (batch, ticked) = dcos_types::next_round(
                &mut events,
                &self.wake,
                &mut tick,
                50_000,
                "marathon",
                || self.subscribe(),
            )
            .await;
            self.process(batch, ticked);
            self.start_readiness_probes(&probe_client);
        }
    }

    /// Starts the readiness probes that are due; each one records its result and wakes the
    /// loop when a task became ready.
    fn start_readiness_probes(self: &Arc<Self>, client: &reqwest::Client) {
        let probes = {
            let mut st = self.state.lock();
            if st.deployments.is_empty() {
                return;
            }
            crate::readiness::due(&mut st, dcos_types::now_secs())
        };
        for p in probes {
            let core = self.clone();
            let client = client.clone();
            tokio::spawn(async move {
                let outcome = crate::readiness::probe(&client, &p).await;
                let ready = {
                    let mut st = core.state.lock();
                    crate::readiness::record(&mut st, &p, outcome, dcos_types::now_secs())
                };
                if ready {
                    core.wake.notify_one();
                }
            });
        }
    }

    /// One round: apply events, re-plan, match offers, persist, call the master.
    pub fn process(&self, batch: Vec<SchedulerEvent>, ticked: bool) {
        let now = dcos_types::now_secs();
        let mut fx = Effects::default();
        {
            let mut st = self.state.lock();
            if !self.consistent(&mut st) {
                // A refused change is still in memory (the store could not be read to undo
                // it): act on nothing; updates are not acknowledged, so they come again.
                let offers = batch.into_iter().filter_map(|ev| match ev {
                    SchedulerEvent::Offers(o) => Some(o),
                    _ => None,
                });
                let refuse = self.config.unfit_refuse_seconds;
                decline(&mut st, offers.flatten().collect(), refuse, &mut fx);
                drop(st);
                self.send(fx.calls);
                return;
            }
            let offers = self.apply_events(&mut st, batch, now, &mut fx);
            if ticked {
                self.mark_time_based(&mut st, now, &mut fx);
            }
            st.reconcile(
                now,
                self.config.kill_retry_seconds,
                self.config.task_launch_timeout_seconds,
                &mut fx,
                &self.events,
            );
            // Degraded (the last commit failed): no launch attempt while the store says it
            // refuses writes, no revive (offers come back as filters expire), and the
            // framework id is written again as a probe of the store.
            let degraded = self.failure.lock().is_some();
            if !offers.is_empty() {
                if degraded && self.store.writable().is_err() {
                    decline(&mut st, offers, self.config.unfit_refuse_seconds, &mut fx);
                } else {
                    self.match_offers(&mut st, offers, now, &mut fx);
                }
            }
            want_offers(&mut st, now, degraded, &mut fx);
            if degraded {
                st.framework_id_unstored = true;
            }
            // Store writes happen under the lock so that they stay ordered with API writes.
            let _ = self.persist(&mut st, &mut fx);
        }
        self.send(std::mem::take(&mut fx.calls));
    }

    /// Applies a batch of master events; returns the offers.
    fn apply_events(
        &self,
        st: &mut State,
        batch: Vec<SchedulerEvent>,
        now: f64,
        fx: &mut Effects,
    ) -> Vec<Offer> {
        let mut offers: Vec<Offer> = Vec::new();
        for ev in batch {
            match ev {
                SchedulerEvent::Subscribed { framework_id } => {
                    if st.framework_id.as_deref() != Some(framework_id.0.as_str()) {
                        st.framework_id = Some(framework_id.0);
                        st.framework_id_unstored = true;
                    }
                }
                SchedulerEvent::Offers(o) => {
                    st.counters.offers_received += o.len() as u64;
                    offers.extend(o);
                }
                SchedulerEvent::Rescind(id) => offers.retain(|o| o.id != id),
                SchedulerEvent::Update(s) => st.on_status(&s, now, fx, &self.events),
                SchedulerEvent::AgentLost(a) => st.on_agent_lost(&a, now, fx, &self.events),
                SchedulerEvent::Error(e) => tracing::error!("marathon: master error: {e}"),
            }
        }
        offers
    }

    /// Marks apps with time-based work for re-planning: backoff expiry, kills to retry,
    /// unreachable timers, running deployments, deletions (steady apps are not re-planned);
    /// and reconciles implicitly when it is time.
    fn mark_time_based(&self, st: &mut State, now: f64, fx: &mut Effects) {
        let deploying: std::collections::HashSet<String> = st
            .deployments
            .values()
            .flat_map(|d| d.affected_apps())
            .collect();
        let ids: Vec<String> = st
            .apps
            .iter()
            .filter(|(id, e)| {
                e.pending > 0
                    || e.deleted
                    || deploying.contains(*id)
                    || e.tasks.values().any(|t| {
                        t.unreachable_since.is_some()
                            || t.kill_requested.is_some()
                            || matches!(t.state, TaskState::Staging | TaskState::Starting)
                    })
            })
            .map(|(id, _)| id.clone())
            .collect();
        st.dirty.extend(ids);
        if now - st.last_reconcile >= self.config.reconciliation_interval_seconds {
            st.last_reconcile = now;
            fx.calls
                .push(SchedulerCall::Reconcile { tasks: Vec::new() });
        }
    }

    fn match_offers(&self, st: &mut State, offers: Vec<Offer>, now: f64, fx: &mut Effects) {
        let ids: Vec<String> = st
            .apps
            .iter()
            .filter(|(_, e)| e.pending > 0 && !e.deleted && e.backoff.until <= now)
            .map(|(id, _)| id.clone())
            .collect();
        if ids.is_empty() {
            decline(st, offers, self.config.decline_refuse_seconds, fx);
            return;
        }
        let entries: Vec<&AppEntry> = ids.iter().filter_map(|id| st.apps.get(id)).collect();
        let mut queue: Vec<QueuedApp<'_>> = entries
            .iter()
            .map(|e| QueuedApp {
                app: &e.app,
                count: e.pending,
                constraints: &e.constraints,
                placed: State::placed(e),
            })
            .collect();
        let result = matcher::match_offers(&offers, &mut queue, self.config.max_tasks_per_offer);
        drop(queue);
        drop(entries);
        let mut launched_per_app = vec![0usize; ids.len()];
        // Tasks launched for a deployment of an app with a readiness check must pass it.
        let needs_readiness: Vec<bool> = ids
            .iter()
            .map(|id| {
                st.apps
                    .get(id)
                    .is_some_and(|e| !e.app.readiness_checks.is_empty())
                    && st.deployments.values().any(|d| d.touches(id))
            })
            .collect();
        for (offer, plan) in offers.iter().zip(result.offers) {
            if plan.launches.is_empty() {
                st.counters.offers_declined += 1;
                fx.calls.push(SchedulerCall::Decline {
                    offer_ids: vec![offer.id.clone()],
                    filters: Filters {
                        refuse_seconds: self.config.unfit_refuse_seconds,
                    },
                });
                continue;
            }
            let mut tasks = Vec::with_capacity(plan.launches.len());
            for l in plan.launches {
                let Some(e) = st.apps.get_mut(&ids[l.app]) else {
                    continue;
                };
                launched_per_app[l.app] += 1;
                let (info, mut task) = build_task(&e.app, e.config_version(), offer, &l, now);
                if needs_readiness[l.app] {
                    task.readiness = Some(Default::default());
                }
                fx.put(crate::state::task_key(&task.id), &task);
                e.tasks.insert(task.id.clone(), task);
                tasks.push(info);
            }
            st.counters.tasks_launched += tasks.len() as u64;
            fx.calls.push(SchedulerCall::Accept {
                offer_ids: vec![offer.id.clone()],
                tasks,
                filters: Filters {
                    refuse_seconds: self.config.accept_refuse_seconds,
                },
            });
        }
        for (i, id) in ids.iter().enumerate() {
            if let Some(e) = st.apps.get_mut(id) {
                let stats = &result.stats[i];
                e.pending = e.pending.saturating_sub(launched_per_app[i]);
                e.offer_stats.processed += stats.processed;
                e.offer_stats.unused += stats.unused;
                for (k, v) in &stats.rejects {
                    *e.offer_stats.rejects.entry(*k).or_insert(0) += v;
                }
                if stats.last_reason.is_some() {
                    e.offer_stats.last_reason = stats.last_reason.clone();
                }
                if launched_per_app[i] > 0 {
                    e.last_used_offer_at = Some(now);
                }
                if stats.unused > 0 {
                    e.last_unused_offer_at = Some(now);
                }
            }
        }
    }
}

/// Revives offers when something can launch, suppresses them when nothing waits. While
/// degraded the revive is held back (and sent once a commit works again).
fn want_offers(st: &mut State, now: f64, degraded: bool, fx: &mut Effects) {
    let launchable = st
        .apps
        .values()
        .any(|e| e.pending > 0 && !e.deleted && e.backoff.until <= now);
    let waiting_backoff = st
        .apps
        .values()
        .any(|e| e.pending > 0 && e.backoff.until > now);
    if launchable && (st.suppressed || fx.revive) {
        if degraded {
            st.suppressed = true;
        } else {
            fx.calls.push(SchedulerCall::Revive);
            st.suppressed = false;
        }
    } else if !launchable && !waiting_backoff && !st.suppressed {
        fx.calls.push(SchedulerCall::Suppress);
        st.suppressed = true;
    }
    fx.revive = false;
}

/// Declines `offers` with a filter of `refuse_seconds`.
fn decline(st: &mut State, offers: Vec<Offer>, refuse_seconds: f64, fx: &mut Effects) {
    for o in offers {
        st.counters.offers_declined += 1;
        fx.calls.push(SchedulerCall::Decline {
            offer_ids: vec![o.id],
            filters: Filters { refuse_seconds },
        });
    }
}

/// Builds the Mesos task for one placement, and our record of it.
pub fn build_task(
    app: &App,
    config_version: &str,
    offer: &Offer,
    l: &Launch,
    now: f64,
) -> (TaskInfo, Task) {
    let task_id = format!("{}.{}", id_to_key(&app.id), uuid::Uuid::new_v4());
    let version = app.version.clone().unwrap_or_default();
    let ports = &l.host_ports;
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &app.env {
        if let Value::String(s) = v {
            env.insert(k.clone(), s.clone());
        }
    }
    let names = app.port_names();
    for (i, p) in ports.iter().enumerate() {
        env.insert(format!("PORT{i}"), p.to_string());
        if let Some(Some(n)) = names.get(i) {
            env.insert(format!("PORT_{}", env_name(n)), p.to_string());
        }
    }
    if let Some(p) = ports.first() {
        env.insert("PORT".into(), p.to_string());
    }
    if !ports.is_empty() {
        env.insert(
            "PORTS".into(),
            ports
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    env.insert("HOST".into(), offer.hostname.clone());
    env.insert("MESOS_TASK_ID".into(), task_id.clone());
    env.insert("MARATHON_APP_ID".into(), app.id.clone());
    env.insert("MARATHON_APP_VERSION".into(), version.clone());
    env.insert("MARATHON_APP_RESOURCE_CPUS".into(), app.cpus.to_string());
    env.insert("MARATHON_APP_RESOURCE_MEM".into(), app.mem.to_string());
    env.insert("MARATHON_APP_RESOURCE_DISK".into(), app.disk.to_string());
    env.insert("MARATHON_APP_RESOURCE_GPUS".into(), app.gpus.to_string());
    let image = app
        .container
        .as_ref()
        .and_then(|c| c.docker.as_ref())
        .map(|d| d.image.clone());
    if let Some(i) = &image {
        env.insert("MARATHON_APP_DOCKER_IMAGE".into(), i.clone());
    }
    let mut label_names = Vec::new();
    for (k, v) in &app.labels {
        let n = env_name(k);
        if n.is_empty() || v.len() > 512 {
            continue;
        }
        env.insert(format!("MARATHON_APP_LABEL_{n}"), v.clone());
        label_names.push(n);
    }
    env.insert("MARATHON_APP_LABELS".into(), label_names.join(" "));

    let uris = app
        .fetch
        .iter()
        .map(|f| UriInfo {
            value: f.uri.clone(),
            executable: f.executable,
            extract: f.extract,
            cache: f.cache,
            output_file: f.dest_path.clone(),
            sha256: f.sha256.clone(),
        })
        .collect();
    let (value, shell, arguments) = match (&app.cmd, &app.args) {
        (Some(c), _) => (Some(c.clone()), true, Vec::new()),
        (None, Some(a)) if !a.is_empty() => (a.first().cloned(), false, a.clone()),
        _ => (None, false, Vec::new()),
    };
    let command = CommandInfo {
        value,
        shell,
        arguments,
        environment: env,
        uris,
        user: app.user.clone(),
    };
    let bridge = app.uses_port_mappings();
    let container = app.container.as_ref().map(|c| {
        let docker = c.docker.as_ref().map(|d| {
            let mut mappings = Vec::new();
            if bridge {
                let mut hp = ports.iter();
                for pm in app.port_mappings() {
                    if pm.host_port.is_none() {
                        continue;
                    }
                    let host_port = hp.next().copied().unwrap_or(0);
                    let container_port = if pm.container_port == 0 {
                        host_port
                    } else {
                        pm.container_port.clamp(0, 65535) as u16
                    };
                    mappings.push(PortMapping {
                        host_port,
                        container_port,
                        protocol: pm.protocol.clone(),
                    });
                }
            }
            DockerInfo {
                image: d.image.clone(),
                network: d.network.clone().unwrap_or_else(|| {
                    if bridge {
                        "BRIDGE".into()
                    } else {
                        "HOST".into()
                    }
                }),
                port_mappings: mappings,
                privileged: d.privileged,
                force_pull_image: d.force_pull_image,
                parameters: d
                    .parameters
                    .iter()
                    .map(|p| (p.key.clone(), p.value.clone()))
                    .collect(),
            }
        });
        ContainerInfo {
            kind: c.kind.clone(),
            docker,
            volumes: c
                .volumes
                .iter()
                .filter_map(|v| {
                    Some(dcos_types::Volume {
                        container_path: v.get("containerPath")?.as_str()?.to_string(),
                        host_path: v.get("hostPath").and_then(|h| h.as_str()).map(String::from),
                        mode: v
                            .get("mode")
                            .and_then(|m| m.as_str())
                            .unwrap_or("RW")
                            .to_string(),
                    })
                })
                .collect(),
        }
    });
    let health_check = app.health_checks.first().and_then(|hc| {
        let port = match hc.port {
            Some(p) => Some(p.clamp(0, 65535) as u16),
            None => ports
                .get(hc.port_index.unwrap_or(0).max(0) as usize)
                .copied(),
        };
        let kind = match hc.protocol.as_str() {
            "HTTP" | "HTTPS" | "MESOS_HTTP" | "MESOS_HTTPS" => HealthCheckKind::Http {
                port: port?,
                path: hc.path.clone().unwrap_or_else(|| "/".into()),
                scheme: if hc.protocol.ends_with('S') {
                    "https".into()
                } else {
                    "http".into()
                },
            },
            "TCP" | "MESOS_TCP" => HealthCheckKind::Tcp { port: port? },
            "COMMAND" => HealthCheckKind::Command {
                value: hc.command.as_ref()?.value.clone(),
            },
            _ => return None,
        };
        let mut max = hc.max_consecutive_failures.max(0) as u32;
        if hc.is_mesos_level() && max == 0 {
            // Mesos-level: 0 means kill on the first failure.
            max = 1;
        }
        Some(HealthCheck {
            kind,
            grace_period_seconds: hc.grace_period_seconds,
            interval_seconds: hc.interval_seconds,
            timeout_seconds: hc.timeout_seconds,
            max_consecutive_failures: max,
            delay_seconds: hc.delay_seconds.unwrap_or(0.0),
        })
    });
    let info = TaskInfo {
        task_id: TaskId(task_id.clone()),
        name: task_name(&app.id),
        agent_id: offer.agent_id.clone(),
        framework_id: Some(offer.framework_id.clone()),
        role: l.role.clone(),
        resources: l.resources.clone(),
        command,
        container,
        health_check,
        kill_grace_period_seconds: app.task_kill_grace_period_seconds.unwrap_or(3.0),
        labels: app
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let task = Task {
        id: task_id,
        app_id: app.id.clone(),
        agent_id: offer.agent_id.0.clone(),
        host: offer.hostname.clone(),
        ports: ports.clone(),
        state: TaskState::Staging,
        staged_at: now,
        started_at: None,
        version,
        config_version: config_version.to_string(),
        healthy: None,
        health: Default::default(),
        readiness: None,
        kill_requested: None,
        unreachable_since: None,
        attributes: offer.attributes.clone(),
        role: if l.role.is_empty() {
            ROLE_ANY.into()
        } else {
            l.role.clone()
        },
        json: None,
    };
    (info, task)
}

/// `/prod/web` → `web.prod` (Marathon names Mesos tasks by the reversed path).
pub fn task_name(id: &str) -> String {
    let mut segs: Vec<&str> = id.split('/').filter(|s| !s.is_empty()).collect();
    segs.reverse();
    segs.join(".")
}

/// Upper-cases and replaces characters not allowed in environment variable names.
pub fn env_name(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{out}")
    } else {
        out
    }
}
