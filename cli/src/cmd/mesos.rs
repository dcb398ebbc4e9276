//! `dcos node`, `dcos task`, `dcos service` (Mesos master state through `/mesos/`, agent
//! sandboxes through `/agent/<id>/`).

use std::io::Write;
use std::time::Duration;

use serde_json::{json, Value};

use super::Ctx;
use crate::client::{query_value, Api};
use crate::error::{CliError, Result};
use crate::output::{cell, print_json, print_table};

fn arr<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    v.get(key).and_then(Value::as_array).into_iter().flatten()
}

/// `IP` from a libprocess pid such as `slave(1)@10.0.0.5:5051`.
pub fn pid_ip(pid: &str) -> Option<String> {
    let after = pid.split_once('@')?.1;
    Some(
        after
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(after)
            .to_string(),
    )
}

fn fault_domain(v: &Value, which: &str) -> String {
    v.pointer(&format!("/domain/fault_domain/{which}/name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// Rows of `dcos node list` from `/mesos/master/state` and `/mesos/master/state-summary`.
pub fn node_rows(state: &Value, summary: &Value) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let master_ip = state
        .get("pid")
        .and_then(Value::as_str)
        .and_then(pid_ip)
        .unwrap_or_default();
    rows.push(vec![
        cell(state.get("hostname")),
        master_ip,
        cell(state.get("id")),
        "master (leader)".into(),
        "active".into(),
        fault_domain(state, "region"),
        fault_domain(state, "zone"),
    ]);
    let slaves = if summary.get("slaves").is_some() {
        summary
    } else {
        state
    };
    for s in arr(slaves, "slaves") {
        let ip = s
            .get("ip")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| s.get("pid").and_then(Value::as_str).and_then(pid_ip))
            .unwrap_or_default();
        let public = s
            .pointer("/attributes/public_ip")
            .is_some_and(|v| v == "true" || v == true);
        rows.push(vec![
            cell(s.get("hostname")),
            ip,
            cell(s.get("id")),
            if public {
                "agent (public)".into()
            } else {
                "agent".into()
            },
            // The master marks an agent that stopped heartbeating inactive (unreachable).
            match s.get("active").and_then(Value::as_bool) {
                Some(false) => "unreachable".into(),
                _ => "active".into(),
            },
            fault_domain(s, "region"),
            fault_domain(s, "zone"),
        ]);
    }
    rows
}

pub fn node_list(ctx: &Ctx, json_out: bool) -> Result<()> {
    let api = &ctx.api;
    let state = api.get_json("/mesos/master/state")?;
    let summary = api
        .get_json("/mesos/master/state-summary")
        .unwrap_or(json!({}));
    if json_out {
        let slaves = summary
            .get("slaves")
            .or_else(|| state.get("slaves"))
            .cloned()
            .unwrap_or(json!([]));
        print_json(&slaves);
        return Ok(());
    }
    print_table(
        &["HOSTNAME", "IP", "ID", "TYPE", "STATUS", "REGION", "ZONE"],
        &node_rows(&state, &summary),
    );
    Ok(())
}

/// Every task in a master state, with its framework (active first, then completed).
fn all_tasks(state: &Value, completed: bool) -> Vec<(Value, Value)> {
    let mut out = Vec::new();
    let mut fws: Vec<&Value> = arr(state, "frameworks").collect();
    if completed {
        fws.extend(arr(state, "completed_frameworks"));
    }
    for fw in fws {
        for t in arr(fw, "tasks") {
            out.push((t.clone(), fw.clone()));
        }
        if completed {
            for t in arr(fw, "completed_tasks") {
                out.push((t.clone(), fw.clone()));
            }
        }
    }
    out
}

fn agent_hosts(state: &Value) -> std::collections::HashMap<String, String> {
    arr(state, "slaves")
        .filter_map(|s| {
            Some((
                s.get("id")?.as_str()?.to_string(),
                s.get("hostname")?.as_str()?.to_string(),
            ))
        })
        .collect()
}

/// Rows of `dcos task list`.
pub fn task_rows(state: &Value, filter: Option<&str>, completed: bool) -> Vec<Vec<String>> {
    let hosts = agent_hosts(state);
    all_tasks(state, completed)
        .into_iter()
        .filter(|(t, _)| matches_filter(t, filter))
        .map(|(t, fw)| {
            let agent = t.get("slave_id").and_then(Value::as_str).unwrap_or("");
            vec![
                cell(t.get("name")),
                hosts.get(agent).cloned().unwrap_or_else(|| "N/A".into()),
                cell(fw.get("user")),
                cell(t.get("state")),
                cell(t.get("id")),
                agent.to_string(),
            ]
        })
        .collect()
}

fn matches_filter(t: &Value, filter: Option<&str>) -> bool {
    match filter {
        None => true,
        Some(f) => {
            t.get("id")
                .and_then(Value::as_str)
                .is_some_and(|i| i.contains(f))
                || t.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.contains(f))
        }
    }
}

pub fn task_list(ctx: &Ctx, filter: Option<&str>, completed: bool, json_out: bool) -> Result<()> {
    let state = ctx.api.get_json("/mesos/master/state")?;
    if json_out {
        let tasks: Vec<Value> = all_tasks(&state, completed)
            .into_iter()
            .filter(|(t, _)| matches_filter(t, filter))
            .map(|(t, fw)| with_discovery(t, &fw))
            .collect();
        print_json(&Value::Array(tasks));
        return Ok(());
    }
    let rows = task_rows(&state, filter, completed);
    if rows.is_empty() {
        eprintln!(
            "There are no tasks{}.",
            if completed {
                ""
            } else {
                " running (add --completed for finished ones)"
            }
        );
        return Ok(());
    }
    print_table(&["NAME", "HOST", "USER", "STATE", "ID", "AGENT ID"], &rows);
    Ok(())
}

/// A task of the master's state plus what discovery makes of it (added fields only):
/// `dns_name` (Mesos-DNS `<task>.<framework>.mesos`, null when the name sanitises to nothing)
/// and, when its DiscoveryInfo ports carry `VIP_n` labels, `vips` (`name…l4lb…:port` / `ip:port`).
pub fn with_discovery(mut t: Value, fw: &Value) -> Value {
    let name = t
        .pointer("/discovery/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .or_else(|| t.get("name").and_then(Value::as_str))
        .unwrap_or("");
    let framework = fw.get("name").and_then(Value::as_str).unwrap_or("");
    let dns = super::endpoints::task_dns_name(name, framework);
    let vips: Vec<Value> = t
        .pointer("/discovery/ports/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|p| {
            p.pointer("/labels/labels")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter(|l| {
            l.get("key")
                .and_then(Value::as_str)
                .is_some_and(dcos_dns::vip::is_vip_key)
        })
        .filter_map(|l| dcos_dns::vip::parse_vip(l.get("value")?.as_str()?).ok())
        .map(|v| json!(v.endpoint(framework)))
        .collect();
    if let Some(o) = t.as_object_mut() {
        o.entry("dns_name").or_insert(json!(dns));
        if !vips.is_empty() {
            o.entry("vips").or_insert(json!(vips));
        }
    }
    t
}

/// Finds exactly one task matching `query` (an exact id wins over substrings).
fn find_task(state: &Value, query: &str, completed: bool) -> Result<(Value, Value)> {
    let tasks = all_tasks(state, completed);
    if let Some(t) = tasks
        .iter()
        .find(|(t, _)| t.get("id").and_then(Value::as_str) == Some(query))
    {
        return Ok(t.clone());
    }
    let matching: Vec<_> = tasks
        .into_iter()
        .filter(|(t, _)| matches_filter(t, Some(query)))
        .collect();
    match matching.len() {
        1 => Ok(matching.into_iter().next().unwrap_or_default()),
        0 => Err(CliError::failed_hint(
            format!("no task matches '{query}'"),
            if completed {
                "list tasks with `dcos task list --completed`".to_string()
            } else {
                "list tasks with `dcos task list`; add --completed for finished tasks".to_string()
            },
        )),
        n => Err(CliError::failed_hint(
            format!("{n} tasks match '{query}'"),
            "give more of the task id (see `dcos task list`)",
        )),
    }
}

/// The sandbox directory of a task from the agent's `/state`.
pub fn sandbox_dir(
    agent_state: &Value,
    framework_id: &str,
    executor_id: &str,
    task_id: &str,
) -> Option<String> {
    let fws = arr(agent_state, "frameworks").chain(arr(agent_state, "completed_frameworks"));
    for fw in fws {
        if fw.get("id").and_then(Value::as_str) != Some(framework_id) {
            continue;
        }
        for ex in arr(fw, "executors").chain(arr(fw, "completed_executors")) {
            let id_match = !executor_id.is_empty()
                && ex.get("id").and_then(Value::as_str) == Some(executor_id);
            let has_task = ["tasks", "completed_tasks", "queued_tasks"]
                .iter()
                .any(|k| arr(ex, k).any(|t| t.get("id").and_then(Value::as_str) == Some(task_id)));
            let exec_is_task = ex.get("id").and_then(Value::as_str) == Some(task_id);
            if id_match || has_task || exec_is_task {
                if let Some(d) = ex.get("directory").and_then(Value::as_str) {
                    return Some(d.to_string());
                }
            }
        }
    }
    None
}

fn read_file(
    api: &Api,
    agent: &str,
    path: &str,
    offset: i64,
    length: Option<u64>,
) -> Result<(String, u64)> {
    let mut url = format!(
        "/agent/{}/files/read?path={}&offset={offset}",
        query_value(agent),
        query_value(path)
    );
    if let Some(l) = length {
        url.push_str(&format!("&length={l}"));
    }
    let resp = api.send(api.streaming(reqwest::Method::GET, &url))?;
    if resp.status().as_u16() == 404 {
        return Err(CliError::failed_hint(
            format!("{path} does not exist in the task's sandbox"),
            "the task may not have written it yet; stdout and stderr are the usual files",
        ));
    }
    if !resp.status().is_success() {
        return Err(api.error_from(resp));
    }
    let v: Value = resp
        .json()
        .map_err(|e| CliError::failed(format!("the agent's files/read answer is not JSON: {e}")))?;
    let data = v
        .get("data")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let off = v.get("offset").and_then(Value::as_u64).unwrap_or(0);
    Ok((data, off))
}

/// The last `n` lines of `text`.
pub fn last_lines(text: &str, n: usize) -> &str {
    if n == 0 {
        return "";
    }
    let trimmed = text.strip_suffix('\n').unwrap_or(text);
    let mut count = 0;
    for (i, b) in trimmed.bytes().enumerate().rev() {
        if b == b'\n' {
            count += 1;
            if count == n {
                return &text[i + 1..];
            }
        }
    }
    text
}

pub fn task_log(
    ctx: &Ctx,
    query: &str,
    file: &str,
    follow: bool,
    lines: usize,
    completed: bool,
) -> Result<()> {
    let api = &ctx.api;
    let state = api.get_json("/mesos/master/state")?;
    let (task, fw) = match find_task(&state, query, false) {
        Ok(t) => t,
        Err(_) if completed => find_task(&state, query, true)?,
        Err(e) => return Err(e),
    };
    let task_id = task
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let agent = task
        .get("slave_id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            CliError::failed(format!(
                "task {task_id} has no agent (it was never launched)"
            ))
        })?
        .to_string();
    let framework_id = task
        .get("framework_id")
        .and_then(Value::as_str)
        .or_else(|| fw.get("id").and_then(Value::as_str))
        .unwrap_or("")
        .to_string();
    let executor_id = task
        .get("executor_id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let agent_state = api.get_json(&format!("/agent/{}/state", query_value(&agent)))?;
    let dir =
        sandbox_dir(&agent_state, &framework_id, &executor_id, &task_id).ok_or_else(|| {
            CliError::failed_hint(
                format!("the sandbox of task {task_id} was not found on agent {agent}"),
                "the sandbox may have been garbage-collected",
            )
        })?;
    let path = format!(
        "{}/{}",
        dir.trim_end_matches('/'),
        file.trim_start_matches('/')
    );
    // Size first, then the tail.
    let (_, size) = read_file(api, &agent, &path, -1, None)?;
    const TAIL: u64 = 64 * 1024;
    let start = size.saturating_sub(TAIL);
    let (data, _) = read_file(api, &agent, &path, start as i64, Some(size - start))?;
    let mut out = std::io::stdout();
    let _ = out.write_all(last_lines(&data, lines).as_bytes());
    let _ = out.flush();
    if !follow {
        return Ok(());
    }
    let mut offset = size;
    loop {
        let (data, _) = read_file(api, &agent, &path, offset as i64, Some(TAIL))?;
        if data.is_empty() {
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        offset += data.len() as u64;
        if out.write_all(data.as_bytes()).is_err() || out.flush().is_err() {
            return Ok(()); // stdout closed (e.g. `| head`)
        }
    }
}

/// Rows of `dcos service`.
pub fn service_rows(state: &Value, inactive: bool, completed: bool) -> Vec<Vec<String>> {
    let mut fws: Vec<&Value> = arr(state, "frameworks")
        .filter(|f| inactive || f.get("active") != Some(&json!(false)))
        .collect();
    if completed {
        fws.extend(arr(state, "completed_frameworks"));
    }
    fws.iter()
        .map(|f| {
            let res = f.get("used_resources").or_else(|| f.get("resources"));
            vec![
                cell(f.get("name")),
                cell(f.get("hostname")),
                cell(f.get("active")),
                arr(f, "tasks").count().to_string(),
                cell(res.and_then(|r| r.get("cpus"))),
                cell(res.and_then(|r| r.get("mem"))),
                cell(res.and_then(|r| r.get("disk"))),
                cell(f.get("id")),
            ]
        })
        .collect()
}

pub fn service_list(ctx: &Ctx, inactive: bool, completed: bool, json_out: bool) -> Result<()> {
    let state = ctx.api.get_json("/mesos/master/state")?;
    if json_out {
        let mut fws: Vec<Value> = arr(&state, "frameworks")
            .filter(|f| inactive || f.get("active") != Some(&json!(false)))
            .cloned()
            .collect();
        if completed {
            fws.extend(arr(&state, "completed_frameworks").cloned());
        }
        print_json(&Value::Array(fws));
        return Ok(());
    }
    print_table(
        &[
            "NAME", "HOST", "ACTIVE", "TASKS", "CPU", "MEM", "DISK", "ID",
        ],
        &service_rows(&state, inactive, completed),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_json_gets_dns_name_and_vips() {
        let fw = json!({"name": "marathon"});
        let t = with_discovery(json!({"id": "x", "name": "web.group"}), &fw);
        assert_eq!(t["dns_name"], "web-group.marathon.mesos");
        assert!(t.get("vips").is_none());
        let t = with_discovery(
            json!({"id": "x", "name": "n", "discovery": {"name": "api", "ports": {"ports": [
                {"number": 1, "labels": {"labels": [{"key": "VIP_0", "value": "/api:80"}, {"key": "VIP_1", "value": "bad"}]}}]}}}),
            &fw,
        );
        assert_eq!(t["dns_name"], "api.marathon.mesos");
        assert_eq!(
            t["vips"],
            json!(["api.marathon.l4lb.thisdcos.directory:80"])
        );
        assert_eq!(
            with_discovery(json!({"name": "!!"}), &fw)["dns_name"],
            Value::Null
        );
    }

    #[test]
    fn pid_ips() {
        assert_eq!(
            pid_ip("slave(1)@10.0.0.5:5051").as_deref(),
            Some("10.0.0.5")
        );
        assert_eq!(
            pid_ip("master@127.0.0.1:5050").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(pid_ip("nopid"), None);
    }

    #[test]
    fn tails() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(last_lines("a\nb\nc", 2), "b\nc");
        assert_eq!(last_lines("a\nb\n", 5), "a\nb\n");
        assert_eq!(last_lines("a\n", 0), "");
    }

    #[test]
    fn sandbox_lookup() {
        let st = json!({"frameworks": [{"id": "fw1", "executors": [
            {"id": "e1", "directory": "/var/sb/1", "tasks": [{"id": "t1"}]},
            {"id": "t2", "directory": "/var/sb/2", "tasks": []}]}],
            "completed_frameworks": [{"id": "fw0", "completed_executors": [{"id": "e0", "directory": "/var/sb/0", "completed_tasks": [{"id": "t0"}]}]}]});
        assert_eq!(
            sandbox_dir(&st, "fw1", "", "t1").as_deref(),
            Some("/var/sb/1")
        );
        assert_eq!(
            sandbox_dir(&st, "fw1", "", "t2").as_deref(),
            Some("/var/sb/2")
        );
        assert_eq!(
            sandbox_dir(&st, "fw0", "", "t0").as_deref(),
            Some("/var/sb/0")
        );
        assert_eq!(sandbox_dir(&st, "fw1", "", "zz"), None);
    }
}

#[cfg(test)]
mod node_status_tests {
    use super::*;

    #[test]
    fn an_agent_the_master_marks_inactive_shows_unreachable() {
        let state = json!({"hostname": "m", "id": "mid", "pid": "master@10.0.0.1:5050"});
        let summary = json!({"slaves": [
            {"id": "a1", "hostname": "h1", "pid": "slave(1)@10.0.0.5:5051", "active": true},
            {"id": "a2", "hostname": "h2", "pid": "slave(1)@10.0.0.6:5051", "active": false}
        ]});
        let rows = node_rows(&state, &summary);
        let status: Vec<&str> = rows.iter().map(|r| r[4].as_str()).collect();
        assert_eq!(status, ["active", "active", "unreachable"]);
        assert_eq!(rows[2][1], "10.0.0.6");
    }
}
