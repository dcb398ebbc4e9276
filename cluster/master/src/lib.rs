//! Master: agent registry, DRF allocator, resource offers, Mesos-style state endpoints.
//!
//! * [`allocator`]: the pure DRF allocator (snapshot → plan).
//! * [`Master`]: applies plans; implements [`dcos_types::MasterApi`] for in-process
//!   frameworks; handles the agent protocol ([`dcos_types::protocol`]); persists agents,
//!   frameworks and tasks in a [`dcos_store::Store`].
//! * [`router`]: the HTTP API (Mesos-style state endpoints + the agent protocol).

pub mod allocator;
mod http;
mod master;
mod state;
pub mod transport;

pub use http::router;
pub use master::{Master, MasterConfig};
pub use transport::{AgentTransport, HttpTransport, SendFuture, ToAgent};
