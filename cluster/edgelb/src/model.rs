//! The parts of Marathon's `GET /v2/apps?embed=apps.tasks` answer the edge balancer reads,
//! parsed leniently: one malformed app is skipped with a warning, never the whole answer.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::Error;

/// A Marathon app, as far as load balancing is concerned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct App {
    /// Absolute app id (`/group/web`).
    pub id: String,
    /// String labels (non-string values are dropped with a warning while parsing).
    pub labels: BTreeMap<String, String>,
    /// Service ports by port index (`portDefinitions[].port` or `portMappings[].servicePort`);
    /// 0 means none assigned.
    pub service_ports: Vec<u32>,
    /// The app runs on a container network (IP per task): tasks are addressed by
    /// `ipAddresses[0]` and `container_ports` instead of host and host ports.
    pub container_network: bool,
    /// `portMappings[].containerPort` by port index (container networks only).
    pub container_ports: Vec<u32>,
    pub health_checks: Vec<HealthCheck>,
    pub tasks: Vec<Task>,
}

/// One of the app's `healthChecks`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthCheck {
    /// Upper-cased protocol (`HTTP`, `MESOS_HTTP`, `TCP`, `COMMAND`, ...).
    pub protocol: String,
    /// Port index it checks (Marathon's default is 0 when neither `portIndex` nor `port` is set).
    pub port_index: Option<usize>,
    pub path: Option<String>,
    pub interval_seconds: u64,
    pub max_consecutive_failures: u64,
}

/// A task of an app.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Task {
    pub id: String,
    pub host: String,
    pub ports: Vec<u32>,
    /// Marathon's state, e.g. `TASK_RUNNING`.
    pub state: String,
    /// `healthCheckResults[].alive`, in order.
    pub health: Vec<bool>,
    pub ip_addresses: Vec<String>,
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn port_of(v: &Value, key: &str) -> u32 {
    v.get(key)
        .and_then(Value::as_u64)
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or(0)
}

impl App {
    /// Parses one app object. `warnings` collects what was ignored.
    pub fn from_value(v: &Value, warnings: &mut Vec<String>) -> Result<App, String> {
        let id = str_field(v, "id").ok_or("app without a string \"id\"")?;
        if id.is_empty() {
            return Err("app with an empty \"id\"".into());
        }
        let id = if id.starts_with('/') {
            id.to_string()
        } else {
            format!("/{id}")
        };
        let mut labels = BTreeMap::new();
        if let Some(obj) = v.get("labels").and_then(Value::as_object) {
            for (k, val) in obj {
                match val.as_str() {
                    Some(s) => {
                        labels.insert(k.clone(), s.to_string());
                    }
                    None => warnings.push(format!("app {id}: label {k} is not a string; ignored")),
                }
            }
        }
        let container = v.get("container");
        let mappings = container
            .and_then(|c| c.get("portMappings"))
            .and_then(Value::as_array)
            .or_else(|| {
                container
                    .and_then(|c| c.get("docker"))
                    .and_then(|d| d.get("portMappings"))
                    .and_then(Value::as_array)
            });
        let defs = v.get("portDefinitions").and_then(Value::as_array);
        let mut service_ports = Vec::new();
        let mut container_ports = Vec::new();
        match (defs, mappings) {
            (Some(d), _) if !d.is_empty() => {
                service_ports = d.iter().map(|p| port_of(p, "port")).collect();
            }
            (_, Some(m)) if !m.is_empty() => {
                service_ports = m.iter().map(|p| port_of(p, "servicePort")).collect();
                container_ports = m.iter().map(|p| port_of(p, "containerPort")).collect();
            }
            _ => {
                if let Some(ports) = v.get("ports").and_then(Value::as_array) {
                    service_ports = ports
                        .iter()
                        .map(|p| p.as_u64().and_then(|p| u32::try_from(p).ok()).unwrap_or(0))
                        .collect();
                }
            }
        }
        let container_network = v
            .get("networks")
            .and_then(Value::as_array)
            .is_some_and(|n| n.iter().any(|n| str_field(n, "mode") == Some("container")))
            || v.get("ipAddress").is_some_and(|ip| ip.is_object());
        let health_checks = v
            .get("healthChecks")
            .and_then(Value::as_array)
            .map(|hcs| {
                hcs.iter()
                    .map(|h| HealthCheck {
                        protocol: str_field(h, "protocol")
                            .unwrap_or("HTTP")
                            .to_ascii_uppercase(),
                        port_index: match h.get("portIndex").and_then(Value::as_u64) {
                            Some(i) => usize::try_from(i).ok(),
                            None if h.get("port").is_some_and(|p| !p.is_null()) => None,
                            None => Some(0),
                        },
                        path: str_field(h, "path").map(String::from),
                        interval_seconds: h
                            .get("intervalSeconds")
                            .and_then(Value::as_u64)
                            .unwrap_or(60),
                        max_consecutive_failures: h
                            .get("maxConsecutiveFailures")
                            .and_then(Value::as_u64)
                            .unwrap_or(3),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut tasks = Vec::new();
        if let Some(ts) = v.get("tasks").and_then(Value::as_array) {
            for t in ts {
                match Task::from_value(t) {
                    Some(t) => tasks.push(t),
                    None => {
                        warnings.push(format!("app {id}: a task without a string \"id\"; ignored"))
                    }
                }
            }
        }
        Ok(App {
            id,
            labels,
            service_ports,
            container_network,
            container_ports,
            health_checks,
            tasks,
        })
    }
}

impl Task {
    fn from_value(v: &Value) -> Option<Task> {
        let id = str_field(v, "id")?.to_string();
        Some(Task {
            id,
            host: str_field(v, "host").unwrap_or("").to_string(),
            ports: v
                .get("ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| p.as_u64().and_then(|p| u32::try_from(p).ok()).unwrap_or(0))
                        .collect()
                })
                .unwrap_or_default(),
            state: str_field(v, "state").unwrap_or("").to_string(),
            health: v
                .get("healthCheckResults")
                .and_then(Value::as_array)
                .map(|rs| {
                    rs.iter()
                        .map(|r| r.get("alive").and_then(Value::as_bool).unwrap_or(false))
                        .collect()
                })
                .unwrap_or_default(),
            ip_addresses: v
                .get("ipAddresses")
                .and_then(Value::as_array)
                .map(|ips| {
                    ips.iter()
                        .filter_map(|ip| str_field(ip, "ipAddress").map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// Parses the body of `GET /v2/apps?embed=apps.tasks`: `{"apps":[...]}`. Returns the apps
/// (sorted by id) and warnings about what was skipped.
pub fn parse_apps(body: &[u8]) -> Result<(Vec<App>, Vec<String>), Error> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Error::Marathon(format!("/v2/apps answer is not JSON: {e}")))?;
    let list = v
        .get("apps")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Marathon("/v2/apps answer has no \"apps\" array".into()))?;
    let mut warnings = Vec::new();
    let mut apps = Vec::with_capacity(list.len());
    for (i, a) in list.iter().enumerate() {
        match App::from_value(a, &mut warnings) {
            Ok(app) => apps.push(app),
            Err(e) => warnings.push(format!("apps[{i}]: {e}; skipped")),
        }
    }
    apps.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((apps, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ports_tasks_and_health() {
        let body = br#"{"apps":[{"id":"/b","labels":{"HAPROXY_GROUP":"external","X":1},
            "portDefinitions":[{"port":10001},{"port":10002}],
            "healthChecks":[{"protocol":"http","path":"/h","portIndex":1}],
            "tasks":[{"id":"t1","host":"h1","ports":[31000,31001],"state":"TASK_RUNNING",
                      "healthCheckResults":[{"alive":true}],"ipAddresses":[{"ipAddress":"10.0.0.1"}]},
                     {"host":"nohost"}]},
            {"id":"a","container":{"portMappings":[{"containerPort":80,"servicePort":10003}]},
             "networks":[{"mode":"container","name":"dcos"}]},
            {"labels":{}}]}"#;
        let (apps, warnings) = parse_apps(body).unwrap();
        assert_eq!(apps.len(), 2);
        assert_eq!(apps[0].id, "/a");
        assert!(apps[0].container_network);
        assert_eq!(apps[0].service_ports, vec![10003]);
        assert_eq!(apps[0].container_ports, vec![80]);
        let b = &apps[1];
        assert_eq!(b.service_ports, vec![10001, 10002]);
        assert_eq!(b.labels.len(), 1);
        assert_eq!(b.health_checks[0].protocol, "HTTP");
        assert_eq!(b.health_checks[0].port_index, Some(1));
        assert_eq!(b.tasks.len(), 1);
        assert_eq!(b.tasks[0].health, vec![true]);
        assert_eq!(b.tasks[0].ip_addresses, vec!["10.0.0.1".to_string()]);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
    }

    #[test]
    fn rejects_non_json_and_missing_apps() {
        assert!(parse_apps(b"nope").is_err());
        assert!(parse_apps(b"{\"app\":[]}").is_err());
        assert!(parse_apps(b"[]").is_err());
    }
}
