//! JSON output of apps and tasks, written straight into a byte buffer from per-app and
//! per-task caches (a definition or task is serialized once per change, not per request), so
//! that `GET /v2/apps?embed=apps.tasks` at 10k apps / 100k tasks stays fast.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::model::{iso, App};
use crate::state::{AppEntry, State, Task};

/// What to embed in AppInfo.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Embed {
    pub tasks: bool,
    pub counts: bool,
    pub deployments: bool,
    pub last_task_failure: bool,
    pub task_stats: bool,
    pub readiness: bool,
}

impl Embed {
    /// Parses `embed` values (`apps.tasks`, `app.counts`, `group.apps.tasks`, `tasks`, ...).
    pub fn parse<'a>(values: impl Iterator<Item = &'a str>, mut base: Embed) -> Embed {
        for v in values {
            let v = v
                .trim_start_matches("group.")
                .trim_start_matches("apps.")
                .trim_start_matches("app.");
            match v {
                "tasks" => {
                    base.tasks = true;
                    base.deployments = true;
                }
                "counts" => base.counts = true,
                "deployments" => base.deployments = true,
                "readiness" => base.readiness = true,
                "lastTaskFailure" => base.last_task_failure = true,
                "failures" => {
                    base.tasks = true;
                    base.last_task_failure = true;
                    base.deployments = true;
                }
                "taskStats" => base.task_stats = true,
                other => tracing::debug!("marathon: ignoring unknown embed {other:?}"),
            }
        }
        base
    }
}

/// An app definition as a JSON object string (direct serialization unless there are unknown
/// fields to merge in).
pub fn app_json(app: &App) -> String {
    if app.extra.is_empty() {
        serde_json::to_string(app).unwrap_or_else(|_| "{}".into())
    } else {
        app.to_value().to_string()
    }
}

/// The cached JSON object of an app definition.
pub fn app_def(e: &mut AppEntry) -> &str {
    if e.json.is_none() {
        e.json = Some(app_json(&e.app));
    }
    e.json.as_deref().unwrap_or("{}")
}

/// Appends `s` as a JSON string.
pub fn push_str_json(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&Value::String(s.to_string()).to_string());
    }
}

fn push_iso(out: &mut String, x: Option<f64>) {
    match x {
        Some(t) => {
            out.push('"');
            out.push_str(&iso(t));
            out.push('"');
        }
        None => out.push_str("null"),
    }
}

/// The cached JSON of a task (Marathon's `Task`, as marathon-python parses it), written by
/// hand: this runs 100k times for a cold `GET /v2/apps?embed=apps.tasks`.
pub fn task_json<'a>(t: &'a mut Task, app: &App) -> &'a str {
    if t.json.is_none() {
        let mut o = String::with_capacity(512);
        o.push_str("{\"id\":");
        push_str_json(&mut o, &t.id);
        o.push_str(",\"slaveId\":");
        push_str_json(&mut o, &t.agent_id);
        o.push_str(",\"host\":");
        push_str_json(&mut o, &t.host);
        o.push_str(",\"state\":\"");
        o.push_str(t.state.as_str());
        o.push_str("\",\"stagedAt\":");
        push_iso(&mut o, Some(t.staged_at));
        if t.started_at.is_some() {
            o.push_str(",\"startedAt\":");
            push_iso(&mut o, t.started_at);
        }
        o.push_str(",\"ports\":[");
        for (i, p) in t.ports.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(o, "{p}");
        }
        o.push_str("],\"version\":");
        push_str_json(&mut o, &t.version);
        o.push_str(",\"ipAddresses\":[{\"ipAddress\":");
        push_str_json(&mut o, &t.host);
        o.push_str(",\"protocol\":\"IPv4\"}],\"appId\":");
        push_str_json(&mut o, &t.app_id);
        o.push_str(",\"servicePorts\":[");
        for (i, p) in app.service_ports().iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(o, "{p}");
        }
        o.push_str("],\"localVolumes\":[],\"role\":");
        push_str_json(&mut o, &t.role);
        if !app.health_checks.is_empty() {
            o.push_str(",\"healthCheckResults\":[");
            if let Some(alive) = t.healthy {
                let _ = write!(
                    o,
                    "{{\"alive\":{alive},\"consecutiveFailures\":{},\"firstSuccess\":",
                    t.health.consecutive_failures
                );
                push_iso(&mut o, t.health.first_success);
                o.push_str(",\"lastSuccess\":");
                push_iso(&mut o, t.health.last_success);
                o.push_str(",\"lastFailure\":");
                push_iso(&mut o, t.health.last_failure);
                o.push_str(",\"lastFailureCause\":");
                match &t.health.last_failure_cause {
                    Some(c) => push_str_json(&mut o, c),
                    None => o.push_str("null"),
                }
                o.push_str(",\"taskId\":");
                push_str_json(&mut o, &t.id);
                o.push_str(",\"instanceId\":");
                push_str_json(&mut o, &t.id);
                o.push('}');
            }
            o.push(']');
        }
        o.push('}');
        t.json = Some(o);
    }
    t.json.as_deref().unwrap_or("{}")
}

/// Deployment ids per app.
pub fn deployments_by_app(st: &State) -> HashMap<String, Vec<String>> {
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for d in st.deployments.values() {
        for a in d.affected_apps() {
            m.entry(a).or_default().push(d.id.clone());
        }
    }
    m
}

fn push_field(out: &mut String, first: &mut bool, name: &str) {
    if !*first {
        out.push(',');
    }
    *first = false;
    out.push('"');
    out.push_str(name);
    out.push_str("\":");
}

/// Writes one AppInfo object: the definition plus counts/deployments/tasks as asked.
pub fn write_app_info(
    out: &mut String,
    e: &mut AppEntry,
    deps: &HashMap<String, Vec<String>>,
    embed: Embed,
    now: f64,
) {
    let def = app_def(e);
    let body = def.strip_suffix('}').unwrap_or("{");
    out.push_str(body);
    let mut first = body.trim_end() == "{";
    if embed.counts || embed.tasks || embed.task_stats {
        let (staged, running, healthy, unhealthy) = e.counts();
        if embed.counts {
            let _ = write!(
                out,
                "{}\"tasksStaged\":{staged},\"tasksRunning\":{running},\"tasksHealthy\":{healthy},\"tasksUnhealthy\":{unhealthy}",
                if first { "" } else { "," }
            );
            first = false;
        }
        if embed.task_stats {
            push_field(out, &mut first, "taskStats");
            let lifetimes: Vec<f64> = e
                .tasks
                .values()
                .filter_map(|t| t.started_at.map(|s| (now - s).max(0.0)))
                .collect();
            out.push_str(
                &task_stats_json(staged, running, healthy, unhealthy, &lifetimes).to_string(),
            );
        }
    }
    if embed.deployments {
        push_field(out, &mut first, "deployments");
        out.push('[');
        if let Some(ds) = deps.get(&e.app.id) {
            for (i, d) in ds.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&json!({ "id": d }).to_string());
            }
        }
        out.push(']');
    }
    if embed.readiness {
        push_field(out, &mut first, "readinessCheckResults");
        if deps.contains_key(&e.app.id) {
            out.push_str(&Value::Array(crate::readiness::results_json(e)).to_string());
        } else {
            out.push_str("[]");
        }
    }
    if embed.last_task_failure {
        if let Some(f) = &e.last_task_failure {
            push_field(out, &mut first, "lastTaskFailure");
            out.push_str(&f.to_string());
        }
    }
    if embed.tasks {
        push_field(out, &mut first, "tasks");
        out.push('[');
        let app = e.app.clone();
        for (i, t) in e.tasks.values_mut().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(task_json(t, &app));
        }
        out.push(']');
    }
    out.push('}');
}

fn task_stats_json(
    staged: usize,
    running: usize,
    healthy: usize,
    unhealthy: usize,
    lifetimes: &[f64],
) -> Value {
    let mut l = lifetimes.to_vec();
    l.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let avg = if l.is_empty() {
        0.0
    } else {
        l.iter().sum::<f64>() / l.len() as f64
    };
    let median = if l.is_empty() { 0.0 } else { l[l.len() / 2] };
    let stats = json!({"stats": {
        "counts": {"staged": staged, "running": running, "healthy": healthy, "unhealthy": unhealthy},
        "lifeTime": {"averageSeconds": avg, "medianSeconds": median}
    }});
    json!({"totalSummary": stats})
}

/// AppInfo as a JSON value (single-app endpoints).
pub fn app_info_value(st: &mut State, id: &str, embed: Embed, now: f64) -> Option<Value> {
    let deps = deployments_by_app(st);
    let e = st.apps.get_mut(id).filter(|e| !e.deleted)?;
    let mut s = String::new();
    write_app_info(&mut s, e, &deps, embed, now);
    serde_json::from_str(&s).ok()
}
