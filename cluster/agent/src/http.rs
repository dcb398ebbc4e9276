//! The agent's HTTP API: `/state`, `/files/*` (what `dcos task log` reads) and the
//! master-facing protocol endpoints.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dcos_types::protocol::{
    AckUpdate, KillTask, LaunchTasks, ShutdownFramework, PATH_ACK, PATH_KILL, PATH_LAUNCH,
    PATH_SHUTDOWN_FRAMEWORK,
};
use dcos_types::resources::format_ranges;
use dcos_types::Resources;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use crate::agent::{Agent, Checkpoint};

/// Largest `/files/read` chunk.
const MAX_READ: u64 = 16 << 20;

pub fn router(agent: Agent) -> Router {
    Router::new()
        .route("/state", get(state))
        .route("/state.json", get(state))
        .route("/slave(1)/state", get(state))
        .route("/slave(1)/state.json", get(state))
        .route("/files/read", get(files_read))
        .route("/files/read.json", get(files_read))
        .route("/files/browse", get(files_browse))
        .route("/files/browse.json", get(files_browse))
        .route("/files/download", get(files_download))
        .route("/files/download.json", get(files_download))
        .route("/health", get(|| async { StatusCode::OK }))
        .route(
            "/system/v1/logs/v2/task/{task}/file/{*file}",
            get(crate::logs::task_log),
        )
        .route(PATH_LAUNCH, post(launch))
        .route(PATH_KILL, post(kill))
        .route(PATH_ACK, post(ack))
        .route(PATH_SHUTDOWN_FRAMEWORK, post(shutdown_framework))
        .layer(DefaultBodyLimit::max(32 << 20))
        .with_state(agent)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "message": message.into() }))).into_response()
}

#[allow(clippy::result_large_err)]
fn parse<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("malformed {what} message: {e}"),
        )
    })
}

async fn launch(State(a): State<Agent>, body: Bytes) -> Response {
    match parse::<LaunchTasks>(&body, "launch") {
        Ok(m) => {
            a.launch(m);
            StatusCode::ACCEPTED.into_response()
        }
        Err(r) => r,
    }
}

async fn kill(State(a): State<Agent>, body: Bytes) -> Response {
    match parse::<KillTask>(&body, "kill") {
        Ok(m) => {
            a.kill(&m.task_id, m.grace_period_seconds);
            StatusCode::ACCEPTED.into_response()
        }
        Err(r) => r,
    }
}

async fn ack(State(a): State<Agent>, body: Bytes) -> Response {
    match parse::<AckUpdate>(&body, "acknowledgement") {
        Ok(m) => {
            a.acknowledge(&m.task_id, &m.uuid);
            StatusCode::ACCEPTED.into_response()
        }
        Err(r) => r,
    }
}

async fn shutdown_framework(State(a): State<Agent>, body: Bytes) -> Response {
    match parse::<ShutdownFramework>(&body, "shutdown_framework") {
        Ok(m) => {
            a.shutdown_framework(&m.framework_id);
            StatusCode::ACCEPTED.into_response()
        }
        Err(r) => r,
    }
}

fn resources_json(r: &Resources) -> Value {
    let mut m = Map::new();
    m.insert("cpus".into(), json!(r.cpus));
    m.insert("mem".into(), json!(r.mem));
    m.insert("disk".into(), json!(r.disk));
    m.insert("gpus".into(), json!(r.gpus));
    if !r.ports.is_empty() {
        m.insert("ports".into(), json!(format_ranges(&r.ports)));
    }
    Value::Object(m)
}

fn task_json(agent: &Agent, c: &Checkpoint) -> Value {
    json!({
        "id": c.info.task_id.as_str(),
        "name": c.info.name,
        "framework_id": c.framework_id.as_str(),
        "executor_id": c.info.task_id.as_str(),
        "slave_id": agent.id().as_str(),
        "state": c.state.as_str(),
        "resources": resources_json(&c.info.resources),
        "statuses": [{
            "state": c.latest.state.as_str(),
            "timestamp": c.latest.timestamp,
            "healthy": c.latest.healthy,
        }],
    })
}

fn executor_json(agent: &Agent, c: &Checkpoint, completed: bool) -> Value {
    let task = task_json(agent, c);
    let (tasks, done) = if completed || c.state.is_terminal() {
        (vec![], vec![task])
    } else {
        (vec![task], vec![])
    };
    json!({
        "id": c.info.task_id.as_str(),
        "name": format!("Command Executor (Task: {})", c.info.task_id),
        "source": c.info.task_id.as_str(),
        "container": c.sandbox.file_name().and_then(|n| n.to_str()).unwrap_or(""),
        "directory": c.sandbox.display().to_string(),
        "resources": resources_json(&c.info.resources),
        "framework_id": c.framework_id.as_str(),
        "tasks": tasks,
        "queued_tasks": [],
        "completed_tasks": done,
    })
}

async fn state(State(a): State<Agent>) -> Response {
    let (running, completed) = a.snapshot();
    #[derive(Default)]
    struct Fw {
        name: String,
        executors: Vec<Value>,
        completed_executors: Vec<Value>,
    }
    let mut fws: BTreeMap<String, Fw> = BTreeMap::new();
    for c in &running {
        let f = fws.entry(c.framework_id.to_string()).or_default();
        f.name = c.framework_name.clone();
        f.executors.push(executor_json(&a, c, false));
    }
    for c in &completed {
        let f = fws.entry(c.framework_id.to_string()).or_default();
        if f.name.is_empty() {
            f.name = c.framework_name.clone();
        }
        f.completed_executors.push(executor_json(&a, c, true));
    }
    let frameworks: Vec<Value> = fws
        .into_iter()
        .map(|(id, f)| {
            json!({
                "id": id,
                "name": f.name,
                "executors": f.executors,
                "completed_executors": f.completed_executors,
            })
        })
        .collect();
    let info = a.info();
    let total = info
        .resources
        .values()
        .fold(Resources::default(), |x, r| x.plus(r));
    let reserved: Map<String, Value> = info
        .resources
        .iter()
        .filter(|(r, _)| r.as_str() != "*")
        .map(|(r, v)| (r.clone(), resources_json(v)))
        .collect();
    let attributes: Map<String, Value> = info
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::to_value(v).unwrap_or(Value::Null)))
        .collect();
    let cfg = a.config();
    let body = json!({
        "version": "1.11.0",
        "id": a.id().as_str(),
        "pid": format!("slave(1)@{}:{}", info.hostname, info.port),
        "hostname": info.hostname,
        "start_time": a.start_time(),
        "resources": resources_json(&total),
        "reserved_resources": reserved,
        "attributes": attributes,
        "master_hostname": cfg.master_url,
        "flags": {
            "work_dir": cfg.work_dir.display().to_string(),
            "port": info.port.to_string(),
            "master": cfg.master_url,
        },
        "frameworks": frameworks,
        "completed_frameworks": [],
    });
    (StatusCode::OK, Json(body)).into_response()
}

/// Resolves a `/files/*` path: it must be inside the agent's work dir.
#[allow(clippy::result_large_err)]
fn resolve(agent: &Agent, path: &str) -> Result<PathBuf, Response> {
    if path.is_empty() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "Missing 'path' query parameter",
        ));
    }
    let root = agent
        .config()
        .work_dir
        .canonicalize()
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let p = Path::new(path).canonicalize().map_err(|_| {
        error(
            StatusCode::NOT_FOUND,
            format!("No such file or directory: {path}"),
        )
    })?;
    if !p.starts_with(&root) {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("No such file or directory: {path}"),
        ));
    }
    Ok(p)
}

async fn files_read(State(a): State<Agent>, Query(q): Query<HashMap<String, String>>) -> Response {
    let path = match resolve(&a, q.get("path").map(String::as_str).unwrap_or("")) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if path.is_dir() {
        return error(StatusCode::BAD_REQUEST, "Cannot read a directory");
    }
    let offset: i64 = match q.get("offset").map(|o| o.parse::<i64>()) {
        None => 0,
        Some(Ok(o)) if o >= -1 => o,
        Some(_) => return error(StatusCode::BAD_REQUEST, "Failed to parse offset"),
    };
    let length: Option<u64> = match q.get("length").map(|l| l.parse::<i64>()) {
        None => None,
        Some(Ok(l)) if l >= 0 => Some(l as u64),
        Some(Ok(_)) => None,
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "Failed to parse length"),
    };
    let result = tokio::task::spawn_blocking(move || -> std::io::Result<Value> {
        let mut f = std::fs::File::open(&path)?;
        let size = f.metadata()?.len();
        if offset == -1 {
            return Ok(json!({"data": "", "offset": size}));
        }
        let offset = (offset as u64).min(size);
        let want = length.unwrap_or(MAX_READ).min(MAX_READ).min(size - offset);
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::with_capacity(want as usize);
        f.take(want).read_to_end(&mut buf)?;
        Ok(json!({"data": String::from_utf8_lossy(&buf), "offset": offset}))
    })
    .await;
    match result {
        Ok(Ok(v)) => (StatusCode::OK, Json(v)).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn mode_string(mode: u32, dir: bool) -> String {
    let mut s = String::with_capacity(10);
    s.push(if dir { 'd' } else { '-' });
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

async fn files_browse(
    State(a): State<Agent>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let path = match resolve(&a, q.get("path").map(String::as_str).unwrap_or("")) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Ok(rd) = std::fs::read_dir(&path) else {
        return error(StatusCode::NOT_FOUND, "Not a directory");
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let Ok(md) = e.metadata() else { continue };
        out.push(json!({
            "path": e.path().display().to_string(),
            "nlink": md.nlink(),
            "size": md.len(),
            "mtime": md.mtime(),
            "mode": mode_string(md.mode(), md.is_dir()),
            "uid": md.uid().to_string(),
            "gid": md.gid().to_string(),
        }));
    }
    out.sort_by(|x, y| x["path"].as_str().cmp(&y["path"].as_str()));
    (StatusCode::OK, Json(Value::Array(out))).into_response()
}

async fn files_download(
    State(a): State<Agent>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let path = match resolve(&a, q.get("path").map(String::as_str).unwrap_or("")) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if path.is_dir() {
        return error(StatusCode::BAD_REQUEST, "Cannot download a directory");
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("file")
                .replace('"', "");
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}\""),
                    ),
                ],
                bytes,
            )
                .into_response()
        }
        Err(e) => error(StatusCode::NOT_FOUND, e.to_string()),
    }
}
