//! The `dcos` binary against a fake cluster behind the real Admin Router.

mod common;

use common::*;
use serde_json::Value;

fn ok(o: &std::process::Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
}

/// Replaces the random port of the fake cluster so snapshots are stable.
fn scrub(s: &str, url: &str) -> String {
    s.replace(url, "http://CLUSTER")
}

#[test]
fn setup_without_auth_then_list_and_attach() {
    let c = FakeCluster::start(false);
    let out = c.dcos(&["cluster", "setup", &c.url]);
    ok(&out);
    assert!(
        stderr(&out).contains("Authentication is disabled"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains(CLUSTER_ID));
    let toml = std::fs::read_to_string(
        c.dir
            .path()
            .join("clusters")
            .join(CLUSTER_ID)
            .join("dcos.toml"),
    )
    .unwrap();
    assert!(
        toml.contains(&c.url) && toml.contains("test-cluster"),
        "{toml}"
    );
    assert!(c
        .dir
        .path()
        .join("clusters")
        .join(CLUSTER_ID)
        .join("attached")
        .exists());

    let out = c.dcos(&["cluster", "list"]);
    ok(&out);
    insta::assert_snapshot!("cluster_list", scrub(&stdout(&out), &c.url));
    let out = c.dcos(&["cluster", "list", "--json"]);
    ok(&out);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v[0]["cluster_id"], CLUSTER_ID);
    assert_eq!(v[0]["status"], "AVAILABLE");
    ok(&c.dcos(&["cluster", "attach", "test-cluster"]));
}

#[test]
fn setup_with_auth_requires_login_and_401s_are_exit_4() {
    let c = FakeCluster::start(true);
    // No credentials and no terminal: a clear auth error.
    let out = c.dcos(&["cluster", "setup", &c.url]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("--username"), "{}", stderr(&out));
    // Wrong password.
    let out = c.dcos(&[
        "cluster",
        "setup",
        &c.url,
        "--username",
        "admin",
        "--password",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        stderr(&out).contains("Authentication failed"),
        "{}",
        stderr(&out)
    );
    // Right password.
    ok(&c.dcos(&[
        "cluster",
        "setup",
        &c.url,
        "--username",
        "admin",
        "--password",
        "s3cret",
    ]));
    let out = c.dcos(&["package", "search"]);
    ok(&out);
    // A request without the token (DCOS_URL without DCOS_ACS_TOKEN, no matching config) is 401.
    let out = c.dcos_env(
        &["marathon", "app", "list"],
        &[("DCOS_URL", &c.url.replace("127.0.0.1", "localhost"))],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("dcos auth login"), "{}", stderr(&out));
    // A bad token.
    let out = c.dcos_env(
        &["marathon", "app", "list"],
        &[("DCOS_ACS_TOKEN", "bad.token.here")],
    );
    assert_eq!(out.status.code(), Some(4));
    // auth logout, then login again with a service account key.
    ok(&c.dcos(&["auth", "logout"]));
    assert_eq!(c.dcos(&["marathon", "app", "list"]).status.code(), Some(4));
    let key = fixture("sa-private.pem");
    ok(&c.dcos(&[
        "auth",
        "login",
        "--username",
        "ci-bot",
        "--private-key",
        key.to_str().unwrap(),
    ]));
    ok(&c.dcos(&["marathon", "app", "list"]));
}

#[test]
fn unreachable_and_wrong_urls_are_clear() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let c = FakeCluster::start(false);
    let out = c.dcos_env(&["marathon", "app", "list"], &[("DCOS_URL", &dead)]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.contains("cannot reach the cluster") && err.contains("Hint:"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let out = c.dcos(&["cluster", "setup", &dead]);
    assert_eq!(out.status.code(), Some(3));
    // Not a DC/OS cluster: a web server that answers 404 everywhere.
    let out = c.dcos(&["cluster", "setup", &format!("{}/nothing-here", c.url)]);
    assert_ne!(out.status.code(), Some(0));
    assert!(!stderr(&out).contains("panicked"));
    // No cluster configured at all.
    let out = c.dcos(&["package", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("dcos cluster setup"),
        "{}",
        stderr(&out)
    );
    // Usage errors are exit 2.
    assert_eq!(c.dcos(&["package", "install"]).status.code(), Some(2));
    assert_eq!(c.dcos(&["nonsense"]).status.code(), Some(2));
    let out = c.dcos(&["cluster", "setup", "ftp://x"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn package_commands() {
    let c = FakeCluster::start(false);
    c.setup();
    let out = c.dcos(&["package", "search"]);
    ok(&out);
    insta::assert_snapshot!("package_search", stdout(&out));
    let out = c.dcos(&["package", "search", "nothing-matches"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("No packages found"));

    let out = c.dcos(&["package", "describe", "spark"]);
    ok(&out);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["name"], "spark");
    let out = c.dcos(&["package", "describe", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Package [nope] not found"),
        "{}",
        stderr(&out)
    );
    let out = c.dcos(&["package", "describe", "hello", "--config"]);
    ok(&out);
    assert!(stdout(&out).contains("\"port\""));

    // Install without --yes and without a terminal: refused with a hint.
    let out = c.dcos(&["package", "install", "hello"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--yes"));

    // Options that fail validation: the server's message and the failing field.
    let bad = c.dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"port": "eighty"}"#).unwrap();
    let out = c.dcos(&[
        "package",
        "install",
        "hello",
        "--yes",
        "--options",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Options JSON failed validation") && stderr(&out).contains("/port"),
        "{}",
        stderr(&out)
    );
    let notjson = c.dir.path().join("notjson.json");
    std::fs::write(&notjson, "{port").unwrap();
    let out = c.dcos(&[
        "package",
        "install",
        "hello",
        "--yes",
        "--options",
        notjson.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not valid JSON"));

    let opts = c.dir.path().join("opts.json");
    std::fs::write(&opts, r#"{"port": 9000}"#).unwrap();
    let out = c.dcos(&[
        "package",
        "install",
        "hello",
        "--yes",
        "--wait",
        "--options",
        opts.to_str().unwrap(),
    ]);
    ok(&out);
    let text = stdout(&out);
    assert!(text.contains("/hello is healthy: 1/1"), "{text}");
    assert!(text.contains("http://127.0.0.1:31005"), "{text}");
    assert!(
        text.contains(&format!("{}/service/hello/", c.url)),
        "{text}"
    );
    assert!(stderr(&out).contains("Installing Marathon app for package [hello] version [1.0.0]"));

    let out = c.dcos(&["package", "list"]);
    ok(&out);
    insta::assert_snapshot!("package_list", stdout(&out));
    let out = c.dcos(&["package", "list", "--json"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v[0]["appId"], "/hello");

    let out = c.dcos(&[
        "package",
        "render",
        "hello",
        "--options",
        opts.to_str().unwrap(),
    ]);
    ok(&out);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["options"]["port"], 9000);

    let out = c.dcos(&["package", "uninstall", "hello", "--yes"]);
    ok(&out);
    assert!(stderr(&out).contains("Uninstalled package [hello]"));
    let out = c.dcos(&["package", "uninstall", "hello", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not installed"));
}

#[test]
fn install_wait_reports_a_failing_task() {
    let c = FakeCluster::start(false);
    c.setup();
    let out = c.dcos(&[
        "package", "install", "spark", "--yes", "--wait", "--app-id", "/broken",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("Failed to pull image") && err.contains("TASK_FAILED"),
        "{err}"
    );
    assert!(err.contains("Hint:"), "{err}");
}

#[test]
fn repo_commands() {
    let c = FakeCluster::start(false);
    c.setup();
    ok(&c.dcos(&["package", "repo", "add", "local", "http://127.0.0.1:1/repo"]));
    ok(&c.dcos(&[
        "package",
        "repo",
        "add",
        "first",
        "http://127.0.0.1:2/repo",
        "--index",
        "0",
    ]));
    let out = c.dcos(&["package", "repo", "add", "first", "http://x/repo"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already present"));
    let out = c.dcos(&["package", "repo", "list"]);
    ok(&out);
    insta::assert_snapshot!("repo_list", stdout(&out));
    ok(&c.dcos(&["package", "repo", "remove", "first", "local"]));
    let out = c.dcos(&["package", "repo", "remove", "first"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn cosmos_warnings_go_to_stderr() {
    let c = FakeCluster::start(false);
    c.setup();
    c.state.lock().unwrap().cosmos_warning = Some(
        "199 cosmos \"repository 'Universe' (https://universe.mesosphere.com/repo) is unreachable: dns error\""
            .into(),
    );
    let out = c.dcos(&["package", "search", "--json"]);
    ok(&out);
    let err = stderr(&out);
    assert!(
        err.contains("Warning: repository 'Universe' (https://universe.mesosphere.com/repo) is unreachable: dns error"),
        "{err}"
    );
    // stdout stays the JSON answer
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(v.to_string().contains("hello"), "{v}");
    // printed on failures too, and once per run
    let out = c.dcos(&["package", "describe", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out)
            .matches("Warning: repository 'Universe'")
            .count(),
        1
    );
}

#[test]
fn marathon_commands() {
    let c = FakeCluster::start(false);
    c.setup();
    let app = c.dir.path().join("app.json");
    std::fs::write(
        &app,
        r#"{"id": "sleepy", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 1}"#,
    )
    .unwrap();
    let out = c.dcos(&["marathon", "app", "add", app.to_str().unwrap()]);
    ok(&out);
    assert!(stdout(&out).contains("Created deployment dep-1"));
    let out = c.dcos(&["marathon", "app", "add", app.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Application '/sleepy' already exists"));
    let out = c.dcos(&["marathon", "app", "list"]);
    ok(&out);
    insta::assert_snapshot!("marathon_app_list", stdout(&out));
    let out = c.dcos(&["marathon", "app", "show", "/sleepy"]);
    ok(&out);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["cmd"], "sleep 1000");
    let out = c.dcos(&["marathon", "app", "show", "/nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("App '/nope' does not exist"));
    ok(&c.dcos(&["marathon", "app", "scale", "sleepy", "3"]));
    let out = c.dcos(&["marathon", "app", "show", "sleepy"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["instances"], 3);
    ok(&c.dcos(&[
        "marathon",
        "app",
        "update",
        "sleepy",
        "instances=2",
        "cmd=sleep 5",
    ]));
    let out = c.dcos(&["marathon", "app", "restart", "sleepy"]);
    ok(&out);
    assert!(stdout(&out).contains("Created deployment dep-2"));
    let out = c.dcos(&["marathon", "deployment", "list"]);
    ok(&out);
    insta::assert_snapshot!("marathon_deployment_list", stdout(&out));
    ok(&c.dcos(&["marathon", "deployment", "rollback", "dep-1"]));
    ok(&c.dcos(&["marathon", "task", "list"]));
    ok(&c.dcos(&["marathon", "app", "remove", "sleepy"]));
    let out = c.dcos(&["marathon", "app", "list", "--json"]);
    ok(&out);
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&out)).unwrap(),
        serde_json::json!([])
    );
}

#[test]
fn mesos_commands() {
    let c = FakeCluster::start(false);
    c.setup();
    let out = c.dcos(&["node", "list"]);
    ok(&out);
    insta::assert_snapshot!("node_list", stdout(&out));
    ok(&c.dcos(&["node"]));
    let out = c.dcos(&["task", "list"]);
    ok(&out);
    insta::assert_snapshot!("task_list", stdout(&out));
    let out = c.dcos(&["task", "--completed", "--json"]);
    ok(&out);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    let out = c.dcos(&["service"]);
    ok(&out);
    insta::assert_snapshot!("service_list", stdout(&out));

    let out = c.dcos(&["task", "log", "hello", "--lines", "2"]);
    ok(&out);
    assert_eq!(stdout(&out), "line 3\nline 4\n");
    let out = c.dcos(&["task", "log", "hello.instance-1._app.1"]);
    ok(&out);
    assert_eq!(stdout(&out), "line 1\nline 2\nline 3\nline 4\n");
    let out = c.dcos(&["task", "log", "hello", "stderr"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("does not exist in the task's sandbox"),
        "{}",
        stderr(&out)
    );
    let out = c.dcos(&["task", "log", "zzz"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no task matches"));
}

#[test]
fn job_commands() {
    let c = FakeCluster::start(false);
    c.setup();
    let job = c.dir.path().join("job.json");
    std::fs::write(
        &job,
        r#"{"id":"nightly.report","description":"the report","run":{"cmd":"make report","cpus":0.1,"mem":32},
            "schedules":[{"id":"night","cron":"30 2 * * *","timezone":"UTC"}]}"#,
    )
    .unwrap();
    let out = c.dcos(&["job", "add", job.to_str().unwrap()]);
    ok(&out);
    assert!(stdout(&out).contains("Created job nightly.report with 1 schedule(s)"));
    // A second add is the server's 409, exit 1, with its message.
    let out = c.dcos(&["job", "add", job.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));

    let out = c.dcos(&["job", "list"]);
    ok(&out);
    let line = stdout(&out)
        .lines()
        .find(|l| l.contains("nightly.report"))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.contains("Scheduled") && line.contains("T02:30:00"),
        "{line}"
    );
    let out = c.dcos(&["job", "schedule", "show", "nightly.report"]);
    ok(&out);
    assert!(stdout(&out).contains("30 2 * * *"), "{}", stdout(&out));

    // Run it: the run is active until its task finishes.
    let out = c.dcos(&["job", "run", "nightly.report"]);
    ok(&out);
    let run_id = stdout(&out)
        .trim()
        .strip_prefix("Run ID: ")
        .unwrap_or_default()
        .to_string();
    assert_eq!(run_id.len(), 19, "yyyyMMddHHmmss + 5: {run_id:?}");
    let mut task = None;
    for _ in 0..200 {
        task = c
            .sim
            .tasks()
            .into_iter()
            .map(|t| t.info.task_id.0)
            .find(|t| t.contains(&run_id));
        if task.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let task = task.expect("the run's task was launched on the master");
    let out = c.dcos(&["job", "list", "--json"]);
    ok(&out);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v[0]["activeRuns"][0]["id"], run_id.as_str());
    // Removing a job with an active run is refused with a hint.
    let out = c.dcos(&["job", "remove", "nightly.report"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--stop-current-job-runs"),
        "{}",
        stderr(&out)
    );

    c.sim
        .finish_task(&task, dcos_types::TaskState::Finished, "done");
    let mut history = String::new();
    for _ in 0..200 {
        let out = c.dcos(&["job", "history", "nightly.report"]);
        ok(&out);
        history = stdout(&out);
        if history.contains("SUCCESS") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        history.contains(&run_id) && history.contains("SUCCESS"),
        "{history}"
    );
    assert!(history.contains("1 successful, 0 failed"), "{history}");

    // Bad input: the server's 422 reasons, exit 1; a missing job, exit 1 with its message.
    std::fs::write(&job, r#"{"id":"Bad_Id","run":{"cmd":"x","mem":8}}"#).unwrap();
    let out = c.dcos(&["job", "add", job.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("/run/mem") || err.contains("mem"), "{err}");
    let out = c.dcos(&["job", "show", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));

    ok(&c.dcos(&["job", "schedule", "remove", "nightly.report", "night"]));
    ok(&c.dcos(&["job", "remove", "nightly.report"]));
    let out = c.dcos(&["job", "list", "--json"]);
    assert_eq!(stdout(&out).trim(), "[]");
}

/// An install while the same app's uninstall is still killing its tasks gets Cosmos's
/// "already installed" (Marathon's 409), with a hint that names the stopping deployment.
#[test]
fn install_during_an_uninstall_says_what_to_wait_for() {
    let c = FakeCluster::start(false);
    c.setup();
    c.state.lock().unwrap().stopping = Some("/hello".into());
    let out = c.dcos(&["package", "install", "hello", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("Package is already installed"), "{err}");
    assert!(
        err.contains("/hello is still being removed (deployment dep-stop)"),
        "{err}"
    );
    // Without a stopping deployment the plain server error stays.
    c.state.lock().unwrap().stopping = None;
    ok(&c.dcos(&["package", "install", "hello", "--yes"]));
    let out = c.dcos(&["package", "install", "hello", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !stderr(&out).contains("still being removed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn service_endpoints() {
    let c = FakeCluster::start(false);
    c.setup();
    c.state.lock().unwrap().apps.push(serde_json::json!({
        "id": "/shop/web", "instances": 1, "tasksRunning": 1, "tasksHealthy": 0,
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shop.example.com", "DCOS_SERVICE_NAME": "shop"},
        "portDefinitions": [
            {"port": 10000, "name": "http", "protocol": "tcp", "labels": {"VIP_0": "/shop/web:80"}},
            {"port": 10001, "protocol": "tcp", "labels": {"VIP_1": "10.10.0.7:5000"}}],
        "tasks": [{"id": "shop_web.instance-1._app.1", "appId": "/shop/web", "host": "10.0.1.5",
            "ports": [31005, 31006], "state": "TASK_RUNNING"}]
    }));
    let out = c.dcos(&["service", "endpoints", "/shop/web"]);
    ok(&out);
    // The URL's length varies with the port: the admin-router line's padding is normalised.
    let table: Vec<String> = scrub(&stdout(&out), &c.url)
        .lines()
        .map(|l| {
            if l.starts_with("admin-router") {
                l.split_whitespace().collect::<Vec<_>>().join("  ")
            } else {
                l.to_string()
            }
        })
        .collect();
    insta::assert_snapshot!("service_endpoints", table.join("\n"));

    let out = c.dcos(&["service", "endpoints", "shop/web", "--json"]);
    ok(&out);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["id"], "/shop/web");
    assert_eq!(v["dns"]["a"], "web-shop.marathon.mesos");
    assert_eq!(v["dns"]["srv"], "_web-shop._tcp.marathon.mesos");
    assert_eq!(v["dns"]["ports"], serde_json::json!([31005, 31006]));
    assert_eq!(
        v["vips"][0]["endpoint"],
        "shopweb.marathon.l4lb.thisdcos.directory:80"
    );
    assert_eq!(v["vips"][1]["endpoint"], "10.10.0.7:5000");
    assert_eq!(v["edgeLb"]["ports"][0]["vhost"], "shop.example.com");
    assert_eq!(v["adminRouter"], format!("{}/service/shop/", c.url));
    assert_eq!(v["tasks"][0]["endpoints"][0], "10.0.1.5:31005");

    // `marathon app show` keeps its JSON on stdout and names the DNS name and VIPs on stderr.
    let out = c.dcos(&["marathon", "app", "show", "/shop/web"]);
    ok(&out);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["id"], "/shop/web");
    assert!(stderr(&out).contains("DNS: web-shop.marathon.mesos"));
    assert!(stderr(&out).contains("VIP: shopweb.marathon.l4lb.thisdcos.directory:80"));

    // `task list --json` adds the Mesos-DNS name.
    let out = c.dcos(&["task", "list", "--json"]);
    ok(&out);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v[0]["dns_name"], "hello.marathon.mesos");

    let out = c.dcos(&["service", "endpoints", "/nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nope"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Hint: list the apps with `dcos marathon app list`"),
        "{}",
        stderr(&out)
    );
}
