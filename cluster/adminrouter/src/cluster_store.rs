//! [`AuthStore`] over the cluster's state store ([`dcos_store::Store`]: embedded or ZooKeeper),
//! so that users, service accounts and the token secret live with the rest of the cluster state
//! and are shared by every master.

use std::sync::Arc;

use dcos_store::{Precondition, Store};

use crate::store::{AuthStore, StoreError};

/// Keeps auth data under `prefix` (default `/adminrouter/auth`) of a cluster store.
#[derive(Clone)]
pub struct ClusterAuthStore {
    store: Arc<dyn Store>,
    prefix: String,
}

impl ClusterAuthStore {
    /// Auth data under `/adminrouter/auth/…`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::with_prefix(store, "/adminrouter/auth")
    }

    /// Auth data under `prefix` (an absolute path without trailing `/`).
    pub fn with_prefix(store: Arc<dyn Store>, prefix: &str) -> Self {
        Self {
            store,
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}/{}", self.prefix, key.trim_start_matches('/'))
    }
}

fn err(e: dcos_store::StoreError) -> StoreError {
    StoreError::Other(e.to_string())
}

impl AuthStore for ClusterAuthStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .store
            .get(&self.key(key))
            .map_err(err)?
            .map(|e| e.value))
    }

    fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.store
            .put(&self.key(key), value.to_vec(), Precondition::Any)
            .map(|_| ())
            .map_err(err)
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let k = self.key(key);
        let existed = self.store.get(&k).map_err(err)?.is_some();
        if existed {
            self.store.delete(&k, Precondition::Any).map_err(err)?;
        }
        Ok(existed)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let base = format!("{}/", self.prefix);
        Ok(self
            .store
            .list(&self.key(prefix))
            .map_err(err)?
            .into_iter()
            .filter_map(|e| e.key.strip_prefix(&base).map(str::to_string))
            .collect())
    }
}
