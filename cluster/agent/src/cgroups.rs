//! cgroups isolation (v1 or v2): cpu shares/quota, memory limit, pids limit per task.

use std::ffi::CString;
use std::fs;
use std::path::{Path, PathBuf};

use dcos_types::Resources;

const ROOT: &str = "/sys/fs/cgroup";
const PARENT: &str = "dcos";

#[derive(Clone, Debug)]
pub enum Cgroups {
    /// Controllers' hierarchy roots (`/sys/fs/cgroup/cpu`, `.../memory`, `.../pids`).
    V1 {
        cpu: PathBuf,
        memory: PathBuf,
        pids: Option<PathBuf>,
    },
    /// The unified hierarchy root.
    V2 { root: PathBuf },
}

/// A task's cgroups, made before it starts.
#[derive(Clone, Debug)]
pub struct TaskCgroup {
    /// `cgroup.procs` files to put the process in.
    pub procs: Vec<PathBuf>,
    pub dirs: Vec<PathBuf>,
}

fn probe(dir: &Path) -> bool {
    let p = dir
        .join(PARENT)
        .join(format!(".probe-{}", std::process::id()));
    if fs::create_dir_all(&p).is_err() {
        return false;
    }
    fs::remove_dir(&p).is_ok()
}

impl Cgroups {
    /// Detects writable cgroups. `Err` says why isolation is off.
    pub fn detect() -> Result<Cgroups, String> {
        let root = Path::new(ROOT);
        let v2 = root.join("cgroup.controllers");
        if v2.exists() {
            let controllers = fs::read_to_string(&v2).unwrap_or_default();
            if !controllers.contains("memory") || !controllers.contains("cpu") {
                return Err(format!(
                    "cgroup v2 at {ROOT} lacks the cpu or memory controller"
                ));
            }
            if probe(root) {
                let parent = root.join(PARENT);
                // Enable the controllers for the children of our parent group.
                let _ = fs::write(root.join("cgroup.subtree_control"), "+cpu +memory +pids");
                let _ = fs::write(parent.join("cgroup.subtree_control"), "+cpu +memory +pids");
                return Ok(Cgroups::V2 {
                    root: root.to_path_buf(),
                });
            }
            return Err(format!("cgroup v2 at {ROOT} is not writable"));
        }
        let cpu = root.join("cpu");
        let memory = root.join("memory");
        if !cpu.join("cpu.shares").exists() || !memory.join("memory.limit_in_bytes").exists() {
            return Err(format!(
                "no cgroup v1 cpu and memory controllers under {ROOT}"
            ));
        }
        if !probe(&cpu) || !probe(&memory) {
            return Err(format!("cgroups under {ROOT} are not writable"));
        }
        let pids = root.join("pids");
        let pids = (pids.join("cgroup.procs").exists() && probe(&pids)).then_some(pids);
        Ok(Cgroups::V1 { cpu, memory, pids })
    }

    /// Creates the task's cgroups with its limits.
    pub fn create(
        &self,
        name: &str,
        r: &Resources,
        pids_max: Option<u64>,
    ) -> Result<TaskCgroup, String> {
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let mut tg = TaskCgroup {
            procs: Vec::new(),
            dirs: Vec::new(),
        };
        let mk = |dir: PathBuf, tg: &mut TaskCgroup| -> Result<PathBuf, String> {
            fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
            tg.procs.push(dir.join("cgroup.procs"));
            tg.dirs.push(dir.clone());
            Ok(dir)
        };
        let write = |p: PathBuf, v: String| -> Result<(), String> {
            fs::write(&p, &v).map_err(|e| format!("write {v:?} to {}: {e}", p.display()))
        };
        match self {
            Cgroups::V1 { cpu, memory, pids } => {
                let c = mk(cpu.join(PARENT).join(&name), &mut tg)?;
                if r.cpus > 0.0 {
                    write(
                        c.join("cpu.shares"),
                        format!("{}", ((r.cpus * 1024.0) as u64).max(2)),
                    )?;
                    let _ = write(c.join("cpu.cfs_period_us"), "100000".into());
                    write(
                        c.join("cpu.cfs_quota_us"),
                        format!("{}", ((r.cpus * 100_000.0) as u64).max(1000)),
                    )?;
                }
                let m = mk(memory.join(PARENT).join(&name), &mut tg)?;
                if r.mem > 0.0 {
                    let bytes = (r.mem.max(4.0) * 1024.0 * 1024.0) as u64;
                    write(m.join("memory.limit_in_bytes"), bytes.to_string())?;
                }
                if let (Some(p), Some(max)) = (pids, pids_max) {
                    let d = mk(p.join(PARENT).join(&name), &mut tg)?;
                    write(d.join("pids.max"), max.to_string())?;
                }
            }
            Cgroups::V2 { root } => {
                let d = mk(root.join(PARENT).join(&name), &mut tg)?;
                if r.cpus > 0.0 {
                    let weight = ((r.cpus * 100.0) as u64).clamp(1, 10000);
                    write(d.join("cpu.weight"), weight.to_string())?;
                    write(
                        d.join("cpu.max"),
                        format!("{} 100000", ((r.cpus * 100_000.0) as u64).max(1000)),
                    )?;
                }
                if r.mem > 0.0 {
                    let bytes = (r.mem.max(4.0) * 1024.0 * 1024.0) as u64;
                    write(d.join("memory.max"), bytes.to_string())?;
                }
                if let Some(max) = pids_max {
                    let _ = write(d.join("pids.max"), max.to_string());
                }
            }
        }
        Ok(tg)
    }
}

impl Cgroups {
    fn parents(&self) -> Vec<PathBuf> {
        match self {
            Cgroups::V1 { cpu, memory, pids } => {
                let mut v = vec![cpu.join(PARENT), memory.join(PARENT)];
                v.extend(pids.as_ref().map(|p| p.join(PARENT)));
                v
            }
            Cgroups::V2 { root } => vec![root.join(PARENT)],
        }
    }

    /// The existing cgroups of the task cgroup `name` (made by [`Cgroups::create`]).
    pub fn open(&self, name: &str) -> Option<TaskCgroup> {
        let dirs: Vec<PathBuf> = self
            .parents()
            .into_iter()
            .map(|p| p.join(name))
            .filter(|d| d.is_dir())
            .collect();
        (!dirs.is_empty()).then(|| TaskCgroup {
            procs: dirs.iter().map(|d| d.join("cgroup.procs")).collect(),
            dirs,
        })
    }

    /// Names of the task cgroups that start with `prefix`.
    pub fn names(&self, prefix: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for parent in self.parents() {
            let Ok(rd) = fs::read_dir(&parent) else {
                continue;
            };
            for e in rd.flatten() {
                if let Some(n) = e.file_name().to_str() {
                    if n.starts_with(prefix) && e.path().is_dir() && !out.iter().any(|o| o == n) {
                        out.push(n.to_string());
                    }
                }
            }
        }
        out
    }
}

impl TaskCgroup {
    /// The processes in the task's cgroups.
    pub fn pids(&self) -> Vec<i32> {
        let mut out: Vec<i32> = Vec::new();
        for p in &self.procs {
            if let Ok(text) = fs::read_to_string(p) {
                for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    if !out.contains(&pid) {
                        out.push(pid);
                    }
                }
            }
        }
        out
    }

    /// Paths as C strings for the pre-exec hook (no allocation after fork).
    pub fn procs_cstrings(&self) -> Vec<CString> {
        self.procs
            .iter()
            .filter_map(|p| CString::new(p.as_os_str().as_encoded_bytes()).ok())
            .collect()
    }

    /// Moves `pid` into the task's cgroups (for processes started outside the hook).
    pub fn add(&self, pid: u32) {
        for p in &self.procs {
            let _ = fs::write(p, pid.to_string());
        }
    }

    /// Removes the (empty) cgroups.
    pub fn remove(&self) {
        for d in &self.dirs {
            let _ = fs::remove_dir(d);
        }
    }
}

/// In the child between fork and exec: writes its own pid into each `cgroup.procs`.
/// Async-signal-safe: only open/write/close on pre-built C strings and a stack buffer.
pub fn join_in_child(procs: &[CString]) {
    // SAFETY: getpid/open/write/close are async-signal-safe; buffers live on the stack or
    // were allocated before fork.
    unsafe {
        let pid = libc::getpid();
        let mut buf = [0u8; 24];
        let mut n = pid as u64;
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        for p in procs {
            let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd >= 0 {
                let slice = &buf[i..];
                libc::write(fd, slice.as_ptr() as *const libc::c_void, slice.len());
                libc::close(fd);
            }
        }
    }
}
