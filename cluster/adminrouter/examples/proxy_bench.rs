//! Admin Router proxy overhead at a fixed request rate (open loop).
//!
//! Starts a tiny upstream and an Admin Router in front of it (on loopback), then sends
//! `--rate` requests/s for `--secs` seconds (after a warm-up) three ways: directly to the
//! upstream, through the Admin Router with auth off, and through it with auth on (a token in
//! `Authorization: token=…`). Prints p50/p90/p99 latencies and the p50 overhead over direct.
//!
//! ```sh
//! cargo run --release -p dcos-adminrouter --example proxy_bench -- [RATE] [SECS]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use bytes::Bytes;
use dcos_adminrouter::auth::{AuthConfig, Credential, Superuser};
use dcos_adminrouter::store::MemoryAuthStore;
use dcos_adminrouter::{AdminRouter, AdminRouterConfig};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

async fn upstream() -> String {
    let app = Router::new().fallback(|| async { "{\"apps\":[]}" });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    format!("http://{addr}")
}

async fn router(upstream: &str, auth: bool) -> (String, Option<String>) {
    let mut cfg = AdminRouterConfig::new("00000000-0000-4000-8000-000000000000");
    cfg.marathon = Some(upstream.to_string());
    let mut token = None;
    cfg.auth = if auth {
        let mut a = AuthConfig::enabled(Arc::new(MemoryAuthStore::new()));
        a.superuser = Some(Superuser {
            uid: "bench".into(),
            credential: Credential::Plain("bench".into()),
        });
        a.password_cost = dcos_adminrouter::auth::PasswordCost::Fast;
        a
    } else {
        AuthConfig::disabled()
    };
    let ar = AdminRouter::new(cfg).expect("admin router");
    if auth {
        token = Some(ar.auth().issue_token("bench").expect("token"));
    }
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(ar.serve(l));
    (format!("http://{addr}"), token)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run(url: &str, token: Option<&str>, rate: u64, secs: u64) -> Vec<Duration> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build_http();
    let client = Arc::new(client);
    let uri: hyper::Uri = url.parse().expect("uri");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let total = rate * secs;
    let warmup = rate; // one second
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..(total + warmup) {
        tick.tick().await;
        let client = client.clone();
        let uri = uri.clone();
        let tx = tx.clone();
        let token = token.map(|t| format!("token={t}"));
        tokio::spawn(async move {
            let mut req = hyper::Request::get(uri);
            if let Some(t) = token {
                req = req.header("authorization", t);
            }
            let req = req.body(Empty::new()).expect("request");
            let start = Instant::now();
            let ok = match client.request(req).await {
                Ok(resp) => {
                    let status = resp.status();
                    resp.into_body().collect().await.is_ok() && status.is_success()
                }
                Err(_) => false,
            };
            let elapsed = start.elapsed();
            if i >= warmup {
                let _ = tx.send((elapsed, ok));
            }
        });
    }
    drop(tx);
    let mut out = Vec::with_capacity(total as usize);
    let mut failures = 0;
    while let Some((d, ok)) = rx.recv().await {
        if ok {
            out.push(d);
        } else {
            failures += 1;
        }
    }
    if failures > 0 {
        eprintln!("  {failures} failed requests");
    }
    out.sort();
    out
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let rate: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000)
        .max(1);
    let secs: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(10)
        .max(1);
    let up = upstream().await;
    let (ar_open, _) = router(&up, false).await;
    let (ar_auth, token) = router(&up, true).await;
    let path = "/v2/apps";
    println!("rate {rate} req/s, {secs} s measured per case (+1 s warm-up), GET {path}, loopback");
    println!(
        "{:<28} {:>8} {:>10} {:>10} {:>10}",
        "case", "n", "p50 µs", "p90 µs", "p99 µs"
    );
    let direct = run(&format!("{up}{path}"), None, rate, secs).await;
    let d50 = pct(&direct, 0.5);
    let cases = [
        ("direct to upstream", direct),
        (
            "via admin router, auth off",
            run(
                &format!("{ar_open}/service/marathon{path}"),
                None,
                rate,
                secs,
            )
            .await,
        ),
        (
            "via admin router, auth on",
            run(
                &format!("{ar_auth}/service/marathon{path}"),
                token.as_deref(),
                rate,
                secs,
            )
            .await,
        ),
    ];
    for (name, lat) in &cases {
        println!(
            "{:<28} {:>8} {:>10.1} {:>10.1} {:>10.1}",
            name,
            lat.len(),
            us(pct(lat, 0.5)),
            us(pct(lat, 0.9)),
            us(pct(lat, 0.99))
        );
    }
    for (name, lat) in cases.iter().skip(1) {
        println!(
            "p50 overhead ({name}): {:.1} µs",
            us(pct(lat, 0.5)) - us(d50)
        );
    }
}
