//! HTTP access to the cluster through its Admin Router.

use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WARNING};
use reqwest::Method;
use serde_json::Value;

use crate::error::{CliError, Result};

/// `application/vnd.dcos.package.<kind>+json;charset=utf-8;version=<v>` (cosmos-api.md §0).
pub fn package_media_type(kind: &str, version: &str) -> String {
    format!("application/vnd.dcos.package.{kind}+json;charset=utf-8;version={version}")
}

/// The Cosmos error media type.
pub const COSMOS_ERROR: &str = "application/vnd.dcos.package.error+json;charset=utf-8;version=v1";

/// A client bound to one cluster URL (and token).
pub struct Api {
    pub base: String,
    pub token: Option<String>,
    client: Client,
    stream_client: Client,
}

fn hint_unreachable(base: &str) -> String {
    format!(
        "check that the cluster is running and that {base} is its Admin Router URL \
         (`dcos cluster list`; DCOS_URL overrides the configured URL)"
    )
}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> Result<Self> {
        let build = |timeout: Option<Duration>| {
            let mut b = Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .user_agent(concat!("dcos-cli/", env!("CARGO_PKG_VERSION")))
                .redirect(reqwest::redirect::Policy::limited(5));
            b = b.timeout(timeout);
            b.build()
                .map_err(|e| CliError::failed(format!("cannot create an HTTP client: {e}")))
        };
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            token,
            client: build(Some(Duration::from_secs(180)))?,
            stream_client: build(None)?,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with `Accept: application/json` and the token (`Authorization: token=…`).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.request_with(&self.client, method, path)
    }

    /// Like [`Api::request`] without a read timeout (log follow).
    pub fn streaming(&self, method: Method, path: &str) -> RequestBuilder {
        self.request_with(&self.stream_client, method, path)
    }

    /// A request with the given `Accept` (and the token).
    pub fn request_accept(&self, method: Method, path: &str, accept: &str) -> RequestBuilder {
        let mut rb = self
            .client
            .request(method, self.url(path))
            .header(ACCEPT, accept);
        if let Some(t) = &self.token {
            rb = rb.header(AUTHORIZATION, format!("token={t}"));
        }
        rb
    }

    fn request_with(&self, client: &Client, method: Method, path: &str) -> RequestBuilder {
        let mut rb = client
            .request(method, self.url(path))
            .header(ACCEPT, "application/json");
        if let Some(t) = &self.token {
            rb = rb.header(AUTHORIZATION, format!("token={t}"));
        }
        rb
    }

    /// Sends, mapping transport failures to [`CliError::Unreachable`]. The server's `Warning`
    /// headers (Cosmos names the repositories it answered without) go to stderr.
    pub fn send(&self, rb: RequestBuilder) -> Result<Response> {
        let resp = self.send_quiet(rb)?;
        print_warnings(&resp);
        Ok(resp)
    }

    fn send_quiet(&self, rb: RequestBuilder) -> Result<Response> {
        rb.send().map_err(|e| {
            let url = e
                .url()
                .map(|u| u.to_string())
                .unwrap_or_else(|| self.base.clone());
            let what = if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                "connection failed".to_string()
            } else {
                "request failed".to_string()
            };
            let mut detail = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                detail = format!("{detail}: {s}");
                src = s.source();
            }
            CliError::Unreachable {
                message: format!("cannot reach the cluster at {url} ({what}): {detail}"),
                hint: Some(hint_unreachable(&self.base)),
            }
        })
    }

    /// Sends and turns any non-2xx into an error carrying the server's message.
    pub fn send_ok(&self, rb: RequestBuilder) -> Result<Response> {
        let resp = self.send(rb)?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(self.error_from(resp))
        }
    }

    /// Sends and parses a JSON body.
    pub fn json(&self, rb: RequestBuilder) -> Result<Value> {
        let resp = self.send_ok(rb)?;
        let url = resp.url().to_string();
        let text = resp
            .text()
            .map_err(|e| CliError::failed(format!("error reading the response of {url}: {e}")))?;
        serde_json::from_str(&text).map_err(|_| CliError::Unreachable {
            message: format!("the response of {url} is not JSON: {}", snippet(&text)),
            hint: Some(format!(
                "is {} the Admin Router of a DC/OS cluster? Check the URL with `dcos cluster list`",
                self.base
            )),
        })
    }

    /// Sends a JSON body (`Content-Type: application/json`) and returns the JSON answer.
    pub fn send_json(&self, method: Method, path: &str, body: &Value) -> Result<Value> {
        self.json(
            self.request(method, path)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string()),
        )
    }

    pub fn get_json(&self, path: &str) -> Result<Value> {
        self.json(self.request(Method::GET, path))
    }

    /// A Cosmos RPC: `POST /package/<rpc>` with the exact vendor media types.
    pub fn cosmos(
        &self,
        rpc: &str,
        kind: &str,
        response_version: &str,
        body: &Value,
    ) -> Result<Value> {
        let rb = self
            .request_accept(
                Method::POST,
                &format!("/package/{rpc}"),
                &package_media_type(&format!("{kind}-response"), response_version),
            )
            .header(
                CONTENT_TYPE,
                package_media_type(&format!("{kind}-request"), "v1"),
            )
            .body(body.to_string());
        self.json(rb)
    }

    /// Builds the error for a non-2xx response: the server's own message plus a hint.
    pub fn error_from(&self, resp: Response) -> CliError {
        let status = resp.status();
        let url = resp.url().clone();
        let ctype = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = resp.text().unwrap_or_default();
        let json: Option<Value> = serde_json::from_str(&text).ok();
        let path = url.path().to_string();
        if status.as_u16() == 401 {
            let (message, hint) = if self.token.is_some() {
                (
                    "the cluster refused the authentication token (expired or invalid)".to_string(),
                    "log in again with `dcos auth login`".to_string(),
                )
            } else {
                (
                    "authentication required: this cluster has auth enabled".to_string(),
                    "log in with `dcos auth login` (or `dcos cluster setup URL --username U --password P`)".to_string(),
                )
            };
            return CliError::Auth {
                message: format!("{message} ({path})"),
                hint: Some(hint),
            };
        }
        if status.as_u16() == 403 {
            return CliError::Auth {
                message: format!("you are not authorized to perform this operation ({path})"),
                hint: None,
            };
        }
        let server_message = json.as_ref().and_then(|j| describe_error_body(j, &ctype));
        let message = match server_message {
            Some(m) => m,
            None if text.trim().is_empty() => format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
            None => format!("{}: {}", status.as_u16(), snippet(&text)),
        };
        let hint = match status.as_u16() {
            502..=504 => Some(
                "a cluster service is down or still starting; check `dcos node list` and the cluster's health at /system/health/v1".to_string(),
            ),
            404 if json.is_none() => Some(format!(
                "{path} does not exist on {}; is this the Admin Router URL of a DC/OS cluster?",
                self.base
            )),
            _ => None,
        };
        let error_type = json
            .as_ref()
            .and_then(|j| j.get("type"))
            .and_then(Value::as_str)
            .map(str::to_string);
        CliError::Failed {
            message,
            hint,
            error_type,
        }
    }
}

/// Prints each `Warning` header of `resp` as `Warning: <text>` on stderr (stdout stays the
/// result, so `--json` output remains parseable), each text once per run.
fn print_warnings(resp: &Response) {
    static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    for v in resp.headers().get_all(WARNING) {
        let text = warning_text(&String::from_utf8_lossy(v.as_bytes()));
        if let Ok(mut seen) = SEEN.lock() {
            if seen.contains(&text) {
                continue;
            }
            seen.push(text.clone());
        }
        eprintln!("Warning: {text}");
    }
}

/// The text of a `Warning` header value (`<code> <agent> "<text>" ["<date>"]`, RFC 7234 §5.5);
/// the whole value when it is not in that form.
pub fn warning_text(value: &str) -> String {
    let Some(start) = value.find('"') else {
        return value.trim().to_string();
    };
    let mut out = String::new();
    let mut chars = value[start + 1..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return out,
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    value.trim().to_string()
}

/// Cosmos (`{type, message, data}`), Marathon (`{message, details}`), Admin Router
/// (`{service, message}`) and bouncer (`{title, description}`) error bodies.
pub fn describe_error_body(j: &Value, ctype: &str) -> Option<String> {
    let message = j
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| j.get("description").and_then(Value::as_str))?;
    let mut out = message.to_string();
    let is_cosmos = ctype.contains("vnd.dcos.package.error");
    let typ = j.get("type").and_then(Value::as_str).unwrap_or("");
    if is_cosmos || j.get("details").is_some() || j.get("data").is_some() {
        let mut lines = Vec::new();
        // JsonSchemaMismatch / MarathonBadResponse: data.errors[]
        if let Some(errors) = j.pointer("/data/errors").and_then(Value::as_array) {
            for e in errors {
                let text = match e {
                    Value::String(s) => s.clone(),
                    other => {
                        let path = other
                            .pointer("/instance/pointer")
                            .or_else(|| other.get("path"))
                            .and_then(Value::as_str)
                            .unwrap_or("");
                        let msg = other
                            .get("message")
                            .or_else(|| other.get("errors"))
                            .map(|m| match m {
                                Value::String(s) => s.clone(),
                                v => v.to_string(),
                            })
                            .unwrap_or_else(|| other.to_string());
                        if path.is_empty() {
                            msg
                        } else {
                            format!("{path}: {msg}")
                        }
                    }
                };
                lines.push(text);
            }
        }
        // Marathon: details[{path, errors[]}]
        if let Some(details) = j.get("details").and_then(Value::as_array) {
            for d in details {
                let path = d.get("path").and_then(Value::as_str).unwrap_or("");
                let errs = d
                    .get("errors")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .unwrap_or_default();
                lines.push(format!("{path}: {errs}"));
            }
        }
        if typ == "AmbiguousAppId" {
            out.push_str(
                "\nSeveral instances of the package are installed: pass --app-id to choose one.",
            );
        }
        for l in lines {
            out.push_str("\n  ");
            out.push_str(&l);
        }
    }
    Some(out)
}

fn snippet(text: &str) -> String {
    let t = text.trim();
    let mut s: String = t.chars().take(200).collect();
    if t.chars().count() > 200 {
        s.push('…');
    }
    s.replace('\n', " ")
}

/// Percent-encodes an app id for a Marathon path, keeping `/`.
pub fn app_path(id: &str) -> String {
    let id = format!("/{}", id.trim_matches('/'));
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Percent-encodes a query value.
pub fn query_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn media_types() {
        assert_eq!(
            package_media_type("install-response", "v2"),
            "application/vnd.dcos.package.install-response+json;charset=utf-8;version=v2"
        );
    }

    #[test]
    fn warning_texts() {
        assert_eq!(
            warning_text(
                r#"199 cosmos "repository 'U' (https://u/repo) is unreachable: dns error""#
            ),
            "repository 'U' (https://u/repo) is unreachable: dns error"
        );
        assert_eq!(
            warning_text(r#"199 - "a \"quoted\" word" "Sat, 01 Jan 2000 00:00:00 GMT""#),
            "a \"quoted\" word"
        );
        assert_eq!(warning_text("  plain text "), "plain text");
    }

    #[test]
    fn error_bodies() {
        let cosmos = json!({"type": "JsonSchemaMismatch", "message": "Options JSON failed validation",
            "data": {"errors": [{"message": "is not a number", "instance": {"pointer": "/service/cpus"}}]}});
        let m = describe_error_body(&cosmos, COSMOS_ERROR).unwrap();
        assert!(
            m.contains("failed validation") && m.contains("/service/cpus: is not a number"),
            "{m}"
        );
        let marathon = json!({"message": "Object is not valid", "details": [{"path": "/id", "errors": ["bad id"]}]});
        assert!(describe_error_body(&marathon, "application/json")
            .unwrap()
            .contains("/id: bad id"));
        let ar =
            json!({"service": "marathon", "message": "Upstream service 'marathon' is unavailable"});
        assert!(describe_error_body(&ar, "application/json")
            .unwrap()
            .contains("marathon"));
        assert!(describe_error_body(&json!({"x": 1}), "").is_none());
    }

    #[test]
    fn app_paths() {
        assert_eq!(app_path("hello"), "/hello");
        assert_eq!(app_path("/group/web/"), "/group/web");
        assert_eq!(app_path("a b"), "/a%20b");
    }
}
