//! Finding the agent's processes when no checkpoint names them, and ending those no task owns.
//!
//! Every process the agent starts for a task (and the `docker run` client of a Docker task)
//! carries two variables in its environment, set after the framework's so they cannot be
//! overridden: [`ENV_WORK_DIR`] (the agent's canonical work dir, which scopes it to this
//! agent: an `agent` and an `agent_public` on one host have different ones) and [`ENV_RUN_ID`]
//! (the id of the task's run, the last segment of its sandbox). Children inherit them. At
//! start the agent scans `/proc/*/environ`; a marked process whose run is not a live task of
//! the agent is an orphan. So are the members of the process groups and sessions an orphan
//! leads (the task's `setsid` made it their leader), whatever their environment, and (when
//! cgroups isolation is on) every process in a task cgroup of this agent whose run is not live.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

/// The agent's canonical work dir, on every task process.
pub const ENV_WORK_DIR: &str = "DCOS_AGENT_WORK_DIR";
/// The task run's id (the last segment of its sandbox), on every task process.
pub const ENV_RUN_ID: &str = "DCOS_AGENT_RUN_ID";

/// A live process found by a scan.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Proc {
    pub pid: i32,
    /// Start time (`/proc/<pid>/stat` field 22), against pid reuse.
    pub start: u64,
    pub pgid: i32,
    pub sid: i32,
    /// `Some(run id)` when marked with the scanned work dir.
    pub run_id: Option<String>,
}

struct Stat {
    zombie: bool,
    pgid: i32,
    sid: i32,
    start: u64,
}

fn stat(pid: i32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) state ppid pgrp session tty tpgid flags ... starttime(22)
    let rest = text.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = *f.first()?;
    Some(Stat {
        zombie: state == "Z" || state == "X",
        pgid: f.get(2)?.parse().ok()?,
        sid: f.get(3)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

/// `Some(run id)` (empty when absent) when the process's environment names `work_dir`.
fn marker(pid: i32, work_dir: &[u8]) -> Option<String> {
    let env = fs::read(format!("/proc/{pid}/environ")).ok()?;
    let mut dir_matches = false;
    let mut run = String::new();
    for var in env.split(|b| *b == 0) {
        if let Some(v) = strip(var, ENV_WORK_DIR) {
            dir_matches = v == work_dir;
        } else if let Some(v) = strip(var, ENV_RUN_ID) {
            run = String::from_utf8_lossy(v).into_owned();
        }
    }
    dir_matches.then_some(run)
}

fn strip<'a>(var: &'a [u8], name: &str) -> Option<&'a [u8]> {
    var.strip_prefix(name.as_bytes())?.strip_prefix(b"=")
}

fn pids() -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .collect()
}

/// The processes of this agent that belong to no run in `keep`: marked ones, the members of
/// the groups and sessions they lead, and the processes listed in `cgroup_pids` (from task
/// cgroups whose run is not kept). Never this process, its group or session, nor pid 1.
///
/// `leaders` accumulates the orphan leaders seen across scans: a member that ignores SIGTERM
/// is still found after its leader died (the kernel does not reuse a pid while a group or
/// session still bears its number).
pub(crate) fn find(
    work_dir: &Path,
    keep: &HashSet<String>,
    cgroup_pids: &[i32],
    leaders: &mut HashSet<i32>,
) -> Vec<Proc> {
    let me = std::process::id() as i32;
    let my = stat(me);
    let (my_pgid, my_sid) = my.map(|s| (s.pgid, s.sid)).unwrap_or((me, me));
    let wd = work_dir.as_os_str().as_encoded_bytes();
    let mut all = Vec::new();
    for pid in pids() {
        if pid <= 1 || pid == me {
            continue;
        }
        let Some(s) = stat(pid).filter(|s| !s.zombie) else {
            continue;
        };
        all.push(Proc {
            pid,
            start: s.start,
            pgid: s.pgid,
            sid: s.sid,
            run_id: marker(pid, wd),
        });
    }
    let orphan_marked = |p: &Proc| p.run_id.as_ref().is_some_and(|r| !keep.contains(r));
    let kept_marked = |p: &Proc| p.run_id.as_ref().is_some_and(|r| keep.contains(r));
    // Leaders: orphans whose group or session is their own (the task's setsid).
    leaders.extend(
        all.iter()
            .filter(|p| orphan_marked(p) && (p.pgid == p.pid || p.sid == p.pid))
            .filter(|p| p.pgid != my_pgid && p.sid != my_sid)
            .map(|p| p.pid),
    );
    let in_cgroup: HashSet<i32> = cgroup_pids.iter().copied().collect();
    all.into_iter()
        .filter(|p| !kept_marked(p))
        .filter(|p| p.pgid != my_pgid && p.sid != my_sid)
        .filter(|p| {
            orphan_marked(p)
                || leaders.contains(&p.pgid)
                || leaders.contains(&p.sid)
                || in_cgroup.contains(&p.pid)
        })
        .collect()
}

/// Signals each process that is still the one scanned (same start time).
pub(crate) fn signal(procs: &[Proc], sig: libc::c_int) {
    for p in procs {
        if p.pid <= 1 {
            continue;
        }
        if stat(p.pid).is_some_and(|s| !s.zombie && s.start == p.start) {
            // SAFETY: kill(2) on a pid we just checked is the process we scanned.
            unsafe {
                libc::kill(p.pid, sig);
            }
        }
    }
}
