//! A store wrapper that refuses writes on demand, for testing that components act only on
//! durable changes (a full disk, an I/O error). Reads and watches pass through.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::{Entry, Leadership, Op, SharedStore, Store, StoreError, Version, Watch};

/// Wraps a store; while [`FaultyStore::set_failing`] is on, every commit fails with ENOSPC
/// and changes nothing.
pub struct FaultyStore {
    inner: SharedStore,
    failing: AtomicBool,
    refused: AtomicU64,
}

impl FaultyStore {
    pub fn new(inner: SharedStore) -> Arc<FaultyStore> {
        Arc::new(FaultyStore {
            inner,
            failing: AtomicBool::new(false),
            refused: AtomicU64::new(0),
        })
    }

    /// Makes every commit fail (true) or pass through again (false).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// How many commits were refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    fn error() -> StoreError {
        StoreError::Io {
            path: "faulty-store".into(),
            source: std::io::Error::from_raw_os_error(28), // ENOSPC
        }
    }
}

impl Store for FaultyStore {
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.inner.get(key)
    }

    fn list(&self, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        self.inner.list(prefix)
    }

    fn commit(&self, ops: Vec<Op>) -> Result<Vec<Option<Version>>, StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(Self::error());
        }
        self.inner.commit(ops)
    }

    fn watch(&self, prefix: &str) -> Watch {
        self.inner.watch(prefix)
    }

    fn elect(&self, election: &str, candidate: &str) -> Result<Leadership, StoreError> {
        self.inner.elect(election, candidate)
    }

    fn writable(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(Self::error());
        }
        self.inner.writable()
    }
}
