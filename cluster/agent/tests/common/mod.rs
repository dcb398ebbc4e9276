//! A real master and real agents on loopback, and a minimal framework driving them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dcos_agent::{Agent, AgentConfig, Isolation};
use dcos_master::{HttpTransport, Master, MasterConfig};
use dcos_store::{EmbeddedStore, SharedStore};
use dcos_types::{
    AgentId, CommandInfo, Filters, FrameworkId, FrameworkInfo, MasterApi, Offer, Resources,
    SchedulerCall, SchedulerEvent, TaskId, TaskInfo, TaskState, TaskStatus,
};
use tokio::sync::mpsc::UnboundedReceiver;

pub struct Cluster {
    pub master: Master,
    pub master_url: String,
}

pub async fn serve(router: axum::Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    port
}

pub async fn start_master() -> Cluster {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let store: SharedStore = Arc::new(EmbeddedStore::in_memory());
    let config = MasterConfig {
        port,
        allocation_interval: Duration::from_millis(50),
        heartbeat_interval: Duration::from_millis(200),
        ..MasterConfig::default()
    };
    let master = Master::start(config, store, Arc::new(HttpTransport::new())).unwrap();
    let app = dcos_master::router(master.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Cluster {
        master,
        master_url: format!("http://127.0.0.1:{port}"),
    }
}

/// Starts an agent on a free port; returns it and its base URL.
pub async fn start_agent(
    master_url: &str,
    work_dir: &Path,
    isolation: Isolation,
    cpus: f64,
) -> (Agent, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = AgentConfig::new(work_dir, master_url);
    config.port = port;
    config.resources =
        Some(Resources::new(cpus, 64.0 * 1024.0, 10000.0).with_ports([(41000, 41999)]));
    config.isolation = isolation;
    config.status_retry_interval = Duration::from_millis(500);
    config.register_retry_interval = Duration::from_millis(100);
    // Benchmarks: the cost of fsync, measured by comparison.
    config.fsync = std::env::var_os("DCOS_BENCH_NO_FSYNC").is_none();
    let agent = Agent::start(config).unwrap();
    let app = dcos_agent::router(agent.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (agent, format!("http://127.0.0.1:{port}"))
}

pub struct Framework {
    pub master: Master,
    pub id: FrameworkId,
    pub rx: UnboundedReceiver<SchedulerEvent>,
    pub offers: Vec<Offer>,
    pub statuses: BTreeMap<TaskId, TaskStatus>,
}

impl Framework {
    pub fn new(master: &Master) -> Framework {
        let info = FrameworkInfo {
            id: None,
            name: "test-framework".into(),
            user: "root".into(),
            roles: vec!["*".into()],
            principal: None,
            webui_url: None,
            hostname: None,
            checkpoint: true,
            failover_timeout: 0.0,
            weight: 1.0,
        };
        let sub = master.subscribe(info).unwrap();
        Framework {
            master: master.clone(),
            id: sub.framework_id,
            rx: sub.events,
            offers: Vec::new(),
            statuses: BTreeMap::new(),
        }
    }

    /// Handles one event: keeps offers, records and acknowledges updates.
    pub async fn pump(&mut self, wait: Duration) -> bool {
        let ev = match tokio::time::timeout(wait, self.rx.recv()).await {
            Ok(Some(ev)) => ev,
            _ => return false,
        };
        match ev {
            SchedulerEvent::Offers(o) => self.offers.extend(o),
            SchedulerEvent::Rescind(id) => self.offers.retain(|o| o.id != id),
            SchedulerEvent::Update(s) => {
                if !s.uuid.is_empty() {
                    let _ = self.master.call(
                        &self.id,
                        SchedulerCall::Acknowledge {
                            agent_id: s.agent_id.clone(),
                            task_id: s.task_id.clone(),
                            uuid: s.uuid.clone(),
                        },
                    );
                }
                self.statuses.insert(s.task_id.clone(), s);
            }
            _ => {}
        }
        true
    }

    /// Waits for an offer and launches `tasks` (their agent id is filled in) on it.
    /// An offer rescinded meanwhile (its event not pumped yet) is dropped and the next used.
    pub async fn launch(&mut self, mut tasks: Vec<TaskInfo>) -> AgentId {
        for _ in 0..400 {
            for _ in 0..400 {
                if !self.offers.is_empty() {
                    break;
                }
                self.pump(Duration::from_millis(50)).await;
            }
            let offer = self.offers.remove(0);
            for t in &mut tasks {
                t.agent_id = offer.agent_id.clone();
            }
            let r = self.master.call(
                &self.id,
                SchedulerCall::Accept {
                    offer_ids: vec![offer.id.clone()],
                    tasks: tasks.clone(),
                    filters: Filters {
                        refuse_seconds: 0.0,
                    },
                },
            );
            match r {
                Ok(_) => return offer.agent_id,
                Err(dcos_types::MasterError::InvalidOffer(_)) => continue,
                Err(e) => panic!("accept: {e:?}"),
            }
        }
        panic!("no valid offer");
    }

    /// Waits until `task` reaches a state matching `pred` (or 30 s pass).
    pub async fn wait_for(&mut self, task: &str, pred: impl Fn(&TaskStatus) -> bool) -> TaskStatus {
        let id = TaskId::from(task);
        for _ in 0..600 {
            if let Some(s) = self.statuses.get(&id) {
                if pred(s) {
                    return s.clone();
                }
            }
            self.pump(Duration::from_millis(50)).await;
        }
        panic!(
            "task {task} did not reach the expected state; last: {:?}",
            self.statuses.get(&id)
        );
    }

    pub async fn wait_state(&mut self, task: &str, state: TaskState) -> TaskStatus {
        self.wait_for(task, |s| s.state == state).await
    }

    pub fn kill(&self, task: &str, grace: Option<f64>) {
        self.master
            .call(
                &self.id,
                SchedulerCall::Kill {
                    task_id: task.into(),
                    agent_id: None,
                    grace_period_seconds: grace,
                },
            )
            .unwrap();
    }
}

pub fn shell_task(id: &str, cmd: &str) -> TaskInfo {
    TaskInfo {
        task_id: id.into(),
        name: id.into(),
        agent_id: "".into(),
        framework_id: None,
        role: "*".into(),
        resources: Resources::new(0.01, 32.0, 0.0),
        command: CommandInfo {
            value: Some(cmd.into()),
            ..CommandInfo::default()
        },
        container: None,
        health_check: None,
        kill_grace_period_seconds: 2.0,
        labels: BTreeMap::new(),
    }
}
