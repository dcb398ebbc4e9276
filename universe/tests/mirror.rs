//! `universe mirror` against a local HTTP server that serves artifacts with right and wrong
//! checksums, supports Range requests, and counts what it was asked.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use universe::mirror::{mirror, MirrorOptions};

fn big() -> Vec<u8> {
    (0..200_000u32).map(|i| (i % 251) as u8).collect()
}

fn content(name: &str) -> Option<Vec<u8>> {
    match name {
        "good-cli" => Some(b"good cli binary".to_vec()),
        "bad-cli" => Some(b"tampered binary".to_vec()),
        "icon.png" => Some(b"\x89PNG icon".to_vec()),
        "big.tgz" => Some(big()),
        _ => None,
    }
}

type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

async fn artifact(
    State(log): State<Log>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> axum::response::Response {
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    log.lock().unwrap().push((name.clone(), range.clone()));
    let Some(body) = content(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Some(from) = range.and_then(|r| {
        r.strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok())
    }) {
        if from >= body.len() {
            return StatusCode::RANGE_NOT_SATISFIABLE.into_response();
        }
        return (
            StatusCode::PARTIAL_CONTENT,
            [(
                header::CONTENT_RANGE,
                format!("bytes {from}-{}/{}", body.len() - 1, body.len()),
            )],
            body[from..].to_vec(),
        )
            .into_response();
    }
    body.into_response()
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

async fn setup() -> (tempfile::TempDir, String, Log) {
    let log: Log = Arc::default();
    let app = axum::Router::new()
        .route("/files/{name}", get(artifact))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("src");
    let meta = |name: &str, version: &str| {
        json!({"packagingVersion": "4.0", "name": name, "version": version, "minDcosReleaseVersion": "1.10",
               "maintainer": "m", "description": "d", "tags": []})
    };
    let bin = |file: &str, hash: &str| json!({"kind": "executable", "url": format!("{base}/files/{file}"), "contentHash": [{"algo": "sha256", "value": hash}]});
    common::package(
        &root,
        "hello",
        0,
        meta("hello", "1.0"),
        Some(json!({
            "images": {"icon-small": format!("{base}/files/icon.png")},
            "assets": {"uris": {"big": format!("{base}/files/big.tgz")}, "container": {"docker": {"app": "nginx:1.25"}}},
            "cli": {"binaries": {
                "linux": {"x86-64": bin("good-cli", &sha(b"good cli binary"))},
                "darwin": {"x86-64": bin("bad-cli", &sha(b"the real binary"))}}}
        })),
    );
    common::package(
        &root,
        "other",
        0,
        meta("other", "1.0"),
        Some(json!({"assets": {"uris": {"x": format!("{base}/files/missing")}}})),
    );
    (tmp, base, log)
}

fn opts(tmp: &tempfile::TempDir, packages: &[&str]) -> MirrorOptions {
    MirrorOptions {
        repo: tmp.path().join("src").display().to_string(),
        out: tmp.path().join("out"),
        base_url: "http://mirror.local:8082/".into(),
        packages: packages.iter().map(|s| s.to_string()).collect(),
        concurrency: 3,
        progress: false,
    }
}

#[tokio::test]
async fn mirrors_verifies_rewrites_and_resumes() {
    let (tmp, _base, log) = setup().await;
    let out = tmp.path().join("out");

    // Resume: a partial download of big.tgz is already there.
    let report0 = mirror(&MirrorOptions {
        packages: vec!["nope".into()],
        ..opts(&tmp, &[])
    })
    .await;
    assert!(report0.unwrap_err().to_string().contains("nope"));
    let part_dir = out.join(".mirror/partial");
    std::fs::create_dir_all(&part_dir).unwrap();
    let url_big = format!("{}/files/big.tgz", _base);
    let key = hex::encode(Sha256::digest(url_big.as_bytes()));
    std::fs::write(part_dir.join(format!("{key}.part")), &big()[..50_000]).unwrap();

    let report = mirror(&opts(&tmp, &["hello"])).await.unwrap();
    let m = &report.manifest;
    assert_eq!(m.packages.len(), 1);
    assert_eq!(report.downloaded, 3);
    // The bad checksum fails that artifact only, with a clear error, and stores nothing.
    assert_eq!(m.failures.len(), 1);
    assert!(m.failures[0].url.ends_with("/bad-cli"));
    assert!(
        m.failures[0].error.contains("sha256 mismatch"),
        "{}",
        m.failures[0].error
    );
    assert!(!out
        .join("artifacts/sha256")
        .join(sha(b"tampered binary"))
        .exists());
    assert_eq!(
        std::fs::read_dir(&part_dir).unwrap().count(),
        0,
        "no half-written file left"
    );
    // The resumed download asked for the rest only and is complete.
    let ranges: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _)| n == "big.tgz")
        .map(|(_, r)| r.clone())
        .collect();
    assert_eq!(ranges, [Some("bytes=50000-".to_string())]);
    assert_eq!(
        std::fs::read(out.join("artifacts/sha256").join(sha(&big()))).unwrap(),
        big()
    );
    // Images recorded.
    assert_eq!(m.images.len(), 1);
    assert_eq!(m.images[0].image, "nginx:1.25");

    // URLs rewritten to the base URL, content-addressed, keeping the file name.
    let universe: Value =
        serde_json::from_slice(&std::fs::read(out.join("universe.json")).unwrap()).unwrap();
    let pkgs = universe["packages"].as_array().unwrap();
    assert_eq!(pkgs.len(), 1);
    let res = &pkgs[0]["resource"];
    let good = format!(
        "http://mirror.local:8082/artifacts/sha256/{}/good-cli",
        sha(b"good cli binary")
    );
    assert_eq!(
        res["cli"]["binaries"]["linux"]["x86-64"]["url"],
        json!(good)
    );
    assert!(res["cli"]["binaries"]["darwin"]["x86-64"]["url"]
        .as_str()
        .unwrap()
        .ends_with("/files/bad-cli"));
    assert_eq!(
        res["assets"]["uris"]["big"],
        json!(format!(
            "http://mirror.local:8082/artifacts/sha256/{}/big.tgz",
            sha(&big())
        ))
    );
    assert!(out.join("mirror-manifest.json").is_file());

    // `universe serve` hosts the mirrored artifacts.
    let app = universe::serve::router(out.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let path = good.strip_prefix("http://mirror.local:8082").unwrap();
    let body = reqwest::get(format!("http://{addr}{path}"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&body[..], b"good cli binary");

    // A second run reuses what is there and only retries the failure.
    log.lock().unwrap().clear();
    let again = mirror(&opts(&tmp, &["hello@1.0"])).await.unwrap();
    assert_eq!(again.reused, 3);
    assert_eq!(again.downloaded, 0);
    assert_eq!(again.manifest.failures.len(), 1);
    let asked: Vec<_> = log.lock().unwrap().iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(asked, ["bad-cli"]);
}

#[tokio::test]
async fn missing_artifact_is_reported() {
    let (tmp, _base, _log) = setup().await;
    let report = mirror(&opts(&tmp, &["other"])).await.unwrap();
    assert_eq!(report.manifest.failures.len(), 1);
    assert!(report.manifest.failures[0].error.contains("404"));
}

#[tokio::test]
async fn mirrors_from_a_repository_url() {
    let (tmp, _base, _log) = setup().await;
    // Host the source repository with `universe serve` and mirror from its /repo URL.
    let built = tmp.path().join("built");
    common::build(&tmp.path().join("src"), &built);
    let app = universe::serve::router(built);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let o = MirrorOptions {
        repo: format!("http://{addr}/repo"),
        ..opts(&tmp, &["hello"])
    };
    let report = mirror(&o).await.unwrap();
    assert_eq!(report.manifest.packages.len(), 1);
    assert_eq!(report.downloaded, 3);
    // A URL that is not a repository is refused with the reason.
    let o = MirrorOptions {
        repo: format!("http://{addr}/health"),
        ..opts(&tmp, &[])
    };
    let err = mirror(&o).await.unwrap_err().to_string();
    assert!(err.contains("Content-Type"), "{err}");
}
