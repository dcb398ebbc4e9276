//! Nothing acts on a change that is not durable: with a store that refuses writes (a full
//! disk), API writes answer 503 and leave no trace, no task is launched whose record is not
//! stored, status updates that cannot be stored are not acknowledged, no event is published
//! for a refused change, and everything works again once the store accepts writes.
//! Also: one id limit, store key errors on user input as 422, JSON bodies only (415).

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use common::*;
use dcos_marathon::sim::{SimMaster, SimOptions};
use dcos_store::{EmbeddedStore, FaultyStore, Store};
use dcos_types::ids::MAX_SERVICE_ID_LEN;
use dcos_types::TaskState;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::TryRecvError;

async fn faulty_harness(agents: usize) -> (H, Arc<FaultyStore>) {
    let sim = SimMaster::new(SimOptions::default());
    for i in 0..agents {
        sim.add_simple_agent(&format!("agent-{i}"), 4.0, 4096.0);
    }
    sim.spawn_ticker(std::time::Duration::from_millis(20));
    let faulty = FaultyStore::new(Arc::new(EmbeddedStore::in_memory()));
    let store: Arc<dyn Store> = faulty.clone();
    (start(sim, store).await, faulty)
}

/// Task ids the master runs that have no record in the store (must always be empty).
fn unstored_tasks(h: &H) -> Vec<String> {
    h.sim
        .tasks()
        .into_iter()
        .map(|t| t.info.task_id.0)
        .filter(|id| {
            h.store
                .get(&format!("/marathon/tasks/{id}"))
                .ok()
                .flatten()
                .is_none()
        })
        .collect()
}

fn running(v: &Value) -> i64 {
    v["app"]["tasksRunning"].as_i64().unwrap_or(-1)
}

/// Waits for `n` more refused commits: scheduler rounds that ran while the store refused.
async fn rounds_while_failing(faulty: &FaultyStore, n: u64) {
    let from = faulty.refused();
    wait_for("scheduler rounds against the failing store", || {
        faulty.refused() >= from + n
    })
    .await;
}

fn assert_refused(s: axum::http::StatusCode, body: &Value) {
    assert_eq!(s, 503, "{body}");
    let msg = body["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("No space left on device") && msg.contains("nothing was changed"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_refused_app_write_is_a_503_and_leaves_no_trace() {
    let (h, faulty) = faulty_harness(2).await;
    let mut events = h.m.events().subscribe();
    assert!(h.m.store_writable().is_ok());
    faulty.set_failing(true);
    let app = json!({"id":"/d1","cmd":"sleep 100","cpus":0.1,"mem":16,"instances":2});
    let (s, _, body) = req(&h.router, "POST", "/v2/apps", Some(app.clone())).await;
    assert_refused(s, &body);
    // No trace: not listed, not found, no deployment, no group.
    let (_, _, list) = req(&h.router, "GET", "/v2/apps", None).await;
    assert_eq!(list["apps"], json!([]), "{list}");
    let (s, _, _) = req(&h.router, "GET", "/v2/apps/d1", None).await;
    assert_eq!(s, 404);
    let (_, _, deps) = req(&h.router, "GET", "/v2/deployments", None).await;
    assert_eq!(deps, json!([]));
    let (_, _, groups) = req(&h.router, "GET", "/v2/groups", None).await;
    assert_eq!(groups["apps"], json!([]));
    // Nothing reached the master, even after scheduler rounds; no event was published.
    rounds_while_failing(&faulty, 3).await;
    assert_eq!(h.sim.launches(), 0);
    assert!(matches!(events.try_recv(), Err(TryRecvError::Empty)));
    let why = h.m.store_writable().unwrap_err();
    assert!(why.contains("No space left on device"), "{why}");

    // The store accepts writes again: everything works.
    faulty.set_failing(false);
    let (s, _, body) = req(&h.router, "POST", "/v2/apps", Some(app)).await;
    assert_eq!(s, 201, "{body}");
    wait_http(&h.router, "/v2/apps/d1", "2 running", |v| running(v) == 2).await;
    deployments_done(&h.router).await;
    assert!(unstored_tasks(&h).is_empty());
    assert!(h.m.store_writable().is_ok());
    let first = events.try_recv().expect("events after the stored change");
    assert_eq!(first.kind, "api_post_event");
}

#[tokio::test]
async fn no_task_is_launched_whose_record_was_not_stored() {
    let (h, faulty) = faulty_harness(1).await;
    let app = json!({"id":"/s","cmd":"sleep 100","cpus":1,"mem":16,"instances":2});
    let (s, _, _) = req(&h.router, "POST", "/v2/apps", Some(app)).await;
    assert_eq!(s, 201);
    wait_http(&h.router, "/v2/apps/s", "2 running", |v| running(v) == 2).await;
    deployments_done(&h.router).await;
    // Scale to 8: only 4 fit on the one agent.
    let (s, _, body) = req(
        &h.router,
        "PUT",
        "/v2/apps/s",
        Some(json!({"instances": 8})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    wait_http(&h.router, "/v2/apps/s", "4 running", |v| running(v) == 4).await;
    // The disk fills up; then a new agent offers room for the other 4.
    faulty.set_failing(true);
    let launched = h.sim.launches();
    h.sim.add_simple_agent("agent-1", 4.0, 4096.0);
    rounds_while_failing(&faulty, 4).await;
    assert_eq!(
        h.sim.launches(),
        launched,
        "launched while the store refused"
    );
    assert_eq!(unstored_tasks(&h), Vec::<String>::new());
    let (_, _, v) = req(&h.router, "GET", "/v2/apps/s", None).await;
    assert_eq!(
        v["app"]["tasks"].as_array().map(|t| t.len()),
        Some(4),
        "{v}"
    );
    assert!(h.m.store_writable().is_err());
    // Space again: the app converges, every task recorded.
    faulty.set_failing(false);
    wait_http(&h.router, "/v2/apps/s", "8 running", |v| running(v) == 8).await;
    deployments_done(&h.router).await;
    assert_eq!(unstored_tasks(&h), Vec::<String>::new());
    wait_for("healthy again", || h.m.store_writable().is_ok()).await;
}

#[tokio::test]
async fn refused_kills_and_deployment_changes_change_nothing() {
    let (h, faulty) = faulty_harness(1).await;
    let app = json!({"id":"/k","cmd":"sleep 100","cpus":0.1,"mem":16,"instances":3});
    req(&h.router, "POST", "/v2/apps", Some(app)).await;
    wait_http(&h.router, "/v2/apps/k", "3 running", |v| running(v) == 3).await;
    deployments_done(&h.router).await;
    // A deployment that cannot finish (nothing fits).
    let big = json!({"id":"/big","cmd":"sleep 100","cpus":64,"mem":16,"instances":1});
    let (s, _, _) = req(&h.router, "POST", "/v2/apps", Some(big)).await;
    assert_eq!(s, 201);
    let (_, _, deps) = req(&h.router, "GET", "/v2/deployments", None).await;
    let dep = deps[0]["id"].as_str().unwrap().to_string();
    let ids: Vec<String> = h
        .sim
        .tasks()
        .iter()
        .map(|t| t.info.task_id.0.clone())
        .collect();
    let mut events = h.m.events().subscribe();
    faulty.set_failing(true);
    let tries: Vec<(&str, String, Option<Value>)> = vec![
        ("DELETE", "/v2/apps/k".into(), None),
        ("PUT", "/v2/apps/k".into(), Some(json!({"instances": 5}))),
        (
            "PATCH",
            "/v2/apps/k".into(),
            Some(json!({"cmd": "sleep 5"})),
        ),
        ("POST", "/v2/apps/k/restart".into(), None),
        (
            "POST",
            "/v2/tasks/delete?scale=true".into(),
            Some(json!({"ids": [ids[0]]})),
        ),
        (
            "DELETE",
            format!("/v2/apps/k/tasks/{}?scale=true", ids[1]),
            None,
        ),
        ("DELETE", format!("/v2/deployments/{dep}"), None),
        ("DELETE", format!("/v2/deployments/{dep}?force=true"), None),
        (
            "PUT",
            "/v2/groups?force=true".into(),
            Some(json!({"scaleBy": 2})),
        ),
        (
            "POST",
            "/v2/groups".into(),
            Some(json!({"id": "/g", "apps": [{"id": "a", "cmd": "x"}]})),
        ),
    ];
    for (method, uri, body) in tries {
        let (s, _, answer) = req(&h.router, method, &uri, body).await;
        assert_eq!(s, 503, "{method} {uri}: {answer}");
        assert_refused(s, &answer);
    }
    rounds_while_failing(&faulty, 3).await;
    // Nothing changed: same app, same tasks, same deployment, no kill, no event.
    let (_, _, v) = req(&h.router, "GET", "/v2/apps/k", None).await;
    assert_eq!(v["app"]["instances"], 3);
    assert_eq!(v["app"]["cmd"], "sleep 100");
    assert_eq!(running(&v), 3);
    let (_, _, deps) = req(&h.router, "GET", "/v2/deployments", None).await;
    assert_eq!(deps.as_array().map(|d| d.len()), Some(1), "{deps}");
    assert_eq!(deps[0]["id"], dep.as_str());
    let (s, _, _) = req(&h.router, "GET", "/v2/groups/g", None).await;
    assert_eq!(s, 404);
    assert!(h.sim.kills().is_empty(), "{:?}", h.sim.kills());
    assert!(matches!(events.try_recv(), Err(TryRecvError::Empty)));
    // Space again: the same requests work.
    faulty.set_failing(false);
    let (s, _, _) = req(
        &h.router,
        "DELETE",
        &format!("/v2/deployments/{dep}?force=true"),
        None,
    )
    .await;
    assert_eq!(s, 202);
    let (s, _, body) = req(
        &h.router,
        "POST",
        "/v2/tasks/delete?scale=true",
        Some(json!({"ids": [ids[0]]})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    wait_http(&h.router, "/v2/apps/k", "2 running", |v| {
        v["app"]["instances"] == 2 && running(v) == 2
    })
    .await;
}

#[tokio::test]
async fn a_status_update_that_cannot_be_stored_is_not_acknowledged() {
    let (h, faulty) = faulty_harness(1).await;
    let app = json!({"id":"/f","cmd":"sleep 100","cpus":0.1,"mem":16,"instances":2,
        "backoffSeconds":0.01});
    req(&h.router, "POST", "/v2/apps", Some(app)).await;
    wait_http(&h.router, "/v2/apps/f", "2 running", |v| running(v) == 2).await;
    deployments_done(&h.router).await;
    wait_for("acks", || h.sim.acks() >= 2).await;
    let (acks, launches) = (h.sim.acks(), h.sim.launches());
    faulty.set_failing(true);
    let gone = h.sim.tasks()[0].info.task_id.0.clone();
    h.sim.finish_task(&gone, TaskState::Failed, "boom");
    rounds_while_failing(&faulty, 3).await;
    // Not acknowledged (the agent resends it), not replaced, still recorded.
    assert_eq!(h.sim.acks(), acks);
    assert_eq!(h.sim.launches(), launches);
    assert!(h
        .store
        .get(&format!("/marathon/tasks/{gone}"))
        .unwrap()
        .is_some());
    // Space again: reconciliation tells Marathon the task is gone; it is replaced.
    faulty.set_failing(false);
    wait_for("replaced", || {
        let now = h.sim.tasks();
        now.len() == 2 && now.iter().all(|t| t.info.task_id.0 != gone)
    })
    .await;
    wait_http(&h.router, "/v2/apps/f", "2 running", |v| running(v) == 2).await;
    assert_eq!(unstored_tasks(&h), Vec::<String>::new());
}

#[tokio::test]
async fn ids_longer_than_an_agent_can_use_are_422() {
    let h = harness(1, SimOptions::default()).await;
    let longest = "a".repeat(MAX_SERVICE_ID_LEN);
    let app = |id: &str| json!({"id": id, "cmd":"sleep 100","cpus":0.1,"mem":16,"instances":1});
    let (s, _, body) = req(
        &h.router,
        "POST",
        "/v2/apps",
        Some(app(&format!("{longest}b"))),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["message"], "Object is not valid");
    assert_eq!(body["details"][0]["path"], "/id");
    assert!(body["details"][0]["errors"][0]
        .as_str()
        .unwrap()
        .contains("too long"));
    // The longest allowed id runs.
    let (s, _, body) = req(&h.router, "POST", "/v2/apps", Some(app(&longest))).await;
    assert_eq!(s, 201, "{body}");
    wait_http(&h.router, &format!("/v2/apps/{longest}"), "running", |v| {
        running(v) == 1
    })
    .await;
    // A relative id that becomes too long inside its group: the path names the app.
    let short = "a".repeat(MAX_SERVICE_ID_LEN - 1); // "/g/" + it: one too many
    let (s, _, body) = req(
        &h.router,
        "POST",
        "/v2/groups",
        Some(json!({"id": "/g", "apps": [app(&short)]})),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["details"][0]["path"], "/apps(0)/id");
    // A group id that is too long.
    let (s, _, body) = req(
        &h.router,
        "POST",
        "/v2/groups",
        Some(json!({"id": format!("/{longest}b"), "apps": []})),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["details"][0]["path"], "/id");
}

#[tokio::test]
async fn store_key_errors_from_user_input_are_422() {
    let h = harness(1, SimOptions::default()).await;
    let app = json!({"id":"/v","cmd":"sleep 100","cpus":0.1,"mem":16,"instances":0});
    req(&h.router, "POST", "/v2/apps", Some(app)).await;
    // A version with a control character is not a usable store key.
    let (s, _, body) = req(
        &h.router,
        "PUT",
        "/v2/apps/v",
        Some(json!({"version": "2026\u{1}x"})),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["details"][0]["path"], "/version");
    let (s, _, body) = req(&h.router, "GET", "/v2/apps/v/versions/a%01b", None).await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["details"][0]["path"], "/version");
    let (s, _, body) = req(
        &h.router,
        "PUT",
        "/v2/apps/v",
        Some(json!({"version": "x".repeat(5000)})),
    )
    .await;
    assert_eq!(s, 422, "{body}");
}

async fn send(h: &H, method: &str, uri: &str, content_type: Option<&str>, body: &Value) -> u16 {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    let (s, _, answer) = raw(&h.router, b.body(Body::from(body.to_string())).unwrap()).await;
    if s == 415 {
        assert!(answer["message"].as_str().is_some(), "{answer}");
    }
    s.as_u16()
}

#[tokio::test]
async fn bodies_must_be_json() {
    let h = harness(1, SimOptions::default()).await;
    let app = json!({"id":"/ct","cmd":"sleep 100","cpus":0.1,"mem":16,"instances":0});
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "application/jsonx",
    ] {
        assert_eq!(
            send(&h, "POST", "/v2/apps", Some(ct), &app).await,
            415,
            "{ct}"
        );
    }
    let (s, _, _) = req(&h.router, "GET", "/v2/apps/ct", None).await;
    assert_eq!(s, 404);
    // JSON with parameters, any case (Cosmos sends `application/json;charset=utf-8`).
    assert_eq!(
        send(
            &h,
            "POST",
            "/v2/apps",
            Some("Application/JSON; charset=UTF-8"),
            &app
        )
        .await,
        201
    );
    let scale = json!({"instances": 0, "cmd": "sleep 1"});
    for (method, uri) in [
        ("PUT", "/v2/apps/ct?force=true"),
        ("PATCH", "/v2/apps/ct?force=true"),
        ("PUT", "/v2/apps"),
        ("PATCH", "/v2/apps"),
        ("POST", "/v2/groups"),
        ("PUT", "/v2/groups/x"),
        ("POST", "/v2/tasks/delete"),
    ] {
        assert_eq!(
            send(&h, method, uri, Some("text/plain"), &scale).await,
            415,
            "{method} {uri}"
        );
    }
    assert_eq!(
        send(
            &h,
            "PUT",
            "/v2/apps/ct?force=true",
            Some("application/json;charset=utf-8"),
            &scale
        )
        .await,
        200
    );
    // No Content-Type at all: accepted (as Marathon's Jersey does), so bare clients work.
    assert_eq!(
        send(&h, "PATCH", "/v2/apps/ct?force=true", None, &scale).await,
        200
    );
    // Bodiless POSTs need no Content-Type.
    let r = Request::builder()
        .method("POST")
        .uri("/v2/apps/ct/restart?force=true")
        .body(Body::empty())
        .unwrap();
    let (s, _, body) = raw(&h.router, r).await;
    assert_eq!(s, 200, "{body}");
}
