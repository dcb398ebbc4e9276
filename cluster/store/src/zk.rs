//! [`ZkStore`]: the [`Store`] trait on a ZooKeeper ensemble (≥ 3.6; Debian 12 ships 3.8), for
//! highly available clusters.
//!
//! # Layout under the root path (the URL's chroot)
//!
//! * `/kv/…` holds the keys. A key `/s1/…/sn` is the znode `/kv/d<s1>/…/d<sn-1>/v<sn>`:
//!   directory znodes (`d` + segment, persistent, empty, created as needed and never deleted)
//!   hold the deeper keys, value znodes (`v` + segment) hold one value each. Keeping the two
//!   apart means a key and its descendants can exist independently (`/a` and `/a/b`, as in the
//!   embedded store), and a value znode is always created fresh, so the trait's version is
//!   exactly ZooKeeper's `stat.version + 1`. Segments are percent-escaped where ZooKeeper
//!   forbids characters (`%` itself and the ranges U+E000–U+F8FF, U+FFF0–U+FFFF).
//! * `/elections/<escaped election>/n_<seq>` are the ephemeral-sequential candidate znodes;
//!   their data is the candidate's id.
//!
//! `list(prefix)` walks the directory subtree under the prefix's last complete segment,
//! one pipelined `getChildren` per level and one pipelined `getData` per value, so its cost
//! grows with the size of the subtree (not the whole store), and no single `getChildren`
//! reply holds more than one directory's children. It is not a point-in-time snapshot across
//! keys (each entry is consistent).
//!
//! Writes are one ZooKeeper `multi`. Preconditions map to versioned ops: `Absent` → `create`
//! (for a delete or a check: `create` + `delete` of the key in the same multi, which watchers
//! see as a put and a delete of it), `Version(v)` → `setData`/`delete`/`check` with version
//! `v - 1`, `Exists` → the same with version -1, `Any` → the op chosen after reading whether
//! the key exists (retried if that read raced with another writer).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use zookeeper_client as zk;

use crate::{
    validate_key, Entry, Leadership, Op, Precondition, Store, StoreError, Version, Watch,
    WatchEvent,
};

/// The largest value the ZooKeeper store accepts, and the largest sum of values in one commit:
/// ZooKeeper's `jute.maxbuffer` (0xfffff bytes) less room for paths and headers.
pub const MAX_VALUE_BYTES: usize = 1_000_000;

const KV: &str = "/kv";
const ELECTIONS: &str = "/elections";
const CANDIDATE_PREFIX: &str = "n_";
const MAX_ATTEMPTS: usize = 8;
/// Requests in flight at once during a `list` walk.
const LIST_BATCH: usize = 512;

/// Settings of a [`ZkStore`].
#[derive(Clone, Debug)]
pub struct ZkOptions {
    /// The ZooKeeper session timeout asked for (the server bounds it to 2–20 × its tickTime).
    /// A leader that loses its session for this long has lost its leadership.
    pub session_timeout: Duration,
    /// How long one store call waits for ZooKeeper before failing with `Unavailable`.
    pub op_timeout: Duration,
}

impl ZkOptions {
    pub fn with_timeout(timeout: Duration) -> ZkOptions {
        ZkOptions {
            session_timeout: timeout,
            op_timeout: timeout,
        }
    }
}

/// A parsed `zk://host:port[,host:port…]/path` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkUrl {
    /// `host:port` pairs, in URL order.
    pub hosts: Vec<String>,
    /// The root path (chroot) every znode of this store lives under, e.g. `/dcos`.
    pub root: String,
}

impl ZkUrl {
    /// Parses a `zk://` URL; errors name the URL and what is wrong with it.
    pub fn parse(url: &str) -> Result<ZkUrl, StoreError> {
        let bad =
            |why: String| StoreError::Unavailable(format!("bad ZooKeeper URL {url:?}: {why}"));
        let rest = url.strip_prefix("zk://").ok_or_else(|| {
            bad("it must start with zk:// (e.g. zk://127.0.0.1:2181/dcos)".into())
        })?;
        let (hosts, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if hosts.is_empty() {
            return Err(bad("no host:port before the path".into()));
        }
        let mut out = Vec::new();
        for h in hosts.split(',') {
            let (host, port) = if let Some(v6) = h.strip_prefix('[') {
                let end = v6
                    .find(']')
                    .ok_or_else(|| bad(format!("{h:?}: missing ']' in an IPv6 address")))?;
                let port = v6[end + 1..]
                    .strip_prefix(':')
                    .ok_or_else(|| bad(format!("{h:?}: missing :port")))?;
                (&h[..end + 2], port)
            } else {
                h.rsplit_once(':')
                    .ok_or_else(|| bad(format!("{h:?}: missing :port (e.g. 127.0.0.1:2181)")))?
            };
            if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '@') {
                return Err(bad(format!("{h:?}: bad host")));
            }
            match port.parse::<u16>() {
                Ok(p) if p != 0 => {}
                _ => {
                    return Err(bad(format!(
                        "{h:?}: port {port:?} is not a number in 1–65535"
                    )))
                }
            }
            out.push(h.to_string());
        }
        if path.is_empty() || path == "/" {
            return Err(bad(
                "a root path is required after the hosts (e.g. zk://127.0.0.1:2181/dcos)".into(),
            ));
        }
        validate_key(path).map_err(|e| bad(format!("root path: {e}")))?;
        if path.chars().any(zk_forbidden) || path.split('/').any(|s| s == "zookeeper") {
            return Err(bad(format!(
                "root path {path:?} has characters or names ZooKeeper forbids"
            )));
        }
        Ok(ZkUrl {
            hosts: out,
            root: path.to_string(),
        })
    }

    fn connect_string(&self) -> String {
        self.hosts.join(",")
    }
}

/// The ZooKeeper-backed store. Cheap to share behind an `Arc`; safe to call from any thread,
/// including tokio worker threads (calls run on the store's own runtime and block the caller
/// for at most `op_timeout`).
pub struct ZkStore {
    shared: Arc<Shared>,
    rt: Option<tokio::runtime::Runtime>,
}

struct Shared {
    url: ZkUrl,
    opts: ZkOptions,
    /// The current session's client. Replaced when a session expires.
    client: watch::Sender<zk::Client>,
    /// Directory znodes known to exist (they are never deleted by this store).
    dirs: Mutex<HashSet<String>>,
}

fn unavailable(url: &ZkUrl, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!(
        "ZooKeeper {} ({}): {what}: {e}",
        url.connect_string(),
        url.root
    ))
}

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

async fn open_session(url: &ZkUrl, opts: &ZkOptions) -> Result<zk::Client, StoreError> {
    let hosts = url.connect_string();
    let connect = zk::Client::connector()
        .with_session_timeout(opts.session_timeout)
        .with_connection_timeout(opts.op_timeout)
        .connect(&hosts);
    let client = tokio::time::timeout(opts.op_timeout, connect)
        .await
        .map_err(|_| {
            unavailable(
                url,
                "connect",
                format!("no session within {:?}", opts.op_timeout),
            )
        })?
        .map_err(|e| unavailable(url, "connect", e))?;
    tokio::time::timeout(opts.op_timeout, client.mkdir(&url.root, &persistent()))
        .await
        .map_err(|_| unavailable(url, "create the root path", "timed out"))?
        .map_err(|e| unavailable(url, "create the root path", e))?;
    let client = client
        .chroot(url.root.as_str())
        .map_err(|_| unavailable(url, "chroot", "invalid root path"))?;
    for dir in [KV, ELECTIONS] {
        match client.create(dir, &[], &persistent()).await {
            Ok(_) | Err(zk::Error::NodeExists) => {}
            Err(e) => return Err(unavailable(url, "create the store's directories", e)),
        }
    }
    Ok(client)
}

impl ZkStore {
    /// Connects to `url` (`zk://host:port[,host:port…]/path`), with `timeout` as both the
    /// session timeout and the per-call timeout.
    pub fn connect(url: &str, timeout: Duration) -> Result<ZkStore, StoreError> {
        ZkStore::connect_with(url, ZkOptions::with_timeout(timeout))
    }

    pub fn connect_with(url: &str, opts: ZkOptions) -> Result<ZkStore, StoreError> {
        let url = ZkUrl::parse(url)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("zk-store")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Io {
                path: "zk-store runtime".into(),
                source: e,
            })?;
        let client = wait_on(&rt, opts.op_timeout + Duration::from_secs(1), {
            let (url, opts) = (url.clone(), opts.clone());
            async move { open_session(&url, &opts).await }
        })
        .unwrap_or_else(|| Err(unavailable(&url, "connect", "timed out")))?;
        let shared = Arc::new(Shared {
            url,
            opts,
            client: watch::channel(client).0,
            dirs: Mutex::new(HashSet::new()),
        });
        rt.spawn(supervise(Arc::downgrade(&shared)));
        Ok(ZkStore {
            shared,
            rt: Some(rt),
        })
    }

    /// The parsed URL this store is connected to.
    pub fn url(&self) -> &ZkUrl {
        &self.shared.url
    }

    fn handle(&self) -> &tokio::runtime::Runtime {
        // Always Some until drop.
        self.rt
            .as_ref()
            .unwrap_or_else(|| unreachable!("runtime taken before drop"))
    }

    /// Runs `f` on the store's runtime, bounded by the op timeout.
    fn run<T, F, Fut>(&self, what: &str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let shared = self.shared.clone();
        let t = shared.opts.op_timeout;
        let fut = f(shared.clone());
        let res = wait_on(self.handle(), t, fut);
        match res {
            Some(r) => r,
            None => {
                let state = shared.client.borrow().state();
                Err(unavailable(
                    &shared.url,
                    what,
                    format!(
                        "no answer within {t:?} (session {state:?}); the outcome of a write is unknown"
                    ),
                ))
            }
        }
    }
}

/// Spawns `fut` on `rt` and waits for it on this thread for at most `t`. `None` on timeout.
/// Never enters the runtime from the calling thread, so callers may be on any runtime.
fn wait_on<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    t: Duration,
    fut: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let task = rt.spawn(async move {
        if let Ok(v) = tokio::time::timeout(t, fut).await {
            let _ = tx.send(v);
        }
    });
    let out = rx.recv_timeout(t + Duration::from_millis(500)).ok();
    if out.is_none() {
        task.abort();
    }
    out
}

impl Drop for ZkStore {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            // Stops the store's tasks without blocking, so a store may be dropped inside an
            // async context. The session is not closed: the server expires it (and its
            // ephemeral election znodes) after the session timeout.
            rt.shutdown_background();
        }
    }
}

/// Replaces the client when its session ends (expired, closed, auth failed).
async fn supervise(shared: std::sync::Weak<Shared>) {
    loop {
        let Some(s) = shared.upgrade() else { return };
        let mut states = s.client.borrow().state_watcher();
        drop(s);
        let mut st = states.state();
        while !is_terminal(st) {
            st = states.changed().await;
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            let Some(s) = shared.upgrade() else { return };
            match open_session(&s.url, &s.opts).await {
                Ok(c) => {
                    tracing::warn!(url = %s.url.connect_string(), "ZooKeeper session replaced after it ended");
                    s.client.send_replace(c);
                    break;
                }
                Err(e) => tracing::warn!(error = %e, "ZooKeeper reconnect failed"),
            }
            drop(s);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}

fn is_terminal(s: zk::SessionState) -> bool {
    matches!(
        s,
        zk::SessionState::Expired | zk::SessionState::Closed | zk::SessionState::AuthFailed
    )
}

// ---- key mapping ------------------------------------------------------------------------

/// Characters ZooKeeper refuses in paths (besides control characters, which keys never have).
fn zk_forbidden(c: char) -> bool {
    c.is_control()
        || ('\u{e000}'..='\u{f8ff}').contains(&c)
        || ('\u{fff0}'..='\u{ffff}').contains(&c)
}

fn escape(seg: &str, slash_too: bool) -> String {
    let mut out = String::with_capacity(seg.len());
    for c in seg.chars() {
        if c == '%' || zk_forbidden(c) || (slash_too && c == '/') {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn unescape(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = name.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The directory znode holding the children of the key path `dir` (`""` or `/a/b`).
fn dir_path(dir: &str) -> String {
    let mut p = KV.to_string();
    if !dir.is_empty() {
        for seg in dir[1..].split('/') {
            p.push_str("/d");
            p.push_str(&escape(seg, false));
        }
    }
    p
}

/// The value znode of a (valid) key.
fn value_path(key: &str) -> String {
    let (dir, last) = key.rsplit_once('/').unwrap_or(("", key));
    format!("{}/v{}", dir_path(dir), escape(last, false))
}

/// The key of a value znode path, `None` for directories and anything else.
fn key_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix(KV)?;
    let mut key = String::new();
    let mut segs = rest.split('/').skip(1).peekable();
    while let Some(seg) = segs.next() {
        let last = segs.peek().is_none();
        let (kind, name) = seg.split_at_checked(1)?;
        match (kind, last) {
            ("d", false) | ("v", true) => {
                key.push('/');
                key.push_str(&unescape(name)?);
            }
            _ => return None,
        }
    }
    (!key.is_empty()).then_some(key)
}

fn parents(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = KV.len();
    while let Some(j) = path[i + 1..].find('/') {
        i += 1 + j;
        out.push(path[..i].to_string());
    }
    out
}

fn election_dir(election: &str) -> String {
    format!("{ELECTIONS}/{}", escape(election, true))
}

fn zk_version(v: Version) -> i32 {
    i32::try_from(v.saturating_sub(1)).unwrap_or(i32::MAX)
}

fn version_of(stat: &zk::Stat) -> Version {
    stat.version.max(0) as Version + 1
}

// ---- reads ------------------------------------------------------------------------------

async fn read_entry(
    client: &zk::Client,
    key: String,
    url: &ZkUrl,
) -> Result<Option<Entry>, StoreError> {
    match client.get_data(&value_path(&key)).await {
        Ok((value, stat)) => Ok(Some(Entry {
            key,
            value,
            version: version_of(&stat),
        })),
        Err(zk::Error::NoNode) => Ok(None),
        Err(e) => Err(unavailable(url, &format!("read {key}"), e)),
    }
}

async fn list_under(shared: Arc<Shared>, prefix: String) -> Result<Vec<Entry>, StoreError> {
    let client = shared.client.borrow().clone();
    let url = &shared.url;
    let (dir, partial) = if prefix.is_empty() {
        (String::new(), String::new())
    } else if !prefix.starts_with('/') {
        return Ok(Vec::new());
    } else {
        let (d, p) = prefix.rsplit_once('/').unwrap_or(("", ""));
        if !d.is_empty() && validate_key(d).is_err() {
            return Ok(Vec::new()); // no key has such a prefix
        }
        (d.to_string(), p.to_string())
    };
    let mut values: Vec<String> = Vec::new();
    let mut level = vec![(dir_path(&dir), dir.clone(), Some(partial))];
    while !level.is_empty() {
        let mut next = Vec::new();
        for chunk in level.chunks(LIST_BATCH) {
            let replies =
                futures::future::join_all(chunk.iter().map(|(p, _, _)| client.list_children(p)))
                    .await;
            for ((_, key_dir, filter), reply) in chunk.iter().zip(replies) {
                let children = match reply {
                    Ok(c) => c,
                    Err(zk::Error::NoNode) => continue,
                    Err(e) => return Err(unavailable(url, &format!("list {prefix}"), e)),
                };
                for child in children {
                    let Some((kind, name)) = child.split_at_checked(1) else {
                        continue;
                    };
                    let Some(seg) = unescape(name) else { continue };
                    if let Some(f) = filter {
                        if !seg.starts_with(f.as_str()) {
                            continue;
                        }
                    }
                    let key = format!("{key_dir}/{seg}");
                    match kind {
                        "v" => values.push(key),
                        "d" => {
                            let zpath = dir_path(&key);
                            next.push((zpath, key, None));
                        }
                        _ => {}
                    }
                }
            }
        }
        level = next;
    }
    let mut out = Vec::with_capacity(values.len());
    for chunk in values.chunks(LIST_BATCH) {
        let replies =
            futures::future::join_all(chunk.iter().map(|k| read_entry(&client, k.clone(), url)))
                .await;
        for r in replies {
            if let Some(e) = r? {
                out.push(e);
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

// ---- writes -----------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Known {
    Absent,
    Exists,
}

/// Where a ZooKeeper op of the multi came from.
struct Origin {
    op: usize,
    /// The op's precondition was `Any`: a failure means a read raced, so retry.
    raced: bool,
    is_create: bool,
}

enum Attempt {
    Done(Vec<Option<Version>>),
    Retry,
}

async fn commit_ops(
    shared: Arc<Shared>,
    ops: Arc<Vec<Op>>,
) -> Result<Vec<Option<Version>>, StoreError> {
    for _ in 0..MAX_ATTEMPTS {
        if let Attempt::Done(v) = commit_once(&shared, &ops).await? {
            return Ok(v);
        }
    }
    Err(StoreError::Unavailable(format!(
        "commit on ZooKeeper {} gave up after {MAX_ATTEMPTS} attempts racing with other writers",
        shared.url.connect_string()
    )))
}

async fn ensure_dirs(
    shared: &Shared,
    client: &zk::Client,
    paths: &[String],
) -> Result<(), StoreError> {
    let missing: Vec<String> = {
        let known = shared.dirs.lock().unwrap_or_else(|p| p.into_inner());
        let mut seen = HashSet::new();
        paths
            .iter()
            .flat_map(|p| parents(p))
            .filter(|d| !known.contains(d) && seen.insert(d.clone()))
            .collect()
    };
    if missing.is_empty() {
        return Ok(());
    }
    // Sent in order (parents first) and pipelined: one round trip.
    let opts = persistent();
    let replies =
        futures::future::join_all(missing.iter().map(|d| client.create(d, &[], &opts))).await;
    let mut known = shared.dirs.lock().unwrap_or_else(|p| p.into_inner());
    for (d, r) in missing.into_iter().zip(replies) {
        match r {
            Ok(_) | Err(zk::Error::NodeExists) => {
                known.insert(d);
            }
            Err(e) => {
                return Err(unavailable(
                    &shared.url,
                    &format!("create directory {d}"),
                    e,
                ))
            }
        }
    }
    Ok(())
}

async fn commit_once(shared: &Shared, ops: &[Op]) -> Result<Attempt, StoreError> {
    let client = shared.client.borrow().clone();
    let url = &shared.url;
    // Existence of the keys written with `Any`.
    let mut need: Vec<&str> = Vec::new();
    for op in ops {
        if let Op::Put {
            key,
            expect: Precondition::Any,
            ..
        }
        | Op::Delete {
            key,
            expect: Precondition::Any,
        } = op
        {
            if !need.contains(&key.as_str()) {
                need.push(key);
            }
        }
    }
    let stats =
        futures::future::join_all(need.iter().map(|k| client.check_stat(&value_path(k)))).await;
    let mut state: HashMap<&str, Known> = HashMap::new();
    for (k, s) in need.iter().zip(stats) {
        match s {
            Ok(Some(_)) => state.insert(k, Known::Exists),
            Ok(None) => state.insert(k, Known::Absent),
            Err(e) => return Err(unavailable(url, &format!("read {k}"), e)),
        };
    }
    let paths: Vec<String> = ops.iter().map(|op| value_path(op.key())).collect();
    let mut multi = client.new_multi_writer();
    let mut origins: Vec<Origin> = Vec::new();
    let mut creates: Vec<String> = Vec::new();
    let opts = persistent();
    let zk_err = |e: zk::Error| unavailable(url, "build the commit", e);
    for (i, op) in ops.iter().enumerate() {
        let path = &paths[i];
        let key = op.key();
        let mut push = |raced: bool, is_create: bool| {
            origins.push(Origin {
                op: i,
                raced,
                is_create,
            })
        };
        match op {
            Op::Put { value, expect, .. } => {
                let create = match expect {
                    Precondition::Absent => true,
                    Precondition::Any => state.get(key) != Some(&Known::Exists),
                    _ => false,
                };
                if create {
                    multi.add_create(path, value, &opts).map_err(zk_err)?;
                    creates.push(path.clone());
                } else {
                    let v = match expect {
                        Precondition::Version(v) => Some(zk_version(*v)),
                        _ => None,
                    };
                    multi.add_set_data(path, value, v).map_err(zk_err)?;
                }
                push(*expect == Precondition::Any, create);
                state.insert(key, Known::Exists);
            }
            Op::Delete { expect, .. } => {
                match expect {
                    Precondition::Any if state.get(key) != Some(&Known::Exists) => {}
                    Precondition::Absent => {
                        // ZooKeeper has no "check absent": create and delete it in the multi.
                        multi.add_create(path, &[], &opts).map_err(zk_err)?;
                        push(false, true);
                        multi.add_delete(path, Some(0)).map_err(zk_err)?;
                        push(false, false);
                        creates.push(path.clone());
                    }
                    Precondition::Version(v) => {
                        multi
                            .add_delete(path, Some(zk_version(*v)))
                            .map_err(zk_err)?;
                        push(false, false);
                    }
                    Precondition::Exists | Precondition::Any => {
                        multi.add_delete(path, None).map_err(zk_err)?;
                        push(*expect == Precondition::Any, false);
                    }
                }
                state.insert(key, Known::Absent);
            }
            Op::Check { expect, .. } => match expect {
                Precondition::Any => {}
                Precondition::Absent => {
                    multi.add_create(path, &[], &opts).map_err(zk_err)?;
                    push(false, true);
                    multi.add_delete(path, Some(0)).map_err(zk_err)?;
                    push(false, false);
                    creates.push(path.clone());
                }
                Precondition::Version(v) => {
                    multi
                        .add_check_version(path, zk_version(*v))
                        .map_err(zk_err)?;
                    push(false, false);
                }
                Precondition::Exists => {
                    multi.add_check_version(path, -1).map_err(zk_err)?;
                    push(false, false);
                }
            },
        }
    }
    ensure_dirs(shared, &client, &creates).await?;
    match multi.commit().await {
        Ok(results) => {
            let mut versions = vec![None; ops.len()];
            for (origin, r) in origins.iter().zip(results) {
                if let Some(Op::Put { .. }) = ops.get(origin.op) {
                    versions[origin.op] = Some(match r {
                        zk::MultiWriteResult::SetData { stat } => version_of(&stat),
                        _ => 1,
                    });
                }
            }
            Ok(Attempt::Done(versions))
        }
        Err(zk::MultiWriteError::OperationFailed { index, source }) => {
            let Some(origin) = origins.get(index) else {
                return Err(unavailable(url, "commit", source));
            };
            let op = &ops[origin.op];
            match source {
                zk::Error::NoNode if origin.is_create => {
                    // A directory vanished under us (the tree was wiped): forget the cache.
                    shared
                        .dirs
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clear();
                    Ok(Attempt::Retry)
                }
                zk::Error::NoNode
                | zk::Error::NodeExists
                | zk::Error::BadVersion
                | zk::Error::NotEmpty => {
                    if origin.raced {
                        return Ok(Attempt::Retry);
                    }
                    let key = op.key().to_string();
                    let actual = read_entry(&client, key.clone(), url)
                        .await?
                        .map(|e| e.version);
                    let expected = match op {
                        Op::Put { expect, .. }
                        | Op::Delete { expect, .. }
                        | Op::Check { expect, .. } => *expect,
                    };
                    Err(StoreError::Conflict {
                        key,
                        expected,
                        actual,
                    })
                }
                e => Err(unavailable(url, &format!("commit (op on {})", op.key()), e)),
            }
        }
        Err(zk::MultiWriteError::RequestFailed { source }) => Err(unavailable(
            url,
            "commit",
            format!("{source}; the outcome is unknown if the request reached the server"),
        )),
    }
}

// ---- watches ----------------------------------------------------------------------------

/// The znode directory whose subtree covers every key starting with `prefix`.
fn watch_root(prefix: &str) -> String {
    match prefix.rsplit_once('/') {
        Some((d, _)) if !d.is_empty() && prefix.starts_with('/') && validate_key(d).is_ok() => {
            dir_path(d)
        }
        _ => KV.to_string(),
    }
}

async fn forward_events(
    client: zk::Client,
    mut w: zk::PersistentWatcher,
    prefix: &str,
    tx: &mpsc::UnboundedSender<WatchEvent>,
) -> bool {
    loop {
        let ev = tokio::select! {
            ev = w.changed() => ev,
            _ = tx.closed() => return false,
        };
        let key = match ev.event_type {
            zk::EventType::Session => {
                if is_terminal(ev.session_state) {
                    return true; // re-watch on the next session
                }
                continue;
            }
            _ => match key_of(&ev.path) {
                Some(k) if k.starts_with(prefix) => k,
                _ => continue,
            },
        };
        let out = match ev.event_type {
            zk::EventType::NodeCreated => WatchEvent::Put { key, version: 1 },
            zk::EventType::NodeDeleted => WatchEvent::Deleted { key },
            zk::EventType::NodeDataChanged => match client.check_stat(&ev.path).await {
                Ok(Some(stat)) => WatchEvent::Put {
                    key,
                    version: version_of(&stat),
                },
                // Deleted meanwhile (its delete event follows) or unknown: report the change.
                Ok(None) => continue,
                Err(_) => WatchEvent::Put { key, version: 0 },
            },
            _ => continue,
        };
        if tx.send(out).is_err() {
            return false;
        }
    }
}

async fn watch_loop(
    shared: std::sync::Weak<Shared>,
    prefix: String,
    first: Option<(zk::Client, zk::PersistentWatcher)>,
    tx: mpsc::UnboundedSender<WatchEvent>,
) {
    let root = watch_root(&prefix);
    let mut current = first;
    loop {
        let (client, w) = match current.take() {
            Some(cw) => cw,
            None => {
                let Some(s) = shared.upgrade() else { return };
                let mut clients = s.client.subscribe();
                drop(s);
                let client = clients.borrow_and_update().clone();
                match client
                    .watch(&root, zk::AddWatchMode::PersistentRecursive)
                    .await
                {
                    Ok(w) => (client, w),
                    Err(_) => {
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                            _ = clients.changed() => {}
                            _ = tx.closed() => return,
                        }
                        continue;
                    }
                }
            }
        };
        if !forward_events(client, w, &prefix, &tx).await {
            return;
        }
    }
}

// ---- elections --------------------------------------------------------------------------

struct Candidacy {
    shared: std::sync::Weak<Shared>,
    dir: String,
    me: String,
    tx: watch::Sender<Option<String>>,
    stop: oneshot::Receiver<()>,
}

struct Withdraw(Option<oneshot::Sender<()>>);

impl Drop for Withdraw {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

fn seq_of(name: &str) -> Option<i64> {
    name.strip_prefix(CANDIDATE_PREFIX)?.parse().ok()
}

async fn join(client: &zk::Client, dir: &str, me: &str) -> Result<String, zk::Error> {
    match client.create(dir, &[], &persistent()).await {
        Ok(_) | Err(zk::Error::NodeExists) => {}
        Err(e) => return Err(e),
    }
    let opts = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
    let (_, seq) = client
        .create(&format!("{dir}/{CANDIDATE_PREFIX}"), me.as_bytes(), &opts)
        .await?;
    Ok(format!("{dir}/{CANDIDATE_PREFIX}{seq}"))
}

/// What one look at the election found.
struct View {
    leader: Option<String>,
    /// Nodes to watch: the leader's and our predecessor's.
    watch: Vec<String>,
    mine_exists: bool,
}

async fn look(client: &zk::Client, dir: &str, mine: &str) -> Result<View, zk::Error> {
    let mut children: Vec<(i64, String)> = client
        .list_children(dir)
        .await?
        .into_iter()
        .filter_map(|c| seq_of(&c).map(|s| (s, format!("{dir}/{c}"))))
        .collect();
    children.sort();
    let mine_exists = children.iter().any(|(_, p)| p == mine);
    let Some((_, lowest)) = children.first() else {
        return Ok(View {
            leader: None,
            watch: Vec::new(),
            mine_exists,
        });
    };
    let leader = match client.get_data(lowest).await {
        Ok((data, _)) => Some(String::from_utf8_lossy(&data).into_owned()),
        Err(zk::Error::NoNode) => None,
        Err(e) => return Err(e),
    };
    let mut watch = vec![lowest.clone()];
    if let Some(i) = children.iter().position(|(_, p)| p == mine) {
        if i > 0 && children[i - 1].1 != *lowest {
            watch.push(children[i - 1].1.clone());
        }
    }
    Ok(View {
        leader,
        watch,
        mine_exists,
    })
}

async fn election_loop(mut c: Candidacy, mut mine: Option<(zk::Client, String)>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(s) = c.shared.upgrade() else { return };
        let mut clients = s.client.subscribe();
        let timeout = s.opts.op_timeout;
        drop(s);
        let client = clients.borrow_and_update().clone();
        let mut states = client.state_watcher();
        // (Re)join on this session if our node belongs to an older one or is gone.
        let node = match &mine {
            Some((cl, n)) if cl.session_id() == client.session_id() => Some(n.clone()),
            _ => None,
        };
        let node = match node {
            Some(n) => n,
            None => {
                c.tx.send_replace(None);
                let joined = tokio::select! {
                    r = tokio::time::timeout(timeout, join(&client, &c.dir, &c.me)) => r.ok().and_then(|r| r.ok()),
                    _ = &mut c.stop => return,
                };
                match joined {
                    Some(n) => {
                        mine = Some((client.clone(), n.clone()));
                        n
                    }
                    None => {
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = clients.changed() => {}
                            _ = &mut c.stop => return,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                        continue;
                    }
                }
            }
        };
        // Watch who leads until something changes.
        let view = tokio::select! {
            v = tokio::time::timeout(timeout, look(&client, &c.dir, &node)) => v.ok().and_then(|r| r.ok()),
            _ = &mut c.stop => { withdraw(&client, &node).await; return }
        };
        let Some(view) = view else {
            c.tx.send_replace(None);
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = &mut c.stop => { withdraw(&client, &node).await; return }
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
            continue;
        };
        backoff = Duration::from_millis(100);
        if !view.mine_exists {
            mine = None; // our session lost it; join again
            continue;
        }
        let st = states.state();
        if st != zk::SessionState::SyncConnected {
            c.tx.send_replace(None);
            match wait_session(&mut states, st, &mut c.stop).await {
                Some(true) => continue,
                Some(false) => {
                    tokio::select! {
                        _ = clients.changed() => continue,
                        _ = &mut c.stop => return,
                    }
                }
                None => return,
            }
        }
        c.tx.send_if_modified(|cur| {
            let changed = *cur != view.leader;
            cur.clone_from(&view.leader);
            changed
        });
        let mut watchers = Vec::new();
        let mut gone = false;
        for p in &view.watch {
            match client.check_and_watch_stat(p).await {
                Ok((Some(_), w)) => watchers.push(w),
                Ok((None, _)) | Err(_) => gone = true,
            }
        }
        if gone {
            continue;
        }
        let any_change = async {
            if watchers.is_empty() {
                std::future::pending::<()>().await;
            }
            futures::future::select_all(watchers.into_iter().map(|w| Box::pin(w.changed()))).await;
        };
        // Session trouble ends our leadership at once: nobody is known to lead until the
        // session is back and the election has been read again.
        let trouble = tokio::select! {
            _ = any_change => None,
            s = next_trouble(&mut states) => Some(s),
            _ = &mut c.stop => { withdraw(&client, &node).await; return }
        };
        if let Some(s) = trouble {
            c.tx.send_replace(None);
            match wait_session(&mut states, s, &mut c.stop).await {
                Some(true) => {}
                Some(false) => {
                    // Wait for the supervisor to open a new session.
                    tokio::select! {
                        _ = clients.changed() => {}
                        _ = &mut c.stop => return,
                    }
                }
                None => return,
            }
        }
    }
}

/// The next session state other than connected.
async fn next_trouble(states: &mut zk::StateWatcher) -> zk::SessionState {
    loop {
        let s = states.changed().await;
        if s != zk::SessionState::SyncConnected {
            return s;
        }
    }
}

/// Waits until the session is connected again (`Some(true)`) or has ended (`Some(false)`);
/// `None` if the candidacy was withdrawn meanwhile.
async fn wait_session(
    states: &mut zk::StateWatcher,
    mut st: zk::SessionState,
    stop: &mut oneshot::Receiver<()>,
) -> Option<bool> {
    loop {
        if st == zk::SessionState::SyncConnected {
            return Some(true);
        }
        if is_terminal(st) {
            return Some(false);
        }
        st = tokio::select! {
            s = states.changed() => s,
            _ = &mut *stop => return None,
        };
    }
}

async fn withdraw(client: &zk::Client, node: &str) {
    let _ = tokio::time::timeout(Duration::from_secs(2), client.delete(node, None)).await;
}

// ---- the trait --------------------------------------------------------------------------

impl Store for ZkStore {
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        validate_key(key)?;
        let key = key.to_string();
        self.run("get", move |s| async move {
            let client = s.client.borrow().clone();
            read_entry(&client, key, &s.url).await
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        let prefix = prefix.to_string();
        self.run("list", move |s| list_under(s, prefix))
    }

    fn commit(&self, ops: Vec<Op>) -> Result<Vec<Option<Version>>, StoreError> {
        let mut total = 0usize;
        for op in &ops {
            validate_key(op.key())?;
            if let Op::Put { key, value, .. } = op {
                if value.len() > MAX_VALUE_BYTES {
                    return Err(StoreError::TooLarge {
                        key: key.clone(),
                        size: value.len(),
                        limit: MAX_VALUE_BYTES,
                    });
                }
                total += value.len();
            }
        }
        if total > MAX_VALUE_BYTES {
            return Err(StoreError::TooLarge {
                key: format!("a commit of {} ops starting at {}", ops.len(), ops[0].key()),
                size: total,
                limit: MAX_VALUE_BYTES,
            });
        }
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let ops = Arc::new(ops);
        self.run("commit", move |s| commit_ops(s, ops))
    }

    fn watch(&self, prefix: &str) -> Watch {
        let (tx, rx) = mpsc::unbounded_channel();
        let prefix = prefix.to_string();
        let root = watch_root(&prefix);
        // Register before returning, so that every change after this call is seen.
        let first = self
            .run("watch", move |s| async move {
                let client = s.client.borrow().clone();
                match client
                    .watch(&root, zk::AddWatchMode::PersistentRecursive)
                    .await
                {
                    Ok(w) => Ok(Some((client, w))),
                    Err(_) => Ok(None),
                }
            })
            .ok()
            .flatten();
        if first.is_none() {
            tracing::warn!(%prefix, "ZooKeeper watch not registered yet; retrying in the background");
        }
        self.handle()
            .spawn(watch_loop(Arc::downgrade(&self.shared), prefix, first, tx));
        rx
    }

    fn elect(&self, election: &str, candidate: &str) -> Result<Leadership, StoreError> {
        validate_key(election)?;
        let dir = election_dir(election);
        let me = candidate.to_string();
        let (d, m) = (dir.clone(), me.clone());
        let (client, node, view) = self.run("elect", move |s| async move {
            let client = s.client.borrow().clone();
            let node = join(&client, &d, &m)
                .await
                .map_err(|e| unavailable(&s.url, "join the election", e))?;
            let view = look(&client, &d, &node)
                .await
                .map_err(|e| unavailable(&s.url, "read the election", e))?;
            Ok((client, node, view))
        })?;
        let (tx, rx) = watch::channel(view.leader);
        let (stop_tx, stop) = oneshot::channel();
        let c = Candidacy {
            shared: Arc::downgrade(&self.shared),
            dir,
            me: me.clone(),
            tx,
            stop,
        };
        self.handle().spawn(election_loop(c, Some((client, node))));
        Ok(Leadership::new(
            me,
            rx,
            Some(Box::new(Withdraw(Some(stop_tx)))),
        ))
    }

    fn writable(&self) -> Result<(), StoreError> {
        let state = self.shared.client.borrow().state();
        match state {
            zk::SessionState::SyncConnected => Ok(()),
            s => Err(unavailable(
                &self.shared.url,
                "not writable",
                format!("the session is {s:?}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = ZkUrl::parse("zk://10.0.0.1:2181,10.0.0.2:2181/dcos/store").unwrap();
        assert_eq!(u.hosts, vec!["10.0.0.1:2181", "10.0.0.2:2181"]);
        assert_eq!(u.root, "/dcos/store");
        assert!(ZkUrl::parse("zk://[::1]:2181/x").is_ok());
        for bad in [
            "http://h:1/x",
            "zk://",
            "zk:///x",
            "zk://h/x",
            "zk://h:0/x",
            "zk://h:99999/x",
            "zk://h:1",
            "zk://h:1/",
            "zk://h:1/a//b",
            "zk://h:1,/x",
            "zk://h:1/zookeeper",
        ] {
            let e = ZkUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains("bad ZooKeeper URL"), "{bad}: {e}");
        }
    }

    #[test]
    fn key_mapping_round_trips() {
        for key in ["/", "/a", "/a/b", "/apps/web%1", "/x/\u{e000}y", "/d/v/dd"] {
            let p = value_path(key);
            assert_eq!(key_of(&p).as_deref(), Some(key), "{p}");
        }
        assert_eq!(value_path("/a/b"), "/kv/da/vb");
        assert_eq!(key_of("/kv/da"), None);
        assert_eq!(key_of("/kv/da/db"), None);
        assert_eq!(parents("/kv/da/db/vc"), vec!["/kv/da", "/kv/da/db"]);
        assert_eq!(parents("/kv/vc"), Vec::<String>::new());
        assert_eq!(election_dir("/leader/x"), "/elections/%2Fleader%2Fx");
        assert_eq!(watch_root("/apps/"), "/kv/dapps");
        assert_eq!(watch_root("/apps"), "/kv");
        assert_eq!(watch_root(""), "/kv");
    }
}
