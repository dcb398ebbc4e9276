//! Routing, streaming, 502s and path-traversal handling of the Admin Router against small
//! in-test upstream servers.

mod common;

use std::sync::Arc;

use common::*;
use dcos_adminrouter::auth::AuthConfig;
use dcos_adminrouter::{AdminRouterConfig, UnitHealth};
use futures::StreamExt;

const CLUSTER_ID: &str = "0b7a4b6e-8a43-4b5c-9a3d-6d0c1f9a7e21";

struct Cluster {
    ar: String,
    cosmos: Echo,
    marathon: Echo,
    mesos: Echo,
    mesos_dns: Echo,
    agent: Echo,
    app: Echo,
}

async fn cluster() -> Cluster {
    let (cosmos_url, cosmos) = start_echo("cosmos").await;
    let (marathon_url, marathon) = start_echo("marathon").await;
    let (mesos_url, mesos) = start_echo("mesos").await;
    let (dns_url, mesos_dns) = start_echo("mesos_dns").await;
    let (agent_url, agent) = start_echo("agent").await;
    let (app_url, app) = start_echo("app").await;
    let mut cfg = AdminRouterConfig::new(CLUSTER_ID);
    cfg.cosmos = Some(cosmos_url);
    cfg.marathon = Some(marathon_url);
    cfg.mesos = Some(mesos_url);
    cfg.mesos_dns = Some(dns_url);
    cfg.metronome = None;
    cfg.agents = Some(Arc::new(move |id: &str| {
        (id == "agent-1").then(|| agent_url.clone())
    }));
    cfg.services = Some(Arc::new(move |name: &str| {
        (name == "hello" || name == "group/web").then(|| app_url.clone())
    }));
    cfg.health = Some(Arc::new(|| {
        vec![UnitHealth {
            id: "dcos-marathon.service".into(),
            name: "Marathon".into(),
            health: 0,
            output: String::new(),
            description: "scheduler".into(),
            help: String::new(),
        }]
    }));
    cfg.auth = AuthConfig::disabled();
    let (ar, _) = start_router(cfg).await;
    Cluster {
        ar,
        cosmos,
        marathon,
        mesos,
        mesos_dns,
        agent,
        app,
    }
}

fn last(e: &Echo) -> Seen {
    e.log
        .lock()
        .unwrap()
        .last()
        .cloned()
        .expect("upstream saw a request")
}

#[tokio::test]
async fn routes_like_dcos() {
    let c = cluster().await;
    let h = http();
    let cases: &[(&str, &str, &str)] = &[
        ("/package/search", "cosmos", "/package/search"),
        (
            "/package/repository/list",
            "cosmos",
            "/package/repository/list",
        ),
        ("/capabilities", "cosmos", "/capabilities"),
        ("/cosmos/service/describe", "cosmos", "/service/describe"),
        ("/service/marathon/v2/apps", "marathon", "/v2/apps"),
        ("/service/marathon/", "marathon", "/"),
        ("/marathon/v2/info", "marathon", "/v2/info"),
        ("/mesos/master/state.json", "mesos", "/master/state.json"),
        ("/mesos/state-summary", "mesos", "/state-summary"),
        (
            "/mesos_dns/v1/hosts/master.mesos",
            "mesos_dns",
            "/v1/hosts/master.mesos",
        ),
        ("/agent/agent-1/files/read", "agent", "/files/read"),
        ("/slave/agent-1/files/browse", "agent", "/files/browse"),
        ("/service/hello/", "app", "/"),
        ("/service/hello/api/x", "app", "/api/x"),
        ("/service/group/web/index.html", "app", "/index.html"),
    ];
    for (path, service, upstream_path) in cases {
        let (status, v) = get_json(&h, &format!("{}{path}", c.ar)).await;
        assert_eq!(status, 200, "{path}: {v}");
        assert_eq!(v["service"], *service, "{path}");
        assert_eq!(v["path"], *upstream_path, "{path}");
        assert_eq!(v["forwarded_proto"], "http", "{path}");
    }
}

#[tokio::test]
async fn query_method_body_and_host_are_forwarded() {
    let c = cluster().await;
    let h = http();
    let r = h
        .post(format!("{}/package/install?x=1&y=%2F", c.ar))
        .header(
            "content-type",
            "application/vnd.dcos.package.install-request+json;charset=utf-8;version=v1",
        )
        .body(vec![b'a'; 300_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = last(&c.cosmos);
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.query.as_deref(), Some("x=1&y=%2F"));
    assert_eq!(seen.body_len, 300_000);
    // Cosmos builds proxy URLs from Host: the client's Host is kept.
    assert_eq!(
        seen.host.as_deref(),
        Some(c.ar.trim_start_matches("http://"))
    );

    let (status, _) = get_json(
        &h,
        &format!("{}/agent/agent-1/files/read?path=/x/stdout&offset=0", c.ar),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        last(&c.agent).query.as_deref(),
        Some("path=/x/stdout&offset=0")
    );
}

#[tokio::test]
async fn mesos_dns_gets_no_authorization_header() {
    let c = cluster().await;
    let h = http();
    h.get(format!("{}/mesos_dns/v1/hosts/master.mesos", c.ar))
        .header("authorization", "token=abc")
        .send()
        .await
        .unwrap();
    assert_eq!(last(&c.mesos_dns).authorization, None);
    h.get(format!("{}/mesos/master/state", c.ar))
        .header("authorization", "token=abc")
        .send()
        .await
        .unwrap();
    assert_eq!(last(&c.mesos).authorization.as_deref(), Some("token=abc"));
}

#[tokio::test]
async fn redirects_and_not_found() {
    let c = cluster().await;
    let h = http();
    let r = h
        .get(format!("{}/service/marathon?a=b", c.ar))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], "/service/marathon/?a=b");
    let r = h.get(format!("{}/marathon", c.ar)).send().await.unwrap();
    assert_eq!(r.status(), 307);
    assert_eq!(r.headers()["location"], "/marathon/");
    let r = h.get(format!("{}/mesos", c.ar)).send().await.unwrap();
    assert_eq!(r.status(), 301);
    let (status, _) = get_json(&h, &format!("{}/service/nosuchapp/x", c.ar)).await;
    assert_eq!(status, 404);
    let (status, v) = get_json(&h, &format!("{}/agent/agent-9/files/read", c.ar)).await;
    assert_eq!(status, 404);
    assert!(v["message"].as_str().unwrap().contains("agent-9"));
    let (status, _) = get_json(&h, &format!("{}/nope", c.ar)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn builtin_endpoints() {
    let c = cluster().await;
    let h = http();
    let (s, v) = get_json(&h, &format!("{}/metadata", c.ar)).await;
    assert_eq!(s, 200);
    assert_eq!(v["CLUSTER_ID"], CLUSTER_ID);
    assert_eq!(v["PUBLIC_IPV4"], "127.0.0.1");
    let (s, v) = get_json(&h, &format!("{}/dcos-metadata/dcos-version.json", c.ar)).await;
    assert_eq!(s, 200);
    assert!(
        v["version"].is_string()
            && v["dcos-image-commit"].is_string()
            && v["bootstrap-id"].is_string()
    );
    let r = h
        .head(format!("{}/pkgpanda/active.buildinfo.full.json", c.ar))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (s, v) = get_json(&h, &format!("{}/system/health/v1", c.ar)).await;
    assert_eq!(s, 200);
    assert_eq!(v["node_role"], "master");
    assert_eq!(v["units"][0]["id"], "dcos-marathon.service");
    assert_eq!(v["units"][0]["health"], 0);
    let (s, v) = get_json(
        &h,
        &format!("{}/system/health/v1/units/dcos-marathon.service", c.ar),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["name"], "Marathon");
    let (s, v) = get_json(&h, &format!("{}/acs/api/v1/auth/providers", c.ar)).await;
    assert_eq!(s, 200);
    assert!(v["dcos-users"].is_object());
}

#[tokio::test]
async fn upstream_down_is_502_naming_the_service() {
    let mut cfg = AdminRouterConfig::new(CLUSTER_ID);
    cfg.marathon = Some(dead_url().await);
    cfg.cosmos = Some(dead_url().await);
    cfg.auth = AuthConfig::disabled();
    let (ar, _) = start_router(cfg).await;
    let h = http();
    let (s, v) = get_json(&h, &format!("{ar}/service/marathon/v2/apps")).await;
    assert_eq!(s, 502);
    assert_eq!(v["service"], "marathon");
    assert!(v["message"].as_str().unwrap().contains("marathon"), "{v}");
    let r = h
        .post(format!("{ar}/package/search"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["service"], "cosmos");
    // Not configured at all (no metronome, no mesos): also 502 with the name.
    let (s, v) = get_json(&h, &format!("{ar}/service/metronome/v1/jobs")).await;
    assert_eq!(s, 502);
    assert_eq!(v["service"], "metronome");
    let (s, v) = get_json(&h, &format!("{ar}/mesos/master/state")).await;
    assert_eq!(s, 502);
    assert_eq!(v["service"], "mesos");
    // No Mesos-DNS configured: the built-in answers for the master.
    let (s, v) = get_json(&h, &format!("{ar}/mesos_dns/v1/hosts/master.mesos")).await;
    assert_eq!(s, 200);
    assert_eq!(
        v,
        serde_json::json!([{"host": "master.mesos.", "ip": "127.0.0.1"}])
    );
    let (s, v) = get_json(&h, &format!("{ar}/mesos_dns/v1/hosts/other.marathon.mesos")).await;
    assert_eq!(s, 200);
    assert_eq!(v[0]["ip"], "");
}

#[tokio::test]
async fn sse_streams_through_unbuffered() {
    let c = cluster().await;
    let h = http();
    let r = h
        .get(format!("{}/service/marathon/v2/events", c.ar))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut stream = r.bytes_stream();
    // The upstream sends the second event only after we have seen the first one: if the proxy
    // buffered the response this would never complete (guarded so a failure cannot hang CI).
    let first = tokio::time::timeout(std::time::Duration::from_secs(20), stream.next())
        .await
        .expect("first SSE event arrived while the stream is still open")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event_stream_attached"));
    c.marathon.release.notify_one();
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert!(String::from_utf8_lossy(&rest).contains("deployment_success"));
}

/// Paths that try to climb out of a route prefix, or hide separators in escapes.
#[tokio::test]
async fn traversal_and_odd_encodings_cannot_escape_the_prefix() {
    let c = cluster().await;
    let ar = &c.ar;
    // Rejected outright.
    for path in [
        "/service/marathon/..%2f..%2fmesos/master/state",
        "/service/marathon/%2e%2e%2fmesos",
        "/mesos/master%2F..%2F..%2Fetc",
        "/package/a%5c..%5c..",
        "/service/marathon/v2/apps/%00",
        "/mesos/../../../etc/passwd",
        "/service/marathon/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/agent/agent-1/../../../x",
    ] {
        let (status, body) = raw_request(ar, "GET", path, &[]).await;
        assert_eq!(status, 400, "{path}: {body}");
    }
    // Normalised before routing: the request is routed by where it really points.
    let (status, body) =
        raw_request(ar, "GET", "/service/marathon/../../mesos/master/state", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(last(&c.mesos).path, "/master/state");
    let (status, _) =
        raw_request(ar, "GET", "/service/marathon/%2e%2e/%2E%2E/etc/passwd", &[]).await;
    assert_eq!(status, 404);
    let (status, _) = raw_request(ar, "GET", "//service//marathon///v2//apps", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(last(&c.marathon).path, "/v2/apps");
    let (status, _) = raw_request(ar, "GET", "/service/marathon/v2/./apps/x/../y", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(last(&c.marathon).path, "/v2/apps/y");
    let (status, _) = raw_request(ar, "GET", "/agent/agent-1/files/../browse", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(last(&c.agent).path, "/browse");
    // An app's service prefix cannot be left towards another app or Marathon.
    let (status, _) = raw_request(ar, "GET", "/service/hello/%2e%2e/marathon/v2/apps", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(last(&c.marathon).path, "/v2/apps");
    // No upstream ever saw a dot segment or an encoded separator.
    for e in [
        &c.cosmos,
        &c.marathon,
        &c.mesos,
        &c.mesos_dns,
        &c.agent,
        &c.app,
    ] {
        for seen in e.log.lock().unwrap().iter() {
            let p = seen.path.to_ascii_lowercase();
            assert!(
                !p.contains("..") && !p.contains("%2e") && !p.contains("%2f") && !p.contains("//"),
                "{seen:?}"
            );
        }
    }
}

#[tokio::test]
async fn service_cache_routes_to_running_marathon_tasks() {
    use dcos_adminrouter::discovery::ServiceCache;
    let (app_url, app) = start_echo("app").await;
    let port = app_url.rsplit(':').next().unwrap().parse::<u64>().unwrap();
    let cache = ServiceCache::new();
    cache.update_from_apps(
        &serde_json::json!({"apps": [{"id": "/web", "labels": {"DCOS_SERVICE_NAME": "website"},
        "tasks": [{"host": "127.0.0.1", "ports": [port], "state": "TASK_RUNNING"}]}]}),
    );
    let mut cfg = AdminRouterConfig::new(CLUSTER_ID);
    cfg.services = Some(cache.clone());
    cfg.auth = AuthConfig::disabled();
    let (ar, _) = start_router(cfg).await;
    let h = http();
    for name in ["web", "website"] {
        let (s, v) = get_json(&h, &format!("{ar}/service/{name}/index.html?x=1")).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["path"], "/index.html");
    }
    assert_eq!(last(&app).query.as_deref(), Some("x=1"));
    cache.update_from_apps(&serde_json::json!({"apps": []}));
    let (s, _) = get_json(&h, &format!("{ar}/service/web/")).await;
    assert_eq!(s, 404);
}
