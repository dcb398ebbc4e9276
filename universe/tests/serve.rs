//! HTTP tests of `universe serve`: content negotiation, 406, ETag/304, gzip, artifacts.

mod common;

use std::io::Read;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const V3: &str = "application/vnd.dcos.universe.repo+json;charset=utf-8;version=v3";
const V4: &str = "application/vnd.dcos.universe.repo+json;charset=utf-8;version=v4";
const V5: &str = "application/vnd.dcos.universe.repo+json;charset=utf-8;version=v5";
const COSMOS_ACCEPT: &str = "application/vnd.dcos.universe.repo+json;charset=utf-8;version=v5,application/vnd.dcos.universe.repo+json;charset=utf-8;version=v4,application/vnd.dcos.universe.repo+json;charset=utf-8;version=v3";

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn header(&self, h: header::HeaderName) -> &str {
        self.headers
            .get(h)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
    fn versions(&self) -> Vec<(String, String)> {
        self.json()["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().into(),
                    p["packagingVersion"].as_str().unwrap().into(),
                )
            })
            .collect()
    }
}

async fn get(app: &axum::Router, path: &str, headers: &[(header::HeaderName, &str)]) -> Resp {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Resp {
        status,
        headers,
        body,
    }
}

fn repo() -> (tempfile::TempDir, axum::Router) {
    let tmp = tempfile::tempdir().unwrap();
    common::tree(&tmp.path().join("src"));
    let out = tmp.path().join("out");
    common::build(&tmp.path().join("src"), &out);
    let app = universe::serve::router(out);
    (tmp, app)
}

#[tokio::test]
async fn negotiates_by_user_agent_and_accept() {
    let (_tmp, app) = repo();
    // Cosmos on DC/OS 2.0: everything, v5.
    let r = get(
        &app,
        "/repo",
        &[
            (header::ACCEPT, COSMOS_ACCEPT),
            (header::USER_AGENT, "cosmos/0.6.3 dcos/2.0.1"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header(header::CONTENT_TYPE), V5);
    assert_eq!(r.versions().len(), 3);
    // dcos/1.10 gets repo-up-to-1.10 as v4: no 5.0 package.
    let r = get(
        &app,
        "/repo",
        &[
            (header::ACCEPT, COSMOS_ACCEPT),
            (header::USER_AGENT, "dcos/1.10"),
        ],
    )
    .await;
    assert_eq!(r.header(header::CONTENT_TYPE), V4);
    assert_eq!(
        r.versions(),
        [
            ("hello".into(), "3.0".into()),
            ("hello".into(), "4.0".into())
        ]
    );
    // dcos/1.9 gets the v3 file (downgraded by the build, so 4.0 packages for 1.10+ are absent).
    let r = get(
        &app,
        "/repo",
        &[
            (header::ACCEPT, COSMOS_ACCEPT),
            (header::USER_AGENT, "dcos/1.9"),
        ],
    )
    .await;
    assert_eq!(r.header(header::CONTENT_TYPE), V3);
    assert_eq!(r.versions(), [("hello".into(), "3.0".into())]);
    // A v4-only client on DC/OS 2.0: converted, the 5.0 package dropped.
    let r = get(&app, "/repo", &[(header::ACCEPT, V4)]).await;
    assert_eq!(r.header(header::CONTENT_TYPE), V4);
    assert_eq!(
        r.versions(),
        [
            ("hello".into(), "3.0".into()),
            ("hello".into(), "4.0".into())
        ]
    );
    // A v3-only client: 4.0 downgraded to 3.0.
    let r = get(&app, "/repo", &[(header::ACCEPT, V3)]).await;
    assert_eq!(r.header(header::CONTENT_TYPE), V3);
    assert_eq!(
        r.versions(),
        [
            ("hello".into(), "3.0".into()),
            ("hello".into(), "3.0".into())
        ]
    );
    assert!(r.json()["packages"][1].get("upgradesFrom").is_none());
    // No Accept: the natural type.
    let r = get(&app, "/repo", &[]).await;
    assert_eq!(r.header(header::CONTENT_TYPE), V5);
    // Between versions: the newest index not newer than the client.
    let r = get(&app, "/repo", &[(header::USER_AGENT, "dcos/1.14")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header(header::CONTENT_TYPE), V5);
    // Unknown newer DC/OS: the latest.
    let r = get(&app, "/repo", &[(header::USER_AGENT, "dcos/3.1")]).await;
    assert_eq!(r.versions().len(), 3);
}

#[tokio::test]
async fn not_acceptable_has_a_clear_body() {
    let (_tmp, app) = repo();
    let r = get(&app, "/repo", &[(header::ACCEPT, "application/zip")]).await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    let body = String::from_utf8(r.body).unwrap();
    assert!(
        body.contains("application/zip") && body.contains("version=v5"),
        "{body}"
    );
    let r = get(&app, "/repo", &[(header::USER_AGENT, "dcos/1.7")]).await;
    assert_eq!(r.status, StatusCode::NOT_ACCEPTABLE);
    assert!(String::from_utf8(r.body).unwrap().contains("older"));
}

#[tokio::test]
async fn etag_and_gzip() {
    let (_tmp, app) = repo();
    let r = get(&app, "/repo", &[]).await;
    let etag = r.header(header::ETAG).to_string();
    assert!(etag.starts_with('"'));
    let r304 = get(&app, "/repo", &[(header::IF_NONE_MATCH, etag.as_str())]).await;
    assert_eq!(r304.status, StatusCode::NOT_MODIFIED);
    assert!(r304.body.is_empty());
    let other = get(&app, "/repo", &[(header::IF_NONE_MATCH, "\"nope\"")]).await;
    assert_eq!(other.status, StatusCode::OK);

    let gz = get(&app, "/repo", &[(header::ACCEPT_ENCODING, "gzip, deflate")]).await;
    assert_eq!(gz.header(header::CONTENT_ENCODING), "gzip");
    assert_ne!(gz.header(header::ETAG), etag);
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&gz.body[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, r.body);
    let no = get(&app, "/repo", &[(header::ACCEPT_ENCODING, "gzip;q=0")]).await;
    assert_eq!(no.header(header::CONTENT_ENCODING), "");
}

#[tokio::test]
async fn package_files_and_static() {
    let (tmp, app) = repo();
    let r = get(&app, "/package/hello", &[(header::USER_AGENT, "dcos/1.10")]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header(header::CONTENT_TYPE), V4);
    assert_eq!(r.versions().len(), 2);
    let r = get(
        &app,
        "/package/kube.json",
        &[(header::USER_AGENT, "dcos/1.10")],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = get(&app, "/repo-1.7", &[]).await;
    assert_eq!(r.json(), serde_json::json!({"packages": []}));
    assert_eq!(r.header(header::CONTENT_TYPE), V3);
    let r = get(&app, "/universe.json", &[]).await;
    assert_eq!(r.header(header::CONTENT_TYPE), V5);
    let r = get(&app, "/../etc/passwd", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = get(&app, "/%2e%2e/x", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Artifacts of a mirror: content-addressed.
    let hex = "ab".repeat(32);
    common::write(
        &tmp.path().join("out/artifacts/sha256").join(&hex),
        b"binary",
    );
    let r = get(&app, &format!("/artifacts/sha256/{hex}/tool.tgz"), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, b"binary");
    assert_eq!(r.header(header::CONTENT_TYPE), "application/gzip");
    let r = get(&app, "/artifacts/sha256/zz/tool.tgz", &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn head_requests_and_package_etags() {
    let (_tmp, app) = repo();
    let req = Request::head("/repo").body(Body::empty()).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], V5);
    assert!(resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .is_empty());
    let r = get(&app, "/package/hello", &[]).await;
    let etag = r.header(header::ETAG).to_string();
    let r = get(
        &app,
        "/package/hello",
        &[(header::IF_NONE_MATCH, &format!("\"x\", {etag}"))],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn real_listener_serves() {
    let (_tmp, app) = repo();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let resp = reqwest::Client::new()
        .get(format!("http://{addr}/repo"))
        .header("Accept", COSMOS_ACCEPT)
        .header("User-Agent", "cosmos/0.6.3 dcos/1.12")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], V5);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["packages"].as_array().unwrap().len(), 3);
    server.abort();
}
