//! Drives a real HAProxy process in master-worker mode (`-W -S <master socket>`).
//!
//! A new configuration is written to a temporary file, checked with `haproxy -c`, and only
//! then renamed over the live file; the master is told to reload, re-executes itself with
//! the new file and starts a new worker that takes the listening sockets over from the old
//! one (no port is ever closed, no SYN is dropped); old workers finish their connections
//! (bounded by `hard-stop-after`). A reload counts as done when `show proc` on the master
//! socket lists a worker that was not there before; if none appears the previous file is
//! put back and the master reloaded again.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::process::{Child, Command};

use crate::Error;

/// How long a start or a reload may take before it counts as failed.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The result of [`Haproxy::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Same text as the running configuration: nothing done.
    Unchanged,
    /// Validated, installed and reloaded; the new worker is up.
    Reloaded,
}

/// The path of the `haproxy` binary: `$HAPROXY_BIN`, else `haproxy` found on `PATH`.
pub fn find_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HAPROXY_BIN") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join("haproxy"))
        .find(|p| p.is_file())
}

/// Checks `text` with `haproxy -c`. The checked file is left in `dir` and its path returned
/// (so it can be renamed into place); on failure the error carries HAProxy's messages.
pub async fn validate(binary: &Path, dir: &Path, text: &str) -> Result<tempfile::TempPath, Error> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".haproxy.cfg.")
        .tempfile_in(dir)
        .map_err(|e| Error::Io(format!("creating a temporary file in {}", dir.display()), e))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())
        .map_err(|e| Error::Io("writing the candidate configuration".into(), e))?;
    let path = tmp.into_temp_path();
    let check = Command::new(binary)
        .arg("-c")
        .arg("-q")
        .arg("-f")
        .arg(&*path)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), check)
        .await
        .map_err(|_| Error::Haproxy(format!("{} -c took more than 60 s", binary.display())))?
        .map_err(|e| Error::Io(format!("running {} -c", binary.display()), e))?;
    if out.status.success() {
        Ok(path)
    } else {
        let mut msg = String::from_utf8_lossy(&out.stderr).into_owned();
        msg.push_str(&String::from_utf8_lossy(&out.stdout));
        let msg = msg.trim();
        let msg: String = msg.chars().take(4000).collect();
        Err(Error::InvalidConfig(format!(
            "haproxy -c ({}): {msg}",
            out.status
        )))
    }
}

/// A running HAProxy master and its workers.
pub struct Haproxy {
    binary: PathBuf,
    dir: PathBuf,
    cfg: PathBuf,
    master_socket: PathBuf,
    child: Child,
    running: String,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Haproxy {
    /// Validates `text`, installs it as `<dir>/haproxy.cfg` and starts `haproxy -W -S
    /// <dir>/master.sock`; returns once a worker runs.
    pub async fn start(binary: &Path, dir: &Path, text: &str) -> Result<Haproxy, Error> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Io(format!("creating {}", dir.display()), e))?;
        let cfg = dir.join("haproxy.cfg");
        let master_socket = dir.join("master.sock");
        let _ = std::fs::remove_file(&master_socket);
        let checked = validate(binary, dir, text).await?;
        checked
            .persist(&cfg)
            .map_err(|e| Error::Io(format!("installing {}", cfg.display()), e.error))?;
        let mut child = Command::new(binary)
            .arg("-W")
            .arg("-S")
            .arg(&master_socket)
            .arg("-f")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Io(format!("starting {}", binary.display()), e))?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(out) = child.stdout.take() {
            spawn_log_reader(out, log.clone());
        }
        if let Some(err) = child.stderr.take() {
            spawn_log_reader(err, log.clone());
        }
        let mut h = Haproxy {
            binary: binary.to_path_buf(),
            dir: dir.to_path_buf(),
            cfg,
            master_socket,
            child,
            running: text.to_string(),
            log,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = h.child.try_wait() {
                return Err(Error::Haproxy(format!(
                    "haproxy exited at start ({status}): {}",
                    h.recent_log()
                )));
            }
            if let Ok(w) = h.workers().await {
                if !w.is_empty() {
                    return Ok(h);
                }
            }
            if Instant::now() > deadline {
                return Err(Error::Haproxy(format!(
                    "no haproxy worker after {READY_TIMEOUT:?}: {}",
                    h.recent_log()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The configuration the running workers use.
    pub fn running_config(&self) -> &str {
        &self.running
    }

    /// Path of the live configuration file.
    pub fn config_path(&self) -> &Path {
        &self.cfg
    }

    /// The master's process id.
    pub fn master_pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The last lines HAProxy printed.
    pub fn recent_log(&self) -> String {
        self.log
            .lock()
            .map(|l| l.iter().cloned().collect::<Vec<_>>().join(" | "))
            .unwrap_or_default()
    }

    /// Sends a command to the master CLI and returns its answer.
    pub async fn master_command(&self, cmd: &str) -> Result<String, Error> {
        let io = |e| Error::Io(format!("master socket {}", self.master_socket.display()), e);
        let fut = async {
            let mut s = UnixStream::connect(&self.master_socket).await.map_err(io)?;
            s.write_all(format!("{cmd}\n").as_bytes())
                .await
                .map_err(io)?;
            // The master CLI keeps the connection open; an answer ends with an empty line.
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = s.read(&mut buf).await.map_err(io)?;
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
                if out.ends_with(b"\n\n") || out.len() > 1 << 20 {
                    break;
                }
            }
            Ok(String::from_utf8_lossy(&out).into_owned())
        };
        tokio::time::timeout(Duration::from_secs(3), fut)
            .await
            .map_err(|_| Error::Haproxy("master socket did not answer within 3 s".into()))?
    }

    /// Current (not old) worker pids, from `show proc`.
    pub async fn workers(&self) -> Result<Vec<u32>, Error> {
        let out = self.master_command("show proc").await?;
        Ok(parse_workers(&out))
    }

    /// Validates `text` and, if it differs from the running configuration, installs it and
    /// reloads hitlessly. On an invalid configuration nothing changes and the error says why.
    pub async fn apply(&mut self, text: &str) -> Result<Applied, Error> {
        if text == self.running {
            return Ok(Applied::Unchanged);
        }
        let checked = validate(&self.binary, &self.dir, text).await?;
        checked
            .persist(&self.cfg)
            .map_err(|e| Error::Io(format!("installing {}", self.cfg.display()), e.error))?;
        match self.reload().await {
            Ok(()) => {
                self.running = text.to_string();
                Ok(Applied::Reloaded)
            }
            Err(e) => {
                // Put the last good file back so the master (and any later reload) uses it.
                let restore = std::fs::write(&self.cfg, &self.running);
                let again = self.reload().await;
                Err(Error::Haproxy(format!(
                    "{e}; previous configuration restored ({}; reload {})",
                    match restore {
                        Ok(()) => "file written".to_string(),
                        Err(e) => format!("file NOT written: {e}"),
                    },
                    match again {
                        Ok(()) => "ok".to_string(),
                        Err(e) => format!("failed: {e}"),
                    }
                )))
            }
        }
    }

    /// Reloads the master with the file on disk and waits for a new worker.
    pub async fn reload(&mut self) -> Result<(), Error> {
        // The master must answer first: it knows the current workers, and a reload is only
        // sent to a master that has finished starting (or reloading).
        let deadline = Instant::now() + READY_TIMEOUT;
        let (before, failed_before) = loop {
            match self.master_command("show proc").await {
                Ok(out) if !parse_workers(&out).is_empty() => {
                    break (parse_workers(&out), parse_failed_reloads(&out))
                }
                Ok(_) | Err(_) if Instant::now() > deadline => {
                    return Err(Error::Haproxy(format!(
                        "the haproxy master socket does not list a worker: {}",
                        self.recent_log()
                    )))
                }
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };
        // `reload` on the master CLI (the same as SIGUSR2 to the master, but it cannot reach
        // a process that is not ready for it). The master closes the connection as it
        // re-executes itself.
        let io = |e| Error::Io(format!("master socket {}", self.master_socket.display()), e);
        let mut sock = UnixStream::connect(&self.master_socket).await.map_err(io)?;
        sock.write_all(b"reload\n").await.map_err(io)?;
        let mut sink = [0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Ok(n) = sock.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        })
        .await;
        drop(sock);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::Haproxy(format!(
                    "the haproxy master exited during a reload ({status}): {}",
                    self.recent_log()
                )));
            }
            if let Ok(out) = self.master_command("show proc").await {
                if parse_workers(&out).iter().any(|p| !before.contains(p)) {
                    return Ok(());
                }
                let failed = parse_failed_reloads(&out);
                if let (Some(now), Some(was)) = (failed, failed_before) {
                    if now > was {
                        return Err(Error::Haproxy(format!(
                            "the reload failed (master counts {now} failed reloads): {}",
                            self.recent_log()
                        )));
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(Error::Haproxy(format!(
                    "no new haproxy worker {READY_TIMEOUT:?} after the reload: {}",
                    self.recent_log()
                )));
            }
        }
    }

    /// Stops HAProxy (SIGTERM to the master, which stops the workers), waiting up to 5 s.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id().and_then(|p| libc::pid_t::try_from(p).ok()) {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

fn spawn_log_reader<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    r: R,
    log: Arc<Mutex<VecDeque<String>>>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(target: "haproxy", "{line}");
            if let Ok(mut l) = log.lock() {
                if l.len() >= 20 {
                    l.pop_front();
                }
                l.push_back(line);
            }
        }
    });
}

/// Worker pids listed under `# workers` in the master CLI's `show proc`.
pub fn parse_workers(show_proc: &str) -> Vec<u32> {
    let mut in_workers = false;
    let mut pids = Vec::new();
    for line in show_proc.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            in_workers = line.starts_with("# workers");
            continue;
        }
        if in_workers {
            if let Some(pid) = line.split_whitespace().next().and_then(|p| p.parse().ok()) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// The master's `[failed: N]` count of failed reloads in `show proc` (HAProxy ≥ 2.5).
pub fn parse_failed_reloads(show_proc: &str) -> Option<u32> {
    let line = show_proc.lines().find(|l| l.contains(" master "))?;
    let rest = line.split("[failed:").nth(1)?;
    rest.split(']').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_show_proc() {
        let out = "#<PID>          <type>          <reloads>       <uptime>        <version>\n\
                   100             master          1 [failed: 0]   0d00h00m03s     2.6.12\n\
                   # workers\n\
                   205             worker          0               0d00h00m01s     2.6.12\n\
                   # old workers\n\
                   101             worker          1               0d00h00m03s     2.6.12\n\
                   # programs\n\n";
        assert_eq!(parse_workers(out), vec![205]);
        assert_eq!(parse_failed_reloads(out), Some(0));
        assert_eq!(parse_failed_reloads("nothing"), None);
        assert!(parse_workers("garbage\n").is_empty());
    }
}
