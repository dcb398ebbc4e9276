//! Git sources: read a package tree straight from a commit's tree (no checkout), and list the
//! package versions that changed between two refs (`universe diff`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;

use crate::source::{parse_revision, Entry, EntryKind, SourceError, Tree};

/// A commit's tree in a git repository.
pub struct GitTree {
    repo: Mutex<git2::Repository>,
    tree: git2::Oid,
    commit: git2::Oid,
    reference: String,
    location: String,
}

fn gerr(path: &str, e: git2::Error) -> SourceError {
    SourceError::Io {
        path: path.to_string(),
        message: e.message().to_string(),
    }
}

impl GitTree {
    /// Opens the repository at (or above) `path` — a folder or a `file://` URL — and resolves
    /// `reference` (branch, tag, commit id, `HEAD~2`, …) to a commit.
    pub fn open(path: &str, reference: &str) -> Result<GitTree, SourceError> {
        let local = path.strip_prefix("file://").unwrap_or(path);
        if path.contains("://") && !path.starts_with("file://") {
            return Err(SourceError::Io {
                path: path.to_string(),
                message: "only local git repositories (a path or file:// URL) can be read; clone it first (`git clone --bare URL`)".into(),
            });
        }
        let repo = git2::Repository::discover(Path::new(local)).map_err(|e| gerr(path, e))?;
        let obj = repo
            .revparse_single(reference)
            .map_err(|e| gerr(reference, e))?;
        let commit = obj.peel_to_commit().map_err(|e| gerr(reference, e))?;
        let tree = commit.tree().map_err(|e| gerr(reference, e))?.id();
        let commit_id = commit.id();
        drop(commit);
        drop(obj);
        Ok(GitTree {
            repo: Mutex::new(repo),
            tree,
            commit: commit_id,
            reference: reference.to_string(),
            location: path.to_string(),
        })
    }

    pub fn commit_id(&self) -> String {
        self.commit.to_string()
    }

    pub fn reference(&self) -> &str {
        &self.reference
    }

    fn with_repo<T>(
        &self,
        f: impl FnOnce(&git2::Repository) -> Result<T, SourceError>,
    ) -> Result<T, SourceError> {
        let repo = self.repo.lock().map_err(|_| SourceError::Io {
            path: self.location.clone(),
            message: "repository lock poisoned".into(),
        })?;
        f(&repo)
    }

    /// The id of the tree object at `rel` (`None` if absent).
    pub fn tree_id(&self, rel: &str) -> Result<Option<git2::Oid>, SourceError> {
        self.with_repo(|repo| {
            let root = repo.find_tree(self.tree).map_err(|e| gerr(rel, e))?;
            if rel.is_empty() {
                return Ok(Some(root.id()));
            }
            match root.get_path(Path::new(rel)) {
                Ok(e) if e.kind() == Some(git2::ObjectType::Tree) => Ok(Some(e.id())),
                Ok(_) => Ok(None),
                Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
                Err(e) => Err(gerr(rel, e)),
            }
        })
    }

    /// Blob ids of the files directly in the folder `rel`.
    pub fn file_ids(&self, rel: &str) -> Result<BTreeMap<String, git2::Oid>, SourceError> {
        self.with_repo(|repo| {
            let root = repo.find_tree(self.tree).map_err(|e| gerr(rel, e))?;
            let tree = if rel.is_empty() {
                root
            } else {
                let e = root.get_path(Path::new(rel)).map_err(|e| gerr(rel, e))?;
                repo.find_tree(e.id()).map_err(|e| gerr(rel, e))?
            };
            Ok(tree
                .iter()
                .filter(|e| e.kind() == Some(git2::ObjectType::Blob))
                .filter_map(|e| Some((e.name().ok()?.to_string(), e.id())))
                .collect())
        })
    }
}

impl Tree for GitTree {
    fn list_dir(&self, rel: &str) -> Result<Vec<Entry>, SourceError> {
        self.with_repo(|repo| {
            let root = repo.find_tree(self.tree).map_err(|e| gerr(rel, e))?;
            let tree = if rel.is_empty() {
                root
            } else {
                let e = root.get_path(Path::new(rel)).map_err(|e| gerr(rel, e))?;
                if e.kind() != Some(git2::ObjectType::Tree) {
                    return Err(SourceError::Io {
                        path: rel.to_string(),
                        message: "not a folder".into(),
                    });
                }
                repo.find_tree(e.id()).map_err(|e| gerr(rel, e))?
            };
            let mut out = Vec::new();
            for e in tree.iter() {
                let Ok(name) = e.name() else {
                    return Err(SourceError::BadName {
                        path: rel.to_string(),
                    });
                };
                let kind = match e.kind() {
                    Some(git2::ObjectType::Tree) => EntryKind::Dir,
                    // 0o120000 = symlink: never followed in git trees.
                    Some(git2::ObjectType::Blob) if e.filemode() != 0o120000 => EntryKind::File,
                    _ => EntryKind::Other,
                };
                out.push(Entry {
                    name: name.to_string(),
                    kind,
                });
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
    }

    fn read_file(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>, SourceError> {
        self.with_repo(|repo| {
            let root = repo.find_tree(self.tree).map_err(|e| gerr(rel, e))?;
            let entry = match root.get_path(Path::new(rel)) {
                Ok(e) => e,
                Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
                Err(e) => return Err(gerr(rel, e)),
            };
            if entry.filemode() == 0o120000 {
                return Err(SourceError::SymlinkEscapes {
                    path: rel.to_string(),
                    target: "a symlink in a git tree (symlinks are not followed)".into(),
                });
            }
            if entry.kind() != Some(git2::ObjectType::Blob) {
                return Err(SourceError::Io {
                    path: rel.to_string(),
                    message: "not a regular file".into(),
                });
            }
            let blob = repo.find_blob(entry.id()).map_err(|e| gerr(rel, e))?;
            let size = blob.size() as u64;
            if size > limit {
                return Err(SourceError::TooLarge {
                    path: rel.to_string(),
                    size,
                    limit,
                });
            }
            Ok(Some(blob.content().to_vec()))
        })
    }

    fn describe(&self) -> String {
        format!("{}@{} ({})", self.location, self.reference, self.commit)
    }

    fn commit(&self) -> Option<String> {
        Some(self.commit.to_string())
    }
}

/// One package version in a diff.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct VersionChange {
    pub name: String,
    #[serde(rename = "releaseVersion")]
    pub release_version: u64,
    /// `version` from package.json (of the newer side when both exist).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Files that differ (for changed versions).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

/// Package versions that differ between two refs.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Diff {
    pub from: String,
    pub to: String,
    pub added: Vec<VersionChange>,
    pub removed: Vec<VersionChange>,
    pub changed: Vec<VersionChange>,
}

/// (package, releaseVersion) → (tree id, folder path).
type RevisionMap = BTreeMap<(String, u64), (git2::Oid, String)>;

/// Every revision folder of a tree.
fn revisions(tree: &GitTree, packages: &str) -> Result<RevisionMap, SourceError> {
    let join = |a: &str, b: &str| {
        if a.is_empty() {
            b.to_string()
        } else {
            format!("{a}/{b}")
        }
    };
    let mut out = BTreeMap::new();
    for letter in tree.list_dir(packages)? {
        if letter.kind != EntryKind::Dir {
            continue;
        }
        let lpath = join(packages, &letter.name);
        for pkg in tree.list_dir(&lpath)? {
            if pkg.kind != EntryKind::Dir {
                continue;
            }
            let ppath = join(&lpath, &pkg.name);
            for rev in tree.list_dir(&ppath)? {
                let Some(n) = parse_revision(&rev.name).filter(|_| rev.kind == EntryKind::Dir)
                else {
                    continue;
                };
                let rpath = join(&ppath, &rev.name);
                if let Some(id) = tree.tree_id(&rpath)? {
                    out.insert((pkg.name.clone(), n), (id, rpath));
                }
            }
        }
    }
    Ok(out)
}

fn version_of(tree: &GitTree, dir: &str) -> Option<String> {
    let bytes = tree
        .read_file(
            &format!("{dir}/package.json"),
            crate::source::MAX_FILE_BYTES,
        )
        .ok()??;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("version")?.as_str().map(str::to_string)
}

/// Lists the package versions added, removed and changed between `from` and `to` in the git
/// repository at `repo`.
pub fn diff(repo: &str, from: &str, to: &str) -> Result<Diff, SourceError> {
    let a = GitTree::open(repo, from)?;
    let b = GitTree::open(repo, to)?;
    let packages_a = crate::source::Layout::detect(&a).packages;
    let packages_b = crate::source::Layout::detect(&b).packages;
    let ra = revisions(&a, &packages_a)?;
    let rb = revisions(&b, &packages_b)?;
    let mut d = Diff {
        from: format!("{from} ({})", a.commit_id()),
        to: format!("{to} ({})", b.commit_id()),
        ..Default::default()
    };
    for ((name, rev), (id, dir)) in &rb {
        match ra.get(&(name.clone(), *rev)) {
            None => d.added.push(VersionChange {
                name: name.clone(),
                release_version: *rev,
                version: version_of(&b, dir),
                files: Vec::new(),
            }),
            Some((old_id, old_dir)) if old_id != id => {
                let fa = a.file_ids(old_dir)?;
                let fb = b.file_ids(dir)?;
                let mut files: Vec<String> = fb
                    .iter()
                    .filter(|(f, i)| fa.get(*f) != Some(i))
                    .map(|(f, _)| f.clone())
                    .chain(fa.keys().filter(|f| !fb.contains_key(*f)).cloned())
                    .collect();
                files.sort();
                d.changed.push(VersionChange {
                    name: name.clone(),
                    release_version: *rev,
                    version: version_of(&b, dir),
                    files,
                });
            }
            Some(_) => {}
        }
    }
    for ((name, rev), (_, dir)) in &ra {
        if !rb.contains_key(&(name.clone(), *rev)) {
            d.removed.push(VersionChange {
                name: name.clone(),
                release_version: *rev,
                version: version_of(&a, dir),
                files: Vec::new(),
            });
        }
    }
    Ok(d)
}
