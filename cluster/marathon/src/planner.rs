//! The deployment planner: a pure function from one app's target and its current tasks to
//! what to do next (launch N, kill these), Nomad-style. It is called again after every change
//! (status update, API write, tick), so it only needs to decide the next move, never a
//! whole schedule; a deployment step is done when the plan is empty and everything is healthy.
//!
//! A task counts as "healthy" here when it runs, passes its health checks and, while a
//! deployment runs, its readiness check.
//!
//! Rolling upgrade (Marathon's `TaskReplaceActor`): with `n = instances`,
//! `minHealthy = ceil(n × minimumHealthCapacity)` and
//! `maxCapacity = floor(n × (1 + maximumOverCapacity))` (+1 when both are equal, so that an
//! upgrade can make progress), old tasks are killed while more than
//! `minHealthy − healthyNew` of them remain, and new tasks are launched while
//! `old + new < maxCapacity` and `new < n`.

/// What the planner needs to know about one live task.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskView {
    pub id: String,
    /// Launched with the app's current configuration.
    pub current: bool,
    pub running: bool,
    /// `Some(true)` healthy, `Some(false)` unhealthy, `None` unknown/not checked.
    pub healthy: Option<bool>,
    /// Passed its readiness check, or needs none.
    pub ready: bool,
    pub staged_at: f64,
    pub started_at: Option<f64>,
}

/// What the planner needs to know about the app.
#[derive(Clone, Debug, PartialEq)]
pub struct AppView {
    pub instances: usize,
    pub minimum_health_capacity: f64,
    pub maximum_over_capacity: f64,
    pub has_health_checks: bool,
    /// Readiness checks gate a deployment's progress (never a steady app).
    pub has_readiness_checks: bool,
    /// `OLDEST_FIRST` (else youngest first).
    pub kill_oldest_first: bool,
    /// A deployment (start/scale/restart/upgrade) is in progress for the app.
    pub deploying: bool,
    /// The app is being deleted: everything goes.
    pub stopping: bool,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub launch: usize,
    pub kill: Vec<String>,
    /// The app's tasks match its definition: right count, current config, running & healthy.
    pub converged: bool,
}

impl TaskView {
    fn ok(&self, gates: Gates) -> bool {
        self.running
            && (!gates.health || self.healthy == Some(true))
            && (!gates.readiness || self.ready)
    }
}

/// What a task must pass to count: its health checks, and during a deployment its readiness
/// check.
#[derive(Clone, Copy)]
struct Gates {
    health: bool,
    readiness: bool,
}

impl AppView {
    fn gates(&self) -> Gates {
        Gates {
            health: self.has_health_checks,
            readiness: self.has_readiness_checks && self.deploying,
        }
    }
}

/// Orders kill candidates: unhealthy / not yet running first, then per `killSelection`.
fn kill_order(tasks: &mut [&TaskView], app: &AppView) {
    tasks.sort_by(|a, b| {
        let rank = |t: &TaskView| (t.ok(app.gates()) as u8, t.running as u8);
        let age = |t: &TaskView| t.started_at.unwrap_or(t.staged_at);
        rank(a).cmp(&rank(b)).then_with(|| {
            let (x, y) = (age(a), age(b));
            if app.kill_oldest_first {
                x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
            } else {
                y.partial_cmp(&x).unwrap_or(std::cmp::Ordering::Equal)
            }
            .then_with(|| a.id.cmp(&b.id))
        })
    });
}

/// Plans the next move for one app. `tasks` are its live tasks (not terminal, not already
/// being killed by us, not inactive-unreachable).
pub fn plan(app: &AppView, tasks: &[TaskView]) -> Plan {
    if app.stopping {
        return Plan {
            launch: 0,
            kill: tasks.iter().map(|t| t.id.clone()).collect(),
            converged: tasks.is_empty(),
        };
    }
    let n = app.instances;
    let (new, old): (Vec<&TaskView>, Vec<&TaskView>) = tasks.iter().partition(|t| t.current);
    let hc = app.gates();

    if old.is_empty() || !app.deploying {
        // Plain scaling: keep `n` tasks, old and new alike.
        let live = tasks.len();
        let mut out = Plan::default();
        if live < n {
            out.launch = n - live;
        } else if live > n {
            let mut all: Vec<&TaskView> = tasks.iter().collect();
            kill_order(&mut all, app);
            out.kill = all.iter().take(live - n).map(|t| t.id.clone()).collect();
        }
        out.converged = old.is_empty() && live == n && tasks.iter().all(|t| t.ok(hc));
        return out;
    }

    // Rolling replacement.
    let min_healthy = (n as f64 * app.minimum_health_capacity - 1e-9)
        .ceil()
        .max(0.0) as usize;
    let mut max_capacity = (n as f64 * (1.0 + app.maximum_over_capacity) + 1e-9).floor() as usize;
    if min_healthy >= max_capacity {
        max_capacity = min_healthy + 1;
    }
    let healthy_new = new.iter().filter(|t| t.ok(hc)).count();
    let keep_old = min_healthy.saturating_sub(healthy_new).min(old.len());
    let mut out = Plan::default();
    let mut old_sorted = old.clone();
    kill_order(&mut old_sorted, app);
    let kill_old = old.len() - keep_old;
    out.kill
        .extend(old_sorted.iter().take(kill_old).map(|t| t.id.clone()));
    let old_left = old.len() - kill_old;
    if new.len() > n {
        let mut new_sorted = new.clone();
        kill_order(&mut new_sorted, app);
        out.kill
            .extend(new_sorted.iter().take(new.len() - n).map(|t| t.id.clone()));
    }
    let room = max_capacity.saturating_sub(old_left + new.len());
    out.launch = room.min(n.saturating_sub(new.len()));
    out.converged = false;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(n: usize, mhc: f64, moc: f64) -> AppView {
        AppView {
            instances: n,
            minimum_health_capacity: mhc,
            maximum_over_capacity: moc,
            has_health_checks: false,
            has_readiness_checks: false,
            kill_oldest_first: false,
            deploying: true,
            stopping: false,
        }
    }

    fn t(id: &str, current: bool, running: bool, at: f64) -> TaskView {
        TaskView {
            id: id.into(),
            current,
            running,
            healthy: None,
            ready: true,
            staged_at: at,
            started_at: running.then_some(at),
        }
    }

    #[test]
    fn scale_up_and_down() {
        let a = AppView {
            deploying: false,
            ..app(3, 1.0, 1.0)
        };
        assert_eq!(plan(&a, &[]).launch, 3);
        let tasks = [
            t("a", true, true, 1.0),
            t("b", true, true, 2.0),
            t("c", true, true, 3.0),
            t("d", true, false, 4.0),
        ];
        let p = plan(&a, &tasks);
        // The not-yet-running one goes first.
        assert_eq!(p.kill, vec!["d"]);
        let a1 = AppView {
            instances: 1,
            ..a.clone()
        };
        // youngest first among running
        assert_eq!(plan(&a1, &tasks[..3]).kill, vec!["c", "b"]);
        let oldest = AppView {
            kill_oldest_first: true,
            ..a1
        };
        assert_eq!(plan(&oldest, &tasks[..3]).kill, vec!["a", "b"]);
        assert!(plan(&a, &tasks[..3]).converged);
    }

    #[test]
    fn default_strategy_starts_all_new_then_stops_old() {
        // minimumHealthCapacity 1, maximumOverCapacity 1: 2x capacity, no kills until healthy.
        let a = app(3, 1.0, 1.0);
        let old = [
            t("o1", false, true, 1.0),
            t("o2", false, true, 2.0),
            t("o3", false, true, 3.0),
        ];
        let p = plan(&a, &old);
        assert_eq!(p.launch, 3);
        assert!(p.kill.is_empty());
        // two new healthy → two old can go
        let mut tasks = old.to_vec();
        tasks.push(t("n1", true, true, 5.0));
        tasks.push(t("n2", true, true, 6.0));
        tasks.push(t("n3", true, false, 7.0));
        let p = plan(&a, &tasks);
        assert_eq!(p.kill.len(), 2);
        assert_eq!(p.launch, 0);
        // all new healthy, old gone → converged in the scaling branch
        let done = [
            t("n1", true, true, 5.0),
            t("n2", true, true, 6.0),
            t("n3", true, true, 7.0),
        ];
        assert!(plan(&a, &done).converged);
    }

    #[test]
    fn zero_health_capacity_kills_all_old_first() {
        let a = app(2, 0.0, 0.0);
        let old = [t("o1", false, true, 1.0), t("o2", false, true, 2.0)];
        let p = plan(&a, &old);
        assert_eq!(p.kill.len(), 2);
        // capacity 2 is free once the old ones are gone
        assert_eq!(p.launch, 2);
    }

    #[test]
    fn partial_capacity_rolls_one_by_one() {
        // n=4, mhc 0.5 → minHealthy 2; moc 0 → maxCapacity 4
        let a = app(4, 0.5, 0.0);
        let old: Vec<TaskView> = (0..4)
            .map(|i| t(&format!("o{i}"), false, true, i as f64))
            .collect();
        let p = plan(&a, &old);
        assert_eq!(p.kill.len(), 2, "kill down to minHealthy");
        assert_eq!(p.launch, 2, "launch into the freed capacity");
        // after: 2 old + 2 new running healthy → kill remaining 2 old, launch 2
        let mut tasks: Vec<TaskView> = old[2..].to_vec();
        tasks.push(t("n0", true, true, 10.0));
        tasks.push(t("n1", true, true, 11.0));
        let p = plan(&a, &tasks);
        assert_eq!(p.kill.len(), 2);
        assert_eq!(p.launch, 2);
    }

    #[test]
    fn single_instance_upgrade_overlaps_by_one() {
        let a = app(1, 1.0, 0.0);
        let p = plan(&a, &[t("o", false, true, 1.0)]);
        assert_eq!((p.launch, p.kill.len()), (1, 0));
        let p = plan(&a, &[t("o", false, true, 1.0), t("n", true, true, 2.0)]);
        assert_eq!((p.launch, p.kill.clone()), (0, vec!["o".to_string()]));
    }

    #[test]
    fn health_checks_gate_progress() {
        let a = AppView {
            has_health_checks: true,
            ..app(1, 1.0, 0.0)
        };
        let mut n = t("n", true, true, 2.0);
        let p = plan(&a, &[t("o", false, true, 1.0), n.clone()]);
        assert!(p.kill.is_empty(), "new task not yet healthy");
        n.healthy = Some(true);
        let p = plan(&a, &[t("o", false, true, 1.0), n]);
        assert_eq!(p.kill, vec!["o"]);
    }

    #[test]
    fn readiness_checks_gate_deployments_only() {
        let a = AppView {
            has_readiness_checks: true,
            ..app(1, 1.0, 0.0)
        };
        let mut n = t("n", true, true, 2.0);
        n.ready = false;
        let p = plan(&a, &[t("o", false, true, 1.0), n.clone()]);
        assert!(
            p.kill.is_empty(),
            "new task not yet ready: the old one stays"
        );
        // A start/scale deployment does not converge before its new tasks are ready.
        assert!(!plan(&a, std::slice::from_ref(&n)).converged);
        let steady = AppView {
            deploying: false,
            ..a.clone()
        };
        assert!(plan(&steady, std::slice::from_ref(&n)).converged);
        n.ready = true;
        let p = plan(&a, &[t("o", false, true, 1.0), n.clone()]);
        assert_eq!(p.kill, vec!["o"]);
        assert!(plan(&a, &[n]).converged);
    }

    #[test]
    fn stopping_kills_everything() {
        let a = AppView {
            stopping: true,
            ..app(3, 1.0, 1.0)
        };
        let p = plan(&a, &[t("a", true, true, 1.0), t("b", false, false, 1.0)]);
        assert_eq!(p.kill.len(), 2);
        assert!(!p.converged);
        assert!(plan(&a, &[]).converged);
    }
}
