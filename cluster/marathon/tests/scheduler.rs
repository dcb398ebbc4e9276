//! Scheduler behaviour against the simulated master: deploy, scale, rolling upgrades,
//! constraints, backoff, health, unreachable agents, recovery from the store.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use dcos_marathon::sim::{SimMaster, SimOptions};
use dcos_store::{EmbeddedStore, Options, Store};
use dcos_types::{HealthCheckKind, Resources, TaskState};
use serde_json::{json, Value};

fn running(v: &Value) -> i64 {
    v["app"]["tasksRunning"].as_i64().unwrap_or(-1)
}

#[tokio::test]
async fn deploy_launches_tasks_with_marathon_env() {
    let h = harness(2, SimOptions::default()).await;
    let (s, hd, body) = req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(
            json!({"id":"/prod/web","cmd":"sleep 1000","cpus":0.5,"mem":64,"instances":3,
            "labels":{"tier":"web","HAPROXY_GROUP":"external"},"env":{"FOO":"bar"},
            "portDefinitions":[{"port":0,"name":"http"},{"port":0}],
            "healthChecks":[{"protocol":"MESOS_HTTP","portIndex":1,"path":"/health"}]}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    assert!(hd.get("Marathon-Deployment-Id").is_some());
    assert_eq!(body["tasksRunning"], 0);
    assert!(body["deployments"][0]["id"].is_string());
    assert_eq!(body["id"], "/prod/web");
    let v = wait_http(&h.router, "/v2/apps/prod/web", "3 running", |v| {
        running(v) == 3
    })
    .await;
    assert_eq!(v["app"]["tasks"].as_array().unwrap().len(), 3);
    assert_eq!(v["app"]["tasksHealthy"], 3);
    deployments_done(&h.router).await;

    let tasks = h.sim.tasks();
    assert_eq!(tasks.len(), 3);
    let t = &tasks[0].info;
    assert!(t.task_id.0.starts_with("prod_web."));
    assert_eq!(t.name, "web.prod");
    let env = &t.command.environment;
    assert_eq!(env["MARATHON_APP_ID"], "/prod/web");
    assert_eq!(env["FOO"], "bar");
    assert_eq!(env["MARATHON_APP_LABEL_TIER"], "web");
    assert!(env["MARATHON_APP_LABELS"].contains("TIER"));
    let ports: Vec<&str> = env["PORTS"].split(',').collect();
    assert_eq!(ports.len(), 2);
    assert_eq!(env["PORT0"], ports[0]);
    assert_eq!(env["PORT"], ports[0]);
    assert_eq!(env["PORT_HTTP"], ports[0]);
    assert_eq!(env["HOST"], format!("{}.example", t.agent_id.0));
    assert!(env["MARATHON_APP_VERSION"].ends_with('Z'));
    // Health check port index 1 resolved to the second host port.
    match &t.health_check.as_ref().unwrap().kind {
        HealthCheckKind::Http { port, path, .. } => {
            assert_eq!(port.to_string(), ports[1]);
            assert_eq!(path, "/health");
        }
        k => panic!("{k:?}"),
    }
    // Service ports were assigned from the local port range.
    let sp = v["app"]["portDefinitions"][0]["port"].as_i64().unwrap();
    assert!((10000..=20000).contains(&sp));
    // Every status update was acknowledged; offers are suppressed when nothing waits.
    wait_for("acks", || h.sim.acks() >= 3).await;
    wait_for("suppressed", || h.sim.suppressed()).await;
}

#[tokio::test]
async fn scale_does_not_restart_and_keeps_versions() {
    let h = harness(2, SimOptions::default()).await;
    req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(json!({"id":"s","cmd":"sleep 1","cpus":0.1,"mem":16,"instances":2})),
    )
    .await;
    wait_http(&h.router, "/v2/apps/s", "2 running", |v| running(v) == 2).await;
    deployments_done(&h.router).await;
    let before: Vec<String> = h
        .sim
        .tasks()
        .iter()
        .map(|t| t.info.task_id.0.clone())
        .collect();
    let (s, hd, body) = req(
        &h.router,
        "PUT",
        "/v2/apps/s",
        Some(json!({"instances": 5})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        hd["Marathon-Deployment-Id"].to_str().unwrap(),
        body["deploymentId"]
    );
    assert!(body["version"].is_string());
    wait_http(&h.router, "/v2/apps/s", "5 running", |v| running(v) == 5).await;
    let after: Vec<String> = h
        .sim
        .tasks()
        .iter()
        .map(|t| t.info.task_id.0.clone())
        .collect();
    assert!(
        before.iter().all(|t| after.contains(t)),
        "scale-up must not restart tasks"
    );
    // scale down
    let (s, _, _) = req(
        &h.router,
        "PATCH",
        "/v2/apps/s",
        Some(json!({"instances": 1})),
    )
    .await;
    assert_eq!(s, 200);
    let v = wait_http(&h.router, "/v2/apps/s", "1 running", |v| running(v) == 1).await;
    let left = h.sim.tasks()[0].info.task_id.0.clone();
    assert!(before.contains(&left), "YOUNGEST_FIRST keeps an old task");
    let (_, _, versions) = req(&h.router, "GET", "/v2/apps/s/versions", None).await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 3);
    let vinfo = &v["app"]["versionInfo"];
    assert_ne!(vinfo["lastScalingAt"], vinfo["lastConfigChangeAt"]);
    let first = versions["versions"][2].as_str().unwrap().to_string();
    let (s, _, old) = req(
        &h.router,
        "GET",
        &format!("/v2/apps/s/versions/{first}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(old["instances"], 2);
    // Rollback to the first version by PUT {"version": ...}.
    let (s, _, _) = req(
        &h.router,
        "PUT",
        "/v2/apps/s?force=true",
        Some(json!({"version": first})),
    )
    .await;
    assert_eq!(s, 200);
    wait_http(&h.router, "/v2/apps/s", "2 running", |v| running(v) == 2).await;
}

#[tokio::test]
async fn rolling_upgrade_waits_for_health() {
    let h = harness(3, SimOptions::default()).await;
    req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(
            json!({"id":"u","cmd":"v1","cpus":0.1,"mem":16,"instances":2,
        "upgradeStrategy":{"minimumHealthCapacity":1,"maximumOverCapacity":0},
        "healthChecks":[{"protocol":"COMMAND","command":{"value":"true"}}]}),
        ),
    )
    .await;
    wait_http(&h.router, "/v2/apps/u", "2 healthy", |v| {
        v["app"]["tasksHealthy"] == 2
    })
    .await;
    deployments_done(&h.router).await;
    let old: Vec<String> = h
        .sim
        .tasks()
        .iter()
        .map(|t| t.info.task_id.0.clone())
        .collect();
    // New tasks come up unhealthy.
    h.sim.set_options(SimOptions {
        auto_run: true,
        healthy: false,
        light: false,
    });
    let (s, _, _) = req(&h.router, "PUT", "/v2/apps/u", Some(json!({"cmd":"v2"}))).await;
    assert_eq!(s, 200);
    // minHealthy = 2 = maxCapacity → one extra instance; no old task may die yet.
    wait_for("one new task", || h.sim.tasks().len() == 3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.sim.tasks().len(), 3);
    assert!(
        h.sim.kills().is_empty(),
        "old tasks killed before a new one was healthy"
    );
    let (_, _, deps) = req(&h.router, "GET", "/v2/deployments", None).await;
    assert_eq!(deps[0]["currentActions"][0]["action"], "RestartApplication");
    assert_eq!(deps[0]["affectedApps"][0], "/u");
    // The new one turns healthy → exactly one old one is killed, another new one starts.
    let new1 = h
        .sim
        .tasks()
        .into_iter()
        .find(|t| !old.contains(&t.info.task_id.0))
        .unwrap();
    assert_eq!(new1.info.command.value.as_deref(), Some("v2"));
    h.sim.set_health(&new1.info.task_id.0, true);
    wait_for("one old killed", || h.sim.kills().len() == 1).await;
    assert!(old.contains(&h.sim.kills()[0].0));
    wait_for("second new task", || {
        h.sim
            .tasks()
            .iter()
            .filter(|t| !old.contains(&t.info.task_id.0))
            .count()
            == 2
    })
    .await;
    let new2 = h
        .sim
        .tasks()
        .into_iter()
        .find(|t| !old.contains(&t.info.task_id.0) && t.info.task_id != new1.info.task_id)
        .unwrap();
    h.sim.set_health(&new2.info.task_id.0, true);
    wait_for("both old killed", || h.sim.kills().len() == 2).await;
    deployments_done(&h.router).await;
    let v = wait_http(&h.router, "/v2/apps/u", "2 healthy", |v| {
        v["app"]["tasksHealthy"] == 2
    })
    .await;
    assert_eq!(v["app"]["cmd"], "v2");
}

#[tokio::test]
async fn constraints_and_impossible_requests_show_in_queue() {
    let h = harness(3, SimOptions::default()).await;
    req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(
            json!({"id":"uniq","cmd":"x","cpus":0.1,"mem":16,"instances":4,
        "constraints":[["hostname","UNIQUE"]]}),
        ),
    )
    .await;
    wait_http(&h.router, "/v2/apps/uniq", "3 running", |v| running(v) == 3).await;
    let hosts: std::collections::HashSet<String> = h
        .sim
        .tasks()
        .iter()
        .map(|t| t.info.agent_id.0.clone())
        .collect();
    assert_eq!(hosts.len(), 3);
    let q = wait_http(&h.router, "/v2/queue", "queue reason", |v| {
        v["queue"][0]["processedOffersSummary"]["rejectSummaryLastOffers"]
            .as_array()
            .is_some_and(|a| {
                a.iter().any(|r| {
                    r["reason"] == "UnfulfilledConstraint" && r["declined"].as_i64() > Some(0)
                })
            })
    })
    .await;
    assert_eq!(q["queue"][0]["count"], 1);
    assert_eq!(q["queue"][0]["app"]["id"], "/uniq");
    assert!(q["queue"][0]["delay"]["overdue"].is_boolean());

    req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(json!({"id":"huge","cmd":"x","cpus":64})),
    )
    .await;
    let q = wait_http(&h.router, "/v2/queue", "cpus reason", |v| {
        v["queue"].as_array().is_some_and(|a| {
            a.iter().any(|i| {
                i["app"]["id"] == "/huge"
                    && i["processedOffersSummary"]["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("InsufficientCpus"))
            })
        })
    })
    .await;
    assert!(q.to_string().contains("needs 64 cpus"));

    req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(json!({"id":"pub","cmd":"x","cpus":0.1,"acceptedResourceRoles":["slave_public"]})),
    )
    .await;
    wait_http(&h.router, "/v2/queue", "role reason", |v| {
        v["queue"].as_array().is_some_and(|a| {
            a.iter().any(|i| {
                i["app"]["id"] == "/pub"
                    && i["processedOffersSummary"]["reason"]
                        .as_str()
                        .is_some_and(|r| r.contains("UnfulfilledRole"))
            })
        })
    })
    .await;
    // A public agent joins: the app lands there.
    let mut r = BTreeMap::new();
    r.insert(
        "slave_public".to_string(),
        Resources::new(2.0, 1024.0, 100.0).with_ports([(80, 80), (443, 443)]),
    );
    h.sim
        .add_agent("public-0", "public-0.example", r, BTreeMap::new());
    wait_http(&h.router, "/v2/apps/pub", "public running", |v| {
        running(v) == 1
    })
    .await;
    let t = h
        .sim
        .tasks()
        .into_iter()
        .find(|t| t.info.task_id.0.starts_with("pub."))
        .unwrap();
    assert_eq!(t.info.role, "slave_public");
    assert_eq!(t.info.agent_id.0, "public-0");
}

#[tokio::test]
async fn failures_back_off_and_are_reported() {
    let h = harness(1, SimOptions::default()).await;
    req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(json!({"id":"crash","cmd":"false","cpus":0.1,"mem":16,
        "backoffSeconds":0.3,"backoffFactor":2,"maxLaunchDelaySeconds":10})),
    )
    .await;
    wait_http(&h.router, "/v2/apps/crash", "running", |v| running(v) == 1).await;
    let first = h.sim.tasks()[0].info.task_id.0.clone();
    h.sim.finish_task(&first, TaskState::Failed, "exit code 1");
    // The failure is visible and the replacement waits out the backoff.
    let v = wait_http(&h.router, "/v2/apps/crash", "lastTaskFailure", |v| {
        v["app"]["lastTaskFailure"].is_object()
    })
    .await;
    assert_eq!(v["app"]["lastTaskFailure"]["state"], "TASK_FAILED");
    assert_eq!(v["app"]["lastTaskFailure"]["message"], "exit code 1");
    assert_eq!(v["app"]["lastTaskFailure"]["taskId"], first.as_str());
    let (_, _, q) = req(&h.router, "GET", "/v2/queue", None).await;
    assert_eq!(q["queue"][0]["delay"]["overdue"], false, "{q}");
    wait_http(&h.router, "/v2/apps/crash", "replacement", |v| {
        running(v) == 1
    })
    .await;
    let second = h.sim.tasks()[0].info.task_id.0.clone();
    assert_ne!(first, second);
    // TASK_FINISHED counts as a failure too; TASK_KILLED by a user does not.
    h.sim
        .finish_task(&second, TaskState::Finished, "exit code 0");
    wait_http(&h.router, "/v2/apps/crash", "replacement 2", |v| {
        running(v) == 1 && v["app"]["lastTaskFailure"]["state"] == "TASK_FINISHED"
    })
    .await;
}

#[tokio::test]
async fn unhealthy_tasks_are_replaced() {
    let h = harness(1, SimOptions::default()).await;
    req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(
            json!({"id":"hc","cmd":"x","cpus":0.1,"mem":16,"backoffSeconds":0.01,
        "healthChecks":[{"protocol":"TCP","portIndex":0,"maxConsecutiveFailures":2}]}),
        ),
    )
    .await;
    wait_http(&h.router, "/v2/apps/hc", "healthy", |v| {
        v["app"]["tasksHealthy"] == 1
    })
    .await;
    let t = h.sim.tasks()[0].info.task_id.0.clone();
    h.sim.set_health(&t, false);
    let v = wait_http(&h.router, "/v2/apps/hc", "unhealthy", |v| {
        v["app"]["tasksUnhealthy"] == 1
    })
    .await;
    assert_eq!(
        v["app"]["tasks"][0]["healthCheckResults"][0]["alive"],
        false
    );
    // The agent kills it after maxConsecutiveFailures; Marathon replaces it.
    h.sim
        .finish_task(&t, TaskState::Killed, "health check failed");
    wait_http(&h.router, "/v2/apps/hc", "replaced", |v| {
        v["app"]["tasksHealthy"] == 1
    })
    .await;
    assert_ne!(h.sim.tasks()[0].info.task_id.0, t);
}

#[tokio::test]
async fn unreachable_agents_get_replacements() {
    let h = harness(2, SimOptions::default()).await;
    req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(json!({"id":"ur","cmd":"x","cpus":3,"mem":16,"instances":1})),
    )
    .await;
    wait_http(&h.router, "/v2/apps/ur", "running", |v| running(v) == 1).await;
    let t = h.sim.tasks()[0].clone();
    h.sim.set_unreachable(&t.info.agent_id.0);
    // inactiveAfterSeconds 0: a replacement starts on the other agent; expunge 0 kills the original.
    wait_for("replacement", || {
        h.sim
            .tasks()
            .iter()
            .any(|x| x.info.agent_id != t.info.agent_id)
    })
    .await;
    wait_for("expunge kill", || h.sim.kills().contains(&t.info.task_id)).await;
    let v = wait_http(&h.router, "/v2/apps/ur", "one task", |v| {
        v["app"]["tasks"].as_array().map(|a| a.len()) == Some(1)
    })
    .await;
    assert_ne!(v["app"]["tasks"][0]["id"], t.info.task_id.0.as_str());

    // Agent removal: tasks are gone and replaced.
    let now = h
        .sim
        .tasks()
        .into_iter()
        .find(|x| x.info.agent_id != t.info.agent_id)
        .unwrap();
    h.sim.add_simple_agent("agent-9", 4.0, 4096.0);
    h.sim.remove_agent(&now.info.agent_id.0);
    wait_for("moved to agent-9", || {
        h.sim.tasks().iter().any(|x| x.info.agent_id.0 == "agent-9")
    })
    .await;
}

#[tokio::test]
async fn delete_kills_everything() {
    let h = harness(1, SimOptions::default()).await;
    req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(
            json!({"id":"gone","cmd":"x","cpus":0.1,"mem":16,"instances":3,
        "taskKillGracePeriodSeconds":7}),
        ),
    )
    .await;
    wait_http(&h.router, "/v2/apps/gone", "running", |v| running(v) == 3).await;
    let (s, _, body) = req(&h.router, "DELETE", "/v2/apps/gone", None).await;
    assert_eq!(s, 200);
    assert!(body["deploymentId"].is_string());
    let (s, _, body) = req(&h.router, "GET", "/v2/apps/gone", None).await;
    assert_eq!(s, 404);
    assert_eq!(body["message"], "App '/gone' does not exist");
    wait_for("all killed", || h.sim.tasks().is_empty()).await;
    deployments_done(&h.router).await;
    assert_eq!(h.m.summary(), (0, 0, 0, 0));
    // Re-create with the same id works once the deletion is done.
    let (s, _, _) = req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(json!({"id":"gone","cmd":"x","cpus":0.1,"mem":16})),
    )
    .await;
    assert_eq!(s, 201);
}

#[tokio::test]
async fn killing_tasks_replaces_or_scales() {
    let h = harness(1, SimOptions::default()).await;
    req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(json!({"id":"k","cmd":"x","cpus":0.1,"mem":16,"instances":3})),
    )
    .await;
    wait_http(&h.router, "/v2/apps/k", "running", |v| running(v) == 3).await;
    deployments_done(&h.router).await;
    let ids: Vec<String> = h
        .sim
        .tasks()
        .iter()
        .map(|t| t.info.task_id.0.clone())
        .collect();
    // Plain kill → replaced.
    let (s, _, body) = req(
        &h.router,
        "DELETE",
        &format!("/v2/apps/k/tasks/{}", ids[0]),
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["task"]["id"], ids[0].as_str());
    wait_for("replaced", || {
        let now: Vec<String> = h
            .sim
            .tasks()
            .iter()
            .map(|t| t.info.task_id.0.clone())
            .collect();
        now.len() == 3 && !now.contains(&ids[0])
    })
    .await;
    // Kill with scale=true → instances drop.
    let (s, _, body) = req(
        &h.router,
        "POST",
        "/v2/tasks/delete?scale=true",
        Some(json!({"ids":[ids[1]]})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body["deploymentId"].is_string());
    let v = wait_http(&h.router, "/v2/apps/k", "2 instances", |v| {
        v["app"]["instances"] == 2 && running(v) == 2
    })
    .await;
    assert!(!v.to_string().contains(&ids[1]));
    // Unknown task id → 400.
    let (s, _, _) = req(
        &h.router,
        "POST",
        "/v2/tasks/delete",
        Some(json!({"ids":["k.nope"]})),
    )
    .await;
    assert_eq!(s, 400);
    // scale and wipe together → 400.
    let (s, _, _) = req(
        &h.router,
        "POST",
        "/v2/tasks/delete?scale=true&wipe=true",
        Some(json!({"ids":[ids[2]]})),
    )
    .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn locked_apps_conflict_unless_forced_and_rollback() {
    let h = harness(
        1,
        SimOptions {
            auto_run: false,
            healthy: true,
            light: false,
        },
    )
    .await;
    let (s, _, created) = req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(json!({"id":"l","cmd":"x","cpus":0.1,"mem":16})),
    )
    .await;
    assert_eq!(s, 201);
    let dep = created["deployments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Tasks stay STAGING, so the deployment stays.
    wait_for("staged", || h.sim.tasks().len() == 1).await;
    let (s, _, body) = req(&h.router, "PUT", "/v2/apps/l", Some(json!({"cmd":"y"}))).await;
    assert_eq!(s, 409);
    assert_eq!(body["deployments"][0]["id"], dep.as_str());
    assert!(body["message"]
        .as_str()
        .unwrap()
        .starts_with("App is locked by one or more deployments."));
    // POST of an existing id → 409 "already exists".
    let (s, _, body) = req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(json!({"id":"l","cmd":"x"})),
    )
    .await;
    assert_eq!(s, 409);
    assert_eq!(body["message"], "An app with id [/l] already exists.");
    // force=true cancels the deployment and starts a new one.
    let (s, _, body) = req(
        &h.router,
        "PUT",
        "/v2/apps/l?force=true",
        Some(json!({"cmd":"y"})),
    )
    .await;
    assert_eq!(s, 200);
    let dep2 = body["deploymentId"].as_str().unwrap().to_string();
    let (_, _, deps) = req(&h.router, "GET", "/v2/deployments", None).await;
    assert_eq!(deps.as_array().unwrap().len(), 1);
    assert_eq!(deps[0]["id"], dep2.as_str());
    assert_eq!(deps[0]["totalSteps"], 1);
    // Rollback (DELETE without force) → a new deployment back to cmd "x".
    let (s, _, body) = req(
        &h.router,
        "DELETE",
        &format!("/v2/deployments/{dep2}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert!(body["deploymentId"].is_string());
    let (_, _, app) = req(&h.router, "GET", "/v2/apps/l", None).await;
    assert_eq!(app["app"]["cmd"], "x");
    // force=true just stops it: 202.
    let dep3 = body["deploymentId"].as_str().unwrap().to_string();
    let (s, _, _) = req(
        &h.router,
        "DELETE",
        &format!("/v2/deployments/{dep3}?force=true"),
        None,
    )
    .await;
    assert_eq!(s, 202);
    let (s, _, body) = req(&h.router, "DELETE", "/v2/deployments/nope", None).await;
    assert_eq!(s, 404);
    assert!(body["message"].is_string());
}

#[test]
fn recovers_everything_from_the_store_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimMaster::new(SimOptions::default());
    for i in 0..2 {
        sim.add_simple_agent(&format!("agent-{i}"), 4.0, 4096.0);
    }
    let opts = Options {
        fsync: false,
        ..Options::default()
    };
    let (fid, tasks_before) = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(EmbeddedStore::open_with(dir.path(), opts.clone()).unwrap());
        let sim = sim.clone();
        let out = rt.block_on(async move {
            sim.spawn_ticker(Duration::from_millis(20));
            let h = start(sim, store).await;
            req(
                &h.router,
                "POST",
                "/v2/apps",
                Some(json!({"id":"/g/keep","cmd":"x","cpus":0.1,"mem":16,"instances":3})),
            )
            .await;
            wait_http(&h.router, "/v2/apps/g/keep", "3", |v| running(v) == 3).await;
            deployments_done(&h.router).await;
            // A deployment that stays open (impossible), to be recovered too.
            req(
                &h.router,
                "POST",
                "/v2/apps",
                Some(json!({"id":"/waits","cmd":"x","cpus":100})),
            )
            .await;
            let fid = h.m.framework_id().unwrap();
            let mut t: Vec<String> = h
                .sim
                .tasks()
                .iter()
                .map(|t| t.info.task_id.0.clone())
                .collect();
            t.sort();
            (fid, t)
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
        let h = start(sim.clone(), store).await;
        assert_eq!(
            h.m.framework_id().as_deref(),
            Some(fid.as_str()),
            "re-subscribed with the same id"
        );
        let (s, _, v) = req(&h.router, "GET", "/v2/apps/g/keep", None).await;
        assert_eq!(s, 200);
        let mut ids: Vec<String> = v["app"]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        assert_eq!(ids, tasks_before);
        let (_, _, deps) = req(&h.router, "GET", "/v2/deployments", None).await;
        assert_eq!(deps.as_array().unwrap().len(), 1);
        assert_eq!(deps[0]["affectedApps"][0], "/waits");
        let (_, _, vs) = req(&h.router, "GET", "/v2/apps/g/keep/versions", None).await;
        assert_eq!(vs["versions"].as_array().unwrap().len(), 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            sim.launches(),
            launches,
            "no task relaunched after recovery"
        );
        assert_eq!(sim.subscriptions(), 2);
    });
}

#[tokio::test]
async fn tasks_stuck_in_staging_are_killed_and_replaced() {
    let sim = SimMaster::new(SimOptions {
        auto_run: false,
        healthy: true,
        light: false,
    });
    sim.add_simple_agent("agent-0", 4.0, 4096.0);
    sim.spawn_ticker(Duration::from_millis(20));
    let config = dcos_marathon::MarathonConfig {
        task_launch_timeout_seconds: 0.3,
        ..common::config()
    };
    let h = start_with(sim, Arc::new(EmbeddedStore::in_memory()), config).await;
    req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(json!({"id":"stuck","cmd":"x","cpus":0.1,"mem":16})),
    )
    .await;
    wait_for("staged", || h.sim.tasks().len() == 1).await;
    let first = h.sim.tasks()[0].info.task_id.clone();
    wait_for("killed after the launch timeout", || {
        h.sim.kills().contains(&first)
    })
    .await;
    wait_for("replacement staged", || {
        h.sim.tasks().iter().any(|t| t.info.task_id != first)
    })
    .await;
    let t = h.sim.tasks()[0].info.task_id.0.clone();
    h.sim.run_task(&t);
    wait_http(&h.router, "/v2/apps/stuck", "running", |v| running(v) == 1).await;
    deployments_done(&h.router).await;
}

#[tokio::test]
async fn refused_launches_are_forgotten_and_retried() {
    let h = harness(1, SimOptions::default()).await;
    h.sim.reject_next_accepts(1);
    req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(json!({"id":"rescinded","cmd":"x","cpus":0.1,"mem":16,"instances":2})),
    )
    .await;
    let v = wait_http(&h.router, "/v2/apps/rescinded", "running", |v| {
        running(v) == 2
    })
    .await;
    assert_eq!(
        v["app"]["tasks"].as_array().unwrap().len(),
        2,
        "no ghost STAGING tasks: {v}"
    );
    deployments_done(&h.router).await;
}

#[tokio::test]
async fn dependencies_start_in_order() {
    let h = harness(
        1,
        SimOptions {
            auto_run: false,
            healthy: true,
            light: false,
        },
    )
    .await;
    let (s, _, v) = req(
        &h.router,
        "POST",
        "/v2/groups",
        Some(json!({"id":"/shop","apps":[
        {"id":"web","cmd":"w","cpus":0.1,"mem":8,"dependencies":["db"]},
        {"id":"db","cmd":"d","cpus":0.1,"mem":8}]})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (_, _, deps) = req(&h.router, "GET", "/v2/deployments", None).await;
    let steps: Vec<String> = deps[0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    format!(
                        "{}:{}",
                        a["action"].as_str().unwrap(),
                        a["app"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    assert_eq!(
        steps.last().unwrap(),
        "ScaleApplication:/shop/web",
        "{steps:?}"
    );
    wait_for("db staged", || h.sim.tasks().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let t = h.sim.tasks();
    assert_eq!(t.len(), 1, "web must wait for db");
    assert!(t[0].info.task_id.0.starts_with("shop_db."));
    h.sim.run_task(&t[0].info.task_id.0);
    wait_for("web staged", || h.sim.tasks().len() == 2).await;
    let web = h
        .sim
        .tasks()
        .into_iter()
        .find(|t| t.info.task_id.0.starts_with("shop_web."))
        .unwrap();
    h.sim.run_task(&web.info.task_id.0);
    deployments_done(&h.router).await;
}

/// A deployment of an app with a readiness check waits until Marathon's own HTTP probe of
/// the task's named port answers with a ready status; results show in the deployment and
/// in `embed=apps.readiness`; after that the app is steady and no longer probed.
#[tokio::test]
async fn readiness_checks_gate_the_deployment() {
    use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};

    // The "task": a real HTTP server on a port the simulated agent offers.
    let status = Arc::new(AtomicU16::new(503));
    let hits = Arc::new(AtomicUsize::new(0));
    let (s2, h2) = (status.clone(), hits.clone());
    let app = axum::Router::new().route(
        "/v1/plan",
        axum::routing::get(move || {
            let (s, h) = (s2.clone(), h2.clone());
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                let code = s.load(Ordering::SeqCst);
                (
                    axum::http::StatusCode::from_u16(code).unwrap(),
                    [("content-type", "application/json")],
                    format!("{{\"status\":{code}}}"),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sim = SimMaster::new(SimOptions::default());
    let mut r = BTreeMap::new();
    r.insert(
        "*".to_string(),
        Resources::new(4.0, 4096.0, 10_000.0).with_ports([(port, port)]),
    );
    sim.add_agent("local", "127.0.0.1", r, BTreeMap::new());
    sim.spawn_ticker(Duration::from_millis(20));
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::in_memory());
    let h = start(sim, store).await;

    let (s, _, body) = req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(
            json!({"id":"/kafka","cmd":"serve","cpus":0.1,"mem":32,"instances":1,
            "requirePorts":true,"portDefinitions":[{"port":port,"name":"api"}],
            "readinessChecks":[{"name":"kafkaUpdateProgress","path":"/v1/plan","portName":"api",
                "intervalSeconds":0.2,"timeoutSeconds":0.1,"preserveLastResponse":true}]}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(
        body["readinessChecks"][0]["httpStatusCodesForReady"],
        json!([200])
    );
    assert_eq!(body["readinessChecks"][0]["protocol"], "HTTP");

    // Running, probed, not ready: the deployment stays and says why.
    let deps = wait_http(&h.router, "/v2/deployments", "a probe result", |v| {
        v[0]["currentActions"][0]["readinessCheckResults"][0]["lastResponse"]["status"] == 503
    })
    .await;
    let res = &deps[0]["currentActions"][0]["readinessCheckResults"][0];
    assert_eq!(res["name"], "kafkaUpdateProgress");
    assert_eq!(res["ready"], false);
    assert_eq!(res["lastResponse"]["contentType"], "application/json");
    assert_eq!(res["lastResponse"]["body"], "{\"status\":503}");
    assert!(res["taskId"].as_str().unwrap().starts_with("kafka."));
    let (_, _, v) = req(&h.router, "GET", "/v2/apps/kafka?embed=app.readiness", None).await;
    assert_eq!(v["app"]["tasksRunning"], 1);
    assert_eq!(v["app"]["readinessCheckResults"][0]["ready"], false);
    // Probed again at its interval while not ready.
    let before = hits.load(Ordering::SeqCst);
    wait_for("another probe", || hits.load(Ordering::SeqCst) > before).await;
    let (_, _, d) = req(&h.router, "GET", "/v2/deployments", None).await;
    assert_eq!(d.as_array().unwrap().len(), 1, "not ready: still deploying");

    // Ready: the deployment finishes; the app is steady and no longer probed.
    status.store(200, Ordering::SeqCst);
    deployments_done(&h.router).await;
    let (_, _, v) = req(&h.router, "GET", "/v2/apps/kafka?embed=app.readiness", None).await;
    assert_eq!(v["app"]["readinessCheckResults"], json!([]));
    let settled = hits.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        settled,
        "steady apps are not probed"
    );

    // A port name the app does not have is a 422 naming the field.
    let (s, _, body) = req(
        &h.router,
        "PUT",
        "/v2/apps/kafka",
        Some(json!({"readinessChecks":[{"portName":"nope"}]})),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["details"][0]["path"], "/readinessChecks(0)/portName");
}
