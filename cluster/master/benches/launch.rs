//! Launch throughput with simulated agents: 10,000 instances over 100 agents. The agents are
//! an [`AgentTransport`] that answers every launch with TASK_RUNNING (no processes); the
//! master, its allocator, offers, accept validation, the store (embedded, fsync off) and the
//! status-update/acknowledgement path are the real ones.
//!
//! `cargo bench -p dcos-master --bench launch`

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dcos_master::{AgentTransport, Master, MasterConfig, SendFuture, ToAgent};
use dcos_store::{EmbeddedStore, Options, SharedStore};
use dcos_types::protocol::RegisterAgent;
use dcos_types::{
    AgentId, AgentInfo, CommandInfo, Filters, FrameworkInfo, MasterApi, Resources, SchedulerCall,
    SchedulerEvent, TaskInfo, TaskState, TaskStatus,
};

const AGENTS: usize = 100;
const INSTANCES: usize = 10_000;

struct SimAgents {
    master: OnceLock<Master>,
}

impl AgentTransport for SimAgents {
    fn send(&self, agent_id: &AgentId, _url: &str, msg: ToAgent) -> SendFuture {
        if let (ToAgent::Launch(l), Some(m)) = (msg, self.master.get()) {
            let m = m.clone();
            let agent = agent_id.clone();
            tokio::spawn(async move {
                for t in l.tasks {
                    let _ = m.status_update(TaskStatus {
                        task_id: t.task_id,
                        agent_id: agent.clone(),
                        framework_id: Some(l.framework_id.clone()),
                        state: TaskState::Running,
                        message: None,
                        reason: None,
                        source: "SOURCE_EXECUTOR".into(),
                        healthy: None,
                        timestamp: 0.0,
                        uuid: "u".into(),
                    });
                }
            });
        }
        Box::pin(async { Ok(()) })
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: SharedStore = Arc::new(
        EmbeddedStore::open_with(
            dir.path(),
            Options {
                fsync: false,
                ..Options::default()
            },
        )
        .expect("store"),
    );
    let sim = Arc::new(SimAgents {
        master: OnceLock::new(),
    });
    let config = MasterConfig {
        allocation_interval: Duration::from_millis(10),
        ..MasterConfig::default()
    };
    let master = Master::start(config, store, sim.clone()).expect("master");
    let _ = sim.master.set(master.clone());
    for i in 0..AGENTS {
        let mut resources = BTreeMap::new();
        resources.insert(
            "*".to_string(),
            Resources::new(16.0, 65536.0, 100_000.0).with_ports([(31000, 32000)]),
        );
        master
            .register_agent(RegisterAgent {
                agent: AgentInfo {
                    id: format!("sim-{i:03}").into(),
                    hostname: format!("10.0.{}.{}", i / 250, i % 250),
                    port: 5051,
                    resources,
                    attributes: BTreeMap::new(),
                },
                tasks: vec![],
                version: "sim".into(),
            })
            .expect("register");
    }
    let info = FrameworkInfo {
        id: None,
        name: "bench".into(),
        user: "root".into(),
        roles: vec!["*".into()],
        principal: None,
        webui_url: None,
        hostname: None,
        checkpoint: true,
        failover_timeout: 0.0,
        weight: 1.0,
    };
    let sub = master.subscribe(info).expect("subscribe");
    let fid = sub.framework_id.clone();
    let mut rx = sub.events;
    let task = Resources::new(0.1, 32.0, 0.0);
    let mut next = 0usize;
    let mut running = 0usize;
    let start = Instant::now();
    while running < INSTANCES {
        let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await else {
            panic!("stalled at {running} running");
        };
        match ev {
            SchedulerEvent::Offers(offers) => {
                for o in offers {
                    let mut left = o.total();
                    let mut tasks = Vec::new();
                    while next < INSTANCES && left.contains(&task) && tasks.len() < 100 {
                        left = left.minus(&task);
                        tasks.push(TaskInfo {
                            task_id: format!("app.{next}").into(),
                            name: "app".into(),
                            agent_id: o.agent_id.clone(),
                            framework_id: None,
                            role: "*".into(),
                            resources: task.clone(),
                            command: CommandInfo {
                                value: Some("sleep 1000".into()),
                                ..CommandInfo::default()
                            },
                            container: None,
                            health_check: None,
                            kill_grace_period_seconds: 3.0,
                            labels: BTreeMap::new(),
                        });
                        next += 1;
                    }
                    let call = if tasks.is_empty() {
                        SchedulerCall::Decline {
                            offer_ids: vec![o.id],
                            filters: Filters {
                                refuse_seconds: 60.0,
                            },
                        }
                    } else {
                        SchedulerCall::Accept {
                            offer_ids: vec![o.id],
                            tasks,
                            filters: Filters {
                                refuse_seconds: 0.0,
                            },
                        }
                    };
                    let _ = master.call(&fid, call);
                }
            }
            SchedulerEvent::Update(s) if s.state == TaskState::Running => {
                running += 1;
                let _ = master.call(
                    &fid,
                    SchedulerCall::Acknowledge {
                        agent_id: s.agent_id,
                        task_id: s.task_id,
                        uuid: s.uuid,
                    },
                );
            }
            _ => {}
        }
    }
    let elapsed = start.elapsed();
    println!(
        "launch: {INSTANCES} instances over {AGENTS} simulated agents RUNNING in {:.3} s = {:.0} launches/s",
        elapsed.as_secs_f64(),
        INSTANCES as f64 / elapsed.as_secs_f64()
    );
    master.shutdown();
}
