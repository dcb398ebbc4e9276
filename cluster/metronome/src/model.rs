//! The Metronome data model: job specs, schedules, runs and history, their validation
//! (every violation in Marathon's 422 shape) and their JSON.

use std::collections::{BTreeMap, VecDeque};

use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::cron::{parse_tz, CronSpec};

/// Job and schedule ids: dot-separated lowercase segments.
pub const ID_PATTERN: &str = r"^([a-z0-9]+(\-+[a-z0-9]+)*)(\.([a-z0-9]+(\-+[a-z0-9]+)*))*$";

/// Formats epoch milliseconds as Metronome does: `2017-03-30T15:50:16.187+0000`.
pub fn fmt_ms(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
        None => String::new(),
    }
}

fn fmt_opt(ms: Option<i64>) -> Value {
    ms.map(|m| Value::String(fmt_ms(m))).unwrap_or(Value::Null)
}

/// Violations grouped by JSON path, in the order found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Violations(pub Vec<(String, Vec<String>)>);

impl Violations {
    pub fn add(&mut self, path: impl Into<String>, msg: impl Into<String>) {
        let path = path.into();
        let msg = msg.into();
        match self.0.iter_mut().find(|(p, _)| *p == path) {
            Some((_, errs)) => errs.push(msg),
            None => self.0.push((path, vec![msg])),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// `{"message":"Object is not valid","details":[{"path","errors"}]}`.
    pub fn body(&self) -> Value {
        json!({
            "message": "Object is not valid",
            "details": self.0.iter().map(|(p, e)| json!({"path": p, "errors": e})).collect::<Vec<_>>(),
        })
    }
}

fn id_regex() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(ID_PATTERN).expect("static id pattern"))
}

/// Whether `id` is a valid job (or schedule) id.
pub fn valid_id(id: &str) -> bool {
    id_regex().is_match(id)
}

fn id_error() -> String {
    format!("must fully match regular expression '{ID_PATTERN}'")
}

// ---- job spec --------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub run: RunSpec,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSpec {
    #[serde(default = "default_cpus")]
    pub cpus: f64,
    #[serde(default = "default_mem")]
    pub mem: f64,
    #[serde(default)]
    pub disk: f64,
    #[serde(default)]
    pub gpus: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Values are strings or `{"secret": name}`.
    #[serde(default)]
    pub env: BTreeMap<String, Value>,
    #[serde(default)]
    pub placement: Placement,
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    #[serde(default = "default_max_launch_delay")]
    pub max_launch_delay: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<Docker>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ucr: Option<Value>,
    #[serde(default)]
    pub volumes: Vec<Value>,
    #[serde(default)]
    pub restart: Restart,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_kill_grace_period_seconds: Option<f64>,
    #[serde(default)]
    pub secrets: BTreeMap<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub networks: Vec<Value>,
}

fn default_cpus() -> f64 {
    1.0
}
fn default_mem() -> f64 {
    128.0
}
fn default_max_launch_delay() -> u64 {
    3600
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    #[serde(default)]
    pub constraints: Vec<Constraint>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Constraint {
    pub attribute: String,
    pub operator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub uri: String,
    #[serde(default = "yes")]
    pub extract: bool,
    #[serde(default)]
    pub executable: bool,
    #[serde(default)]
    pub cache: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Docker {
    pub image: String,
    #[serde(default)]
    pub force_pull_image: bool,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub parameters: Vec<DockerParameter>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DockerParameter {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Restart {
    #[serde(default = "never")]
    pub policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<u64>,
}

fn never() -> String {
    "NEVER".into()
}

impl Default for Restart {
    fn default() -> Self {
        Restart {
            policy: never(),
            active_deadline_seconds: None,
        }
    }
}

impl RunSpec {
    pub fn restarts_on_failure(&self) -> bool {
        self.restart.policy == "ON_FAILURE"
    }
}

/// Fields of a job document that are read-only (embeds echoed back by a client): ignored.
const JOB_READ_ONLY: &[&str] = &["activeRuns", "history", "historySummary"];
const JOB_FIELDS: &[&str] = &[
    "id",
    "description",
    "labels",
    "run",
    "schedules",
    "dependencies",
];
const RUN_FIELDS: &[&str] = &[
    "cpus",
    "mem",
    "disk",
    "gpus",
    "cmd",
    "args",
    "user",
    "env",
    "placement",
    "artifacts",
    "maxLaunchDelay",
    "docker",
    "ucr",
    "volumes",
    "restart",
    "taskKillGracePeriodSeconds",
    "secrets",
    "networks",
];

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn expect_string(v: &Value, path: &str, errs: &mut Violations) -> bool {
    if v.is_string() {
        true
    } else {
        errs.add(path, format!("expected a string, got {}", type_name(v)));
        false
    }
}

fn expect_bool(m: &Map<String, Value>, key: &str, path: &str, errs: &mut Violations) {
    if let Some(v) = m.get(key) {
        if !v.is_boolean() && !v.is_null() {
            errs.add(
                format!("{path}/{key}"),
                format!("expected a boolean, got {}", type_name(v)),
            );
        }
    }
}

fn fmt_num(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        f.to_string()
    }
}

/// Checks an optional number field against a minimum.
fn number_min(
    m: &Map<String, Value>,
    key: &str,
    path: &str,
    min: f64,
    integer: bool,
    errs: &mut Violations,
) {
    let Some(v) = m.get(key) else { return };
    if v.is_null() {
        return;
    }
    let p = format!("{path}/{key}");
    let Some(f) = v.as_f64() else {
        errs.add(p, format!("expected a number, got {}", type_name(v)));
        return;
    };
    if integer && (f.fract() != 0.0 || f > u32::MAX as f64 * 1e6) {
        errs.add(p.clone(), "expected an integer");
        return;
    }
    if f < min {
        errs.add(
            p,
            format!("got {}, expected {} or more", fmt_num(f), fmt_num(min)),
        );
    }
}

fn unknown_fields(m: &Map<String, Value>, allowed: &[&str], path: &str, errs: &mut Violations) {
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) {
            errs.add(
                if path.is_empty() { "/" } else { path },
                format!("Additional property '{k}' is not allowed"),
            );
        }
    }
}

fn object<'a>(v: &'a Value, path: &str, errs: &mut Violations) -> Option<&'a Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m),
        other => {
            errs.add(
                if path.is_empty() { "/" } else { path },
                format!("expected an object, got {}", type_name(other)),
            );
            None
        }
    }
}

/// Validates a job document (`POST /v1/jobs`, `PUT /v1/jobs/{id}`) and builds the spec.
/// `schedules` in the document are returned separately (unvalidated), read-only embeds are
/// ignored.
pub fn parse_job(v: &Value) -> Result<(JobSpec, Option<Value>), Violations> {
    let mut errs = Violations::default();
    let Some(root) = object(v, "", &mut errs) else {
        return Err(errs);
    };
    let mut root = root.clone();
    for k in JOB_READ_ONLY {
        root.remove(*k);
    }
    root.retain(|_, v| !v.is_null());
    unknown_fields(&root, JOB_FIELDS, "", &mut errs);
    match root.get("id") {
        None => errs.add("/id", "is required"),
        Some(id) => {
            if expect_string(id, "/id", &mut errs) {
                let id = id.as_str().unwrap_or_default();
                if !valid_id(id) {
                    errs.add("/id", id_error());
                }
                // One limit for every id that becomes a task id (an agent names files
                // after task ids).
                if let Err(m) = dcos_types::ids::check_service_id_len(id) {
                    errs.add("/id", m);
                }
            }
        }
    }
    if let Some(d) = root.get("description") {
        expect_string(d, "/description", &mut errs);
    }
    if let Some(l) = root.get("labels") {
        if let Some(m) = object(l, "/labels", &mut errs) {
            for (k, v) in m {
                expect_string(v, &format!("/labels/{k}"), &mut errs);
            }
        }
    }
    match root.get("run") {
        None => errs.add("/run", "is required"),
        Some(run) => validate_run(run, &mut errs),
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    let schedules = root.remove("schedules");
    root.remove("dependencies");
    if let Some(Value::Object(run)) = root.get_mut("run") {
        run.retain(|_, v| !v.is_null());
    }
    match serde_json::from_value::<JobSpec>(Value::Object(root)) {
        Ok(spec) => Ok((spec, schedules)),
        Err(e) => {
            errs.add("/run", e.to_string());
            Err(errs)
        }
    }
}

fn validate_run(run: &Value, errs: &mut Violations) {
    let Some(m) = object(run, "/run", errs) else {
        return;
    };
    let m: Map<String, Value> = m
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    unknown_fields(&m, RUN_FIELDS, "/run", errs);
    number_min(&m, "cpus", "/run", 0.01, false, errs);
    number_min(&m, "mem", "/run", 32.0, false, errs);
    number_min(&m, "disk", "/run", 0.0, false, errs);
    number_min(&m, "gpus", "/run", 0.0, true, errs);
    number_min(&m, "maxLaunchDelay", "/run", 1.0, true, errs);
    number_min(&m, "taskKillGracePeriodSeconds", "/run", 0.0, false, errs);
    if let Some(Value::Number(n)) = m.get("taskKillGracePeriodSeconds") {
        if n.as_f64() == Some(0.0) {
            errs.add("/run/taskKillGracePeriodSeconds", "must be greater than 0");
        }
    }
    if let Some(c) = m.get("cmd") {
        if expect_string(c, "/run/cmd", errs) && c.as_str().is_some_and(|s| s.trim().is_empty()) {
            errs.add("/run/cmd", "must not be empty");
        }
    }
    if let Some(a) = m.get("args") {
        match a {
            Value::Array(items) => {
                for (i, it) in items.iter().enumerate() {
                    expect_string(it, &format!("/run/args({i})"), errs);
                }
            }
            other => errs.add(
                "/run/args",
                format!("expected an array, got {}", type_name(other)),
            ),
        }
    }
    if let Some(u) = m.get("user") {
        expect_string(u, "/run/user", errs);
    }
    let has_cmd = m.contains_key("cmd")
        || m.get("args")
            .is_some_and(|a| a.as_array().is_some_and(|a| !a.is_empty()));
    let has_docker = m.contains_key("docker");
    let has_ucr = m.contains_key("ucr");
    if !has_cmd && !has_docker && !has_ucr {
        errs.add("/run", "One of cmd, args, docker or ucr must be specified");
    }
    if m.contains_key("cmd") && m.contains_key("args") {
        errs.add("/run", "Only one of cmd or args may be specified");
    }
    if has_docker && has_ucr {
        errs.add("/run", "Only one of docker or ucr may be specified");
    }
    if has_docker && m.get("gpus").and_then(|g| g.as_f64()).unwrap_or(0.0) > 0.0 {
        errs.add("/run/gpus", "GPUs are not supported with Docker");
    }
    // Secrets: defined ones must be used, used ones defined.
    let mut defined: Vec<String> = Vec::new();
    if let Some(s) = m.get("secrets") {
        if let Some(sm) = object(s, "/run/secrets", errs) {
            for (name, def) in sm {
                let p = format!("/run/secrets/{name}");
                match def.as_object().and_then(|d| d.get("source")) {
                    Some(Value::String(_)) => defined.push(name.clone()),
                    _ => errs.add(p, "expected an object with a string 'source'"),
                }
            }
        }
    }
    let mut used: Vec<String> = Vec::new();
    if let Some(env) = m.get("env") {
        if let Some(em) = object(env, "/run/env", errs) {
            for (k, v) in em {
                match v {
                    Value::String(_) => {}
                    Value::Object(o)
                        if o.len() == 1 && o.get("secret").is_some_and(|s| s.is_string()) =>
                    {
                        used.push(
                            o.get("secret")
                                .and_then(|s| s.as_str())
                                .unwrap_or_default()
                                .to_string(),
                        );
                    }
                    _ => errs.add(
                        format!("/run/env/{k}"),
                        "expected a string or an object {\"secret\": name}",
                    ),
                }
            }
        }
    }
    if let Some(p) = m.get("placement") {
        if let Some(pm) = object(p, "/run/placement", errs) {
            unknown_fields(pm, &["constraints"], "/run/placement", errs);
            match pm.get("constraints") {
                None | Some(Value::Null) => {}
                Some(Value::Array(cs)) => {
                    for (i, c) in cs.iter().enumerate() {
                        validate_constraint(c, &format!("/run/placement/constraints({i})"), errs)
                    }
                }
                Some(other) => errs.add(
                    "/run/placement/constraints",
                    format!("expected an array, got {}", type_name(other)),
                ),
            }
        }
    }
    if let Some(a) = m.get("artifacts") {
        match a {
            Value::Array(items) => {
                for (i, it) in items.iter().enumerate() {
                    let p = format!("/run/artifacts({i})");
                    let Some(am) = object(it, &p, errs) else {
                        continue;
                    };
                    unknown_fields(am, &["uri", "extract", "executable", "cache"], &p, errs);
                    match am.get("uri") {
                        Some(Value::String(u)) if !u.is_empty() => {}
                        _ => errs.add(format!("{p}/uri"), "is required (a non-empty string)"),
                    }
                    for b in ["extract", "executable", "cache"] {
                        expect_bool(am, b, &p, errs);
                    }
                }
            }
            other => errs.add(
                "/run/artifacts",
                format!("expected an array, got {}", type_name(other)),
            ),
        }
    }
    if let Some(d) = m.get("docker") {
        if let Some(dm) = object(d, "/run/docker", errs) {
            unknown_fields(
                dm,
                &["image", "forcePullImage", "privileged", "parameters"],
                "/run/docker",
                errs,
            );
            match dm.get("image") {
                Some(Value::String(i)) if !i.trim().is_empty() => {}
                _ => errs.add("/run/docker/image", "is required (a non-empty string)"),
            }
            expect_bool(dm, "forcePullImage", "/run/docker", errs);
            expect_bool(dm, "privileged", "/run/docker", errs);
            if let Some(ps) = dm.get("parameters") {
                match ps {
                    Value::Array(items) => {
                        for (i, it) in items.iter().enumerate() {
                            let ok = it.as_object().is_some_and(|o| {
                                o.get("key").is_some_and(|k| k.is_string())
                                    && o.get("value").is_some_and(|v| v.is_string())
                            });
                            if !ok {
                                errs.add(
                                    format!("/run/docker/parameters({i})"),
                                    "expected an object with string 'key' and 'value'",
                                );
                            }
                        }
                    }
                    other => errs.add(
                        "/run/docker/parameters",
                        format!("expected an array, got {}", type_name(other)),
                    ),
                }
            }
        }
    }
    if let Some(u) = m.get("ucr") {
        if let Some(um) = object(u, "/run/ucr", errs) {
            unknown_fields(um, &["image", "privileged"], "/run/ucr", errs);
            let img = um.get("image").and_then(|i| i.as_object());
            match img.and_then(|i| i.get("id")) {
                Some(Value::String(i)) if !i.trim().is_empty() => {}
                _ => errs.add("/run/ucr/image/id", "is required (a non-empty string)"),
            }
            if let Some(k) = img.and_then(|i| i.get("kind")) {
                if !matches!(k.as_str(), Some("docker") | Some("appc")) {
                    errs.add("/run/ucr/image/kind", "must be one of docker, appc");
                }
            }
        }
    }
    if let Some(vs) = m.get("volumes") {
        match vs {
            Value::Array(items) => {
                for (i, it) in items.iter().enumerate() {
                    let p = format!("/run/volumes({i})");
                    let Some(vm) = object(it, &p, errs) else {
                        continue;
                    };
                    match vm.get("containerPath") {
                        Some(Value::String(c)) if !c.is_empty() => {}
                        _ => errs.add(
                            format!("{p}/containerPath"),
                            "is required (a non-empty string)",
                        ),
                    }
                    if let Some(s) = vm.get("secret") {
                        unknown_fields(vm, &["containerPath", "secret"], &p, errs);
                        if let Some(name) = s.as_str() {
                            used.push(name.to_string());
                        } else {
                            errs.add(format!("{p}/secret"), "expected a string");
                        }
                        if !has_ucr {
                            errs.add(p.clone(), "Secret volumes are only supported with ucr");
                        }
                    } else {
                        unknown_fields(vm, &["containerPath", "hostPath", "mode"], &p, errs);
                        match vm.get("hostPath") {
                            Some(Value::String(h)) if !h.is_empty() => {}
                            _ => errs
                                .add(format!("{p}/hostPath"), "is required (a non-empty string)"),
                        }
                        match vm.get("mode").and_then(|x| x.as_str()) {
                            Some("RO") | Some("RW") => {}
                            _ => errs.add(format!("{p}/mode"), "must be one of RO, RW"),
                        }
                    }
                }
            }
            other => errs.add(
                "/run/volumes",
                format!("expected an array, got {}", type_name(other)),
            ),
        }
    }
    if let Some(ns) = m.get("networks") {
        match ns {
            Value::Array(items) => {
                let mut modes = Vec::new();
                for (i, it) in items.iter().enumerate() {
                    let p = format!("/run/networks({i})");
                    let Some(nm) = object(it, &p, errs) else {
                        continue;
                    };
                    unknown_fields(nm, &["mode", "name", "labels"], &p, errs);
                    match nm.get("mode").and_then(|x| x.as_str()) {
                        Some(md @ ("host" | "container/bridge" | "container")) => modes.push(md),
                        _ => errs.add(
                            format!("{p}/mode"),
                            "must be one of host, container/bridge, container",
                        ),
                    }
                    if nm.get("mode").and_then(|x| x.as_str()) == Some("container")
                        && !nm.get("name").is_some_and(|n| n.is_string())
                    {
                        errs.add(format!("{p}/name"), "is required for container networks");
                    }
                }
                modes.dedup();
                if modes.len() > 1 {
                    errs.add(
                        "/run/networks",
                        "Networks of different modes cannot be mixed",
                    );
                }
            }
            other => errs.add(
                "/run/networks",
                format!("expected an array, got {}", type_name(other)),
            ),
        }
    }
    if let Some(r) = m.get("restart") {
        if let Some(rm) = object(r, "/run/restart", errs) {
            unknown_fields(
                rm,
                &["policy", "activeDeadlineSeconds"],
                "/run/restart",
                errs,
            );
            match rm.get("policy").and_then(|p| p.as_str()) {
                Some("NEVER") | Some("ON_FAILURE") => {}
                None if !rm.contains_key("policy") => {}
                _ => errs.add("/run/restart/policy", "must be one of NEVER, ON_FAILURE"),
            }
            number_min(rm, "activeDeadlineSeconds", "/run/restart", 1.0, true, errs);
        }
    }
    for u in &used {
        if !defined.contains(u) {
            errs.add(
                "/run/secrets",
                format!("The secret '{u}' is used but not defined"),
            );
        }
    }
    for d in &defined {
        if !used.contains(d) {
            errs.add(
                "/run/secrets",
                format!("The secret '{d}' is defined but not used"),
            );
        }
    }
}

fn validate_constraint(c: &Value, p: &str, errs: &mut Violations) {
    let Some(cm) = object(c, p, errs) else { return };
    unknown_fields(cm, &["attribute", "operator", "value"], p, errs);
    match cm.get("attribute") {
        Some(Value::String(a)) if !a.is_empty() => {}
        _ => errs.add(format!("{p}/attribute"), "is required (a non-empty string)"),
    }
    let op = cm.get("operator").and_then(|o| o.as_str());
    if !matches!(op, Some("IS" | "EQ" | "LIKE" | "UNLIKE")) {
        errs.add(
            format!("{p}/operator"),
            "must be one of IS, EQ, LIKE, UNLIKE",
        );
    }
    match cm.get("value") {
        Some(Value::String(v)) => {
            if matches!(op, Some("LIKE" | "UNLIKE"))
                && regex::Regex::new(&format!("^(?:{v})$")).is_err()
            {
                errs.add(
                    format!("{p}/value"),
                    format!("'{v}' is not a valid regular expression"),
                );
            }
        }
        None => errs.add(format!("{p}/value"), "is required"),
        Some(other) => errs.add(
            format!("{p}/value"),
            format!("expected a string, got {}", type_name(other)),
        ),
    }
}

// ---- schedules -------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    pub id: String,
    pub cron: String,
    pub timezone: String,
    pub starting_deadline_seconds: u64,
    pub concurrency_policy: String,
    pub enabled: bool,
}

impl ScheduleSpec {
    pub fn forbids_concurrency(&self) -> bool {
        self.concurrency_policy == "FORBID"
    }
}

/// Validates a schedule document. `path_id` (from the URL of a PUT) fills a missing id and must
/// match a given one. `now_ms` is used to reject schedules that never fire.
pub fn parse_schedule(
    v: &Value,
    path_id: Option<&str>,
    prefix: &str,
    now_ms: i64,
) -> Result<ScheduleSpec, Violations> {
    let mut errs = Violations::default();
    let root_path = if prefix.is_empty() { "/" } else { prefix };
    let Some(m) = object(v, root_path, &mut errs) else {
        return Err(errs);
    };
    let m: Map<String, Value> = m
        .iter()
        .filter(|(k, v)| !v.is_null() && k.as_str() != "nextRunAt")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    unknown_fields(
        &m,
        &[
            "id",
            "cron",
            "timezone",
            "startingDeadlineSeconds",
            "concurrencyPolicy",
            "enabled",
        ],
        root_path,
        &mut errs,
    );
    let id = match (m.get("id"), path_id) {
        (Some(Value::String(s)), Some(p)) if s != p => {
            errs.add(
                format!("{prefix}/id"),
                format!("must be '{p}' as in the URL"),
            );
            s.clone()
        }
        (Some(Value::String(s)), _) => s.clone(),
        (Some(other), _) => {
            errs.add(
                format!("{prefix}/id"),
                format!("expected a string, got {}", type_name(other)),
            );
            String::new()
        }
        (None, Some(p)) => p.to_string(),
        (None, None) => {
            errs.add(format!("{prefix}/id"), "is required");
            String::new()
        }
    };
    // An explicit empty id is invalid too (an empty `id` otherwise means "already reported").
    let given_empty = matches!(m.get("id"), Some(Value::String(s)) if s.is_empty());
    if (!id.is_empty() || given_empty) && !valid_id(&id) {
        errs.add(format!("{prefix}/id"), id_error());
    }
    let tz_name = match m.get("timezone") {
        None => "UTC".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            errs.add(
                format!("{prefix}/timezone"),
                format!("expected a string, got {}", type_name(other)),
            );
            "UTC".into()
        }
    };
    let tz = match parse_tz(&tz_name) {
        Ok(tz) => Some(tz),
        Err(e) => {
            errs.add(format!("{prefix}/timezone"), e.0);
            None
        }
    };
    let cron = match m.get("cron") {
        None => {
            errs.add(format!("{prefix}/cron"), "is required");
            String::new()
        }
        Some(Value::String(c)) => {
            match CronSpec::parse(c) {
                Ok(spec) => {
                    let now = Utc
                        .timestamp_millis_opt(now_ms)
                        .single()
                        .unwrap_or_else(Utc::now);
                    if spec
                        .next_after(now, tz.unwrap_or(chrono_tz::Tz::UTC))
                        .is_none()
                    {
                        errs.add(
                            format!("{prefix}/cron"),
                            format!("Cron expression '{c}' never fires (impossible date)"),
                        );
                    }
                }
                Err(e) => errs.add(format!("{prefix}/cron"), format!("Cron is not valid: {e}")),
            }
            c.clone()
        }
        Some(other) => {
            errs.add(
                format!("{prefix}/cron"),
                format!("expected a string, got {}", type_name(other)),
            );
            String::new()
        }
    };
    number_min(&m, "startingDeadlineSeconds", prefix, 60.0, true, &mut errs);
    let deadline = m
        .get("startingDeadlineSeconds")
        .and_then(|d| d.as_u64())
        .unwrap_or(900);
    let policy = match m.get("concurrencyPolicy") {
        None => "ALLOW".to_string(),
        Some(Value::String(p)) if p == "ALLOW" || p == "FORBID" => p.clone(),
        Some(_) => {
            errs.add(
                format!("{prefix}/concurrencyPolicy"),
                "must be one of ALLOW, FORBID",
            );
            String::new()
        }
    };
    expect_bool(&m, "enabled", prefix, &mut errs);
    let enabled = m.get("enabled").and_then(|e| e.as_bool()).unwrap_or(true);
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(ScheduleSpec {
        id,
        cron,
        timezone: tz_name,
        starting_deadline_seconds: deadline,
        concurrency_policy: policy,
        enabled,
    })
}

/// The next fire time of `s` strictly after `after_ms` (epoch ms).
pub fn next_fire(s: &ScheduleSpec, after_ms: i64) -> Option<i64> {
    let spec = CronSpec::parse(&s.cron).ok()?;
    let tz = parse_tz(&s.timezone).ok()?;
    let after = Utc.timestamp_millis_opt(after_ms).single()?;
    spec.next_after(after, tz).map(|t| t.timestamp_millis())
}

pub fn schedule_json(s: &ScheduleSpec, next: Option<i64>) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("nextRunAt".into(), fmt_opt(next));
    }
    v
}

// ---- runs and history ------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    Initial,
    Starting,
    Active,
    Success,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Initial => "INITIAL",
            RunStatus::Starting => "STARTING",
            RunStatus::Active => "ACTIVE",
            RunStatus::Success => "SUCCESS",
            RunStatus::Failed => "FAILED",
        }
    }
}

/// One task of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunTask {
    pub id: String,
    /// `TASK_*` as exposed by Metronome.
    pub status: String,
    pub agent_id: String,
    pub started_at: i64,
    #[serde(default)]
    pub completed_at: Option<i64>,
}

/// A run of a job (active while not SUCCESS/FAILED).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRun {
    pub id: String,
    pub job_id: String,
    pub status: RunStatus,
    pub created_at: i64,
    #[serde(default)]
    pub completed_at: Option<i64>,
    #[serde(default)]
    pub tasks: Vec<RunTask>,
    /// The job's run spec when the run was created.
    pub run: RunSpec,
    /// Scheduled runs: abort if no task started by then (epoch ms).
    #[serde(default)]
    pub starting_deadline: Option<i64>,
    /// The live task, if any.
    #[serde(default)]
    pub current: Option<String>,
    /// Waiting for an offer to launch a task.
    #[serde(default)]
    pub waiting: bool,
    /// When it started waiting (for `maxLaunchDelay`).
    #[serde(default)]
    pub waiting_since: i64,
    /// Do not launch before this (retry backoff).
    #[serde(default)]
    pub not_before: i64,
    /// A stop was requested.
    #[serde(default)]
    pub stopping: bool,
    #[serde(default)]
    pub failed_tasks: u32,
}

impl JobRun {
    pub fn json(&self) -> Value {
        json!({
            "id": self.id,
            "jobId": self.job_id,
            "status": self.status.as_str(),
            "createdAt": fmt_ms(self.created_at),
            "completedAt": fmt_opt(self.completed_at),
            "tasks": self.tasks.iter().map(|t| json!({
                "id": t.id,
                "status": t.status,
                "startedAt": fmt_ms(t.started_at),
                "completedAt": fmt_opt(t.completed_at),
            })).collect::<Vec<_>>(),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinishedRun {
    pub id: String,
    pub created_at: i64,
    pub finished_at: i64,
    pub tasks: Vec<String>,
}

impl FinishedRun {
    fn json(&self) -> Value {
        json!({
            "id": self.id,
            "createdAt": fmt_ms(self.created_at),
            "finishedAt": fmt_ms(self.finished_at),
            "tasks": self.tasks,
        })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub success_count: u64,
    pub failure_count: u64,
    pub last_success_at: Option<i64>,
    pub last_failure_at: Option<i64>,
    /// Newest first.
    pub successful: VecDeque<FinishedRun>,
    pub failed: VecDeque<FinishedRun>,
}

impl History {
    /// Records a finished run, keeping at most `cap` runs per list.
    pub fn record(&mut self, run: &JobRun, cap: usize) {
        let finished = run.completed_at.unwrap_or(run.created_at);
        let f = FinishedRun {
            id: run.id.clone(),
            created_at: run.created_at,
            finished_at: finished,
            tasks: run.tasks.iter().map(|t| t.id.clone()).collect(),
        };
        let list = if run.status == RunStatus::Success {
            self.success_count += 1;
            self.last_success_at = Some(finished);
            &mut self.successful
        } else {
            self.failure_count += 1;
            self.last_failure_at = Some(finished);
            &mut self.failed
        };
        list.push_front(f);
        list.truncate(cap);
    }

    pub fn summary_json(&self) -> Value {
        json!({
            "successCount": self.success_count,
            "failureCount": self.failure_count,
            "lastSuccessAt": fmt_opt(self.last_success_at),
            "lastFailureAt": fmt_opt(self.last_failure_at),
        })
    }

    pub fn json(&self) -> Value {
        let mut v = self.summary_json();
        if let Value::Object(m) = &mut v {
            m.insert(
                "successfulFinishedRuns".into(),
                self.successful.iter().map(|r| r.json()).collect(),
            );
            m.insert(
                "failedFinishedRuns".into(),
                self.failed.iter().map(|r| r.json()).collect(),
            );
        }
        v
    }
}

/// `yyyyMMddHHmmss` + 5 random upper-case alphanumerics.
pub fn new_run_id(now_ms: i64) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let ts = Utc
        .timestamp_millis_opt(now_ms)
        .single()
        .unwrap_or_else(Utc::now)
        .format("%Y%m%d%H%M%S")
        .to_string();
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let suffix: String = bytes
        .iter()
        .take(5)
        .map(|b| ALNUM[*b as usize % ALNUM.len()] as char)
        .collect();
    format!("{ts}{suffix}")
}

/// `<jobid>_<runid>.<uuid>`.
pub fn task_id(job: &str, run: &str) -> String {
    format!("{job}_{run}.{}", uuid::Uuid::new_v4())
}

/// The job and run ids in a task id (job ids never contain `_`).
pub fn parse_task_id(task: &str) -> Option<(&str, &str)> {
    let (job, rest) = task.split_once('_')?;
    let (run, _) = rest.split_once('.')?;
    Some((job, run))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(v: Value) -> Vec<(String, Vec<String>)> {
        parse_job(&v).err().map(|e| e.0).unwrap_or_default()
    }

    fn paths(v: Value) -> Vec<String> {
        errs(v).into_iter().map(|(p, _)| p).collect()
    }

    #[test]
    fn ids() {
        for ok in ["a", "prod", "a.b.c", "my-job", "a--b.c1", "0abc"] {
            assert!(valid_id(ok), "{ok}");
        }
        for bad in ["", "A", "-a", "a-", "a..b", ".a", "a_b", "a/b", "a.", "Job"] {
            assert!(!valid_id(bad), "{bad}");
        }
        // One length limit with every id that becomes a task id.
        let max = dcos_types::ids::MAX_SERVICE_ID_LEN;
        let long = |n: usize| json!({"id": "a".repeat(n), "run": {"cmd": "x"}});
        assert!(parse_job(&long(max)).is_ok());
        assert_eq!(paths(long(max + 1)), vec!["/id"]);
        assert_eq!(paths(long(8000)), vec!["/id"]);
    }

    #[test]
    fn minimal_job_gets_defaults() {
        let (spec, sched) = parse_job(&json!({"id": "j", "run": {"cmd": "true"}})).unwrap();
        assert!(sched.is_none());
        assert_eq!(spec.run.cpus, 1.0);
        assert_eq!(spec.run.mem, 128.0);
        assert_eq!(spec.run.disk, 0.0);
        assert_eq!(spec.run.max_launch_delay, 3600);
        assert_eq!(spec.run.restart.policy, "NEVER");
        let out = serde_json::to_value(&spec).unwrap();
        assert_eq!(out["run"]["restart"]["policy"], "NEVER");
        assert_eq!(out["run"]["placement"]["constraints"], json!([]));
    }

    #[test]
    fn every_violation_is_reported() {
        let e = errs(json!({
            "id": "Bad_Id",
            "run": {"cpus": 0.001, "mem": 16, "disk": -1, "foo": 1,
                    "restart": {"policy": "ALWAYS", "activeDeadlineSeconds": 0}}
        }));
        let ps: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        for p in [
            "/id",
            "/run/cpus",
            "/run/mem",
            "/run/disk",
            "/run",
            "/run/restart/policy",
            "/run/restart/activeDeadlineSeconds",
        ] {
            assert!(ps.contains(&p), "missing {p} in {e:?}");
        }
        let mem = e.iter().find(|(p, _)| p == "/run/mem").unwrap();
        assert_eq!(mem.1, vec!["got 16.0, expected 32.0 or more".to_string()]);
        let run = e.iter().find(|(p, _)| p == "/run").unwrap();
        assert!(run.1.iter().any(|m| m.contains("'foo'")), "{run:?}");
        assert!(run.1.iter().any(|m| m.contains("One of cmd")), "{run:?}");
    }

    #[test]
    fn required_and_types() {
        assert_eq!(paths(json!({})), vec!["/id", "/run"]);
        assert_eq!(paths(json!([])), vec!["/"]);
        assert_eq!(paths(json!({"id": 5, "run": {"cmd": "x"}})), vec!["/id"]);
        assert_eq!(
            paths(json!({"id": "a", "run": {"cmd": "x", "mem": "lots"}})),
            vec!["/run/mem"]
        );
        assert_eq!(paths(json!({"id": "a", "run": "x"})), vec!["/run"]);
        assert_eq!(
            paths(json!({"id": "a", "bogus": 1, "run": {"cmd": "x"}})),
            vec!["/"]
        );
    }

    #[test]
    fn docker_ucr_secrets_constraints() {
        assert!(parse_job(&json!({"id": "a", "run": {"docker": {"image": "busybox"}}})).is_ok());
        assert_eq!(
            paths(json!({"id": "a", "run": {"docker": {}}})),
            vec!["/run/docker/image"]
        );
        assert_eq!(
            paths(
                json!({"id": "a", "run": {"docker": {"image": "x"}, "ucr": {"image": {"id": "y"}}}})
            ),
            vec!["/run"]
        );
        assert_eq!(
            paths(json!({"id": "a", "run": {"cmd": "x", "env": {"A": {"secret": "s"}}}})),
            vec!["/run/secrets"]
        );
        assert!(parse_job(
            &json!({"id": "a", "run": {"cmd": "x", "env": {"A": {"secret": "s"}},
            "secrets": {"s": {"source": "path"}}}})
        )
        .is_ok());
        assert_eq!(
            paths(
                json!({"id": "a", "run": {"cmd": "x", "placement": {"constraints": [
                {"attribute": "hostname", "operator": "GROUP_BY"}]}}})
            ),
            vec![
                "/run/placement/constraints(0)/operator",
                "/run/placement/constraints(0)/value"
            ]
        );
        assert_eq!(
            paths(json!({"id": "a", "run": {"cmd": "x", "artifacts": [{"extract": false}]}})),
            vec!["/run/artifacts(0)/uri"]
        );
    }

    #[test]
    fn schedules() {
        let now = 1_700_000_000_000;
        let s = parse_schedule(
            &json!({"id": "nightly", "cron": "0 2 * * *"}),
            None,
            "",
            now,
        )
        .unwrap();
        assert_eq!(s.timezone, "UTC");
        assert_eq!(s.starting_deadline_seconds, 900);
        assert_eq!(s.concurrency_policy, "ALLOW");
        assert!(s.enabled);
        let e = parse_schedule(
            &json!({"id": "x", "cron": "0 0 31 2 *", "timezone": "Nowhere/Land",
                    "startingDeadlineSeconds": 30, "concurrencyPolicy": "REPLACE", "extra": 1}),
            None,
            "",
            now,
        )
        .unwrap_err();
        let ps: Vec<&str> = e.0.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            ps,
            vec![
                "/",
                "/timezone",
                "/cron",
                "/startingDeadlineSeconds",
                "/concurrencyPolicy"
            ]
        );
        // An impossible date is reported once the zone is valid.
        let e =
            parse_schedule(&json!({"id": "x", "cron": "0 0 31 2 *"}), None, "", now).unwrap_err();
        assert!(e.0[0].1[0].contains("never fires"), "{e:?}");
        let e = parse_schedule(&json!({"id": "x", "cron": "bad"}), None, "", now).unwrap_err();
        assert_eq!(e.0[0].0, "/cron");
        // The URL id fills in and must match.
        assert_eq!(
            parse_schedule(&json!({"cron": "* * * * *"}), Some("s"), "", now)
                .unwrap()
                .id,
            "s"
        );
        assert!(
            parse_schedule(&json!({"id": "t", "cron": "* * * * *"}), Some("s"), "", now).is_err()
        );
    }

    #[test]
    fn run_ids_and_task_ids() {
        let id = new_run_id(1_468_587_779_735);
        assert_eq!(id.len(), 19);
        assert!(id.starts_with("20160715130259"), "{id}");
        assert!(id[14..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        let t = task_id("prod.backup", &id);
        assert_eq!(parse_task_id(&t), Some(("prod.backup", id.as_str())));
        assert_eq!(parse_task_id("nonsense"), None);
        assert_eq!(fmt_ms(1_468_587_779_735), "2016-07-15T13:02:59.735+0000");
    }

    #[test]
    fn history_is_capped_newest_first() {
        let (spec, _) = parse_job(&json!({"id": "j", "run": {"cmd": "true"}})).unwrap();
        let mut h = History::default();
        for i in 0..5 {
            let run = JobRun {
                id: format!("r{i}"),
                job_id: "j".into(),
                status: if i % 2 == 0 {
                    RunStatus::Success
                } else {
                    RunStatus::Failed
                },
                created_at: i,
                completed_at: Some(i + 10),
                tasks: vec![],
                run: spec.run.clone(),
                starting_deadline: None,
                current: None,
                waiting: false,
                waiting_since: 0,
                not_before: 0,
                stopping: false,
                failed_tasks: 0,
            };
            h.record(&run, 2);
        }
        assert_eq!(h.success_count, 3);
        assert_eq!(h.failure_count, 2);
        assert_eq!(h.successful.len(), 2);
        assert_eq!(h.successful[0].id, "r4");
        assert_eq!(h.last_success_at, Some(14));
        assert_eq!(h.json()["lastFailureAt"], fmt_ms(13));
    }
}
