//! Where users, service accounts and the token-signing key live.
//!
//! [`AuthStore`] is a tiny key/value interface so that the cluster's store (embedded or
//! ZooKeeper) can back it through an adapter. Two implementations ship here: [`MemoryAuthStore`]
//! (tests, sandboxes) and [`FileAuthStore`] (one JSON file, written atomically and fsynced).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Errors from an [`AuthStore`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("auth store I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("auth store file {path} is not valid JSON: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("auth store error: {0}")]
    Other(String),
}

/// Key/value persistence for auth data. Keys look like `users/<uid>`,
/// `service-accounts/<uid>`, `keys/token-secret`; values are opaque bytes (JSON here).
pub trait AuthStore: Send + Sync + 'static {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    fn delete(&self, key: &str) -> Result<bool, StoreError>;
    /// Keys starting with `prefix`, sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
}

/// An in-memory store (lost on restart).
#[derive(Default)]
pub struct MemoryAuthStore {
    map: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryAuthStore {
    pub fn new() -> Self {
        Self::default()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl AuthStore for MemoryAuthStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(lock(&self.map).get(key).cloned())
    }
    fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        lock(&self.map).insert(key.to_string(), value.to_vec());
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        Ok(lock(&self.map).remove(key).is_some())
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(lock(&self.map)
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
}

/// A store kept in one JSON file (`{key: base64(value)}`), rewritten atomically
/// (temp file + fsync + rename) on every change. Fine for the handful of users a cluster has.
pub struct FileAuthStore {
    path: PathBuf,
    map: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl FileAuthStore {
    /// Opens (or creates on first write) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        use base64::Engine;
        let path = path.as_ref().to_path_buf();
        let map = match std::fs::read(&path) {
            Ok(bytes) => {
                let raw: BTreeMap<String, String> =
                    serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
                        path: path.clone(),
                        source,
                    })?;
                let mut map = BTreeMap::new();
                for (k, v) in raw {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(v.as_bytes())
                        .map_err(|e| {
                            StoreError::Other(format!(
                                "{}: value of key {k:?} is not base64: {e}",
                                path.display()
                            ))
                        })?;
                    map.insert(k, bytes);
                }
                map
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(StoreError::Io { path, source }),
        };
        Ok(Self {
            path,
            map: Mutex::new(map),
        })
    }

    fn flush(&self, map: &BTreeMap<String, Vec<u8>>) -> Result<(), StoreError> {
        use base64::Engine;
        let io = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        let raw: BTreeMap<&String, String> = map
            .iter()
            .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v)))
            .collect();
        let text = serde_json::to_vec_pretty(&raw).map_err(|e| StoreError::Other(e.to_string()))?;
        if let Some(dir) = self.path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
        }
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = f.set_permissions(std::fs::Permissions::from_mode(0o600));
            }
            f.write_all(&text).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        Ok(())
    }
}

impl AuthStore for FileAuthStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(lock(&self.map).get(key).cloned())
    }
    fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut map = lock(&self.map);
        map.insert(key.to_string(), value.to_vec());
        self.flush(&map)
    }
    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let mut map = lock(&self.map);
        let existed = map.remove(key).is_some();
        if existed {
            self.flush(&map)?;
        }
        Ok(existed)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(lock(&self.map)
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_store_persists() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/auth.json");
        {
            let s = FileAuthStore::open(&path).unwrap();
            s.put("users/a", b"{\"x\":1}").unwrap();
            s.put("users/b", b"2").unwrap();
            assert!(s.delete("users/b").unwrap());
        }
        let s = FileAuthStore::open(&path).unwrap();
        assert_eq!(s.get("users/a").unwrap().unwrap(), b"{\"x\":1}");
        assert_eq!(s.list("users/").unwrap(), vec!["users/a".to_string()]);
        assert!(s.get("users/b").unwrap().is_none());
    }

    #[test]
    fn corrupt_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        std::fs::write(&path, "not json").unwrap();
        let err = FileAuthStore::open(&path).err().unwrap();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
    }
}
