#![allow(dead_code)]

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use dcos_marathon::sim::{SimMaster, SimOptions};
use dcos_metronome::{Metronome, MetronomeConfig};
use dcos_store::{EmbeddedStore, Store};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// A clock the test moves by hand (epoch ms).
#[derive(Clone)]
pub struct TestClock(pub Arc<AtomicI64>);

impl TestClock {
    pub fn at(rfc3339: &str) -> TestClock {
        let t = chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis();
        TestClock(Arc::new(AtomicI64::new(t)))
    }
    pub fn set(&self, rfc3339: &str) {
        let t = chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis();
        self.0.store(t, Ordering::SeqCst);
    }
    pub fn advance_secs(&self, s: i64) {
        self.0.fetch_add(s * 1000, Ordering::SeqCst);
    }
    pub fn clock(&self) -> dcos_metronome::Clock {
        let c = self.0.clone();
        Arc::new(move || c.load(Ordering::SeqCst))
    }
}

pub struct H {
    pub sim: Arc<SimMaster>,
    pub m: Metronome,
    pub router: Router,
    pub store: Arc<dyn Store>,
    pub clock: TestClock,
}

pub fn config() -> MetronomeConfig {
    MetronomeConfig {
        tick: Duration::from_millis(20),
        max_body_bytes: 64 * 1024,
        ..MetronomeConfig::default()
    }
}

/// A Metronome over a simulated master with `agents` agents of 4 cpus / 4 GB, its clock
/// stopped at 2030-01-01T00:00:30Z.
pub async fn harness(agents: usize, opts: SimOptions) -> H {
    let sim = SimMaster::new(opts);
    for i in 0..agents {
        sim.add_simple_agent(&format!("agent-{i}"), 4.0, 4096.0);
    }
    sim.spawn_ticker(Duration::from_millis(20));
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::in_memory());
    start(sim, store, TestClock::at("2030-01-01T00:00:30Z"))
}

pub fn start(sim: Arc<SimMaster>, store: Arc<dyn Store>, clock: TestClock) -> H {
    let m = Metronome::start_with_clock(sim.clone(), store.clone(), config(), clock.clock())
        .expect("start");
    let router = m.router();
    H {
        sim,
        m,
        router,
        store,
        clock,
    }
}

pub async fn req(
    router: &Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
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

pub async fn raw(router: &Router, r: Request<Body>) -> (StatusCode, Value) {
    let resp = router.clone().oneshot(r).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, v)
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

/// Polls `GET uri` until `f` holds (5 s at most); returns the last body.
pub async fn wait_http<F: FnMut(&Value) -> bool>(
    router: &Router,
    uri: &str,
    what: &str,
    mut f: F,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..500 {
        let (_, v) = req(router, "GET", uri, None).await;
        if f(&v) {
            return v;
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}; last response {last}");
}

/// The simulated tasks whose id starts with `prefix`.
pub fn sim_tasks(sim: &SimMaster, prefix: &str) -> Vec<dcos_marathon::sim::SimTask> {
    sim.tasks()
        .into_iter()
        .filter(|t| t.info.task_id.0.starts_with(prefix))
        .collect()
}
