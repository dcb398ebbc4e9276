//! Marathon figures with a simulated master (no processes):
//!
//! 1. launch rate: 10,000 instances over 100 agents (the simulated master answers every launch
//!    with TASK_RUNNING at once), one app and 100 apps, store with and without fsync;
//! 2. `GET /v2/apps?embed=apps.tasks` with 10,000 apps and 100,000 tasks: latency (cold and
//!    warm, p50/p99) and the process's RSS.
//!
//! Run: `cargo bench -p dcos-marathon --bench marathon` (set `MARATHON_BENCH_QUICK=1` for a
//! smaller run).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use dcos_marathon::sim::{SimMaster, SimOptions};
use dcos_marathon::{Marathon, MarathonConfig};
use dcos_store::{EmbeddedStore, Options, Store};
use dcos_types::Resources;
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

/// Counts live heap bytes, to tell retained data from allocator fragmentation.
struct Counting;

static LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        LIVE.fetch_sub(l.size(), std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), std::sync::atomic::Ordering::Relaxed);
        unsafe { std::alloc::System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live_mb() -> f64 {
    LIVE.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e6
}

fn rss_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|x| x.parse().ok()))
        })
        .unwrap_or(0)
}

fn sim(agents: usize, cpus: f64, mem: f64, ports: (u16, u16)) -> Arc<SimMaster> {
    let sim = SimMaster::new(SimOptions {
        light: true,
        ..SimOptions::default()
    });
    for i in 0..agents {
        let mut r = std::collections::BTreeMap::new();
        r.insert(
            "*".to_string(),
            Resources::new(cpus, mem, 1_000_000.0).with_ports([ports]),
        );
        sim.add_agent(
            &format!("agent-{i:03}"),
            &format!("10.0.{}.{}", i / 250, i % 250 + 1),
            r,
            Default::default(),
        );
    }
    sim
}

fn config(max_per_offer: usize) -> MarathonConfig {
    MarathonConfig {
        max_tasks_per_offer: max_per_offer,
        tick: Duration::from_millis(200),
        max_body_bytes: 64 << 20,
        ..MarathonConfig::default()
    }
}

async fn call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<String>,
) -> (u16, usize) {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header("accept", "application/json");
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    let r = b
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .unwrap();
    let resp = router.clone().oneshot(r).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, bytes.len())
}

async fn wait_running(m: &Marathon, n: usize) -> Duration {
    let t0 = Instant::now();
    loop {
        let (_, _, running, deployments) = m.summary();
        if running >= n && deployments == 0 {
            return t0.elapsed();
        }
        if t0.elapsed() > Duration::from_secs(600) {
            panic!("gave up waiting for {n} running tasks (have {running})");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn launch_rate(label: &str, apps: usize, per_app: usize, fsync: bool) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        EmbeddedStore::open_with(
            dir.path(),
            Options {
                fsync,
                ..Options::default()
            },
        )
        .unwrap(),
    );
    let total = apps * per_app;
    let sim = sim(100, 200.0, 200.0 * 64.0, (31000, 32999));
    sim.spawn_ticker(Duration::from_millis(50));
    let m = Marathon::start(sim.clone(), store, config(100)).unwrap();
    let router = m.router();
    let defs: Vec<_> = (0..apps)
        .map(|i| json!({"id": format!("/bench/app-{i:05}"), "cmd": "sleep 3600", "cpus": 1.0, "mem": 32, "instances": per_app}))
        .collect();
    let t0 = Instant::now();
    let (status, _) = call(
        &router,
        "PUT",
        "/v2/apps",
        Some(serde_json::Value::Array(defs).to_string()),
    )
    .await;
    assert_eq!(status, 200);
    let took = wait_running(&m, total).await.max(t0.elapsed());
    println!(
        "launch  {label:<44} {total:>6} tasks RUNNING + deployment done in {:>7.1} ms = {:>8.0} launches/s",
        took.as_secs_f64() * 1000.0,
        total as f64 / took.as_secs_f64()
    );
}

async fn list_latency(apps: usize, per_app: usize, requests: usize) {
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::in_memory());
    let total = apps * per_app;
    let agents = 100;
    let per_agent = total.div_ceil(agents) + 10;
    let sim = sim(
        agents,
        per_agent as f64 * 0.01 + 1.0,
        per_agent as f64 * 1.0 + 10.0,
        (20000, 20000 + per_agent as u16),
    );
    sim.spawn_ticker(Duration::from_millis(50));
    let per_offer = std::env::var("MARATHON_BENCH_PER_OFFER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let m = Marathon::start(sim.clone(), store, config(per_offer)).unwrap();
    let router = m.router();
    let t0 = Instant::now();
    let defs: Vec<_> = (0..apps)
        .map(|i| {
            json!({"id": format!("/g{:02}/app-{i:05}", i % 50), "cmd": "sleep 3600", "cpus": 0.01, "mem": 1,
                   "instances": per_app, "labels": {"team": format!("t{}", i % 7)},
                   "portDefinitions": [{"port": 0, "name": "http"}],
                   "healthChecks": [{"protocol": "MESOS_HTTP", "portIndex": 0}]})
        })
        .collect();
    let (status, _) = call(
        &router,
        "PUT",
        "/v2/apps",
        Some(serde_json::Value::Array(defs).to_string()),
    )
    .await;
    assert_eq!(status, 200);
    let took = wait_running(&m, total).await.max(t0.elapsed());
    println!(
        "setup   {apps} apps x {per_app} = {total} tasks RUNNING in {:.1} s ({:.0} launches/s)",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64()
    );
    println!(
        "memory  RSS after setup {:.0} MB; live heap {:.0} MB",
        rss_kb("VmRSS:") as f64 / 1024.0,
        live_mb()
    );
    // Give freed launch-time buffers back to the OS to show what is actually retained.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::malloc_trim(0);
    }
    println!(
        "memory  RSS after setup, after malloc_trim {:.0} MB (retained state)",
        rss_kb("VmRSS:") as f64 / 1024.0
    );
    let mut times = Vec::with_capacity(requests);
    let mut size = 0;
    let cold = Instant::now();
    let (s, n) = call(&router, "GET", "/v2/apps?embed=apps.tasks", None).await;
    assert_eq!(s, 200);
    let cold = cold.elapsed();
    println!(
        "memory  RSS after the first GET {:.0} MB; live heap {:.0} MB",
        rss_kb("VmRSS:") as f64 / 1024.0,
        live_mb()
    );
    for _ in 0..requests {
        let t = Instant::now();
        let (s, n) = call(&router, "GET", "/v2/apps?embed=apps.tasks", None).await;
        assert_eq!(s, 200);
        size = n;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let _ = n;
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
    println!(
        "GET     /v2/apps?embed=apps.tasks {apps} apps / {total} tasks, {:.1} MB: cold {:.0} ms; warm p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({requests} requests)",
        size as f64 / 1e6,
        cold.as_secs_f64() * 1000.0,
        pct(0.50),
        pct(0.99),
        times[times.len() - 1],
    );
    // After a status change every task's JSON of that app is rebuilt, not the world.
    let t = Instant::now();
    let (s, _) = call(&router, "GET", "/v2/apps", None).await;
    assert_eq!(s, 200);
    println!(
        "GET     /v2/apps (no tasks) {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    println!(
        "memory  RSS {:.0} MB now, peak {:.0} MB (whole bench process, incl. the simulated master)",
        rss_kb("VmRSS:") as f64 / 1024.0,
        rss_kb("VmHWM:") as f64 / 1024.0
    );
}

fn main() {
    // `cargo bench` passes `--bench`; other arguments pick scenarios (`launch`, `list`).
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let want = |s: &str| args.is_empty() || args.iter().any(|a| a == s);
    let quick = std::env::var("MARATHON_BENCH_QUICK").is_ok();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let n = if quick { 1000 } else { 10_000 };
        if want("launch") {
            launch_rate(
                "1 app x 10,000 instances, 100 agents, no fsync",
                1,
                n,
                false,
            )
            .await;
            launch_rate(
                "100 apps x 100 instances, 100 agents, no fsync",
                100,
                n / 100,
                false,
            )
            .await;
            launch_rate("1 app x 10,000 instances, 100 agents, fsync", 1, n, true).await;
        }
        if !want("list") {
        } else if quick {
            list_latency(1000, 10, 10).await;
        } else {
            list_latency(10_000, 10, 30).await;
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
}
