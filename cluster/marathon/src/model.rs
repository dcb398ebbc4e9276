//! The Marathon app definition (`app.raml`), its parsing from request bodies, normalization
//! (relative ids, legacy `ports`/`uris`, defaults) and its JSON form.
//!
//! Unknown top-level fields are accepted and kept: they are stored with the app and echoed
//! back by `GET` (templates rendered by Cosmos carry fields from many Marathon releases, and
//! rejecting them would break package installs).

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Fields the typed model knows; anything else goes to [`App::extra`].
const KNOWN: &[&str] = &[
    "id",
    "cmd",
    "args",
    "user",
    "env",
    "instances",
    "cpus",
    "mem",
    "disk",
    "gpus",
    "executor",
    "constraints",
    "uris",
    "fetch",
    "backoffSeconds",
    "backoffFactor",
    "maxLaunchDelaySeconds",
    "container",
    "healthChecks",
    "readinessChecks",
    "dependencies",
    "upgradeStrategy",
    "labels",
    "acceptedResourceRoles",
    "ipAddress",
    "version",
    "versionInfo",
    "secrets",
    "taskKillGracePeriodSeconds",
    "unreachableStrategy",
    "killSelection",
    "requirePorts",
    "portDefinitions",
    "ports",
    "networks",
    "role",
];

/// Read-only fields of AppInfo a client may echo back in a PUT; dropped on input.
const READ_ONLY: &[&str] = &[
    "tasksStaged",
    "tasksRunning",
    "tasksHealthy",
    "tasksUnhealthy",
    "deployments",
    "tasks",
    "lastTaskFailure",
    "taskStats",
    "tasksStats",
    "readinessCheckResults",
];

fn d_one_i() -> i64 {
    1
}
fn d_one_f() -> f64 {
    1.0
}
fn d_mem() -> f64 {
    128.0
}
fn d_backoff_factor() -> f64 {
    1.15
}
fn d_max_launch_delay() -> f64 {
    300.0
}
fn d_kill_selection() -> String {
    "YOUNGEST_FIRST".into()
}
fn d_tcp() -> String {
    "tcp".into()
}
fn d_true() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStrategy {
    #[serde(default = "d_one_f")]
    pub minimum_health_capacity: f64,
    #[serde(default = "d_one_f")]
    pub maximum_over_capacity: f64,
}

impl Default for UpgradeStrategy {
    fn default() -> Self {
        UpgradeStrategy {
            minimum_health_capacity: 1.0,
            maximum_over_capacity: 1.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortDefinition {
    #[serde(default)]
    pub port: i64,
    #[serde(default = "d_tcp")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    #[serde(default)]
    pub container_port: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i64>,
    #[serde(default)]
    pub service_port: i64,
    #[serde(default = "d_tcp")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Docker {
    #[serde(default)]
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_mappings: Option<Vec<PortMapping>>,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub force_pull_image: bool,
    #[serde(default)]
    pub parameters: Vec<DockerParameter>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DockerParameter {
    pub key: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(rename = "type", default = "d_docker")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<Docker>,
    #[serde(default)]
    pub volumes: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_mappings: Option<Vec<PortMapping>>,
    #[serde(flatten)]
    pub extra: IndexMap<String, Value>,
}

fn d_docker() -> String {
    "DOCKER".into()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandCheck {
    #[serde(default)]
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckDef {
    #[serde(default = "d_http")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_index: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandCheck>,
    #[serde(default = "d_grace")]
    pub grace_period_seconds: f64,
    #[serde(default = "d_interval")]
    pub interval_seconds: f64,
    #[serde(default = "d_timeout")]
    pub timeout_seconds: f64,
    #[serde(default = "d_max_failures")]
    pub max_consecutive_failures: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_http1xx: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_protocol: Option<String>,
}

fn d_http() -> String {
    "HTTP".into()
}

/// A readiness check (Marathon 1.x `ReadinessCheck`): probed by Marathon itself over HTTP(S)
/// on the task's named port while a deployment runs; a new task counts toward the
/// deployment's progress only once it answered with one of `httpStatusCodesForReady`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadinessCheckDef {
    #[serde(default = "d_readiness_name")]
    pub name: String,
    #[serde(default = "d_http")]
    pub protocol: String,
    #[serde(default = "d_slash")]
    pub path: String,
    #[serde(default = "d_readiness_port")]
    pub port_name: String,
    #[serde(default = "d_readiness_interval")]
    pub interval_seconds: f64,
    #[serde(default = "d_readiness_timeout")]
    pub timeout_seconds: f64,
    #[serde(default = "d_ready_codes")]
    pub http_status_codes_for_ready: Vec<i64>,
    #[serde(default)]
    pub preserve_last_response: bool,
}

fn d_readiness_name() -> String {
    "readinessCheck".into()
}
fn d_slash() -> String {
    "/".into()
}
fn d_readiness_port() -> String {
    "http-api".into()
}
fn d_readiness_interval() -> f64 {
    30.0
}
fn d_readiness_timeout() -> f64 {
    10.0
}
fn d_ready_codes() -> Vec<i64> {
    vec![200]
}
fn d_grace() -> f64 {
    300.0
}
fn d_interval() -> f64 {
    60.0
}
fn d_timeout() -> f64 {
    20.0
}
fn d_max_failures() -> i64 {
    3
}

impl HealthCheckDef {
    pub fn is_mesos_level(&self) -> bool {
        matches!(
            self.protocol.as_str(),
            "MESOS_HTTP" | "MESOS_HTTPS" | "MESOS_TCP" | "COMMAND"
        )
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fetch {
    #[serde(default)]
    pub uri: String,
    #[serde(default = "d_true")]
    pub extract: bool,
    #[serde(default)]
    pub executable: bool,
    #[serde(default)]
    pub cache: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_path: Option<String>,
    /// Not in Marathon: an expected sha256 the agent's fetcher verifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub last_scaling_at: String,
    pub last_config_change_at: String,
}

/// An app definition. Numeric fields are kept wide (`i64`, `f64`) so that out-of-range input
/// reaches validation and gets a 422 naming the field, rather than a type error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default)]
    pub env: IndexMap<String, Value>,
    #[serde(default = "d_one_i")]
    pub instances: i64,
    #[serde(default = "d_one_f")]
    pub cpus: f64,
    #[serde(default = "d_mem")]
    pub mem: f64,
    #[serde(default)]
    pub disk: f64,
    #[serde(default)]
    pub gpus: f64,
    #[serde(default)]
    pub executor: String,
    #[serde(default)]
    pub constraints: Vec<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<String>,
    #[serde(default)]
    pub fetch: Vec<Fetch>,
    #[serde(default = "d_one_f")]
    pub backoff_seconds: f64,
    #[serde(default = "d_backoff_factor")]
    pub backoff_factor: f64,
    #[serde(default = "d_max_launch_delay")]
    pub max_launch_delay_seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    #[serde(default)]
    pub health_checks: Vec<HealthCheckDef>,
    #[serde(default)]
    pub readiness_checks: Vec<ReadinessCheckDef>,
    #[serde(default)]
    pub dependencies: Vec<String>,
    #[serde(default)]
    pub upgrade_strategy: UpgradeStrategy,
    #[serde(default)]
    pub labels: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_resource_roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_info: Option<VersionInfo>,
    #[serde(default)]
    pub secrets: IndexMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_kill_grace_period_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_strategy: Option<Value>,
    #[serde(default = "d_kill_selection")]
    pub kill_selection: String,
    #[serde(default)]
    pub require_ports: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_definitions: Option<Vec<PortDefinition>>,
    /// Legacy shorthand; folded into `portDefinitions` by [`App::normalize`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<i64>>,
    #[serde(default)]
    pub networks: Vec<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Fields this model does not know, kept and echoed back.
    #[serde(skip)]
    pub extra: Map<String, Value>,
}

/// Why a request body could not be read as an app (HTTP 400).
#[derive(Debug, Clone, PartialEq)]
pub enum ParseError {
    /// Not JSON at all.
    Syntax(String),
    /// JSON, but a field has the wrong type: `(path, message)`.
    Type(String, String),
}

impl ParseError {
    pub fn body(&self) -> Value {
        match self {
            ParseError::Syntax(m) => serde_json::json!({"message": "Invalid JSON", "details": m}),
            ParseError::Type(path, m) => serde_json::json!({
                "message": "Invalid JSON",
                "details": [{"path": path, "errors": [m]}]
            }),
        }
    }
}

/// Converts a serde path (`healthChecks[0].port`) to Marathon's (`/healthChecks(0)/port`).
fn marathon_path(p: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for seg in p.iter() {
        match seg {
            serde_path_to_error::Segment::Seq { index } => out.push_str(&format!("({index})")),
            serde_path_to_error::Segment::Map { key } => {
                out.push('/');
                out.push_str(key);
            }
            serde_path_to_error::Segment::Enum { variant } => {
                out.push('/');
                out.push_str(variant);
            }
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Parses raw bytes as a JSON value.
pub fn parse_json(body: &[u8]) -> Result<Value, ParseError> {
    serde_json::from_slice(body).map_err(|e| ParseError::Syntax(e.to_string()))
}

impl App {
    /// Builds an app from a JSON object, keeping unknown fields in `extra` and dropping the
    /// read-only AppInfo fields a client may echo back.
    pub fn from_value(v: Value) -> Result<App, ParseError> {
        let Value::Object(mut map) = v else {
            return Err(ParseError::Type(
                "/".into(),
                "error.expected.jsobject".into(),
            ));
        };
        for k in READ_ONLY {
            map.remove(*k);
        }
        let mut extra = Map::new();
        let keys: Vec<String> = map.keys().cloned().collect();
        for k in keys {
            if !KNOWN.contains(&k.as_str()) {
                if let Some(v) = map.remove(&k) {
                    extra.insert(k, v);
                }
            }
        }
        // Marathon writes `null` for some absent optionals; treat null as absent.
        map.retain(|_, v| !v.is_null());
        let mut app: App = serde_path_to_error::deserialize(Value::Object(map))
            .map_err(|e| ParseError::Type(marathon_path(e.path()), e.inner().to_string()))?;
        app.extra = extra;
        Ok(app)
    }

    pub fn from_slice(body: &[u8]) -> Result<App, ParseError> {
        App::from_value(parse_json(body)?)
    }

    /// The app as a JSON object, unknown fields included.
    pub fn to_value(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            for (k, x) in &self.extra {
                if !m.contains_key(k) {
                    m.insert(k.clone(), x.clone());
                }
            }
        }
        v
    }

    /// Is the app on a bridge/container network (ports through `portMappings`)?
    pub fn uses_port_mappings(&self) -> bool {
        if let Some(c) = &self.container {
            if let Some(d) = &c.docker {
                if matches!(d.network.as_deref(), Some("BRIDGE") | Some("USER")) {
                    return true;
                }
            }
        }
        self.networks.iter().any(|n| {
            n.get("mode")
                .and_then(|m| m.as_str())
                .is_some_and(|m| m.starts_with("container"))
        })
    }

    /// Port mappings of a bridge-networked app, wherever they were given.
    pub fn port_mappings(&self) -> &[PortMapping] {
        if let Some(c) = &self.container {
            if let Some(pm) = &c.port_mappings {
                return pm;
            }
            if let Some(pm) = c.docker.as_ref().and_then(|d| d.port_mappings.as_ref()) {
                return pm;
            }
        }
        &[]
    }

    /// Number of host ports a task of this app needs, with the fixed ones (`requirePorts`, or a
    /// non-zero `hostPort` in a mapping): `Some(port)` fixed, `None` dynamic.
    pub fn host_port_requests(&self) -> Vec<Option<u16>> {
        if self.uses_port_mappings() {
            self.port_mappings()
                .iter()
                .filter_map(|pm| match pm.host_port {
                    None => None,
                    Some(0) => Some(None),
                    Some(p) => Some(Some(p.clamp(0, 65535) as u16)),
                })
                .collect()
        } else {
            self.port_definitions
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .map(|pd| {
                    if self.require_ports && pd.port > 0 {
                        Some(pd.port.clamp(0, 65535) as u16)
                    } else {
                        None
                    }
                })
                .collect()
        }
    }

    /// Service ports (`portDefinitions[].port` or `portMappings[].servicePort`).
    pub fn service_ports(&self) -> Vec<i64> {
        if self.uses_port_mappings() {
            self.port_mappings()
                .iter()
                .map(|p| p.service_port)
                .collect()
        } else {
            self.port_definitions
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .map(|p| p.port)
                .collect()
        }
    }

    /// Port names in order (for `PORT_<NAME>`), `None` where unnamed.
    pub fn port_names(&self) -> Vec<Option<String>> {
        if self.uses_port_mappings() {
            self.port_mappings()
                .iter()
                .filter(|p| p.host_port.is_some())
                .map(|p| p.name.clone())
                .collect()
        } else {
            self.port_definitions
                .as_deref()
                .unwrap_or(&[])
                .iter()
                .map(|p| p.name.clone())
                .collect()
        }
    }

    /// Roles whose resources this app may use.
    pub fn accepted_roles(&self) -> Vec<String> {
        match &self.accepted_resource_roles {
            Some(r) if !r.is_empty() => r.clone(),
            _ => vec![dcos_types::ROLE_ANY.to_string()],
        }
    }

    /// Expunge/inactive timing of unreachable tasks, `None` when disabled.
    pub fn unreachable_after(&self) -> Option<(f64, f64)> {
        match &self.unreachable_strategy {
            Some(Value::String(s)) if s == "disabled" => None,
            Some(Value::Object(o)) => Some((
                o.get("inactiveAfterSeconds")
                    .and_then(|v| v.as_f64())
                    .unwrap_or(0.0),
                o.get("expungeAfterSeconds")
                    .and_then(|v| v.as_f64())
                    .unwrap_or(0.0),
            )),
            _ => Some((0.0, 0.0)),
        }
    }

    /// Everything except scaling is equal (scale-only changes don't restart tasks).
    pub fn same_config(&self, other: &App) -> bool {
        let strip = |a: &App| {
            let mut a = a.clone();
            a.instances = 0;
            a.version = None;
            a.version_info = None;
            a
        };
        strip(self) == strip(other)
    }

    /// Canonical id, legacy fields folded, defaults filled (Marathon's `AppNormalization`).
    pub fn normalize(&mut self) {
        self.id = canonical_id(&self.id, "/");
        if self.cmd.as_deref() == Some("") && self.args.is_some() {
            self.cmd = None;
        }
        if self.port_definitions.is_none() {
            if let Some(ports) = &self.ports {
                self.port_definitions = Some(
                    ports
                        .iter()
                        .map(|&p| PortDefinition {
                            port: p,
                            protocol: "tcp".into(),
                            name: None,
                            labels: IndexMap::new(),
                        })
                        .collect(),
                );
                self.ports = None;
            }
        }
        if !self.uris.is_empty() && self.fetch.is_empty() {
            self.fetch = self
                .uris
                .iter()
                .map(|u| Fetch {
                    uri: u.clone(),
                    extract: is_archive(u),
                    executable: false,
                    cache: false,
                    dest_path: None,
                    sha256: None,
                })
                .collect();
            self.uris.clear();
        }
        if self.uses_port_mappings() {
            if let Some(c) = &mut self.container {
                let missing = c.port_mappings.is_none()
                    && c.docker
                        .as_ref()
                        .and_then(|d| d.port_mappings.as_ref())
                        .is_none();
                if missing {
                    c.port_mappings = Some(vec![PortMapping {
                        container_port: 0,
                        host_port: Some(0),
                        service_port: 0,
                        protocol: "tcp".into(),
                        name: Some("default".into()),
                        labels: IndexMap::new(),
                    }]);
                }
            }
        } else if self.port_definitions.is_none() && self.ports.is_none() {
            self.port_definitions = Some(vec![PortDefinition {
                port: 0,
                protocol: "tcp".into(),
                name: Some("default".into()),
                labels: IndexMap::new(),
            }]);
        }
        if self.networks.is_empty() {
            let mode = match self
                .container
                .as_ref()
                .and_then(|c| c.docker.as_ref())
                .and_then(|d| d.network.as_deref())
            {
                Some("BRIDGE") => "container/bridge",
                Some("USER") => "container",
                _ => "host",
            };
            self.networks = vec![serde_json::json!({ "mode": mode })];
        }
        if self.unreachable_strategy.is_none() {
            self.unreachable_strategy = Some(serde_json::json!({
                "inactiveAfterSeconds": 0, "expungeAfterSeconds": 0
            }));
        }
    }
}

fn is_archive(u: &str) -> bool {
    let l = u.to_ascii_lowercase();
    [
        ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz", ".zip", ".tar",
    ]
    .iter()
    .any(|s| l.ends_with(s))
}

/// Resolves `id` against `base` (`/` for apps), handling `.` and `..`, without a trailing `/`.
pub fn canonical_id(id: &str, base: &str) -> String {
    let mut segs: Vec<&str> = if id.starts_with('/') {
        Vec::new()
    } else {
        base.split('/').filter(|s| !s.is_empty()).collect()
    };
    for s in id.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    format!("/{}", segs.join("/"))
}

/// Merges a partial update into an existing app's JSON (top-level fields replace).
pub fn merge_partial(base: &App, patch: &Map<String, Value>) -> Value {
    let mut v = base.to_value();
    if let Value::Object(m) = &mut v {
        m.remove("version");
        m.remove("versionInfo");
        for (k, x) in patch {
            if READ_ONLY.contains(&k.as_str()) {
                continue;
            }
            m.insert(k.clone(), x.clone());
        }
        // A patch that sets ports or uris replaces their modern counterparts.
        if patch.contains_key("ports") && !patch.contains_key("portDefinitions") {
            m.remove("portDefinitions");
        }
        if patch.contains_key("uris") && !patch.contains_key("fetch") {
            m.remove("fetch");
        }
        if patch.contains_key("cmd") && !patch.contains_key("args") {
            m.remove("args");
        }
        if patch.contains_key("args") && !patch.contains_key("cmd") {
            m.remove("cmd");
        }
    }
    v
}

/// `/a/b` → `a_b` (task id prefix and store key; `_` is not allowed in ids, so it's unique).
pub fn id_to_key(id: &str) -> String {
    id.trim_start_matches('/').replace('/', "_")
}

/// The app id a task id belongs to (`a_b.<uuid>` → `/a/b`).
pub fn app_id_of_task(task_id: &str) -> Option<String> {
    let (prefix, _) = task_id.rsplit_once('.')?;
    if prefix.is_empty() {
        return None;
    }
    Some(format!("/{}", prefix.replace('_', "/")))
}

/// ISO-8601 UTC with millis, as Marathon writes timestamps.
pub fn iso(secs: f64) -> String {
    let ms = (secs * 1000.0).round() as i64;
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => "1970-01-01T00:00:00.000Z".into(),
    }
}

/// Whether a query flag is on (`true`, `True`, `1`; marathon-python sends Python's `True`).
pub fn flag(v: Option<&str>) -> Option<bool> {
    v.map(|s| matches!(s.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | ""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_ids() {
        assert_eq!(canonical_id("web", "/"), "/web");
        assert_eq!(canonical_id("/prod/web/", "/"), "/prod/web");
        assert_eq!(canonical_id("/prod/./x/../web", "/"), "/prod/web");
        assert_eq!(canonical_id("../a", "/g/h"), "/g/a");
    }

    #[test]
    fn unknown_fields_are_kept_and_echoed() {
        let app = App::from_value(json!({"id":"x","cmd":"sleep 1","fancyNewField":{"a":1},
            "tasksRunning": 3}))
        .unwrap();
        assert_eq!(app.extra.get("fancyNewField"), Some(&json!({"a":1})));
        let v = app.to_value();
        assert_eq!(v["fancyNewField"], json!({"a":1}));
        assert!(v.get("tasksRunning").is_none());
    }

    #[test]
    fn type_errors_name_the_path() {
        let e = App::from_value(json!({"id":"x","labels":{"a":1}})).unwrap_err();
        match e {
            ParseError::Type(p, _) => assert_eq!(p, "/labels/a"),
            other => panic!("{other:?}"),
        }
        let e =
            App::from_value(json!({"id":"x","healthChecks":[{"portIndex":"zero"}]})).unwrap_err();
        match e {
            ParseError::Type(p, _) => assert_eq!(p, "/healthChecks(0)/portIndex"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            App::from_slice(b"{nope"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(App::from_slice(b"[1]"), Err(ParseError::Type(..))));
    }

    #[test]
    fn normalization_folds_legacy_fields() {
        let mut app = App::from_value(json!({"id":"a/b","cmd":"x","ports":[0, 8080],
            "uris":["http://h/x.tgz","http://h/bin"]}))
        .unwrap();
        app.normalize();
        assert_eq!(app.id, "/a/b");
        let pds = app.port_definitions.clone().unwrap();
        assert_eq!(pds.len(), 2);
        assert_eq!(pds[1].port, 8080);
        assert_eq!(app.fetch.len(), 2);
        assert!(app.fetch[0].extract);
        assert!(!app.fetch[1].extract);
        assert!(app.uris.is_empty());
        let mut plain = App::from_value(json!({"id":"p","cmd":"x"})).unwrap();
        plain.normalize();
        assert_eq!(
            plain.port_definitions.unwrap()[0].name.as_deref(),
            Some("default")
        );
        assert_eq!(plain.networks, vec![json!({"mode":"host"})]);
    }

    #[test]
    fn task_ids_map_back_to_apps() {
        assert_eq!(id_to_key("/prod/web"), "prod_web");
        assert_eq!(
            app_id_of_task("prod_web.1234-abcd").as_deref(),
            Some("/prod/web")
        );
        assert_eq!(
            app_id_of_task("v1.2.app.uuid").as_deref(),
            Some("/v1.2.app")
        );
        assert_eq!(app_id_of_task("nodot"), None);
    }

    #[test]
    fn iso_timestamps() {
        assert_eq!(iso(1443542391.164), "2015-09-29T15:59:51.164Z");
    }

    #[test]
    fn scale_only_changes_keep_config() {
        let a = App::from_value(json!({"id":"x","cmd":"c","instances":1})).unwrap();
        let mut b = a.clone();
        b.instances = 5;
        assert!(a.same_config(&b));
        b.cmd = Some("d".into());
        assert!(!a.same_config(&b));
    }
}
