//! The published DC/OS CLI 0.6.1 and marathon-python 0.13.0 against the router served on a
//! free port over the simulated master. Skipped (with a message) when the clients are not
//! installed (`../shared/tools/install-dcoscli.sh` puts them in /tmp/dcoscli-venv; override
//! with DCOSCLI_VENV).

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use dcos_marathon::sim::SimOptions;

fn venv() -> Option<PathBuf> {
    let dir =
        PathBuf::from(std::env::var("DCOSCLI_VENV").unwrap_or_else(|_| "/tmp/dcoscli-venv".into()));
    if dir.join("bin/dcos").exists() && dir.join("bin/python").exists() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: the DC/OS CLI venv is not at {} (run ../shared/tools/install-dcoscli.sh)",
            dir.display()
        );
        None
    }
}

async fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = tokio::task::block_in_place(|| cmd.output()).expect("run client");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dcos_cli_and_marathon_python() {
    let Some(venv) = venv() else { return };
    let h = harness(2, SimOptions::default()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .nest("/service/marathon", h.router.clone())
        .fallback_service(h.router.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dcos_dir = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}");
    let app_file = dcos_dir.path().join("app.json");
    std::fs::write(
        &app_file,
        r#"{"id":"sleepy","cmd":"sleep 1000","cpus":0.1,"mem":32,"instances":2}"#,
    )
    .unwrap();
    let dcos = |args: &[&str]| {
        let mut c = Command::new(venv.join("bin/dcos"));
        c.args(args)
            .env("DCOS_DIR", dcos_dir.path())
            .env("DCOS_URL", &url)
            .env("PAGER", "cat")
            .stdin(std::process::Stdio::null());
        c
    };
    let (ok, out, err) = run(&mut dcos(&[
        "marathon",
        "app",
        "add",
        app_file.to_str().unwrap(),
    ]))
    .await;
    assert!(ok, "app add: {out} {err}");
    assert!(
        err.contains("Created deployment") || out.contains("Created deployment"),
        "{out} {err}"
    );
    deployments_done(&h.router).await;
    for args in [
        vec!["marathon", "app", "list"],
        vec!["marathon", "app", "list", "--json"],
        vec!["marathon", "app", "show", "/sleepy"],
        vec!["marathon", "task", "list"],
        vec!["marathon", "app", "version", "list", "/sleepy"],
        vec!["marathon", "app", "update", "/sleepy", "instances=3"],
        vec!["marathon", "app", "restart", "/sleepy"],
        vec!["marathon", "about"],
    ] {
        let (ok, out, err) = run(&mut dcos(&args)).await;
        assert!(ok && !err.contains("Traceback"), "{args:?}: {out} {err}");
        if args.len() == 3 && args[2] == "list" {
            assert!(out.contains("/sleepy"), "{out}");
        }
    }
    let (ok, _, err) = run(&mut dcos(&[
        "marathon",
        "app",
        "add",
        app_file.to_str().unwrap(),
    ]))
    .await;
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = run(&mut dcos(&["marathon", "app", "show", "/nope"])).await;
    assert!(!ok && err.contains("App '/nope' does not exist"), "{err}");
    let (ok, out, err) = run(&mut dcos(&["marathon", "app", "remove", "/sleepy"])).await;
    assert!(ok, "remove: {out} {err}");
    deployments_done(&h.router).await;

    let script = format!(
        r#"
import time
from marathon import MarathonClient
from marathon.models import MarathonApp
c = MarathonClient("{url}/service/marathon")
assert c.get_info().version.startswith("1.10")
app = c.create_app("mp", MarathonApp(cmd="sleep 100", cpus=0.1, mem=16, instances=2, labels={{"a": "b"}}))
assert app.deployments
for _ in range(100):
    a = c.get_app("mp")
    if a.tasks_running == 2:
        break
    time.sleep(0.05)
assert a.tasks_running == 2, a.tasks_running
assert [x.id for x in c.list_apps(label="a==b")] == ["/mp"]
c.scale_app("mp", instances=3)
for _ in range(100):
    if len(c.list_tasks("mp")) == 3:
        break
    time.sleep(0.05)
assert len(c.list_tasks("mp")) == 3
c.kill_task("mp", c.list_tasks("mp")[0].id, scale=True)
assert c.get_app("mp").instances == 2
c.list_deployments(); c.list_queue(); c.get_metrics(); c.ping(); c.get_leader()
c.restart_app("mp", force=True)
try:
    c.get_app("nope")
    raise SystemExit("expected NotFoundError")
except Exception as e:
    assert type(e).__name__ == "NotFoundError", e
c.delete_app("mp", force=True)
print("ok")
"#
    );
    let (ok, out, err) = run(Command::new(venv.join("bin/python")).arg("-c").arg(script)).await;
    assert!(ok && out.contains("ok"), "marathon-python: {out} {err}");
}
