//! Ready-made resolvers filled from cluster state, for callers that do not have an in-process
//! registry to query:
//!
//! * [`ServiceCache`]: `/service/<name>/` → a running task of a Marathon app, from
//!   `GET <marathon>/v2/apps?embed=apps.tasks` (labels `DCOS_SERVICE_NAME`,
//!   `DCOS_SERVICE_PORT_INDEX`, `DCOS_SERVICE_SCHEME` as in DC/OS `service.lua`; apps without
//!   the label are reachable by their id);
//! * [`AgentCache`]: `/agent/<id>/` → the agent's `http://ip:port`, from
//!   `GET <mesos>/master/state` (`slaves[].id`, `slaves[].pid` = `slave(1)@IP:PORT`).
//!
//! Both are plain maps behind a lock, updated by [`ServiceCache::update_from_apps`] /
//! [`AgentCache::update_from_state`] (pure, tested) or by a background refresher
//! (`spawn_refresh`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use serde_json::Value;

use crate::{AgentResolver, ServiceResolver};

fn read<T: Clone>(l: &RwLock<HashMap<String, T>>, k: &str) -> Option<T> {
    l.read().unwrap_or_else(|p| p.into_inner()).get(k).cloned()
}

fn replace<T>(l: &RwLock<HashMap<String, T>>, map: HashMap<String, T>) {
    *l.write().unwrap_or_else(|p| p.into_inner()) = map;
}

/// GETs `url` as JSON, with the cluster's internal credential when there is one (the master
/// and Marathon require it when auth is on).
async fn get_json(url: &str, internal_token: Option<&str>) -> Option<Value> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<Bytes>>();
    let uri: hyper::Uri = url.parse().ok()?;
    let mut req = hyper::Request::get(uri).header("accept", "application/json");
    if let Some(t) = internal_token {
        req = req.header(dcos_types::INTERNAL_TOKEN_HEADER, t);
    }
    let req = req.body(Empty::new()).ok()?;
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .ok()?
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    serde_json::from_slice(&body).ok()
}

/// `/service/<name>` → running task of a Marathon app.
#[derive(Default)]
pub struct ServiceCache {
    map: RwLock<HashMap<String, String>>,
}

impl ServiceCache {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Rebuilds the map from a `/v2/apps?embed=apps.tasks` answer (`{"apps": [...]}`).
    pub fn update_from_apps(&self, apps: &Value) {
        let mut map = HashMap::new();
        for app in apps
            .get("apps")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(id) = app.get("id").and_then(Value::as_str) else {
                continue;
            };
            let labels = app.get("labels");
            let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
            if label("DCOS_SERVICE_SCHEME").is_some_and(|s| s != "http") {
                continue; // only plain HTTP upstreams are supported
            }
            let index: usize = label("DCOS_SERVICE_PORT_INDEX")
                .and_then(|i| i.parse().ok())
                .unwrap_or(0);
            let has_checks = app
                .get("healthChecks")
                .and_then(Value::as_array)
                .is_some_and(|h| !h.is_empty());
            let task = app
                .get("tasks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|t| {
                    let running = t
                        .get("state")
                        .and_then(Value::as_str)
                        .is_none_or(|s| s == "TASK_RUNNING");
                    let healthy = !has_checks
                        || t.get("healthCheckResults")
                            .and_then(Value::as_array)
                            .is_some_and(|r| {
                                !r.is_empty()
                                    && r.iter().all(|c| c.get("alive") == Some(&Value::Bool(true)))
                            });
                    running && healthy
                });
            let Some(task) = task else { continue };
            let host = task.get("host").and_then(Value::as_str).unwrap_or("");
            let port = task
                .get("ports")
                .and_then(Value::as_array)
                .and_then(|p| p.get(index))
                .and_then(Value::as_u64);
            let (false, Some(port)) = (host.is_empty(), port) else {
                continue;
            };
            let url = format!("http://{host}:{port}");
            map.insert(id.trim_matches('/').to_string(), url.clone());
            if let Some(name) = label("DCOS_SERVICE_NAME") {
                map.insert(name.trim_matches('/').to_string(), url);
            }
        }
        replace(&self.map, map);
    }

    /// Polls Marathon every `every` and refreshes the map (kept as is when Marathon is down).
    pub fn spawn_refresh(
        self: &Arc<Self>,
        marathon_base: &str,
        every: Duration,
        internal_token: Option<String>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let url = format!(
            "{}/v2/apps?embed=apps.tasks",
            marathon_base.trim_end_matches('/')
        );
        tokio::spawn(async move {
            loop {
                if let Some(v) = get_json(&url, internal_token.as_deref()).await {
                    me.update_from_apps(&v);
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}

impl ServiceResolver for ServiceCache {
    fn service_url(&self, name: &str) -> Option<String> {
        read(&self.map, name)
    }
}

/// `/agent/<id>` → agent base URL.
#[derive(Default)]
pub struct AgentCache {
    map: RwLock<HashMap<String, String>>,
}

impl AgentCache {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Sets one agent's base URL (for callers with their own registry).
    pub fn insert(&self, agent_id: &str, base_url: &str) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(agent_id.to_string(), base_url.to_string());
    }

    /// Rebuilds the map from a Mesos `/master/state` (or `/master/slaves`) answer.
    pub fn update_from_state(&self, state: &Value) {
        let mut map = HashMap::new();
        for s in state
            .get("slaves")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(id) = s.get("id").and_then(Value::as_str) else {
                continue;
            };
            let addr = s
                .get("pid")
                .and_then(Value::as_str)
                .and_then(|p| p.split_once('@'))
                .map(|(_, a)| a.to_string());
            if let Some(addr) = addr {
                map.insert(id.to_string(), format!("http://{addr}"));
            }
        }
        replace(&self.map, map);
    }

    /// Polls the master every `every` and refreshes the map.
    pub fn spawn_refresh(
        self: &Arc<Self>,
        mesos_base: &str,
        every: Duration,
        internal_token: Option<String>,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let url = format!("{}/master/state", mesos_base.trim_end_matches('/'));
        tokio::spawn(async move {
            loop {
                if let Some(v) = get_json(&url, internal_token.as_deref()).await {
                    me.update_from_state(&v);
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}

impl AgentResolver for AgentCache {
    fn agent_url(&self, agent_id: &str) -> Option<String> {
        read(&self.map, agent_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn services_from_marathon_apps() {
        let c = ServiceCache::default();
        c.update_from_apps(&json!({"apps": [
            {"id": "/hello", "labels": {"DCOS_SERVICE_NAME": "hello-svc", "DCOS_SERVICE_PORT_INDEX": "1"},
             "tasks": [{"host": "10.0.0.5", "ports": [31000, 31001], "state": "TASK_RUNNING"}]},
            {"id": "/group/web", "healthChecks": [{"protocol": "HTTP"}],
             "tasks": [{"host": "h1", "ports": [1], "healthCheckResults": [{"alive": false}]},
                       {"host": "h2", "ports": [2], "healthCheckResults": [{"alive": true}]}]},
            {"id": "/staging", "tasks": [{"host": "h", "ports": [3], "state": "TASK_STAGING"}]},
            {"id": "/tls", "labels": {"DCOS_SERVICE_SCHEME": "https"}, "tasks": [{"host": "h", "ports": [4]}]},
            {"id": "/noports", "tasks": [{"host": "h", "ports": []}]}
        ]}));
        assert_eq!(
            c.service_url("hello").as_deref(),
            Some("http://10.0.0.5:31001")
        );
        assert_eq!(
            c.service_url("hello-svc").as_deref(),
            Some("http://10.0.0.5:31001")
        );
        assert_eq!(c.service_url("group/web").as_deref(), Some("http://h2:2"));
        assert_eq!(c.service_url("staging"), None);
        assert_eq!(c.service_url("tls"), None);
        assert_eq!(c.service_url("noports"), None);
        c.update_from_apps(&json!({"apps": []}));
        assert_eq!(c.service_url("hello"), None);
    }

    #[test]
    fn agents_from_master_state() {
        let c = AgentCache::default();
        c.update_from_state(
            &json!({"slaves": [{"id": "a1", "pid": "slave(1)@10.0.0.5:5051"}, {"id": "a2"}]}),
        );
        assert_eq!(c.agent_url("a1").as_deref(), Some("http://10.0.0.5:5051"));
        assert_eq!(c.agent_url("a2"), None);
        c.insert("a2", "http://h:1");
        assert_eq!(c.agent_url("a2").as_deref(), Some("http://h:1"));
    }
}
