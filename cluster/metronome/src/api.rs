//! The Metronome v1 HTTP API (plus the legacy `/v0/scheduled-jobs`), with the shapes the DC/OS
//! CLI (`dcos job`) sends and parses. Errors are Marathon-style JSON.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State as AxState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use serde_json::{json, Value};

use crate::model::{parse_job, parse_schedule, schedule_json, JobSpec, ScheduleSpec, Violations};
use crate::scheduler::{
    history_key, job_key, run_key, schedules_key, Core, Effects, JobEntry, State,
};

type S = AxState<Arc<Core>>;

/// The Metronome version reported in `/info`.
pub const METRONOME_VERSION: &str = "0.6.66";

#[derive(Debug)]
pub enum ApiError {
    NotFound(String),
    Conflict(String),
    Invalid(Violations),
    BadJson(String),
    BadRequest(String),
    TooLarge(usize),
    Unavailable(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, json!({ "message": m })),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, json!({ "message": m })),
            ApiError::Invalid(v) => (StatusCode::UNPROCESSABLE_ENTITY, v.body()),
            ApiError::BadJson(d) => (
                StatusCode::BAD_REQUEST,
                json!({ "message": "Invalid JSON", "details": d }),
            ),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, json!({ "message": m })),
            ApiError::TooLarge(max) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "message": format!("Request body too large: the limit is {max} bytes") }),
            ),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, json!({ "message": m })),
        };
        json_response(status, body)
    }
}

type ApiResult = Result<Response, ApiError>;

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

fn ok(v: Value) -> ApiResult {
    Ok(json_response(StatusCode::OK, v))
}

fn created(v: Value) -> ApiResult {
    Ok(json_response(StatusCode::CREATED, v))
}

fn job_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("Job '{id}' does not exist"))
}

/// A refused commit: 503 naming the cause (the in-memory state was put back to what the
/// store holds, see `Core::commit_or_rebuild`). A key the store does not accept can only come
/// from the job id the client chose: 422 on `/id`.
fn store_error(e: dcos_store::StoreError) -> ApiError {
    match e {
        dcos_store::StoreError::InvalidKey { reason, .. } => {
            let mut errs = Violations::default();
            errs.add("/id", format!("cannot be stored: {reason}"));
            ApiError::Invalid(errs)
        }
        e => ApiError::Unavailable(format!(
            "the cluster store refused the write: {e}; nothing was changed"
        )),
    }
}

fn body_json(core: &Core, body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let b = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(ApiError::TooLarge(core.config.max_body_bytes))
        }
        Err(e) => {
            return Err(ApiError::BadRequest(format!(
                "Cannot read the request body: {e}"
            )))
        }
    };
    serde_json::from_slice(&b).map_err(|e| ApiError::BadJson(e.to_string()))
}

/// Which embeds a request asks for (`embed=a&embed=b`, also comma lists).
#[derive(Default, Clone, Copy)]
struct Embed {
    active_runs: bool,
    history: bool,
    history_summary: bool,
}

fn query(raw: &Option<String>) -> Vec<(String, String)> {
    raw.as_deref()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
}

fn embeds(raw: &Option<String>) -> Embed {
    let mut e = Embed::default();
    for (k, v) in query(raw) {
        if k != "embed" {
            continue;
        }
        for part in v.split(',') {
            match part.trim() {
                "activeRuns" => e.active_runs = true,
                "history" => e.history = true,
                "historySummary" => e.history_summary = true,
                _ => {}
            }
        }
    }
    e
}

fn flag(raw: &Option<String>, name: &str) -> bool {
    query(raw)
        .iter()
        .any(|(k, v)| k == name && (v.is_empty() || v.eq_ignore_ascii_case("true")))
}

/// A job as JSON with the requested embeds. `schedules` is always included (as the newest
/// Metronome does); `activeRuns` only when there are some (the DC/OS CLI shows a job as
/// Running whenever the key exists).
fn job_json(entry: &JobEntry, e: Embed) -> Value {
    let mut v = serde_json::to_value(&entry.spec).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert(
            "schedules".into(),
            entry
                .schedules
                .iter()
                .map(|s| schedule_json(s, entry.next_fire))
                .collect(),
        );
        if e.active_runs && !entry.runs.is_empty() {
            m.insert(
                "activeRuns".into(),
                entry.runs.values().map(|r| r.json()).collect(),
            );
        }
        if e.history {
            m.insert("history".into(), entry.history.json());
        }
        if e.history_summary {
            m.insert("historySummary".into(), entry.history.summary_json());
        }
    }
    v
}

pub fn router(core: Arc<Core>) -> Router {
    let limit = core.config.max_body_bytes;
    Router::new()
        .route("/ping", get(|| async { "pong" }))
        .route("/info", get(info))
        .route("/v1/info", get(info))
        .route("/leader", get(leader))
        .route("/v1/leader", get(leader))
        .route("/metrics", get(metrics))
        .route("/v1/metrics", get(metrics))
        .route("/v1/queue", get(queue))
        .route("/v1/jobs", get(list_jobs).post(create_job))
        .route("/v1/jobs/", get(list_jobs).post(create_job))
        .route(
            "/v1/jobs/{id}",
            get(get_job).put(put_job).delete(delete_job),
        )
        .route(
            "/v1/jobs/{id}/schedules",
            get(list_schedules).post(create_schedule),
        )
        .route(
            "/v1/jobs/{id}/schedules/{sid}",
            get(get_schedule).put(put_schedule).delete(delete_schedule),
        )
        .route("/v1/jobs/{id}/runs", get(list_runs).post(start_run))
        .route("/v1/jobs/{id}/runs/{rid}", get(get_run))
        .route("/v1/jobs/{id}/runs/{rid}/actions/stop", post(stop_run))
        // v0 creates exactly as v1 does (a job with its embedded schedules).
        .route("/v0/scheduled-jobs", post(create_job))
        .route("/v0/scheduled-jobs/{id}", put(v0_put))
        .fallback(|| async {
            json_response(
                StatusCode::NOT_FOUND,
                json!({"message": "Unknown resource"}),
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(core)
}

async fn info(AxState(core): S) -> ApiResult {
    ok(json!({
        "version": METRONOME_VERSION,
        "libVersion": env!("CARGO_PKG_VERSION"),
        "frameworkId": core.state.lock().framework_id,
        "hostname": core.config.hostname,
        "httpPort": core.config.http_port,
        "frameworkName": core.config.framework_name,
        "roles": core.config.roles,
    }))
}

async fn leader(AxState(core): S) -> ApiResult {
    ok(json!({ "leader": format!("{}:{}", core.config.hostname, core.config.http_port) }))
}

async fn metrics(AxState(core): S) -> ApiResult {
    let st = core.state.lock();
    let counters = serde_json::to_value(&st.counters).unwrap_or(Value::Null);
    ok(json!({
        "version": METRONOME_VERSION,
        "uptimeMs": core.now() - core.started_at,
        "gauges": {
            "jobs": st.jobs.len(),
            "activeRuns": st.active_runs(),
            "queuedRuns": st.jobs.values().flat_map(|e| e.runs.values()).filter(|r| r.waiting).count(),
            "schedules": st.jobs.values().map(|e| e.schedules.len()).sum::<usize>(),
        },
        "counters": counters,
    }))
}

async fn queue(AxState(core): S) -> ApiResult {
    let st = core.state.lock();
    let list: Vec<Value> = st
        .jobs
        .iter()
        .filter_map(|(id, e)| {
            let runs: Vec<Value> = e
                .runs
                .values()
                .filter(|r| r.waiting)
                .map(|r| json!({"runId": r.id}))
                .collect();
            (!runs.is_empty()).then(|| json!({"jobId": id, "runs": runs}))
        })
        .collect();
    ok(Value::Array(list))
}

async fn list_jobs(AxState(core): S, RawQuery(q): RawQuery) -> ApiResult {
    let e = embeds(&q);
    let st = core.state.lock();
    ok(st.jobs.values().map(|j| job_json(j, e)).collect())
}

async fn get_job(AxState(core): S, Path(id): Path<String>, RawQuery(q): RawQuery) -> ApiResult {
    let e = embeds(&q);
    let st = core.state.lock();
    let entry = st.jobs.get(&id).ok_or_else(|| job_not_found(&id))?;
    ok(job_json(entry, e))
}

/// Validates the schedules embedded in a job document (`schedules: [...]`).
fn parse_embedded_schedules(v: Option<Value>, now: i64) -> Result<Vec<ScheduleSpec>, ApiError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let Value::Array(items) = v else {
        let mut errs = Violations::default();
        errs.add("/schedules", "expected an array");
        return Err(ApiError::Invalid(errs));
    };
    let mut errs = Violations::default();
    let mut out = Vec::new();
    for (i, s) in items.iter().enumerate() {
        match parse_schedule(s, None, &format!("/schedules({i})"), now) {
            Ok(s) => out.push(s),
            Err(e) => {
                for (p, es) in e.0 {
                    for m in es {
                        errs.add(p.clone(), m);
                    }
                }
            }
        }
    }
    if out.len() > 1 {
        errs.add("/schedules", "Only one schedule supported at the moment");
    }
    if !errs.is_empty() {
        return Err(ApiError::Invalid(errs));
    }
    Ok(out)
}

/// Creates a job (with optional schedules); 409 if it exists.
fn create(core: &Core, spec: JobSpec, schedules: Vec<ScheduleSpec>) -> Result<Value, ApiError> {
    let now = core.now();
    let mut st = core.state.lock();
    if st.jobs.contains_key(&spec.id) {
        return Err(ApiError::Conflict("Job with this id already exists".into()));
    }
    let mut fx = Effects::default();
    fx.put(job_key(&spec.id), &spec);
    if !schedules.is_empty() {
        fx.put(schedules_key(&spec.id), &schedules);
    }
    core.commit_locked(&mut st, fx.ops).map_err(store_error)?;
    let mut entry = JobEntry::new(spec);
    entry.schedules = schedules;
    entry.reschedule(now);
    let v = job_json(&entry, Embed::default());
    tracing::info!("metronome: created job {}", entry.spec.id);
    st.jobs.insert(entry.spec.id.clone(), entry);
    Ok(v)
}

async fn create_job(AxState(core): S, body: Result<Bytes, BytesRejection>) -> ApiResult {
    let v = body_json(&core, body)?;
    let (spec, schedules) = parse_job(&v).map_err(ApiError::Invalid)?;
    let schedules = parse_embedded_schedules(schedules, core.now())?;
    let out = create(&core, spec, schedules)?;
    core.wake.notify_one();
    created(out)
}

/// Replaces a job's spec; schedules are kept unless `with_schedules` (v0).
fn replace(core: &Core, id: &str, v: &Value, with_schedules: bool) -> Result<Value, ApiError> {
    let mut v = v.clone();
    if let Value::Object(m) = &mut v {
        match m.get("id") {
            None => {
                m.insert("id".into(), Value::String(id.to_string()));
            }
            Some(Value::String(s)) if s != id => {
                let mut errs = Violations::default();
                errs.add("/id", format!("must be '{id}' as in the URL"));
                return Err(ApiError::Invalid(errs));
            }
            _ => {}
        }
    }
    let now = core.now();
    let (spec, schedules) = parse_job(&v).map_err(ApiError::Invalid)?;
    let schedules = if with_schedules {
        Some(parse_embedded_schedules(schedules, now)?)
    } else {
        None
    };
    let mut st = core.state.lock();
    if !st.jobs.contains_key(id) {
        return Err(job_not_found(id));
    }
    let mut fx = Effects::default();
    fx.put(job_key(id), &spec);
    if let Some(s) = &schedules {
        if s.is_empty() {
            fx.delete(schedules_key(id));
        } else {
            fx.put(schedules_key(id), s);
        }
    }
    core.commit_locked(&mut st, fx.ops).map_err(store_error)?;
    let entry = st.jobs.get_mut(id).ok_or_else(|| job_not_found(id))?;
    entry.spec = spec;
    if let Some(s) = schedules {
        entry.schedules = s;
        entry.reschedule(now);
    }
    Ok(job_json(entry, Embed::default()))
}

async fn put_job(
    AxState(core): S,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let v = body_json(&core, body)?;
    ok(replace(&core, &id, &v, false)?)
}

async fn delete_job(AxState(core): S, Path(id): Path<String>, RawQuery(q): RawQuery) -> ApiResult {
    let stop = flag(&q, "stopCurrentJobRuns");
    let calls = {
        let mut st = core.state.lock();
        let entry = st.jobs.get(&id).ok_or_else(|| job_not_found(&id))?;
        if !entry.runs.is_empty() && !stop {
            return Err(ApiError::Conflict(
                "There are active job runs. Override with stopCurrentJobRuns=true".into(),
            ));
        }
        let mut fx = Effects::default();
        fx.delete(job_key(&id));
        fx.delete(schedules_key(&id));
        fx.delete(history_key(&id));
        for r in entry.runs.keys() {
            fx.delete(run_key(&id, r));
        }
        core.commit_locked(&mut st, fx.ops).map_err(store_error)?;
        let entry = st.jobs.remove(&id).ok_or_else(|| job_not_found(&id))?;
        let calls = State::kill_calls(&entry);
        let v = job_json(&entry, Embed::default());
        tracing::info!("metronome: deleted job {id}");
        (calls, v)
    };
    core.send(calls.0);
    core.wake.notify_one();
    ok(calls.1)
}

// ---- schedules -------------------------------------------------------------------------------

async fn list_schedules(AxState(core): S, Path(id): Path<String>) -> ApiResult {
    let st = core.state.lock();
    let entry = st.jobs.get(&id).ok_or_else(|| job_not_found(&id))?;
    ok(entry
        .schedules
        .iter()
        .map(|s| schedule_json(s, entry.next_fire))
        .collect())
}

async fn get_schedule(AxState(core): S, Path((id, sid)): Path<(String, String)>) -> ApiResult {
    let st = core.state.lock();
    let entry = st.jobs.get(&id).ok_or_else(|| job_not_found(&id))?;
    let s = entry
        .schedules
        .iter()
        .find(|s| s.id == sid)
        .ok_or_else(|| ApiError::NotFound(format!("Schedule '{sid}' does not exist")))?;
    ok(schedule_json(s, entry.next_fire))
}

fn write_schedules(
    core: &Core,
    st: &mut State,
    id: &str,
    list: Vec<ScheduleSpec>,
) -> Result<(), ApiError> {
    let now = core.now();
    if !st.jobs.contains_key(id) {
        return Err(job_not_found(id));
    }
    let op = if list.is_empty() {
        dcos_store::Op::delete(schedules_key(id))
    } else {
        dcos_store::Op::put_json(schedules_key(id), &list, dcos_store::Precondition::Any)
            .map_err(store_error)?
    };
    core.commit_locked(st, vec![op]).map_err(store_error)?;
    let entry = st.jobs.get_mut(id).ok_or_else(|| job_not_found(id))?;
    entry.schedules = list;
    entry.reschedule(now);
    Ok(())
}

async fn create_schedule(
    AxState(core): S,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let v = body_json(&core, body)?;
    let mut st = core.state.lock();
    let entry = st.jobs.get(&id).ok_or_else(|| job_not_found(&id))?;
    let s = parse_schedule(&v, None, "", core.now()).map_err(ApiError::Invalid)?;
    if entry.schedules.iter().any(|x| x.id == s.id) {
        return Err(ApiError::Conflict(
            "Schedule with this id already exists".into(),
        ));
    }
    if !entry.schedules.is_empty() {
        let mut errs = Violations::default();
        errs.add("/", "Only one schedule supported at the moment");
        return Err(ApiError::Invalid(errs));
    }
    write_schedules(&core, &mut st, &id, vec![s.clone()])?;
    let next = st.jobs.get(&id).and_then(|e| e.next_fire);
    drop(st);
    core.wake.notify_one();
    created(schedule_json(&s, next))
}

async fn put_schedule(
    AxState(core): S,
    Path((id, sid)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let v = body_json(&core, body)?;
    let mut st = core.state.lock();
    let entry = st.jobs.get(&id).ok_or_else(|| job_not_found(&id))?;
    if !entry.schedules.iter().any(|x| x.id == sid) {
        return Err(ApiError::NotFound(format!(
            "Schedule '{sid}' does not exist"
        )));
    }
    let s = parse_schedule(&v, Some(&sid), "", core.now()).map_err(ApiError::Invalid)?;
    let list: Vec<ScheduleSpec> = entry
        .schedules
        .iter()
        .map(|x| if x.id == sid { s.clone() } else { x.clone() })
        .collect();
    write_schedules(&core, &mut st, &id, list)?;
    let next = st.jobs.get(&id).and_then(|e| e.next_fire);
    drop(st);
    core.wake.notify_one();
    ok(schedule_json(&s, next))
}

async fn delete_schedule(AxState(core): S, Path((id, sid)): Path<(String, String)>) -> ApiResult {
    let mut st = core.state.lock();
    let entry = st.jobs.get(&id).ok_or_else(|| job_not_found(&id))?;
    let Some(s) = entry.schedules.iter().find(|x| x.id == sid).cloned() else {
        return Err(ApiError::NotFound(format!(
            "Schedule '{sid}' does not exist"
        )));
    };
    let list: Vec<ScheduleSpec> = entry
        .schedules
        .iter()
        .filter(|x| x.id != sid)
        .cloned()
        .collect();
    write_schedules(&core, &mut st, &id, list)?;
    ok(schedule_json(&s, None))
}

// ---- runs ------------------------------------------------------------------------------------

async fn list_runs(AxState(core): S, Path(id): Path<String>) -> ApiResult {
    let st = core.state.lock();
    let entry = st.jobs.get(&id).ok_or_else(|| job_not_found(&id))?;
    ok(entry.runs.values().map(|r| r.json()).collect())
}

async fn start_run(AxState(core): S, Path(id): Path<String>) -> ApiResult {
    let now = core.now();
    let run = {
        let mut st = core.state.lock();
        if !st.jobs.contains_key(&id) {
            return Err(job_not_found(&id));
        }
        let mut fx = Effects::default();
        let before = st.volatile();
        let run = st.new_run(&id, now, None, &mut fx);
        core.commit_or_rebuild(&mut st, before, fx.ops)
            .map_err(store_error)?;
        run.ok_or_else(|| job_not_found(&id))?
    };
    core.wake.notify_one();
    tracing::info!("metronome: started run {id}/{}", run.id);
    created(run.json())
}

async fn get_run(AxState(core): S, Path((id, rid)): Path<(String, String)>) -> ApiResult {
    let st = core.state.lock();
    let entry = st.jobs.get(&id).ok_or_else(|| job_not_found(&id))?;
    let run = entry
        .runs
        .get(&rid)
        .ok_or_else(|| ApiError::NotFound(format!("JobRun '{rid}' does not exist")))?;
    ok(run.json())
}

async fn stop_run(AxState(core): S, Path((id, rid)): Path<(String, String)>) -> ApiResult {
    let now = core.now();
    let (calls, v) = {
        let mut st = core.state.lock();
        let entry = st.jobs.get(&id).ok_or_else(|| job_not_found(&id))?;
        if !entry.runs.contains_key(&rid) {
            return Err(ApiError::NotFound(format!("JobRun '{rid}' does not exist")));
        }
        let mut fx = Effects::default();
        let before = st.volatile();
        let run = st.stop_run(&id, &rid, now, core.config.history_count, &mut fx);
        core.commit_or_rebuild(&mut st, before, fx.ops)
            .map_err(store_error)?;
        (fx.calls, run.map(|r| r.json()).unwrap_or(Value::Null))
    };
    core.send(calls);
    core.wake.notify_one();
    ok(v)
}

// ---- legacy v0 -------------------------------------------------------------------------------

async fn v0_put(
    AxState(core): S,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let v = body_json(&core, body)?;
    let out = replace(&core, &id, &v, true)?;
    core.wake.notify_one();
    ok(out)
}
