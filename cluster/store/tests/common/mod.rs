//! Test helpers: a standalone ZooKeeper server (Debian's `zookeeper` package) on a free
//! loopback port with its own data dir, and polling helpers.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where Debian's `libzookeeper-java` puts the server jar (its manifest names the other jars).
const DEFAULT_JAR: &str = "/usr/share/java/zookeeper.jar";

/// A standalone ZooKeeper server owned by a test; killed on drop.
pub struct ZkServer {
    child: Option<Child>,
    pub port: u16,
    jar: PathBuf,
    dir: tempfile::TempDir,
}

impl ZkServer {
    /// Starts a server, or prints why not and returns `None` (ZooKeeper or Java missing).
    /// `ZOOKEEPER_JAR` overrides the jar's path.
    pub fn start() -> Option<ZkServer> {
        let jar = std::env::var_os("ZOOKEEPER_JAR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_JAR));
        if !jar.exists() {
            eprintln!(
                "SKIPPED: zookeeper not installed ({} missing; apt-get install -y zookeeper)",
                jar.display()
            );
            return None;
        }
        if Command::new("java")
            .arg("-version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            eprintln!("SKIPPED: zookeeper not installed (no `java` on PATH)");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let cfg = format!(
            "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={port}\n\
             clientPortAddress=127.0.0.1\nadmin.enableServer=false\nmaxClientCnxns=0\n\
             4lw.commands.whitelist=srvr,ruok\n",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("zoo.cfg"), cfg).expect("write zoo.cfg");
        let mut s = ZkServer {
            child: None,
            port,
            jar,
            dir,
        };
        s.restart();
        Some(s)
    }

    /// `zk://127.0.0.1:<port>/<root>`.
    pub fn url(&self, root: &str) -> String {
        format!("zk://127.0.0.1:{}/{root}", self.port)
    }

    /// Kills the server (like a crash); its data dir stays.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port and data dir, and waits until it serves.
    pub fn restart(&mut self) {
        self.stop();
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("log file");
        let child = Command::new("java")
            .args([
                "-Xmx256m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.snapshot.trust.empty=true",
                "-Dzookeeper.admin.enableServer=false",
                "-cp",
            ])
            .arg(&self.jar)
            .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
            .arg(self.dir.path().join("zoo.cfg"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start java");
        self.child = Some(child);
        let dir = self.dir.path().to_path_buf();
        self.wait_serving(&dir);
    }

    fn wait_serving(&mut self, dir: &Path) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                panic!("ZooKeeper exited with {status}:\n{log}");
            }
            if srvr(self.port).is_some_and(|r| r.contains("Mode:")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        panic!(
            "ZooKeeper did not serve on port {} within 60 s:\n{log}",
            self.port
        );
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The answer to the `srvr` four-letter word.
fn srvr(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"srvr").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// Polls `cond` until it holds; panics naming `what` after 30 s (a bound, not a timing claim).
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for: {what}");
}

/// A TCP proxy to a local port that a test can cut, as a network partition would: while
/// blocked, open connections are closed and new ones are closed at once.
pub struct Proxy {
    pub port: u16,
    blocked: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    pub fn start(upstream: u16) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = l.local_addr().expect("proxy addr").port();
        let blocked = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (b, c) = (blocked.clone(), conns.clone());
        std::thread::spawn(move || {
            for down in l.incoming() {
                let Ok(down) = down else { continue };
                if b.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (Ok(d2), Ok(u2)) = (down.try_clone(), up.try_clone()) else {
                    continue;
                };
                if let Ok(mut v) = c.lock() {
                    v.extend(down.try_clone().ok());
                    v.extend(up.try_clone().ok());
                }
                std::thread::spawn(move || pipe(down, u2));
                std::thread::spawn(move || pipe(up, d2));
            }
        });
        Proxy {
            port,
            blocked,
            conns,
        }
    }

    pub fn url(&self, root: &str) -> String {
        format!("zk://127.0.0.1:{}/{root}", self.port)
    }

    pub fn set_blocked(&self, blocked: bool) {
        self.blocked.store(blocked, Ordering::SeqCst);
        if blocked {
            if let Ok(mut v) = self.conns.lock() {
                for s in v.drain(..) {
                    let _ = s.shutdown(Shutdown::Both);
                }
            }
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}
