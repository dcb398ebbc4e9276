//! HTTP API shapes and bad input.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use common::*;
use dcos_marathon::sim::SimOptions;
use futures::StreamExt;
use serde_json::json;

#[tokio::test]
async fn validation_errors_are_422_with_every_violation() {
    let h = harness(1, SimOptions::default()).await;
    let (s, _, body) = req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(json!({
            "id": "Bad_ID", "cpus": -1, "mem": -5, "instances": -2,
            "upgradeStrategy": {"minimumHealthCapacity": 2},
            "constraints": [["hostname", "SOMETIMES"]],
            "healthChecks": [{"protocol": "HTTP", "portIndex": 5}]
        })),
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(body["message"], "Object is not valid");
    let paths: Vec<&str> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    for p in [
        "/id",
        "/",
        "/cpus",
        "/mem",
        "/instances",
        "/upgradeStrategy/minimumHealthCapacity",
        "/constraints(0)",
        "/healthChecks(0)",
    ] {
        assert!(paths.contains(&p), "missing {p} in {body}");
    }
    for d in body["details"].as_array().unwrap() {
        assert!(d["errors"].as_array().is_some_and(|e| !e.is_empty()));
    }
    // Nothing was created.
    let (s, _, _) = req(&h.router, "GET", "/v2/apps/bad_id", None).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn malformed_and_oversized_bodies() {
    let h = harness(1, SimOptions::default()).await;
    let r = Request::builder()
        .method("POST")
        .uri("/v2/apps")
        .header("content-type", "application/json")
        .body(Body::from("{\"id\": "))
        .unwrap();
    let (s, _, body) = raw(&h.router, r).await;
    assert_eq!(s, 400);
    assert_eq!(body["message"], "Invalid JSON");
    assert!(body["details"].is_string());
    // Wrong type: 400 naming the field.
    let (s, _, body) = req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(json!({"id":"x","cmd":"c","instances":"three"})),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(body["details"][0]["path"], "/instances");
    // Not an object.
    let (s, _, _) = req(&h.router, "POST", "/v2/apps", Some(json!([1, 2]))).await;
    assert_eq!(s, 400);
    // Oversized (limit is 64 KiB in the test config).
    let big = "x".repeat(100 * 1024);
    let (s, _, body) = req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(json!({"id":"big","cmd": big})),
    )
    .await;
    assert_eq!(s, 413);
    assert!(body["message"].as_str().unwrap().contains("too large"));
    // Empty body.
    let r = Request::builder()
        .method("POST")
        .uri("/v2/apps")
        .body(Body::empty())
        .unwrap();
    let (s, _, _) = raw(&h.router, r).await;
    assert_eq!(s, 400);
    // Unknown endpoint: JSON 404.
    let (s, _, body) = req(&h.router, "GET", "/v2/nothing", None).await;
    assert_eq!(s, 404);
    assert!(body["message"].is_string());
}

#[tokio::test]
async fn unknown_fields_are_kept_and_echoed() {
    let h = harness(1, SimOptions::default()).await;
    let (s, _, body) = req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(json!({"id":"u","cmd":"c","cpus":0.1,"mem":16,
        "someFutureField": {"a": 1}})),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(body["someFutureField"]["a"], 1);
    let (_, _, v) = req(&h.router, "GET", "/v2/apps/u", None).await;
    assert_eq!(v["app"]["someFutureField"]["a"], 1);
}

#[tokio::test]
async fn list_filters_and_embeds() {
    let h = harness(2, SimOptions::default()).await;
    for (id, pkg, cmd) in [
        ("/spark", "spark", "run spark"),
        ("/kafka", "kafka", "run kafka"),
        ("/infra/web", "", "nginx"),
    ] {
        let mut app = json!({"id": id, "cmd": cmd, "cpus": 0.1, "mem": 16});
        if !pkg.is_empty() {
            app["labels"] = json!({"DCOS_PACKAGE_NAME": pkg});
        }
        let (s, _, _) = req(&h.router, "POST", "/v2/apps", Some(app)).await;
        assert_eq!(s, 201);
    }
    deployments_done(&h.router).await;
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v["apps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, _, v) = req(&h.router, "GET", "/v2/apps", None).await;
    assert_eq!(ids(&v), vec!["/infra/web", "/kafka", "/spark"]);
    // Always counts + deployments, no tasks unless embedded.
    assert!(v["apps"][0]["tasksRunning"].is_number());
    assert!(v["apps"][0]["deployments"].is_array());
    assert!(v["apps"][0].get("tasks").is_none());
    let (_, _, v) = req(
        &h.router,
        "GET",
        "/v2/apps/?embed=apps.tasks&embed=apps.lastTaskFailure&embed=apps.taskStats",
        None,
    )
    .await;
    assert_eq!(v["apps"][0]["tasks"].as_array().unwrap().len(), 1);
    let t = &v["apps"][0]["tasks"][0];
    for k in [
        "id",
        "appId",
        "host",
        "slaveId",
        "ports",
        "servicePorts",
        "state",
        "stagedAt",
        "startedAt",
        "version",
        "ipAddresses",
    ] {
        assert!(t.get(k).is_some(), "task lacks {k}: {t}");
    }
    assert!(v["apps"][0]["taskStats"]["totalSummary"]["stats"]["counts"]["running"].is_number());
    let (_, _, v) = req(
        &h.router,
        "GET",
        "/v2/apps?label=DCOS_PACKAGE_NAME==spark",
        None,
    )
    .await;
    assert_eq!(ids(&v), vec!["/spark"]);
    let (_, _, v) = req(&h.router, "GET", "/v2/apps?label=DCOS_PACKAGE_NAME", None).await;
    assert_eq!(ids(&v), vec!["/kafka", "/spark"]);
    let (_, _, v) = req(
        &h.router,
        "GET",
        "/v2/apps?label=DCOS_PACKAGE_NAME%20in%20(kafka,x)",
        None,
    )
    .await;
    assert_eq!(ids(&v), vec!["/kafka"]);
    let (_, _, v) = req(&h.router, "GET", "/v2/apps?id=INFRA", None).await;
    assert_eq!(ids(&v), vec!["/infra/web"]);
    let (_, _, v) = req(&h.router, "GET", "/v2/apps?cmd=run", None).await;
    assert_eq!(ids(&v), vec!["/kafka", "/spark"]);
    let (s, _, _) = req(&h.router, "GET", "/v2/apps?label=a%20b%20c", None).await;
    assert_eq!(s, 400);
    // Group listing and tree.
    let (_, _, v) = req(&h.router, "GET", "/v2/apps/infra/*", None).await;
    assert_eq!(v["*"][0]["id"], "/infra/web");
    let (_, _, g) = req(&h.router, "GET", "/v2/groups", None).await;
    assert_eq!(g["id"], "/");
    assert_eq!(g["apps"].as_array().unwrap().len(), 2);
    assert_eq!(g["groups"][0]["id"], "/infra");
    assert_eq!(g["groups"][0]["apps"][0]["id"], "/infra/web");
    let (s, _, g) = req(&h.router, "GET", "/v2/groups/infra", None).await;
    assert_eq!(s, 200);
    assert_eq!(g["apps"][0]["id"], "/infra/web");
    let (s, _, _) = req(&h.router, "GET", "/v2/groups/nope", None).await;
    assert_eq!(s, 404);
    // Tasks endpoints.
    let (_, _, v) = req(&h.router, "GET", "/v2/apps/infra/web/tasks", None).await;
    assert_eq!(v["tasks"][0]["appId"], "/infra/web");
    let (_, _, v) = req(&h.router, "GET", "/v2/tasks?status=running", None).await;
    assert_eq!(v["tasks"].as_array().unwrap().len(), 3);
    let (_, _, v) = req(&h.router, "GET", "/v2/tasks?status=staging", None).await;
    assert_eq!(v["tasks"].as_array().unwrap().len(), 0);
    // Multi-app PUT, one deployment.
    let (s, _, v) = req(
        &h.router,
        "PUT",
        "/v2/apps",
        Some(json!([{"id":"/spark","instances":2},{"id":"/kafka","instances":2}])),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, _, deps) = req(&h.router, "GET", "/v2/deployments", None).await;
    if let Some(d) = deps.as_array().unwrap().first() {
        assert_eq!(d["affectedApps"].as_array().unwrap().len(), 2);
    }
    wait_http(&h.router, "/v2/tasks", "5 tasks", |v| {
        v["tasks"].as_array().map(|a| a.len()) == Some(5)
    })
    .await;
    // PATCH of a missing app is 404.
    let (s, _, _) = req(
        &h.router,
        "PATCH",
        "/v2/apps/missing",
        Some(json!({"instances":2})),
    )
    .await;
    assert_eq!(s, 404);
    // PUT of a missing app creates it: 201 + Location.
    let (s, hd, _) = req(
        &h.router,
        "PUT",
        "/v2/apps/new/one",
        Some(json!({"cmd":"x","cpus":0.1,"mem":8})),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(hd["location"], "/new/one");
    // Restart: a RestartApplication deployment.
    let (s, _, v) = req(&h.router, "POST", "/v2/apps/spark/restart?force=true", None).await;
    assert_eq!(s, 200);
    assert!(v["deploymentId"].is_string());
    let (s, _, _) = req(&h.router, "POST", "/v2/apps/none/restart", None).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn info_leader_ping_metrics() {
    let h = harness(1, SimOptions::default()).await;
    let (s, _, v) = req(&h.router, "GET", "/v2/info", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["name"], "marathon");
    assert!(v["version"].as_str().unwrap().starts_with("1.10"));
    assert!(v["marathon_config"].is_object());
    assert!(v["zookeeper_config"].is_object());
    assert!(v["http_config"].is_object());
    assert_eq!(v["frameworkId"], "sim-framework-0001");
    let (_, _, v) = req(&h.router, "GET", "/v2/leader", None).await;
    assert_eq!(v["leader"], "localhost:8080");
    let (s, _, v) = req(&h.router, "GET", "/ping", None).await;
    assert_eq!(s, 200);
    assert_eq!(v, "pong");
    let (_, _, v) = req(&h.router, "GET", "/metrics", None).await;
    assert!(v["gauges"]["marathon.apps.active.gauge"]["value"].is_number());
    assert!(v["counters"].is_object());
    let (s, _, v) = req(&h.router, "GET", "/metrics/prometheus", None).await;
    assert_eq!(s, 200);
    assert!(
        v.as_str().unwrap().contains("marathon_apps_active_gauge 0"),
        "{v}"
    );
    let (_, _, v) = req(&h.router, "GET", "/v2/queue", None).await;
    assert!(v["queue"].is_array());
    let (_, _, v) = req(&h.router, "GET", "/v2/pods", None).await;
    assert!(v.is_array());
}

#[tokio::test]
async fn event_stream_over_http() {
    let h = harness(1, SimOptions::default()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = h.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    // Without the SSE Accept: 405.
    let r = client
        .get(format!("{base}/v2/events"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let r = client
        .get(format!("{base}/v2/events?event_type=event_stream_attached&event_type=deployment_success&event_type=status_update_event"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut stream = r.bytes_stream();
    let post = client
        .post(format!("{base}/v2/apps"))
        .json(&json!({"id":"ev","cmd":"x","cpus":0.1,"mem":8}))
        .send();
    let mut text = String::new();
    let reader = async {
        while let Some(chunk) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if text.contains("event: deployment_success") {
                break;
            }
        }
    };
    let (resp, _) = tokio::join!(post, tokio::time::timeout(Duration::from_secs(5), reader));
    assert_eq!(resp.unwrap().status(), 201);
    assert!(
        text.starts_with("event: event_stream_attached\ndata: "),
        "{text}"
    );
    assert!(text.contains("event: status_update_event"), "{text}");
    assert!(text.contains("\"taskStatus\":\"TASK_RUNNING\""), "{text}");
    assert!(text.contains("event: deployment_success"), "{text}");
    assert!(
        !text.contains("event: deployment_info"),
        "filtered out: {text}"
    );
}

#[tokio::test]
async fn group_writes() {
    let h = harness(2, SimOptions::default()).await;
    let (s, hd, v) = req(
        &h.router,
        "POST",
        "/v2/groups",
        Some(json!({"id":"/prod","apps":[
        {"id":"web","cmd":"x","cpus":0.1,"mem":8,"instances":2}],
        "groups":[{"id":"db","apps":[{"id":"pg","cmd":"y","cpus":0.1,"mem":8}]}]})),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(hd["location"], "/prod");
    assert!(v["deploymentId"].is_string());
    deployments_done(&h.router).await;
    let (_, _, g) = req(&h.router, "GET", "/v2/groups/prod", None).await;
    assert_eq!(g["apps"][0]["id"], "/prod/web");
    assert_eq!(g["groups"][0]["apps"][0]["id"], "/prod/db/pg");
    let (s, _, _) = req(
        &h.router,
        "POST",
        "/v2/groups",
        Some(json!({"id":"/prod","apps":[]})),
    )
    .await;
    assert_eq!(s, 409);
    // Not a child of the group → 422 with the group path.
    let (s, _, v) = req(
        &h.router,
        "PUT",
        "/v2/groups/prod",
        Some(json!({"apps":[{"id":"/elsewhere","cmd":"x"}]})),
    )
    .await;
    assert_eq!(s, 422);
    assert_eq!(v["details"][0]["path"], "/apps(0)/id");
    // scaleBy doubles every app.
    let (s, _, _) = req(
        &h.router,
        "PUT",
        "/v2/groups/prod",
        Some(json!({"scaleBy": 2})),
    )
    .await;
    assert_eq!(s, 200);
    wait_http(&h.router, "/v2/tasks", "6 tasks", |v| {
        v["tasks"].as_array().map(|a| a.len()) == Some(6)
    })
    .await;
    let (s, _, _) = req(&h.router, "DELETE", "/v2/groups/prod?force=true", None).await;
    assert_eq!(s, 200);
    wait_http(&h.router, "/v2/apps", "no apps", |v| {
        v["apps"].as_array().is_some_and(|a| a.is_empty())
    })
    .await;
    let (s, _, _) = req(&h.router, "DELETE", "/v2/groups/prod", None).await;
    assert_eq!(s, 404);
}

/// Mutated app definitions (wrong types, missing and odd values) never crash the API:
/// every answer is a 2xx or a 4xx with a JSON message.
#[tokio::test]
async fn mutated_bodies_get_clear_answers() {
    let h = harness(1, SimOptions::default()).await;
    let base = json!({"id":"/f/app","cmd":"sleep 1","cpus":0.1,"mem":16,"instances":1,
        "env":{"A":"b"},"labels":{"l":"v"},"constraints":[["hostname","UNIQUE"]],
        "portDefinitions":[{"port":0,"name":"http"}],"requirePorts":false,
        "healthChecks":[{"protocol":"HTTP","portIndex":0}],
        "upgradeStrategy":{"minimumHealthCapacity":0.5,"maximumOverCapacity":0.5},
        "container":{"type":"DOCKER","docker":{"image":"nginx","network":"BRIDGE",
            "portMappings":[{"containerPort":80,"hostPort":0}]}},
        "fetch":[{"uri":"http://x/y.tgz"}],"acceptedResourceRoles":["*"],
        "unreachableStrategy":{"inactiveAfterSeconds":0,"expungeAfterSeconds":0}});
    let odd = [
        json!(null),
        json!(-1),
        json!(1e300),
        json!("x"),
        json!(""),
        json!([]),
        json!({}),
        json!([1, "a", null]),
        json!({"k": [{}]}),
        json!(true),
        json!("../.."),
        json!("\u{0}"),
    ];
    let keys: Vec<String> = base.as_object().unwrap().keys().cloned().collect();
    let mut seed: u64 = 0x2545F4914F6CDD1D;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..300 {
        let mut v = base.clone();
        let obj = v.as_object_mut().unwrap();
        for _ in 0..(1 + next() % 3) {
            let k = &keys[(next() % keys.len() as u64) as usize];
            match next() % 3 {
                0 => {
                    obj.remove(k);
                }
                1 => {
                    obj.insert(k.clone(), odd[(next() % odd.len() as u64) as usize].clone());
                }
                _ => {
                    // Mutate one level down.
                    if let Some(serde_json::Value::Object(inner)) = obj.get_mut(k) {
                        if let Some(ik) = inner.keys().next().cloned() {
                            inner.insert(ik, odd[(next() % odd.len() as u64) as usize].clone());
                        }
                    }
                }
            }
        }
        obj.insert("id".into(), json!(format!("/f/app-{i}")));
        for method in ["POST", "PUT"] {
            let uri = if method == "POST" {
                "/v2/apps".to_string()
            } else {
                format!("/v2/apps/f/app-{i}?force=true")
            };
            let (s, _, body) = req(&h.router, method, &uri, Some(v.clone())).await;
            assert!(
                s.is_success() || (s.is_client_error() && body["message"].is_string()),
                "{method} {v} → {s} {body}"
            );
        }
    }
    // The scheduler survived all of it.
    let (s, _, _) = req(&h.router, "GET", "/v2/apps?embed=apps.tasks", None).await;
    assert_eq!(s, 200);
}
