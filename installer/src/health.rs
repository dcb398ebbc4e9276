//! Postflight: which node serves which health endpoint, a minimal HTTP/1.1
//! client (std only), and the evaluation of `/system/health/v1` answers.

use crate::genesis::GenesisConfig;
use crate::node_config::InstallRole;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
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

/// Parse an `http://` URL (https is not supported by this minimal client).
pub fn parse_http_url(url: &str) -> Result<HttpUrl, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h.to_string(),
            p.parse::<u16>()
                .map_err(|_| format!("{url}: bad port '{p}'"))?,
        ),
        None => (authority.to_string(), 80),
    };
    if host.is_empty() {
        return Err(format!("{url}: no host"));
    }
    Ok(HttpUrl {
        host,
        port,
        path: path.to_string(),
    })
}

fn decode_chunked(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunked encoding")?;
        let size_str = std::str::from_utf8(&body[..line_end]).map_err(|_| "bad chunk size")?;
        let size_str = size_str.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_str, 16).map_err(|_| "bad chunk size")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        body = body.get(size + 2..).ok_or("truncated chunk")?;
    }
}

/// One HTTP/1.1 request (`Connection: close`); returns status and body.
pub fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let u = parse_http_url(url)?;
    let addr = (u.host.as_str(), u.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", u.host))?
        .next()
        .ok_or_else(|| format!("cannot resolve {}", u.host))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let mut req = format!(
        "{method} {} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\nAccept: application/json\r\nUser-Agent: dcos-installer\r\n",
        u.path, u.host, u.port
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    if let Some(b) = body {
        req.push_str(b);
    }
    s.write_all(req.as_bytes())
        .map_err(|e| format!("cannot send to {addr}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("cannot read from {addr}: {e}"))?;
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("{addr}: malformed HTTP response"))?;
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("{addr}: malformed HTTP status line"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body_bytes = &raw[head_end + 4..];
    let body = if chunked {
        decode_chunked(body_bytes).map_err(|e| format!("{addr}: {e}"))?
    } else {
        body_bytes.to_vec()
    };
    Ok((status, String::from_utf8_lossy(&body).to_string()))
}

/// Log in at a master's Admin Router; returns the token.
pub fn login(
    master_base: &str,
    uid: &str,
    password: &str,
    timeout: Duration,
) -> Result<String, String> {
    let body = serde_json::json!({"uid": uid, "password": password}).to_string();
    let url = format!("{master_base}/acs/api/v1/auth/login");
    let (status, text) = http_request("POST", &url, &[], Some(&body), timeout)?;
    if status != 200 {
        return Err(format!(
            "login at {url} failed: HTTP {status}: {}",
            one_line(&text)
        ));
    }
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("login answer is not JSON: {e}"))?;
    v.get("token")
        .and_then(|t| t.as_str())
        .map(str::to_string)
        .ok_or_else(|| "login answer has no token".to_string())
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
pub fn check_node(t: &Target, token: Option<&str>, timeout: Duration) -> NodeReport {
    let auth = token.map(|t| format!("token={t}"));
    let headers: Vec<(&str, &str)> = match (&auth, t.role) {
        (Some(a), InstallRole::Master) => vec![("Authorization", a.as_str())],
        _ => vec![],
    };
    let result = match http_request("GET", &t.url, &headers, None, timeout) {
        Ok((status, body)) => evaluate(t.role, status, &body),
        Err(e) => Err(vec![e]),
    };
    NodeReport {
        target: t.clone(),
        result,
    }
}
