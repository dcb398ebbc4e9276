//! The Marathon v2 HTTP API, with the response shapes marathon-python 0.13.0 and the DC/OS
//! CLI parse. Mounted by Admin Router under `/service/marathon/` and served directly on the
//! Marathon port.

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use dcos_store::StoreError;
use dcos_types::{AgentId, SchedulerCall, TaskId, TaskState};
use futures::StreamExt;
use serde_json::{json, Map, Value};
use tokio_stream::wrappers::BroadcastStream;

use crate::constraints::LabelSelector;
use crate::durable::root_cause;
use crate::events::Event;
use crate::model::{canonical_id, flag, merge_partial, parse_json, App, ParseError};
use crate::render::{self, Embed};
use crate::scheduler::Core;
use crate::state::{version_key, ChangeError, Deployment, Effects, State};
use crate::validate::{validate_app, Violations};

type S = AxState<Arc<Core>>;

/// Marathon's version as reported in `/v2/info` (the DC/OS CLI compares it).
pub const MARATHON_VERSION: &str = "1.10.17";

/// An API failure with Marathon's status and body.
#[derive(Debug)]
pub enum ApiError {
    NotFound(String),
    Locked(Vec<String>),
    Conflict(String),
    Invalid(Violations),
    Parse(ParseError),
    BadRequest(String),
    TooLarge(usize),
    NotAcceptable(String),
    UnsupportedMediaType(String),
    Unavailable(String),
}

impl From<ChangeError> for ApiError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::Locked(ids) => ApiError::Locked(ids),
            ChangeError::NotFound(id) => ApiError::NotFound(format!("App '{id}' does not exist")),
            ChangeError::Exists(id) => {
                ApiError::Conflict(format!("An app with id [{id}] already exists."))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, json!({ "message": m })),
            ApiError::Locked(ids) => (
                StatusCode::CONFLICT,
                json!({
                    "message": format!(
                        "App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/{}'.",
                        ids.first().cloned().unwrap_or_default()
                    ),
                    "deployments": ids.iter().map(|i| json!({"id": i})).collect::<Vec<_>>(),
                }),
            ),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, json!({ "message": m })),
            ApiError::Invalid(v) => (StatusCode::UNPROCESSABLE_ENTITY, v.body()),
            ApiError::Parse(p) => (StatusCode::BAD_REQUEST, p.body()),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, json!({ "message": m })),
            ApiError::TooLarge(max) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "message": format!("Request body too large: the limit is {max} bytes") }),
            ),
            ApiError::NotAcceptable(m) => (StatusCode::METHOD_NOT_ALLOWED, json!({ "message": m })),
            ApiError::UnsupportedMediaType(ct) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                json!({ "message": format!(
                    "HTTP 415 Unsupported Media Type: the body must be JSON \
                     (Content-Type: application/json), not '{ct}'"
                ) }),
            ),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, json!({ "message": m })),
        };
        json_response(status, body.to_string())
    }
}

type ApiResult = Result<Response, ApiError>;

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn ok_json(v: Value) -> Response {
    json_response(StatusCode::OK, v.to_string())
}

/// Query parameters, repeated keys kept (`embed=a&embed=b`).
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<String>) -> Query {
        Query(
            raw.as_deref()
                .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
                .unwrap_or_default(),
        )
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
    fn all<'a>(&'a self, k: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
    fn flag(&self, k: &str, default: bool) -> bool {
        flag(self.get(k)).unwrap_or(default)
    }
}

fn body_bytes(core: &Core, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    match body {
        Ok(b) => Ok(b),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(ApiError::TooLarge(core.config.max_body_bytes))
        }
        Err(e) => Err(ApiError::BadRequest(format!(
            "Cannot read the request body: {e}"
        ))),
    }
}

/// A JSON request body. Like Marathon (`@Consumes(application/json)`), another
/// `Content-Type` is a 415; parameters (`charset=utf-8`) are fine, and a request without
/// `Content-Type` is taken as JSON (Jersey matches it to any `@Consumes`).
fn body_json(
    core: &Core,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, ApiError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let text = String::from_utf8_lossy(ct.as_bytes());
        let essence = text.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::UnsupportedMediaType(text.into_owned()));
        }
    }
    let b = body_bytes(core, body)?;
    parse_json(&b).map_err(ApiError::Parse)
}

pub fn router(core: Arc<Core>) -> Router {
    let limit = core.config.max_body_bytes;
    Router::new()
        .route("/ping", get(|| async { "pong" }))
        .route("/metrics", get(metrics))
        .route("/metrics/prometheus", get(metrics_prometheus))
        .route("/v2/info", get(info))
        .route("/v2/leader", get(leader))
        .route(
            "/v2/apps",
            get(list_apps)
                .post(create_app)
                .put(put_apps)
                .patch(patch_apps),
        )
        .route(
            "/v2/apps/",
            get(list_apps)
                .post(create_app)
                .put(put_apps)
                .patch(patch_apps),
        )
        .route(
            "/v2/apps/{*rest}",
            get(app_get)
                .put(app_put)
                .patch(app_patch)
                .delete(app_delete)
                .post(app_post),
        )
        .route("/v2/tasks", get(list_tasks))
        .route("/v2/tasks/", get(list_tasks))
        .route("/v2/tasks/delete", post(tasks_delete))
        .route("/v2/deployments", get(list_deployments))
        .route("/v2/deployments/", get(list_deployments))
        .route("/v2/deployments/{id}", delete(delete_deployment))
        .route(
            "/v2/groups",
            get(groups_root).post(group_post_root).put(group_put_root),
        )
        .route(
            "/v2/groups/",
            get(groups_root).post(group_post_root).put(group_put_root),
        )
        .route(
            "/v2/groups/{*rest}",
            get(group_get)
                .post(group_post)
                .put(group_put)
                .delete(group_delete),
        )
        .route("/v2/queue", get(queue))
        .route("/v2/queue/", get(queue))
        .route("/v2/queue/{*rest}", delete(queue_delay_reset))
        .route("/v2/events", get(events))
        .route("/v2/pods", get(|| async { ok_json(json!([])) }))
        .route("/v2/pods/", get(|| async { ok_json(json!([])) }))
        .fallback(|| async {
            json_response(
                StatusCode::NOT_FOUND,
                json!({"message": "Not found: no such Marathon endpoint"}).to_string(),
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(core)
}

// ---- changes -------------------------------------------------------------------------

fn port_range(core: &Core) -> (i64, i64) {
    (core.config.local_port_min, core.config.local_port_max)
}

/// Applies a change under the lock, commits it, then wakes the scheduler. `posted` is the
/// `api_post_event` of the request, published with the change's events once it is stored.
fn change(
    core: &Core,
    changes: Vec<(String, Option<App>)>,
    force: bool,
    restart: bool,
    posted: Option<Arc<Event>>,
    precheck: impl FnOnce(&mut State) -> Result<(), ApiError>,
) -> Result<Deployment, ApiError> {
    let mut fx = Effects::default();
    fx.events.extend(posted);
    let dep = {
        let mut st = core.state.lock();
        consistent(core, &mut st)?;
        precheck(&mut st)?;
        let d = st.deploy(
            changes,
            force,
            restart,
            dcos_types::now_secs(),
            port_range(core),
            core.config.max_versions,
            &mut fx,
            &core.events,
        )?;
        stored(core, &mut st, &mut fx)?;
        d
    };
    core.send(std::mem::take(&mut fx.calls));
    core.wake.notify_one();
    Ok(dep)
}

/// Commits a change through the one commit-or-rollback path. A refused write is a 503 and
/// the change is undone (in memory too); a key the store refuses comes from the app id.
fn stored(core: &Core, st: &mut State, fx: &mut Effects) -> Result<(), ApiError> {
    core.persist(st, fx).map_err(|e| match e {
        StoreError::InvalidKey { reason, .. } => {
            invalid("/id", format!("cannot be stored: {reason}"))
        }
        e => ApiError::Unavailable(format!(
            "the cluster store refused the write: {}; nothing was changed",
            root_cause(&e)
        )),
    })
}

/// 503 while a refused change could not be undone yet (the store cannot be read).
fn consistent(core: &Core, st: &mut State) -> Result<(), ApiError> {
    if core.consistent(st) {
        return Ok(());
    }
    Err(ApiError::Unavailable(
        "the cluster store cannot be read; nothing was changed".into(),
    ))
}

fn invalid(path: &str, msg: impl Into<String>) -> ApiError {
    let mut v = Violations::default();
    v.add(path, msg);
    ApiError::Invalid(v)
}

/// A store read keyed by user input (`field`): a key the store refuses is a 422 there.
fn read_error(e: StoreError, field: &str) -> ApiError {
    match e {
        StoreError::InvalidKey { reason, .. } => invalid(field, format!("is not valid: {reason}")),
        e => ApiError::Unavailable(format!("cannot read the cluster store: {}", root_cause(&e))),
    }
}

fn deployment_result(dep: &Deployment, status: StatusCode, location: Option<&str>) -> Response {
    let mut resp = json_response(
        status,
        json!({"version": dep.version, "deploymentId": dep.id}).to_string(),
    );
    if let Ok(v) = HeaderValue::from_str(&dep.id) {
        resp.headers_mut().insert("Marathon-Deployment-Id", v);
    }
    if let Some(l) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    resp
}

/// Parses, normalizes and validates an app JSON (`path_id` overrides the body's id).
fn prepare(v: Value, path_id: Option<&str>) -> Result<App, ApiError> {
    let mut app = App::from_value(v).map_err(ApiError::Parse)?;
    if let Some(id) = path_id {
        app.id = id.to_string();
    }
    let raw = app.id.clone();
    app.normalize();
    let violations = validate_app(&app, &raw);
    if !violations.is_empty() {
        return Err(ApiError::Invalid(violations));
    }
    Ok(app)
}

fn api_post_event(core: &Core, uri: &str, app: &App) -> Option<Arc<Event>> {
    core.events.event(
        "api_post_event",
        || json!({"clientIp": "127.0.0.1", "uri": uri, "appDefinition": app.to_value()}),
    )
}

async fn create_app(
    AxState(core): S,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let v = body_json(&core, &headers, body)?;
    let app = prepare(v, None)?;
    let id = app.id.clone();
    let posted = api_post_event(&core, "/v2/apps", &app);
    let changes = vec![(id.clone(), Some(app))];
    let dep = change(&core, changes, false, false, posted, |st| {
        if st.visible(&id).is_some() {
            return Err(ApiError::Conflict(format!(
                "An app with id [{id}] already exists."
            )));
        }
        Ok(())
    })?;
    let mut st = core.state.lock();
    let embed = Embed {
        counts: true,
        deployments: true,
        tasks: true,
        ..Embed::default()
    };
    let body = render::app_info_value(&mut st, &id, embed, dcos_types::now_secs())
        .unwrap_or_else(|| json!({"id": id}));
    drop(st);
    let mut resp = json_response(StatusCode::CREATED, body.to_string());
    if let Ok(v) = HeaderValue::from_str(&dep.id) {
        resp.headers_mut().insert("Marathon-Deployment-Id", v);
    }
    if let Ok(l) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    Ok(resp)
}

/// Builds the target of an update: rollback (`{"version": v}`), partial merge or replace.
fn update_target(
    core: &Core,
    id: &str,
    body: Value,
    partial: bool,
    must_exist: bool,
) -> Result<(App, bool), ApiError> {
    let Value::Object(obj) = body else {
        return Err(ApiError::Parse(ParseError::Type(
            "/".into(),
            "error.expected.jsobject".into(),
        )));
    };
    let existing = core.state.lock().visible(id).map(|e| e.app.clone());
    if must_exist && existing.is_none() {
        return Err(ApiError::NotFound(format!("App '{id}' does not exist")));
    }
    // Rollback: only `version` (and `id`).
    if let Some(Value::String(v)) = obj.get("version") {
        if obj.keys().all(|k| k == "version" || k == "id") {
            let entry = core
                .store
                .get(&version_key(id, v))
                .map_err(|e| read_error(e, "/version"))?
                .ok_or_else(|| {
                    ApiError::NotFound(format!("App '{id}' does not exist in version {v}"))
                })?;
            let app = App::from_slice(&entry.value).map_err(ApiError::Parse)?;
            return Ok((app, existing.is_some()));
        }
    }
    let merged = match (&existing, partial) {
        (Some(e), true) => merge_partial(e, &obj),
        _ => {
            let mut o = obj.clone();
            o.remove("version");
            o.remove("versionInfo");
            Value::Object(o)
        }
    };
    let app = prepare(merged, Some(id))?;
    Ok((app, existing.is_some()))
}

async fn put_or_patch_one(
    core: Arc<Core>,
    id: String,
    q: Query,
    body: Value,
    patch: bool,
) -> ApiResult {
    let force = q.flag("force", false);
    let partial = patch || q.flag("partialUpdate", true);
    let (app, existed) = update_target(&core, &id, body, partial, patch)?;
    let posted = api_post_event(&core, &format!("/v2/apps{id}"), &app);
    let dep = change(
        &core,
        vec![(id.clone(), Some(app))],
        force,
        false,
        posted,
        |_| Ok(()),
    )?;
    if existed {
        Ok(deployment_result(&dep, StatusCode::OK, None))
    } else {
        Ok(deployment_result(&dep, StatusCode::CREATED, Some(&id)))
    }
}

async fn put_or_patch_many(core: Arc<Core>, q: Query, body: Value, patch: bool) -> ApiResult {
    let force = q.flag("force", false);
    let partial = patch || q.flag("partialUpdate", true);
    let Value::Array(items) = body else {
        return Err(ApiError::Parse(ParseError::Type(
            "/".into(),
            "error.expected.jsarray".into(),
        )));
    };
    let mut changes = Vec::new();
    let mut violations = Violations::default();
    for (i, item) in items.into_iter().enumerate() {
        let raw_id = item
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        if raw_id.is_empty() {
            violations.add(
                format!("/({i})/id"),
                "Path must contain at least one path element",
            );
            continue;
        }
        let id = canonical_id(&raw_id, "/");
        match update_target(&core, &id, item, partial, patch) {
            Ok((app, _)) => changes.push((id, Some(app))),
            Err(ApiError::Invalid(v)) => violations.merge(v.prefixed(&format!("/({i})"))),
            Err(e) => return Err(e),
        }
    }
    if !violations.is_empty() {
        return Err(ApiError::Invalid(violations));
    }
    if changes.is_empty() {
        return Err(ApiError::BadRequest("No apps given".into()));
    }
    let dep = change(&core, changes, force, false, None, |_| Ok(()))?;
    Ok(deployment_result(&dep, StatusCode::OK, None))
}

async fn put_apps(
    AxState(core): S,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let v = body_json(&core, &headers, body)?;
    put_or_patch_many(core, Query::parse(q), v, false).await
}

async fn patch_apps(
    AxState(core): S,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let v = body_json(&core, &headers, body)?;
    put_or_patch_many(core, Query::parse(q), v, true).await
}

// ---- reads ---------------------------------------------------------------------------

async fn list_apps(AxState(core): S, RawQuery(q): RawQuery) -> ApiResult {
    let q = Query::parse(q);
    let embed = Embed::parse(
        q.all("embed"),
        Embed {
            counts: true,
            deployments: true,
            ..Embed::default()
        },
    );
    let selector = match q.get("label") {
        Some(l) => Some(LabelSelector::parse(l).map_err(ApiError::BadRequest)?),
        None => None,
    };
    let id_filter = q.get("id").map(|s| s.to_lowercase());
    let cmd_filter = q.get("cmd").map(|s| s.to_string());
    let now = dcos_types::now_secs();
    let mut st = core.state.lock();
    let deps = render::deployments_by_app(&st);
    let mut out = String::with_capacity((st.last_list_bytes + st.last_list_bytes / 8).max(1 << 16));
    out.push_str("{\"apps\":[");
    let mut first = true;
    for (id, e) in st.apps.iter_mut() {
        if e.deleted {
            continue;
        }
        if let Some(f) = &id_filter {
            if !id.to_lowercase().contains(f) {
                continue;
            }
        }
        if let Some(c) = &cmd_filter {
            if !e.app.cmd.as_deref().unwrap_or("").contains(c.as_str()) {
                continue;
            }
        }
        if let Some(s) = &selector {
            if !s.matches(&e.app.labels) {
                continue;
            }
        }
        if !first {
            out.push(',');
        }
        first = false;
        render::write_app_info(&mut out, e, &deps, embed, now);
    }
    st.last_list_bytes = out.len();
    drop(st);
    out.push_str("]}");
    Ok(json_response(StatusCode::OK, out))
}

/// Splits `/v2/apps/<rest>` into an app id and a sub-resource.
enum AppPath {
    App(String),
    Group(String),
    Tasks(String),
    Task(String, String),
    Restart(String),
    Versions(String),
    Version(String, String),
}

fn parse_app_path(rest: &str) -> AppPath {
    let rest = rest.trim_end_matches('/');
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let id_of = |n: usize| canonical_id(&segs[..n].join("/"), "/");
    let n = segs.len();
    if n >= 2 {
        match segs[n - 1] {
            "tasks" => return AppPath::Tasks(id_of(n - 1)),
            "restart" => return AppPath::Restart(id_of(n - 1)),
            "versions" => return AppPath::Versions(id_of(n - 1)),
            "*" => return AppPath::Group(id_of(n - 1)),
            _ => {}
        }
    }
    if n >= 3 {
        match segs[n - 2] {
            "tasks" => return AppPath::Task(id_of(n - 2), segs[n - 1].to_string()),
            "versions" => return AppPath::Version(id_of(n - 2), segs[n - 1].to_string()),
            _ => {}
        }
    }
    if n == 1 && segs[0] == "*" {
        return AppPath::Group("/".into());
    }
    AppPath::App(id_of(n))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("App '{id}' does not exist"))
}

fn tasks_json(st: &mut State, id: &str) -> Option<String> {
    let e = st.apps.get_mut(id).filter(|e| !e.deleted)?;
    let app = e.app.clone();
    let mut out = String::from("{\"tasks\":[");
    for (i, t) in e.tasks.values_mut().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(render::task_json(t, &app));
    }
    out.push_str("]}");
    Some(out)
}

async fn app_get(AxState(core): S, Path(rest): Path<String>, RawQuery(q): RawQuery) -> ApiResult {
    let q = Query::parse(q);
    let now = dcos_types::now_secs();
    match parse_app_path(&rest) {
        AppPath::App(id) => {
            let embed = Embed::parse(
                q.all("embed"),
                Embed {
                    counts: true,
                    deployments: true,
                    tasks: true,
                    last_task_failure: true,
                    ..Embed::default()
                },
            );
            let mut st = core.state.lock();
            let v =
                render::app_info_value(&mut st, &id, embed, now).ok_or_else(|| not_found(&id))?;
            Ok(ok_json(json!({ "app": v })))
        }
        AppPath::Group(gid) => {
            let embed = Embed::parse(
                q.all("embed"),
                Embed {
                    counts: true,
                    deployments: true,
                    ..Embed::default()
                },
            );
            let prefix = if gid == "/" {
                "/".to_string()
            } else {
                format!("{gid}/")
            };
            let mut st = core.state.lock();
            let deps = render::deployments_by_app(&st);
            let mut out = String::from("{\"*\":[");
            let mut first = true;
            for (id, e) in st.apps.iter_mut() {
                if e.deleted || !id.starts_with(&prefix) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                render::write_app_info(&mut out, e, &deps, embed, now);
            }
            out.push_str("]}");
            Ok(json_response(StatusCode::OK, out))
        }
        AppPath::Tasks(id) => {
            let mut st = core.state.lock();
            let body = tasks_json(&mut st, &id).ok_or_else(|| not_found(&id))?;
            Ok(json_response(StatusCode::OK, body))
        }
        AppPath::Versions(id) => {
            let st = core.state.lock();
            let e = st.visible(&id).ok_or_else(|| not_found(&id))?;
            Ok(ok_json(json!({ "versions": e.versions })))
        }
        AppPath::Version(id, v) => {
            if core.state.lock().visible(&id).is_none() {
                return Err(not_found(&id));
            }
            let entry = core
                .store
                .get(&version_key(&id, &v))
                .map_err(|e| read_error(e, "/version"))?
                .ok_or_else(|| {
                    ApiError::NotFound(format!("App '{id}' does not exist in version {v}"))
                })?;
            Ok(json_response(
                StatusCode::OK,
                String::from_utf8_lossy(&entry.value).into_owned(),
            ))
        }
        AppPath::Task(..) | AppPath::Restart(_) => Err(ApiError::NotAcceptable(
            "Method not allowed on this resource".into(),
        )),
    }
}

async fn app_put(
    AxState(core): S,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    match parse_app_path(&rest) {
        AppPath::App(id) => {
            let v = body_json(&core, &headers, body)?;
            put_or_patch_one(core, id, Query::parse(q), v, false).await
        }
        _ => Err(ApiError::NotAcceptable(
            "Method not allowed on this resource".into(),
        )),
    }
}

async fn app_patch(
    AxState(core): S,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    match parse_app_path(&rest) {
        AppPath::App(id) => {
            let v = body_json(&core, &headers, body)?;
            put_or_patch_one(core, id, Query::parse(q), v, true).await
        }
        _ => Err(ApiError::NotAcceptable(
            "Method not allowed on this resource".into(),
        )),
    }
}

async fn app_post(AxState(core): S, Path(rest): Path<String>, RawQuery(q): RawQuery) -> ApiResult {
    let q = Query::parse(q);
    match parse_app_path(&rest) {
        AppPath::Restart(id) => {
            let force = q.flag("force", false);
            let app = core
                .state
                .lock()
                .visible(&id)
                .map(|e| (*e.app).clone())
                .ok_or_else(|| not_found(&id))?;
            let dep = change(&core, vec![(id, Some(app))], force, true, None, |_| Ok(()))?;
            Ok(deployment_result(&dep, StatusCode::OK, None))
        }
        _ => Err(ApiError::NotAcceptable(
            "Method not allowed on this resource".into(),
        )),
    }
}

async fn app_delete(
    AxState(core): S,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q = Query::parse(q);
    match parse_app_path(&rest) {
        AppPath::App(id) => {
            let force = q.flag("force", true);
            let dep = change(&core, vec![(id.clone(), None)], force, false, None, |st| {
                if st.visible(&id).is_none() {
                    return Err(not_found(&id));
                }
                Ok(())
            })?;
            Ok(deployment_result(&dep, StatusCode::OK, None))
        }
        AppPath::Tasks(id) => {
            let host = q.get("host").map(String::from);
            let ids: Vec<String> = {
                let st = core.state.lock();
                let e = st.visible(&id).ok_or_else(|| not_found(&id))?;
                e.tasks
                    .values()
                    .filter(|t| host.as_ref().is_none_or(|h| &t.host == h))
                    .map(|t| t.id.clone())
                    .collect()
            };
            kill_tasks(&core, ids, &q, false)
        }
        AppPath::Task(id, tid) => {
            {
                let st = core.state.lock();
                let e = st.visible(&id).ok_or_else(|| not_found(&id))?;
                if !e.tasks.contains_key(&tid) {
                    return Err(ApiError::NotFound(format!("Task '{tid}' does not exist")));
                }
            }
            kill_tasks(&core, vec![tid], &q, true)
        }
        _ => Err(ApiError::NotAcceptable(
            "Method not allowed on this resource".into(),
        )),
    }
}

/// Kills tasks; with `scale=true` also lowers `instances` through a deployment.
fn kill_tasks(core: &Core, ids: Vec<String>, q: &Query, single: bool) -> ApiResult {
    let scale = q.flag("scale", false);
    let wipe = q.flag("wipe", false);
    let force = q.flag("force", false);
    if scale && wipe {
        return Err(ApiError::BadRequest(
            "You cannot use scale and wipe at the same time.".into(),
        ));
    }
    let now = dcos_types::now_secs();
    let mut by_app: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in &ids {
        if let Some(a) = crate::model::app_id_of_task(t) {
            by_app.entry(a).or_default().push(t.clone());
        }
    }
    if scale {
        let dep = kill_and_scale(core, &by_app, force, now)?;
        return Ok(deployment_result(&dep, StatusCode::OK, None));
    }
    // Plain kill: the tasks are replaced.
    let mut calls = Vec::new();
    let mut out = Vec::new();
    {
        let mut st = core.state.lock();
        for (a, tids) in &by_app {
            let Some(e) = st.apps.get_mut(a) else {
                continue;
            };
            let app = e.app.clone();
            for tid in tids {
                if let Some(t) = e.tasks.get_mut(tid) {
                    calls.push(SchedulerCall::Kill {
                        task_id: TaskId(tid.clone()),
                        agent_id: Some(AgentId(t.agent_id.clone())),
                        grace_period_seconds: app.task_kill_grace_period_seconds,
                    });
                    out.push(render::task_json(t, &app).to_string());
                }
            }
        }
    }
    core.send(calls);
    if single {
        let t = out.pop().unwrap_or_else(|| "null".into());
        Ok(json_response(StatusCode::OK, format!("{{\"task\":{t}}}")))
    } else {
        Ok(json_response(
            StatusCode::OK,
            format!("{{\"tasks\":[{}]}}", out.join(",")),
        ))
    }
}

/// Kills tasks and lowers their apps' `instances` by as many, in one deployment.
fn kill_and_scale(
    core: &Core,
    by_app: &BTreeMap<String, Vec<String>>,
    force: bool,
    now: f64,
) -> Result<Deployment, ApiError> {
    let mut fx = Effects::default();
    let dep = {
        let mut st = core.state.lock();
        consistent(core, &mut st)?;
        let mut conflicting = Vec::new();
        for a in by_app.keys() {
            conflicting.extend(st.locks(a));
        }
        if !conflicting.is_empty() && !force {
            return Err(ApiError::Locked(conflicting));
        }
        let changes = mark_killed(&mut st, by_app, now, &mut fx);
        if changes.is_empty() {
            return Err(ApiError::BadRequest("No tasks to kill".into()));
        }
        let d = st.deploy(
            changes,
            true,
            false,
            now,
            port_range(core),
            core.config.max_versions,
            &mut fx,
            &core.events,
        );
        let d = match d {
            Ok(d) => d,
            Err(e) => {
                core.rebuild(&mut st); // undo the kill marks
                return Err(e.into());
            }
        };
        stored(core, &mut st, &mut fx)?;
        d
    };
    core.send(fx.calls);
    core.wake.notify_one();
    Ok(dep)
}

/// Marks the tasks killed (with their kill calls) and returns each app with `instances`
/// lowered by the tasks killed.
fn mark_killed(
    st: &mut State,
    by_app: &BTreeMap<String, Vec<String>>,
    now: f64,
    fx: &mut Effects,
) -> Vec<(String, Option<App>)> {
    let mut changes = Vec::new();
    for (a, tids) in by_app {
        let Some(e) = st.apps.get_mut(a).filter(|e| !e.deleted) else {
            continue;
        };
        let mut killed = 0;
        for tid in tids {
            if let Some(t) = e.tasks.get_mut(tid) {
                if t.kill_requested.is_none() {
                    t.kill_requested = Some(now);
                    t.json = None;
                    killed += 1;
                    fx.put(crate::state::task_key(tid), &*t);
                    fx.calls.push(SchedulerCall::Kill {
                        task_id: TaskId(tid.clone()),
                        agent_id: Some(AgentId(t.agent_id.clone())),
                        grace_period_seconds: e.app.task_kill_grace_period_seconds,
                    });
                }
            }
        }
        let mut app = (*e.app).clone();
        app.instances = (app.instances - killed).max(0);
        changes.push((a.clone(), Some(app)));
    }
    changes
}

async fn list_tasks(AxState(core): S, RawQuery(q): RawQuery) -> ApiResult {
    let q = Query::parse(q);
    let wanted: HashSet<TaskState> = q
        .all("status")
        .chain(q.all("status[]"))
        .filter_map(|s| match s.to_ascii_lowercase().as_str() {
            "running" => Some(TaskState::Running),
            "staging" => Some(TaskState::Staging),
            _ => None,
        })
        .collect();
    let mut st = core.state.lock();
    let mut out = String::from("{\"tasks\":[");
    let mut first = true;
    for e in st.apps.values_mut() {
        if e.deleted {
            continue;
        }
        let app = e.app.clone();
        for t in e.tasks.values_mut() {
            if !wanted.is_empty() && !wanted.contains(&t.state) {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(render::task_json(t, &app));
        }
    }
    drop(st);
    out.push_str("]}");
    Ok(json_response(StatusCode::OK, out))
}

async fn tasks_delete(
    AxState(core): S,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let q = Query::parse(q);
    let v = body_json(&core, &headers, body)?;
    let ids: Vec<String> = match v.get("ids").and_then(|i| i.as_array()) {
        Some(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(String::from)
                    .ok_or_else(|| ApiError::BadRequest("Task ids must be strings".into()))
            })
            .collect::<Result<_, _>>()?,
        None => {
            return Err(ApiError::Parse(ParseError::Type(
                "/ids".into(),
                "error.path.missing".into(),
            )))
        }
    };
    {
        let st = core.state.lock();
        for id in &ids {
            if crate::model::app_id_of_task(id).is_none() {
                return Err(ApiError::BadRequest(format!(
                    "Invalid task id '{id}'. [Task id must be of the form <appId>.<uuid>]"
                )));
            }
            if st.find_task(id).is_none() {
                return Err(ApiError::BadRequest(format!("Task '{id}' does not exist")));
            }
        }
    }
    kill_tasks(&core, ids, &q, false)
}

async fn list_deployments(AxState(core): S) -> ApiResult {
    let st = core.state.lock();
    let v: Vec<Value> = st
        .deployments
        .values()
        .map(|d| {
            d.to_json(|app| {
                st.apps
                    .get(app)
                    .map(crate::readiness::results_json)
                    .unwrap_or_default()
            })
        })
        .collect();
    Ok(ok_json(Value::Array(v)))
}

async fn delete_deployment(
    AxState(core): S,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q = Query::parse(q);
    let force = q.flag("force", false);
    let mut fx = Effects::default();
    let result = {
        let mut st = core.state.lock();
        consistent(&core, &mut st)?;
        let Some(d) = st.deployments.get(&id).cloned() else {
            return Err(ApiError::NotFound(format!(
                "DeploymentPlan {id} does not exist"
            )));
        };
        // Roll back (unless forced): a new deployment to the apps as they were.
        let changes = if force {
            Vec::new()
        } else {
            rollback_changes(&st, &d)?
        };
        st.cancel(&id, &mut fx, &core.events);
        let dep = if changes.is_empty() {
            None
        } else {
            let now = dcos_types::now_secs();
            let (range, max) = (port_range(&core), core.config.max_versions);
            match st.deploy(changes, true, false, now, range, max, &mut fx, &core.events) {
                Ok(dep) => Some(dep),
                Err(e) => {
                    core.rebuild(&mut st); // undo the cancel
                    return Err(e.into());
                }
            }
        };
        stored(&core, &mut st, &mut fx)?;
        dep
    };
    core.send(fx.calls);
    core.wake.notify_one();
    match result {
        Some(dep) => Ok(deployment_result(&dep, StatusCode::OK, None)),
        None => Ok(StatusCode::ACCEPTED.into_response()),
    }
}

/// The changes that put a deployment's apps back as they were before it.
fn rollback_changes(st: &State, d: &Deployment) -> Result<Vec<(String, Option<App>)>, ApiError> {
    let mut changes = Vec::new();
    for (app_id, original) in &d.original {
        match original {
            Some(v) => {
                let mut app = App::from_value(v.clone()).map_err(ApiError::Parse)?;
                app.version = None;
                app.version_info = None;
                changes.push((app_id.clone(), Some(app)));
            }
            None => {
                if st.visible(app_id).is_some() {
                    changes.push((app_id.clone(), None));
                }
            }
        }
    }
    Ok(changes)
}

// ---- groups --------------------------------------------------------------------------

fn group_tree(st: &mut State, gid: &str) -> Option<Value> {
    let prefix = if gid == "/" {
        "/".to_string()
    } else {
        format!("{gid}/")
    };
    let mut apps_here = Vec::new();
    let mut subgroups: BTreeMap<String, ()> = BTreeMap::new();
    let mut found = gid == "/";
    let mut version = String::new();
    for (id, e) in st.apps.iter_mut() {
        if e.deleted || !id.starts_with(&prefix) {
            continue;
        }
        found = true;
        let rest = &id[prefix.len()..];
        if let Some(v) = &e.app.version {
            if *v > version {
                version = v.clone();
            }
        }
        match rest.split_once('/') {
            None => {
                let def: Value = serde_json::from_str(render::app_def(e)).unwrap_or(Value::Null);
                apps_here.push(def);
            }
            Some((g, _)) => {
                subgroups.insert(format!("{prefix}{g}"), ());
            }
        }
    }
    if !found {
        return None;
    }
    let groups: Vec<Value> = subgroups.keys().filter_map(|g| group_tree(st, g)).collect();
    if version.is_empty() {
        version = crate::model::iso(st.started_at);
    }
    Some(json!({
        "id": gid,
        "apps": apps_here,
        "groups": groups,
        "pods": [],
        "dependencies": [],
        "version": version,
    }))
}

async fn groups_root(AxState(core): S) -> ApiResult {
    let mut st = core.state.lock();
    let v = group_tree(&mut st, "/").unwrap_or(Value::Null);
    Ok(ok_json(v))
}

async fn group_get(AxState(core): S, Path(rest): Path<String>) -> ApiResult {
    let gid = canonical_id(&rest, "/");
    let mut st = core.state.lock();
    let v = group_tree(&mut st, &gid)
        .ok_or_else(|| ApiError::NotFound(format!("Group '{gid}' does not exist")))?;
    Ok(ok_json(v))
}

/// Apps of a group update (`{"apps":[...], "groups":[{"id", "apps", "groups"}]}`), ids
/// resolved against the group, validation paths prefixed as Marathon does.
fn group_apps(
    core: &Core,
    gid: &str,
    body: &Value,
    prefix: &str,
    out: &mut Vec<(String, Option<App>)>,
    violations: &mut Violations,
) -> Result<(), ApiError> {
    if let Some(apps) = body.get("apps").and_then(|a| a.as_array()) {
        for (i, a) in apps.iter().enumerate() {
            let raw = a.get("id").and_then(|x| x.as_str()).unwrap_or("");
            let id = canonical_id(raw, gid);
            if !raw.is_empty() && !id.starts_with(&format!("{}/", gid.trim_end_matches('/'))) {
                violations.add(
                    format!("{prefix}/apps({i})/id"),
                    format!("Identifier is not child of '{gid}'. Hint: use relative paths."),
                );
                continue;
            }
            let partial = core.state.lock().visible(&id).is_some();
            match update_target(core, &id, a.clone(), partial, false) {
                Ok((app, _)) => out.push((id, Some(app))),
                Err(ApiError::Invalid(v)) => {
                    violations.merge(v.prefixed(&format!("{prefix}/apps({i})")))
                }
                Err(e) => return Err(e),
            }
        }
    }
    if let Some(groups) = body.get("groups").and_then(|g| g.as_array()) {
        for (i, g) in groups.iter().enumerate() {
            let sub = canonical_id(g.get("id").and_then(|x| x.as_str()).unwrap_or(""), gid);
            group_apps(
                core,
                &sub,
                g,
                &format!("{prefix}/groups({i})"),
                out,
                violations,
            )?;
        }
    }
    Ok(())
}

fn group_exists(st: &State, gid: &str) -> bool {
    let prefix = format!("{}/", gid.trim_end_matches('/'));
    gid == "/"
        || st
            .apps
            .iter()
            .any(|(id, e)| !e.deleted && id.starts_with(&prefix))
}

async fn group_change(
    core: Arc<Core>,
    gid: String,
    q: Query,
    body: Value,
    create: bool,
) -> ApiResult {
    let force = q.flag("force", false);
    let gid = canonical_id(
        body.get("id")
            .and_then(|x| x.as_str())
            .filter(|_| create)
            .unwrap_or(&gid),
        &gid,
    );
    if let Err(m) = dcos_types::ids::check_service_id_len(&gid) {
        return Err(invalid("/id", m));
    }
    if create && gid != "/" && group_exists(&core.state.lock(), &gid) {
        return Err(ApiError::Conflict(format!(
            "Group {gid} is already created. Use PUT to change this group."
        )));
    }
    let mut changes = Vec::new();
    if let Some(by) = body.get("scaleBy").and_then(|x| x.as_f64()) {
        if !(by.is_finite() && by >= 0.0) {
            return Err(ApiError::BadRequest(
                "scaleBy must be a non-negative number".into(),
            ));
        }
        let st = core.state.lock();
        if !group_exists(&st, &gid) {
            return Err(ApiError::NotFound(format!("Group '{gid}' does not exist")));
        }
        let prefix = format!("{}/", gid.trim_end_matches('/'));
        for (id, e) in st
            .apps
            .iter()
            .filter(|(id, e)| !e.deleted && id.starts_with(&prefix))
        {
            let mut app = (*e.app).clone();
            app.instances = (app.instances as f64 * by).ceil() as i64;
            changes.push((id.clone(), Some(app)));
        }
    } else {
        let mut violations = Violations::default();
        group_apps(&core, &gid, &body, "", &mut changes, &mut violations)?;
        if !violations.is_empty() {
            return Err(ApiError::Invalid(violations));
        }
    }
    if changes.is_empty() {
        return Err(ApiError::BadRequest(
            "Nothing to change: give apps, groups or scaleBy".into(),
        ));
    }
    let dep = change(&core, changes, force, false, None, |_| Ok(()))?;
    let status = if create {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(deployment_result(
        &dep,
        status,
        create.then_some(gid.as_str()),
    ))
}

async fn group_post_root(
    AxState(core): S,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let v = body_json(&core, &headers, body)?;
    group_change(core, "/".into(), Query::parse(q), v, true).await
}

async fn group_put_root(
    AxState(core): S,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let v = body_json(&core, &headers, body)?;
    group_change(core, "/".into(), Query::parse(q), v, false).await
}

async fn group_post(
    AxState(core): S,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let v = body_json(&core, &headers, body)?;
    group_change(core, canonical_id(&rest, "/"), Query::parse(q), v, true).await
}

async fn group_put(
    AxState(core): S,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let v = body_json(&core, &headers, body)?;
    group_change(core, canonical_id(&rest, "/"), Query::parse(q), v, false).await
}

async fn group_delete(
    AxState(core): S,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q = Query::parse(q);
    let gid = canonical_id(&rest, "/");
    let prefix = format!("{}/", gid.trim_end_matches('/'));
    let ids: Vec<String> = {
        let st = core.state.lock();
        st.apps
            .iter()
            .filter(|(id, e)| !e.deleted && id.starts_with(&prefix))
            .map(|(id, _)| id.clone())
            .collect()
    };
    if ids.is_empty() {
        return Err(ApiError::NotFound(format!("Group '{gid}' does not exist")));
    }
    let dep = change(
        &core,
        ids.into_iter().map(|id| (id, None)).collect(),
        q.flag("force", false),
        false,
        None,
        |_| Ok(()),
    )?;
    Ok(deployment_result(&dep, StatusCode::OK, None))
}

// ---- queue ---------------------------------------------------------------------------

async fn queue(AxState(core): S) -> ApiResult {
    let now = dcos_types::now_secs();
    let mut st = core.state.lock();
    let mut items = Vec::new();
    for e in st.apps.values_mut() {
        if e.deleted || e.pending == 0 {
            continue;
        }
        let left = (e.backoff.until - now).max(0.0);
        let app: Value = serde_json::from_str(render::app_def(e)).unwrap_or(Value::Null);
        let s = &e.offer_stats;
        let reasons: Vec<Value> = crate::matcher::Reject::ALL
            .iter()
            .map(|r| {
                json!({
                    "reason": r.as_str(),
                    "declined": s.rejects.get(r).copied().unwrap_or(0),
                    "processed": s.processed,
                })
            })
            .collect();
        let waiting_reason = if left > 0.0 {
            Some(format!(
                "backoff: next launch in {left:.1}s after a task failure"
            ))
        } else {
            e.offer_stats.last_reason.clone()
        };
        items.push(json!({
            "app": app,
            "count": e.pending,
            "delay": {"timeLeftSeconds": left.ceil() as i64, "overdue": left <= 0.0},
            "since": crate::model::iso(e.queued_since.unwrap_or(now)),
            "processedOffersSummary": {
                "processedOffersCount": s.processed,
                "unusedOffersCount": s.unused,
                "lastUnusedOfferAt": e.last_unused_offer_at.map(crate::model::iso),
                "lastUsedOfferAt": e.last_used_offer_at.map(crate::model::iso),
                "rejectSummaryLastOffers": reasons,
                "rejectSummaryLaunchAttempt": reasons,
                "reason": waiting_reason,
            },
        }));
    }
    Ok(ok_json(json!({ "queue": items })))
}

async fn queue_delay_reset(AxState(core): S, Path(rest): Path<String>) -> ApiResult {
    let Some(id) = rest.trim_end_matches('/').strip_suffix("/delay") else {
        return Err(ApiError::NotFound("Not found".into()));
    };
    let id = canonical_id(id, "/");
    {
        let mut st = core.state.lock();
        let e = st.apps.get_mut(&id).filter(|e| !e.deleted).ok_or_else(|| {
            ApiError::NotFound(format!("Application {id} not found in tasks queue."))
        })?;
        e.backoff = Default::default();
        st.dirty.insert(id);
    }
    core.wake.notify_one();
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- info ----------------------------------------------------------------------------

async fn info(AxState(core): S) -> ApiResult {
    let c = &core.config;
    let fid = core.state.lock().framework_id.clone();
    let leader = format!("{}:{}", c.hostname, c.http_port);
    Ok(ok_json(json!({
        "name": "marathon",
        "version": MARATHON_VERSION,
        "buildref": "dcos-rs",
        "elected": true,
        "leader": leader,
        "frameworkId": fid,
        "marathon_config": {
            "master": c.master,
            "failover_timeout": c.failover_timeout_seconds as i64,
            "framework_name": c.framework_name,
            "ha": false,
            "checkpoint": true,
            "local_port_min": c.local_port_min,
            "local_port_max": c.local_port_max,
            "executor": "//cmd",
            "hostname": c.hostname,
            "webui_url": null,
            "mesos_role": c.roles.first(),
            "task_launch_timeout": 300000,
            "task_reservation_timeout": 20000,
            "reconciliation_initial_delay": 15000,
            "reconciliation_interval": 600000,
            "mesos_user": "root",
            "leader_proxy_connection_timeout_ms": 5000,
            "leader_proxy_read_timeout_ms": 10000,
            "features": [],
            "mesos_leader_ui_url": null,
            "decline_offer_duration": (c.decline_refuse_seconds * 1000.0) as i64,
            "max_instances_per_offer": c.max_tasks_per_offer,
        },
        "zookeeper_config": {
            "zk": null,
            "zk_timeout": 10000,
            "zk_session_timeout": 10000,
            "zk_max_versions": c.max_versions,
        },
        "http_config": {"http_port": c.http_port, "https_port": null},
        "event_subscriber": null,
    })))
}

async fn leader(AxState(core): S) -> ApiResult {
    Ok(ok_json(json!({
        "leader": format!("{}:{}", core.config.hostname, core.config.http_port)
    })))
}

async fn metrics(AxState(core): S) -> ApiResult {
    Ok(ok_json(metrics_json(&core)))
}

/// The same figures as Prometheus text (dots and dashes become `_`).
async fn metrics_prometheus(AxState(core): S) -> Response {
    let v = metrics_json(&core);
    let mut out = String::new();
    let name = |n: &str| n.replace(['.', '-'], "_");
    for (section, field, kind) in [
        ("gauges", "value", "gauge"),
        ("counters", "count", "counter"),
    ] {
        if let Some(m) = v.get(section).and_then(|m| m.as_object()) {
            for (k, x) in m {
                let n = name(k);
                let val = x.get(field).and_then(|f| f.as_f64()).unwrap_or(0.0);
                out.push_str(&format!("# TYPE {n} {kind}\n{n} {val}\n"));
            }
        }
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        out,
    )
        .into_response()
}

fn metrics_json(core: &Core) -> Value {
    let st = core.state.lock();
    let c = st.counters.clone();
    let apps = st.apps.values().filter(|e| !e.deleted).count();
    let (mut running, mut staged, mut total) = (0, 0, 0);
    for t in st.all_tasks() {
        total += 1;
        match t.state {
            TaskState::Running => running += 1,
            TaskState::Staging | TaskState::Starting => staged += 1,
            _ => {}
        }
    }
    let deployments = st.deployments.len();
    let queued: usize = st.apps.values().map(|e| e.pending).sum();
    let uptime = dcos_types::now_secs() - st.started_at;
    drop(st);
    let g = |v: f64| json!({ "value": v });
    let n = |v: u64| json!({ "count": v });
    let mut gauges = Map::new();
    gauges.insert("marathon.apps.active.gauge".into(), g(apps as f64));
    gauges.insert(
        "marathon.deployments.active.gauge".into(),
        g(deployments as f64),
    );
    gauges.insert("marathon.instances.running.gauge".into(), g(running as f64));
    gauges.insert("marathon.instances.staged.gauge".into(), g(staged as f64));
    gauges.insert("marathon.instances.total.gauge".into(), g(total as f64));
    gauges.insert(
        "marathon.instances.launch-queue.gauge".into(),
        g(queued as f64),
    );
    gauges.insert(
        "marathon.leadership.duration.gauge.seconds".into(),
        g(uptime),
    );
    let mut counters = Map::new();
    counters.insert(
        "marathon.tasks.launched.counter".into(),
        n(c.tasks_launched),
    );
    counters.insert("marathon.tasks.failed.counter".into(), n(c.tasks_failed));
    counters.insert("marathon.tasks.killed.counter".into(), n(c.tasks_killed));
    counters.insert(
        "marathon.mesos.task-updates.counter".into(),
        n(c.status_updates),
    );
    counters.insert(
        "marathon.mesos.offers.incoming.counter".into(),
        n(c.offers_received),
    );
    counters.insert(
        "marathon.mesos.offers.declined.counter".into(),
        n(c.offers_declined),
    );
    counters.insert(
        "marathon.deployments.counter".into(),
        n(c.deployments_started),
    );
    counters.insert(
        "marathon.deployments.success.counter".into(),
        n(c.deployments_succeeded),
    );
    counters.insert(
        "marathon.deployments.dismissed.counter".into(),
        n(c.deployments_cancelled),
    );
    json!({
        "version": "4.0.0",
        "counters": counters,
        "gauges": gauges,
        "histograms": {},
        "meters": {},
        "timers": {},
    })
}

// ---- events --------------------------------------------------------------------------

async fn events(AxState(core): S, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    if !(accept.contains("text/event-stream") || accept.contains("*/*")) {
        return ApiError::NotAcceptable(
            "The event stream is served as text/event-stream; send 'Accept: text/event-stream'"
                .into(),
        )
        .into_response();
    }
    let q = Query::parse(q);
    let filter: HashSet<String> = q.all("event_type").map(String::from).collect();
    let rx = core.events.subscribe();
    let attached = json!({
        "eventType": "event_stream_attached",
        "timestamp": crate::model::iso(dcos_types::now_secs()),
        "remoteAddress": "127.0.0.1",
    })
    .to_string();
    let first = if filter.is_empty() || filter.contains("event_stream_attached") {
        Some(Ok::<_, Infallible>(
            SseEvent::default()
                .event("event_stream_attached")
                .data(attached),
        ))
    } else {
        None
    };
    let stream = BroadcastStream::new(rx)
        .take_while(|r| {
            // A lagging (slow) consumer is disconnected, as Marathon does.
            let ok = r.is_ok();
            async move { ok }
        })
        .filter_map(move |r| {
            let out = match r {
                Ok(ev) if filter.is_empty() || filter.contains(&ev.kind) => {
                    Some(Ok::<_, Infallible>(
                        SseEvent::default()
                            .event(ev.kind.clone())
                            .data(ev.data.clone()),
                    ))
                }
                _ => None,
            };
            async move { out }
        });
    let stream = futures::stream::iter(first).chain(stream);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
