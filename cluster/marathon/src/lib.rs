//! The Marathon-compatible app scheduler and its v2 API.
//!
//! Layout (decision logic apart from I/O, as in Nomad's scheduler):
//! * [`model`] — the app definition: parsing (unknown fields kept), normalization, JSON;
//! * [`validate`] — every violation in Marathon's 422 shape;
//! * [`constraints`] — placement constraints and the `label=` selector;
//! * [`planner`] — pure: an app's target + its tasks → launch N / kill these (rolling upgrades);
//! * [`matcher`] — pure: offers + launch queue → placements, with reject reasons per app;
//! * [`state`] — in-memory state, transitions, store layout;
//! * [`scheduler`] — the framework loop around them (master events, store, calls);
//! * `durable` — the one commit-or-rollback path: nothing acts on a change that is not stored;
//! * [`api`] — the HTTP API (`/v2/*`, `/ping`, `/metrics`);
//! * [`sim`] — a simulated master for tests and benchmarks.
//!
//! ```no_run
//! # async fn f(master: std::sync::Arc<dyn dcos_types::MasterApi>, store: std::sync::Arc<dyn dcos_store::Store>) {
//! let marathon = dcos_marathon::Marathon::start(master, store, Default::default()).unwrap();
//! let app = marathon.router(); // mount under /service/marathon/ and on the Marathon port
//! # }
//! ```

pub mod api;
pub mod constraints;
mod durable;
pub mod events;
pub mod matcher;
pub mod model;
pub mod planner;
pub mod readiness;
mod render;
pub mod scheduler;
pub mod sim;
pub mod state;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use dcos_store::Store;
use dcos_types::MasterApi;

pub use scheduler::StartError;

/// Marathon settings (`marathon_config` in `/v2/info`).
#[derive(Clone, Debug)]
pub struct MarathonConfig {
    /// Host name reported as leader and in the framework info.
    pub hostname: String,
    /// The port Marathon's API is served on (reported, not bound here).
    pub http_port: u16,
    /// The master URL reported in `/v2/info`.
    pub master: String,
    pub framework_name: String,
    /// Roles to receive offers for: unreserved and public agents'.
    pub roles: Vec<String>,
    pub failover_timeout_seconds: f64,
    /// Filter for offers declined because nothing is waiting (Marathon's
    /// `--decline_offer_duration`).
    pub decline_refuse_seconds: f64,
    /// Filter for offers declined because nothing waiting fits them.
    pub unfit_refuse_seconds: f64,
    /// Filter on the rest of an accepted offer.
    pub accept_refuse_seconds: f64,
    /// Launches per offer (Marathon's `--max_instances_per_offer`).
    pub max_tasks_per_offer: usize,
    /// Service port range (`--local_port_min`, `--local_port_max`).
    pub local_port_min: i64,
    pub local_port_max: i64,
    /// Versions kept per app (`--zk_max_versions`).
    pub max_versions: usize,
    /// Largest accepted request body; larger gets 413.
    pub max_body_bytes: usize,
    /// Re-plan period (backoff expiry, unreachable timers, kill retries).
    pub tick: Duration,
    /// Re-send a kill not confirmed after this long.
    pub kill_retry_seconds: f64,
    /// Kill (and replace) a task not RUNNING this long after launch (`--task_launch_timeout`).
    pub task_launch_timeout_seconds: f64,
    /// Implicit reconciliation with the master this often (`--reconciliation_interval`).
    pub reconciliation_interval_seconds: f64,
}

impl Default for MarathonConfig {
    fn default() -> Self {
        MarathonConfig {
            hostname: "localhost".into(),
            http_port: 8080,
            master: "in-process".into(),
            framework_name: "marathon".into(),
            roles: vec![dcos_types::ROLE_ANY.into(), dcos_types::ROLE_PUBLIC.into()],
            failover_timeout_seconds: 7.0 * 24.0 * 3600.0,
            decline_refuse_seconds: 120.0,
            unfit_refuse_seconds: 5.0,
            accept_refuse_seconds: 1.0,
            max_tasks_per_offer: 100,
            local_port_min: 10000,
            local_port_max: 20000,
            max_versions: 50,
            max_body_bytes: 4 << 20,
            tick: Duration::from_secs(1),
            kill_retry_seconds: 30.0,
            task_launch_timeout_seconds: 300.0,
            reconciliation_interval_seconds: 600.0,
        }
    }
}

/// A running Marathon: the scheduler task and the shared state behind its API.
#[derive(Clone)]
pub struct Marathon {
    core: Arc<scheduler::Core>,
}

impl Marathon {
    /// Recovers apps, deployments and tasks from the store, subscribes to the master
    /// (re-subscribing with the stored framework id) and spawns the scheduler on the current
    /// tokio runtime.
    pub fn start(
        master: Arc<dyn MasterApi>,
        store: Arc<dyn Store>,
        config: MarathonConfig,
    ) -> Result<Marathon, StartError> {
        let core = Arc::new(scheduler::Core::new(master, store, config));
        core.recover()?;
        let rx = core.subscribe()?;
        let c = core.clone();
        tokio::spawn(async move { c.run(rx).await });
        Ok(Marathon { core })
    }

    /// The HTTP API (`/v2/*`, `/ping`, `/metrics`) at the root of the returned router.
    pub fn router(&self) -> axum::Router {
        api::router(self.core.clone())
    }

    /// The framework id the master gave us.
    pub fn framework_id(&self) -> Option<String> {
        self.core.state.lock().framework_id.clone()
    }

    /// For health (`/system/health/v1`): `Err` says why Marathon cannot make changes durable
    /// now — the store refuses writes, or the last commit failed and none has succeeded
    /// since (Marathon then launches nothing and answers writes with 503).
    pub fn store_writable(&self) -> Result<(), String> {
        if let Err(e) = self.core.store.writable() {
            return Err(format!(
                "the store refuses writes: {}",
                durable::root_cause(&e)
            ));
        }
        match self.core.store_failure() {
            Some(cause) => Err(format!(
                "the last store commit failed and none has succeeded since: {cause}"
            )),
            None => Ok(()),
        }
    }

    /// The event bus (e.g. to forward Marathon events elsewhere).
    pub fn events(&self) -> &events::EventBus {
        &self.core.events
    }

    /// `http://host:port` of a running task of the service `name` — an app id (without the
    /// leading `/`) or a `DCOS_SERVICE_NAME` label — on the port `DCOS_SERVICE_PORT_INDEX`
    /// (default 0), as DC/OS's Admin Router resolves `/service/<name>/`. Apps with health
    /// checks only count healthy tasks; `DCOS_SERVICE_SCHEME` other than `http` is skipped.
    /// Reads the in-memory state, so it is current the moment a task becomes healthy.
    pub fn service_endpoint(&self, name: &str) -> Option<String> {
        let name = name.trim_matches('/');
        let st = self.core.state.lock();
        let by_id = st.apps.get(&format!("/{name}"));
        let entry = by_id.filter(|e| !e.deleted).or_else(|| {
            st.apps.values().find(|e| {
                !e.deleted
                    && e.app
                        .labels
                        .get("DCOS_SERVICE_NAME")
                        .is_some_and(|n| n.trim_matches('/') == name)
            })
        })?;
        let labels = &entry.app.labels;
        if labels
            .get("DCOS_SERVICE_SCHEME")
            .is_some_and(|s| s != "http")
        {
            return None;
        }
        let index: usize = labels
            .get("DCOS_SERVICE_PORT_INDEX")
            .and_then(|i| i.parse().ok())
            .unwrap_or(0);
        let checked = !entry.app.health_checks.is_empty();
        entry
            .tasks
            .values()
            .filter(|t| t.is_running() && t.kill_requested.is_none())
            .filter(|t| !checked || t.healthy == Some(true))
            .find_map(|t| {
                let port = t.ports.get(index)?;
                (!t.host.is_empty()).then(|| format!("http://{}:{port}", t.host))
            })
    }

    /// Counts of (apps, live tasks, running tasks, deployments).
    pub fn summary(&self) -> (usize, usize, usize, usize) {
        let st = self.core.state.lock();
        let apps = st.apps.values().filter(|e| !e.deleted).count();
        let tasks = st.all_tasks().count();
        let running = st.all_tasks().filter(|t| t.is_running()).count();
        (apps, tasks, running, st.deployments.len())
    }
}
