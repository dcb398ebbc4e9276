//! Test harness: an in-process package repository server, a small Marathon + Mesos stand-in
//! (test-only, as the issue allows until the cluster's Marathon lands), and Cosmos itself, all
//! on 127.0.0.1 free ports.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};

pub const REPO_V4: &str = "application/vnd.dcos.universe.repo+json;charset=utf-8;version=v4";

pub fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

const HELLO_TEMPLATE: &str = r#"{
  "id": "{{service.name}}",
  "cpus": {{service.cpus}},
  "mem": {{service.mem}},
  "instances": 1,
  "cmd": "python3 -m http.server {{port}}",
  "container": {"type": "DOCKER", "docker": {"image": "{{resource.assets.container.docker.python}}", "network": "HOST"}},
  "labels": {"MY_LABEL": "x", "DCOS_PACKAGE_NAME": "overridden"}
}"#;

fn hello_config() -> Value {
    json!({"type": "object", "properties": {
        "service": {"type": "object", "properties": {
            "name": {"type": "string", "default": "helloworld"},
            "cpus": {"type": "number", "default": 1.0, "minimum": 0.1},
            "mem": {"type": "integer", "default": 512}
        }, "additionalProperties": false},
        "port": {"type": "integer", "default": 8080, "minimum": 1, "maximum": 65535}
    }, "additionalProperties": false})
}

fn hello(pv: &str, version: &str, release: u64, updates: Option<Value>) -> Value {
    let mut p = json!({
        "packagingVersion": pv, "name": "helloworld", "version": version, "releaseVersion": release,
        "maintainer": "support@mesosphere.io", "description": "Example DCOS application package",
        "tags": ["mesosphere", "example", "subcommand"], "website": "https://github.com/mesosphere/dcos-helloworld",
        "framework": false, "postInstallNotes": "A sample post-installation message",
        "postUninstallNotes": "A sample post-uninstall message",
        "marathon": {"v2AppMustacheTemplate": b64(HELLO_TEMPLATE)},
        "config": hello_config(),
        "resource": {
            "assets": {"container": {"docker": {"python": "python:3"}}, "uris": {"x": "http://example.invalid/x y.tgz"}},
            "images": {"icon-small": "https://example.invalid/small.png", "icon-medium": "https://example.invalid/m.png",
                       "icon-large": "https://example.invalid/l.png"}
        }
    });
    if let Some(u) = updates {
        p["upgradesFrom"] = u.clone();
        p["downgradesTo"] = u;
    }
    p
}

/// The fixture repository: helloworld like Cosmos' V4TestUniverse plus a few special packages.
pub fn fixture_packages() -> Vec<Value> {
    let mut hello010 = hello("2.0", "0.1.0", 0, None);
    hello010["resource"]
        .as_object_mut()
        .expect("resource")
        .remove("cli");
    vec![
        hello010,
        hello("4.0", "0.4.0", 3, None),
        hello("4.0", "0.4.1", 4, Some(json!(["0.4.0"]))),
        hello("4.0", "0.4.2", 5, Some(json!(["*"]))),
        json!({
            "packagingVersion": "3.0", "name": "cli-only", "version": "1.0", "releaseVersion": 0,
            "maintainer": "m", "description": "only a CLI", "tags": ["cli"], "selected": true,
            "resource": {"cli": {"binaries": {"linux": {"x86-64": {"kind": "executable",
                "url": "https://example.invalid/cli", "contentHash": [{"algo": "sha256", "value": "00"}]}}}}}
        }),
        json!({
            "packagingVersion": "3.0", "name": "frameworky", "version": "2.0", "releaseVersion": 1,
            "maintainer": "m", "description": "a framework", "tags": ["database"], "framework": true,
            "postUninstallNotes": "bye",
            "marathon": {"v2AppMustacheTemplate": b64(r#"{"id": "/frameworky", "cmd": "sleep 1000", "labels": {"DCOS_PACKAGE_FRAMEWORK_NAME": "{{name}}"}}"#)},
            "config": {"type": "object", "properties": {"name": {"type": "string", "default": "fw-one"}}}
        }),
        json!({
            "packagingVersion": "3.0", "name": "broken", "version": "1", "releaseVersion": 0,
            "maintainer": "m", "description": "renders to non-JSON", "tags": [],
            "marathon": {"v2AppMustacheTemplate": b64(r#"{"id": "/broken", "instances": {{n}}}"#)}
        }),
        json!({
            "packagingVersion": "3.0", "name": "sdk", "version": "1", "releaseVersion": 0,
            "maintainer": "m", "description": "an SDK service", "tags": [],
            "marathon": {"v2AppMustacheTemplate": b64(r#"{"id": "/sdk", "cmd": "sleep 1", "labels": {"DCOS_COMMONS_UNINSTALL": "true"}}"#)}
        }),
    ]
}

/// A second repository: a newer helloworld that must not win "latest" when added after.
pub fn second_repo_packages() -> Vec<Value> {
    let mut h = hello("4.0", "9.9.9", 99, None);
    h["description"] = json!("from the second repo");
    let mut dup = hello("4.0", "0.4.2", 77, None);
    dup["description"] = json!("duplicate version from the second repo");
    vec![h, dup]
}

#[derive(Default)]
pub struct RepoServerState {
    pub hits: AtomicUsize,
    pub not_modified: AtomicUsize,
    pub user_agents: Mutex<Vec<String>>,
    /// Values of the cluster's internal credential header received (must stay empty).
    pub internal_tokens: Mutex<Vec<String>>,
}

/// Serves repository indexes and every kind of broken answer.
pub async fn repo_server(packages: Vec<Value>) -> (String, Arc<RepoServerState>) {
    let body = serde_json::to_vec(&json!({ "packages": packages })).expect("json");
    let etag = format!("\"{}\"", body.len());
    let st = Arc::new(RepoServerState::default());
    let body = Arc::new(body);
    let (b1, e1, s1) = (body.clone(), etag.clone(), st.clone());
    let (b2, b3) = (body.clone(), body.clone());
    let router = Router::new()
        .route(
            "/repo",
            get(move |headers: HeaderMap| {
                let (b, e, s) = (b1.clone(), e1.clone(), s1.clone());
                async move {
                    s.hits.fetch_add(1, Ordering::SeqCst);
                    if let Some(t) = headers.get(dcos_types::INTERNAL_TOKEN_HEADER) {
                        s.internal_tokens
                            .lock()
                            .expect("lock")
                            .push(String::from_utf8_lossy(t.as_bytes()).into_owned());
                    }
                    if let Some(ua) = headers
                        .get(header::USER_AGENT)
                        .and_then(|v| v.to_str().ok())
                    {
                        s.user_agents.lock().expect("lock").push(ua.to_string());
                    }
                    if headers
                        .get(header::IF_NONE_MATCH)
                        .and_then(|v| v.to_str().ok())
                        == Some(e.as_str())
                    {
                        s.not_modified.fetch_add(1, Ordering::SeqCst);
                        return (StatusCode::NOT_MODIFIED, [(header::ETAG, e)]).into_response();
                    }
                    (
                        StatusCode::OK,
                        [
                            (header::CONTENT_TYPE, REPO_V4.to_string()),
                            (header::ETAG, e),
                        ],
                        b.as_ref().clone(),
                    )
                        .into_response()
                }
            }),
        )
        .route(
            "/gzip",
            get(move || {
                let b = b2.clone();
                async move {
                    use std::io::Write as _;
                    let mut enc =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    enc.write_all(&b).expect("gzip");
                    (
                        [
                            (header::CONTENT_TYPE, REPO_V4),
                            (header::CONTENT_ENCODING, "gzip"),
                        ],
                        enc.finish().expect("gzip"),
                    )
                }
            }),
        )
        .route(
            "/bare-type",
            get(move || {
                let b = b3.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/vnd.dcos.universe.repo+json",
                        )],
                        b.as_ref().clone(),
                    )
                }
            }),
        )
        .route(
            "/html",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html;charset=iso-8859-1")],
                    "<html>hi</html>",
                )
            }),
        )
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, "nope") }),
        )
        .route(
            "/down",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "down") }),
        )
        .route(
            "/invalid-json",
            get(|| async { ([(header::CONTENT_TYPE, REPO_V4)], "{\"packages\": [") }),
        )
        .route(
            "/bad-package",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, REPO_V4)],
                    r#"{"packages":[{"packagingVersion":"7.0","name":"x"}]}"#,
                )
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                ([(header::CONTENT_TYPE, REPO_V4)], "{\"packages\":[]}")
            }),
        )
        .route(
            "/redirect-https",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "https://127.0.0.1:1/repo")],
                )
            }),
        )
        .route(
            "/redirect-same",
            get(|| async { (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "/repo")]) }),
        )
        .route(
            "/brotli",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, REPO_V4),
                        (header::CONTENT_ENCODING, "br"),
                    ],
                    "xx",
                )
            }),
        )
        .route(
            "/download/{file}",
            get(|Path(file): Path<String>| async move {
                (
                    [(header::CONTENT_TYPE, "application/octet-stream")],
                    format!("content of {file}"),
                )
            }),
        );
    (serve(router).await, st)
}

/// Marathon + Mesos master stand-in: apps in memory, 409 on duplicates, 422 with
/// `{message, details}` for apps without an id, frameworks from `DCOS_PACKAGE_FRAMEWORK_NAME`.
#[derive(Default)]
pub struct Cluster {
    pub apps: Mutex<BTreeMap<String, Value>>,
    pub teardowns: Mutex<Vec<String>>,
    pub fail_create_with: Mutex<Option<u16>>,
    pub deployments: Mutex<Vec<String>>,
    /// When set, every request must carry exactly this Authorization header (else 401).
    pub require_auth: Mutex<Option<String>>,
    /// When true, every request gets 403.
    pub forbid: Mutex<bool>,
    /// Authorization headers seen.
    pub auth_seen: Mutex<Vec<Option<String>>>,
    /// The internal credential header of every request (`None`: absent), with its path.
    pub internal_tokens_seen: Mutex<Vec<(String, Option<String>)>>,
    /// When set, every write (POST/PUT/DELETE) gets this status and JSON body, as Marathon
    /// answers when its store refuses the write.
    pub fail_writes_with: Mutex<Option<(u16, Value)>>,
}

async fn guard(
    State(c): State<Arc<Cluster>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    c.auth_seen.lock().expect("lock").push(auth.clone());
    let token = req
        .headers()
        .get(dcos_types::INTERNAL_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    c.internal_tokens_seen
        .lock()
        .expect("lock")
        .push((req.uri().path().to_string(), token));
    let failing = c.fail_writes_with.lock().expect("lock").clone();
    if let Some((code, body)) = failing {
        if req.method() != axum::http::Method::GET {
            let status = StatusCode::from_u16(code).expect("status");
            return (status, axum::Json(body)).into_response();
        }
    }
    if *c.forbid.lock().expect("lock") {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"message": "forbidden"})),
        )
            .into_response();
    }
    let required = c.require_auth.lock().expect("lock").clone();
    if let Some(want) = required {
        if auth.as_deref() != Some(want.as_str()) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "acsjwt")],
                axum::Json(json!({"message": "unauthorized"})),
            )
                .into_response();
        }
    }
    next.run(req).await
}

fn norm(id: &str) -> String {
    if id.starts_with('/') {
        id.to_string()
    } else {
        format!("/{id}")
    }
}

async fn create_app(State(c): State<Arc<Cluster>>, body: Bytes) -> Response {
    if let Some(code) = *c.fail_create_with.lock().expect("lock") {
        let status = StatusCode::from_u16(code).expect("status");
        if code == 422 {
            return (
                status,
                axum::Json(json!({"message": "Object is not valid", "details": [{"path": "/cpus", "errors": ["error.min"]}]})),
            )
                .into_response();
        }
        return (status, "plain text failure").into_response();
    }
    let Ok(mut app) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"message": "Invalid JSON"})),
        )
            .into_response();
    };
    let Some(id) = app.get("id").and_then(Value::as_str).map(norm) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"message": "Object is not valid", "details": [{"path": "/id", "errors": ["error.path.missing"]}]})),
        )
            .into_response();
    };
    let mut apps = c.apps.lock().expect("lock");
    if apps.contains_key(&id) {
        return (
            StatusCode::CONFLICT,
            axum::Json(json!({"message": format!("An app with id [{id}] already exists.")})),
        )
            .into_response();
    }
    app["id"] = json!(id);
    apps.insert(id, app.clone());
    (StatusCode::CREATED, axum::Json(app)).into_response()
}

async fn list_apps(State(c): State<Arc<Cluster>>) -> Response {
    let apps: Vec<Value> = c.apps.lock().expect("lock").values().cloned().collect();
    axum::Json(json!({ "apps": apps })).into_response()
}

async fn get_app(State(c): State<Arc<Cluster>>, Path(id): Path<String>) -> Response {
    match c.apps.lock().expect("lock").get(&norm(&id)) {
        Some(a) => axum::Json(json!({ "app": a })).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": format!("App '{}' does not exist", norm(&id))})),
        )
            .into_response(),
    }
}

async fn put_app(State(c): State<Arc<Cluster>>, Path(id): Path<String>, body: Bytes) -> Response {
    let Ok(app) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "bad").into_response();
    };
    c.apps.lock().expect("lock").insert(norm(&id), app);
    let dep = format!("dep-{}", c.deployments.lock().expect("lock").len());
    axum::Json(json!({"deploymentId": dep, "version": "2020-01-01T00:00:00Z"})).into_response()
}

async fn delete_app(State(c): State<Arc<Cluster>>, Path(id): Path<String>) -> Response {
    match c.apps.lock().expect("lock").remove(&norm(&id)) {
        Some(_) => axum::Json(json!({"deploymentId": "d", "version": "v"})).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "no such app"})),
        )
            .into_response(),
    }
}

async fn frameworks(State(c): State<Arc<Cluster>>) -> Response {
    let fws: Vec<Value> = c
        .apps
        .lock()
        .expect("lock")
        .values()
        .filter_map(|a| {
            a.pointer("/labels/DCOS_PACKAGE_FRAMEWORK_NAME")
                .and_then(Value::as_str)
        })
        .map(|n| json!({"id": format!("fw-id-{n}"), "name": n}))
        .chain(
            // a framework whose app is already gone: still running in Mesos
            ["fw-one"]
                .iter()
                .map(|n| json!({"id": format!("fw-id-{n}"), "name": n})),
        )
        .collect();
    let mut seen = std::collections::HashSet::new();
    let fws: Vec<Value> = fws
        .into_iter()
        .filter(|f| seen.insert(f["id"].to_string()))
        .collect();
    axum::Json(json!({ "frameworks": fws })).into_response()
}

async fn teardown(State(c): State<Arc<Cluster>>, body: String) -> StatusCode {
    c.teardowns.lock().expect("lock").push(body);
    StatusCode::OK
}

pub async fn cluster() -> (String, Arc<Cluster>) {
    let c = Arc::new(Cluster::default());
    let router = Router::new()
        .route("/v2/apps", get(list_apps).post(create_app))
        .route(
            "/v2/apps/{*id}",
            get(get_app).put(put_app).delete(delete_app),
        )
        .route("/v2/deployments", get(|| async { axum::Json(json!([])) }))
        .route("/master/frameworks", get(frameworks))
        .route("/master/teardown", axum::routing::post(teardown))
        .layer(axum::middleware::from_fn_with_state(c.clone(), guard))
        .with_state(c.clone());
    (serve(router).await, c)
}

pub struct Env {
    pub cosmos: String,
    pub repo: String,
    pub repo_state: Arc<RepoServerState>,
    pub cluster: Arc<Cluster>,
    pub marathon: String,
    pub client: reqwest::Client,
}

pub fn fast_fetch() -> cosmos::FetchConfig {
    cosmos::FetchConfig {
        retries: 0,
        retry_delay: Duration::from_millis(10),
        timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

/// Cosmos with the fixture repository as its only default repository.
pub async fn env() -> Env {
    env_with(|_| {}).await
}

/// A free port nobody listens on.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// [`env`] with a configuration tweak.
pub async fn env_with(tweak: impl FnOnce(&mut cosmos::CosmosConfig)) -> Env {
    let (repo, repo_state) = repo_server(fixture_packages()).await;
    let (marathon, cluster) = cluster().await;
    let store: Arc<dyn dcos_store::Store> = Arc::new(dcos_store::EmbeddedStore::in_memory());
    let mut cfg = cosmos::CosmosConfig::new(&marathon, &marathon, store);
    cfg.default_repositories = vec![cosmos::Repository::new(
        "V4TestUniverse",
        format!("{repo}/repo"),
    )];
    cfg.fetch = fast_fetch();
    cfg.sdk_poll_interval = Duration::from_millis(20);
    tweak(&mut cfg);
    let cosmos = serve(cosmos::Cosmos::new(cfg).router()).await;
    Env {
        cosmos,
        repo,
        repo_state,
        cluster,
        marathon,
        client: reqwest::Client::new(),
    }
}

pub fn p(kind: &str, v: &str) -> String {
    format!("application/vnd.dcos.package.{kind}+json;charset=utf-8;version={v}")
}

pub fn s(kind: &str, v: &str) -> String {
    format!("application/vnd.dcos.service.{kind}+json;charset=utf-8;version={v}")
}

pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Env {
    /// POSTs `body` with explicit headers (None = header absent).
    pub async fn raw(
        &self,
        path: &str,
        accept: Option<&str>,
        ct: Option<&str>,
        body: &str,
    ) -> Answer {
        let mut req = self
            .client
            .post(format!("{}{path}", self.cosmos))
            .body(body.to_string());
        if let Some(a) = accept {
            req = req.header(header::ACCEPT, a);
        }
        if let Some(c) = ct {
            req = req.header(header::CONTENT_TYPE, c);
        }
        let resp = req.send().await.expect("cosmos reachable");
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            content_type,
            body,
        }
    }

    /// A package RPC: `/package/<rpc>` with `P(<rpc>-request,v1)` and Accept `P(<rpc>-response,<v>)`.
    pub async fn pkg(&self, rpc: &str, version: &str, body: Value) -> Answer {
        let kind = rpc.replace('/', ".");
        self.raw(
            &format!("/package/{rpc}"),
            Some(&p(&format!("{kind}-response"), version)),
            Some(&p(&format!("{kind}-request"), "v1")),
            &body.to_string(),
        )
        .await
    }

    /// A service RPC.
    pub async fn svc(&self, rpc: &str, body: Value) -> Answer {
        self.raw(
            &format!("/service/{rpc}"),
            Some(&s(&format!("{rpc}-response"), "v1")),
            Some(&s(&format!("{rpc}-request"), "v1")),
            &body.to_string(),
        )
        .await
    }
}

pub fn decode_label(app: &Value, label: &str) -> Value {
    let raw = app["labels"][label].as_str().expect("label");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .expect("b64");
    serde_json::from_slice(&bytes).expect("json")
}

/// Sends a hand-written HTTP/1.1 request (reqwest always adds `Accept: */*`).
pub async fn raw_http(base: &str, request: &str) -> (u16, String, Value) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        status,
        head.to_ascii_lowercase(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}
