//! Command implementations.

pub mod cluster;
pub mod endpoints;
pub mod job;
pub mod marathon;
pub mod mesos;
pub mod package;

use std::io::{BufRead, IsTerminal, Write};

use crate::client::Api;
use crate::config::{self, ConfigDir, Target};
use crate::error::{CliError, Result};
use crate::{Command, NodeCmd, ServiceCmd, TaskCmd};

/// The configured target and an API client for it.
pub struct Ctx {
    pub dir: ConfigDir,
    pub target: Target,
    pub api: Api,
}

impl Ctx {
    pub fn load() -> Result<Self> {
        let dir = ConfigDir::from_env()?;
        let target = config::current(&dir)?;
        let api = Api::new(&target.url, target.token.clone())?;
        Ok(Self { dir, target, api })
    }
}

pub fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Cluster(c) => cluster::cluster(c),
        Command::Auth(c) => cluster::auth(c),
        Command::Package(c) => package::run(&Ctx::load()?, c),
        Command::Marathon(c) => marathon::run(&Ctx::load()?, c),
        Command::Job(c) => job::run(&Ctx::load()?, c),
        Command::Node(a) => {
            let json = match a.command {
                Some(NodeCmd::List { json }) => json || a.json,
                None => a.json,
            };
            mesos::node_list(&Ctx::load()?, json)
        }
        Command::Task(a) => {
            let ctx = Ctx::load()?;
            match a.command {
                Some(TaskCmd::List {
                    filter,
                    completed,
                    json,
                }) => mesos::task_list(
                    &ctx,
                    filter.or(a.filter).as_deref(),
                    completed || a.completed,
                    json || a.json,
                ),
                Some(TaskCmd::Log {
                    task,
                    file,
                    follow,
                    lines,
                    completed,
                }) => mesos::task_log(&ctx, &task, &file, follow, lines, completed),
                None => mesos::task_list(&ctx, a.filter.as_deref(), a.completed, a.json),
            }
        }
        Command::Service(a) => {
            if let Some(ServiceCmd::Endpoints { app_id, json }) = &a.command {
                return endpoints::run(&Ctx::load()?, app_id, *json || a.json);
            }
            let (inactive, completed, json) = match a.command {
                Some(ServiceCmd::List {
                    inactive,
                    completed,
                    json,
                }) => (
                    inactive || a.inactive,
                    completed || a.completed,
                    json || a.json,
                ),
                Some(ServiceCmd::Endpoints { .. }) | None => (a.inactive, a.completed, a.json),
            };
            mesos::service_list(&Ctx::load()?, inactive, completed, json)
        }
    }
}

/// Asks a yes/no question on a terminal; without one, refuses with a hint to pass `--yes`.
pub fn confirm(question: &str, what: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            format!("{what} needs confirmation and no terminal is attached"),
            "pass --yes to confirm non-interactively",
        ));
    }
    eprint!("{question} [yes/no] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::failed(format!("cannot read the answer: {e}")))?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
