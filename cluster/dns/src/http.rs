//! The Mesos-DNS HTTP API (contract §1.9): `/v1/version`, `/v1/config`, `/v1/hosts/{host}`,
//! `/v1/hosts/{host}/ports` (501), `/v1/services/{service}`, `/v1/axfr`.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::labels::normalize_query;
use crate::records::RecordSet;
use crate::server::Zone;

/// Version reported by `/v1/version` (the Mesos-DNS release we follow).
pub const VERSION: &str = "v0.8.0";

#[derive(Clone)]
struct Api {
    zone: Zone,
    config: Arc<Value>,
}

/// The router; `config` is what `/v1/config` shows (secrets already removed by the caller).
/// Mount it at the root of the DNS HTTP port, or nest it (`Router::nest("/mesos_dns", ..)`).
pub fn router(zone: Zone, config: Value) -> Router {
    Router::new()
        .route("/v1/version", get(version))
        .route("/v1/config", get(config_handler))
        .route("/v1/hosts/{host}", get(hosts))
        .route("/v1/hosts/{host}/ports", get(ports))
        .route("/v1/services/{service}", get(services))
        .route("/v1/axfr", get(axfr))
        .with_state(Api {
            zone,
            config: Arc::new(config),
        })
}

async fn version() -> Json<Value> {
    Json(json!({
        "Service": "Mesos-DNS",
        "Version": VERSION,
        "URL": "https://github.com/mesosphere/mesos-dns",
    }))
}

async fn config_handler(State(api): State<Api>) -> Json<Value> {
    Json((*api.config).clone())
}

fn not_ready() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"message": "the DNS records are not built yet"})),
    )
        .into_response()
}

/// A then AAAA of `name`.
fn host_rows(rs: &RecordSet, name: &str) -> Vec<(String, IpAddr)> {
    let Some(ips) = rs.hosts.get(name) else {
        return Vec::new();
    };
    let v4 = ips.iter().filter(|i| i.is_ipv4());
    let v6 = ips.iter().filter(|i| i.is_ipv6());
    v4.chain(v6).map(|ip| (name.to_string(), *ip)).collect()
}

async fn hosts(State(api): State<Api>, Path(host): Path<String>) -> Response {
    let Some(rs) = api.zone.get() else {
        return not_ready();
    };
    let rows: Vec<Value> = host_rows(&rs, &normalize_query(&host))
        .into_iter()
        .map(|(h, ip)| json!({"host": h, "ip": ip.to_string()}))
        .collect();
    if rows.is_empty() {
        return Json(json!([{"host": "", "ip": ""}])).into_response();
    }
    Json(Value::Array(rows)).into_response()
}

async fn ports() -> Response {
    (StatusCode::NOT_IMPLEMENTED, "To be implemented...").into_response()
}

async fn services(State(api): State<Api>, Path(service): Path<String>) -> Response {
    let Some(rs) = api.zone.get() else {
        return not_ready();
    };
    let mut rows = Vec::new();
    if let Some(srvs) = rs.srvs.get(&normalize_query(&service)) {
        for s in srvs {
            let ips = host_rows(&rs, &s.target);
            // One row per target family (first A, first AAAA).
            let first4 = ips.iter().find(|(_, i)| i.is_ipv4());
            let first6 = ips.iter().find(|(_, i)| i.is_ipv6());
            for (_, ip) in first4.into_iter().chain(first6) {
                rows.push(json!({
                    "service": service, "host": s.target, "ip": ip.to_string(),
                    "port": s.port.to_string(),
                }));
            }
        }
    }
    if rows.is_empty() {
        return Json(json!([{"service": "", "host": "", "ip": "", "port": ""}])).into_response();
    }
    Json(Value::Array(rows)).into_response()
}

async fn axfr(State(api): State<Api>) -> Response {
    let Some(rs) = api.zone.get() else {
        return not_ready();
    };
    let mut a = serde_json::Map::new();
    let mut aaaa = serde_json::Map::new();
    let mut names: Vec<&String> = rs.hosts.keys().collect();
    names.sort();
    for n in names {
        let ips = &rs.hosts[n];
        let v4: Vec<String> = ips
            .iter()
            .filter(|i| i.is_ipv4())
            .map(|i| i.to_string())
            .collect();
        let v6: Vec<String> = ips
            .iter()
            .filter(|i| i.is_ipv6())
            .map(|i| i.to_string())
            .collect();
        if !v4.is_empty() {
            a.insert(n.clone(), json!(v4));
        }
        if !v6.is_empty() {
            aaaa.insert(n.clone(), json!(v6));
        }
    }
    let mut srv = serde_json::Map::new();
    let mut names: Vec<&String> = rs.srvs.keys().collect();
    names.sort();
    for n in names {
        let v: Vec<String> = rs.srvs[n]
            .iter()
            .map(|s| format!("{}:{}", s.target, s.port))
            .collect();
        srv.insert(n.clone(), json!(v));
    }
    let cfg = &api.config;
    Json(json!({
        "TTL": cfg.get("TTL").cloned().unwrap_or(json!(5)),
        "Serial": rs.serial,
        "RefreshSeconds": cfg.get("RefreshSeconds").cloned().unwrap_or(json!(0)),
        "Mname": cfg.get("SOAMname").cloned().unwrap_or(json!("ns1.mesos.")),
        "Rname": cfg.get("SOARname").cloned().unwrap_or(json!("root.ns1.mesos.")),
        "Domain": rs.zone.trim_end_matches('.'),
        "Records": {"As": a, "AAAAs": aaaa, "SRVs": srv},
    }))
    .into_response()
}
