//! No repository blocks the others (issue 14 item 4): one unreachable repository — a black
//! hole on loopback (accepts, never answers) or a name that does not resolve — plus a good one.
//! Requests answer from the good one and name the bad one in a `Warning` header; a repository
//! known to be down is not waited for again; one that comes back is used again.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use common::*;
use serde_json::{json, Value};

struct Reply {
    status: u16,
    warnings: Vec<String>,
    body: Value,
}

/// A package RPC, returning the `Warning` headers too.
async fn rpc(cosmos: &str, rpc: &str, version: &str, body: Value) -> Reply {
    let kind = rpc.replace('/', ".");
    let resp = reqwest::Client::new()
        .post(format!("{cosmos}/package/{rpc}"))
        .header(header::ACCEPT, p(&format!("{kind}-response"), version))
        .header(header::CONTENT_TYPE, p(&format!("{kind}-request"), "v1"))
        .body(body.to_string())
        .send()
        .await
        .expect("cosmos reachable");
    let status = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all(header::WARNING)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    let text = resp.text().await.expect("body");
    Reply {
        status,
        warnings,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// A TCP listener on loopback that accepts connections and never answers. Returns its URL and
/// the number of connections accepted.
async fn black_hole() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(sock);
        }
    });
    (format!("http://{addr}"), accepted)
}

/// Cosmos with `[Bad, Good]` (the bad repository first, so precedence is visible).
async fn cosmos_with(bad_uri: &str, fetch: cosmos::FetchConfig) -> (String, Arc<Cluster>) {
    let (good, _) = repo_server(fixture_packages()).await;
    let (marathon, cluster) = cluster().await;
    let store: Arc<dyn dcos_store::Store> = Arc::new(dcos_store::EmbeddedStore::in_memory());
    let mut cfg = cosmos::CosmosConfig::new(&marathon, &marathon, store);
    cfg.default_repositories = vec![
        cosmos::Repository::new("Bad", bad_uri),
        cosmos::Repository::new("Good", format!("{good}/repo")),
    ];
    cfg.fetch = fetch;
    (serve(cosmos::Cosmos::new(cfg).router()).await, cluster)
}

fn names_bad(r: &Reply, bad_uri: &str) {
    assert_eq!(r.warnings.len(), 1, "one warning: {:?}", r.warnings);
    let w = &r.warnings[0];
    assert!(w.starts_with("199 cosmos \""), "{w}");
    assert!(
        w.contains(&format!("repository 'Bad' ({bad_uri}) is unreachable")),
        "{w}"
    );
}

/// search, describe, install and "not found" with the bad repository left out.
async fn answers_from_the_good_one(cosmos: &str, cluster: &Cluster, bad_uri: &str) {
    let r = rpc(cosmos, "search", "v1", json!({"query": "hello"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["packages"][0]["name"], "helloworld");
    assert_eq!(r.body["packages"][0]["currentVersion"], "0.4.2");
    names_bad(&r, bad_uri);

    let r = rpc(
        cosmos,
        "describe",
        "v3",
        json!({"packageName": "helloworld"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["package"]["version"], "0.4.2");
    names_bad(&r, bad_uri);

    let r = rpc(
        cosmos,
        "install",
        "v2",
        json!({"packageName": "helloworld", "appId": "/hello-offline"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["appId"], "/hello-offline");
    names_bad(&r, bad_uri);
    assert!(cluster
        .apps
        .lock()
        .expect("lock")
        .contains_key("/hello-offline"));

    // a package only the bad repository could have: the error names it
    let r = rpc(
        cosmos,
        "describe",
        "v3",
        json!({"packageName": "only-there"}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["type"], "PackageNotFound");
    let msg = r.body["message"].as_str().expect("message");
    assert!(msg.starts_with("Package [only-there] not found"), "{msg}");
    assert!(
        msg.contains(&format!(
            "repository 'Bad' ({bad_uri}) could not be reached"
        )),
        "{msg}"
    );
    assert_eq!(
        r.body["data"]["unreachableRepositories"][0]["name"], "Bad",
        "{}",
        r.body
    );
    let r = rpc(
        cosmos,
        "describe",
        "v3",
        json!({"packageName": "helloworld", "packageVersion": "9.9.9"}),
    )
    .await;
    assert_eq!(r.body["type"], "VersionNotFound");
    assert!(r.body["message"]
        .as_str()
        .is_some_and(|m| m.contains("'Bad'")));
}

#[tokio::test]
async fn a_black_hole_repository_does_not_block_the_others() {
    let (hole, accepted) = black_hole().await;
    let bad_uri = format!("{hole}/repo");
    // the fetch itself would wait a minute; requests give up on it after 200 ms
    let (cosmos, cluster) = cosmos_with(
        &bad_uri,
        cosmos::FetchConfig {
            timeout: Duration::from_secs(60),
            answer_wait: Duration::from_millis(200),
            ..fast_fetch()
        },
    )
    .await;
    let r = rpc(&cosmos, "search", "v1", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    names_bad(&r, &bad_uri);
    assert!(
        r.warnings[0].contains("no answer within 200 ms"),
        "{:?}",
        r.warnings
    );
    answers_from_the_good_one(&cosmos, &cluster, &bad_uri).await;
    // one fetch, still hanging in the background: no request opened another or waited for it
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unresolvable_repository_does_not_block_the_others() {
    let bad_uri = "http://no-such-host.invalid/repo".to_string();
    let (cosmos, cluster) = cosmos_with(
        &bad_uri,
        cosmos::FetchConfig {
            // a DNS failure is not retried within a fetch, and the next try is a minute away
            retries: 3,
            retry_delay: Duration::from_secs(5),
            answer_wait: Duration::from_secs(30),
            down_retry_min: Duration::from_secs(60),
            ..fast_fetch()
        },
    )
    .await;
    let r = rpc(&cosmos, "search", "v1", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    names_bad(&r, &bad_uri);
    answers_from_the_good_one(&cosmos, &cluster, &bad_uri).await;
}

/// A repository server that hangs every request while `down` is set.
async fn flaky_repo(down: Arc<AtomicBool>, hits: Arc<AtomicUsize>) -> String {
    let body = serde_json::to_vec(&json!({ "packages": second_repo_packages() })).expect("json");
    let router = Router::new().route(
        "/repo",
        get(move |_h: HeaderMap| {
            let (down, hits, body) = (down.clone(), hits.clone(), body.clone());
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                if down.load(Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                (StatusCode::OK, [(header::CONTENT_TYPE, REPO_V4)], body).into_response()
            }
        }),
    );
    serve(router).await
}

#[tokio::test]
async fn a_repository_known_down_is_not_asked_again_before_its_retry() {
    let down = Arc::new(AtomicBool::new(true));
    let hits = Arc::new(AtomicUsize::new(0));
    let bad_uri = format!("{}/repo", flaky_repo(down.clone(), hits.clone()).await);
    let (cosmos, _cluster) = cosmos_with(
        &bad_uri,
        cosmos::FetchConfig {
            // the first request waits for the fetch to time out: then the repository is down
            timeout: Duration::from_millis(300),
            answer_wait: Duration::from_secs(30),
            down_retry_min: Duration::from_secs(3600),
            down_retry_max: Duration::from_secs(3600),
            ..fast_fetch()
        },
    )
    .await;
    let r = rpc(&cosmos, "search", "v1", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    names_bad(&r, &bad_uri);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // known down, next try an hour away: later requests do not ask it again (nor wait)
    for _ in 0..3 {
        let r = rpc(
            &cosmos,
            "describe",
            "v3",
            json!({"packageName": "helloworld"}),
        )
        .await;
        assert_eq!(r.body["package"]["version"], "0.4.2");
        names_bad(&r, &bad_uri);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_repository_that_comes_back_is_used_again_with_its_precedence() {
    let down = Arc::new(AtomicBool::new(true));
    let hits = Arc::new(AtomicUsize::new(0));
    let bad_uri = format!("{}/repo", flaky_repo(down.clone(), hits.clone()).await);
    let (cosmos, _cluster) = cosmos_with(
        &bad_uri,
        cosmos::FetchConfig {
            timeout: Duration::from_millis(200),
            answer_wait: Duration::from_secs(30),
            down_retry_min: Duration::from_millis(50),
            down_retry_max: Duration::from_millis(100),
            ..fast_fetch()
        },
    )
    .await;
    let r = rpc(&cosmos, "search", "v1", json!({"query": "hello"})).await;
    names_bad(&r, &bad_uri);
    assert_eq!(r.body["packages"][0]["currentVersion"], "0.4.2");
    down.store(false, Ordering::SeqCst);
    // retried in the background when a request comes after the backoff: poll until used
    let mut back = None;
    for _ in 0..200 {
        let r = rpc(
            &cosmos,
            "describe",
            "v3",
            json!({"packageName": "helloworld"}),
        )
        .await;
        if r.warnings.is_empty() {
            back = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let r = back.expect("the repository is used again once it answers");
    // it is first in the list: its helloworld 9.9.9 is "latest" again
    assert_eq!(r.body["package"]["version"], "9.9.9");
    let r = rpc(&cosmos, "search", "v1", json!({"query": "hello"})).await;
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.body["packages"][0]["currentVersion"], "9.9.9");
}
