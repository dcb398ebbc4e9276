//! End-to-end: a real HAProxy driven by the balancer from a fake Marathon (axum: `/v2/apps`
//! and an SSE `/v2/events`), with tiny HTTP backends on loopback. Skipped (with a message)
//! when `haproxy` is not installed.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::routing::get;
use axum::{Json, Router};
use dcos_edgelb::config::{generate, Options};
use dcos_edgelb::haproxy::{self, Haproxy};
use dcos_edgelb::model::parse_apps;
use dcos_edgelb::{EdgeLb, EdgeLbConfig, Status};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

fn haproxy_or_skip(test: &str) -> Option<PathBuf> {
    let found = haproxy::find_binary();
    if found.is_none() {
        eprintln!("SKIP {test}: haproxy is not installed (apt-get install -y haproxy)");
    }
    found
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[derive(Clone)]
struct FakeMarathon {
    apps: Arc<Mutex<Value>>,
    events: broadcast::Sender<String>,
}

impl FakeMarathon {
    async fn start(apps: Value) -> (FakeMarathon, String) {
        let (events, _) = broadcast::channel(1024);
        let fake = FakeMarathon {
            apps: Arc::new(Mutex::new(apps)),
            events,
        };
        let app = Router::new()
            .route(
                "/v2/apps",
                get(|State(f): State<FakeMarathon>| async move {
                    let apps = f.apps.lock().unwrap().clone();
                    Json(json!({ "apps": apps }))
                }),
            )
            .route(
                "/v2/events",
                get(|State(f): State<FakeMarathon>| async move {
                    let rx = BroadcastStream::new(f.events.subscribe());
                    Sse::new(rx.filter_map(|m| async move {
                        m.ok().map(|data| {
                            Ok::<_, Infallible>(
                                Event::default().event("status_update_event").data(data),
                            )
                        })
                    }))
                }),
            )
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (fake, url)
    }

    /// Replaces the apps and announces it like Marathon does (a status update).
    fn set(&self, apps: Value) {
        *self.apps.lock().unwrap() = apps;
        let _ = self.events.send(
            json!({"eventType": "status_update_event", "taskStatus": "TASK_KILLED"}).to_string(),
        );
    }
}

/// A tiny HTTP backend answering its name; counts its hits.
async fn backend(name: &'static str) -> (u16, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    let app = Router::new().fallback(move || {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::Relaxed);
            name
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, hits)
}

fn task(id: &str, port: u16) -> Value {
    json!({"id": id, "host": "127.0.0.1", "ports": [port], "state": "TASK_RUNNING",
           "ipAddresses": [{"ipAddress": "127.0.0.1", "protocol": "IPv4"}]})
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn wait_status(lb: &EdgeLb, what: &str, f: impl FnMut(&Status) -> bool) -> Status {
    let mut rx = lb.status();
    let got = match tokio::time::timeout(Duration::from_secs(30), rx.wait_for(f)).await {
        Ok(Ok(s)) => Some(s.clone()),
        _ => None,
    };
    match got {
        Some(s) => s,
        None => panic!(
            "timed out waiting for {what}: {:?}",
            lb.status().borrow().clone()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balances_follows_events_and_reloads_without_failed_requests() {
    let Some(bin) = haproxy_or_skip("balances_follows_events_and_reloads_without_failed_requests")
    else {
        return;
    };
    let (b1, hits1) = backend("backend-1").await;
    let (b2, hits2) = backend("backend-2").await;
    let (b3, hits3) = backend("backend-3").await;
    let (web_port, tcp_port, internal_port) = (free_port(), free_port(), free_port());
    let web = |tasks: Vec<Value>, extra: Value| {
        let mut labels = json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.test"});
        if let (Some(l), Some(e)) = (labels.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                l.insert(k.clone(), v.clone());
            }
        }
        json!({"id": "/web", "labels": labels, "portDefinitions": [{"port": web_port}],
               "tasks": tasks})
    };
    let others = [
        json!({"id": "/tcp", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_MODE": "tcp"},
               "portDefinitions": [{"port": tcp_port}], "tasks": [task("tcp.1", b1)]}),
        json!({"id": "/internal", "labels": {"HAPROXY_GROUP": "internal"},
               "portDefinitions": [{"port": internal_port}], "tasks": [task("int.1", b1)]}),
    ];
    let all3 = vec![task("web.1", b1), task("web.2", b2), task("web.3", b3)];
    let with = |web_app: Value| {
        let mut v = vec![web_app];
        v.extend(others.iter().cloned());
        Value::Array(v)
    };
    let (fake, url) = FakeMarathon::start(with(web(all3.clone(), json!({})))).await;

    let dir = tempfile::tempdir().unwrap();
    let http_port = free_port();
    let mut cfg = EdgeLbConfig::new(vec![url], bin, dir.path().to_path_buf());
    cfg.options.bind_addr = "127.0.0.1".into();
    cfg.options.http_port = Some(http_port);
    cfg.options.stats_port = Some(free_port());
    cfg.debounce = Duration::from_millis(50);
    let lb = EdgeLb::start(cfg).await.unwrap();
    let s = wait_status(&lb, "the first configuration", |s| s.backends == 2).await;
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);

    // Through the service port: every backend answers.
    let c = client();
    let base = format!("http://127.0.0.1:{web_port}/");
    for _ in 0..30 {
        let r = c.get(&base).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    for (i, h) in [&hits1, &hits2, &hits3].iter().enumerate() {
        assert!(
            h.load(Ordering::Relaxed) > 0,
            "backend {} got nothing",
            i + 1
        );
    }
    // Through the vhost frontend by Host header; unknown hosts get HAProxy's 503.
    let vhost = format!("http://127.0.0.1:{http_port}/");
    let r = c
        .get(&vhost)
        .header("Host", "WEB.test:80")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(&vhost)
        .header("Host", "other.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    // The tcp-mode app proxies bytes; the app of another group is not exposed.
    let r = c
        .get(format!("http://127.0.0.1:{tcp_port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "backend-1");
    assert!(c
        .get(format!("http://127.0.0.1:{internal_port}/"))
        .send()
        .await
        .is_err());

    // A task removed from Marathon: after the event no new request reaches it.
    let reloads = lb.status().borrow().reloads;
    fake.set(with(web(
        vec![task("web.1", b1), task("web.2", b2)],
        json!({}),
    )));
    wait_status(&lb, "the reload after removing web.3", |s| {
        s.reloads > reloads
    })
    .await;
    let before = hits3.load(Ordering::Relaxed);
    for _ in 0..40 {
        let r = c.get(&base).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_ne!(r.text().await.unwrap(), "backend-3");
    }
    assert_eq!(hits3.load(Ordering::Relaxed), before);

    // An invalid label skips that port with a warning; the rest keeps being served.
    let reloads = lb.status().borrow().reloads;
    let mut apps = with(web(vec![task("web.1", b1), task("web.2", b2)], json!({})));
    if let Some(a) = apps.as_array_mut() {
        a.push(
            json!({"id": "/broken", "labels": {"HAPROXY_GROUP": "external",
            "HAPROXY_0_VHOST": "x.test\n  server evil 127.0.0.1:1", "HAPROXY_0_MODE": "udp"},
            "portDefinitions": [{"port": free_port()}], "tasks": [task("broken.1", b1)]}),
        );
    }
    fake.set(apps);
    let s = wait_status(&lb, "a generation with the broken app", |s| {
        s.warnings.iter().any(|w| w.contains("/broken"))
    })
    .await;
    assert!(s.last_error.is_none(), "{:?}", s.last_error);
    assert_eq!(s.reloads, reloads, "nothing changed for HAProxy");
    assert!(!s.running_config.contains("evil"));
    assert_eq!(c.get(&base).send().await.unwrap().status(), 200);

    // A bounded client loop during repeated reloads sees zero failed requests.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let loop_task = {
        let (stop, ok, failed, base) = (stop.clone(), ok.clone(), failed.clone(), base.clone());
        tokio::spawn(async move {
            let c = client();
            for _ in 0..3000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
                match c.get(&base).send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(r) => {
                        eprintln!("failed request: HTTP {}", r.status());
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(e) => {
                        eprintln!("failed request: {e}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        })
    };
    for i in 0..8u32 {
        let reloads = lb.status().borrow().reloads;
        let tasks = if i % 2 == 0 {
            all3.clone()
        } else {
            vec![task("web.1", b1), task("web.2", b2)]
        };
        // Also change a label each round so every round is a real reload.
        fake.set(with(web(
            tasks,
            json!({"HAPROXY_0_BACKEND_WEIGHT": i.to_string()}),
        )));
        wait_status(&lb, "a reload during the client loop", |s| {
            s.reloads > reloads
        })
        .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let still_running = !loop_task.is_finished();
    stop.store(true, Ordering::Relaxed);
    loop_task.await.unwrap();
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("client loop during 8 reloads: {ok} ok, {failed} failed");
    assert!(ok > 0);
    assert!(
        still_running,
        "the client loop ended before the last reload"
    );
    assert_eq!(failed, 0, "requests failed during reloads");

    lb.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_configuration_keeps_the_last_good_one_running() {
    let Some(bin) = haproxy_or_skip("an_invalid_configuration_keeps_the_last_good_one_running")
    else {
        return;
    };
    let (b1, _) = backend("only").await;
    let port = free_port();
    let apps = json!({"apps": [{"id": "/a", "labels": {"HAPROXY_GROUP": "external"},
        "portDefinitions": [{"port": port}], "tasks": [task("a.1", b1)]}]});
    let (apps, _) = parse_apps(apps.to_string().as_bytes()).unwrap();
    let opts = Options {
        bind_addr: "127.0.0.1".into(),
        http_port: None,
        stats_port: Some(free_port()),
        ..Options::default()
    };
    let good = generate(&apps, &opts, &|h| h.parse().ok(), &|_| false).text;
    let dir = tempfile::tempdir().unwrap();
    let mut h = Haproxy::start(&bin, dir.path(), &good).await.unwrap();
    let c = client();
    let url = format!("http://127.0.0.1:{port}/");
    assert_eq!(
        c.get(&url).send().await.unwrap().text().await.unwrap(),
        "only"
    );

    let bad = format!("{good}\nbackend broken\n  server x 127.0.0.1:notaport\n");
    let err = h.apply(&bad).await.unwrap_err().to_string();
    assert!(err.contains("invalid haproxy configuration"), "{err}");
    assert_eq!(h.running_config(), good);
    assert_eq!(std::fs::read_to_string(h.config_path()).unwrap(), good);
    assert_eq!(
        c.get(&url).send().await.unwrap().text().await.unwrap(),
        "only"
    );

    // Valid for `haproxy -c` but cannot start (its port is taken): reload fails, the
    // previous file is put back and traffic still flows.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let unbindable = format!(
        "{good}\nfrontend clash\n  bind 127.0.0.1:{taken_port}\n  mode tcp\n  use_backend a_{port}\n"
    );
    match h.apply(&unbindable).await {
        Err(e) => {
            assert!(e.to_string().contains("restored"), "{e}");
            assert_eq!(h.running_config(), good);
            assert_eq!(std::fs::read_to_string(h.config_path()).unwrap(), good);
        }
        // Some kernels let a second socket bind the port (SO_REUSEPORT); then it just works.
        Ok(_) => eprintln!("note: the clashing bind was accepted by the kernel"),
    }
    assert_eq!(
        c.get(&url).send().await.unwrap().text().await.unwrap(),
        "only"
    );
    drop(taken);
    h.stop().await;
}

#[tokio::test]
async fn generated_configurations_pass_haproxy_check() {
    let Some(bin) = haproxy_or_skip("generated_configurations_pass_haproxy_check") else {
        return;
    };
    let body = json!({"apps": [
        {"id": "/g/web", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "a.com,b.com",
            "HAPROXY_0_PATH": "-i /x /y", "HAPROXY_0_STICKY": "true", "HAPROXY_0_BALANCE": "leastconn",
            "HAPROXY_0_BACKEND_WEIGHT": "3", "HAPROXY_1_MODE": "tcp", "HAPROXY_1_PORT": "10555",
            "HAPROXY_1_BIND_ADDR": "127.0.0.1"},
         "portDefinitions": [{"port": 10101}, {"port": 10102}],
         "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/h", "portIndex": 0},
                          {"protocol": "TCP", "portIndex": 1, "intervalSeconds": 2}],
         "tasks": [{"id": "t", "host": "127.0.0.1", "ports": [1, 2], "state": "TASK_RUNNING",
                    "healthCheckResults": [{"alive": true}]}]},
        {"id": "/vhost-only", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "v.com"},
         "portDefinitions": [{"port": 0}], "tasks": []},
        {"id": "/bad", "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_PATH": "/a'b",
            "HAPROXY_0_VHOST": "x.com"}, "portDefinitions": [{"port": 10103}]}
    ]});
    let (apps, _) = parse_apps(body.to_string().as_bytes()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for opts in [
        Options::default(),
        Options {
            http_port: None,
            stats_port: None,
            group: "*".into(),
            ..Options::default()
        },
    ] {
        let g = generate(&apps, &opts, &|h| h.parse().ok(), &|_| false);
        assert_eq!(g.warnings.len(), 1, "{:?}", g.warnings);
        if let Err(e) = haproxy::validate(&bin, dir.path(), &g.text).await {
            panic!("{e}\n{}", g.text);
        }
    }
}
