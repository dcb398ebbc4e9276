//! Nothing acts on a change that is not durable.
//!
//! Every change to Marathon's state (API writes, scheduler rounds, refused launches, the
//! framework id) goes through [`Core::persist`]: the store ops collected in [`Effects`] are
//! committed in one atomic commit, and only then are the events published and the master
//! calls released. When the commit fails:
//!
//! * the calls that depend on the change are dropped: launches (`Accept`) become `Decline`s
//!   of their offers, kills and acknowledgements are not sent (the agent resends an
//!   unacknowledged update; the kill is planned again); declines, revive/suppress and
//!   reconciliation do not depend on the store and are kept;
//! * the events of the change are dropped;
//! * the in-memory state is rebuilt from the store with the recovery code (under the same
//!   lock), keeping only volatile data that is safe to keep (backoff, offer statistics,
//!   readiness results, counters; see [`keep_volatile`]). Undoing each transition precisely
//!   would need an inverse for every transition; re-reading what the store holds is one code
//!   path, already tested by crash recovery, and is correct by construction;
//! * Marathon is *degraded* until a commit succeeds: it does not revive offers, declines
//!   offers while the store says it is not writable, and re-writes its framework id each
//!   round as a probe. The first commit that succeeds ends it and reconciles every task with
//!   the master (status updates that could not be stored were not acknowledged).

use std::sync::atomic::Ordering;

use dcos_store::{Op, Store, StoreError};
use dcos_types::{AgentId, Filters, SchedulerCall, TaskId};

use crate::model::App;
use crate::scheduler::Core;
use crate::state::{
    AppEntry, Deployment, Effects, State, Task, P_APPS, P_DEPLOYMENTS, P_FRAMEWORK, P_TASKS,
    P_VERSIONS,
};

impl Core {
    /// The one way a change takes effect: commits `fx.ops` (plus the framework id when it is
    /// not stored yet) atomically; on success publishes `fx.events` and leaves `fx.calls` to
    /// be sent; on failure rolls `st` back to what the store holds, drops the events and
    /// keeps only the calls that do not depend on the change. Call with the state lock held.
    pub fn persist(&self, st: &mut State, fx: &mut Effects) -> Result<(), StoreError> {
        let changed = !fx.ops.is_empty();
        if st.framework_id_unstored {
            if let Some(fid) = &st.framework_id {
                fx.ops.push(Op::put(
                    P_FRAMEWORK,
                    serde_json::to_vec(fid).unwrap_or_default(),
                ));
            }
        }
        if fx.ops.is_empty() {
            self.publish(fx);
            return Ok(());
        }
        match self.store.commit(std::mem::take(&mut fx.ops)) {
            Ok(_) => {
                st.framework_id_unstored = false;
                if self.failure.lock().take().is_some() {
                    tracing::info!("marathon: the store accepts writes again; reconciling tasks");
                    push_reconcile(st, fx);
                }
                self.publish(fx);
                Ok(())
            }
            Err(e) => {
                self.refused(st, fx, &e, changed);
                Err(e)
            }
        }
    }

    fn publish(&self, fx: &mut Effects) {
        for ev in fx.events.drain(..) {
            self.events.send(ev);
        }
    }

    /// A refused commit: nothing of the change acts, the state is what the store holds.
    fn refused(&self, st: &mut State, fx: &mut Effects, e: &StoreError, changed: bool) {
        if !matches!(e, StoreError::InvalidKey { .. }) {
            let cause = root_cause(e);
            let mut failure = self.failure.lock();
            if failure.as_deref() != Some(cause.as_str()) {
                // Logged once per cause, not once per round while the disk stays full.
                tracing::error!("marathon: store commit failed; the change is undone: {e}");
            }
            *failure = Some(cause);
        }
        fx.events.clear();
        keep_independent_calls(st, fx, self.config.unfit_refuse_seconds);
        if changed {
            self.rebuild(st);
        }
    }

    /// Replaces `st` by what the store holds, keeping volatile data. If the store cannot be
    /// read, the rebuild is retried before the next change ([`Core::consistent`]).
    pub(crate) fn rebuild(&self, st: &mut State) {
        let mut fresh = State::default();
        match load(&*self.store, &mut fresh) {
            Ok(()) => {
                let old = std::mem::take(st);
                keep_volatile(old, &mut fresh);
                *st = fresh;
                self.rebuild_pending.store(false, Ordering::SeqCst);
            }
            Err(e) => {
                tracing::error!("marathon: cannot re-read the store to undo a change: {e}");
                self.rebuild_pending.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Whether the in-memory state is what the store holds (a failed rebuild is retried).
    pub(crate) fn consistent(&self, st: &mut State) -> bool {
        if self.rebuild_pending.load(Ordering::SeqCst) {
            self.rebuild(st);
        }
        !self.rebuild_pending.load(Ordering::SeqCst)
    }

    /// Why the last commit failed, while no commit has succeeded since.
    pub fn store_failure(&self) -> Option<String> {
        self.failure.lock().clone()
    }
}

/// The message of the innermost error (`No space left on device (os error 28)`).
pub fn root_cause(e: &StoreError) -> String {
    match e {
        StoreError::Io { source, .. } => source.to_string(),
        e => e.to_string(),
    }
}

/// Drops the calls that depend on a refused change; launches become declines.
fn keep_independent_calls(st: &mut State, fx: &mut Effects, refuse_seconds: f64) {
    let calls = std::mem::take(&mut fx.calls);
    for c in calls {
        match c {
            SchedulerCall::Accept {
                offer_ids, tasks, ..
            } => {
                st.counters.tasks_launched = st
                    .counters
                    .tasks_launched
                    .saturating_sub(tasks.len() as u64);
                st.counters.offers_declined += 1;
                fx.calls.push(SchedulerCall::Decline {
                    offer_ids,
                    filters: Filters { refuse_seconds },
                });
            }
            c @ (SchedulerCall::Decline { .. }
            | SchedulerCall::Revive
            | SchedulerCall::Suppress
            | SchedulerCall::Reconcile { .. }) => fx.calls.push(c),
            _ => {}
        }
    }
}

/// After a period of refused writes: ask the master for the state of every task (explicit)
/// and of the tasks we do not know (implicit).
fn push_reconcile(st: &State, fx: &mut Effects) {
    let tasks: Vec<(TaskId, Option<AgentId>)> = st
        .all_tasks()
        .map(|t| (TaskId(t.id.clone()), Some(AgentId(t.agent_id.clone()))))
        .collect();
    if !tasks.is_empty() {
        fx.calls.push(SchedulerCall::Reconcile { tasks });
    }
    fx.calls
        .push(SchedulerCall::Reconcile { tasks: Vec::new() });
}

/// Carries what the store does not hold from the state being replaced to the rebuilt one:
/// counters, clocks, offer bookkeeping, the framework id (the master knows us by it; if it
/// is not stored it is written with the next commit), and per app and task that still exist:
/// backoff, last failure, offer statistics and readiness results.
fn keep_volatile(old: State, fresh: &mut State) {
    fresh.counters = old.counters;
    fresh.started_at = old.started_at;
    fresh.next_service_port = old.next_service_port;
    fresh.last_version_ms = fresh.last_version_ms.max(old.last_version_ms);
    fresh.suppressed = old.suppressed;
    fresh.last_list_bytes = old.last_list_bytes;
    fresh.last_reconcile = old.last_reconcile;
    if old.framework_id.is_some() {
        fresh.framework_id_unstored =
            old.framework_id_unstored || fresh.framework_id != old.framework_id;
        fresh.framework_id = old.framework_id;
    }
    for (id, e) in old.apps {
        let Some(f) = fresh.apps.get_mut(&id) else {
            continue;
        };
        f.backoff = e.backoff;
        f.last_task_failure = e.last_task_failure;
        f.offer_stats = e.offer_stats;
        f.queued_since = e.queued_since;
        f.last_used_offer_at = e.last_used_offer_at;
        f.last_unused_offer_at = e.last_unused_offer_at;
        for (tid, t) in e.tasks {
            if let Some(ft) = f.tasks.get_mut(&tid) {
                if ft.readiness.is_some() && t.readiness.is_some() {
                    ft.readiness = t.readiness;
                }
            }
        }
    }
}

/// Loads apps, versions, deployments and tasks from the store into `st` (start-up recovery
/// and the rebuild after a refused commit).
pub(crate) fn load(store: &dyn Store, st: &mut State) -> Result<(), StoreError> {
    if let Some(e) = store.get(P_FRAMEWORK)? {
        st.framework_id = e.json::<String>().ok();
    }
    load_apps(store, st)?;
    for e in store.list(P_DEPLOYMENTS)? {
        match e.json::<Deployment>() {
            Ok(d) => {
                st.deployments.insert(d.id.clone(), d);
            }
            Err(err) => tracing::error!("marathon: skipping deployment {}: {err}", e.key),
        }
    }
    load_tasks(store, st)?;
    reset_readiness(st);
    Ok(())
}

fn load_apps(store: &dyn Store, st: &mut State) -> Result<(), StoreError> {
    for e in store.list(P_APPS)? {
        match App::from_slice(&e.value) {
            Ok(app) => {
                let id = app.id.clone();
                for p in app.service_ports() {
                    st.service_ports.insert(p);
                }
                if let Some(v) = &app.version {
                    let ms = chrono::DateTime::parse_from_rfc3339(v)
                        .map(|t| t.timestamp_millis())
                        .unwrap_or(0);
                    st.last_version_ms = st.last_version_ms.max(ms);
                }
                st.apps.insert(id.clone(), AppEntry::new(app));
                st.dirty.insert(id);
            }
            Err(err) => tracing::error!("marathon: skipping unreadable app {}: {err:?}", e.key),
        }
    }
    for e in store.list(P_VERSIONS)? {
        let rest = &e.key[P_VERSIONS.len()..];
        if let Some((key, v)) = rest.split_once('/') {
            let id = format!("/{}", key.replace('_', "/"));
            if let Some(a) = st.apps.get_mut(&id) {
                a.versions.push(v.to_string());
            }
        }
    }
    for a in st.apps.values_mut() {
        a.versions.sort();
        a.versions.reverse();
    }
    Ok(())
}

fn load_tasks(store: &dyn Store, st: &mut State) -> Result<(), StoreError> {
    for e in store.list(P_TASKS)? {
        let t: Task = match e.json() {
            Ok(t) => t,
            Err(err) => {
                tracing::error!("marathon: skipping task {}: {err}", e.key);
                continue;
            }
        };
        let app_id = t.app_id.clone();
        let entry = st
            .apps
            .entry(app_id.clone())
            .or_insert_with(|| deleted_app(&app_id));
        entry.tasks.insert(t.id.clone(), t);
        st.dirty.insert(app_id);
    }
    Ok(())
}

/// The entry for tasks of an app deleted before a crash: kept to kill them.
fn deleted_app(app_id: &str) -> AppEntry {
    let mut a = App::from_value(serde_json::json!({"id": app_id, "cmd": "", "instances": 0}))
        .unwrap_or_else(|_| App::from_value(serde_json::json!({})).expect("empty app"));
    a.id = app_id.to_string();
    let mut e = AppEntry::new(a);
    e.deleted = true;
    e
}

/// Readiness results are not persisted (as in Marathon): the current tasks of apps in a
/// deployment are probed again.
fn reset_readiness(st: &mut State) {
    let deploying: Vec<String> = st
        .deployments
        .values()
        .flat_map(|d| d.affected_apps())
        .collect();
    for id in deploying {
        if let Some(e) = st.apps.get_mut(&id) {
            if e.app.readiness_checks.is_empty() {
                continue;
            }
            let cfg = e.config_version().to_string();
            for t in e.tasks.values_mut() {
                if t.config_version == cfg && !t.state.is_terminal() {
                    t.readiness = Some(Default::default());
                }
            }
        }
    }
}
