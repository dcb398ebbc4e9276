//! Small upstream servers for routing/auth tests (axum on 127.0.0.1:0).
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use dcos_adminrouter::{AdminRouter, AdminRouterConfig};
use serde_json::{json, Value};
use tokio::sync::Notify;

/// What an echo upstream saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub service: String,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub authorization: Option<String>,
    pub cookie: Option<String>,
    pub host: Option<String>,
    pub forwarded_proto: Option<String>,
    /// Every `dcos-internal-token` value received.
    pub internal_tokens: Vec<String>,
    pub body_len: usize,
}

#[derive(Clone)]
pub struct Echo {
    pub name: String,
    pub log: Arc<Mutex<Vec<Seen>>>,
    /// The SSE endpoint sends its second event only after this is notified.
    pub release: Arc<Notify>,
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn echo(State(e): State<Echo>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if path.ends_with("/events") {
        let release = e.release.clone();
        let stream = async_stream(release);
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(stream))
            .unwrap();
    }
    let mut seen = Seen {
        service: e.name.clone(),
        method: req.method().to_string(),
        path,
        query: req.uri().query().map(str::to_string),
        authorization: header(&req, "authorization"),
        cookie: header(&req, "cookie"),
        host: header(&req, "host"),
        forwarded_proto: header(&req, "x-forwarded-proto"),
        internal_tokens: req
            .headers()
            .get_all("dcos-internal-token")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect(),
        body_len: 0,
    };
    let body = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    seen.body_len = body.len();
    e.log.lock().unwrap().push(seen.clone());
    let v = json!({
        "service": seen.service, "method": seen.method, "path": seen.path, "query": seen.query,
        "authorization": seen.authorization, "cookie": seen.cookie, "host": seen.host,
        "forwarded_proto": seen.forwarded_proto, "body_len": seen.body_len,
    });
    Response::builder()
        .header("content-type", "application/json")
        .header("x-upstream", e.name.as_str())
        .body(Body::from(v.to_string()))
        .unwrap()
}

fn async_stream(
    release: Arc<Notify>,
) -> impl futures::Stream<Item = Result<bytes::Bytes, Infallible>> + Send {
    futures::stream::unfold(0u32, move |state| {
        let release = release.clone();
        async move {
            match state {
                0 => Some((
                    Ok(bytes::Bytes::from_static(
                        b"event: event_stream_attached\ndata: {\"n\":1}\n\n",
                    )),
                    1,
                )),
                1 => {
                    release.notified().await;
                    Some((
                        Ok(bytes::Bytes::from_static(
                            b"event: deployment_success\ndata: {\"n\":2}\n\n",
                        )),
                        2,
                    ))
                }
                _ => None,
            }
        }
    })
}

/// Starts an echo upstream; returns its base URL and handle.
pub async fn start_echo(name: &str) -> (String, Echo) {
    let e = Echo {
        name: name.to_string(),
        log: Arc::new(Mutex::new(Vec::new())),
        release: Arc::new(Notify::new()),
    };
    let app = Router::new().fallback(echo).with_state(e.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), e)
}

/// An address where nothing listens.
pub async fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// Starts the admin router; returns its base URL.
pub async fn start_router(cfg: AdminRouterConfig) -> (String, AdminRouter) {
    let ar = AdminRouter::new(cfg).expect("admin router config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let served = ar.clone();
    tokio::spawn(async move {
        let _ = served.serve(listener).await;
    });
    (format!("http://{addr}"), ar)
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub async fn get_json(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = client.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub fn fixture(name: &str) -> String {
    let p = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Sends a request with the path exactly as given (reqwest would normalise it) and returns
/// (status, body).
pub async fn raw_request(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
