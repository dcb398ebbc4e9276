//! The agent with real processes, a real master and HTTP between them.

mod common;

use std::io::Write;
use std::time::Duration;

use axum::routing::get;
use common::*;
use dcos_agent::Isolation;
use dcos_types::{
    ContainerInfo, DockerInfo, HealthCheck, HealthCheckKind, Resources, TaskState, UriInfo,
};
use sha2::Digest;

async fn get_json(url: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::get(url).await.unwrap();
    let status = resp.status().as_u16();
    let v = resp.json().await.unwrap_or(serde_json::Value::Null);
    (status, v)
}

/// The sandbox directory of a task as the DC/OS CLI finds it (agent `/state`).
async fn sandbox_of(agent_url: &str, task: &str) -> String {
    let (_, state) = get_json(&format!("{agent_url}/state")).await;
    for fw in state["frameworks"].as_array().unwrap() {
        for key in ["executors", "completed_executors"] {
            for ex in fw[key].as_array().unwrap() {
                if ex["id"] == task {
                    return ex["directory"].as_str().unwrap().to_string();
                }
            }
        }
    }
    panic!("task {task} not in the agent state: {state}");
}

async fn read_file(agent_url: &str, path: &str) -> String {
    let (code, v) = get_json(&format!(
        "{agent_url}/files/read?path={}&offset=0",
        urlencode(path)
    ))
    .await;
    assert_eq!(code, 200, "read {path}: {v}");
    v["data"].as_str().unwrap().to_string()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_./".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn sandbox_env_stdout_and_files_api() {
    let c = start_master().await;
    let dir = tempfile::tempdir().unwrap();
    let (agent, url) = start_agent(&c.master_url, dir.path(), Isolation::Auto, 4.0).await;
    let mut fw = Framework::new(&c.master);
    let mut t = shell_task(
        "env-task",
        "echo hello; echo oops >&2; echo \"$MESOS_TASK_ID $PORT0 $PORTS $MARATHON_APP_ID $HOST\" > env.txt; \
         echo \"$MESOS_SANDBOX\" > sandbox.txt; cat /proc/self/cgroup > cgroup.txt",
    );
    t.resources = Resources::new(0.5, 64.0, 0.0).with_ports([(41005, 41006)]);
    t.command
        .environment
        .insert("MARATHON_APP_ID".into(), "/web".into());
    fw.launch(vec![t]).await;
    let done = fw.wait_state("env-task", TaskState::Finished).await;
    assert_eq!(done.agent_id, *agent.id());
    let sandbox = sandbox_of(&url, "env-task").await;
    assert!(sandbox.starts_with(dir.path().to_str().unwrap()));
    assert_eq!(
        read_file(&url, &format!("{sandbox}/stdout")).await,
        "hello\n"
    );
    assert_eq!(
        read_file(&url, &format!("{sandbox}/stderr")).await,
        "oops\n"
    );
    let env = read_file(&url, &format!("{sandbox}/env.txt")).await;
    assert_eq!(env.trim(), "env-task 41005 41005,41006 /web 127.0.0.1");
    assert_eq!(
        read_file(&url, &format!("{sandbox}/sandbox.txt"))
            .await
            .trim(),
        sandbox
    );
    if dcos_agent::cgroups::Cgroups::detect().is_ok() {
        let cg = read_file(&url, &format!("{sandbox}/cgroup.txt")).await;
        assert!(cg.contains("/dcos/"), "task runs in its cgroup: {cg}");
    }
    // offset=-1 gives the size, as `dcos task log` asks first.
    let (_, v) = get_json(&format!(
        "{url}/files/read?path={}&offset=-1",
        urlencode(&format!("{sandbox}/stdout"))
    ))
    .await;
    assert_eq!(v["offset"], 6);
    let (_, v) = get_json(&format!(
        "{url}/files/read?path={}&offset=2&length=2",
        urlencode(&format!("{sandbox}/stdout"))
    ))
    .await;
    assert_eq!(v["data"], "ll");
    let (code, v) = get_json(&format!("{url}/files/browse?path={}", urlencode(&sandbox))).await;
    assert_eq!(code, 200);
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["path"].as_str().unwrap().ends_with("/stdout")));
    // Outside the work dir, bad offsets: errors, not files.
    let (code, _) = get_json(&format!("{url}/files/read?path=/etc/passwd")).await;
    assert_eq!(code, 404);
    let (code, _) = get_json(&format!(
        "{url}/files/read?path={}&offset=abc",
        urlencode(&format!("{sandbox}/stdout"))
    ))
    .await;
    assert_eq!(code, 400);
    let (code, _) = get_json(&format!("{url}/files/read")).await;
    assert_eq!(code, 400);
    let resp = reqwest::get(format!(
        "{url}/files/download?path={}",
        urlencode(&format!("{sandbox}/stdout"))
    ))
    .await
    .unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello\n");

    // dcos-log v2 (`dcos task log`), through the master (which proxies to the agent).
    let log =
        |base: &str, rest: &str| format!("{base}/system/v1/logs/v2/task/env-task/file/{rest}");
    let text = reqwest::get(log(&c.master_url, "stdout?cursor=END&skip=-10"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "hello\n");
    let text = reqwest::get(log(&url, "stderr"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "oops\n");
    let mut sse = reqwest::Client::new()
        .get(log(&c.master_url, "stdout"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let first = sse.chunk().await.unwrap().unwrap();
    assert_eq!(&first[..], b"data: hello\n\n");
    drop(sse);
    assert_eq!(
        reqwest::get(log(&url, "nope"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        reqwest::get(log(&url, "..%2F..%2Fmeta%2Fagent_id"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        400
    );
    let unknown = format!("{}/system/v1/logs/v2/task/ghost/file/stdout", c.master_url);
    assert_eq!(reqwest::get(unknown).await.unwrap().status().as_u16(), 404);
    agent.shutdown();
}

#[tokio::test]
async fn missing_binary_and_failing_command_fail_with_reasons() {
    let c = start_master().await;
    let dir = tempfile::tempdir().unwrap();
    let (agent, _) = start_agent(&c.master_url, dir.path(), Isolation::None, 4.0).await;
    let mut fw = Framework::new(&c.master);
    let mut direct = shell_task("no-binary", "/definitely/not/here");
    direct.command.shell = false;
    let shell = shell_task("no-command", "definitely-not-a-command-xyz");
    let exit3 = shell_task("exit-3", "exit 3");
    fw.launch(vec![direct, shell, exit3]).await;
    let s = fw.wait_state("no-binary", TaskState::Failed).await;
    assert!(s.message.unwrap().contains("not found"));
    let s = fw.wait_state("no-command", TaskState::Failed).await;
    let m = s.message.unwrap();
    assert!(m.contains("127") && m.contains("not found"), "{m}");
    let s = fw.wait_state("exit-3", TaskState::Failed).await;
    assert!(s.message.unwrap().contains("status 3"));
    agent.shutdown();
}

#[tokio::test]
async fn kill_uses_sigterm_then_sigkill_after_the_grace_period() {
    let c = start_master().await;
    let dir = tempfile::tempdir().unwrap();
    let (agent, _) = start_agent(&c.master_url, dir.path(), Isolation::None, 4.0).await;
    let mut fw = Framework::new(&c.master);
    let polite = shell_task(
        "polite",
        "trap 'echo got-term; exit 0' TERM; while true; do sleep 0.1; done",
    );
    let mut stubborn = shell_task("stubborn", "trap '' TERM; while true; do sleep 0.1; done");
    stubborn.kill_grace_period_seconds = 1.0;
    fw.launch(vec![polite, stubborn]).await;
    fw.wait_state("polite", TaskState::Running).await;
    fw.wait_state("stubborn", TaskState::Running).await;
    fw.kill("polite", None);
    fw.kill("stubborn", None);
    let s = fw.wait_state("polite", TaskState::Killed).await;
    assert_eq!(s.reason.as_deref(), Some("REASON_TASK_KILLED"));
    fw.wait_state("stubborn", TaskState::Killed).await;
    agent.shutdown();
}

/// A task is over when its whole process group is: a child the command left behind (which
/// may hold the task's ports) is gone by the time the terminal status is sent, whether the
/// command finished by itself or was killed.
#[tokio::test]
async fn terminal_status_means_no_process_of_the_task_is_left() {
    let c = start_master().await;
    let dir = tempfile::tempdir().unwrap();
    let (agent, _) = start_agent(&c.master_url, dir.path(), Isolation::None, 4.0).await;
    let mut fw = Framework::new(&c.master);
    // Leaves a child behind and exits 0.
    let leaves = shell_task("leaves", "sleep 1000 & echo $! > child.pid; exit 0");
    // Killed: the shell dies on SIGTERM, its child ignores SIGTERM.
    let killed = shell_task(
        "killed",
        "(trap '' TERM; sleep 1000) & echo $! > child.pid; wait",
    );
    fw.launch(vec![leaves, killed]).await;
    fw.wait_state("leaves", TaskState::Finished).await;
    fw.wait_state("killed", TaskState::Running).await;
    let pid_of = |task: &str| -> i32 {
        let base = dir.path().join("slaves");
        let found = walk(&base)
            .into_iter()
            .find(|p| p.ends_with("child.pid") && p.to_string_lossy().contains(task))
            .unwrap_or_else(|| panic!("child.pid of {task} under {}", base.display()));
        std::fs::read_to_string(found)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                !s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(false)
    };
    let left = pid_of("leaves");
    assert!(!alive(left), "the finished task's child {left} still runs");
    // RUNNING comes before the shell has written the file.
    for _ in 0..250 {
        let written = walk(&dir.path().join("slaves")).into_iter().any(|p| {
            p.ends_with("child.pid")
                && p.to_string_lossy().contains("killed")
                && std::fs::metadata(&p).is_ok_and(|m| m.len() > 0)
        });
        if written {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let child = pid_of("killed");
    assert!(alive(child));
    fw.kill("killed", None);
    fw.wait_state("killed", TaskState::Killed).await;
    assert!(!alive(child), "the killed task's child {child} still runs");
    agent.shutdown();
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn tar_gz(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, data, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

fn zip_file(name: &str, data: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file(name, zip::write::SimpleFileOptions::default())
        .unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap().into_inner()
}

#[tokio::test]
async fn fetcher_checksums_archives_and_errors() {
    let script = b"#!/bin/sh\necho fetched-ok\n".to_vec();
    let tgz = tar_gz(&[("bundle/run.sh", b"#!/bin/sh\necho from-tar\n", 0o755)]);
    let zipped = zip_file("inside.txt", b"from-zip\n");
    let sha = hex::encode(sha2::Sha256::digest(&script));
    let (s1, t1, z1) = (script.clone(), tgz.clone(), zipped.clone());
    let files = axum::Router::new()
        .route("/run.sh", get(move || async move { s1.clone() }))
        .route("/bundle.tgz", get(move || async move { t1.clone() }))
        .route("/data.zip", get(move || async move { z1.clone() }));
    let port = serve(files).await;
    let base = format!("http://127.0.0.1:{port}");
    let local = tempfile::tempdir().unwrap();
    let local_file = local.path().join("local.txt");
    std::fs::write(&local_file, "local-content\n").unwrap();

    let c = start_master().await;
    let dir = tempfile::tempdir().unwrap();
    let (agent, url) = start_agent(&c.master_url, dir.path(), Isolation::None, 4.0).await;
    let mut fw = Framework::new(&c.master);
    let uri = |v: String, sha: Option<String>, executable: bool| UriInfo {
        value: v,
        executable,
        extract: true,
        cache: true,
        output_file: None,
        sha256: sha,
    };
    let mut ok = shell_task(
        "fetch-ok",
        "./run.sh && ./bundle/run.sh && cat inside.txt && cat local.txt",
    );
    ok.command.uris = vec![
        uri(format!("{base}/run.sh"), Some(sha.clone()), true),
        uri(format!("{base}/bundle.tgz"), None, false),
        uri(format!("{base}/data.zip"), None, false),
        uri(format!("file://{}", local_file.display()), None, false),
    ];
    let mut bad_sum = shell_task("fetch-bad-sum", "true");
    bad_sum.command.uris = vec![uri(format!("{base}/run.sh"), Some("00".repeat(32)), true)];
    let mut missing = shell_task("fetch-404", "true");
    missing.command.uris = vec![uri(format!("{base}/nope.tgz"), None, false)];
    fw.launch(vec![ok, bad_sum, missing]).await;
    fw.wait_state("fetch-ok", TaskState::Finished).await;
    let sandbox = sandbox_of(&url, "fetch-ok").await;
    assert_eq!(
        read_file(&url, &format!("{sandbox}/stdout")).await,
        "fetched-ok\nfrom-tar\nfrom-zip\nlocal-content\n"
    );
    let s = fw.wait_state("fetch-bad-sum", TaskState::Failed).await;
    assert!(s.message.unwrap().contains("checksum mismatch"));
    let s = fw.wait_state("fetch-404", TaskState::Failed).await;
    let m = s.message.unwrap();
    assert!(m.contains("404") && m.contains("nope.tgz"), "{m}");
    agent.shutdown();
}

#[tokio::test]
async fn restarted_agent_reattaches_to_running_tasks() {
    let c = start_master().await;
    let dir = tempfile::tempdir().unwrap();
    let (agent, _) = start_agent(&c.master_url, dir.path(), Isolation::None, 4.0).await;
    let mut fw = Framework::new(&c.master);
    fw.launch(vec![shell_task("survivor", "sleep 60")]).await;
    fw.wait_state("survivor", TaskState::Running).await;
    let id = agent.id().clone();
    // The agent goes away (its loops stop, its HTTP port too as far as the master cares).
    agent.shutdown();
    drop(agent);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (agent2, url2) = start_agent(&c.master_url, dir.path(), Isolation::None, 4.0).await;
    assert_eq!(agent2.id(), &id, "the agent id is checkpointed");
    let (_, state) = get_json(&format!("{url2}/state")).await;
    let ex = &state["frameworks"][0]["executors"][0];
    assert_eq!(ex["id"], "survivor");
    assert_eq!(ex["tasks"][0]["state"], "TASK_RUNNING");
    // The master learns the new address on re-registration; kill reaches the new agent.
    for _ in 0..100 {
        if c.master.agent_base_url(id.as_str()).as_deref() == Some(url2.as_str()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        c.master.agent_base_url(id.as_str()).as_deref(),
        Some(url2.as_str())
    );
    fw.kill("survivor", Some(1.0));
    fw.wait_state("survivor", TaskState::Killed).await;
    agent2.shutdown();
}

#[tokio::test]
async fn docker_pull_failure_fails_the_task() {
    let c = start_master().await;
    let dir = tempfile::tempdir().unwrap();
    let (agent, _) = start_agent(&c.master_url, dir.path(), Isolation::None, 4.0).await;
    let mut fw = Framework::new(&c.master);
    let mut t = shell_task("docker-task", "echo hi");
    t.container = Some(ContainerInfo {
        kind: "DOCKER".into(),
        docker: Some(DockerInfo {
            image: "registry.invalid/nope/image:1".into(),
            network: "HOST".into(),
            port_mappings: vec![],
            privileged: false,
            force_pull_image: true,
            parameters: vec![],
        }),
        volumes: vec![],
    });
    fw.launch(vec![t]).await;
    let s = fw.wait_state("docker-task", TaskState::Failed).await;
    let m = s.message.unwrap();
    assert!(
        m.starts_with("Failed to pull image 'registry.invalid/nope/image:1'"),
        "{m}"
    );
    agent.shutdown();
}

#[tokio::test]
async fn health_checks_report_and_kill() {
    let c = start_master().await;
    let dir = tempfile::tempdir().unwrap();
    let (agent, _) = start_agent(&c.master_url, dir.path(), Isolation::None, 4.0).await;
    let mut fw = Framework::new(&c.master);
    let check = |cmd: &str| HealthCheck {
        kind: HealthCheckKind::Command { value: cmd.into() },
        grace_period_seconds: 0.0,
        interval_seconds: 0.2,
        timeout_seconds: 2.0,
        max_consecutive_failures: 2,
        delay_seconds: 0.0,
    };
    let mut healthy = shell_task("healthy", "sleep 30");
    healthy.health_check = Some(check("test -d \"$MESOS_SANDBOX\""));
    let mut sick = shell_task("sick", "sleep 30");
    sick.health_check = Some(check("exit 1"));
    sick.kill_grace_period_seconds = 0.5;
    let mut tcp = shell_task("tcp-sick", "sleep 30");
    tcp.health_check = Some(HealthCheck {
        kind: HealthCheckKind::Tcp { port: 1 },
        ..check("")
    });
    fw.launch(vec![healthy, sick, tcp]).await;
    fw.wait_for("healthy", |s| s.healthy == Some(true)).await;
    let s = fw.wait_state("sick", TaskState::Killed).await;
    assert_eq!(s.healthy, Some(false));
    fw.wait_state("tcp-sick", TaskState::Killed).await;
    fw.kill("healthy", Some(0.5));
    fw.wait_state("healthy", TaskState::Killed).await;
    agent.shutdown();
}

#[tokio::test]
async fn malformed_master_messages_are_rejected() {
    let c = start_master().await;
    let dir = tempfile::tempdir().unwrap();
    let (agent, url) = start_agent(&c.master_url, dir.path(), Isolation::None, 1.0).await;
    let client = reqwest::Client::new();
    for (path, body) in [
        ("/api/master/v1/launch", "{"),
        (
            "/api/master/v1/launch",
            r#"{"framework_id":"f","tasks":[{"task_id":1}]}"#,
        ),
        ("/api/master/v1/kill", "null"),
        ("/api/master/v1/ack", "[]"),
        ("/api/master/v1/shutdown_framework", ""),
    ] {
        let resp = client
            .post(format!("{url}{path}"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{path} {body}");
    }
    // Kills and acks for unknown tasks are harmless.
    let resp = client
        .post(format!("{url}/api/master/v1/kill"))
        .body(r#"{"task_id":"ghost"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    agent.shutdown();
}
