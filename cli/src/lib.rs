//! The `dcos` command: a DC/OS-compatible CLI that talks to the cluster's Admin Router only.
//!
//! See docs/cli.md for the command reference and exit codes.

pub mod client;
pub mod cmd;
pub mod config;
pub mod error;
pub mod output;

use clap::{Args, Parser, Subcommand};

use crate::error::{exit, CliError};

#[derive(Debug, Parser)]
#[command(
    name = "dcos",
    version,
    about = "Command line for a DC/OS-compatible cluster",
    long_about = "Command line for a DC/OS-compatible cluster.\n\nThe cluster is the attached one (`dcos cluster setup URL`), or DCOS_URL (+ DCOS_ACS_TOKEN) when set. Config lives in $DCOS_DIR (default ~/.dcos).\n\nExit codes: 0 ok, 1 error reported by the server or user error, 2 usage, 3 cluster unreachable, 4 authentication."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up, list and attach clusters
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// Log in and out
    #[command(subcommand)]
    Auth(AuthCmd),
    /// Install and manage packages from the cluster's repositories (Cosmos)
    #[command(subcommand)]
    Package(PackageCmd),
    /// Manage Marathon apps, tasks and deployments
    #[command(subcommand)]
    Marathon(MarathonCmd),
    /// Manage jobs: one-off and scheduled (Metronome)
    #[command(subcommand)]
    Job(JobCmd),
    /// Cluster nodes
    Node(NodeArgs),
    /// Tasks (all frameworks) and their sandbox logs
    Task(TaskArgs),
    /// Services (Mesos frameworks)
    Service(ServiceArgs),
}

#[derive(Debug, Clone, Args, Default)]
pub struct LoginArgs {
    /// User name (with --password) or service account id (with --private-key)
    #[arg(long)]
    pub username: Option<String>,
    /// Password; prompted for when missing and a terminal is attached
    #[arg(long, env = "DCOS_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Service-account private key (PEM): log in with an RS256 login token
    #[arg(long)]
    pub private_key: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// Configure a cluster and attach to it (logs in when the cluster has auth enabled)
    Setup {
        /// Admin Router URL, e.g. http://10.0.0.1
        url: String,
        /// Name for the cluster (default: the name the cluster reports)
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        login: LoginArgs,
    },
    /// List configured clusters (`*` marks the attached one)
    List {
        #[arg(long)]
        json: bool,
        /// Only show the attached cluster
        #[arg(long)]
        attached: bool,
    },
    /// Attach to a configured cluster by name or id
    Attach { name: String },
    /// Forget a configured cluster
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum AuthCmd {
    /// Log in to the current cluster and store the token
    Login {
        #[command(flatten)]
        login: LoginArgs,
    },
    /// Forget the stored token
    Logout,
}

#[derive(Debug, Clone, Args)]
pub struct InstallArgs {
    pub name: String,
    #[arg(long)]
    pub package_version: Option<String>,
    /// JSON file with the package's options
    #[arg(long)]
    pub options: Option<std::path::PathBuf>,
    /// Marathon app id to install as
    #[arg(long)]
    pub app_id: Option<String>,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Wait until the app's tasks are healthy (or running when there are no health checks)
    #[arg(long)]
    pub wait: bool,
    /// Seconds to wait with --wait
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Accepted for compatibility (this CLI installs no package subcommands)
    #[arg(long)]
    pub app: bool,
    #[arg(long)]
    pub cli: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PackageCmd {
    /// Search the repositories
    Search {
        query: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show a package's definition
    Describe {
        name: String,
        #[arg(long)]
        package_version: Option<String>,
        /// List every available version instead
        #[arg(long)]
        package_versions: bool,
        /// Only the options schema (config.json)
        #[arg(long)]
        config: bool,
        /// Render the Marathon app with --options (like `package render`)
        #[arg(long)]
        render: bool,
        #[arg(long)]
        options: Option<std::path::PathBuf>,
        #[arg(long)]
        app_id: Option<String>,
    },
    /// Install a package (runs its Marathon app)
    Install(InstallArgs),
    /// Uninstall a package's app(s)
    Uninstall {
        name: String,
        #[arg(long)]
        app_id: Option<String>,
        /// Uninstall every instance of the package
        #[arg(long)]
        all: bool,
        #[arg(long, short = 'y')]
        yes: bool,
        /// Accepted for compatibility
        #[arg(long)]
        app: bool,
    },
    /// List installed packages
    List {
        name: Option<String>,
        #[arg(long)]
        app_id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print the Marathon app a package would run
    Render {
        name: String,
        #[arg(long)]
        package_version: Option<String>,
        #[arg(long)]
        options: Option<std::path::PathBuf>,
        #[arg(long)]
        app_id: Option<String>,
    },
    /// Manage package repositories
    #[command(subcommand)]
    Repo(RepoCmd),
}

#[derive(Debug, Subcommand)]
pub enum RepoCmd {
    /// Add a repository (at --index, default last)
    Add {
        name: String,
        url: String,
        #[arg(long)]
        index: Option<u32>,
    },
    /// List repositories in priority order
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove repositories by name
    #[command(alias = "delete")]
    Remove {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MarathonCmd {
    /// Apps
    #[command(subcommand)]
    App(AppCmd),
    /// Tasks
    #[command(subcommand)]
    Task(MarathonTaskCmd),
    /// Deployments
    #[command(subcommand)]
    Deployment(DeploymentCmd),
    /// Marathon's /v2/info
    About,
}

#[derive(Debug, Subcommand)]
pub enum AppCmd {
    /// Add an app from a JSON file (or stdin)
    Add { file: Option<std::path::PathBuf> },
    /// List apps
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show an app's definition
    Show {
        app_id: String,
        #[arg(long)]
        app_version: Option<String>,
    },
    /// Update an app with `key=value` properties (JSON values) or a JSON document on stdin
    Update {
        app_id: String,
        properties: Vec<String>,
        #[arg(long)]
        force: bool,
    },
    /// Remove an app
    Remove {
        app_id: String,
        #[arg(long)]
        force: bool,
    },
    /// Restart an app's tasks (rolling)
    Restart {
        app_id: String,
        #[arg(long)]
        force: bool,
    },
    /// Set the number of instances
    Scale {
        app_id: String,
        instances: u32,
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MarathonTaskCmd {
    /// List Marathon tasks (optionally of one app)
    List {
        app_id: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeploymentCmd {
    /// List running deployments (optionally of one app)
    List {
        app_id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Cancel a deployment and roll its change back
    Rollback { deployment_id: String },
}

#[derive(Debug, Subcommand)]
pub enum JobCmd {
    /// List jobs with their status, schedule and last results
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a job from a JSON file (a `schedules` array in it is added too)
    Add { file: std::path::PathBuf },
    /// Show a job (with its schedules, active runs and history summary)
    Show { job_id: String },
    /// Replace a job's definition from a JSON file (its schedules are kept)
    Update { file: std::path::PathBuf },
    /// Remove a job
    Remove {
        job_id: String,
        /// Stop the job's active runs too (otherwise a job with active runs is refused)
        #[arg(long)]
        stop_current_job_runs: bool,
    },
    /// Start a run of a job now
    Run {
        job_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Stop a run (or every active run with --all)
    Kill {
        job_id: String,
        run_id: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Finished runs of a job
    History {
        job_id: String,
        /// Only the failed runs
        #[arg(long)]
        show_failures: bool,
        #[arg(long)]
        json: bool,
    },
    /// Manage a job's schedule
    #[command(subcommand)]
    Schedule(ScheduleCmd),
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCmd {
    /// Show a job's schedules
    Show {
        job_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Add a schedule from a JSON file
    Add {
        job_id: String,
        file: std::path::PathBuf,
    },
    /// Replace a schedule from a JSON file
    Update {
        job_id: String,
        file: std::path::PathBuf,
    },
    /// Remove a schedule
    Remove { job_id: String, schedule_id: String },
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    #[command(subcommand)]
    pub command: Option<NodeCmd>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum NodeCmd {
    /// List masters and agents
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct TaskArgs {
    #[command(subcommand)]
    pub command: Option<TaskCmd>,
    /// Only tasks whose id contains this text
    pub filter: Option<String>,
    #[arg(long)]
    pub completed: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TaskCmd {
    /// List tasks
    List {
        filter: Option<String>,
        /// Include finished tasks
        #[arg(long)]
        completed: bool,
        #[arg(long)]
        json: bool,
    },
    /// Print a task's sandbox file (stdout by default)
    Log {
        /// Task id (or a unique part of it)
        task: String,
        /// Sandbox file
        #[arg(default_value = "stdout")]
        file: String,
        /// Keep printing as the file grows
        #[arg(long)]
        follow: bool,
        /// Number of last lines to print
        #[arg(long, default_value_t = 10)]
        lines: usize,
        /// Also look at finished tasks
        #[arg(long)]
        completed: bool,
    },
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    #[command(subcommand)]
    pub command: Option<ServiceCmd>,
    #[arg(long)]
    pub inactive: bool,
    #[arg(long)]
    pub completed: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ServiceCmd {
    /// List services
    List {
        #[arg(long)]
        inactive: bool,
        #[arg(long)]
        completed: bool,
        #[arg(long)]
        json: bool,
    },
    /// How to reach a Marathon app: Mesos-DNS names, VIPs, edge LB, Admin Router, tasks
    Endpoints {
        /// Marathon app id, e.g. /group/web
        app_id: String,
        #[arg(long)]
        json: bool,
    },
}

/// Runs the CLI with `args`; returns the process exit code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    match cmd::dispatch(cli.command) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("{e}");
            e.exit_code()
        }
    }
}

/// Reads a JSON file given on the command line.
pub(crate) fn read_json_file(path: &std::path::Path) -> Result<serde_json::Value, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::usage(
            format!("cannot read {}: {e}", path.display()),
            "pass the path of an existing JSON file",
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        CliError::usage(
            format!("{} is not valid JSON: {e}", path.display()),
            "check the file with a JSON linter (e.g. `python3 -m json.tool FILE`)",
        )
    })
}
