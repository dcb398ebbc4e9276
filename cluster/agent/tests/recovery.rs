//! Durability of the agent: checkpoints before acting, a full disk, crashes between a spawn
//! and its checkpoint, and no orphan process surviving an agent restart.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::{get, post};
use common::*;
use dcos_agent::{Agent, Isolation, ENV_RUN_ID, ENV_WORK_DIR};
use dcos_types::{TaskState, UriInfo};

/// Live (not zombie) process.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        })
        .unwrap_or(false)
}

/// Live processes whose working directory is under `dir`, with it.
fn procs_under(dir: &Path) -> Vec<(i32, PathBuf)> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut out = Vec::new();
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in proc_dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd")) {
            if cwd.starts_with(&dir) && alive(pid) {
                out.push((pid, cwd));
            }
        }
    }
    out
}

/// The task of a sandbox path (`…/executors/<task>/runs/<run>`).
fn task_of(sandbox: &Path) -> Option<String> {
    let parts: Vec<String> = sandbox
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let i = parts.iter().position(|p| p == "executors")?;
    parts.get(i + 1).cloned()
}

fn tmp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in [dir.join("meta"), dir.join("meta").join("tasks")] {
        if let Ok(rd) = std::fs::read_dir(sub) {
            out.extend(
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().ends_with(".tmp")),
            );
        }
    }
    out
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..400 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Task states as the master reports them (`/master/state`).
async fn master_tasks(master_url: &str) -> HashMap<String, String> {
    let v: serde_json::Value = reqwest::get(format!("{master_url}/master/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out = HashMap::new();
    for fw in v["frameworks"].as_array().into_iter().flatten() {
        for key in ["tasks", "completed_tasks"] {
            for t in fw[key].as_array().into_iter().flatten() {
                out.insert(
                    t["id"].as_str().unwrap_or_default().to_string(),
                    t["state"].as_str().unwrap_or_default().to_string(),
                );
            }
        }
    }
    out
}

/// Task states as the agent reports them (`/state`).
async fn agent_tasks(agent_url: &str) -> HashMap<String, String> {
    let v: serde_json::Value = reqwest::get(format!("{agent_url}/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out = HashMap::new();
    for fw in v["frameworks"].as_array().into_iter().flatten() {
        for ex in fw["executors"].as_array().into_iter().flatten() {
            for t in ex["tasks"].as_array().into_iter().flatten() {
                out.insert(
                    t["id"].as_str().unwrap_or_default().to_string(),
                    t["state"].as_str().unwrap_or_default().to_string(),
                );
            }
        }
    }
    out
}

/// An agent in a runtime of its own, so that it can die as a process does: when stopped,
/// nothing of it runs any more (no task watcher ends what is left of a task's group).
struct Detached {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Detached {
    fn start(master_url: &str, work: &Path, isolation: Isolation) -> Detached {
        let (master_url, work) = (master_url.to_string(), work.to_path_buf());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let (agent, _) = rt.block_on(start_agent(&master_url, &work, isolation, 4.0));
            ready_tx.send(()).unwrap();
            let _ = stop_rx.recv();
            agent.shutdown();
            drop(agent);
            rt.shutdown_background();
        });
        ready_rx.recv().unwrap();
        Detached { stop, thread }
    }

    fn kill(self) {
        self.stop.send(()).unwrap();
        self.thread.join().unwrap();
    }
}

/// A child process killed (and reaped) on drop, also when the test fails.
struct Reaped(std::process::Child);

impl Reaped {
    fn exited(&mut self) -> bool {
        self.0.try_wait().ok().flatten().is_some()
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kills the processes whose working directory is under `dir` on drop.
struct KillUnder(PathBuf);

impl Drop for KillUnder {
    fn drop(&mut self) {
        for (pid, _) in procs_under(&self.0) {
            // SAFETY: kill(2) on processes this test started (their cwd is in its tempdir).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// A small tmpfs; unmounted (lazily) and its processes killed on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs (needs root/CAP_SYS_ADMIN): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        for (pid, _) in procs_under(self.dir.path()) {
            // SAFETY: kill(2) on processes this test started (their cwd is on our tmpfs).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the file system of `dir` until ENOSPC.
fn fill(dir: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("fill")).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = f.write_all(&chunk) {
            assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
            break;
        }
    }
    // Tail pages too.
    while f.write_all(&[0u8; 512]).is_ok() {}
}

/// The operator's scenario of issue 9: tasks run, the disk is full, more launches come, the
/// agent restarts. No launch may run without its checkpoint (each fails with the cause), so
/// after the restart every process of the agent belongs to a task the agent and the master
/// know as running, and no `*.tmp` checkpoint is left.
#[tokio::test]
async fn full_disk_launches_fail_and_no_orphan_survives_a_restart() {
    let Some(fs) = Tmpfs::mount("4m") else {
        return;
    };
    let work = fs.path().join("agent");
    let c = start_master().await;
    let (agent, _) = start_agent(&c.master_url, &work, Isolation::None, 4.0).await;
    let mut fw = Framework::new(&c.master);
    fw.launch(vec![
        shell_task("steady-1", "sleep 1000"),
        shell_task("steady-2", "sleep 1000"),
    ])
    .await;
    fw.wait_state("steady-1", TaskState::Running).await;
    fw.wait_state("steady-2", TaskState::Running).await;

    fill(fs.path());
    let late: Vec<String> = (1..=5).map(|i| format!("late-{i}")).collect();
    fw.launch(late.iter().map(|id| shell_task(id, "sleep 1000")).collect())
        .await;
    for id in &late {
        let s = fw.wait_state(id, TaskState::Failed).await;
        let m = s.message.unwrap_or_default();
        assert!(
            m.contains("cannot checkpoint the task") && m.contains("No space left on device"),
            "{id}: {m}"
        );
    }

    // Restart, the disk still full.
    agent.shutdown();
    drop(agent);
    let (agent2, url2) = start_agent(&c.master_url, &work, Isolation::None, 4.0).await;
    assert!(tmp_files(&work).is_empty(), "{:?}", tmp_files(&work));

    let steady: BTreeSet<String> = ["steady-1".to_string(), "steady-2".to_string()].into();
    let running_tasks = || {
        procs_under(&work)
            .into_iter()
            .map(|(pid, cwd)| (pid, task_of(&cwd)))
            .collect::<Vec<_>>()
    };
    let procs = running_tasks();
    let tasks: BTreeSet<String> = procs.iter().filter_map(|(_, t)| t.clone()).collect();
    assert_eq!(
        tasks, steady,
        "every process of the agent belongs to a task it knows: {procs:?}"
    );
    let at_agent = agent_tasks(&url2).await;
    let at_master = master_tasks(&c.master_url).await;
    for t in &steady {
        assert_eq!(at_agent.get(t).map(String::as_str), Some("TASK_RUNNING"));
        assert_eq!(at_master.get(t).map(String::as_str), Some("TASK_RUNNING"));
    }
    for t in &late {
        assert_ne!(at_master.get(t).map(String::as_str), Some("TASK_RUNNING"));
    }

    // Space comes back: launches work again, and the pending checkpoints are written.
    std::fs::remove_file(fs.path().join("fill")).unwrap();
    fw.launch(vec![shell_task("after", "sleep 1000")]).await;
    fw.wait_state("after", TaskState::Running).await;
    for t in ["steady-1", "steady-2", "after"] {
        fw.kill(t, Some(0.5));
        fw.wait_state(t, TaskState::Killed).await;
    }
    assert!(tmp_files(&work).is_empty(), "{:?}", tmp_files(&work));
    agent2.shutdown();
}

/// An agent dies after starting a task but before its pid was checkpointed (the checkpoint
/// says the task never started), another process of it has no checkpoint at all (its write
/// was cut short: a `*.tmp` is left), and a child of the task cleared its environment and
/// ignores SIGTERM. The next agent reports the task failed and kills all of them, and only
/// them: a process of another agent's work dir and an unrelated process survive.
#[tokio::test]
async fn processes_without_a_complete_checkpoint_are_killed_at_recovery() {
    let c = start_master().await;
    let dir = tempfile::tempdir().unwrap();
    let work = std::fs::canonicalize(dir.path()).unwrap();
    let _cleanup = KillUnder(work.clone());
    // With cgroups isolation when the host allows: the task's cgroup goes too.
    let agent = Detached::start(&c.master_url, &work, Isolation::Auto);
    let mut fw = Framework::new(&c.master);
    fw.launch(vec![shell_task(
        "crashed",
        "(trap '' TERM; exec env -i /bin/sleep 1000) & echo $! > child.pid; wait",
    )])
    .await;
    fw.wait_state("crashed", TaskState::Running).await;
    agent.kill();

    let (leader, sandbox) = {
        let mut found = Vec::new();
        wait_until("the task wrote child.pid", || {
            found = procs_under(&work);
            found.iter().any(|(_, cwd)| {
                std::fs::read_to_string(cwd.join("child.pid")).is_ok_and(|s| !s.trim().is_empty())
            })
        })
        .await;
        let sandbox = found[0].1.clone();
        let leader = found
            .iter()
            .map(|(p, _)| *p)
            .find(|p| {
                std::fs::read(format!("/proc/{p}/environ"))
                    .is_ok_and(|e| String::from_utf8_lossy(&e).contains(ENV_RUN_ID))
                    && std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                        .is_ok_and(|c| c.starts_with("/bin/sh"))
            })
            .expect("the task's shell");
        (leader, sandbox)
    };
    let child: i32 = std::fs::read_to_string(sandbox.join("child.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(leader) && alive(child));
    let run = sandbox.file_name().unwrap().to_str().unwrap().to_string();
    let cgroup_dirs = || -> Vec<PathBuf> {
        ["cpu", "memory", "pids", "."]
            .iter()
            .filter_map(|c| {
                std::fs::read_dir(Path::new("/sys/fs/cgroup").join(c).join("dcos")).ok()
            })
            .flat_map(|rd| rd.flatten().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(&run))
            .collect()
    };
    let cgroups = dcos_agent::cgroups::Cgroups::detect().is_ok();
    if cgroups {
        assert!(!cgroup_dirs().is_empty(), "the task runs in its cgroup");
    }

    // The crash: the checkpoint written before the spawn is all there is.
    let cp_path = work.join("meta/tasks/crashed.json");
    let mut cp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cp_path).unwrap()).unwrap();
    cp["pid"] = serde_json::Value::Null;
    cp["start_ticks"] = serde_json::Value::Null;
    cp["state"] = "TASK_STAGING".into();
    cp["latest"]["state"] = "TASK_STAGING".into();
    cp["pending"] = serde_json::json!([]);
    std::fs::write(&cp_path, serde_json::to_vec(&cp).unwrap()).unwrap();
    std::fs::write(work.join("meta/tasks/lost.tmp"), b"{\"info\":").unwrap();

    let spawn = |envs: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("1000").envs(envs.iter().copied());
        // SAFETY: setsid is async-signal-safe; a task's processes run in their own session.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        Reaped(cmd.spawn().unwrap())
    };
    let work_s = work.to_str().unwrap();
    let mut untracked = spawn(&[(ENV_WORK_DIR, work_s), (ENV_RUN_ID, "lost-run")]);
    let other_dir = format!("{work_s}-other");
    let mut neighbour = spawn(&[(ENV_WORK_DIR, &other_dir), (ENV_RUN_ID, "x")]);
    let mut unrelated = spawn(&[]);

    let (agent2, url2) = start_agent(&c.master_url, &work, Isolation::Auto, 4.0).await;
    assert!(tmp_files(&work).is_empty(), "{:?}", tmp_files(&work));
    let s = fw.wait_state("crashed", TaskState::Failed).await;
    assert!(
        s.message.unwrap_or_default().contains("restarted"),
        "reported as never started"
    );
    wait_until("the orphans are killed", || {
        !alive(leader) && !alive(child) && untracked.exited()
    })
    .await;
    assert!(agent_tasks(&url2).await.is_empty(), "no task runs");
    if cgroups {
        wait_until("the orphan's cgroups are removed", || {
            cgroup_dirs().is_empty()
        })
        .await;
    }
    assert!(!neighbour.exited(), "another agent's process");
    assert!(!unrelated.exited(), "an unrelated process");
    agent2.shutdown();
}

/// The pid checkpoint after a spawn fails (here `<task>.tmp` is made a directory while
/// the task's URI is being fetched, so only the second write fails): the process is killed
/// and the task fails with the cause, rather than running untracked.
#[tokio::test]
async fn a_started_task_whose_checkpoint_fails_is_killed() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let g = gate.clone();
    let files = axum::Router::new().route(
        "/slow.txt",
        get(move || {
            let g = g.clone();
            async move {
                g.notified().await;
                "data"
            }
        }),
    );
    let port = serve(files).await;
    let c = start_master().await;
    let dir = tempfile::tempdir().unwrap();
    let work = std::fs::canonicalize(dir.path()).unwrap();
    let _cleanup = KillUnder(work.clone());
    let (agent, _) = start_agent(&c.master_url, &work, Isolation::None, 4.0).await;
    let mut fw = Framework::new(&c.master);
    let mut t = shell_task("unrecorded", "sleep 1000");
    t.command.uris = vec![UriInfo {
        value: format!("http://127.0.0.1:{port}/slow.txt"),
        executable: false,
        extract: false,
        cache: false,
        output_file: None,
        sha256: None,
    }];
    fw.launch(vec![t]).await;
    let cp = work.join("meta/tasks/unrecorded.json");
    wait_until("the launch is checkpointed", || cp.exists()).await;
    std::fs::create_dir(work.join("meta/tasks/unrecorded.tmp")).unwrap();
    gate.notify_one();
    let s = fw.wait_state("unrecorded", TaskState::Failed).await;
    let m = s.message.unwrap_or_default();
    assert!(m.starts_with("cannot checkpoint the task: "), "{m}");
    assert!(procs_under(&work).is_empty(), "{:?}", procs_under(&work));
    agent.shutdown();
}

/// With `internal_token`, every request to the master carries it; a fetched URI never does.
#[tokio::test]
async fn internal_token_goes_to_the_master_only() {
    type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;
    let seen: Seen = Arc::default();
    let record = |seen: &Seen, path: &str, h: &HeaderMap| {
        let v = h
            .get(dcos_types::INTERNAL_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        seen.lock().unwrap().push((path.to_string(), v));
    };
    let (s1, s2, s3, s4) = (seen.clone(), seen.clone(), seen.clone(), seen.clone());
    let fake_master = axum::Router::new()
        .route(
            "/api/agent/v1/register",
            post(move |h: HeaderMap| async move {
                record(&s1, "register", &h);
                axum::Json(serde_json::json!({
                    "agent_id": "ignored", "master_id": "m1", "heartbeat_interval_seconds": 0.1
                }))
            }),
        )
        .route(
            "/api/agent/v1/heartbeat",
            post(move |h: HeaderMap| async move {
                record(&s2, "heartbeat", &h);
                axum::Json(serde_json::json!({"master_id": "m1", "reregister": false}))
            }),
        )
        .route(
            "/api/agent/v1/status",
            post(move |h: HeaderMap| async move {
                record(&s3, "status", &h);
                axum::http::StatusCode::ACCEPTED
            }),
        )
        .route(
            "/file.txt",
            get(move |h: HeaderMap| async move {
                record(&s4, "fetch", &h);
                "data"
            }),
        );
    let port = serve(fake_master).await;
    let base = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let agent_port = listener.local_addr().unwrap().port();
    let mut config = dcos_agent::AgentConfig::new(dir.path(), &base);
    config.port = agent_port;
    config.resources = Some(dcos_types::Resources::new(1.0, 1024.0, 1000.0));
    config.isolation = Isolation::None;
    config.internal_token = Some("s3cr3t-token".into());
    config.status_retry_interval = Duration::from_millis(200);
    let agent = Agent::start(config).unwrap();
    let app = dcos_agent::router(agent.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let mut t = shell_task("fetching", "true");
    t.command.uris = vec![UriInfo {
        value: format!("{base}/file.txt"),
        executable: false,
        extract: false,
        cache: false,
        output_file: None,
        sha256: None,
    }];
    let launch = serde_json::json!({
        "framework_id": "fw", "framework_name": "fw", "tasks": [t]
    });
    let has = |what: &str| seen.lock().unwrap().iter().any(|(p, _)| p == what);
    wait_until("the agent registers", || has("register")).await;
    let resp = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{agent_port}/api/master/v1/launch"
        ))
        .json(&launch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    wait_until("heartbeat, fetch and status updates", || {
        has("heartbeat") && has("fetch") && has("status")
    })
    .await;
    for (path, token) in seen.lock().unwrap().iter() {
        if path == "fetch" {
            assert_eq!(token, &None, "the internal token leaked to a fetched URI");
        } else {
            assert_eq!(token.as_deref(), Some("s3cr3t-token"), "{path}");
        }
    }
    agent.shutdown();
}

/// `meta/tasks` removed under a running agent (seen as "cannot checkpoint task … No such file
/// or directory"): the next checkpoint makes it again, so launches still run, tracked.
#[tokio::test]
async fn a_removed_checkpoint_folder_is_made_again() {
    let c = start_master().await;
    let dir = tempfile::tempdir().unwrap();
    let work = std::fs::canonicalize(dir.path()).unwrap();
    let _cleanup = KillUnder(work.clone());
    let (agent, _) = start_agent(&c.master_url, &work, Isolation::None, 4.0).await;
    std::fs::remove_dir_all(work.join("meta/tasks")).unwrap();
    let mut fw = Framework::new(&c.master);
    fw.launch(vec![shell_task("again", "sleep 1000")]).await;
    fw.wait_state("again", TaskState::Running).await;
    assert!(work.join("meta/tasks/again.json").exists());
    fw.kill("again", Some(0.5));
    fw.wait_state("again", TaskState::Killed).await;
    agent.shutdown();
}
