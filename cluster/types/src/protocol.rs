//! The master ⇄ agent wire protocol (HTTP + JSON). See `docs/cluster.md`.
//!
//! Agent → master (on the master's HTTP port):
//! * `POST /api/agent/v1/register` [`RegisterAgent`] → [`Registered`]
//! * `POST /api/agent/v1/heartbeat` [`Heartbeat`] → [`HeartbeatResponse`]
//! * `POST /api/agent/v1/status` [`StatusUpdate`] → 202
//!
//! Master → agent (on the agent's HTTP port):
//! * `POST /api/master/v1/launch` [`LaunchTasks`] → 202
//! * `POST /api/master/v1/kill` [`KillTask`] → 202
//! * `POST /api/master/v1/ack` [`AckUpdate`] → 202
//! * `POST /api/master/v1/shutdown_framework` [`ShutdownFramework`] → 202

use serde::{Deserialize, Serialize};

use crate::{AgentId, AgentInfo, FrameworkId, TaskId, TaskInfo, TaskStatus};

pub const PATH_REGISTER: &str = "/api/agent/v1/register";
pub const PATH_HEARTBEAT: &str = "/api/agent/v1/heartbeat";
pub const PATH_STATUS: &str = "/api/agent/v1/status";
pub const PATH_LAUNCH: &str = "/api/master/v1/launch";
pub const PATH_KILL: &str = "/api/master/v1/kill";
pub const PATH_ACK: &str = "/api/master/v1/ack";
pub const PATH_SHUTDOWN_FRAMEWORK: &str = "/api/master/v1/shutdown_framework";

/// A task as the agent knows it: what was launched and its latest status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentTask {
    pub info: TaskInfo,
    pub status: TaskStatus,
}

/// (Re-)registration. The agent chooses its id once and checkpoints it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegisterAgent {
    pub agent: AgentInfo,
    /// Every task the agent runs or has not yet had a terminal update acknowledged for.
    #[serde(default)]
    pub tasks: Vec<AgentTask>,
    #[serde(default)]
    pub version: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Registered {
    pub agent_id: AgentId,
    /// Changes on every master start: an agent seeing a new one re-registers.
    pub master_id: String,
    pub heartbeat_interval_seconds: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub agent_id: AgentId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    pub master_id: String,
    /// The master does not know this agent (or recovered it from the store): re-register.
    pub reregister: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusUpdate {
    pub status: TaskStatus,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LaunchTasks {
    pub framework_id: FrameworkId,
    #[serde(default)]
    pub framework_name: String,
    pub tasks: Vec<TaskInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KillTask {
    pub task_id: TaskId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AckUpdate {
    pub task_id: TaskId,
    pub uuid: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShutdownFramework {
    pub framework_id: FrameworkId,
}

/// An error body for the protocol endpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProtocolError {
    pub message: String,
}
