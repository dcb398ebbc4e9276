//! Genesis config to bootstrap bundle to node install.
//!
//! * [`NodeConfig`] — the per-node configuration `dcosd --config FILE` reads
//!   (always available; depend with `default-features = false` to get only this).
//! * With the default `cli` feature: [`genesis`] (config.yaml parsing and
//!   validation), [`bundle`] (the content-addressed bootstrap bundle and the
//!   serve dir), [`script`] (`dcos_install.sh`), [`password`] (argon2id PHC),
//!   [`health`] (postflight evaluation of `/system/health/v1`).

pub mod node_config;
pub mod secret;

#[cfg(feature = "cli")]
pub mod bundle;
#[cfg(feature = "cli")]
pub mod genesis;
#[cfg(feature = "cli")]
pub mod health;
#[cfg(feature = "cli")]
pub mod password;
#[cfg(feature = "cli")]
pub mod script;

pub use node_config::{
    AgentSettings, InstallRole, NodeConfig, NodeConfigError, Ports, Repository, StoreConfig,
    Superuser, NODE_CONFIG_FORMAT,
};
