//! A refused write is reported clearly, never as `unhandled_exception`, and not kept: Marathon
//! answering 503 because its store refused the write, and Cosmos's own store refusing the
//! repository list. The cluster's internal credential goes to Marathon and the master only.

mod common;

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use common::*;
use dcos_store::{EmbeddedStore, FaultyStore, Store};
use serde_json::json;

const REFUSED: &str = "the cluster store refused the write: store I/O error at master/store/wal: \
                       No space left on device (os error 28); nothing was changed";

fn assert_bad_gateway(r: &Answer) {
    assert_eq!(r.status, 502, "{}", r.body);
    assert_eq!(r.body["type"], "MarathonBadGateway", "{}", r.body);
    assert_eq!(
        r.body["message"],
        format!("Received response status code 503 from Marathon: {REFUSED}")
    );
    assert_eq!(
        r.body["data"],
        json!({"marathonStatus": 503, "status": 502, "marathonMessage": REFUSED})
    );
}

#[tokio::test]
async fn marathon_refusing_writes_gets_a_clear_error() {
    let e = env().await;
    let refuse = || {
        *e.cluster.fail_writes_with.lock().expect("lock") =
            Some((503, json!({ "message": REFUSED })));
    };
    let accept = || *e.cluster.fail_writes_with.lock().expect("lock") = None;

    refuse();
    let r = e
        .pkg("install", "v2", json!({"packageName": "helloworld"}))
        .await;
    assert_bad_gateway(&r);
    accept();
    assert!(e.cluster.apps.lock().expect("lock").is_empty());

    let r = e
        .pkg(
            "install",
            "v2",
            json!({"packageName": "helloworld", "packageVersion": "0.4.0"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    refuse();
    // service/update: a non-200 is `unhandled_exception` in Cosmos; a 5xx names its cause.
    let r = e
        .svc(
            "update",
            json!({"appId": "/helloworld", "options": {"service": {"cpus": 2}}, "replace": false}),
        )
        .await;
    assert_bad_gateway(&r);
    let r = e
        .pkg("uninstall", "v1", json!({"packageName": "helloworld"}))
        .await;
    assert_bad_gateway(&r);
    accept();
    let app = e.cluster.apps.lock().expect("lock")["/helloworld"].clone();
    assert_eq!(app["cpus"], json!(1), "the refused update changed nothing");
    let r = e
        .pkg("uninstall", "v1", json!({"packageName": "helloworld"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn refused_repository_writes_are_reported_and_not_kept() {
    let inner: Arc<dyn Store> = Arc::new(EmbeddedStore::in_memory());
    let faulty = FaultyStore::new(inner.clone());
    faulty.set_failing(true);
    let store: Arc<dyn Store> = faulty.clone();
    let e = env_with(|cfg| cfg.store = store).await;
    let first = json!({"name": "V4TestUniverse", "uri": format!("{}/repo", e.repo)});

    // The default list cannot be stored: reads and installs still work (this was a 500
    // `unhandled_exception` during a full disk).
    let r = e.pkg("repository/list", "v1", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, json!({"repositories": [first]}));
    let r = e
        .pkg("install", "v2", json!({"packageName": "helloworld"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    let (second, _) = repo_server(second_repo_packages()).await;
    let second = json!({"name": "second", "uri": format!("{second}/repo")});
    let r = e.pkg("repository/add", "v1", second.clone()).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.body["type"], "ServiceUnavailable");
    let msg = r.body["message"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("the cluster store refused the write: ")
            && msg.contains("No space left on device")
            && msg.ends_with("; nothing was changed"),
        "{msg}"
    );
    assert_eq!(
        r.body["data"],
        json!({"serviceName": "store", "status": 503})
    );
    let r = e
        .pkg("repository/delete", "v1", json!({"name": "V4TestUniverse"}))
        .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.body["type"], "ServiceUnavailable");
    let r = e.pkg("repository/list", "v1", json!({})).await;
    assert_eq!(r.body, json!({"repositories": [first]}), "nothing kept");
    assert!(inner
        .get(cosmos::repo::REPO_LIST_KEY)
        .expect("get")
        .is_none());

    // The store accepts writes again.
    faulty.set_failing(false);
    let r = e.pkg("repository/add", "v1", second.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = e.pkg("repository/list", "v1", json!({})).await;
    assert_eq!(r.body, json!({"repositories": [first, second]}));
    assert!(inner
        .get(cosmos::repo::REPO_LIST_KEY)
        .expect("get")
        .is_some());
}

/// Records the internal credential header of every request (an Admin Router stand-in).
async fn recording_server() -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let router = axum::Router::new().fallback(move |headers: HeaderMap| {
        let s = s.clone();
        async move {
            s.lock().expect("lock").push(
                headers
                    .get(dcos_types::INTERNAL_TOKEN_HEADER)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            );
            axum::Json(json!({"version": "2.1.0"}))
        }
    });
    (serve(router).await, seen)
}

#[tokio::test]
async fn the_internal_token_goes_to_marathon_and_the_master_only() {
    let (ar, ar_seen) = recording_server().await;
    let e = env_with(|cfg| {
        cfg.internal_token = Some("cluster-secret".into());
        cfg.admin_router_url = Some(ar.clone());
    })
    .await;
    let (second, second_state) = repo_server(second_repo_packages()).await;
    let r = e
        .pkg(
            "repository/add",
            "v1",
            json!({"name": "second", "uri": format!("{second}/repo")}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = e
        .pkg("install", "v2", json!({"packageName": "frameworky"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = e.pkg("list", "v1", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Uninstalling a framework: Marathon, then the master's frameworks and teardown.
    let r = e
        .pkg("uninstall", "v1", json!({"packageName": "frameworky"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(e.cluster.teardowns.lock().expect("lock").len(), 1);

    let seen = e.cluster.internal_tokens_seen.lock().expect("lock").clone();
    for path in ["/v2/apps", "/master/frameworks", "/master/teardown"] {
        assert!(
            seen.iter().any(|(p, _)| p.starts_with(path)),
            "{path}: {seen:?}"
        );
    }
    for (path, token) in &seen {
        assert_eq!(token.as_deref(), Some("cluster-secret"), "{path}");
    }
    // Repositories and Admin Router never see it.
    for st in [&e.repo_state, &second_state] {
        assert!(st.hits.load(std::sync::atomic::Ordering::SeqCst) > 0);
        assert!(st.internal_tokens.lock().expect("lock").is_empty());
    }
    let ar_seen = ar_seen.lock().expect("lock").clone();
    assert!(!ar_seen.is_empty(), "the DC/OS version was read");
    assert!(ar_seen.iter().all(Option::is_none), "{ar_seen:?}");
}

#[tokio::test]
async fn without_an_internal_token_none_is_sent() {
    let e = env().await;
    let r = e
        .pkg("install", "v2", json!({"packageName": "helloworld"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = e.cluster.internal_tokens_seen.lock().expect("lock").clone();
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|(_, t)| t.is_none()), "{seen:?}");
}
