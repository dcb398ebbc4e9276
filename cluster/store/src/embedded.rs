//! The embedded store: a `BTreeMap` made durable by a checksummed write-ahead log.
//!
//! Files in the store directory (the directory is 0700 and every file 0600: the store holds
//! the token-signing secret and password hashes):
//! * `snapshot` — `DCOSSNP2 | epoch: u64 | crc32(body): u32 | body`, every entry at some
//!   point, written to `snapshot.tmp`, fsynced, renamed;
//! * `wal` — `DCOSWAL2 | epoch: u64`, then the records appended after the snapshot with the
//!   same epoch, each fsynced before its commit returns.
//!
//! A record is `len: u32 LE | crc32(body): u32 LE | body`, and a body is a sequence of ops:
//! `kind: u8 (1 put, 2 delete) | key_len: u32 | key | [value_len: u32 | value]`. Versions are
//! not logged: replaying the same ops in order recomputes them. On open, a record whose length
//! runs past the end of the file or whose checksum does not match is the torn tail of a crash:
//! the log is truncated there (nothing after it was ever acknowledged).
//!
//! Failures while writing (a full disk, an I/O error, a failed fsync) never leave a partial
//! record in front of a later good one: the log is truncated back to its last good length and
//! fsynced before the commit returns its error. A failed fsync fails that commit (its pages
//! may have been dropped by the kernel: the fsyncgate lesson), and the record is cut off. If
//! even the truncation fails, the store refuses every write until a later attempt repairs the
//! log, so nothing is acknowledged that a restart would lose.
//!
//! Compaction writes a new empty log with the next epoch, then the snapshot with that epoch
//! (the commit point), then renames the log into place: a log whose epoch is not the
//! snapshot's was already folded into it and is discarded, so no record is replayed twice.
//! Stores written by earlier builds (`DCOSSNP1`, a log without a header) are read and then
//! rewritten in this format on open.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, watch};

use crate::{validate_key, Entry, Leadership, Op, Store, StoreError, Version, Watch, WatchEvent};

const SNAPSHOT: &str = "snapshot";
const WAL: &str = "wal";
const SNAPSHOT_MAGIC_V1: &[u8; 8] = b"DCOSSNP1";
const SNAPSHOT_MAGIC: &[u8; 8] = b"DCOSSNP2";
const WAL_MAGIC: &[u8; 8] = b"DCOSWAL2";
const WAL_HEADER: u64 = 16;
/// Largest record accepted when reading (a guard against a corrupt length field).
const MAX_RECORD: u32 = 1 << 30;
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// Tuning of an [`EmbeddedStore`].
#[derive(Clone, Debug)]
pub struct Options {
    /// fsync the log before a commit returns. Turn off only for benchmarks and tests that
    /// simulate thousands of writes and don't test durability.
    pub fsync: bool,
    /// Compact the log into a snapshot once it grows past this many bytes.
    pub compact_after_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            fsync: true,
            compact_after_bytes: 64 << 20,
        }
    }
}

/// The write side of the log file: appends, fsyncs and truncations. A trait so that tests
/// (and the fuzz target) can make any of them fail at any byte.
pub trait LogFile: Send {
    /// Appends all of `buf` (or fails, possibly after writing a prefix of it).
    fn append(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes everything appended so far durable.
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

impl LogFile for File {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write_all(buf)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }
}

/// Opens the log file at a path for appending (the real file, or a faulty one in tests).
pub type LogOpener = Arc<dyn Fn(&Path) -> io::Result<Box<dyn LogFile>> + Send + Sync>;

fn open_log_file(path: &Path) -> io::Result<Box<dyn LogFile>> {
    let f = OpenOptions::new().append(true).mode(FILE_MODE).open(path)?;
    Ok(Box::new(f))
}

struct Watcher {
    prefix: String,
    tx: mpsc::UnboundedSender<WatchEvent>,
}

/// Why the log cannot take appends right now, and what repairs it.
enum Broken {
    /// A failed append could not be cut off: truncate to the last good length and fsync.
    Truncate(String),
    /// A compaction committed its snapshot but could not put the new log in place.
    NewLog(String),
}

impl Broken {
    fn reason(&self) -> &str {
        match self {
            Broken::Truncate(r) | Broken::NewLog(r) => r,
        }
    }
}

struct Inner {
    data: BTreeMap<String, (Vec<u8>, Version)>,
    wal: Option<Box<dyn LogFile>>,
    /// Length of the log's good prefix on disk (header included).
    wal_bytes: u64,
    epoch: u64,
    broken: Option<Broken>,
    watchers: Vec<Watcher>,
    elections: BTreeMap<String, Election>,
}

struct Election {
    candidates: Vec<String>,
    tx: watch::Sender<Option<String>>,
}

/// The single-node durable store (or a purely in-memory one, see [`EmbeddedStore::in_memory`]).
pub struct EmbeddedStore {
    dir: Option<PathBuf>,
    opts: Options,
    opener: LogOpener,
    inner: Arc<Mutex<Inner>>,
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir`, replaying its snapshot and log.
    pub fn open(dir: impl AsRef<Path>) -> Result<EmbeddedStore, StoreError> {
        Self::open_with(dir, Options::default())
    }

    pub fn open_with(dir: impl AsRef<Path>, opts: Options) -> Result<EmbeddedStore, StoreError> {
        Self::open_with_log(dir, opts, Arc::new(open_log_file))
    }

    /// Opens the store with a custom log opener (fault injection in tests and fuzzing).
    pub fn open_with_log(
        dir: impl AsRef<Path>,
        opts: Options,
        opener: LogOpener,
    ) -> Result<EmbeddedStore, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        restrict(&dir, DIR_MODE)?;
        for leftover in ["snapshot.tmp", "wal.tmp"] {
            let p = dir.join(leftover);
            if p.exists() {
                fs::remove_file(&p).map_err(|e| io_err(&p, e))?;
            }
        }
        let mut data = BTreeMap::new();
        let snap_path = dir.join(SNAPSHOT);
        let snapshot = if snap_path.exists() {
            restrict(&snap_path, FILE_MODE)?;
            Some(read_snapshot(&snap_path, &mut data)?)
        } else {
            None
        };
        let wal_path = dir.join(WAL);
        if wal_path.exists() {
            restrict(&wal_path, FILE_MODE)?;
        }
        let log = replay_wal(&wal_path, snapshot, &mut data)?;
        let store = EmbeddedStore {
            dir: Some(dir),
            opts,
            opener,
            inner: Arc::new(Mutex::new(Inner {
                data,
                wal: None,
                wal_bytes: 0,
                epoch: snapshot.map(|s| s.epoch).unwrap_or(0),
                broken: None,
                watchers: Vec::new(),
                elections: BTreeMap::new(),
            })),
        };
        {
            let mut inner = store.lock();
            match log {
                // The log belongs to the snapshot (or both are new): append to it.
                LogState::Current { valid } if snapshot.is_some_and(|s| !s.legacy) => {
                    inner.wal = Some((store.opener)(&wal_path).map_err(|e| io_err(&wal_path, e))?);
                    inner.wal_bytes = valid;
                }
                // A new store, a store of an earlier format, or a stale log: write the current
                // state as a snapshot with a fresh log.
                _ => store.compact_locked(&mut inner)?,
            }
        }
        Ok(store)
    }

    /// A store that keeps everything in memory (tests, simulations).
    pub fn in_memory() -> EmbeddedStore {
        EmbeddedStore {
            dir: None,
            opts: Options {
                fsync: false,
                ..Options::default()
            },
            opener: Arc::new(open_log_file),
            inner: Arc::new(Mutex::new(Inner {
                data: BTreeMap::new(),
                wal: None,
                wal_bytes: 0,
                epoch: 0,
                broken: None,
                watchers: Vec::new(),
                elections: BTreeMap::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `data` half-applied (ops are applied
        // after validation and logging, with no fallible step between), so recover.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes a snapshot of the current state and starts an empty log.
    pub fn compact(&self) -> Result<(), StoreError> {
        let mut inner = self.lock();
        self.compact_locked(&mut inner)
    }

    fn compact_locked(&self, inner: &mut Inner) -> Result<(), StoreError> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let epoch = inner.epoch + 1;
        // 1. The next log, empty, beside the current one.
        let wal_tmp = dir.join("wal.tmp");
        if let Err(e) = write_durably(&wal_tmp, &wal_header(epoch)) {
            let _ = fs::remove_file(&wal_tmp);
            return Err(e);
        }
        // 2. The snapshot with the new epoch: once renamed, the old log is stale.
        let snap_tmp = dir.join("snapshot.tmp");
        let mut body = Vec::new();
        for (k, (v, ver)) in &inner.data {
            put_bytes(&mut body, k.as_bytes());
            put_bytes(&mut body, v);
            body.extend_from_slice(&ver.to_le_bytes());
        }
        let mut buf = Vec::with_capacity(body.len() + 20);
        buf.extend_from_slice(SNAPSHOT_MAGIC);
        buf.extend_from_slice(&epoch.to_le_bytes());
        buf.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        buf.extend_from_slice(&body);
        let snap = dir.join(SNAPSHOT);
        let snapshot_written = write_durably(&snap_tmp, &buf)
            .and_then(|_| fs::rename(&snap_tmp, &snap).map_err(|e| io_err(&snap, e)))
            .and_then(|_| sync_dir(dir));
        if let Err(e) = snapshot_written {
            let _ = fs::remove_file(&snap_tmp);
            let _ = fs::remove_file(&wal_tmp);
            // Whether the rename reached the disk is unknown when only the directory fsync
            // failed: the log must be replaced before the next append either way.
            if snap_epoch(&snap) == Some(epoch) {
                inner.epoch = epoch;
                inner.wal = None;
                inner.broken = Some(Broken::NewLog(e.to_string()));
            }
            return Err(e);
        }
        // 3. The snapshot is the truth now; the old log must not take another append.
        inner.epoch = epoch;
        inner.wal = None;
        if let Err(e) = self.install_log(dir, &wal_tmp, inner) {
            inner.broken = Some(Broken::NewLog(e.to_string()));
            return Err(e);
        }
        inner.broken = None;
        Ok(())
    }

    /// Renames a prepared empty log into place and opens it for appending.
    fn install_log(
        &self,
        dir: &Path,
        prepared: &Path,
        inner: &mut Inner,
    ) -> Result<(), StoreError> {
        let wal_path = dir.join(WAL);
        fs::rename(prepared, &wal_path).map_err(|e| io_err(&wal_path, e))?;
        sync_dir(dir)?;
        inner.wal = Some((self.opener)(&wal_path).map_err(|e| io_err(&wal_path, e))?);
        inner.wal_bytes = WAL_HEADER;
        Ok(())
    }

    /// Tries to bring a broken log back to its last good state; `Ok` when appends may go on.
    fn repair(&self, inner: &mut Inner) -> Result<(), StoreError> {
        let Some(broken) = &inner.broken else {
            return Ok(());
        };
        let Some(dir) = self.dir.clone() else {
            inner.broken = None;
            return Ok(());
        };
        let reason = broken.reason().to_string();
        let repaired = match broken {
            Broken::Truncate(_) => match inner.wal.as_mut() {
                Some(wal) => wal
                    .truncate(inner.wal_bytes)
                    .and_then(|_| wal.sync())
                    .map_err(|e| io_err(&dir.join(WAL), e)),
                None => Err(StoreError::Unavailable("the log is not open".into())),
            },
            Broken::NewLog(_) => {
                let wal_tmp = dir.join("wal.tmp");
                write_durably(&wal_tmp, &wal_header(inner.epoch))
                    .and_then(|_| self.install_log(&dir, &wal_tmp, inner))
            }
        };
        match repaired {
            Ok(()) => {
                tracing::info!(after = %reason, "store log repaired; accepting writes again");
                inner.broken = None;
                Ok(())
            }
            Err(e) => Err(StoreError::Unavailable(format!(
                "the store refuses writes until its log can be repaired (after: {reason}; \
                 repair failed: {e})"
            ))),
        }
    }

    /// Appends one record durably, or leaves the log exactly as it was and fails.
    fn append(&self, inner: &mut Inner, rec: &[u8]) -> Result<(), StoreError> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let path = dir.join(WAL);
        let Some(wal) = inner.wal.as_mut() else {
            return Err(StoreError::Unavailable("the store log is not open".into()));
        };
        let fsync = self.opts.fsync;
        let written = wal
            .append(rec)
            .and_then(|_| if fsync { wal.sync() } else { Ok(()) });
        match written {
            Ok(()) => {
                inner.wal_bytes += rec.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Cut off whatever part of the record reached the file (or the page cache,
                // when only the fsync failed), so no later record follows a partial one.
                let cut = wal.truncate(inner.wal_bytes).and_then(|_| wal.sync());
                if let Err(cut_err) = cut {
                    tracing::error!(
                        error = %e, truncate_error = %cut_err,
                        "store log: a failed append could not be cut off; refusing writes \
                         until it can"
                    );
                    inner.broken = Some(Broken::Truncate(e.to_string()));
                    // The record may be whole on disk: until a repair cuts it off, a restart
                    // could read it back. Say so rather than claim nothing happened.
                    return Err(StoreError::Unavailable(format!(
                        "writing {} failed ({e}) and the partial write could not be cut off \
                         ({cut_err}); its outcome is unknown until the log is repaired, and \
                         the store refuses writes until then",
                        path.display()
                    )));
                }
                Err(io_err(&path, e))
            }
        }
    }
}

impl Store for EmbeddedStore {
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        validate_key(key)?;
        let inner = self.lock();
        Ok(inner.data.get(key).map(|(v, ver)| Entry {
            key: key.to_string(),
            value: v.clone(),
            version: *ver,
        }))
    }

    fn list(&self, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .data
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (v, ver))| Entry {
                key: k.clone(),
                value: v.clone(),
                version: *ver,
            })
            .collect())
    }

    fn commit(&self, ops: Vec<Op>) -> Result<Vec<Option<Version>>, StoreError> {
        for op in &ops {
            validate_key(op.key())?;
        }
        let mut inner = self.lock();
        // Check every precondition against the state as the earlier ops of this commit
        // leave it.
        let mut pending: BTreeMap<&str, Option<Version>> = BTreeMap::new();
        let mut versions = Vec::with_capacity(ops.len());
        for op in &ops {
            let key = op.key();
            let current = match pending.get(key) {
                Some(v) => *v,
                None => inner.data.get(key).map(|(_, v)| *v),
            };
            let expect = match op {
                Op::Put { expect, .. } | Op::Delete { expect, .. } | Op::Check { expect, .. } => {
                    *expect
                }
            };
            if !expect.holds(current) {
                return Err(StoreError::Conflict {
                    key: key.to_string(),
                    expected: expect,
                    actual: current,
                });
            }
            match op {
                Op::Put { .. } => {
                    let next = current.unwrap_or(0) + 1;
                    pending.insert(key, Some(next));
                    versions.push(Some(next));
                }
                Op::Delete { .. } => {
                    pending.insert(key, None);
                    versions.push(None);
                }
                Op::Check { .. } => versions.push(None),
            }
        }
        // Log, then apply.
        let mut body = Vec::new();
        for op in &ops {
            match op {
                Op::Put { key, value, .. } => {
                    body.push(1);
                    put_bytes(&mut body, key.as_bytes());
                    put_bytes(&mut body, value);
                }
                Op::Delete { key, .. } => {
                    body.push(2);
                    put_bytes(&mut body, key.as_bytes());
                }
                Op::Check { .. } => {}
            }
        }
        if !body.is_empty() && self.dir.is_some() {
            self.repair(&mut inner)?;
            if body.len() > MAX_RECORD as usize {
                return Err(StoreError::Unavailable(format!(
                    "a commit of {} bytes is larger than the store's limit of {MAX_RECORD} bytes",
                    body.len()
                )));
            }
            let mut rec = Vec::with_capacity(body.len() + 8);
            rec.extend_from_slice(&(body.len() as u32).to_le_bytes());
            rec.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
            rec.extend_from_slice(&body);
            self.append(&mut inner, &rec)?;
        }
        let mut events = Vec::new();
        for (op, version) in ops.into_iter().zip(&versions) {
            match op {
                Op::Put { key, value, .. } => {
                    let v = version.unwrap_or(1);
                    events.push(WatchEvent::Put {
                        key: key.clone(),
                        version: v,
                    });
                    inner.data.insert(key, (value, v));
                }
                Op::Delete { key, .. } => {
                    if inner.data.remove(&key).is_some() {
                        events.push(WatchEvent::Deleted { key });
                    }
                }
                Op::Check { .. } => {}
            }
        }
        inner.watchers.retain(|w| {
            for ev in &events {
                if ev.key().starts_with(&w.prefix) && w.tx.send(ev.clone()).is_err() {
                    return false;
                }
            }
            !w.tx.is_closed()
        });
        if inner.wal_bytes > self.opts.compact_after_bytes {
            // The commit is durable already; a failed compaction leaves a longer log, or a
            // store that repairs its log before the next write.
            if let Err(e) = self.compact_locked(&mut inner) {
                tracing::warn!(error = %e, "store compaction failed");
            }
        }
        Ok(versions)
    }

    fn watch(&self, prefix: &str) -> Watch {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().watchers.push(Watcher {
            prefix: prefix.to_string(),
            tx,
        });
        rx
    }

    fn elect(&self, election: &str, candidate: &str) -> Result<Leadership, StoreError> {
        let mut inner = self.lock();
        let e = inner
            .elections
            .entry(election.to_string())
            .or_insert_with(|| Election {
                candidates: Vec::new(),
                tx: watch::channel(None).0,
            });
        e.candidates.push(candidate.to_string());
        if e.tx.borrow().is_none() {
            e.tx.send_replace(Some(candidate.to_string()));
        }
        let rx = e.tx.subscribe();
        let guard = Withdraw {
            inner: Arc::downgrade(&self.inner),
            election: election.to_string(),
            candidate: candidate.to_string(),
        };
        Ok(Leadership::new(candidate, rx, Some(Box::new(guard))))
    }

    fn writable(&self) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.broken.is_some() {
            self.repair(&mut inner)?;
        }
        Ok(())
    }
}

/// Withdraws a candidate from an election when its [`Leadership`] is dropped.
struct Withdraw {
    inner: std::sync::Weak<Mutex<Inner>>,
    election: String,
    candidate: String,
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        let mut inner = inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = inner.elections.get_mut(&self.election) {
            if let Some(pos) = e.candidates.iter().position(|c| *c == self.candidate) {
                e.candidates.remove(pos);
            }
            let next = e.candidates.first().cloned();
            e.tx.send_replace(next);
        }
    }
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    buf.extend_from_slice(&(b.len() as u32).to_le_bytes());
    buf.extend_from_slice(b);
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

/// What a snapshot file said about itself.
#[derive(Clone, Copy, Debug)]
struct SnapshotInfo {
    epoch: u64,
    /// Written by an earlier build (`DCOSSNP1`, no epoch; its log has no header).
    legacy: bool,
}

fn read_snapshot(
    path: &Path,
    data: &mut BTreeMap<String, (Vec<u8>, Version)>,
) -> Result<SnapshotInfo, StoreError> {
    let buf = fs::read(path).map_err(|e| io_err(path, e))?;
    parse_snapshot(&buf, data).map_err(|reason| StoreError::Corrupt {
        path: path.display().to_string(),
        reason: reason.to_string(),
    })
}

fn parse_snapshot(
    buf: &[u8],
    data: &mut BTreeMap<String, (Vec<u8>, Version)>,
) -> Result<SnapshotInfo, &'static str> {
    let (info, rest) = if buf.len() >= 20 && &buf[..8] == SNAPSHOT_MAGIC {
        let epoch = u64::from_le_bytes(buf[8..16].try_into().map_err(|_| "short header")?);
        (
            SnapshotInfo {
                epoch,
                legacy: false,
            },
            &buf[16..],
        )
    } else if buf.len() >= 12 && &buf[..8] == SNAPSHOT_MAGIC_V1 {
        (
            SnapshotInfo {
                epoch: 0,
                legacy: true,
            },
            &buf[8..],
        )
    } else {
        return Err("not a snapshot file");
    };
    let crc = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
    let body = &rest[4..];
    if crc32fast::hash(body) != crc {
        return Err("checksum mismatch");
    }
    let mut c = Cursor { buf: body, pos: 0 };
    while !c.done() {
        let (Some(k), Some(v), Some(ver)) = (c.bytes(), c.bytes(), c.u64()) else {
            return Err("truncated entry");
        };
        let k = String::from_utf8(k.to_vec()).map_err(|_| "key is not UTF-8")?;
        data.insert(k, (v.to_vec(), ver));
    }
    Ok(info)
}

/// The epoch of the snapshot file at `path`, if it can be read.
fn snap_epoch(path: &Path) -> Option<u64> {
    let buf = fs::read(path).ok()?;
    if buf.len() >= 16 && &buf[..8] == SNAPSHOT_MAGIC {
        Some(u64::from_le_bytes(buf[8..16].try_into().ok()?))
    } else {
        None
    }
}

/// What replaying the log found.
enum LogState {
    /// The log continues the snapshot; its good prefix is `valid` bytes long.
    Current { valid: u64 },
    /// No log, a log of an earlier format (replayed), or a stale log (ignored): start a new
    /// one.
    Replace,
}

/// Replays the log into `data` when it continues `snapshot`; truncates a torn tail.
fn replay_wal(
    path: &Path,
    snapshot: Option<SnapshotInfo>,
    data: &mut BTreeMap<String, (Vec<u8>, Version)>,
) -> Result<LogState, StoreError> {
    let mut buf = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut buf).map_err(|e| io_err(path, e))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LogState::Replace),
        Err(e) => return Err(io_err(path, e)),
    }
    let has_header = buf.len() >= WAL_HEADER as usize && &buf[..8] == WAL_MAGIC;
    let start = match (snapshot, has_header) {
        (Some(s), true) if !s.legacy => {
            let epoch = u64::from_le_bytes(buf[8..16].try_into().unwrap_or_default());
            if epoch != s.epoch {
                tracing::info!(
                    log_epoch = epoch,
                    snapshot_epoch = s.epoch,
                    "store log predates the snapshot (a compaction was interrupted); discarding it"
                );
                return Ok(LogState::Replace);
            }
            WAL_HEADER as usize
        }
        // A log of an earlier build: records from the first byte, after a legacy snapshot or
        // none.
        (None, false) | (Some(SnapshotInfo { legacy: true, .. }), false) => 0,
        // A header without a snapshot: the store was created and crashed before its first
        // snapshot landed; the log can only be empty.
        (None, true) => return Ok(LogState::Replace),
        // A log of an earlier build after a current snapshot: the upgrade's first compaction
        // folded it in and was interrupted before the new log was put in place.
        (Some(SnapshotInfo { legacy: false, .. }), false) => {
            tracing::info!("store log predates the snapshot's format; discarding it");
            return Ok(LogState::Replace);
        }
        (Some(_), true) => {
            return Err(StoreError::Corrupt {
                path: path.display().to_string(),
                reason: "a current log after a snapshot of an earlier format".into(),
            })
        }
    };
    let valid = replay_records(&buf, start, data).map_err(|offset| StoreError::Corrupt {
        path: path.display().to_string(),
        reason: format!("undecodable record at offset {offset}"),
    })?;
    if valid < buf.len() {
        tracing::warn!(
            path = %path.display(),
            dropped_bytes = buf.len() - valid,
            "store log had a torn tail (crash during a write); truncating it"
        );
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| io_err(path, e))?;
        f.set_len(valid as u64).map_err(|e| io_err(path, e))?;
        f.sync_all().map_err(|e| io_err(path, e))?;
    }
    if start == 0 {
        return Ok(LogState::Replace);
    }
    Ok(LogState::Current {
        valid: valid as u64,
    })
}

/// Applies the records of `buf` from `start` until the first torn one; returns the end of the
/// last good record, or the offset of a record whose checksum matched but whose body did not
/// decode (not a crash: written by something else).
fn replay_records(
    buf: &[u8],
    start: usize,
    data: &mut BTreeMap<String, (Vec<u8>, Version)>,
) -> Result<usize, usize> {
    let mut c = Cursor { buf, pos: start };
    let mut valid = start;
    loop {
        let at = c.pos;
        let (Some(len), Some(crc)) = (c.u32(), c.u32()) else {
            break;
        };
        if len > MAX_RECORD {
            break;
        }
        let Some(body) = c.take(len as usize) else {
            break;
        };
        if crc32fast::hash(body) != crc {
            break;
        }
        if apply_record(body, data).is_none() {
            return Err(at);
        }
        valid = c.pos;
    }
    Ok(valid)
}

fn apply_record(body: &[u8], data: &mut BTreeMap<String, (Vec<u8>, Version)>) -> Option<()> {
    // Decode the whole record before applying any of it.
    let mut c = Cursor { buf: body, pos: 0 };
    let mut ops = Vec::new();
    while !c.done() {
        let kind = c.take(1)?[0];
        let key = String::from_utf8(c.bytes()?.to_vec()).ok()?;
        match kind {
            1 => ops.push((key, Some(c.bytes()?.to_vec()))),
            2 => ops.push((key, None)),
            _ => return None,
        }
    }
    for (key, value) in ops {
        match value {
            Some(value) => {
                let next = data.get(&key).map(|(_, v)| *v).unwrap_or(0) + 1;
                data.insert(key, (value, next));
            }
            None => {
                data.remove(&key);
            }
        }
    }
    Some(())
}

/// Parses a snapshot and a log from bytes as `open` would (no files): the fuzz target's
/// entry point. Never panics; returns the number of entries or why the input is corrupt.
#[doc(hidden)]
pub fn replay_bytes(snapshot: Option<&[u8]>, log: &[u8]) -> Result<usize, String> {
    let mut data = BTreeMap::new();
    if let Some(s) = snapshot {
        parse_snapshot(s, &mut data).map_err(str::to_string)?;
    }
    let start = if log.len() >= WAL_HEADER as usize && &log[..8] == WAL_MAGIC {
        WAL_HEADER as usize
    } else {
        0
    };
    replay_records(log, start, &mut data).map_err(|at| format!("undecodable record at {at}"))?;
    Ok(data.len())
}

/// The header of an empty log of `epoch`.
fn wal_header(epoch: u64) -> Vec<u8> {
    let mut header = Vec::with_capacity(WAL_HEADER as usize);
    header.extend_from_slice(WAL_MAGIC);
    header.extend_from_slice(&epoch.to_le_bytes());
    header
}

/// Writes `bytes` to a new file at `path` (mode 0600) and fsyncs it.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    f.write_all(bytes).map_err(|e| io_err(path, e))?;
    f.sync_all().map_err(|e| io_err(path, e))
}

/// Sets `path`'s permission bits (fixing stores created by earlier builds with 0644/0755).
fn restrict(path: &Path, mode: u32) -> Result<(), StoreError> {
    let meta = fs::metadata(path).map_err(|e| io_err(path, e))?;
    if meta.permissions().mode() & 0o777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| io_err(path, e))?;
    }
    Ok(())
}

fn io_err(path: &Path, source: io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Precondition, StoreJsonExt};

    #[test]
    fn cas_and_versions() {
        let s = EmbeddedStore::in_memory();
        assert_eq!(s.put("/a", b"1".to_vec(), Precondition::Absent).unwrap(), 1);
        assert!(s
            .put("/a", b"2".to_vec(), Precondition::Absent)
            .unwrap_err()
            .is_conflict());
        assert_eq!(
            s.put("/a", b"2".to_vec(), Precondition::Version(1))
                .unwrap(),
            2
        );
        assert!(s
            .put("/a", b"3".to_vec(), Precondition::Version(1))
            .unwrap_err()
            .is_conflict());
        let e = s.get("/a").unwrap().unwrap();
        assert_eq!((e.value.as_slice(), e.version), (&b"2"[..], 2));
        s.delete("/a", Precondition::Version(2)).unwrap();
        assert!(s.get("/a").unwrap().is_none());
        // Re-creation starts again at version 1, as in ZooKeeper.
        assert_eq!(s.put("/a", b"x".to_vec(), Precondition::Absent).unwrap(), 1);
    }

    #[test]
    fn multi_is_atomic() {
        let s = EmbeddedStore::in_memory();
        s.put("/x", b"x".to_vec(), Precondition::Any).unwrap();
        let err = s
            .commit(vec![
                Op::put("/y", b"y".to_vec()),
                Op::Check {
                    key: "/x".into(),
                    expect: Precondition::Version(7),
                },
            ])
            .unwrap_err();
        assert!(err.is_conflict());
        assert!(s.get("/y").unwrap().is_none(), "nothing applied");
        // Later ops see the effect of earlier ones in the same commit.
        let v = s
            .commit(vec![
                Op::put("/z", b"1".to_vec()),
                Op::Put {
                    key: "/z".into(),
                    value: b"2".to_vec(),
                    expect: Precondition::Version(1),
                },
            ])
            .unwrap();
        assert_eq!(v, vec![Some(1), Some(2)]);
    }

    #[test]
    fn list_by_prefix() {
        let s = EmbeddedStore::in_memory();
        for k in ["/apps/a", "/apps/b", "/appsx", "/tasks/t"] {
            s.put(k, vec![], Precondition::Any).unwrap();
        }
        let keys: Vec<_> = s
            .list("/apps/")
            .unwrap()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(keys, vec!["/apps/a", "/apps/b"]);
    }

    #[test]
    fn survives_reopen_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = EmbeddedStore::open(dir.path()).unwrap();
            s.put_json(
                "/apps/web",
                &serde_json::json!({"id": "/web"}),
                Precondition::Absent,
            )
            .unwrap();
            s.put("/apps/web", b"{}".to_vec(), Precondition::Version(1))
                .unwrap();
            s.put("/gone", b"g".to_vec(), Precondition::Any).unwrap();
            s.delete("/gone", Precondition::Any).unwrap();
        }
        // Simulate a crash in the middle of appending a record.
        let wal = dir.path().join(WAL);
        let mut f = OpenOptions::new().append(true).open(&wal).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3]).unwrap();
        drop(f);
        let s = EmbeddedStore::open(dir.path()).unwrap();
        let e = s.get("/apps/web").unwrap().unwrap();
        assert_eq!((e.value.as_slice(), e.version), (&b"{}"[..], 2));
        assert!(s.get("/gone").unwrap().is_none());
        // The torn tail is gone, and new writes land after the good records.
        s.put("/after", b"a".to_vec(), Precondition::Absent)
            .unwrap();
        drop(s);
        let s = EmbeddedStore::open(dir.path()).unwrap();
        assert!(s.get("/after").unwrap().is_some());
    }

    #[test]
    fn compaction_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options {
            fsync: false,
            compact_after_bytes: 200,
        };
        {
            let s = EmbeddedStore::open_with(dir.path(), opts.clone()).unwrap();
            for i in 0..50 {
                s.put(&format!("/k/{i}"), vec![i as u8; 10], Precondition::Any)
                    .unwrap();
            }
            s.put("/k/0", vec![9], Precondition::Version(1)).unwrap();
        }
        assert!(dir.path().join(SNAPSHOT).exists());
        let s = EmbeddedStore::open_with(dir.path(), opts).unwrap();
        assert_eq!(s.list("/k/").unwrap().len(), 50);
        let e = s.get("/k/0").unwrap().unwrap();
        assert_eq!((e.value, e.version), (vec![9], 2));
    }

    #[test]
    fn corrupt_snapshot_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(SNAPSHOT), b"garbage").unwrap();
        let err = EmbeddedStore::open(dir.path()).err().unwrap();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    }

    #[tokio::test]
    async fn watches_see_changes_under_prefix() {
        let s = EmbeddedStore::in_memory();
        let mut w = s.watch("/apps/");
        s.put("/other", vec![], Precondition::Any).unwrap();
        s.put("/apps/a", vec![], Precondition::Any).unwrap();
        s.delete("/apps/a", Precondition::Any).unwrap();
        assert_eq!(
            w.recv().await,
            Some(WatchEvent::Put {
                key: "/apps/a".into(),
                version: 1
            })
        );
        assert_eq!(
            w.recv().await,
            Some(WatchEvent::Deleted {
                key: "/apps/a".into()
            })
        );
    }

    #[test]
    fn election_hands_over_on_drop() {
        let s = EmbeddedStore::in_memory();
        let a = s.elect("/leader", "a").unwrap();
        let b = s.elect("/leader", "b").unwrap();
        assert!(a.is_leader());
        assert!(!b.is_leader());
        assert_eq!(b.leader().as_deref(), Some("a"));
        drop(a);
        assert!(b.is_leader());
    }
}

/// Fault injection: a log file that fails appends after a byte budget, fsyncs and
/// truncations on demand, as a full disk or a failing device would.
#[cfg(test)]
mod faults {
    use super::*;
    use crate::{Precondition, StoreJsonExt};

    #[derive(Default)]
    struct Plan {
        /// The next append writes this many bytes of its buffer, then fails with ENOSPC.
        append_budget: Option<usize>,
        fail_sync: bool,
        /// Fail only the next fsync.
        fail_next_sync: bool,
        fail_truncate: bool,
    }

    struct FaultyLog {
        file: File,
        plan: Arc<Mutex<Plan>>,
    }

    impl LogFile for FaultyLog {
        fn append(&mut self, buf: &[u8]) -> io::Result<()> {
            let budget = self.plan.lock().unwrap().append_budget.take();
            match budget {
                Some(n) => {
                    self.file.write_all(&buf[..n.min(buf.len())])?;
                    Err(io::Error::from_raw_os_error(28)) // ENOSPC
                }
                None => self.file.write_all(buf),
            }
        }
        fn sync(&mut self) -> io::Result<()> {
            let mut plan = self.plan.lock().unwrap();
            if plan.fail_sync || std::mem::take(&mut plan.fail_next_sync) {
                return Err(io::Error::from_raw_os_error(5)); // EIO
            }
            self.file.sync_data()
        }
        fn truncate(&mut self, len: u64) -> io::Result<()> {
            if self.plan.lock().unwrap().fail_truncate {
                return Err(io::Error::from_raw_os_error(5));
            }
            self.file.set_len(len)
        }
    }

    fn faulty_store(dir: &Path, plan: &Arc<Mutex<Plan>>) -> EmbeddedStore {
        let plan = plan.clone();
        let opener: LogOpener = Arc::new(move |path: &Path| {
            let file = OpenOptions::new().append(true).open(path)?;
            Ok(Box::new(FaultyLog {
                file,
                plan: plan.clone(),
            }) as Box<dyn LogFile>)
        });
        EmbeddedStore::open_with_log(dir, Options::default(), opener).unwrap()
    }

    /// The length of the record a commit of `/c = value` appends.
    fn record_len(key: &str, value: &[u8]) -> usize {
        8 + 1 + 4 + key.len() + 4 + value.len()
    }

    /// Every acknowledged write is there after a restart, and no refused one is.
    fn check_after_reopen(dir: &Path, acknowledged: &[(&str, &str, u64)], refused: &[&str]) {
        let s = EmbeddedStore::open(dir).unwrap();
        for (key, value, version) in acknowledged {
            let e = s.get(key).unwrap().unwrap_or_else(|| panic!("{key} lost"));
            assert_eq!(
                (e.value.as_slice(), e.version),
                (value.as_bytes(), *version),
                "{key}"
            );
        }
        for key in refused {
            assert!(
                s.get(key).unwrap().is_none(),
                "{key} was refused but is there"
            );
        }
    }

    #[test]
    fn a_failed_append_at_any_byte_loses_nothing_acknowledged() {
        let value = b"the third value";
        for cut in 0..record_len("/c", value) {
            let dir = tempfile::tempdir().unwrap();
            let plan = Arc::new(Mutex::new(Plan::default()));
            let s = faulty_store(dir.path(), &plan);
            s.put("/a", b"1".to_vec(), Precondition::Absent).unwrap();
            s.put("/b", b"2".to_vec(), Precondition::Absent).unwrap();
            plan.lock().unwrap().append_budget = Some(cut);
            let err = s
                .put("/c", value.to_vec(), Precondition::Absent)
                .unwrap_err();
            assert!(matches!(err, StoreError::Io { .. }), "cut {cut}: {err}");
            assert!(
                s.get("/c").unwrap().is_none(),
                "a refused write is not kept"
            );
            // Space is back: later writes are acknowledged and must survive.
            s.put("/d", b"4".to_vec(), Precondition::Absent).unwrap();
            s.put("/a", b"1b".to_vec(), Precondition::Version(1))
                .unwrap();
            drop(s);
            check_after_reopen(
                dir.path(),
                &[("/a", "1b", 2), ("/b", "2", 1), ("/d", "4", 1)],
                &["/c"],
            );
        }
    }

    #[test]
    fn a_failed_fsync_fails_the_write_and_cuts_it_off() {
        let dir = tempfile::tempdir().unwrap();
        let plan = Arc::new(Mutex::new(Plan::default()));
        let s = faulty_store(dir.path(), &plan);
        s.put("/a", b"1".to_vec(), Precondition::Absent).unwrap();
        plan.lock().unwrap().fail_sync = true;
        // The record reached the page cache but its fsync failed: it must not count, and it
        // must not come back after a restart either.
        // fsync still failing, the cut cannot be made durable either: the outcome is unknown
        // until the log is repaired, and the error says so.
        let err = s
            .put("/b", b"2".to_vec(), Precondition::Absent)
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        assert!(err.to_string().contains("outcome is unknown"), "{err}");
        assert!(s.get("/b").unwrap().is_none());
        // Writes are refused until the log is repaired.
        assert!(s.writable().is_err());
        assert!(s.put("/c", b"3".to_vec(), Precondition::Absent).is_err());
        plan.lock().unwrap().fail_sync = false;
        assert!(s.writable().is_ok(), "repaired once the device works again");
        s.put("/d", b"4".to_vec(), Precondition::Absent).unwrap();
        drop(s);
        check_after_reopen(dir.path(), &[("/a", "1", 1), ("/d", "4", 1)], &["/b", "/c"]);
    }

    #[test]
    fn a_single_failed_fsync_is_an_error_and_the_record_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let plan = Arc::new(Mutex::new(Plan::default()));
        let s = faulty_store(dir.path(), &plan);
        s.put("/a", b"1".to_vec(), Precondition::Absent).unwrap();
        plan.lock().unwrap().fail_next_sync = true;
        let err = s
            .put("/b", b"2".to_vec(), Precondition::Absent)
            .unwrap_err();
        assert!(matches!(err, StoreError::Io { .. }), "{err}");
        assert!(s.writable().is_ok(), "the record was cut off durably");
        s.put("/c", b"3".to_vec(), Precondition::Absent).unwrap();
        drop(s);
        check_after_reopen(dir.path(), &[("/a", "1", 1), ("/c", "3", 1)], &["/b"]);
    }

    #[test]
    fn a_log_that_cannot_be_cut_refuses_writes_until_repaired() {
        for cut in [0, 5, 12] {
            let dir = tempfile::tempdir().unwrap();
            let plan = Arc::new(Mutex::new(Plan::default()));
            let s = faulty_store(dir.path(), &plan);
            s.put("/a", b"1".to_vec(), Precondition::Absent).unwrap();
            {
                let mut p = plan.lock().unwrap();
                p.append_budget = Some(cut);
                p.fail_truncate = true;
            }
            assert!(s.put("/b", b"2".to_vec(), Precondition::Absent).is_err());
            // The partial record is still in the file: nothing may be appended after it.
            let err = s
                .put("/c", b"3".to_vec(), Precondition::Absent)
                .unwrap_err();
            assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
            assert!(err.to_string().contains("refuses writes"), "{err}");
            assert!(s.writable().is_err());
            plan.lock().unwrap().fail_truncate = false;
            s.put("/d", b"4".to_vec(), Precondition::Absent).unwrap();
            drop(s);
            check_after_reopen(dir.path(), &[("/a", "1", 1), ("/d", "4", 1)], &["/b", "/c"]);
        }
    }

    #[test]
    fn an_interrupted_compaction_replays_nothing_twice() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = EmbeddedStore::open(dir.path()).unwrap();
            s.put("/a", b"1".to_vec(), Precondition::Absent).unwrap();
            s.put("/a", b"2".to_vec(), Precondition::Version(1))
                .unwrap();
        }
        // Simulate a crash after the snapshot of the next epoch landed but before the new log
        // replaced the old one: write that snapshot by hand from the current state.
        let old_wal = fs::read(dir.path().join(WAL)).unwrap();
        {
            let s = EmbeddedStore::open(dir.path()).unwrap();
            s.compact().unwrap();
        }
        fs::write(dir.path().join(WAL), &old_wal).unwrap();
        let s = EmbeddedStore::open(dir.path()).unwrap();
        let e = s.get("/a").unwrap().unwrap();
        assert_eq!(
            (e.value.as_slice(), e.version),
            (&b"2"[..], 2),
            "not replayed twice"
        );
        s.put("/a", b"3".to_vec(), Precondition::Version(2))
            .unwrap();
        drop(s);
        check_after_reopen(dir.path(), &[("/a", "3", 3)], &[]);
    }

    #[test]
    fn stores_of_the_earlier_format_are_read_and_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        // A DCOSSNP1 snapshot with /a (version 1), then a header-less log putting /b.
        let mut body = Vec::new();
        put_bytes(&mut body, b"/a");
        put_bytes(&mut body, b"1");
        body.extend_from_slice(&1u64.to_le_bytes());
        let mut snap = SNAPSHOT_MAGIC_V1.to_vec();
        snap.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        snap.extend_from_slice(&body);
        fs::write(dir.path().join(SNAPSHOT), snap).unwrap();
        let mut rec_body = vec![1];
        put_bytes(&mut rec_body, b"/b");
        put_bytes(&mut rec_body, b"2");
        let mut wal = (rec_body.len() as u32).to_le_bytes().to_vec();
        wal.extend_from_slice(&crc32fast::hash(&rec_body).to_le_bytes());
        wal.extend_from_slice(&rec_body);
        fs::write(dir.path().join(WAL), wal).unwrap();
        fs::set_permissions(dir.path().join(WAL), fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let s = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(s.get_json::<u32>("/a").unwrap().map(|x| x.1), Some(1));
        assert_eq!(s.get("/b").unwrap().unwrap().value, b"2");
        drop(s);
        check_after_reopen(dir.path(), &[("/a", "1", 1), ("/b", "2", 1)], &[]);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.path()), 0o700, "store directory fixed on open");
        assert_eq!(mode(&dir.path().join(WAL)), 0o600);
        assert_eq!(mode(&dir.path().join(SNAPSHOT)), 0o600);
    }

    #[test]
    fn replay_bytes_never_panics_on_junk() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..400 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = replay_bytes(Some(&junk), &junk);
            let _ = replay_bytes(None, &junk);
        }
    }
}
