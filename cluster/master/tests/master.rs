//! Master behaviour: registration, offers, launches, unreachable agents, restart from the
//! store, the state endpoints and bad input.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use dcos_master::{
    router, AgentTransport, HttpTransport, Master, MasterConfig, SendFuture, ToAgent,
};
use dcos_store::{EmbeddedStore, FaultyStore, SharedStore};
use dcos_types::protocol::{AgentTask, RegisterAgent};
use dcos_types::{
    AgentId, AgentInfo, CommandInfo, Filters, FrameworkInfo, MasterApi, Offer, Resources,
    SchedulerCall, SchedulerEvent, TaskId, TaskInfo, TaskState, TaskStatus,
};
use http_body_util::BodyExt;
use tokio::sync::mpsc::UnboundedReceiver;
use tower::ServiceExt;

/// Records what the master sends to agents (agents are not under test here).
#[derive(Default)]
struct Recorder {
    sent: Mutex<Vec<(AgentId, ToAgent)>>,
}

impl AgentTransport for Recorder {
    fn send(&self, agent_id: &AgentId, _base_url: &str, msg: ToAgent) -> SendFuture {
        if let Ok(mut s) = self.sent.lock() {
            s.push((agent_id.clone(), msg));
        }
        Box::pin(async { Ok(()) })
    }
}

fn config() -> MasterConfig {
    MasterConfig {
        allocation_interval: Duration::from_millis(20),
        heartbeat_interval: Duration::from_millis(50),
        agent_unreachable_timeout: Duration::from_millis(400),
        agent_removal_timeout: Duration::from_secs(3600),
        ..MasterConfig::default()
    }
}

fn agent_info(id: &str, cpus: f64, mem: f64) -> AgentInfo {
    let mut resources = BTreeMap::new();
    resources.insert(
        "*".to_string(),
        Resources::new(cpus, mem, 1000.0).with_ports([(31000, 31099)]),
    );
    AgentInfo {
        id: id.into(),
        hostname: "127.0.0.1".into(),
        port: 1,
        resources,
        attributes: BTreeMap::new(),
    }
}

fn framework(name: &str) -> FrameworkInfo {
    FrameworkInfo {
        id: None,
        name: name.into(),
        user: "root".into(),
        roles: vec!["*".into()],
        principal: None,
        webui_url: None,
        hostname: None,
        checkpoint: true,
        failover_timeout: 604800.0,
        weight: 1.0,
    }
}

fn task(id: &str, agent: &AgentId, cpus: f64, mem: f64) -> TaskInfo {
    TaskInfo {
        task_id: id.into(),
        name: id.into(),
        agent_id: agent.clone(),
        framework_id: None,
        role: "*".into(),
        resources: Resources::new(cpus, mem, 0.0),
        command: CommandInfo {
            value: Some("sleep 100".into()),
            ..CommandInfo::default()
        },
        container: None,
        health_check: None,
        kill_grace_period_seconds: 3.0,
        labels: BTreeMap::new(),
    }
}

async fn next_event(rx: &mut UnboundedReceiver<SchedulerEvent>) -> SchedulerEvent {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an event within 10 s")
        .expect("the stream is open")
}

async fn next_offers(rx: &mut UnboundedReceiver<SchedulerEvent>) -> Vec<Offer> {
    loop {
        if let SchedulerEvent::Offers(o) = next_event(rx).await {
            return o;
        }
    }
}

async fn next_update(rx: &mut UnboundedReceiver<SchedulerEvent>) -> TaskStatus {
    loop {
        if let SchedulerEvent::Update(s) = next_event(rx).await {
            return s;
        }
    }
}

fn register(master: &Master, info: AgentInfo, tasks: Vec<AgentTask>) {
    master
        .register_agent(RegisterAgent {
            agent: info,
            tasks,
            version: "test".into(),
        })
        .expect("registration is accepted");
}

async fn get_json(master: &Master, path: &str) -> serde_json::Value {
    let resp = router(master.clone())
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

fn running(task: &TaskInfo) -> TaskStatus {
    TaskStatus {
        task_id: task.task_id.clone(),
        agent_id: task.agent_id.clone(),
        framework_id: None,
        state: TaskState::Running,
        message: None,
        reason: None,
        source: "SOURCE_EXECUTOR".into(),
        healthy: None,
        timestamp: 1.0,
        uuid: "u-1".into(),
    }
}

#[tokio::test]
async fn offers_launch_and_state_endpoints() {
    let rec = Arc::new(Recorder::default());
    let store: SharedStore = Arc::new(EmbeddedStore::in_memory());
    let master = Master::start(config(), store, rec.clone()).unwrap();
    register(&master, agent_info("a1", 4.0, 4096.0), vec![]);
    let sub = master.subscribe(framework("marathon")).unwrap();
    let fid = sub.framework_id.clone();
    let mut rx = sub.events;
    let offers = next_offers(&mut rx).await;
    assert_eq!(offers.len(), 1);
    let offer = &offers[0];
    assert_eq!(offer.total().cpus, 4.0);

    // One valid task and one impossible one.
    let good = task("t1", &offer.agent_id, 1.0, 128.0);
    let huge = task("t2", &offer.agent_id, 100.0, 128.0);
    master
        .call(
            &fid,
            SchedulerCall::Accept {
                offer_ids: vec![offer.id.clone()],
                tasks: vec![good.clone(), huge],
                filters: Filters {
                    refuse_seconds: 0.0,
                },
            },
        )
        .unwrap();
    let err = next_update(&mut rx).await;
    assert_eq!(err.task_id.as_str(), "t2");
    assert_eq!(err.state, TaskState::Error);
    assert!(err.message.unwrap().contains("more resources"));
    // The launch went to the agent.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let launched = rec
        .sent
        .lock()
        .unwrap()
        .iter()
        .any(|(_, m)| matches!(m, ToAgent::Launch(l) if l.tasks.len() == 1 && l.tasks[0].task_id.as_str() == "t1"));
    assert!(launched);

    // Re-using an offer is refused.
    let again = master.call(
        &fid,
        SchedulerCall::Accept {
            offer_ids: vec![offer.id.clone()],
            tasks: vec![task("t3", &offer.agent_id, 1.0, 1.0)],
            filters: Filters::default(),
        },
    );
    assert!(again.is_err());

    // The agent reports RUNNING; the framework gets it and acknowledges.
    master.status_update(running(&good)).unwrap();
    loop {
        let s = next_update(&mut rx).await;
        if s.task_id.as_str() == "t1" && s.state == TaskState::Running {
            break;
        }
    }
    master
        .call(
            &fid,
            SchedulerCall::Acknowledge {
                agent_id: good.agent_id.clone(),
                task_id: good.task_id.clone(),
                uuid: "u-1".into(),
            },
        )
        .unwrap();

    let state = get_json(&master, "/master/state.json").await;
    assert!(state["completed_frameworks"].is_array());
    let fw = &state["frameworks"][0];
    assert_eq!(fw["name"], "marathon");
    assert!(fw["completed_tasks"].is_array());
    assert_eq!(fw["tasks"][0]["id"], "t1");
    assert_eq!(fw["tasks"][0]["state"], "TASK_RUNNING");
    assert_eq!(fw["tasks"][0]["slave_id"], "a1");
    assert_eq!(state["slaves"][0]["hostname"], "127.0.0.1");
    assert_eq!(state["slaves"][0]["pid"], "slave(1)@127.0.0.1:1");
    assert_eq!(state["slaves"][0]["resources"]["cpus"], 4.0);
    let summary = get_json(&master, "/master/state-summary").await;
    assert_eq!(summary["slaves"][0]["TASK_RUNNING"], 1);
    assert_eq!(summary["frameworks"][0]["name"], "marathon");
    let tasks = get_json(&master, "/master/tasks").await;
    assert_eq!(tasks["tasks"].as_array().unwrap().len(), 1);
    let slaves = get_json(&master, "/master/slaves").await;
    assert_eq!(slaves["slaves"][0]["id"], "a1");
    assert_eq!(
        master.agent_base_url("a1").as_deref(),
        Some("http://127.0.0.1:1")
    );
    assert!(master.agent_base_url("nope").is_none());

    // Kill goes to the agent; an unknown task gets TASK_LOST.
    master
        .call(
            &fid,
            SchedulerCall::Kill {
                task_id: "ghost".into(),
                agent_id: None,
                grace_period_seconds: None,
            },
        )
        .unwrap();
    let lost = next_update(&mut rx).await;
    assert_eq!(lost.state, TaskState::Lost);

    // Teardown through the HTTP form, as `dcos service shutdown` sends it.
    let resp = router(master.clone())
        .oneshot(
            Request::post("/master/teardown")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(format!("frameworkId={fid}")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let state = get_json(&master, "/master/state").await;
    assert_eq!(state["frameworks"].as_array().unwrap().len(), 0);
    assert_eq!(state["completed_frameworks"][0]["name"], "marathon");
    assert_eq!(
        state["completed_frameworks"][0]["completed_tasks"][0]["state"],
        "TASK_KILLED"
    );
    let resp = router(master.clone())
        .oneshot(
            Request::post("/master/teardown")
                .body(Body::from("frameworkId=unknown"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    master.shutdown();
}

#[tokio::test]
async fn silent_agent_becomes_unreachable() {
    let rec = Arc::new(Recorder::default());
    let store: SharedStore = Arc::new(EmbeddedStore::in_memory());
    let master = Master::start(config(), store, rec).unwrap();
    register(&master, agent_info("a1", 2.0, 1024.0), vec![]);
    let sub = master.subscribe(framework("f")).unwrap();
    let fid = sub.framework_id.clone();
    let mut rx = sub.events;
    let offer = next_offers(&mut rx).await.remove(0);
    let t = task("t1", &offer.agent_id, 1.0, 64.0);
    master
        .call(
            &fid,
            SchedulerCall::Accept {
                offer_ids: vec![offer.id],
                tasks: vec![t.clone()],
                filters: Filters::default(),
            },
        )
        .unwrap();
    master.status_update(running(&t)).unwrap();
    // No heartbeats: after the timeout the task is unreachable.
    let mut saw_unreachable = false;
    for _ in 0..20 {
        match next_event(&mut rx).await {
            SchedulerEvent::Update(s) if s.state == TaskState::Unreachable => {
                assert_eq!(s.task_id.as_str(), "t1");
                assert_eq!(s.source, "SOURCE_MASTER");
                saw_unreachable = true;
                break;
            }
            _ => {}
        }
    }
    assert!(saw_unreachable);
    let state = get_json(&master, "/master/state").await;
    assert_eq!(state["slaves"][0]["active"], false);
    assert_eq!(state["unreachable_slaves"], 1);
    // The heartbeat tells it to re-register; it comes back with its task running.
    assert!(master.heartbeat(&"a1".into()).reregister);
    let mut st = running(&t);
    st.framework_id = Some(fid.clone());
    let mut info = t.clone();
    info.framework_id = Some(fid.clone());
    register(
        &master,
        agent_info("a1", 2.0, 1024.0),
        vec![AgentTask { info, status: st }],
    );
    let back = next_update(&mut rx).await;
    assert_eq!(back.state, TaskState::Running);
    assert!(!master.heartbeat(&"a1".into()).reregister);
    master.shutdown();
}

#[tokio::test]
async fn restart_from_the_store_keeps_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let fid;
    {
        let store: SharedStore = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let master = Master::start(config(), store, Arc::new(Recorder::default())).unwrap();
        register(&master, agent_info("a1", 2.0, 1024.0), vec![]);
        let sub = master.subscribe(framework("marathon")).unwrap();
        fid = sub.framework_id.clone();
        let mut rx = sub.events;
        let offer = next_offers(&mut rx).await.remove(0);
        master
            .call(
                &fid,
                SchedulerCall::Accept {
                    offer_ids: vec![offer.id],
                    tasks: vec![task("t1", &offer.agent_id, 1.0, 64.0)],
                    filters: Filters::default(),
                },
            )
            .unwrap();
        // "kill -9": no shutdown, just drop everything.
        drop(rx);
        drop(master);
    }
    let store: SharedStore = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    // A corrupt record is skipped, not fatal.
    store
        .put(
            "/mesos/tasks/garbage",
            b"{not json".to_vec(),
            dcos_store::Precondition::Any,
        )
        .unwrap();
    let master = Master::start(config(), store, Arc::new(Recorder::default())).unwrap();
    let state = get_json(&master, "/master/state").await;
    assert_eq!(state["slaves"][0]["id"], "a1");
    assert_eq!(
        state["slaves"][0]["active"], false,
        "recovered, not yet re-registered"
    );
    // The framework re-subscribes with its id and finds its task.
    let mut info = framework("marathon");
    info.id = Some(fid.clone());
    let sub = master.subscribe(info).unwrap();
    assert_eq!(sub.framework_id, fid);
    let state = get_json(&master, "/master/state").await;
    assert_eq!(state["frameworks"][0]["tasks"][0]["id"], "t1");
    let mut rx = sub.events;
    // Reconciliation waits for the recovered agent (no stale TASK_STAGING is reported).
    master
        .call(&fid, SchedulerCall::Reconcile { tasks: vec![] })
        .unwrap();
    // The recovered agent must re-register; it reports the task running.
    assert!(master.heartbeat(&"a1".into()).reregister);
    let mut t = task("t1", &"a1".into(), 1.0, 64.0);
    t.framework_id = Some(fid.clone());
    register(
        &master,
        agent_info("a1", 2.0, 1024.0),
        vec![AgentTask {
            status: running(&t),
            info: t,
        }],
    );
    let s = next_update(&mut rx).await;
    assert_eq!(s.task_id.as_str(), "t1");
    assert_eq!(s.state, TaskState::Running);
    assert!(
        s.uuid.is_empty(),
        "a reconciliation update needs no acknowledgement"
    );
    let state = get_json(&master, "/master/state").await;
    assert_eq!(state["frameworks"][0]["tasks"][0]["state"], "TASK_RUNNING");
    assert_eq!(state["slaves"][0]["active"], true);
    master.shutdown();
}

#[tokio::test]
async fn malformed_agent_messages_are_rejected() {
    let store: SharedStore = Arc::new(EmbeddedStore::in_memory());
    let master = Master::start(config(), store, Arc::new(Recorder::default())).unwrap();
    let app = router(master.clone());
    for (path, body) in [
        ("/api/agent/v1/register", "{not json"),
        (
            "/api/agent/v1/register",
            r#"{"agent":{"id":"","hostname":"h","port":1,"resources":{}}}"#,
        ),
        (
            "/api/agent/v1/register",
            r#"{"agent":{"id":"a","hostname":"h","port":1,"resources":{"*":{"cpus":-1}}}}"#,
        ),
        ("/api/agent/v1/heartbeat", "[]"),
        ("/api/agent/v1/status", r#"{"status":{"task_id":""}}"#),
        ("/api/agent/v1/status", ""),
    ] {
        let resp = app
            .clone()
            .oneshot(Request::post(path).body(Body::from(body)).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{path} {body}");
        let b = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert!(v["message"].as_str().is_some());
    }
    // An unknown framework's call is an error, not a panic.
    assert!(master
        .call(&"nobody".into(), SchedulerCall::Revive)
        .is_err());
    assert!(master.subscribe(framework("  ")).is_err());
    // A status update for a task nobody knows is accepted and ignored.
    let t = task("x", &"a9".into(), 1.0, 1.0);
    master.status_update(running(&t)).unwrap();
    let _ = TaskId::from("x");
    master.shutdown();
}

#[tokio::test]
async fn unreachable_agent_is_removed_after_the_timeout() {
    let store: SharedStore = Arc::new(EmbeddedStore::in_memory());
    let cfg = MasterConfig {
        agent_removal_timeout: Duration::from_millis(300),
        ..config()
    };
    let master = Master::start(cfg, store.clone(), Arc::new(Recorder::default())).unwrap();
    register(&master, agent_info("a1", 2.0, 1024.0), vec![]);
    let sub = master.subscribe(framework("f")).unwrap();
    let fid = sub.framework_id.clone();
    let mut rx = sub.events;
    let offer = next_offers(&mut rx).await.remove(0);
    let t = task("t1", &offer.agent_id, 1.0, 64.0);
    master
        .call(
            &fid,
            SchedulerCall::Accept {
                offer_ids: vec![offer.id],
                tasks: vec![t.clone()],
                filters: Filters::default(),
            },
        )
        .unwrap();
    master.status_update(running(&t)).unwrap();
    let mut states = Vec::new();
    let mut lost_agent = false;
    for _ in 0..50 {
        match next_event(&mut rx).await {
            SchedulerEvent::Update(s) => states.push(s.state),
            SchedulerEvent::AgentLost(a) => {
                assert_eq!(a.as_str(), "a1");
                lost_agent = true;
                break;
            }
            _ => {}
        }
    }
    assert!(lost_agent);
    assert!(states.contains(&TaskState::Unreachable));
    assert!(states.contains(&TaskState::Gone));
    let state = get_json(&master, "/master/state").await;
    assert_eq!(state["slaves"].as_array().unwrap().len(), 0);
    assert_eq!(
        state["frameworks"][0]["completed_tasks"][0]["state"],
        "TASK_GONE"
    );
    assert!(store.list("/mesos/agents/").unwrap().is_empty());
    assert!(store.list("/mesos/tasks/").unwrap().is_empty());
    master.shutdown();
}

// ---- nothing acts on a change that is not durable -------------------------------------------

/// A master over a store that can be made to refuse every commit (ENOSPC).
fn faulty_master(rec: Arc<Recorder>) -> (Master, Arc<FaultyStore>, SharedStore) {
    let inner: SharedStore = Arc::new(EmbeddedStore::in_memory());
    let faulty = FaultyStore::new(inner.clone());
    let store: SharedStore = faulty.clone();
    let master = Master::start(config(), store, rec).unwrap();
    (master, faulty, inner)
}

fn launches(rec: &Recorder) -> Vec<String> {
    rec.sent
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, m)| match m {
            ToAgent::Launch(l) => Some(l.tasks.iter().map(|t| t.task_id.to_string())),
            _ => None,
        })
        .flatten()
        .collect()
}

fn acks(rec: &Recorder) -> usize {
    rec.sent
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, m)| matches!(m, ToAgent::Ack(_)))
        .count()
}

/// Every update already delivered (events are delivered before a call returns).
fn pending_updates(rx: &mut UnboundedReceiver<SchedulerEvent>) -> Vec<TaskStatus> {
    let mut out = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        if let SchedulerEvent::Update(s) = ev {
            out.push(s);
        }
    }
    out
}

fn accept(master: &Master, fid: &dcos_types::FrameworkId, offer: &Offer, tasks: Vec<TaskInfo>) {
    master
        .call(
            fid,
            SchedulerCall::Accept {
                offer_ids: vec![offer.id.clone()],
                tasks,
                filters: Filters {
                    refuse_seconds: 0.0,
                },
            },
        )
        .unwrap();
}

#[tokio::test]
async fn launch_that_cannot_be_stored_is_not_sent_and_is_dropped() {
    let rec = Arc::new(Recorder::default());
    let (master, faulty, inner) = faulty_master(rec.clone());
    register(&master, agent_info("a1", 4.0, 4096.0), vec![]);
    let sub = master.subscribe(framework("marathon")).unwrap();
    let fid = sub.framework_id.clone();
    let mut rx = sub.events;
    let offer = next_offers(&mut rx).await.remove(0);
    assert!(master.store_writable().is_ok());

    faulty.set_failing(true);
    let health = master.store_writable().unwrap_err();
    assert!(health.contains("No space left on device"), "{health}");
    accept(
        &master,
        &fid,
        &offer,
        vec![task("t1", &offer.agent_id, 1.0, 128.0)],
    );
    // Not sent to the agent; the framework is told why.
    assert!(
        launches(&rec).is_empty(),
        "a launch that is not stored is sent"
    );
    let s = next_update(&mut rx).await;
    assert_eq!(s.task_id.as_str(), "t1");
    assert_eq!(s.state, TaskState::Dropped);
    let msg = s.message.unwrap_or_default();
    assert!(
        msg.contains("could not store the launch") && msg.contains("No space left on device"),
        "{msg}"
    );
    // Nothing stored, nothing kept in memory, the resources are free again.
    assert!(inner.list("/mesos/tasks/").unwrap().is_empty());
    let state = get_json(&master, "/master/state").await;
    assert_eq!(state["frameworks"][0]["tasks"].as_array().unwrap().len(), 0);
    assert_eq!(state["slaves"][0]["used_resources"]["cpus"], 0.0);
    // The last commit failed: unhealthy even if the store says it is writable again.
    faulty.set_failing(false);
    let health = master.store_writable().unwrap_err();
    assert!(health.contains("last store commit failed"), "{health}");

    // The whole agent is offered again, and a launch now goes through.
    let offer = next_offers(&mut rx).await.remove(0);
    assert_eq!(offer.total().cpus, 4.0);
    accept(
        &master,
        &fid,
        &offer,
        vec![task("t1", &offer.agent_id, 1.0, 128.0)],
    );
    assert_eq!(launches(&rec), vec!["t1".to_string()]);
    assert_eq!(inner.list("/mesos/tasks/").unwrap().len(), 1);
    assert!(master.store_writable().is_ok());
    master.shutdown();
}

#[tokio::test]
async fn store_health_recovers_without_other_writes() {
    let (master, faulty, _inner) = faulty_master(Arc::new(Recorder::default()));
    faulty.set_failing(true);
    let refused = master.register_agent(RegisterAgent {
        agent: agent_info("a1", 1.0, 1.0),
        tasks: vec![],
        version: "test".into(),
    });
    assert!(refused.is_err());
    faulty.set_failing(false);
    assert!(master.store_writable().is_err());
    // The timer loop probes the store once it says it takes writes again.
    master.check_timeouts();
    assert_eq!(master.store_writable(), Ok(()));
    master.shutdown();
}

#[tokio::test]
async fn registration_that_cannot_be_stored_is_refused_and_undone() {
    let rec = Arc::new(Recorder::default());
    let (master, faulty, inner) = faulty_master(rec.clone());
    let sub = master.subscribe(framework("marathon")).unwrap();
    let fid = sub.framework_id.clone();
    let mut rx = sub.events;

    faulty.set_failing(true);
    // A new agent: refused (503 on the wire), unknown afterwards, told to register again.
    let resp = router(master.clone())
        .oneshot(
            Request::post("/api/agent/v1/register")
                .body(Body::from(
                    serde_json::to_vec(&RegisterAgent {
                        agent: agent_info("a1", 4.0, 4096.0),
                        tasks: vec![],
                        version: "test".into(),
                    })
                    .unwrap(),
                ))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let state = get_json(&master, "/master/state").await;
    assert_eq!(state["slaves"].as_array().unwrap().len(), 0);
    assert!(master.heartbeat(&"a1".into()).reregister);
    master.allocate_now();
    assert!(
        !std::iter::from_fn(|| rx.try_recv().ok()).any(|e| matches!(e, SchedulerEvent::Offers(_))),
        "an agent whose registration is not stored is offered"
    );

    // Registered while the store works, with a task running.
    faulty.set_failing(false);
    register(&master, agent_info("a1", 4.0, 4096.0), vec![]);
    let offer = next_offers(&mut rx).await.remove(0);
    let t = task("t1", &offer.agent_id, 1.0, 128.0);
    accept(&master, &fid, &offer, vec![t.clone()]);
    master.status_update(running(&t)).unwrap();
    let _ = pending_updates(&mut rx);

    // A re-registration that reports the task gone and a new one: refused, nothing changes.
    faulty.set_failing(true);
    let mut other = task("t2", &offer.agent_id, 1.0, 128.0);
    other.framework_id = Some(fid.clone());
    let mut st = running(&other);
    st.framework_id = Some(fid.clone());
    let refused = master.register_agent(RegisterAgent {
        agent: agent_info("a1", 4.0, 4096.0),
        tasks: vec![AgentTask {
            info: other,
            status: st,
        }],
        version: "test".into(),
    });
    assert!(
        matches!(refused, Err(dcos_types::MasterError::Unavailable(ref m)) if m.contains("No space left")),
        "{refused:?}"
    );
    assert!(pending_updates(&mut rx).is_empty());
    let state = get_json(&master, "/master/state").await;
    let tasks = state["frameworks"][0]["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["id"], "t1");
    assert_eq!(tasks[0]["state"], "TASK_RUNNING");
    assert_eq!(state["slaves"][0]["used_resources"]["cpus"], 1.0);
    assert_eq!(
        state["frameworks"][0]["completed_tasks"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(inner.list("/mesos/tasks/").unwrap().len(), 1);
    master.shutdown();
}

#[tokio::test]
async fn terminal_states_that_cannot_be_stored_are_refused() {
    let rec = Arc::new(Recorder::default());
    let (master, faulty, inner) = faulty_master(rec.clone());
    register(&master, agent_info("a1", 4.0, 4096.0), vec![]);
    let sub = master.subscribe(framework("marathon")).unwrap();
    let fid = sub.framework_id.clone();
    let mut rx = sub.events;
    let offer = next_offers(&mut rx).await.remove(0);
    let t = task("t1", &offer.agent_id, 1.0, 128.0);
    accept(&master, &fid, &offer, vec![t.clone()]);
    master.status_update(running(&t)).unwrap();
    let _ = pending_updates(&mut rx);

    // A terminal update: refused (the agent resends it), not forwarded, the task stays.
    faulty.set_failing(true);
    let mut finished = running(&t);
    finished.state = TaskState::Finished;
    finished.uuid = "u-2".into();
    let refused = master.status_update(finished.clone());
    assert!(
        matches!(refused, Err(dcos_types::MasterError::Unavailable(_))),
        "{refused:?}"
    );
    assert!(pending_updates(&mut rx).is_empty());
    let state = get_json(&master, "/master/state").await;
    assert_eq!(state["frameworks"][0]["tasks"][0]["state"], "TASK_RUNNING");
    assert_eq!(state["slaves"][0]["used_resources"]["cpus"], 1.0);

    // A teardown: refused, the framework and its task stay, no shutdown is sent.
    assert!(master.teardown(&fid).is_err());
    let state = get_json(&master, "/master/state").await;
    assert_eq!(state["frameworks"][0]["tasks"][0]["id"], "t1");
    assert_eq!(state["completed_frameworks"].as_array().unwrap().len(), 0);
    assert!(!rec
        .sent
        .lock()
        .unwrap()
        .iter()
        .any(|(_, m)| matches!(m, ToAgent::ShutdownFramework(_))));
    assert!(master
        .call(&fid, SchedulerCall::Reconcile { tasks: vec![] })
        .is_ok());
    let _ = pending_updates(&mut rx);

    // The agent resends once the store works: the update goes through.
    faulty.set_failing(false);
    master.status_update(finished).unwrap();
    let s = next_update(&mut rx).await;
    assert_eq!(s.state, TaskState::Finished);
    assert!(inner.list("/mesos/tasks/").unwrap().is_empty());
    let state = get_json(&master, "/master/state").await;
    assert_eq!(state["slaves"][0]["used_resources"]["cpus"], 0.0);

    // A terminal task kept for its acknowledgement (reported at re-registration): an
    // acknowledgement that cannot be stored is refused and not forwarded to the agent.
    let mut info = task("t3", &"a1".into(), 1.0, 128.0);
    info.framework_id = Some(fid.clone());
    let mut failed = running(&info);
    failed.state = TaskState::Failed;
    failed.framework_id = Some(fid.clone());
    failed.uuid = "u-3".into();
    register(
        &master,
        agent_info("a1", 4.0, 4096.0),
        vec![AgentTask {
            info: info.clone(),
            status: failed,
        }],
    );
    let acks_before = acks(&rec);
    faulty.set_failing(true);
    let ack = SchedulerCall::Acknowledge {
        agent_id: "a1".into(),
        task_id: "t3".into(),
        uuid: "u-3".into(),
    };
    assert!(master.call(&fid, ack.clone()).is_err());
    assert_eq!(acks(&rec), acks_before);
    let state = get_json(&master, "/master/state").await;
    assert_eq!(state["frameworks"][0]["tasks"][0]["id"], "t3");
    faulty.set_failing(false);
    master.call(&fid, ack).unwrap();
    assert_eq!(acks(&rec), acks_before + 1);
    master.shutdown();
}

#[tokio::test]
async fn agent_removal_that_cannot_be_stored_waits_for_the_store() {
    let inner: SharedStore = Arc::new(EmbeddedStore::in_memory());
    let faulty = FaultyStore::new(inner.clone());
    let store: SharedStore = faulty.clone();
    let cfg = MasterConfig {
        agent_removal_timeout: Duration::from_millis(100),
        ..config()
    };
    let master = Master::start(cfg, store, Arc::new(Recorder::default())).unwrap();
    register(&master, agent_info("a1", 2.0, 1024.0), vec![]);
    let sub = master.subscribe(framework("f")).unwrap();
    let fid = sub.framework_id.clone();
    let mut rx = sub.events;
    let offer = next_offers(&mut rx).await.remove(0);
    let t = task("t1", &offer.agent_id, 1.0, 64.0);
    accept(&master, &fid, &offer, vec![t.clone()]);
    master.status_update(running(&t)).unwrap();
    faulty.set_failing(true);
    // Unreachable is reported (nothing is stored for it); removal is not.
    loop {
        if next_update(&mut rx).await.state == TaskState::Unreachable {
            break;
        }
    }
    // Removal is past due: the timer loop tries it again and again.
    for _ in 0..200 {
        if faulty.refused() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = pending_updates(&mut rx);
    let state = get_json(&master, "/master/state").await;
    assert_eq!(state["slaves"].as_array().unwrap().len(), 1);
    assert_eq!(
        state["frameworks"][0]["unreachable_tasks"][0]["state"],
        "TASK_UNREACHABLE"
    );
    assert_eq!(inner.list("/mesos/agents/").unwrap().len(), 1);
    // Once the store works, the removal goes through.
    faulty.set_failing(false);
    loop {
        match next_event(&mut rx).await {
            SchedulerEvent::AgentLost(a) => {
                assert_eq!(a.as_str(), "a1");
                break;
            }
            SchedulerEvent::Update(s) => assert_ne!(s.state, TaskState::Unreachable),
            _ => {}
        }
    }
    assert!(inner.list("/mesos/agents/").unwrap().is_empty());
    master.shutdown();
}

// ---- the internal credential -----------------------------------------------------------------

/// An HTTP server that records the internal-token header of every request.
async fn header_recorder() -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let s = s.clone();
        async move {
            let token = headers
                .get(dcos_types::INTERNAL_TOKEN_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            s.lock().unwrap().push(token);
            StatusCode::ACCEPTED
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn internal_token_is_sent_on_every_call_out() {
    let (url, seen) = header_recorder().await;
    let kill = || {
        ToAgent::Kill(dcos_types::protocol::KillTask {
            task_id: "t1".into(),
            grace_period_seconds: None,
        })
    };
    let with = HttpTransport::with_internal_token(Some("s3cret")).unwrap();
    with.send(&"a1".into(), &url, kill()).await.unwrap();
    let without = HttpTransport::new();
    without.send(&"a1".into(), &url, kill()).await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![Some("s3cret".to_string()), None]
    );
    assert!(HttpTransport::with_internal_token(Some("bad\ntoken")).is_err());
    let cfg = MasterConfig {
        internal_token: Some("s3cret".into()),
        ..config()
    };
    assert!(
        !format!("{cfg:?}").contains("s3cret"),
        "the token is logged"
    );

    // The master's task log proxy calls the task's agent with the token.
    seen.lock().unwrap().clear();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let store: SharedStore = Arc::new(EmbeddedStore::in_memory());
    let master = Master::start(cfg, store, Arc::new(Recorder::default())).unwrap();
    let mut info = agent_info("a1", 2.0, 1024.0);
    info.port = port;
    register(&master, info, vec![]);
    let sub = master.subscribe(framework("f")).unwrap();
    let fid = sub.framework_id.clone();
    let mut rx = sub.events;
    let offer = next_offers(&mut rx).await.remove(0);
    accept(
        &master,
        &fid,
        &offer,
        vec![task("t1", &offer.agent_id, 1.0, 64.0)],
    );
    let resp = router(master.clone())
        .oneshot(
            Request::get("/system/v1/logs/v2/task/t1/file/stdout")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(*seen.lock().unwrap(), vec![Some("s3cret".to_string())]);
    master.shutdown();
}

/// A late non-terminal update, resent by an agent after the task's terminal state reached the
/// master (e.g. across an agent restart), is acknowledged to the agent: its update queue is
/// ordered, and an update nobody acknowledges would hold back the task's later ones forever.
#[tokio::test]
async fn a_stale_update_is_acknowledged_to_the_agent() {
    let rec = Arc::new(Recorder::default());
    let store: SharedStore = Arc::new(EmbeddedStore::in_memory());
    let master = Master::start(config(), store, rec.clone()).unwrap();
    register(&master, agent_info("a1", 4.0, 4096.0), vec![]);
    let sub = master.subscribe(framework("marathon")).unwrap();
    let fid = sub.framework_id.clone();
    let mut rx = sub.events;
    let offer = next_offers(&mut rx).await.remove(0);
    let t = task("t1", &offer.agent_id, 1.0, 64.0);
    accept(&master, &fid, &offer, vec![t.clone()]);
    let mut finished = running(&t);
    finished.state = TaskState::Finished;
    finished.uuid = "u-2".into();
    master.status_update(finished).unwrap();
    assert_eq!(next_update(&mut rx).await.state, TaskState::Finished);
    let before = acks(&rec);
    // The RUNNING update the agent never got an acknowledgement for arrives late.
    master.status_update(running(&t)).unwrap();
    let acked: Vec<String> = rec
        .sent
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(_, m)| match m {
            ToAgent::Ack(a) => Some(a.uuid.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(acks(&rec), before + 1, "{acked:?}");
    assert_eq!(acked.last().map(String::as_str), Some("u-1"));
    assert!(pending_updates(&mut rx).is_empty(), "not forwarded");
}
