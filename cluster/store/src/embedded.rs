//! The embedded store: a `BTreeMap` made durable by a checksummed write-ahead log.
//!
//! Files in the store directory:
//! * `snapshot` — every entry at some point, written to a temporary file, fsynced, renamed;
//! * `wal` — records appended after that snapshot, each fsynced before its commit returns.
//!
//! A record is `len: u32 LE | crc32(body): u32 LE | body`, and a body is a sequence of ops:
//! `kind: u8 (1 put, 2 delete) | key_len: u32 | key | [value_len: u32 | value]`. Versions are
//! not logged: replaying the same ops in order recomputes them. On open, a record whose length
//! runs past the end of the file or whose checksum does not match is the torn tail of a crash:
//! the log is truncated there (nothing after it was ever acknowledged).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, watch};

use crate::{validate_key, Entry, Leadership, Op, Store, StoreError, Version, Watch, WatchEvent};

const SNAPSHOT: &str = "snapshot";
const WAL: &str = "wal";
const SNAPSHOT_MAGIC: &[u8; 8] = b"DCOSSNP1";
/// Largest record accepted when reading (a guard against a corrupt length field).
const MAX_RECORD: u32 = 1 << 30;

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

struct Watcher {
    prefix: String,
    tx: mpsc::UnboundedSender<WatchEvent>,
}

struct Inner {
    data: BTreeMap<String, (Vec<u8>, Version)>,
    wal: Option<File>,
    wal_bytes: u64,
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
    inner: Arc<Mutex<Inner>>,
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir`, replaying its snapshot and log.
    pub fn open(dir: impl AsRef<Path>) -> Result<EmbeddedStore, StoreError> {
        Self::open_with(dir, Options::default())
    }

    pub fn open_with(dir: impl AsRef<Path>, opts: Options) -> Result<EmbeddedStore, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        let mut data = BTreeMap::new();
        let snap_path = dir.join(SNAPSHOT);
        if snap_path.exists() {
            read_snapshot(&snap_path, &mut data)?;
        }
        let wal_path = dir.join(WAL);
        let wal_bytes = replay_wal(&wal_path, &mut data)?;
        let wal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&wal_path)
            .map_err(|e| io_err(&wal_path, e))?;
        Ok(EmbeddedStore {
            dir: Some(dir),
            opts,
            inner: Arc::new(Mutex::new(Inner {
                data,
                wal: Some(wal),
                wal_bytes,
                watchers: Vec::new(),
                elections: BTreeMap::new(),
            })),
        })
    }

    /// A store that keeps everything in memory (tests, simulations).
    pub fn in_memory() -> EmbeddedStore {
        EmbeddedStore {
            dir: None,
            opts: Options {
                fsync: false,
                ..Options::default()
            },
            inner: Arc::new(Mutex::new(Inner {
                data: BTreeMap::new(),
                wal: None,
                wal_bytes: 0,
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

    /// Writes a snapshot of the current state and empties the log.
    pub fn compact(&self) -> Result<(), StoreError> {
        let mut inner = self.lock();
        self.compact_locked(&mut inner)
    }

    fn compact_locked(&self, inner: &mut Inner) -> Result<(), StoreError> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let tmp = dir.join("snapshot.tmp");
        let mut buf = Vec::with_capacity(1 << 16);
        buf.extend_from_slice(SNAPSHOT_MAGIC);
        let mut body = Vec::new();
        for (k, (v, ver)) in &inner.data {
            put_bytes(&mut body, k.as_bytes());
            put_bytes(&mut body, v);
            body.extend_from_slice(&ver.to_le_bytes());
        }
        buf.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        buf.extend_from_slice(&body);
        {
            let mut f = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
            f.write_all(&buf).map_err(|e| io_err(&tmp, e))?;
            f.sync_all().map_err(|e| io_err(&tmp, e))?;
        }
        let snap = dir.join(SNAPSHOT);
        fs::rename(&tmp, &snap).map_err(|e| io_err(&snap, e))?;
        sync_dir(dir);
        let wal_path = dir.join(WAL);
        let wal = File::create(&wal_path).map_err(|e| io_err(&wal_path, e))?;
        wal.sync_all().map_err(|e| io_err(&wal_path, e))?;
        sync_dir(dir);
        inner.wal = Some(
            OpenOptions::new()
                .append(true)
                .open(&wal_path)
                .map_err(|e| io_err(&wal_path, e))?,
        );
        inner.wal_bytes = 0;
        Ok(())
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
        if !body.is_empty() {
            if let (Some(dir), Some(wal)) = (&self.dir, inner.wal.as_mut()) {
                let mut rec = Vec::with_capacity(body.len() + 8);
                rec.extend_from_slice(&(body.len() as u32).to_le_bytes());
                rec.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
                rec.extend_from_slice(&body);
                let path = dir.join(WAL);
                wal.write_all(&rec).map_err(|e| io_err(&path, e))?;
                if self.opts.fsync {
                    wal.sync_data().map_err(|e| io_err(&path, e))?;
                }
                inner.wal_bytes += rec.len() as u64;
            }
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
            // The commit is durable already; a failed compaction only leaves a longer log.
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

fn read_snapshot(
    path: &Path,
    data: &mut BTreeMap<String, (Vec<u8>, Version)>,
) -> Result<(), StoreError> {
    let buf = fs::read(path).map_err(|e| io_err(path, e))?;
    let corrupt = |reason: &str| StoreError::Corrupt {
        path: path.display().to_string(),
        reason: reason.to_string(),
    };
    if buf.len() < 12 || &buf[..8] != SNAPSHOT_MAGIC {
        return Err(corrupt("not a snapshot file"));
    }
    let crc = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]);
    let body = &buf[12..];
    if crc32fast::hash(body) != crc {
        return Err(corrupt("checksum mismatch"));
    }
    let mut c = Cursor { buf: body, pos: 0 };
    while !c.done() {
        let (Some(k), Some(v), Some(ver)) = (c.bytes(), c.bytes(), c.u64()) else {
            return Err(corrupt("truncated entry"));
        };
        let k = String::from_utf8(k.to_vec()).map_err(|_| corrupt("key is not UTF-8"))?;
        data.insert(k, (v.to_vec(), ver));
    }
    Ok(())
}

/// Replays the log into `data`; truncates a torn tail. Returns the log's valid length.
fn replay_wal(
    path: &Path,
    data: &mut BTreeMap<String, (Vec<u8>, Version)>,
) -> Result<u64, StoreError> {
    let mut buf = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut buf).map_err(|e| io_err(path, e))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err(path, e)),
    }
    let mut c = Cursor { buf: &buf, pos: 0 };
    let mut valid = 0usize;
    loop {
        let start = c.pos;
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
            // Checksum matched but the body doesn't parse: written by something else.
            return Err(StoreError::Corrupt {
                path: path.display().to_string(),
                reason: format!("undecodable record at offset {start}"),
            });
        }
        valid = c.pos;
    }
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
    Ok(valid as u64)
}

fn apply_record(body: &[u8], data: &mut BTreeMap<String, (Vec<u8>, Version)>) -> Option<()> {
    let mut c = Cursor { buf: body, pos: 0 };
    while !c.done() {
        let kind = c.take(1)?[0];
        let key = String::from_utf8(c.bytes()?.to_vec()).ok()?;
        match kind {
            1 => {
                let value = c.bytes()?.to_vec();
                let next = data.get(&key).map(|(_, v)| *v).unwrap_or(0) + 1;
                data.insert(key, (value, next));
            }
            2 => {
                data.remove(&key);
            }
            _ => return None,
        }
    }
    Some(())
}

fn io_err(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
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
