//! The framework: in-memory state with its transitions (pure, driven by a `now` in epoch ms),
//! and the loop around it that talks to the master and writes the store.
//!
//! Store layout (all under `/metronome/`):
//! * `framework-id` — the id the master gave us (JSON string);
//! * `jobs/<jobId>` — the [`JobSpec`];
//! * `schedules/<jobId>` — the job's schedules (a list with at most one entry);
//! * `runs/<jobId>/<runId>` — each active [`JobRun`];
//! * `history/<jobId>` — the job's [`History`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dcos_store::{Op, Store};
use dcos_types::{
    AgentId, CommandInfo, ContainerInfo, DockerInfo, Filters, FrameworkId, FrameworkInfo,
    MasterApi, Offer, Resources, SchedulerCall, SchedulerEvent, TaskId, TaskInfo, TaskState,
    TaskStatus, UriInfo,
};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::Notify;

use crate::model::{
    next_fire, parse_task_id, task_id, History, JobRun, JobSpec, RunSpec, RunStatus, RunTask,
    ScheduleSpec,
};
use crate::{MetronomeConfig, StartError};

pub const P_FRAMEWORK: &str = "/metronome/framework-id";
pub const P_JOBS: &str = "/metronome/jobs/";
pub const P_SCHEDULES: &str = "/metronome/schedules/";
pub const P_RUNS: &str = "/metronome/runs/";
pub const P_HISTORY: &str = "/metronome/history/";

pub fn job_key(id: &str) -> String {
    format!("{P_JOBS}{id}")
}
pub fn schedules_key(id: &str) -> String {
    format!("{P_SCHEDULES}{id}")
}
pub fn run_key(job: &str, run: &str) -> String {
    format!("{P_RUNS}{job}/{run}")
}
pub fn history_key(id: &str) -> String {
    format!("{P_HISTORY}{id}")
}

/// The clock: epoch milliseconds. Injectable so that tests can move time.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| chrono::Utc::now().timestamp_millis())
}

/// Refuse offers for this long when nothing waits.
const DECLINE_IDLE_SECONDS: f64 = 120.0;
/// Refuse offers for this long when what waits does not fit.
const DECLINE_UNFIT_SECONDS: f64 = 5.0;
/// Longest pause between two tasks of a run that fails under ON_FAILURE.
const MAX_RETRY_BACKOFF_MS: i64 = 60_000;

/// One job with everything that hangs off it.
#[derive(Clone, Debug)]
pub struct JobEntry {
    pub spec: JobSpec,
    pub schedules: Vec<ScheduleSpec>,
    /// Next fire of the first enabled schedule (epoch ms).
    pub next_fire: Option<i64>,
    pub runs: BTreeMap<String, JobRun>,
    pub history: History,
}

impl JobEntry {
    pub fn new(spec: JobSpec) -> JobEntry {
        JobEntry {
            spec,
            schedules: Vec::new(),
            next_fire: None,
            runs: BTreeMap::new(),
            history: History::default(),
        }
    }

    /// Recomputes the next fire time from `now`.
    pub fn reschedule(&mut self, now: i64) {
        self.next_fire = self
            .schedules
            .first()
            .filter(|s| s.enabled)
            .and_then(|s| next_fire(s, now));
    }
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    pub runs_started: u64,
    pub runs_succeeded: u64,
    pub runs_failed: u64,
    pub tasks_launched: u64,
    pub tasks_failed: u64,
    pub offers_received: u64,
    pub offers_declined: u64,
    pub schedule_fires: u64,
    pub schedule_skips: u64,
    pub status_updates: u64,
}

#[derive(Default)]
pub struct State {
    pub framework_id: Option<String>,
    /// Whether `framework_id` is in the store. Until it is, nothing is launched: a task
    /// started under an id that a restart would not know is an orphan.
    pub framework_id_stored: bool,
    /// A refused commit left the memory ahead of the store and re-reading the store failed
    /// too: the next round rebuilds first, and launches nothing until that works.
    pub needs_rebuild: bool,
    pub jobs: BTreeMap<String, JobEntry>,
    pub suppressed: bool,
    pub revive_wanted: bool,
    pub last_tick: i64,
    pub counters: Counters,
}

/// What the store does not hold: counters, offer flags, the tick mark and the next fire
/// times. Taken before a change and put back when the store refuses the change (see
/// [`Core::commit_or_rebuild`]).
#[derive(Clone, Debug)]
pub struct Volatile {
    counters: Counters,
    suppressed: bool,
    revive_wanted: bool,
    last_tick: i64,
    next_fire: Vec<(String, Option<i64>)>,
}

/// Store writes and master calls collected under the lock.
#[derive(Default)]
pub struct Effects {
    pub ops: Vec<Op>,
    pub calls: Vec<SchedulerCall>,
}

impl Effects {
    pub fn put<T: Serialize + ?Sized>(&mut self, key: String, v: &T) {
        match Op::put_json(key, v, dcos_store::Precondition::Any) {
            Ok(op) => self.ops.push(op),
            Err(e) => tracing::error!("metronome: cannot encode a store value: {e}"),
        }
    }
    pub fn delete(&mut self, key: String) {
        self.ops.push(Op::delete(key));
    }
}

/// The status Metronome shows for a Mesos task state.
pub fn exposed_task_status(s: TaskState) -> &'static str {
    match s {
        TaskState::Staging => "TASK_STAGING",
        TaskState::Starting => "TASK_STARTING",
        TaskState::Running | TaskState::Killing | TaskState::Unreachable | TaskState::Unknown => {
            "TASK_RUNNING"
        }
        TaskState::Finished => "TASK_FINISHED",
        TaskState::Killed => "TASK_KILLED",
        TaskState::Failed
        | TaskState::Error
        | TaskState::Lost
        | TaskState::Dropped
        | TaskState::Gone => "TASK_FAILED",
    }
}

impl State {
    /// A copy of what the store does not hold (see [`Volatile`]).
    pub fn volatile(&self) -> Volatile {
        Volatile {
            counters: self.counters.clone(),
            suppressed: self.suppressed,
            revive_wanted: self.revive_wanted,
            last_tick: self.last_tick,
            next_fire: self
                .jobs
                .iter()
                .map(|(id, e)| (id.clone(), e.next_fire))
                .collect(),
        }
    }

    pub fn active_runs(&self) -> usize {
        self.jobs.values().map(|e| e.runs.len()).sum()
    }

    /// Creates a run of `job` (persisted as STARTING, waiting for an offer).
    pub fn new_run(
        &mut self,
        job: &str,
        now: i64,
        starting_deadline: Option<i64>,
        fx: &mut Effects,
    ) -> Option<JobRun> {
        let entry = self.jobs.get_mut(job)?;
        let mut id = crate::model::new_run_id(now);
        while entry.runs.contains_key(&id) {
            id = crate::model::new_run_id(now);
        }
        let run = JobRun {
            id: id.clone(),
            job_id: job.to_string(),
            status: RunStatus::Starting,
            created_at: now,
            completed_at: None,
            tasks: Vec::new(),
            run: entry.spec.run.clone(),
            starting_deadline,
            current: None,
            waiting: true,
            waiting_since: now,
            not_before: now,
            stopping: false,
            failed_tasks: 0,
        };
        fx.put(run_key(job, &id), &run);
        entry.runs.insert(id, run.clone());
        self.counters.runs_started += 1;
        self.revive_wanted = true;
        Some(run)
    }

    /// Ends a run with `status`: moves it into the history.
    pub fn finish_run(
        &mut self,
        job: &str,
        run_id: &str,
        status: RunStatus,
        now: i64,
        cap: usize,
        fx: &mut Effects,
    ) -> Option<JobRun> {
        let entry = self.jobs.get_mut(job)?;
        let mut run = entry.runs.remove(run_id)?;
        run.status = status;
        run.completed_at = Some(now);
        run.waiting = false;
        entry.history.record(&run, cap);
        fx.delete(run_key(job, run_id));
        fx.put(history_key(job), &entry.history);
        match status {
            RunStatus::Success => self.counters.runs_succeeded += 1,
            _ => self.counters.runs_failed += 1,
        }
        tracing::info!(
            "metronome: run {job}/{run_id} finished: {}",
            status.as_str()
        );
        Some(run)
    }

    /// Requests a stop: kills the live task, or fails the run at once if none runs.
    pub fn stop_run(
        &mut self,
        job: &str,
        run_id: &str,
        now: i64,
        cap: usize,
        fx: &mut Effects,
    ) -> Option<JobRun> {
        let run = self.jobs.get_mut(job)?.runs.get_mut(run_id)?;
        run.stopping = true;
        run.waiting = false;
        match run.current.clone() {
            Some(t) => {
                let agent = run
                    .tasks
                    .iter()
                    .find(|x| x.id == t)
                    .map(|x| AgentId(x.agent_id.clone()));
                fx.calls.push(SchedulerCall::Kill {
                    task_id: TaskId(t),
                    agent_id: agent,
                    grace_period_seconds: None,
                });
                let snapshot = run.clone();
                fx.put(run_key(job, run_id), &snapshot);
                Some(snapshot)
            }
            None => self.finish_run(job, run_id, RunStatus::Failed, now, cap, fx),
        }
    }

    /// Kill calls for every live task of `job`'s runs.
    pub fn kill_calls(entry: &JobEntry) -> Vec<SchedulerCall> {
        entry
            .runs
            .values()
            .filter_map(|r| {
                let t = r.current.clone()?;
                let agent = r
                    .tasks
                    .iter()
                    .find(|x| x.id == t)
                    .map(|x| AgentId(x.agent_id.clone()));
                Some(SchedulerCall::Kill {
                    task_id: TaskId(t),
                    agent_id: agent,
                    grace_period_seconds: None,
                })
            })
            .collect()
    }

    /// Applies a task status update; acknowledges it.
    pub fn on_status(&mut self, s: &TaskStatus, now: i64, cap: usize, fx: &mut Effects) {
        self.counters.status_updates += 1;
        if !s.uuid.is_empty() {
            fx.calls.push(SchedulerCall::Acknowledge {
                agent_id: s.agent_id.clone(),
                task_id: s.task_id.clone(),
                uuid: s.uuid.clone(),
            });
        }
        let tid = s.task_id.0.as_str();
        let kill_orphan = |fx: &mut Effects| {
            if !s.state.is_terminal() && s.state != TaskState::Unknown {
                tracing::info!("metronome: killing unknown task {tid}");
                fx.calls.push(SchedulerCall::Kill {
                    task_id: s.task_id.clone(),
                    agent_id: Some(s.agent_id.clone()),
                    grace_period_seconds: None,
                });
            }
        };
        let Some((job, run_id)) = parse_task_id(tid) else {
            kill_orphan(fx);
            return;
        };
        let (job, run_id) = (job.to_string(), run_id.to_string());
        let Some(run) = self
            .jobs
            .get_mut(&job)
            .and_then(|e| e.runs.get_mut(&run_id))
        else {
            kill_orphan(fx);
            return;
        };
        let Some(task) = run.tasks.iter_mut().find(|t| t.id == tid) else {
            kill_orphan(fx);
            return;
        };
        task.status = exposed_task_status(s.state).to_string();
        if s.state.is_terminal() && task.completed_at.is_none() {
            task.completed_at = Some(now);
        }
        if run.current.as_deref() != Some(tid) {
            let snapshot = run.clone();
            fx.put(run_key(&job, &run_id), &snapshot);
            return;
        }
        match s.state {
            TaskState::Finished => {
                run.current = None;
                self.finish_run(&job, &run_id, RunStatus::Success, now, cap, fx);
            }
            st if st.is_terminal() => {
                self.counters.tasks_failed += 1;
                run.current = None;
                run.failed_tasks += 1;
                let within_deadline = run
                    .run
                    .restart
                    .active_deadline_seconds
                    .is_none_or(|d| now < run.created_at.saturating_add(d as i64 * 1000));
                if !run.stopping && run.run.restarts_on_failure() && within_deadline {
                    let backoff = if run.failed_tasks <= 1 {
                        0
                    } else {
                        (1000i64 << (run.failed_tasks - 2).min(16)).min(MAX_RETRY_BACKOFF_MS)
                    };
                    tracing::info!(
                        "metronome: task {tid} of run {job}/{run_id} ended {}; retrying (ON_FAILURE)",
                        s.state.as_str()
                    );
                    run.status = RunStatus::Starting;
                    run.waiting = true;
                    run.waiting_since = now;
                    run.not_before = now + backoff;
                    let snapshot = run.clone();
                    fx.put(run_key(&job, &run_id), &snapshot);
                    self.revive_wanted = true;
                } else {
                    self.finish_run(&job, &run_id, RunStatus::Failed, now, cap, fx);
                }
            }
            _ => {
                run.status = RunStatus::Active;
                let snapshot = run.clone();
                fx.put(run_key(&job, &run_id), &snapshot);
            }
        }
    }

    /// Launches that the master refused (the offer was gone): wait for another offer.
    pub fn launch_failed(&mut self, task_ids: &[String], fx: &mut Effects) {
        for tid in task_ids {
            let Some((job, run_id)) = parse_task_id(tid) else {
                continue;
            };
            let Some(run) = self.jobs.get_mut(job).and_then(|e| e.runs.get_mut(run_id)) else {
                continue;
            };
            run.tasks.retain(|t| t.id != *tid);
            if run.current.as_deref() == Some(tid.as_str()) {
                run.current = None;
                run.waiting = !run.stopping;
                if run.tasks.is_empty() {
                    run.status = RunStatus::Starting;
                }
            }
            let snapshot = run.clone();
            fx.put(run_key(job, run_id), &snapshot);
            self.revive_wanted = true;
        }
    }

    /// Time-based work: schedules that are due, starting deadlines, launch delays, retries.
    pub fn tick(&mut self, now: i64, cap: usize, fx: &mut Effects) {
        let ids: Vec<String> = self.jobs.keys().cloned().collect();
        for id in &ids {
            let Some(entry) = self.jobs.get_mut(id) else {
                continue;
            };
            let Some(s) = entry.schedules.first().filter(|s| s.enabled).cloned() else {
                entry.next_fire = None;
                continue;
            };
            if entry.next_fire.is_none() {
                entry.next_fire = next_fire(&s, now);
            }
            let Some(due) = entry.next_fire.filter(|n| *n <= now) else {
                continue;
            };
            // The next one from now: missed fires are not caught up.
            entry.next_fire = next_fire(&s, now);
            if s.forbids_concurrency() && !entry.runs.is_empty() {
                tracing::info!(
                    "metronome: schedule {id}/{} skipped (FORBID, a run is active)",
                    s.id
                );
                self.counters.schedule_skips += 1;
                continue;
            }
            self.counters.schedule_fires += 1;
            let deadline = due.saturating_add(s.starting_deadline_seconds as i64 * 1000);
            self.new_run(id, now, Some(deadline), fx);
        }
        let mut to_fail = Vec::new();
        for (id, entry) in &self.jobs {
            for run in entry.runs.values() {
                if !run.waiting {
                    continue;
                }
                if run.tasks.is_empty() && run.starting_deadline.is_some_and(|d| now > d) {
                    tracing::warn!(
                        "metronome: run {id}/{} missed its starting deadline",
                        run.id
                    );
                    to_fail.push((id.clone(), run.id.clone()));
                } else if now - run.waiting_since
                    > (run.run.max_launch_delay as i64).saturating_mul(1000)
                {
                    tracing::warn!(
                        "metronome: run {id}/{} not launched within maxLaunchDelay",
                        run.id
                    );
                    to_fail.push((id.clone(), run.id.clone()));
                } else if run.not_before > self.last_tick && run.not_before <= now {
                    self.revive_wanted = true;
                }
            }
        }
        for (job, run) in to_fail {
            self.finish_run(&job, &run, RunStatus::Failed, now, cap, fx);
        }
        self.last_tick = now;
    }

    /// Whether a run waits for an offer and may launch now.
    pub fn launchable(&self, now: i64) -> bool {
        self.jobs
            .values()
            .flat_map(|e| e.runs.values())
            .any(|r| r.waiting && r.not_before <= now)
    }

    pub fn any_waiting(&self) -> bool {
        self.jobs
            .values()
            .flat_map(|e| e.runs.values())
            .any(|r| r.waiting)
    }

    /// Matches offers against waiting runs (oldest first), one task per run.
    pub fn match_offers(
        &mut self,
        offers: Vec<Offer>,
        roles: &[String],
        now: i64,
        fx: &mut Effects,
    ) {
        let mut queue: Vec<(i64, String, String)> = self
            .jobs
            .iter()
            .flat_map(|(j, e)| {
                e.runs
                    .values()
                    .filter(|r| r.waiting && r.not_before <= now)
                    .map(move |r| (r.created_at, j.clone(), r.id.clone()))
            })
            .collect();
        queue.sort();
        for offer in offers {
            self.counters.offers_received += 1;
            let mut free = offer.resources.clone();
            let mut tasks = Vec::new();
            let mut i = 0;
            while i < queue.len() {
                let (_, job, run_id) = &queue[i];
                let Some(run) = self.jobs.get_mut(job).and_then(|e| e.runs.get_mut(run_id)) else {
                    queue.remove(i);
                    continue;
                };
                let mut need = Resources::new(run.run.cpus, run.run.mem, run.run.disk);
                need.gpus = run.run.gpus as f64;
                let role = if placement_ok(&run.run, &offer) {
                    free.iter()
                        .filter(|(r, _)| roles.is_empty() || roles.contains(r) || *r == "*")
                        .find(|(_, have)| have.contains(&need))
                        .map(|(r, _)| r.clone())
                } else {
                    None
                };
                let Some(role) = role else {
                    i += 1;
                    continue;
                };
                if let Some(have) = free.get_mut(&role) {
                    *have = have.minus(&need);
                }
                let labels = self
                    .jobs
                    .get(job)
                    .map(|e| e.spec.labels.clone())
                    .unwrap_or_default();
                let Some(run) = self.jobs.get_mut(job).and_then(|e| e.runs.get_mut(run_id)) else {
                    queue.remove(i);
                    continue;
                };
                let tid = task_id(job, run_id);
                let info = build_task(&run.run, job, &tid, &offer, &role, need, labels);
                run.tasks.push(RunTask {
                    id: tid.clone(),
                    status: "TASK_STAGING".into(),
                    agent_id: offer.agent_id.0.clone(),
                    started_at: now,
                    completed_at: None,
                });
                run.current = Some(tid);
                run.waiting = false;
                run.status = RunStatus::Active;
                let snapshot = run.clone();
                fx.put(run_key(job, run_id), &snapshot);
                tasks.push(info);
                self.counters.tasks_launched += 1;
                queue.remove(i);
            }
            if tasks.is_empty() {
                self.counters.offers_declined += 1;
                let refuse_seconds = if queue.is_empty() {
                    DECLINE_IDLE_SECONDS
                } else {
                    DECLINE_UNFIT_SECONDS
                };
                fx.calls.push(SchedulerCall::Decline {
                    offer_ids: vec![offer.id],
                    filters: Filters { refuse_seconds },
                });
            } else {
                fx.calls.push(SchedulerCall::Accept {
                    offer_ids: vec![offer.id],
                    tasks,
                    filters: Filters {
                        refuse_seconds: 1.0,
                    },
                });
            }
        }
    }
}

/// Placement constraints against an offer's host name and attributes.
pub fn placement_ok(run: &RunSpec, offer: &Offer) -> bool {
    run.placement.constraints.iter().all(|c| {
        let value = if c.attribute == "hostname" {
            Some(offer.hostname.clone())
        } else {
            offer.attributes.get(&c.attribute).map(|a| a.as_text())
        };
        let want = c.value.clone().unwrap_or_default();
        match c.operator.as_str() {
            "IS" | "EQ" => value.as_deref() == Some(want.as_str()),
            "LIKE" | "UNLIKE" => {
                let re = regex::Regex::new(&format!("^(?:{want})$"));
                let matched = match (&re, &value) {
                    (Ok(re), Some(v)) => re.is_match(v),
                    _ => false,
                };
                if c.operator == "LIKE" {
                    matched
                } else {
                    !matched
                }
            }
            _ => true,
        }
    })
}

/// Builds the Mesos task of a run.
pub fn build_task(
    run: &RunSpec,
    job: &str,
    tid: &str,
    offer: &Offer,
    role: &str,
    resources: Resources,
    labels: BTreeMap<String, String>,
) -> TaskInfo {
    let mut env: BTreeMap<String, String> = run
        .env
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
        .collect();
    env.insert("MESOS_TASK_ID".into(), tid.to_string());
    env.insert("METRONOME_JOB_ID".into(), job.to_string());
    if let Some((_, r)) = parse_task_id(tid) {
        env.insert("METRONOME_JOB_RUN_ID".into(), r.to_string());
    }
    env.insert("HOST".into(), offer.hostname.clone());
    let (value, shell, arguments) = match (&run.cmd, &run.args) {
        (Some(c), _) => (Some(c.clone()), true, Vec::new()),
        (None, Some(a)) if !a.is_empty() => (a.first().cloned(), false, a.clone()),
        _ => (None, false, Vec::new()),
    };
    let uris = run
        .artifacts
        .iter()
        .map(|a| UriInfo {
            value: a.uri.clone(),
            executable: a.executable,
            extract: a.extract,
            cache: a.cache,
            output_file: None,
            sha256: None,
        })
        .collect();
    let volumes: Vec<dcos_types::Volume> = run
        .volumes
        .iter()
        .filter_map(|v| {
            Some(dcos_types::Volume {
                container_path: v.get("containerPath")?.as_str()?.to_string(),
                host_path: Some(v.get("hostPath")?.as_str()?.to_string()),
                mode: v
                    .get("mode")
                    .and_then(|m| m.as_str())
                    .unwrap_or("RW")
                    .to_string(),
            })
        })
        .collect();
    let ucr_image = run
        .ucr
        .as_ref()
        .and_then(|u| u.get("image"))
        .and_then(|i| i.get("id"))
        .and_then(|i| i.as_str())
        .map(String::from);
    let container = if let Some(d) = &run.docker {
        Some(ContainerInfo {
            kind: "DOCKER".into(),
            docker: Some(DockerInfo {
                image: d.image.clone(),
                network: "HOST".into(),
                port_mappings: Vec::new(),
                privileged: d.privileged,
                force_pull_image: d.force_pull_image,
                parameters: d
                    .parameters
                    .iter()
                    .map(|p| (p.key.clone(), p.value.clone()))
                    .collect(),
            }),
            volumes,
        })
    } else if let Some(image) = ucr_image {
        let u = run.ucr.as_ref();
        Some(ContainerInfo {
            kind: "MESOS".into(),
            docker: Some(DockerInfo {
                image,
                network: "HOST".into(),
                port_mappings: Vec::new(),
                privileged: u
                    .and_then(|u| u.get("privileged"))
                    .and_then(|p| p.as_bool())
                    .unwrap_or(false),
                force_pull_image: u
                    .and_then(|u| u.get("image"))
                    .and_then(|i| i.get("forcePull"))
                    .and_then(|p| p.as_bool())
                    .unwrap_or(false),
                parameters: Vec::new(),
            }),
            volumes,
        })
    } else if !volumes.is_empty() {
        Some(ContainerInfo {
            kind: "MESOS".into(),
            docker: None,
            volumes,
        })
    } else {
        None
    };
    TaskInfo {
        task_id: TaskId(tid.to_string()),
        name: job.to_string(),
        agent_id: offer.agent_id.clone(),
        framework_id: Some(offer.framework_id.clone()),
        role: role.to_string(),
        resources,
        command: CommandInfo {
            value,
            shell,
            arguments,
            environment: env,
            uris,
            user: run.user.clone(),
        },
        container,
        health_check: None,
        kill_grace_period_seconds: run.task_kill_grace_period_seconds.unwrap_or(3.0),
        labels,
    }
}

/// Shared by the scheduler loop and the HTTP handlers.
pub struct Core {
    pub state: Mutex<State>,
    pub store: Arc<dyn Store>,
    pub master: Arc<dyn MasterApi>,
    pub wake: Notify,
    pub config: MetronomeConfig,
    pub clock: Clock,
    pub started_at: i64,
    /// The last commit was refused by the store (an I/O error, a full disk) and none has
    /// succeeded since: health reports Metronome unhealthy.
    pub commit_failed: AtomicBool,
}

/// Offers handed back in a round whose commit the store refused: short, so that launches
/// resume soon after the store accepts writes again.
const DECLINE_STORE_SECONDS: f64 = 1.0;

/// The calls of a round whose commit the store refused that may still go out. Nothing the
/// refused change was for is sent: no launch (its offers are declined instead), no
/// acknowledgement of an update whose effect was not stored (the master sends it again), no
/// revive or suppress decided on the lost state. Declines and kills of unknown tasks do not
/// depend on the store and still go.
fn calls_without_store(calls: Vec<SchedulerCall>) -> Vec<SchedulerCall> {
    calls
        .into_iter()
        .filter_map(|c| match c {
            SchedulerCall::Accept { offer_ids, .. } => Some(SchedulerCall::Decline {
                offer_ids,
                filters: Filters {
                    refuse_seconds: DECLINE_STORE_SECONDS,
                },
            }),
            SchedulerCall::Decline { .. }
            | SchedulerCall::Kill { .. }
            | SchedulerCall::Reconcile { .. } => Some(c),
            _ => None,
        })
        .collect()
}

/// Whether a store error says the store cannot write (rather than that the request was bad).
fn is_store_failure(e: &dcos_store::StoreError) -> bool {
    !matches!(
        e,
        dcos_store::StoreError::InvalidKey { .. }
            | dcos_store::StoreError::Conflict { .. }
            | dcos_store::StoreError::Decode { .. }
    )
}

impl Core {
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// One atomic, durable store commit. Callers that changed the in-memory state before
    /// committing use [`Core::commit_or_rebuild`] instead.
    pub fn commit(&self, ops: Vec<Op>) -> Result<(), dcos_store::StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        match self.store.commit(ops) {
            Ok(_) => {
                self.commit_failed.store(false, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => {
                if is_store_failure(&e) {
                    self.commit_failed.store(true, Ordering::SeqCst);
                }
                tracing::error!("metronome: store commit failed: {e}");
                Err(e)
            }
        }
    }

    /// Commits `ops`, the store writes of a change already applied to `st`. If the store
    /// refuses them, `st` goes back to what the store holds: it is rebuilt from the store
    /// with the recovery code, under the same lock, and what the store does not hold
    /// (`before`, taken before the change) is put back.
    ///
    /// Why rebuild rather than undo: the transitions (`new_run`, `on_status`, `tick`,
    /// `match_offers`, `finish_run` …) change runs, histories and schedules in many places;
    /// an undo per transition would have to be kept exact by hand for every future change,
    /// and a copy of the whole state before every round would cost on every round. The
    /// store is the truth and the recovery code already turns it into a state; a refused
    /// write is rare, so reading the store again then is cheap enough.
    pub fn commit_or_rebuild(
        &self,
        st: &mut State,
        before: Volatile,
        ops: Vec<Op>,
    ) -> Result<(), dcos_store::StoreError> {
        let res = self.commit(ops);
        if res.is_err() {
            self.rebuild(st, before);
        }
        res
    }

    /// [`Core::commit_or_rebuild`] for a change that has not touched `st` yet.
    pub fn commit_locked(
        &self,
        st: &mut State,
        ops: Vec<Op>,
    ) -> Result<(), dcos_store::StoreError> {
        let before = st.volatile();
        self.commit_or_rebuild(st, before, ops)
    }

    /// Replaces `st`'s jobs with what the store holds and puts `before` back.
    fn rebuild(&self, st: &mut State, before: Volatile) {
        match self.load(self.now(), false) {
            Ok((_, mut jobs)) => {
                for (id, next) in &before.next_fire {
                    if let Some(e) = jobs.get_mut(id) {
                        // A schedule fire whose run was refused fires again next tick.
                        e.next_fire = *next;
                    }
                }
                st.jobs = jobs;
                st.needs_rebuild = false;
                tracing::warn!(
                    "metronome: the store refused a write; state rebuilt from the store"
                );
            }
            Err(e) => {
                tracing::error!(
                    "metronome: the store refused a write and cannot be read back ({e}); \
                     launching nothing until it can"
                );
                st.needs_rebuild = true;
            }
        }
        st.counters = before.counters;
        st.suppressed = before.suppressed;
        st.revive_wanted = before.revive_wanted;
        st.last_tick = before.last_tick;
    }

    /// Whether Metronome can make changes durable: the store accepts writes and the last
    /// commit was not refused (or one succeeded since).
    pub fn store_writable(&self) -> Result<(), String> {
        self.store
            .writable()
            .map_err(|e| format!("the cluster store refuses writes: {e}"))?;
        if self.commit_failed.load(Ordering::SeqCst) {
            return Err("the cluster store refused the last write and none succeeded since".into());
        }
        Ok(())
    }

    /// Sends master calls (without holding the state lock).
    pub fn send(&self, calls: Vec<SchedulerCall>) {
        let fw = self.state.lock().framework_id.clone();
        let Some(fw) = fw else { return };
        let not_launched = self.master.send_all(&FrameworkId(fw), calls, "metronome");
        if !not_launched.is_empty() {
            let mut fx = Effects::default();
            let mut st = self.state.lock();
            let before = st.volatile();
            st.launch_failed(&not_launched, &mut fx);
            // On a refusal the runs stay as stored (launched): reconciliation at the next
            // subscription reports the tasks gone, and the runs launch again.
            let _ = self.commit_or_rebuild(&mut st, before, fx.ops);
            drop(st);
            self.wake.notify_one();
        }
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
            failover_timeout: 7.0 * 24.0 * 3600.0,
            weight: 1.0,
        }
    }

    /// Loads jobs, schedules, runs and history from the store.
    pub fn recover(&self) -> Result<(), StartError> {
        let now = self.now();
        let (framework_id, jobs) = self.load(now, true)?;
        let mut st = self.state.lock();
        st.framework_id_stored = framework_id.is_some();
        st.framework_id = framework_id;
        st.jobs = jobs;
        st.last_tick = now;
        tracing::info!(
            "metronome: recovered {} jobs, {} active runs",
            st.jobs.len(),
            st.active_runs()
        );
        Ok(())
    }

    /// Reads the framework id and the jobs with their schedules, history and active runs.
    /// `restart`: this is a start, so runs that wait for an offer wait again from `now` (their
    /// launch delay restarts); a rebuild after a refused write keeps the stored times.
    #[allow(clippy::type_complexity)]
    fn load(
        &self,
        now: i64,
        restart: bool,
    ) -> Result<(Option<String>, BTreeMap<String, JobEntry>), dcos_store::StoreError> {
        let mut framework_id = None;
        let mut jobs: BTreeMap<String, JobEntry> = BTreeMap::new();
        if let Some(e) = self.store.get(P_FRAMEWORK)? {
            framework_id = e.json::<String>().ok();
        }
        for e in self.store.list(P_JOBS)? {
            match e.json::<JobSpec>() {
                Ok(spec) => {
                    jobs.insert(spec.id.clone(), JobEntry::new(spec));
                }
                Err(err) => tracing::error!("metronome: skipping unreadable job {}: {err}", e.key),
            }
        }
        for e in self.store.list(P_SCHEDULES)? {
            let id = &e.key[P_SCHEDULES.len()..];
            match (e.json::<Vec<ScheduleSpec>>(), jobs.get_mut(id)) {
                (Ok(s), Some(entry)) => {
                    entry.schedules = s;
                    entry.reschedule(now);
                }
                (Err(err), _) => tracing::error!("metronome: skipping schedules {}: {err}", e.key),
                (Ok(_), None) => tracing::warn!("metronome: schedules of unknown job {}", e.key),
            }
        }
        for e in self.store.list(P_HISTORY)? {
            let id = &e.key[P_HISTORY.len()..];
            match (e.json::<History>(), jobs.get_mut(id)) {
                (Ok(h), Some(entry)) => entry.history = h,
                (Err(err), _) => tracing::error!("metronome: skipping history {}: {err}", e.key),
                (Ok(_), None) => {}
            }
        }
        for e in self.store.list(P_RUNS)? {
            match e.json::<JobRun>() {
                Ok(mut run) => {
                    if restart && run.current.is_none() && !run.stopping {
                        // Waiting again from now (the launch delay restarts).
                        run.waiting = true;
                        run.waiting_since = now;
                    }
                    match jobs.get_mut(&run.job_id) {
                        Some(entry) => {
                            entry.runs.insert(run.id.clone(), run);
                        }
                        None => {
                            tracing::warn!("metronome: run {} of unknown job", e.key)
                        }
                    }
                }
                Err(err) => tracing::error!("metronome: skipping run {}: {err}", e.key),
            }
        }
        Ok((framework_id, jobs))
    }

    /// Subscribes (re-subscribes with the stored id) and reconciles the live tasks.
    pub fn subscribe(
        &self,
    ) -> Result<tokio::sync::mpsc::UnboundedReceiver<SchedulerEvent>, StartError> {
        let prev = self.state.lock().framework_id.clone();
        let sub = self.master.subscribe(self.framework_info(prev.clone()))?;
        let fid = sub.framework_id.0.clone();
        let mut stored =
            prev.as_deref() == Some(fid.as_str()) && self.state.lock().framework_id_stored;
        if !stored {
            if let Ok(op) = Op::put_json(P_FRAMEWORK, &fid, dcos_store::Precondition::Any) {
                match self.commit(vec![op]) {
                    Ok(()) => stored = true,
                    Err(e) => tracing::warn!(
                        "metronome: cannot store the framework id ({e}); nothing is launched \
                         until it is stored"
                    ),
                }
            }
        }
        let tasks = {
            let mut st = self.state.lock();
            st.framework_id = Some(fid);
            st.framework_id_stored = stored;
            st.suppressed = false;
            st.jobs
                .values()
                .flat_map(|e| e.runs.values())
                .filter_map(|r| {
                    let t = r.current.clone()?;
                    let agent = r
                        .tasks
                        .iter()
                        .find(|x| x.id == t)
                        .map(|x| AgentId(x.agent_id.clone()));
                    Some((TaskId(t), agent))
                })
                .collect::<Vec<_>>()
        };
        let mut calls = Vec::new();
        if !tasks.is_empty() {
            calls.push(SchedulerCall::Reconcile { tasks });
        }
        calls.push(SchedulerCall::Revive);
        self.send(calls);
        Ok(sub.events)
    }

    /// The scheduler loop: runs until the process ends.
    pub async fn run(
        self: Arc<Self>,
        mut events: tokio::sync::mpsc::UnboundedReceiver<SchedulerEvent>,
    ) {
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let (batch, ticked) = dcos_types::next_round(
                &mut events,
                &self.wake,
                &mut tick,
                10_000,
                "metronome",
                || self.subscribe(),
            )
            .await;
            self.process(batch, ticked);
        }
    }

    /// One round: apply events, time-based work, match offers, persist, call the master.
    /// The master calls go out only once the round's changes are stored; if the store
    /// refuses them, the state is rebuilt from the store and only calls that do not depend
    /// on the change go out (offers are declined, nothing is launched).
    pub fn process(&self, batch: Vec<SchedulerEvent>, ticked: bool) {
        let now = self.now();
        let cap = self.config.history_count;
        let mut fx = Effects::default();
        let durable = {
            let mut st = self.state.lock();
            if st.needs_rebuild {
                let v = st.volatile();
                self.rebuild(&mut st, v);
            }
            let before = st.volatile();
            // Until the framework id is stored, it goes with this round's commit.
            let mut stores_framework_id = false;
            if !st.framework_id_stored {
                if let Some(fid) = &st.framework_id {
                    fx.put(P_FRAMEWORK.to_string(), fid);
                    stores_framework_id = true;
                }
            }
            let mut offers: Vec<Offer> = Vec::new();
            for ev in batch {
                match ev {
                    SchedulerEvent::Subscribed { framework_id } => {
                        st.framework_id = Some(framework_id.0);
                    }
                    SchedulerEvent::Offers(o) => offers.extend(o),
                    SchedulerEvent::Rescind(id) => offers.retain(|o| o.id != id),
                    SchedulerEvent::Update(s) => st.on_status(&s, now, cap, &mut fx),
                    SchedulerEvent::AgentLost(a) => {
                        tracing::info!("metronome: agent {a} lost");
                    }
                    SchedulerEvent::Error(e) => tracing::error!("metronome: master error: {e}"),
                }
            }
            if ticked {
                st.tick(now, cap, &mut fx);
            }
            if !offers.is_empty() {
                if st.needs_rebuild {
                    fx.calls.push(SchedulerCall::Decline {
                        offer_ids: offers.into_iter().map(|o| o.id).collect(),
                        filters: Filters {
                            refuse_seconds: DECLINE_STORE_SECONDS,
                        },
                    });
                } else {
                    st.match_offers(offers, &self.config.roles, now, &mut fx);
                }
            }
            let launchable = st.launchable(now);
            if launchable && (st.suppressed || st.revive_wanted) {
                fx.calls.push(SchedulerCall::Revive);
                st.suppressed = false;
            } else if !st.any_waiting() && !st.suppressed {
                fx.calls.push(SchedulerCall::Suppress);
                st.suppressed = true;
            }
            st.revive_wanted = false;
            let ops = std::mem::take(&mut fx.ops);
            let durable = self.commit_or_rebuild(&mut st, before, ops).is_ok();
            if durable && stores_framework_id {
                st.framework_id_stored = true;
            }
            durable
        };
        let calls = std::mem::take(&mut fx.calls);
        self.send(if durable {
            calls
        } else {
            calls_without_store(calls)
        });
    }
}
