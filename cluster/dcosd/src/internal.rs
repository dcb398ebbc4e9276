//! The cluster's internal credential: a random token that every component sends to the
//! others in [`INTERNAL_TOKEN_HEADER`] and that every internal port requires when auth is on.
//!
//! Without it, any local user of a master could reach Marathon on loopback and run a command
//! as root (see docs/security.md). The Admin Router authenticates users, strips any copy of the
//! header a client sends, and adds the token when it forwards a request; Cosmos adds it on its
//! calls to Marathon and the master; agents and the master add it on their calls to each other.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dcos_types::INTERNAL_TOKEN_HEADER;

/// Where an all-in-one node keeps its token, under the work dir.
pub const TOKEN_FILE: &str = "secrets/internal-token";

/// Reads the node's internal token from `work_dir/secrets/internal-token`, creating it (256
/// random bits, hex) on first start. The folder is 0700 and the file 0600; both are fixed on
/// start if an earlier build or an operator loosened them.
pub fn load_or_create_token(work_dir: &Path) -> anyhow::Result<String> {
    let path = work_dir.join(TOKEN_FILE);
    let dir = path.parent().unwrap_or(work_dir);
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {}", dir.display()))?;
    match fs::read_to_string(&path) {
        Ok(text) => {
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {}", path.display()))?;
            let token = text.trim().to_string();
            anyhow::ensure!(
                token.len() >= 32,
                "{} holds no usable token (delete it to make a new one)",
                path.display()
            );
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = new_token();
            let tmp = dir.join("internal-token.tmp");
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            f.write_all(token.as_bytes())
                .and_then(|_| f.sync_all())
                .with_context(|| format!("writing {}", tmp.display()))?;
            fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
            Ok(token)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// 256 random bits as hex.
pub fn new_token() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("{a}{b}")
}

/// `router`, requiring the internal token on every request when `token` is set.
pub fn protect(router: axum::Router, token: Option<&str>) -> axum::Router {
    let Some(token) = token else { return router };
    let token: Arc<[u8]> = Arc::from(token.as_bytes());
    router.layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let token = token.clone();
            async move {
                if presented(req.headers().get(INTERNAL_TOKEN_HEADER), &token) {
                    next.run(req).await
                } else {
                    refused()
                }
            }
        },
    ))
}

/// Whether `value` is the token, compared in constant time.
fn presented(value: Option<&HeaderValue>, token: &[u8]) -> bool {
    let Some(v) = value else { return false };
    let v = v.as_bytes();
    if v.len() != token.len() {
        return false;
    }
    v.iter().zip(token).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn refused() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [("content-type", "application/json")],
        serde_json::json!({
            "code": 401,
            "message": "this port is internal to the cluster and requires its internal \
                        credential; go through the Admin Router (with a login token) instead",
        })
        .to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_token(dir.path()).unwrap();
        assert_eq!(a.len(), 64);
        let path = dir.path().join(TOKEN_FILE);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        // Loosened by hand: fixed on the next start, same token.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(load_or_create_token(dir.path()).unwrap(), a);
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn only_the_exact_token_passes() {
        let t = b"0123456789abcdef0123456789abcdef";
        let hv = |s: &str| HeaderValue::from_str(s).unwrap();
        assert!(presented(Some(&hv("0123456789abcdef0123456789abcdef")), t));
        assert!(!presented(Some(&hv("0123456789abcdef0123456789abcdeF")), t));
        assert!(!presented(Some(&hv("0123456789abcdef")), t));
        assert!(!presented(None, t));
    }
}
