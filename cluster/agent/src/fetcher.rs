//! The fetcher: downloads a task's URIs into its sandbox (http(s), file:// and plain paths),
//! verifies sha256, extracts archives, sets the executable bit, and caches when asked.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use dcos_types::UriInfo;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("Failed to fetch '{uri}': {reason}")]
    Fetch { uri: String, reason: String },
}

fn err(uri: &str, reason: impl Into<String>) -> FetchError {
    FetchError::Fetch {
        uri: uri.to_string(),
        reason: reason.into(),
    }
}

/// The file name a URI is saved under (`output_file`, else the last path segment).
pub fn file_name(uri: &UriInfo) -> Result<String, FetchError> {
    if let Some(out) = &uri.output_file {
        let name = out.trim();
        if name.is_empty() || name.contains("..") || name.starts_with('/') {
            return Err(err(&uri.value, format!("bad output_file {out:?}")));
        }
        return Ok(name.to_string());
    }
    let without_query = uri.value.split(['?', '#']).next().unwrap_or("");
    let name = without_query
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .ok_or_else(|| err(&uri.value, "the URI has no file name"))?;
    Ok(name.to_string())
}

fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or(&[]));
    }
    Ok(hex::encode(h.finalize()))
}

/// Fetches every URI into `sandbox`. `cache_dir` holds cached downloads.
pub async fn fetch_all(
    client: &reqwest::Client,
    uris: &[UriInfo],
    sandbox: &Path,
    cache_dir: &Path,
) -> Result<(), FetchError> {
    for uri in uris {
        fetch_one(client, uri, sandbox, cache_dir).await?;
    }
    Ok(())
}

async fn fetch_one(
    client: &reqwest::Client,
    uri: &UriInfo,
    sandbox: &Path,
    cache_dir: &Path,
) -> Result<(), FetchError> {
    let name = file_name(uri)?;
    let dest = sandbox.join(&name);
    let cache_key = {
        let mut h = Sha256::new();
        h.update(uri.value.as_bytes());
        hex::encode(h.finalize())
    };
    let cached = cache_dir.join(&cache_key);
    let mut from_cache = false;
    if uri.cache && cached.exists() {
        fs::copy(&cached, &dest).map_err(|e| err(&uri.value, format!("copy from cache: {e}")))?;
        from_cache = true;
    }
    if !from_cache {
        let value = uri.value.trim();
        if value.starts_with("http://") || value.starts_with("https://") {
            download(client, value, &dest).await?;
        } else {
            let src = value.strip_prefix("file://").unwrap_or(value);
            if !src.starts_with('/') {
                return Err(err(
                    value,
                    "unsupported URI (http://, https://, file:// or an absolute path)",
                ));
            }
            fs::copy(src, &dest).map_err(|e| err(value, format!("{src}: {e}")))?;
        }
    }
    if let Some(expected) = &uri.sha256 {
        let actual = sha256_file(&dest).map_err(|e| err(&uri.value, e.to_string()))?;
        if !actual.eq_ignore_ascii_case(expected.trim()) {
            let _ = fs::remove_file(&dest);
            if from_cache {
                let _ = fs::remove_file(&cached);
            }
            return Err(err(
                &uri.value,
                format!("checksum mismatch: expected sha256 {expected}, got {actual}"),
            ));
        }
    }
    if uri.cache && !from_cache {
        let _ = fs::create_dir_all(cache_dir);
        let tmp = cache_dir.join(format!("{cache_key}.tmp"));
        if fs::copy(&dest, &tmp).is_ok() {
            let _ = fs::rename(&tmp, &cached);
        }
    }
    if uri.extract && is_archive(&name) {
        let dest2 = dest.clone();
        let sandbox2 = sandbox.to_path_buf();
        let name2 = name.clone();
        tokio::task::spawn_blocking(move || extract(&dest2, &sandbox2, &name2))
            .await
            .map_err(|e| err(&uri.value, e.to_string()))?
            .map_err(|e| err(&uri.value, format!("cannot extract: {e}")))?;
    } else if uri.executable {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))
            .map_err(|e| err(&uri.value, e.to_string()))?;
    }
    Ok(())
}

async fn download(client: &reqwest::Client, url: &str, dest: &Path) -> Result<(), FetchError> {
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| err(url, e.to_string()))?;
    if !resp.status().is_success() {
        return Err(err(url, format!("HTTP {}", resp.status())));
    }
    let tmp: PathBuf = dest.with_extension("part");
    let mut f = fs::File::create(&tmp).map_err(|e| err(url, e.to_string()))?;
    while let Some(chunk) = resp.chunk().await.map_err(|e| err(url, e.to_string()))? {
        f.write_all(&chunk).map_err(|e| err(url, e.to_string()))?;
    }
    f.flush().map_err(|e| err(url, e.to_string()))?;
    drop(f);
    fs::rename(&tmp, dest).map_err(|e| err(url, e.to_string()))?;
    Ok(())
}

pub fn is_archive(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [".tar", ".tar.gz", ".tgz", ".zip"]
        .iter()
        .any(|ext| n.ends_with(ext))
}

/// Extracts `archive` into `dir`, refusing entries that would escape it.
pub fn extract(archive: &Path, dir: &Path, name: &str) -> io::Result<()> {
    let n = name.to_ascii_lowercase();
    let f = fs::File::open(archive)?;
    if n.ends_with(".zip") {
        let mut z = zip::ZipArchive::new(f).map_err(|e| io::Error::other(e.to_string()))?;
        for i in 0..z.len() {
            let mut entry = z.by_index(i).map_err(|e| io::Error::other(e.to_string()))?;
            let Some(rel) = entry.enclosed_name() else {
                return Err(io::Error::other(format!(
                    "entry {:?} escapes the sandbox",
                    entry.name()
                )));
            };
            let out = dir.join(rel);
            if entry.is_dir() {
                fs::create_dir_all(&out)?;
                continue;
            }
            if let Some(p) = out.parent() {
                fs::create_dir_all(p)?;
            }
            let mut w = fs::File::create(&out)?;
            io::copy(&mut entry, &mut w)?;
            if let Some(mode) = entry.unix_mode() {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&out, fs::Permissions::from_mode(mode & 0o7777))?;
            }
        }
        return Ok(());
    }
    let reader: Box<dyn Read> = if n.ends_with(".tar.gz") || n.ends_with(".tgz") {
        Box::new(flate2::read::GzDecoder::new(f))
    } else {
        Box::new(f)
    };
    let mut t = tar::Archive::new(reader);
    t.set_preserve_permissions(true);
    for entry in t.entries()? {
        let mut entry = entry?;
        // `unpack_in` refuses paths with `..` or absolute paths.
        if !entry.unpack_in(dir)? {
            return Err(io::Error::other(format!(
                "entry {:?} escapes the sandbox",
                entry
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(v: &str) -> UriInfo {
        UriInfo {
            value: v.into(),
            executable: false,
            extract: true,
            cache: false,
            output_file: None,
            sha256: None,
        }
    }

    #[test]
    fn names() {
        assert_eq!(file_name(&uri("http://h/a/b.tgz?x=1")).unwrap(), "b.tgz");
        assert!(file_name(&uri("http://h/")).is_err());
        let mut u = uri("http://h/x");
        u.output_file = Some("../evil".into());
        assert!(file_name(&u).is_err());
        assert!(is_archive("A.TAR.GZ"));
        assert!(!is_archive("a.gz"));
    }

    #[test]
    fn garbage_archives_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.zip");
        fs::write(&p, b"not a zip").unwrap();
        assert!(extract(&p, d.path(), "x.zip").is_err());
        let p = d.path().join("x.tgz");
        fs::write(&p, b"not a tgz").unwrap();
        assert!(extract(&p, d.path(), "x.tgz").is_err());
    }
}
