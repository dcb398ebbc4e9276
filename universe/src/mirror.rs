//! `universe mirror`: a self-contained offline repository.
//!
//! For the chosen packages of a repository (URL, index file, built output folder or package
//! tree) every http(s) artifact is downloaded — `resource.assets.uris`, `resource.images`, CLI
//! binaries, pip URLs of command.json — verified against the sha256 the package declares (CLI
//! `contentHash`), stored content-addressed as `artifacts/sha256/<hex>`, and the package's URLs are
//! rewritten to `<base-url>/artifacts/sha256/<hex>/<file name>`. The rewritten packages are built
//! into a repository (`universe serve` hosts it with the artifacts), and `mirror-manifest.json`
//! lists packages, artifacts, Docker images (to be pushed to a registry by a later step) and
//! failures.
//!
//! Downloads resume: partial files live in `.mirror/partial/` and continue with an HTTP `Range`
//! request; finished artifacts are journalled in `.mirror/downloaded.jsonl` and skipped on the
//! next run. A checksum mismatch removes the partial file and fails that artifact only.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use repo_schema::package::PackageDefinition;
use repo_schema::{LooseVersion, RepoVersion, Repository};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::build::{self, BuildInfo, BuildOptions};
use crate::source;

/// What to mirror.
#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// Repository URL (`http(s)://…`), index file (`.json` or `.json.gz`), built output folder,
    /// or package tree.
    pub repo: String,
    pub out: PathBuf,
    /// URL the offline repository will be served at (e.g. `http://master.mesos:8082`).
    pub base_url: String,
    /// `NAME` (every version) or `NAME@VERSION`; empty = every package.
    pub packages: Vec<String>,
    /// Parallel downloads.
    pub concurrency: usize,
    pub progress: bool,
}

/// One artifact to fetch.
#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    pub url: String,
    /// The sha256 the package declares, if any.
    #[serde(rename = "declaredSha256", skip_serializing_if = "Option::is_none")]
    pub declared_sha256: Option<String>,
    /// `name@version` of the packages that use it.
    pub packages: BTreeSet<String>,
}

/// A finished artifact in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Stored {
    pub url: String,
    pub sha256: String,
    pub size: u64,
    /// Path inside the output folder.
    pub path: String,
}

/// A failure in the manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub url: String,
    pub error: String,
}

/// `mirror-manifest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub source: String,
    #[serde(rename = "baseUrl")]
    pub base_url: String,
    pub packages: Vec<ManifestPackage>,
    pub artifacts: Vec<ManifestArtifact>,
    pub images: Vec<ManifestImage>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManifestPackage {
    pub name: String,
    pub version: String,
    #[serde(rename = "releaseVersion")]
    pub release_version: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManifestArtifact {
    pub url: String,
    #[serde(rename = "mirroredUrl")]
    pub mirrored_url: String,
    pub sha256: String,
    pub size: u64,
    pub path: String,
    pub packages: BTreeSet<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManifestImage {
    pub image: String,
    pub packages: BTreeSet<String>,
}

/// Outcome of a mirror run.
#[derive(Debug, Clone)]
pub struct MirrorReport {
    pub manifest: Manifest,
    pub downloaded: usize,
    pub reused: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("cannot load the repository {source_name}: {message}")]
    Load {
        source_name: String,
        message: String,
    },
    #[error("no package matches {0}")]
    NoSuchPackage(String),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("building the mirrored repository: {0}")]
    Build(#[from] build::BuildError),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> MirrorError + '_ {
    move |e| MirrorError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

const COSMOS_ACCEPT: &str = "application/vnd.dcos.universe.repo+json;charset=utf-8;version=v5,application/vnd.dcos.universe.repo+json;charset=utf-8;version=v4,application/vnd.dcos.universe.repo+json;charset=utf-8;version=v3";

fn is_http(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn user_agent() -> String {
    format!("universe-mirror/{}", env!("CARGO_PKG_VERSION"))
}

/// Loads the source repository.
pub async fn load_repository(
    repo: &str,
    client: &reqwest::Client,
) -> Result<Repository, MirrorError> {
    let load_err = |message: String| MirrorError::Load {
        source_name: repo.to_string(),
        message,
    };
    if is_http(repo) {
        let resp = client
            .get(repo)
            .header(reqwest::header::ACCEPT, COSMOS_ACCEPT)
            .send()
            .await
            .map_err(|e| load_err(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(load_err(format!("HTTP {}", resp.status())));
        }
        let ct = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let version = RepoVersion::from_media_type(&ct).ok_or_else(|| {
            load_err(format!(
                "unsupported Content-Type {ct:?} (expected a Universe repository media type)"
            ))
        })?;
        let bytes = resp.bytes().await.map_err(|e| load_err(e.to_string()))?;
        return Repository::from_slice(&bytes, version).map_err(|e| load_err(e.to_string()));
    }
    let path = PathBuf::from(repo);
    if path.is_dir() {
        if path.join("universe.json").is_file() {
            let bytes =
                std::fs::read(path.join("universe.json")).map_err(|e| load_err(e.to_string()))?;
            return Repository::from_slice(&bytes, RepoVersion::V5)
                .map_err(|e| load_err(e.to_string()));
        }
        // A package tree: assemble it in memory.
        let tree = source::FsTree::new(&path).map_err(|e| load_err(e.to_string()))?;
        let layout = source::Layout::detect(&tree);
        let opts = BuildOptions::default();
        let scan = source::scan(&tree, &layout.packages, opts.threads);
        let mut packages = Vec::new();
        let mut problems = scan.issues;
        for rev in &scan.revisions {
            match build::assemble_revision(rev).map(PackageDefinition::from_map) {
                Ok(Ok(p)) => packages.push(p),
                Ok(Err(e)) => problems.push(repo_schema::validate::Issue::error(
                    &rev.dir,
                    "",
                    "package",
                    e.to_string(),
                )),
                Err(issues) => problems.extend(issues),
            }
        }
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(|i| i.to_string()).collect();
            return Err(load_err(list.join("\n")));
        }
        return Ok(Repository {
            version: RepoVersion::V5,
            packages,
        });
    }
    let raw = std::fs::read(&path).map_err(|e| load_err(e.to_string()))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| load_err(format!("gunzip: {e}")))?;
        out
    } else {
        raw
    };
    let stem = path
        .to_string_lossy()
        .trim_end_matches(".gz")
        .trim_end_matches(".json")
        .to_string();
    let version = std::fs::read_to_string(format!("{stem}.content_type"))
        .ok()
        .and_then(|ct| RepoVersion::from_media_type(ct.trim()))
        .unwrap_or(RepoVersion::V5);
    Repository::from_slice(&bytes, version).map_err(|e| load_err(e.to_string()))
}

/// Chooses packages by `NAME` / `NAME@VERSION`.
pub fn select<'a>(
    repo: &'a Repository,
    wanted: &[String],
) -> Result<Vec<&'a PackageDefinition>, MirrorError> {
    if wanted.is_empty() {
        return Ok(repo.packages.iter().collect());
    }
    let mut out: Vec<&PackageDefinition> = Vec::new();
    for w in wanted {
        let (name, version) = match w.split_once('@') {
            Some((n, v)) => (n, Some(v)),
            None => (w.as_str(), None),
        };
        let found: Vec<&PackageDefinition> = repo
            .packages
            .iter()
            .filter(|p| p.name() == name && version.is_none_or(|v| p.version() == v))
            .collect();
        if found.is_empty() {
            return Err(MirrorError::NoSuchPackage(w.clone()));
        }
        for p in found {
            if !out.iter().any(|q| std::ptr::eq(*q, p)) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// Visits every artifact URL string of a package (mutable, for rewriting): resource images,
/// asset URIs, CLI binary URLs (with their declared sha256), and http(s) pip entries.
fn visit_urls(pkg: &mut Map<String, Value>, f: &mut dyn FnMut(&mut String, Option<String>)) {
    if let Some(Value::Object(res)) = pkg.get_mut("resource") {
        if let Some(Value::Object(images)) = res.get_mut("images") {
            for (_, v) in images.iter_mut() {
                match v {
                    Value::String(s) if is_http(s) => f(s, None),
                    Value::Array(a) => {
                        for x in a {
                            if let Value::String(s) = x {
                                if is_http(s) {
                                    f(s, None);
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Some(Value::Object(uris)) = res.get_mut("assets").and_then(|a| a.get_mut("uris")) {
            for (_, v) in uris.iter_mut() {
                if let Value::String(s) = v {
                    if is_http(s) {
                        f(s, None);
                    }
                }
            }
        }
        if let Some(Value::Object(bins)) = res.get_mut("cli").and_then(|c| c.get_mut("binaries")) {
            for (_, arches) in bins.iter_mut() {
                let Value::Object(arches) = arches else {
                    continue;
                };
                for (_, bin) in arches.iter_mut() {
                    let Value::Object(bin) = bin else { continue };
                    let sha = bin
                        .get("contentHash")
                        .and_then(Value::as_array)
                        .and_then(|hs| {
                            hs.iter()
                                .find(|h| h.get("algo").and_then(Value::as_str) == Some("sha256"))
                                .and_then(|h| h.get("value"))
                                .and_then(Value::as_str)
                                .map(str::to_ascii_lowercase)
                        });
                    if let Some(Value::String(s)) = bin.get_mut("url") {
                        if is_http(s) {
                            f(s, sha);
                        }
                    }
                }
            }
        }
    }
    if let Some(Value::Array(pip)) = pkg.get_mut("command").and_then(|c| c.get_mut("pip")) {
        for v in pip {
            if let Value::String(s) = v {
                if is_http(s) {
                    f(s, None);
                }
            }
        }
    }
}

/// Docker images named by a package.
pub fn images_of(pkg: &PackageDefinition) -> Vec<String> {
    pkg.resource()
        .and_then(|r| r.pointer("/assets/container/docker"))
        .and_then(Value::as_object)
        .map(|m| {
            m.values()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Collects the artifacts of the chosen packages, de-duplicated by URL.
pub fn collect_artifacts(packages: &[&PackageDefinition]) -> Vec<Artifact> {
    let mut by_url: BTreeMap<String, Artifact> = BTreeMap::new();
    for p in packages {
        let id = format!("{}@{}", p.name(), p.version());
        let mut raw = p.as_map().clone();
        visit_urls(&mut raw, &mut |url, sha| {
            let a = by_url.entry(url.clone()).or_insert_with(|| Artifact {
                url: url.clone(),
                declared_sha256: None,
                packages: BTreeSet::new(),
            });
            if a.declared_sha256.is_none() {
                a.declared_sha256 = sha;
            }
            a.packages.insert(id.clone());
        });
    }
    by_url.into_values().collect()
}

/// The last path segment of a URL (without query or fragment), or `file`.
pub fn basename(url: &str) -> String {
    let no_query = url.split(['?', '#']).next().unwrap_or(url);
    let after_scheme = no_query.split_once("://").map_or(no_query, |(_, r)| r);
    let path = after_scheme.split_once('/').map_or("", |(_, p)| p);
    match path.rsplit('/').next() {
        Some(s) if !s.is_empty() && s != "." && s != ".." => s.to_string(),
        _ => "file".to_string(),
    }
}

fn url_key(url: &str) -> String {
    hex::encode(Sha256::digest(url.as_bytes()))
}

struct Store {
    out: PathBuf,
}

impl Store {
    fn blob(&self, sha: &str) -> PathBuf {
        self.out.join("artifacts").join("sha256").join(sha)
    }
    fn partial(&self, url: &str) -> PathBuf {
        self.out
            .join(".mirror")
            .join("partial")
            .join(format!("{}.part", url_key(url)))
    }
    fn journal(&self) -> PathBuf {
        self.out.join(".mirror").join("downloaded.jsonl")
    }
    fn load_journal(&self) -> BTreeMap<String, Stored> {
        let mut m = BTreeMap::new();
        if let Ok(text) = std::fs::read_to_string(self.journal()) {
            for line in text.lines() {
                // A torn last line after a crash is skipped.
                if let Ok(s) = serde_json::from_str::<Stored>(line) {
                    let ok =
                        std::fs::metadata(self.out.join(&s.path)).is_ok_and(|m| m.len() == s.size);
                    if ok {
                        m.insert(s.url.clone(), s);
                    }
                }
            }
        }
        m
    }
    fn record(&self, s: &Stored) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(s).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.journal())?;
        f.write_all(&line)?;
        f.sync_data()
    }
}

/// Downloads one artifact into the store (resuming a partial download).
async fn fetch(client: &reqwest::Client, store: &Store, a: &Artifact) -> Result<Stored, String> {
    let part = store.partial(&a.url);
    let mut hasher = Sha256::new();
    let mut have: u64 = 0;
    if let Ok(mut f) = std::fs::File::open(&part) {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| format!("reading {}: {e}", part.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            have += n as u64;
        }
    }
    let mut req = client.get(&a.url);
    if have > 0 {
        req = req.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = resp.status();
    let mut file = if status == reqwest::StatusCode::PARTIAL_CONTENT && have > 0 {
        std::fs::OpenOptions::new()
            .append(true)
            .open(&part)
            .map_err(|e| format!("{}: {e}", part.display()))?
    } else if status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE && have > 0 {
        // The partial file already holds everything.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&part)
            .map_err(|e| format!("{}: {e}", part.display()))?
    } else if status.is_success() {
        hasher = Sha256::new();
        have = 0;
        std::fs::File::create(&part).map_err(|e| format!("{}: {e}", part.display()))?
    } else {
        return Err(format!("HTTP {status}"));
    };
    if status != reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                format!("download interrupted after {have} bytes: {e} (run again to resume)")
            })?;
            file.write_all(&chunk)
                .map_err(|e| format!("{}: {e}", part.display()))?;
            hasher.update(&chunk);
            have += chunk.len() as u64;
        }
    }
    file.sync_all()
        .map_err(|e| format!("{}: {e}", part.display()))?;
    drop(file);
    let sha = hex::encode(hasher.finalize());
    if let Some(want) = &a.declared_sha256 {
        if *want != sha {
            let _ = std::fs::remove_file(&part);
            return Err(format!(
                "sha256 mismatch: the package declares {want}, the download has {sha} ({have} bytes); nothing was stored"
            ));
        }
    }
    let blob = store.blob(&sha);
    if let Some(dir) = blob.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::rename(&part, &blob).map_err(|e| format!("storing {}: {e}", blob.display()))?;
    let stored = Stored {
        url: a.url.clone(),
        sha256: sha.clone(),
        size: have,
        path: format!("artifacts/sha256/{sha}"),
    };
    store.record(&stored).map_err(|e| format!("journal: {e}"))?;
    Ok(stored)
}

/// Runs a mirror.
pub async fn mirror(opts: &MirrorOptions) -> Result<MirrorReport, MirrorError> {
    let client = reqwest::Client::builder()
        .user_agent(user_agent())
        .build()
        .map_err(|e| MirrorError::Load {
            source_name: opts.repo.clone(),
            message: e.to_string(),
        })?;
    let repo = load_repository(&opts.repo, &client).await?;
    let chosen = select(&repo, &opts.packages)?;
    let artifacts = collect_artifacts(&chosen);

    let store = Store {
        out: opts.out.clone(),
    };
    for d in [
        opts.out.join(".mirror/partial"),
        opts.out.join("artifacts/sha256"),
    ] {
        std::fs::create_dir_all(&d).map_err(io(&d))?;
    }
    let done = store.load_journal();
    let todo: Vec<&Artifact> = artifacts
        .iter()
        .filter(|a| !done.contains_key(&a.url))
        .collect();
    let reused = artifacts.len() - todo.len();

    let pb = if opts.progress {
        ProgressBar::new(todo.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} artifacts {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let pb = Arc::new(pb);
    let results: Vec<(String, Result<Stored, String>)> = futures::stream::iter(todo)
        .map(|a| {
            let client = &client;
            let store = &store;
            let pb = pb.clone();
            async move {
                pb.set_message(basename(&a.url));
                let r = fetch(client, store, a).await;
                pb.inc(1);
                if let Err(e) = &r {
                    pb.println(format!("failed: {}: {e}", a.url));
                }
                (a.url.clone(), r)
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    pb.finish_and_clear();

    let mut stored: BTreeMap<String, Stored> = done;
    let mut failures = Vec::new();
    let mut downloaded = 0;
    for (url, r) in results {
        match r {
            Ok(s) => {
                downloaded += 1;
                stored.insert(url, s);
            }
            Err(error) => failures.push(Failure { url, error }),
        }
    }
    failures.sort_by(|a, b| a.url.cmp(&b.url));

    // Rewrite URLs and build the repository.
    let base = opts.base_url.trim_end_matches('/');
    let mirrored_url =
        |s: &Stored| format!("{base}/artifacts/sha256/{}/{}", s.sha256, basename(&s.url));
    let max_legacy = BuildOptions::default()
        .dcos_versions
        .iter()
        .map(|v| LooseVersion::new(v))
        .filter(repo_schema::convert::is_legacy_dcos)
        .max();
    let mut prepared = Vec::new();
    let mut images: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut manifest_packages = Vec::new();
    for p in &chosen {
        let mut raw = p.as_map().clone();
        visit_urls(&mut raw, &mut |url, _| {
            if let Some(s) = stored.get(url.as_str()) {
                *url = mirrored_url(s);
            }
        });
        for img in images_of(p) {
            images
                .entry(img)
                .or_default()
                .insert(format!("{}@{}", p.name(), p.version()));
        }
        manifest_packages.push(ManifestPackage {
            name: p.name().to_string(),
            version: p.version().to_string(),
            release_version: p.release_version(),
        });
        prepared.push(build::prepare(raw, max_legacy.as_ref()));
    }
    let info = BuildInfo {
        generator: format!("universe mirror {}", env!("CARGO_PKG_VERSION")),
        ..Default::default()
    };
    build::write_output(&opts.out, &prepared, &BuildOptions::default(), &info)?;

    let manifest = Manifest {
        source: opts.repo.clone(),
        base_url: base.to_string(),
        packages: manifest_packages,
        artifacts: artifacts
            .iter()
            .filter_map(|a| {
                let s = stored.get(&a.url)?;
                Some(ManifestArtifact {
                    url: a.url.clone(),
                    mirrored_url: mirrored_url(s),
                    sha256: s.sha256.clone(),
                    size: s.size,
                    path: s.path.clone(),
                    packages: a.packages.clone(),
                })
            })
            .collect(),
        images: images
            .into_iter()
            .map(|(image, packages)| ManifestImage { image, packages })
            .collect(),
        failures,
    };
    let mut bytes = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    bytes.push(b'\n');
    let path = opts.out.join("mirror-manifest.json");
    build::write_atomic(&path, &[&bytes]).map_err(io(&path))?;
    Ok(MirrorReport {
        manifest,
        downloaded,
        reused,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn basenames() {
        assert_eq!(basename("https://h/a/b/jre.tar.gz"), "jre.tar.gz");
        assert_eq!(basename("https://h/a/b/cli?x=1#f"), "cli");
        assert_eq!(basename("https://h/"), "file");
        assert_eq!(basename("https://h"), "file");
        assert_eq!(basename("https://h/a/.."), "file");
    }

    #[test]
    fn collects_every_url_kind() {
        let p = PackageDefinition::from_map(
            json!({"name":"a","version":"1","releaseVersion":0,"packagingVersion":"3.0",
            "resource":{"images":{"icon-small":"https://x/s.png","screenshots":["https://x/1.png"]},
                "assets":{"uris":{"jre":"https://x/jre.tgz","empty":""},"container":{"docker":{"i":"nginx:1"}}},
                "cli":{"binaries":{"linux":{"x86-64":{"kind":"executable","url":"https://x/cli","contentHash":[{"algo":"sha256","value":"AB"}]}}}}},
            "command":{"pip":["https://x/cli.whl","requests"]}})
            .as_object()
            .unwrap()
            .clone(),
        )
        .unwrap();
        let arts = collect_artifacts(&[&p]);
        let urls: Vec<_> = arts.iter().map(|a| a.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://x/1.png",
                "https://x/cli",
                "https://x/cli.whl",
                "https://x/jre.tgz",
                "https://x/s.png"
            ]
        );
        assert_eq!(arts[1].declared_sha256.as_deref(), Some("ab"));
        assert_eq!(images_of(&p), ["nginx:1"]);
    }
}
