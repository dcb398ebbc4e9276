//! `dcos service endpoints APP_ID`: every way to reach a Marathon app — Mesos-DNS names, VIPs
//! (`VIP_n` port labels), the edge load balancer (`HAPROXY_*` labels), the Admin Router path and
//! the running tasks' `host:port`. Names come from `dcos-dns`'s own rules (`dcos_dns::labels`,
//! `dcos_dns::vip`), never re-implemented here.

use serde_json::{json, Map, Value};

use dcos_dns::labels;
use dcos_dns::vip::{self, parse_vip};

use super::Ctx;
use crate::client::app_path;
use crate::error::{CliError, Result};
use crate::output::{cell, print_json, print_table};

/// Marathon's framework name and the Mesos-DNS domain as DC/OS ships them.
pub const FRAMEWORK: &str = "marathon";
pub const DOMAIN: &str = "mesos";

/// `<label>.<framework>.mesos` for a Mesos task name (`web.group` → `web-group.marathon.mesos`);
/// `None` when the name sanitises to nothing (Mesos-DNS then serves no name records).
pub fn task_dns_name(task_name: &str, framework: &str) -> Option<String> {
    let l = labels::label(task_name, false);
    let f = labels::domain_frag(framework, false);
    (!l.is_empty() && !f.is_empty()).then(|| format!("{l}.{f}.{DOMAIN}"))
}

/// Mesos-DNS A name of a Marathon app (`/group/web` → `web-group.marathon.mesos`).
pub fn app_dns_name(app_id: &str) -> Option<String> {
    task_dns_name(&vip::marathon_task_name(app_id), FRAMEWORK)
}

fn labels_of(v: &Value) -> Vec<(String, String)> {
    v.get("labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The app's port objects: `portDefinitions`, else `container.portMappings`, else
/// `container.docker.portMappings` (older Marathon).
fn ports_of(app: &Value) -> Vec<Value> {
    [
        "/portDefinitions",
        "/container/portMappings",
        "/container/docker/portMappings",
    ]
    .iter()
    .filter_map(|p| app.pointer(p).and_then(Value::as_array))
    .find(|a| !a.is_empty())
    .cloned()
    .unwrap_or_default()
}

/// VIPs declared on the app's ports: one object per label, with the parse error when the
/// value is bad.
pub fn vips(app: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for (i, p) in ports_of(app).iter().enumerate() {
        for (k, v) in labels_of(p) {
            if !vip::is_vip_key(&k) {
                continue;
            }
            let mut o = json!({"portIndex": i, "label": k, "value": v});
            match parse_vip(&v) {
                Ok(vip) => {
                    o["endpoint"] = json!(vip.endpoint(FRAMEWORK));
                    o["kind"] = json!(match vip.address {
                        vip::VipAddress::Named(_) => "named",
                        vip::VipAddress::Ip(_) => "ip",
                    });
                }
                Err(e) => o["error"] = json!(e.to_string()),
            }
            out.push(o);
        }
    }
    out
}

fn service_ports(app: &Value) -> Vec<u64> {
    let mut ports: Vec<u64> = ports_of(app)
        .iter()
        .map(|p| {
            p.get("servicePort")
                .or_else(|| p.get("port"))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        })
        .collect();
    if ports.is_empty() {
        if let Some(a) = app.get("ports").and_then(Value::as_array) {
            ports = a.iter().map(|p| p.as_u64().unwrap_or(0)).collect();
        }
    }
    ports
}

/// The edge load balancer's view: the app's `HAPROXY_*` labels as set (dcos-edgelb keeps its
/// label parsing private, so they are shown raw), per service port.
pub fn edge_lb(app: &Value) -> Value {
    let labels: Map<String, Value> = labels_of(app)
        .into_iter()
        .filter(|(k, _)| k.starts_with("HAPROXY_"))
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    if labels.is_empty() {
        return Value::Null;
    }
    let ports: Vec<Value> = service_ports(app)
        .into_iter()
        .enumerate()
        .map(|(i, sp)| {
            let get = |k: &str| labels.get(&format!("HAPROXY_{i}_{k}")).cloned();
            json!({
                "portIndex": i,
                "servicePort": sp,
                "group": get("GROUP").or_else(|| labels.get("HAPROXY_GROUP").cloned()),
                "vhost": get("VHOST"),
                "port": get("PORT"),
            })
        })
        .collect();
    json!({"labels": labels, "ports": ports})
}

/// Everything `service endpoints` reports for one app (as Marathon's `GET /v2/apps/<id>`
/// returns it, tasks embedded).
pub fn endpoints(app: &Value, cluster_url: &str) -> Value {
    let id = app.get("id").and_then(Value::as_str).unwrap_or("");
    let tasks: Vec<&Value> = app
        .get("tasks")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let mut host_ports: Vec<u64> = tasks
        .iter()
        .flat_map(|t| {
            t.get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .filter_map(Value::as_u64)
        .collect();
    host_ports.sort_unstable();
    host_ports.dedup();
    let task_label = labels::label(&vip::marathon_task_name(id), false);
    let dns = match app_dns_name(id) {
        Some(a) => json!({
            "a": a,
            "srv": format!("_{task_label}._tcp.{FRAMEWORK}.{DOMAIN}"),
            "ports": host_ports,
        }),
        None => Value::Null,
    };
    let admin_router = labels_of(app)
        .into_iter()
        .find(|(k, _)| k == "DCOS_SERVICE_NAME")
        .map(|(_, name)| {
            format!(
                "{}/service/{}/",
                cluster_url.trim_end_matches('/'),
                name.trim_matches('/')
            )
        });
    let tasks: Vec<Value> = tasks
        .iter()
        .map(|t| {
            let host = t.get("host").and_then(Value::as_str).unwrap_or("");
            let addrs: Vec<String> = t
                .get("ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_u64)
                .map(|p| format!("{host}:{p}"))
                .collect();
            json!({"id": t.get("id"), "state": t.get("state"), "host": host, "endpoints": addrs})
        })
        .collect();
    json!({
        "id": id,
        "dns": dns,
        "vips": vips(app),
        "edgeLb": edge_lb(app),
        "adminRouter": admin_router,
        "tasks": tasks,
    })
}

/// Table rows (`KIND`, `ENDPOINT`, `DETAIL`) of an [`endpoints`] object.
pub fn rows(e: &Value) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    if let Some(dns) = e.get("dns").filter(|d| !d.is_null()) {
        rows.push(vec!["dns".into(), s(dns.get("a")), "A (task hosts)".into()]);
        let ports: Vec<String> = dns
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| cell(Some(p)))
            .collect();
        rows.push(vec![
            "dns-srv".into(),
            s(dns.get("srv")),
            if ports.is_empty() {
                "no running task".into()
            } else {
                format!("ports {}", ports.join(","))
            },
        ]);
    }
    for v in e
        .get("vips")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let label = format!("{}={}", s(v.get("label")), s(v.get("value")));
        match v.get("endpoint") {
            // The label is read, but no layer-4 load balancer serves VIPs yet: say so.
            Some(ep) => rows.push(vec![
                "vip".into(),
                cell(Some(ep)),
                format!("{label} (not load-balanced yet)"),
            ]),
            None => rows.push(vec![
                "vip".into(),
                "(invalid)".into(),
                format!("{label}: {}", s(v.get("error"))),
            ]),
        }
    }
    if let Some(lb) = e.get("edgeLb").filter(|l| !l.is_null()) {
        for p in lb
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let port = p
                .get("port")
                .filter(|v| !v.is_null())
                .or_else(|| p.get("servicePort"));
            let mut detail = vec![format!("port index {}", cell(p.get("portIndex")))];
            if let Some(g) = p.get("group").filter(|v| !v.is_null()) {
                detail.push(format!("group {}", cell(Some(g))));
            }
            if let Some(h) = p.get("vhost").filter(|v| !v.is_null()) {
                detail.push(format!("vhost {}", cell(Some(h))));
            }
            rows.push(vec![
                "edge-lb".into(),
                format!("<public agent>:{}", cell(port)),
                detail.join(", "),
            ]);
        }
    }
    if let Some(ar) = e.get("adminRouter").and_then(Value::as_str) {
        rows.push(vec![
            "admin-router".into(),
            ar.into(),
            "DCOS_SERVICE_NAME".into(),
        ]);
    }
    for t in e
        .get("tasks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for ep in t
            .get("endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            rows.push(vec![
                "task".into(),
                cell(Some(ep)),
                format!("{} {}", s(t.get("id")), s(t.get("state"))),
            ]);
        }
    }
    rows
}

pub fn run(ctx: &Ctx, app_id: &str, json_out: bool) -> Result<()> {
    let path = format!(
        "/service/marathon/v2/apps{}?embed=app.tasks",
        app_path(app_id)
    );
    let v = ctx.api.get_json(&path).map_err(|e| match e {
        CliError::Failed {
            message,
            hint: None,
            error_type,
        } => CliError::Failed {
            message,
            hint: Some("list the apps with `dcos marathon app list`".into()),
            error_type,
        },
        other => other,
    })?;
    let app = v.get("app").unwrap_or(&v);
    let e = endpoints(app, &ctx.target.url);
    if json_out {
        print_json(&e);
    } else {
        print_table(&["KIND", "ENDPOINT", "DETAIL"], &rows(&e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_dcos_dns_rules() {
        assert_eq!(
            app_dns_name("/group/web").as_deref(),
            Some("web-group.marathon.mesos")
        );
        assert_eq!(app_dns_name("/").as_deref(), None);
        assert_eq!(
            task_dns_name("web.group", "marathon").as_deref(),
            Some("web-group.marathon.mesos")
        );
    }

    #[test]
    fn endpoints_of_an_app() {
        let app = json!({"id": "/shop/web", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shop.example.com", "DCOS_SERVICE_NAME": "shop"},
            "portDefinitions": [{"port": 10000, "name": "http", "labels": {"VIP_0": "/shop/web:80"}},
                                {"port": 10001, "labels": {"VIP_1": "1.2.3.4:5000", "vip_x": "bad"}}],
            "tasks": [{"id": "t1", "host": "10.0.1.5", "ports": [31005, 31006], "state": "TASK_RUNNING"}]});
        let e = endpoints(&app, "http://c/");
        assert_eq!(e["dns"]["a"], "web-shop.marathon.mesos");
        assert_eq!(e["dns"]["srv"], "_web-shop._tcp.marathon.mesos");
        assert_eq!(e["dns"]["ports"], json!([31005, 31006]));
        assert_eq!(
            e["vips"][0]["endpoint"],
            "shopweb.marathon.l4lb.thisdcos.directory:80"
        );
        assert_eq!(e["vips"][1]["endpoint"], "1.2.3.4:5000");
        assert!(e["vips"][2]["error"].as_str().unwrap().contains("bad"));
        assert_eq!(e["edgeLb"]["ports"][0]["vhost"], "shop.example.com");
        assert_eq!(e["edgeLb"]["ports"][1]["group"], "external");
        assert_eq!(e["adminRouter"], "http://c/service/shop/");
        assert_eq!(e["tasks"][0]["endpoints"][1], "10.0.1.5:31006");
        assert_eq!(rows(&e).len(), 2 + 3 + 2 + 1 + 2);
    }
}
