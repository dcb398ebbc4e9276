//! `universe serve`: the Universe repository server.
//!
//! * `GET /repo`: the index for the client's DC/OS version (from `User-Agent: … dcos/X.Y`, latest
//!   when absent) in a media type the client accepts (`Accept`: v5, v4, v3 with q-values). The file
//!   built for that DC/OS version is served as is when its type is acceptable; when the client
//!   only takes an older type the index is converted (4.0 packages downgraded to 3.0 for v3, 5.0
//!   packages dropped); `406` with an explanation when no repository type is acceptable.
//! * `GET /package/<name>[.json]`: the per-package index, negotiated the same way.
//! * `GET /repo-1.7`: the empty v3 index (as upstream).
//! * `GET /artifacts/sha256/<hex>/<file name>`: artifacts of a mirrored repository.
//! * `GET /<file>`: any other file of the output folder (`universe.json`, …).
//!
//! Responses carry `Content-Type`, a strong `ETag` (honouring `If-None-Match` with `304`),
//! `Vary`, and are gzipped when `Accept-Encoding` allows.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use repo_schema::{LooseVersion, RepoVersion, Repository};

struct ServeState {
    dir: PathBuf,
    /// Encoded bodies: (file, variant) → (etag, bytes).
    cache: Mutex<HashMap<(PathBuf, String), (String, Bytes)>>,
}

const CACHE_ENTRIES: usize = 32;

/// The repository server for a built (or mirrored) output folder, for `axum::serve` or for
/// hosting a repository inside another crate's tests.
pub fn router(dir: impl Into<PathBuf>) -> Router {
    let state = Arc::new(ServeState {
        dir: dir.into(),
        cache: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/repo", get(repo))
        .route("/repo/", get(repo))
        .route("/repo-1.7", get(repo_17))
        .route("/package/{name}", get(package))
        .route("/artifacts/{*path}", get(artifact))
        .route("/health", get(|| async { "ok\n" }))
        .fallback(get(static_file))
        .with_state(state)
}

/// Serves `dir` on `addr` until the process is stopped.
pub async fn serve(dir: PathBuf, addr: std::net::SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, dir = %dir.display(), "serving the repository");
    eprintln!(
        "serving {} on http://{}",
        dir.display(),
        listener.local_addr()?
    );
    axum::serve(listener, router(dir)).await
}

/// One acceptable media range of an `Accept` header.
#[derive(Debug, Clone, PartialEq)]
enum Range {
    Repo(Option<RepoVersion>),
    Wildcard,
    Other,
}

/// Parses `Accept` into repository versions with their q-values; `None` = anything goes.
fn accepted_versions(accept: Option<&str>) -> Vec<(RepoVersion, f32)> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return RepoVersion::ALL.iter().map(|v| (*v, 1.0)).collect();
    };
    let mut out: HashMap<RepoVersion, f32> = HashMap::new();
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        let mut version = None;
        let mut bad_version = false;
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().trim_matches('"'));
            if k == "q" {
                q = v.parse().unwrap_or(0.0);
            } else if k == "version" {
                match v.parse::<RepoVersion>() {
                    Ok(rv) => version = Some(rv),
                    Err(_) => bad_version = true,
                }
            }
        }
        let range = if essence == repo_schema::version::REPO_MEDIA_TYPE_BASE {
            if bad_version {
                Range::Other
            } else {
                Range::Repo(version)
            }
        } else if essence == "*/*" || essence == "application/*" {
            Range::Wildcard
        } else {
            Range::Other
        };
        let versions: Vec<RepoVersion> = match range {
            Range::Repo(Some(v)) => vec![v],
            Range::Repo(None) | Range::Wildcard => RepoVersion::ALL.to_vec(),
            Range::Other => Vec::new(),
        };
        for v in versions {
            let e = out.entry(v).or_insert(q);
            // A specific range wins over a wildcard; otherwise keep the best q.
            if matches!(range, Range::Repo(Some(_))) || *e < q {
                *e = q;
            }
        }
    }
    out.into_iter().filter(|(_, q)| *q > 0.0).collect()
}

/// Picks the media type to serve for a file whose own type is `natural`:
/// `Ok((served, convert))` where `convert` means the content must be converted down.
fn choose_version(
    natural: RepoVersion,
    accepted: &[(RepoVersion, f32)],
) -> Option<(RepoVersion, bool)> {
    if accepted.iter().any(|(v, _)| *v == natural) {
        return Some((natural, false));
    }
    // A newer type can carry an older index unchanged (v3 ⊂ v4 ⊂ v5).
    if let Some(v) = accepted
        .iter()
        .map(|(v, _)| *v)
        .filter(|v| *v > natural)
        .min()
    {
        return Some((v, false));
    }
    // Otherwise the client's preferred older type, by q then version.
    accepted
        .iter()
        .filter(|(v, _)| *v < natural)
        .max_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
        .map(|(v, _)| (*v, true))
}

/// The DC/OS version named in a User-Agent (`… dcos/1.10.2 …` → `1.10`).
fn dcos_from_user_agent(ua: Option<&str>) -> Option<String> {
    let ua = ua?;
    let idx = ua.find("dcos/")?;
    let rest = &ua[idx + 5..];
    let v: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = v.split('.').filter(|s| !s.is_empty());
    let major = parts.next()?;
    let minor = parts.next().unwrap_or("0");
    Some(format!("{major}.{minor}"))
}

/// The DC/OS versions this output has indexes for, ascending.
fn available_versions(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_prefix("repo-up-to-")
                        .and_then(|s| s.strip_suffix(".json"))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort_by_key(|s| LooseVersion::new(s));
    v
}

fn error(status: StatusCode, message: String) -> Response {
    let mut r = (status, format!("{message}\n")).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn accepts_gzip(h: &HeaderMap) -> bool {
    header_str(h, header::ACCEPT_ENCODING).is_some_and(|ae| {
        ae.split(',').any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .filter_map(|q| q.trim().parse::<f32>().ok())
                .next()
                .unwrap_or(1.0);
            (coding == "gzip" || coding == "*") && q > 0.0
        })
    })
}

fn file_tag(path: &Path) -> Option<String> {
    let m = std::fs::metadata(path).ok()?;
    if !m.is_file() {
        return None;
    }
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    Some(format!("{:x}-{:x}", m.len(), mtime))
}

fn etag_matches(h: &HeaderMap, etag: &str) -> bool {
    header_str(h, header::IF_NONE_MATCH).is_some_and(|inm| {
        inm.split(',')
            .map(str::trim)
            .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag))
    })
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(bytes)?;
    enc.finish()
}

/// Serves `path` with `content_type`; `convert_to` converts a repository index down first.
async fn send_file(
    state: &Arc<ServeState>,
    headers: &HeaderMap,
    path: PathBuf,
    content_type: String,
    convert_to: Option<RepoVersion>,
) -> Response {
    let Some(tag) = file_tag(&path) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("not found: {}", display_rel(&state.dir, &path)),
        );
    };
    let gz = accepts_gzip(headers);
    let variant: String = [convert_to.map(|v| v.as_str()), gz.then_some("gz")]
        .into_iter()
        .flatten()
        .map(|part| format!("-{part}"))
        .collect();
    let etag = format!("\"{tag}{variant}\"");
    let vary = HeaderValue::from_static("Accept, Accept-Encoding, User-Agent");
    if etag_matches(headers, &etag) {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        let h = r.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&etag) {
            h.insert(header::ETAG, v);
        }
        h.insert(header::VARY, vary);
        return r;
    }
    let key = (path.clone(), variant);
    let cached = state.cache.lock().ok().and_then(|c| {
        c.get(&key)
            .filter(|(t, _)| *t == etag)
            .map(|(_, b)| b.clone())
    });
    let body = match cached {
        Some(b) => b,
        None => {
            let p = path.clone();
            let produced = tokio::task::spawn_blocking(move || -> Result<Bytes, String> {
                let raw = std::fs::read(&p).map_err(|e| e.to_string())?;
                let raw = match convert_to {
                    Some(target) => {
                        let repo = Repository::from_slice(&raw, RepoVersion::V5)
                            .map_err(|e| e.to_string())?;
                        repo.for_repo_version(target)
                            .map_err(|e| e.to_string())?
                            .to_python_json()
                    }
                    None => raw,
                };
                if gz {
                    gzip(&raw).map(Bytes::from).map_err(|e| e.to_string())
                } else {
                    Ok(Bytes::from(raw))
                }
            })
            .await;
            match produced {
                Ok(Ok(b)) => {
                    // Cache what was expensive to produce, and small files.
                    if gz || convert_to.is_some() {
                        if let Ok(mut c) = state.cache.lock() {
                            if c.len() >= CACHE_ENTRIES {
                                c.clear();
                            }
                            c.insert(key, (etag.clone(), b.clone()));
                        }
                    }
                    b
                }
                Ok(Err(e)) => {
                    return error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("cannot read {}: {e}", display_rel(&state.dir, &path)),
                    )
                }
                Err(e) => {
                    return error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("internal error: {e}"),
                    )
                }
            }
        }
    };
    let mut r = Response::new(Body::from(body));
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::VARY, vary);
    if gz {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

fn display_rel(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}

fn natural_version(dir: &Path, stem: &str, dcos: &str) -> RepoVersion {
    std::fs::read_to_string(dir.join(format!("{stem}.content_type")))
        .ok()
        .and_then(|ct| RepoVersion::from_media_type(ct.trim()))
        .unwrap_or_else(|| RepoVersion::for_dcos(&LooseVersion::new(dcos)))
}

/// Resolves the DC/OS version and media type of a request, or the error response.
fn negotiate(
    state: &ServeState,
    headers: &HeaderMap,
) -> Result<(String, RepoVersion, RepoVersion, bool), Box<Response>> {
    let versions = available_versions(&state.dir);
    let Some(latest) = versions.last().cloned() else {
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            format!(
                "no repo-up-to-<version>.json in {}; run `universe build` first",
                state.dir.display()
            ),
        )));
    };
    let ua = header_str(headers, header::USER_AGENT);
    let dcos = match dcos_from_user_agent(ua) {
        None => latest,
        Some(asked) => {
            let asked_v = LooseVersion::new(&asked);
            match versions.iter().rev().find(|v| LooseVersion::new(v) <= asked_v) {
                Some(v) => v.clone(),
                None => {
                    return Err(Box::new(error(
                        StatusCode::NOT_ACCEPTABLE,
                        format!(
                            "DC/OS {asked} (from User-Agent {:?}) is older than every index this server has ({}); the oldest is repo-up-to-{}.json",
                            ua.unwrap_or(""),
                            versions.join(", "),
                            versions[0]
                        ),
                    )))
                }
            }
        }
    };
    let natural = natural_version(&state.dir, &format!("repo-up-to-{dcos}"), &dcos);
    let accept = header_str(headers, header::ACCEPT);
    let accepted = accepted_versions(accept);
    match choose_version(natural, &accepted) {
        Some((served, convert)) => Ok((dcos, natural, served, convert)),
        None => Err(Box::new(error(
            StatusCode::NOT_ACCEPTABLE,
            format!(
                "none of the media types in `Accept: {}` is served here. Repository indexes are {}, {} or {} (DC/OS {dcos} gets {} by default).",
                accept.unwrap_or(""),
                RepoVersion::V5.media_type(),
                RepoVersion::V4.media_type(),
                RepoVersion::V3.media_type(),
                natural.as_str()
            ),
        ))),
    }
}

async fn repo(State(state): State<Arc<ServeState>>, headers: HeaderMap) -> Response {
    match negotiate(&state, &headers) {
        Err(r) => *r,
        Ok((dcos, _natural, served, convert)) => {
            let path = state.dir.join(format!("repo-up-to-{dcos}.json"));
            send_file(
                &state,
                &headers,
                path,
                served.media_type().into(),
                convert.then_some(served),
            )
            .await
        }
    }
}

async fn repo_17(State(state): State<Arc<ServeState>>, headers: HeaderMap) -> Response {
    let path = state.dir.join("repo-empty-v3.json");
    send_file(
        &state,
        &headers,
        path,
        RepoVersion::V3.media_type().into(),
        None,
    )
    .await
}

fn safe_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\', '\0'])
}

async fn package(
    State(state): State<Arc<ServeState>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let name = name.strip_suffix(".json").unwrap_or(&name).to_string();
    if !safe_segment(&name) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("invalid package name {name:?}"),
        );
    }
    match negotiate(&state, &headers) {
        Err(r) => *r,
        Ok((dcos, _natural, served, convert)) => {
            let path = state
                .dir
                .join(&dcos)
                .join("package")
                .join(format!("{name}.json"));
            if !path.is_file() {
                return error(
                    StatusCode::NOT_FOUND,
                    format!("package {name:?} is not in the repository for DC/OS {dcos}"),
                );
            }
            send_file(
                &state,
                &headers,
                path,
                served.media_type().into(),
                convert.then_some(served),
            )
            .await
        }
    }
}

fn guess_content_type(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    let ext = lower.rsplit('.').next().unwrap_or("");
    match ext {
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "svg" => "image/svg+xml",
        "gif" => "image/gif",
        "gz" | "tgz" => "application/gzip",
        "zip" => "application/zip",
        "tar" => "application/x-tar",
        "jar" => "application/java-archive",
        "txt" => "text/plain; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}

async fn artifact(
    State(state): State<Arc<ServeState>>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let segs: Vec<&str> = path.split('/').collect();
    match segs.as_slice() {
        ["sha256", hex, rest @ ..]
            if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            let file = state
                .dir
                .join("artifacts")
                .join("sha256")
                .join(hex.to_ascii_lowercase());
            let ct = guess_content_type(rest.last().copied().unwrap_or(""));
            send_file(&state, &headers, file, ct.into(), None).await
        }
        _ => error(
            StatusCode::NOT_FOUND,
            format!("no artifact at /artifacts/{path}"),
        ),
    }
}

async fn static_file(
    State(state): State<Arc<ServeState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let rel = uri.path().trim_start_matches('/');
    let segs: Vec<&str> = rel.split('/').collect();
    if rel.is_empty()
        || !segs.iter().all(|s| safe_segment(s))
        || segs.iter().any(|s| s.starts_with('.'))
    {
        return error(StatusCode::NOT_FOUND, format!("not found: {}", uri.path()));
    }
    let path = segs.iter().fold(state.dir.clone(), |p, s| p.join(s));
    let name = segs.last().copied().unwrap_or("");
    let ct = match name.strip_suffix(".json") {
        Some(stem) => {
            let ct_file = path.with_file_name(format!("{stem}.content_type"));
            match std::fs::read_to_string(ct_file) {
                Ok(ct) => ct.trim().to_string(),
                Err(_) if segs.len() == 3 && segs[1] == "package" => {
                    natural_version(&state.dir, &format!("repo-up-to-{}", segs[0]), segs[0])
                        .media_type()
                        .to_string()
                }
                Err(_) => "application/json".into(),
            }
        }
        None => guess_content_type(name).into(),
    };
    send_file(&state, &headers, path, ct, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_parsing() {
        let all = accepted_versions(None);
        assert_eq!(all.len(), 3);
        let a = accepted_versions(Some(
            "application/vnd.dcos.universe.repo+json;charset=utf-8;version=v4;q=0.9,application/vnd.dcos.universe.repo+json;charset=utf-8;version=v3;q=0.5",
        ));
        assert_eq!(a.len(), 2);
        assert!(accepted_versions(Some("application/zip")).is_empty());
        assert_eq!(accepted_versions(Some("*/*")).len(), 3);
        let q0 = accepted_versions(Some(
            "*/*, application/vnd.dcos.universe.repo+json;version=v5;q=0",
        ));
        assert_eq!(q0.len(), 2);
    }

    #[test]
    fn version_choice() {
        let v = |list: &[RepoVersion]| list.iter().map(|v| (*v, 1.0)).collect::<Vec<_>>();
        use RepoVersion::*;
        assert_eq!(choose_version(V5, &v(&[V5, V4, V3])), Some((V5, false)));
        assert_eq!(choose_version(V3, &v(&[V5, V4, V3])), Some((V3, false)));
        assert_eq!(choose_version(V3, &v(&[V5])), Some((V5, false)));
        assert_eq!(choose_version(V5, &v(&[V4, V3])), Some((V4, true)));
        assert_eq!(
            choose_version(V5, &[(V4, 0.2), (V3, 0.9)]),
            Some((V3, true))
        );
        assert_eq!(choose_version(V5, &[]), None);
    }

    #[test]
    fn user_agents() {
        assert_eq!(
            dcos_from_user_agent(Some("dcos/1.10")).as_deref(),
            Some("1.10")
        );
        assert_eq!(
            dcos_from_user_agent(Some("cosmos/0.6.3 dcos/1.12.4")).as_deref(),
            Some("1.12")
        );
        assert_eq!(dcos_from_user_agent(Some("dcos/2")).as_deref(), Some("2.0"));
        assert_eq!(dcos_from_user_agent(Some("curl/8")), None);
        assert_eq!(dcos_from_user_agent(Some("dcos/")), None);
    }
}
