//! The Metronome v1 API: jobs CRUD, validation and error shapes, schedules, legacy v0,
//! service endpoints.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::*;
use dcos_marathon::sim::SimOptions;
use serde_json::{json, Value};

fn job(id: &str) -> Value {
    json!({"id": id, "description": "a job", "labels": {"team": "ops"},
           "run": {"cmd": "echo hi", "cpus": 0.1, "mem": 32, "disk": 0}})
}

#[tokio::test]
async fn jobs_crud_like_dcos_job_cli() {
    let h = harness(0, SimOptions::default()).await;
    let (s, v) = req(&h.router, "POST", "/v1/jobs", Some(job("prod.backup"))).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["id"], "prod.backup");
    assert_eq!(v["run"]["cmd"], "echo hi");
    assert_eq!(v["run"]["maxLaunchDelay"], 3600);
    assert_eq!(v["run"]["restart"]["policy"], "NEVER");
    assert_eq!(v["labels"]["team"], "ops");

    let (s, v) = req(&h.router, "POST", "/v1/jobs", Some(job("prod.backup"))).await;
    assert_eq!(s, 409);
    assert_eq!(v["message"], "Job with this id already exists");

    // What `dcos job list` sends.
    let (s, v) = req(
        &h.router,
        "GET",
        "/v1/jobs?embed=activeRuns&embed=schedules&embed=historySummary",
        None,
    )
    .await;
    assert_eq!(s, 200);
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], "prod.backup");
    assert_eq!(list[0]["historySummary"]["successCount"], 0);
    assert_eq!(list[0]["historySummary"]["lastSuccessAt"], Value::Null);
    assert!(
        list[0].get("activeRuns").is_none(),
        "no activeRuns key while none run"
    );
    assert_eq!(list[0]["schedules"], json!([]));

    let (s, v) = req(&h.router, "GET", "/v1/jobs/prod.backup?embed=history", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["history"]["successfulFinishedRuns"], json!([]));
    assert_eq!(v["history"]["failedFinishedRuns"], json!([]));

    let (s, v) = req(&h.router, "GET", "/v1/jobs/nope", None).await;
    assert_eq!(s, 404);
    assert_eq!(v, json!({"message": "Job 'nope' does not exist"}));

    // Update: the id may be left out, a different one is refused.
    let mut upd = job("prod.backup");
    upd["run"]["mem"] = json!(64);
    upd.as_object_mut().unwrap().remove("id");
    let (s, v) = req(&h.router, "PUT", "/v1/jobs/prod.backup", Some(upd)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["run"]["mem"], 64.0);
    let (s, v) = req(&h.router, "PUT", "/v1/jobs/prod.backup", Some(job("other"))).await;
    assert_eq!(s, 422);
    assert_eq!(v["details"][0]["path"], "/id");
    let (s, _) = req(&h.router, "PUT", "/v1/jobs/nope", Some(job("nope"))).await;
    assert_eq!(s, 404);
    let (s, v) = req(
        &h.router,
        "PUT",
        "/v1/jobs/prod.backup",
        Some(json!({"run": {"cmd": "x", "mem": 1}})),
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(v["details"][0]["path"], "/run/mem");

    let (s, v) = req(&h.router, "DELETE", "/v1/jobs/prod.backup", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["id"], "prod.backup");
    let (s, _) = req(&h.router, "GET", "/v1/jobs/prod.backup", None).await;
    assert_eq!(s, 404);
    let (s, v) = req(&h.router, "DELETE", "/v1/jobs/prod.backup", None).await;
    assert_eq!(s, 404);
    assert_eq!(v["message"], "Job 'prod.backup' does not exist");
}

#[tokio::test]
async fn validation_reports_every_violation() {
    let h = harness(0, SimOptions::default()).await;
    let (s, v) = req(
        &h.router,
        "POST",
        "/v1/jobs",
        Some(
            json!({"id": "Not/Valid", "run": {"cpus": 0, "mem": 16, "surprise": true,
            "restart": {"policy": "SOMETIMES"}, "artifacts": [{"uri": 5}]}}),
        ),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["message"], "Object is not valid");
    let paths: Vec<&str> = v["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    for p in [
        "/id",
        "/run/cpus",
        "/run/mem",
        "/run",
        "/run/restart/policy",
        "/run/artifacts(0)/uri",
    ] {
        assert!(paths.contains(&p), "missing {p}: {v}");
    }
    let run_errors = v["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"] == "/run")
        .unwrap()["errors"]
        .to_string();
    assert!(run_errors.contains("surprise"), "{run_errors}");
    assert!(run_errors.contains("One of cmd"), "{run_errors}");
    for d in v["details"].as_array().unwrap() {
        assert!(d["errors"].as_array().is_some_and(|e| !e.is_empty()));
    }

    // Missing everything.
    let (s, v) = req(&h.router, "POST", "/v1/jobs", Some(json!({}))).await;
    assert_eq!(s, 422);
    assert_eq!(v["details"].as_array().unwrap().len(), 2);
    // Not an object.
    let (s, _) = req(&h.router, "POST", "/v1/jobs", Some(json!([1, 2]))).await;
    assert_eq!(s, 422);
    // Docker jobs are valid without cmd.
    let (s, v) = req(
        &h.router,
        "POST",
        "/v1/jobs",
        Some(
            json!({"id": "dock", "run": {"docker": {"image": "busybox"}, "cpus": 0.5, "mem": 64}}),
        ),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["run"]["docker"]["image"], "busybox");
}

#[tokio::test]
async fn malformed_and_oversized_bodies() {
    let h = harness(0, SimOptions::default()).await;
    let r = Request::builder()
        .method("POST")
        .uri("/v1/jobs")
        .header("content-type", "application/json")
        .body(Body::from("{\"id\": \"a\", "))
        .unwrap();
    let (s, v) = raw(&h.router, r).await;
    assert_eq!(s, 400);
    assert_eq!(v["message"], "Invalid JSON");
    assert!(v["details"].is_string());

    let big = format!(
        "{{\"id\":\"a\",\"description\":\"{}\"}}",
        "x".repeat(100 * 1024)
    );
    let r = Request::builder()
        .method("POST")
        .uri("/v1/jobs")
        .header("content-type", "application/json")
        .body(Body::from(big))
        .unwrap();
    let (s, v) = raw(&h.router, r).await;
    assert_eq!(s, 413);
    assert!(v["message"].as_str().unwrap().contains("too large"));

    // Binary garbage and non-UTF-8 never panic.
    let r = Request::builder()
        .method("PUT")
        .uri("/v1/jobs/a")
        .body(Body::from(vec![0xff, 0xfe, 0x00, 0x7b]))
        .unwrap();
    let (s, _) = raw(&h.router, r).await;
    assert_eq!(s, 400);
    let (s, v) = req(&h.router, "GET", "/v1/nothing-here", None).await;
    assert_eq!(s, 404);
    assert!(v["message"].is_string());
}

#[tokio::test]
async fn schedules_crud_and_validation() {
    let h = harness(0, SimOptions::default()).await;
    req(&h.router, "POST", "/v1/jobs", Some(job("nightly"))).await;
    let (s, v) = req(
        &h.router,
        "POST",
        "/v1/jobs/nightly/schedules",
        Some(json!({"id": "every-night", "cron": "0 2 * * *", "timezone": "Europe/Berlin"})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["startingDeadlineSeconds"], 900);
    assert_eq!(v["concurrencyPolicy"], "ALLOW");
    assert_eq!(v["enabled"], true);
    // 02:00 in Berlin (CET) on 2030-01-01 is 01:00 UTC.
    assert_eq!(v["nextRunAt"], "2030-01-01T01:00:00.000+0000");

    // Only one schedule per job; the same id is a conflict.
    let (s, v) = req(
        &h.router,
        "POST",
        "/v1/jobs/nightly/schedules",
        Some(json!({"id": "another", "cron": "0 3 * * *"})),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    let (s, _) = req(
        &h.router,
        "POST",
        "/v1/jobs/nightly/schedules",
        Some(json!({"id": "every-night", "cron": "0 3 * * *"})),
    )
    .await;
    assert_eq!(s, 409);

    let (s, v) = req(&h.router, "GET", "/v1/jobs/nightly/schedules", None).await;
    assert_eq!(s, 200);
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (s, v) = req(
        &h.router,
        "GET",
        "/v1/jobs/nightly/schedules/every-night",
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["cron"], "0 2 * * *");
    let (s, v) = req(&h.router, "GET", "/v1/jobs/nightly/schedules/none", None).await;
    assert_eq!(s, 404);
    assert_eq!(v["message"], "Schedule 'none' does not exist");

    // Replace: the 15th or any Monday (2030-01-07 is a Monday), UTC.
    let (s, v) = req(
        &h.router,
        "PUT",
        "/v1/jobs/nightly/schedules/every-night",
        Some(json!({"cron": "0 0 15 * 1", "concurrencyPolicy": "FORBID"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["id"], "every-night");
    assert_eq!(v["nextRunAt"], "2030-01-07T00:00:00.000+0000");
    let (_, v) = req(&h.router, "GET", "/v1/jobs/nightly", None).await;
    assert_eq!(v["schedules"][0]["concurrencyPolicy"], "FORBID");

    // Bad schedules: every violation.
    let (s, v) = req(
        &h.router,
        "PUT",
        "/v1/jobs/nightly/schedules/every-night",
        Some(
            json!({"cron": "0 0 31 2 *", "timezone": "Mars/Base", "startingDeadlineSeconds": 10,
                    "concurrencyPolicy": "MAYBE"}),
        ),
    )
    .await;
    assert_eq!(s, 422);
    let paths: Vec<&str> = v["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        vec![
            "/timezone",
            "/cron",
            "/startingDeadlineSeconds",
            "/concurrencyPolicy"
        ]
    );
    let (s, _) = req(
        &h.router,
        "PUT",
        "/v1/jobs/nightly/schedules/every-night",
        Some(json!({"cron": "61 * * * *"})),
    )
    .await;
    assert_eq!(s, 422);

    // Updating the job keeps its schedules.
    let (s, _) = req(&h.router, "PUT", "/v1/jobs/nightly", Some(job("nightly"))).await;
    assert_eq!(s, 200);
    let (_, v) = req(&h.router, "GET", "/v1/jobs/nightly/schedules", None).await;
    assert_eq!(v.as_array().unwrap().len(), 1);

    let (s, _) = req(
        &h.router,
        "DELETE",
        "/v1/jobs/nightly/schedules/every-night",
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (_, v) = req(&h.router, "GET", "/v1/jobs/nightly/schedules", None).await;
    assert_eq!(v, json!([]));
    let (s, _) = req(&h.router, "GET", "/v1/jobs/missing/schedules", None).await;
    assert_eq!(s, 404);
    let (s, _) = req(
        &h.router,
        "POST",
        "/v1/jobs/missing/schedules",
        Some(json!({"id": "x", "cron": "* * * * *"})),
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn job_with_embedded_schedules_and_legacy_v0() {
    let h = harness(0, SimOptions::default()).await;
    let mut j = job("with-sched");
    j["schedules"] = json!([{"id": "hourly", "cron": "0 * * * *"}]);
    let (s, v) = req(&h.router, "POST", "/v1/jobs", Some(j)).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["schedules"][0]["id"], "hourly");
    assert_eq!(
        v["schedules"][0]["nextRunAt"],
        "2030-01-01T01:00:00.000+0000"
    );

    let mut j = job("legacy");
    j["schedules"] = json!([{"id": "s", "cron": "*/5 * * * *", "enabled": false}]);
    let (s, v) = req(&h.router, "POST", "/v0/scheduled-jobs", Some(j.clone())).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["schedules"][0]["enabled"], false);
    assert_eq!(v["schedules"][0]["nextRunAt"], Value::Null);
    j["schedules"] = json!([{"id": "s", "cron": "*/5 * * * *"}]);
    j["run"]["cpus"] = json!(0.2);
    let (s, v) = req(&h.router, "PUT", "/v0/scheduled-jobs/legacy", Some(j)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["run"]["cpus"], 0.2);
    assert_eq!(
        v["schedules"][0]["nextRunAt"],
        "2030-01-01T00:05:00.000+0000"
    );
    // Two schedules are refused.
    let mut j = job("two");
    j["schedules"] = json!([{"id": "a", "cron": "* * * * *"}, {"id": "b", "cron": "* * * * *"}]);
    let (s, _) = req(&h.router, "POST", "/v0/scheduled-jobs", Some(j)).await;
    assert_eq!(s, 422);
    // A bad embedded schedule is reported with its index.
    let mut j = job("bad");
    j["schedules"] = json!([{"id": "a", "cron": "nope"}]);
    let (s, v) = req(&h.router, "POST", "/v1/jobs", Some(j)).await;
    assert_eq!(s, 422);
    assert_eq!(v["details"][0]["path"], "/schedules(0)/cron");
}

#[tokio::test]
async fn service_endpoints() {
    let h = harness(0, SimOptions::default()).await;
    let (s, v) = req(&h.router, "GET", "/ping", None).await;
    assert_eq!(s, 200);
    assert_eq!(v, json!("pong"));
    let (s, v) = req(&h.router, "GET", "/info", None).await;
    assert_eq!(s, 200);
    assert!(v["version"].is_string());
    assert_eq!(v["frameworkId"], "sim-framework-0001");
    let (s, v) = req(&h.router, "GET", "/leader", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["leader"], "localhost:9000");
    let (s, v) = req(&h.router, "GET", "/metrics", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["gauges"]["jobs"], 0);
    let (s, v) = req(&h.router, "GET", "/v1/queue", None).await;
    assert_eq!(s, 200);
    assert_eq!(v, json!([]));
    assert_eq!(h.m.framework_id().as_deref(), Some("sim-framework-0001"));

    // A run that cannot launch (no agents) waits in the queue.
    req(&h.router, "POST", "/v1/jobs", Some(job("queued"))).await;
    let (s, run) = req(&h.router, "POST", "/v1/jobs/queued/runs", None).await;
    assert_eq!(s, 201);
    let (_, v) = req(&h.router, "GET", "/v1/queue", None).await;
    assert_eq!(
        v,
        json!([{"jobId": "queued", "runs": [{"runId": run["id"]}]}])
    );
    let (_, v) = req(&h.router, "GET", "/metrics", None).await;
    assert_eq!(v["gauges"]["activeRuns"], 1);
}

/// Hundreds of mutated job and schedule documents: every answer is a 2xx or a 4xx with a
/// JSON message, and the service keeps answering (nothing from outside panics it).
#[tokio::test]
async fn mutated_bodies_get_clear_answers() {
    let h = harness(1, SimOptions::default()).await;
    let base = json!({"id":"fz.job","description":"d","labels":{"a":"b"},
        "run":{"cmd":"true","args":["x"],"cpus":0.1,"mem":32,"disk":0,"gpus":0,"user":"nobody",
            "env":{"A":"b"},"artifacts":[{"uri":"http://x/y.tgz","extract":true}],
            "docker":{"image":"busybox"},"placement":{"constraints":[{"attribute":"hostname","operator":"LIKE","value":"a.*"}]},
            "maxLaunchDelay":60,"taskKillGracePeriodSeconds":3,
            "restart":{"policy":"ON_FAILURE","activeDeadlineSeconds":60}},
        "schedules":[{"id":"s","cron":"*/5 1-3 L * 1#2","timezone":"Europe/Berlin",
            "startingDeadlineSeconds":60,"concurrencyPolicy":"FORBID","enabled":true}]});
    let odd = [
        json!(null),
        json!(-1),
        json!(1e300),
        json!(""),
        json!("x"),
        json!("* * * * * * *"),
        json!("0 0 31 2 *"),
        json!("Mars/Olympus"),
        json!([]),
        json!({}),
        json!([1, "a", null]),
        json!(true),
        json!("\u{0}"),
        json!(u64::MAX),
    ];
    let mut seed: u64 = 0x9E3779B97F4A7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let pick = |n: u64, len: usize| (n % len as u64) as usize;
    for i in 0..300 {
        let mut v = base.clone();
        for _ in 0..(1 + next() % 3) {
            // A field of the job, of its run, or of its schedule.
            let target = match next() % 3 {
                0 => v.as_object_mut(),
                1 => v.get_mut("run").and_then(|r| r.as_object_mut()),
                _ => v
                    .pointer_mut("/schedules/0")
                    .and_then(|s| s.as_object_mut()),
            };
            let Some(obj) = target else { continue };
            let keys: Vec<String> = obj.keys().cloned().collect();
            if keys.is_empty() {
                continue;
            }
            let k = keys[pick(next(), keys.len())].clone();
            if next() % 4 == 0 {
                obj.remove(&k);
            } else {
                obj.insert(k, odd[pick(next(), odd.len())].clone());
            }
        }
        if let Some(o) = v.as_object_mut() {
            o.insert("id".into(), json!(format!("fz.job{i}")));
        }
        for (method, uri, body) in [
            ("POST", "/v1/jobs".to_string(), v.clone()),
            ("PUT", format!("/v1/jobs/fz.job{i}"), v.clone()),
            (
                "POST",
                "/v0/scheduled-jobs".to_string(),
                json!({"id": format!("fz.v0{i}"), "run": v["run"].clone(), "schedules": v["schedules"].clone()}),
            ),
            (
                "POST",
                format!("/v1/jobs/fz.job{i}/schedules"),
                v.pointer("/schedules/0").cloned().unwrap_or(json!(null)),
            ),
        ] {
            let (s, body) = req(&h.router, method, &uri, Some(body)).await;
            assert!(
                s.is_success() || s.is_client_error(),
                "{method} {uri}: {s} {body}"
            );
            if s.is_client_error() {
                assert!(
                    body["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "{method} {uri}: {s} without a message: {body}"
                );
            }
        }
    }
    let (s, _) = req(&h.router, "GET", "/v1/jobs", None).await;
    assert_eq!(s, 200, "still answering");
}
