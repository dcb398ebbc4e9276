//! Reading a Universe package tree (`repo/packages/<L>/<name>/<rev>/…`) from a folder or from a
//! git tree, with the structural rules applied: letter folders, package folders, integer
//! revision folders, symlinks that stay inside the tree, bounded file sizes.

use std::path::{Path, PathBuf};

use repo_schema::validate::{self, Issue};

/// Largest package file read (the biggest config.json in the corpus is 148 KB).
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// The files of a revision folder that the tooling reads.
pub const REVISION_FILES: [&str; 5] = [
    "package.json",
    "config.json",
    "resource.json",
    "command.json",
    "marathon.json.mustache",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    Other,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub kind: EntryKind,
}

/// Errors reading the tree; each one becomes an issue of the package it concerns.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}: symlink points outside the repository ({target})")]
    SymlinkEscapes { path: String, target: String },
    #[error("{path}: file is {size} bytes, more than the {limit}-byte limit for package files")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("{path}: not valid UTF-8 in a file or folder name")]
    BadName { path: String },
}

/// A read-only tree of files (a folder, or a git tree).
pub trait Tree: Sync {
    /// Entries of the folder `rel` (relative, `/`-separated; `""` = root), sorted by name.
    fn list_dir(&self, rel: &str) -> Result<Vec<Entry>, SourceError>;
    /// Contents of the file `rel`; `Ok(None)` when it does not exist.
    fn read_file(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>, SourceError>;
    /// A description for messages and build info.
    fn describe(&self) -> String;
    /// The commit the tree comes from, if any.
    fn commit(&self) -> Option<String> {
        None
    }
}

/// A folder on disk. Symlinks are followed only while they stay inside `root`.
pub struct FsTree {
    root: PathBuf,
}

impl FsTree {
    pub fn new(root: &Path) -> Result<FsTree, SourceError> {
        let root = root.canonicalize().map_err(|e| SourceError::Io {
            path: root.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(FsTree { root })
    }

    fn path(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    /// Resolves a symlink and checks it stays inside the root.
    fn check_link(&self, path: &Path, rel: &str) -> Result<PathBuf, SourceError> {
        let target = path.canonicalize().map_err(|e| SourceError::Io {
            path: rel.to_string(),
            message: format!("broken symlink: {e}"),
        })?;
        if !target.starts_with(&self.root) {
            return Err(SourceError::SymlinkEscapes {
                path: rel.to_string(),
                target: target.display().to_string(),
            });
        }
        Ok(target)
    }
}

fn io_err(rel: &str, e: std::io::Error) -> SourceError {
    SourceError::Io {
        path: rel.to_string(),
        message: e.to_string(),
    }
}

impl Tree for FsTree {
    fn list_dir(&self, rel: &str) -> Result<Vec<Entry>, SourceError> {
        let dir = self.path(rel);
        if !rel.is_empty() {
            let meta = std::fs::symlink_metadata(&dir).map_err(|e| io_err(rel, e))?;
            if meta.file_type().is_symlink() {
                self.check_link(&dir, rel)?;
            }
        }
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| io_err(rel, e))? {
            let entry = entry.map_err(|e| io_err(rel, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                return Err(SourceError::BadName {
                    path: format!("{rel}/{}", entry.file_name().to_string_lossy()),
                });
            };
            let ft = entry.file_type().map_err(|e| io_err(rel, e))?;
            let kind = if ft.is_symlink() {
                // Classify by the target; escaping links are reported when used.
                match std::fs::metadata(entry.path()) {
                    Ok(m) if m.is_dir() => EntryKind::Dir,
                    Ok(m) if m.is_file() => EntryKind::File,
                    _ => EntryKind::Other,
                }
            } else if ft.is_dir() {
                EntryKind::Dir
            } else if ft.is_file() {
                EntryKind::File
            } else {
                EntryKind::Other
            };
            out.push(Entry { name, kind });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn read_file(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>, SourceError> {
        let path = self.path(rel);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(rel, e)),
        };
        let (path, meta) = if meta.file_type().is_symlink() {
            let target = self.check_link(&path, rel)?;
            let m = std::fs::metadata(&target).map_err(|e| io_err(rel, e))?;
            (target, m)
        } else {
            (path, meta)
        };
        if !meta.is_file() {
            return Err(SourceError::Io {
                path: rel.to_string(),
                message: "not a regular file".into(),
            });
        }
        if meta.len() > limit {
            return Err(SourceError::TooLarge {
                path: rel.to_string(),
                size: meta.len(),
                limit,
            });
        }
        std::fs::read(&path).map(Some).map_err(|e| io_err(rel, e))
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

/// The bytes of the files of one revision folder.
#[derive(Debug, Default, Clone)]
pub struct FileSet {
    pub package_json: Option<Vec<u8>>,
    pub config_json: Option<Vec<u8>>,
    pub resource_json: Option<Vec<u8>>,
    pub command_json: Option<Vec<u8>>,
    pub template: Option<Vec<u8>>,
}

impl FileSet {
    pub fn as_revision_files<'a>(
        &'a self,
        folder: &'a str,
        dir: &'a str,
        release_version: u64,
    ) -> validate::RevisionFiles<'a> {
        validate::RevisionFiles {
            folder,
            dir,
            release_version,
            package_json: self.package_json.as_deref(),
            config_json: self.config_json.as_deref(),
            resource_json: self.resource_json.as_deref(),
            command_json: self.command_json.as_deref(),
            template: self.template.as_deref(),
        }
    }
}

/// One revision folder: `<letter>/<folder>/<revision>`.
#[derive(Debug, Clone)]
pub struct Revision {
    pub letter: String,
    pub folder: String,
    pub revision: String,
    pub release_version: u64,
    /// Path used in messages (`<packages dir>/<L>/<name>/<rev>`).
    pub dir: String,
    pub files: FileSet,
    /// Problems reading this revision's files.
    pub issues: Vec<Issue>,
}

/// The result of scanning a tree.
#[derive(Debug, Default)]
pub struct Scan {
    pub revisions: Vec<Revision>,
    /// Structural problems (bad folder names, non-integer revisions, unreadable folders).
    pub issues: Vec<Issue>,
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}/{b}")
    }
}

/// Walks `<packages>/<L>/<name>/<rev>/` in sorted order and reads every revision's files
/// (on up to `threads` threads). `packages` is relative to the tree root.
pub fn scan(tree: &dyn Tree, packages: &str, threads: usize) -> Scan {
    let mut scan = Scan::default();
    let letters = match tree.list_dir(packages) {
        Ok(l) => l,
        Err(e) => {
            scan.issues
                .push(Issue::error(packages, "", "read-error", e.to_string()));
            return scan;
        }
    };
    let mut todo: Vec<(String, String, String, u64)> = Vec::new();
    for letter in letters {
        let lpath = join(packages, &letter.name);
        if letter.kind != EntryKind::Dir {
            scan.issues.push(Issue::error(
                &lpath,
                "",
                "letter-folder",
                "expected a letter folder, found a file",
            ));
            continue;
        }
        if !validate::letter_folder_ok(&letter.name) {
            scan.issues.push(Issue::error(
                &lpath,
                "",
                "letter-folder",
                format!(
                    "invalid folder name {:?}: letter folders must match ^[A-Z]$",
                    letter.name
                ),
            ));
        }
        let pkgs = match tree.list_dir(&lpath) {
            Ok(p) => p,
            Err(e) => {
                scan.issues
                    .push(Issue::error(&lpath, "", "read-error", e.to_string()));
                continue;
            }
        };
        for pkg in pkgs {
            let ppath = join(&lpath, &pkg.name);
            if pkg.kind != EntryKind::Dir {
                scan.issues.push(Issue::error(
                    &ppath,
                    "",
                    "package-folder",
                    "expected a package folder, found a file",
                ));
                continue;
            }
            let revs = match tree.list_dir(&ppath) {
                Ok(r) => r,
                Err(e) => {
                    scan.issues
                        .push(Issue::error(&ppath, "", "read-error", e.to_string()));
                    continue;
                }
            };
            let mut numbered = Vec::new();
            for rev in revs {
                let rpath = join(&ppath, &rev.name);
                if rev.kind != EntryKind::Dir {
                    scan.issues.push(Issue::error(
                        &rpath,
                        "",
                        "revision-folder",
                        "expected a revision folder, found a file",
                    ));
                    continue;
                }
                match parse_revision(&rev.name) {
                    Some(n) => numbered.push((n, rev.name)),
                    None => scan.issues.push(Issue::error(
                        &rpath,
                        "",
                        "revision-folder",
                        format!("revision folder {:?} is not a non-negative integer (it becomes releaseVersion)", rev.name),
                    )),
                }
            }
            numbered.sort();
            for (n, name) in numbered {
                todo.push((letter.name.clone(), pkg.name.clone(), name, n));
            }
        }
    }
    let read_one = |(letter, folder, revision, n): &(String, String, String, u64)| {
        let dir = join(packages, &format!("{letter}/{folder}/{revision}"));
        let mut files = FileSet::default();
        let mut issues = Vec::new();
        for name in REVISION_FILES {
            let rel = format!("{dir}/{name}");
            let got = match tree.read_file(&rel, MAX_FILE_BYTES) {
                Ok(b) => b,
                Err(e) => {
                    issues.push(Issue::error(&rel, "", "read-error", e.to_string()));
                    None
                }
            };
            match name {
                "package.json" => files.package_json = got,
                "config.json" => files.config_json = got,
                "resource.json" => files.resource_json = got,
                "command.json" => files.command_json = got,
                _ => files.template = got,
            }
        }
        Revision {
            letter: letter.clone(),
            folder: folder.clone(),
            revision: revision.clone(),
            release_version: *n,
            dir,
            files,
            issues,
        }
    };
    scan.revisions = parallel_map(&todo, threads, read_one);
    scan
}

/// `int(dirname)` as upstream: ASCII digits only (a sign or spaces are rejected here).
pub fn parse_revision(name: &str) -> Option<u64> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// Maps `f` over `items` on up to `threads` scoped threads, keeping the order.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = threads.max(1).min(items.len().max(1));
    if threads == 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| {
                let f = &f;
                s.spawn(move || c.iter().map(f).collect::<Vec<R>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// Number of worker threads to use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8)
}

/// Where packages and schemas are, for a folder given on the command line: the universe checkout
/// (`DIR/repo/packages`), its `repo` folder (`DIR/packages`), or the packages folder itself.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Packages folder relative to the tree root.
    pub packages: String,
    /// Schema folder relative to the tree root, if it exists.
    pub schemas: Option<String>,
}

impl Layout {
    pub fn detect(tree: &dyn Tree) -> Layout {
        let is_dir = |rel: &str| {
            let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
            tree.list_dir(parent)
                .map(|es| {
                    es.iter()
                        .any(|e| e.name == name && e.kind == EntryKind::Dir)
                })
                .unwrap_or(false)
        };
        for (packages, schemas) in [
            ("repo/packages", "repo/meta/schema"),
            ("packages", "meta/schema"),
        ] {
            if is_dir(packages) {
                return Layout {
                    packages: packages.into(),
                    schemas: is_dir(schemas).then(|| schemas.to_string()),
                };
            }
        }
        Layout {
            packages: String::new(),
            schemas: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_names() {
        assert_eq!(parse_revision("0"), Some(0));
        assert_eq!(parse_revision("1000"), Some(1000));
        assert_eq!(parse_revision("007"), Some(7));
        assert_eq!(parse_revision("-1"), None);
        assert_eq!(parse_revision("1.0"), None);
        assert_eq!(parse_revision("latest"), None);
        assert_eq!(parse_revision(""), None);
        assert_eq!(parse_revision("99999999999999999999999"), None);
    }

    #[test]
    fn parallel_map_keeps_order() {
        let v: Vec<u32> = (0..101).collect();
        assert_eq!(
            parallel_map(&v, 3, |x| x * 2),
            v.iter().map(|x| x * 2).collect::<Vec<_>>()
        );
        assert!(parallel_map(&Vec::<u32>::new(), 4, |x| *x).is_empty());
    }
}
