#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use dcos_marathon::sim::{SimMaster, SimOptions};
use dcos_marathon::{Marathon, MarathonConfig};
use dcos_store::{EmbeddedStore, Store};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub struct H {
    pub sim: Arc<SimMaster>,
    pub m: Marathon,
    pub router: Router,
    pub store: Arc<dyn Store>,
}

pub fn config() -> MarathonConfig {
    MarathonConfig {
        tick: Duration::from_millis(50),
        kill_retry_seconds: 5.0,
        decline_refuse_seconds: 120.0,
        unfit_refuse_seconds: 0.2,
        accept_refuse_seconds: 0.05,
        max_body_bytes: 64 * 1024,
        ..MarathonConfig::default()
    }
}

/// A Marathon over a simulated master with `agents` agents of 4 cpus / 4 GB.
pub async fn harness(agents: usize, opts: SimOptions) -> H {
    let sim = SimMaster::new(opts);
    for i in 0..agents {
        sim.add_simple_agent(&format!("agent-{i}"), 4.0, 4096.0);
    }
    sim.spawn_ticker(Duration::from_millis(20));
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::in_memory());
    start(sim, store).await
}

pub async fn start(sim: Arc<SimMaster>, store: Arc<dyn Store>) -> H {
    start_with(sim, store, config()).await
}

pub async fn start_with(sim: Arc<SimMaster>, store: Arc<dyn Store>, config: MarathonConfig) -> H {
    let m = Marathon::start(sim.clone(), store.clone(), config).expect("start");
    let router = m.router();
    H {
        sim,
        m,
        router,
        store,
    }
}

pub async fn req(
    router: &Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Value) {
    let mut b = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(uri)
        .header("accept", "application/json");
    let body = match body {
        Some(v) => {
            b = b.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    raw(router, b.body(body).unwrap()).await
}

pub async fn raw(router: &Router, r: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let resp = router.clone().oneshot(r).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, headers, v)
}

/// Polls `f` until it is true (5 s at most).
pub async fn wait_for<F: FnMut() -> bool>(what: &str, mut f: F) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

pub async fn wait_http<F: FnMut(&Value) -> bool>(
    router: &Router,
    uri: &str,
    what: &str,
    mut f: F,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..500 {
        let (_, _, v) = req(router, "GET", uri, None).await;
        if f(&v) {
            return v;
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}; last response {last}");
}

pub async fn deployments_done(router: &Router) {
    wait_http(router, "/v2/deployments", "no deployments", |v| {
        v.as_array().is_some_and(|a| a.is_empty())
    })
    .await;
}
