//! Mesos-shaped JSON for the state endpoints (what the DC/OS CLI parses).

use std::collections::BTreeMap;

use dcos_types::resources::format_ranges;
use dcos_types::{Resources, TaskState};
use serde_json::{json, Map, Value};

use crate::master::{AgentEntry, AgentMode, FrameworkEntry, Master, State, TaskEntry};

pub const VERSION: &str = "1.11.0";

pub fn resources_json(r: &Resources) -> Value {
    let mut m = Map::new();
    m.insert("cpus".into(), json!(r.cpus));
    m.insert("mem".into(), json!(r.mem));
    m.insert("disk".into(), json!(r.disk));
    m.insert("gpus".into(), json!(r.gpus));
    if !r.ports.is_empty() {
        m.insert("ports".into(), json!(format_ranges(&r.ports)));
    }
    Value::Object(m)
}

fn sum(m: &BTreeMap<String, Resources>) -> Resources {
    m.values().fold(Resources::default(), |a, r| a.plus(r))
}

fn ip_of(host: &str) -> String {
    host.to_string()
}

pub fn agent_pid(a: &AgentEntry) -> String {
    format!("slave(1)@{}:{}", ip_of(&a.info.hostname), a.info.port)
}

pub fn task_json(t: &TaskEntry) -> Value {
    let statuses: Vec<Value> = t
        .statuses
        .iter()
        .map(|s| {
            let mut v = json!({
                "state": s.state.as_str(),
                "timestamp": s.timestamp,
            });
            if let Some(h) = s.healthy {
                v["healthy"] = json!(h);
            }
            if let Some(m) = &s.message {
                if !m.is_empty() {
                    v["message"] = json!(m);
                }
            }
            v
        })
        .collect();
    let labels: Vec<Value> = t
        .info
        .labels
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    let mut v = json!({
        "id": t.info.task_id.as_str(),
        "name": t.info.name,
        "framework_id": t.framework_id.as_str(),
        "executor_id": "",
        "slave_id": t.info.agent_id.as_str(),
        "agent_id": t.info.agent_id.as_str(),
        "state": t.state.as_str(),
        "resources": resources_json(&t.info.resources),
        "role": t.info.role,
        "statuses": statuses,
        "labels": labels,
    });
    if let Some(h) = t.statuses.iter().rev().find_map(|s| s.healthy) {
        v["healthy"] = json!(h);
    }
    if let Some(c) = &t.info.container {
        v["container"] = serde_json::to_value(c).unwrap_or(Value::Null);
    }
    v
}

pub fn agent_json(a: &AgentEntry, st: &State) -> Value {
    let total = sum(&a.info.resources);
    let used = sum(&a.used);
    let offered = sum(&a.offered);
    let reserved: Map<String, Value> = a
        .info
        .resources
        .iter()
        .filter(|(role, _)| role.as_str() != "*")
        .map(|(role, r)| (role.clone(), resources_json(r)))
        .collect();
    let unreserved = a.info.resources.get("*").cloned().unwrap_or_default();
    let attributes: Map<String, Value> = a
        .info
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(Value::Null)))
        .collect();
    let mut v = json!({
        "id": a.info.id.as_str(),
        "pid": agent_pid(a),
        "hostname": a.info.hostname,
        "port": a.info.port,
        "registered_time": a.registered_time,
        "resources": resources_json(&total),
        "used_resources": resources_json(&used),
        "offered_resources": resources_json(&offered),
        "reserved_resources": reserved,
        "unreserved_resources": resources_json(&unreserved),
        "attributes": attributes,
        "active": a.mode == AgentMode::Active,
        "version": if a.version.is_empty() { VERSION } else { a.version.as_str() },
        "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
    });
    if let Some(t) = a.reregistered_time {
        v["reregistered_time"] = json!(t);
    }
    let _ = st;
    v
}

fn framework_json(f: &FrameworkEntry, st: &State, master: &Master) -> Value {
    let mut tasks = Vec::new();
    let mut used = Resources::default();
    let mut unreachable = Vec::new();
    for t in f.tasks.iter().filter_map(|t| st.tasks.get(t)) {
        used = used.plus(&t.info.resources);
        if t.state == TaskState::Unreachable {
            unreachable.push(task_json(t));
        } else {
            tasks.push(task_json(t));
        }
    }
    let completed: Vec<Value> = st
        .completed_tasks
        .iter()
        .filter(|t| t.framework_id == f.id)
        .map(task_json)
        .collect();
    let mut offered = Resources::default();
    let mut offers = Vec::new();
    for o in f.offers.iter().filter_map(|o| st.offers.get(o)) {
        offered = offered.plus(&o.offer.total());
        offers.push(json!({
            "id": o.offer.id.as_str(),
            "framework_id": f.id.as_str(),
            "slave_id": o.offer.agent_id.as_str(),
            "resources": resources_json(&o.offer.total()),
        }));
    }
    let role = f.info.roles.first().cloned().unwrap_or_else(|| "*".into());
    let hostname = f
        .info
        .hostname
        .clone()
        .unwrap_or_else(|| master.config().hostname.clone());
    json!({
        "id": f.id.as_str(),
        "name": f.info.name,
        "pid": format!("scheduler-{}@{}:{}", f.id, hostname, master.config().port),
        "hostname": hostname,
        "user": f.info.user,
        "role": role,
        "roles": f.info.roles,
        "principal": f.info.principal,
        "webui_url": f.info.webui_url.clone().unwrap_or_default(),
        "active": f.active(),
        "connected": f.active(),
        "recovered": false,
        "checkpoint": f.info.checkpoint,
        "failover_timeout": f.info.failover_timeout,
        "registered_time": f.registered_time,
        "reregistered_time": f.reregistered_time.unwrap_or(f.registered_time),
        "unregistered_time": f.unregistered_time.unwrap_or(0.0),
        "capabilities": ["PARTITION_AWARE", "TASK_KILLING_STATE", "MULTI_ROLE"],
        "resources": resources_json(&used.plus(&offered)),
        "used_resources": resources_json(&used),
        "offered_resources": resources_json(&offered),
        "tasks": tasks,
        "unreachable_tasks": unreachable,
        "completed_tasks": completed,
        "offers": offers,
        "executors": [],
    })
}

fn completed_framework_json(f: &FrameworkEntry, st: &State, master: &Master) -> Value {
    let mut v = framework_json(f, st, master);
    v["active"] = json!(false);
    v["connected"] = json!(false);
    v
}

fn leader_info(master: &Master) -> Value {
    let c = master.config();
    json!({
        "id": master.id(),
        "pid": format!("master@{}:{}", c.hostname, c.port),
        "port": c.port,
        "hostname": c.hostname,
        "ip": c.hostname,
    })
}

/// `/master/state`.
pub fn state(master: &Master) -> Value {
    let st = master.lock();
    let c = master.config();
    let slaves: Vec<Value> = st.agents.values().map(|a| agent_json(a, &st)).collect();
    let frameworks: Vec<Value> = st
        .frameworks
        .values()
        .map(|f| framework_json(f, &st, master))
        .collect();
    let completed: Vec<Value> = st
        .completed_frameworks
        .iter()
        .map(|f| completed_framework_json(f, &st, master))
        .collect();
    let orphans: Vec<Value> = st
        .tasks
        .values()
        .filter(|t| !st.frameworks.contains_key(&t.framework_id))
        .map(task_json)
        .collect();
    let count = |m: AgentMode| st.agents.values().filter(|a| a.mode == m).count();
    let unreachable = st
        .agents
        .values()
        .filter(|a| matches!(a.mode, AgentMode::Unreachable { .. }))
        .count();
    let pid = format!("master@{}:{}", c.hostname, c.port);
    json!({
        "version": VERSION,
        "build_date": "",
        "build_time": 0,
        "build_user": "",
        "start_time": master.start_time(),
        "elected_time": master.start_time(),
        "id": master.id(),
        "pid": pid,
        "hostname": c.hostname,
        "cluster": c.cluster_name,
        "leader": pid,
        "leader_info": leader_info(master),
        "activated_slaves": count(AgentMode::Active),
        "deactivated_slaves": count(AgentMode::Recovered),
        "unreachable_slaves": unreachable,
        "flags": {
            "cluster": c.cluster_name,
            "hostname": c.hostname,
            "port": c.port.to_string(),
            "allocation_interval": format!("{}ms", c.allocation_interval.as_millis()),
        },
        "slaves": slaves,
        "recovered_slaves": [],
        "frameworks": frameworks,
        "completed_frameworks": completed,
        "orphan_tasks": orphans,
        "unregistered_frameworks": [],
    })
}

fn task_counts(tasks: impl Iterator<Item = TaskState>) -> Map<String, Value> {
    let names = [
        TaskState::Staging,
        TaskState::Starting,
        TaskState::Running,
        TaskState::Killing,
        TaskState::Finished,
        TaskState::Killed,
        TaskState::Failed,
        TaskState::Lost,
        TaskState::Error,
        TaskState::Unreachable,
    ];
    let mut counts: BTreeMap<&'static str, u64> = names.iter().map(|s| (s.as_str(), 0)).collect();
    for s in tasks {
        *counts.entry(s.as_str()).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect()
}

/// `/master/state-summary`.
pub fn state_summary(master: &Master) -> Value {
    let st = master.lock();
    let c = master.config();
    let slaves: Vec<Value> = st
        .agents
        .values()
        .map(|a| {
            let mut v = agent_json(a, &st);
            let counts = task_counts(
                a.tasks
                    .iter()
                    .filter_map(|t| st.tasks.get(t))
                    .map(|t| t.state)
                    .chain(
                        st.completed_tasks
                            .iter()
                            .filter(|t| t.info.agent_id == a.info.id)
                            .map(|t| t.state),
                    ),
            );
            if let Value::Object(m) = &mut v {
                m.extend(counts);
            }
            v
        })
        .collect();
    let frameworks: Vec<Value> = st
        .frameworks
        .values()
        .map(|f| {
            let mut used = Resources::default();
            let mut slave_ids = std::collections::BTreeSet::new();
            for t in f.tasks.iter().filter_map(|t| st.tasks.get(t)) {
                used = used.plus(&t.info.resources);
                slave_ids.insert(t.info.agent_id.as_str().to_string());
            }
            let mut offered = Resources::default();
            for o in f.offers.iter().filter_map(|o| st.offers.get(o)) {
                offered = offered.plus(&o.offer.total());
            }
            let mut v = json!({
                "id": f.id.as_str(),
                "name": f.info.name,
                "pid": format!("scheduler-{}@{}:{}", f.id, c.hostname, c.port),
                "hostname": f.info.hostname.clone().unwrap_or_else(|| c.hostname.clone()),
                "webui_url": f.info.webui_url.clone().unwrap_or_default(),
                "active": f.active(),
                "connected": f.active(),
                "recovered": false,
                "role": f.info.roles.first().cloned().unwrap_or_else(|| "*".into()),
                "capabilities": ["PARTITION_AWARE", "TASK_KILLING_STATE", "MULTI_ROLE"],
                "used_resources": resources_json(&used),
                "offered_resources": resources_json(&offered),
                "slave_ids": slave_ids.into_iter().collect::<Vec<_>>(),
            });
            let counts = task_counts(
                f.tasks
                    .iter()
                    .filter_map(|t| st.tasks.get(t))
                    .map(|t| t.state)
                    .chain(
                        st.completed_tasks
                            .iter()
                            .filter(|t| t.framework_id == f.id)
                            .map(|t| t.state),
                    ),
            );
            if let Value::Object(m) = &mut v {
                m.extend(counts);
            }
            v
        })
        .collect();
    json!({
        "hostname": c.hostname,
        "cluster": c.cluster_name,
        "slaves": slaves,
        "frameworks": frameworks,
    })
}

/// `/master/frameworks`.
pub fn frameworks(master: &Master) -> Value {
    let mut s = state(master);
    json!({
        "frameworks": s["frameworks"].take(),
        "completed_frameworks": s["completed_frameworks"].take(),
        "unregistered_frameworks": [],
    })
}

/// `/master/slaves`.
pub fn slaves(master: &Master) -> Value {
    let st = master.lock();
    let slaves: Vec<Value> = st.agents.values().map(|a| agent_json(a, &st)).collect();
    json!({ "slaves": slaves, "recovered_slaves": [] })
}

/// `/master/tasks?limit=&offset=&order=asc|desc`.
pub fn tasks(master: &Master, limit: usize, offset: usize, desc: bool) -> Value {
    let st = master.lock();
    let mut all: Vec<&TaskEntry> = st.tasks.values().chain(st.completed_tasks.iter()).collect();
    all.sort_by(|a, b| {
        let ta = a.statuses.first().map(|s| s.timestamp).unwrap_or(0.0);
        let tb = b.statuses.first().map(|s| s.timestamp).unwrap_or(0.0);
        ta.total_cmp(&tb)
            .then_with(|| a.info.task_id.cmp(&b.info.task_id))
    });
    if desc {
        all.reverse();
    }
    let tasks: Vec<Value> = all
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(task_json)
        .collect();
    json!({ "tasks": tasks })
}
