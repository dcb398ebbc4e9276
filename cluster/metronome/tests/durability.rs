//! Nothing acts on a change that is not durable: a commit the store refuses launches nothing,
//! acknowledges nothing, leaves no trace in memory, and the API says so with a 503. Ids that
//! the store or an agent cannot use are refused with a 4xx.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use dcos_marathon::sim::{SimMaster, SimOptions};
use dcos_store::{EmbeddedStore, FaultyStore, Store};
use dcos_types::TaskState;
use serde_json::{json, Value};

/// A Metronome over `agents` simulated agents and a store that refuses writes on demand.
fn faulty_harness(agents: usize) -> (H, Arc<FaultyStore>) {
    let sim = SimMaster::new(SimOptions::default());
    for i in 0..agents {
        sim.add_simple_agent(&format!("agent-{i}"), 4.0, 4096.0);
    }
    sim.spawn_ticker(Duration::from_millis(20));
    let inner: Arc<dyn Store> = Arc::new(EmbeddedStore::in_memory());
    let faulty = FaultyStore::new(inner);
    let store: Arc<dyn Store> = faulty.clone();
    (
        start(sim, store, TestClock::at("2030-01-01T00:00:30Z")),
        faulty,
    )
}

fn job(id: &str) -> Value {
    json!({"id": id, "run": {"cmd": "sleep 1", "cpus": 0.5, "mem": 64}})
}

/// The 503 of a refused write: Metronome's error shape, naming the cause.
fn assert_refused(status: axum::http::StatusCode, body: &Value) {
    assert_eq!(status, 503, "{body}");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("the cluster store refused the write: ")
            && msg.contains("No space left on device")
            && msg.ends_with("; nothing was changed"),
        "{body}"
    );
}

#[tokio::test]
async fn refused_api_writes_answer_503_and_leave_no_trace() {
    let (h, faulty) = faulty_harness(0);
    assert!(h.m.store_writable().is_ok());
    let (s, _) = req(&h.router, "POST", "/v1/jobs", Some(job("kept"))).await;
    assert_eq!(s, 201);
    // A run that waits (no agent): stopping it would move it to the history.
    let (s, run) = req(&h.router, "POST", "/v1/jobs/kept/runs", None).await;
    assert_eq!(s, 201);
    let rid = run["id"].as_str().unwrap().to_string();

    faulty.set_failing(true);
    let err = h.m.store_writable().unwrap_err();
    assert!(err.contains("No space left on device"), "{err}");

    let (s, v) = req(&h.router, "POST", "/v1/jobs", Some(job("lost"))).await;
    assert_refused(s, &v);
    let mut changed = job("kept");
    changed["description"] = json!("changed");
    let (s, v) = req(&h.router, "PUT", "/v1/jobs/kept", Some(changed)).await;
    assert_refused(s, &v);
    let (s, v) = req(
        &h.router,
        "POST",
        "/v1/jobs/kept/schedules",
        Some(json!({"id": "nightly", "cron": "0 3 * * *"})),
    )
    .await;
    assert_refused(s, &v);
    let (s, v) = req(&h.router, "POST", "/v1/jobs/kept/runs", None).await;
    assert_refused(s, &v);
    let (s, v) = req(
        &h.router,
        "POST",
        &format!("/v1/jobs/kept/runs/{rid}/actions/stop"),
        None,
    )
    .await;
    assert_refused(s, &v);
    let (s, v) = req(
        &h.router,
        "DELETE",
        "/v1/jobs/kept?stopCurrentJobRuns=true",
        None,
    )
    .await;
    assert_refused(s, &v);
    let (s, v) = req(
        &h.router,
        "POST",
        "/v0/scheduled-jobs",
        Some(json!({"id": "legacy", "run": {"cmd": "x"}, "schedules": []})),
    )
    .await;
    assert_refused(s, &v);

    // No trace of any of it.
    let (_, jobs) = req(
        &h.router,
        "GET",
        "/v1/jobs?embed=activeRuns&embed=history",
        None,
    )
    .await;
    let jobs = jobs.as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0]["id"], "kept");
    assert_eq!(jobs[0]["description"], Value::Null);
    assert_eq!(jobs[0]["schedules"], json!([]));
    assert_eq!(jobs[0]["history"]["failureCount"], 0);
    let runs = jobs[0]["activeRuns"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["id"], rid.as_str());
    assert_eq!(runs[0]["status"], "STARTING");
    let (s, _) = req(&h.router, "GET", "/v1/jobs/lost", None).await;
    assert_eq!(s, 404);
    let (_, m) = req(&h.router, "GET", "/v1/metrics", None).await;
    assert_eq!(m["counters"]["runsStarted"], 1, "{m}");
    assert_eq!(m["counters"]["runsFailed"], 0, "{m}");
    assert_eq!(m["gauges"]["queuedRuns"], 1, "{m}");

    // The store accepts writes again: health waits for a write that succeeds, then all works.
    faulty.set_failing(false);
    assert!(h.m.store_writable().is_err(), "the last commit failed");
    h.sim.add_simple_agent("agent-0", 4.0, 4096.0);
    let (s, run2) = req(&h.router, "POST", "/v1/jobs/kept/runs", None).await;
    assert_eq!(s, 201, "{run2}");
    assert!(h.m.store_writable().is_ok());
    wait_for("two tasks running", || {
        let t = sim_tasks(&h.sim, "kept_");
        t.len() == 2 && t.iter().all(|t| t.state == TaskState::Running)
    })
    .await;
    for t in sim_tasks(&h.sim, "kept_") {
        h.sim
            .finish_task(&t.info.task_id.0, TaskState::Finished, "done");
    }
    wait_http(
        &h.router,
        "/v1/jobs/kept?embed=history",
        "2 successes",
        |v| v["history"]["successCount"] == 2,
    )
    .await;
}

#[tokio::test]
async fn nothing_is_launched_while_the_store_refuses_the_launch() {
    let (h, faulty) = faulty_harness(0);
    req(&h.router, "POST", "/v1/jobs", Some(job("wait"))).await;
    let (s, run) = req(&h.router, "POST", "/v1/jobs/wait/runs", None).await;
    assert_eq!(s, 201);
    let rid = run["id"].as_str().unwrap().to_string();
    faulty.set_failing(true);
    h.sim.add_simple_agent("agent-0", 4.0, 4096.0);
    // Two refused launch rounds: the first one's master calls went out before the second.
    wait_for("two refused launch commits", || faulty.refused() >= 2).await;
    assert_eq!(h.sim.launches(), 0, "a launch went out without its record");
    assert!(h.sim.tasks().is_empty());
    let (_, v) = req(&h.router, "GET", &format!("/v1/jobs/wait/runs/{rid}"), None).await;
    assert_eq!(v["status"], "STARTING", "{v}");
    assert_eq!(v["tasks"], json!([]));
    let (_, m) = req(&h.router, "GET", "/v1/metrics", None).await;
    assert_eq!(m["counters"]["tasksLaunched"], 0, "{m}");
    assert!(h.m.store_writable().is_err());

    // The store recovers: the run launches and succeeds; the stored run names its task.
    faulty.set_failing(false);
    let v = wait_http(
        &h.router,
        &format!("/v1/jobs/wait/runs/{rid}"),
        "ACTIVE",
        |v| v["status"] == "ACTIVE" && v["tasks"][0]["status"] == "TASK_RUNNING",
    )
    .await;
    let tid = v["tasks"][0]["id"].as_str().unwrap().to_string();
    let stored = h
        .store
        .get(&dcos_metronome::scheduler::run_key("wait", &rid))
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&stored.value).contains(&tid));
    assert_eq!(h.sim.launches(), 1);
    h.sim.finish_task(&tid, TaskState::Finished, "done");
    wait_http(&h.router, "/v1/jobs/wait?embed=history", "success", |v| {
        v["history"]["successCount"] == 1
    })
    .await;
    assert!(h.m.store_writable().is_ok());
}

#[tokio::test]
async fn an_update_whose_effect_is_refused_is_not_acknowledged() {
    let (h, faulty) = faulty_harness(1);
    req(&h.router, "POST", "/v1/jobs", Some(job("acked"))).await;
    let (_, run) = req(&h.router, "POST", "/v1/jobs/acked/runs", None).await;
    let rid = run["id"].as_str().unwrap().to_string();
    let v = wait_http(
        &h.router,
        &format!("/v1/jobs/acked/runs/{rid}"),
        "running",
        |v| v["tasks"][0]["status"] == "TASK_RUNNING",
    )
    .await;
    let tid = v["tasks"][0]["id"].as_str().unwrap().to_string();
    wait_for("TASK_RUNNING acknowledged", || h.sim.acks() >= 1).await;
    let acks = h.sim.acks();
    faulty.set_failing(true);
    h.sim.finish_task(&tid, TaskState::Finished, "done");
    wait_for("the finish refused", || faulty.refused() >= 1).await;
    // Later rounds (ticks) have run since.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        h.sim.acks(),
        acks,
        "an update was acknowledged, its effect not stored"
    );
    let (s, v) = req(
        &h.router,
        "GET",
        &format!("/v1/jobs/acked/runs/{rid}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "the run must stay as stored: {v}");
    assert_eq!(v["status"], "ACTIVE");
    let (_, v) = req(&h.router, "GET", "/v1/jobs/acked?embed=history", None).await;
    assert_eq!(v["history"]["successCount"], 0, "{v}");
}

#[tokio::test]
async fn nothing_is_launched_until_the_framework_id_is_stored() {
    // A first Metronome creates a job and a waiting run; then the framework id is lost from
    // the store (as if its write had been refused).
    let inner: Arc<dyn Store> = Arc::new(EmbeddedStore::in_memory());
    let sim1 = SimMaster::new(SimOptions::default());
    let first = start(sim1, inner.clone(), TestClock::at("2030-01-01T00:00:30Z"));
    req(&first.router, "POST", "/v1/jobs", Some(job("fw"))).await;
    let (s, _) = req(&first.router, "POST", "/v1/jobs/fw/runs", None).await;
    assert_eq!(s, 201);
    inner
        .delete(
            dcos_metronome::scheduler::P_FRAMEWORK,
            dcos_store::Precondition::Any,
        )
        .unwrap();

    let faulty = FaultyStore::new(inner.clone());
    faulty.set_failing(true);
    let sim = SimMaster::new(SimOptions::default());
    sim.add_simple_agent("agent-0", 4.0, 4096.0);
    sim.spawn_ticker(Duration::from_millis(20));
    let store: Arc<dyn Store> = faulty.clone();
    let h = start(sim, store, TestClock::at("2030-01-01T00:00:30Z"));
    wait_for("refused rounds", || faulty.refused() >= 3).await;
    assert_eq!(
        h.sim.launches(),
        0,
        "launched under a framework id not stored"
    );

    faulty.set_failing(false);
    wait_for("the launch", || h.sim.launches() == 1).await;
    let stored: String = inner
        .get(dcos_metronome::scheduler::P_FRAMEWORK)
        .unwrap()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(Some(stored), h.m.framework_id());
}

#[tokio::test]
async fn ids_have_one_limit_and_key_errors_are_4xx() {
    let h = harness(1, SimOptions::default()).await;
    let max = dcos_types::ids::MAX_SERVICE_ID_LEN;
    for len in [max + 1, 300, 4000, 8000] {
        let id = "a".repeat(len);
        let (s, v) = req(&h.router, "POST", "/v1/jobs", Some(job(&id))).await;
        assert_eq!(s, 422, "{len}: {v}");
        assert_eq!(v["message"], "Object is not valid");
        assert_eq!(v["details"][0]["path"], "/id", "{v}");
        let msg = v["details"][0]["errors"][0].as_str().unwrap();
        assert!(msg.contains("too long"), "{msg}");
        // v0 and PUT share the validation.
        let (s, v) = req(&h.router, "POST", "/v0/scheduled-jobs", Some(job(&id))).await;
        assert_eq!(s, 422, "{len}: {v}");
        let (s, v) = req(&h.router, "PUT", &format!("/v1/jobs/{id}"), Some(job(&id))).await;
        assert_eq!(s, 422, "{len}: {v}");
        for (m, path) in [
            ("GET", format!("/v1/jobs/{id}")),
            ("DELETE", format!("/v1/jobs/{id}")),
            ("POST", format!("/v1/jobs/{id}/runs")),
            ("GET", format!("/v1/jobs/{id}/runs/{id}")),
            ("GET", format!("/v1/jobs/{id}/schedules/{id}")),
        ] {
            let (s, v) = req(&h.router, m, &path, None).await;
            assert_eq!(s, 404, "{m} {len}: {v}");
        }
    }

    // The longest id is accepted, and its task can be checkpointed by an agent.
    let id = "b".repeat(max);
    let (s, v) = req(&h.router, "POST", "/v1/jobs", Some(job(&id))).await;
    assert_eq!(s, 201, "{v}");
    let (s, _) = req(&h.router, "POST", &format!("/v1/jobs/{id}/runs"), None).await;
    assert_eq!(s, 201);
    wait_for("the launch", || h.sim.launches() == 1).await;
    let task = &h.sim.tasks()[0].info.task_id.0;
    assert!(
        format!("{task}.json").len() <= dcos_types::ids::MAX_FILE_NAME,
        "{task}"
    );

    // Weird ids in paths and bodies: a 4xx, never a 5xx.
    req(&h.router, "POST", "/v1/jobs", Some(job("w"))).await;
    let weird = [
        "%2e%2e",
        "..",
        "a%2Fb",
        "%2F",
        "%00",
        "a%0Ab",
        "%E2%98%83",
        "a%20b",
        "%FF",
        "-",
    ];
    for w in weird {
        for (m, path, body) in [
            ("GET", format!("/v1/jobs/{w}"), None),
            (
                "PUT",
                format!("/v1/jobs/{w}"),
                Some(json!({"run": {"cmd": "x"}})),
            ),
            ("DELETE", format!("/v1/jobs/{w}"), None),
            ("POST", format!("/v1/jobs/{w}/runs"), None),
            ("GET", format!("/v1/jobs/w/runs/{w}"), None),
            ("POST", format!("/v1/jobs/w/runs/{w}/actions/stop"), None),
            ("GET", format!("/v1/jobs/w/schedules/{w}"), None),
            (
                "PUT",
                format!("/v1/jobs/w/schedules/{w}"),
                Some(json!({"cron": "* * * * *"})),
            ),
            ("DELETE", format!("/v1/jobs/w/schedules/{w}"), None),
            ("PUT", format!("/v0/scheduled-jobs/{w}"), Some(job("w"))),
        ] {
            let (s, v) = req(&h.router, m, &path, body).await;
            assert!(s.is_client_error(), "{m} {path}: {s} {v}");
        }
    }
    for bad in ["..", "a/b", "a\u{0}b", ""] {
        let (s, v) = req(
            &h.router,
            "POST",
            "/v1/jobs/w/schedules",
            Some(json!({"id": bad, "cron": "* * * * *"})),
        )
        .await;
        assert!(s.is_client_error(), "schedule id {bad:?}: {s} {v}");
    }
}

#[tokio::test]
async fn a_schedule_fire_refused_by_the_store_fires_once_it_accepts() {
    let (h, faulty) = faulty_harness(0);
    let mut j = job("cron");
    j["schedules"] = json!([{"id": "every-minute", "cron": "* * * * *"}]);
    let (s, v) = req(&h.router, "POST", "/v1/jobs", Some(j)).await;
    assert_eq!(s, 201, "{v}");
    faulty.set_failing(true);
    // Due at 00:01:00.
    h.clock.set("2030-01-01T00:01:05Z");
    wait_for("the fire refused", || faulty.refused() >= 2).await;
    let (_, runs) = req(&h.router, "GET", "/v1/jobs/cron/runs", None).await;
    assert_eq!(runs, json!([]));
    let (_, m) = req(&h.router, "GET", "/v1/metrics", None).await;
    assert_eq!(m["counters"]["scheduleFires"], 0, "{m}");
    faulty.set_failing(false);
    wait_http(&h.router, "/v1/jobs/cron/runs", "the fire", |v| {
        v.as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    let (_, m) = req(&h.router, "GET", "/v1/metrics", None).await;
    assert_eq!(m["counters"]["scheduleFires"], 1, "{m}");
}
