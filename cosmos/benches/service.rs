//! Service figures over the shared corpus' 28 MB universe.json (a bench binary that prints its
//! figures): index load time, `/package/search` and `/package/render` latency (p50/p99, in
//! process through the router, no network).
//!
//! `cargo bench -p cosmos --bench service`

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

fn pct(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn main() {
    let gz = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/universe-build/universe.json.gz");
    let Ok(raw) = std::fs::read(&gz) else {
        eprintln!("SKIP: {} not found", gz.display());
        return;
    };
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(raw.as_slice())
        .read_to_end(&mut json)
        .expect("gunzip");
    println!("universe.json: {:.1} MB", json.len() as f64 / 1e6);

    // 1. load: decode + validate every package, then merge into a collection
    let mut loads = Vec::new();
    let mut n = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let pkgs = cosmos::repo::decode_repository(&json).expect("decode");
        n = pkgs.len();
        let coll = cosmos::repo::Collection::build(&[(Arc::from("u"), Arc::new(pkgs))]);
        loads.push(t.elapsed());
        drop(coll);
    }
    println!(
        "load universe.json ({n} packages): median {:?}, min {:?}",
        pct(loads.clone(), 0.5),
        loads.iter().min().copied().unwrap_or_default()
    );

    // 2. the service over a file:// repository of the same index
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("universe.json");
    std::fs::write(&path, &json).expect("write");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store: Arc<dyn dcos_store::Store> = Arc::new(dcos_store::EmbeddedStore::in_memory());
        let mut cfg = cosmos::CosmosConfig::new("http://127.0.0.1:1", "http://127.0.0.1:1", store);
        cfg.default_repositories = vec![cosmos::Repository::new("Universe", format!("file://{}", path.display()))];
        cfg.fetch.ttl = Duration::from_secs(3600);
        let router = cosmos::Cosmos::new(cfg).router();
        let call = |path: &'static str, kind: &'static str, body: String| {
            let router = router.clone();
            async move {
                let req = Request::post(path)
                    .header("host", "cosmos.local")
                    .header("accept", format!("application/vnd.dcos.package.{kind}-response+json;charset=utf-8;version=v1"))
                    .header("content-type", format!("application/vnd.dcos.package.{kind}-request+json;charset=utf-8;version=v1"))
                    .body(Body::from(body))
                    .expect("request");
                let t = Instant::now();
                let resp = router.oneshot(req).await.expect("infallible");
                let status = resp.status();
                let bytes = resp.into_body().collect().await.expect("body").to_bytes();
                let el = t.elapsed();
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
                (el, bytes.len())
            }
        };
        let t = Instant::now();
        call("/package/search", "search", "{\"query\":\"x\"}".into()).await;
        println!("first request (fetch file + decode + merge): {:?}", t.elapsed());

        for q in ["spark", "data*", ""] {
            let body = format!("{{\"query\":\"{q}\"}}");
            let mut v = Vec::new();
            let mut size = 0;
            for _ in 0..500 {
                let (d, s) = call("/package/search", "search", body.clone()).await;
                v.push(d);
                size = s;
            }
            println!(
                "/package/search {:<10} ({size} B): p50 {:?}, p99 {:?}",
                format!("{q:?}"),
                pct(v.clone(), 0.5),
                pct(v, 0.99)
            );
        }
        for (pkg, opts) in [
            ("cassandra", "{}"),
            ("marathon-lb", "{}"),
            ("spark", "{\"service\":{\"name\":\"spark-2\"}}"),
        ] {
            let body = format!("{{\"packageName\":\"{pkg}\",\"options\":{opts}}}");
            let mut v = Vec::new();
            let mut size = 0;
            // the first render prepares the package (template parse, validator compile)
            let (first, _) = call("/package/render", "render", body.clone()).await;
            for _ in 0..500 {
                let (d, s) = call("/package/render", "render", body.clone()).await;
                v.push(d);
                size = s;
            }
            println!(
                "/package/render {pkg:<12} opts {opts} ({size} B): first {first:?}, p50 {:?}, p99 {:?}",
                pct(v.clone(), 0.5),
                pct(v, 0.99)
            );
        }
    });
}
