//! Runs through the (simulated) master: launch, status tracking, restart policy, stop,
//! schedules firing, deadlines, history, recovery from the store.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use dcos_marathon::sim::{SimMaster, SimOptions};
use dcos_store::{EmbeddedStore, Options, Store};
use dcos_types::TaskState;
use serde_json::{json, Value};

fn job(id: &str, restart: &str) -> Value {
    json!({"id": id, "run": {"cmd": "sleep 1", "cpus": 0.5, "mem": 64, "disk": 10,
        "env": {"GREETING": "hi"},
        "artifacts": [{"uri": "http://repo.local/tool.tgz", "extract": true}],
        "restart": {"policy": restart, "activeDeadlineSeconds": 600}}})
}

/// Waits until the sim runs exactly `n` tasks of `prefix`; returns them.
async fn running(sim: &SimMaster, prefix: &str, n: usize) -> Vec<dcos_marathon::sim::SimTask> {
    wait_for(&format!("{n} running task(s) of {prefix}"), || {
        let t = sim_tasks(sim, prefix);
        t.len() == n && t.iter().all(|t| t.state == TaskState::Running)
    })
    .await;
    sim_tasks(sim, prefix)
}

#[tokio::test]
async fn a_run_that_succeeds() {
    let h = harness(1, SimOptions::default()).await;
    req(&h.router, "POST", "/v1/jobs", Some(job("hello", "NEVER"))).await;
    // `dcos job run` sends no body.
    let (s, run) = req(&h.router, "POST", "/v1/jobs/hello/runs", None).await;
    assert_eq!(s, 201, "{run}");
    let rid = run["id"].as_str().unwrap().to_string();
    assert_eq!(rid.len(), 19);
    assert!(rid.starts_with("20300101000030"), "{rid}");
    assert_eq!(run["jobId"], "hello");
    assert_eq!(run["status"], "STARTING");
    assert_eq!(run["completedAt"], Value::Null);
    assert_eq!(run["tasks"], json!([]));
    assert_eq!(run["createdAt"], "2030-01-01T00:00:30.000+0000");

    let tasks = running(&h.sim, &format!("hello_{rid}."), 1).await;
    let info = &tasks[0].info;
    assert_eq!(info.command.value.as_deref(), Some("sleep 1"));
    assert!(info.command.shell);
    assert_eq!(info.command.environment["GREETING"], "hi");
    assert_eq!(info.command.environment["METRONOME_JOB_ID"], "hello");
    assert_eq!(info.command.uris[0].value, "http://repo.local/tool.tgz");
    assert_eq!(info.resources.cpus, 0.5);
    assert_eq!(info.resources.mem, 64.0);
    assert_eq!(info.resources.disk, 10.0);
    let tid = info.task_id.0.clone();

    let v = wait_http(
        &h.router,
        &format!("/v1/jobs/hello/runs/{rid}"),
        "ACTIVE",
        |v| v["status"] == "ACTIVE" && v["tasks"][0]["status"] == "TASK_RUNNING",
    )
    .await;
    assert_eq!(v["tasks"][0]["id"], tid.as_str());
    let (_, list) = req(
        &h.router,
        "GET",
        "/v1/jobs?embed=activeRuns&embed=historySummary",
        None,
    )
    .await;
    assert_eq!(list[0]["activeRuns"][0]["id"], rid.as_str());

    h.sim.finish_task(&tid, TaskState::Finished, "done");
    let v = wait_http(&h.router, "/v1/jobs/hello?embed=history", "success", |v| {
        v["history"]["successCount"] == 1
    })
    .await;
    assert_eq!(v["history"]["failureCount"], 0);
    assert!(v["history"]["lastSuccessAt"]
        .as_str()
        .unwrap()
        .ends_with("+0000"));
    let done = &v["history"]["successfulFinishedRuns"][0];
    assert_eq!(done["id"], rid.as_str());
    assert_eq!(done["tasks"], json!([tid]));
    assert!(done["finishedAt"].is_string());
    // Finished runs are no longer active.
    let (s, _) = req(
        &h.router,
        "GET",
        &format!("/v1/jobs/hello/runs/{rid}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (_, v) = req(&h.router, "GET", "/v1/jobs/hello/runs", None).await;
    assert_eq!(v, json!([]));
    // RUNNING and FINISHED were acknowledged.
    wait_for("acks", || h.sim.acks() >= 2).await;
}

#[tokio::test]
async fn a_failed_task_is_retried_under_on_failure() {
    let h = harness(1, SimOptions::default()).await;
    req(
        &h.router,
        "POST",
        "/v1/jobs",
        Some(job("flaky", "ON_FAILURE")),
    )
    .await;
    let (_, run) = req(&h.router, "POST", "/v1/jobs/flaky/runs", None).await;
    let rid = run["id"].as_str().unwrap().to_string();
    let prefix = format!("flaky_{rid}.");
    let first = running(&h.sim, &prefix, 1).await[0].info.task_id.0.clone();
    h.sim.finish_task(&first, TaskState::Failed, "exit 1");
    wait_for("a second task", || h.sim.launches() == 2).await;
    let second = running(&h.sim, &prefix, 1).await[0].info.task_id.0.clone();
    assert_ne!(first, second);
    let v = wait_http(
        &h.router,
        &format!("/v1/jobs/flaky/runs/{rid}"),
        "2 tasks",
        |v| v["tasks"].as_array().is_some_and(|t| t.len() == 2) && v["status"] == "ACTIVE",
    )
    .await;
    assert_eq!(v["tasks"][0]["status"], "TASK_FAILED");
    assert!(v["tasks"][0]["completedAt"].is_string());
    h.sim.finish_task(&second, TaskState::Finished, "ok");
    let v = wait_http(&h.router, "/v1/jobs/flaky?embed=history", "success", |v| {
        v["history"]["successCount"] == 1
    })
    .await;
    assert_eq!(v["history"]["failureCount"], 0);
    assert_eq!(
        v["history"]["successfulFinishedRuns"][0]["tasks"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_failed_task_fails_the_run_under_never_and_after_the_active_deadline() {
    let h = harness(1, SimOptions::default()).await;
    req(&h.router, "POST", "/v1/jobs", Some(job("once", "NEVER"))).await;
    let (_, run) = req(&h.router, "POST", "/v1/jobs/once/runs", None).await;
    let rid = run["id"].as_str().unwrap().to_string();
    let t = running(&h.sim, &format!("once_{rid}."), 1).await[0]
        .info
        .task_id
        .0
        .clone();
    h.sim.finish_task(&t, TaskState::Failed, "exit 1");
    let v = wait_http(&h.router, "/v1/jobs/once?embed=history", "failure", |v| {
        v["history"]["failureCount"] == 1
    })
    .await;
    assert_eq!(v["history"]["failedFinishedRuns"][0]["id"], rid.as_str());
    assert!(v["history"]["lastFailureAt"].is_string());
    assert_eq!(h.sim.launches(), 1, "NEVER: no retry");

    // ON_FAILURE, but past activeDeadlineSeconds (600 s): no retry either.
    req(
        &h.router,
        "POST",
        "/v1/jobs",
        Some(job("late", "ON_FAILURE")),
    )
    .await;
    let (_, run) = req(&h.router, "POST", "/v1/jobs/late/runs", None).await;
    let rid = run["id"].as_str().unwrap().to_string();
    let t = running(&h.sim, &format!("late_{rid}."), 1).await[0]
        .info
        .task_id
        .0
        .clone();
    h.clock.advance_secs(601);
    h.sim.finish_task(&t, TaskState::Failed, "exit 1");
    wait_http(&h.router, "/v1/jobs/late?embed=history", "failure", |v| {
        v["history"]["failureCount"] == 1
    })
    .await;
    assert_eq!(h.sim.launches(), 2);
}

#[tokio::test]
async fn stopping_a_run_kills_its_task() {
    let h = harness(1, SimOptions::default()).await;
    req(
        &h.router,
        "POST",
        "/v1/jobs",
        Some(job("long", "ON_FAILURE")),
    )
    .await;
    let (_, run) = req(&h.router, "POST", "/v1/jobs/long/runs", None).await;
    let rid = run["id"].as_str().unwrap().to_string();
    let t = running(&h.sim, &format!("long_{rid}."), 1).await[0]
        .info
        .task_id
        .0
        .clone();
    // Deleting a job with an active run needs stopCurrentJobRuns.
    let (s, v) = req(&h.router, "DELETE", "/v1/jobs/long", None).await;
    assert_eq!(s, 409);
    assert_eq!(
        v["message"],
        "There are active job runs. Override with stopCurrentJobRuns=true"
    );
    let (s, _) = req(
        &h.router,
        "POST",
        &format!("/v1/jobs/long/runs/{rid}/actions/stop"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(h.sim.kills().iter().any(|k| k.0 == t));
    let v = wait_http(&h.router, "/v1/jobs/long?embed=history", "stopped", |v| {
        v["history"]["failureCount"] == 1
    })
    .await;
    assert_eq!(v["history"]["failedFinishedRuns"][0]["id"], rid.as_str());
    assert_eq!(h.sim.launches(), 1, "a stopped run is not retried");
    let (s, _) = req(
        &h.router,
        "POST",
        "/v1/jobs/long/runs/nope/actions/stop",
        None,
    )
    .await;
    assert_eq!(s, 404);

    // Delete with stopCurrentJobRuns=true kills what runs.
    let (_, run) = req(&h.router, "POST", "/v1/jobs/long/runs", None).await;
    let rid = run["id"].as_str().unwrap().to_string();
    let t = running(&h.sim, &format!("long_{rid}."), 1).await[0]
        .info
        .task_id
        .0
        .clone();
    let (s, _) = req(
        &h.router,
        "DELETE",
        "/v1/jobs/long?stopCurrentJobRuns=true",
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(h.sim.kills().iter().any(|k| k.0 == t));
    wait_for("task gone", || sim_tasks(&h.sim, "long_").is_empty()).await;
    let (s, _) = req(&h.router, "GET", "/v1/jobs/long", None).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn docker_jobs_launch_a_docker_container() {
    let h = harness(1, SimOptions::default()).await;
    req(
        &h.router,
        "POST",
        "/v1/jobs",
        Some(
            json!({"id": "dock", "run": {"docker": {"image": "busybox:1", "forcePullImage": true},
            "args": ["echo", "hi"], "cpus": 0.1, "mem": 32}}),
        ),
    )
    .await;
    let (_, run) = req(&h.router, "POST", "/v1/jobs/dock/runs", None).await;
    let rid = run["id"].as_str().unwrap().to_string();
    let info = running(&h.sim, &format!("dock_{rid}."), 1).await[0]
        .info
        .clone();
    let c = info.container.unwrap();
    assert_eq!(c.kind, "DOCKER");
    let d = c.docker.unwrap();
    assert_eq!(d.image, "busybox:1");
    assert!(d.force_pull_image);
    assert!(!info.command.shell);
    assert_eq!(info.command.arguments, vec!["echo", "hi"]);
}

#[tokio::test]
async fn a_job_too_big_for_any_agent_waits_then_gives_up_after_max_launch_delay() {
    let h = harness(1, SimOptions::default()).await;
    req(
        &h.router,
        "POST",
        "/v1/jobs",
        Some(json!({"id": "huge", "run": {"cmd": "x", "cpus": 64, "mem": 32, "maxLaunchDelay": 120}})),
    )
    .await;
    let (_, run) = req(&h.router, "POST", "/v1/jobs/huge/runs", None).await;
    let rid = run["id"].as_str().unwrap().to_string();
    let (_, q) = req(&h.router, "GET", "/v1/queue", None).await;
    assert_eq!(q[0]["runs"][0]["runId"], rid.as_str());
    h.clock.advance_secs(121);
    wait_http(&h.router, "/v1/jobs/huge?embed=history", "gave up", |v| {
        v["history"]["failureCount"] == 1
    })
    .await;
    assert_eq!(h.sim.launches(), 0);
}

#[tokio::test]
async fn a_schedule_fires_and_forbid_skips_while_a_run_is_active() {
    // Clock at 2030-01-01T00:00:30Z.
    let h = harness(1, SimOptions::default()).await;
    let mut j = job("tick", "NEVER");
    j["schedules"] =
        json!([{"id": "every-minute", "cron": "* * * * *", "concurrencyPolicy": "FORBID"}]);
    let (s, v) = req(&h.router, "POST", "/v1/jobs", Some(j)).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        v["schedules"][0]["nextRunAt"],
        "2030-01-01T00:01:00.000+0000"
    );
    assert_eq!(h.sim.launches(), 0);

    h.clock.set("2030-01-01T00:01:02Z");
    let t = running(&h.sim, "tick_", 1).await;
    let runs = wait_http(&h.router, "/v1/jobs/tick/runs", "one run", |v| {
        v.as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    assert_eq!(runs[0]["createdAt"], "2030-01-01T00:01:02.000+0000");
    let (_, v) = req(&h.router, "GET", "/v1/jobs/tick", None).await;
    assert_eq!(
        v["schedules"][0]["nextRunAt"],
        "2030-01-01T00:02:00.000+0000"
    );

    // Next minute while the run is active: FORBID skips the fire.
    h.clock.set("2030-01-01T00:02:01Z");
    wait_http(&h.router, "/metrics", "a skip", |v| {
        v["counters"]["scheduleSkips"] == 1
    })
    .await;
    assert_eq!(h.sim.launches(), 1);
    let (_, v) = req(&h.router, "GET", "/v1/jobs/tick/runs", None).await;
    assert_eq!(v.as_array().unwrap().len(), 1);

    // Once it finished, the next fire starts a new run. Missed fires are not caught up.
    h.sim
        .finish_task(&t[0].info.task_id.0, TaskState::Finished, "ok");
    wait_http(&h.router, "/v1/jobs/tick/runs", "no run", |v| {
        v == &json!([])
    })
    .await;
    h.clock.set("2030-01-01T00:10:00Z");
    wait_for("second launch", || h.sim.launches() == 2).await;
    let (_, v) = req(&h.router, "GET", "/v1/jobs/tick?embed=history", None).await;
    assert_eq!(v["history"]["successCount"], 1);
    assert_eq!(
        v["schedules"][0]["nextRunAt"],
        "2030-01-01T00:11:00.000+0000"
    );

    // A disabled schedule does not fire.
    req(
        &h.router,
        "PUT",
        "/v1/jobs/tick/schedules/every-minute",
        Some(json!({"cron": "* * * * *", "enabled": false})),
    )
    .await;
    h.clock.set("2030-01-01T00:20:00Z");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(h.sim.launches(), 2);
}

#[tokio::test]
async fn a_scheduled_run_that_cannot_start_misses_its_starting_deadline() {
    let h = harness(0, SimOptions::default()).await;
    let mut j = job("stuck", "NEVER");
    j["schedules"] = json!([{"id": "s", "cron": "* * * * *", "startingDeadlineSeconds": 60}]);
    req(&h.router, "POST", "/v1/jobs", Some(j)).await;
    h.clock.set("2030-01-01T00:01:00Z");
    wait_http(&h.router, "/v1/jobs/stuck/runs", "a run", |v| {
        v.as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    // Deadline: fire time + 60 s. Disable the schedule so that no other run starts.
    req(
        &h.router,
        "PUT",
        "/v1/jobs/stuck/schedules/s",
        Some(json!({"cron": "* * * * *", "enabled": false, "startingDeadlineSeconds": 60})),
    )
    .await;
    h.clock.set("2030-01-01T00:02:01Z");
    let v = wait_http(&h.router, "/v1/jobs/stuck?embed=history", "deadline", |v| {
        v["history"]["failureCount"] == 1
    })
    .await;
    assert_eq!(v["history"]["failedFinishedRuns"][0]["tasks"], json!([]));
}

#[test]
fn jobs_schedules_runs_and_history_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        fsync: false,
        ..Options::default()
    };
    let sim = SimMaster::new(SimOptions::default());
    sim.add_simple_agent("agent-0", 4.0, 4096.0);
    let clock = TestClock::at("2030-01-01T00:00:30Z");
    let (rid_active, fid) = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(EmbeddedStore::open_with(dir.path(), opts.clone()).unwrap());
        let sim = sim.clone();
        let clock = clock.clone();
        let out = rt.block_on(async move {
            sim.spawn_ticker(Duration::from_millis(20));
            let h = start(sim, store, clock);
            let mut j = job("keep", "NEVER");
            j["schedules"] =
                json!([{"id": "daily", "cron": "0 3 * * *", "timezone": "America/New_York"}]);
            let (s, _) = req(&h.router, "POST", "/v1/jobs", Some(j)).await;
            assert_eq!(s, 201);
            // One finished run for the history, one still running.
            let (_, run) = req(&h.router, "POST", "/v1/jobs/keep/runs", None).await;
            let rid = run["id"].as_str().unwrap().to_string();
            let t = running(&h.sim, &format!("keep_{rid}."), 1).await;
            h.sim
                .finish_task(&t[0].info.task_id.0, TaskState::Finished, "ok");
            wait_http(&h.router, "/v1/jobs/keep?embed=history", "success", |v| {
                v["history"]["successCount"] == 1
            })
            .await;
            let (_, run) = req(&h.router, "POST", "/v1/jobs/keep/runs", None).await;
            let rid = run["id"].as_str().unwrap().to_string();
            running(&h.sim, &format!("keep_{rid}."), 1).await;
            wait_http(
                &h.router,
                &format!("/v1/jobs/keep/runs/{rid}"),
                "active",
                |v| v["status"] == "ACTIVE",
            )
            .await;
            (rid, h.m.framework_id().unwrap())
        });
        // "kill -9": the runtime and everything on it vanish.
        rt.shutdown_background();
        out
    };
    sim.disconnect();
    let launches = sim.launches();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open_with(dir.path(), opts).unwrap());
        let h = start(sim.clone(), store, clock);
        assert_eq!(h.m.framework_id().as_deref(), Some(fid.as_str()));
        let (s, v) = req(
            &h.router,
            "GET",
            "/v1/jobs/keep?embed=history&embed=activeRuns",
            None,
        )
        .await;
        assert_eq!(s, 200);
        assert_eq!(v["run"]["cmd"], "sleep 1");
        assert_eq!(v["schedules"][0]["id"], "daily");
        assert_eq!(v["schedules"][0]["timezone"], "America/New_York");
        // 03:00 EST = 08:00 UTC.
        assert_eq!(
            v["schedules"][0]["nextRunAt"],
            "2030-01-01T08:00:00.000+0000"
        );
        assert_eq!(v["history"]["successCount"], 1);
        assert_eq!(v["activeRuns"][0]["id"], rid_active.as_str());
        // The running task is reconciled and still tracked, not relaunched.
        let t = sim_tasks(&h.sim, &format!("keep_{rid_active}."));
        assert_eq!(t.len(), 1);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            sim.launches(),
            launches,
            "no task relaunched after recovery"
        );
        h.sim
            .finish_task(&t[0].info.task_id.0, TaskState::Finished, "ok");
        wait_http(
            &h.router,
            "/v1/jobs/keep?embed=history",
            "2 successes",
            |v| v["history"]["successCount"] == 2,
        )
        .await;
        assert_eq!(sim.subscriptions(), 2);
    });
}
