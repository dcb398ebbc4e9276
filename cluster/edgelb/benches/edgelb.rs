//! Bench binary: 1,000 apps × 3 tasks (half with a vhost) → parse, generate, `haproxy -c`,
//! and a validated hitless reload of a real HAProxy bound on loopback.
//! Run: `cargo bench -p dcos-edgelb --bench edgelb` (prints figures; skips without haproxy).

use std::time::{Duration, Instant};

use dcos_edgelb::config::{generate, Options};
use dcos_edgelb::haproxy::{self, Haproxy};
use dcos_edgelb::model::parse_apps;
use serde_json::{json, Value};

const APPS: usize = 1000;
const TASKS: usize = 3;

fn apps_json(ports: &[u16], drop_task_of: Option<usize>) -> Vec<u8> {
    let apps: Vec<Value> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut labels = json!({"HAPROXY_GROUP": "external"});
            if i % 2 == 0 {
                labels["HAPROXY_0_VHOST"] = json!(format!("app{i}.example.com"));
            }
            let tasks: Vec<Value> = (0..TASKS)
                .filter(|t| drop_task_of != Some(i) || *t != 0)
                .map(|t| {
                    json!({"id": format!("app{i}.{t}"), "host": "127.0.0.1",
                           "ports": [40000 + t], "state": "TASK_RUNNING"})
                })
                .collect();
            json!({"id": format!("/bench/app{i}"), "labels": labels,
                   "portDefinitions": [{"port": p}], "tasks": tasks})
        })
        .collect();
    serde_json::to_vec(&json!({ "apps": apps })).unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(bin) = haproxy::find_binary() else {
        println!("SKIP: haproxy is not installed (apt-get install -y haproxy)");
        return;
    };
    // 1,000 free loopback ports (held together so they are distinct, then released).
    let holders: Vec<std::net::TcpListener> = (0..APPS + 1)
        .filter_map(|_| std::net::TcpListener::bind("127.0.0.1:0").ok())
        .collect();
    let mut ports: Vec<u16> = holders
        .iter()
        .filter_map(|l| l.local_addr().ok().map(|a| a.port()))
        .collect();
    drop(holders);
    let Some(http_port) = ports.pop() else {
        println!("SKIP: no free ports");
        return;
    };
    let opts = Options {
        bind_addr: "127.0.0.1".into(),
        http_port: Some(http_port),
        stats_port: None,
        ..Options::default()
    };
    let resolve = |h: &str| h.parse().ok();

    let body = apps_json(&ports, None);
    let t = Instant::now();
    let (apps, _) = parse_apps(&body).expect("parse");
    let parse = t.elapsed();
    let mut gens = Vec::new();
    let mut g = generate(&apps, &opts, &resolve, &|_| false);
    for _ in 0..20 {
        let t = Instant::now();
        g = generate(&apps, &opts, &resolve, &|_| false);
        gens.push(t.elapsed());
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut checks = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        haproxy::validate(&bin, dir.path(), &g.text)
            .await
            .expect("valid");
        checks.push(t.elapsed());
    }
    let t = Instant::now();
    let mut h = match Haproxy::start(&bin, dir.path(), &g.text).await {
        Ok(h) => h,
        Err(e) => {
            println!("SKIP: haproxy did not start: {e}");
            return;
        }
    };
    let start = t.elapsed();

    // Each round: a task of one app goes away → parse + generate + validate + reload.
    let mut rounds = Vec::new();
    let mut applies = Vec::new();
    for r in 0..10 {
        let body = apps_json(&ports, Some(r * 97 % APPS));
        let t = Instant::now();
        let (apps, _) = parse_apps(&body).expect("parse");
        let g = generate(&apps, &opts, &resolve, &|_| false);
        let ta = Instant::now();
        if let Err(e) = h.apply(&g.text).await {
            println!("reload failed: {e}");
            h.stop().await;
            return;
        }
        applies.push(ta.elapsed());
        rounds.push(t.elapsed());
    }
    h.stop().await;

    println!(
        "edgelb bench: {APPS} apps x {TASKS} tasks, {} backends, {} servers, config {} KiB",
        g.backends,
        g.servers,
        g.text.len() / 1024
    );
    println!(
        "  parse /v2/apps body ({} KiB): {:.1} ms",
        body.len() / 1024,
        ms(parse)
    );
    println!(
        "  generate config (median of 20): {:.2} ms",
        ms(median(gens))
    );
    println!(
        "  haproxy -c (median of 5):       {:.1} ms",
        ms(median(checks))
    );
    println!("  haproxy start (first config):   {:.1} ms", ms(start));
    println!(
        "  validate + install + reload until the new worker runs (median of 10): {:.1} ms (max {:.1} ms)",
        ms(median(applies.clone())),
        ms(applies.iter().max().copied().unwrap_or_default())
    );
    println!(
        "  parse + generate + validate + reload (median of 10): {:.1} ms (max {:.1} ms; goal <= 1000 ms)",
        ms(median(rounds.clone())),
        ms(rounds.iter().max().copied().unwrap_or_default())
    );
}
