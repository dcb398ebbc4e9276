//! Agent: runs tasks in sandboxes, fetcher, isolation, checkpointing, status updates.
//!
//! [`Agent::start`] recovers checkpointed tasks (re-attaching to processes that survived an
//! agent restart), registers with the master and heartbeats; [`router`] serves the agent's
//! HTTP API (`/state`, `/files/*`, and the master ⇄ agent protocol of
//! [`dcos_types::protocol`]).

mod agent;
pub mod cgroups;
pub mod fetcher;
mod health;
mod http;
mod logs;
mod orphans;

pub use agent::{
    Agent, AgentConfig, AgentError, Isolation, DEFAULT_PORTS, DEFAULT_PUBLIC_PORTS, LABEL_AGENT_ID,
    LABEL_RUN_ID, LABEL_WORK_DIR,
};
pub use http::router;
pub use orphans::{ENV_RUN_ID, ENV_WORK_DIR};
