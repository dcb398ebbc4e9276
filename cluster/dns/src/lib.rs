//! Mesos-DNS for this cluster: the authoritative `.mesos` zone built from the master's state
//! ([`records::generate`], pure), served over UDP and TCP by a hickory DNS server that
//! forwards other names to upstream resolvers ([`server`]), kept fresh by a refresher
//! ([`refresh`]), plus the Mesos-DNS HTTP API ([`http::router`]). [`DnsService`] runs it all.
//! See docs/dns.md.

pub mod http;
pub mod labels;
pub mod records;
pub mod refresh;
pub mod server;
pub mod service;
pub mod vip;

pub use records::{generate, IpSource, NamingConfig, RecordSet, Snapshot};
pub use refresh::{FnSource, RouterSource, StateSource};
pub use server::{parse_resolver, DnsServer, ServerConfig, Zone};
pub use service::{DnsOptions, DnsService};
pub use vip::{parse_vip, Vip, VipAddress, VipError};
