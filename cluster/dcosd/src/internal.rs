//! The cluster's internal credential: a random token that every component sends to the
//! others in [`INTERNAL_TOKEN_HEADER`] and that every internal port requires when auth is on.
//!
//! Without it, any local user of a master could reach Marathon on loopback and run a command
//! as root (see docs/security.md). The Admin Router authenticates users, strips any copy of the
//! header a client sends, and adds the token when it forwards a request; Cosmos adds it on its
//! calls to Marathon and the master; agents and the master add it on their calls to each other.

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

/// Reads the node's internal token from `work_dir/secrets/internal-token`, creating it on
/// first start (the rule lives in `dcos_installer::secret`, shared with genconf).
pub fn load_or_create_token(work_dir: &Path) -> anyhow::Result<String> {
    let path = work_dir.join(TOKEN_FILE);
    dcos_installer::secret::read_or_create_token(&path)
        .with_context(|| format!("the internal token in {}", path.display()))
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
    fn only_the_exact_token_passes() {
        let t = b"0123456789abcdef0123456789abcdef";
        let hv = |s: &str| HeaderValue::from_str(s).unwrap();
        assert!(presented(Some(&hv("0123456789abcdef0123456789abcdef")), t));
        assert!(!presented(Some(&hv("0123456789abcdef0123456789abcdeF")), t));
        assert!(!presented(Some(&hv("0123456789abcdef")), t));
        assert!(!presented(None, t));
    }
}
