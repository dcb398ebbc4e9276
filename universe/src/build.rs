//! `universe build`: package tree → `universe.json`, `repo-up-to-<v>.json` per DC/OS version,
//! `<v>/package/<name>.json`, `repo-empty-v3.json` and the `.content_type` files, equal as JSON to
//! what upstream `gen_universe.py` writes (and byte-compatible with Python's `json.dump`).
//!
//! Every package is serialized at most twice (as is, and in the DC/OS < 1.10 form); output
//! files are concatenations of those bytes, written through a temporary file and renamed.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use repo_schema::convert;
use repo_schema::package::{assemble, type_name};
use repo_schema::pyjson;
use repo_schema::validate::Issue;
use repo_schema::{LooseVersion, RepoVersion};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::source::{self, Revision, Tree};

/// One package version ready to be written.
#[derive(Debug, Clone)]
pub struct PreparedPackage {
    pub name: String,
    pub release_version: u64,
    pub version: String,
    pub min_dcos: LooseVersion,
    /// The entry as it appears in `universe.json` and DC/OS ≥ 1.10 indexes.
    pub modern: Vec<u8>,
    /// The entry for DC/OS < 1.10 (config strings escaped, downgraded to 3.0), when some legacy
    /// target version includes it.
    pub legacy: Option<Vec<u8>>,
}

/// What the build writes for.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub dcos_versions: Vec<String>,
    pub threads: usize,
    /// Leave out invalid packages (with a warning each) instead of failing.
    pub skip_invalid: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            dcos_versions: convert::UPSTREAM_DCOS_VERSIONS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            threads: source::default_threads(),
            skip_invalid: false,
        }
    }
}

/// Provenance written to `build-info.json` (no timestamps: output stays deterministic).
#[derive(Debug, Clone, Default, Serialize)]
pub struct BuildInfo {
    pub generator: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    #[serde(rename = "packageVersions")]
    pub package_versions: usize,
    pub packages: usize,
    #[serde(rename = "dcosVersions")]
    pub dcos_versions: Vec<String>,
}

/// Summary of a build.
#[derive(Debug, Clone, Default)]
pub struct BuildSummary {
    pub files: usize,
    pub bytes: u64,
    pub package_versions: usize,
    pub packages: usize,
    pub warnings: Vec<Issue>,
}

/// The build failed: every problem found, per package.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{} problem(s) in the package tree", .0.len())]
    Invalid(Vec<Issue>),
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn parse_json(bytes: &[u8], file: &str, issues: &mut Vec<Issue>) -> Option<Value> {
    match serde_json::from_slice(bytes) {
        Ok(v) => Some(v),
        Err(e) => {
            issues.push(Issue::error(
                file,
                "",
                "json-syntax",
                format!("invalid JSON: {e}"),
            ));
            None
        }
    }
}

/// Turns one revision folder into its index entry (upstream `generate_package_from_path`).
pub fn assemble_revision(rev: &Revision) -> Result<Map<String, Value>, Vec<Issue>> {
    let mut issues = rev.issues.clone();
    let f = |n: &str| format!("{}/{n}", rev.dir);
    let package = match &rev.files.package_json {
        None => {
            issues.push(Issue::error(
                &f("package.json"),
                "",
                "package-json-required",
                "missing required package.json",
            ));
            None
        }
        Some(b) => match parse_json(b, &f("package.json"), &mut issues) {
            Some(Value::Object(m)) => Some(m),
            Some(other) => {
                issues.push(Issue::error(
                    &f("package.json"),
                    "",
                    "package-schema",
                    format!(
                        "package.json must be an object, found {}",
                        type_name(&other)
                    ),
                ));
                None
            }
            None => None,
        },
    };
    let resource = rev
        .files
        .resource_json
        .as_ref()
        .and_then(|b| parse_json(b, &f("resource.json"), &mut issues));
    let config = rev
        .files
        .config_json
        .as_ref()
        .and_then(|b| parse_json(b, &f("config.json"), &mut issues));
    let command = rev
        .files
        .command_json
        .as_ref()
        .and_then(|b| parse_json(b, &f("command.json"), &mut issues));
    if let Some(p) = &package {
        match p.get("name") {
            Some(Value::String(_)) => {}
            other => issues.push(Issue::error(
                &f("package.json"),
                "/name",
                "package-schema",
                format!(
                    "`name` must be a string, found {}",
                    other.map_or("nothing", type_name)
                ),
            )),
        }
        if let Some(v) = p.get("minDcosReleaseVersion") {
            if !v.is_string() {
                issues.push(Issue::error(
                    &f("package.json"),
                    "/minDcosReleaseVersion",
                    "package-schema",
                    format!(
                        "minDcosReleaseVersion must be a string, found {}",
                        type_name(v)
                    ),
                ));
            }
        }
    }
    match package {
        Some(p) if issues.is_empty() => Ok(assemble(
            p,
            rev.release_version,
            resource,
            rev.files.template.as_deref(),
            config,
            command,
        )),
        _ => Err(issues),
    }
}

fn legacy_versions(opts: &BuildOptions) -> Option<LooseVersion> {
    opts.dcos_versions
        .iter()
        .map(|v| LooseVersion::new(v))
        .filter(convert::is_legacy_dcos)
        .max()
}

/// Serializes an index entry in both forms.
pub fn prepare(entry: Map<String, Value>, max_legacy: Option<&LooseVersion>) -> PreparedPackage {
    let name = entry
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let version = entry
        .get("version")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let release_version = entry
        .get("releaseVersion")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let min_dcos = LooseVersion::new(
        entry
            .get("minDcosReleaseVersion")
            .and_then(Value::as_str)
            .unwrap_or("0.0"),
    );
    let mut modern = Vec::with_capacity(16 * 1024);
    // Serializing Values into a Vec cannot fail.
    let _ = pyjson::write_value(&mut modern, &entry);
    let legacy = max_legacy.filter(|v| min_dcos <= **v).map(|_| {
        let mut p = entry;
        convert::escape_config_for_legacy_cosmos(&mut p);
        convert::downgrade_package_to_v3(&mut p);
        let mut out = Vec::with_capacity(modern.len() + 64);
        let _ = pyjson::write_value(&mut out, &p);
        out
    });
    PreparedPackage {
        name,
        release_version,
        version,
        min_dcos,
        modern,
        legacy,
    }
}

/// Reads and assembles every revision of a tree. Problems are returned per package; with
/// `skip_invalid` they become warnings and the package is left out.
pub fn prepare_tree(
    tree: &dyn Tree,
    packages_dir: &str,
    opts: &BuildOptions,
) -> Result<(Vec<PreparedPackage>, Vec<Issue>), BuildError> {
    let t = std::time::Instant::now();
    let scan = source::scan(tree, packages_dir, opts.threads);
    tracing::info!(elapsed = ?t.elapsed(), revisions = scan.revisions.len(), "scanned the tree");
    let max_legacy = legacy_versions(opts);
    let results = source::parallel_map(&scan.revisions, opts.threads, |rev| {
        assemble_revision(rev).map(|m| prepare(m, max_legacy.as_ref()))
    });
    tracing::info!(elapsed = ?t.elapsed(), "assembled and serialized the packages");
    let mut problems = scan.issues;
    let mut prepared = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(p) => prepared.push(p),
            Err(issues) => problems.extend(issues),
        }
    }
    if problems.is_empty() {
        Ok((prepared, Vec::new()))
    } else if opts.skip_invalid {
        for p in &mut problems {
            p.severity = repo_schema::validate::Severity::Warning;
        }
        Ok((prepared, problems))
    } else {
        Err(BuildError::Invalid(problems))
    }
}

/// Whether the file at `path` already holds exactly the concatenation of `parts`.
fn same_content(path: &Path, parts: &[&[u8]]) -> bool {
    use std::io::Read;
    let total: usize = parts.iter().map(|p| p.len()).sum();
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() == total as u64 => {}
        _ => return false,
    }
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut r = std::io::BufReader::with_capacity(1 << 20, f);
    let mut buf = Vec::new();
    for p in parts {
        buf.resize(p.len(), 0);
        if r.read_exact(&mut buf).is_err() || buf != *p {
            return false;
        }
    }
    true
}

/// Writes `bytes` to `path` atomically (temporary file in the same folder, then rename). A file
/// that already has these bytes is left alone, so re-running a build rewrites only what changed.
pub fn write_atomic(path: &Path, parts: &[&[u8]]) -> std::io::Result<u64> {
    if same_content(path, parts) {
        return Ok(parts.iter().map(|p| p.len() as u64).sum());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let f = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        let mut n = 0u64;
        for p in parts {
            w.write_all(p)?;
            n += p.len() as u64;
        }
        w.into_inner().map_err(|e| e.into_error())?;
        std::fs::rename(&tmp, path)?;
        Ok(n)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

enum Job<'a> {
    Index { path: PathBuf, items: Vec<&'a [u8]> },
    Text { path: PathBuf, text: String },
}

/// Hard-links `path` to the already written `target` (same bytes), atomically.
fn link_atomic(target: &Path, path: &Path) -> std::io::Result<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (std::fs::metadata(target), std::fs::metadata(path)) {
            if a.dev() == b.dev() && a.ino() == b.ino() {
                return Ok(a.len());
            }
        }
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.lnk-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    if std::fs::hard_link(target, &tmp).is_err() {
        // Filesystems without hard links: copy.
        std::fs::copy(target, &tmp)?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(std::fs::metadata(path)?.len())
}

fn index_parts<'a>(items: &[&'a [u8]]) -> Vec<&'a [u8]> {
    let mut parts: Vec<&[u8]> = Vec::with_capacity(items.len() * 2 + 2);
    parts.push(b"{\"packages\": [");
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            parts.push(b", ");
        }
        parts.push(it);
    }
    parts.push(b"]}");
    parts
}

/// Writes every output file for `packages` into `out` (created if needed; an existing output is
/// updated in place and stale per-package files are removed).
pub fn write_output<'a>(
    out: &Path,
    packages: &'a [PreparedPackage],
    opts: &BuildOptions,
    info: &BuildInfo,
) -> Result<BuildSummary, BuildError> {
    let werr = |path: &Path| {
        let path = path.display().to_string();
        move |source| BuildError::Write { path, source }
    };
    std::fs::create_dir_all(out).map_err(werr(out))?;
    let mut jobs: Vec<Job<'a>> = Vec::new();
    let all: Vec<&[u8]> = packages.iter().map(|p| p.modern.as_slice()).collect();
    jobs.push(Job::Index {
        path: out.join("universe.json"),
        items: all,
    });
    jobs.push(Job::Text {
        path: out.join("universe.content_type"),
        text: RepoVersion::V5.media_type().into(),
    });
    jobs.push(Job::Index {
        path: out.join("repo-empty-v3.json"),
        items: Vec::new(),
    });
    jobs.push(Job::Text {
        path: out.join("repo-empty-v3.content_type"),
        text: RepoVersion::V3.media_type().into(),
    });
    // Per-package files with the same entries (common between DC/OS versions) are written once
    // and hard-linked: identical slices mean identical bytes.
    let mut written: HashMap<Vec<(usize, usize)>, PathBuf> = HashMap::new();
    let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut package_names: BTreeSet<String> = BTreeSet::new();
    for p in packages {
        package_names.insert(p.name.clone());
    }
    for v in &opts.dcos_versions {
        let dcos = LooseVersion::new(v);
        let legacy = convert::is_legacy_dcos(&dcos);
        let selected: Vec<&'a PreparedPackage> =
            packages.iter().filter(|p| p.min_dcos <= dcos).collect();
        fn pick(p: &PreparedPackage, legacy: bool) -> &[u8] {
            if legacy {
                p.legacy.as_deref().unwrap_or(&p.modern)
            } else {
                &p.modern
            }
        }
        let bytes_of = |p: &&'a PreparedPackage| -> &'a [u8] { pick(p, legacy) };
        jobs.push(Job::Index {
            path: out.join(format!("repo-up-to-{v}.json")),
            items: selected.iter().map(bytes_of).collect(),
        });
        jobs.push(Job::Text {
            path: out.join(format!("repo-up-to-{v}.content_type")),
            text: RepoVersion::for_dcos(&dcos).media_type().into(),
        });
        let mut by_name: Vec<(&'a str, Vec<&'a [u8]>)> = Vec::new();
        let mut pos: HashMap<&'a str, usize> = HashMap::new();
        for p in &selected {
            let i = *pos.entry(p.name.as_str()).or_insert_with(|| {
                by_name.push((p.name.as_str(), Vec::new()));
                by_name.len() - 1
            });
            by_name[i].1.push(bytes_of(p));
        }
        let dir = out.join(v).join("package");
        std::fs::create_dir_all(&dir).map_err(werr(&dir))?;
        // Remove per-package files left from an earlier build of other packages.
        let keep: BTreeSet<String> = by_name.iter().map(|(n, _)| format!("{n}.json")).collect();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".json") && !keep.contains(&name) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        for (name, items) in by_name {
            let path = dir.join(format!("{name}.json"));
            let key: Vec<(usize, usize)> = items
                .iter()
                .map(|i| (i.as_ptr() as usize, i.len()))
                .collect();
            match written.get(&key) {
                Some(first) => links.push((first.clone(), path)),
                None => {
                    written.insert(key, path.clone());
                    jobs.push(Job::Index { path, items });
                }
            }
        }
    }
    let mut info = info.clone();
    info.package_versions = packages.len();
    info.packages = package_names.len();
    info.dcos_versions = opts.dcos_versions.clone();
    let mut info_bytes = serde_json::to_vec_pretty(&info).unwrap_or_default();
    info_bytes.push(b'\n');
    jobs.push(Job::Text {
        path: out.join("build-info.json"),
        text: String::from_utf8_lossy(&info_bytes).into_owned(),
    });

    // Write big files first so that the threads finish together.
    jobs.sort_by_key(|j| match j {
        Job::Index { items, .. } => std::cmp::Reverse(items.iter().map(|i| i.len()).sum::<usize>()),
        Job::Text { .. } => std::cmp::Reverse(0),
    });
    let threads = opts.threads.max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<u64, BuildError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let jobs = &jobs;
                let next = &next;
                s.spawn(move || {
                    let mut res = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        let r = match job {
                            Job::Index { path, items } => {
                                write_atomic(path, &index_parts(items)).map_err(werr(path))
                            }
                            Job::Text { path, text } => {
                                write_atomic(path, &[text.as_bytes()]).map_err(werr(path))
                            }
                        };
                        res.push(r);
                    }
                    res
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut summary = BuildSummary {
        package_versions: packages.len(),
        packages: package_names.len(),
        ..Default::default()
    };
    for r in results {
        summary.bytes += r?;
        summary.files += 1;
    }
    for (target, path) in links {
        summary.bytes += link_atomic(&target, &path).map_err(werr(&path))?;
        summary.files += 1;
    }
    Ok(summary)
}

/// Builds the repository of `tree` into `out`.
pub fn build_tree(
    tree: &dyn Tree,
    packages_dir: &str,
    out: &Path,
    opts: &BuildOptions,
    info: BuildInfo,
) -> Result<BuildSummary, BuildError> {
    let (prepared, warnings) = prepare_tree(tree, packages_dir, opts)?;
    let t = std::time::Instant::now();
    let mut summary = write_output(out, &prepared, opts, &info)?;
    tracing::info!(elapsed = ?t.elapsed(), "wrote the output");
    summary.warnings = warnings;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prepare_serializes_both_forms() {
        let entry = json!({
            "packagingVersion":"4.0","name":"a","version":"1","minDcosReleaseVersion":"1.8",
            "upgradesFrom":["*"],"releaseVersion":0,
            "config":{"properties":{"s":{"type":"string","default":"[\"x\"]"}}}
        });
        let Value::Object(m) = entry else {
            unreachable!()
        };
        let p = prepare(m, Some(&LooseVersion::new("1.9")));
        let modern: Value = serde_json::from_slice(&p.modern).unwrap();
        assert_eq!(modern["packagingVersion"], "4.0");
        let legacy: Value = serde_json::from_slice(p.legacy.as_ref().unwrap()).unwrap();
        assert_eq!(legacy["packagingVersion"], "3.0");
        assert!(legacy.get("upgradesFrom").is_none());
        assert_eq!(
            legacy["config"]["properties"]["s"]["default"],
            "[\\\"x\\\"]"
        );
        let Value::Object(m2) = json!({"name":"b","version":"1","minDcosReleaseVersion":"1.10"})
        else {
            unreachable!()
        };
        assert!(prepare(m2, Some(&LooseVersion::new("1.9")))
            .legacy
            .is_none());
    }
}
