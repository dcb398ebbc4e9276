//! A whole node: master + agent + public agent in one process, and the binary itself.

use std::time::Duration;

use dcosd::{NodeConfig, Role};

async fn get_json(url: &str) -> serde_json::Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn all_roles_in_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::local(&[Role::Master, Role::Agent, Role::AgentPublic], dir.path());
    config.isolation = dcos_agent::Isolation::None;
    config.resources =
        Some(dcos_types::Resources::parse("cpus:2;mem:2048;ports:[31000-31099]").unwrap());
    let node = dcosd::start(config).await.unwrap();
    let master_url = node.master.as_ref().unwrap().url.clone();
    let mut state = serde_json::Value::Null;
    for _ in 0..100 {
        state = get_json(&format!("{master_url}/master/state")).await;
        if state["slaves"].as_array().map(|s| s.len()) == Some(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let slaves = state["slaves"].as_array().unwrap();
    assert_eq!(slaves.len(), 2, "{state}");
    let public = slaves
        .iter()
        .find(|s| s["reserved_resources"]["slave_public"].is_object())
        .expect("the public agent reserves its resources for slave_public");
    assert_eq!(public["attributes"]["public_ip"], "true");
    let summary = get_json(&format!("{master_url}/master/state-summary")).await;
    assert_eq!(summary["slaves"].as_array().unwrap().len(), 2);
    let agent_id = slaves[0]["id"].as_str().unwrap();
    let base = node
        .master
        .as_ref()
        .unwrap()
        .master
        .agent_base_url(agent_id)
        .unwrap();
    let agent_state = get_json(&format!("{base}/state")).await;
    assert_eq!(agent_state["id"], agent_id);
    node.stop().await;
}

/// The binary with the master role also starts Marathon and Cosmos on their fixed loopback
/// ports (8080, 7070): run one binary at a time.
static BINARY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn the_binary_serves_and_stops_on_sigterm() {
    let _one = BINARY.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (mp, ap) = (free_port(), free_port());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dcosd"))
        .args([
            "--roles",
            "master,agent",
            "--work-dir",
            dir.path().to_str().unwrap(),
            "--listen-master",
            &format!("127.0.0.1:{mp}"),
            "--listen-agent",
            &format!("127.0.0.1:{ap}"),
            "--resources",
            "cpus:1;mem:512;ports:[31000-31009]",
            "--isolation",
            "none",
            "--listen-marathon",
            "127.0.0.1:0",
            "--listen-cosmos",
            "127.0.0.1:0",
            "--listen-metronome",
            "127.0.0.1:0",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{mp}/master/state.json");
    let mut registered = false;
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(&url).await {
            if let Ok(v) = r.json::<serde_json::Value>().await {
                if v["slaves"].as_array().is_some_and(|s| s.len() == 1) {
                    assert_eq!(v["slaves"][0]["resources"]["cpus"], 1.0);
                    registered = true;
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(registered, "the agent registered with the master");
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    // Bad flags: a clear error, non-zero exit.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dcosd"))
        .args(["--roles", "master", "--resources", "cpus:lots"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resources"));
}

fn spawn_node(dir: &std::path::Path, mp: u16, ap: u16) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_dcosd"))
        .args([
            "--roles",
            "master,agent",
            "--work-dir",
            dir.to_str().unwrap(),
            "--listen-master",
            &format!("127.0.0.1:{mp}"),
            "--listen-agent",
            &format!("127.0.0.1:{ap}"),
            "--resources",
            "cpus:1;mem:512;ports:[31000-31009]",
            "--isolation",
            "none",
            "--listen-marathon",
            "127.0.0.1:0",
            "--listen-cosmos",
            "127.0.0.1:0",
            "--listen-metronome",
            "127.0.0.1:0",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_json(url: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(url).await {
            if let Ok(v) = r.json::<serde_json::Value>().await {
                if pred(&v) {
                    return v;
                }
                last = v;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never matched; last: {last}");
}

/// kill -9 of the whole node (master and agent): the task keeps running, and after a restart
/// the agent re-attaches to it and the master knows it again.
#[tokio::test]
async fn tasks_survive_kill_9_of_the_node() {
    let _one = BINARY.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let (mp, ap) = (free_port(), free_port());
    let mut node = spawn_node(dir.path(), mp, ap);
    let state_url = format!("http://127.0.0.1:{mp}/master/state");
    let state = wait_json(&state_url, |v| {
        v["slaves"].as_array().is_some_and(|s| s.len() == 1)
    })
    .await;
    let agent_id = state["slaves"][0]["id"].as_str().unwrap().to_string();
    // Launch a task straight through the agent protocol (no framework needed).
    let launch = serde_json::json!({
        "framework_id": "fw-test",
        "framework_name": "test",
        "tasks": [{
            "task_id": "survivor",
            "name": "survivor",
            "agent_id": agent_id,
            "resources": {"cpus": 0.1, "mem": 32},
            "command": {"value": "sleep 120"},
        }]
    });
    let resp = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{ap}/api/master/v1/launch"))
        .json(&launch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let agent_state_url = format!("http://127.0.0.1:{ap}/state");
    let running = |v: &serde_json::Value| {
        v["frameworks"][0]["executors"][0]["tasks"][0]["state"] == "TASK_RUNNING"
    };
    wait_json(&agent_state_url, running).await;
    // kill -9 the node.
    node.kill().unwrap();
    let _ = node.wait();
    let pids = std::process::Command::new("pgrep")
        .args(["-f", "^sleep 120$"])
        .output()
        .unwrap();
    assert!(!pids.stdout.is_empty(), "the task survived the node");
    // Restart: the agent re-attaches and re-registers; the master knows the task again.
    let mut node = spawn_node(dir.path(), mp, ap);
    wait_json(&agent_state_url, running).await;
    let state = wait_json(&state_url, |v| {
        v["orphan_tasks"].as_array().is_some_and(|t| {
            t.iter()
                .any(|t| t["id"] == "survivor" && t["state"] == "TASK_RUNNING")
        })
    })
    .await;
    assert_eq!(state["slaves"][0]["id"], agent_id.as_str());
    // Clean up: kill the task through the agent, then stop the node.
    let _ = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{ap}/api/master/v1/kill"))
        .json(&serde_json::json!({"task_id": "survivor", "grace_period_seconds": 0.5}))
        .send()
        .await;
    wait_json(&agent_state_url, |v| {
        v["frameworks"][0]["executors"]
            .as_array()
            .is_some_and(|e| e.is_empty())
            || v["frameworks"][0]["executors"][0]["tasks"][0]["state"] == "TASK_KILLED"
            || v["frameworks"][0]["completed_executors"]
                .as_array()
                .is_some_and(|e| !e.is_empty())
    })
    .await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status();
    let _ = node.wait();
}
