//! Metronome (DC/OS Jobs): a framework on the master that runs one-off and cron-scheduled
//! jobs, with the Metronome v1 API.
//!
//! Layout (decision logic apart from I/O):
//! * [`cron`] — pure: cron expressions (`L`, `W`, `#`, years, time zones) and next fire times;
//! * [`model`] — job specs, schedules, runs, history: validation (Marathon's 422 shape) and JSON;
//! * [`scheduler`] — the state and its transitions (pure, driven by a clock), and the framework
//!   loop around them (master events, offers, store);
//! * [`api`] — the HTTP API (`/v1/*`, `/v0/scheduled-jobs`, `/ping`, `/info`, `/leader`, `/metrics`).
//!
//! ```no_run
//! # async fn f(master: std::sync::Arc<dyn dcos_types::MasterApi>, store: std::sync::Arc<dyn dcos_store::Store>) {
//! let metronome = dcos_metronome::Metronome::start(master, store, Default::default()).unwrap();
//! let app = metronome.router(); // mount under /service/metronome/ and on the Metronome port
//! # }
//! ```

pub mod api;
pub mod cron;
pub mod model;
pub mod scheduler;

use std::sync::Arc;
use std::time::Duration;

use dcos_store::Store;
use dcos_types::MasterApi;
use parking_lot::Mutex;

pub use scheduler::{system_clock, Clock};

#[derive(Clone, Debug)]
pub struct MetronomeConfig {
    /// Host name reported in `/info` and the framework info.
    pub hostname: String,
    /// The port the API is served on (reported, not bound here).
    pub http_port: u16,
    pub framework_name: String,
    /// Roles to receive offers for.
    pub roles: Vec<String>,
    /// Largest accepted request body; larger gets 413.
    pub max_body_bytes: usize,
    /// Scheduler period (schedules due, deadlines, retries).
    pub tick: Duration,
    /// Finished runs kept per job and outcome (`metronome.history.count`).
    pub history_count: usize,
}

impl Default for MetronomeConfig {
    fn default() -> Self {
        MetronomeConfig {
            hostname: "localhost".into(),
            http_port: 9000,
            framework_name: "metronome".into(),
            roles: vec![dcos_types::ROLE_ANY.into()],
            max_body_bytes: 1 << 20,
            tick: Duration::from_secs(1),
            history_count: 1000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot read Metronome state from the store: {0}")]
    Store(#[from] dcos_store::StoreError),
    #[error("cannot subscribe to the master: {0}")]
    Master(#[from] dcos_types::MasterError),
}

/// A running Metronome.
#[derive(Clone)]
pub struct Metronome {
    core: Arc<scheduler::Core>,
}

impl Metronome {
    /// Recovers jobs and runs from the store, subscribes to the master and spawns the
    /// scheduler on the current tokio runtime.
    pub fn start(
        master: Arc<dyn MasterApi>,
        store: Arc<dyn Store>,
        config: MetronomeConfig,
    ) -> Result<Metronome, StartError> {
        Self::start_with_clock(master, store, config, system_clock())
    }

    /// [`Metronome::start`] with a clock of its own (epoch milliseconds): tests move time to
    /// make schedules fire and deadlines pass.
    pub fn start_with_clock(
        master: Arc<dyn MasterApi>,
        store: Arc<dyn Store>,
        config: MetronomeConfig,
        clock: Clock,
    ) -> Result<Metronome, StartError> {
        let started_at = clock();
        let core = Arc::new(scheduler::Core {
            state: Mutex::new(scheduler::State::default()),
            store,
            master,
            wake: tokio::sync::Notify::new(),
            config,
            clock,
            started_at,
            commit_failed: std::sync::atomic::AtomicBool::new(false),
        });
        core.recover()?;
        let rx = core.subscribe()?;
        let c = core.clone();
        tokio::spawn(async move { c.run(rx).await });
        Ok(Metronome { core })
    }

    /// The HTTP API (`/v1/*`, `/v0/scheduled-jobs`, `/ping`, `/info`, `/leader`, `/metrics`) at
    /// the root of the returned router.
    pub fn router(&self) -> axum::Router {
        api::router(self.core.clone())
    }

    /// The framework id the master gave us.
    pub fn framework_id(&self) -> Option<String> {
        self.core.state.lock().framework_id.clone()
    }

    /// Whether Metronome can make changes durable (for health): `Err` says why not — the
    /// store refuses writes, or the last commit was refused and none succeeded since.
    pub fn store_writable(&self) -> Result<(), String> {
        self.core.store_writable()
    }

    /// Counts of (jobs, active runs).
    pub fn summary(&self) -> (usize, usize) {
        let st = self.core.state.lock();
        (st.jobs.len(), st.active_runs())
    }
}
