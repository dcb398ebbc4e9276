//! Package repositories: the persisted ordered list, fetching (http(s) and file), the ETag cache
//! and the merged package collection (contract §1.9, §5).

use std::collections::{HashMap, HashSet};
use std::io::Read as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use cosmos_render::{labels, PackageRenderer, RenderError};
use dcos_store::{Precondition, Store, StoreError};
use repo_schema::PackageDefinition;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::{CosmosError, CosmosResult, Detail};
use crate::media::{self, MediaType};

/// One configured repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    /// Display name, unique in the list.
    pub name: String,
    /// Where the index is fetched from.
    pub uri: String,
}

impl Repository {
    /// Builds a repository entry.
    pub fn new(name: impl Into<String>, uri: impl Into<String>) -> Self {
        Repository {
            name: name.into(),
            uri: uri.into(),
        }
    }

    fn json(&self) -> Value {
        json!({"name": self.name, "uri": self.uri})
    }
}

/// The Cosmos default repository list.
pub fn default_repositories() -> Vec<Repository> {
    vec![Repository::new(
        "Universe",
        "https://universe.mesosphere.com/repo",
    )]
}

// ---------------------------------------------------------------------------------------------
// persisted list

/// Store key of the repository list (the ZooKeeper node of Cosmos, under `/cosmos`).
pub const REPO_LIST_KEY: &str = "/cosmos/package/repositories";
const REPO_LIST_MEDIA: &str =
    "application/vnd.dcos.package.repository.repo-list+json;charset=utf-8;version=v1";

/// The repository list in the state store, as a Cosmos storage envelope
/// (`{"metadata":{Content-Type,Content-Encoding:gzip},"data":base64(gzip([{name,uri}…]))}`).
/// The version [`RepositoryList::read`] answers for a list that is not in the store (store
/// versions start at 1).
pub const UNSTORED: u64 = 0;

pub struct RepositoryList {
    store: Arc<dyn Store>,
    defaults: Vec<Repository>,
}

fn store_err(e: StoreError) -> CosmosError {
    if e.is_conflict() {
        CosmosError::concurrent_access()
    } else {
        CosmosError::store_refused(&e)
    }
}

fn store_read_err(e: StoreError) -> CosmosError {
    CosmosError::store_unreadable(&e)
}

impl RepositoryList {
    /// A list persisted in `store`, created with `defaults` on first use.
    pub fn new(store: Arc<dyn Store>, defaults: Vec<Repository>) -> Self {
        RepositoryList { store, defaults }
    }

    fn encode(list: &[Repository]) -> Vec<u8> {
        let inner = serde_json::to_vec(list).unwrap_or_default();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = std::io::Write::write_all(&mut enc, &inner);
        let gz = enc.finish().unwrap_or_default();
        let env = json!({
            "metadata": {"Content-Type": REPO_LIST_MEDIA, "Content-Encoding": "gzip"},
            "data": base64::engine::general_purpose::STANDARD.encode(gz),
        });
        serde_json::to_vec(&env).unwrap_or_default()
    }

    fn decode(bytes: &[u8]) -> CosmosResult<Vec<Repository>> {
        let bad = |m: String| CosmosError::unhandled(format!("stored repository list: {m}"));
        let env: Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        let data = env
            .get("data")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no data".into()))?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| bad(e.to_string()))?;
        let raw = match env
            .pointer("/metadata/Content-Encoding")
            .and_then(Value::as_str)
        {
            Some("gzip") => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(raw.as_slice())
                    .read_to_end(&mut out)
                    .map_err(|e| bad(e.to_string()))?;
                out
            }
            _ => raw,
        };
        serde_json::from_slice(&raw).map_err(|e| bad(e.to_string()))
    }

    /// The current list and its store version (creating the default list when absent).
    /// If the store refuses to create it (a full disk), the defaults are answered with
    /// version [`UNSTORED`]: reading must not fail because a write did, and nothing is kept
    /// in memory — the next read tries to store them again.
    pub fn read(&self) -> CosmosResult<(Vec<Repository>, u64)> {
        for _ in 0..3 {
            match self.store.get(REPO_LIST_KEY).map_err(store_read_err)? {
                Some(e) => return Ok((Self::decode(&e.value)?, e.version)),
                None => {
                    match self.store.put(
                        REPO_LIST_KEY,
                        Self::encode(&self.defaults),
                        Precondition::Absent,
                    ) {
                        Ok(v) => return Ok((self.defaults.clone(), v)),
                        Err(e) if e.is_conflict() => continue,
                        Err(e) => {
                            tracing::warn!(
                                error = %e,
                                "the store refused the default repository list; using it unstored"
                            );
                            return Ok((self.defaults.clone(), UNSTORED));
                        }
                    }
                }
            }
        }
        Err(CosmosError::concurrent_access())
    }

    /// Writes `list` if the stored version is still `version` (else `ConcurrentAccess`);
    /// `version` [`UNSTORED`] means the list must still be absent. A write the store refuses
    /// is a 503 `ServiceUnavailable` naming the cause; nothing is kept (the list is read
    /// from the store on every request).
    pub fn write(&self, list: &[Repository], version: u64) -> CosmosResult<()> {
        let expect = if version == UNSTORED {
            Precondition::Absent
        } else {
            Precondition::Version(version)
        };
        self.store
            .put(REPO_LIST_KEY, Self::encode(list), expect)
            .map(|_| ())
            .map_err(store_err)
    }
}

// ---------------------------------------------------------------------------------------------
// packages

/// One package version of a repository: repo-schema's [`PackageDefinition`] (the raw JSON kept
/// as served, with typed accessors) plus Cosmos's per-package caches.
pub struct RepoPackage {
    /// The package definition as the repository serves it.
    pub def: PackageDefinition,
    renderer: OnceLock<Result<Arc<PackageRenderer>, RenderError>>,
    definition_label: OnceLock<String>,
}

impl std::fmt::Debug for RepoPackage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}@{} (release {})",
            self.name(),
            self.version(),
            self.release()
        )
    }
}

impl RepoPackage {
    /// Wraps a decoded package definition.
    pub fn new(def: PackageDefinition) -> Self {
        RepoPackage {
            def,
            renderer: OnceLock::new(),
            definition_label: OnceLock::new(),
        }
    }

    /// `name`
    pub fn name(&self) -> &str {
        self.def.name()
    }

    /// `version`
    pub fn version(&self) -> &str {
        self.def.version()
    }

    /// `releaseVersion`
    pub fn release(&self) -> u64 {
        self.def.release_version()
    }

    /// The package JSON object as the repository serves it.
    pub fn json(&self) -> &Map<String, Value> {
        self.def.as_map()
    }

    /// A top-level field of the package JSON.
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.def.as_map().get(field)
    }

    /// `packagingVersion`
    pub fn packaging_version(&self) -> &str {
        self.def.packaging_version().as_str()
    }

    /// Whether the package has a Marathon template.
    pub fn has_template(&self) -> bool {
        self.def.marathon_template_base64().is_some()
    }

    /// The prepared renderer (template decoded and parsed once). `None` without a template.
    pub fn renderer(&self) -> Option<Result<Arc<PackageRenderer>, RenderError>> {
        let b64 = self.def.marathon_template_base64()?;
        Some(
            self.renderer
                .get_or_init(|| {
                    let text = cosmos_render::decode_template(b64)?;
                    PackageRenderer::new(&text, self.def.config(), self.def.resource())
                        .map(Arc::new)
                })
                .clone(),
        )
    }

    /// The package-derived part of the `DCOS_PACKAGE_*` labels (the definition label is
    /// encoded once).
    pub fn label_identity(&self) -> labels::PackageIdentity<'_> {
        labels::PackageIdentity {
            name: self.name(),
            version: self.version(),
            definition: self
                .definition_label
                .get_or_init(|| labels::encode_package_definition_map(self.def.as_map())),
        }
    }
}

/// Decodes a repository index body `{"packages":[…]}`. Any undecodable package fails the whole
/// repository (`JsonDecodingError`); text that is not JSON gives `JsonParsingError`.
pub fn decode_repository(bytes: &[u8]) -> CosmosResult<Vec<Arc<RepoPackage>>> {
    #[derive(Deserialize)]
    struct Index {
        packages: Vec<Value>,
    }
    let snippet = || String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).into_owned();
    let idx: Index = match serde_json::from_slice(bytes) {
        Ok(i) => i,
        Err(e) if e.is_syntax() || e.is_eof() => {
            return Err(CosmosError::json_parsing(
                "ParseException",
                &e.to_string(),
                &snippet(),
            ));
        }
        Err(e) => {
            return Err(CosmosError::json_decoding(
                "Repository",
                &e.to_string(),
                &snippet(),
            ));
        }
    };
    let mut out = Vec::with_capacity(idx.packages.len());
    for (i, p) in idx.packages.into_iter().enumerate() {
        out.push(Arc::new(decode_package(p, i)?));
    }
    Ok(out)
}

/// One index entry: Cosmos's requirements (see [`cosmos_requirements`]), then repo-schema's
/// [`PackageDefinition`]. Fields whose value is `null` are absent to Cosmos (circe decodes a
/// `null` optional field as `None`), so they are dropped before the definition is built.
fn decode_package(p: Value, index: usize) -> CosmosResult<RepoPackage> {
    let Value::Object(mut map) = p else {
        return Err(package_error(index, "", "not a JSON object", &p));
    };
    if let Err((field, why)) = cosmos_requirements(&map) {
        return Err(package_error(index, field, &why, &Value::Object(map)));
    }
    map.retain(|_, v| !v.is_null());
    match PackageDefinition::from_map(map) {
        Ok(def) => Ok(RepoPackage::new(def)),
        Err(e) => Err(CosmosError::json_decoding(
            "PackageDefinition",
            &format!("packages[{index}]: {e}"),
            "",
        )),
    }
}

/// `JsonDecodingError` for package `index` (`decodeInput`: the package, cut at 2 KiB).
fn package_error(index: usize, field: &str, why: &str, p: &Value) -> CosmosError {
    let mut input = p.to_string();
    if input.len() > 2048 {
        let mut cut = 2048;
        while !input.is_char_boundary(cut) {
            cut -= 1;
        }
        input.truncate(cut);
    }
    CosmosError::json_decoding(
        "PackageDefinition",
        &format!("packages[{index}].{field}: {why}"),
        &input,
    )
}

/// What Cosmos's decoder demands of an index entry beyond repo-schema's
/// [`PackageDefinition::from_map`]: an explicit `packagingVersion`, the package.json fields
/// `maintainer`, `description` and `tags`, the JSON types of the optional fields, and a
/// Marathon template for packagingVersion 2.0. `Err((field, why))` for the first violation.
fn cosmos_requirements(p: &Map<String, Value>) -> Result<(), (&'static str, String)> {
    let pv = match p.get("packagingVersion") {
        Some(Value::String(s)) if ["2.0", "3.0", "4.0", "5.0"].contains(&s.as_str()) => s.as_str(),
        Some(other) => {
            return Err((
                "packagingVersion",
                format!("unsupported packaging version {other}"),
            ))
        }
        None => return Err(("packagingVersion", "missing".into())),
    };
    for f in ["name", "version", "maintainer", "description"] {
        match p.get(f) {
            Some(Value::String(_)) => {}
            Some(_) => return Err((f, "must be a string".into())),
            None => return Err((f, "missing".into())),
        }
    }
    match p.get("releaseVersion") {
        Some(v) if v.as_u64().is_some() => {}
        Some(_) => return Err(("releaseVersion", "must be a non-negative integer".into())),
        None => return Err(("releaseVersion", "missing".into())),
    }
    match p.get("tags") {
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
        Some(_) => return Err(("tags", "must be an array of strings".into())),
        None => return Err(("tags", "missing".into())),
    }
    let strings = [
        "scm",
        "website",
        "preInstallNotes",
        "postInstallNotes",
        "postUninstallNotes",
        "minDcosReleaseVersion",
    ];
    for f in strings {
        if p.get(f).is_some_and(|v| !v.is_string() && !v.is_null()) {
            return Err((f, "must be a string".into()));
        }
    }
    for f in ["framework", "selected"] {
        if p.get(f).is_some_and(|v| !v.is_boolean() && !v.is_null()) {
            return Err((f, "must be a boolean".into()));
        }
    }
    match p.get("marathon") {
        Some(Value::Object(m)) => {
            if !matches!(m.get("v2AppMustacheTemplate"), Some(Value::String(_))) {
                return Err((
                    "marathon.v2AppMustacheTemplate",
                    "must be a base64 string".into(),
                ));
            }
        }
        Some(Value::Null) | None if pv != "2.0" => {}
        Some(Value::Null) | None => return Err(("marathon", "required for 2.0".into())),
        Some(_) => return Err(("marathon", "must be an object".into())),
    }
    for f in ["config", "resource"] {
        if p.get(f).is_some_and(|v| !v.is_object() && !v.is_null()) {
            return Err((f, "must be an object".into()));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// fetching

/// How repositories are fetched.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// `User-Agent` sent to repositories (drives server-side filtering by DC/OS version).
    pub user_agent: String,
    /// Retries after connection errors or 5xx answers.
    pub retries: u32,
    /// Pause between retries.
    pub retry_delay: Duration,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// How long a fetched index is used before it is re-validated (ETag).
    pub ttl: Duration,
    /// Largest accepted index body.
    pub max_bytes: usize,
    /// How long a request waits for a repository that has not answered yet (no response
    /// headers) before it answers without it; the fetch goes on in the background. A
    /// repository that answered is waited for until its index is read (bounded by `timeout`).
    pub answer_wait: Duration,
    /// First pause before an unreachable repository is tried again (doubled after each
    /// failure, up to `down_retry_max`). Requests never wait for a repository known to be down.
    pub down_retry_min: Duration,
    /// Longest pause between tries of an unreachable repository.
    pub down_retry_max: Duration,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            user_agent: "cosmos/0.6.3 dcos/2.1.0".into(),
            retries: 3,
            retry_delay: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
            ttl: Duration::from_secs(60),
            max_bytes: 256 << 20,
            answer_wait: Duration::from_secs(3),
            down_retry_min: Duration::from_secs(2),
            down_retry_max: Duration::from_secs(60),
        }
    }
}

/// Result of one fetch.
pub enum Fetched {
    /// The server said 304 to our ETag.
    NotModified,
    /// A fresh index.
    Index {
        /// Decoded packages.
        packages: Vec<Arc<RepoPackage>>,
        /// Validator for the next fetch.
        etag: Option<String>,
    },
}

fn repo_data(repo: &Repository) -> Value {
    repo.json()
}

fn supported_repo_types() -> Vec<String> {
    vec![
        media::repo_type("v4").to_string(),
        media::repo_type("v3").to_string(),
    ]
}

/// Fetches and decodes one repository. `http_error_status` is the status reported for
/// `UniverseClientHttpError` (500, or 400 while adding a repository).
pub async fn fetch_repository(
    client: &reqwest::Client,
    cfg: &FetchConfig,
    repo: &Repository,
    etag: Option<&str>,
    http_error_status: u16,
) -> CosmosResult<Fetched> {
    fetch_repository_with(client, cfg, repo, etag, http_error_status, &|| {}).await
}

/// [`fetch_repository`], calling `on_answer` once the repository has answered (response
/// headers received, or a local file about to be read).
async fn fetch_repository_with(
    client: &reqwest::Client,
    cfg: &FetchConfig,
    repo: &Repository,
    etag: Option<&str>,
    http_error_status: u16,
    on_answer: &(dyn Fn() + Send + Sync),
) -> CosmosResult<Fetched> {
    let url = match reqwest::Url::parse(&repo.uri) {
        Ok(u) => u,
        Err(e) => return Err(uri_syntax(repo, &e.to_string())),
    };
    match url.scheme() {
        "file" => {
            on_answer();
            return fetch_file(cfg, repo, &url).await;
        }
        "http" | "https" => {}
        other => return Err(uri_syntax(repo, &format!("unsupported scheme {other}"))),
    }
    let accept = format!(
        "{},{},{}",
        media::repo_type("v5"),
        media::repo_type("v4"),
        media::repo_type("v3")
    );
    let mut attempt = 0;
    let resp = loop {
        let mut req = client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, &accept)
            .header(reqwest::header::USER_AGENT, &cfg.user_agent)
            .timeout(cfg.timeout);
        if let Some(tag) = etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, tag);
        }
        let retryable = match req.send().await {
            Ok(r) if r.status().is_server_error() => Err(Ok(r)),
            Ok(r) => Ok(r),
            Err(e) => Err(Err(e)),
        };
        match retryable {
            Ok(r) => break r,
            // a name that does not resolve will not resolve in a second either: fail fast
            Err(Err(e)) if is_dns_error(&e) => return Err(uri_connection(repo, &error_chain(&e))),
            Err(last) if attempt >= cfg.retries => match last {
                Ok(r) => break r,
                Err(e) => return Err(uri_connection(repo, &error_chain(&e))),
            },
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(cfg.retry_delay).await;
            }
        }
    };
    on_answer();
    let status = resp.status().as_u16();
    if status == 304 && etag.is_some() {
        return Ok(Fetched::NotModified);
    }
    if matches!(status, 301 | 302 | 303 | 307 | 308) {
        let actual = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| url.join(l).ok())
            .map(|u| u.scheme().to_string());
        return Err(CosmosError::unsupported_redirect(
            &[url.scheme().to_string()],
            actual.as_deref(),
        ));
    }
    if status != 200 {
        return Err(CosmosError::UniverseClientHttpError {
            status: http_error_status,
            detail: Detail::new(
                format!(
                    "Unexpected upstream http error while fetching repository '{}' at {}: GET {status}",
                    repo.name, repo.uri
                ),
                Some(json!({
                    "packageRepository": repo_data(repo),
                    "method": "GET",
                    "clientStatus": status,
                    "status": http_error_status,
                })),
            ),
        });
    }
    if let Some(enc) = resp
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
    {
        if !enc.eq_ignore_ascii_case("identity") && !enc.eq_ignore_ascii_case("gzip") {
            return Err(CosmosError::unsupported_content_encoding(Some(enc)));
        }
    }
    let ct = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let ok_type = ct.as_deref().and_then(MediaType::parse).is_some_and(|m| {
        m.typ == "application"
            && m.subtype == "vnd.dcos.universe.repo+json"
            && matches!(m.param("version"), None | Some("v3" | "v4" | "v5"))
    });
    if !ok_type {
        return Err(CosmosError::unsupported_content_type(
            &supported_repo_types(),
            ct.as_deref(),
        ));
    }
    let new_etag = resp
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = read_limited(resp, cfg.max_bytes)
        .await
        .map_err(|e| uri_connection(repo, &e))?;
    let packages = tokio::task::spawn_blocking(move || decode_repository(&bytes))
        .await
        .map_err(|e| CosmosError::unhandled(e.to_string()))??;
    Ok(Fetched::Index {
        packages,
        etag: new_etag,
    })
}

/// Reads a `file://` repository (plain or gzipped) and decodes it.
async fn fetch_file(
    cfg: &FetchConfig,
    repo: &Repository,
    url: &reqwest::Url,
) -> CosmosResult<Fetched> {
    let path = url
        .to_file_path()
        .map_err(|_| uri_syntax(repo, "not a local file path"))?;
    let repo2 = repo.clone();
    let max = cfg.max_bytes;
    let bytes = tokio::task::spawn_blocking(move || -> CosmosResult<Vec<u8>> {
        let raw = std::fs::read(&path)
            .map_err(|e| uri_connection(&repo2, &format!("{}: {e}", path.display())))?;
        if raw.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(raw.as_slice())
                .take(max as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| uri_connection(&repo2, &format!("gunzip: {e}")))?;
            Ok(out)
        } else {
            Ok(raw)
        }
    })
    .await
    .map_err(|e| CosmosError::unhandled(e.to_string()))??;
    let packages = tokio::task::spawn_blocking(move || decode_repository(&bytes))
        .await
        .map_err(|e| CosmosError::unhandled(e.to_string()))??;
    Ok(Fetched::Index {
        packages,
        etag: None,
    })
}

async fn read_limited(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| error_chain(&e))? {
        if out.len() + chunk.len() > max {
            return Err(format!("repository index larger than {max} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Whether a request failed resolving the host name (hyper's `dns error`).
fn is_dns_error(e: &reqwest::Error) -> bool {
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(inner) = src {
        let s = inner.to_string();
        if s.starts_with("dns error") || s.contains("failed to lookup address") {
            return true;
        }
        src = inner.source();
    }
    false
}

/// An error with its sources, on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

fn uri_syntax(repo: &Repository, cause: &str) -> CosmosError {
    CosmosError::new(
        CosmosError::RepositoryUriSyntax,
        format!(
            "URI for repository [{}] has invalid syntax: {}",
            repo.name, repo.uri
        ),
        Some(json!({"repository": repo_data(repo), "cause": cause})),
    )
}

fn uri_connection(repo: &Repository, cause: &str) -> CosmosError {
    CosmosError::new(
        CosmosError::RepositoryUriConnection,
        format!(
            "Could not access data at URI for repository [{}]: {}",
            repo.name, repo.uri
        ),
        Some(json!({"repository": repo_data(repo), "cause": cause})),
    )
}

// ---------------------------------------------------------------------------------------------
// the merged collection

/// The decoded packages of one repository fetch.
pub type Snapshot = Arc<Vec<Arc<RepoPackage>>>;

type MergedKey = (Vec<(String, usize)>, Vec<Unreachable>, Arc<Collection>);

/// A package in merged order, with the repository it came from.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The package.
    pub pkg: Arc<RepoPackage>,
    /// Index of its repository in the list.
    pub repo_index: usize,
    /// URI of its repository (`DCOS_PACKAGE_SOURCE`).
    pub repo_uri: Arc<str>,
}

/// All packages of all repositories, merged with the Cosmos precedence rules.
#[derive(Default)]
pub struct Collection {
    entries: Vec<Entry>,
    /// name → range in `entries`
    by_name: HashMap<String, (usize, usize)>,
    /// one per name in name order: (start index, lower-cased name, description, tags)
    search: Vec<SearchRecord>,
    resource_urls: OnceLock<HashSet<String>>,
    /// Serialized search results per proxy base URL, one per name (parallel to `search`).
    search_json: Mutex<HashMap<String, Arc<Vec<String>>>>,
    /// Repositories left out (or used from an older index) because they are unreachable.
    unreachable: Vec<Unreachable>,
}

struct SearchRecord {
    start: usize,
    end: usize,
    name_lc: String,
    description_lc: String,
    tags_lc: Vec<String>,
}

impl Collection {
    /// Merges repositories given in list order: de-duplicated on (name, version) keeping the
    /// lowest repository index then the highest releaseVersion; sorted by name, repository
    /// index, releaseVersion descending.
    pub fn build(repos: &[(Arc<str>, Snapshot)]) -> Collection {
        let mut all: Vec<Entry> = Vec::new();
        for (i, (uri, pkgs)) in repos.iter().enumerate() {
            for p in pkgs.iter() {
                all.push(Entry {
                    pkg: p.clone(),
                    repo_index: i,
                    repo_uri: uri.clone(),
                });
            }
        }
        all.sort_by(|a, b| {
            a.pkg
                .name()
                .cmp(b.pkg.name())
                .then(a.repo_index.cmp(&b.repo_index))
                .then(b.pkg.release().cmp(&a.pkg.release()))
        });
        let mut entries: Vec<Entry> = Vec::with_capacity(all.len());
        let mut by_name = HashMap::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut i = 0;
        while i < all.len() {
            let name = all[i].pkg.name().to_string();
            let start = entries.len();
            seen.clear();
            while i < all.len() && all[i].pkg.name() == name {
                if seen.insert(all[i].pkg.version().to_string()) {
                    entries.push(all[i].clone());
                }
                i += 1;
            }
            by_name.insert(name, (start, entries.len()));
        }
        let mut search: Vec<SearchRecord> = by_name
            .values()
            .map(|&(start, end)| {
                let p = &entries[start].pkg;
                SearchRecord {
                    start,
                    end,
                    name_lc: p.name().to_lowercase(),
                    description_lc: p
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_lowercase(),
                    tags_lc: p
                        .get("tags")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_lowercase)
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            })
            .collect();
        search.sort_by_key(|r| r.start);
        Collection {
            entries,
            by_name,
            search,
            resource_urls: OnceLock::new(),
            search_json: Mutex::new(HashMap::new()),
            unreachable: Vec::new(),
        }
    }

    /// The repositories this collection was built without (or from an older copy of their
    /// index), because they could not be reached.
    pub fn unreachable(&self) -> &[Unreachable] {
        &self.unreachable
    }

    /// `PackageNotFound` for `name`, naming the repositories that were left out when there are
    /// any (the package may be in one of them).
    pub fn package_not_found(&self, name: &str) -> CosmosError {
        self.with_unreachable(CosmosError::package_not_found(name))
    }

    /// Adds the repositories left out to a "not found" error: a sentence per repository in the
    /// message and `data.unreachableRepositories` (`[{name, uri, cause}]`).
    fn with_unreachable(&self, e: CosmosError) -> CosmosError {
        let missing: Vec<&Unreachable> =
            self.unreachable.iter().filter(|u| !u.stale_index).collect();
        if missing.is_empty() {
            return e;
        }
        let mut message = e.message();
        for u in &missing {
            message.push_str(&format!(
                "; repository '{}' ({}) could not be reached and was not searched: {}",
                u.name, u.uri, u.cause
            ));
        }
        let mut data = match e.data() {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        data.insert(
            "unreachableRepositories".into(),
            Value::Array(missing.iter().map(|u| u.json()).collect()),
        );
        let variant: fn(Detail) -> CosmosError = match e {
            CosmosError::VersionNotFound(_) => CosmosError::VersionNotFound,
            _ => CosmosError::PackageNotFound,
        };
        CosmosError::new(variant, message, Some(Value::Object(data)))
    }

    /// Every package in merged order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// All versions of `name` in merged order (first = "latest").
    pub fn versions_of(&self, name: &str) -> &[Entry] {
        match self.by_name.get(name) {
            Some(&(s, e)) => &self.entries[s..e],
            None => &[],
        }
    }

    /// Resolves (name, optional version): `PackageNotFound` / `VersionNotFound`.
    pub fn resolve(&self, name: &str, version: Option<&str>) -> CosmosResult<&Entry> {
        let all = self.versions_of(name);
        if all.is_empty() {
            return Err(self.package_not_found(name));
        }
        match version {
            None => Ok(&all[0]),
            Some(v) => all
                .iter()
                .find(|e| e.pkg.version() == v)
                .ok_or_else(|| self.with_unreachable(CosmosError::version_not_found(name, v))),
        }
    }

    /// Search (contract §1.2). Returns, per matching name, the entries of that name; sorted
    /// `selected` first, then by name.
    pub fn search(&self, query: Option<&str>) -> Vec<&[Entry]> {
        self.search_indices(query)
            .into_iter()
            .map(|i| {
                let r = &self.search[i];
                &self.entries[r.start..r.end]
            })
            .collect()
    }

    /// Like [`Collection::search`], returning indices of name groups (see
    /// [`Collection::search_fragments`]).
    pub fn search_indices(&self, query: Option<&str>) -> Vec<usize> {
        let q = query.unwrap_or("");
        let mut out: Vec<usize> = if q.contains('*') {
            let segs: Vec<&str> = q.split('*').collect();
            (0..self.search.len())
                .filter(|&i| {
                    let r = &self.search[i];
                    let p = &self.entries[r.start].pkg;
                    let name = p.name();
                    glob_match(&segs, name)
                        || p.get("description")
                            .and_then(Value::as_str)
                            .is_some_and(|d| glob_match(&segs, d))
                        || p.get("tags").and_then(Value::as_array).is_some_and(|t| {
                            t.iter()
                                .filter_map(Value::as_str)
                                .any(|t| glob_match(&segs, t))
                        })
                })
                .collect()
        } else {
            let ql = q.to_lowercase();
            (0..self.search.len())
                .filter(|&i| {
                    let r = &self.search[i];
                    r.name_lc.contains(&ql)
                        || r.description_lc.contains(&ql)
                        || r.tags_lc.iter().any(|t| t.contains(&ql))
                })
                .collect()
        };
        // already in name order; stable sort puts selected first
        out.sort_by_key(|&i| !self.entries[self.search[i].start].pkg.def.selected());
        out
    }

    /// Serialized search results, one per name group, for proxy base URL `base` (built with
    /// `build` once per base and kept with the collection).
    pub fn search_fragments(
        &self,
        base: &str,
        build: impl Fn(&[Entry]) -> String,
    ) -> Arc<Vec<String>> {
        if let Ok(m) = self.search_json.lock() {
            if let Some(v) = m.get(base) {
                return v.clone();
            }
        }
        let v: Arc<Vec<String>> = Arc::new(
            self.search
                .iter()
                .map(|r| build(&self.entries[r.start..r.end]))
                .collect(),
        );
        if let Ok(mut m) = self.search_json.lock() {
            if m.len() >= 16 {
                m.clear();
            }
            m.insert(base.to_string(), v.clone());
        }
        v
    }

    /// The URL to fetch for a resource-proxy request: `url` itself if it is a resource URL of
    /// some package, else its percent-decoded form if that is one; `None` if neither.
    pub fn resource_target(&self, url: &str) -> Option<String> {
        let set = self.resource_urls.get_or_init(|| {
            let mut v = Vec::new();
            for e in &self.entries {
                crate::urls::resource_urls_of(e.pkg.def.resource(), &mut v);
            }
            v.into_iter().collect()
        });
        if set.contains(url) {
            return Some(url.to_string());
        }
        let decoded = crate::urls::percent_decode(url);
        set.contains(&decoded).then_some(decoded)
    }
}

/// `^seg1.*seg2.*…$` full match, where `.*` does not cross a newline (Java regex semantics).
fn glob_match(segs: &[&str], s: &str) -> bool {
    fn rec(segs: &[&str], s: &str) -> bool {
        match segs {
            [] => s.is_empty(),
            [last] => s == *last,
            [first, rest @ ..] => {
                let Some(after) = s.strip_prefix(first) else {
                    return false;
                };
                // `*` matches any run of non-newline characters
                let mut idx = 0;
                loop {
                    if rec(rest, &after[idx..]) {
                        return true;
                    }
                    match after[idx..].chars().next() {
                        Some('\n') | None => return false,
                        Some(c) => idx += c.len_utf8(),
                    }
                }
            }
        }
    }
    rec(segs, s)
}

// ---------------------------------------------------------------------------------------------
// the cache

struct CacheEntry {
    packages: Snapshot,
    etag: Option<String>,
    fetched_at: Instant,
    stale: bool,
}

/// A repository a request was answered without (or from an older copy of its index), named in
/// the response (`Warning` header) and in "not found" errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable {
    /// Repository name.
    pub name: String,
    /// Repository URI.
    pub uri: String,
    /// Why it is not used: the connection error, or that it has not answered yet.
    pub cause: String,
    /// Whether the request used the index fetched before the repository became unreachable.
    pub stale_index: bool,
}

impl Unreachable {
    /// One line for people: `repository 'NAME' (URI) is unreachable: CAUSE; …`.
    pub fn message(&self) -> String {
        let what = if self.stale_index {
            "answering from the index fetched before it became unreachable"
        } else {
            "its packages are left out"
        };
        format!(
            "repository '{}' ({}) is unreachable: {}; {what} (retrying in the background)",
            self.name, self.uri, self.cause
        )
    }

    fn json(&self) -> Value {
        json!({"name": self.name, "uri": self.uri, "cause": self.cause})
    }
}

/// How far a background fetch got.
#[derive(Clone)]
enum Stage {
    /// No answer yet (connecting, or waiting for the response headers).
    Connecting,
    /// The server answered; the body is being read and decoded.
    Receiving,
    /// Finished: `None` on success, else the error.
    Done(Option<CosmosError>),
}

struct Inflight {
    stage: tokio::sync::watch::Receiver<Stage>,
    /// Requests wait for this fetch until `started + answer_wait` at the latest.
    started: tokio::time::Instant,
    /// A request already gave up waiting for this fetch: later requests do not wait for it.
    waited_out: bool,
}

struct Down {
    cause: String,
    failures: u32,
    retry_at: Instant,
}

/// The state of one repository URI: its last good index, whether it is down, and the fetch in
/// flight. Each repository is fetched, cached and failed on its own.
#[derive(Default)]
struct Slot {
    data: Option<CacheEntry>,
    down: Option<Down>,
    inflight: Option<Inflight>,
}

/// Whether a fetch error means "not reachable now" (the request goes on without the
/// repository) rather than "broken" (the request fails naming it, as Cosmos does): connection
/// failures, timeouts, DNS failures, and 502/503/504 answers.
fn is_unreachable(e: &CosmosError) -> bool {
    match e {
        CosmosError::RepositoryUriConnection(_) => true,
        CosmosError::UniverseClientHttpError { detail, .. } => detail
            .data
            .as_ref()
            .and_then(|d| d.get("clientStatus"))
            .and_then(Value::as_u64)
            .is_some_and(|s| matches!(s, 502..=504)),
        _ => false,
    }
}

fn unreachable_cause(e: &CosmosError) -> String {
    match e {
        CosmosError::RepositoryUriConnection(d) => d
            .data
            .as_ref()
            .and_then(|d| d.get("cause"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| e.message()),
        other => other.message(),
    }
}

enum Plan {
    Use(Snapshot),
    /// Wait for the fetch, until the deadline while the repository has not answered.
    Wait(tokio::sync::watch::Receiver<Stage>, tokio::time::Instant),
    Skip(Option<Snapshot>, Unreachable),
}

/// Per-URI cache of fetched indexes plus the last merged collection.
pub struct RepoCache {
    slots: Arc<Mutex<HashMap<String, Slot>>>,
    merged: Mutex<Option<MergedKey>>,
    empty: Snapshot,
}

impl Default for RepoCache {
    fn default() -> Self {
        RepoCache {
            slots: Arc::default(),
            merged: Mutex::new(None),
            empty: Arc::new(Vec::new()),
        }
    }
}

impl RepoCache {
    /// Marks every cached index stale (next use re-validates with its ETag). Repositories
    /// known to be down stay down until their next background retry.
    pub fn invalidate_all(&self) {
        if let Ok(mut m) = self.slots.lock() {
            for e in m.values_mut().filter_map(|s| s.data.as_mut()) {
                e.stale = true;
            }
        }
    }

    /// Seeds the cache with an index just fetched (repository add).
    pub fn insert(&self, uri: &str, packages: Vec<Arc<RepoPackage>>, etag: Option<String>) {
        if let Ok(mut m) = self.slots.lock() {
            let slot = m.entry(uri.to_string()).or_default();
            slot.data = Some(CacheEntry {
                packages: Arc::new(packages),
                etag,
                fetched_at: Instant::now(),
                stale: false,
            });
            slot.down = None;
        }
    }

    /// Starts a background fetch of `repo` into its slot (the caller holds the lock).
    fn start_fetch(
        &self,
        slot: &mut Slot,
        client: &reqwest::Client,
        cfg: &FetchConfig,
        repo: &Repository,
    ) -> tokio::sync::watch::Receiver<Stage> {
        let (tx, rx) = tokio::sync::watch::channel(Stage::Connecting);
        slot.inflight = Some(Inflight {
            stage: rx.clone(),
            started: tokio::time::Instant::now(),
            waited_out: false,
        });
        let etag = slot.data.as_ref().and_then(|d| d.etag.clone());
        let (client, cfg, repo, slots) = (
            client.clone(),
            cfg.clone(),
            repo.clone(),
            self.slots.clone(),
        );
        tokio::spawn(async move {
            let on_answer = || {
                let _ = tx.send(Stage::Receiving);
            };
            let res =
                fetch_repository_with(&client, &cfg, &repo, etag.as_deref(), 500, &on_answer).await;
            let outcome = match slots.lock() {
                Ok(mut m) => {
                    let slot = m.entry(repo.uri.clone()).or_default();
                    slot.inflight = None;
                    record_outcome(slot, &cfg, &repo, res)
                }
                Err(_) => Some(CosmosError::unhandled("repository cache poisoned")),
            };
            let _ = tx.send(Stage::Done(outcome));
        });
        rx
    }

    /// The merged collection over `repos`. Each repository is fetched, cached and failed on its
    /// own: a request waits for a repository that has not answered yet at most
    /// [`FetchConfig::answer_wait`] (then goes on without it; the fetch continues in the
    /// background), never for one known to be unreachable (retried in the background with
    /// backoff, when a request comes after the retry time). Unreachable repositories are listed
    /// in [`Collection::unreachable`]; any other failure of a repository (an HTTP error, an
    /// undecodable index) fails the call naming it, as in Cosmos.
    pub async fn collection(
        &self,
        client: &reqwest::Client,
        cfg: &FetchConfig,
        repos: &[Repository],
    ) -> CosmosResult<Arc<Collection>> {
        let now = Instant::now();
        let mut plans = Vec::with_capacity(repos.len());
        {
            let mut m = self
                .slots
                .lock()
                .map_err(|_| CosmosError::unhandled("repository cache poisoned"))?;
            for r in repos {
                let slot = m.entry(r.uri.clone()).or_default();
                let fresh = slot
                    .data
                    .as_ref()
                    .filter(|d| !d.stale && d.fetched_at.elapsed() < cfg.ttl)
                    .map(|d| d.packages.clone());
                let old = slot.data.as_ref().map(|d| d.packages.clone());
                let plan = if let (Some(p), None) = (&fresh, &slot.down) {
                    Plan::Use(p.clone())
                } else if let Some(down) = &slot.down {
                    let cause = down.cause.clone();
                    if slot.inflight.is_none() && now >= down.retry_at {
                        tracing::info!(repository = %r.name, uri = %r.uri, "retrying an unreachable repository in the background");
                        self.start_fetch(slot, client, cfg, r);
                    }
                    skip(r, old, cause)
                } else if let Some(inf) = &slot.inflight {
                    if inf.waited_out {
                        skip(r, old, no_answer(cfg))
                    } else {
                        Plan::Wait(inf.stage.clone(), inf.started + cfg.answer_wait)
                    }
                } else {
                    let rx = self.start_fetch(slot, client, cfg, r);
                    Plan::Wait(rx, tokio::time::Instant::now() + cfg.answer_wait)
                };
                plans.push(plan);
            }
        }
        let waits = plans.iter().map(|p| async move {
            match p {
                Plan::Wait(rx, deadline) => Some(await_fetch(rx.clone(), *deadline).await),
                _ => None,
            }
        });
        let outcomes = futures::future::join_all(waits).await;
        let mut snaps: Vec<Snapshot> = Vec::with_capacity(repos.len());
        let mut unreachable = Vec::new();
        {
            let mut m = self
                .slots
                .lock()
                .map_err(|_| CosmosError::unhandled("repository cache poisoned"))?;
            for ((r, plan), outcome) in repos.iter().zip(plans).zip(outcomes) {
                let slot = m.entry(r.uri.clone()).or_default();
                let old = slot.data.as_ref().map(|d| d.packages.clone());
                let plan = match (plan, outcome) {
                    (Plan::Wait(..), Some(Waited::Ready)) => match old {
                        Some(p) => Plan::Use(p),
                        None => skip(r, None, "no index was kept".into()),
                    },
                    (Plan::Wait(..), Some(Waited::Failed(e))) if is_unreachable(&e) => {
                        skip(r, old, unreachable_cause(&e))
                    }
                    (Plan::Wait(..), Some(Waited::Failed(e))) => return Err(e),
                    (Plan::Wait(..), Some(Waited::NotYet) | None) => {
                        if let Some(inf) = slot.inflight.as_mut() {
                            inf.waited_out = true;
                        }
                        skip(r, old, no_answer(cfg))
                    }
                    (p, _) => p,
                };
                match plan {
                    Plan::Use(p) => snaps.push(p),
                    Plan::Skip(p, u) => {
                        snaps.push(p.unwrap_or_else(|| self.empty.clone()));
                        unreachable.push(u);
                    }
                    Plan::Wait(..) => snaps.push(self.empty.clone()),
                }
            }
        }
        let key: Vec<(String, usize)> = repos
            .iter()
            .zip(&snaps)
            .map(|(r, s)| (r.uri.clone(), Arc::as_ptr(s) as usize))
            .collect();
        if let Ok(m) = self.merged.lock() {
            if let Some((k, u, c)) = m.as_ref() {
                if *k == key && *u == unreachable {
                    return Ok(c.clone());
                }
            }
        }
        let input: Vec<(Arc<str>, Snapshot)> = repos
            .iter()
            .zip(snaps)
            .map(|(r, s)| (Arc::from(r.uri.as_str()), s))
            .collect();
        let mut coll = Collection::build(&input);
        coll.unreachable = unreachable.clone();
        let coll = Arc::new(coll);
        if let Ok(mut m) = self.merged.lock() {
            *m = Some((key, unreachable, coll.clone()));
        }
        Ok(coll)
    }
}

fn skip(r: &Repository, old: Option<Snapshot>, cause: String) -> Plan {
    let stale_index = old.is_some();
    Plan::Skip(
        old,
        Unreachable {
            name: r.name.clone(),
            uri: r.uri.clone(),
            cause,
            stale_index,
        },
    )
}

fn no_answer(cfg: &FetchConfig) -> String {
    format!(
        "no answer within {} ms (still trying in the background)",
        cfg.answer_wait.as_millis()
    )
}

/// Records the end of a fetch in its slot; returns the error the waiting requests report
/// (`None`: the slot holds a fresh index).
fn record_outcome(
    slot: &mut Slot,
    cfg: &FetchConfig,
    repo: &Repository,
    res: CosmosResult<Fetched>,
) -> Option<CosmosError> {
    let res = match res {
        Ok(Fetched::NotModified) => match slot.data.as_mut() {
            Some(d) => {
                d.fetched_at = Instant::now();
                d.stale = false;
                Ok(())
            }
            None => Err(CosmosError::unhandled(
                "repository answered 304 to an unknown ETag",
            )),
        },
        Ok(Fetched::Index { packages, etag }) => {
            slot.data = Some(CacheEntry {
                packages: Arc::new(packages),
                etag,
                fetched_at: Instant::now(),
                stale: false,
            });
            Ok(())
        }
        Err(e) => Err(e),
    };
    match res {
        Ok(()) => {
            if slot.down.take().is_some() {
                tracing::info!(repository = %repo.name, uri = %repo.uri, "repository reachable again");
            }
            None
        }
        Err(e) if is_unreachable(&e) => {
            let failures = slot.down.as_ref().map_or(0, |d| d.failures) + 1;
            let backoff = cfg
                .down_retry_min
                .saturating_mul(1u32 << (failures - 1).min(16))
                .min(cfg.down_retry_max.max(cfg.down_retry_min));
            let cause = unreachable_cause(&e);
            tracing::warn!(repository = %repo.name, uri = %repo.uri, %cause, failures,
                           retry_in = ?backoff, "repository unreachable");
            slot.down = Some(Down {
                cause,
                failures,
                retry_at: Instant::now() + backoff,
            });
            Some(e)
        }
        Err(e) => {
            // a broken repository: forget it, the next request fetches it again and fails the
            // same way (Cosmos behaviour)
            slot.data = None;
            slot.down = None;
            Some(e)
        }
    }
}

enum Waited {
    Ready,
    Failed(CosmosError),
    NotYet,
}

/// Waits for a fetch: until `deadline` while the repository has not answered, to the end once
/// it has.
async fn await_fetch(
    mut rx: tokio::sync::watch::Receiver<Stage>,
    deadline: tokio::time::Instant,
) -> Waited {
    loop {
        let stage = rx.borrow_and_update().clone();
        let changed = match stage {
            Stage::Done(None) => return Waited::Ready,
            Stage::Done(Some(e)) => return Waited::Failed(e),
            Stage::Receiving => rx.changed().await,
            Stage::Connecting => match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(r) => r,
                Err(_) => return Waited::NotYet,
            },
        };
        if changed.is_err() {
            // the fetch task ended without reporting (it panicked)
            return match rx.borrow().clone() {
                Stage::Done(None) => Waited::Ready,
                Stage::Done(Some(e)) => Waited::Failed(e),
                _ => Waited::Failed(CosmosError::unhandled("repository fetch aborted")),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, version: &str, release: u64) -> Arc<RepoPackage> {
        let v = json!({"packagingVersion": "3.0", "name": name, "version": version,
                       "releaseVersion": release, "maintainer": "m", "description": format!("{name} desc"),
                       "tags": ["t"]});
        Arc::new(decode_package(v, 0).expect("valid"))
    }

    #[test]
    fn merge_precedence_and_latest() {
        let r0 = Arc::new(vec![pkg("a", "1", 1), pkg("a", "2", 2), pkg("b", "x", 0)]);
        let r1 = Arc::new(vec![pkg("a", "2", 9), pkg("a", "3", 10), pkg("c", "1", 0)]);
        let c = Collection::build(&[(Arc::from("u0"), r0), (Arc::from("u1"), r1)]);
        let a: Vec<_> = c
            .versions_of("a")
            .iter()
            .map(|e| (e.pkg.version(), e.repo_index, e.pkg.release()))
            .collect();
        assert_eq!(a, vec![("2", 0, 2), ("1", 0, 1), ("3", 1, 10)]);
        assert_eq!(c.resolve("a", None).expect("latest").pkg.version(), "2");
        assert_eq!(c.resolve("a", Some("3")).expect("v3").repo_index, 1);
        assert_eq!(
            c.resolve("a", Some("9")).expect_err("nf").type_name(),
            "VersionNotFound"
        );
        assert_eq!(
            c.resolve("z", None).expect_err("nf").type_name(),
            "PackageNotFound"
        );
    }

    #[test]
    fn search_substring_and_glob() {
        let r0 = Arc::new(vec![
            pkg("cassandra", "1", 1),
            pkg("arangodb", "1", 1),
            pkg("kafka", "1", 0),
        ]);
        let c = Collection::build(&[(Arc::from("u0"), r0)]);
        let names = |q: &str| -> Vec<String> {
            c.search(Some(q))
                .iter()
                .map(|g| g[0].pkg.name().to_string())
                .collect()
        };
        assert_eq!(names("CASS"), vec!["cassandra"]);
        assert_eq!(names("aran"), vec!["arangodb"]);
        assert_eq!(names("cassan*a"), vec!["cassandra"]);
        assert_eq!(names("c*a"), vec!["cassandra"]);
        assert_eq!(names("cass*"), vec!["cassandra"]);
        assert_eq!(names("Cass*"), Vec::<String>::new());
        assert_eq!(names("").len(), 3);
        assert!(glob_match(&["a", "b"], "axxb"));
        assert!(!glob_match(&["a", "b"], "ax\nb"));
    }

    #[test]
    fn bad_repositories_are_rejected() {
        assert_eq!(
            decode_repository(b"not json").err().map(|e| e.type_name()),
            Some("JsonParsingError")
        );
        assert_eq!(
            decode_repository(b"{\"x\":1}").err().map(|e| e.type_name()),
            Some("JsonDecodingError")
        );
        let bad_pv = br#"{"packages":[{"packagingVersion":"9.0","name":"a"}]}"#;
        assert_eq!(
            decode_repository(bad_pv).err().map(|e| e.type_name()),
            Some("JsonDecodingError")
        );
        let no_marathon = br#"{"packages":[{"packagingVersion":"2.0","name":"a","version":"1","releaseVersion":0,"maintainer":"m","description":"d","tags":[]}]}"#;
        assert_eq!(
            decode_repository(no_marathon).err().map(|e| e.type_name()),
            Some("JsonDecodingError")
        );
        assert_eq!(
            decode_repository(br#"{"packages":[]}"#)
                .map(|p| p.len())
                .ok(),
            Some(0)
        );
    }

    #[test]
    fn repository_list_persists_with_defaults() {
        let store: Arc<dyn Store> = Arc::new(dcos_store::EmbeddedStore::in_memory());
        let list = RepositoryList::new(store.clone(), default_repositories());
        let (l, v) = list.read().expect("read");
        assert_eq!(l, default_repositories());
        let new = vec![Repository::new("x", "http://x")];
        list.write(&new, v).expect("write");
        assert_eq!(list.read().expect("read").0, new);
        assert_eq!(
            list.write(&new, v).expect_err("stale").type_name(),
            "ConcurrentAccess"
        );
    }
}
