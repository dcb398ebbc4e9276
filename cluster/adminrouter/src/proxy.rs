//! The streaming reverse proxy.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use crate::auth::{AUTH_COOKIE, INFO_COOKIE};
use crate::Inner;

pub(crate) type Client = hyper_util::client::legacy::Client<HttpConnector, Body>;

pub(crate) fn client(connect_timeout: Duration) -> Client {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    connector.enforce_http(true);
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        .build(connector)
}

/// A parsed upstream base URL (`http://host:port[/prefix]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    authority: String,
    /// Path prefix without trailing slash (`""` for none).
    prefix: String,
}

impl Upstream {
    /// Parses `http://host:port[/prefix]`. Only `http` is supported (TLS is terminated in front).
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e: axum::http::uri::InvalidUri| e.to_string())?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => return Err(format!("scheme {other:?} is not supported (use http)")),
            None => return Err("missing scheme (expected http://host:port)".into()),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| "missing host".to_string())?
            .to_string();
        if uri.query().is_some() {
            return Err("a base URL cannot have a query".into());
        }
        let prefix = uri.path().trim_end_matches('/').to_string();
        Ok(Self { authority, prefix })
    }

    /// `host:port` of the upstream.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    fn uri(&self, path: &str, query: Option<&str>) -> Result<Uri, axum::http::Error> {
        let mut pq = String::with_capacity(self.prefix.len() + path.len() + 16);
        pq.push_str(&self.prefix);
        pq.push_str(path);
        if let Some(q) = query {
            pq.push('?');
            pq.push_str(q);
        }
        Uri::builder()
            .scheme("http")
            .authority(self.authority.as_str())
            .path_and_query(pq)
            .build()
    }
}

/// 502 naming the service.
pub(crate) fn unavailable(service: &str, reason: &str) -> Response {
    crate::json_response(
        StatusCode::BAD_GATEWAY,
        json!({
            "code": 502,
            "service": service,
            "message": format!("Upstream service '{service}' is unavailable: {reason}"),
        }),
    )
}

/// `dcos-internal-token` (checked at compile time).
const INTERNAL_TOKEN: HeaderName = HeaderName::from_static(dcos_types::INTERNAL_TOKEN_HEADER);

const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

fn strip_hop_by_hop(h: &mut HeaderMap) {
    // Headers named in `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in HOP_BY_HOP.iter() {
        h.remove(n);
    }
}

/// Removes the DC/OS auth cookies (`util.clear_dcos_cookies`), keeping the others.
fn strip_dcos_cookies(h: &mut HeaderMap) {
    if !h.contains_key(header::COOKIE) {
        return;
    }
    let kept: Vec<String> = h
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| {
            let name = c.split('=').next().unwrap_or("").trim();
            !c.is_empty() && name != AUTH_COOKIE && name != INFO_COOKIE
        })
        .map(str::to_string)
        .collect();
    h.remove(header::COOKIE);
    if !kept.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
            h.insert(header::COOKIE, v);
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn forward(
    inner: &Inner,
    service: &str,
    upstream: &Upstream,
    path: &str,
    query: Option<&str>,
    strip_authorization: bool,
    token_from_cookie: Option<String>,
    internal: bool,
    req: Request,
) -> Response {
    let peer = crate::peer_addr(&req);
    let (mut parts, body) = req.into_parts();
    let uri = match upstream.uri(path, query) {
        Ok(u) => u,
        Err(e) => {
            return crate::json_response(
                StatusCode::BAD_REQUEST,
                json!({"code": 400, "message": format!("cannot build upstream URL: {e}")}),
            )
        }
    };
    let h = &mut parts.headers;
    strip_hop_by_hop(h);
    strip_dcos_cookies(h);
    if let Some(t) = token_from_cookie {
        if let Ok(v) = HeaderValue::from_str(&format!("token={t}")) {
            h.insert(header::AUTHORIZATION, v);
        }
    }
    if strip_authorization {
        h.remove(header::AUTHORIZATION);
    }
    // A client never passes its own internal credential (every copy removed); cluster
    // components get the Admin Router's.
    h.remove(INTERNAL_TOKEN);
    if internal {
        if let Some(t) = &inner.internal_token {
            h.insert(INTERNAL_TOKEN, t.clone());
        }
    }
    if let Some(peer) = peer {
        let ip = peer.ip().to_string();
        let xff = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(prev) => format!("{prev}, {ip}"),
            None => ip.clone(),
        };
        if let Ok(v) = HeaderValue::from_str(&xff) {
            h.insert(HeaderName::from_static("x-forwarded-for"), v);
        }
        if let Ok(v) = HeaderValue::from_str(&ip) {
            h.insert(HeaderName::from_static("x-real-ip"), v);
        }
    }
    h.insert(
        HeaderName::from_static("x-forwarded-proto"),
        inner.forwarded_proto.clone(),
    );
    parts.uri = uri;
    parts.version = axum::http::Version::HTTP_11;
    let out = axum::http::Request::from_parts(parts, body);
    tracing::debug!(service, uri = %out.uri(), method = %out.method(), "proxying");
    match inner.client.request(out).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => {
            let reason = if e.is_connect() {
                format!("cannot connect to {}", upstream.authority())
            } else {
                format!("error talking to {}: {e}", upstream.authority())
            };
            tracing::warn!(service, error = %e, "upstream request failed");
            unavailable(service, &reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_parse() {
        let u = Upstream::parse("http://127.0.0.1:7070").unwrap();
        assert_eq!(
            u.uri("/package/search", None).unwrap().to_string(),
            "http://127.0.0.1:7070/package/search"
        );
        let u = Upstream::parse("http://h:1/pre/").unwrap();
        assert_eq!(
            u.uri("/x", Some("a=b")).unwrap().to_string(),
            "http://h:1/pre/x?a=b"
        );
        assert!(Upstream::parse("https://h").is_err());
        assert!(Upstream::parse("h:1").is_err());
        assert!(Upstream::parse("not a url").is_err());
    }

    #[test]
    fn cookies_stripped() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; dcos-acs-auth-cookie=t; dcos-acs-info-cookie=i; b=2"),
        );
        strip_dcos_cookies(&mut h);
        assert_eq!(h.get(header::COOKIE).unwrap(), "a=1; b=2");
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("dcos-acs-auth-cookie=t"),
        );
        strip_dcos_cookies(&mut h);
        assert!(h.get(header::COOKIE).is_none());
    }
}
