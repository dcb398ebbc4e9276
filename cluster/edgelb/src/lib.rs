//! `dcos-edgelb`: an edge load balancer for public agents, compatible with marathon-lb's
//! labels, driving a real HAProxy from Marathon's state (`/v2/apps?embed=apps.tasks`) and
//! event stream (`/v2/events`). See `docs/edgelb.md`.
//!
//! * [`model`]: the parts of Marathon's answer that matter, parsed leniently.
//! * [`config`]: the pure function apps → HAProxy configuration text ([`config::generate`]).
//! * [`haproxy`]: validate (`haproxy -c`), install, hitless reload (master-worker, SIGUSR2).
//! * [`sync`]: the loop (events → debounce → fetch → generate → apply), [`sync::EdgeLb`].

pub mod config;
pub mod haproxy;
pub mod model;
pub mod sync;

pub use config::{generate, Generated, Options, Warning};
pub use sync::{EdgeLb, EdgeLbConfig, Status};

/// Errors of the balancer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("marathon: {0}")]
    Marathon(String),
    #[error("invalid haproxy configuration: {0}")]
    InvalidConfig(String),
    #[error("haproxy: {0}")]
    Haproxy(String),
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
}
