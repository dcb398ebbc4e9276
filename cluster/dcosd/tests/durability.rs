//! Durability and local security of a whole all-in-one node (issue: "no acknowledged write is
//! ever lost, nothing runs untracked, and auth means something on a shared host"):
//!
//! * the work dir on a 20 MB tmpfs that fills up: writes refused while it is full, nothing
//!   launched that was not stored, every write acknowledged after the space came back still
//!   there after a restart, and no task process the cluster does not know of;
//! * with auth on, the internal ports (master, agent, Marathon, Metronome, Cosmos) refuse a
//!   caller without the cluster's internal credential, and the files that hold secrets cannot
//!   be read by another local user.
//!
//! The tmpfs test needs root (mount); it is skipped with a message elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dcosd::allinone::AllInOneArgs;
use dcosd::node::FullNode;
use serde_json::{json, Value};

fn args(dir: &Path, auth: bool) -> AllInOneArgs {
    AllInOneArgs {
        work_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        auth,
        superuser: "admin".into(),
        cluster_name: "test".into(),
        resources: Some("cpus:4;mem:4096;disk:1000;ports:[32200-32299]".into()),
        repositories: vec![],
        no_builtin_repository: false,
        isolation: "none".into(),
        log: "warn".into(),
        listen_dns: None,
        dns_resolvers: vec![],
    }
}

async fn start(dir: &Path, auth: bool) -> FullNode {
    let (config, extras) = args(dir, auth).resolve().unwrap();
    dcosd::node::start(config, extras).await.unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Task processes of this test run: `sleep 86400.<pid>` (GNU sleep takes a fraction), so
/// that leftovers of another run are not counted.
fn mark() -> String {
    format!("86400.{}", std::process::id())
}

fn app(id: &str, instances: u32) -> Value {
    json!({"id": id, "cmd": format!("sleep {}", mark()), "cpus": 0.01, "mem": 8, "instances": instances})
}

fn marked_processes() -> usize {
    let mark = format!("sleep {} ", mark());
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.starts_with(&mark) {
                n += 1;
            }
        }
    }
    n
}

/// Running tasks Marathon reports for every app.
async fn running_tasks(url: &str) -> usize {
    let (_, tasks) = send(client().get(format!("{url}/service/marathon/v2/tasks"))).await;
    tasks["tasks"]
        .as_array()
        .map(|t| t.iter().filter(|t| t["state"] == "TASK_RUNNING").count())
        .unwrap_or(0)
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting until {what}");
}

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Option<(tempfile::TempDir, Tmpfs)> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root and mount rights)");
            return None;
        }
        let path = dir.path().to_path_buf();
        Some((dir, Tmpfs(path)))
    }

    /// Writes a file until the file system is full.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.0.join("filler")).unwrap();
        let chunk = vec![0u8; 64 << 10];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.0.join("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_loses_no_acknowledged_write_and_leaves_no_orphan() {
    let Some((_dir, fs)) = Tmpfs::mount("20m") else {
        return;
    };
    let work = fs.0.join("work");
    let node = start(&work, false).await;
    let url = node.url().unwrap();
    let apps = format!("{url}/service/marathon/v2/apps");

    let (s, body) = send(client().post(&apps).json(&app("/steady", 1))).await;
    assert_eq!(s, 201, "{body}");
    wait_until("the first task runs", || async {
        running_tasks(&url).await == 1
    })
    .await;

    // The disk fills up. The log's last page may still have room for a record or two (tmpfs
    // allocates whole pages): apps without instances are accepted until the first refusal.
    fs.fill();
    let mut probes = Vec::new();
    for i in 0..200 {
        let id = format!("/probe-{i}");
        let (s, body) = send(client().post(&apps).json(&app(&id, 0))).await;
        match s {
            201 => probes.push(id),
            503 => {
                let msg = body["message"].as_str().unwrap_or("");
                assert!(msg.contains("No space left"), "the cause is named: {body}");
                let (s, _) = send(client().get(format!("{apps}{id}"))).await;
                assert_eq!(s, 404, "a refused app is not kept in memory");
                break;
            }
            other => panic!("POST {id}: {other} {body}"),
        }
    }
    // Writes are refused with a clear error and leave nothing behind.
    let (s, body) = send(client().post(&apps).json(&app("/refused", 3))).await;
    assert_eq!(s, 503, "a write the store refused is a 503: {body}");
    let (s, _) = send(client().get(format!("{apps}/refused"))).await;
    assert_eq!(s, 404, "a refused app is not kept in memory");
    // Health says so while it lasts.
    let (_, health) = send(client().get(format!("{url}/system/health/v1/units"))).await;
    let unhealthy: Vec<&Value> = health["units"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|u| u["health"] != 0)
        .collect();
    assert!(
        !unhealthy.is_empty(),
        "a store that refuses writes is unhealthy: {health}"
    );
    // Nothing was launched for what could not be stored.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(marked_processes(), 1, "only the stored task runs");

    // Space is back: writes are acknowledged, and must survive a restart.
    fs.free();
    let (s, body) = send(client().post(&apps).json(&app("/after", 1))).await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = send(
        client()
            .post(format!("{url}/service/metronome/v1/jobs"))
            .json(&json!({"id": "after-job", "run": {"cmd": "true", "cpus": 0.01, "mem": 32}})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = send(
        client()
            .put(format!("{apps}/steady"))
            .json(&json!({"instances": 2})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    wait_until("three tasks run", || async {
        running_tasks(&url).await == 3
    })
    .await;
    node.stop().await;

    let node = start(&work, false).await;
    let url = node.url().unwrap();
    let apps = format!("{url}/service/marathon/v2/apps");
    let (s, steady) = send(client().get(format!("{apps}/steady"))).await;
    assert_eq!(
        (s, &steady["app"]["instances"]),
        (200, &json!(2)),
        "{steady}"
    );
    let (s, _) = send(client().get(format!("{apps}/after"))).await;
    assert_eq!(s, 200, "the app created after the disk was freed survived");
    let (s, _) = send(client().get(format!("{apps}/refused"))).await;
    assert_eq!(s, 404);
    for id in &probes {
        let (s, _) = send(client().get(format!("{apps}{id}"))).await;
        assert_eq!(
            s, 200,
            "{id} was acknowledged while the disk was nearly full"
        );
    }
    let (s, _) = send(client().get(format!("{url}/service/metronome/v1/jobs/after-job"))).await;
    assert_eq!(s, 200, "the job created after the disk was freed survived");
    wait_until("the tasks are re-attached", || async {
        running_tasks(&url).await == 3
    })
    .await;
    assert_eq!(
        marked_processes(),
        3,
        "every task process is one the cluster knows of"
    );
    // Clean up the tasks (they outlive the node otherwise).
    for id in ["steady", "after"] {
        let _ = client().delete(format!("{apps}/{id}")).send().await;
    }
    wait_until("the tasks are gone", || async { marked_processes() == 0 }).await;
    node.stop().await;
}

/// Runs `cmd` as the unprivileged user `nobody`; `None` when this process cannot switch.
fn as_nobody(cmd: &[&str]) -> Option<std::process::Output> {
    let can = nix_is_root() && Command::new("setpriv").arg("--version").output().is_ok();
    if !can {
        return None;
    }
    Some(
        Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .args(cmd)
            .output()
            .unwrap(),
    )
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_on_internal_ports_and_secret_files_are_closed_to_other_users() {
    let dir = tempfile::tempdir().unwrap();
    // World-traversable, as /var/lib is: only the files' own modes may protect them.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::env::set_var("DCOS_SUPERUSER_PASSWORD", "s3cret-pass");
    let node = start(dir.path(), true).await;
    let url = node.url().unwrap();
    let services = node.services.as_ref().unwrap();
    let internal = [
        (
            "master",
            format!("{}/master/state", node.node.master.as_ref().unwrap().url),
        ),
        ("agent", format!("{}/state", node.node.agents[0].url)),
        (
            "marathon",
            format!("{}/v2/apps", services.marathon_server.url),
        ),
        (
            "metronome",
            format!("{}/v1/jobs", services.metronome_server.url),
        ),
        (
            "cosmos",
            format!("{}/package/list", services.cosmos_server.url),
        ),
    ];
    for (name, u) in &internal {
        let (s, body) = send(client().get(u)).await;
        assert_eq!(s, 401, "{name} without the credential: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or("")
                .contains("Admin Router"),
            "{name}: the refusal says where to go: {body}"
        );
        // A made-up credential is refused too.
        let (s, _) = send(
            client()
                .get(u)
                .header(dcos_types::INTERNAL_TOKEN_HEADER, "0".repeat(64)),
        )
        .await;
        assert_eq!(s, 401, "{name} with a wrong credential");
    }
    // The issue's exploit: a task with `id > /tmp/x` posted straight to Marathon.
    let (s, _) = send(
        client()
            .post(&internal[2].1)
            .json(&json!({"id": "/pwn", "cmd": "id > /tmp/pwned", "cpus": 0.01, "mem": 8})),
    )
    .await;
    assert_eq!(s, 401);

    // Through the Admin Router, with a login token, everything works.
    let (s, login) = send(
        client()
            .post(format!("{url}/acs/api/v1/auth/login"))
            .json(&json!({"uid": "admin", "password": "s3cret-pass"})),
    )
    .await;
    assert_eq!(s, 200, "{login}");
    let token = login["token"].as_str().unwrap();
    let (s, body) = send(
        client()
            .get(format!("{url}/service/marathon/v2/apps"))
            .header("Authorization", format!("token={token}")),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = send(
        client()
            .get(format!("{url}/mesos/master/state"))
            .header("Authorization", format!("token={token}")),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    // A client cannot smuggle its own internal header through the Admin Router either: it is
    // stripped (the request still needs a login token).
    let (s, _) = send(
        client()
            .get(format!("{url}/service/marathon/v2/apps"))
            .header(dcos_types::INTERNAL_TOKEN_HEADER, "0".repeat(64)),
    )
    .await;
    assert_eq!(s, 401);

    // Another local user cannot read the secrets or use the ports.
    let secret_files = [
        dir.path().join("secrets/internal-token"),
        dir.path().join("master/store/wal"),
        dir.path().join("master/store/snapshot"),
    ];
    for f in &secret_files {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    match as_nobody(&["cat", secret_files[0].to_str().unwrap()]) {
        None => eprintln!("SKIPPED: the switch-user part (not root or no setpriv)"),
        Some(out) => {
            for f in &secret_files {
                let out = as_nobody(&["cat", f.to_str().unwrap()]).unwrap();
                assert!(!out.status.success(), "nobody read {}", f.display());
            }
            assert!(!out.status.success());
            let out = as_nobody(&[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-XPOST",
                "-H",
                "Content-Type: application/json",
                "-d",
                r#"{"id":"/pwn2","cmd":"id > /tmp/pwned2"}"#,
                &internal[2].1,
            ])
            .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
        }
    }
    node.stop().await;
}
