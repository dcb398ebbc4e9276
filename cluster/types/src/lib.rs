//! Types shared by the master, the agents and the frameworks (Marathon, Metronome).
//!
//! The model is Mesos's two-level scheduling: agents register their resources with the master;
//! the master's allocator offers them to frameworks; a framework accepts an offer by launching
//! tasks on it or declines it; agents run the tasks and send status updates that the master
//! forwards to the framework, which acknowledges them.
//!
//! A framework talks to the master through [`MasterApi`] (in-process, since Marathon runs
//! inside the master): [`MasterApi::subscribe`] returns a stream of [`SchedulerEvent`]s and
//! [`MasterApi::call`] takes [`SchedulerCall`]s. Field names follow Mesos's JSON (snake_case),
//! so the types serialize directly into the shapes of `/master/state`.

pub mod ids;
pub mod protocol;
pub mod resources;

pub use resources::{PortRange, Resources};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// The role of unreserved resources.
pub const ROLE_ANY: &str = "*";
/// The role that public agents reserve all their resources for.
pub const ROLE_PUBLIC: &str = "slave_public";

/// The header that carries the cluster's internal credential on calls between components
/// (Admin Router → Marathon/Metronome/Cosmos/master/agents, Cosmos → Marathon/master, agents ↔
/// master). When auth is on, every internal port refuses a request without it; the Admin
/// Router strips it from what clients send. See docs/security.md.
pub const INTERNAL_TOKEN_HEADER: &str = "dcos-internal-token";

macro_rules! id_type {
    ($name:ident) => {
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }
    };
}

id_type!(AgentId);
id_type!(FrameworkId);
id_type!(OfferId);
id_type!(TaskId);

/// An agent attribute value (Mesos: text, scalar, ranges, set). Constraints compare text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttributeValue {
    Scalar(f64),
    Text(String),
}

impl AttributeValue {
    pub fn as_text(&self) -> String {
        match self {
            AttributeValue::Text(s) => s.clone(),
            AttributeValue::Scalar(f) => {
                if f.fract() == 0.0 && f.abs() < 1e15 {
                    format!("{}", *f as i64)
                } else {
                    f.to_string()
                }
            }
        }
    }
}

/// What an agent registers with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub id: AgentId,
    pub hostname: String,
    /// The agent's HTTP port (5051 by default).
    pub port: u16,
    /// Total resources by role: `"*"` is unreserved; a static reservation is its role
    /// (public agents register everything under `"slave_public"`).
    pub resources: BTreeMap<String, Resources>,
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeValue>,
}

impl AgentInfo {
    /// Everything the agent has, whatever the role.
    pub fn total(&self) -> Resources {
        self.resources
            .values()
            .fold(Resources::default(), |acc, r| acc.plus(r))
    }
}

/// What a framework subscribes with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrameworkInfo {
    /// Set when re-subscribing after a failover (keeps tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<FrameworkId>,
    pub name: String,
    #[serde(default = "default_user")]
    pub user: String,
    /// The roles whose resources this framework may receive. Unreserved (`"*"`) resources
    /// are offered to every framework; reserved ones only to frameworks in that role.
    #[serde(default = "default_roles")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webui_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default)]
    pub checkpoint: bool,
    /// Seconds the master keeps the framework's tasks after it disconnects.
    #[serde(default)]
    pub failover_timeout: f64,
    /// DRF weight (default 1).
    #[serde(default = "default_weight")]
    pub weight: f64,
}

fn default_user() -> String {
    "root".into()
}
fn default_roles() -> Vec<String> {
    vec![ROLE_ANY.into()]
}
fn default_weight() -> f64 {
    1.0
}

/// Resources offered to one framework on one agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    pub id: OfferId,
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub hostname: String,
    /// By role, as in [`AgentInfo::resources`].
    pub resources: BTreeMap<String, Resources>,
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeValue>,
}

impl Offer {
    pub fn total(&self) -> Resources {
        self.resources
            .values()
            .fold(Resources::default(), |acc, r| acc.plus(r))
    }
}

/// A URI the fetcher downloads into the sandbox before the task starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UriInfo {
    pub value: String,
    #[serde(default)]
    pub executable: bool,
    /// Extract archives (.tar, .tar.gz, .tgz, .zip, ...). Mesos's default is true.
    #[serde(default = "yes")]
    pub extract: bool,
    #[serde(default)]
    pub cache: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_file: Option<String>,
    /// Expected sha256 (hex) of the downloaded file, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

fn yes() -> bool {
    true
}

/// A command. `Default` is a shell command (`shell: true`), as in Mesos and as serde decodes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandInfo {
    /// A shell command (`shell: true`) or the program to exec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default = "yes")]
    pub shell: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<UriInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl Default for CommandInfo {
    fn default() -> Self {
        CommandInfo {
            value: None,
            shell: true,
            arguments: Vec::new(),
            environment: BTreeMap::new(),
            uris: Vec::new(),
            user: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    #[serde(default = "tcp")]
    pub protocol: String,
}

fn tcp() -> String {
    "tcp".into()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub container_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    /// "RW" or "RO".
    pub mode: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerInfo {
    pub image: String,
    /// "HOST", "BRIDGE", "USER", "NONE".
    #[serde(default = "host_network")]
    pub network: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub force_pull_image: bool,
    /// Extra `docker run` parameters as key/value pairs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<(String, String)>,
}

fn host_network() -> String {
    "HOST".into()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    /// "MESOS" (a process in a sandbox) or "DOCKER".
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
}

/// A health check run by the agent next to the task (Mesos-style), reported in
/// [`TaskStatus::healthy`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub kind: HealthCheckKind,
    pub grace_period_seconds: f64,
    pub interval_seconds: f64,
    pub timeout_seconds: f64,
    /// Consecutive failures after the grace period that kill the task (0: never).
    pub max_consecutive_failures: u32,
    #[serde(default)]
    pub delay_seconds: f64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum HealthCheckKind {
    /// GET `scheme://host:port{path}`; 200–399 is healthy.
    Http {
        port: u16,
        path: String,
        #[serde(default = "http_scheme")]
        scheme: String,
    },
    /// A TCP connect to `port`.
    Tcp { port: u16 },
    /// A shell command in the task's environment; exit 0 is healthy.
    Command { value: String },
}

fn http_scheme() -> String {
    "http".into()
}

/// A task to launch on an agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub task_id: TaskId,
    pub name: String,
    pub agent_id: AgentId,
    /// Filled by the master on launch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<FrameworkId>,
    /// The role the resources were taken from (`"*"` or a reservation).
    #[serde(default = "role_any")]
    pub role: String,
    pub resources: Resources,
    pub command: CommandInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// SIGTERM, then SIGKILL after this many seconds.
    #[serde(default = "default_grace")]
    pub kill_grace_period_seconds: f64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn role_any() -> String {
    ROLE_ANY.into()
}
fn default_grace() -> f64 {
    3.0
}

/// Mesos task states, serialized with their Mesos names (`TASK_RUNNING`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskState {
    #[serde(rename = "TASK_STAGING")]
    Staging,
    #[serde(rename = "TASK_STARTING")]
    Starting,
    #[serde(rename = "TASK_RUNNING")]
    Running,
    #[serde(rename = "TASK_KILLING")]
    Killing,
    #[serde(rename = "TASK_FINISHED")]
    Finished,
    #[serde(rename = "TASK_FAILED")]
    Failed,
    #[serde(rename = "TASK_KILLED")]
    Killed,
    #[serde(rename = "TASK_ERROR")]
    Error,
    #[serde(rename = "TASK_LOST")]
    Lost,
    #[serde(rename = "TASK_DROPPED")]
    Dropped,
    #[serde(rename = "TASK_UNREACHABLE")]
    Unreachable,
    #[serde(rename = "TASK_GONE")]
    Gone,
    #[serde(rename = "TASK_UNKNOWN")]
    Unknown,
}

impl TaskState {
    /// No further update will follow a terminal state.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Finished
                | TaskState::Failed
                | TaskState::Killed
                | TaskState::Error
                | TaskState::Lost
                | TaskState::Dropped
                | TaskState::Gone
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Staging => "TASK_STAGING",
            TaskState::Starting => "TASK_STARTING",
            TaskState::Running => "TASK_RUNNING",
            TaskState::Killing => "TASK_KILLING",
            TaskState::Finished => "TASK_FINISHED",
            TaskState::Failed => "TASK_FAILED",
            TaskState::Killed => "TASK_KILLED",
            TaskState::Error => "TASK_ERROR",
            TaskState::Lost => "TASK_LOST",
            TaskState::Dropped => "TASK_DROPPED",
            TaskState::Unreachable => "TASK_UNREACHABLE",
            TaskState::Gone => "TASK_GONE",
            TaskState::Unknown => "TASK_UNKNOWN",
        }
    }
}

/// A status update about one task. Delivered at least once: the agent resends it until the
/// framework's acknowledgement of `uuid` reaches it through the master.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub task_id: TaskId,
    pub agent_id: AgentId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework_id: Option<FrameworkId>,
    pub state: TaskState,
    /// Human-readable reason, e.g. "Failed to fetch http://…: 404 Not Found".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Mesos reason code, e.g. "REASON_COMMAND_EXECUTOR_FAILED", "REASON_AGENT_REMOVED".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// "SOURCE_EXECUTOR", "SOURCE_AGENT" or "SOURCE_MASTER".
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// Seconds since the Unix epoch.
    pub timestamp: f64,
    /// Identifies this update for acknowledgement. Empty for master-generated updates that
    /// need none (reconciliation).
    #[serde(default)]
    pub uuid: String,
}

/// Refuse this agent's resources for a while after a decline.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Filters {
    pub refuse_seconds: f64,
}

impl Default for Filters {
    fn default() -> Self {
        Filters {
            refuse_seconds: 5.0,
        }
    }
}

/// What a framework asks of the master.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SchedulerCall {
    /// Launch `tasks` on the accepted offers (all on the same agent); the rest of the offered
    /// resources return to the pool, refused to this framework per `filters`.
    Accept {
        offer_ids: Vec<OfferId>,
        tasks: Vec<TaskInfo>,
        filters: Filters,
    },
    Decline {
        offer_ids: Vec<OfferId>,
        filters: Filters,
    },
    /// Clear every filter and resume offers.
    Revive,
    /// Stop sending offers until the next Revive.
    Suppress,
    Kill {
        task_id: TaskId,
        agent_id: Option<AgentId>,
        /// Overrides the task's kill grace period.
        grace_period_seconds: Option<f64>,
    },
    Acknowledge {
        agent_id: AgentId,
        task_id: TaskId,
        uuid: String,
    },
    /// Ask for the latest state of these tasks (all of the framework's when empty); answered
    /// with `Update` events whose `uuid` is empty.
    Reconcile {
        tasks: Vec<(TaskId, Option<AgentId>)>,
    },
    /// Unregister: kill every task, forget the framework.
    Teardown,
}

/// What the master tells a framework.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SchedulerEvent {
    Subscribed {
        framework_id: FrameworkId,
    },
    Offers(Vec<Offer>),
    Rescind(OfferId),
    Update(TaskStatus),
    /// The agent is gone (removed after being unreachable too long).
    AgentLost(AgentId),
    Error(String),
}

#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("unknown framework {0}")]
    UnknownFramework(FrameworkId),
    #[error("offer {0} is no longer valid")]
    InvalidOffer(OfferId),
    #[error("invalid call: {0}")]
    Invalid(String),
    #[error("the master is not the leader (leader: {0:?})")]
    NotLeader(Option<String>),
    #[error("master unavailable: {0}")]
    Unavailable(String),
}

/// A subscription: the framework's id and its event stream.
pub struct Subscription {
    pub framework_id: FrameworkId,
    pub events: mpsc::UnboundedReceiver<SchedulerEvent>,
}

/// The master as frameworks see it.
pub trait MasterApi: Send + Sync {
    /// Registers (or, with `info.id` set, re-registers) a framework.
    fn subscribe(&self, info: FrameworkInfo) -> Result<Subscription, MasterError>;

    fn call(&self, framework: &FrameworkId, call: SchedulerCall) -> Result<(), MasterError>;

    /// Sends calls in order and returns the ids of the tasks whose launch failed (their
    /// `Accept` was refused, e.g. the offer was gone), for the framework to forget and plan
    /// again. Other failures are logged under `who`.
    fn send_all(
        &self,
        framework: &FrameworkId,
        calls: Vec<SchedulerCall>,
        who: &str,
    ) -> Vec<String> {
        let mut not_launched = Vec::new();
        for c in calls {
            let launched: Vec<String> = match &c {
                SchedulerCall::Accept { tasks, .. } => {
                    tasks.iter().map(|t| t.task_id.0.clone()).collect()
                }
                _ => Vec::new(),
            };
            if let Err(e) = self.call(framework, c) {
                tracing::warn!("{who}: master call failed: {e}");
                not_launched.extend(launched);
            }
        }
        not_launched
    }
}

/// Waits for a framework's next scheduler round: master events (up to `max`, drained without
/// waiting once one arrived), a `wake` or a `tick` (then `true`). When the master's event
/// stream closes it re-subscribes through `resubscribe` every 500 ms until that works.
pub async fn next_round<E: std::fmt::Display>(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<SchedulerEvent>,
    wake: &tokio::sync::Notify,
    tick: &mut tokio::time::Interval,
    max: usize,
    who: &str,
    resubscribe: impl Fn() -> Result<tokio::sync::mpsc::UnboundedReceiver<SchedulerEvent>, E>,
) -> (Vec<SchedulerEvent>, bool) {
    loop {
        let mut batch = Vec::new();
        let mut ticked = false;
        tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => batch.push(ev),
                None => {
                    tracing::warn!("{who}: master event stream closed; re-subscribing");
                    loop {
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                        match resubscribe() {
                            Ok(rx) => { *events = rx; break; }
                            Err(e) => tracing::warn!("{who}: re-subscribe failed: {e}"),
                        }
                    }
                    continue;
                }
            },
            _ = wake.notified() => {},
            _ = tick.tick() => { ticked = true; },
        }
        while batch.len() < max {
            match events.try_recv() {
                Ok(ev) => batch.push(ev),
                Err(_) => break,
            }
        }
        return (batch, ticked);
    }
}

/// Seconds since the Unix epoch, as Mesos timestamps are.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_state_names_are_mesos_names() {
        let s = serde_json::to_string(&TaskState::Running).unwrap();
        assert_eq!(s, "\"TASK_RUNNING\"");
        assert_eq!(TaskState::Unreachable.as_str(), "TASK_UNREACHABLE");
        assert!(TaskState::Failed.is_terminal());
        assert!(!TaskState::Unreachable.is_terminal());
    }

    #[test]
    fn attribute_text_forms() {
        assert_eq!(AttributeValue::Scalar(3.0).as_text(), "3");
        assert_eq!(AttributeValue::Text("rack-1".into()).as_text(), "rack-1");
    }
}
