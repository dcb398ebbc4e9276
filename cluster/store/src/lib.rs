//! The cluster state store.
//!
//! Every piece of cluster state (apps, deployments, tasks, jobs, repositories, agents, users)
//! goes through the [`Store`] trait. Its shape is ZooKeeper's, so that a ZooKeeper-backed store
//! can fill it for HA clusters:
//!
//! * keys are `/`-separated absolute paths (`/marathon/apps/web`);
//! * every key carries a version that starts at 1 when the key is created and grows by one on
//!   every write (ZooKeeper's `stat.version`);
//! * writes are compare-and-set: each [`Op`] carries a [`Precondition`], and a [`Store::commit`]
//!   of several ops is atomic (ZooKeeper's `multi`): all apply or none do;
//! * [`Store::watch`] streams changes under a prefix;
//! * [`Store::elect`] joins a leader election.
//!
//! The single-node default is [`EmbeddedStore`]: an in-memory map made durable by a write-ahead
//! log that is fsynced before a commit returns, compacted into a snapshot from time to time.
//! After `kill -9` and a restart nothing that a commit acknowledged is lost; a torn last record
//! (the crash happened mid-write) is detected by its checksum and dropped.
//!
//! For several masters, [`ZkStore`] keeps the same state in a ZooKeeper ensemble
//! (`zk://host:port[,host:port…]/path`); see `docs/store.md`.

mod embedded;
pub mod faulty;
pub mod zk;

pub use embedded::{replay_bytes, EmbeddedStore, LogFile, LogOpener, Options};
pub use faulty::FaultyStore;
pub use zk::{ZkOptions, ZkStore, ZkUrl};

use std::sync::Arc;

use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::{mpsc, watch};

/// The version of one key: 1 after creation, +1 on every write.
pub type Version = u64;

/// One stored key with its value and version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
    pub version: Version,
}

impl Entry {
    /// Decodes the value as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, StoreError> {
        serde_json::from_slice(&self.value).map_err(|e| StoreError::Decode {
            key: self.key.clone(),
            reason: e.to_string(),
        })
    }
}

/// What a write expects to find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Write whatever is there.
    Any,
    /// The key must not exist (create).
    Absent,
    /// The key must exist with exactly this version.
    Version(Version),
    /// The key must exist, any version.
    Exists,
}

impl Precondition {
    fn holds(self, actual: Option<Version>) -> bool {
        match (self, actual) {
            (Precondition::Any, _) => true,
            (Precondition::Absent, None) => true,
            (Precondition::Absent, Some(_)) => false,
            (Precondition::Exists, found) => found.is_some(),
            (Precondition::Version(v), Some(a)) => v == a,
            (Precondition::Version(_), None) => false,
        }
    }
}

/// One operation of an atomic commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put {
        key: String,
        value: Vec<u8>,
        expect: Precondition,
    },
    Delete {
        key: String,
        expect: Precondition,
    },
    /// Only checks a precondition (ZooKeeper's `check`), writes nothing.
    Check {
        key: String,
        expect: Precondition,
    },
}

impl Op {
    pub fn put(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
            expect: Precondition::Any,
        }
    }

    /// A put of `value` serialized as JSON.
    pub fn put_json<T: Serialize + ?Sized>(
        key: impl Into<String>,
        value: &T,
        expect: Precondition,
    ) -> Result<Op, StoreError> {
        let key = key.into();
        let value = serde_json::to_vec(value).map_err(|e| StoreError::Decode {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        Ok(Op::Put { key, value, expect })
    }

    pub fn delete(key: impl Into<String>) -> Op {
        Op::Delete {
            key: key.into(),
            expect: Precondition::Any,
        }
    }

    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key, .. } | Op::Check { key, .. } => key,
        }
    }
}

/// A change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    Put { key: String, version: Version },
    Deleted { key: String },
}

impl WatchEvent {
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put { key, .. } | WatchEvent::Deleted { key } => key,
        }
    }
}

/// The receiving end of a watch. Dropping it cancels the watch.
pub type Watch = mpsc::UnboundedReceiver<WatchEvent>;

/// Membership in a leader election. Dropping it withdraws the candidacy.
pub struct Leadership {
    me: String,
    leader: watch::Receiver<Option<String>>,
    _guard: Option<Box<dyn Send + Sync>>,
}

impl Leadership {
    /// Builds a leadership handle from a receiver of the current leader's id. `guard` is kept
    /// alive as long as the handle and dropped with it (a store uses it to withdraw).
    pub fn new(
        me: impl Into<String>,
        leader: watch::Receiver<Option<String>>,
        guard: Option<Box<dyn Send + Sync>>,
    ) -> Leadership {
        Leadership {
            me: me.into(),
            leader,
            _guard: guard,
        }
    }

    /// The id of the current leader, if any.
    pub fn leader(&self) -> Option<String> {
        self.leader.borrow().clone()
    }

    pub fn is_leader(&self) -> bool {
        self.leader.borrow().as_deref() == Some(self.me.as_str())
    }

    /// Waits until the leader changes. Returns false when the election is gone.
    pub async fn changed(&mut self) -> bool {
        self.leader.changed().await.is_ok()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conflict on {key}: expected {expected:?}, found {}", match .actual { Some(v) => format!("version {v}"), None => "no such key".to_string() })]
    Conflict {
        key: String,
        expected: Precondition,
        actual: Option<Version>,
    },
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("cannot decode the value of {key}: {reason}")]
    Decode { key: String, reason: String },
    #[error("store I/O error at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("store data at {path} is corrupt: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A value (or a whole commit) larger than the store accepts (ZooKeeper: about 1 MB).
    #[error("value of {key} is {size} bytes, larger than the store's limit of {limit} bytes")]
    TooLarge {
        key: String,
        size: usize,
        limit: usize,
    },
}

impl StoreError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}

/// The state store. Implementations are cheap to share (`Arc<dyn Store>`) and safe to call
/// from any thread. Calls block for at most one fsync (embedded) or one round trip (ZooKeeper);
/// async callers on a busy runtime may wrap them in `spawn_blocking`.
pub trait Store: Send + Sync {
    /// The entry at `key`, if any.
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError>;

    /// Every entry whose key starts with `prefix`, ordered by key. Use a trailing `/` to list
    /// the descendants of a node (`/marathon/apps/`).
    fn list(&self, prefix: &str) -> Result<Vec<Entry>, StoreError>;

    /// Applies `ops` atomically: either every precondition holds and every op applies, or
    /// nothing changes and the first failing precondition is returned as
    /// [`StoreError::Conflict`]. Returns, per op, the key's new version (`None` for deletes and
    /// checks). Durable when it returns.
    fn commit(&self, ops: Vec<Op>) -> Result<Vec<Option<Version>>, StoreError>;

    /// Streams every change to a key starting with `prefix`, from now on.
    fn watch(&self, prefix: &str) -> Watch;

    /// Joins the leader election `election` as `candidate`.
    fn elect(&self, election: &str, candidate: &str) -> Result<Leadership, StoreError>;

    /// Whether the store accepts writes now. `Err` says why not (a full disk, an I/O error
    /// it has not recovered from yet); health reports such a store's components unhealthy.
    fn writable(&self) -> Result<(), StoreError> {
        Ok(())
    }

    // ---- conveniences -------------------------------------------------------------------

    /// Writes `value` at `key` if `expect` holds; returns the new version.
    fn put(&self, key: &str, value: Vec<u8>, expect: Precondition) -> Result<Version, StoreError> {
        let v = self.commit(vec![Op::Put {
            key: key.to_string(),
            value,
            expect,
        }])?;
        Ok(v.first().copied().flatten().unwrap_or(0))
    }

    /// Deletes `key` if `expect` holds. Deleting a missing key with `Precondition::Any` is ok.
    fn delete(&self, key: &str, expect: Precondition) -> Result<(), StoreError> {
        self.commit(vec![Op::Delete {
            key: key.to_string(),
            expect,
        }])
        .map(|_| ())
    }
}

/// JSON helpers over any store.
pub trait StoreJsonExt: Store {
    fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<(T, Version)>, StoreError> {
        match self.get(key)? {
            Some(e) => Ok(Some((e.json()?, e.version))),
            None => Ok(None),
        }
    }

    fn put_json<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        expect: Precondition,
    ) -> Result<Version, StoreError> {
        let op = Op::put_json(key, value, expect)?;
        let v = self.commit(vec![op])?;
        Ok(v.first().copied().flatten().unwrap_or(0))
    }

    fn list_json<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<(String, T)>, StoreError> {
        self.list(prefix)?
            .into_iter()
            .map(|e| Ok((e.key.clone(), e.json()?)))
            .collect()
    }
}

impl<S: Store + ?Sized> StoreJsonExt for S {}

/// A shared store.
pub type SharedStore = Arc<dyn Store>;

/// Checks that `key` is an absolute `/`-separated path without empty or dot segments.
pub fn validate_key(key: &str) -> Result<(), StoreError> {
    let bad = |reason| {
        Err(StoreError::InvalidKey {
            key: key.to_string(),
            reason,
        })
    };
    if !key.starts_with('/') {
        return bad("keys are absolute paths starting with '/'");
    }
    if key.len() > 1 && key.ends_with('/') {
        return bad("keys do not end with '/'");
    }
    if key.len() > 4096 {
        return bad("keys are at most 4096 bytes");
    }
    for seg in key[1..].split('/') {
        if seg.is_empty() && key != "/" {
            return bad("empty path segment");
        }
        if seg == "." || seg == ".." {
            return bad("'.' and '..' segments are not allowed");
        }
    }
    if key.chars().any(|c| c.is_control()) {
        return bad("control characters are not allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preconditions() {
        assert!(Precondition::Any.holds(None));
        assert!(Precondition::Absent.holds(None));
        assert!(!Precondition::Absent.holds(Some(1)));
        assert!(Precondition::Version(3).holds(Some(3)));
        assert!(!Precondition::Version(3).holds(Some(4)));
        assert!(!Precondition::Version(3).holds(None));
        assert!(Precondition::Exists.holds(Some(9)));
        assert!(!Precondition::Exists.holds(None));
    }

    #[test]
    fn key_rules() {
        assert!(validate_key("/a/b").is_ok());
        assert!(validate_key("a/b").is_err());
        assert!(validate_key("/a//b").is_err());
        assert!(validate_key("/a/../b").is_err());
        assert!(validate_key("/a/").is_err());
        assert!(validate_key("/a\nb").is_err());
    }
}
