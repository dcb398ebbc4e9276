//! A fake cluster for CLI tests: in-process fakes of Cosmos, Marathon, the Mesos master and an
//! agent (per the contracts), behind the real Admin Router (with auth on or off). The `dcos`
//! binary is run as a subprocess against it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use dcos_adminrouter::auth::{AuthConfig, Credential, PasswordCost, ServiceAccount, Superuser};
use dcos_adminrouter::{AdminRouter, AdminRouterConfig};
use serde_json::{json, Value};

pub const CLUSTER_ID: &str = "6f1c0b1e-3d2a-4c55-9a6e-0c8f5b1d2e3f";

fn p(kind: &str, v: &str) -> String {
    format!("application/vnd.dcos.package.{kind}+json;charset=utf-8;version={v}")
}

#[derive(Default)]
pub struct FakeState {
    pub repos: Vec<(String, String)>,
    /// Marathon apps (AppInfo JSON).
    pub apps: Vec<Value>,
    /// Polls of an app before its task shows up running.
    pub polls: u32,
    pub log: Vec<String>,
    /// An app being uninstalled: hidden, but its StopApplication deployment still runs.
    pub stopping: Option<String>,
    /// A `Warning` header value Cosmos adds to every answer (a repository it answered without).
    pub cosmos_warning: Option<String>,
}

pub type Shared = Arc<Mutex<FakeState>>;

fn catalog() -> Vec<Value> {
    vec![
        json!({"packagingVersion": "4.0", "name": "hello", "version": "1.0.0", "maintainer": "dev@example.com",
               "description": "Hello world HTTP service", "tags": ["example"], "selected": true, "framework": false,
               "postInstallNotes": "hello is starting", "marathon": {"v2AppMustacheTemplate": "e30="},
               "config": {"type": "object", "properties": {"port": {"type": "integer", "default": 8080}}}}),
        json!({"packagingVersion": "3.0", "name": "spark", "version": "2.3.1-2.2.1-2", "maintainer": "x",
               "description": "Spark is a fast and general cluster computing system for Big Data", "tags": ["bigdata"],
               "framework": true, "marathon": {"v2AppMustacheTemplate": "e30="}}),
    ]
}

fn json_resp(status: StatusCode, ctype: &str, v: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", ctype)
        .body(Body::from(v.to_string()))
        .unwrap()
}

fn cosmos_error(typ: &str, message: &str) -> Response {
    json_resp(
        StatusCode::BAD_REQUEST,
        &p("error", "v1"),
        json!({"type": typ, "message": message}),
    )
}

fn header(req: &Request, name: &str) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

async fn body_json(req: Request) -> Value {
    let b = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&b).unwrap_or(Value::Null)
}

fn new_app(id: &str, pkg: Option<&Value>) -> Value {
    let mut labels = json!({});
    if let Some(pkg) = pkg {
        labels = json!({"DCOS_PACKAGE_NAME": pkg["name"], "DCOS_PACKAGE_VERSION": pkg["version"],
                        "DCOS_SERVICE_NAME": id.trim_start_matches('/')});
    }
    json!({"id": id, "cmd": "./hello --port $PORT0", "cpus": 0.1, "mem": 32.0, "instances": 1,
           "version": "2026-11-21T14:00:00.000Z", "labels": labels,
           "healthChecks": [{"protocol": "HTTP", "path": "/"}],
           "tasksRunning": 0, "tasksHealthy": 0, "tasksStaged": 1, "tasksUnhealthy": 0,
           "deployments": [{"id": "dep-1"}], "tasks": []})
}

async fn cosmos(State(s): State<Shared>, req: Request) -> Response {
    let warning = s.lock().unwrap().cosmos_warning.clone();
    let mut resp = cosmos_answer(State(s), req).await;
    if let Some(w) = warning {
        resp.headers_mut()
            .append("warning", axum::http::HeaderValue::from_str(&w).unwrap());
    }
    resp
}

async fn cosmos_answer(State(s): State<Shared>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    s.lock().unwrap().log.push(format!("cosmos {path}"));
    if path == "/capabilities" {
        return json_resp(
            StatusCode::OK,
            "application/vnd.dcos.capabilities+json;charset=utf-8;version=v1",
            json!({"capabilities": [{"name": "PACKAGE_MANAGEMENT"}]}),
        );
    }
    let Some(rpc) = path.strip_prefix("/package/") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let rpc = rpc.to_string();
    let (req_kind, resp_kind, ver) = match rpc.as_str() {
        "search" => ("search-request", "search-response", "v1"),
        "describe" => ("describe-request", "describe-response", "v3"),
        "install" => ("install-request", "install-response", "v2"),
        "uninstall" => ("uninstall-request", "uninstall-response", "v1"),
        "list" => ("list-request", "list-response", "v1"),
        "list-versions" => ("list-versions-request", "list-versions-response", "v1"),
        "render" => ("render-request", "render-response", "v1"),
        "repository/list" => ("repository.list-request", "repository.list-response", "v1"),
        "repository/add" => ("repository.add-request", "repository.add-response", "v1"),
        "repository/delete" => (
            "repository.delete-request",
            "repository.delete-response",
            "v1",
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    // Exact media types, as Cosmos requires.
    if header(&req, "content-type") != p(req_kind, "v1") {
        return cosmos_error(
            "UnsupportedContentType",
            &format!("bad content-type {}", header(&req, "content-type")),
        );
    }
    let accept = p(resp_kind, ver);
    if header(&req, "accept") != accept {
        return cosmos_error(
            "NotValid",
            &format!("bad accept {}", header(&req, "accept")),
        );
    }
    let body = body_json(req).await;
    let ok = |v: Value| json_resp(StatusCode::OK, &accept, v);
    let find = |name: &Value| catalog().into_iter().find(|p| &p["name"] == name);
    match rpc.as_str() {
        "search" => {
            let q = body["query"].as_str().unwrap_or("").to_string();
            let pkgs: Vec<Value> = catalog()
                .into_iter()
                .filter(|p| p["name"].as_str().unwrap_or("").contains(&q))
                .map(|p| json!({"name": p["name"], "currentVersion": p["version"], "versions": {p["version"].as_str().unwrap(): 0},
                                "description": p["description"], "framework": p["framework"], "tags": p["tags"],
                                "selected": p.get("selected").cloned().unwrap_or(json!(false))}))
                .collect();
            ok(json!({"packages": pkgs}))
        }
        "describe" => match find(&body["packageName"]) {
            Some(pkg) => ok(json!({"package": pkg})),
            None => cosmos_error(
                "PackageNotFound",
                &format!(
                    "Package [{}] not found",
                    body["packageName"].as_str().unwrap_or("")
                ),
            ),
        },
        "list-versions" => ok(json!({"results": {"1.0.0": "0"}})),
        "render" => match find(&body["packageName"]) {
            Some(pkg) => {
                let id = body["appId"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or(format!("/{}", pkg["name"].as_str().unwrap()));
                let mut app = new_app(&id, Some(&pkg));
                app["options"] = body.get("options").cloned().unwrap_or(json!(null));
                ok(json!({"marathonJson": app}))
            }
            None => cosmos_error("PackageNotFound", "Package not found"),
        },
        "install" => {
            let Some(pkg) = find(&body["packageName"]) else {
                return cosmos_error(
                    "PackageNotFound",
                    &format!(
                        "Package [{}] not found",
                        body["packageName"].as_str().unwrap_or("")
                    ),
                );
            };
            if !body["options"].is_object() {
                return cosmos_error("NotValid", "options must always be present");
            }
            if body["options"].get("port").is_some_and(|p| !p.is_number()) {
                return json_resp(
                    StatusCode::BAD_REQUEST,
                    &p("error", "v1"),
                    json!({"type": "JsonSchemaMismatch",
                    "message": "Options JSON failed validation",
                    "data": {"errors": [{"message": "instance type (string) does not match any allowed primitive type (allowed: [\"integer\"])", "instance": {"pointer": "/port"}}]}}),
                );
            }
            let id = body["appId"]
                .as_str()
                .map(str::to_string)
                .unwrap_or(format!("/{}", pkg["name"].as_str().unwrap()));
            let mut st = s.lock().unwrap();
            if st.apps.iter().any(|a| a["id"] == id) || st.stopping.as_deref() == Some(id.as_str())
            {
                return json_resp(
                    StatusCode::CONFLICT,
                    &p("error", "v1"),
                    json!({"type": "PackageAlreadyInstalled", "message": "Package is already installed"}),
                );
            }
            st.apps.push(new_app(&id, Some(&pkg)));
            st.polls = 0;
            ok(
                json!({"packageName": pkg["name"], "packageVersion": pkg["version"], "appId": id, "postInstallNotes": pkg.get("postInstallNotes")}),
            )
        }
        "list" => {
            let st = s.lock().unwrap();
            let pkgs: Vec<Value> = st
                .apps
                .iter()
                .filter(|a| a["labels"]["DCOS_PACKAGE_NAME"].is_string())
                .filter(|a| {
                    body.get("packageName")
                        .is_none_or(|n| &a["labels"]["DCOS_PACKAGE_NAME"] == n)
                })
                .map(|a| {
                    let def = find(&a["labels"]["DCOS_PACKAGE_NAME"]).unwrap();
                    json!({"appId": a["id"], "packageInformation": {"packageDefinition": def}})
                })
                .collect();
            ok(json!({"packages": pkgs}))
        }
        "uninstall" => {
            let mut st = s.lock().unwrap();
            let name = body["packageName"].clone();
            let before = st.apps.len();
            let removed: Vec<Value> = st
                .apps
                .iter()
                .filter(|a| a["labels"]["DCOS_PACKAGE_NAME"] == name)
                .cloned()
                .collect();
            st.apps.retain(|a| a["labels"]["DCOS_PACKAGE_NAME"] != name);
            if st.apps.len() == before {
                return cosmos_error(
                    "UninstallNonExistentAppForPackage",
                    &format!("Package [{}] is not installed", name.as_str().unwrap_or("")),
                );
            }
            ok(
                json!({"results": removed.iter().map(|a| json!({"packageName": name, "appId": a["id"], "packageVersion": a["labels"]["DCOS_PACKAGE_VERSION"]})).collect::<Vec<_>>()}),
            )
        }
        "repository/list" => {
            let st = s.lock().unwrap();
            ok(
                json!({"repositories": st.repos.iter().map(|(n, u)| json!({"name": n, "uri": u})).collect::<Vec<_>>()}),
            )
        }
        "repository/add" => {
            let mut st = s.lock().unwrap();
            let name = body["name"].as_str().unwrap_or("").to_string();
            let uri = body["uri"].as_str().unwrap_or("").to_string();
            if st.repos.iter().any(|(n, _)| *n == name) {
                return cosmos_error(
                    "RepositoryAlreadyPresent",
                    &format!("Repository name [{name}] is already present in the list"),
                );
            }
            let idx = body["index"]
                .as_u64()
                .map(|i| i as usize)
                .unwrap_or(st.repos.len())
                .min(st.repos.len());
            st.repos.insert(idx, (name, uri));
            ok(json!({"repositories": []}))
        }
        "repository/delete" => {
            let mut st = s.lock().unwrap();
            let name = body["name"].as_str().unwrap_or("").to_string();
            let before = st.repos.len();
            st.repos.retain(|(n, _)| *n != name);
            if st.repos.len() == before {
                return cosmos_error(
                    "RepositoryNotPresent",
                    &format!("Repository name [{name}] is not present in the list"),
                );
            }
            ok(json!({"repositories": []}))
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn marathon_json(status: StatusCode, v: Value) -> Response {
    json_resp(status, "application/json", v)
}

async fn marathon(State(s): State<Shared>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    s.lock()
        .unwrap()
        .log
        .push(format!("marathon {method} {path}?{query}"));
    let body = body_json(req).await;
    let mut st = s.lock().unwrap();
    let deploy = json!({"deploymentId": "dep-2", "version": "2026-11-21T14:05:00.000Z"});
    match (method.as_str(), path.as_str()) {
        ("GET", "/v2/apps") => marathon_json(StatusCode::OK, json!({"apps": st.apps})),
        ("POST", "/v2/apps") => {
            let id = format!("/{}", body["id"].as_str().unwrap_or("").trim_matches('/'));
            if st.apps.iter().any(|a| a["id"] == id) {
                return marathon_json(
                    StatusCode::CONFLICT,
                    json!({"message": format!("An app with id [{id}] already exists.")}),
                );
            }
            let mut app = body.clone();
            app["id"] = json!(id);
            app["deployments"] = json!([{"id": "dep-1"}]);
            st.apps.push(app.clone());
            marathon_json(StatusCode::CREATED, app)
        }
        ("GET", "/v2/tasks") => {
            let tasks: Vec<Value> = st
                .apps
                .iter()
                .flat_map(|a| a["tasks"].as_array().cloned().unwrap_or_default())
                .collect();
            marathon_json(StatusCode::OK, json!({"tasks": tasks}))
        }
        ("GET", "/v2/deployments") => {
            let mut deps = vec![
                json!({"id": "dep-1", "version": "v", "affectedApps": ["/hello"], "affectedPods": [],
                    "currentActions": [{"action": "StartApplication", "app": "/hello"}], "currentStep": 1, "totalSteps": 1}),
            ];
            if let Some(app) = &st.stopping {
                deps.push(json!({"id": "dep-stop", "version": "v", "affectedApps": [app], "affectedPods": [],
                    "currentActions": [{"action": "StopApplication", "app": app}], "currentStep": 1, "totalSteps": 1}));
            }
            marathon_json(StatusCode::OK, json!(deps))
        }
        ("DELETE", p) if p.starts_with("/v2/deployments/") => marathon_json(StatusCode::OK, deploy),
        ("GET", "/v2/info") => marathon_json(
            StatusCode::OK,
            json!({"name": "marathon", "version": "1.10.0"}),
        ),
        (m, p) if p.starts_with("/v2/apps/") => {
            let rest = &p["/v2/apps".len()..];
            let (id, action) = match rest.strip_suffix("/restart") {
                Some(id) => (id.to_string(), "restart"),
                None => (rest.to_string(), ""),
            };
            let Some(i) = st.apps.iter().position(|a| a["id"] == id) else {
                return marathon_json(
                    StatusCode::NOT_FOUND,
                    json!({"message": format!("App '{id}' does not exist")}),
                );
            };
            match (m, action) {
                ("GET", _) => {
                    st.polls += 1;
                    let polls = st.polls;
                    let app = &mut st.apps[i];
                    if app["id"] == "/broken" {
                        app["lastTaskFailure"] = json!({"appId": "/broken", "state": "TASK_FAILED", "taskId": "broken.instance-1._app.1",
                            "message": "Failed to pull image 'mesosphere/spark': no network", "version": app["version"]});
                    } else if polls >= 3 && app["tasksRunning"] == 0 {
                        app["tasksRunning"] = json!(1);
                        app["tasksHealthy"] = json!(1);
                        app["deployments"] = json!([]);
                        app["tasks"] = json!([{"id": "hello.instance-1._app.1", "appId": app["id"], "host": "127.0.0.1",
                            "ports": [31005], "state": "TASK_RUNNING", "startedAt": "2026-11-21T14:00:01.000Z",
                            "healthCheckResults": [{"alive": true}]}]);
                    }
                    marathon_json(StatusCode::OK, json!({"app": st.apps[i]}))
                }
                ("PUT", _) => {
                    if let Some(n) = body.get("instances") {
                        st.apps[i]["instances"] = n.clone();
                    }
                    marathon_json(StatusCode::OK, deploy)
                }
                ("DELETE", _) => {
                    st.apps.remove(i);
                    marathon_json(StatusCode::OK, deploy)
                }
                ("POST", "restart") => marathon_json(StatusCode::OK, deploy),
                _ => marathon_json(
                    StatusCode::METHOD_NOT_ALLOWED,
                    json!({"message": "method not allowed"}),
                ),
            }
        }
        _ => marathon_json(StatusCode::NOT_FOUND, json!({"message": "not found"})),
    }
}

async fn mesos(State(_s): State<Shared>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let framework = json!({"id": "fw-marathon", "name": "marathon", "hostname": "master-1", "active": true, "user": "root",
        "used_resources": {"cpus": 0.1, "mem": 32.0, "disk": 0.0},
        "tasks": [{"id": "hello.instance-1._app.1", "name": "hello", "state": "TASK_RUNNING", "slave_id": "agent-1", "framework_id": "fw-marathon"}],
        "completed_tasks": [{"id": "old.instance-0._app.1", "name": "old", "state": "TASK_FINISHED", "slave_id": "agent-1", "framework_id": "fw-marathon"}]});
    let slaves = json!([{"id": "agent-1", "hostname": "agent-host-1", "pid": "slave(1)@10.0.0.5:5051",
                         "domain": {"fault_domain": {"region": {"name": "eu-west"}, "zone": {"name": "eu-west-1a"}}}},
                        {"id": "agent-2", "hostname": "public-1", "pid": "slave(1)@10.0.0.6:5051", "attributes": {"public_ip": "true"}}]);
    match path.as_str() {
        "/master/state" | "/master/state.json" => marathon_json(
            StatusCode::OK,
            json!({"id": "master-id-1", "hostname": "master-1", "pid": "master@10.0.0.1:5050", "cluster": "test-cluster",
                   "frameworks": [framework], "completed_frameworks": [], "slaves": slaves}),
        ),
        "/master/state-summary" | "/state-summary" => marathon_json(
            StatusCode::OK,
            json!({"cluster": "test-cluster", "slaves": slaves}),
        ),
        _ => marathon_json(StatusCode::NOT_FOUND, json!({})),
    }
}

const LOG: &str = "line 1\nline 2\nline 3\nline 4\n";

async fn agent(req: Request) -> Response {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    match path.as_str() {
        "/state" => marathon_json(
            StatusCode::OK,
            json!({"frameworks": [{"id": "fw-marathon", "executors": [{"id": "hello.instance-1._app.1",
                   "directory": "/var/lib/agent/slaves/agent-1/frameworks/fw-marathon/executors/hello/runs/latest",
                   "tasks": [{"id": "hello.instance-1._app.1"}]}]}], "completed_frameworks": []}),
        ),
        "/files/read" => {
            let params: std::collections::HashMap<String, String> = query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.replace("%2F", "/")))
                .collect();
            if !params.get("path").is_some_and(|p| p.ends_with("/stdout")) {
                return marathon_json(StatusCode::NOT_FOUND, json!({}));
            }
            let offset: i64 = params
                .get("offset")
                .and_then(|o| o.parse().ok())
                .unwrap_or(0);
            if offset < 0 {
                return marathon_json(StatusCode::OK, json!({"data": "", "offset": LOG.len()}));
            }
            let start = (offset as usize).min(LOG.len());
            let len: usize = params
                .get("length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(LOG.len());
            let end = (start + len).min(LOG.len());
            marathon_json(
                StatusCode::OK,
                json!({"data": &LOG[start..end], "offset": start}),
            )
        }
        _ => marathon_json(StatusCode::NOT_FOUND, json!({})),
    }
}

async fn serve(rt: &tokio::runtime::Runtime, app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

pub struct FakeCluster {
    pub rt: tokio::runtime::Runtime,
    /// The simulated master under the real Metronome (`finish_task` ends a job's task).
    pub sim: Arc<dcos_marathon::sim::SimMaster>,
    pub url: String,
    pub state: Shared,
    pub dir: tempfile::TempDir,
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../cluster/adminrouter/tests/fixtures")
        .join(name)
}

impl FakeCluster {
    /// Starts the fakes behind a real Admin Router; `auth` turns login on (admin / s3cret,
    /// service account `ci-bot` with the adminrouter test key).
    pub fn start(auth: bool) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let state: Shared = Arc::new(Mutex::new(FakeState::default()));
        let (url, sim) = rt.block_on(async {
            let cosmos_url = serve(
                &rt,
                Router::new().fallback(cosmos).with_state(state.clone()),
            )
            .await;
            let marathon_url = serve(
                &rt,
                Router::new().fallback(marathon).with_state(state.clone()),
            )
            .await;
            let mesos_url =
                serve(&rt, Router::new().fallback(mesos).with_state(state.clone())).await;
            let agent_url = serve(&rt, Router::new().fallback(agent)).await;
            // The real Metronome on a simulated master: its tasks run until a test calls `sim.finish_task`.
            let sim = dcos_marathon::sim::SimMaster::new(dcos_marathon::sim::SimOptions::default());
            sim.add_simple_agent("agent-1", 4.0, 4096.0);
            sim.spawn_ticker(std::time::Duration::from_millis(20));
            let metronome = dcos_metronome::Metronome::start(
                sim.clone(),
                Arc::new(dcos_store::EmbeddedStore::in_memory()),
                dcos_metronome::MetronomeConfig {
                    tick: std::time::Duration::from_millis(50),
                    ..Default::default()
                },
            )
            .unwrap();
            let metronome_url = serve(&rt, metronome.router()).await;
            let mut cfg = AdminRouterConfig::new(CLUSTER_ID);
            cfg.cosmos = Some(cosmos_url);
            cfg.marathon = Some(marathon_url);
            cfg.mesos = Some(mesos_url);
            cfg.metronome = Some(metronome_url);
            cfg.agents = Some(Arc::new(move |id: &str| {
                (id == "agent-1").then(|| agent_url.clone())
            }));
            cfg.auth = if auth {
                let mut a =
                    AuthConfig::enabled(Arc::new(dcos_adminrouter::store::MemoryAuthStore::new()));
                a.password_cost = PasswordCost::Fast;
                a.superuser = Some(Superuser {
                    uid: "admin".into(),
                    credential: Credential::Plain("s3cret".into()),
                });
                a.service_accounts = vec![ServiceAccount {
                    uid: "ci-bot".into(),
                    public_key: std::fs::read_to_string(fixture("sa-public.pem")).unwrap(),
                    description: String::new(),
                }];
                a
            } else {
                AuthConfig::disabled()
            };
            let ar = AdminRouter::new(cfg).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            rt.spawn(ar.serve(listener));
            (format!("http://{addr}"), sim)
        });
        Self {
            rt,
            sim,
            url,
            state,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Runs `dcos ARGS` with `DCOS_DIR` in a temp dir and no `DCOS_URL` (uses the config).
    pub fn dcos(&self, args: &[&str]) -> Output {
        self.dcos_env(args, &[])
    }

    pub fn dcos_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dcos"));
        c.args(args)
            .env("DCOS_DIR", self.dir.path())
            .env_remove("DCOS_URL")
            .env_remove("DCOS_ACS_TOKEN")
            .env_remove("DCOS_CLUSTER")
            .env_remove("DCOS_PASSWORD")
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// `dcos cluster setup` against this cluster (no credentials: auth must be off).
    pub fn setup(&self) {
        let out = self.dcos(&["cluster", "setup", &self.url]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
