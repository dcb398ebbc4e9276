//! Search/describe latency with one unreachable repository in the list vs only the good one
//! (issue 14 item 4), same run, real HTTP on loopback. The good repository serves the shared
//! corpus' `repo-up-to-2.0.json` index; the unreachable one is, in turn, a black hole (a
//! listener that accepts and never answers), an unresolvable name, and a closed port. Cosmos
//! runs with dcosd's fetch settings (timeout 10 s, 1 retry after 500 ms), other settings default.
//!
//! `cargo bench -p cosmos --bench unreachable`

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::header;
use axum::routing::get;
use axum::Router;

const REPO_V4: &str = "application/vnd.dcos.universe.repo+json;charset=utf-8;version=v4";

fn pct(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

async fn black_hole() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    format!("http://{addr}/repo")
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

struct Setup {
    name: &'static str,
    url: String,
    search: Vec<Duration>,
    describe: Vec<Duration>,
}

async fn call(client: &reqwest::Client, url: &str, rpc: &str, ver: &str, body: &str) -> Duration {
    let t = Instant::now();
    let resp = client
        .post(format!("{url}/package/{rpc}"))
        .header(
            header::ACCEPT,
            format!("application/vnd.dcos.package.{rpc}-response+json;charset=utf-8;version={ver}"),
        )
        .header(
            header::CONTENT_TYPE,
            format!("application/vnd.dcos.package.{rpc}-request+json;charset=utf-8;version=v1"),
        )
        .body(body.to_string())
        .send()
        .await
        .expect("cosmos");
    let status = resp.status();
    let bytes = resp.bytes().await.expect("body");
    let el = t.elapsed();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    el
}

fn main() {
    let gz = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/universe-build/repo-up-to-2.0.json.gz");
    let Ok(raw) = std::fs::read(&gz) else {
        eprintln!("SKIP: {} not found", gz.display());
        return;
    };
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(raw.as_slice())
        .read_to_end(&mut json)
        .expect("gunzip");
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let body = Arc::new(json);
        let good = serve(Router::new().route(
            "/repo",
            get(move || {
                let b = body.clone();
                async move { ([(header::CONTENT_TYPE, REPO_V4)], b.as_ref().clone()) }
            }),
        ))
        .await;
        let good = format!("{good}/repo");
        // (name, unreachable repository, Cosmos::warm_up and a pause before the first request)
        let bad: Vec<(&'static str, Option<String>, bool)> = vec![
            ("only the good repository", None, false),
            ("+ black hole (accepts, never answers)", Some(black_hole().await), false),
            ("+ black hole, after warm_up + 3.5 s", Some(black_hole().await), true),
            ("+ unresolvable name", Some("http://no-such-host.invalid/repo".into()), false),
            (
                "+ closed port",
                Some(format!("http://127.0.0.1:{}/repo", closed_port())),
                false,
            ),
        ];
        let client = reqwest::Client::new();
        let mut setups = Vec::new();
        println!("first request (cold: fetch + decode + merge of the good index; with the bad one listed first):");
        for (name, bad, warm) in bad {
            let store: Arc<dyn dcos_store::Store> =
                Arc::new(dcos_store::EmbeddedStore::in_memory());
            let mut cfg =
                cosmos::CosmosConfig::new("http://127.0.0.1:1", "http://127.0.0.1:1", store);
            cfg.default_repositories = bad
                .iter()
                .map(|u| cosmos::Repository::new("Universe", u.as_str()))
                .chain([cosmos::Repository::new("Local", good.as_str())])
                .collect();
            cfg.fetch.timeout = Duration::from_secs(10);
            cfg.fetch.retries = 1;
            cfg.fetch.retry_delay = Duration::from_millis(500);
            cfg.fetch.ttl = Duration::from_secs(3600);
            let cosmos = cosmos::Cosmos::new(cfg);
            if warm {
                cosmos.warm_up();
                tokio::time::sleep(Duration::from_millis(3500)).await;
            }
            let url = serve(cosmos.router()).await;
            let first = call(&client, &url, "search", "v1", "{\"query\":\"spark\"}").await;
            println!("  {name:<40} {first:?}");
            setups.push(Setup {
                name,
                url,
                search: Vec::new(),
                describe: Vec::new(),
            });
        }
        // alternate the setups so that machine noise hits them alike
        for _ in 0..rounds {
            for s in setups.iter_mut() {
                let d = call(&client, &s.url, "search", "v1", "{\"query\":\"spark\"}").await;
                s.search.push(d);
                let d = call(
                    &client,
                    &s.url,
                    "describe",
                    "v3",
                    "{\"packageName\":\"marathon-lb\"}",
                )
                .await;
                s.describe.push(d);
            }
        }
        let base_s = pct(setups[0].search.clone(), 0.5);
        let base_d = pct(setups[0].describe.clone(), 0.5);
        println!("then {rounds} rounds (search \"spark\", describe marathon-lb):");
        for s in &setups {
            let (sp50, dp50) = (pct(s.search.clone(), 0.5), pct(s.describe.clone(), 0.5));
            println!(
                "  {:<40} search p50 {sp50:?} p99 {:?} ({:.2}x)   describe p50 {dp50:?} p99 {:?} ({:.2}x)",
                s.name,
                pct(s.search.clone(), 0.99),
                sp50.as_secs_f64() / base_s.as_secs_f64(),
                pct(s.describe.clone(), 0.99),
                dp50.as_secs_f64() / base_d.as_secs_f64(),
            );
        }
    });
}
