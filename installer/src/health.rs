//! Postflight: which node serves which health endpoint, the HTTP client
//! (reqwest, blocking), and the evaluation of `/system/health/v1` answers.

use crate::genesis::GenesisConfig;
use crate::node_config::InstallRole;
use std::time::Duration;

/// A node postflight checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Node IP.
    pub ip: String,
    /// Its install role.
    pub role: InstallRole,
    /// Its health URL (masters: through Admin Router; agents: agent Admin Router).
    pub url: String,
}

/// Every node listed in the genesis config with its health URL.
pub fn targets(cfg: &GenesisConfig) -> Vec<Target> {
    let mut v = Vec::new();
    for ip in &cfg.master_list {
        v.push(Target {
            ip: ip.to_string(),
            role: InstallRole::Master,
            url: format!("http://{ip}:{}/system/health/v1", cfg.ports.adminrouter),
        });
    }
    for (list, role) in [
        (&cfg.agent_list, InstallRole::Slave),
        (&cfg.public_agent_list, InstallRole::SlavePublic),
    ] {
        for ip in list {
            v.push(Target {
                ip: ip.to_string(),
                role,
                url: format!(
                    "http://{ip}:{}/system/health/v1",
                    cfg.ports.agent_adminrouter
                ),
            });
        }
    }
    v
}

/// The node roles `/system/health/v1` may report for an install role.
fn expected_node_roles(role: InstallRole) -> &'static [&'static str] {
    match role {
        InstallRole::Master => &["master"],
        InstallRole::Slave => &["agent", "slave"],
        InstallRole::SlavePublic => &["agent_public", "slave_public", "public_agent"],
    }
}

/// The first 160 characters of a body, whitespace collapsed to single spaces.
fn one_line(body: &str) -> String {
    body.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(160)
        .collect()
}

/// Evaluate one health answer. `Ok(n)` = healthy with `n` units; `Err(reasons)` otherwise.
pub fn evaluate(role: InstallRole, status: u16, body: &str) -> Result<usize, Vec<String>> {
    if status == 401 {
        return Err(vec![
            "HTTP 401 from Admin Router: log in (postflight --username/--password) or check oauth_enabled".into(),
        ]);
    }
    if status != 200 {
        return Err(vec![format!("HTTP {status}: {}", one_line(body))]);
    }
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| vec![format!("health answer is not JSON: {e}")])?;
    let mut reasons = Vec::new();
    if let Some(r) = v.get("node_role").and_then(|r| r.as_str()) {
        if !expected_node_roles(role).contains(&r) {
            reasons.push(format!("node reports role '{r}', expected {role}"));
        }
    }
    let units = v.get("units").and_then(|u| u.as_array());
    let n = units.map(|u| u.len()).unwrap_or(0);
    for u in units.into_iter().flatten() {
        let health = u.get("health").and_then(|h| h.as_i64()).unwrap_or(1);
        if health != 0 {
            let id = u
                .get("id")
                .or_else(|| u.get("name"))
                .and_then(|s| s.as_str())
                .unwrap_or("(unnamed unit)");
            let out = u.get("output").and_then(|s| s.as_str()).unwrap_or("");
            reasons.push(format!(
                "unit {id} unhealthy{}{}",
                if out.is_empty() { "" } else { ": " },
                out.trim()
            ));
        }
    }
    if reasons.is_empty() {
        Ok(n)
    } else {
        Err(reasons)
    }
}

/// A parsed `http://host:port/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host (name or IP).
    pub host: String,
    /// Port (80 if absent).
    pub port: u16,
    /// Path with query, starting with `/`.
    pub path: String,
}

/// Why a postflight request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Not an `http://` URL.
    #[error("{0}: only http:// URLs are supported")]
    NotHttp(String),
    /// The port is not a number 0-65535.
    #[error("{url}: bad port '{port}'")]
    BadPort {
        /// The URL.
        url: String,
        /// The port as written.
        port: String,
    },
    /// No host in the URL.
    #[error("{0}: no host")]
    NoHost(String),
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// No connection (refused, unreachable, connect timeout).
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The cause.
        reason: String,
    },
    /// The connection was made but the answer did not come in time.
    #[error("cannot read from {addr}: timed out after {timeout:?}")]
    Timeout {
        /// `host:port`.
        addr: String,
        /// The request timeout.
        timeout: Duration,
    },
    /// Any other failure sending the request or reading the answer.
    #[error("cannot read from {addr}: {reason}")]
    Io {
        /// `host:port`.
        addr: String,
        /// The cause.
        reason: String,
    },
}

/// Why logging in at a master failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The request failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The login was refused.
    #[error("login at {url} failed: HTTP {status}: {body}")]
    Refused {
        /// The login URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The answer, on one line.
        body: String,
    },
    /// The answer is not JSON.
    #[error("login answer is not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    /// The answer has no `token`.
    #[error("login answer has no token")]
    NoToken,
}

/// Parse an `http://` URL (postflight only speaks plain HTTP to nodes).
pub fn parse_http_url(url: &str) -> Result<HttpUrl, HttpError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| HttpError::NotHttp(url.to_string()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h.to_string(),
            p.parse::<u16>().map_err(|_| HttpError::BadPort {
                url: url.to_string(),
                port: p.to_string(),
            })?,
        ),
        None => (authority.to_string(), 80),
    };
    if host.is_empty() {
        return Err(HttpError::NoHost(url.to_string()));
    }
    Ok(HttpUrl {
        host,
        port,
        path: path.to_string(),
    })
}

/// The innermost cause of an error (reqwest wraps hyper wraps io), for messages
/// like "Connection refused (os error 111)".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// The blocking HTTP client postflight uses: `timeout` for connecting and for
/// each whole exchange; no proxy (nodes are addressed directly; `HTTP_PROXY`
/// is not consulted), no redirects, header names in Title-Case
/// (`Authorization: token=…`).
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::blocking::Client,
    timeout: Duration,
}

impl HttpClient {
    /// A client whose requests give up after `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, HttpError> {
        let inner = reqwest::blocking::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .http1_title_case_headers()
            .user_agent("dcos-installer")
            .build()
            .map_err(|e| HttpError::Client(root_cause(&e)))?;
        Ok(Self { inner, timeout })
    }

    /// One request to an `http://` URL; returns status and body (lossy UTF-8).
    pub fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<(u16, String), HttpError> {
        let u = parse_http_url(url)?;
        let addr = format!("{}:{}", u.host, u.port);
        let mut req = self
            .inner
            .request(method, url)
            .header(reqwest::header::ACCEPT, "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        let failed = |e: reqwest::Error| {
            if e.is_connect() {
                HttpError::Connect {
                    addr: addr.clone(),
                    reason: root_cause(&e),
                }
            } else if e.is_timeout() {
                HttpError::Timeout {
                    addr: addr.clone(),
                    timeout: self.timeout,
                }
            } else {
                HttpError::Io {
                    addr: addr.clone(),
                    reason: root_cause(&e),
                }
            }
        };
        let resp = req.send().map_err(failed)?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().map_err(failed)?;
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }
}

/// Log in at a master's Admin Router; returns the token.
pub fn login(
    http: &HttpClient,
    master_base: &str,
    uid: &str,
    password: &str,
) -> Result<String, LoginError> {
    let body = serde_json::json!({"uid": uid, "password": password}).to_string();
    let url = format!("{master_base}/acs/api/v1/auth/login");
    let (status, text) = http.request(reqwest::Method::POST, &url, &[], Some(&body))?;
    if status != 200 {
        return Err(LoginError::Refused {
            url,
            status,
            body: one_line(&text),
        });
    }
    let v: serde_json::Value = serde_json::from_str(&text)?;
    v.get("token")
        .and_then(|t| t.as_str())
        .map(str::to_string)
        .ok_or(LoginError::NoToken)
}

/// Result of checking one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReport {
    /// The node.
    pub target: Target,
    /// `Ok(units)` or the reasons it is not healthy.
    pub result: Result<usize, Vec<String>>,
}

/// Check one node once.
pub fn check_node(http: &HttpClient, t: &Target, token: Option<&str>) -> NodeReport {
    let auth = token.map(|t| format!("token={t}"));
    let headers: Vec<(&str, &str)> = match (&auth, t.role) {
        (Some(a), InstallRole::Master) => vec![("Authorization", a.as_str())],
        _ => vec![],
    };
    let result = match http.request(reqwest::Method::GET, &t.url, &headers, None) {
        Ok((status, body)) => evaluate(t.role, status, &body),
        Err(e) => Err(vec![e.to_string()]),
    };
    NodeReport {
        target: t.clone(),
        result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn a_node_that_does_not_answer_in_time_is_reported() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        // Accepts (the kernel does) but never answers.
        let http = HttpClient::new(Duration::from_millis(300)).unwrap();
        let t = Target {
            ip: "127.0.0.1".into(),
            role: InstallRole::Slave,
            url: format!("http://{addr}/system/health/v1"),
        };
        let r = check_node(&http, &t, Some("tok")).result.unwrap_err();
        assert_eq!(
            r,
            [format!("cannot read from {addr}: timed out after 300ms")]
        );
        drop(l);
        let r = check_node(&http, &t, None).result.unwrap_err();
        assert!(
            r[0].starts_with(&format!("cannot connect to {addr}: ")),
            "{r:?}"
        );
    }

    #[test]
    fn redirects_are_not_followed_and_login_errors_are_typed() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in l.incoming().take(2) {
                let Ok(mut s) = s else { continue };
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(
                    b"HTTP/1.1 302 Found\r\nLocation: http://10.255.255.1/\r\nContent-Length: 5\r\n\r\nmoved",
                );
            }
        });
        let http = HttpClient::new(Duration::from_secs(5)).unwrap();
        let (status, body) = http
            .request(reqwest::Method::GET, &format!("http://{addr}/x"), &[], None)
            .unwrap();
        assert_eq!((status, body.as_str()), (302, "moved"));
        let e = login(&http, &format!("http://{addr}"), "u", "p").unwrap_err();
        assert!(matches!(e, LoginError::Refused { status: 302, .. }), "{e}");
        assert!(matches!(
            http.request(reqwest::Method::GET, "https://x/", &[], None),
            Err(HttpError::NotHttp(_))
        ));
    }
}
